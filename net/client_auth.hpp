// Authentication of one request (docs/api.md "Authentication and roles"): a client certificate
// verified during the TLS handshake, checked again on every request against the live state, or a
// bearer token. Pure functions over the tables; no Asio or OpenSSL types.
// Precedence: a certificate that is accepted (ours, good, within its validity, with an
// api_role) wins; otherwise a valid bearer token; otherwise the request is anonymous and the
// failure says why.
// Thread-safety: free functions; the tables they read are safe from any thread.
#pragma once

#include "core/ocsp_table.hpp"
#include "core/serial_owners.hpp"
#include "net/auth.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace certmate::net {

// A client certificate the TLS handshake verified against our CA.
struct client_certificate {
    std::string serial_decimal;
    time_point not_before{};
    time_point not_after{};
};

// What a connection tells the request pipeline about its peer.
struct peer_info {
    std::string ip;
    bool tls = false;                       // came in on the TLS listener
    std::optional<client_certificate> cert; // presented and verified during the handshake
};

// A certificate checked against the live state at the time of a request.
enum class cert_verdict {
    accepted, // good, known, within validity, carries an api_role
    no_role,  // good but its metadata carries no api_role: no API access
    revoked,  // revoked or on hold
    unknown,  // a serial we have no record of
    expired,  // past notAfter (or before notBefore)
};
std::string_view to_string(cert_verdict v) noexcept; // "accepted", "no_role", ...

struct cert_check {
    cert_verdict verdict = cert_verdict::unknown;
    std::optional<serial_owner> owner; // when the serial is ours
};

// RFC 5280 6.1.3 (a)(2)/(3): the certificate validity period includes the current time and "At
// the current time, the certificate is not revoked": both are asked again on each request, so a
// revocation or an expiry takes effect without a new handshake.
cert_check check_client_certificate(const client_certificate& c, const ocsp_table& statuses,
                                    const serial_owner_table& owners, time_point now);

enum class auth_failure {
    none,
    no_credentials,           // neither an accepted certificate nor a token
    invalid_token,            // a bearer token was sent and is not ours
    certificate_refused,      // a certificate was sent and is revoked, unknown or expired
    certificate_without_role, // a good certificate without api_role (and no valid token)
};
std::string_view to_string(auth_failure f) noexcept; // the audit reason: "no_token", ...

struct caller {
    std::optional<identity> ident;  // authenticated as; nullopt: anonymous
    std::string user = "anonymous"; // the audit user: identity name, else the certificate's identifier
    bool by_certificate = false;
    auth_failure failure = auth_failure::none;
    std::optional<cert_verdict> cert; // the verdict on a presented certificate
};

// Who sent a request: `authorization` is the Authorization header value ("" when absent).
caller authenticate(const peer_info& peer, std::string_view authorization, const token_table& tokens,
                    const ocsp_table& statuses, const serial_owner_table& owners, time_point now);

} // namespace certmate::net
