// Several instances on one PostgreSQL (issue 18, docs/high-availability.md), with real parts: a
// throwaway cluster, two `certmate serve` processes on one database (the second data dir made by
// `ca backup` / `ca restore`), and Debian's nginx in front of both as the load balancer.
// 1. creates through nginx spread over both instances, and each instance lists every one;
// 2. a revoke through A gives `revoked` from `openssl ocsp` at B within 1 s, and B refuses that
//    certificate's mTLS with 401;
// 3. with PostgreSQL stopped for 5 s, OCSP and /crl.der keep answering from both, creates get 503,
//    and everything resumes by itself when it is back.
#define BOOST_TEST_MODULE ha
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "support/two_instances.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <netinet/in.h>
#include <csignal>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

using namespace certmate::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// Two instances of one CA on one database (support/two_instances.hpp), nginx in front.
struct ha_fixture : two_instances {
    std::unique_ptr<child_process> nginx;
    unsigned short lb_port = 0;

    static ha_options options(std::vector<std::string> rate_args, bool migrate) {
        ha_options o;
        o.tls = true;
        o.migrate = migrate;
        // No rate limits unless a test sets them (OCSP's off too: `openssl ocsp` and the fast path's checks ask often).
        o.limits = {"--rate_limit.default", "0", "--rate_limit.create", "0", "--rate_limit.ocsp", "0"};
        if (!rate_args.empty()) o.limits = std::move(rate_args);
        o.extra = {"--issuance.default_key_type", "ec-p256"};
        return o;
    }

    // `rate_args`: the rate limits both instances start with (none unless given); `migrate`: run
    // `certmate db migrate` first; without it `serve` creates the schema itself.
    explicit ha_fixture(std::vector<std::string> rate_args = {}, bool migrate = true)
        : two_instances(options(std::move(rate_args), migrate)) {
        start_nginx();
    }

    void start_nginx() {
        lb_port = free_loopback_port();
        fs::create_directories(dir / "nginx/logs");
        write_text(dir / "nginx/nginx.conf",
                   "worker_processes 1;\npid " + (dir / "nginx/nginx.pid").string() + ";\nerror_log " +
                       (dir / "nginx/logs/error.log").string() +
                       ";\nevents { worker_connections 256; }\nhttp {\n"
                       "  log_format up '$upstream_addr $status';\n"
                       "  access_log " +
                       (dir / "nginx/logs/access.log").string() +
                       " up;\n"
                       "  upstream certmate { server 127.0.0.1:" +
                       std::to_string(a.port) + " max_fails=0; server 127.0.0.1:" + std::to_string(b.port) +
                       " max_fails=0; }\n"
                       "  server {\n    listen 127.0.0.1:" +
                       std::to_string(lb_port) +
                       ";\n    location / { proxy_pass http://certmate; proxy_http_version 1.1;\n"
                       "      proxy_set_header Connection \"\"; proxy_next_upstream off; }\n  }\n}\n");
        nginx = std::make_unique<child_process>(
            std::vector<std::string>{"/usr/sbin/nginx", "-p", (dir / "nginx").string(), "-c",
                                     (dir / "nginx/nginx.conf").string(), "-g", "daemon off;"},
            dir / "nginx/stderr");
        for (int i = 0; i < 100; ++i) {
            try {
                http_client probe(lb_port);
                if (probe.get("/health").status != 0) return;
            } catch (const std::exception&) {}
            std::this_thread::sleep_for(100ms);
        }
        BOOST_FAIL("nginx did not start: " + read_text(dir / "nginx/stderr") + read_text(dir / "nginx/logs/error.log"));
    }

    ~ha_fixture() {
        if (nginx) nginx->signal(SIGQUIT);
    }

    std::string ca_file() const { return (a.data / "certs/ca/ca.crt").string(); }

    // `openssl ocsp` at instance `i` for the certificate in `cert_file`: "good", "revoked", or the output.
    std::string ocsp_status(const ha_instance& i, const std::string& cert_file) const {
        auto r = run("openssl ocsp -url http://127.0.0.1:" + std::to_string(i.port) + "/ocsp -issuer " + ca_file() +
                     " -CAfile " + ca_file() + " -cert " + cert_file + " -no_nonce 2>&1");
        if (r.exit_code != 0) return r.output;
        if (r.output.find(": revoked") != std::string::npos) return "revoked";
        if (r.output.find(": good") != std::string::npos) return "good";
        return r.output;
    }
};

unsigned curl_status(const std::string& args) {
    auto r = run("curl -sS -o /dev/null --max-time 10 -w '%{http_code}' " + args + " 2>&1");
    return static_cast<unsigned>(std::atoi(r.output.c_str()));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(behind_nginx, ha_fixture)

BOOST_AUTO_TEST_CASE(creates_spread_revocations_reach_the_other_instance_and_outages_are_survived) {
    // 1. Creates through the load balancer land on both instances; each lists all of them.
    http_client lb(lb_port);
    std::set<std::string> ids;
    for (int n = 0; n < 12; ++n) {
        const std::string id = "ha-" + std::to_string(n);
        auto r = lb.post_json("/api/client-certs",
                              R"({"identifier":")" + id + R"(","common_name":")" + id +
                                  R"(","key_type":"ec-p256","api_role":"viewer"})",
                              token);
        BOOST_REQUIRE_MESSAGE(r.status == 201u, r.body);
        ids.insert(id);
    }
    std::set<std::string> upstreams;
    for (const auto& line : lines_of(dir / "nginx/logs/access.log"))
        if (line.find(" 201") != std::string::npos) upstreams.insert(line.substr(0, line.find(' ')));
    BOOST_TEST(upstreams.size() == 2u, "creates went to " << upstreams.size() << " instance(s)");
    for (auto* i : {&a, &b}) {
        http_client c(i->port);
        std::set<std::string> seen;
        for (int tries = 0; tries < 20 && seen != ids; ++tries) {
            seen.clear();
            auto list = c.get("/api/client-certs?limit=100", token);
            BOOST_REQUIRE(list.status == 200u);
            const auto body = list.json();
            for (const auto& v : body.as_object().at("certificates").as_array())
                seen.insert(std::string(v.as_object().at("identifier").as_string()));
            if (seen != ids) std::this_thread::sleep_for(100ms);
        }
        BOOST_TEST((seen == ids), "instance on port " << i->port << " lists " << seen.size() << " of 12");
    }

    // 2. A certificate with a role, its files from A; mTLS at B works; revoke at A; B answers
    //    `revoked` by OCSP within 1 s and 401 to its mTLS.
    http_client ca_(a.port), cb(b.port);
    const auto cert = (dir / "ha-0.crt").string(), key = (dir / "ha-0.key").string();
    auto c = ca_.get("/api/client-certs/ha-0/certificate", token);
    auto k = ca_.get("/api/client-certs/ha-0/private-key", token);
    BOOST_REQUIRE(c.status == 200u && k.status == 200u);
    write_text(cert, c.body);
    write_text(key, k.body);
    const std::string mtls_b = "--cacert " + ca_file() + " --cert " + cert + " --key " + key +
                               " https://127.0.0.1:" + std::to_string(b.tls_port) + "/api/client-certs?limit=1";
    BOOST_TEST(curl_status(mtls_b) == 200u);
    BOOST_TEST(ocsp_status(b, cert) == "good");
    // B's OCSP fast path (HTTP/1.1 keep-alive; `openssl ocsp` speaks HTTP/1.0 and is always
    // routed): request bytes B has read once are answered from its cache without routing; a
    // revocation at A must reach those answers as it reaches the routed ones.
    const auto req_file = (dir / "ha-0.req").string(), resp_file = (dir / "ha-0.resp").string();
    BOOST_REQUIRE(
        run("openssl ocsp -issuer " + ca_file() + " -cert " + cert + " -no_nonce -reqout " + req_file).exit_code == 0);
    const auto req_der = read_text(req_file);
    auto fast_status = [&] { // "good", "revoked" or what openssl said
        auto r = cb.request("POST", "/ocsp", req_der, {{"Content-Type", "application/ocsp-request"}});
        if (r.status != 200u) return "HTTP " + std::to_string(r.status);
        write_text(resp_file, r.body);
        auto v = run("openssl ocsp -respin " + resp_file + " -issuer " + ca_file() + " -CAfile " + ca_file() +
                     " -cert " + cert + " 2>&1");
        if (v.output.find(": revoked") != std::string::npos) return std::string("revoked");
        if (v.output.find(": good") != std::string::npos) return std::string("good");
        return v.output;
    };
    auto fast_answers = [&] {
        const auto text = cb.get("/metrics", token).body;
        const std::string series = "\ncertmate_ocsp_fast_path_total ";
        const auto at = text.find(series);
        return at == std::string::npos ? -1.0 : std::stod(text.substr(at + series.size()));
    };
    BOOST_TEST(fast_status() == "good");
    const double fast0 = fast_answers();
    BOOST_TEST(fast_status() == "good");
    BOOST_TEST(fast_answers() == fast0 + 1);
    auto rv = ca_.post_json("/api/client-certs/ha-0/revoke", R"({"reason":"keyCompromise"})", token);
    BOOST_REQUIRE_MESSAGE(rv.status == 200u, rv.body);
    const auto revoked_at = std::chrono::steady_clock::now();
    std::string st;
    while ((st = ocsp_status(b, cert)) != "revoked" && std::chrono::steady_clock::now() - revoked_at < 5s)
        std::this_thread::sleep_for(50ms);
    const auto lag =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - revoked_at);
    BOOST_TEST_MESSAGE("revoked at A, `openssl ocsp` at B says revoked after " << lag.count() << " ms");
    BOOST_TEST(st == "revoked");
    BOOST_TEST(lag.count() <= 1000);
    // B's fast path says revoked too, and goes on answering the revoked response from its cache.
    BOOST_TEST(fast_status() == "revoked");
    const double fast1 = fast_answers();
    BOOST_TEST(fast_status() == "revoked");
    BOOST_TEST(fast_answers() == fast1 + 1);
    BOOST_TEST(curl_status(mtls_b) == 401u);

    // B's /health reports the database, /metrics its pool and how late A's changes arrived.
    {
        auto h = cb.get("/health");
        BOOST_TEST(h.status == 200u, h.body);
        const auto hb = h.json();
        const auto* db = hb.as_object().if_contains("database");
        BOOST_REQUIRE_MESSAGE(db, h.body);
        BOOST_TEST(db->as_object().at("latency_ms").is_double());
        BOOST_TEST(db->as_object().at("last_notification").is_string());
        BOOST_TEST(db->as_object().at("notification_lag_ms").is_double());
        auto m = cb.get("/metrics", token);
        BOOST_TEST(m.status == 200u);
        for (const char* name :
             {"certmate_db_pool_size ", "certmate_db_pool_connections{state=\"idle\"} ",
              "certmate_db_notification_lag_seconds ", "certmate_db_latency_seconds ", "certmate_db_change_seq "})
            BOOST_TEST(m.body.find(name) != std::string::npos, "/metrics lacks " << name);
        BOOST_TEST_MESSAGE("B's /health database: " << json::serialize(*db));
    }

    // 3. PostgreSQL away for 5 s: OCSP and the CRL keep answering from both, creates get 503.
    const auto other = (dir / "ha-1.crt").string();
    write_text(other, ca_.get("/api/client-certs/ha-1/certificate", token).body);
    shared_pg_cluster().stop();
    const auto down = std::chrono::steady_clock::now();
    for (auto* i : {&a, &b}) {
        http_client hc(i->port);
        BOOST_TEST(ocsp_status(*i, cert) == "revoked");
        BOOST_TEST(ocsp_status(*i, other) == "good");
        auto crl = hc.get("/crl.der");
        BOOST_TEST(crl.status == 200u);
        auto created =
            hc.post_json("/api/client-certs", R"({"common_name":"during-outage","key_type":"ec-p256"})", token);
        BOOST_TEST(created.status == 503u, "create during the outage: " << created.status << " " << created.body);
        auto h = hc.get("/health");
        BOOST_TEST(h.status == 503u, "health during the outage: " << h.body);
    }
    std::this_thread::sleep_for(5s - (std::chrono::steady_clock::now() - down));
    shared_pg_cluster().start();
    for (auto* i : {&a, &b}) {
        http_client hc(i->port);
        unsigned status = 0;
        // A retry may meet its own earlier attempt, committed while its answer was lost: 409.
        for (int tries = 0; tries < 100 && status != 201u && !(tries > 0 && status == 409u); ++tries) {
            auto r = hc.post_json("/api/client-certs",
                                  R"({"identifier":"after-)" + std::to_string(i->port) +
                                      R"(","common_name":"after","key_type":"ec-p256"})",
                                  token);
            status = r.status;
            if (status != 201u) std::this_thread::sleep_for(100ms);
        }
        BOOST_TEST((status == 201u || status == 409u), "create after the outage at port " << i->port << ": " << status);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// rate_limit.shared: one bucket across both instances, so the limit holds through the balancer.
// Also: `serve` on an empty database (no `db migrate`) makes the schema itself.
struct shared_limits : ha_fixture {
    shared_limits()
        : ha_fixture({"--rate_limit.default", "0", "--rate_limit.create", "4", "--rate_limit.shared", "true"},
                     /*migrate=*/false) {}
};

BOOST_FIXTURE_TEST_CASE(a_shared_rate_limit_holds_across_instances, shared_limits) {
    http_client ca_(a.port), cb(b.port);
    std::vector<unsigned> got;
    for (int n = 0; n < 6; ++n) {
        auto& c = n % 2 == 0 ? ca_ : cb;
        auto r = c.post_json(
            "/api/client-certs",
            R"({"identifier":"rl-)" + std::to_string(n) + R"(","common_name":"rl","key_type":"ec-p256"})", token);
        got.push_back(r.status);
        if (r.status == 429u) BOOST_TEST(!r.header("retry-after").empty());
    }
    // 4 per minute for the admin token, taken alternately at A and B: the 5th and 6th are refused,
    // wherever they land (each instance alone would have allowed 4).
    const std::vector<unsigned> want{201, 201, 201, 201, 429, 429};
    BOOST_TEST(got == want, "statuses " << got[0] << " " << got[1] << " " << got[2] << " " << got[3] << " " << got[4]
                                        << " " << got[5]);
}
