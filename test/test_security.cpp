// Issue 10 against the real server on 127.0.0.1 with a real HTTP client:
// 1. role ceilings: an operator cannot reach admin by create, by PATCH or by the key of an admin
//    certificate (each refused 403 and audited as denied); audit entries say what authenticated;
// 3. the write-ahead audit: with the audit directory on a full tmpfs, mutations and key downloads
//    get 503 AUDIT_UNAVAILABLE and nothing changes; space returns, the next request works, no restart;
// 5. serverAuth: admin only, names within issuance.server_name_patterns, never the listener's names.
// Each case fails on the code before issue 10.
#define BOOST_TEST_MODULE test_security
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/pg.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>

#include <sys/mount.h>

#include <fstream>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

fs::path audit_file(test_server& srv) { return srv.config().data_dir / "logs" / "audit" / "certificate_audit.log"; }

std::vector<json::object> audit_entries(test_server& srv) {
    std::vector<json::object> out;
    for (const auto& line : audit_lines(srv.config()))
        if (!line.empty()) out.push_back(json::parse(line).as_object());
    return out;
}

// Denials are audited off the request path: waits (bounded) for `n` policy denials.
std::vector<json::object> policy_denials(test_server& srv, std::size_t n) {
    std::vector<json::object> out;
    eventually([&] {
        out.clear();
        for (auto& e : audit_entries(srv))
            if (e.at("operation").as_string() == "denied" && e.at("details").as_object().contains("message"))
                out.push_back(e);
        return out.size() >= n;
    });
    return out;
}

std::string body(const std::string& id, const std::string& extra = {}) {
    return R"({"identifier":")" + id + R"(","common_name":")" + id + "\"" + extra + "}";
}

} // namespace

// ---- 1: role ceilings ----

BOOST_AUTO_TEST_CASE(operator_cannot_make_itself_admin) {
    test_server srv;
    http_client http(srv.port());
    const auto& op = srv.tokens.operator_;
    const auto& admin = srv.tokens.admin;

    // by create
    expect_code(http.post_json("/api/client-certs", body("op-admin", R"(,"api_role":"admin")"), op), 403, "FORBIDDEN",
                "api_role");
    BOOST_TEST(http.get("/api/client-certs/op-admin", admin).status == 404u);
    // at or below its own role is fine
    BOOST_TEST(http.post_json("/api/client-certs", body("op-op", R"(,"api_role":"operator")"), op).status == 201u);

    // by PATCH: raising its own certificate, or touching the role of an admin certificate
    expect_code(http.patch_json("/api/client-certs/op-op", R"({"api_role":"admin"})", op), 403, "FORBIDDEN",
                "api_role");
    BOOST_REQUIRE(http.post_json("/api/client-certs", body("real-admin", R"(,"api_role":"admin")"), admin).status ==
                  201u);
    expect_code(http.patch_json("/api/client-certs/real-admin", R"({"api_role":null})", op), 403, "FORBIDDEN",
                "api_role");
    BOOST_TEST(obj(http.get("/api/client-certs/op-op", admin)).at("api_role").as_string() == "operator");
    // notes of an admin certificate stay editable: only the role is guarded
    BOOST_TEST(http.patch_json("/api/client-certs/real-admin", R"({"notes":"rotated"})", op).status == 200u);

    // by downloading the key of an admin certificate, as PEM, PKCS#12 or the compatibility routes
    auto key = http.get("/api/client-certs/real-admin/private-key", op);
    expect_code(key, 403, "FORBIDDEN");
    BOOST_TEST(key.body.find("PRIVATE KEY") == std::string::npos);
    expect_code(http.post_json("/api/client-certs/real-admin/pkcs12", R"({"password":"longenough"})", op), 403,
                "FORBIDDEN");
    expect_code(http.get("/api/client-certs/real-admin/download/key", op), 403, "FORBIDDEN");
    expect_code(http.get("/api/client-certs/real-admin/download/pfx", op, {{"X-PKCS12-Password", "longenough"}}), 403,
                "FORBIDDEN");
    // renewing it is admin-only
    expect_code(http.post_json("/api/client-certs/real-admin/renew", "{}", op), 403, "FORBIDDEN");
    BOOST_TEST(http.post_json("/api/client-certs/real-admin/renew", "{}", admin).status == 200u);
    // the admin still can; the operator still can for its own level
    BOOST_TEST(http.get("/api/client-certs/real-admin/private-key", admin).status == 200u);
    BOOST_TEST(http.get("/api/client-certs/op-op/private-key", op).status == 200u);

    // every refusal is audited as denied, by the token that tried
    auto denials = policy_denials(srv, 8);
    BOOST_REQUIRE_EQUAL(denials.size(), 8u);
    for (const auto& d : denials) {
        BOOST_TEST(d.at("status").as_string() == "denied");
        BOOST_TEST(d.at("user").as_string() == "ops");
        const auto& actor = d.at("actor").as_object();
        BOOST_TEST(actor.at("kind").as_string() == "token");
        BOOST_TEST(actor.at("name").as_string() == "ops");
    }
    BOOST_TEST(denials[0].at("resource_id").as_string() == "POST /api/client-certs");
    BOOST_TEST(denials[3].at("resource_id").as_string() == "GET /api/client-certs/real-admin/private-key");
    // successful mutations carry the token actor too
    for (const auto& e : audit_entries(srv))
        if (e.at("operation").as_string() == "create" && e.at("resource_id").as_string() == "op-op")
            BOOST_TEST(e.at("actor").as_object().at("kind").as_string() == "token");
}

// ---- 5: serverAuth ----

BOOST_AUTO_TEST_CASE(server_auth_needs_an_admin_and_a_matching_name_and_never_the_listener_names) {
    test_server srv([](app::config& c) {
        c.service.server_names.patterns = {"*.vpn.example.com", "gw.example.com", "127.0.0.1"};
        c.service.issuance.public_url = "http://127.0.0.1:8080";
    });
    http_client http(srv.port());
    const auto& op = srv.tokens.operator_;
    const auto& admin = srv.tokens.admin;
    auto server_body = [](const std::string& id, const std::string& cn, const std::string& dns) {
        return R"({"identifier":")" + id + R"(","common_name":")" + cn +
               R"(","cert_usage":"vpn","extended_key_usage":["serverAuth"],"subject_alt_names":{"dns":[)" + dns + "]}}";
    };
    // operators get no serverAuth at all
    expect_code(
        http.post_json("/api/client-certs", server_body("s1", "a.vpn.example.com", R"("a.vpn.example.com")"), op), 403,
        "FORBIDDEN", "extended_key_usage");
    // admins within the patterns
    auto ok = http.post_json("/api/client-certs",
                             server_body("s2", "a.vpn.example.com", R"("a.vpn.example.com","gw.example.com")"), admin);
    BOOST_TEST_INFO(ok.body);
    BOOST_TEST(ok.status == 201u);
    // outside them: another domain, two labels deep, a wildcard the pattern does not name, *.com
    for (const auto& [cn, dns] :
         std::vector<std::pair<std::string, std::string>>{{"evil.example.org", R"("evil.example.org")"},
                                                          {"a.b.vpn.example.com", R"("a.b.vpn.example.com")"},
                                                          {"x.vpn.example.com", R"("*.example.com")"},
                                                          {"x.vpn.example.com", R"("*.com")"},
                                                          {"localhost", R"("localhost")"}}) {
        BOOST_TEST_CONTEXT(dns)
        expect_code(http.post_json("/api/client-certs", server_body("s3", cn, dns), admin), 403, "FORBIDDEN");
    }
    // the listener's own name (public_url's host) is refused even though a pattern names it
    expect_code(http.post_json("/api/client-certs",
                               R"({"identifier":"s4","common_name":"gw.example.com","cert_usage":"other",)"
                               R"("extended_key_usage":["serverAuth"],"subject_alt_names":{"ip":["127.0.0.1"]}})",
                               admin),
                403, "FORBIDDEN", "subject_alt_names.ip");
    // and an operator may not take the key of the admin's serverAuth certificate
    expect_code(http.get("/api/client-certs/s2/private-key", op), 403, "FORBIDDEN");
    BOOST_TEST(http.get("/api/client-certs/s2/private-key", admin).status == 200u);
}

BOOST_AUTO_TEST_CASE(server_auth_is_refused_by_default) {
    test_server srv;
    http_client http(srv.port());
    expect_code(
        http.post_json("/api/client-certs",
                       R"({"identifier":"s","common_name":"host.example.com","cert_usage":"vpn",)"
                       R"("extended_key_usage":["serverAuth"],"subject_alt_names":{"dns":["host.example.com"]}})",
                       srv.tokens.admin),
        403, "FORBIDDEN", "extended_key_usage");
}

// ---- 3: write-ahead audit on a full disk ----

namespace {
// A tmpfs of `size` mounted on `dir` for the scope (needs root; `ok` false otherwise).
struct tmpfs_mount {
    fs::path dir;
    bool ok = false;
    tmpfs_mount(fs::path d, const std::string& size) : dir(std::move(d)) {
        fs::create_directories(dir);
        ok = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
    }
    ~tmpfs_mount() {
        if (ok) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

// Fills the filesystem of `dir` with one file until it is full.
void fill(const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    std::string block(4096, 'x');
    for (int i = 0; i < 100000 && out.write(block.data(), static_cast<std::streamsize>(block.size())); ++i) out.flush();
}
} // namespace

BOOST_AUTO_TEST_CASE(full_audit_disk_refuses_mutations_and_key_downloads_then_recovers_without_restart) {
    temp_dir holder;
    std::unique_ptr<tmpfs_mount> mnt;
    std::unique_ptr<test_server> srv;
    try {
        srv = std::make_unique<test_server>([&](app::config& c) {
            if (!pg_backend()) mnt = std::make_unique<tmpfs_mount>(c.data_dir / "logs" / "audit", "256k");
        });
    } catch (const std::exception& e) {
        BOOST_FAIL(e.what());
    }
    if (mnt && !mnt->ok) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    // PostgreSQL: the database refuses audit rows (a trigger raising, as a full tablespace would)
    // instead of a full file system.
    auto audit_sql = [&](const std::string& sql) {
        auto c = storage::pg::connection::open(srv->config().postgresql);
        BOOST_REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
        auto r = c->exec_script(sql);
        BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    };
    http_client http(srv->port());
    const auto& op = srv->tokens.operator_;
    BOOST_REQUIRE(http.post_json("/api/client-certs", body("before"), op).status == 201u);
    BOOST_REQUIRE(http.get("/health").status == 200u);

    const fs::path filler = mnt ? mnt->dir / "filler" : fs::path();
    if (mnt)
        fill(filler);
    else
        audit_sql(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END$$; "
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()");
    // The log's last page may still hold a few lines: creations succeed until it is full.
    http_reply created;
    std::string during;
    for (int i = 0; i < 20; ++i) {
        during = "during-" + std::to_string(i);
        created = http.post_json("/api/client-certs", body(during), op);
        if (created.status != 201u) break;
    }
    expect_code(created, 503, "AUDIT_UNAVAILABLE");
    BOOST_TEST(!fs::exists(srv->config().data_dir / "certs" / "client" / "api-mtls" / during));
    BOOST_TEST(http.get("/api/client-certs/" + during, op).status == 404u);
    expect_code(http.post_json("/api/client-certs", body("during"), op), 503, "AUDIT_UNAVAILABLE");
    BOOST_TEST(!fs::exists(srv->config().data_dir / "certs" / "client" / "api-mtls" / "during"));

    auto key = http.get("/api/client-certs/before/private-key", op);
    expect_code(key, 503, "AUDIT_UNAVAILABLE");
    BOOST_TEST(key.body.find("PRIVATE KEY") == std::string::npos);
    auto p12 = http.post_json("/api/client-certs/before/pkcs12", R"({"password":"longenough"})", op);
    expect_code(p12, 503, "AUDIT_UNAVAILABLE");

    expect_code(http.post_json("/api/client-certs/before/revoke", R"({"reason":"keyCompromise"})", op), 503,
                "AUDIT_UNAVAILABLE");
    BOOST_TEST(obj(http.get("/api/client-certs/before", op)).at("status").as_string() == "active");
    expect_code(http.patch_json("/api/client-certs/before", R"({"notes":"x"})", op), 503, "AUDIT_UNAVAILABLE");
    BOOST_TEST(obj(http.get("/api/client-certs/before", op)).at("notes").as_string() == "");

    // reads and the protocol endpoints keep working; health says why it is degraded
    BOOST_TEST(http.get("/api/client-certs", op).status == 200u);
    BOOST_TEST(http.get("/crl.der").status == 200u);
    auto health = http.get("/health");
    BOOST_TEST(health.status == 503u);
    BOOST_TEST(obj(health).at("checks").as_object().at("audit").as_string() != "ok");

    // space returns: the next request works, without a restart
    if (mnt)
        fs::remove(filler);
    else
        audit_sql("DROP TRIGGER refuse_audit ON audit_log");
    // Deliberate: the audit log retries a failed file at most once a second (storage/audit_log.cpp),
    // so a second passes before the next write; nothing to wait on but the clock.
    std::this_thread::sleep_for(1100ms);
    auto again = http.post_json("/api/client-certs", body("after"), op);
    BOOST_TEST_INFO(again.body);
    BOOST_TEST(again.status == 201u);
    BOOST_TEST(http.get("/api/client-certs/before/private-key", op).status == 200u);
    BOOST_TEST(http.get("/health").status == 200u);

    if (mnt) {
        auto verify = storage::verify_audit_file(audit_file(*srv));
        BOOST_TEST_INFO(verify.reason << " at line " << verify.bad_line);
        BOOST_TEST(verify.ok);
    } else {
        auto verify = http.get("/api/audit/verify", srv->tokens.admin);
        BOOST_TEST_INFO(verify.body);
        BOOST_TEST(obj(verify).at("ok").as_bool());
    }
    // nothing about "during" was claimed as a success
    for (const auto& e : audit_entries(*srv))
        if (e.at("resource_id").as_string() == "during") BOOST_TEST(e.at("status").as_string() != "success");
    srv.reset();
}

// ---- 2: a hold covers every serial, and may become a revocation for good ----
// Fails before issue 10: the superseded serial stayed good on hold; a held certificate could not
// be revoked (409) without lifting the hold first, which made it briefly good again.
BOOST_AUTO_TEST_CASE(hold_unhold_and_hold_then_revoke_cover_every_serial) {
    test_server srv;
    http_client http(srv.port());
    const auto& op = srv.tokens.operator_;
    auto first = obj(http.post_json("/api/client-certs", body("held"), op));
    const std::string old_serial = str(first, "serial_number");
    BOOST_REQUIRE(http.post_json("/api/client-certs/held/renew", "{}", op).status == 200u);
    auto status_of = [&](const std::string& serial) { return obj(http.get("/api/ocsp/status/" + serial, op)); };

    BOOST_REQUIRE(http.post_json("/api/client-certs/held/revoke", R"({"reason":"certificateHold"})", op).status ==
                  200u);
    BOOST_TEST(str(status_of(old_serial), "certificate_status") == "revoked");
    BOOST_TEST(str(status_of(old_serial), "revocation_reason") == "certificateHold");
    BOOST_REQUIRE(http.post_json("/api/client-certs/held/unhold", "{}", op).status == 200u);
    BOOST_TEST(str(status_of(old_serial), "certificate_status") == "good");

    BOOST_REQUIRE(http.post_json("/api/client-certs/held/revoke", R"({"reason":"certificateHold"})", op).status ==
                  200u);
    expect_code(http.post_json("/api/client-certs/held/revoke", R"({"reason":"certificateHold"})", op), 409,
                "ALREADY_REVOKED");
    auto revoked = http.post_json("/api/client-certs/held/revoke", R"({"reason":"keyCompromise"})", op);
    BOOST_TEST_INFO(revoked.body);
    BOOST_REQUIRE(revoked.status == 200u);
    BOOST_TEST(str(obj(revoked), "status") == "revoked");
    BOOST_TEST(str(status_of(old_serial), "revocation_reason") == "keyCompromise");
    expect_code(http.post_json("/api/client-certs/held/unhold", "{}", op), 409, "NOT_ON_HOLD");
    expect_code(http.post_json("/api/client-certs/held/revoke", R"({"reason":"superseded"})", op), 409,
                "ALREADY_REVOKED");
}
