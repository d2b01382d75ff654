// The daily sweep time across daylight-saving changes, with TZ set.
#define BOOST_TEST_MODULE schedule
#include <boost/test/unit_test.hpp>

#include "core/renewal_schedule.hpp"

#include <cstdlib>
#include <ctime>

using namespace certmate;

namespace {

struct new_york {
    new_york() {
        setenv("TZ", "America/New_York", 1);
        tzset();
    }
    ~new_york() {
        unsetenv("TZ");
        tzset();
    }
};

time_point utc(const char* s) { return *parse_time(s); }

} // namespace

BOOST_FIXTURE_TEST_SUITE(dst, new_york)

BOOST_AUTO_TEST_CASE(plain_day) {
    // 2026-06-10 12:00 UTC = 08:00 EDT; next 03:00 EDT is 2026-06-11 07:00 UTC.
    BOOST_TEST(format_time(next_daily_run(utc("2026-06-10T12:00:00Z"), {3, 0})) == "2026-06-11T07:00:00Z");
    // Just before today's run.
    BOOST_TEST(format_time(next_daily_run(utc("2026-06-10T06:59:59Z"), {3, 0})) == "2026-06-10T07:00:00Z");
}

BOOST_AUTO_TEST_CASE(spring_forward) {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT. 03:00 that day is 07:00 UTC (23 h after the day before).
    auto first = next_daily_run(utc("2026-03-07T09:00:00Z"), {3, 0});
    BOOST_TEST(format_time(first) == "2026-03-08T07:00:00Z");
    BOOST_TEST(format_time(next_daily_run(first, {3, 0})) == "2026-03-09T07:00:00Z");
    // 02:30 does not exist that day: the run happens right after the gap, at 03:30 EDT.
    BOOST_TEST(format_time(next_daily_run(utc("2026-03-07T09:00:00Z"), {2, 30})) == "2026-03-08T07:30:00Z");
}

BOOST_AUTO_TEST_CASE(fall_back) {
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST. 03:00 EST is 08:00 UTC (25 h after the day before).
    auto first = next_daily_run(utc("2026-10-31T12:00:00Z"), {3, 0});
    BOOST_TEST(format_time(first) == "2026-11-01T08:00:00Z");
    // 01:30 happens twice; the sweep runs once, at the first.
    auto once = next_daily_run(utc("2026-10-31T12:00:00Z"), {1, 30});
    BOOST_TEST(format_time(once) == "2026-11-01T05:30:00Z");
    BOOST_TEST(format_time(next_daily_run(once, {1, 30})) == "2026-11-02T06:30:00Z");
}

BOOST_AUTO_TEST_CASE(missed_run_is_caught_up) {
    const daily_time at{3, 0};
    // Last ran two days ago: today's 03:00 was missed.
    BOOST_TEST(run_was_missed(utc("2026-06-08T07:00:05Z"), utc("2026-06-10T12:00:00Z"), at));
    // Ran today at 03:00: nothing missed.
    BOOST_TEST(!run_was_missed(utc("2026-06-10T07:00:05Z"), utc("2026-06-10T12:00:00Z"), at));
    // Ran yesterday, it is 02:00 today: the next run is still ahead.
    BOOST_TEST(!run_was_missed(utc("2026-06-09T07:00:05Z"), utc("2026-06-10T06:00:00Z"), at));
    // Never ran.
    BOOST_TEST(run_was_missed(std::nullopt, utc("2026-06-10T06:00:00Z"), at));
    BOOST_TEST(!parse_daily_time("24:00"));
    BOOST_TEST(parse_daily_time("03:00")->hour == 3);
}

BOOST_AUTO_TEST_CASE(daily_time_takes_seconds_and_refuses_junk) {
    const auto t = parse_daily_time("3:07:45");
    BOOST_REQUIRE(t);
    BOOST_TEST(t->hour == 3);
    BOOST_TEST(t->minute == 7);
    BOOST_TEST(t->second == 45);
    BOOST_TEST(parse_daily_time("23:59")->second == 0);
    for (const char* bad : {"", "3", "03:", ":30", "03:00:", "03:00:60", "03:60", "03:00:00:00", "003:00", "3h:00",
                            "03:00 ", "-1:00", "03:0x"})
        BOOST_TEST(!parse_daily_time(bad), "'" << bad << "' accepted");
    // The next run at HH:MM:SS (the zone of this suite).
    BOOST_TEST(format_time(next_daily_run(utc("2026-06-10T12:00:00Z"), *parse_daily_time("03:00:30"))) ==
               format_time(next_daily_run(utc("2026-06-10T12:00:00Z"), {3, 0}) + std::chrono::seconds(30)));
}

BOOST_AUTO_TEST_SUITE_END()
