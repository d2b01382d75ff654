#include "core/renewal_schedule.hpp"

#include <ctime>
#include <algorithm>
#include <cstdio>
#include <vector>

namespace certmate {

namespace {

using std::chrono::system_clock;

// The instants of local date (y, m, d) at hh:mm: up to two (fall back), or the normalised
// instant after a gap (spring forward).
std::vector<time_point> local_instants(int y, int mon, int d, daily_time at) {
    // mktime(3) of the local date and time with the DST flag `dst` (-1: let mktime decide).
    auto local = [&](int dst) {
        std::tm tm{};
        tm.tm_year = y;
        tm.tm_mon = mon;
        tm.tm_mday = d;
        tm.tm_hour = at.hour;
        tm.tm_min = at.minute;
        tm.tm_sec = at.second;
        tm.tm_isdst = dst;
        return std::mktime(&tm);
    };
    std::vector<time_point> out;
    for (int dst : {1, 0}) {
        std::time_t t = local(dst);
        if (t == -1) continue;
        std::tm back{};
        localtime_r(&t, &back);
        if (back.tm_hour == at.hour && back.tm_min == at.minute && back.tm_sec == at.second && back.tm_mday == d &&
            back.tm_isdst == dst)
            out.push_back(system_clock::from_time_t(t));
    }
    if (out.empty()) {
        // hh:mm falls into a gap: mktime with isdst = -1 moves it past the gap.
        std::time_t t = local(-1);
        if (t != -1) out.push_back(system_clock::from_time_t(t));
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::tm local_date(time_point t, int day_offset) {
    std::time_t tt = system_clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    tm.tm_mday += day_offset;
    tm.tm_hour = 12; // noon: normalising never crosses a date because of DST
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    std::time_t n = std::mktime(&tm);
    std::tm out{};
    localtime_r(&n, &out);
    return out;
}

} // namespace

std::optional<daily_time> parse_daily_time(std::string_view s) {
    // HH:MM or HH:MM:SS, each field one or two digits.
    int f[3] = {0, 0, 0};
    std::size_t n = 0, digits = 0;
    for (char ch : s) {
        if (ch == ':') {
            if (digits == 0 || ++n == 3) return std::nullopt;
            digits = 0;
        } else if (ch >= '0' && ch <= '9' && digits < 2) {
            f[n] = f[n] * 10 + (ch - '0');
            ++digits;
        } else {
            return std::nullopt;
        }
    }
    if (digits == 0 || n == 0 || f[0] > 23 || f[1] > 59 || f[2] > 59) return std::nullopt;
    return daily_time{f[0], f[1], f[2]};
}

time_point next_daily_run(time_point after, daily_time at) {
    for (int offset = 0; offset <= 2; ++offset) {
        auto day = local_date(after, offset);
        // The first occurrence only: a repeated hh:mm (fall back) runs once.
        auto instants = local_instants(day.tm_year, day.tm_mon, day.tm_mday, at);
        if (!instants.empty() && instants.front() > after) return instants.front();
    }
    return after + std::chrono::hours(24);
}

time_point previous_daily_run(time_point now, daily_time at) {
    for (int offset = 0; offset >= -2; --offset) {
        auto day = local_date(now, offset);
        auto instants = local_instants(day.tm_year, day.tm_mon, day.tm_mday, at);
        if (!instants.empty() && instants.front() <= now) return instants.front();
    }
    return now - std::chrono::hours(24);
}

bool run_was_missed(std::optional<time_point> last_run, time_point now, daily_time at) {
    if (!last_run) return true;
    return *last_run < previous_daily_run(now, at);
}

} // namespace certmate
