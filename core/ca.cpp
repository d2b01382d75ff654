#include "core/ca.hpp"

#include "core/keys.hpp"

#include <boost/json/string.hpp>

#include <chrono>

namespace certmate {

result<certificate_authority> certificate_authority::create(const ca_options& opts, time_point now, const rng_fn& rng) {
    if (opts.validity_days < 1 || opts.validity_days > 36500)
        return make_error(errc::invalid_argument, "CA validity must be 1 to 36500 days", "validity_days");
    auto name = build_name(opts.subject);
    if (!name) return name.error();
    if (opts.subject.common_name.empty())
        return make_error(errc::invalid_argument, "the CA subject needs a common name", "common_name");
    auto key = generate_key(opts.type);
    if (!key) return key.error();
    auto serial_text = random_serial(rng);
    if (!serial_text) return serial_text.error();
    auto serial = decimal_to_asn1_integer(*serial_text);
    if (!serial) return serial.error();

    using namespace std::chrono_literals;
    // Self-signed: the issuer is the subject.
    auto draft =
        new_v3_certificate(serial->get(), nullptr, name->get(), now - 60s, now + std::chrono::days(opts.validity_days),
                           key->get(), "cannot build the CA certificate");
    if (!draft) return draft.error();
    auto& [cert, ctx] = *draft;

    // RFC 5280 4.2.1.9: "Conforming CAs MUST include this extension in all CA certificates that
    // contain public keys used to validate digital signatures on certificates and MUST mark the
    // extension as critical in such certificates." pathlen:0: this CA issues end entities only.
    if (auto r = add_config_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"); !r)
        return r.error();
    // RFC 5280 4.2.1.3: "When present, conforming CAs SHOULD mark this extension as critical."
    if (auto r = add_config_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"); !r)
        return r.error();
    if (auto r = add_config_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"); !r) return r.error();
    if (auto r = add_config_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"); !r)
        return r.error();

    if (X509_sign(cert.get(), key->get(), signing_digest(key->get())) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot sign the CA certificate");
    return make(std::move(cert), std::move(*key));
}

result<certificate_authority> certificate_authority::load(std::string_view cert_pem, std::string_view key_pem,
                                                          std::optional<std::string_view> passphrase) {
    auto cert = load_cert_pem(cert_pem);
    if (!cert) return make_error(errc::crypto_failure, "the CA certificate does not parse");
    auto key = load_private_key(key_pem, passphrase);
    if (!key) return key.error();
    if (X509_check_private_key(cert->get(), key->get()) != 1)
        return ossl::fail(errc::crypto_failure, "the CA key does not match the CA certificate");
    // X509_check_ca returns 1 only for basicConstraints CA:TRUE (with keyCertSign if keyUsage is present).
    if (X509_check_ca(cert->get()) != 1)
        return ossl::fail(errc::crypto_failure, "the CA certificate is not a CA certificate");
    return make(std::move(*cert), std::move(*key));
}

result<certificate_authority> certificate_authority::make(ossl::x509 cert, ossl::pkey key) {
    certificate_authority ca;
    auto pem = cert_to_pem(cert.get());
    if (!pem) return pem.error();
    auto der = cert_to_der(cert.get());
    if (!der) return der.error();
    auto fp = certmate::fingerprint_sha256(cert.get());
    if (!fp) return fp.error();
    auto serial = serial_to_decimal(X509_get0_serialNumber(cert.get()));
    if (!serial) return serial.error();
    ossl::bio out(BIO_new(BIO_s_mem()));
    if (!out || X509_NAME_print_ex(out.get(), X509_get_subject_name(cert.get()), 0, XN_FLAG_RFC2253) < 0)
        return ossl::fail(errc::crypto_failure, "cannot print the CA subject");
    ca.subject_ = ossl::bio_to_string(out.get());
    for (const EVP_MD* md : {EVP_sha1(), EVP_sha256()}) {
        unsigned char name[EVP_MAX_MD_SIZE], key[EVP_MAX_MD_SIZE];
        unsigned int name_len = 0, key_len = 0;
        if (X509_NAME_digest(X509_get_subject_name(cert.get()), md, name, &name_len) != 1 ||
            X509_pubkey_digest(cert.get(), md, key, &key_len) != 1)
            return ossl::fail(errc::crypto_failure, "cannot hash the CA name and key");
        ca.certid_hashes_.push_back({EVP_MD_get_type(md), std::string(reinterpret_cast<char*>(name), name_len),
                                     std::string(reinterpret_cast<char*>(key), key_len)});
    }
    ca.cert_pem_ = std::move(*pem);
    ca.cert_der_ = std::move(*der);
    ca.fingerprint_ = std::move(*fp);
    ca.serial_ = std::move(*serial);
    ca.cert_ = std::move(cert);
    ca.key_ = std::move(key);
    return ca;
}

const certificate_authority::certid_hashes* certificate_authority::certid_hashes_for(int nid) const noexcept {
    for (const auto& h : certid_hashes_)
        if (h.nid == nid) return &h;
    return nullptr;
}

const EVP_MD* certificate_authority::digest() const noexcept { return signing_digest(key_.get()); }

result<std::string> certificate_authority::key_pem(std::optional<std::string_view> passphrase) const {
    return private_key_to_pem(key_.get(), passphrase);
}

time_point certificate_authority::not_before() const { return from_asn1_time(X509_get0_notBefore(cert_.get())); }
time_point certificate_authority::not_after() const { return from_asn1_time(X509_get0_notAfter(cert_.get())); }

std::string certificate_authority::key_type_name() const { return describe_key(key_.get()); }

boost::json::object certificate_authority::metadata() const {
    boost::json::object o;
    o["subject"] = subject_string();
    o["serial_number"] = serial_decimal();
    o["fingerprint_sha256"] = fingerprint_sha256();
    o["key_type"] = key_type_name();
    o["not_before"] = format_time(not_before());
    o["not_after"] = format_time(not_after());
    // The CA is created with notBefore backdated by one minute; that instant is recorded as created_at.
    o["created_at"] = format_time(not_before());
    o["signature_algorithm"] = OBJ_nid2ln(X509_get_signature_nid(cert_.get()));
    return o;
}

} // namespace certmate
