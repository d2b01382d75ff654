// When the daily renewal sweep runs: local HH:MM (`renewal.time`, README.md), computed with the process's
// time zone (TZ), safe across daylight-saving changes. Pure functions of their arguments and TZ.
#pragma once

#include "core/clock.hpp"

#include <optional>
#include <string_view>

namespace certmate {

struct daily_time {
    int hour = 3;
    int minute = 0;
    int second = 0;
};
std::optional<daily_time> parse_daily_time(std::string_view hh_mm);

// The first local `at` strictly after `after`. On a day where `at` does not exist (clocks jump
// forward over it) the sweep runs at the first instant after the gap; where it exists twice
// (clocks fall back) it runs at the first of the two.
time_point next_daily_run(time_point after, daily_time at);
// The latest scheduled instant at or before `now`.
time_point previous_daily_run(time_point now, daily_time at);
// True when a scheduled run fell between `last_run` and `now` (none recorded: true).
bool run_was_missed(std::optional<time_point> last_run, time_point now, daily_time at);

} // namespace certmate
