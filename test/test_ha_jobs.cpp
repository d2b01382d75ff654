// Batch jobs and the renewal sweep on several instances of one PostgreSQL (issue 18 acceptance 3
// and 4, docs/postgresql.md "Several instances"), with real parts: a throwaway cluster
// and two `certmate serve` processes on one database (the second data dir from `ca backup` /
// `ca restore`), talked to directly.
// 1. A batch create job at A; A is SIGKILLed while it runs; B reports the job interrupted, takes
//    it over and finishes it: every identifier exists once, serials are unique, and the audit
//    chain (both instances' entries) verifies at B and with `certmate audit verify`.
// 2. The sweep asked of both at once: one sweeps, each due certificate is renewed exactly once;
//    then a sweeper SIGKILLed mid-way leaves its lease free and the other finishes the renewals on
//    its next run, still once each.
// 3. The same through the daily timer (renewal.time a few seconds ahead on both): both reach the
//    time, exactly one sweeps and the other finds the run done; at the next time the sweeper is
//    SIGKILLed mid-way and the other, asking again every renewal.retry_seconds, finishes it.
#define BOOST_TEST_MODULE ha_jobs
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "support/two_instances.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <ctime>
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <set>
#include <fstream>
#include <sstream>
#include <thread>

using namespace certmate::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// Two instances of one CA on one database (support/two_instances.hpp), each talked to directly.
struct ha_jobs_fixture : two_instances {
    // `n` certificates <prefix>0.. made at A, due for renewal at once (valid 10 days, renewed 30
    // days before expiry; RSA-2048 keys, re-keyed on renewal: slow enough to kill a sweep mid-way).
    void create_due(const std::string& prefix, int n) const {
        http_client c(a.port);
        for (int i = 0; i < n; ++i) {
            auto r = c.post_json("/api/client-certs",
                                 R"({"identifier":")" + prefix + std::to_string(i) +
                                     R"(","common_name":"due","validity_days":10,"renewal_threshold_days":30,)"
                                     R"("key_type":"rsa2048"})",
                                 token);
            BOOST_REQUIRE_MESSAGE(r.status == 201u, r.body);
        }
    }
    // identifier -> how many renewals its history holds, for the identifiers starting with `prefix`.
    std::map<std::string, std::size_t> renewals_of(const std::string& prefix) const {
        std::map<std::string, std::size_t> out;
        std::istringstream in(sql("SELECT identifier || ' ' || json_array_length(metadata->'history') FROM "
                                  "certificates WHERE identifier LIKE '" +
                                  prefix + "%'"));
        for (std::string id; in >> id;) in >> out[id];
        return out;
    }
};

json::object obj(const http_reply& r) { return json::parse(r.body).as_object(); }
std::string str(const json::object& o, const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
std::size_t num(const json::object& o, const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_number() ? v->to_number<std::size_t>() : 0;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(ha_jobs, ha_jobs_fixture)

BOOST_AUTO_TEST_CASE(a_job_of_a_killed_instance_is_taken_over_and_finished_once) {
    constexpr std::size_t rows = 100;
    std::string body = R"({"certificates":[)";
    for (std::size_t n = 0; n < rows; ++n) {
        if (n) body += ',';
        body += R"({"identifier":"hj-)" + std::to_string(n) + R"(","common_name":"hj )" + std::to_string(n) +
                R"(","key_type":"rsa2048"})";
    }
    body += "]}";
    http_client ca(a.port), cb(b.port);
    auto r = ca.post_json("/api/client-certs/batch", body, token);
    BOOST_REQUIRE_MESSAGE(r.status == 202u, r.status << " " << r.body);
    const std::string id = str(obj(r), "id");

    // Some rows done at A, not all: then A dies.
    std::size_t done_at_a = 0;
    for (auto until = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < until;) {
        auto j = obj(ca.get("/api/jobs/" + id, token));
        done_at_a = num(j, "done");
        BOOST_REQUIRE_MESSAGE(str(j, "state") == "running" || str(j, "state") == "queued", json::serialize(j));
        if (done_at_a >= 10) break;
        std::this_thread::sleep_for(50ms);
    }
    BOOST_REQUIRE(done_at_a >= 10);
    // Meanwhile B shows A's job as running: its registry follows the store within its 2 s
    // refresh (and takes nothing over while A lives).
    json::object seen_at_b;
    for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;) {
        auto g = cb.get("/api/jobs/" + id, token);
        if (g.status == 200u && str(seen_at_b = obj(g), "state") == "running") break;
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(str(seen_at_b, "state") == "running", json::serialize(seen_at_b));
    BOOST_TEST(num(seen_at_b, "resumes") == 0u);
    kill(a);
    const std::size_t created_by_a = sql_count("SELECT count(*) FROM certificates WHERE identifier LIKE 'hj-%'");
    BOOST_TEST_MESSAGE("A killed with " << created_by_a << " of " << rows << " rows created");
    BOOST_REQUIRE(created_by_a < rows);

    // B takes it over: reported interrupted (log and audit), resumed, finished.
    json::object last;
    std::set<std::string> states;
    for (auto until = std::chrono::steady_clock::now() + 75s; std::chrono::steady_clock::now() < until;) {
        last = obj(cb.get("/api/jobs/" + id, token));
        states.insert(str(last, "state"));
        if (str(last, "state") == "succeeded" || str(last, "state") == "failed") break;
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST_INFO(json::serialize(last));
    BOOST_TEST(str(last, "state") == "succeeded");
    BOOST_TEST(num(last, "done") == rows);
    BOOST_TEST(num(last, "failed") == 0u);
    BOOST_TEST(num(last, "resumes") == 1u);
    const std::string log_b = read_text(b.data.string() + ".err");
    BOOST_TEST(log_b.find("job " + id + " was running on an instance that stopped") != std::string::npos);
    BOOST_TEST(sql_count("SELECT count(*) FROM audit_log WHERE line LIKE '%batch_interrupted%' AND "
                         "line LIKE '%" +
                         id + "%'") == 1u);

    // Every identifier once, every serial once.
    BOOST_TEST(sql_count("SELECT count(*) FROM certificates WHERE identifier LIKE 'hj-%'") == rows);
    BOOST_TEST(sql_count("SELECT count(DISTINCT identifier) FROM certificates WHERE identifier LIKE 'hj-%'") == rows);
    BOOST_TEST(sql_count("SELECT count(DISTINCT metadata->>'serial_number') FROM certificates WHERE identifier LIKE "
                         "'hj-%'") == rows);
    // Each row's certificate made once: one `create` audit entry names each kept certificate's
    // serial. The audit entry goes before the effect, so a row A had in flight when it died has an
    // entry whose certificate never landed (B made that row anew): at most the rows a job runs at
    // once (2 here).
    BOOST_TEST(sql_count("SELECT count(*) FROM audit_log a JOIN certificates c ON a.line LIKE "
                         "'%\"serial_number\":\"' || (c.metadata->>'serial_number') || '\"%' "
                         "WHERE a.line LIKE '%\"operation\":\"create\"%' AND c.identifier LIKE 'hj-%'") == rows);
    const auto create_entries = sql_count("SELECT count(*) FROM audit_log WHERE line LIKE "
                                          "'%\"operation\":\"create\"%' AND line LIKE '%\"resource_id\":\"hj-%'");
    BOOST_TEST(create_entries >= rows);
    BOOST_TEST(create_entries <= rows + 2);

    // The audit chain of both instances' entries verifies, at B and offline.
    auto v = obj(cb.get("/api/audit/verify", token));
    BOOST_TEST_INFO(json::serialize(v));
    BOOST_TEST(v.at("ok").as_bool());
    BOOST_TEST(num(v, "entries") > rows);
    auto cli = run(bin + " audit verify -c " + conf.string() + " --data-dir " + b.data.string() + db_flags() + " 2>&1");
    BOOST_TEST_INFO(cli.output);
    BOOST_TEST(cli.exit_code == 0);
    BOOST_TEST(cli.output.find("ok ") == 0u);
}

BOOST_AUTO_TEST_CASE(one_instance_sweeps_and_the_other_finishes_a_killed_sweep) {
    http_client ca(a.port), cb(b.port);

    // Both asked at once: one sweeps (200), the other is told another instance does (409) or finds
    // nothing left; each certificate is renewed once.
    create_due("sw-", 12);              // slow enough (re-keyed) for both requests to meet
    std::this_thread::sleep_for(300ms); // B's index has A's creates
    auto fa = std::async(std::launch::async, [&] {
        http_client c(a.port);
        return c.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + token}});
    });
    auto fb = std::async(std::launch::async, [&] {
        http_client c(b.port);
        return c.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + token}});
    });
    auto ra = fa.get(), rb = fb.get();
    BOOST_TEST_MESSAGE("sweep at A: " << ra.status << " " << ra.body << "\nsweep at B: " << rb.status << " "
                                      << rb.body);
    std::size_t renewed = 0;
    for (auto* r : {&ra, &rb}) {
        BOOST_TEST((r->status == 200u || r->status == 409u));
        if (r->status == 200u) renewed += num(obj(*r), "renewed");
    }
    BOOST_TEST(renewed == 12u);
    for (const auto& [id, n] : renewals_of("sw-")) BOOST_TEST(n == 1u, id << " renewed " << n << " times");
    BOOST_TEST(renewals_of("sw-").size() == 12u);
    // A renewal keeps the lifetime, so these stay due: out of the next sweeps.
    for (int i = 0; i < 12; ++i)
        BOOST_REQUIRE(
            ca.patch_json("/api/client-certs/sw-" + std::to_string(i), R"({"renewal_enabled":false})", token).status ==
            200u);

    // A sweeper killed mid-way: B's next run renews the rest, each once.
    constexpr int slow = 30;
    create_due("kw-", slow);
    std::this_thread::sleep_for(300ms);
    auto killed = std::async(std::launch::async, [&] {
        http_client c(a.port);
        try {
            return c.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + token}}).status;
        } catch (const std::exception&) {
            return 0u;
        }
    });
    std::size_t before_kill = 0;
    for (auto until = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < until;) {
        before_kill = sql_count("SELECT count(*) FROM certificates WHERE identifier LIKE 'kw-%' AND "
                                "json_array_length(metadata->'history') > 0");
        if (before_kill >= 3) break;
        std::this_thread::sleep_for(20ms);
    }
    kill(a);
    (void)killed.get();
    before_kill = sql_count("SELECT count(*) FROM certificates WHERE identifier LIKE 'kw-%' AND "
                            "json_array_length(metadata->'history') > 0");
    BOOST_TEST_MESSAGE("sweeper killed after " << before_kill << " of " << slow << " renewals");
    BOOST_REQUIRE(before_kill >= 3u);
    BOOST_REQUIRE(before_kill < static_cast<std::size_t>(slow));
    // The lease went with A's session: B's next attempt sweeps (a retry while PostgreSQL notices).
    http_reply rb2;
    cb.set_timeout(60s);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;) {
        rb2 = cb.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + token}});
        if (rb2.status != 409u) break;
        std::this_thread::sleep_for(200ms);
    }
    BOOST_TEST_MESSAGE("B's sweep: " << rb2.status << " after "
                                     << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                     << " s");
    BOOST_TEST_INFO(rb2.body);
    BOOST_REQUIRE(rb2.status == 200u);
    // B's run renews every due certificate once: those A did not reach, and (a renewal keeping the
    // lifetime, they are due again) those it did, each on top of A's renewal, none lost or doubled.
    const auto sum = obj(rb2);
    BOOST_TEST(num(sum, "renewed") == static_cast<std::size_t>(slow));
    BOOST_TEST(num(sum, "failed") == 0u);
    std::set<std::string> outcome_ids;
    for (const auto& o : sum.at("outcomes").as_array()) outcome_ids.insert(str(o.as_object(), "identifier"));
    BOOST_TEST(outcome_ids.size() == static_cast<std::size_t>(slow));
    auto after = renewals_of("kw-");
    BOOST_TEST(after.size() == static_cast<std::size_t>(slow));
    std::size_t twice = 0;
    for (const auto& [id, n] : after) {
        BOOST_TEST((n == 1u || n == 2u), id << " renewed " << n << " times");
        twice += n == 2u;
    }
    BOOST_TEST(twice == before_kill, twice << " renewed by both, " << before_kill << " by A before it died");
    for (const auto& [id, n] : renewals_of("sw-")) BOOST_TEST(n == 1u, id << " renewed " << n << " times");
    // And every serial the certificates had is one certificate's.
    BOOST_TEST(sql_count("SELECT count(*) FROM serials") == sql_count("SELECT count(DISTINCT serial) FROM serials"));
}

namespace {

// Local HH:MM:SS of now + `ahead`, and that instant (whole seconds).
std::pair<std::string, std::chrono::system_clock::time_point> local_time_in(std::chrono::seconds ahead) {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return {buf, std::chrono::system_clock::from_time_t(t)};
}

std::size_t occurrences(const std::string& file, const std::string& needle) {
    std::ifstream in(file);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_daily_sweep_runs_on_one_instance_and_a_killed_one_is_finished_by_another) {
    // (the summary a finished sweep logs: "renewal sweep: N due, N renewed, 0 failed")
    const std::string done = " renewed, ", busy = "another instance leads the sweep", already = "already run";
    auto renewal_at = [](const std::string& hhmmss) {
        return std::vector<std::string>{"--renewal.enabled",       "true", "--renewal.time", hhmmss,
                                        "--renewal.retry_seconds", "1"};
    };
    auto wait_until = [](auto cond, std::chrono::seconds limit) {
        for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;) {
            if (cond()) return true;
            std::this_thread::sleep_for(50ms);
        }
        return cond();
    };

    // Day one: both instances start with the sweep a little ahead; the start-up run (no sweep on
    // record) happens once; then certificates fall due and both reach the time.
    stop(a);
    stop(b);
    auto [t1, slot1] = local_time_in(25s);
    start(a, renewal_at(t1), "day1");
    start(b, renewal_at(t1), "day1");
    // (the second to start finds the run done, or on record and not missed)
    BOOST_REQUIRE(wait_until([&] { return occurrences(a.log, done) + occurrences(b.log, done) == 1; }, 20s));
    std::this_thread::sleep_for(1500ms);
    const auto already0 = occurrences(a.log, already) + occurrences(b.log, already);
    BOOST_TEST(already0 <= 1u);
    create_due("day1-", 6);
    BOOST_REQUIRE_MESSAGE(std::chrono::system_clock::now() + 2s < slot1, "the certificates took too long to make");
    BOOST_REQUIRE_MESSAGE(wait_until(
                              [&] {
                                  return occurrences(a.log, done) + occurrences(b.log, done) == 2 &&
                                         occurrences(a.log, already) + occurrences(b.log, already) == already0 + 1;
                              },
                              60s),
                          "A:\n"
                              << read_text(a.log) << "\nB:\n"
                              << read_text(b.log));
    std::this_thread::sleep_for(2s); // a second sweep, were there one, would show now
    BOOST_TEST(occurrences(a.log, done) + occurrences(b.log, done) == 2u);
    BOOST_TEST(occurrences(a.log, "renewal sweep: 6 due, 6 renewed, 0 failed") +
                   occurrences(b.log, "renewal sweep: 6 due, 6 renewed, 0 failed") ==
               1u);
    const auto day1 = renewals_of("day1-");
    BOOST_TEST(day1.size() == 6u);
    for (const auto& [id, n] : day1) BOOST_TEST(n == 1u, id << " renewed " << n << " times");
    {
        http_client c(a.port);
        for (int i = 0; i < 6; ++i)
            BOOST_REQUIRE(
                c.patch_json("/api/client-certs/day1-" + std::to_string(i), R"({"renewal_enabled":false})", token)
                    .status == 200u);
    }

    // Day two: the sweeper dies mid-way; the other, asking again every second, finishes the run.
    stop(a);
    stop(b);
    auto [t2, slot2] = local_time_in(25s);
    start(a, renewal_at(t2), "day2");
    start(b, renewal_at(t2), "day2");
    constexpr int slow = 30;
    create_due("day2-", slow);
    BOOST_REQUIRE_MESSAGE(std::chrono::system_clock::now() + 2s < slot2, "the certificates took too long to make");
    auto renewed_count = [&] {
        return sql_count("SELECT count(*) FROM certificates WHERE identifier LIKE 'day2-%' AND "
                         "json_array_length(metadata->'history') > 0");
    };
    BOOST_REQUIRE(wait_until([&] { return renewed_count() >= 3; }, 60s));
    // The sweeper is the one that did not log that another leads.
    BOOST_REQUIRE(wait_until([&] { return occurrences(a.log, busy) + occurrences(b.log, busy) > 0; }, 10s));
    const bool a_sweeps = occurrences(b.log, busy) > 0;
    BOOST_REQUIRE(a_sweeps != (occurrences(a.log, busy) > 0));
    ha_instance& sweeper = a_sweeps ? a : b;
    ha_instance& other = a_sweeps ? b : a;
    kill(sweeper);
    const auto before_kill = renewed_count();
    BOOST_TEST_MESSAGE("sweeper " << (a_sweeps ? "A" : "B") << " killed after " << before_kill << " of " << slow);
    BOOST_REQUIRE(before_kill < static_cast<std::size_t>(slow));
    BOOST_TEST(occurrences(sweeper.log, done) == 0u);
    const std::string finished =
        "renewal sweep: " + std::to_string(slow) + " due, " + std::to_string(slow) + " renewed, 0 failed";
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return occurrences(other.log, finished) == 1; }, 90s), read_text(other.log));
    auto after = renewals_of("day2-");
    BOOST_TEST(after.size() == static_cast<std::size_t>(slow));
    std::size_t twice = 0;
    for (const auto& [id, n] : after) {
        BOOST_TEST((n == 1u || n == 2u), id << " renewed " << n << " times");
        twice += n == 2u;
    }
    BOOST_TEST(twice == before_kill, twice << " renewed by both, " << before_kill << " by the sweeper before it died");
    for (const auto& [id, n] : renewals_of("day1-")) BOOST_TEST(n == 1u, id << " renewed " << n << " times");
    BOOST_TEST(sql_count("SELECT count(*) FROM serials") == sql_count("SELECT count(DISTINCT serial) FROM serials"));
}

BOOST_AUTO_TEST_SUITE_END()
