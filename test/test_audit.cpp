// The audit log: hash chain, fail-closed appends, reopening, verification and queries.
#define BOOST_TEST_MODULE audit
#include <boost/test/unit_test.hpp>

#include "core/keys.hpp"
#include "storage/audit_log.hpp"
#include "storage/atomic_file.hpp"
#include "support/tools.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
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

std::string sha256_of(std::string_view s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    BOOST_REQUIRE(EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) == 1);
    std::ostringstream os;
    for (unsigned i = 0; i < len; ++i) os << "0123456789abcdef"[md[i] >> 4] << "0123456789abcdef"[md[i] & 15];
    return os.str();
}

// A fresh Ed25519 signing key.
ossl::pkey signing_key() {
    auto k = generate_key(key_type::ed25519);
    BOOST_REQUIRE(k.has_value());
    return std::move(*k);
}

ossl::pkey public_half(EVP_PKEY* key) {
    auto pub = load_public_key(public_key_to_pem(key).value());
    BOOST_REQUIRE(pub.has_value());
    return std::move(*pub);
}

// Recomputes every line's prev_hash and hash (and a checkpoint's head_hash), as someone who can
// write the file would after editing it: the chain alone then verifies again.
void rechain(std::vector<std::string>& lines) {
    std::string prev(64, '0');
    for (auto& line : lines) {
        auto o = boost::json::parse(line).as_object();
        o.erase("hash");
        o["prev_hash"] = prev;
        if (o.at("operation").as_string() == "checkpoint") o["details"].as_object()["head_hash"] = prev;
        const std::string hash = sha256_of(boost::json::serialize(o));
        o["hash"] = hash;
        line = boost::json::serialize(o);
        prev = hash;
    }
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

    struct stat st {};
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
        const std::vector<std::string> want{"seq",  "timestamp",  "operation", "resource_type", "resource_id", "status",
                                            "user", "ip_address", "details",   "error",         "prev_hash",   "hash"};
        BOOST_TEST(keys == want, boost::test_tools::per_element());
        BOOST_TEST(o.at("seq").to_number<std::uint64_t>() == i + 1);
        BOOST_TEST(o.at("timestamp").as_string() == format_time(t0 + static_cast<int>(i) * 1min));
        BOOST_TEST(o.at("prev_hash").as_string() == prev);
        // The hash covers the line without its `"hash"` member, byte for byte.
        const std::string hash(o.at("hash").as_string());
        const std::string suffix = ",\"hash\":\"" + hash + "\"}";
        BOOST_REQUIRE(lines[i].ends_with(suffix));
        BOOST_TEST(sha256_of(lines[i].substr(0, lines[i].size() - suffix.size()) + "}") == hash);
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

BOOST_AUTO_TEST_CASE(a_failed_write_heals_by_itself) {
    temp_dir d;
    auto log = open_log(d);
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    log->simulate_failure(true);
    auto r = log->append(entry(3));
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == errc::audit_unavailable));
    BOOST_TEST(!log->healthy());
    BOOST_TEST(!log->last_error().empty());
    // Within a second of the failure appends fail fast, without touching the disk.
    log->simulate_failure(false);
    BOOST_TEST((log->append(entry(4)).error().code == errc::audit_unavailable));
    BOOST_TEST(!log->healthy());
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 3u);
    // Then the next append reopens and writes: healthy again, no restart and no reopen() call.
    // Deliberate: the log retries a failed file at most once a second; only the clock can pass that.
    std::this_thread::sleep_for(1100ms);
    BOOST_REQUIRE(log->append(entry(5)).has_value());
    BOOST_TEST(log->healthy());
    BOOST_TEST(log->next_seq() == 5u);
    v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.entries == 4u);
    // reopen() (SIGHUP) retries at once.
    log->simulate_failure(true);
    BOOST_REQUIRE(!log->append(entry(6)));
    log->simulate_failure(false);
    BOOST_REQUIRE(log->reopen().has_value());
    BOOST_TEST(log->healthy());
    BOOST_REQUIRE(log->append(entry(7)).has_value());
    BOOST_TEST(verify_audit_file(log_file(d)).entries == 5u);
}

// A real full filesystem: a small tmpfs (needs root and mount(2); skipped otherwise).
BOOST_AUTO_TEST_CASE(a_full_disk_fails_then_heals_when_space_returns) {
    temp_dir d;
    const auto mnt = d / "mnt";
    std::filesystem::create_directories(mnt);
    auto m = certmate::test::run("mount -t tmpfs -o size=256k,mode=0700 tmpfs " + mnt.string());
    if (m.exit_code != 0) {
        BOOST_TEST_MESSAGE(
            "SKIPPED a_full_disk_fails_then_heals_when_space_returns: cannot mount a tmpfs: " << m.output);
        return;
    }
    struct unmount {
        std::filesystem::path p;
        ~unmount() { (void)certmate::test::run("umount " + p.string()); }
    } um{mnt};
    const auto file = mnt / "audit.log";
    auto opened = audit_log::open(file, stepping_clock());
    BOOST_REQUIRE(opened.has_value());
    auto& log = *opened;
    for (int i = 0; i < 5; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    // Fill the filesystem.
    const auto filler = mnt / "filler";
    {
        std::ofstream out(filler, std::ios::binary);
        const std::string block(4096, 'x');
        for (int i = 0; i < 1000 && out; ++i) out.write(block.data(), block.size()), out.flush();
    }
    BOOST_TEST_MESSAGE("filler " << std::filesystem::file_size(filler) << " bytes");
    audit_entry big = entry(5);
    big.details["pad"] = std::string(6000, 'p'); // more than any slack left in the last page
    auto r = log->append(big);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == errc::audit_unavailable));
    BOOST_TEST(!log->healthy());
    // No partial line was left behind.
    auto v = verify_audit_file(file);
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.entries == 5u);
    BOOST_TEST(read_text(file).back() == '\n');
    // Space returns: the first append after the retry interval succeeds.
    std::filesystem::remove(filler);
    // Deliberate: the log retries a failed file at most once a second; only the clock can pass that.
    std::this_thread::sleep_for(1100ms);
    BOOST_REQUIRE(log->append(big).has_value());
    BOOST_TEST(log->healthy());
    v = verify_audit_file(file);
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.entries == 6u);
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

BOOST_AUTO_TEST_CASE(a_torn_last_line_is_cut_and_the_cut_recorded) {
    temp_dir d;
    {
        auto log = open_log(d);
        for (int i = 0; i < 4; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    }
    const std::string intact = read_text(log_file(d));
    const std::string torn = R"({"seq":5,"timestamp":"2025-03-01T00:0)"; // crash mid-write, no newline
    {
        std::ofstream out(log_file(d), std::ios::app);
        out << torn;
    }
    BOOST_TEST(!verify_audit_file(log_file(d)).ok);
    auto log = open_log(d);
    BOOST_TEST(log->healthy());
    // The torn bytes are gone and the repair is the next entry, naming how many bytes were cut.
    auto lines = read_lines(log_file(d));
    BOOST_REQUIRE(lines.size() == 5u);
    BOOST_TEST(read_text(log_file(d)).substr(0, intact.size()) == intact);
    auto repair = boost::json::parse(lines[4]).as_object();
    BOOST_TEST(repair.at("seq").to_number<int>() == 5);
    BOOST_TEST(repair.at("operation").as_string() == "audit_repair");
    BOOST_TEST(repair.at("resource_type").as_string() == "audit");
    BOOST_TEST(repair.at("details").as_object().at("removed_bytes").to_number<std::size_t>() == torn.size());
    BOOST_TEST(log->next_seq() == 6u);
    BOOST_REQUIRE(log->append(entry(9)).has_value());
    auto v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
    BOOST_TEST(v.entries == 6u);
    BOOST_REQUIRE(v.repairs.size() == 1u);
    BOOST_TEST(v.repairs[0].seq == 5u);
    BOOST_TEST(v.repairs[0].removed_bytes == torn.size());

    // A whole file that is one torn line is cut to nothing and the chain starts afresh.
    temp_dir e;
    std::filesystem::create_directories(log_file(e).parent_path());
    write_text(log_file(e), "{\"seq\":1,");
    auto fresh = open_log(e);
    v = verify_audit_file(log_file(e));
    BOOST_TEST(v.ok, v.reason);
    BOOST_REQUIRE(v.repairs.size() == 1u);
    BOOST_TEST(v.repairs[0].removed_bytes == 9u);
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

// Checkpoints follow every interval-th entry and the shutdown; each signs the head before it.
BOOST_AUTO_TEST_CASE(signed_checkpoints_every_interval_and_at_shutdown) {
    temp_dir d;
    auto key = signing_key();
    auto pub = public_half(key.get());
    auto log = open_log(d);
    // A key that does not encode is refused (not a signer with an empty key id).
    auto bad = log->set_signer(ossl::pkey(), 10);
    BOOST_TEST((!bad.has_value() && bad.error().code == errc::crypto_failure));
    BOOST_TEST(log->public_key_pem().empty());
    BOOST_REQUIRE(log->set_signer(ossl::up_ref(key.get()), 10).has_value());
    BOOST_TEST(log->public_key_pem() == public_key_to_pem(key.get()).value());
    for (int i = 0; i < 25; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    // entries 1..10, checkpoint 11, entries 12..20, checkpoint 21, entries 22..27
    auto lines = read_lines(log_file(d));
    BOOST_REQUIRE(lines.size() == 27u);
    for (int cp : {11, 21}) {
        auto o = boost::json::parse(lines[cp - 1]).as_object();
        BOOST_TEST(o.at("operation").as_string() == "checkpoint");
        BOOST_TEST(o.at("resource_type").as_string() == "audit");
        const auto& det = o.at("details").as_object();
        BOOST_TEST(det.at("head_seq").to_number<int>() == cp - 1);
        const std::string head_hash(boost::json::parse(lines[cp - 2]).as_object().at("hash").as_string());
        BOOST_TEST(det.at("head_hash").as_string() == head_hash);
        BOOST_TEST(det.at("key_id").as_string() == public_key_id(key.get()).value());
        // The documented message, signed with the plain Ed25519 key.
        auto sig = base64_decode(std::string(det.at("signature").as_string()));
        BOOST_REQUIRE(sig.has_value());
        BOOST_TEST(sig->size() == 64u);
        BOOST_TEST(verify_raw(
            pub.get(), "certmate-audit-checkpoint-v1\n" + std::to_string(cp - 1) + "\n" + head_hash + "\n", *sig));
    }
    auto v = verify_audit_file(log_file(d), pub.get());
    BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
    BOOST_TEST(v.checkpoints == 2u);
    BOOST_TEST(v.last_checkpoint_seq == 21u);
    BOOST_TEST(v.after_last_checkpoint == 6u);
    // Shutdown: one checkpoint over the head, not two in a row.
    auto c = log->checkpoint();
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(*c);
    BOOST_TEST(!*log->checkpoint());
    v = verify_audit_file(log_file(d), pub.get());
    BOOST_TEST(v.ok);
    BOOST_TEST(v.checkpoints == 3u);
    BOOST_TEST(v.after_last_checkpoint == 0u);
    // Without a key the signatures are not checked, and counted as such.
    v = verify_audit_file(log_file(d));
    BOOST_TEST(v.ok);
    BOOST_TEST(v.checkpoints == 0u);
    BOOST_TEST(v.unchecked_checkpoints == 3u);
    // Another key does not verify them.
    auto other = signing_key();
    v = verify_audit_file(log_file(d), public_half(other.get()).get());
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 11u);
    BOOST_TEST(v.reason == "checkpoint signature does not verify");
}

// Rewriting an entry before a checkpoint and recomputing the whole chain fails at the checkpoint.
BOOST_AUTO_TEST_CASE(a_rewritten_and_rechained_entry_before_a_checkpoint_is_found) {
    temp_dir d;
    auto key = signing_key();
    auto pub = public_half(key.get());
    {
        auto log = open_log(d);
        BOOST_REQUIRE(log->set_signer(ossl::up_ref(key.get()), 10).has_value());
        for (int i = 0; i < 15; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    }
    const auto orig = read_lines(log_file(d));
    BOOST_REQUIRE(verify_audit_file(log_file(d), pub.get()).ok);

    auto lines = orig;
    auto pos = lines[4].find("\"user\":\"admin\"");
    BOOST_REQUIRE(pos != std::string::npos);
    lines[4].replace(pos, 14, "\"user\":\"alice\"");
    rechain(lines);
    write_lines(log_file(d), lines);
    BOOST_TEST(verify_audit_file(log_file(d)).ok); // the hash chain alone is fooled
    auto v = verify_audit_file(log_file(d), pub.get());
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 11u);
    BOOST_TEST(v.reason == "checkpoint signature does not verify");

    // Leaving the checkpoint's head_hash alone does not help either.
    lines = orig;
    lines[4].replace(pos, 14, "\"user\":\"alice\"");
    rechain(lines);
    auto cp = boost::json::parse(orig[10]).as_object();
    auto fake = boost::json::parse(lines[10]).as_object();
    fake["details"].as_object()["head_hash"] = cp.at("details").as_object().at("head_hash");
    fake.erase("hash");
    fake["hash"] = sha256_of(boost::json::serialize(fake));
    lines[10] = boost::json::serialize(fake);
    write_lines(log_file(d), lines);
    v = verify_audit_file(log_file(d), pub.get());
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 11u);
    BOOST_TEST(v.reason == "checkpoint does not name the entry before it");

    // After the last checkpoint a rechained edit cannot be seen (the documented limit).
    lines = orig;
    lines[13].replace(lines[13].find("\"user\":\"admin\""), 14, "\"user\":\"alice\"");
    rechain(lines);
    write_lines(log_file(d), lines);
    v = verify_audit_file(log_file(d), pub.get());
    BOOST_TEST(v.ok);
    BOOST_TEST(v.after_last_checkpoint == 5u);
}

// An exported range verifies offline with `openssl pkeyutl` and the public key alone.
BOOST_AUTO_TEST_CASE(an_exported_range_verifies_with_openssl_pkeyutl) {
    temp_dir d;
    auto key = signing_key();
    auto log = open_log(d);
    BOOST_TEST((log->export_range(1, std::nullopt).error().code == errc::not_found));
    for (int i = 0; i < 12; ++i) BOOST_REQUIRE(log->append(entry(i)).has_value());
    BOOST_TEST((log->export_range(1, std::nullopt).error().code == errc::audit_unavailable)); // no signer
    BOOST_REQUIRE(log->set_signer(ossl::up_ref(key.get()), 100).has_value());
    auto ex = log->export_range(3, 7);
    BOOST_REQUIRE(ex.has_value());
    BOOST_TEST(ex->from_seq == 3u);
    BOOST_TEST(ex->to_seq == 7u);
    BOOST_TEST(ex->count == 5u);
    const auto lines = read_lines(log_file(d));
    std::string want;
    for (int i = 2; i < 7; ++i) want += lines[i] + "\n";
    BOOST_TEST(ex->bytes == want);

    write_text(d / "audit.pub", public_key_to_pem(key.get()).value());
    write_text(d / "range.jsonl", ex->bytes);
    write_text(d / "range.sig", ex->signature);
    const std::string cmd = "openssl pkeyutl -verify -pubin -inkey " + (d / "audit.pub").string() + " -rawin -in " +
                            (d / "range.jsonl").string() + " -sigfile " + (d / "range.sig").string();
    auto ok = certmate::test::run(cmd);
    BOOST_TEST(ok.exit_code == 0, ok.output);
    BOOST_TEST(ok.output.find("Signature Verified Successfully") != std::string::npos, ok.output);
    // One byte changed: refused.
    std::string changed = ex->bytes;
    changed[changed.find("admin")] = 'A';
    write_text(d / "range.jsonl", changed);
    auto bad = certmate::test::run(cmd);
    BOOST_TEST(bad.exit_code != 0, bad.output);
    BOOST_TEST(bad.output.find("Signature Verified Successfully") == std::string::npos, bad.output);

    // Open-ended and out-of-range requests.
    auto tail = log->export_range(10, std::nullopt);
    BOOST_REQUIRE(tail.has_value());
    BOOST_TEST(tail->to_seq == 12u);
    BOOST_TEST(tail->count == 3u);
    BOOST_TEST((log->export_range(13, std::nullopt).error().code == errc::not_found));
}
