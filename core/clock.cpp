#include "core/clock.hpp"

#include <openssl/rand.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace certmate {

clock_fn system_clock_fn() {
    return [] { return std::chrono::system_clock::now(); };
}

rng_fn openssl_rng() {
    return [](std::span<unsigned char> out) {
        if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) throw std::runtime_error("RAND_bytes failed");
    };
}

std::string format_time(time_point t) {
    // The seconds since the epoch as they are: no round trip through nanoseconds, which overflows
    // near time_point::min() (UBSan, test_cert_json).
    const std::time_t tt = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<time_point> parse_time(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS[.fff]Z or a +00:00 offset; also a bare date YYYY-MM-DD.
    std::tm tm{};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    std::string str(s);
    int n = 0;
    if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6) {
        std::string_view rest = s.substr(static_cast<size_t>(n));
        if (!rest.empty() && rest[0] == '.') {
            size_t i = 1;
            while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
            rest.remove_prefix(i);
        }
        if (!(rest == "Z" || rest == "z" || rest == "+00:00" || rest.empty())) return std::nullopt;
    } else if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && static_cast<size_t>(n) == s.size()) {
        h = mi = sec = 0;
    } else {
        return std::nullopt;
    }
    // Out-of-range fields (a negative hour, February 30) are refused, not normalised by timegm.
    using namespace std::chrono;
    if (mo < 1 || d < 1 ||
        !year_month_day{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}}.ok() || h < 0 ||
        h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return std::nullopt;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    // time_point counts nanoseconds in 64 bits (years 1678 to 2262): a time outside that range is
    // refused, not overflowed (fuzz/regressions/audit/).
    const std::time_t t = timegm(&tm);
    if (t < duration_cast<seconds>(time_point::min().time_since_epoch()).count() + 1 ||
        t > duration_cast<seconds>(time_point::max().time_since_epoch()).count() - 1)
        return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

} // namespace certmate
