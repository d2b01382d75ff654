#include "net/client_auth.hpp"

namespace certmate::net {

std::string_view to_string(cert_verdict v) noexcept {
    switch (v) {
    case cert_verdict::accepted: return "accepted";
    case cert_verdict::no_role: return "no_role";
    case cert_verdict::revoked: return "revoked";
    case cert_verdict::unknown: return "unknown";
    case cert_verdict::expired: return "expired";
    }
    return "unknown";
}

std::string_view to_string(auth_failure f) noexcept {
    switch (f) {
    case auth_failure::none: return "none";
    case auth_failure::no_credentials: return "no_token";
    case auth_failure::invalid_token: return "invalid_token";
    case auth_failure::certificate_refused: return "certificate_refused";
    case auth_failure::certificate_without_role: return "certificate_without_role";
    }
    return "none";
}

cert_check check_client_certificate(const client_certificate& c, const ocsp_table& statuses,
                                    const serial_owner_table& owners, time_point now) {
    cert_check out;
    out.owner = owners.get(c.serial_decimal);
    const auto status = statuses.get(c.serial_decimal).answer;
    if (!out.owner || !status || status->status == ocsp_single_answer::state::unknown) {
        out.verdict = cert_verdict::unknown;
    } else if (status->status == ocsp_single_answer::state::revoked) {
        out.verdict = cert_verdict::revoked;
    } else if (now < c.not_before || now > c.not_after) {
        out.verdict = cert_verdict::expired;
    } else {
        out.verdict = out.owner->role ? cert_verdict::accepted : cert_verdict::no_role;
    }
    return out;
}

caller authenticate(const peer_info& peer, std::string_view authorization, const token_table& tokens,
                    const ocsp_table& statuses, const serial_owner_table& owners, time_point now) {
    caller out;
    if (peer.cert) {
        const auto check = check_client_certificate(*peer.cert, statuses, owners, now);
        out.cert = check.verdict;
        if (check.owner) out.user = check.owner->identifier;
        if (check.verdict == cert_verdict::accepted) {
            out.ident = identity{check.owner->identifier, *check.owner->role};
            out.by_certificate = true;
            return out;
        }
    }
    if (!authorization.empty()) {
        if (auto tok = bearer_token(authorization)) out.ident = tokens.find(*tok);
        if (out.ident) {
            out.user = out.ident->name;
            return out;
        }
        out.failure = auth_failure::invalid_token;
        return out;
    }
    if (out.cert == cert_verdict::no_role)
        out.failure = auth_failure::certificate_without_role;
    else if (out.cert)
        out.failure = auth_failure::certificate_refused;
    else
        out.failure = auth_failure::no_credentials;
    return out;
}

} // namespace certmate::net
