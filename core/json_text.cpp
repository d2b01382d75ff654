#include "core/json_text.hpp"

#include <charconv>
#include <chrono>

namespace certmate {

namespace {

constexpr bool needs_escape(unsigned char c) noexcept { return c < 0x20 || c == '"' || c == '\\'; }

// Two decimal digits of 0 <= v < 100 at p.
void put2(char* p, unsigned v) noexcept {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    const char* p = s.data();
    const char* const end = p + s.size();
    while (p != end) {
        const char* run = p;
        while (p != end && !needs_escape(static_cast<unsigned char>(*p))) ++p;
        out.append(run, static_cast<std::size_t>(p - run));
        if (p == end) break;
        const auto c = static_cast<unsigned char>(*p++);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        default: {
            const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out.append(u, sizeof u);
        }
        }
    }
    out.push_back('"');
}

void append_json_time(std::string& out, time_point t) {
    using namespace std::chrono;
    const auto s = floor<seconds>(t);
    const auto d = floor<days>(s);
    const year_month_day ymd{d};
    const int y = static_cast<int>(ymd.year());
    if (y < 1000 || y > 9999) { // strftime's %Y outside four digits: keep format_time's text
        append_json_string(out, format_time(t));
        return;
    }
    const hh_mm_ss hms{s - d};
    char buf[] = "\"YYYY-MM-DDTHH:MM:SSZ\"";
    put2(buf + 1, static_cast<unsigned>(y / 100));
    put2(buf + 3, static_cast<unsigned>(y % 100));
    put2(buf + 6, static_cast<unsigned>(ymd.month()));
    put2(buf + 9, static_cast<unsigned>(ymd.day()));
    put2(buf + 12, static_cast<unsigned>(hms.hours().count()));
    put2(buf + 15, static_cast<unsigned>(hms.minutes().count()));
    put2(buf + 18, static_cast<unsigned>(hms.seconds().count()));
    out.append(buf, sizeof buf - 1);
}

void append_json_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_json_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

} // namespace certmate
