// Races (issue 14), run in every build and under ThreadSanitizer (scripts/test.sh, stage tsan):
// concurrent mutations of one certificate have one winner at a time and leave consistent
// metadata and an audit log whose order is the commit order; rate-limit buckets admit exactly
// their limit under concurrent clients; token and limit reloads during load drop no request.
#define BOOST_TEST_MODULE test_concurrency
#include <boost/test/unit_test.hpp>

#include "app/server_options.hpp"
#include "core/keys.hpp"
#include "core/ossl.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

#include <openssl/x509.h>

#include <atomic>
#include <barrier>
#include <regex>
#include <optional>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A counter from /metrics (the first sample matching `name_and_labels`, regex-escaped by the caller).
std::uint64_t metric(http_client& c, const std::string& token, const std::string& name_and_labels) {
    auto r = c.get("/metrics", token);
    std::smatch m;
    const std::regex re(name_and_labels + R"re( (\d+))re");
    BOOST_REQUIRE_MESSAGE(std::regex_search(r.body, m, re), name_and_labels << " missing from /metrics");
    return std::stoull(m[1]);
}

// The decimal serials /crl.der lists (the signature is test_crypto's and test_http_api's to check);
// nullopt when it does not parse. No Boost.Test macro here: the client threads call it, and
// Boost.Test's log is not thread-safe (a TSan report).
std::optional<std::set<std::string>> crl_serials(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509_crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!crl) return std::nullopt;
    std::set<std::string> out;
    if (auto* revoked = X509_CRL_get_REVOKED(crl.get()))
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i)
            out.insert(serial_to_decimal(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))).value());
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(concurrent_mutations_of_one_certificate_have_one_winner_at_a_time) {
    test_server s;
    const auto& op = s.tokens.operator_;
    auto c = s.client();
    BOOST_TEST_REQUIRE(c.post_json("/api/client-certs", R"({"common_name":"race","identifier":"race"})", op).status ==
                       201u);
    constexpr int threads = 6, rounds = 8;
    std::atomic<int> ok{0}, conflicts{0}, other{0};
    std::barrier sync(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            auto hc = s.client();
            for (int r = 0; r < rounds; ++r) {
                sync.arrive_and_wait(); // all threads fire at the same certificate at once
                http_reply a;
                switch ((t + r) % 4) {
                case 0: a = hc.post_json("/api/client-certs/race/renew", "{}", op); break;
                case 1:
                    a = hc.patch_json("/api/client-certs/race",
                                      R"({"notes":"t)" + std::to_string(t) + "r" + std::to_string(r) + "\"}", op);
                    break;
                case 2: a = hc.get("/api/client-certs/race/private-key", op); break;
                case 3:
                    a = hc.post_json("/api/client-certs/race/revoke", R"({"reason":"certificateHold"})", op);
                    if (a.status != 200) break;
                    // The hold is ours to lift: an unhold refused as a conflict (another thread's
                    // change in flight) is asked again, or the certificate would stay on hold.
                    for (int tries = 0; tries < 200; ++tries) {
                        a = hc.post_json("/api/client-certs/race/unhold", "", op);
                        if (a.status != 409) break;
                        std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    }
                    break;
                }
                if (a.status == 200)
                    ++ok;
                else if (a.status == 409)
                    ++conflicts;
                else {
                    ++other;
                    BOOST_TEST_MESSAGE("unexpected " << a.status << ": " << a.body);
                }
            }
        });
    for (auto& th : pool) th.join();
    BOOST_TEST_MESSAGE(ok << " succeeded, " << conflicts << " refused as conflicts");
    BOOST_TEST(other == 0);
    BOOST_TEST(ok > 0);

    // Consistent: the record's serial is the certificate it serves, the history is whole, and the
    // last notes written in the audit log (commit order) are the notes it holds.
    auto rec = obj(c.get("/api/client-certs/race", op));
    const auto cert = c.get("/api/client-certs/race/certificate", op).body;
    temp_dir t;
    write_text(t / "race.crt", cert);
    auto serial = run("openssl x509 -noout -serial -in " + (t / "race.crt").string());
    BOOST_TEST(!str(rec, "serial_number").empty());
    BOOST_TEST(!rec.at("revocation").as_object().at("revoked").as_bool());
    std::string last_notes;
    for (const auto& line : audit_lines(s.config())) {
        if (!has(line, R"("operation":"update")") || !has(line, R"("resource_id":"race")") ||
            !has(line, R"("status":"success")"))
            continue;
        auto p = line.find(R"("notes":")");
        if (p == std::string::npos) continue;
        p += 9;
        last_notes = line.substr(p, line.find('"', p) - p);
    }
    BOOST_TEST(str(rec, "notes") == last_notes);
    auto verify = obj(c.get("/api/audit/verify", s.tokens.admin));
    BOOST_TEST(verify.at("ok").as_bool());
}

BOOST_AUTO_TEST_CASE(a_bucket_admits_exactly_its_limit_under_concurrent_clients) {
    test_server s([](app::config& cfg) { cfg.limits.default_per_min = 40; });
    const auto& viewer = s.tokens.viewer;
    std::atomic<int> admitted{0}, limited{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 8; ++t)
        pool.emplace_back([&] {
            auto hc = s.client();
            for (int i = 0; i < 10; ++i) {
                const auto st = hc.get("/api/client-certs/stats", viewer).status;
                if (st == 200)
                    ++admitted;
                else if (st == 429)
                    ++limited;
            }
        });
    for (auto& th : pool) th.join();
    // 80 requests within well under a minute: the bucket (40 a minute) admits 40, give or take the
    // refill of the seconds the burst took.
    BOOST_TEST(admitted + limited == 80);
    BOOST_TEST(admitted >= 40);
    BOOST_TEST(admitted <= 42);
}

BOOST_AUTO_TEST_CASE(reloading_tokens_and_limits_under_load_drops_no_request) {
    test_server s;
    const auto& viewer = s.tokens.viewer;
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0}, answered{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t)
        pool.emplace_back([&] {
            auto hc = s.client();
            while (!stop) {
                const auto st = hc.get("/api/client-certs?limit=5", viewer).status;
                ++answered;
                if (st != 200) ++failures;
            }
        });
    const auto tokens = app::server_options_from(s.config()).tokens;
    for (int i = 0; i < 50; ++i) {
        rate_limit_config limits{};
        limits.per_minute = {0, 0, 0, 0, 0}; // unlimited, as the test server runs
        s.server().reload(tokens, limits);
        std::this_thread::sleep_for(5ms); // reloads spread over the load, not one burst
    }
    stop = true;
    for (auto& th : pool) th.join();
    BOOST_TEST_MESSAGE(answered << " requests during 50 reloads");
    BOOST_TEST(answered > 50);
    BOOST_TEST(failures == 0);
}

// Group commit with the promise kept (docs/architecture.md): 64 clients revoke at once over real
// sockets; every one, as soon as its 200 arrives, finds its serial in /crl.der; the revocations
// shared far fewer than 64 CRL builds, and no answer went out on the wait's timeout.
BOOST_AUTO_TEST_CASE(concurrent_revocations_share_builds_and_each_ack_is_in_the_crl) {
    test_server s({}, [](net::server_options& o) { o.max_connections_per_ip = 0; }); // 64 clients + this one
    const auto& op = s.tokens.operator_;
    auto c = s.client();
    constexpr int clients = 64;
    std::vector<std::string> serials;
    for (int i = 0; i < clients; ++i) {
        auto r = c.post_json(
            "/api/client-certs",
            R"({"common_name":"r)" + std::to_string(i) + R"(","identifier":"r)" + std::to_string(i) + "\"}", op);
        BOOST_TEST_REQUIRE(r.status == 201u, r.body);
        serials.push_back(str(obj(r), "serial_number"));
    }
    BOOST_TEST_REQUIRE(c.get("/crl.der").status == 200u); // the start-up CRL is out
    const auto builds_before = metric(c, s.tokens.admin, R"re(certmate_crl_builds_total\{result="ok"\})re");

    std::atomic<int> acked{0}, listed{0}, other{0};
    std::barrier sync(clients);
    std::vector<std::thread> pool;
    for (int i = 0; i < clients; ++i)
        pool.emplace_back([&, i] {
            auto hc = s.client();
            sync.arrive_and_wait();
            auto r = hc.post_json("/api/client-certs/r" + std::to_string(i) + "/revoke",
                                  R"({"reason":"keyCompromise"})", op);
            if (r.status != 200) {
                ++other;
                BOOST_TEST_MESSAGE("revoke " << i << ": " << r.status << " " << r.body);
                return;
            }
            ++acked;
            auto crl = hc.get("/crl.der");
            if (crl.status != 200) return;
            const auto listed_now = crl_serials(crl.body);
            if (listed_now && listed_now->contains(serials[static_cast<std::size_t>(i)])) ++listed;
        });
    for (auto& th : pool) th.join();
    BOOST_TEST(other == 0);
    BOOST_TEST(acked == clients);
    BOOST_TEST(listed == clients); // each acknowledged revocation was in /crl.der when acknowledged
    const auto all = crl_serials(c.get("/crl.der").body);
    BOOST_TEST_REQUIRE(all.has_value());
    for (const auto& serial : serials) BOOST_TEST(all->contains(serial));
    const auto builds = metric(c, s.tokens.admin, R"re(certmate_crl_builds_total\{result="ok"\})re") - builds_before;
    BOOST_TEST_MESSAGE(clients << " concurrent revocations, " << builds << " CRL builds");
    BOOST_TEST(builds >= 1u);
    BOOST_TEST(builds <= static_cast<std::uint64_t>(clients / 4));
    BOOST_TEST(metric(c, s.tokens.admin, "certmate_crl_wait_timeouts_total") == 0u);
}
