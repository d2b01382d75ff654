// CRL v2 building. A CRL is an immutable value; its number only grows (the caller persists
// the number before publishing). Thread-safety: free functions, safe from any thread.
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

struct crl_entry {
    std::string serial_decimal;
    time_point revoked_at{};
    revocation_reason reason = revocation_reason::unspecified;
    std::optional<time_point> invalidity_date;
};

struct crl_params {
    std::uint64_t crl_number = 1;
    time_point this_update{};
    time_point next_update{};
};

struct built_crl {
    std::string der;
    std::string pem;
    std::uint64_t crl_number = 0;
    time_point this_update{};
    time_point next_update{};
};

// v2 CRL signed by the CA: entries with reasonCode (omitted for unspecified, as RFC 5280
// 5.3.1 recommends) and invalidityDate, CRL number, AKI.
// Builds through OpenSSL's X509_CRL objects; the reference crl_signer is tested against (the
// server builds with crl_signer, which does not re-encode the entries each time).
result<built_crl> build_crl(const certificate_authority& ca, std::span<const crl_entry> entries, const crl_params& p);

// A CRL another instance published (cert_repository::published_crl): checked to be `ca`'s
// (its signature verifies with the CA key, RFC 5280 6.3.3 (f)) and read back for its CRL number
// (5.2.3), thisUpdate and nextUpdate (5.1.2.4, 5.1.2.5). errc::crypto_failure when it does not
// parse, lacks a number or nextUpdate, or is not signed by `ca`.
result<built_crl> read_published_crl(const certificate_authority& ca, std::string der, std::string pem);

// The CRL number (RFC 5280 5.2.3) of a DER CertificateList, read by walking its TLVs without
// decoding the entries (a start-up check of the CRL files against the number kept); nullopt when
// `der` is not a CertificateList or carries no CRL number. Checks no signature.
std::optional<std::uint64_t> crl_number_of(std::string_view der);
// The revokedCertificates (RFC 5280 5.1.2.6) of a DER CertificateList: the entries' DER back to
// back as listed, empty when the CRL lists none; nullopt when `der` is not a CertificateList.
// Checks no signature. A CRL built from a crl_entry_set lists exactly its concatenated().
std::optional<std::string_view> crl_listed_entries(std::string_view der);
// The PEM form ("X509 CRL") of a DER CRL, as every build writes it.
result<std::string> crl_pem_of(std::string_view der);

// The revoked serials of one record, as the CRL lists them: the current certificate when revoked
// (or on hold) and each revoked history entry (reason superseded unless recorded).
std::vector<crl_entry> crl_entries_of(const cert_record& r);

// The DER of one revokedCertificates entry (RFC 5280 5.1.2.6 and 5.3), byte for byte what
// build_crl encodes: serial, revocationDate (UTCTime through 2049, 5.1.2.4), reasonCode unless
// unspecified, invalidityDate as GeneralizedTime. errc::invalid_argument for a bad serial.
result<std::string> encode_crl_entry(const crl_entry& e);

// The revoked set kept encoded: serial -> entry DER, in ascending serial order (the order of
// X509_CRL_sort), so a rebuild concatenates instead of encoding. [one thread at a time]
class crl_entry_set {
public:
    // Inserts or replaces the entry of e.serial_decimal.
    result<void> put(const crl_entry& e);
    void erase(const std::string& serial_decimal);
    std::size_t size() const noexcept { return entries_.size(); }
    // The entries' DER back to back, in order.
    std::string concatenated() const;

private:
    struct serial_order {
        bool operator()(const std::string& a, const std::string& b) const noexcept {
            return a.size() != b.size() ? a.size() < b.size() : a < b;
        }
    };
    std::map<std::string, std::string, serial_order> entries_;
    std::size_t bytes_ = 0;
};

// What every CRL of one CA repeats, encoded once: the issuer Name, the signature
// AlgorithmIdentifier, the authority key identifier extension. build() assembles the
// CertificateList (RFC 5280 5.1) around pre-encoded entries and signs once; the result is byte
// for byte build_crl's (RSA, Ed25519; ECDSA signatures differ only by their randomness).
// Immutable after make(): safe from any thread.
class crl_signer {
public:
    // Costs one signature (of an empty CRL, for the AlgorithmIdentifier OpenSSL writes for this key).
    static result<std::shared_ptr<const crl_signer>> make(std::shared_ptr<const certificate_authority> ca);
    // `entries_der`: encode_crl_entry outputs back to back, in ascending serial order.
    result<built_crl> build(std::string_view entries_der, const crl_params& p) const;

private:
    std::shared_ptr<const certificate_authority> ca_;
    std::string alg_der_, issuer_der_, aki_ext_der_;
};

} // namespace certmate
