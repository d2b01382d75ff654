#include "core/encoding.hpp"

namespace certmate {

namespace {

constexpr std::string_view lower_hex_digits = "0123456789abcdef";

} // namespace

std::string hex_encode(std::span<const unsigned char> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += lower_hex_digits[c >> 4];
        out += lower_hex_digits[c & 0x0f];
    }
    return out;
}

bool is_lower_hex(std::string_view s) noexcept {
    return s.find_first_not_of(lower_hex_digits) == std::string_view::npos;
}

std::optional<std::string> hex_decode(std::string_view s) {
    if (s.size() % 2 || !is_lower_hex(s)) return std::nullopt;
    auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    std::string out;
    out.reserve(s.size() / 2);
    for (std::size_t i = 0; i < s.size(); i += 2) out += static_cast<char>(digit(s[i]) * 16 + digit(s[i + 1]));
    return out;
}

} // namespace certmate
