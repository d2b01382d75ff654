// Crypto engine tests: keys, CSRs, the CA, issuance profile, CRL and PKCS#12, with the
// `openssl` CLI as an independent verifier.
#define BOOST_TEST_MODULE crypto
#include <boost/test/unit_test.hpp>

#include "core/ca.hpp"
#include "core/crl.hpp"
#include "core/csr.hpp"
#include "core/issue.hpp"
#include "core/keys.hpp"
#include "core/pkcs12.hpp"
#include "support/tools.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace certmate;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using certmate::test::read_text;
using certmate::test::run;
using certmate::test::temp_dir;
using certmate::test::write_text;

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

time_point now_s() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

// Created once: RSA-4096 keygen takes seconds.
const certificate_authority& rsa_ca() {
    static const certificate_authority ca = [] {
        auto r = certificate_authority::create(ca_options{}, now_s(), openssl_rng());
        BOOST_REQUIRE_MESSAGE(r.has_value(), "RSA CA creation failed");
        return std::move(*r);
    }();
    return ca;
}

const certificate_authority& ec_ca() {
    static const certificate_authority ca = [] {
        ca_options o;
        o.type = key_type::ec_p384;
        o.subject.common_name = "CertMate Test EC CA";
        auto r = certificate_authority::create(o, now_s(), openssl_rng());
        BOOST_REQUIRE_MESSAGE(r.has_value(), "EC CA creation failed");
        return std::move(*r);
    }();
    return ca;
}

ossl::pkey make_key(key_type t) {
    auto k = generate_key(t);
    BOOST_REQUIRE(k.has_value());
    return std::move(*k);
}

std::string oid_text(const ASN1_OBJECT* o) {
    char buf[128] = {};
    OBJ_obj2txt(buf, sizeof buf, o, 1);
    return buf;
}

// The OIDs of the certificate's extensions, in order.
std::vector<std::string> ext_oids(X509* cert) {
    std::vector<std::string> out;
    for (int i = 0; i < X509_get_ext_count(cert); ++i)
        out.push_back(oid_text(X509_EXTENSION_get_object(X509_get_ext(cert, i))));
    return out;
}

std::vector<int> key_usage_bits(X509* cert, int& crit) {
    ossl::asn1_bit_string ku(static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert, NID_key_usage, &crit, nullptr)));
    BOOST_REQUIRE(ku);
    std::vector<int> bits;
    for (int b = 0; b < 9; ++b)
        if (ASN1_BIT_STRING_get_bit(ku.get(), b)) bits.push_back(b);
    return bits;
}

std::vector<int> eku_nids(X509* cert, int& crit) {
    ossl::extended_key_usage eku(
        static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, nullptr)));
    std::vector<int> out;
    if (!eku) return out;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i)
        out.push_back(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)));
    return out;
}

std::string uri_of(const GENERAL_NAME* gn) {
    int type = 0;
    auto* v = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    BOOST_REQUIRE_EQUAL(type, GEN_URI);
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                       static_cast<std::size_t>(ASN1_STRING_length(v)));
}

std::string asn1_octets(const ASN1_OCTET_STRING* s) {
    return s ? std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<std::size_t>(ASN1_STRING_length(s)))
             : std::string();
}

const std::string base_url = "https://pki.example.test:8443";

// Checks, by parsing, that `cert` carries exactly the client profile of core/issue.hpp (RFC 5280 4.2.1).
void check_client_profile(X509* cert, const certificate_authority& ca, bool rsa, const std::vector<int>& want_eku,
                          const subject_alt_names& want_sans) {
    BOOST_TEST(X509_get_version(cert) == X509_VERSION_3);
    std::vector<std::string> want = {"2.5.29.19", "2.5.29.15", "2.5.29.37"};
    if (!want_sans.empty()) want.push_back("2.5.29.17");
    for (auto o : {"2.5.29.14", "2.5.29.35", "2.5.29.31", "1.3.6.1.5.5.7.1.1"}) want.push_back(o);
    auto got = ext_oids(cert);
    BOOST_TEST(std::multiset<std::string>(got.begin(), got.end()) ==
                   std::multiset<std::string>(want.begin(), want.end()),
               boost::test_tools::per_element());

    int crit = -1;
    ossl::basic_constraints bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
    BOOST_REQUIRE(bc);
    BOOST_TEST(crit == 1);
    BOOST_TEST(bc->ca == 0);
    BOOST_TEST(bc->pathlen == nullptr);

    auto bits = key_usage_bits(cert, crit);
    BOOST_TEST(crit == 1);
    std::vector<int> want_bits =
        rsa ? std::vector<int>{0, 2} : std::vector<int>{0}; // digitalSignature(0), keyEncipherment(2)
    BOOST_TEST(bits == want_bits, boost::test_tools::per_element());

    auto ekus = eku_nids(cert, crit);
    BOOST_TEST(crit == 0);
    BOOST_TEST(ekus == want_eku, boost::test_tools::per_element());

    ossl::general_names sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
    if (want_sans.empty()) {
        BOOST_TEST(!sans);
    } else {
        BOOST_REQUIRE(sans);
        BOOST_TEST(crit == 0);
        auto s = read_sans(sans.get()).value();
        BOOST_TEST(s.dns == want_sans.dns, boost::test_tools::per_element());
        BOOST_TEST(s.email == want_sans.email, boost::test_tools::per_element());
        BOOST_TEST(s.ip == want_sans.ip, boost::test_tools::per_element());
        BOOST_TEST(s.uri == want_sans.uri, boost::test_tools::per_element());
    }

    BOOST_TEST(X509_get0_subject_key_id(cert) != nullptr);
    ossl::authority_keyid akid(
        static_cast<AUTHORITY_KEYID*>(X509_get_ext_d2i(cert, NID_authority_key_identifier, &crit, nullptr)));
    BOOST_REQUIRE(akid);
    BOOST_TEST(crit == 0);
    BOOST_TEST(asn1_octets(akid->keyid) == asn1_octets(X509_get0_subject_key_id(ca.cert())));

    ossl::crl_dist_points cdp(
        static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit, nullptr)));
    BOOST_REQUIRE(cdp);
    BOOST_REQUIRE_EQUAL(sk_DIST_POINT_num(cdp.get()), 1);
    DIST_POINT* dp = sk_DIST_POINT_value(cdp.get(), 0);
    BOOST_REQUIRE(dp->distpoint != nullptr);
    BOOST_REQUIRE_EQUAL(dp->distpoint->type, 0);
    BOOST_REQUIRE_EQUAL(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
    BOOST_TEST(uri_of(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0)) == base_url + "/crl.der");

    ossl::authority_info_access aia(
        static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, &crit, nullptr)));
    BOOST_REQUIRE(aia);
    BOOST_REQUIRE_EQUAL(sk_ACCESS_DESCRIPTION_num(aia.get()), 2);
    BOOST_TEST(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia.get(), 0)->method) == NID_ad_OCSP);
    BOOST_TEST(uri_of(sk_ACCESS_DESCRIPTION_value(aia.get(), 0)->location) == base_url + "/ocsp");
    BOOST_TEST(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia.get(), 1)->method) == NID_ad_ca_issuers);
    BOOST_TEST(uri_of(sk_ACCESS_DESCRIPTION_value(aia.get(), 1)->location) == base_url + "/ca.crt");
}

issuance_policy test_policy() {
    issuance_policy p;
    p.public_url = base_url + "/"; // trailing slash is trimmed
    return p;
}

issue_request make_request(const std::string& cn) {
    issue_request r;
    r.subject.common_name = cn;
    r.subject.organization = "Example Org";
    r.subject.country = "DE";
    r.serial_decimal = random_serial(openssl_rng()).value();
    return r;
}

issued_cert issue_ok(const certificate_authority& ca, EVP_PKEY* key, const issue_request& req,
                     time_point now = now_s()) {
    auto r = issue_certificate(ca, key, req, test_policy(), now);
    BOOST_REQUIRE_MESSAGE(r.has_value(), "issue failed: " << (r.has_value() ? "" : r.error().message));
    return std::move(*r);
}

// `openssl verify -CAfile ca cert` exits 0.
bool openssl_verifies(const temp_dir& d, const certificate_authority& ca, const std::string& cert_pem,
                      const std::string& extra = "") {
    write_text(d / "ca.crt", ca.cert_pem());
    write_text(d / "leaf.crt", cert_pem);
    auto r = run("openssl verify " + extra + " -CAfile " + quote(d / "ca.crt") + " " + quote(d / "leaf.crt"));
    BOOST_TEST_MESSAGE("openssl verify: " << r.output);
    return r.exit_code == 0;
}

std::string decimal_to_hex(const std::string& dec) {
    BIGNUM* raw = nullptr;
    BOOST_REQUIRE(BN_dec2bn(&raw, dec.c_str()) > 0);
    ossl::bignum bn(raw);
    ossl::openssl_string hex(BN_bn2hex(bn.get()));
    return hex.get();
}

// Re-armours DER as PEM with the given label.
std::string to_pem(const std::string& der, const std::string& label) {
    std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(der.data()), static_cast<int>(der.size()));
    b64.resize(static_cast<std::size_t>(n));
    std::string out = "-----BEGIN " + label + "-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    return out + "-----END " + label + "-----\n";
}

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

constexpr key_type all_key_types[] = {key_type::rsa2048, key_type::rsa3072, key_type::rsa4096,
                                      key_type::ec_p256, key_type::ec_p384, key_type::ed25519};

} // namespace

namespace certmate {
std::ostream& operator<<(std::ostream& os, errc e) { return os << errc_name(e); }
} // namespace certmate

BOOST_AUTO_TEST_SUITE(keys)

BOOST_AUTO_TEST_CASE(generate_describe_and_pem_round_trip) {
    temp_dir d;
    for (key_type t : all_key_types) {
        BOOST_TEST_CONTEXT("key type " << to_string(t)) {
            auto key = make_key(t);
            BOOST_TEST(describe_key(key.get()) == to_string(t));
            BOOST_TEST(check_allowed_key(key.get()).has_value());

            auto plain = private_key_to_pem(key.get());
            BOOST_REQUIRE(plain.has_value());
            BOOST_TEST(plain->starts_with("-----BEGIN PRIVATE KEY-----")); // PKCS#8
            auto back = load_private_key(*plain);
            BOOST_REQUIRE(back.has_value());
            BOOST_TEST(EVP_PKEY_eq(back->get(), key.get()) == 1);

            auto enc = private_key_to_pem(key.get(), "s3cret-pass");
            BOOST_REQUIRE(enc.has_value());
            BOOST_TEST(enc->starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            auto dec = load_private_key(*enc, "s3cret-pass");
            BOOST_REQUIRE(dec.has_value());
            BOOST_TEST(EVP_PKEY_eq(dec->get(), key.get()) == 1);
            auto wrong = load_private_key(*enc, "not-the-pass");
            BOOST_REQUIRE(!wrong.has_value());
            BOOST_TEST(wrong.error().code == errc::bad_passphrase);
            auto missing = load_private_key(*enc);
            BOOST_REQUIRE(!missing.has_value());
            BOOST_TEST(missing.error().code == errc::bad_passphrase);

            BOOST_TEST(public_key_to_pem(key.get()).value().starts_with("-----BEGIN PUBLIC KEY-----"));
            if (t == key_type::ec_p256) {
                // PBES2 with PBKDF2 and AES-256-CBC, as openssl itself reads it.
                write_text(d / "enc.key", *enc);
                auto asn = run("openssl asn1parse -in " + quote(d / "enc.key"));
                BOOST_TEST(asn.output.find("PBES2") != std::string::npos);
                BOOST_TEST(asn.output.find("PBKDF2") != std::string::npos);
                BOOST_TEST(asn.output.find("aes-256-cbc") != std::string::npos);
                BOOST_TEST(run("openssl pkey -noout -passin pass:s3cret-pass -in " + quote(d / "enc.key")).exit_code ==
                           0);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(traditional_pem_is_loaded) {
    temp_dir d;
    BOOST_REQUIRE(run("openssl genrsa -traditional -out " + quote(d / "t.key") + " 2048").exit_code == 0);
    auto k = load_private_key(read_text(d / "t.key"));
    BOOST_REQUIRE(k.has_value());
    BOOST_TEST(describe_key(k->get()) == "rsa2048");

    BOOST_REQUIRE(
        run("openssl genrsa -traditional -aes256 -passout pass:abcdefgh -out " + quote(d / "te.key") + " 2048")
            .exit_code == 0);
    auto pem = read_text(d / "te.key");
    BOOST_TEST(load_private_key(pem, "abcdefgh").has_value());
    auto wrong = load_private_key(pem, "abcdefgX");
    BOOST_REQUIRE(!wrong.has_value());
    BOOST_TEST(wrong.error().code == errc::bad_passphrase);
    auto missing = load_private_key(pem);
    BOOST_REQUIRE(!missing.has_value());
    BOOST_TEST(missing.error().code == errc::bad_passphrase);

    auto garbage = load_private_key("not a key");
    BOOST_REQUIRE(!garbage.has_value());
    BOOST_TEST(garbage.error().code == errc::crypto_failure);
}

BOOST_AUTO_TEST_CASE(disallowed_keys) {
    ossl::pkey rsa1024(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
    BOOST_REQUIRE(rsa1024);
    BOOST_TEST(describe_key(rsa1024.get()) == "rsa1024");
    auto r = check_allowed_key(rsa1024.get());
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::unsupported_key);
    BOOST_TEST(r.error().message.find("1024") != std::string::npos);

    ossl::pkey p521(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
    BOOST_REQUIRE(p521);
    BOOST_TEST(describe_key(p521.get()) == "ec-p521");
    auto e = check_allowed_key(p521.get());
    BOOST_REQUIRE(!e.has_value());
    BOOST_TEST(e.error().code == errc::unsupported_key);

    ossl::pkey ed448(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
    BOOST_REQUIRE(ed448);
    BOOST_TEST(check_allowed_key(ed448.get()).error().code == errc::unsupported_key);
}

BOOST_AUTO_TEST_CASE(serials) {
    // All-ones randomness: top bit cleared gives 2^127 - 1.
    rng_fn ones = [](std::span<unsigned char> b) { std::fill(b.begin(), b.end(), 0xff); };
    BOOST_TEST(random_serial(ones).value() == "170141183460469231731687303715884105727");
    // An all-zero draw is retried, never returned.
    int calls = 0;
    rng_fn zero_then_one = [&calls](std::span<unsigned char> b) {
        std::fill(b.begin(), b.end(), 0);
        if (calls++ > 0) b[b.size() - 1] = 1;
    };
    BOOST_TEST(random_serial(zero_then_one).value() == "1");
    BOOST_TEST(calls == 2);

    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        auto serial = random_serial(openssl_rng());
        BOOST_REQUIRE(serial.has_value());
        const std::string s = *serial;
        BOOST_REQUIRE(!s.empty());
        BOOST_TEST(std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
        auto i128 = decimal_to_asn1_integer(s);
        BOOST_REQUIRE(i128.has_value());
        BOOST_TEST((serial_to_decimal(i128->get()).value() == s));
        ossl::bignum bn(ASN1_INTEGER_to_BN(i128->get(), nullptr));
        BOOST_TEST(BN_num_bits(bn.get()) <= 127);
        BOOST_TEST(!BN_is_negative(bn.get()));
        seen.insert(s);
    }
    BOOST_TEST(seen.size() == 200u);

    BOOST_TEST(normalize_serial("31").value_or("") == "31");
    BOOST_TEST(normalize_serial("00031").value_or("") == "31");
    BOOST_TEST(normalize_serial("0x1F").value_or("") == "31");
    BOOST_TEST(normalize_serial("0x1f").value_or("") == "31");
    BOOST_TEST(normalize_serial("0X7fffffffffffffffffffffffffffffff").value_or("") ==
               "170141183460469231731687303715884105727");
    BOOST_TEST(!normalize_serial(""));
    BOOST_TEST(!normalize_serial("0x"));
    BOOST_TEST(!normalize_serial("1F"));
    BOOST_TEST(!normalize_serial("-5"));
    BOOST_TEST(!normalize_serial("12 3"));
    BOOST_TEST(!normalize_serial("0x" + std::string(41, 'f')));

    BOOST_TEST(decimal_to_asn1_integer("0").error().code == errc::invalid_argument);
    BOOST_TEST(decimal_to_asn1_integer("").error().field == "serial_number");
    BOOST_TEST(decimal_to_asn1_integer("12a").error().code == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(times_and_digests) {
    auto t2030 = *parse_time("2030-05-06T07:08:09Z");
    auto a = to_asn1_time(t2030);
    BOOST_REQUIRE(a);
    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    BOOST_TEST(ASN1_STRING_type(a.get()) == V_ASN1_UTCTIME);
    BOOST_TEST((from_asn1_time(a.get()) == t2030));
    auto t2060 = *parse_time("2060-01-02T03:04:05Z");
    auto b = to_asn1_time(t2060);
    BOOST_REQUIRE(b);
    BOOST_TEST(ASN1_STRING_type(b.get()) == V_ASN1_GENERALIZEDTIME);
    BOOST_TEST((from_asn1_time(b.get()) == t2060));
    // Impossible dates and negative fields are refused, not normalised into another instant.
    BOOST_TEST(parse_time("2028-02-29").has_value());
    BOOST_TEST(!parse_time("2030-02-30T00:00:00Z"));
    BOOST_TEST(!parse_time("2030-04-31"));
    BOOST_TEST(!parse_time("2030-05-06T-1:08:09Z"));
    BOOST_TEST(!parse_time("2030-05-06T07:-8:09Z"));

    BOOST_TEST(sha256_hex("abc").value() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    BOOST_TEST(sha256_hex("").value() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Each encoder reports a failure as an error, never as an empty string (issue 11: result<T> below app/).
BOOST_AUTO_TEST_CASE(encoders_report_failure_instead_of_an_empty_string) {
    auto is_crypto_failure = [](const auto& r) { return !r.has_value() && r.error().code == errc::crypto_failure; };
    BOOST_TEST(is_crypto_failure(public_key_to_pem(nullptr)));
    BOOST_TEST(is_crypto_failure(public_key_id(nullptr)));
    BOOST_TEST(is_crypto_failure(cert_to_pem(nullptr)));
    BOOST_TEST(is_crypto_failure(cert_to_der(nullptr)));
    BOOST_TEST(is_crypto_failure(fingerprint_sha256(nullptr)));
    BOOST_TEST(is_crypto_failure(serial_to_decimal(nullptr)));
    // The error carries a message a log line can name.
    BOOST_TEST(!cert_to_der(nullptr).error().message.empty());
    // And the successes are unchanged.
    auto key = generate_key(key_type::ed25519);
    BOOST_REQUIRE(key.has_value());
    BOOST_TEST(public_key_id(key->get()).value().size() == 64u);
    BOOST_TEST(fingerprint_sha256(rsa_ca().cert()).value() == rsa_ca().fingerprint_sha256());
    BOOST_TEST(serial_to_decimal(X509_get0_serialNumber(rsa_ca().cert())).value() == rsa_ca().serial_decimal());
    BOOST_TEST(cert_to_pem(rsa_ca().cert()).value() == rsa_ca().cert_pem());
}

BOOST_AUTO_TEST_CASE(subject_and_san_encoding) {
    subject_fields s;
    s.common_name = "Jürgen Müller";
    s.email = "jm@example.org";
    s.organization = "Ex Org";
    s.organizational_unit = "Ops";
    s.country = "DE";
    s.state = "Berlin";
    s.locality = "Berlin";
    auto n = build_name(s);
    BOOST_REQUIRE(n.has_value());
    BOOST_TEST((read_subject(n->get()).value() == s));

    auto bad = [](subject_fields f, const char* field) {
        auto r = build_name(f);
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::invalid_argument);
        BOOST_TEST(r.error().field == field);
    };
    subject_fields f;
    f.common_name = "x";
    f.country = "DEU";
    bad(f, "country");
    f.country = "D1";
    bad(f, "country");
    f.country = "";
    f.common_name = std::string(65, 'a');
    bad(f, "common_name");
    f.common_name = "a\nb";
    bad(f, "common_name");
    f.common_name = "\xff\xfe";
    bad(f, "common_name");
    f.common_name = "ok";
    f.email = "no-at-sign";
    bad(f, "email");

    subject_alt_names sans;
    sans.dns = {"a.example.org", "*.wild.example.org"};
    sans.email = {"a@example.org"};
    sans.ip = {"192.0.2.1", "2001:db8::1"};
    sans.uri = {"spiffe://example.org/ns/a"};
    auto g = build_general_names(sans);
    BOOST_REQUIRE(g.has_value());
    BOOST_TEST((read_sans(g->get()).value() == sans));

    // A name that does not convert to UTF-8 is an error, not an empty field: a UniversalString
    // holding no Unicode code point (0x7fffffff), an odd-length BMPString.
    ossl::x509_name odd(X509_NAME_new());
    BOOST_REQUIRE(odd);
    BOOST_REQUIRE(X509_NAME_add_entry_by_NID(odd.get(), NID_organizationName, V_ASN1_UNIVERSALSTRING,
                                             reinterpret_cast<const unsigned char*>("\x7f\xff\xff\xff"), 4, -1,
                                             0) == 1);
    auto unreadable = read_subject(odd.get());
    BOOST_REQUIRE(!unreadable.has_value());
    BOOST_TEST((unreadable.error().code == errc::invalid_argument));
    BOOST_TEST(unreadable.error().message.find("O ") != std::string::npos, unreadable.error().message);
    ossl::general_names odd_sans(GENERAL_NAMES_new());
    ossl::general_name gn(GENERAL_NAME_new());
    ASN1_STRING* bmp = ASN1_STRING_type_new(V_ASN1_BMPSTRING);
    BOOST_REQUIRE(bmp);
    BOOST_REQUIRE(ASN1_STRING_set(bmp, "abc", 3) == 1);
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, bmp);
    BOOST_REQUIRE(sk_GENERAL_NAME_push(odd_sans.get(), gn.release()) > 0);
    BOOST_TEST(!read_sans(odd_sans.get()).has_value());

    for (auto mutate : std::vector<std::function<void(subject_alt_names&)>>{
             [](subject_alt_names& x) { x.ip = {"300.1.1.1"}; },
             [](subject_alt_names& x) { x.email = {"nope"}; },
             [](subject_alt_names& x) { x.uri = {"no-scheme"}; },
             [](subject_alt_names& x) { x.dns = {"bad host"}; },
             [](subject_alt_names& x) { x.dns = {"-a.example"}; },
         }) {
        subject_alt_names x;
        mutate(x);
        auto r = build_general_names(x);
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::invalid_argument);
        BOOST_TEST(r.error().field == "subject_alt_names");
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ca)

// Checks, by parsing, the CA profile (RFC 5280 4.2.1.9, 4.2.1.3).
void check_ca_profile(const certificate_authority& ca) {
    X509* cert = ca.cert();
    BOOST_TEST(X509_get_version(cert) == X509_VERSION_3);
    auto got = ext_oids(cert);
    std::vector<std::string> want = {"2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35"};
    BOOST_TEST(got == want, boost::test_tools::per_element());
    int crit = -1;
    ossl::basic_constraints bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
    BOOST_REQUIRE(bc);
    BOOST_TEST(crit == 1);
    BOOST_TEST(bc->ca != 0);
    BOOST_REQUIRE(bc->pathlen != nullptr);
    BOOST_TEST(ASN1_INTEGER_get(bc->pathlen) == 0);
    auto bits = key_usage_bits(cert, crit);
    BOOST_TEST(crit == 1);
    BOOST_TEST(bits == (std::vector<int>{5, 6}), boost::test_tools::per_element()); // keyCertSign, cRLSign
    ossl::authority_keyid akid(
        static_cast<AUTHORITY_KEYID*>(X509_get_ext_d2i(cert, NID_authority_key_identifier, &crit, nullptr)));
    BOOST_REQUIRE(akid);
    BOOST_TEST(!asn1_octets(akid->keyid).empty());
    BOOST_TEST(asn1_octets(akid->keyid) == asn1_octets(X509_get0_subject_key_id(cert)));

    auto days = std::chrono::duration_cast<std::chrono::days>(ca.not_after() - ca.not_before()).count();
    BOOST_TEST(days == 3650);
    BOOST_TEST(ca.subject_string().find("CN=") != std::string::npos);
    BOOST_TEST(!ca.serial_decimal().empty());

    auto md = ca.metadata();
    for (auto k : {"subject", "serial_number", "fingerprint_sha256", "key_type", "not_before", "not_after",
                   "created_at", "signature_algorithm"})
        BOOST_TEST(md.contains(k), "metadata has " << k);
    BOOST_TEST(md.at("fingerprint_sha256").as_string() == ca.fingerprint_sha256());

    temp_dir d;
    write_text(d / "ca.crt", ca.cert_pem());
    auto v = run("openssl verify -CAfile " + quote(d / "ca.crt") + " " + quote(d / "ca.crt"));
    BOOST_TEST(v.exit_code == 0, v.output);
    auto fp = run("openssl x509 -noout -fingerprint -sha256 -in " + quote(d / "ca.crt"));
    std::string hex;
    for (char c : fp.output.substr(fp.output.find('=') + 1))
        if (std::isxdigit(static_cast<unsigned char>(c)))
            hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    BOOST_TEST(hex == ca.fingerprint_sha256());
    BOOST_TEST(ca.cert_der() == cert_to_der(load_cert_pem(ca.cert_pem())->get()).value());
}

BOOST_AUTO_TEST_CASE(rsa4096_ca_profile) {
    const auto& ca = rsa_ca();
    BOOST_TEST(ca.key_type_name() == "rsa4096");
    BOOST_TEST(ca.metadata().at("signature_algorithm").as_string() == "sha256WithRSAEncryption");
    BOOST_TEST(ca.digest() == EVP_sha256());
    check_ca_profile(ca);
}

BOOST_AUTO_TEST_CASE(ec_p384_ca_profile) {
    const auto& ca = ec_ca();
    BOOST_TEST(ca.key_type_name() == "ec-p384");
    BOOST_TEST(ca.metadata().at("signature_algorithm").as_string() == "ecdsa-with-SHA384");
    check_ca_profile(ca);
}

BOOST_AUTO_TEST_CASE(load_with_passphrase) {
    for (const certificate_authority* ca : {&rsa_ca(), &ec_ca()}) {
        auto enc = ca->key_pem("correct horse battery");
        BOOST_REQUIRE(enc.has_value());
        BOOST_TEST(enc->starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        auto loaded = certificate_authority::load(ca->cert_pem(), *enc, "correct horse battery");
        BOOST_REQUIRE(loaded.has_value());
        BOOST_TEST(loaded->fingerprint_sha256() == ca->fingerprint_sha256());
        BOOST_TEST(EVP_PKEY_eq(loaded->key(), ca->key()) == 1);

        auto wrong = certificate_authority::load(ca->cert_pem(), *enc, "wrong horse");
        BOOST_REQUIRE(!wrong.has_value());
        BOOST_TEST(wrong.error().code == errc::bad_passphrase);
        auto missing = certificate_authority::load(ca->cert_pem(), *enc);
        BOOST_REQUIRE(!missing.has_value());
        BOOST_TEST(missing.error().code == errc::bad_passphrase);

        auto plain = ca->key_pem(std::nullopt);
        BOOST_REQUIRE(plain.has_value());
        BOOST_TEST(plain->starts_with("-----BEGIN PRIVATE KEY-----"));
        BOOST_TEST(certificate_authority::load(ca->cert_pem(), *plain).has_value());
    }
    // A key that is not the CA's.
    auto other = *rsa_ca().key_pem(std::nullopt);
    auto mismatch = certificate_authority::load(ec_ca().cert_pem(), other);
    BOOST_REQUIRE(!mismatch.has_value());
    BOOST_TEST(mismatch.error().code == errc::crypto_failure);

    // A leaf certificate with its own key is not a CA.
    auto key = make_key(key_type::ec_p256);
    auto leaf = issue_ok(ec_ca(), key.get(), make_request("leaf"));
    auto not_ca = certificate_authority::load(leaf.pem, *private_key_to_pem(key.get()));
    BOOST_REQUIRE(!not_ca.has_value());
    BOOST_TEST(not_ca.error().code == errc::crypto_failure);

    auto junk = certificate_authority::load("junk", other);
    BOOST_REQUIRE(!junk.has_value());
    BOOST_TEST(junk.error().code == errc::crypto_failure);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(issue)

BOOST_AUTO_TEST_CASE(every_key_type_verifies_with_exact_profile) {
    temp_dir d;
    subject_alt_names sans;
    sans.dns = {"client.example.org"};
    sans.email = {"client@example.org"};
    sans.ip = {"10.1.2.3", "2001:db8::7"};
    sans.uri = {"urn:example:client"};
    for (key_type t : all_key_types) {
        auto key = make_key(t);
        for (const certificate_authority* ca : {&rsa_ca(), &ec_ca()}) {
            BOOST_TEST_CONTEXT("key " << to_string(t) << ", CA " << ca->key_type_name()) {
                auto req = make_request("client-" + std::string(to_string(t)));
                req.sans = sans;
                auto c = issue_ok(*ca, key.get(), req);
                const bool rsa = t == key_type::rsa2048 || t == key_type::rsa3072 || t == key_type::rsa4096;
                check_client_profile(c.cert.get(), *ca, rsa, {NID_client_auth}, sans);
                BOOST_TEST(openssl_verifies(d, *ca, c.pem));
                BOOST_TEST(c.key_usage == (rsa ? std::vector<std::string>{"digitalSignature", "keyEncipherment"}
                                               : std::vector<std::string>{"digitalSignature"}),
                           boost::test_tools::per_element());
                BOOST_TEST(c.extended_key_usage == std::vector<std::string>{"clientAuth"},
                           boost::test_tools::per_element());
                BOOST_TEST(c.serial_decimal == req.serial_decimal);
                BOOST_TEST(c.fingerprint_sha256 == fingerprint_sha256(c.cert.get()).value());
                BOOST_TEST((read_subject(X509_get_subject_name(c.cert.get())).value() == req.subject));
                BOOST_TEST(cert_to_der(load_cert_der(c.der)->get()).value() == c.der);
                BOOST_TEST(cert_to_pem(load_cert_pem(c.pem)->get()).value() == c.pem);
                ossl::pkey pub(X509_get_pubkey(c.cert.get()));
                BOOST_TEST(EVP_PKEY_eq(pub.get(), key.get()) == 1);
                // The openssl CLI agrees on serial and fingerprint.
                write_text(d / "c.crt", c.pem);
                auto ser = run("openssl x509 -noout -serial -in " + quote(d / "c.crt"));
                BOOST_TEST(ser.output == "serial=" + decimal_to_hex(c.serial_decimal) + "\n");
                auto purpose =
                    run("openssl verify -purpose sslclient -CAfile " + quote(d / "ca.crt") + " " + quote(d / "c.crt"));
                BOOST_TEST(purpose.exit_code == 0, purpose.output);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(no_sans_means_no_san_extension) {
    temp_dir d;
    auto key = make_key(key_type::ec_p256);
    auto c = issue_ok(rsa_ca(), key.get(), make_request("plain"));
    check_client_profile(c.cert.get(), rsa_ca(), false, {NID_client_auth}, {});
    BOOST_TEST(openssl_verifies(d, rsa_ca(), c.pem));
}

BOOST_AUTO_TEST_CASE(extra_ekus_by_usage) {
    temp_dir d;
    auto key = make_key(key_type::ec_p256);
    auto req = make_request("vpn-gw");
    req.usage = cert_usage::vpn;
    req.extra_eku = {"emailProtection", "serverAuth"};
    auto c = issue_ok(rsa_ca(), key.get(), req);
    check_client_profile(c.cert.get(), rsa_ca(), false, {NID_client_auth, NID_server_auth, NID_email_protect}, {});
    BOOST_TEST(c.extended_key_usage == (std::vector<std::string>{"clientAuth", "serverAuth", "emailProtection"}),
               boost::test_tools::per_element());
    BOOST_TEST(openssl_verifies(d, rsa_ca(), c.pem, "-purpose sslserver"));

    req.usage = cert_usage::other;
    req.extra_eku = {"serverAuth"};
    req.serial_decimal = random_serial(openssl_rng()).value();
    auto o = issue_ok(rsa_ca(), key.get(), req);
    check_client_profile(o.cert.get(), rsa_ca(), false, {NID_client_auth, NID_server_auth}, {});

    req.usage = cert_usage::api_mtls;
    for (const char* eku : {"serverAuth", "emailProtection"}) {
        req.extra_eku = {eku};
        auto r = issue_certificate(rsa_ca(), key.get(), req, test_policy(), now_s());
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::invalid_argument);
        BOOST_TEST(r.error().field == "extended_key_usage");
        BOOST_TEST(validate_issue_request(req, test_policy()).error().field == "extended_key_usage");
    }
    req.usage = cert_usage::other;
    req.extra_eku = {"codeSigning"};
    auto r = validate_issue_request(req, test_policy());
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().field == "extended_key_usage");
}

BOOST_AUTO_TEST_CASE(validity_window_and_caps) {
    auto key = make_key(key_type::ec_p256);
    const time_point now = now_s();
    auto req = make_request("validity");
    req.validity_days = 30;
    auto c = issue_ok(ec_ca(), key.get(), req, now);
    BOOST_TEST(format_time(c.not_before) == format_time(now - 60s));
    BOOST_TEST(format_time(c.not_after) == format_time(now + std::chrono::days(30)));
    BOOST_TEST((from_asn1_time(X509_get0_notBefore(c.cert.get())) == now - 60s));
    BOOST_TEST((from_asn1_time(X509_get0_notAfter(c.cert.get())) == now + std::chrono::days(30)));

    // Default validity.
    req.validity_days = 0;
    req.serial_decimal = random_serial(openssl_rng()).value();
    auto d = issue_ok(ec_ca(), key.get(), req, now);
    BOOST_TEST((from_asn1_time(X509_get0_notAfter(d.cert.get())) == now + std::chrono::days(365)));

    // Default beyond the policy maximum is capped to it; asking beyond it is an error.
    issuance_policy p = test_policy();
    p.default_validity_days = 400;
    p.max_validity_days = 100;
    auto capped = issue_certificate(ec_ca(), key.get(), req, p, now);
    BOOST_REQUIRE(capped.has_value());
    BOOST_TEST((from_asn1_time(X509_get0_notAfter(capped->cert.get())) == now + std::chrono::days(100)));
    req.validity_days = 101;
    auto too_long = issue_certificate(ec_ca(), key.get(), req, p, now);
    BOOST_REQUIRE(!too_long.has_value());
    BOOST_TEST(too_long.error().field == "validity_days");
    req.validity_days = -1;
    BOOST_TEST(validate_issue_request(req, p).error().field == "validity_days");

    // Never past the CA's notAfter.
    ca_options o;
    o.type = key_type::ec_p256;
    o.validity_days = 10;
    auto short_ca = certificate_authority::create(o, now, openssl_rng());
    BOOST_REQUIRE(short_ca.has_value());
    req.validity_days = 30;
    auto s = issue_ok(*short_ca, key.get(), req, now);
    BOOST_TEST((from_asn1_time(X509_get0_notAfter(s.cert.get())) == short_ca->not_after()));
    BOOST_TEST((s.not_after == short_ca->not_after()));
    temp_dir t;
    BOOST_TEST(openssl_verifies(t, *short_ca, s.pem));

    // An expired CA signs nothing.
    auto late = issue_certificate(*short_ca, key.get(), req, test_policy(), now + std::chrono::days(11));
    BOOST_REQUIRE(!late.has_value());
}

BOOST_AUTO_TEST_CASE(invalid_requests) {
    auto key = make_key(key_type::ec_p256);
    auto expect = [&](issue_request req, errc code, const char* field) {
        auto r = issue_certificate(ec_ca(), key.get(), req, test_policy(), now_s());
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == code);
        BOOST_TEST(r.error().field == field);
    };
    auto req = make_request("x");
    req.subject.common_name.clear();
    expect(req, errc::invalid_argument, "common_name");
    req = make_request("x");
    req.subject.country = "Germany";
    expect(req, errc::invalid_argument, "country");
    req = make_request("x");
    req.sans.ip = {"1.2.3"};
    expect(req, errc::invalid_argument, "subject_alt_names");
    req = make_request("x");
    req.sans.uri = {"example.org/no-scheme"};
    expect(req, errc::invalid_argument, "subject_alt_names");
    req = make_request("x");
    req.serial_decimal.clear();
    expect(req, errc::invalid_argument, "serial_number");

    ossl::pkey rsa1024(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
    auto r = issue_certificate(ec_ca(), rsa1024.get(), make_request("x"), test_policy(), now_s());
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::unsupported_key);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(csr)

BOOST_AUTO_TEST_CASE(create_and_parse_round_trip) {
    temp_dir d;
    subject_fields s;
    s.common_name = "device-17";
    s.email = "dev17@example.org";
    s.organization = "Example";
    s.organizational_unit = "IoT";
    s.country = "FR";
    s.state = "IDF";
    s.locality = "Paris";
    subject_alt_names sans;
    sans.dns = {"device-17.example.org"};
    sans.ip = {"192.0.2.17"};
    for (key_type t : {key_type::rsa2048, key_type::ec_p384, key_type::ed25519}) {
        auto g = create_csr(s, sans, t);
        BOOST_REQUIRE(g.has_value());
        BOOST_TEST(g->key_type == to_string(t));
        BOOST_TEST(g->key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        write_text(d / "r.csr", g->csr_pem);
        auto v = run("openssl req -verify -noout -in " + quote(d / "r.csr"));
        BOOST_TEST(v.exit_code == 0, v.output);

        auto p = parse_csr(g->csr_pem);
        BOOST_REQUIRE(p.has_value());
        BOOST_TEST((p->subject == s));
        BOOST_TEST((p->sans == sans));
        BOOST_TEST(p->key_type == to_string(t));
        BOOST_TEST(EVP_PKEY_eq(p->public_key.get(), g->key.get()) == 1);
        BOOST_TEST(p->pem == g->csr_pem);
    }
    subject_fields bad = s;
    bad.country = "FRA";
    auto r = create_csr(bad, {}, key_type::ec_p256);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::invalid_argument);
    BOOST_TEST(r.error().field == "country");
}

BOOST_AUTO_TEST_CASE(csr_extensions_are_ignored) {
    temp_dir d;
    auto gen = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + quote(d / "k.pem") +
                   " -subj '/CN=sneaky/O=Evil' -addext 'basicConstraints=critical,CA:TRUE'"
                   " -addext 'extendedKeyUsage=serverAuth,codeSigning' -addext 'keyUsage=critical,keyCertSign,cRLSign'"
                   " -addext 'subjectAltName=DNS:sneaky.example' -out " +
                   quote(d / "r.csr"));
    BOOST_REQUIRE_MESSAGE(gen.exit_code == 0, gen.output);
    auto p = parse_csr(read_text(d / "r.csr"));
    BOOST_REQUIRE(p.has_value());
    BOOST_TEST(p->subject.common_name == "sneaky");
    BOOST_TEST(p->sans.dns == std::vector<std::string>{"sneaky.example"}, boost::test_tools::per_element());

    issue_request req = make_request("ignored");
    req.subject = p->subject;
    auto c = issue_ok(rsa_ca(), p->public_key.get(), req);
    check_client_profile(c.cert.get(), rsa_ca(), false, {NID_client_auth}, {});
    BOOST_TEST(openssl_verifies(d, rsa_ca(), c.pem));
    write_text(d / "c.crt", c.pem);
    auto text = run("openssl x509 -noout -text -in " + quote(d / "c.crt"));
    BOOST_TEST(text.output.find("CA:TRUE") == std::string::npos);
    BOOST_TEST(text.output.find("CA:FALSE") != std::string::npos);
    BOOST_TEST(text.output.find("Code Signing") == std::string::npos);
    BOOST_TEST(text.output.find("Certificate Sign") == std::string::npos);
    BOOST_TEST(text.output.find("TLS Web Server Authentication") == std::string::npos);
    // The CSR's key is what got certified.
    auto key = load_private_key(read_text(d / "k.pem"));
    BOOST_REQUIRE(key.has_value());
    BOOST_TEST(X509_check_private_key(c.cert.get(), key->get()) == 1);
}

BOOST_AUTO_TEST_CASE(broken_signature_is_rejected) {
    temp_dir d;
    BOOST_REQUIRE(run("openssl req -new -newkey rsa:2048 -nodes -keyout " + quote(d / "k.pem") +
                      " -subj /CN=tamper -outform DER -out " + quote(d / "r.der"))
                      .exit_code == 0);
    std::string der = read_text(d / "r.der");
    BOOST_REQUIRE(der.size() > 300);
    // The signature BIT STRING is the last element: flip its final byte.
    der.back() = static_cast<char>(der.back() ^ 0x01);
    auto p = parse_csr(to_pem(der, "CERTIFICATE REQUEST"));
    BOOST_REQUIRE(!p.has_value());
    BOOST_TEST(p.error().code == errc::invalid_csr);
    BOOST_TEST(p.error().message.find("signature") != std::string::npos, p.error().message);

    // The untouched CSR parses.
    der.back() = static_cast<char>(der.back() ^ 0x01);
    BOOST_TEST(parse_csr(to_pem(der, "CERTIFICATE REQUEST")).has_value());
}

BOOST_AUTO_TEST_CASE(weak_key_is_rejected) {
    temp_dir d;
    auto gen = run("openssl req -new -newkey rsa:1024 -nodes -keyout " + quote(d / "k.pem") + " -subj /CN=weak -out " +
                   quote(d / "r.csr"));
    BOOST_REQUIRE_MESSAGE(gen.exit_code == 0, gen.output);
    auto p = parse_csr(read_text(d / "r.csr"));
    BOOST_REQUIRE(!p.has_value());
    BOOST_TEST(p.error().code == errc::unsupported_key);
    BOOST_TEST(p.error().message.find("1024") != std::string::npos, p.error().message);

    auto gen2 = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -keyout " +
                    quote(d / "k2.pem") + " -subj /CN=p521 -out " + quote(d / "r2.csr"));
    BOOST_REQUIRE(gen2.exit_code == 0);
    auto p2 = parse_csr(read_text(d / "r2.csr"));
    BOOST_REQUIRE(!p2.has_value());
    BOOST_TEST(p2.error().code == errc::unsupported_key);
}

BOOST_AUTO_TEST_CASE(non_pem_is_rejected) {
    auto expect = [](std::string_view in, const char* why) {
        auto p = parse_csr(in);
        BOOST_REQUIRE(!p.has_value());
        BOOST_TEST(p.error().code == errc::invalid_csr);
        BOOST_TEST(p.error().message.find(why) != std::string::npos, p.error().message);
    };
    expect("hello, I am not a CSR", "not PEM");
    expect(std::string("\x30\x82\x01\x00", 4), "not PEM");
    expect("-----BEGIN CERTIFICATE REQUEST-----\n!!!notbase64!!!\n-----END CERTIFICATE REQUEST-----\n",
           "does not parse");
    expect("-----BEGIN CERTIFICATE REQUEST-----\nMIIBADCBpwIBADAA\n-----END CERTIFICATE REQUEST-----\n",
           "does not parse");
    expect(std::string(70 * 1024, 'A'), "64 KiB");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(crl)

void crl_round_trip(const certificate_authority& ca) {
    temp_dir d;
    auto key = make_key(key_type::ec_p256);
    auto revoked1 = issue_ok(ca, key.get(), make_request("revoked-1"));
    auto revoked2 = issue_ok(ca, key.get(), make_request("revoked-2"));
    auto held = issue_ok(ca, key.get(), make_request("held"));
    auto good = issue_ok(ca, key.get(), make_request("good"));

    const time_point now = now_s();
    std::vector<crl_entry> entries = {
        {revoked1.serial_decimal, now - 120s, revocation_reason::key_compromise, now - 3600s},
        {revoked2.serial_decimal, now - 60s, revocation_reason::unspecified, std::nullopt},
        {held.serial_decimal, now - 30s, revocation_reason::certificate_hold, std::nullopt},
    };
    crl_params params{42, now, now + 24h};
    auto crl = build_crl(ca, entries, params);
    BOOST_REQUIRE(crl.has_value());
    BOOST_TEST(crl->crl_number == 42u);
    BOOST_TEST((crl->this_update == now));
    BOOST_TEST((crl->next_update == now + 24h));
    BOOST_TEST(crl->pem.starts_with("-----BEGIN X509 CRL-----"));

    write_text(d / "ca.crt", ca.cert_pem());
    write_text(d / "crl.pem", crl->pem);
    write_text(d / "crl.der", crl->der);
    auto text = run("openssl crl -text -noout -in " + quote(d / "crl.pem"));
    BOOST_REQUIRE(text.exit_code == 0);
    BOOST_TEST_MESSAGE(text.output);
    BOOST_TEST(text.output.find("Version 2") != std::string::npos);
    BOOST_TEST(text.output.find("Serial Number: " + decimal_to_hex(revoked1.serial_decimal)) != std::string::npos);
    BOOST_TEST(text.output.find("Serial Number: " + decimal_to_hex(revoked2.serial_decimal)) != std::string::npos);
    BOOST_TEST(text.output.find("Serial Number: " + decimal_to_hex(held.serial_decimal)) != std::string::npos);
    BOOST_TEST(text.output.find("Serial Number: " + decimal_to_hex(good.serial_decimal)) == std::string::npos);
    BOOST_TEST(text.output.find("Key Compromise") != std::string::npos);
    BOOST_TEST(text.output.find("Certificate Hold") != std::string::npos);
    BOOST_TEST(text.output.find("Invalidity Date") != std::string::npos);
    BOOST_TEST(text.output.find("X509v3 CRL Number") != std::string::npos);
    BOOST_TEST(text.output.find("X509v3 Authority Key Identifier") != std::string::npos);
    BOOST_TEST(count(text.output, "X509v3 CRL Reason Code") == 2u); // none for unspecified

    auto sig = run("openssl crl -noout -in " + quote(d / "crl.pem") + " -CAfile " + quote(d / "ca.crt"));
    BOOST_TEST(sig.exit_code == 0, sig.output);
    BOOST_TEST(sig.output.find("verify OK") != std::string::npos, sig.output);
    auto der_ok = run("openssl crl -inform DER -noout -in " + quote(d / "crl.der") + " -CAfile " + quote(d / "ca.crt"));
    BOOST_TEST(der_ok.output.find("verify OK") != std::string::npos, der_ok.output);

    auto verify = [&](const issued_cert& c) {
        write_text(d / "leaf.crt", c.pem);
        return run("openssl verify -crl_check -CAfile " + quote(d / "ca.crt") + " -CRLfile " + quote(d / "crl.pem") +
                   " " + quote(d / "leaf.crt"));
    };
    auto r1 = verify(revoked1);
    BOOST_TEST(r1.exit_code != 0);
    BOOST_TEST(r1.output.find("certificate revoked") != std::string::npos, r1.output);
    BOOST_TEST(verify(revoked2).exit_code != 0);
    BOOST_TEST(verify(held).exit_code != 0);
    auto g = verify(good);
    BOOST_TEST(g.exit_code == 0, g.output);

    // Parsed back: v2, number, AKI = CA SKI, entries and their extensions.
    auto in = ossl::mem_bio(crl->pem);
    ossl::x509_crl parsed(PEM_read_bio_X509_CRL(in.get(), nullptr, nullptr, nullptr));
    BOOST_REQUIRE(parsed);
    BOOST_TEST(X509_CRL_get_version(parsed.get()) == X509_CRL_VERSION_2);
    BOOST_TEST(X509_CRL_verify(parsed.get(), X509_get0_pubkey(ca.cert())) == 1);
    ossl::asn1_integer num(
        static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(parsed.get(), NID_crl_number, nullptr, nullptr)));
    BOOST_REQUIRE(num);
    BOOST_TEST(ASN1_INTEGER_get(num.get()) == 42);
    ossl::authority_keyid akid(static_cast<AUTHORITY_KEYID*>(
        X509_CRL_get_ext_d2i(parsed.get(), NID_authority_key_identifier, nullptr, nullptr)));
    BOOST_REQUIRE(akid);
    BOOST_TEST(asn1_octets(akid->keyid) == asn1_octets(X509_get0_subject_key_id(ca.cert())));
    BOOST_TEST((from_asn1_time(X509_CRL_get0_lastUpdate(parsed.get())) == now));
    BOOST_TEST((from_asn1_time(X509_CRL_get0_nextUpdate(parsed.get())) == now + 24h));
    STACK_OF(X509_REVOKED)* revs = X509_CRL_get_REVOKED(parsed.get());
    BOOST_REQUIRE_EQUAL(sk_X509_REVOKED_num(revs), 3);
    for (int i = 0; i < 3; ++i) {
        X509_REVOKED* rv = sk_X509_REVOKED_value(revs, i);
        auto serial = serial_to_decimal(X509_REVOKED_get0_serialNumber(rv)).value();
        ossl::asn1_enumerated reason(
            static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, nullptr, nullptr)));
        ossl::asn1_time inv(
            static_cast<ASN1_GENERALIZEDTIME*>(X509_REVOKED_get_ext_d2i(rv, NID_invalidity_date, nullptr, nullptr)));
        if (serial == revoked1.serial_decimal) {
            BOOST_REQUIRE(reason);
            BOOST_TEST(ASN1_ENUMERATED_get(reason.get()) == 1);
            BOOST_REQUIRE(inv);
            BOOST_TEST(ASN1_STRING_type(inv.get()) == V_ASN1_GENERALIZEDTIME);
            BOOST_TEST((from_asn1_time(inv.get()) == now - 3600s));
            BOOST_TEST((from_asn1_time(X509_REVOKED_get0_revocationDate(rv)) == now - 120s));
        } else if (serial == revoked2.serial_decimal) {
            BOOST_TEST(!reason);
            BOOST_TEST(!inv);
        } else {
            BOOST_TEST(serial == held.serial_decimal);
            BOOST_REQUIRE(reason);
            BOOST_TEST(ASN1_ENUMERATED_get(reason.get()) == 6);
        }
    }
}

BOOST_AUTO_TEST_CASE(rsa_ca_crl_round_trip) { crl_round_trip(rsa_ca()); }
BOOST_AUTO_TEST_CASE(ec_ca_crl_round_trip) { crl_round_trip(ec_ca()); }

BOOST_AUTO_TEST_CASE(empty_crl_and_bad_params) {
    temp_dir d;
    const time_point now = now_s();
    auto crl = build_crl(ec_ca(), {}, crl_params{1, now, now + 1h});
    BOOST_REQUIRE(crl.has_value());
    write_text(d / "ca.crt", ec_ca().cert_pem());
    write_text(d / "crl.pem", crl->pem);
    auto sig = run("openssl crl -noout -in " + quote(d / "crl.pem") + " -CAfile " + quote(d / "ca.crt"));
    BOOST_TEST(sig.output.find("verify OK") != std::string::npos, sig.output);

    auto bad = build_crl(ec_ca(), {}, crl_params{2, now, now});
    BOOST_REQUIRE(!bad.has_value());
    BOOST_TEST(bad.error().code == errc::invalid_argument);

    std::vector<crl_entry> junk = {{"not-a-serial", now, revocation_reason::superseded, std::nullopt}};
    auto j = build_crl(ec_ca(), junk, crl_params{3, now, now + 1h});
    BOOST_REQUIRE(!j.has_value());
    BOOST_TEST(j.error().code == errc::invalid_argument);
}

// A random decimal serial of 1..20 bytes (some with the top bit set: INTEGER padding).
std::string random_serial(std::mt19937_64& g) {
    std::uniform_int_distribution<int> len(1, 20), byte(0, 255);
    ossl::bignum bn(BN_new());
    std::vector<unsigned char> b(static_cast<std::size_t>(len(g)));
    for (auto& c : b) c = static_cast<unsigned char>(byte(g));
    BN_bin2bn(b.data(), static_cast<int>(b.size()), bn.get());
    ossl::openssl_string dec(BN_bn2dec(bn.get()));
    return dec.get();
}

// Random entries (distinct serials), every reason, dates from 1940 to 2060 (UTCTime and
// GeneralizedTime), with and without invalidity dates.
std::vector<crl_entry> random_entries(std::mt19937_64& g, std::size_t n) {
    static const revocation_reason reasons[] = {
        revocation_reason::unspecified,         revocation_reason::key_compromise,
        revocation_reason::ca_compromise,       revocation_reason::affiliation_changed,
        revocation_reason::superseded,          revocation_reason::cessation_of_operation,
        revocation_reason::certificate_hold,    revocation_reason::remove_from_crl,
        revocation_reason::privilege_withdrawn, revocation_reason::aa_compromise};
    std::uniform_int_distribution<long long> when(-946771200LL, 2871763200LL); // 1940 .. 2061
    std::uniform_int_distribution<std::size_t> pick(0, std::size(reasons) - 1);
    std::set<std::string> seen;
    std::vector<crl_entry> out;
    while (out.size() < n) {
        auto serial = random_serial(g);
        if (serial == "0" || !seen.insert(serial).second) continue;
        crl_entry e{serial, time_point{} + std::chrono::seconds(when(g)), reasons[pick(g)], std::nullopt};
        if (g() % 3 == 0) e.invalidity_date = time_point{} + std::chrono::seconds(when(g));
        out.push_back(std::move(e));
    }
    return out;
}

std::shared_ptr<const certificate_authority> unowned(const certificate_authority& ca) {
    return std::shared_ptr<const certificate_authority>(&ca, [](const certificate_authority*) {});
}

std::string revoked_der(const X509_REVOKED* r) {
    unsigned char* der = nullptr;
    int n = i2d_X509_REVOKED(const_cast<X509_REVOKED*>(r), &der);
    BOOST_REQUIRE(n > 0);
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return std::string(owned.get(), static_cast<std::size_t>(n));
}

ossl::x509_crl parse_der_crl(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509_crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    BOOST_REQUIRE(crl);
    BOOST_TEST((p == reinterpret_cast<const unsigned char*>(der.data()) + der.size()));
    return crl;
}

// The pre-encoded path against build_crl: randomized entries put into a crl_entry_set in random
// order (some replaced, some erased) give the same CRL: byte for byte under RSA (PKCS#1 v1.5 is
// deterministic), the same TBSCertList and entries under ECDSA; openssl verifies both.
void signer_matches_build_crl(const certificate_authority& ca, bool byte_equal) {
    std::mt19937_64 g(0xc0ffee + (byte_equal ? 1 : 2));
    auto signer = crl_signer::make(unowned(ca));
    BOOST_REQUIRE(signer.has_value());
    temp_dir d;
    write_text(d / "ca.crt", ca.cert_pem());
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{300}}) {
        auto entries = random_entries(g, n + n / 3);
        crl_entry_set set;
        std::vector<crl_entry> shuffled = entries;
        std::shuffle(shuffled.begin(), shuffled.end(), g);
        // A first version of each entry, then the final one over it; the extra third erased.
        for (auto e : shuffled) {
            e.reason = revocation_reason::certificate_hold;
            BOOST_REQUIRE(set.put(e).has_value());
        }
        for (const auto& e : shuffled) BOOST_REQUIRE(set.put(e).has_value());
        std::vector<crl_entry> kept;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            if (i < n)
                kept.push_back(entries[i]);
            else
                set.erase(entries[i].serial_decimal);
        }
        BOOST_TEST(set.size() == kept.size());

        const time_point now = now_s();
        crl_params params{1000 + n, now, now + 24h};
        auto ref = build_crl(ca, kept, params);
        BOOST_REQUIRE(ref.has_value());
        auto fast = (*signer)->build(set.concatenated(), params);
        BOOST_REQUIRE(fast.has_value());
        BOOST_TEST(fast->crl_number == ref->crl_number);
        BOOST_TEST((fast->this_update == ref->this_update && fast->next_update == ref->next_update));
        if (byte_equal) {
            BOOST_TEST(fast->der == ref->der, "n=" << n);
            BOOST_TEST(fast->pem == ref->pem);
        }
        auto a = parse_der_crl(ref->der);
        auto b = parse_der_crl(fast->der);
        BOOST_TEST(X509_CRL_verify(b.get(), X509_get0_pubkey(ca.cert())) == 1);
        auto tbs = [](X509_CRL* c) {
            unsigned char* der = nullptr;
            int len = i2d_re_X509_CRL_tbs(c, &der);
            BOOST_REQUIRE(len > 0);
            ossl::openssl_string owned(reinterpret_cast<char*>(der));
            return std::string(owned.get(), static_cast<std::size_t>(len));
        };
        BOOST_TEST(tbs(a.get()) == tbs(b.get()), "n=" << n);
        auto* ra = X509_CRL_get_REVOKED(a.get());
        auto* rb = X509_CRL_get_REVOKED(b.get());
        BOOST_REQUIRE_EQUAL(ra ? sk_X509_REVOKED_num(ra) : 0, rb ? sk_X509_REVOKED_num(rb) : 0);
        for (int i = 0; rb && i < sk_X509_REVOKED_num(rb); ++i)
            BOOST_TEST(revoked_der(sk_X509_REVOKED_value(ra, i)) == revoked_der(sk_X509_REVOKED_value(rb, i)));
        write_text(d / "crl.der", fast->der);
        auto v = run("openssl crl -inform DER -noout -in " + quote(d / "crl.der") + " -CAfile " + quote(d / "ca.crt"));
        BOOST_TEST(v.output.find("verify OK") != std::string::npos, v.output);
        write_text(d / "crl.pem", fast->pem);
        auto vp = run("openssl crl -noout -in " + quote(d / "crl.pem") + " -CAfile " + quote(d / "ca.crt"));
        BOOST_TEST(vp.output.find("verify OK") != std::string::npos, vp.output);
    }
}

BOOST_AUTO_TEST_CASE(rsa_signer_is_byte_for_byte_build_crl) { signer_matches_build_crl(rsa_ca(), true); }
BOOST_AUTO_TEST_CASE(ec_signer_matches_build_crl) { signer_matches_build_crl(ec_ca(), false); }

BOOST_AUTO_TEST_CASE(entry_set_refuses_bad_serials) {
    crl_entry_set set;
    for (const char* bad :
         {"", "0", "not-a-serial", "012", "-5", "12a", "1461501637330902918203684832716283019655932542976"}) {
        auto r = set.put(crl_entry{bad, now_s(), revocation_reason::superseded, std::nullopt});
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::invalid_argument);
    }
    BOOST_TEST(set.size() == 0u);
}

// The rebuild at 3,000 and 30,000 entries through both paths, on the RSA-4096 CA (printed with
// --log_level=message; bench/revoke.sh measures it end to end).
BOOST_AUTO_TEST_CASE(rebuild_times) {
    std::mt19937_64 g(7);
    auto signer = crl_signer::make(unowned(rsa_ca()));
    BOOST_REQUIRE(signer.has_value());
    for (std::size_t n : {std::size_t{3000}, std::size_t{30000}}) {
        auto entries = random_entries(g, n);
        crl_entry_set set;
        for (const auto& e : entries) BOOST_REQUIRE(set.put(e).has_value());
        const time_point now = now_s();
        crl_params params{7, now, now + 24h};
        auto t0 = std::chrono::steady_clock::now();
        auto ref = build_crl(rsa_ca(), entries, params);
        auto t1 = std::chrono::steady_clock::now();
        auto fast = (*signer)->build(set.concatenated(), params);
        auto t2 = std::chrono::steady_clock::now();
        BOOST_REQUIRE_MESSAGE(ref.has_value(), ref.error().message);
        BOOST_REQUIRE(fast.has_value());
        BOOST_TEST(fast->der == ref->der);
        auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
        BOOST_TEST_MESSAGE("CRL of " << n << " entries (" << fast->der.size() << " bytes): build_crl " << ms(t0, t1)
                                     << " ms, crl_signer " << ms(t1, t2) << " ms");
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pkcs12)

BOOST_AUTO_TEST_CASE(bundle_opens_with_openssl) {
    temp_dir d;
    for (key_type t : {key_type::rsa2048, key_type::ec_p256, key_type::ed25519}) {
        BOOST_TEST_CONTEXT("key " << to_string(t)) {
            auto key = make_key(t);
            auto c = issue_ok(rsa_ca(), key.get(), make_request("p12-holder"));
            auto key_pem = private_key_to_pem(key.get());
            BOOST_REQUIRE(key_pem.has_value());
            auto p12 = build_pkcs12(c.pem, *key_pem, rsa_ca().cert_pem(), "correct-horse", "p12-holder");
            BOOST_REQUIRE_MESSAGE(p12.has_value(), (p12.has_value() ? "" : p12.error().message));
            write_text(d / "f.p12", *p12);

            auto info = run("openssl pkcs12 -info -noout -in " + quote(d / "f.p12") + " -passin pass:correct-horse");
            BOOST_TEST(info.exit_code == 0, info.output);
            BOOST_TEST(info.output.find("MAC: sha256") != std::string::npos, info.output);
            BOOST_TEST(info.output.find("PBKDF2") != std::string::npos, info.output);
            BOOST_TEST(info.output.find("AES-256-CBC") != std::string::npos, info.output);
            BOOST_TEST(info.output.find("RC2") == std::string::npos);
            BOOST_TEST(info.output.find("3DES") == std::string::npos);

            auto certs = run("openssl pkcs12 -nokeys -in " + quote(d / "f.p12") + " -passin pass:correct-horse");
            BOOST_TEST(count(certs.output, "-----BEGIN CERTIFICATE-----") == 2u);
            BOOST_TEST(certs.output.find("friendlyName: p12-holder") != std::string::npos);
            auto keys = run("openssl pkcs12 -nocerts -nodes -in " + quote(d / "f.p12") + " -passin pass:correct-horse");
            BOOST_TEST(keys.output.find("-----BEGIN PRIVATE KEY-----") != std::string::npos);

            auto wrong = run("openssl pkcs12 -info -noout -in " + quote(d / "f.p12") + " -passin pass:wrong-horse");
            BOOST_TEST(wrong.exit_code != 0, wrong.output);
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_inputs) {
    auto key = make_key(key_type::ec_p256);
    auto c = issue_ok(ec_ca(), key.get(), make_request("p12"));
    auto key_pem = *private_key_to_pem(key.get());
    auto short_pw = build_pkcs12(c.pem, key_pem, ec_ca().cert_pem(), "1234567", "");
    BOOST_REQUIRE(!short_pw.has_value());
    BOOST_TEST(short_pw.error().code == errc::invalid_argument);
    BOOST_TEST(short_pw.error().field == "password");
    BOOST_TEST(build_pkcs12(c.pem, key_pem, ec_ca().cert_pem(), "12345678", "").has_value());

    auto other = *private_key_to_pem(make_key(key_type::ec_p256).get());
    auto mismatch = build_pkcs12(c.pem, other, ec_ca().cert_pem(), "12345678", "x");
    BOOST_REQUIRE(!mismatch.has_value());
    BOOST_TEST(mismatch.error().code == errc::invalid_argument);
    auto junk = build_pkcs12("junk", key_pem, ec_ca().cert_pem(), "12345678", "x");
    BOOST_REQUIRE(!junk.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// serial_to_decimal writes serials of up to 32 octets itself (the OCSP hot path): it must agree
// with BN_bn2dec on the edges of its base-10^9 limbs, on random lengths, and past 32 octets.
BOOST_AUTO_TEST_CASE(serial_to_decimal_agrees_with_bn_bn2dec) {
    auto check = [](const std::vector<unsigned char>& bytes) {
        ossl::bignum bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
        BOOST_REQUIRE(bn);
        ossl::asn1_integer i(BN_to_ASN1_INTEGER(bn.get(), nullptr));
        BOOST_REQUIRE(i);
        ossl::openssl_string want(BN_bn2dec(bn.get()));
        BOOST_TEST(serial_to_decimal(i.get()).value() == std::string(want.get()));
    };
    check({});
    check({0x01});
    check({0x3b, 0x9a, 0xc9, 0xff}); // 10^9 - 1
    check({0x3b, 0x9a, 0xca, 0x00}); // 10^9
    check({0x3b, 0x9a, 0xca, 0x01});
    check({0x01, 0x00, 0x00, 0x00, 0x00});                   // 2^32
    check({0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}); // 10^18
    check(std::vector<unsigned char>(20, 0xff));
    check(std::vector<unsigned char>(32, 0xff));
    check(std::vector<unsigned char>(33, 0xff)); // past the fast path: BN_bn2dec
    for (int i = 0; i < 500; ++i) {
        std::vector<unsigned char> b(static_cast<std::size_t>(1 + i % 34));
        RAND_bytes(b.data(), static_cast<int>(b.size()));
        if (i % 7 == 0) b[0] = 0;
        check(b);
    }
}
