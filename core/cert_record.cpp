#include "core/cert_record.hpp"

#include <array>
#include <utility>

namespace certmate {

namespace {
template <class E, std::size_t N>
std::optional<E> lookup(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view s) noexcept {
    for (const auto& [e, name] : table)
        if (name == s) return e;
    return std::nullopt;
}
template <class E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E e) noexcept {
    for (const auto& [v, name] : table)
        if (v == e) return name;
    return "unknown";
}

constexpr std::array<std::pair<cert_usage, std::string_view>, 4> usages{{{cert_usage::api_mtls, "api-mtls"},
                                                                         {cert_usage::vpn, "vpn"},
                                                                         {cert_usage::other, "other"},
                                                                         {cert_usage::server, "server"}}};
constexpr std::array<std::pair<api_role, std::string_view>, 3> roles{
    {{api_role::viewer, "viewer"}, {api_role::operator_, "operator"}, {api_role::admin, "admin"}}};
constexpr std::array<std::pair<revocation_reason, std::string_view>, 10> reasons{
    {{revocation_reason::unspecified, "unspecified"},
     {revocation_reason::key_compromise, "keyCompromise"},
     {revocation_reason::ca_compromise, "cACompromise"},
     {revocation_reason::affiliation_changed, "affiliationChanged"},
     {revocation_reason::superseded, "superseded"},
     {revocation_reason::cessation_of_operation, "cessationOfOperation"},
     {revocation_reason::certificate_hold, "certificateHold"},
     {revocation_reason::remove_from_crl, "removeFromCRL"},
     {revocation_reason::privilege_withdrawn, "privilegeWithdrawn"},
     {revocation_reason::aa_compromise, "aACompromise"}}};
constexpr std::array<std::pair<key_type, std::string_view>, 6> key_types{{{key_type::rsa2048, "rsa2048"},
                                                                          {key_type::rsa3072, "rsa3072"},
                                                                          {key_type::rsa4096, "rsa4096"},
                                                                          {key_type::ec_p256, "ec-p256"},
                                                                          {key_type::ec_p384, "ec-p384"},
                                                                          {key_type::ed25519, "ed25519"}}};
constexpr std::array<std::pair<cert_status, std::string_view>, 4> statuses{{{cert_status::active, "active"},
                                                                            {cert_status::revoked, "revoked"},
                                                                            {cert_status::expired, "expired"},
                                                                            {cert_status::on_hold, "on_hold"}}};
} // namespace

std::string_view to_string(cert_usage u) noexcept { return name_of(usages, u); }
std::optional<cert_usage> parse_cert_usage(std::string_view s) noexcept { return lookup(usages, s); }
std::string_view to_string(api_role r) noexcept { return name_of(roles, r); }
std::optional<api_role> parse_api_role(std::string_view s) noexcept { return lookup(roles, s); }
std::string_view to_string(revocation_reason r) noexcept { return name_of(reasons, r); }
std::optional<revocation_reason> parse_revocation_reason(std::string_view s) noexcept {
    auto r = lookup(reasons, s);
    // Reasons a caller may not choose for an end-entity certificate of this CA.
    if (r == revocation_reason::ca_compromise || r == revocation_reason::remove_from_crl ||
        r == revocation_reason::aa_compromise)
        return std::nullopt;
    return r;
}
std::string_view to_string(key_type k) noexcept { return name_of(key_types, k); }
std::optional<key_type> parse_key_type(std::string_view s) noexcept { return lookup(key_types, s); }
std::string_view to_string(cert_status s) noexcept { return name_of(statuses, s); }

bool valid_identifier(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
    if (!alnum(id[0])) return false;
    for (char c : id)
        if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

cert_status status_at(const cert_record& r, time_point now) noexcept {
    if (r.revocation.revoked)
        return r.revocation.reason == revocation_reason::certificate_hold ? cert_status::on_hold : cert_status::revoked;
    if (now >= r.expires_at) return cert_status::expired;
    return cert_status::active;
}

void revoke_identity(cert_record& r, time_point at, revocation_reason reason) noexcept {
    r.revocation.revoked = true;
    r.revocation.revoked_at = at;
    r.revocation.reason = reason;
    for (auto& h : r.history) {
        const bool held = h.revoked && h.reason == revocation_reason::certificate_hold;
        if ((h.revoked && !held) || h.expires_at <= at) continue;
        h.revoked = true;
        h.revoked_at = at;
        h.reason = reason;
    }
}

void unhold_identity(cert_record& r) noexcept {
    if (r.revocation.reason == revocation_reason::certificate_hold) r.revocation = revocation_info{};
    for (auto& h : r.history) {
        if (!h.revoked || h.reason != revocation_reason::certificate_hold) continue;
        h.revoked = false;
        h.revoked_at.reset();
        h.reason.reset();
    }
}

} // namespace certmate
