#include "core/csr.hpp"

#include "core/keys.hpp"

#include <openssl/pem.h>

namespace certmate {

namespace {

constexpr std::size_t max_csr_bytes = 64 * 1024;

// The PEM of `req`; errc::crypto_failure when it does not encode.
result<std::string> req_to_pem(X509_REQ* req) {
    ossl::bio out(BIO_new(BIO_s_mem()));
    if (!out || !req || PEM_write_bio_X509_REQ(out.get(), req) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode the CSR");
    return ossl::bio_to_string(out.get());
}

// The SANs of the CSR's extensionRequest attribute, if it has one.
result<subject_alt_names> requested_sans(X509_REQ* req) {
    ossl::x509_ext_stack exts(X509_REQ_get_extensions(req));
    if (!exts) {
        ossl::drain_errors();
        return subject_alt_names{};
    }
    ossl::general_names names(
        static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
    ossl::drain_errors();
    return read_sans(names.get());
}

// The digest of the CSR's signature: NID_undef for Ed25519 (no separate digest), -1 when unknown.
// RSASSA-PSS names its digest in the parameters, SHA-1 when absent (RFC 4055 3.1).
int signature_digest_nid(X509_REQ* req) {
    const X509_ALGOR* alg = nullptr;
    X509_REQ_get0_signature(req, nullptr, &alg);
    const ASN1_OBJECT* oid = nullptr;
    int ptype = 0;
    const void* pval = nullptr;
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    const int sig_nid = OBJ_obj2nid(oid);
    if (sig_nid == NID_rsassaPss) {
        if (ptype != V_ASN1_SEQUENCE || !pval) return -1;
        const auto* seq = static_cast<const ASN1_STRING*>(pval);
        const unsigned char* p = ASN1_STRING_get0_data(seq);
        ossl::rsa_pss_params pss(d2i_RSA_PSS_PARAMS(nullptr, &p, ASN1_STRING_length(seq)));
        if (!pss) {
            ossl::drain_errors();
            return -1;
        }
        return pss->hashAlgorithm ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1;
    }
    int md_nid = NID_undef, pk_nid = NID_undef;
    if (OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) return -1;
    if (md_nid == NID_undef && pk_nid != NID_ED25519) return -1;
    return md_nid;
}

// MD5 and SHA-1 signatures are refused: collisions are practical (RFC 6151, RFC 9155; CA/B
// Baseline Requirements 7.1.3.2); the CSR's signature is our only proof of possession.
result<void> check_signature_digest(X509_REQ* req) {
    switch (signature_digest_nid(req)) {
    case NID_undef: // Ed25519
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha3_256:
    case NID_sha3_384:
    case NID_sha3_512: return {};
    case NID_md5:
    case NID_md5_sha1:
    case NID_md4:
    case NID_md2:
    case NID_sha1:
        return make_error(errc::invalid_csr,
                          "CSR is signed with a broken digest (MD5 or SHA-1); sign it with SHA-256 or stronger", "csr");
    default:
        return make_error(errc::invalid_csr,
                          "CSR signature algorithm not allowed; use SHA-256 or stronger with RSA or ECDSA, or Ed25519",
                          "csr");
    }
}

} // namespace

result<parsed_csr> parse_csr(std::string_view pem) {
    if (pem.size() > max_csr_bytes) return make_error(errc::invalid_csr, "CSR is larger than 64 KiB", "csr");
    if (pem.find("-----BEGIN CERTIFICATE REQUEST-----") == std::string_view::npos &&
        pem.find("-----BEGIN NEW CERTIFICATE REQUEST-----") == std::string_view::npos)
        return make_error(errc::invalid_csr, "CSR is not PEM (no BEGIN CERTIFICATE REQUEST line)", "csr");

    ossl::bio in = ossl::mem_bio(pem);
    ossl::x509_req req(in ? PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!req) {
        auto e = ossl::fail(errc::invalid_csr, "CSR does not parse (bad base64 or DER)");
        e.field = "csr";
        return e;
    }
    // X509_REQ_get_pubkey hands us a new reference.
    ossl::pkey key(X509_REQ_get_pubkey(req.get()));
    if (!key) {
        auto e = ossl::fail(errc::invalid_csr, "CSR public key does not parse");
        e.field = "csr";
        return e;
    }
    // RFC 2986 3: the signature proves possession of the private key; a CSR that does not
    // verify under its own key is refused.
    if (X509_REQ_verify(req.get(), key.get()) != 1) {
        auto e = ossl::fail(errc::invalid_csr, "CSR signature does not verify");
        e.field = "csr";
        return e;
    }
    if (auto ok = check_signature_digest(req.get()); !ok) return ok.error();
    if (auto ok = check_allowed_key(key.get()); !ok) {
        auto e = ok.error();
        e.field = "csr";
        return e;
    }

    parsed_csr out;
    auto subject = read_subject(X509_REQ_get_subject_name(req.get()));
    auto sans = subject ? requested_sans(req.get()) : result<subject_alt_names>(subject.error());
    if (!sans) return make_error(errc::invalid_csr, "unreadable CSR: " + sans.error().message, "csr");
    out.subject = std::move(*subject);
    out.sans = std::move(*sans);
    out.key_type = describe_key(key.get());
    auto req_pem = req_to_pem(req.get());
    if (!req_pem) return req_pem.error();
    out.pem = std::move(*req_pem);
    out.public_key = std::move(key);
    out.req = std::move(req);
    return out;
}

result<generated_csr> create_csr(const subject_fields& subject, const subject_alt_names& sans, key_type type) {
    auto name = build_name(subject);
    if (!name) return name.error();
    ossl::general_names names;
    if (!sans.empty()) {
        auto gn = build_general_names(sans);
        if (!gn) return gn.error();
        names = std::move(*gn);
    }

    auto key = generate_key(type);
    if (!key) return key.error();

    ossl::x509_req req(X509_REQ_new());
    // RFC 2986 4.1: "version is the version number, for compatibility with future revisions of
    // this document. It shall be 0 for this version of the standard."
    if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
        X509_REQ_set_pubkey(req.get(), key->get()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot build the CSR");
    if (names) {
        ossl::x509_ext_stack exts(sk_X509_EXTENSION_new_null());
        ossl::x509_ext san(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
        if (!exts || !san || sk_X509_EXTENSION_push(exts.get(), san.get()) <= 0)
            return ossl::fail(errc::crypto_failure, "cannot build the CSR extensions");
        san.release();
        if (X509_REQ_add_extensions(req.get(), exts.get()) != 1)
            return ossl::fail(errc::crypto_failure, "cannot build the CSR extensions");
    }
    if (X509_REQ_sign(req.get(), key->get(), signing_digest(key->get())) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot sign the CSR");

    auto key_pem = private_key_to_pem(key->get());
    if (!key_pem) return key_pem.error();

    generated_csr out;
    auto csr_pem = req_to_pem(req.get());
    if (!csr_pem) return csr_pem.error();
    out.csr_pem = std::move(*csr_pem);
    out.key_pem = std::move(*key_pem);
    out.key_type = describe_key(key->get());
    out.key = std::move(*key);
    return out;
}

} // namespace certmate
