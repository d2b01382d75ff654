#include "net/auth.hpp"

#include "core/keys.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <cctype>

namespace certmate::net {

token_table::token_table(std::vector<token_credential> tokens) : tokens_(std::move(tokens)) {}

std::optional<identity> token_table::find(std::string_view token) const {
    if (token.empty()) return std::nullopt;
    auto hashed = sha256_hex(token);
    if (!hashed) {
        // Fail closed: a token that cannot be hashed matches no one.
        spdlog::error("cannot check a bearer token: {}", hashed.error().message);
        return std::nullopt;
    }
    const std::string& digest = *hashed;
    std::optional<identity> found;
    for (const auto& t : tokens_) {
        if (t.sha256_hex.size() != digest.size()) continue;
        const bool same = CRYPTO_memcmp(t.sha256_hex.data(), digest.data(), digest.size()) == 0;
        if (same && !found) found = identity{t.name, t.role};
    }
    return found;
}

std::optional<std::string_view> bearer_token(std::string_view v) {
    constexpr std::string_view scheme = "bearer";
    if (v.size() <= scheme.size() + 1) return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(v[i])) != scheme[i]) return std::nullopt;
    if (v[scheme.size()] != ' ') return std::nullopt;
    v.remove_prefix(scheme.size() + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    return v;
}

} // namespace certmate::net
