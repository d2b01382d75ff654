// The daily sweep with a failing database (issue 15 review): at the sweep's time PostgreSQL
// refuses new connections, so the instance cannot ask who leads the sweep; it must ask again
// every renewal.retry_seconds and run the day's sweep once the database answers, once.
#define BOOST_TEST_MODULE test_sweep_attack
#include <boost/test/unit_test.hpp>

#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/pg_cluster.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <ctime>
#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;

namespace {

std::string local_hh_mm_ss(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

std::time_t utc_seconds(const std::string& iso) { // "YYYY-MM-DDTHH:MM:SSZ"
    std::tm tm{};
    BOOST_REQUIRE_MESSAGE(strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), "not a time: " << iso);
    return timegm(&tm);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_sweep_the_store_could_not_lead_runs_once_it_answers) {
    ::setenv("CERTMATE_TEST_BACKEND", "postgresql", 1);
    // Not at a second's edge: the slot is whole seconds.
    const auto slot = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 8s;
    if (local_hh_mm_ss(slot) < local_hh_mm_ss(std::chrono::system_clock::now())) {
        BOOST_TEST_MESSAGE("skipped: the slot would cross local midnight");
        return;
    }
    test_server srv([&](app::config& c) {
        c.renewal_sweep_enabled = true;
        c.renewal_time = local_hh_mm_ss(slot);
        c.renewal_retry = 1s;
    });
    auto http = srv.client();
    const auto db = std::regex_replace(srv.config().postgresql, std::regex(".*dbname=([A-Za-z0-9_]+).*"), "$1");
    BOOST_REQUIRE(!db.empty());
    // The start-up run (no sweep recorded yet), before the slot.
    BOOST_REQUIRE(eventually([&] { return http.get("/api/renewals/last", srv.tokens.viewer).status == 200u; }, 5s));
    const auto first = obj(http.get("/api/renewals/last", srv.tokens.viewer));
    BOOST_REQUIRE(utc_seconds(str(first, "started_at")) < std::chrono::system_clock::to_time_t(slot));

    // New connections refused from before the slot to 3 s after it (the pool's stay open).
    shared_pg_cluster().psql("postgres", "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false");
    std::this_thread::sleep_until(slot + 3s);
    auto during = obj(http.get("/api/renewals/last", srv.tokens.viewer));
    BOOST_TEST(str(during, "started_at") == str(first, "started_at")); // not run: it could not lead
    shared_pg_cluster().psql("postgres", "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true");

    // Asked again within renewal_retry (1 s): the day's sweep runs, stamped at or after the slot.
    std::string ran;
    BOOST_REQUIRE(eventually(
        [&] {
            ran = str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at");
            return ran != str(first, "started_at");
        },
        5s));
    BOOST_TEST(utc_seconds(ran) >= std::chrono::system_clock::to_time_t(slot));
    // Once: no second run in the next seconds.
    std::this_thread::sleep_for(2500ms);
    BOOST_TEST(str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at") == ran);
    ::unsetenv("CERTMATE_TEST_BACKEND");
}

// The database fails the sweep's own record (a full disk, a failover at the wrong moment): the
// sweep ran but no instance can tell it did. It is run again every renewal.retry_seconds until
// its record is written, then twice as long each time (a second run renews only what is still
// due), not left to the next day.
BOOST_AUTO_TEST_CASE(a_sweep_whose_record_cannot_be_written_is_run_again) {
    ::setenv("CERTMATE_TEST_BACKEND", "postgresql", 1);
    const auto slot = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 8s;
    if (local_hh_mm_ss(slot) < local_hh_mm_ss(std::chrono::system_clock::now())) {
        BOOST_TEST_MESSAGE("skipped: the slot would cross local midnight");
        return;
    }
    test_server srv([&](app::config& c) {
        c.renewal_sweep_enabled = true;
        c.renewal_time = local_hh_mm_ss(slot);
        c.renewal_retry = 1s;
    });
    auto http = srv.client();
    const auto db = std::regex_replace(srv.config().postgresql, std::regex(".*dbname=([A-Za-z0-9_]+).*"), "$1");
    BOOST_REQUIRE(eventually([&] { return http.get("/api/renewals/last", srv.tokens.viewer).status == 200u; }, 5s));
    const auto first = str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at");

    // Writes of the sweep record fail from before the slot to 3 s after it.
    shared_pg_cluster().psql(db, "CREATE FUNCTION refuse_sweep() RETURNS trigger LANGUAGE plpgsql AS "
                                 "$$ BEGIN RAISE EXCEPTION 'test: the sweep record cannot be written'; END $$; "
                                 "CREATE TRIGGER refuse_sweep BEFORE INSERT OR UPDATE ON sweep "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_sweep()");
    std::this_thread::sleep_until(slot + 3s);
    BOOST_TEST(str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at") == first);
    shared_pg_cluster().psql(db, "DROP TRIGGER refuse_sweep ON sweep");

    std::string ran;
    const bool recorded = eventually(
        [&] {
            ran = str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at");
            return ran != first;
        },
        10s); // runs at the slot and 1, 3, 7 s after it (doubling): the trigger is gone at 3 s
    BOOST_TEST(recorded, "the day's sweep was not run again once its record could be written");
    BOOST_TEST(utc_seconds(ran) >= std::chrono::system_clock::to_time_t(slot));
    // Then no more runs.
    std::this_thread::sleep_for(2500ms);
    BOOST_TEST(str(obj(http.get("/api/renewals/last", srv.tokens.viewer)), "started_at") == ran);
    ::unsetenv("CERTMATE_TEST_BACKEND");
}
