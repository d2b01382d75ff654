// The client-certificate profile (RFC 5280 4.2.1 extensions, below) and the signing of one certificate.
// Extensions come from this profile only, never from a CSR.
// Thread-safety: free functions, safe from any thread.
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"

#include <string>
#include <vector>

namespace certmate {

// The plain HTTP listener's default (net/options.hpp and app/config.hpp take it from here), which
// the default public URL points at.
inline constexpr std::string_view default_http_listen = "127.0.0.1:8080";

struct issuance_policy {
    int default_validity_days = 365;
    int max_validity_days = 825;
    // CDP <url>/crl.der, OCSP <url>/ocsp, caIssuers <url>/ca.crt
    std::string public_url = "http://" + std::string(default_http_listen);
};

// The client profile (RFC 5280 4.2.1) for every certificate the API issues; the server profile only
// for the CA's own TLS listener (`certmate init --server-cert`).
enum class cert_profile { client, tls_server };

struct issue_request {
    cert_profile profile = cert_profile::client;
    subject_fields subject;
    subject_alt_names sans;
    cert_usage usage = cert_usage::api_mtls;
    // Extra EKUs by name ("serverAuth", "emailProtection"), allowed for vpn and other only.
    std::vector<std::string> extra_eku;
    int validity_days = 0;      // 0 = policy default
    std::string serial_decimal; // chosen by the caller (unique in the store)
};

struct issued_cert {
    ossl::x509 cert;
    std::string pem;
    std::string der;
    std::string serial_decimal;
    std::string fingerprint_sha256;
    time_point not_before{};
    time_point not_after{};
    std::vector<std::string> key_usage;
    std::vector<std::string> extended_key_usage;
};

// Checks the request against the profile without signing: validity in 1..max, EKU names known
// and allowed for the usage, SANs well-formed (IP parses, email has '@', URI has a scheme),
// subject encodable. errc::invalid_argument naming the field.
result<void> validate_issue_request(const issue_request& req, const issuance_policy& policy);

// Signs `subject_key`'s public key: X.509 v3, notBefore now - 1 min, notAfter
// now + validity (capped by policy.max_validity_days and the CA's notAfter),
// basicConstraints critical CA:FALSE, keyUsage critical (digitalSignature, plus
// keyEncipherment for RSA), EKU clientAuth (+ extra), SANs, SKI, AKI, CDP, AIA. The tls_server
// profile differs in its EKU only: serverAuth alone, with at least one DNS or IP SAN.
result<issued_cert> issue_certificate(const certificate_authority& ca, EVP_PKEY* subject_key, const issue_request& req,
                                      const issuance_policy& policy, time_point now);

// Sets what `issued` decides in `rec` (serial, key usages, validity, fingerprint) and its creation
// time; the rest of the record (identity, subject, usage, history) is the caller's.
void record_issued(cert_record& rec, const issued_cert& issued, time_point created_at);

} // namespace certmate
