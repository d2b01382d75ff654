// The inputs libFuzzer found crashing (docs/fuzzing.md), in fuzz/regressions/<target>/, fed through
// the same functions as the fuzz target fuzz/fuzz_<target>.cpp, with the outcome each should have.
// Under the ASan/UBSan build (scripts/test.sh) the sanitizers check them as the fuzzer did.
#define BOOST_TEST_MODULE test_fuzz_regressions
#include <boost/test/unit_test.hpp>

#include "app/config.hpp"
#include "core/clock.hpp"
#include "storage/audit_log.hpp"
#include "support/tools.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace fs = std::filesystem;

namespace {

// The files of fuzz/regressions/<target>/, sorted.
std::vector<fs::path> inputs(const std::string& target) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(fs::path(CERTMATE_SOURCE_DIR) / "fuzz" / "regressions" / target))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    BOOST_TEST_REQUIRE(!out.empty());
    return out;
}

} // namespace

// Timestamps past 2262 overflowed time_point's nanoseconds in parse_time() (UBSan: signed
// overflow) and read as a time centuries away; now they are refused.
BOOST_AUTO_TEST_CASE(audit_lines) {
    for (const auto& in : inputs("audit")) {
        BOOST_TEST_MESSAGE("audit: " << in.filename());
        const std::string text = read_text(in);
        (void)storage::verify_audit_text(text);
        // Each timestamp either parses to the instant it names or is refused.
        const std::regex ts(R"re("timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z")re");
        for (std::sregex_iterator it(text.begin(), text.end(), ts), end; it != end; ++it) {
            const std::string when = (*it)[1];
            if (auto t = parse_time(when + "Z")) BOOST_TEST(format_time(*t).substr(0, 19) == when);
        }
        temp_dir dir;
        fs::copy_file(in, dir.path() / "audit.log");
        const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 30};
        auto log = storage::audit_log::open(dir.path() / "audit.log", [t0] { return t0; });
        BOOST_TEST_REQUIRE(bool(log));
        audit_query q;
        q.since = t0 - std::chrono::hours(24 * 365);
        q.until = t0 + std::chrono::hours(24 * 365);
        auto found = (*log)->query(q);
        BOOST_TEST_REQUIRE(bool(found));
        for (const auto& o : *found) {
            auto t = parse_time(o.at("timestamp").as_string());
            BOOST_TEST_REQUIRE(bool(t));
            BOOST_TEST((*t >= *q.since && *t <= *q.until));
        }
    }
}

// A malformed line holding "%invalid_line%" made load_config spin forever inside Boost's error
// message formatting; now it is an error naming the line, at once.
BOOST_AUTO_TEST_CASE(config_files) {
    for (const auto& in : inputs("config")) {
        BOOST_TEST_MESSAGE("config: " << in.filename());
        auto done = std::make_shared<std::promise<std::string>>();
        auto result = done->get_future();
        std::thread([in, done] {
            try {
                (void)app::load_config(in, {});
                done->set_value("loaded");
            } catch (const error_exception& e) {
                done->set_value(e.what());
            } catch (const std::exception& e) {
                done->set_value(std::string("unexpected exception: ") + e.what());
            }
        }).detach(); // a hang cannot be joined: the test fails below and the process ends
        BOOST_TEST_REQUIRE((result.wait_for(std::chrono::seconds(10)) == std::future_status::ready),
                           "load_config did not return within 10 s");
        const std::string what = result.get();
        BOOST_TEST_MESSAGE("  -> " << what.substr(0, 200));
        BOOST_TEST(what.find("unexpected exception") == std::string::npos);
    }
}
