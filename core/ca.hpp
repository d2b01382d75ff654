// The certificate authority: its key and self-signed certificate, created or loaded.
// Immutable after construction; safe to sign with from several threads at once
// (share it as std::shared_ptr<const certificate_authority>).
#pragma once

#include "core/cert_record.hpp"
#include "core/ossl.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

inline subject_fields default_ca_subject() {
    subject_fields s;
    s.common_name = "CertMate Private CA";
    s.organization = "CertMate";
    return s;
}

struct ca_options {
    key_type type = key_type::rsa4096; // rsa4096 or ec_p384
    subject_fields subject = default_ca_subject();
    int validity_days = 3650;
};

class certificate_authority {
public:
    // New self-signed CA: SHA-256 (SHA-384 for P-384), 10 years, basicConstraints critical CA:TRUE
    // pathlen:0, keyUsage critical keyCertSign+cRLSign, SKI, AKI.
    static result<certificate_authority> create(const ca_options& opts, time_point now, const rng_fn& rng);
    // errc::bad_passphrase for an encrypted key without the right passphrase; errc::crypto_failure
    // when the key does not match the certificate or the certificate is not a CA.
    static result<certificate_authority> load(std::string_view cert_pem, std::string_view key_pem,
                                              std::optional<std::string_view> passphrase = std::nullopt);

    X509* cert() const noexcept { return cert_.get(); }
    EVP_PKEY* key() const noexcept { return key_.get(); }
    // The digest to sign with: SHA-256 (SHA-384 for a P-384 key, as create() says), or nullptr for Ed25519 keys.
    const EVP_MD* digest() const noexcept;

    // Encoded once when the CA is created or loaded (which fails if they do not encode).
    const std::string& cert_pem() const noexcept { return cert_pem_; }
    const std::string& cert_der() const noexcept { return cert_der_; }
    // PKCS#8, encrypted when `passphrase` is given.
    result<std::string> key_pem(std::optional<std::string_view> passphrase) const;

    time_point not_before() const;
    time_point not_after() const;
    const std::string& subject_string() const noexcept { return subject_; } // one-line RFC 2253
    const std::string& fingerprint_sha256() const noexcept { return fingerprint_; }
    const std::string& serial_decimal() const noexcept { return serial_; }
    std::string key_type_name() const;

    // The CertID issuerNameHash and issuerKeyHash of this CA (RFC 6960 4.1.1) under SHA-1 and
    // SHA-256, computed once; nullptr for another digest.
    struct certid_hashes {
        int nid = 0;
        std::string name_hash, key_hash;
    };
    const certid_hashes* certid_hashes_for(int nid) const noexcept;

    // ca_metadata.json: subject, serial_number, fingerprint_sha256, key_type, not_before,
    // not_after (RFC 3339), created_at, signature_algorithm.
    boost::json::object metadata() const;

private:
    certificate_authority() = default;
    // The CA from its parts, with the encodings above; errc::crypto_failure if one does not encode.
    static result<certificate_authority> make(ossl::x509 cert, ossl::pkey key);
    ossl::x509 cert_;
    ossl::pkey key_;
    std::string cert_pem_, cert_der_, subject_, fingerprint_, serial_;
    std::vector<certid_hashes> certid_hashes_;
};

} // namespace certmate
