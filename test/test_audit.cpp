// The audit log: hash chain, fail-closed appends, reopening, verification and queries.
#define BOOST_TEST_MODULE audit
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/atomic_file.hpp"
#include "support/tools.hpp"

#include <boost/json/parse.hpp>
#include <openssl/evp.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

using namespace certmate;
using namespace certmate::storage;
using namespace std::chrono_literals;

namespace {

using certmate::test::read_text;
using certmate::test::temp_dir;
using certmate::test::write_text;

// Where the audit log of a store rooted at `d` lives.
std::filesystem::path log_file(const temp_dir& d) { return d / "logs" / "audit" / "certificate_audit.log"; }

const time_point t0 = std::chrono::sys_days{std::chrono::year{2025} / 3 / 1};

// A clock that advances one minute per call, so entries have distinct, known timestamps.
clock_fn stepping_clock() {
    auto n = std::make_shared<int>(0);
    return [n] { return t0 + (*n)++ * 1min; };
}

audit_entry entry(int i) {
    audit_entry e;
    e.operation = i % 3 == 0 ? "revoke" : "create";
    e.resource_id = "cert-" + std::to_string(i % 5);
    e.user = "admin";
    e.ip_address = "192.0.2." + std::to_string(i % 200);
    e.details["n"] = i;
    e.details["note"] = "entry \"" + std::to_string(i) + "\" é";
    if (i % 7 == 0) {
        e.status = "failure";
        e.error = "boom";
    }
    return e;
}

std::vector<std::string> read_lines(const std::filesystem::path& p) {
    std::istringstream in(read_text(p));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

void write_lines(const std::filesystem::path& p, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + '\n';
    write_text(p, text);
}

std::string sha256_hex(std::string_view s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    BOOST_REQUIRE(EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) == 1);
    std::ostringstream os;
    for (unsigned i = 0; i < len; ++i) os << "0123456789abcdef"[md[i] >> 4] << "0123456789abcdef"[md[i] & 15];
    return os.str();
}

std::unique_ptr<audit_log> open_log(const temp_dir& d) {
    auto log = audit_log::open(log_file(d), stepping_clock());
    BOOST_REQUIRE(log.has_value());
    return std::move(*log);
}

} // namespace

BOOST_AUTO_TEST_CASE(appends_then_verifies) {
    temp_dir d;
    auto log = open_log(d);
    BOOST_TEST(log->next_seq() == 1u);
    for (int i = 0; i < 50; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    BOOST_TEST(log->next_seq() == 51u);
    BOOST_TEST(log->healthy());
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 50u);
    BOOST_TEST(read_lines(log_file(d)).size() == 50u);

    struct stat st{};
    BOOST_REQUIRE(::stat(log_file(d).c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0600u);
}

BOOST_AUTO_TEST_CASE(line_format_and_chain) {
    temp_dir d;
    auto log = open_log(d);
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    auto lines = read_lines(log_file(d));
    BOOST_REQUIRE(lines.size() == 3u);
    std::string prev(64, '0');
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto o = boost::json::parse(lines[i]).as_object();
        std::vector<std::string> keys;
        for (const auto& kv : o) keys.emplace_back(kv.key());
        const std::vector<std::string> want{"seq", "timestamp", "operation", "resource_type", "resource_id", "status",
                                            "user", "ip_address", "details", "error", "prev_hash", "hash"};
        BOOST_TEST(keys == want, boost::test_tools::per_element());
        BOOST_TEST(o.at("seq").to_number<std::uint64_t>() == i + 1);
        BOOST_TEST(o.at("timestamp").as_string() == format_time(t0 + static_cast<int>(i) * 1min));
        BOOST_TEST(o.at("prev_hash").as_string() == prev);
        // The hash covers the line without its `"hash"` member, byte for byte.
        const std::string hash(o.at("hash").as_string());
        const std::string suffix = ",\"hash\":\"" + hash + "\"}";
        BOOST_REQUIRE(lines[i].ends_with(suffix));
        BOOST_TEST(sha256_hex(lines[i].substr(0, lines[i].size() - suffix.size()) + "}") == hash);
        prev = hash;
    }
    auto first = boost::json::parse(lines[0]).as_object(); // entry(0): i % 7 == 0, a failure
    BOOST_TEST(first.at("status").as_string() == "failure");
    BOOST_TEST(first.at("error").as_string() == "boom");
    BOOST_TEST(boost::json::parse(lines[1]).as_object().at("error").is_null());
    BOOST_TEST(first.at("details").as_object().at("n").to_number<int>() == 0);
}

BOOST_AUTO_TEST_CASE(one_edited_byte_is_found) {
    temp_dir d;
    {
        auto log = open_log(d);
        for (int i = 0; i < 20; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    }
    auto lines = read_lines(log_file(d));
    auto pos = lines[9].find("\"user\":\"admin\"");
    BOOST_REQUIRE(pos != std::string::npos);
    const char orig = lines[9][pos + 9];
    lines[9][pos + 9] = 'X'; // admin -> aXmin
    write_lines(log_file(d), lines);
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 10u);
    BOOST_TEST(v.reason == "hash mismatch");

    // Breaking the JSON of a line is reported on that line too.
    lines = read_lines(log_file(d));
    lines[9][pos + 9] = orig;
    lines[4][0] = '[';
    write_lines(log_file(d), lines);
    v = verify_audit_file(log_file(d));
    BOOST_TEST(v.bad_line == 5u);
    BOOST_TEST(v.reason == "not JSON");
}

BOOST_AUTO_TEST_CASE(deleted_and_reordered_lines_are_found) {
    temp_dir d;
    {
        auto log = open_log(d);
        for (int i = 0; i < 20; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    }
    const auto orig = read_lines(log_file(d));

    auto lines = orig;
    lines.erase(lines.begin() + 6); // line 7 gone
    write_lines(log_file(d), lines);
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 7u);
    BOOST_TEST(v.entries == 6u);

    lines = orig;
    lines.erase(lines.begin()); // the first line gone
    write_lines(log_file(d), lines);
    v = verify_audit_file(log_file(d));
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 1u);

    lines = orig;
    std::swap(lines[3], lines[4]);
    write_lines(log_file(d), lines);
    v = verify_audit_file(log_file(d));
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 4u);
    BOOST_TEST(v.reason == "seq out of order");

    // Truncation of the tail cannot be seen from the file alone, but the rest still verifies.
    lines = orig;
    lines.resize(15);
    write_lines(log_file(d), lines);
    BOOST_TEST(verify_audit_file(log_file(d)).entries == 15u);

    BOOST_TEST(!verify_audit_file(d / "nope.log").ok);
}

BOOST_AUTO_TEST_CASE(a_failed_write_closes_the_log) {
    temp_dir d;
    auto log = open_log(d);
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    log->simulate_failure(true);
    auto r = log->append(entry(3));
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == errc::audit_unavailable));
    BOOST_TEST(!log->healthy());
    BOOST_TEST(!log->last_error().empty());
    // Fail closed: the disk coming back does not silently resume the log.
    log->simulate_failure(false);
    BOOST_TEST((log->append(entry(4)).error().code == errc::audit_unavailable));
    BOOST_TEST(!log->healthy());
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 3u);
    // An explicit reopen does.
    BOOST_REQUIRE(log->reopen().has_value());
    BOOST_TEST(log->healthy());
    BOOST_TEST(log->next_seq() == 4u);
    BOOST_REQUIRE(log->append(entry(5)).has_value());
    v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 4u);
}

BOOST_AUTO_TEST_CASE(reopen_continues_the_chain) {
    temp_dir d;
    for (int round = 0; round < 3; ++round) {
        auto log = open_log(d);
        BOOST_TEST(log->next_seq() == static_cast<std::uint64_t>(round * 5 + 1));
        for (int i = 0; i < 5; ++i) BOOST_REQUIRE(log->append(entry(round * 5 + i)).has_value());
    }
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 15u);
}

BOOST_AUTO_TEST_CASE(a_torn_last_line_does_not_stop_the_log) {
    temp_dir d;
    {
        auto log = open_log(d);
        for (int i = 0; i < 4; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    }
    {
        std::ofstream out(log_file(d), std::ios::app);
        out << R"({"seq":5,"timestamp":"2025-03-01T00:0)"; // crash mid-write, no newline
    }
    auto log = open_log(d);
    BOOST_TEST(log->healthy());
    BOOST_TEST(log->next_seq() == 5u); // continues after the last intact entry
    BOOST_REQUIRE(log->append(entry(9)).has_value());
    auto lines = read_lines(log_file(d));
    BOOST_REQUIRE(lines.size() == 6u); // the torn line stays, on its own line
    BOOST_TEST(boost::json::parse(lines[5]).as_object().at("seq").to_number<int>() == 5);
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(!v.ok); // the damage stays visible
    BOOST_TEST(v.bad_line == 5u);
    BOOST_TEST(v.reason == "not JSON");
}

BOOST_AUTO_TEST_CASE(query_newest_first_with_filters) {
    temp_dir d;
    auto log = open_log(d);
    for (int i = 0; i < 30; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());

    auto all = log->query({});
    BOOST_REQUIRE(all.has_value());
    BOOST_REQUIRE(all->size() == 30u);
    BOOST_TEST(all->front().at("seq").to_number<int>() == 30);
    BOOST_TEST(all->back().at("seq").to_number<int>() == 1);

    audit_query q;
    q.resource_id = "cert-2";
    q.limit = 3;
    auto some = log->query(q);
    BOOST_REQUIRE(some->size() == 3u);
    std::vector<int> seqs;
    for (const auto& o : *some) {
        BOOST_TEST(o.at("resource_id").as_string() == "cert-2");
        seqs.push_back(o.at("seq").to_number<int>());
    }
    BOOST_TEST(seqs == (std::vector<int>{28, 23, 18}), boost::test_tools::per_element());

    audit_query ops;
    ops.operation = "revoke";
    ops.since = t0 + 10min; // entries 10.. (seq 11..)
    ops.until = t0 + 20min; // ..20 (seq 21)
    auto rv = log->query(ops);
    seqs.clear();
    for (const auto& o : *rv) seqs.push_back(o.at("seq").to_number<int>());
    BOOST_TEST(seqs == (std::vector<int>{19, 16, 13}), boost::test_tools::per_element()); // i = 18, 15, 12
}

BOOST_AUTO_TEST_CASE(concurrent_appends_keep_the_chain) {
    temp_dir d;
    auto log = open_log(d);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) (void)log->append(entry(t * 100 + i));
        });
    for (auto& th : threads) th.join();
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 100u);
}

// The server and a CLI command append to the same file: each continues the chain the other wrote.
BOOST_AUTO_TEST_CASE(two_writers_on_one_file_keep_one_chain) {
    temp_dir d;
    auto server = open_log(d);
    auto cli = open_log(d);
    for (int i = 0; i < 20; ++i) {
        BOOST_REQUIRE(server->append(entry(i)).has_value());
        if (i % 3 == 0) BOOST_REQUIRE(cli->append(entry(100 + i)).has_value());
    }
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
    BOOST_TEST(v.entries == 27u);
    BOOST_TEST(server->next_seq() == 28u);

    // Two separate processes appending concurrently.
    pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
        auto mine = audit_log::open(log_file(d), stepping_clock());
        int rc = 0;
        for (int i = 0; i < 200 && mine; ++i) rc |= (*mine)->append(entry(i)).has_value() ? 0 : 1;
        ::_exit(mine ? rc : 2);
    }
    for (int i = 0; i < 200; ++i) BOOST_REQUIRE(server->append(entry(i)).has_value());
    int status = 0;
    BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
    BOOST_TEST(v.entries == 427u);
}
