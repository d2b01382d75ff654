// RAII handles for every OpenSSL object we hold, and the error queue drained into a typed
// error where a failure happens. Never hold a raw OpenSSL pointer outside one of these.
#pragma once

#include "core/errc.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace certmate::ossl {

template <class T, void (*Fn)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Fn(p); }
};
template <class T, void (*Fn)(T*)>
using handle = std::unique_ptr<T, deleter<T, Fn>>;

inline void free_x509_ext_stack(STACK_OF(X509_EXTENSION) * s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
inline void free_general_names(GENERAL_NAMES* g) { GENERAL_NAMES_free(g); }
inline void free_x509_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
inline void free_openssl_string(char* p) { OPENSSL_free(p); }

using pkey = handle<EVP_PKEY, EVP_PKEY_free>;
using pkey_ctx = handle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using md_ctx = handle<EVP_MD_CTX, EVP_MD_CTX_free>;
using x509 = handle<X509, X509_free>;
using x509_req = handle<X509_REQ, X509_REQ_free>;
using x509_crl = handle<X509_CRL, X509_CRL_free>;
using x509_revoked = handle<X509_REVOKED, X509_REVOKED_free>;
using x509_name = handle<X509_NAME, X509_NAME_free>;
using x509_ext = handle<X509_EXTENSION, X509_EXTENSION_free>;
using x509_ext_stack = handle<STACK_OF(X509_EXTENSION), free_x509_ext_stack>;
using x509_stack = handle<STACK_OF(X509), free_x509_stack>;
using x509_store = handle<X509_STORE, X509_STORE_free>;
using x509_store_ctx = handle<X509_STORE_CTX, X509_STORE_CTX_free>;
using general_names = handle<GENERAL_NAMES, free_general_names>;
using asn1_integer = handle<ASN1_INTEGER, ASN1_INTEGER_free>;
using asn1_time = handle<ASN1_TIME, ASN1_TIME_free>;
using asn1_octet_string = handle<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using asn1_enumerated = handle<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;
using bignum = handle<BIGNUM, BN_free>;
using bio = handle<BIO, BIO_free_all>;
using pkcs12 = handle<PKCS12, PKCS12_free>;
using ocsp_request = handle<OCSP_REQUEST, OCSP_REQUEST_free>;
using ocsp_response = handle<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using ocsp_basicresp = handle<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using ocsp_certid = handle<OCSP_CERTID, OCSP_CERTID_free>;
using openssl_string = handle<char, free_openssl_string>;
using general_name = handle<GENERAL_NAME, GENERAL_NAME_free>;
using asn1_ia5string = handle<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using asn1_bit_string = handle<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using asn1_object = handle<ASN1_OBJECT, ASN1_OBJECT_free>;
using basic_constraints = handle<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using extended_key_usage = handle<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using authority_keyid = handle<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;
using dist_point = handle<DIST_POINT, DIST_POINT_free>;
using crl_dist_points = handle<CRL_DIST_POINTS, CRL_DIST_POINTS_free>;
using access_description = handle<ACCESS_DESCRIPTION, ACCESS_DESCRIPTION_free>;
using authority_info_access = handle<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free>;
using rsa_pss_params = handle<RSA_PSS_PARAMS, RSA_PSS_PARAMS_free>;

// Drains the thread's OpenSSL error queue into one line (for logs, never for clients).
std::string drain_errors();

// An error of `code` whose message is `what`; the OpenSSL queue goes to the debug log.
error fail(errc code, std::string what);

// Takes a reference to a borrowed pointer before wrapping it.
inline x509 up_ref(X509* p) {
    if (p) X509_up_ref(p);
    return x509(p);
}
inline pkey up_ref(EVP_PKEY* p) {
    if (p) EVP_PKEY_up_ref(p);
    return pkey(p);
}

// A memory BIO's contents as a string.
std::string bio_to_string(BIO* b);
bio mem_bio(std::string_view data);

} // namespace certmate::ossl
