#include "core/crl.hpp"

#include "core/keys.hpp"

#include <openssl/pem.h>

#include <ctime>

namespace certmate {

namespace {

// A signed CertificateList's DER with its PEM, number and dates: what each CRL build returns.
result<built_crl> finish_crl(std::string der, const crl_params& p) {
    built_crl out;
    out.der = std::move(der);
    auto pem = crl_pem_of(out.der);
    if (!pem) return pem.error();
    out.pem = std::move(*pem);
    out.crl_number = p.crl_number;
    out.this_update = std::chrono::floor<std::chrono::seconds>(p.this_update);
    out.next_update = std::chrono::floor<std::chrono::seconds>(p.next_update);
    return out;
}

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

    unsigned char* der = nullptr;
    int n = i2d_X509_CRL(crl.get(), &der);
    if (n <= 0) return ossl::fail(errc::crypto_failure, "cannot encode the CRL");
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return finish_crl(std::string(owned.get(), static_cast<std::size_t>(n)), p);
}

result<std::string> crl_pem_of(std::string_view der) {
    ossl::bio pem(BIO_new(BIO_s_mem()));
    if (!pem || PEM_write_bio(pem.get(), PEM_STRING_X509_CRL, "", reinterpret_cast<const unsigned char*>(der.data()),
                              static_cast<long>(der.size())) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot encode the CRL");
    return ossl::bio_to_string(pem.get());
}

namespace {

// One DER TLV after another (X.690 8.1: definite lengths of at most 4 octets).
struct der_reader {
    std::string_view in;
    struct tlv {
        unsigned char tag = 0;
        std::string_view content;
    };
    std::optional<tlv> next() {
        if (in.size() < 2) return std::nullopt;
        const auto tag = static_cast<unsigned char>(in[0]);
        std::size_t len = static_cast<unsigned char>(in[1]), header = 2;
        if (len & 0x80) {
            const std::size_t k = len & 0x7f;
            if (k == 0 || k > 4 || in.size() < 2 + k) return std::nullopt;
            len = 0;
            for (std::size_t i = 0; i < k; ++i) len = (len << 8) | static_cast<unsigned char>(in[2 + i]);
            header += k;
        }
        if (in.size() - header < len) return std::nullopt;
        tlv out{tag, in.substr(header, len)};
        in.remove_prefix(header + len);
        return out;
    }
};

// The fields of a CRL's tbsCertList: CertificateList ::= SEQUENCE { tbsCertList SEQUENCE {...},
// signatureAlgorithm, signatureValue } (RFC 5280 5.1).
std::optional<der_reader> tbs_fields(std::string_view der) {
    der_reader top{der};
    auto list = top.next();
    if (!list || list->tag != 0x30) return std::nullopt;
    der_reader in_list{list->content};
    auto tbs = in_list.next();
    if (!tbs || tbs->tag != 0x30) return std::nullopt;
    return der_reader{tbs->content};
}

} // namespace

std::optional<std::uint64_t> crl_number_of(std::string_view der) {
    // CertificateList ::= SEQUENCE { tbsCertList SEQUENCE { ..., crlExtensions [0] EXPLICIT
    // Extensions OPTIONAL }, ... } (RFC 5280 5.1); the fields before [0] are skipped whole.
    auto fields = tbs_fields(der);
    if (!fields) return std::nullopt;
    while (auto f = fields->next()) {
        if (f->tag != 0xa0) continue;
        der_reader wrapped{f->content};
        auto exts = wrapped.next();
        if (!exts || exts->tag != 0x30) return std::nullopt;
        der_reader each{exts->content};
        while (auto ext = each.next()) {
            // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
            if (ext->tag != 0x30) return std::nullopt;
            der_reader parts{ext->content};
            auto oid = parts.next();
            if (!oid || oid->tag != 0x06) return std::nullopt;
            if (oid->content != std::string_view("\x55\x1d\x14", 3)) continue; // id-ce-cRLNumber 2.5.29.20
            auto value = parts.next();
            if (value && value->tag == 0x01) value = parts.next();
            if (!value || value->tag != 0x04) return std::nullopt;
            der_reader inner{value->content};
            auto n = inner.next();
            // CRLNumber ::= INTEGER (0..MAX): non-negative; here at most 64 bits.
            if (!n || n->tag != 0x02 || n->content.empty() || (static_cast<unsigned char>(n->content[0]) & 0x80) ||
                n->content.size() > 9 || (n->content.size() == 9 && n->content[0] != 0))
                return std::nullopt;
            std::uint64_t v = 0;
            for (char c : n->content) v = (v << 8) | static_cast<unsigned char>(c);
            return v;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<std::string_view> crl_listed_entries(std::string_view der) {
    // TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier,
    // issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF
    // SEQUENCE OPTIONAL, crlExtensions [0] EXPLICIT Extensions OPTIONAL } (RFC 5280 5.1).
    auto tbs = tbs_fields(der);
    if (!tbs) return std::nullopt;
    der_reader& fields = *tbs;
    auto f = fields.next();
    if (f && f->tag == 0x02) f = fields.next(); // version
    for (int seq = 0; seq < 2; ++seq) {         // signature, issuer
        if (!f || f->tag != 0x30) return std::nullopt;
        f = fields.next();
    }
    auto is_time = [](const auto& t) { return t && (t->tag == 0x17 || t->tag == 0x18); };
    if (!is_time(f)) return std::nullopt; // thisUpdate
    f = fields.next();
    if (is_time(f)) f = fields.next(); // nextUpdate
    if (f && f->tag == 0x30) return f->content;
    if (f && f->tag != 0xa0) return std::nullopt;
    return std::string_view{};
}

result<built_crl> read_published_crl(const certificate_authority& ca, std::string der, std::string pem) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509_crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!crl || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size())
        return ossl::fail(errc::crypto_failure, "the published CRL does not parse");
    if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.cert())) != 1)
        return ossl::fail(errc::crypto_failure, "the published CRL is not signed by this CA");
    int crit = 0;
    ossl::asn1_integer number(
        static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &crit, nullptr)));
    std::uint64_t n = 0;
    if (!number || ASN1_INTEGER_get_uint64(&n, number.get()) != 1)
        return ossl::fail(errc::crypto_failure, "the published CRL has no usable CRL number");
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    if (!next) return make_error(errc::crypto_failure, "the published CRL has no nextUpdate");
    built_crl out;
    out.der = std::move(der);
    out.pem = std::move(pem);
    out.crl_number = n;
    out.this_update = from_asn1_time(X509_CRL_get0_lastUpdate(crl.get()));
    out.next_update = from_asn1_time(next);
    return out;
}

// ---- pre-encoded entries and the signer (RFC 5280 5.1, X.690 DER) ----

namespace {

void der_length(std::string& out, std::size_t n) {
    if (n < 0x80) {
        out += static_cast<char>(n);
        return;
    }
    unsigned char buf[sizeof(std::size_t)];
    int k = 0;
    for (; n != 0; n >>= 8) buf[k++] = static_cast<unsigned char>(n & 0xff);
    out += static_cast<char>(0x80 | k);
    while (k > 0) out += static_cast<char>(buf[--k]);
}

void der_tlv(std::string& out, unsigned char tag, std::string_view content) {
    out += static_cast<char>(tag);
    der_length(out, content.size());
    out += content;
}

std::string der_wrap(unsigned char tag, std::string_view content) {
    std::string out;
    out.reserve(content.size() + 6);
    der_tlv(out, tag, content);
    return out;
}

// A non-negative INTEGER from big-endian magnitude bytes (leading zeros stripped): minimal two's
// complement, a 0x00 in front when the top bit is set (X.690 8.3).
void der_unsigned(std::string& out, std::string_view magnitude) {
    while (magnitude.size() > 1 && magnitude.front() == '\0') magnitude.remove_prefix(1);
    if (magnitude.empty()) magnitude = std::string_view("\0", 1);
    const bool pad = (static_cast<unsigned char>(magnitude.front()) & 0x80) != 0;
    out += '\x02';
    der_length(out, magnitude.size() + (pad ? 1 : 0));
    if (pad) out += '\0';
    out += magnitude;
}

// Decimal digits (no sign, no leading zero) to big-endian bytes; nullopt when not such a number.
std::optional<std::string> decimal_magnitude(std::string_view dec) {
    if (dec.empty() || dec.size() > 200 || (dec.size() > 1 && dec.front() == '0')) return std::nullopt;
    std::string le; // little-endian bytes
    for (char c : dec) {
        if (c < '0' || c > '9') return std::nullopt;
        unsigned carry = static_cast<unsigned>(c - '0');
        for (auto& b : le) {
            unsigned v = static_cast<unsigned char>(b) * 10u + carry;
            b = static_cast<char>(v & 0xff);
            carry = v >> 8;
        }
        if (carry != 0) le += static_cast<char>(carry);
    }
    return std::string(le.rbegin(), le.rend());
}

// RFC 5280 5.1.2.4 (UTCTime for 1950..2049, else GeneralizedTime), as ASN1_TIME_set picks;
// `generalized` forces GeneralizedTime (invalidityDate, 5.3.2).
void der_time(std::string& out, time_point t, bool generalized = false) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
    std::tm tm{};
    gmtime_r(&tt, &tm);
    const int year = tm.tm_year + 1900;
    char buf[32];
    int n = 0;
    if (!generalized && year >= 1950 && year < 2050) {
        n = std::snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
        out += '\x17';
    } else {
        n = std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                          tm.tm_min, tm.tm_sec);
        out += '\x18';
    }
    der_length(out, static_cast<std::size_t>(n));
    out.append(buf, static_cast<std::size_t>(n));
}

// Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE (absent), extnValue OCTET STRING }.
std::string der_extension(std::string_view oid_der, std::string_view value_der) {
    std::string body(oid_der);
    der_tlv(body, 0x04, value_der);
    return der_wrap(0x30, body);
}

constexpr std::string_view oid_crl_reason{"\x06\x03\x55\x1d\x15", 5};      // 2.5.29.21
constexpr std::string_view oid_invalidity_date{"\x06\x03\x55\x1d\x18", 5}; // 2.5.29.24
constexpr std::string_view oid_crl_number{"\x06\x03\x55\x1d\x14", 5};      // 2.5.29.20

template <class T, class F>
result<std::string> i2d_string(const T* v, F i2d, const char* what) {
    unsigned char* der = nullptr;
    int n = i2d(v, &der);
    if (n <= 0) return ossl::fail(errc::crypto_failure, what);
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return std::string(owned.get(), static_cast<std::size_t>(n));
}

} // namespace

std::vector<crl_entry> crl_entries_of(const cert_record& r) {
    std::vector<crl_entry> out;
    if (r.revocation.revoked)
        out.push_back({r.serial_number, r.revocation.revoked_at.value_or(time_point{}),
                       r.revocation.reason.value_or(revocation_reason::unspecified), std::nullopt});
    for (const auto& h : r.history)
        if (h.revoked)
            out.push_back({h.serial_number, h.revoked_at.value_or(h.superseded_at),
                           h.reason.value_or(revocation_reason::superseded), std::nullopt});
    return out;
}

result<std::string> encode_crl_entry(const crl_entry& e) {
    // As decimal_to_asn1_integer: positive, at most 20 octets (RFC 5280 4.1.2.2); canonical
    // decimal only, since the set orders serials by their decimal text.
    auto mag = decimal_magnitude(e.serial_decimal);
    if (!mag || mag->empty() || mag->size() > 20)
        return make_error(errc::invalid_argument, "serial number must be a positive decimal of at most 20 octets",
                          "serial_number");
    std::string body;
    der_unsigned(body, *mag);
    der_time(body, e.revoked_at);
    std::string exts;
    if (e.reason != revocation_reason::unspecified) { // RFC 5280 5.3.1, as build_crl
        std::string code("\x0a\x01", 2);
        code += static_cast<char>(static_cast<int>(e.reason));
        exts += der_extension(oid_crl_reason, code);
    }
    if (e.invalidity_date) {
        std::string when;
        der_time(when, *e.invalidity_date, true);
        exts += der_extension(oid_invalidity_date, when);
    }
    if (!exts.empty()) der_tlv(body, 0x30, exts);
    return der_wrap(0x30, body);
}

result<void> crl_entry_set::put(const crl_entry& e) {
    auto der = encode_crl_entry(e);
    if (!der) return der.error();
    auto [it, fresh] = entries_.try_emplace(e.serial_decimal);
    bytes_ -= it->second.size();
    bytes_ += der->size();
    it->second = std::move(*der);
    return {};
}

void crl_entry_set::erase(const std::string& serial_decimal) {
    auto it = entries_.find(serial_decimal);
    if (it == entries_.end()) return;
    bytes_ -= it->second.size();
    entries_.erase(it);
}

std::string crl_entry_set::concatenated() const {
    std::string out;
    out.reserve(bytes_);
    for (const auto& [serial, der] : entries_) out += der;
    return out;
}

result<std::shared_ptr<const crl_signer>> crl_signer::make(std::shared_ptr<const certificate_authority> ca) {
    auto out = std::make_shared<crl_signer>();
    const time_point now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    // The AlgorithmIdentifier X509_CRL_sign writes for this key and digest (parameters included).
    auto probe = build_crl(*ca, {}, crl_params{1, now, now + std::chrono::hours(1)});
    if (!probe) return probe.error();
    const auto* p = reinterpret_cast<const unsigned char*>(probe->der.data());
    ossl::x509_crl parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(probe->der.size())));
    if (!parsed) return ossl::fail(errc::crypto_failure, "cannot parse the probe CRL");
    const ASN1_BIT_STRING* sig = nullptr;
    const X509_ALGOR* alg = nullptr;
    X509_CRL_get0_signature(parsed.get(), &sig, &alg);
    auto alg_der = i2d_string(alg, i2d_X509_ALGOR, "cannot encode the signature algorithm");
    if (!alg_der) return alg_der.error();
    auto issuer = i2d_string(X509_get_subject_name(ca->cert()), i2d_X509_NAME, "cannot encode the issuer name");
    if (!issuer) return issuer.error();
    // RFC 5280 5.2.1, as build_crl: the key identifier method, the CA's subject key identifier.
    int idx = X509_CRL_get_ext_by_NID(parsed.get(), NID_authority_key_identifier, -1);
    if (idx < 0) return make_error(errc::crypto_failure, "the probe CRL has no authority key identifier");
    auto aki = i2d_string(X509_CRL_get_ext(parsed.get(), idx), i2d_X509_EXTENSION,
                          "cannot encode the authority key identifier");
    if (!aki) return aki.error();
    out->ca_ = std::move(ca);
    out->alg_der_ = std::move(*alg_der);
    out->issuer_der_ = std::move(*issuer);
    out->aki_ext_der_ = std::move(*aki);
    return std::shared_ptr<const crl_signer>(std::move(out));
}

result<built_crl> crl_signer::build(std::string_view entries_der, const crl_params& p) const {
    if (p.next_update <= p.this_update)
        return make_error(errc::invalid_argument, "nextUpdate must be after thisUpdate", "next_update");
    // TBSCertList (RFC 5280 5.1.2): version v2 (5.1.2.1), signature, issuer, thisUpdate,
    // nextUpdate, revokedCertificates (absent when empty), [0] crlExtensions: AKI (5.2.1), CRL
    // number (5.2.3), in build_crl's order.
    std::string head("\x02\x01\x01", 3);
    head += alg_der_;
    head += issuer_der_;
    der_time(head, p.this_update);
    der_time(head, p.next_update);
    std::string number;
    {
        std::string mag;
        for (int shift = 56; shift >= 0; shift -= 8) mag += static_cast<char>((p.crl_number >> shift) & 0xff);
        der_unsigned(number, mag);
    }
    std::string exts = aki_ext_der_ + der_extension(oid_crl_number, number);
    std::string tail = der_wrap(0xa0, der_wrap(0x30, exts));
    std::string list_header;
    if (!entries_der.empty()) {
        list_header += '\x30';
        der_length(list_header, entries_der.size());
    }
    const std::size_t body = head.size() + list_header.size() + entries_der.size() + tail.size();
    std::string tbs;
    tbs.reserve(body + 8);
    tbs += '\x30';
    der_length(tbs, body);
    tbs += head;
    tbs += list_header;
    tbs += entries_der;
    tbs += tail;

    ossl::md_ctx ctx(EVP_MD_CTX_new());
    std::size_t sig_len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(tbs.data());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, ca_->digest(), nullptr, ca_->key()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &sig_len, data, tbs.size()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot sign the CRL");
    std::string sig(sig_len + 1, '\0'); // BIT STRING: no unused bits, then the signature
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data() + 1), &sig_len, data, tbs.size()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot sign the CRL");
    sig.resize(sig_len + 1);

    std::string bits;
    der_tlv(bits, 0x03, sig);
    std::string der;
    der.reserve(tbs.size() + alg_der_.size() + bits.size() + 8);
    der += '\x30';
    der_length(der, tbs.size() + alg_der_.size() + bits.size());
    der += tbs;
    der += alg_der_;
    der += bits;
    return finish_crl(std::move(der), p);
}

} // namespace certmate
