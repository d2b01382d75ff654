// The audit chain in PostgreSQL (storage/pg_audit) against a throwaway cluster
// (test/support/pg_cluster): the same lines as the file log, queries through the indexes, one
// chain for several instances appending at once, tampering found, signed exports, fail closed.
#define BOOST_TEST_MODULE pg_audit
#include <boost/test/unit_test.hpp>

#include "app/backend.hpp"
#include "core/keys.hpp"
#include "storage/audit_log.hpp"
#include "storage/pg.hpp"
#include "storage/pg_audit.hpp"
#include "storage/pg_schema.hpp"
#include "support/pg_cluster.hpp"
#include "support/tools.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

using namespace certmate;
using namespace certmate::storage;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

using certmate::test::read_text;
using certmate::test::temp_dir;
using certmate::test::write_text;

const time_point t0 = std::chrono::sys_days{std::chrono::year{2025} / 3 / 1};

// A clock that advances one minute per call, so entries have distinct, known timestamps.
clock_fn stepping_clock() {
    auto n = std::make_shared<std::atomic<int>>(0);
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
    if (i % 4 == 0) e.actor = {{"kind", "token"}, {"name", "ops"}};
    return e;
}

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

// A fresh database with the audit table; its connection string.
std::string audit_database() {
    auto conninfo = test::shared_pg_cluster().create_database();
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    BOOST_REQUIRE(pg_audit::ensure_schema(*c));
    BOOST_REQUIRE(pg_audit::ensure_schema(*c)); // idempotent
    return conninfo;
}

std::unique_ptr<pg_audit> open_sink(std::shared_ptr<pg::pool> pool, clock_fn clock = stepping_clock()) {
    auto s = pg_audit::open(std::move(pool), std::move(clock));
    BOOST_REQUIRE_MESSAGE(s, (s ? "" : s.error().message));
    return std::move(*s);
}

std::shared_ptr<pg::pool> make_pool(const std::string& conninfo, std::size_t size = 4) {
    return std::make_shared<pg::pool>(conninfo, size, 5s);
}

// seq and line of every row, in seq order.
std::vector<std::pair<std::int64_t, std::string>> table_rows(pg::connection& c) {
    auto r = c.exec("SELECT seq, line FROM audit_log ORDER BY seq");
    BOOST_REQUIRE(r);
    std::vector<std::pair<std::int64_t, std::string>> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(r->int64(i, 0), std::string(r->text(i, 1)));
    return out;
}

std::string table_text(pg::connection& c) {
    std::string text;
    for (const auto& [seq, line] : table_rows(c)) text += line + "\n";
    return text;
}

void set_line(pg::connection& c, std::int64_t seq, const std::string& line) {
    auto r = c.exec("UPDATE audit_log SET line = $2 WHERE seq = $1", {seq, line});
    BOOST_REQUIRE(r);
    BOOST_REQUIRE(r->affected() == 1u);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// Recomputes every line's prev_hash and hash (and a checkpoint's head_hash), as someone who can
// write the table would after editing it: the chain alone then verifies again.
void rechain(std::vector<std::string>& lines) {
    std::string prev(64, '0');
    for (auto& line : lines) {
        auto o = json::parse(line).as_object();
        o.erase("hash");
        o["prev_hash"] = prev;
        if (o.at("operation").as_string() == "checkpoint") o["details"].as_object()["head_hash"] = prev;
        const std::string hash = sha256_hex(json::serialize(o)).value();
        o["hash"] = hash;
        line = json::serialize(o);
        prev = hash;
    }
}

std::vector<int> seqs_of(const std::vector<json::object>& v) {
    std::vector<int> out;
    for (const auto& o : v) out.push_back(o.at("seq").to_number<int>());
    return out;
}

} // namespace

// The table holds exactly the lines the file log writes for the same entries and clock, so the
// file's verifier accepts a dump of it; queries filter and order like the file log's.
BOOST_AUTO_TEST_CASE(the_same_lines_as_the_file_log_queries_and_verify) {
    const auto conninfo = audit_database();
    auto sink = open_sink(make_pool(conninfo));
    BOOST_TEST(sink->head_written().seq == 0u);
    temp_dir d;
    auto file = audit_log::open(d / "audit.log", stepping_clock());
    BOOST_REQUIRE(file);
    for (int i = 0; i < 30; ++i) {
        BOOST_REQUIRE(sink->append(entry(i)));
        BOOST_REQUIRE((*file)->append(entry(i)));
    }
    BOOST_TEST(sink->healthy());
    BOOST_TEST(sink->head_written().seq == 30u);
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    BOOST_TEST(table_text(*c) == read_text(d / "audit.log"));
    BOOST_TEST(verify_audit_text(table_text(*c)).ok);
    // The indexed columns agree with the lines.
    auto cols = c->exec("SELECT at, operation, resource_type, resource_id, user_name FROM audit_log WHERE seq = 4");
    BOOST_REQUIRE(cols && cols->size() == 1);
    BOOST_TEST(cols->text(0, 0) == "2025-03-01 00:03:00+00");
    BOOST_TEST(cols->text(0, 1) == "revoke");
    BOOST_TEST(cols->text(0, 2) == "certificate");
    BOOST_TEST(cols->text(0, 3) == "cert-3");
    BOOST_TEST(cols->text(0, 4) == "admin");

    auto v = sink->verify();
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.entries == 30u);

    // The file log's query test, the same answers.
    auto all = sink->query({});
    BOOST_REQUIRE(all.has_value());
    BOOST_REQUIRE(all->size() == 30u);
    BOOST_TEST(all->front().at("seq").to_number<int>() == 30);
    BOOST_TEST(all->back().at("seq").to_number<int>() == 1);
    BOOST_TEST(json::serialize(all->back()) == json::serialize((*file)->query({}).value().back()));

    audit_query q;
    q.resource_id = "cert-2";
    q.limit = 3;
    auto some = sink->query(q);
    BOOST_REQUIRE(some);
    for (const auto& o : *some) BOOST_TEST(o.at("resource_id").as_string() == "cert-2");
    BOOST_TEST(seqs_of(*some) == (std::vector<int>{28, 23, 18}), boost::test_tools::per_element());

    audit_query ops;
    ops.operation = "revoke";
    ops.since = t0 + 10min; // entries 10.. (seq 11..)
    ops.until = t0 + 20min; // ..20 (seq 21)
    BOOST_TEST(seqs_of(sink->query(ops).value()) == (std::vector<int>{19, 16, 13}), boost::test_tools::per_element());
    BOOST_TEST(seqs_of(sink->query(ops).value()) == seqs_of((*file)->query(ops).value()),
               boost::test_tools::per_element());
    // Bounds with sub-second parts: an entry at exactly 00:12:00 is after 00:11:59.9999999 and
    // not after 00:12:00.0000001; 00:12:00 is the timestamp of seq 13.
    audit_query fine;
    fine.since = t0 + 12min - 100ns;
    fine.until = t0 + 12min + 100ns;
    BOOST_TEST(seqs_of(sink->query(fine).value()) == (std::vector<int>{13}), boost::test_tools::per_element());
    fine.since = t0 + 12min + 100ns;
    BOOST_TEST(sink->query(fine).value().empty());
    BOOST_TEST((*file)->query(fine).value().empty());
    audit_query none;
    none.limit = 0;
    BOOST_TEST(sink->query(none).value().empty());
    none.limit = 5;
    none.resource_id = "nope'; DROP TABLE audit_log; --";
    BOOST_TEST(sink->query(none).value().empty());
    BOOST_TEST(sink->query({}).value().size() == 30u);
}

// The filters are answered through the indexes: on a large table no query scans it whole.
BOOST_AUTO_TEST_CASE(queries_use_the_indexes) {
    const auto conninfo = audit_database();
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    // 100,000 rows straight in SQL (lines that parse as JSON; the chain is not what is tested).
    BOOST_REQUIRE(c->exec_script(
        "INSERT INTO audit_log (seq, at, operation, resource_type, resource_id, user_name, line) "
        "SELECT g, timestamptz '2025-01-01' + g * interval '1 minute', "
        "CASE WHEN g % 10 = 0 THEN 'revoke' ELSE 'create' END, 'certificate', 'cert-' || (g % 5000), 'admin', "
        "'{\"seq\":' || g || '}' FROM generate_series(1, 100000) g; ANALYZE audit_log"));
    // The last line is no chain entry: the sink opens, unhealthy (appends would refuse to chain onto it).
    auto sink = open_sink(make_pool(conninfo));
    BOOST_TEST(!sink->healthy());
    // Sequential scans of the table, index scans of audit_log_resource, and index entries read.
    struct counts {
        std::int64_t seq_scan = 0, resource_scans = 0, index_tuples = 0;
    };
    auto scans = [&] {
        // Statistics reach other sessions when a backend flushes them (PostgreSQL 15: when idle, at
        // least a second apart, or ten seconds later).
        auto r = c->exec("SELECT (SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'audit_log'), "
                         "(SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'audit_log_resource'), "
                         "(SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = 'audit_log')");
        BOOST_REQUIRE(r && r->size() == 1);
        return counts{r->int64(0, 0), r->int64(0, 1), r->int64(0, 2)};
    };
    const auto before = scans();
    audit_query by_operation;
    by_operation.operation = "revoke";
    by_operation.limit = 3;
    BOOST_TEST(seqs_of(sink->query(by_operation).value()) == (std::vector<int>{100000, 99990, 99980}),
               boost::test_tools::per_element());
    audit_query by_time;
    by_time.since = parse_time("2025-01-10T00:00:00Z");
    by_time.until = parse_time("2025-01-10T00:02:00Z");
    BOOST_TEST(seqs_of(sink->query(by_time).value()) == (std::vector<int>{12962, 12961, 12960}),
               boost::test_tools::per_element());
    BOOST_TEST(sink->query({}).value().size() == 100u);
    // Last, a second on: the backend (the pool hands the same connection back) flushes its
    // statistics as it goes idle after it, those of the queries above with them.
    std::this_thread::sleep_for(1100ms);
    audit_query by_resource;
    by_resource.resource_id = "cert-42";
    by_resource.limit = 10;
    auto got = sink->query(by_resource);
    BOOST_REQUIRE(got);
    BOOST_TEST(seqs_of(*got) ==
                   (std::vector<int>{95042, 90042, 85042, 80042, 75042, 70042, 65042, 60042, 55042, 50042}),
               boost::test_tools::per_element());
    counts after;
    for (int i = 0; i < 200; ++i) {
        after = scans();
        if (after.resource_scans > before.resource_scans) break;
        std::this_thread::sleep_for(100ms);
    }
    // The resource filter went through its index; no query scanned the table; all four read a few
    // hundred index entries at most (the limits, not the 100,000 rows).
    BOOST_TEST(after.resource_scans == before.resource_scans + 1);
    BOOST_TEST(after.seq_scan == before.seq_scan);
    BOOST_TEST(after.index_tuples - before.index_tuples < 1000);
}

// Two instances (two sinks, each with its pool) on one database, four threads each: one chain,
// seq 1..N without gaps or repeats, every checkpoint signed and verified.
BOOST_AUTO_TEST_CASE(two_instances_appending_at_once_keep_one_chain) {
    const auto conninfo = audit_database();
    auto key = signing_key();
    auto pub = public_half(key.get());
    std::unique_ptr<pg_audit> sinks[2] = {open_sink(make_pool(conninfo), system_clock_fn()),
                                          open_sink(make_pool(conninfo), system_clock_fn())};
    for (auto& s : sinks) BOOST_REQUIRE(s->set_signer(ossl::up_ref(key.get()), 50));
    constexpr int threads_per_sink = 4, per_thread = 100;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < 2; ++s)
        for (int t = 0; t < threads_per_sink; ++t)
            threads.emplace_back([&, s, t] {
                for (int i = 0; i < per_thread; ++i) {
                    audit_entry e = entry(i);
                    e.resource_id = "i" + std::to_string(s) + "-t" + std::to_string(t) + "-" + std::to_string(i);
                    if (!sinks[s]->append(e)) ++failures;
                }
            });
    for (auto& th : threads) th.join();
    BOOST_TEST(failures.load() == 0);
    constexpr int entries = 2 * threads_per_sink * per_thread;

    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    const auto rows = table_rows(*c);
    // 800 entries; a checkpoint after every 50th seq that is an entry: 51, 101, ... .
    std::size_t checkpoints = 0;
    std::set<std::string> ids;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        BOOST_REQUIRE_EQUAL(rows[i].first, static_cast<std::int64_t>(i + 1)); // 1..N, no gap, no repeat
        auto o = json::parse(rows[i].second).as_object();
        BOOST_REQUIRE_EQUAL(o.at("seq").to_number<std::int64_t>(), rows[i].first);
        if (o.at("operation").as_string() == "checkpoint") {
            ++checkpoints;
            BOOST_TEST(rows[i].first % 50 == 1);
            BOOST_TEST(o.at("details").as_object().at("reason").as_string() == "interval");
        } else {
            ids.insert(std::string(o.at("resource_id").as_string()));
        }
    }
    BOOST_TEST(ids.size() == static_cast<std::size_t>(entries)); // every append is there once
    BOOST_TEST(rows.size() == static_cast<std::size_t>(entries) + checkpoints);
    BOOST_TEST(checkpoints == rows.size() / 50);
    BOOST_TEST(checkpoints >= 15u);

    for (auto& s : sinks) {
        auto v = s->verify();
        BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
        BOOST_TEST(v.entries == rows.size());
        BOOST_TEST(v.checkpoints == checkpoints);
        BOOST_TEST(v.unchecked_checkpoints == 0u);
    }
    // The file log's verifier over a dump of the table, with the public key alone.
    auto v = verify_audit_text(table_text(*c), pub.get());
    BOOST_TEST(v.ok, v.reason << " at line " << v.bad_line);
    BOOST_TEST(v.checkpoints == checkpoints);
    // An export from either instance covers both instances' entries, signed.
    auto ex = sinks[1]->export_range(1, std::nullopt);
    BOOST_REQUIRE(ex);
    BOOST_TEST(ex->bytes == table_text(*c));
    BOOST_TEST(verify_raw(pub.get(), ex->bytes, ex->signature));
    // Each instance's head is the last entry it wrote; the higher is the chain's head.
    BOOST_TEST(std::max(sinks[0]->head_written().seq, sinks[1]->head_written().seq) == rows.size());

    // The shutdown checkpoint: one over the head, not two in a row, from either instance.
    auto cp = sinks[0]->checkpoint();
    BOOST_REQUIRE(cp);
    BOOST_TEST(*cp == (json::parse(rows.back().second).as_object().at("operation").as_string() != "checkpoint"));
    BOOST_TEST(!sinks[1]->checkpoint().value());
    BOOST_TEST(sinks[1]->append(entry(1)).has_value());
    BOOST_TEST(sinks[1]->checkpoint().value());
    v = sinks[0]->verify();
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.after_last_checkpoint == 0u);
}

BOOST_AUTO_TEST_CASE(checkpoints_every_interval_and_only_with_a_signer) {
    const auto conninfo = audit_database();
    auto key = signing_key();
    auto pub = public_half(key.get());
    auto sink = open_sink(make_pool(conninfo));
    BOOST_TEST(!sink->checkpoint().value()); // no signer
    auto bad = sink->set_signer(ossl::pkey(), 10);
    BOOST_TEST((!bad && bad.error().code == errc::crypto_failure));
    BOOST_TEST(sink->public_key_pem().empty());
    BOOST_REQUIRE(sink->set_signer(ossl::up_ref(key.get()), 10));
    BOOST_TEST(sink->public_key_pem() == public_key_to_pem(key.get()).value());
    BOOST_TEST(!sink->checkpoint().value()); // an empty chain
    for (int i = 0; i < 25; ++i) BOOST_REQUIRE(sink->append(entry(i)));
    // entries 1..10, checkpoint 11, entries 12..20, checkpoint 21, entries 22..27: as the file log.
    temp_dir d;
    auto file = audit_log::open(d / "audit.log", stepping_clock());
    BOOST_REQUIRE(file);
    BOOST_REQUIRE((*file)->set_signer(ossl::up_ref(key.get()), 10));
    for (int i = 0; i < 25; ++i) BOOST_REQUIRE((*file)->append(entry(i)));
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    // Ed25519 signatures are deterministic (RFC 8032 5.1.6): even the checkpoints are the same bytes.
    BOOST_TEST(table_text(*c) == read_text(d / "audit.log"));
    auto v = sink->verify();
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.checkpoints == 2u);
    BOOST_TEST(v.last_checkpoint_seq == 21u);
    BOOST_TEST(v.after_last_checkpoint == 6u);
    BOOST_TEST(sink->checkpoint().value());
    BOOST_TEST(!sink->checkpoint().value());
    v = verify_audit_text(table_text(*c), pub.get());
    BOOST_TEST(v.ok);
    BOOST_TEST(v.checkpoints == 3u);
    BOOST_TEST(v.after_last_checkpoint == 0u);
}

// The chain's lock is the documented key: whoever holds it (an import, an operator freezing the
// chain) holds every instance's appends until it lets go, and they go on from there.
BOOST_AUTO_TEST_CASE(appends_wait_for_whoever_holds_the_chain_lock) {
    const auto conninfo = audit_database();
    auto sink = open_sink(make_pool(conninfo));
    BOOST_REQUIRE(sink->append(entry(0)));
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    BOOST_REQUIRE(c->exec("SELECT pg_advisory_lock($1)", {pg_audit_lock_key}));
    std::atomic<bool> done{false};
    result<void> appended;
    std::thread t([&] {
        appended = sink->append(entry(1));
        done = true;
    });
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(!done.load());
    auto waiting = c->exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    BOOST_REQUIRE(waiting);
    BOOST_TEST(waiting->int64(0, 0) == 1);
    BOOST_REQUIRE(c->exec("SELECT pg_advisory_unlock($1)", {pg_audit_lock_key}));
    t.join();
    BOOST_TEST(appended.has_value());
    BOOST_TEST(sink->head_written().seq == 2u);
    BOOST_TEST(sink->verify().ok);
}

// A line changed in the table (UPDATE by hand) is found and named by its seq; so is a rewrite
// with the chain recomputed (at the next checkpoint), a deleted row, and a rewrite after the
// last checkpoint of the entry this instance wrote. Nothing is signed meanwhile.
BOOST_AUTO_TEST_CASE(a_line_changed_in_the_table_is_found_by_its_seq) {
    const auto conninfo = audit_database();
    auto key = signing_key();
    auto sink = open_sink(make_pool(conninfo));
    BOOST_REQUIRE(sink->set_signer(ossl::up_ref(key.get()), 10));
    for (int i = 0; i < 25; ++i) BOOST_REQUIRE(sink->append(entry(i))); // 27 rows, checkpoints 11 and 21
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    const auto orig = lines_of(table_text(*c));
    BOOST_REQUIRE(orig.size() == 27u);
    BOOST_REQUIRE(sink->verify().ok);
    BOOST_REQUIRE(sink->export_range(1, std::nullopt));

    // One entry edited in place.
    auto edited = orig[16];
    edited.replace(edited.find("\"user\":\"admin\""), 14, "\"user\":\"alice\"");
    set_line(*c, 17, edited);
    auto v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 17u);
    BOOST_TEST(v.reason == "hash mismatch (seq 17)");
    auto ex = sink->export_range(1, 5);
    BOOST_TEST((!ex && ex.error().code == errc::conflict));
    set_line(*c, 17, orig[16]);
    BOOST_TEST(sink->verify().ok);

    // Rewritten and rechained: the chain alone is fooled, the checkpoint at 11 is not.
    auto lines = orig;
    lines[4].replace(lines[4].find("\"user\":\"admin\""), 14, "\"user\":\"alice\"");
    rechain(lines);
    for (std::size_t i = 0; i < lines.size(); ++i) set_line(*c, static_cast<std::int64_t>(i + 1), lines[i]);
    BOOST_TEST(verify_audit_text(table_text(*c)).ok);
    v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 11u);
    BOOST_TEST(v.reason == "checkpoint signature does not verify (seq 11)");
    for (std::size_t i = 0; i < orig.size(); ++i) set_line(*c, static_cast<std::int64_t>(i + 1), orig[i]);

    // After the last checkpoint a rechained edit escapes the signatures, but not the head this
    // instance wrote (seq 27).
    lines = orig;
    lines[23].replace(lines[23].find("\"user\":\"admin\""), 14, "\"user\":\"alice\"");
    rechain(lines);
    for (std::size_t i = 23; i < lines.size(); ++i) set_line(*c, static_cast<std::int64_t>(i + 1), lines[i]);
    BOOST_TEST(verify_audit_text(table_text(*c), public_half(key.get()).get()).ok);
    v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 27u);
    BOOST_TEST(v.reason.find("not the one this server wrote") != std::string::npos, v.reason);
    for (std::size_t i = 23; i < orig.size(); ++i) set_line(*c, static_cast<std::int64_t>(i + 1), orig[i]);
    BOOST_TEST(sink->verify().ok);

    // A deleted row leaves a gap; a deleted tail falls short of the head written.
    auto row9 = c->exec("DELETE FROM audit_log WHERE seq = 9 RETURNING at, operation, resource_type, resource_id, "
                        "user_name");
    BOOST_REQUIRE(row9 && row9->size() == 1);
    v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.bad_line == 9u);
    BOOST_TEST(v.reason == "seq out of order (seq 10)");
    BOOST_REQUIRE(
        c->exec("INSERT INTO audit_log VALUES (9, $1::timestamptz, $2, $3, $4, $5, $6)",
                {row9->text(0, 0), row9->text(0, 1), row9->text(0, 2), row9->text(0, 3), row9->text(0, 4), orig[8]}));
    BOOST_REQUIRE(c->exec("DELETE FROM audit_log WHERE seq >= 26"));
    v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.reason == "the log ends before entry 27, which this server wrote");

    // An instance continuing after a head that is not intact refuses to chain onto it.
    set_line(*c, 25, "{\"seq\":25}");
    auto r = sink->append(entry(99));
    BOOST_TEST((!r && r.error().code == errc::audit_unavailable));
    BOOST_TEST(r.error().message.find("seq 25") != std::string::npos, r.error().message);
    BOOST_TEST(!sink->healthy());
}

// Signed exports of the table verify as the file log's do: with `openssl pkeyutl` and the public
// key alone; a range from seq 1 also verifies as a chain.
BOOST_AUTO_TEST_CASE(an_exported_range_verifies_with_openssl_pkeyutl) {
    const auto conninfo = audit_database();
    auto key = signing_key();
    auto sink = open_sink(make_pool(conninfo));
    BOOST_TEST((sink->export_range(1, std::nullopt).error().code == errc::not_found));
    for (int i = 0; i < 12; ++i) BOOST_REQUIRE(sink->append(entry(i)));
    BOOST_TEST((sink->export_range(1, std::nullopt).error().code == errc::audit_unavailable)); // no signer
    BOOST_REQUIRE(sink->set_signer(ossl::up_ref(key.get()), 100));
    auto ex = sink->export_range(3, 7);
    BOOST_REQUIRE(ex);
    BOOST_TEST(ex->from_seq == 3u);
    BOOST_TEST(ex->to_seq == 7u);
    BOOST_TEST(ex->count == 5u);
    BOOST_TEST(ex->key_id == public_key_id(key.get()).value());
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE(c);
    const auto lines = lines_of(table_text(*c));
    std::string want;
    for (int i = 2; i < 7; ++i) want += lines[i] + "\n";
    BOOST_TEST(ex->bytes == want);

    temp_dir d;
    write_text(d / "audit.pub", sink->public_key_pem());
    write_text(d / "range.jsonl", ex->bytes);
    write_text(d / "range.sig", ex->signature);
    const std::string cmd = "openssl pkeyutl -verify -pubin -inkey " + (d / "audit.pub").string() + " -rawin -in " +
                            (d / "range.jsonl").string() + " -sigfile " + (d / "range.sig").string();
    auto ok = certmate::test::run(cmd);
    BOOST_TEST(ok.exit_code == 0, ok.output);
    BOOST_TEST(ok.output.find("Signature Verified Successfully") != std::string::npos, ok.output);
    std::string changed = ex->bytes;
    changed[changed.find("admin")] = 'A';
    write_text(d / "range.jsonl", changed);
    auto bad = certmate::test::run(cmd);
    BOOST_TEST(bad.exit_code != 0, bad.output);
    BOOST_TEST(bad.output.find("Signature Verified Successfully") == std::string::npos, bad.output);

    auto whole = sink->export_range(1, std::nullopt);
    BOOST_REQUIRE(whole);
    BOOST_TEST(whole->count == 12u);
    BOOST_TEST(verify_audit_text(whole->bytes, public_half(key.get()).get()).ok);
    BOOST_TEST(verify_raw(public_half(key.get()).get(), whole->bytes, whole->signature));
    auto tail = sink->export_range(10, std::nullopt);
    BOOST_REQUIRE(tail);
    BOOST_TEST(tail->to_seq == 12u);
    BOOST_TEST(tail->count == 3u);
    BOOST_TEST((sink->export_range(13, std::nullopt).error().code == errc::not_found));
    BOOST_TEST((sink->export_range(5, 4).error().code == errc::not_found));
    BOOST_TEST((sink->export_range(UINT64_MAX, std::nullopt).error().code == errc::not_found));
    BOOST_TEST(sink->export_range(12, UINT64_MAX)->count == 1u);
}

// Last: it stops the shared cluster. The database away: appends fail closed (audit_unavailable,
// healthy() false), fast while unhealthy; once it is back, appends work again on the same object
// and the chain continues.
BOOST_AUTO_TEST_CASE(the_database_away_fails_closed_and_heals) {
    auto& cluster = test::shared_pg_cluster();
    const auto conninfo = audit_database();
    auto pool = make_pool(conninfo);
    auto sink = open_sink(pool);
    for (int i = 0; i < 5; ++i) BOOST_REQUIRE(sink->append(entry(i)));
    BOOST_TEST(sink->healthy());

    cluster.stop();
    auto r = sink->append(entry(5));
    BOOST_TEST((!r && r.error().code == errc::audit_unavailable));
    BOOST_TEST(!sink->healthy());
    BOOST_TEST(!sink->last_error().empty());
    // While unhealthy, within the second: refused without asking the pool.
    const auto acquired = pool->stats().acquired;
    for (int i = 0; i < 20; ++i) {
        auto again = sink->append(entry(6));
        BOOST_TEST((!again && again.error().code == errc::audit_unavailable));
    }
    BOOST_TEST(pool->stats().acquired == acquired);
    BOOST_TEST((sink->query({}).error().code == errc::audit_unavailable));
    auto v = sink->verify();
    BOOST_TEST(!v.ok);
    BOOST_TEST(v.reason.find("database unavailable") != std::string::npos, v.reason);
    BOOST_TEST((sink->reopen().error().code == errc::audit_unavailable));
    BOOST_TEST(!sink->healthy());

    cluster.start();
    // The same object heals by itself: an append a second after the last attempt goes through.
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    result<void> healed = make_error(errc::audit_unavailable, "not tried");
    while (!healed && std::chrono::steady_clock::now() < deadline) {
        healed = sink->append(entry(7));
        if (!healed) std::this_thread::sleep_for(100ms);
    }
    BOOST_REQUIRE_MESSAGE(healed, (healed ? "" : healed.error().message));
    BOOST_TEST(sink->healthy());
    BOOST_TEST(sink->head_written().seq == 6u); // the chain continues, nothing lost or doubled
    v = sink->verify();
    BOOST_TEST(v.ok, v.reason);
    BOOST_TEST(v.entries == 6u);

    // reopen() retries at once.
    cluster.stop();
    BOOST_TEST(!sink->append(entry(8)).has_value());
    cluster.start();
    BOOST_REQUIRE(sink->reopen());
    BOOST_TEST(sink->healthy());
    BOOST_REQUIRE(sink->append(entry(9)));
    BOOST_TEST(sink->head_written().seq == 7u);
    BOOST_TEST(sink->verify().ok);
}

// open_service opens the audit before the repository: on an empty database the audit port brings
// the schema itself. Fails before: `serve` with storage.backend = postgresql on a new database
// stopped with "relation audit_log does not exist" (only open_repository migrated).
BOOST_AUTO_TEST_CASE(open_audit_on_an_empty_database_brings_the_schema) {
    app::config cfg;
    cfg.backend = "postgresql";
    cfg.postgresql = test::shared_pg_cluster().create_database();
    auto sink = app::open_audit(cfg, signing_key(), stepping_clock());
    BOOST_REQUIRE_MESSAGE(sink.has_value(), (sink ? std::string() : sink.error().message));
    BOOST_REQUIRE((*sink)->append(entry(1)));
    auto c = pg::connection::open(cfg.postgresql);
    BOOST_REQUIRE(c);
    BOOST_TEST(table_text(*c).find("cert-1") != std::string::npos);
    auto version = pg_schema::current_version(*c);
    BOOST_REQUIRE(version.has_value());
    BOOST_TEST(*version == pg_schema::latest_version());
}
