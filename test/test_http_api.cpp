// The REST API against the real server on 127.0.0.1 (port 0), driven by a real HTTP client:
// issue 4 acceptance 1 (lifecycle, field names, compatibility routes), 2 (bad input),
// 4 (revocation reaches the CRL and OCSP status at once) and 7 (/metrics).
#define BOOST_TEST_MODULE test_http_api
#include <boost/test/unit_test.hpp>

#include "app/backend.hpp"
#include "app/bootstrap.hpp"
#include "app/server_options.hpp"
#include "core/crl.hpp"
#include "support/crl_gate.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>

#include <future>
#include <regex>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;

namespace {

// Every error answer: the JSON body of docs/api.md "Errors" and the headers every answer carries.
void expect_error(const http_reply& r, unsigned status, const std::string& code, const std::string& field = {}) {
    BOOST_TEST_INFO("body: " << r.body);
    BOOST_TEST(r.status == status);
    BOOST_TEST(r.header("content-type") == "application/json");
    BOOST_TEST(!r.header("x-request-id").empty());
    BOOST_TEST(r.header("x-certmate-api-version") == "1");
    auto o = obj(r);
    BOOST_TEST(!str(o, "error").empty());
    BOOST_TEST(!str(o, "message").empty());
    BOOST_TEST(str(o, "code") == code);
    if (!field.empty()) BOOST_TEST(str(o, "field") == field);
}

std::string decimal_to_hex(std::string dec) {
    std::string hex;
    static const char* digits = "0123456789ABCDEF";
    while (!(dec.size() == 1 && dec[0] == '0') && !dec.empty()) {
        std::string q;
        int rem = 0;
        for (char ch : dec) {
            rem = rem * 10 + (ch - '0');
            if (!q.empty() || rem / 16) q += static_cast<char>('0' + rem / 16);
            rem %= 16;
        }
        hex.insert(hex.begin(), digits[rem]);
        dec = q.empty() ? "0" : q;
    }
    if (hex.size() % 2) hex.insert(hex.begin(), '0');
    return hex;
}

std::string openssl_csr(const temp_dir& dir, const std::string& cn) {
    auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                 (dir / (cn + ".key")).string() + " -subj /CN=" + cn + " -out " + (dir / (cn + ".csr")).string());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return read_text(dir / (cn + ".csr"));
}

std::string create_body(const std::string& id, const std::string& extra = {}) {
    return R"({"common_name":")" + id + R"(","identifier":")" + id + "\"" + extra + "}";
}

std::vector<std::string> identifiers(const json::object& page) {
    std::vector<std::string> ids;
    for (const auto& c : page.at("certificates").as_array())
        ids.emplace_back(c.as_object().at("identifier").as_string());
    return ids;
}

struct api_fixture {
    test_server srv;
    http_client http{srv.port()};
    temp_dir work;
    std::string admin = srv.tokens.admin, op = srv.tokens.operator_, viewer = srv.tokens.viewer;

    json::object create(const std::string& body, const std::string& route = "/api/client-certs") {
        auto r = http.post_json(route, body, op);
        BOOST_TEST_INFO("create: " << r.body);
        BOOST_REQUIRE_EQUAL(r.status, 201u);
        return obj(r);
    }
    json::object list(const std::string& query) {
        auto r = http.get("/api/client-certs" + query, viewer);
        BOOST_TEST_INFO(query << ": " << r.body);
        BOOST_REQUIRE_EQUAL(r.status, 200u);
        return obj(r);
    }
    std::size_t total(const std::string& query) { return list(query).at("total").to_number<std::uint64_t>(); }
    // Writes `data` and runs `cmd` with {} replaced by the file.
    command_result openssl_on(const std::string& data, const std::string& name, const std::string& cmd) {
        auto p = work / name;
        write_text(p, data);
        return run(std::regex_replace(cmd, std::regex("\\{\\}"), p.string()));
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(lifecycle_over_http_with_design_field_names, api_fixture) {
    // create with a generated key
    auto alice = create(create_body(
        "alice", R"(,"email":"alice@example.com","organization":"ACME","cert_usage":"vpn",)"
                 R"("subject_alt_names":{"dns":["alice.example.com"]},"notes":"n1","renewal_enabled":true)"));
    for (const char* key : {"type",
                            "identifier",
                            "common_name",
                            "email",
                            "organization",
                            "organizational_unit",
                            "country",
                            "state",
                            "locality",
                            "serial_number",
                            "key_usage",
                            "extended_key_usage",
                            "created_at",
                            "expires_at",
                            "cert_usage",
                            "notes",
                            "revocation",
                            "renewal",
                            "fingerprint_sha256",
                            "key_type",
                            "subject_alt_names",
                            "api_role",
                            "history",
                            "status",
                            "certificate"})
        BOOST_TEST_CONTEXT(key) BOOST_TEST(alice.contains(key));
    BOOST_TEST(str(alice, "type") == "client_certificate");
    BOOST_TEST(str(alice, "cert_usage") == "vpn");
    BOOST_TEST(str(alice, "status") == "active");
    BOOST_TEST(str(alice, "key_type") == "ec-p256");
    BOOST_TEST(str(alice, "certificate").rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
    BOOST_TEST(alice.at("serial_number").is_string());
    const auto& rev = alice.at("revocation").as_object();
    for (const char* key : {"revoked", "revoked_at", "reason_revoked"}) BOOST_TEST(rev.contains(key));
    const auto& ren = alice.at("renewal").as_object();
    for (const char* key : {"renewal_enabled", "renewal_threshold_days", "last_renewed_at"})
        BOOST_TEST(ren.contains(key));

    // create from a CSR: no key held here
    auto bob = create(R"({"identifier":"bob","csr":)" + json::serialize(json::value(openssl_csr(work, "bob"))) + "}");
    BOOST_TEST(str(bob, "common_name") == "bob");
    BOOST_TEST(bob.at("has_private_key").as_bool() == false);
    create(create_body("carol", R"(,"cert_usage":"other","key_type":"ed25519")"));

    // list and each filter
    BOOST_TEST(total("") == 3u);
    BOOST_TEST(identifiers(list("?usage=vpn")) == std::vector<std::string>{"alice"});
    BOOST_TEST(identifiers(list("?cert_usage=other")) == std::vector<std::string>{"carol"});
    BOOST_TEST(total("?status=active") == 3u);
    BOOST_TEST(identifiers(list("?search=BO")) == std::vector<std::string>{"bob"});
    BOOST_TEST(identifiers(list("?search=" + str(alice, "serial_number"))) == std::vector<std::string>{"alice"});
    BOOST_TEST(total("?expiring_within_days=400") == 3u);
    BOOST_TEST(total("?expiring_within_days=10") == 0u);
    BOOST_TEST(total("?status=expiring") == 0u);
    BOOST_TEST(identifiers(list("?sort=identifier")) == (std::vector<std::string>{"alice", "bob", "carol"}));
    BOOST_TEST(identifiers(list("?sort=-identifier")) == (std::vector<std::string>{"carol", "bob", "alice"}));
    BOOST_TEST(identifiers(list("?sort=identifier&order=desc")) == (std::vector<std::string>{"carol", "bob", "alice"}));
    auto page = list("?sort=identifier&limit=1&offset=1");
    BOOST_TEST(identifiers(page) == std::vector<std::string>{"bob"});
    BOOST_TEST(page.at("total").to_number<std::uint64_t>() == 3u);
    BOOST_TEST(page.at("limit").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(page.at("offset").to_number<std::uint64_t>() == 1u);

    // get
    auto got = http.get("/api/client-certs/alice", viewer);
    BOOST_REQUIRE_EQUAL(got.status, 200u);
    BOOST_TEST(str(obj(got), "serial_number") == str(alice, "serial_number"));
    BOOST_TEST(!obj(got).contains("certificate"));

    // downloads, every format
    auto pem = http.get("/api/client-certs/alice/certificate", viewer);
    BOOST_REQUIRE_EQUAL(pem.status, 200u);
    BOOST_TEST(pem.body == str(alice, "certificate"));
    auto der = http.get("/api/client-certs/alice/certificate?format=der", viewer);
    BOOST_REQUIRE_EQUAL(der.status, 200u);
    BOOST_TEST(der.header("content-type") == "application/pkix-cert");
    auto der_check = openssl_on(der.body, "alice.der", "openssl x509 -inform DER -in {} -noout -subject");
    BOOST_TEST(der_check.exit_code == 0);
    BOOST_TEST(der_check.output.find("alice") != std::string::npos);
    auto chain = http.get("/api/client-certs/alice/chain", viewer);
    BOOST_REQUIRE_EQUAL(chain.status, 200u);
    auto ca = http.get("/api/ca", viewer);
    BOOST_REQUIRE_EQUAL(ca.status, 200u);
    const std::string ca_pem = str(obj(ca), "certificate");
    BOOST_TEST(chain.body.find(ca_pem) != std::string::npos);
    write_text(work / "ca.pem", ca_pem);
    auto verify = openssl_on(pem.body, "alice.pem", "openssl verify -CAfile " + (work / "ca.pem").string() + " {}");
    BOOST_TEST(verify.exit_code == 0, verify.output);
    auto csr = http.get("/api/client-certs/alice/csr", viewer);
    BOOST_REQUIRE_EQUAL(csr.status, 200u);
    BOOST_TEST(csr.body.find("BEGIN CERTIFICATE REQUEST") != std::string::npos);
    auto key = http.get("/api/client-certs/alice/private-key", op);
    BOOST_REQUIRE_EQUAL(key.status, 200u);
    BOOST_TEST(key.body.find("BEGIN PRIVATE KEY") != std::string::npos);
    auto match = openssl_on(key.body, "alice.key", "openssl pkey -in {} -pubout");
    auto cert_pub = openssl_on(pem.body, "alice2.pem", "openssl x509 -in {} -noout -pubkey");
    BOOST_TEST(match.output == cert_pub.output);
    auto p12 = http.post_json("/api/client-certs/alice/pkcs12", R"({"password":"s3cret-pass"})", op);
    BOOST_REQUIRE_EQUAL(p12.status, 200u);
    BOOST_TEST(p12.header("content-type") == "application/x-pkcs12");
    auto p12_check = openssl_on(p12.body, "alice.p12", "openssl pkcs12 -info -noout -in {} -passin pass:s3cret-pass");
    BOOST_TEST(p12_check.exit_code == 0, p12_check.output);
    BOOST_TEST(
        openssl_on(p12.body, "alice2.p12", "openssl pkcs12 -info -noout -in {} -passin pass:wrong-pass").exit_code !=
        0);
    expect_error(http.post_json("/api/client-certs/alice/pkcs12", R"({"password":"short"})", op), 400,
                 "INVALID_ARGUMENT", "password");
    expect_error(http.get("/api/client-certs/bob/private-key", op), 404, "NO_PRIVATE_KEY");

    // revoke (and twice: 409)
    auto revoked = http.post_json("/api/client-certs/carol/revoke", R"({"reason":"keyCompromise"})", op);
    BOOST_REQUIRE_EQUAL(revoked.status, 200u);
    BOOST_TEST(str(obj(revoked), "status") == "revoked");
    const json::object rv = obj(revoked).at("revocation").as_object();
    BOOST_TEST(rv.at("revoked").as_bool());
    BOOST_TEST(rv.at("revoked_at").is_string());
    expect_error(http.post_json("/api/client-certs/carol/revoke", "{}", op), 409, "ALREADY_REVOKED");
    BOOST_TEST(identifiers(list("?status=revoked")) == std::vector<std::string>{"carol"});

    // hold and unhold
    auto held = http.post_json("/api/client-certs/bob/revoke", R"({"reason":"certificateHold"})", op);
    BOOST_REQUIRE_EQUAL(held.status, 200u);
    BOOST_TEST(str(obj(held), "status") == "on_hold");
    auto lifted = http.request("POST", "/api/client-certs/bob/unhold", {}, {{"Authorization", "Bearer " + op}});
    BOOST_REQUIRE_EQUAL(lifted.status, 200u);
    BOOST_TEST(str(obj(lifted), "status") == "active");
    expect_error(http.post_json("/api/client-certs/bob/unhold", "{}", op), 409, "NOT_ON_HOLD");

    // renew
    auto renewed = http.post_json("/api/client-certs/alice/renew", R"({"validity_days":30})", op);
    BOOST_REQUIRE_EQUAL(renewed.status, 200u);
    auto rn = obj(renewed);
    BOOST_TEST(str(rn, "serial_number") != str(alice, "serial_number"));
    BOOST_TEST(str(rn, "certificate").find("BEGIN CERTIFICATE") != std::string::npos);
    BOOST_REQUIRE_EQUAL(rn.at("history").as_array().size(), 1u);
    BOOST_TEST(str(rn.at("history").as_array()[0].as_object(), "serial_number") == str(alice, "serial_number"));
    BOOST_TEST(total("?expiring_within_days=31") == 1u);
    expect_error(http.post_json("/api/client-certs/carol/renew", "{}", op), 409, "CONFLICT");

    // PATCH
    auto patched = http.patch_json("/api/client-certs/alice",
                                   R"({"notes":"updated","api_role":"viewer","renewal_threshold_days":10})", op);
    BOOST_REQUIRE_EQUAL(patched.status, 200u);
    BOOST_TEST(str(obj(patched), "notes") == "updated");
    BOOST_TEST(str(obj(patched), "api_role") == "viewer");
    BOOST_TEST(obj(patched).at("renewal").as_object().at("renewal_threshold_days").as_int64() == 10);
    auto cleared = http.patch_json("/api/client-certs/alice", R"({"api_role":null})", op);
    BOOST_REQUIRE_EQUAL(cleared.status, 200u);
    BOOST_TEST(obj(cleared).at("api_role").is_null());

    // stats
    auto stats = http.get("/api/client-certs/stats", viewer);
    BOOST_REQUIRE_EQUAL(stats.status, 200u);
    auto st = obj(stats);
    BOOST_TEST(st.at("total").to_number<std::uint64_t>() == 3u);
    BOOST_TEST(st.at("active").to_number<std::uint64_t>() == 2u);
    BOOST_TEST(st.at("revoked").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.at("by_usage").as_object().at("vpn").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.at("by_state").as_object().at("revoked").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.contains("expiring_soon"));

    // public CA certificate (DER) without a token
    http_client anon(srv.port());
    auto ca_der = anon.get("/ca.crt");
    BOOST_REQUIRE_EQUAL(ca_der.status, 200u);
    BOOST_TEST(ca_der.header("content-type") == "application/pkix-cert");
    BOOST_TEST(openssl_on(ca_der.body, "ca.der", "openssl x509 -inform DER -in {} -noout").exit_code == 0);

    // the renewal sweep (admin): nothing due with 10-day thresholds on 30+ day certificates
    auto sweep = http.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + admin}});
    BOOST_REQUIRE_EQUAL(sweep.status, 200u);
    for (const char* key : {"candidates", "renewed", "failed", "outcomes", "started_at", "finished_at"})
        BOOST_TEST(obj(sweep).contains(key));

    // audit (admin): the key download and the PKCS#12 were recorded with user and IP
    auto audit = http.get("/api/audit?resource_id=alice&operation=download", admin);
    BOOST_REQUIRE_EQUAL(audit.status, 200u);
    auto entries = obj(audit).at("entries").as_array();
    BOOST_TEST(entries.size() >= 2u);
    for (const auto& e : entries) {
        BOOST_TEST(str(e.as_object(), "user") == "ops");
        BOOST_TEST(str(e.as_object(), "ip_address") == "127.0.0.1");
    }
}

BOOST_FIXTURE_TEST_CASE(renewal_sweep_renews_what_is_due, api_fixture) {
    // A fresh store never swept: the start-up run of the "missed" sweep goes first (on PostgreSQL
    // it waits for its lease), so that it cannot renew "soon" beside the run below.
    for (int i = 0; i < 100 && http.get("/api/renewals/last", viewer).status != 200u; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto soon = create(create_body("soon", R"(,"validity_days":5,"renewal_threshold_days":30)"));
    create(create_body("later", R"(,"validity_days":300,"renewal_threshold_days":30)"));
    auto sweep = http.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + admin}});
    BOOST_REQUIRE_EQUAL(sweep.status, 200u);
    auto s = obj(sweep);
    BOOST_TEST(s.at("candidates").to_number<int>() == 1);
    BOOST_TEST(s.at("renewed").to_number<int>() == 1);
    BOOST_TEST(s.at("failed").to_number<int>() == 0);
    const auto& outcome = s.at("outcomes").as_array().at(0).as_object();
    BOOST_TEST(str(outcome, "identifier") == "soon");
    auto now = obj(http.get("/api/client-certs/soon", viewer));
    BOOST_TEST(str(now, "serial_number") == str(outcome, "new_serial"));
    BOOST_TEST(str(now, "serial_number") != str(soon, "serial_number"));
    // The sweep record is stored: what a restart loads, through the repository port (either backend).
    auto repo = app::open_repository(srv.config());
    BOOST_REQUIRE(repo);
    BOOST_TEST((*repo)->load_last_sweep().has_value());
    auto audit = obj(http.get("/api/audit?resource_id=soon&operation=auto_renew", admin));
    BOOST_TEST(audit.at("count").to_number<int>() == 1);
}

BOOST_FIXTURE_TEST_CASE(certmate_compatible_routes_and_fields, api_fixture) {
    auto dave = create(R"({"common_name":"dave","identifier":"dave","days_valid":10,"generate_key":true})",
                       "/api/client-certs/create");
    BOOST_TEST(dave.at("has_private_key").as_bool());
    BOOST_TEST(total("?expiring_within_days=11") == 1u);
    auto erin = create(R"({"identifier":"erin","generate_key":false,"csr_pem":)" +
                           json::serialize(json::value(openssl_csr(work, "erin"))) + "}",
                       "/api/client-certs/create");
    BOOST_TEST(erin.at("has_private_key").as_bool() == false);
    BOOST_TEST(str(erin, "common_name") == "erin");
    expect_error(http.post_json("/api/client-certs/create", R"({"common_name":"x","generate_key":false})", op), 400,
                 "INVALID_ARGUMENT", "csr");
    expect_error(http.post_json("/api/client-certs/create", R"({"common_name":"x","generate_key":"false"})", op), 400,
                 "INVALID_ARGUMENT", "generate_key");

    // downloads
    BOOST_TEST(http.get("/api/client-certs/dave/download/crt", viewer).body ==
               http.get("/api/client-certs/dave/certificate", viewer).body);
    BOOST_TEST(http.get("/api/client-certs/dave/download/csr", viewer).body ==
               http.get("/api/client-certs/dave/csr", viewer).body);
    auto key = http.get("/api/client-certs/dave/download/key", op);
    BOOST_REQUIRE_EQUAL(key.status, 200u);
    BOOST_TEST(key.body == http.get("/api/client-certs/dave/private-key", op).body);
    expect_error(http.get("/api/client-certs/dave/download/key", viewer), 403, "FORBIDDEN");
    auto pfx = http.get("/api/client-certs/dave/download/pfx", op, {{"X-PKCS12-Password", "pfx-password-1"}});
    BOOST_REQUIRE_EQUAL(pfx.status, 200u);
    BOOST_TEST(pfx.header("content-type") == "application/x-pkcs12");
    auto check = openssl_on(pfx.body, "dave.pfx", "openssl pkcs12 -info -noout -in {} -passin pass:pfx-password-1");
    BOOST_TEST(check.exit_code == 0, check.output);
    expect_error(http.get("/api/client-certs/dave/download/pfx", op), 400, "INVALID_ARGUMENT", "X-PKCS12-Password");

    // CA PEM and CRL aliases
    auto ca_pem = http.get("/api/client-certs/ca", viewer);
    BOOST_REQUIRE_EQUAL(ca_pem.status, 200u);
    BOOST_TEST(ca_pem.body == str(obj(http.get("/api/ca", viewer)), "certificate"));
    for (const char* form : {"pem", "der", "info"}) {
        auto a = http.get(std::string("/api/crl/download/") + form, viewer);
        auto b = http.get(std::string("/api/crl/") + form, viewer);
        BOOST_TEST_CONTEXT(form) {
            BOOST_TEST(a.status == 200u);
            BOOST_TEST(a.body == b.body);
        }
    }

    // revoked=true/false
    BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs/erin/revoke", "{}", op).status, 200u);
    BOOST_TEST(identifiers(list("?revoked=true")) == std::vector<std::string>{"erin"});
    BOOST_TEST(identifiers(list("?revoked=false")) == std::vector<std::string>{"dave"});
    expect_error(http.get("/api/client-certs?revoked=yes", viewer), 400, "INVALID_ARGUMENT", "revoked");

    // OCSP JSON: certificate_serial is a decimal string
    auto ocsp = obj(http.get("/api/ocsp/status/" + str(dave, "serial_number"), viewer));
    BOOST_TEST(str(ocsp, "certificate_serial") == str(dave, "serial_number"));
    BOOST_TEST(str(ocsp, "certificate_status") == "good");
    for (const char* key :
         {"response_status", "this_update", "next_update", "responder_name", "revocation_time", "revocation_reason"})
        BOOST_TEST(ocsp.contains(key));
}

BOOST_FIXTURE_TEST_CASE(cursor_paging_with_after, api_fixture) {
    // docs/api.md "Listing certificates": next_cursor while more follow; after= continues strictly
    // after it, even when certificates are added before and after the cursor meanwhile.
    for (const char* id : {"c-b", "c-d", "c-f", "c-h", "c-j", "c-l", "c-n"})
        create(create_body(id, R"(,"key_type":"ed25519")"));
    auto first = list("?sort=identifier&limit=3&search=c-");
    BOOST_TEST(identifiers(first) == (std::vector<std::string>{"c-b", "c-d", "c-f"}), boost::test_tools::per_element());
    BOOST_TEST(first.at("total").to_number<int>() == 7);
    BOOST_REQUIRE(first.contains("next_cursor"));
    const std::string cur = str(first, "next_cursor");
    create(create_body("c-a", R"(,"key_type":"ed25519")")); // before the cursor: not seen
    create(create_body("c-g", R"(,"key_type":"ed25519")")); // after it: seen
    auto second = list("?sort=identifier&limit=3&search=c-&after=" + cur);
    BOOST_TEST(identifiers(second) == (std::vector<std::string>{"c-g", "c-h", "c-j"}),
               boost::test_tools::per_element());
    BOOST_TEST(second.at("total").to_number<int>() == 9);
    auto third = list("?sort=identifier&limit=3&search=c-&after=" + str(second, "next_cursor"));
    BOOST_TEST(identifiers(third) == (std::vector<std::string>{"c-l", "c-n"}), boost::test_tools::per_element());
    BOOST_TEST(!third.contains("next_cursor"));

    // The default order (newest first) walked two at a time: the same as one big page.
    const auto everything = identifiers(list("?limit=1000"));
    BOOST_TEST(everything.size() == 9u);
    auto newest = list("?limit=2");
    std::vector<std::string> walked = identifiers(newest);
    for (auto page = newest; page.contains("next_cursor") && walked.size() < 20;) {
        page = list("?limit=2&after=" + str(page, "next_cursor"));
        for (auto& id : identifiers(page)) walked.push_back(id);
    }
    BOOST_TEST(walked == everything, boost::test_tools::per_element());

    // A cursor of another order, or not a cursor: 400 naming `after`.
    expect_error(http.get("/api/client-certs?sort=identifier&after=" + str(newest, "next_cursor"), viewer), 400,
                 "INVALID_ARGUMENT", "after");
    expect_error(http.get("/api/client-certs?sort=identifier&order=desc&after=" + cur, viewer), 400, "INVALID_ARGUMENT",
                 "after");
    for (const char* bad : {"", "zz", "abc", "7631", "76313a6961"})
        expect_error(http.get(std::string("/api/client-certs?after=") + bad, viewer), 400, "INVALID_ARGUMENT", "after");
}

BOOST_FIXTURE_TEST_CASE(bad_input_gets_json_errors_and_the_server_survives, api_fixture) {
    create(create_body("alice"));
    const std::string c = "/api/client-certs";
    expect_error(http.post_json(c, "{not json", op), 400, "INVALID_ARGUMENT", "body");
    expect_error(http.post_json(c, "[1,2]", op), 400, "INVALID_ARGUMENT", "body");
    expect_error(http.post_json(c, R"({"common_name":"x","validity_days":"30"})", op), 400, "INVALID_ARGUMENT",
                 "validity_days");
    expect_error(http.post_json(c, R"({"common_name":"x","validity_days":1.5})", op), 400, "INVALID_ARGUMENT",
                 "validity_days");
    expect_error(http.post_json(c, R"({"common_name":"x","renewal_enabled":"false"})", op), 400, "INVALID_ARGUMENT",
                 "renewal_enabled");
    expect_error(http.post_json(c, R"({"common_name":"x","colour":"red"})", op), 400, "INVALID_ARGUMENT", "colour");
    expect_error(http.post_json(c, R"({"common_name":"x","subject_alt_names":{"dns":"a.example"}})", op), 400,
                 "INVALID_ARGUMENT", "subject_alt_names.dns");
    expect_error(http.post_json(c, R"({"common_name":"x","subject_alt_names":{"dns":["a",2]}})", op), 400,
                 "INVALID_ARGUMENT", "subject_alt_names.dns[1]");
    expect_error(http.post_json(c, R"({"common_name":"x","subject_alt_names":{"mx":[]}})", op), 400, "INVALID_ARGUMENT",
                 "subject_alt_names.mx");
    expect_error(http.post_json(c, R"({"common_name":"x","cert_usage":"web"})", op), 400, "INVALID_ARGUMENT",
                 "cert_usage");
    expect_error(http.post_json(c, R"({"common_name":"x","key_type":"dsa"})", op), 400, "INVALID_ARGUMENT", "key_type");
    expect_error(http.post_json(c, R"({"identifier":"x"})", op), 400, "INVALID_ARGUMENT", "common_name");
    expect_error(
        http.post_json(
            c,
            R"({"common_name":"x","csr":"-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n"})",
            op),
        400, "INVALID_CSR", "csr");
    expect_error(http.post_json(c, create_body("alice"), op), 409, "ALREADY_EXISTS", "identifier");
    expect_error(http.post_json("/api/client-certs/alice/revoke", R"({"reason":"becauseISaidSo"})", op), 400,
                 "INVALID_ARGUMENT", "reason");
    expect_error(http.post_json("/api/client-certs/alice/renew", R"({"validity_days":"x"})", op), 400,
                 "INVALID_ARGUMENT", "validity_days");
    expect_error(http.patch_json("/api/client-certs/alice", R"({"api_role":"root"})", op), 400, "INVALID_ARGUMENT",
                 "api_role");
    expect_error(http.get(c + "?limit=5000", viewer), 400, "INVALID_ARGUMENT", "limit");
    expect_error(http.get(c + "?colour=red", viewer), 400, "INVALID_ARGUMENT", "colour");
    expect_error(http.get(c + "?status=sleeping", viewer), 400, "INVALID_ARGUMENT", "status");
    expect_error(http.get("/api/audit?since=yesterday", admin), 400, "INVALID_ARGUMENT", "since");
    expect_error(http.get("/api/ocsp/status/not-a-serial", viewer), 400, "INVALID_ARGUMENT", "serial_number");

    // path traversal in identifiers
    expect_error(http.post_json(c, R"({"common_name":"x","identifier":"../../etc"})", op), 400, "INVALID_IDENTIFIER",
                 "identifier");
    expect_error(http.get(c + "/..%2F..%2Fetc%2Fpasswd", viewer), 400, "INVALID_IDENTIFIER");
    expect_error(http.get(c + "/..%2F..%2Fetc%2Fpasswd/private-key", op), 400, "INVALID_IDENTIFIER");
    expect_error(http.get(c + "/../../etc/passwd", viewer), 404, "NOT_FOUND");
    expect_error(http.get(c + "/%00", viewer), 404, "NOT_FOUND");
    expect_error(http.get(c + "/nobody", viewer), 404, "NOT_FOUND");

    // sizes and content types
    std::string big(70 * 1024, 'x');
    expect_error(http.post_json(c, R"({"common_name":")" + big + "\"}", op), 413, "BODY_TOO_LARGE");
    auto r431 = http.raw("GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(9000, 'a') + "\r\n\r\n");
    expect_error(r431, 431, "HEADERS_TOO_LARGE");
    expect_error(http.raw("NOT AN HTTP REQUEST\r\n\r\n"), 400, "BAD_REQUEST");
    expect_error(
        http.request("POST", c, create_body("y"), {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + op}}),
        415, "UNSUPPORTED_MEDIA_TYPE");
    expect_error(http.request("POST", c, create_body("y"), {{"Authorization", "Bearer " + op}}), 415,
                 "UNSUPPORTED_MEDIA_TYPE");
    BOOST_TEST(http.request("POST", c, create_body("z"),
                            {{"Content-Type", "application/json; charset=utf-8"}, {"Authorization", "Bearer " + op}})
                   .status == 201u);

    // routes and methods
    expect_error(http.get("/api/nothing-here", viewer), 404, "NOT_FOUND");
    auto r405 = http.request("DELETE", c + "/alice", {}, {{"Authorization", "Bearer " + op}});
    expect_error(r405, 405, "METHOD_NOT_ALLOWED");
    BOOST_TEST(r405.header("allow").find("GET") != std::string::npos);
    BOOST_TEST(r405.header("allow").find("PATCH") != std::string::npos);
    auto put_health = http.request("PUT", "/health", "{}");
    expect_error(put_health, 405, "METHOD_NOT_ALLOWED");
    BOOST_TEST(put_health.header("allow") == "GET");

    // authentication and roles
    http_client anon(srv.port());
    auto r401 = anon.get(c);
    expect_error(r401, 401, "UNAUTHORIZED");
    BOOST_TEST(r401.header("www-authenticate").rfind("Bearer", 0) == 0);
    auto bad_token = anon.get(c, "cm_not-a-real-token");
    expect_error(bad_token, 401, "UNAUTHORIZED");
    BOOST_TEST(bad_token.header("www-authenticate").find("invalid_token") != std::string::npos);
    expect_error(anon.get(c, ""), 401, "UNAUTHORIZED");
    expect_error(anon.request("GET", c, {}, {{"Authorization", "Basic dXNlcjpwYXNz"}}), 401, "UNAUTHORIZED");
    expect_error(http.post_json(c, create_body("v"), viewer), 403, "FORBIDDEN");
    expect_error(http.get("/api/client-certs/alice/private-key", viewer), 403, "FORBIDDEN");
    expect_error(http.get("/api/audit", op), 403, "FORBIDDEN");
    expect_error(http.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + op}}), 403, "FORBIDDEN");

    // request ids: a sane one is echoed, anything else replaced
    BOOST_TEST(anon.get("/health", {}, {{"X-Request-Id", "trace-42.a_b"}}).header("x-request-id") == "trace-42.a_b");
    const auto replaced = anon.get("/health", {}, {{"X-Request-Id", "bad id<script>"}}).header("x-request-id");
    BOOST_TEST(!replaced.empty());
    BOOST_TEST(replaced != "bad id<script>");

    // denied requests are audited, one line per client and minute
    for (int i = 0; i < 5; ++i) anon.get(c);
    // (the lines are written on the pool, so wait for both the anonymous and the viewer's lines)
    std::size_t denied = 0;
    bool viewer_denied = false;
    eventually([&] {
        auto a = obj(http.get("/api/audit?operation=denied", admin));
        denied = 0;
        viewer_denied = false;
        for (const auto& e : a.at("entries").as_array()) {
            const auto& o = e.as_object();
            if (o.at("user").as_string() == "anonymous") ++denied;
            if (o.at("user").as_string() == "reader" && o.at("ip_address").as_string() == "127.0.0.1")
                viewer_denied = true;
        }
        return denied != 0 && viewer_denied;
    });
    BOOST_TEST(denied == 1u);
    BOOST_TEST(viewer_denied);

    // still alive
    auto health = anon.get("/health");
    BOOST_TEST(health.status == 200u);
    BOOST_TEST(str(obj(health), "status") == "ok");
}

// The request target as Boost.URL reads it (net/target.hpp): an escape that does not decode is a
// 400 JSON error naming the target, wherever it is; an encoded '/' stays inside its segment; '+'
// is a '+' in the path and a space in the query.
BOOST_FIXTURE_TEST_CASE(tricky_request_targets_get_json_errors, api_fixture) {
    create(create_body("alice"));
    create(create_body("bob-smith"));
    const std::string c = "/api/client-certs";
    expect_error(http.get(c + "/%zz", viewer), 400, "INVALID_ARGUMENT", "target");
    expect_error(http.get(c + "/alice%2", viewer), 400, "INVALID_ARGUMENT", "target");
    expect_error(http.get(c + "/%zz/revoke", viewer), 400, "INVALID_ARGUMENT", "target");
    expect_error(http.get(c + "?search=%zz", viewer), 400, "INVALID_ARGUMENT", "target");
    expect_error(http.get(c + "?search=a%00b", viewer), 400, "INVALID_ARGUMENT", "target");
    // Encoded '/': one segment "a/b", not two; the identifier check refuses it.
    expect_error(http.get(c + "/alice%2Fx", viewer), 400, "INVALID_IDENTIFIER");
    // '+' in a path is itself (no identifier has one), in a query a space.
    expect_error(http.get(c + "/ali+ce", viewer), 400, "INVALID_IDENTIFIER");
    BOOST_TEST(total("?search=bob+smith") == 0u);   // "bob smith"
    BOOST_TEST(total("?search=bob%2Dsmith") == 1u); // "bob-smith"
    BOOST_TEST(total("?search=%61lice") == 1u);     // "alice"
    // Escaped letters in a path decode before matching.
    BOOST_TEST(http.get(c + "/%61lice", viewer).status == 200u);
}

BOOST_FIXTURE_TEST_CASE(revocation_reaches_crl_and_ocsp_status_within_a_second, api_fixture) {
    auto frank = create(create_body("frank"));
    const std::string serial = str(frank, "serial_number");
    auto before = obj(http.get("/api/ocsp/status/" + serial, viewer));
    BOOST_TEST(str(before, "certificate_status") == "good");
    BOOST_TEST(before.at("revocation_time").is_null());

    auto revoked = http.post_json("/api/client-certs/frank/revoke", R"({"reason":"keyCompromise"})", op);
    BOOST_REQUIRE_EQUAL(revoked.status, 200u);
    const auto t0 = std::chrono::steady_clock::now();
    auto crl = http.get("/api/crl/der", viewer);
    auto pub = http_client(srv.port()).get("/crl.der");
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(elapsed < std::chrono::seconds(1));
    BOOST_REQUIRE_EQUAL(crl.status, 200u);
    BOOST_TEST(crl.header("content-type") == "application/pkix-crl");
    BOOST_TEST(pub.body == crl.body);
    auto text = openssl_on(crl.body, "crl.der", "openssl crl -inform DER -in {} -noout -text");
    BOOST_REQUIRE_EQUAL(text.exit_code, 0);
    BOOST_TEST_INFO(text.output);
    BOOST_TEST(text.output.find("Serial Number: " + decimal_to_hex(serial)) != std::string::npos);
    BOOST_TEST(text.output.find("Key Compromise") != std::string::npos);
    write_text(work / "ca.pem", str(obj(http.get("/api/ca", viewer)), "certificate"));
    BOOST_TEST(run("openssl crl -inform DER -in " + (work / "crl.der").string() + " -noout -CAfile " +
                   (work / "ca.pem").string())
                   .exit_code == 0);

    auto info = obj(http.get("/api/crl/info", viewer));
    BOOST_TEST(info.at("revoked_count").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(info.at("crl_number").to_number<std::uint64_t>() >= 2u);
    BOOST_TEST(info.contains("this_update"));
    BOOST_TEST(info.contains("next_update"));
    BOOST_TEST(http.get("/api/crl/pem", viewer).body.find("BEGIN X509 CRL") != std::string::npos);

    auto after = obj(http.get("/api/ocsp/status/" + serial, viewer));
    BOOST_TEST(str(after, "response_status") == "successful");
    BOOST_TEST(str(after, "certificate_status") == "revoked");
    BOOST_TEST(str(after, "certificate_serial") == serial);
    BOOST_TEST(str(after, "revocation_time") == str(obj(revoked).at("revocation").as_object(), "revoked_at"));
    BOOST_TEST(str(after, "revocation_reason") == "keyCompromise");
    BOOST_TEST(str(after, "responder_name") == "CertMate OCSP Responder");
    auto by_post =
        obj(http.post_json("/api/ocsp/status", R"({"serial_number":"0x)" + decimal_to_hex(serial) + "\"}", viewer));
    BOOST_TEST(str(by_post, "certificate_status") == "revoked");
    BOOST_TEST(str(by_post, "certificate_serial") == serial);
    BOOST_TEST(str(obj(http.get("/api/ocsp/status/12345", viewer)), "certificate_status") == "unknown");
    expect_error(http.post_json("/api/ocsp/status", "{}", viewer), 400, "INVALID_ARGUMENT", "serial_number");
}

namespace {

// A minimal Prometheus text-format (0.0.4) parser: every sample line is NAME{LABELS} VALUE, every
// sample belongs to a family declared by # TYPE, histograms are cumulative and end with +Inf.
struct prom_sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

std::vector<prom_sample> parse_prometheus(const std::string& text, std::map<std::string, std::string>& types) {
    std::vector<prom_sample> out;
    static const std::regex type_re(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
    static const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
    static const std::regex sample_re(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$)");
    static const std::regex label_re(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\"(,|$))");
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        std::smatch m;
        if (std::regex_match(line, m, type_re)) {
            BOOST_TEST(types.count(m[1]) == 0u, "family declared twice: " << m[1]);
            types[m[1]] = m[2];
            continue;
        }
        if (std::regex_match(line, m, help_re)) continue;
        BOOST_TEST_INFO("line: " << line);
        BOOST_REQUIRE(line[0] != '#');
        BOOST_REQUIRE(std::regex_match(line, m, sample_re));
        prom_sample s;
        s.name = m[1];
        const std::string labels = m[3];
        for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label_re); it != std::sregex_iterator(); ++it)
            s.labels[(*it)[1]] = (*it)[2];
        s.value = m[4] == "+Inf" ? INFINITY : std::stod(m[4]);
        std::string family = s.name;
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (!types.count(family) && family.size() > std::strlen(suffix) &&
                family.compare(family.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
                family = family.substr(0, family.size() - std::strlen(suffix));
        BOOST_TEST(types.count(family) == 1u, "sample without # TYPE: " << s.name);
        out.push_back(std::move(s));
    }
    return out;
}

double sample(const std::vector<prom_sample>& all, const std::string& name,
              const std::map<std::string, std::string>& labels) {
    for (const auto& s : all)
        if (s.name == name && std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
                auto it = s.labels.find(kv.first);
                return it != s.labels.end() && it->second == kv.second;
            }))
            return s.value;
    return 0;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(metrics_parse_as_prometheus_text_and_move, api_fixture) {
    http_client anon(srv.port());
    auto scrape = [&] {
        auto r = anon.get("/metrics");
        BOOST_REQUIRE_EQUAL(r.status, 200u);
        BOOST_TEST(r.header("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
        std::map<std::string, std::string> types;
        auto samples = parse_prometheus(r.body, types);
        BOOST_TEST(types["certmate_http_requests_total"] == "counter");
        BOOST_TEST(types["certmate_http_request_duration_seconds"] == "histogram");
        return samples;
    };
    auto m0 = scrape();
    const std::map<std::string, std::string> health_ok{{"route", "/health"}, {"method", "GET"}, {"status", "200"}};
    const double health0 = sample(m0, "certmate_http_requests_total", health_ok);
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE_EQUAL(anon.get("/health").status, 200u);
    create(create_body("gina"));
    BOOST_REQUIRE_EQUAL(anon.get("/api/client-certs").status, 401u);
    BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs/gina/revoke", "{}", op).status, 200u);

    auto m1 = scrape();
    BOOST_TEST(sample(m1, "certmate_http_requests_total", health_ok) == health0 + 3);
    BOOST_TEST(sample(m1, "certmate_http_requests_total",
                      {{"route", "/api/client-certs"}, {"method", "POST"}, {"status", "201"}}) == 1);
    BOOST_TEST(sample(m1, "certmate_http_requests_total", {{"route", "/api/client-certs"}, {"status", "401"}}) == 1);
    BOOST_TEST(sample(m1, "certmate_auth_denied_total", {{"reason", "unauthorized"}}) == 1);
    BOOST_TEST(sample(m1, "certmate_certificates", {{"state", "revoked"}}) == 1);
    BOOST_TEST(sample(m1, "certmate_crl_number", {}) >= 2);
    BOOST_TEST(sample(m1, "certmate_crl_age_seconds", {}) >= 0);
    // the latency histogram of /health: cumulative buckets ending at +Inf == _count
    double last = 0;
    for (const auto& s : m1)
        if (s.name == "certmate_http_request_duration_seconds_bucket" && s.labels.at("route") == "/health") {
            BOOST_TEST(s.value >= last);
            last = s.value;
        }
    BOOST_TEST(last == sample(m1, "certmate_http_request_duration_seconds_count", {{"route", "/health"}}));
    BOOST_TEST(last >= health0 + 3);
}

// ---- A revocation acknowledged before its CRL is built (issue 15) ----
// Where one process serves the CRL (the file store), the answer goes out once the change is
// durable; every CRL request waits for the build of each change acknowledged before it came
// (docs/architecture.md "CRL publication"). On PostgreSQL the answer still waits for the CRL.

namespace {

std::uint64_t metric_value(http_client& c, const std::string& token, const std::string& name) {
    const auto text = c.get("/metrics", token).body;
    std::smatch m;
    if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9]+)"))) return ~std::uint64_t{0};
    return std::stoull(m[1]);
}

struct gated_fixture {
    crl_gate gate;
    test_server srv{{}, [](net::server_options& o) { o.crl_check_interval = std::chrono::seconds(1); }};
    gate_opener opener{gate};
    http_client http{srv.port()};
    temp_dir work;
    std::string admin = srv.tokens.admin, op = srv.tokens.operator_, viewer = srv.tokens.viewer;

    std::string create(const std::string& id) {
        auto r = http.post_json("/api/client-certs", create_body(id), op);
        BOOST_TEST_INFO("create: " << r.body);
        BOOST_REQUIRE_EQUAL(r.status, 201u);
        return str(obj(r), "serial_number");
    }
    // The serials (hex, as openssl prints them) a DER CRL lists.
    std::string crl_text(const std::string& der) {
        write_text(work / "crl.der", der);
        auto r = run("openssl crl -inform DER -noout -text -in " + (work / "crl.der").string());
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        return r.output;
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(a_revocation_is_acknowledged_before_its_crl_and_every_crl_after_lists_it, gated_fixture) {
    if (skip_on_pg("the revocation's answer waits for its CRL on a shared store")) return;
    const std::string serial = create("gina");
    const std::string hex = decimal_to_hex(serial);
    gate.set(crl_gate::mode::hold);

    const auto t0 = std::chrono::steady_clock::now();
    auto revoked = http.post_json("/api/client-certs/gina/revoke", R"({"reason":"keyCompromise"})", op);
    const auto took = std::chrono::steady_clock::now() - t0;
    BOOST_REQUIRE_EQUAL(revoked.status, 200u);
    // Answered while the CRL build that lists it is held (before: after the 3 s wait's bound).
    BOOST_TEST(gate.build_held());
    BOOST_TEST(std::chrono::duration<double>(took).count() < 1.5);
    // OCSP says revoked at once (the status comes from the record).
    BOOST_TEST(str(obj(http.get("/api/ocsp/status/" + serial, viewer)), "certificate_status") == "revoked");

    // A CRL fetched after the answer waits for that build: none without the revocation is served.
    const unsigned short port = srv.port();
    auto pub = std::async(std::launch::async, [port] { return http_client(port).get("/crl.der"); });
    auto info = std::async(std::launch::async, [port, this] { return http_client(port).get("/api/crl/info", viewer); });
    BOOST_TEST((pub.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout));
    BOOST_TEST((info.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout));
    gate.set(crl_gate::mode::pass);
    auto der = pub.get();
    BOOST_REQUIRE_EQUAL(der.status, 200u);
    const auto text = crl_text(der.body);
    BOOST_TEST_INFO(text);
    BOOST_TEST(text.find("Serial Number: " + hex) != std::string::npos);
    BOOST_TEST(text.find("Key Compromise") != std::string::npos);
    auto i = info.get();
    BOOST_REQUIRE_EQUAL(i.status, 200u);
    BOOST_TEST(obj(i).at("revoked_count").to_number<std::uint64_t>() == 1u);

    // Unhold and hold too: a hold acknowledged is listed by the next CRL fetched.
    create("hank");
    gate.set(crl_gate::mode::hold);
    auto held = http.post_json("/api/client-certs/hank/revoke", R"({"reason":"certificateHold"})", op);
    BOOST_REQUIRE_EQUAL(held.status, 200u);
    BOOST_TEST(gate.build_held());
    auto pem = std::async(std::launch::async, [port, this] { return http_client(port).get("/api/crl/pem", viewer); });
    BOOST_TEST((pem.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout));
    gate.set(crl_gate::mode::pass);
    BOOST_REQUIRE_EQUAL(pem.get().status, 200u);
    auto after_hold = obj(http.get("/api/crl/info", viewer));
    BOOST_TEST(after_hold.at("revoked_count").to_number<std::uint64_t>() == 2u);
    // No request waited past its bound.
    BOOST_TEST(metric_value(http, admin, "certmate_crl_wait_timeouts_total") == 0u);
    // With nothing pending a CRL request does not wait.
    const auto t1 = std::chrono::steady_clock::now();
    BOOST_TEST(http_client(port).get("/crl.der").status == 200u);
    BOOST_TEST(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() < 0.5);
}

BOOST_FIXTURE_TEST_CASE(a_crl_request_while_builds_fail_gets_503_not_a_crl_missing_a_revocation, gated_fixture) {
    if (skip_on_pg("the revocation's answer waits for its CRL on a shared store")) return;
    const std::string serial = create("ivan");
    const std::string before = http_client(srv.port()).get("/crl.der").body;
    gate.set(crl_gate::mode::fail);
    BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs/ivan/revoke", "{}", op).status, 200u);
    BOOST_TEST(str(obj(http.get("/api/ocsp/status/" + serial, viewer)), "certificate_status") == "revoked");
    auto r = http_client(srv.port()).get("/crl.der");
    expect_error(r, 503, "BUSY");
    BOOST_TEST(!r.header("retry-after").empty());
    BOOST_TEST(r.body != before);
    expect_error(http.get("/api/crl/der", viewer), 503, "BUSY");
    expect_error(http.get("/api/crl/info", viewer), 503, "BUSY");
    BOOST_TEST(metric_value(http, admin, "certmate_crl_wait_timeouts_total") >= 3u);
    // The disk is back: the CRL timer's next try builds it, and it lists the revocation.
    gate.set(crl_gate::mode::pass);
    std::string der;
    BOOST_TEST(eventually(
        [&] {
            auto g = http_client(srv.port()).get("/crl.der");
            der = g.body;
            return g.status == 200u;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(200)));
    BOOST_TEST(crl_text(der).find("Serial Number: " + decimal_to_hex(serial)) != std::string::npos);
}

// A stop between the acknowledgement and the CRL build (the build failing, then the server gone):
// the next start serves no kept CRL missing the revocation, only one built from the revocations
// loaded (cert_service::load). test_chaos does the same with SIGKILL at random moments.
BOOST_AUTO_TEST_CASE(after_a_stop_before_the_crl_build_the_first_crl_served_lists_the_revocation) {
    if (skip_on_pg("the revocation's answer waits for its CRL on a shared store")) return;
    temp_dir dir;
    token_set tokens;
    const auto cfg = test_config(dir / "data", tokens);
    BOOST_REQUIRE(app::init_data_dir(cfg, {}).has_value());
    crl_gate gate;
    auto start = [&] {
        auto svc = app::open_service(cfg);
        BOOST_REQUIRE_MESSAGE(svc.has_value(), (svc ? std::string() : svc.error().message));
        auto s = std::make_unique<net::server>(app::server_options_from(cfg), std::move(*svc));
        BOOST_REQUIRE(s->start().has_value());
        return s;
    };
    std::string serial;
    {
        auto s = start();
        gate_opener opener{gate};
        http_client c(s->port());
        auto made = c.post_json("/api/client-certs", create_body("judy"), tokens.operator_);
        BOOST_REQUIRE_EQUAL(made.status, 201u);
        serial = str(obj(made), "serial_number");
        gate.set(crl_gate::mode::fail);
        BOOST_REQUIRE_EQUAL(c.post_json("/api/client-certs/judy/revoke", "{}", tokens.operator_).status, 200u);
        s->shutdown();
    }
    // The kept CRL is the one before the revocation.
    BOOST_TEST(run("openssl crl -inform DER -noout -text -in " + (dir / "data/certs/crl/crl.der").string())
                   .output.find("Serial Number: " + decimal_to_hex(serial)) == std::string::npos);
    gate.set(crl_gate::mode::hold);
    auto s = start(); // no CRL served: gives the held start-up build 5 s, then serves
    gate_opener opener{gate};
    BOOST_TEST(gate.build_held());
    const unsigned short port = s->port();
    auto pub = std::async(std::launch::async, [port] { return http_client(port).get("/crl.der"); });
    // The PEM form and the figures wait for the same build (crl_as).
    const std::string viewer = tokens.viewer;
    auto pem = std::async(std::launch::async, [port, viewer] { return http_client(port).get("/api/crl/pem", viewer); });
    auto info =
        std::async(std::launch::async, [port, viewer] { return http_client(port).get("/api/crl/info", viewer); });
    BOOST_TEST((pub.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout));
    BOOST_TEST((pem.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout));
    BOOST_TEST((info.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout));
    gate.set(crl_gate::mode::pass);
    auto der = pub.get();
    BOOST_REQUIRE_EQUAL(der.status, 200u);
    auto p = pem.get();
    BOOST_REQUIRE_EQUAL(p.status, 200u);
    BOOST_TEST(p.body == crl_pem_of(der.body).value());
    auto i = info.get();
    BOOST_REQUIRE_EQUAL(i.status, 200u);
    BOOST_TEST(obj(i).at("revoked_count").to_number<std::uint64_t>() == 1u);
    write_text(dir / "served.der", der.body);
    BOOST_TEST(run("openssl crl -inform DER -noout -text -in " + (dir / "served.der").string())
                   .output.find("Serial Number: " + decimal_to_hex(serial)) != std::string::npos);
    http_client c(port);
    BOOST_TEST(str(obj(c.get("/api/ocsp/status/" + serial, tokens.viewer)), "certificate_status") == "revoked");
    s->shutdown();
}
