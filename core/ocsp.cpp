#include "core/ocsp.hpp"

#include "core/encoding.hpp"
#include "core/keys.hpp"

#include <openssl/objects.h>

#include <cstring>

namespace certmate {

namespace {

// The DER of an OCSPRequest, parsed; nullptr when it does not parse or has trailing bytes.
ossl::ocsp_request decode_request(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    const auto* end = p + der.size();
    ossl::ocsp_request req(d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(der.size())));
    if (req && p != end) req.reset();
    return req;
}

// The DER of `resp`; errc::crypto_failure when it does not encode.
result<std::string> response_der(OCSP_RESPONSE* resp) {
    unsigned char* out = nullptr;
    const int len = resp ? i2d_OCSP_RESPONSE(resp, &out) : -1;
    if (len <= 0) return ossl::fail(errc::crypto_failure, "cannot encode OCSP response");
    ossl::openssl_string owned(reinterpret_cast<char*>(out));
    return std::string(owned.get(), static_cast<std::size_t>(len));
}

} // namespace

result<ocsp_responder> issue_ocsp_responder(const certificate_authority& ca, time_point now, const rng_fn& rng,
                                            int validity_days) {
    if (validity_days < 1) return make_error(errc::invalid_argument, "OCSP responder validity must be at least a day");
    auto key = generate_key(key_type::ec_p256);
    if (!key) return key.error();
    auto serial_text = random_serial(rng);
    if (!serial_text) return serial_text.error();
    auto serial = decimal_to_asn1_integer(*serial_text);
    if (!serial) return serial.error();
    time_point not_after = std::min(now + std::chrono::hours(24) * validity_days, ca.not_after());
    ossl::x509_name name(X509_NAME_new());
    if (!name ||
        X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("CertMate OCSP Responder"), -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("CertMate"),
                                   -1, -1, 0) != 1)
        return ossl::fail(errc::crypto_failure, "cannot build responder certificate");
    auto draft = new_v3_certificate(serial->get(), ca.cert(), name.get(), now - std::chrono::minutes(1), not_after,
                                    key->get(), "cannot build responder certificate");
    if (!draft) return draft.error();
    auto& [cert, ctx] = *draft;
    // RFC 6960 4.2.2.2: a delegated responder's certificate "MUST ... include a value of
    // id-kp-OCSPSigning in an extended key usage extension".
    for (auto [nid, value] :
         {std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_key_usage, "critical,digitalSignature"},
          std::pair{NID_ext_key_usage, "OCSPSigning"}, std::pair{NID_subject_key_identifier, "hash"},
          std::pair{NID_authority_key_identifier, "keyid:always"}, std::pair{NID_id_pkix_OCSP_noCheck, "ignored"}}) {
        if (auto r = add_config_extension(cert.get(), &ctx, nid, value); !r) return r.error();
    }
    if (X509_sign(cert.get(), ca.key(), ca.digest()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot sign responder certificate");
    auto key_pem = private_key_to_pem(key->get());
    if (!key_pem) return key_pem.error();
    auto cert_pem = cert_to_pem(cert.get());
    if (!cert_pem) return cert_pem.error();
    ocsp_responder r;
    r.cert_pem = std::move(*cert_pem);
    r.key_pem = std::move(*key_pem);
    r.not_after = not_after;
    r.cert = std::move(cert);
    r.key = std::move(*key);
    return r;
}

result<ocsp_responder> load_ocsp_responder(const certificate_authority& ca, std::string_view cert_pem,
                                           std::string_view key_pem) {
    auto cert = load_cert_pem(cert_pem);
    if (!cert) return cert.error();
    auto key = load_private_key(key_pem);
    if (!key) return key.error();
    if (X509_check_private_key(cert->get(), key->get()) != 1)
        return ossl::fail(errc::crypto_failure, "OCSP responder key does not match its certificate");
    if (X509_verify(cert->get(), X509_get0_pubkey(ca.cert())) != 1)
        return ossl::fail(errc::crypto_failure, "OCSP responder certificate was not issued by this CA");
    // RFC 6960 4.2.2.2: the delegated signer's certificate MUST include id-kp-OCSPSigning.
    if (!(X509_get_extended_key_usage(cert->get()) & XKU_OCSP_SIGN))
        return ossl::fail(errc::crypto_failure, "OCSP responder certificate lacks id-kp-OCSPSigning");
    ocsp_responder r;
    r.not_after = from_asn1_time(X509_get0_notAfter(cert->get()));
    r.cert_pem = std::string(cert_pem);
    r.key_pem = std::string(key_pem);
    r.cert = std::move(*cert);
    r.key = std::move(*key);
    return r;
}

result<ocsp_request_info> parse_ocsp_request(std::string_view der, const certificate_authority& ca) {
    // The queue is drained on every way out: a failed d2i must not linger for the next caller.
    auto malformed = [](const char* why) {
        ossl::drain_errors();
        return make_error(errc::invalid_argument, why);
    };
    if (der.empty() || der.size() > 64 * 1024) return malformed("empty or oversized OCSP request");
    auto req = decode_request(der);
    if (!req) return malformed("OCSP request does not parse");
    ocsp_request_info info;
    info.der = std::string(der);
    const int n = OCSP_request_onereq_count(req.get());
    if (n <= 0) return malformed("OCSP request lists no certificate");
    if (n > 64) return malformed("OCSP request lists too many certificates");
    for (int i = 0; i < n; ++i) {
        OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), i));
        ASN1_OCTET_STRING* name_hash = nullptr;
        ASN1_OBJECT* md_obj = nullptr;
        ASN1_OCTET_STRING* key_hash = nullptr;
        ASN1_INTEGER* serial = nullptr;
        if (!id || OCSP_id_get0_info(&name_hash, &md_obj, &key_hash, &serial, id) != 1 || !serial)
            return malformed("OCSP request has an unreadable CertID");
        ocsp_query q;
        q.hash_nid = OBJ_obj2nid(md_obj);
        auto serial_text = serial_to_decimal(serial);
        if (!serial_text) return malformed("OCSP request has an unreadable serial number");
        q.serial_decimal = std::move(*serial_text);
        // RFC 6960 4.1.1: the CertID names the issuer by the hashes of its name and key; ours are
        // computed once for SHA-1 and SHA-256 (ca.hpp), other digests per request.
        auto same = [](const ASN1_OCTET_STRING* a, const std::string& b) {
            return a && static_cast<std::size_t>(ASN1_STRING_length(a)) == b.size() &&
                   std::memcmp(ASN1_STRING_get0_data(a), b.data(), b.size()) == 0;
        };
        if (const auto* h = ca.certid_hashes_for(q.hash_nid)) {
            q.our_issuer = same(name_hash, h->name_hash) && same(key_hash, h->key_hash);
        } else if (const EVP_MD* md = EVP_get_digestbynid(q.hash_nid)) {
            ossl::ocsp_certid ours(
                OCSP_cert_id_new(md, X509_get_subject_name(ca.cert()), X509_get0_pubkey_bitstr(ca.cert()), serial));
            q.our_issuer = ours && OCSP_id_issuer_cmp(ours.get(), id) == 0;
        }
        info.queries.push_back(std::move(q));
    }
    int idx = OCSP_REQUEST_get_ext_by_NID(req.get(), NID_id_pkix_OCSP_Nonce, -1);
    if (idx >= 0) {
        X509_EXTENSION* ext = OCSP_REQUEST_get_ext(req.get(), idx);
        ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
        // RFC 8954 2.1: "Nonce ::= OCTET STRING(SIZE(1..32))".
        const unsigned char* p = ASN1_STRING_get0_data(data);
        ossl::asn1_octet_string inner(d2i_ASN1_OCTET_STRING(nullptr, &p, ASN1_STRING_length(data)));
        const int len = inner ? ASN1_STRING_length(inner.get()) : ASN1_STRING_length(data);
        if (len < 1 || len > 32) return malformed("OCSP nonce must be 1 to 32 octets");
        info.has_nonce = true;
    }
    ossl::drain_errors();
    return info;
}

result<std::string> build_ocsp_response(const ocsp_responder& responder, std::string_view request_der,
                                        const std::vector<ocsp_single_answer>& answers, time_point this_update,
                                        time_point next_update) {
    auto req = decode_request(request_der);
    if (!req) return ossl::fail(errc::invalid_argument, "OCSP request does not parse");
    const int n = OCSP_request_onereq_count(req.get());
    if (n != static_cast<int>(answers.size()))
        return make_error(errc::internal, "OCSP answers do not match the request");
    ossl::ocsp_basicresp bs(OCSP_BASICRESP_new());
    auto tu = to_asn1_time(this_update);
    auto nu = to_asn1_time(next_update);
    if (!bs || !tu || !nu) return ossl::fail(errc::crypto_failure, "cannot allocate OCSP response");
    for (int i = 0; i < n; ++i) {
        OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), i));
        const auto& a = answers[static_cast<std::size_t>(i)];
        int status = V_OCSP_CERTSTATUS_UNKNOWN;
        int reason = OCSP_REVOKED_STATUS_NOSTATUS;
        ossl::asn1_time revoked_at;
        if (a.status == ocsp_single_answer::state::good) {
            status = V_OCSP_CERTSTATUS_GOOD;
        } else if (a.status == ocsp_single_answer::state::revoked) {
            status = V_OCSP_CERTSTATUS_REVOKED;
            revoked_at = to_asn1_time(a.revoked_at);
            if (a.reason) reason = static_cast<int>(*a.reason);
        }
        if (!OCSP_basic_add1_status(bs.get(), id, status, reason, revoked_at.get(), tu.get(), nu.get()))
            return ossl::fail(errc::crypto_failure, "cannot add OCSP single response");
    }
    // RFC 8954 / RFC 6960 4.4.1: the nonce of the request is echoed in the response.
    if (OCSP_copy_nonce(bs.get(), req.get()) <= 0) return ossl::fail(errc::crypto_failure, "cannot copy OCSP nonce");
    // RFC 5019 2.2.3: ResponderID byKey; the signer certificate is included so clients can verify it.
    if (OCSP_basic_sign(bs.get(), responder.cert.get(), responder.key.get(), EVP_sha256(), nullptr, OCSP_RESPID_KEY) !=
        1)
        return ossl::fail(errc::crypto_failure, "cannot sign OCSP response");
    ossl::ocsp_response resp(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs.get()));
    if (!resp) return ossl::fail(errc::crypto_failure, "cannot create OCSP response");
    return response_der(resp.get());
}

std::string ocsp_error_response(ocsp_response_status s) {
    // RFC 6960 4.2.1: OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0]
    // EXPLICIT OPTIONAL }; an error carries no responseBytes, so its DER is fixed: SEQUENCE (3 bytes)
    // { ENUMERATED (1 byte) status }. Written directly, it cannot fail.
    return std::string{'\x30', '\x03', '\x0a', '\x01', static_cast<char>(s)};
}

std::optional<std::string> decode_ocsp_get_path(std::string_view unescaped) {
    std::string b64(unescaped);
    for (auto& c : b64) {
        if (c == '-') c = '+';
        if (c == '_') c = '/';
    }
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    std::string out;
    unsigned buf = 0;
    int bits = 0;
    for (char c : b64) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return std::nullopt;
        buf = (buf << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xff);
        }
    }
    if (bits >= 6) return std::nullopt; // a lone trailing character
    return out;
}

} // namespace certmate
