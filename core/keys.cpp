#include "core/keys.hpp"

#include "core/encoding.hpp"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <ctime>

namespace certmate {

namespace {

constexpr std::size_t max_sans = 100;

// PEM password callback: never prompts; `u` points at the optional passphrase.
int passphrase_cb(char* buf, int size, int, void* u) {
    const auto* pass = static_cast<const std::optional<std::string_view>*>(u);
    if (!pass || !pass->has_value()) return -1;
    const auto& p = **pass;
    if (p.size() > static_cast<std::size_t>(size)) return -1;
    std::memcpy(buf, p.data(), p.size());
    return static_cast<int>(p.size());
}

bool looks_encrypted(std::string_view pem) {
    return pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
           pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
}

result<std::string> bn_to_decimal(const BIGNUM* bn) {
    ossl::openssl_string s(bn ? BN_bn2dec(bn) : nullptr);
    if (!s) return ossl::fail(errc::crypto_failure, "cannot write a number in decimal");
    return std::string(s.get());
}

// errc::invalid_argument when the string does not convert (a BMPString of odd length, ...).
result<std::string> asn1_string_utf8(const ASN1_STRING* s) {
    unsigned char* out = nullptr;
    int n = s ? ASN1_STRING_to_UTF8(&out, s) : -1;
    if (n < 0) return ossl::fail(errc::invalid_argument, "a name does not convert to UTF-8");
    ossl::openssl_string owned(reinterpret_cast<char*>(out));
    return std::string(owned.get(), static_cast<std::size_t>(n));
}

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A DNS name of LDH labels (underscore tolerated), optionally with a leading "*." wildcard.
bool valid_dns_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    if (s.starts_with("*.")) s.remove_prefix(2);
    if (s.empty() || s.back() == '.') return false;
    std::size_t start = 0;
    while (start <= s.size()) {
        std::size_t end = s.find('.', start);
        if (end == std::string_view::npos) end = s.size();
        auto label = s.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
        start = end + 1;
    }
    return true;
}

// RFC 5322 addr-spec, loosely: one '@', non-empty local part and a domain, printable ASCII.
bool valid_email(std::string_view s) {
    if (s.size() < 3 || s.size() > 254) return false;
    auto at = s.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 >= s.size() || s.find('@', at + 1) != std::string_view::npos)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':' and something.
bool valid_uri(std::string_view s) {
    if (s.empty() || s.size() > 2048 || !is_alpha(s[0])) return false;
    auto colon = s.find(':');
    if (colon == std::string_view::npos || colon + 1 >= s.size()) return false;
    for (char c : s.substr(0, colon))
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

result<ossl::general_name> ip_general_name(std::string_view text) {
    std::array<unsigned char, 16> buf{};
    std::string z(text);
    int len = 0;
    if (inet_pton(AF_INET, z.c_str(), buf.data()) == 1)
        len = 4;
    else if (inet_pton(AF_INET6, z.c_str(), buf.data()) == 1)
        len = 16;
    else
        return make_error(errc::invalid_argument, "subject alternative name IP address does not parse: " + z,
                          "subject_alt_names");
    ossl::asn1_octet_string oct(ASN1_OCTET_STRING_new());
    ossl::general_name gn(GENERAL_NAME_new());
    if (!oct || !gn || ASN1_OCTET_STRING_set(oct.get(), buf.data(), len) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode a subject alternative name");
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, oct.release());
    return gn;
}

} // namespace

result<ossl::pkey> generate_key(key_type type) {
    EVP_PKEY* raw = nullptr;
    switch (type) {
    case key_type::rsa2048: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}); break;
    case key_type::rsa3072: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072}); break;
    case key_type::rsa4096: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{4096}); break;
    case key_type::ec_p256: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case key_type::ec_p384: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
    case key_type::ed25519: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
    }
    ossl::pkey key(raw);
    if (!key) return ossl::fail(errc::crypto_failure, "key generation failed");
    return key;
}

result<std::string> private_key_to_pem(EVP_PKEY* key, std::optional<std::string_view> passphrase) {
    ossl::bio out(BIO_new(BIO_s_mem()));
    if (!out || !key) return ossl::fail(errc::crypto_failure, "cannot encode the private key");
    int ok = 0;
    if (passphrase) {
        if (passphrase->empty()) return make_error(errc::invalid_argument, "the passphrase is empty", "passphrase");
        // PKCS#8 with PBES2: PBKDF2 (HMAC-SHA256) and AES-256-CBC.
        ok = PEM_write_bio_PKCS8PrivateKey(out.get(), key, EVP_aes_256_cbc(), passphrase->data(),
                                           static_cast<int>(passphrase->size()), nullptr, nullptr);
    } else {
        ok = PEM_write_bio_PKCS8PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    }
    if (ok != 1) return ossl::fail(errc::crypto_failure, "cannot encode the private key");
    return ossl::bio_to_string(out.get());
}

result<ossl::pkey> load_private_key(std::string_view pem, std::optional<std::string_view> passphrase) {
    bool encrypted = looks_encrypted(pem);
    if (encrypted && !passphrase)
        return make_error(errc::bad_passphrase, "the private key is encrypted and no passphrase was given");
    ossl::bio in = ossl::mem_bio(pem);
    if (!in) return ossl::fail(errc::crypto_failure, "cannot read the private key");
    ossl::pkey key(PEM_read_bio_PrivateKey(in.get(), nullptr, passphrase_cb, &passphrase));
    if (!key) {
        if (encrypted) return ossl::fail(errc::bad_passphrase, "wrong passphrase for the private key");
        return ossl::fail(errc::crypto_failure, "the private key does not parse");
    }
    return key;
}

bool private_key_pem_encrypted(std::string_view pem) {
    std::size_t blocks = 0;
    for (auto p = pem.find("-----BEGIN "); p != std::string_view::npos; p = pem.find("-----BEGIN ", p + 1)) ++blocks;
    if (blocks != 1 || !looks_encrypted(pem)) return false;
    // Whatever the text says, a key that loads without a passphrase is plain.
    ossl::bio in = ossl::mem_bio(pem);
    if (!in) return false;
    const std::optional<std::string_view> none;
    ossl::pkey key(
        PEM_read_bio_PrivateKey(in.get(), nullptr, passphrase_cb, const_cast<std::optional<std::string_view>*>(&none)));
    ossl::drain_errors();
    return !key;
}

result<std::string> public_key_to_pem(EVP_PKEY* key) {
    ossl::bio out(BIO_new(BIO_s_mem()));
    if (!out || !key || PEM_write_bio_PUBKEY(out.get(), key) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode the public key");
    return ossl::bio_to_string(out.get());
}

std::string describe_key(EVP_PKEY* key) {
    if (!key) return "unknown";
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return "rsa" + std::to_string(EVP_PKEY_get_bits(key));
    case EVP_PKEY_ED25519: return "ed25519";
    case EVP_PKEY_ED448: return "ed448";
    case EVP_PKEY_EC: {
        char name[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(key, name, sizeof name, &len) != 1) {
            ossl::drain_errors();
            return "ec";
        }
        std::string_view n(name, len);
        if (n == "prime256v1" || n == "P-256" || n == "secp256r1") return "ec-p256";
        if (n == "secp384r1" || n == "P-384") return "ec-p384";
        if (n == "secp521r1" || n == "P-521") return "ec-p521";
        return "ec-" + std::string(n);
    }
    default: return "unknown";
    }
}

result<void> check_allowed_key(EVP_PKEY* key) {
    if (!key) return make_error(errc::unsupported_key, "no public key");
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(key);
        if (bits < 2048)
            return make_error(errc::unsupported_key,
                              "RSA key of " + std::to_string(bits) + " bits is too small (at least 2048 required)");
        // Bound the work a submitted key can cost us.
        if (bits > 16384)
            return make_error(errc::unsupported_key, "RSA key of " + std::to_string(bits) + " bits is too large");
        return {};
    }
    case EVP_PKEY_ED25519: return {};
    case EVP_PKEY_EC: {
        // RFC 5480 2.1.1: "specifiedCurve ... MUST NOT be used in PKIX"; explicit parameters
        // also let a key pass for a named curve it is not (CVE-2020-0601).
        char enc[32] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof enc, &len) != 1 ||
            std::string_view(enc, len) != OSSL_PKEY_EC_ENCODING_GROUP) {
            ossl::drain_errors();
            return make_error(errc::unsupported_key,
                              "EC key with explicit curve parameters not allowed; use a named curve (P-256 or P-384)");
        }
        auto d = describe_key(key);
        if (d == "ec-p256" || d == "ec-p384") return {};
        return make_error(errc::unsupported_key, "EC curve not allowed (" + d + "); use P-256 or P-384");
    }
    default:
        return make_error(errc::unsupported_key, "key type not allowed (" + describe_key(key) +
                                                     "); use RSA >= 2048, EC P-256/P-384 or Ed25519");
    }
}

result<std::string> cert_to_pem(X509* cert) {
    ossl::bio out(BIO_new(BIO_s_mem()));
    if (!out || !cert || PEM_write_bio_X509(out.get(), cert) != 1)
        return ossl::fail(errc::crypto_failure, "cannot encode the certificate as PEM");
    return ossl::bio_to_string(out.get());
}

result<std::string> cert_to_der(X509* cert) {
    unsigned char* der = nullptr;
    int n = cert ? i2d_X509(cert, &der) : -1;
    if (n <= 0) return ossl::fail(errc::crypto_failure, "cannot encode the certificate as DER");
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return std::string(owned.get(), static_cast<std::size_t>(n));
}

result<ossl::x509> load_cert_pem(std::string_view pem) {
    ossl::bio in = ossl::mem_bio(pem);
    ossl::x509 cert(in ? PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert) return ossl::fail(errc::invalid_argument, "not a PEM certificate");
    return cert;
}

result<std::vector<std::string>> certificate_host_names(std::string_view pem) {
    auto cert = load_cert_pem(pem);
    if (!cert) return cert.error();
    std::vector<std::string> out;
    auto subject = read_subject(X509_get_subject_name(cert->get()));
    if (!subject) return subject.error();
    if (!subject->common_name.empty()) out.push_back(subject->common_name);
    ossl::general_names names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
    auto sans = read_sans(names.get());
    if (!sans) return sans.error();
    out.insert(out.end(), sans->dns.begin(), sans->dns.end());
    out.insert(out.end(), sans->ip.begin(), sans->ip.end());
    return out;
}

result<ossl::x509> load_cert_der(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509 cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert) return ossl::fail(errc::invalid_argument, "not a DER certificate");
    return cert;
}

result<std::string> fingerprint_sha256(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1)
        return ossl::fail(errc::crypto_failure, "cannot compute the certificate fingerprint");
    return hex_encode({md, n});
}

result<std::string> serial_to_decimal(const ASN1_INTEGER* serial) {
    // A non-negative serial of at most 32 octets (RFC 5280 4.1.2.2 allows 20) is written here:
    // base-10^9 long division on 32-bit limbs, without BN_bn2dec's allocations (it runs for
    // every OCSP request).
    if (serial && ASN1_STRING_type(serial) == V_ASN1_INTEGER && ASN1_STRING_length(serial) <= 32) {
        const unsigned char* b = ASN1_STRING_get0_data(serial);
        const int len = ASN1_STRING_length(serial);
        std::uint32_t limbs[8] = {};
        int n = (len + 3) / 4;
        for (int i = 0; i < len; ++i) { // big-endian bytes into big-endian limbs
            const int from_end = len - 1 - i;
            limbs[n - 1 - from_end / 4] |= static_cast<std::uint32_t>(b[i]) << (8 * (from_end % 4));
        }
        int first = 0;
        while (first < n && limbs[first] == 0) ++first;
        if (first == n) return std::string("0");
        char digits[80];
        int pos = sizeof digits;
        while (first < n) {
            std::uint64_t rem = 0;
            for (int i = first; i < n; ++i) {
                const std::uint64_t cur = (rem << 32) | limbs[i];
                limbs[i] = static_cast<std::uint32_t>(cur / 1000000000u);
                rem = cur % 1000000000u;
            }
            while (first < n && limbs[first] == 0) ++first;
            for (int k = 0; k < 9 && (first < n || rem != 0); ++k) { // no leading zeros in the last group
                digits[--pos] = static_cast<char>('0' + rem % 10);
                rem /= 10;
            }
        }
        return std::string(digits + pos, sizeof digits - static_cast<std::size_t>(pos));
    }
    ossl::bignum bn(serial ? ASN1_INTEGER_to_BN(serial, nullptr) : nullptr);
    if (!bn) return ossl::fail(errc::crypto_failure, "cannot read the serial number");
    return bn_to_decimal(bn.get());
}

std::optional<std::string> normalize_serial(std::string_view text) {
    // RFC 5280 4.1.2.2: "Conforming CAs MUST NOT use serialNumber values longer than 20 octets."
    BIGNUM* raw = nullptr;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        auto hex = text.substr(2);
        if (hex.size() > 40 ||
            !std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
            return std::nullopt;
        std::string z(hex);
        if (BN_hex2bn(&raw, z.c_str()) == 0) return std::nullopt;
    } else {
        if (text.empty() || text.size() > 49 || !std::all_of(text.begin(), text.end(), is_digit)) return std::nullopt;
        std::string z(text);
        if (BN_dec2bn(&raw, z.c_str()) == 0) return std::nullopt;
    }
    ossl::bignum bn(raw);
    if (!bn || BN_num_bytes(bn.get()) > 20) return std::nullopt;
    auto dec = bn_to_decimal(bn.get());
    if (!dec) return std::nullopt;
    return std::move(*dec);
}

result<ossl::asn1_integer> decimal_to_asn1_integer(std::string_view decimal) {
    if (decimal.empty() || decimal.size() > 49 || !std::all_of(decimal.begin(), decimal.end(), is_digit))
        return make_error(errc::invalid_argument, "serial number must be a decimal string", "serial_number");
    BIGNUM* raw = nullptr;
    std::string z(decimal);
    if (BN_dec2bn(&raw, z.c_str()) == 0) return ossl::fail(errc::invalid_argument, "serial number does not parse");
    ossl::bignum bn(raw);
    if (BN_is_zero(bn.get()) || BN_num_bytes(bn.get()) > 20)
        return make_error(errc::invalid_argument, "serial number must be positive and at most 20 octets",
                          "serial_number");
    ossl::asn1_integer out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    if (!out) return ossl::fail(errc::crypto_failure, "cannot encode the serial number");
    return out;
}

result<std::string> random_serial(const rng_fn& rng) {
    std::array<unsigned char, 16> bytes{};
    // RFC 5280 4.1.2.2: "The serial number MUST be a positive integer"; clearing the top bit
    // keeps the DER INTEGER positive at 16 octets. Retry on the (2^-127) zero draw.
    do {
        rng(bytes);
        bytes[0] &= 0x7f;
    } while (std::all_of(bytes.begin(), bytes.end(), [](unsigned char b) { return b == 0; }));
    ossl::bignum bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
    if (!bn) return ossl::fail(errc::crypto_failure, "cannot make a serial number");
    return bn_to_decimal(bn.get());
}

time_point from_asn1_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        ossl::drain_errors();
        return time_point{};
    }
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

ossl::asn1_time to_asn1_time(time_point t) {
    // RFC 5280 4.1.2.5: "CAs conforming to this profile MUST always encode certificate validity
    // dates through the year 2049 as UTCTime; certificate validity dates in 2050 or later MUST
    // be encoded as GeneralizedTime." ASN1_TIME_set picks exactly that.
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    return ossl::asn1_time(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(secs)));
}

result<subject_fields> read_subject(const X509_NAME* name) {
    subject_fields s;
    if (!name) return s;
    for (auto [nid, field] : {std::pair{NID_commonName, &subject_fields::common_name},
                              std::pair{NID_pkcs9_emailAddress, &subject_fields::email},
                              std::pair{NID_organizationName, &subject_fields::organization},
                              std::pair{NID_organizationalUnitName, &subject_fields::organizational_unit},
                              std::pair{NID_countryName, &subject_fields::country},
                              std::pair{NID_stateOrProvinceName, &subject_fields::state},
                              std::pair{NID_localityName, &subject_fields::locality}}) {
        int i = X509_NAME_get_index_by_NID(name, nid, -1);
        if (i < 0) continue; // absent: the field stays empty
        const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        auto text = asn1_string_utf8(e ? X509_NAME_ENTRY_get_data(e) : nullptr);
        if (!text)
            return make_error(errc::invalid_argument,
                              std::string("the subject's ") + OBJ_nid2sn(nid) + " does not convert to UTF-8");
        s.*field = std::move(*text);
    }
    return s;
}

result<subject_alt_names> read_sans(const GENERAL_NAMES* names) {
    subject_alt_names out;
    if (!names) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        int type = 0;
        void* value = GENERAL_NAME_get0_value(gn, &type);
        const auto* str = static_cast<const ASN1_STRING*>(value);
        auto text = [&]() -> result<std::string> {
            auto t = asn1_string_utf8(str);
            if (!t) return make_error(errc::invalid_argument, "a subject alternative name does not convert to UTF-8");
            return t;
        };
        switch (type) {
        case GEN_DNS:
        case GEN_EMAIL:
        case GEN_URI: {
            auto t = text();
            if (!t) return t.error();
            (type == GEN_DNS ? out.dns : type == GEN_EMAIL ? out.email : out.uri).push_back(std::move(*t));
            break;
        }
        case GEN_IPADD: {
            char buf[INET6_ADDRSTRLEN] = {};
            const unsigned char* d = ASN1_STRING_get0_data(str);
            int len = ASN1_STRING_length(str);
            if (len == 4 && inet_ntop(AF_INET, d, buf, sizeof buf))
                out.ip.emplace_back(buf);
            else if (len == 16 && inet_ntop(AF_INET6, d, buf, sizeof buf))
                out.ip.emplace_back(buf);
            break;
        }
        default: break;
        }
    }
    return out;
}

result<std::string> sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1)
        return ossl::fail(errc::crypto_failure, "cannot compute SHA-256");
    return hex_encode({md, n});
}

result<ossl::x509_name> build_name(const subject_fields& s) {
    struct field {
        int nid;
        const std::string* value;
        const char* name;
        std::size_t max; // RFC 5280 Appendix A upper bounds (ub-common-name 64, ...)
    };
    const field fields[] = {
        {NID_countryName, &s.country, "country", 2},
        {NID_stateOrProvinceName, &s.state, "state", 128},
        {NID_localityName, &s.locality, "locality", 128},
        {NID_organizationName, &s.organization, "organization", 64},
        {NID_organizationalUnitName, &s.organizational_unit, "organizational_unit", 64},
        {NID_commonName, &s.common_name, "common_name", 64},
        {NID_pkcs9_emailAddress, &s.email, "email", 128},
    };
    ossl::x509_name name(X509_NAME_new());
    if (!name) return ossl::fail(errc::crypto_failure, "cannot build a subject name");
    for (const auto& f : fields) {
        const std::string& v = *f.value;
        if (v.empty()) continue;
        if (has_control(v))
            return make_error(errc::invalid_argument, std::string(f.name) + " contains control characters", f.name);
        if (f.nid == NID_countryName) {
            if (v.size() != 2 || !is_alpha(v[0]) || !is_alpha(v[1]))
                return make_error(errc::invalid_argument, "country must be a two-letter ISO 3166 code", "country");
        } else if (v.size() > f.max * 4) {
            return make_error(errc::invalid_argument,
                              std::string(f.name) + " is longer than " + std::to_string(f.max) + " characters", f.name);
        }
        if (f.nid == NID_pkcs9_emailAddress && !valid_email(v))
            return make_error(errc::invalid_argument, "email is not an email address", "email");
        // MBSTRING_UTF8 checks UTF-8 validity and the per-attribute size bounds in characters.
        if (X509_NAME_add_entry_by_NID(name.get(), f.nid, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(v.data()), static_cast<int>(v.size()), -1,
                                       0) != 1) {
            auto e = ossl::fail(errc::invalid_argument, std::string(f.name) +
                                                            " cannot be encoded (invalid UTF-8 or longer than " +
                                                            std::to_string(f.max) + " characters)");
            e.field = f.name;
            return e;
        }
    }
    return name;
}

result<ossl::general_names> build_general_names(const subject_alt_names& sans) {
    const std::size_t total = sans.dns.size() + sans.email.size() + sans.ip.size() + sans.uri.size();
    if (total > max_sans)
        return make_error(errc::invalid_argument, "too many subject alternative names (at most 100)",
                          "subject_alt_names");
    ossl::general_names names(GENERAL_NAMES_new());
    if (!names) return ossl::fail(errc::crypto_failure, "cannot build subject alternative names");
    auto push = [&names](ossl::general_name gn) -> result<void> {
        if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0)
            return ossl::fail(errc::crypto_failure, "cannot build subject alternative names");
        gn.release();
        return {};
    };
    // dNSName, rfc822Name and uniformResourceIdentifier are IA5 strings (RFC 5280 4.2.1.6), checked
    // first; iPAddress is an octet string (ip_general_name).
    auto add_ia5 = [&](const std::vector<std::string>& values, int type, bool (*valid)(std::string_view),
                       const char* not_valid) -> result<void> {
        for (const auto& v : values) {
            if (!valid(v)) return make_error(errc::invalid_argument, not_valid + v, "subject_alt_names");
            auto gn = ia5_general_name(type, v);
            if (!gn) return gn.error();
            if (auto r = push(std::move(*gn)); !r) return r.error();
        }
        return {};
    };
    if (auto r = add_ia5(sans.dns, GEN_DNS, valid_dns_name, "not a valid DNS name: "); !r) return r.error();
    if (auto r = add_ia5(sans.email, GEN_EMAIL, valid_email, "not a valid email address: "); !r) return r.error();
    for (const auto& ip : sans.ip) {
        auto gn = ip_general_name(ip);
        if (!gn) return gn.error();
        if (auto r = push(std::move(*gn)); !r) return r.error();
    }
    if (auto r = add_ia5(sans.uri, GEN_URI, valid_uri, "not a valid URI (scheme required): "); !r) return r.error();
    return names;
}

const EVP_MD* signing_digest(EVP_PKEY* key) {
    if (!key) return EVP_sha256();
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
    if (id == EVP_PKEY_EC && describe_key(key) == "ec-p384") return EVP_sha384();
    return EVP_sha256();
}

result<void> add_config_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    ossl::x509_ext ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        return ossl::fail(errc::crypto_failure, std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension");
    return {};
}

result<v3_draft> new_v3_certificate(ASN1_INTEGER* serial, X509* issuer, const X509_NAME* subject, time_point not_before,
                                    time_point not_after, EVP_PKEY* key, const std::string& what) {
    auto nb = to_asn1_time(not_before);
    auto na = to_asn1_time(not_after);
    v3_draft d{ossl::x509(X509_new()), {}};
    X509* cert = d.cert.get();
    // RFC 5280 4.1.2.1: "When extensions are used, as expected in this profile, version MUST be 3
    // (value is 2)."
    if (!cert || !nb || !na || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 || X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) != 1 ||
        X509_set1_notBefore(cert, nb.get()) != 1 || X509_set1_notAfter(cert, na.get()) != 1 ||
        X509_set_pubkey(cert, key) != 1)
        return ossl::fail(errc::crypto_failure, what);
    X509V3_set_ctx_nodb(&d.ctx);
    X509V3_set_ctx(&d.ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
    return d;
}

result<ossl::general_name> ia5_general_name(int type, std::string_view value, const char* what) {
    ossl::asn1_ia5string str(ASN1_IA5STRING_new());
    ossl::general_name gn(GENERAL_NAME_new());
    if (!str || !gn || ASN1_STRING_set(str.get(), value.data(), static_cast<int>(value.size())) != 1)
        return ossl::fail(errc::crypto_failure, what);
    GENERAL_NAME_set0_value(gn.get(), type, str.release());
    return gn;
}

result<ossl::pkey> load_public_key(std::string_view pem) {
    ossl::bio in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!in) return ossl::fail(errc::crypto_failure, "cannot read the public key");
    ossl::pkey key(PEM_read_bio_PUBKEY(in.get(), nullptr, nullptr, nullptr));
    if (!key) return ossl::fail(errc::invalid_argument, "not a PEM public key");
    return key;
}

result<std::string> sign_raw(EVP_PKEY* key, std::string_view data) {
    ossl::md_ctx ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(data.data());
    if (!ctx || !key || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1)
        return ossl::fail(errc::crypto_failure, "signing failed");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, data.size()) != 1)
        return ossl::fail(errc::crypto_failure, "signing failed");
    sig.resize(len);
    return sig;
}

bool verify_raw(EVP_PKEY* key, std::string_view data, std::string_view sig) {
    ossl::md_ctx ctx(EVP_MD_CTX_new());
    const bool ok = ctx && key && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) == 1 &&
                    EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    if (!ok) ossl::drain_errors();
    return ok;
}

result<std::string> public_key_id(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    int n = key ? i2d_PUBKEY(key, &der) : -1;
    if (n <= 0) return ossl::fail(errc::crypto_failure, "cannot encode the public key");
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return sha256_hex(std::string_view(owned.get(), static_cast<std::size_t>(n)));
}

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool pad_ok = c == '=' && i + 2 >= text.size() && (i + 1 == text.size() || text[i + 1] == '=');
        if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '/' || pad_ok)) return std::nullopt;
    }
    std::string out(3 * (text.size() / 4), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as zero bytes.
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

} // namespace certmate
