// Certificate signing requests: created with a generated key, or parsed from PEM.
// A parsed CSR is a verified CSR (PEM, its own signature, an allowed key).
// Thread-safety: free functions, safe from any thread; values are not shared.
#pragma once

#include "core/cert_record.hpp"
#include "core/ossl.hpp"

#include <string>
#include <string_view>

namespace certmate {

struct parsed_csr {
    ossl::x509_req req;
    ossl::pkey public_key;
    subject_fields subject;
    subject_alt_names sans; // from the extensionRequest, if any
    std::string key_type;   // describe_key()
    std::string pem;        // normalised PEM as we store it
};

// errc::invalid_csr for non-PEM bytes, unparsable DER, a bad self-signature, or one made with MD5 or
// SHA-1 (message says which); errc::unsupported_key for a key type or size we do not accept, or
// explicit EC parameters. Both name the field "csr". Input larger than 64 KiB is refused.
result<parsed_csr> parse_csr(std::string_view pem);

struct generated_csr {
    ossl::pkey key;
    std::string key_pem; // PKCS#8 PEM, unencrypted
    std::string csr_pem;
    std::string key_type;
};

// Generates a key of `type` and a CSR signed by it carrying `subject` and `sans`.
// errc::invalid_argument (field named) for a subject that cannot be encoded
// (e.g. a country that is not two letters).
result<generated_csr> create_csr(const subject_fields& subject, const subject_alt_names& sans, key_type type);

} // namespace certmate
