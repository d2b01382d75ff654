// RFC 6960 OCSP (profile of RFC 5019): the delegated responder certificate, request parsing
// and response signing. Pure functions over DER bytes; the caller looks statuses up.
// Thread-safety: free functions, safe from any thread; ocsp_responder is immutable once built.
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"
#include "core/ossl.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

// The delegated responder: ECDSA P-256, id-kp-OCSPSigning, id-pkix-ocsp-nocheck, issued by the CA.
struct ocsp_responder {
    ossl::x509 cert;
    ossl::pkey key;
    std::string cert_pem;
    std::string key_pem;
    time_point not_after{};
};

// Issues a new responder certificate valid `validity_days` (never past the CA's notAfter).
result<ocsp_responder> issue_ocsp_responder(const certificate_authority& ca, time_point now, const rng_fn& rng,
                                            int validity_days = 90);
// Loads a responder from PEM and checks it was issued by `ca`.
result<ocsp_responder> load_ocsp_responder(const certificate_authority& ca, std::string_view cert_pem,
                                           std::string_view key_pem);

// OCSPResponseStatus (RFC 6960 4.2.1).
enum class ocsp_response_status {
    successful = 0,
    malformed_request = 1,
    internal_error = 2,
    try_later = 3,
    sig_required = 5,
    unauthorized = 6
};

struct ocsp_query {
    std::string serial_decimal;
    int hash_nid = 0;        // NID of the CertID hash (SHA-1 or SHA-256)
    bool our_issuer = false; // issuerNameHash and issuerKeyHash match the CA
};

struct ocsp_request_info {
    std::vector<ocsp_query> queries;
    bool has_nonce = false;
    std::string der; // the request, as received
};

// Parses a DER OCSPRequest. errc::invalid_argument for bytes that do not parse, an empty
// request list, or a nonce outside 1..32 octets (RFC 8954 2.1).
result<ocsp_request_info> parse_ocsp_request(std::string_view der, const certificate_authority& ca);

struct ocsp_single_answer {
    enum class state { good, revoked, unknown } status = state::unknown;
    time_point revoked_at{};
    std::optional<revocation_reason> reason;
    bool operator==(const ocsp_single_answer&) const = default;
};

// Signs a successful response answering each query of `req` (answers in the same order), echoing
// the request's nonce, with thisUpdate/nextUpdate and the responder certificate included.
result<std::string> build_ocsp_response(const ocsp_responder& responder, std::string_view request_der,
                                        const std::vector<ocsp_single_answer>& answers, time_point this_update,
                                        time_point next_update);

// An unsigned error response (malformedRequest, unauthorized, internalError, tryLater); never fails.
std::string ocsp_error_response(ocsp_response_status s);

// Decodes the base64 of GET /ocsp/<...> (RFC 6960 A.1) once its percent-encoding is undone (net/
// reads the request target): standard or URL-safe alphabet, padding optional. nullopt for invalid input.
std::optional<std::string> decode_ocsp_get_path(std::string_view unescaped);

} // namespace certmate
