// The domain values of a client certificate: its metadata (the Python CertMate's metadata.json
// plus ours, docs/architecture.md "Storage layout"), usages, roles, revocation reasons and status.
// Thread-safety: plain values.
#pragma once

#include "core/clock.hpp"
#include "core/errc.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

// `server`: the CA's own TLS listener certificate from `certmate init --server-cert`, recorded so
// OCSP, the CRL and revocation know it; never issued through the API.
enum class cert_usage { api_mtls, vpn, other, server };
std::string_view to_string(cert_usage u) noexcept; // "api-mtls", "vpn", "other", "server"
std::optional<cert_usage> parse_cert_usage(std::string_view s) noexcept;
inline constexpr cert_usage all_usages[] = {cert_usage::api_mtls, cert_usage::vpn, cert_usage::other,
                                            cert_usage::server};

enum class api_role { viewer = 1, operator_ = 2, admin = 3 };
std::string_view to_string(api_role r) noexcept; // "viewer", "operator", "admin"
std::optional<api_role> parse_api_role(std::string_view s) noexcept;

// RFC 5280 5.3.1 CRLReason codes (7 is unused).
enum class revocation_reason {
    unspecified = 0,
    key_compromise = 1,
    ca_compromise = 2,
    affiliation_changed = 3,
    superseded = 4,
    cessation_of_operation = 5,
    certificate_hold = 6,
    remove_from_crl = 8,
    privilege_withdrawn = 9,
    aa_compromise = 10,
};
std::string_view to_string(revocation_reason r) noexcept; // "keyCompromise", ...
// Accepts the RFC names a caller may ask for (not caCompromise/removeFromCRL/aACompromise).
std::optional<revocation_reason> parse_revocation_reason(std::string_view s) noexcept;

enum class key_type { rsa2048, rsa3072, rsa4096, ec_p256, ec_p384, ed25519 };
std::string_view to_string(key_type k) noexcept; // "rsa2048", "ec-p256", ...
std::optional<key_type> parse_key_type(std::string_view s) noexcept;

enum class cert_status { active, revoked, expired, on_hold };
std::string_view to_string(cert_status s) noexcept;

// `identifier` must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}; no path ever comes from anything else.
bool valid_identifier(std::string_view id) noexcept;

struct subject_alt_names {
    std::vector<std::string> dns, email, ip, uri;
    bool empty() const noexcept { return dns.empty() && email.empty() && ip.empty() && uri.empty(); }
    bool operator==(const subject_alt_names&) const = default;
};

// The distinguished-name fields we put in (or read from) a subject.
struct subject_fields {
    std::string common_name, email, organization, organizational_unit, country, state, locality;
    bool operator==(const subject_fields&) const = default;
};

// An earlier certificate of the same identifier, superseded by a renewal.
struct history_entry {
    std::string serial_number; // decimal
    time_point not_before{};
    time_point expires_at{};
    std::string fingerprint_sha256;
    time_point superseded_at{};
    // Revoked as `superseded` at renewal (renewal.revoke_superseded), or with the identifier
    // (revoke_identity). When revoked, `revoked_at` and `reason` are set.
    bool revoked = false;
    std::optional<time_point> revoked_at{};
    std::optional<revocation_reason> reason{};
    bool operator==(const history_entry&) const = default;
};

struct revocation_info {
    bool revoked = false;
    std::optional<time_point> revoked_at;
    std::optional<revocation_reason> reason;
    bool operator==(const revocation_info&) const = default;
};

struct renewal_settings {
    bool renewal_enabled = true;
    int renewal_threshold_days = 30;
    std::optional<time_point> last_renewed_at;
    bool operator==(const renewal_settings&) const = default;
};

// metadata.json of one certificate.
struct cert_record {
    std::string identifier;
    subject_fields subject;
    std::string serial_number;                   // decimal string (exceeds 2^53)
    std::vector<std::string> key_usage;          // "digitalSignature", ...
    std::vector<std::string> extended_key_usage; // "clientAuth", ...
    time_point created_at{};                     // issuance time of the current certificate
    time_point not_before{};
    time_point expires_at{};
    cert_usage usage = cert_usage::api_mtls;
    std::string notes;
    revocation_info revocation;
    renewal_settings renewal;
    std::string fingerprint_sha256; // hex, lower case, of the DER
    std::string key_type;           // "rsa2048", "ec-p256", ...
    subject_alt_names sans;
    std::optional<api_role> role;
    std::vector<history_entry> history;
    bool has_private_key = false; // key generated here and stored as cert.key
    bool operator==(const cert_record&) const = default;
};

// Status at `now`: revoked with certificateHold is on_hold; then revoked; then expired.
cert_status status_at(const cert_record& r, time_point now) noexcept;

// Revoking an identifier revokes every serial it has had that has not expired at `at`: the
// current one and each unrevoked (or held) history entry, with the same reason and time (SECURITY.md
// "Whole-identity revocation"). Expired serials are left alone (RFC 5280 5.1.2.6: a CRL need not
// list expired certificates).
void revoke_identity(cert_record& r, time_point at, revocation_reason reason) noexcept;
// Lifts certificateHold from the current serial and every history serial held with it.
void unhold_identity(cert_record& r) noexcept;

} // namespace certmate
