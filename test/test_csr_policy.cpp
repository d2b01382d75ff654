// Issue 10 point 7: CSRs signed with MD5 or SHA-1, and keys with explicit EC parameters, are
// refused (400, field "csr"), in parse_csr and through POST /api/client-certs; issued
// certificates carry named curves only. The CSRs are made by the openssl CLI.
#define BOOST_TEST_MODULE test_csr_policy
#include <boost/test/unit_test.hpp>

#include "core/csr.hpp"
#include "core/keys.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// `openssl req -new` with `args` (key and digest options) for /CN=`cn`; the CSR PEM.
std::string openssl_req(const temp_dir& d, const std::string& cn, const std::string& args) {
    auto r = run("openssl req -new " + args + " -subj /CN=" + cn + " -out " + quote(d / (cn + ".csr")));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return read_text(d / (cn + ".csr"));
}

std::string ec_new(const temp_dir& d, const std::string& cn) {
    return "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + quote(d / (cn + ".key"));
}

// A P-256 key written with explicit curve parameters (RFC 5480 specifiedCurve), as `-key` args.
std::string explicit_ec_key(const temp_dir& d) {
    auto r =
        run("openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out " + quote(d / "explicit.key"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return "-key " + quote(d / "explicit.key");
}

struct weak_csr {
    std::string name, pem;
};

// The CSRs every path must refuse, and the code each gets.
std::vector<std::pair<weak_csr, std::string>> refused_csrs(const temp_dir& d) {
    return {
        {{"ecdsa-sha1", openssl_req(d, "ecdsa-sha1", ec_new(d, "ecdsa-sha1") + " -sha1")}, "INVALID_CSR"},
        {{"rsa-sha1",
          openssl_req(d, "rsa-sha1", "-newkey rsa:2048 -nodes -keyout " + quote(d / "rsa-sha1.key") + " -sha1")},
         "INVALID_CSR"},
        {{"rsa-md5",
          openssl_req(d, "rsa-md5", "-newkey rsa:2048 -nodes -keyout " + quote(d / "rsa-md5.key") + " -md5")},
         "INVALID_CSR"},
        // RSASSA-PSS without a hashAlgorithm parameter means SHA-1 (RFC 4055 3.1)
        {{"pss-sha1", openssl_req(d, "pss-sha1",
                                  "-newkey rsa:2048 -nodes -keyout " + quote(d / "pss-sha1.key") +
                                      " -sha1 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:20")},
         "INVALID_CSR"},
        {{"explicit-ec", openssl_req(d, "explicit-ec", explicit_ec_key(d) + " -sha256")}, "UNSUPPORTED_KEY"},
    };
}

} // namespace

BOOST_AUTO_TEST_CASE(the_fixtures_are_what_they_claim) {
    temp_dir d;
    for (const auto& [csr, code] : refused_csrs(d)) {
        write_text(d / "t.csr", csr.pem);
        auto text = run("openssl req -noout -text -in " + quote(d / "t.csr"));
        BOOST_TEST_CONTEXT(csr.name) {
            BOOST_TEST(run("openssl req -noout -verify -in " + quote(d / "t.csr")).exit_code == 0);
            if (csr.name == "explicit-ec") BOOST_TEST(text.output.find("Field Type: prime-field") != std::string::npos);
            if (csr.name == "rsa-md5") BOOST_TEST(text.output.find("md5WithRSAEncryption") != std::string::npos);
            if (csr.name == "ecdsa-sha1") BOOST_TEST(text.output.find("ecdsa-with-SHA1") != std::string::npos);
            if (csr.name == "pss-sha1") BOOST_TEST(text.output.find("rsassaPss") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(parse_csr_refuses_md5_sha1_and_explicit_curves) {
    temp_dir d;
    for (const auto& [csr, code] : refused_csrs(d)) {
        BOOST_TEST_CONTEXT(csr.name) {
            auto p = parse_csr(csr.pem);
            BOOST_REQUIRE(!p.has_value());
            BOOST_TEST(p.error().field == "csr");
            BOOST_TEST(std::string(errc_name(p.error().code)) == code);
        }
    }
    // what is allowed still parses: SHA-256/384 with ECDSA and RSA, RSASSA-PSS with SHA-256, Ed25519
    for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
             {"ec256", ec_new(d, "ec256") + " -sha256"},
             {"ec384",
              "-newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout " + quote(d / "ec384.key") + " -sha384"},
             {"rsa256", "-newkey rsa:2048 -nodes -keyout " + quote(d / "rsa256.key") + " -sha256"},
             {"pss256", "-newkey rsa:2048 -nodes -keyout " + quote(d / "pss256.key") +
                            " -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32"},
             {"ed25519", "-newkey ed25519 -nodes -keyout " + quote(d / "ed25519.key")},
         }) {
        BOOST_TEST_CONTEXT(name) {
            auto p = parse_csr(openssl_req(d, name, args));
            BOOST_TEST(p.has_value(), (p ? "" : p.error().message));
        }
    }
    // the key on its own: explicit parameters are refused wherever a key is checked (issuance too)
    auto key = load_private_key(read_text(d / "explicit.key"));
    BOOST_REQUIRE(key.has_value());
    auto ok = check_allowed_key(key->get());
    BOOST_REQUIRE(!ok.has_value());
    BOOST_TEST(ok.error().code == errc::unsupported_key);
    BOOST_TEST(ok.error().message.find("explicit") != std::string::npos, ok.error().message);
}

BOOST_AUTO_TEST_CASE(the_api_refuses_them_with_400_csr_and_issues_named_curves_only) {
    test_server srv;
    http_client http(srv.port());
    temp_dir d;
    auto create = [&](const std::string& cn, const std::string& pem) {
        return http.post_json("/api/client-certs",
                              R"({"identifier":")" + cn + R"(","common_name":")" + cn + R"(","csr":)" +
                                  json::serialize(json::value(pem)) + "}",
                              srv.tokens.operator_);
    };
    for (const auto& [csr, code] : refused_csrs(d)) {
        BOOST_TEST_CONTEXT(csr.name) {
            auto r = create(csr.name, csr.pem);
            BOOST_TEST_INFO("body: " << r.body);
            BOOST_TEST(r.status == 400u);
            auto o = obj(r);
            BOOST_TEST(str(o, "field") == "csr");
            BOOST_TEST(str(o, "code") == code);
            BOOST_TEST(http.get("/api/client-certs/" + csr.name, srv.tokens.viewer).status == 404u);
        }
    }

    // A named-curve CSR, and a key the server generates: the certificates name their curve
    // (RFC 5480 2.1.1 namedCurve), never spell out parameters.
    auto from_csr = create("named", openssl_req(d, "named", ec_new(d, "named") + " -sha256"));
    BOOST_REQUIRE_MESSAGE(from_csr.status == 201u, from_csr.body);
    auto generated = http.post_json(
        "/api/client-certs", R"({"identifier":"gen","common_name":"gen","key_type":"ec-p384"})", srv.tokens.operator_);
    BOOST_REQUIRE_MESSAGE(generated.status == 201u, generated.body);
    for (const auto& [r, oid, nist] : {std::tuple{from_csr, "ASN1 OID: prime256v1", "NIST CURVE: P-256"},
                                       std::tuple{generated, "ASN1 OID: secp384r1", "NIST CURVE: P-384"}}) {
        write_text(d / "c.crt", str(obj(r), "certificate"));
        auto text = run("openssl x509 -noout -text -in " + quote(d / "c.crt"));
        BOOST_REQUIRE(text.exit_code == 0);
        BOOST_TEST(text.output.find(oid) != std::string::npos, text.output);
        BOOST_TEST(text.output.find(nist) != std::string::npos);
        BOOST_TEST(text.output.find("Field Type") == std::string::npos);
    }
}
