// The dashboard (issue 13). Its files as served (content types, strong ETags and 304, gzip, the
// CSP and security headers, not on plain HTTP without api_on_http), GET /api/session, the expiry
// histogram of /api/client-certs/stats, and the pages themselves driven in Debian's chromium by
// test/dashboard/dashboard.mjs (playwright-core) against the built `certmate serve` on a fresh data
// dir with certificates made through the service. Skipped, saying so, when chromium is missing.
#define BOOST_TEST_MODULE test_dashboard
#include <boost/test/unit_test.hpp>

#include "app/bootstrap.hpp"
#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// RFC 1952 gunzip (zlib's inflate with gzip framing).
std::string gunzip(const std::string& in) {
    z_stream z{};
    BOOST_REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
    std::string out(in.size() * 20 + 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    out.resize(z.total_out);
    inflateEnd(&z);
    BOOST_REQUIRE(rc == Z_STREAM_END);
    return out;
}

void check_security_headers(const http_reply& r) {
    const auto csp = r.header("content-security-policy");
    BOOST_TEST(has(csp, "default-src 'self'"), csp);
    BOOST_TEST(has(csp, "frame-ancestors 'none'"), csp);
    BOOST_TEST(!has(csp, "unsafe-inline"), csp);
    BOOST_TEST(r.header("x-content-type-options") == "nosniff");
    BOOST_TEST(r.header("referrer-policy") == "no-referrer");
}

std::string source_file(const std::string& rel) { return read_text(fs::path(CERTMATE_SOURCE_DIR) / rel); }

} // namespace

BOOST_AUTO_TEST_CASE(pages_and_files_carry_types_etags_gzip_and_the_csp) {
    test_server srv;
    auto c = srv.client();
    const std::string index = source_file("assets/index.html");
    for (const char* path : {"/", "/audit", "/client-certificates", "/client-certificates/new",
                             "/client-certificates/cert-0123abc", "/client-certificates/a/b"}) {
        BOOST_TEST_CONTEXT(path) {
            auto r = c.get(path);
            BOOST_TEST(r.status == 200u);
            BOOST_TEST(r.header("content-type") == "text/html; charset=utf-8");
            BOOST_TEST(has(r.body, "<title>CertMate</title>"));
            BOOST_TEST(r.header("cache-control") == "no-cache");
            check_security_headers(r);
        }
    }
    // The page names its files under /assets/v-<version>/, where they are cached for a year.
    auto page = c.get("/");
    std::smatch m;
    BOOST_REQUIRE(std::regex_search(page.body, m, std::regex("/assets/(v-[0-9a-f]{16})/app\\.js")));
    const std::string version = m[1];
    auto js = c.get("/assets/" + version + "/app.js");
    BOOST_TEST(js.status == 200u);
    BOOST_TEST(js.header("content-type") == "text/javascript; charset=utf-8");
    BOOST_TEST(js.header("cache-control") == "public, max-age=31536000, immutable");
    BOOST_TEST(js.body == source_file("assets/app.js"));
    check_security_headers(js);
    auto css = c.get("/assets/app.css");
    BOOST_TEST(css.header("content-type") == "text/css; charset=utf-8");
    BOOST_TEST(css.header("cache-control") == "no-cache");
    BOOST_TEST(c.get("/assets/favicon.svg").header("content-type") == "image/svg+xml");

    // A strong ETag; If-None-Match with it answers 304 without a body; another tag gets the file.
    const auto etag = js.header("etag");
    BOOST_TEST(std::regex_match(etag, std::regex("\"[0-9a-f]{32}\"")), etag);
    auto again = c.get("/assets/" + version + "/app.js", {}, {{"If-None-Match", etag}});
    BOOST_TEST(again.status == 304u);
    BOOST_TEST(again.body.empty());
    BOOST_TEST(again.header("etag") == etag);
    BOOST_TEST(c.get("/assets/app.js", {}, {{"If-None-Match", "\"nope\", " + etag}}).status == 304u);
    BOOST_TEST(c.get("/assets/app.js", {}, {{"If-None-Match", "\"nope\""}}).status == 200u);
    BOOST_TEST(c.get("/", {}, {{"If-None-Match", page.header("etag")}}).status == 304u);

    // gzip when accepted (the bytes inflate to the file), identity when not or when q=0.
    auto gz = c.get("/assets/app.js", {}, {{"Accept-Encoding", "br, gzip;q=0.8"}});
    BOOST_TEST(gz.header("content-encoding") == "gzip");
    BOOST_TEST(gz.header("vary") == "Accept-Encoding");
    BOOST_TEST(gz.body.size() < js.body.size());
    BOOST_TEST(gunzip(gz.body) == js.body);
    BOOST_TEST(c.get("/assets/app.js", {}, {{"Accept-Encoding", "gzip;q=0"}}).header("content-encoding").empty());
    BOOST_TEST(c.get("/assets/app.js").header("content-encoding").empty());
    auto page_gz = c.get("/", {}, {{"Accept-Encoding", "gzip"}});
    BOOST_TEST(has(gunzip(page_gz.body), "/assets/" + version + "/app.css"));
    (void)index;

    // Unknown files are JSON 404s; index.html is only served as the page.
    for (const char* path : {"/assets/nope.js", "/assets/index.html", "/assets/v-0000000000000000/app.js",
                             "/assets/../CMakeLists.txt", "/client-certificatesx"})
        BOOST_TEST(c.get(path).status == 404u, path);
}

BOOST_AUTO_TEST_CASE(plain_http_without_api_on_http_serves_no_dashboard) {
    test_server srv({}, [](net::server_options& o) { o.api_on_http = false; });
    auto c = srv.client();
    for (const char* path : {"/", "/client-certificates", "/assets/app.js", "/api/session"})
        BOOST_TEST(c.get(path).status == 404u, path);
    BOOST_TEST(c.get("/health").status == 200u);
}

BOOST_AUTO_TEST_CASE(session_tells_who_the_caller_is_and_nothing_to_nobody) {
    test_server srv;
    auto c = srv.client();
    auto nobody = c.get("/api/session");
    BOOST_TEST(nobody.status == 200u);
    BOOST_TEST(json::serialize(nobody.json()) == R"({"authenticated":false})");
    BOOST_TEST(json::serialize(c.get("/api/session", "cm_wrong").json()) == R"({"authenticated":false})");
    auto v = obj(c.get("/api/session", srv.tokens.viewer));
    BOOST_TEST(v.at("authenticated").as_bool());
    BOOST_TEST(str(v, "name") == "reader");
    BOOST_TEST(str(v, "role") == "viewer");
    BOOST_TEST(str(v, "authenticated_by") == "token");
    BOOST_TEST(str(obj(c.get("/api/session", srv.tokens.operator_)), "role") == "operator");
    BOOST_TEST(str(obj(c.get("/api/session", srv.tokens.admin)), "role") == "admin");
}

// /api/client-certs/stats counts certificates not revoked by the week they expire in (the chart).
BOOST_AUTO_TEST_CASE(stats_count_expiries_per_week) {
    test_server srv;
    auto c = srv.client();
    auto make = [&](int days) {
        auto r = c.post_json("/api/client-certs",
                             R"({"common_name":"w)" + std::to_string(days) + R"(","validity_days":)" +
                                 std::to_string(days) + "}",
                             srv.tokens.operator_);
        BOOST_REQUIRE_EQUAL(r.status, 201u);
        return str(obj(r), "identifier");
    };
    make(3);
    make(10);
    make(10);
    const auto revoked = make(20);
    make(400); // beyond 26 weeks
    BOOST_REQUIRE_EQUAL(c.post_json("/api/client-certs/" + revoked + "/revoke", "{}", srv.tokens.operator_).status,
                        200u);
    auto st = obj(c.get("/api/client-certs/stats", srv.tokens.viewer));
    const auto& weeks = st.at("expiring_per_week").as_array();
    BOOST_REQUIRE_EQUAL(weeks.size(), 26u);
    std::vector<std::int64_t> got;
    for (const auto& w : weeks) got.push_back(w.to_number<std::int64_t>());
    std::vector<std::int64_t> want(26, 0);
    want[0] = 1; // 3 days (not_before may sit a little in the past: still week 0)
    want[1] = 2; // 10 days
    BOOST_TEST(got == want, boost::test_tools::per_element());
}

// GET /api/renewals/last (the overview's "last sweep"): the sweep the server ran at start, counts only.
BOOST_AUTO_TEST_CASE(last_renewal_sweep_is_readable_by_a_viewer) {
    test_server srv;
    auto c = srv.client();
    http_reply r;
    for (int i = 0; i < 100; ++i) { // the start-up sweep runs in the background
        r = c.get("/api/renewals/last", srv.tokens.viewer);
        if (r.status != 204) break;
        std::this_thread::sleep_for(50ms);
    }
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    auto o = obj(r);
    for (const char* k : {"started_at", "finished_at", "candidates", "renewed", "failed"}) BOOST_TEST(o.contains(k), k);
    BOOST_TEST(!o.contains("outcomes"));
    BOOST_TEST(o.at("candidates").to_number<int>() == 0);
    BOOST_TEST(c.get("/api/renewals/last").status == 401u);
}

namespace {

// The chromium run's certificates: `n` made through the service (no HTTP), as a person's store
// would hold them: several usages, validities spread over a year (1 in 100 due for renewal, so
// the server's start-up sweep has work but not thousands of renewals), a searchable identifier,
// Ed25519 keys (the cheapest to make and sign with). And "tls-operator", a client certificate
// (EC P-256: chromium signs with it) with api_role operator, its PEM and key written to `dir`.
void seed_store(const app::config& cfg, int n, const fs::path& dir) {
    auto svc = app::open_service(cfg);
    BOOST_REQUIRE_MESSAGE(svc, (svc ? "" : svc.error().message));
    const auto who = system_principal("dashboard-test-seed");
    {
        create_request rq;
        rq.identifier = "tls-operator";
        rq.subject.common_name = "dashboard operator";
        rq.role = api_role::operator_;
        rq.key = key_type::ec_p256;
        BOOST_REQUIRE(run_sync((*svc)->stage_create(std::move(rq), who)));
        using ff = cert_service::file_format;
        for (auto [f, name] : {std::pair{ff::cert_pem, "client.crt"}, std::pair{ff::key_pem, "client.key"}}) {
            auto file = run_sync((*svc)->stage_download("tls-operator", f, who));
            BOOST_REQUIRE(file);
            write_text(dir / name, file->data);
        }
    }
    const auto started = std::chrono::steady_clock::now();
    // As the server runs them: stage and commit one at a time (the strand), the work (key, signing,
    // files, fsync, audit) of up to 16 at once (the pool), so the fsyncs overlap.
    constexpr int wave = 16;
    for (int base = 0; base < n; base += wave) {
        std::vector<staged<cert_view>> batch;
        for (int i = base; i < std::min(n, base + wave); ++i) {
            create_request rq;
            char id[32];
            std::snprintf(id, sizeof id, "seed-%05d", i);
            rq.identifier = id;
            rq.subject.common_name = std::string("device-") + std::to_string(i) + ".fleet.example";
            rq.usage = i % 5 == 0 ? cert_usage::vpn : (i % 7 == 0 ? cert_usage::other : cert_usage::api_mtls);
            rq.key = key_type::ed25519;
            rq.validity_days = i % 100 == 0 ? 5 + (i / 100) % 25 : 32 + (i * 37) % 333;
            auto st = (*svc)->stage_create(std::move(rq), who);
            BOOST_REQUIRE_MESSAGE(st, "seed " << i << ": " << (st ? "" : st.error().message));
            batch.push_back(std::move(*st));
        }
        std::vector<std::future<result<cert_view>>> works;
        for (auto& b : batch) works.push_back(std::async(std::launch::async, [&b] { return b.work(); }));
        for (std::size_t k = 0; k < batch.size(); ++k) {
            auto r = batch[k].commit(works[k].get());
            BOOST_REQUIRE_MESSAGE(r, "seed " << base + k << ": " << (r ? "" : r.error().message));
        }
    }
    BOOST_TEST_MESSAGE("seeded " << n << " certificates through the service in "
                                 << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
                                 << " s");
}

// The config file the binary runs with: the data dir, plain HTTP and TLS (client certificates
// optional) on port 0, the three test tokens, no rate limits.
fs::path write_config(const fs::path& dir, const app::config& cfg) {
    std::string text = "[server]\nhttp_listen = 127.0.0.1:0\nhttps_listen = 127.0.0.1:0\nthreads = 2\n"
                       "pool_threads = 2\n";
    text += "[storage]\ndata_dir = " + cfg.data_dir.string() + "\n";
    if (cfg.backend == "postgresql") // test_dashboard_pg (support/http_server_fixture.hpp use_test_backend)
        text += "backend = postgresql\npostgresql = " + cfg.postgresql +
                "\nkey_encryption_key_file = " + cfg.key_encryption_key_file.string() + "\n";
    text += "[tls]\ncert = " + (cfg.data_dir / "tls/server.crt").string() +
            "\nkey = " + (cfg.data_dir / "tls/server.key").string() + "\nclient_auth = optional\n";
    text += "[rate_limit]\ndefault = 0\ncreate = 0\nbatch = 0\nocsp = 0\ncrl = 0\n[auth]\n";
    for (const auto& t : cfg.tokens)
        text += "token = " + t.name + ":" + std::string(to_string(t.role)) + ":" + t.sha256_hex + "\n";
    const auto path = dir / "certmate.conf";
    write_text(path, text);
    return path;
}

fs::path screenshot_dir() {
    // The build tree (build*/screenshots), where the test binary lives.
    return fs::canonical("/proc/self/exe").parent_path() / "screenshots";
}

} // namespace

BOOST_AUTO_TEST_CASE(the_dashboard_in_chromium) {
    const fs::path chromium = "/usr/bin/chromium";
    if (!fs::exists(chromium)) {
        BOOST_TEST_MESSAGE("SKIPPED: /usr/bin/chromium is not installed (apt-get install chromium, or "
                           "CERTMATE_TEST_DEPS=1 bash scripts/install-deps.sh)");
        return;
    }
    const fs::path tools = fs::path(CERTMATE_SOURCE_DIR) / "test/dashboard";
    if (!fs::exists(tools / "node_modules/playwright-core")) {
        auto r = run("bash " + (fs::path(CERTMATE_SOURCE_DIR) / "scripts/dashboard-test.sh").string() + " install");
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "npm ci in test/dashboard failed: " << r.output);
    }
    // Test 4 of issue 13: 30,000 certificates (CERTMATE_DASHBOARD_CERTS overrides).
    int n = 30000;
    if (const char* e = std::getenv("CERTMATE_DASHBOARD_CERTS")) n = std::atoi(e);
    const auto t0 = std::chrono::steady_clock::now();
    auto since = [&t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    // The store on tmpfs when there is one: the fill's cost is then the crypto, not the disk's
    // fsyncs (what is tested is the dashboard at 30,000 certificates, not the disk).
    const bool shm = ::access("/dev/shm", W_OK) == 0 && fs::is_directory("/dev/shm");
    temp_dir dir = shm ? temp_dir("/dev/shm") : temp_dir();
    token_set tokens;
    auto cfg = test_config(dir / "data", tokens);
    cfg.ca_key_type = key_type::ec_p256; // signs ~20x faster than the tests' usual P-384
    auto init = app::init_data_dir(cfg, dir / "unused.conf");
    BOOST_REQUIRE_MESSAGE(init, (init ? "" : init.error().message));
    seed_store(cfg, n, dir.path());
    auto tls = app::issue_server_cert(cfg, {"127.0.0.1"});
    BOOST_REQUIRE_MESSAGE(tls, (tls ? "" : tls.error().message));
    const auto conf = write_config(dir.path(), cfg);

    child_process serve({certmate_binary(), "serve", "-c", conf.string()}, dir / "serve.err");
    auto line = serve.wait_for_line("listening on http://", 60s);
    BOOST_REQUIRE_MESSAGE(line, read_text(dir / "serve.err"));
    const auto port = port_of_listen_line(*line);
    auto tls_line = serve.wait_for_line("listening on https://", 30s);
    BOOST_REQUIRE_MESSAGE(tls_line, read_text(dir / "serve.err"));
    const auto tls_port = port_of_listen_line(*tls_line);
    BOOST_TEST_MESSAGE("the server is listening at " << since() << " s (data dir on " << (shm ? "tmpfs" : "disk")
                                                     << ")");

    const auto shots = screenshot_dir();
    fs::create_directories(shots);
    const std::string env = "BASE_URL=http://127.0.0.1:" + std::to_string(port) + " ADMIN_TOKEN=" + tokens.admin +
                            " OPERATOR_TOKEN=" + tokens.operator_ + " VIEWER_TOKEN=" + tokens.viewer +
                            " SEEDED=" + std::to_string(n) + " SCREENSHOTS=" + shots.string() +
                            " WORK_DIR=" + dir.path().string() + " CHROMIUM=" + chromium.string() +
                            " TLS_URL=https://127.0.0.1:" + std::to_string(tls_port);
    const double node_start = since();
    const auto out = run(env + " node " + (tools / "dashboard.mjs").string() + " 2>&1");
    BOOST_TEST_MESSAGE(out.output);
    BOOST_TEST_MESSAGE("dashboard.mjs ran " << since() - node_start << " s; " << since() << " s so far");
    BOOST_TEST(out.exit_code == 0, "dashboard.mjs failed:\n" << out.output);
    BOOST_TEST(has(out.output, "dashboard: all checks passed"));

    serve.signal(SIGTERM);
    BOOST_TEST(serve.wait_exit(30s).value_or(-1) == 0);
    // After sign-ins with all three tokens and a wrong one: no token in the server's log or the audit log.
    for (const auto& [what, text] : {std::pair{std::string("the server's log"), read_text(dir / "serve.err")},
                                     std::pair{std::string("the audit log"), audit_text(cfg)}}) {
        BOOST_TEST(!text.empty(), what);
        for (const auto& t : {tokens.admin, tokens.operator_, tokens.viewer, std::string("cm_this-is-not-a-token")})
            BOOST_TEST(!has(text, t), "a token in " << what);
    }
}
