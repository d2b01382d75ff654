#include "core/crl.hpp"

#include "core/keys.hpp"

#include <openssl/pem.h>

namespace certmate {

namespace {

// RFC 5280 5.3.2: "Invalidity dates ... MUST be expressed as GeneralizedTime" (unlike the
// revocationDate, which follows the UTCTime/GeneralizedTime rule of 5.1.2.4).
result<void> add_invalidity_date(X509_REVOKED* rev, time_point t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    ossl::asn1_time gt(ASN1_GENERALIZEDTIME_set(nullptr, std::chrono::system_clock::to_time_t(secs)));
    if (!gt || X509_REVOKED_add1_ext_i2d(rev, NID_invalidity_date, gt.get(), 0, X509V3_ADD_APPEND) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode an invalidity date");
    return {};
}

result<ossl::x509_revoked> make_entry(const crl_entry& e) {
    auto serial = decimal_to_asn1_integer(e.serial_decimal);
    if (!serial) return serial.error();
    auto when = to_asn1_time(e.revoked_at);
    ossl::x509_revoked rev(X509_REVOKED_new());
    if (!rev || !when || X509_REVOKED_set_serialNumber(rev.get(), serial->get()) != 1 ||
        X509_REVOKED_set_revocationDate(rev.get(), when.get()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot build a CRL entry");
    // RFC 5280 5.3.1: "CRL issuers are strongly encouraged to include meaningful reason codes in
    // CRL entries; however, the reason code CRL entry extension SHOULD be absent instead of using
    // the unspecified (0) reasonCode value."
    if (e.reason != revocation_reason::unspecified) {
        ossl::asn1_enumerated code(ASN1_ENUMERATED_new());
        if (!code || ASN1_ENUMERATED_set(code.get(), static_cast<long>(e.reason)) != 1 ||
            X509_REVOKED_add1_ext_i2d(rev.get(), NID_crl_reason, code.get(), 0, X509V3_ADD_APPEND) != 1)
            return ossl::fail(errc::crypto_failure, "cannot encode a reason code");
    }
    if (e.invalidity_date)
        if (auto r = add_invalidity_date(rev.get(), *e.invalidity_date); !r) return r.error();
    return rev;
}

} // namespace

result<built_crl> build_crl(const certificate_authority& ca, std::span<const crl_entry> entries, const crl_params& p) {
    if (p.next_update <= p.this_update)
        return make_error(errc::invalid_argument, "nextUpdate must be after thisUpdate", "next_update");
    auto this_update = to_asn1_time(p.this_update);
    auto next_update = to_asn1_time(p.next_update);
    ossl::x509_crl crl(X509_CRL_new());
    // RFC 5280 5.1.2.1: "This optional field describes the version of the encoded CRL. When
    // extensions are used, as required by this profile, this field MUST be present and MUST
    // specify version 2 (the integer value is 1)."
    if (!crl || !this_update || !next_update || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert())) != 1 ||
        X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot build the CRL");

    for (const auto& e : entries) {
        auto rev = make_entry(e);
        if (!rev) return rev.error();
        if (X509_CRL_add0_revoked(crl.get(), rev->get()) != 1)
            return ossl::fail(errc::crypto_failure, "cannot add a CRL entry");
        rev->release(); // the CRL owns it now
    }
    if (X509_CRL_sort(crl.get()) != 1) return ossl::fail(errc::crypto_failure, "cannot sort the CRL");

    // RFC 5280 5.2.1: "Conforming CRL issuers MUST use the key identifier method, and MUST
    // include this extension in all CRLs issued." It repeats the CA's subject key identifier.
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca.cert());
    if (!ski) return make_error(errc::crypto_failure, "the CA certificate has no subject key identifier");
    ossl::authority_keyid akid(AUTHORITY_KEYID_new());
    if (!akid || !(akid->keyid = ASN1_OCTET_STRING_dup(ski)) ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_APPEND) != 1)
        return ossl::fail(errc::crypto_failure, "cannot add the authority key identifier");
    // RFC 5280 5.2.3: "CRL issuers conforming to this profile MUST include this extension in all
    // CRLs and MUST mark this extension as non-critical."
    ossl::asn1_integer number(ASN1_INTEGER_new());
    if (!number || ASN1_INTEGER_set_uint64(number.get(), p.crl_number) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_APPEND) != 1)
        return ossl::fail(errc::crypto_failure, "cannot add the CRL number");

    if (X509_CRL_sign(crl.get(), ca.key(), ca.digest()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot sign the CRL");

    built_crl out;
    unsigned char* der = nullptr;
    int n = i2d_X509_CRL(crl.get(), &der);
    if (n <= 0) return ossl::fail(errc::crypto_failure, "cannot encode the CRL");
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    out.der.assign(owned.get(), static_cast<std::size_t>(n));
    ossl::bio pem(BIO_new(BIO_s_mem()));
    if (!pem || PEM_write_bio_X509_CRL(pem.get(), crl.get()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode the CRL");
    out.pem = ossl::bio_to_string(pem.get());
    out.crl_number = p.crl_number;
    out.this_update = std::chrono::floor<std::chrono::seconds>(p.this_update);
    out.next_update = std::chrono::floor<std::chrono::seconds>(p.next_update);
    return out;
}

} // namespace certmate
