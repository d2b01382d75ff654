// The repository port's conformance suite, run against both backends (fs_store on a temp data dir,
// pg_store on a fresh database of a throwaway PostgreSQL cluster), then what only the PostgreSQL
// store does: keys wrapped at rest (storage/key_wrap), migrations, two instances on one database
// (change delivery, one growing CRL number, task leases), the database going away and coming
// back, and the load time of 30,000 certificates (issue 18, docs/postgresql.md).
#define BOOST_TEST_MODULE pg_store
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include "core/job.hpp"
#include "core/store_copy.hpp"
#include "storage/fs_store.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg.hpp"
#include "storage/pg_audit.hpp"
#include "storage/pg_schema.hpp"
#include "storage/pg_store.hpp"
#include "support/pg_cluster.hpp"
#include "support/sample_records.hpp"
#include "support/tools.hpp"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <atomic>
#include <thread>

using namespace certmate;
using namespace certmate::storage;
using namespace std::chrono_literals;
using certmate::test::make_record;

namespace {

template <class T>
int code(const result<T>& r) {
    return r ? static_cast<int>(errc::ok) : static_cast<int>(r.error().code);
}
std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}
constexpr int ec(errc e) { return static_cast<int>(e); }

std::string fake_pem(std::string_view kind, std::string_view who) {
    return "-----BEGIN " + std::string(kind) + "-----\nMII" + std::string(who) + "AAAA\n-----END " + std::string(kind) +
           "-----\n";
}

cert_files files_of(const cert_record& r) {
    cert_files f;
    f.cert_pem = fake_pem("CERTIFICATE", r.identifier + r.serial_number);
    if (r.has_private_key) f.key_pem = fake_pem("PRIVATE KEY", r.identifier);
    if (r.identifier.back() % 2 == 0) f.csr_pem = fake_pem("CERTIFICATE REQUEST", r.identifier);
    return f;
}

key_wrap random_kek() {
    std::string k(32, '\0');
    BOOST_REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
    return key_wrap::from_key(k).value();
}

// A pg_store on database `conninfo`, migrated.
std::unique_ptr<pg_store> open_pg(const std::string& conninfo, const key_wrap& kek, const std::string& me) {
    auto s = std::make_unique<pg_store>(conninfo, 4, kek, me);
    auto v = s->migrate();
    BOOST_REQUIRE_MESSAGE(v, (v ? "" : v.error().message));
    BOOST_TEST(*v == pg_schema::latest_version());
    return s;
}

struct fs_backend {
    static constexpr const char* name = "fs_store";
    test::temp_dir dir;
    layout l{dir / "data"};
    fs_store store{l};
    // The CA directory exists once a CA is initialised; the published CRL's PEM goes there.
    fs_backend() { std::filesystem::create_directories(l.ca_dir()); }
    cert_repository& repo() { return store; }
};

struct pg_backend {
    static constexpr const char* name = "pg_store";
    std::string conninfo = test::shared_pg_cluster().create_database();
    std::unique_ptr<pg_store> store = open_pg(conninfo, random_kek(), "A");
    cert_repository& repo() { return *store; }
};

using backends = boost::mpl::list<fs_backend, pg_backend>;

std::vector<cert_record> loaded(cert_repository& repo) {
    auto rep = repo.load_all(2);
    BOOST_REQUIRE_MESSAGE(rep, (rep ? "" : rep.error().message));
    BOOST_TEST(rep->skipped.empty());
    return rep->records;
}

job_record sample_job(const std::string& id, int minutes) {
    job_record j;
    j.id = id;
    j.kind = job_kind::revoke;
    j.state = job_state::running;
    j.owner = "token:ops";
    j.role = api_role::operator_;
    j.request_sha256 = std::string(64, 'c');
    j.reason = "keyCompromise";
    j.total = 3;
    j.outcomes = "ox.";
    j.errors.push_back({2, "identifier", "not found", "bob"});
    j.created_at = test::sample_t0 + std::chrono::minutes(minutes);
    j.started_at = j.created_at + 1s;
    return j;
}

} // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(conformance)

BOOST_AUTO_TEST_CASE_TEMPLATE(create_read_replace_and_metadata, B, backends) {
    B b;
    auto& repo = b.repo();
    cert_record rec = make_record(2); // has a key; identifier ends in an even digit: a CSR too
    BOOST_REQUIRE(rec.has_private_key);
    const cert_files f = files_of(rec);
    BOOST_REQUIRE(f.csr_pem);
    BOOST_REQUIRE_MESSAGE(repo.create(rec, f), B::name);
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::cert).value() == f.cert_pem);
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::key).value() == *f.key_pem);
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::csr).value() == *f.csr_pem);

    // Renewal without a new key keeps key and CSR; the new certificate and metadata replace the old.
    cert_record renewed = rec;
    renewed.history.push_back({rec.serial_number, rec.not_before, rec.expires_at, rec.fingerprint_sha256,
                               rec.created_at + 10h, false, std::nullopt, std::nullopt});
    renewed.serial_number = "424242424242";
    renewed.created_at += 10h;
    cert_files nf;
    nf.cert_pem = fake_pem("CERTIFICATE", "renewed");
    BOOST_REQUIRE(repo.replace(renewed, nf));
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::cert).value() == nf.cert_pem);
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::key).value() == *f.key_pem);
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::csr).value() == *f.csr_pem);
    // With a new key, the key is replaced.
    nf.key_pem = fake_pem("PRIVATE KEY", "second");
    BOOST_REQUIRE(repo.replace(renewed, nf));
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::key).value() == *nf.key_pem);

    cert_record noted = renewed;
    noted.notes = "rewritten \"notes\" é";
    revoke_identity(noted, noted.created_at + 1h, revocation_reason::key_compromise);
    BOOST_REQUIRE(repo.write_metadata(noted));
    auto all = loaded(repo);
    BOOST_REQUIRE(all.size() == 1u);
    BOOST_TEST((all[0] == noted));
    BOOST_TEST(repo.read_file(rec.usage, rec.identifier, file_kind::cert).value() == nf.cert_pem);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(identifiers_are_unique_across_usages, B, backends) {
    B b;
    auto& repo = b.repo();
    cert_record rec = make_record(7);
    rec.usage = cert_usage::vpn;
    BOOST_REQUIRE(repo.create(rec, files_of(rec)));
    cert_record other = make_record(8);
    other.identifier = rec.identifier;
    other.usage = cert_usage::other;
    auto dup = repo.create(other, files_of(other));
    BOOST_REQUIRE(!dup);
    BOOST_TEST(code(dup) == ec(errc::already_exists));
    dup = repo.create(rec, files_of(rec)); // same usage too
    BOOST_TEST(code(dup) == ec(errc::already_exists));
    auto all = loaded(repo);
    BOOST_REQUIRE(all.size() == 1u);
    BOOST_TEST((all[0] == rec));
    BOOST_TEST(code(repo.read_file(cert_usage::other, rec.identifier, file_kind::cert)) == ec(errc::not_found));
    BOOST_TEST(!repo.problem());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(absent_things_are_not_found, B, backends) {
    B b;
    auto& repo = b.repo();
    cert_record rec = make_record(1); // no key (CSR-issued)
    BOOST_REQUIRE(!rec.has_private_key);
    BOOST_TEST(code(repo.read_file(rec.usage, "nobody", file_kind::cert)) == ec(errc::not_found));
    BOOST_TEST(code(repo.replace(rec, files_of(rec))) == ec(errc::not_found));
    BOOST_TEST(code(repo.write_metadata(rec)) == ec(errc::not_found));
    BOOST_TEST(loaded(repo).empty()); // nothing was made by the failed calls
    BOOST_REQUIRE(repo.create(rec, files_of(rec)));
    BOOST_TEST(code(repo.read_file(rec.usage, rec.identifier, file_kind::key)) == ec(errc::not_found));
    BOOST_TEST(code(repo.read_file(rec.usage, rec.identifier, file_kind::csr)) == ec(errc::not_found));
    // Wrong usage: not found, and replace/write_metadata do not move it.
    cert_record moved = rec;
    moved.usage = rec.usage == cert_usage::vpn ? cert_usage::other : cert_usage::vpn;
    BOOST_TEST(code(repo.write_metadata(moved)) == ec(errc::not_found));
    BOOST_TEST(code(repo.replace(moved, files_of(moved))) == ec(errc::not_found));
    cert_record bad = rec;
    bad.identifier = "../etc";
    BOOST_TEST(code(repo.create(bad, files_of(bad))) == ec(errc::invalid_identifier));
    BOOST_TEST(code(repo.read_file(rec.usage, "../etc", file_kind::cert)) == ec(errc::invalid_identifier));
    auto all = loaded(repo);
    BOOST_REQUIRE(all.size() == 1u);
    BOOST_TEST((all[0] == rec));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(load_all_gives_back_every_record, B, backends) {
    B b;
    auto& repo = b.repo();
    std::vector<cert_record> written;
    for (int i = 0; i < 300; ++i) {
        written.push_back(make_record(i));
        BOOST_REQUIRE_MESSAGE(repo.create(written.back(), files_of(written.back())), "create " << i);
    }
    std::sort(written.begin(), written.end(),
              [](const cert_record& x, const cert_record& y) { return x.identifier < y.identifier; });
    auto all = loaded(repo);
    BOOST_REQUIRE(all.size() == written.size());
    for (std::size_t i = 0; i < all.size(); ++i) BOOST_TEST_REQUIRE((all[i] == written[i]), "record " << i);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(crl_state_and_publication, B, backends) {
    B b;
    auto& repo = b.repo();
    auto zero = repo.load_crl_state();
    BOOST_REQUIRE(zero);
    BOOST_TEST(zero->crl_number == 0u);
    BOOST_TEST(!zero->this_update);
    BOOST_TEST(!repo.published_crl());

    const time_point t = test::sample_t0;
    BOOST_REQUIRE(repo.save_crl_state(crl_state{5, t, t + 24h}));
    auto s = repo.load_crl_state();
    BOOST_REQUIRE(s);
    BOOST_TEST(s->crl_number == 5u);
    BOOST_TEST((s->this_update == t));
    BOOST_TEST((s->next_update == t + 24h));

    BOOST_REQUIRE(repo.publish_crl(std::string("\x30\x82\x00\x01", 4), "-----BEGIN X509 CRL-----\nA\n"));
    auto p = repo.published_crl();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->first == std::string("\x30\x82\x00\x01", 4));
    BOOST_TEST(p->second == "-----BEGIN X509 CRL-----\nA\n");

    // The next CRL: at least `at_least`, kept with its validity and published.
    std::uint64_t asked = 0;
    auto crl = repo.publish_next_crl(6, 0, [&](std::uint64_t n) -> result<built_crl> {
        asked = n;
        return built_crl{"der" + std::to_string(n), "pem" + std::to_string(n), n, t + 1h, t + 25h};
    });
    BOOST_REQUIRE_MESSAGE(crl, (crl ? "" : crl.error().message));
    BOOST_TEST(asked == 6u);
    BOOST_TEST(crl->crl_number == 6u);
    s = repo.load_crl_state();
    BOOST_TEST(s->crl_number == 6u);
    BOOST_TEST((s->this_update == t + 1h));
    BOOST_TEST((s->next_update == t + 25h));
    p = repo.published_crl();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->first == "der6");
    BOOST_TEST(p->second == "pem6");

    // A signing failure publishes nothing.
    auto failed = repo.publish_next_crl(
        7, 0, [](std::uint64_t) -> result<built_crl> { return make_error(errc::crypto_failure, "no"); });
    BOOST_TEST(code(failed) == ec(errc::crypto_failure));
    BOOST_TEST(repo.load_crl_state()->crl_number == 6u);
    BOOST_TEST(repo.published_crl()->first == "der6");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(ocsp_responder_sweep_record, B, backends) {
    B b;
    auto& repo = b.repo();
    BOOST_TEST(!repo.load_ocsp_responder());
    BOOST_REQUIRE(repo.save_ocsp_responder(fake_pem("CERTIFICATE", "r1"), fake_pem("PRIVATE KEY", "r1")));
    auto r = repo.load_ocsp_responder();
    BOOST_REQUIRE(r);
    BOOST_TEST(r->first == fake_pem("CERTIFICATE", "r1"));
    BOOST_TEST(r->second == fake_pem("PRIVATE KEY", "r1"));
    BOOST_REQUIRE(repo.save_ocsp_responder(fake_pem("CERTIFICATE", "r2"), fake_pem("PRIVATE KEY", "r2")));
    r = repo.load_ocsp_responder();
    BOOST_REQUIRE(r);
    BOOST_TEST(r->first == fake_pem("CERTIFICATE", "r2"));
    BOOST_TEST(r->second == fake_pem("PRIVATE KEY", "r2"));

    BOOST_TEST(!repo.load_last_sweep());
    renewal_summary s;
    s.started_at = test::sample_t0;
    s.finished_at = test::sample_t0 + 3s;
    s.candidates = 3;
    s.renewed = 2;
    s.failed = 1;
    s.outcomes = {{"alice", true, "123", ""}, {"bob", false, "", "no key"}};
    BOOST_REQUIRE(repo.save_last_sweep(s));
    s.renewed = 3;
    BOOST_REQUIRE(repo.save_last_sweep(s)); // replaced
    auto got = repo.load_last_sweep();
    BOOST_REQUIRE(got);
    BOOST_TEST((got->started_at == s.started_at));
    BOOST_TEST((got->finished_at == s.finished_at));
    BOOST_TEST(got->candidates == 3u);
    BOOST_TEST(got->renewed == 3u);
    BOOST_TEST(got->failed == 1u);
    BOOST_REQUIRE(got->outcomes.size() == 2u);
    BOOST_TEST(got->outcomes[1].identifier == "bob");
    BOOST_TEST(got->outcomes[1].error == "no key");
    BOOST_TEST(got->outcomes[0].new_serial == "123");
    BOOST_TEST(!repo.io_error());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(jobs_and_their_inputs, B, backends) {
    B b;
    auto& repo = b.repo();
    BOOST_TEST(repo.load_jobs().empty());
    const std::string a = "job-00000000000000aa", c = "job-00000000000000cc";
    job_input in;
    in.identifiers = {"alice", "bob", "carol"};
    BOOST_REQUIRE(repo.save_job_input(a, in));
    BOOST_REQUIRE(repo.save_job(sample_job(a, 5)));
    BOOST_REQUIRE(repo.save_job(sample_job(c, 1))); // older: listed first
    job_record progressed = sample_job(a, 5);
    progressed.outcomes = "oxo";
    progressed.state = job_state::succeeded;
    progressed.finished_at = progressed.created_at + 1min;
    BOOST_REQUIRE(repo.save_job(progressed)); // replaced
    BOOST_TEST(code(repo.save_job(sample_job("../x", 1))) == ec(errc::invalid_argument));

    auto got = repo.load_job_input(a);
    BOOST_REQUIRE(got);
    BOOST_TEST(got->identifiers == in.identifiers);
    BOOST_TEST(code(repo.load_job_input(c)) == ec(errc::not_found));
    auto jobs = repo.load_jobs();
    BOOST_REQUIRE(jobs.size() == 2u);
    BOOST_TEST(jobs[0].id == c);
    BOOST_TEST(jobs[1].id == a);
    BOOST_TEST(jobs[1].outcomes == "oxo");
    BOOST_TEST(to_string(jobs[1].state) == "succeeded");
    BOOST_REQUIRE(jobs[1].errors.size() == 1u);
    BOOST_TEST(jobs[1].errors[0].identifier == "bob");

    BOOST_REQUIRE(repo.remove_job(a));
    jobs = repo.load_jobs();
    BOOST_REQUIRE(jobs.size() == 1u);
    BOOST_TEST(jobs[0].id == c);
    BOOST_TEST(code(repo.load_job_input(a)) == ec(errc::not_found));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(key_wrapping)

BOOST_AUTO_TEST_CASE(sealed_keys_open_only_unaltered_under_their_kek_and_owner) {
    auto kek = random_kek();
    const std::string key = fake_pem("PRIVATE KEY", "alice");
    auto blob = kek.seal(key, "alice");
    BOOST_REQUIRE(blob);
    BOOST_TEST(blob->size() == 1 + 12 + key.size() + 16);
    BOOST_TEST(blob->find("PRIVATE KEY") == std::string::npos);
    BOOST_TEST(kek.open(*blob, "alice").value() == key);
    // A fresh nonce each time.
    BOOST_TEST(*kek.seal(key, "alice") != *blob);
    // Every single-bit flip is caught (version, nonce, ciphertext, tag).
    for (std::size_t i = 0; i < blob->size(); ++i) {
        std::string t = *blob;
        t[i] = static_cast<char>(t[i] ^ 0x01);
        BOOST_TEST_REQUIRE(!kek.open(t, "alice"), "byte " << i);
    }
    BOOST_TEST(code(kek.open(*blob, "bob")) == ec(errc::crypto_failure)); // moved to another row
    BOOST_TEST(code(random_kek().open(*blob, "alice")) == ec(errc::crypto_failure));
    BOOST_TEST(!kek.open(blob->substr(0, 20), "alice"));
}

BOOST_AUTO_TEST_CASE(the_kek_file_must_be_private_and_32_bytes) {
    test::temp_dir d;
    auto write = [&](const std::string& name, const std::string& data, mode_t mode) {
        const auto p = d / name;
        std::ofstream(p, std::ios::binary) << data;
        ::chmod(p.c_str(), mode);
        return p;
    };
    const std::string raw(32, '\x5a');
    const std::string hex = std::string(64, 'a');
    auto a = key_wrap::from_file(write("raw", raw, 0600));
    auto h = key_wrap::from_file(write("hex", hex + "\n", 0400));
    BOOST_REQUIRE(a);
    BOOST_REQUIRE(h);
    // The same key either way: 0x5a... vs 0xaa... differ, so check each opens its own only.
    auto blob = a->seal("k", "id");
    BOOST_TEST(a->open(*blob, "id").value() == "k");
    BOOST_TEST(!h->open(*blob, "id"));
    auto same = key_wrap::from_file(write("hex2", std::string(64, '5').replace(1, 1, "a"), 0600));
    BOOST_REQUIRE(same);

    auto loose = key_wrap::from_file(write("loose", raw, 0640));
    BOOST_REQUIRE(!loose);
    BOOST_TEST(loose.error().message.find("group or others") != std::string::npos);
    BOOST_TEST(!key_wrap::from_file(write("world", raw, 0604)));
    BOOST_TEST(!key_wrap::from_file(write("short", raw.substr(1), 0600)));
    BOOST_TEST(!key_wrap::from_file(write("long", raw + "x", 0600)));
    BOOST_TEST(!key_wrap::from_file(write("badhex", std::string(63, 'a') + "g", 0600)));
    BOOST_TEST(!key_wrap::from_file(d / "missing"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(postgresql)

BOOST_AUTO_TEST_CASE(keys_are_not_stored_in_clear) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto s = open_pg(db, kek, "A");
    cert_record rec = make_record(0);
    BOOST_REQUIRE(rec.has_private_key);
    const auto f = files_of(rec);
    BOOST_REQUIRE(s->create(rec, f));
    BOOST_REQUIRE(s->save_ocsp_responder("cert", fake_pem("PRIVATE KEY", "responder")));
    auto& pg = test::shared_pg_cluster();
    const std::string dbname =
        db.substr(db.find("dbname=") + 7, db.find(' ', db.find("dbname=")) - db.find("dbname=") - 7);
    auto out = pg.psql(dbname, "SELECT count(*) FROM certificates WHERE key_wrapped IS NOT NULL AND "
                               "position(convert_to('PRIVATE KEY', 'UTF8') IN key_wrapped) = 0");
    BOOST_TEST(trim(out) == "1");
    out = pg.psql(dbname, "SELECT count(*) FROM certificates WHERE key_wrapped::text LIKE '%PRIVATE%' "
                          "OR encode(key_wrapped, 'escape') LIKE '%PRIVATE KEY%'");
    BOOST_TEST(trim(out) == "0");
    out = pg.psql(dbname, "SELECT count(*) FROM ocsp_responder WHERE encode(key_wrapped, 'escape') LIKE '%PRIVATE%'");
    BOOST_TEST(trim(out) == "0");
    BOOST_TEST(s->read_file(rec.usage, rec.identifier, file_kind::key).value() == *f.key_pem);
    // Another KEK cannot read them; a key moved to another row does not open either.
    auto other = open_pg(db, random_kek(), "B");
    BOOST_TEST(code(other->read_file(rec.usage, rec.identifier, file_kind::key)) == ec(errc::crypto_failure));
    BOOST_TEST(!other->load_ocsp_responder());
    cert_record second = make_record(3);
    BOOST_REQUIRE(second.has_private_key);
    BOOST_REQUIRE(s->create(second, files_of(second)));
    pg.psql(dbname, "UPDATE certificates SET key_wrapped = (SELECT key_wrapped FROM certificates WHERE identifier = '" +
                        rec.identifier + "') WHERE identifier = '" + second.identifier + "'");
    BOOST_TEST(code(s->read_file(second.usage, second.identifier, file_kind::key)) == ec(errc::crypto_failure));
}

BOOST_AUTO_TEST_CASE(serials_are_unique_and_a_failed_create_leaves_nothing) {
    auto db = test::shared_pg_cluster().create_database();
    auto s = open_pg(db, random_kek(), "A");
    cert_record a = make_record(0), b = make_record(3);
    b.serial_number = a.serial_number;
    BOOST_REQUIRE(s->create(a, files_of(a)));
    auto dup = s->create(b, files_of(b));
    BOOST_REQUIRE(!dup);
    BOOST_TEST(code(dup) == ec(errc::already_exists));
    BOOST_TEST(dup.error().field == "serial_number");
    auto all = loaded(*s);
    BOOST_REQUIRE(all.size() == 1u); // b was not made, nor its key
    BOOST_TEST(code(s->read_file(b.usage, b.identifier, file_kind::cert)) == ec(errc::not_found));
    // A renewal may not take another identifier's serial either; the old state stays.
    b.serial_number = "777";
    BOOST_REQUIRE(s->create(b, files_of(b)));
    cert_record renewed = b;
    renewed.serial_number = a.serial_number;
    BOOST_TEST(code(s->replace(renewed, files_of(renewed))) == ec(errc::already_exists));
    all = loaded(*s);
    BOOST_REQUIRE(all.size() == 2u);
    for (const auto& r : all)
        if (r.identifier == b.identifier) BOOST_TEST(r.serial_number == "777");
    // Keeping its own serials in history is fine.
    renewed = b;
    renewed.history.push_back({"777", b.not_before, b.expires_at, b.fingerprint_sha256, b.created_at, false, {}, {}});
    renewed.serial_number = "778";
    BOOST_REQUIRE(s->replace(renewed, files_of(renewed)));
}

BOOST_AUTO_TEST_CASE(migrations_are_idempotent_concurrent_and_refuse_a_newer_schema) {
    auto db = test::shared_pg_cluster().create_database();
    std::vector<std::future<result<int>>> runs;
    for (int i = 0; i < 4; ++i)
        runs.push_back(std::async(std::launch::async, [&] {
            auto c = pg::connection::open(db);
            if (!c) return result<int>(c.error());
            return pg_schema::migrate(*c);
        }));
    for (auto& r : runs) {
        auto v = r.get();
        BOOST_REQUIRE_MESSAGE(v, (v ? "" : v.error().message));
        BOOST_TEST(*v == pg_schema::latest_version());
    }
    auto c = pg::connection::open(db);
    BOOST_REQUIRE(c);
    auto n = c->exec("SELECT count(*) FROM schema_migrations");
    BOOST_TEST(n->int64(0, 0) == pg_schema::latest_version());
    BOOST_REQUIRE(c->exec("INSERT INTO schema_migrations (version, description) VALUES (99, 'from the future')"));
    auto refused = pg_schema::migrate(*c);
    BOOST_REQUIRE(!refused);
    BOOST_TEST(refused.error().message.find("newer than this binary") != std::string::npos, refused.error().message);
    BOOST_TEST(pg_schema::current_version(*c).value() == 99);
}

BOOST_AUTO_TEST_CASE(the_migrations_include_the_audit_log_table) {
    auto db = test::shared_pg_cluster().create_database();
    auto c = pg::connection::open(db);
    BOOST_REQUIRE(c);
    BOOST_REQUIRE(pg_schema::migrate(*c));
    auto r = c->exec("SELECT to_regclass('audit_log') IS NOT NULL, to_regclass('changes_pruned') IS NOT NULL");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->boolean(0, 0));
    BOOST_TEST(r->boolean(0, 1));
    BOOST_TEST(bool(storage::pg_audit::ensure_schema(*c))); // still fine after the migrations
}

BOOST_AUTO_TEST_CASE(a_file_store_imported_and_exported_again_is_the_same) {
    // core/store_copy through both ports: fs -> PostgreSQL -> fs (`certmate db import|export`).
    test::temp_dir a, b;
    std::filesystem::create_directories(a / "data/certs/ca");
    std::filesystem::create_directories(b / "data/certs/ca");
    fs_store from(layout{a / "data"}), back(layout{b / "data"});
    for (int i = 0; i < 60; ++i) {
        auto r = make_record(i);
        BOOST_REQUIRE(from.create(r, files_of(r)));
    }
    BOOST_REQUIRE(from.save_crl_state(crl_state{9, test::sample_t0, test::sample_t0 + 24h}));
    BOOST_REQUIRE(from.publish_crl("DER9", "PEM9"));
    BOOST_REQUIRE(from.save_ocsp_responder("RESPONDER CERT", "RESPONDER KEY"));
    auto db = test::shared_pg_cluster().create_database();
    auto pg = open_pg(db, random_kek(), "import");
    auto in = copy_store(from, *pg, 2);
    BOOST_REQUIRE_MESSAGE(in, (in ? "" : in.error().message));
    BOOST_TEST(in->copied == 60u);
    auto again = copy_store(from, *pg, 2); // idempotent
    BOOST_REQUIRE_MESSAGE(again, (again ? "" : again.error().message));
    BOOST_TEST(again->already == 60u);
    BOOST_TEST(again->copied == 0u);
    auto out = copy_store(*pg, back, 2);
    BOOST_REQUIRE_MESSAGE(out, (out ? "" : out.error().message));
    BOOST_TEST(out->copied == 60u);
    BOOST_TEST(out->crl_number == 9u);
    auto x = loaded(from), y = loaded(back);
    BOOST_REQUIRE(x.size() == y.size());
    BOOST_TEST((x == y));
    for (const auto& r : x)
        for (auto k : {file_kind::cert, file_kind::key, file_kind::csr}) {
            auto f1 = from.read_file(r.usage, r.identifier, k), f2 = back.read_file(r.usage, r.identifier, k);
            BOOST_TEST_REQUIRE(bool(f1) == bool(f2), r.identifier);
            if (f1) BOOST_TEST_REQUIRE(*f1 == *f2, r.identifier);
        }
    BOOST_TEST(back.published_crl()->first == "DER9");
    BOOST_TEST(back.load_ocsp_responder()->second == "RESPONDER KEY");
}

BOOST_AUTO_TEST_CASE(a_change_on_one_instance_reaches_the_other_within_a_second) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    BOOST_REQUIRE(b->load_all(1));
    std::mutex mu;
    std::condition_variable cv;
    std::vector<store_change> got;
    b->watch_changes([&](std::vector<store_change> batch) {
        std::lock_guard lk(mu);
        for (auto& c : batch) got.push_back(std::move(c));
        cv.notify_all();
    });
    std::vector<store_change> mine; // A's own changes are not delivered to A
    a->watch_changes([&](std::vector<store_change> batch) {
        std::lock_guard lk(mu);
        for (auto& c : batch) mine.push_back(std::move(c));
    });
    std::this_thread::sleep_for(200ms); // both are listening

    auto wait_for = [&](std::size_t n) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, 1s, [&] { return got.size() >= n; });
    };
    cert_record rec = make_record(4);
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_REQUIRE(a->create(rec, files_of(rec)));
    BOOST_REQUIRE_MESSAGE(wait_for(1), "no change delivered to B within 1 s");
    const auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    BOOST_TEST_MESSAGE("change delivered to the other instance in " << lag.count() << " ms");
    {
        std::lock_guard lk(mu);
        BOOST_REQUIRE(got[0].record);
        BOOST_TEST((*got[0].record == rec));
        BOOST_TEST(!got[0].crl_published);
        BOOST_TEST(got[0].seq > 0u);
    }
    // A revocation, then a CRL: delivered in sequence order.
    cert_record revoked = rec;
    revoke_identity(revoked, rec.created_at + 2h, revocation_reason::key_compromise);
    BOOST_REQUIRE(a->write_metadata(revoked));
    BOOST_REQUIRE(a->publish_crl("der", "pem"));
    BOOST_REQUIRE_MESSAGE(wait_for(3), "the revocation and CRL did not reach B within 1 s");
    {
        std::lock_guard lk(mu);
        BOOST_TEST(got[1].seq > got[0].seq);
        BOOST_TEST(got[2].seq > got[1].seq);
        BOOST_REQUIRE(got[1].record);
        BOOST_TEST(got[1].record->revocation.revoked);
        BOOST_TEST(got[2].crl_published);
        BOOST_TEST(mine.empty());
    }
    // watched_seq moves on once the batch's delivery returned.
    for (int i = 0; i < 100 && b->watched_seq() != got[2].seq; ++i) std::this_thread::sleep_for(10ms);
    BOOST_TEST(b->watched_seq() == got[2].seq);
}

BOOST_AUTO_TEST_CASE(a_certificate_changed_by_another_instance_unseen_here_is_a_conflict) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    cert_record rec = make_record(6);
    BOOST_REQUIRE(a->create(rec, files_of(rec)));
    BOOST_REQUIRE(b->load_all(1)); // B has seen the create
    // A changes it; B, not told yet (no watch running), changes it too: refused, A's change kept.
    cert_record by_a = rec;
    by_a.notes = "renewed at A";
    BOOST_REQUIRE(a->write_metadata(by_a));
    cert_record by_b = rec;
    by_b.notes = "renewed at B";
    auto lost = b->replace(by_b, files_of(by_b));
    BOOST_REQUIRE(!lost);
    BOOST_TEST(static_cast<int>(lost.error().code) == static_cast<int>(errc::conflict));
    auto meta = b->write_metadata(by_b);
    BOOST_REQUIRE(!meta);
    BOOST_TEST(static_cast<int>(meta.error().code) == static_cast<int>(errc::conflict));
    for (const auto& r : loaded(*a))
        if (r.identifier == rec.identifier) BOOST_TEST(r.notes == "renewed at A");
    // Once A's change is delivered to B, B may change it; A's own later writes need no delivery.
    std::atomic<bool> delivered{false};
    b->watch_changes([&](std::vector<store_change>) { delivered = true; });
    for (int i = 0; i < 100 && !delivered; ++i) std::this_thread::sleep_for(10ms);
    BOOST_REQUIRE(delivered.load());
    BOOST_REQUIRE(b->write_metadata(by_b));
    BOOST_REQUIRE(b->write_metadata(by_b)); // its own write: no delivery needed
    // An identifier nobody has is still not_found.
    cert_record ghost = make_record(7);
    auto nf = b->write_metadata(ghost);
    BOOST_REQUIRE(!nf);
    BOOST_TEST(static_cast<int>(nf.error().code) == static_cast<int>(errc::not_found));
}

BOOST_AUTO_TEST_CASE(an_instance_behind_pruned_changes_catches_up_from_the_certificates) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    BOOST_REQUIRE(b->load_all(1)); // B at change 0, not watching yet (away)
    cert_record mine = make_record(9);
    BOOST_REQUIRE(b->create(mine, files_of(mine))); // B's own: not delivered back to it
    std::vector<cert_record> theirs;
    for (int i = 10; i < 15; ++i) {
        theirs.push_back(make_record(i));
        BOOST_REQUIRE(a->create(theirs.back(), files_of(theirs.back())));
    }
    cert_record revoked = theirs[0];
    revoke_identity(revoked, revoked.created_at + 1h, revocation_reason::superseded);
    BOOST_REQUIRE(a->write_metadata(revoked));
    theirs[0] = revoked;
    auto pruned = a->prune_changes(0s);
    BOOST_REQUIRE(pruned);
    BOOST_TEST(*pruned == 6u); // all but the newest
    BOOST_TEST(a->load_all(1)->change_seq == 7u);

    std::mutex mu;
    std::condition_variable cv;
    std::vector<store_change> got;
    b->watch_changes([&](std::vector<store_change> batch) {
        std::lock_guard lk(mu);
        for (auto& c : batch) got.push_back(std::move(c));
        cv.notify_all();
    });
    std::unique_lock lk(mu);
    BOOST_REQUIRE(cv.wait_for(lk, 2s, [&] { return got.size() >= 6; }));
    // Each of A's certificates once, in its newest state; then the CRL marker.
    BOOST_REQUIRE(got.size() == 6u);
    std::vector<cert_record> recs;
    for (std::size_t i = 0; i < 5; ++i) {
        BOOST_REQUIRE(got[i].record);
        recs.push_back(*got[i].record);
        if (i) BOOST_TEST(got[i].seq > got[i - 1].seq);
    }
    auto by_id = [](const cert_record& x, const cert_record& y) { return x.identifier < y.identifier; };
    std::sort(recs.begin(), recs.end(), by_id);
    std::sort(theirs.begin(), theirs.end(), by_id);
    BOOST_TEST((recs == theirs));
    BOOST_TEST(got[5].crl_published);
    BOOST_TEST(got[5].seq == 7u);
    lk.unlock();
    // Afterwards the change log again.
    cert_record next = make_record(20);
    BOOST_REQUIRE(a->create(next, files_of(next)));
    lk.lock();
    BOOST_REQUIRE(cv.wait_for(lk, 2s, [&] { return got.size() >= 7; }));
    BOOST_TEST(got[6].record->identifier == next.identifier);
    BOOST_TEST(got[6].seq == 8u);
}

BOOST_AUTO_TEST_CASE(crl_numbers_only_grow_and_a_stale_instance_gets_a_conflict) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    auto la = a->load_all(1);
    auto lb = b->load_all(1);
    BOOST_REQUIRE(la && lb);
    auto signer = [](std::uint64_t n) -> result<built_crl> {
        return built_crl{"der" + std::to_string(n), "pem" + std::to_string(n), n, test::sample_t0,
                         test::sample_t0 + 1h};
    };
    std::uint64_t last = 0;
    auto publish = [&](pg_store& s, std::uint64_t at_least, std::uint64_t applied) {
        auto c = s.publish_next_crl(at_least, applied, signer);
        BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
        BOOST_TEST(c->crl_number > last);
        last = c->crl_number;
    };
    publish(*a, 1, la->change_seq);
    BOOST_TEST(last == 1u);
    // B's own view says 1 too: the store gives it 2. Each instance's own CRL is no change it misses.
    publish(*b, 1, lb->change_seq + 1); // (A's CRL counts as applied by B here)
    BOOST_TEST(last == 2u);
    publish(*a, 10, la->change_seq + 2);
    BOOST_TEST(last == 10u);

    // A commits a certificate B has not applied: B's CRL would miss it.
    cert_record rec = make_record(5);
    BOOST_REQUIRE(a->create(rec, files_of(rec)));
    auto stale = b->publish_next_crl(1, lb->change_seq + 3, signer);
    BOOST_REQUIRE(!stale);
    BOOST_TEST(code(stale) == ec(errc::conflict));
    BOOST_TEST(b->published_crl()->first == "der10"); // nothing published
    BOOST_TEST(b->load_crl_state()->crl_number == 10u);
    // Caught up (through load_all here), B publishes 11.
    auto again = b->load_all(1);
    BOOST_REQUIRE(again);
    publish(*b, 1, again->change_seq);
    BOOST_TEST(last == 11u);
    BOOST_TEST(a->published_crl()->first == "der11"); // every instance serves the newest

    // Concurrent publishers take turns on the row lock: numbers stay distinct.
    std::vector<std::future<std::uint64_t>> runs;
    for (int i = 0; i < 6; ++i)
        runs.push_back(std::async(std::launch::async, [&, i] {
            auto& s = i % 2 ? *a : *b;
            auto c = s.publish_next_crl(1, ~std::uint64_t(0) >> 1, signer);
            return c ? c->crl_number : 0;
        }));
    std::vector<std::uint64_t> nums;
    for (auto& r : runs) nums.push_back(r.get());
    std::sort(nums.begin(), nums.end());
    BOOST_TEST(nums.front() == 12u);
    BOOST_TEST(nums.back() == 17u);
    BOOST_TEST((std::adjacent_find(nums.begin(), nums.end()) == nums.end()));
}

BOOST_AUTO_TEST_CASE(one_instance_leads_a_task_at_a_time) {
    auto db = test::shared_pg_cluster().create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    auto la = a->try_lead("sweep");
    BOOST_REQUIRE(la);
    BOOST_REQUIRE(*la);
    auto lb = b->try_lead("sweep");
    BOOST_REQUIRE(lb);
    BOOST_TEST(!*lb); // A holds it
    auto other = b->try_lead("crl-refresh");
    BOOST_REQUIRE(other);
    BOOST_TEST(bool(*other)); // another task is free
    la->reset();
    lb = b->try_lead("sweep");
    BOOST_REQUIRE(lb);
    BOOST_TEST(bool(*lb));
    BOOST_TEST(!*a->try_lead("sweep"));
}

BOOST_AUTO_TEST_CASE(the_database_away_gives_storage_unavailable_and_back_it_works_again) {
    auto& cluster = test::shared_pg_cluster();
    auto db = cluster.create_database();
    auto kek = random_kek();
    auto a = open_pg(db, kek, "A");
    auto b = open_pg(db, kek, "B");
    BOOST_REQUIRE(b->load_all(1));
    std::mutex mu;
    std::condition_variable cv;
    std::vector<store_change> got;
    b->watch_changes([&](std::vector<store_change> batch) {
        std::lock_guard lk(mu);
        for (auto& c : batch) got.push_back(std::move(c));
        cv.notify_all();
    });
    cert_record r0 = make_record(0);
    BOOST_REQUIRE(a->create(r0, files_of(r0)));
    BOOST_TEST(!a->problem());

    cluster.stop();
    cert_record r1 = make_record(3);
    auto down = a->create(r1, files_of(r1));
    BOOST_REQUIRE(!down);
    BOOST_TEST(code(down) == ec(errc::storage_unavailable), down.error().message);
    auto p = a->problem();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->starts_with("database unreachable"), *p);
    BOOST_TEST(code(a->load_all(1)) == ec(errc::storage_unavailable));
    BOOST_TEST(code(a->read_file(r0.usage, r0.identifier, file_kind::cert)) == ec(errc::storage_unavailable));
    BOOST_TEST(code(a->try_lead("sweep")) == ec(errc::storage_unavailable));
    std::this_thread::sleep_for(1500ms); // the watch thread notices and retries
    // B made no call: its watch thread saw the database go.
    auto pb = b->problem();
    BOOST_REQUIRE(pb);
    BOOST_TEST(pb->starts_with("database unreachable"), *pb);
    cluster.start();

    // The same store, no reconnect by hand.
    auto up = a->create(r1, files_of(r1));
    BOOST_REQUIRE_MESSAGE(up, (up ? "" : up.error().message));
    BOOST_TEST(!a->problem());
    BOOST_TEST(loaded(*a).size() == 2u);
    // B's watch reconnects and catches up with both creates (one before, one after the outage).
    std::unique_lock lk(mu);
    BOOST_TEST(cv.wait_for(lk, 10s, [&] { return got.size() >= 2; }), "B did not catch up after the outage");
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].record->identifier == r0.identifier);
    BOOST_TEST(got[1].record->identifier == r1.identifier);
    BOOST_TEST(!b->problem()); // the watch thread is connected again
}

BOOST_AUTO_TEST_CASE(thirty_thousand_certificates_load_fast) {
    auto db = test::shared_pg_cluster().create_database();
    auto s = open_pg(db, random_kek(), "A");
    constexpr int n = 30000;
    // Written over 4 connections (the write path is not what is measured here).
    const auto w0 = std::chrono::steady_clock::now();
    std::vector<std::future<int>> writers;
    for (int t = 0; t < 4; ++t)
        writers.push_back(std::async(std::launch::async, [&, t] {
            int failed = 0;
            for (int i = t; i < n; i += 4) {
                auto r = make_record(i);
                if (!s->create(r, files_of(r))) ++failed;
            }
            return failed;
        }));
    int failed = 0;
    for (auto& w : writers) failed += w.get();
    BOOST_REQUIRE(failed == 0);
    const auto wrote = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - w0);
    BOOST_TEST_MESSAGE("pg_store: " << n << " creates in " << wrote.count() << " ms ("
                                    << n * 1000 / std::max<long>(1, wrote.count()) << "/s over 4 connections)");

    for (unsigned threads : {1u, 2u}) {
        const auto t0 = std::chrono::steady_clock::now();
        auto rep = s->load_all(threads);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        BOOST_REQUIRE(rep);
        BOOST_TEST(rep->records.size() == static_cast<std::size_t>(n));
        BOOST_TEST(rep->skipped.empty());
        BOOST_TEST(rep->change_seq >= static_cast<std::uint64_t>(n));
        BOOST_TEST_MESSAGE("pg_store: load_all of " << n << " certificates in " << ms << " ms (" << threads
                                                    << " threads)");
        BOOST_TEST(ms < 5000);
        BOOST_TEST((rep->records[0] == make_record(0)) == (rep->records[0].identifier == make_record(0).identifier));
    }
}

BOOST_AUTO_TEST_SUITE_END()
