// Storage: atomic files, fs_store (layout, crash safety, parallel load), and the service over the
// filesystem store (what survives a restart, file modes, the CA key on disk, CA backup and restore).
// The metadata JSON and the index have their own suites (test_cert_json, test_cert_index).
#define BOOST_TEST_MODULE storage
#include <boost/test/unit_test.hpp>

#include "app/bootstrap.hpp"
#include "app/config.hpp"
#include "core/service.hpp"
#include "storage/audit_log.hpp"
#include "storage/ca_files.hpp"
#include "storage/layout.hpp"
#include "core/cert_json.hpp"
#include "storage/atomic_file.hpp"
#include "core/cert_index.hpp"
#include "core/record_codec.hpp"
#include "core/tar.hpp"
#include "storage/fs_store.hpp"
#include "support/print.hpp"
#include "support/sample_records.hpp"
#include "support/service_steps.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <cctype>
#include <map>
#include <set>

using namespace certmate;
using namespace certmate::storage;
using namespace std::chrono_literals;

namespace {

using certmate::test::make_record;
using certmate::test::temp_dir;

// Restores the process umask on scope exit.
struct umask_guard {
    mode_t old;
    explicit umask_guard(mode_t m) : old(::umask(m)) {}
    ~umask_guard() { ::umask(old); }
};

const time_point t0 = test::sample_t0;

std::string fake_pem(std::string_view kind, std::string_view who) {
    return "-----BEGIN " + std::string(kind) + "-----\nMII" + std::string(who) + "AAAA\n-----END " + std::string(kind) +
           "-----\n";
}

cert_files make_files(const cert_record& r) {
    cert_files f;
    f.cert_pem = fake_pem("CERTIFICATE", r.identifier + r.serial_number);
    if (r.has_private_key) f.key_pem = fake_pem("PRIVATE KEY", r.identifier);
    if (r.identifier.back() % 2 == 0) f.csr_pem = fake_pem("CERTIFICATE REQUEST", r.identifier);
    return f;
}

layout layout_at(const temp_dir& d) { return layout{d / "data"}; }

// Every entry (recursively) below the client directory, as relative paths.
std::set<std::string> tree(const layout& l) {
    std::set<std::string> out;
    std::error_code ec;
    if (!fs::exists(l.client_dir())) return out;
    for (auto it = fs::recursive_directory_iterator(l.client_dir(), ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
        out.insert(fs::relative(it->path(), l.client_dir()).string());
    return out;
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

BOOST_AUTO_TEST_SUITE(atomic_file_suite)

BOOST_AUTO_TEST_CASE(modes_are_exact_whatever_the_umask) {
    temp_dir d;
    {
        umask_guard g(0); // a permissive umask must not widen a key
        BOOST_REQUIRE(write_file_atomic(d / "k.key", "secret", fs::perms(0600)).has_value());
        BOOST_TEST(mode_of(d / "k.key") == 0600u);
        BOOST_REQUIRE(write_file_synced(d / "k2.key", "secret", fs::perms(0600)).has_value());
        BOOST_TEST(mode_of(d / "k2.key") == 0600u);
    }
    {
        umask_guard g(077); // nor a strict one narrow a public file
        BOOST_REQUIRE(write_file_atomic(d / "c.crt", "public", fs::perms(0644)).has_value());
        BOOST_TEST(mode_of(d / "c.crt") == 0644u);
        BOOST_REQUIRE(ensure_dir(d / "a" / "b", fs::perms(0750)).has_value());
        BOOST_TEST(mode_of(d / "a" / "b") == 0750u);
    }
}

BOOST_AUTO_TEST_CASE(replaces_content_and_leaves_no_temp) {
    temp_dir d;
    const auto p = d / "state.json";
    BOOST_REQUIRE(write_file_atomic(p, "one").has_value());
    BOOST_REQUIRE(write_file_atomic(p, "two, longer").has_value());
    BOOST_TEST(*read_file(p) == "two, longer");
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(d.path())) ++n;
    BOOST_TEST(n == 1u);
    BOOST_TEST((read_file(d / "missing").error().code == errc::not_found));
    // write_file_synced never overwrites.
    BOOST_TEST(!write_file_synced(p, "x", fs::perms(0644)).has_value());
    BOOST_TEST(*read_file(p) == "two, longer");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fs_store_suite)

BOOST_AUTO_TEST_CASE(thousand_records_round_trip_through_load_all) {
    temp_dir d;
    const layout l = layout_at(d);
    std::vector<cert_record> written;
    {
        fs_store store(l);
        for (int i = 0; i < 1000; ++i) {
            written.push_back(make_record(i));
            auto r = store.create(written.back(), make_files(written.back()));
            BOOST_REQUIRE_MESSAGE(r.has_value(), "create " << i);
        }
    }
    fs_store fresh(l);
    auto rep = fresh.load_all(4);
    BOOST_REQUIRE(rep.has_value());
    BOOST_TEST(rep->skipped.empty());
    BOOST_TEST(rep->removed_leftovers.empty());
    std::sort(written.begin(), written.end(),
              [](const cert_record& a, const cert_record& b) { return a.identifier < b.identifier; });
    BOOST_REQUIRE_EQUAL(rep->records.size(), written.size());
    std::size_t equal = 0;
    for (std::size_t i = 0; i < written.size(); ++i) equal += rep->records[i] == written[i];
    BOOST_TEST(equal == written.size());

    // Files are where the Python CertMate puts them, with their content.
    for (int i : {0, 1, 2, 999}) {
        const cert_record r = make_record(i);
        const cert_files f = make_files(r);
        BOOST_TEST(fs::exists(l.cert_dir(r.usage, r.identifier) / "metadata.json"));
        BOOST_TEST(*fresh.read_file(r.usage, r.identifier, file_kind::cert) == f.cert_pem);
        auto key = fresh.read_file(r.usage, r.identifier, file_kind::key);
        if (f.key_pem)
            BOOST_TEST(*key == *f.key_pem);
        else
            BOOST_TEST((key.error().code == errc::not_found));
        auto csr = fresh.read_file(r.usage, r.identifier, file_kind::csr);
        BOOST_TEST(csr.has_value() == f.csr_pem.has_value());
    }
    // One thread gives the same answer.
    auto rep1 = fs_store(l).load_all(1);
    BOOST_TEST((rep1->records == rep->records));
}

// The start-up snapshot (docs/architecture.md "Start-up snapshot") gives back exactly what the
// full scan reads; one saved after a write started is not kept.
BOOST_AUTO_TEST_CASE(the_snapshot_gives_back_every_record_the_full_scan_reads) {
    temp_dir dir;
    layout l{dir / "data"};
    fs_store store(l);
    for (int i = 0; i < 300; ++i) {
        const auto rec = make_record(i);
        BOOST_REQUIRE(store.create(rec, make_files(rec)).has_value());
    }
    auto scanned = fs_store(l).load_all(2);
    BOOST_REQUIRE(scanned.has_value());
    BOOST_TEST(!scanned->from_snapshot);
    BOOST_TEST(scanned->snapshot_problem == "missing");
    std::string encoded;
    for (const auto& r : scanned->records) append_framed_record(r, encoded);
    BOOST_TEST(*store.save_snapshot(encoded, scanned->records.size(), store.write_count() - 1) == false);
    BOOST_TEST(!fs::exists(l.index_snapshot()));
    BOOST_TEST(*store.save_snapshot(encoded, scanned->records.size(), store.write_count()) == true);

    auto fast = fs_store(l).load_all(2);
    BOOST_REQUIRE(fast.has_value());
    BOOST_TEST(fast->from_snapshot);
    BOOST_TEST(fast->replayed == 0u);
    BOOST_TEST((fast->records == scanned->records));

    // A write after it removes it before anything changes.
    auto changed = scanned->records.front();
    changed.notes = "changed";
    BOOST_REQUIRE(store.write_metadata(changed).has_value());
    BOOST_TEST(!fs::exists(l.index_snapshot()));
}

BOOST_AUTO_TEST_CASE(invalid_identifiers_are_rejected) {
    temp_dir d;
    const layout l = layout_at(d);
    fs_store store(l);
    const std::vector<std::string> bad{
        "../x", "a/b", "", std::string(65, 'a'), std::string("ab\0cd", 5), ".hidden", "..", "-lead", "sp ace"};
    for (const auto& id : bad) {
        cert_record r = make_record(1);
        r.identifier = id;
        auto c = store.create(r, make_files(make_record(1)));
        BOOST_REQUIRE(!c.has_value());
        BOOST_TEST((c.error().code == errc::invalid_identifier), "create accepted \"" << id << "\"");
        BOOST_TEST((store.replace(r, make_files(make_record(1))).error().code == errc::invalid_identifier));
        BOOST_TEST((store.write_metadata(r).error().code == errc::invalid_identifier));
        BOOST_TEST((store.read_file(r.usage, id, file_kind::key).error().code == errc::invalid_identifier));
    }
    BOOST_TEST(tree(l).size() <= 1u); // at most the usage directory itself
    cert_record ok = make_record(1);
    ok.identifier = std::string(64, 'a');
    BOOST_TEST(store.create(ok, make_files(make_record(1))).has_value());
}

BOOST_AUTO_TEST_CASE(identifier_is_unique_across_usages) {
    temp_dir d;
    fs_store store(layout_at(d));
    cert_record r = make_record(3);
    r.usage = cert_usage::api_mtls;
    BOOST_REQUIRE(store.create(r, make_files(r)).has_value());
    r.usage = cert_usage::vpn;
    auto again = store.create(r, make_files(r));
    BOOST_REQUIRE(!again.has_value());
    BOOST_TEST((again.error().code == errc::already_exists));
    r.usage = cert_usage::api_mtls;
    BOOST_TEST((store.create(r, make_files(r)).error().code == errc::already_exists));
    auto rep = store.load_all(2);
    BOOST_TEST(rep->records.size() == 1u);
    BOOST_TEST(rep->removed_leftovers.empty()); // a refused create leaves no temp dir
}

BOOST_AUTO_TEST_CASE(key_file_is_0600) {
    temp_dir d;
    const layout l = layout_at(d);
    fs_store store(l);
    umask_guard g(0);
    cert_record r = make_record(0);
    BOOST_REQUIRE(r.has_private_key);
    BOOST_REQUIRE(store.create(r, make_files(r)).has_value());
    BOOST_TEST(mode_of(l.cert_dir(r.usage, r.identifier) / "cert.key") == 0600u);
    BOOST_TEST((mode_of(l.cert_dir(r.usage, r.identifier) / "cert.crt") & 0077u) != 0600u);
    // A renewal that keeps the key keeps it 0600; a new key is 0600 too.
    cert_record r2 = r;
    r2.serial_number = "42";
    BOOST_REQUIRE(store.replace(r2, cert_files{fake_pem("CERTIFICATE", "v2"), std::nullopt, std::nullopt}).has_value());
    BOOST_TEST(mode_of(l.cert_dir(r.usage, r.identifier) / "cert.key") == 0600u);
    BOOST_REQUIRE(
        store.replace(r2, cert_files{fake_pem("CERTIFICATE", "v3"), fake_pem("PRIVATE KEY", "new"), std::nullopt})
            .has_value());
    BOOST_TEST(mode_of(l.cert_dir(r.usage, r.identifier) / "cert.key") == 0600u);
    BOOST_TEST(*store.read_file(r.usage, r.identifier, file_kind::key) == fake_pem("PRIVATE KEY", "new"));
}

BOOST_AUTO_TEST_CASE(replace_keeps_key_and_csr_unless_given) {
    temp_dir d;
    fs_store store(layout_at(d));
    cert_record r = make_record(0); // key and CSR
    const cert_files f = make_files(r);
    BOOST_REQUIRE(f.key_pem && f.csr_pem);
    BOOST_REQUIRE(store.create(r, f).has_value());
    cert_record r2 = r;
    r2.serial_number = "777";
    r2.history.push_back({r.serial_number, r.not_before, r.expires_at, r.fingerprint_sha256, t0 + 100h, false});
    BOOST_REQUIRE(
        store.replace(r2, cert_files{fake_pem("CERTIFICATE", "renewed"), std::nullopt, std::nullopt}).has_value());
    BOOST_TEST(*store.read_file(r.usage, r.identifier, file_kind::cert) == fake_pem("CERTIFICATE", "renewed"));
    BOOST_TEST(*store.read_file(r.usage, r.identifier, file_kind::key) == *f.key_pem);
    BOOST_TEST(*store.read_file(r.usage, r.identifier, file_kind::csr) == *f.csr_pem);
    auto rep = store.load_all(1);
    BOOST_REQUIRE(rep->records.size() == 1u);
    BOOST_TEST((rep->records[0] == r2));

    cert_record missing = make_record(5);
    BOOST_TEST((store.replace(missing, make_files(missing)).error().code == errc::not_found));
    BOOST_TEST((store.write_metadata(missing).error().code == errc::not_found));
}

BOOST_AUTO_TEST_CASE(write_metadata_persists) {
    temp_dir d;
    const layout l = layout_at(d);
    fs_store store(l);
    cert_record r = make_record(4);
    BOOST_REQUIRE(store.create(r, make_files(r)).has_value());
    r.revocation = {true, t0 + 48h, revocation_reason::key_compromise};
    r.notes = "revoked";
    BOOST_REQUIRE(store.write_metadata(r).has_value());
    auto rep = fs_store(l).load_all(2);
    BOOST_REQUIRE(rep->records.size() == 1u);
    BOOST_TEST((rep->records[0] == r));
}

BOOST_AUTO_TEST_CASE(crash_at_each_step_of_create) {
    const cert_record r = make_record(0); // with key and CSR: every step happens
    const cert_files f = make_files(r);
    std::vector<std::string> steps;
    {
        temp_dir d;
        fs_store store(layout_at(d));
        store.crash_hook = [&](std::string_view s) {
            steps.emplace_back(s);
            return true;
        };
        BOOST_REQUIRE(store.create(r, f).has_value());
    }
    BOOST_TEST_MESSAGE("create steps: " << steps.size());
    BOOST_REQUIRE(steps.size() >= 6u);
    const auto renamed = std::find(steps.begin(), steps.end(), "renamed");
    BOOST_REQUIRE(renamed != steps.end());

    for (auto it = steps.begin(); it != steps.end(); ++it) {
        const std::string step = *it;
        temp_dir d;
        const layout l = layout_at(d);
        {
            fs_store store(l);
            store.crash_hook = [&](std::string_view s) { return s != step; };
            auto c = store.create(r, f);
            BOOST_REQUIRE(!c.has_value());
            BOOST_TEST((c.error().code == errc::storage_failure));
        }
        fs_store after(l);
        auto rep = after.load_all(2);
        BOOST_REQUIRE(rep.has_value());
        BOOST_TEST(rep->skipped.empty(), "step " << step);
        if (it < renamed) {
            BOOST_TEST(rep->records.empty(), "crash at " << step << " loaded a certificate");
            BOOST_TEST(!rep->removed_leftovers.empty(), "crash at " << step << ": temp dir not reported");
            BOOST_TEST(tree(l).size() == 1u, "crash at " << step << ": leftovers remain"); // the usage dir only
            BOOST_TEST(after.create(r, f).has_value(), "create after crash at " << step);
        } else {
            BOOST_REQUIRE_MESSAGE(rep->records.size() == 1u, "crash at " << step << " lost the certificate");
            BOOST_TEST((rep->records[0] == r));
            BOOST_TEST(*after.read_file(r.usage, r.identifier, file_kind::cert) == f.cert_pem);
            BOOST_TEST(*after.read_file(r.usage, r.identifier, file_kind::key) == *f.key_pem);
            BOOST_TEST(*after.read_file(r.usage, r.identifier, file_kind::csr) == *f.csr_pem);
        }
    }
}

BOOST_AUTO_TEST_CASE(crash_at_each_step_of_replace) {
    const cert_record v1 = make_record(0);
    const cert_files f1 = make_files(v1);
    cert_record v2 = v1;
    v2.serial_number = "8888888888888888888888";
    v2.created_at = v1.created_at + 300 * 24h;
    v2.not_before = v2.created_at;
    v2.expires_at = v2.created_at + 365 * 24h;
    v2.history.push_back({v1.serial_number, v1.not_before, v1.expires_at, v1.fingerprint_sha256, v2.created_at, true});
    v2.renewal.last_renewed_at = v2.created_at;
    const cert_files f2{fake_pem("CERTIFICATE", "version-two"), std::nullopt, std::nullopt}; // keeps key and CSR

    std::vector<std::string> steps;
    {
        temp_dir d;
        fs_store store(layout_at(d));
        BOOST_REQUIRE(store.create(v1, f1).has_value());
        store.crash_hook = [&](std::string_view s) {
            steps.emplace_back(s);
            return true;
        };
        BOOST_REQUIRE(store.replace(v2, f2).has_value());
    }
    BOOST_TEST_MESSAGE("replace steps: " << steps.size());
    const auto swapped = std::find(steps.begin(), steps.end(), "old-renamed");
    BOOST_REQUIRE(swapped != steps.end());

    for (auto it = steps.begin(); it != steps.end(); ++it) {
        const std::string step = *it;
        temp_dir d;
        const layout l = layout_at(d);
        {
            fs_store store(l);
            BOOST_REQUIRE(store.create(v1, f1).has_value());
            store.crash_hook = [&](std::string_view s) { return s != step; };
            BOOST_REQUIRE(!store.replace(v2, f2).has_value());
        }
        fs_store after(l);
        auto rep = after.load_all(2);
        BOOST_REQUIRE(rep.has_value());
        BOOST_TEST(rep->skipped.empty(), "step " << step);
        BOOST_REQUIRE_MESSAGE(rep->records.size() == 1u, "crash at " << step << " lost the certificate");
        const bool want_new = it >= swapped;
        BOOST_TEST((rep->records[0] == (want_new ? v2 : v1)), "crash at " << step << ": wrong version");
        BOOST_TEST(*after.read_file(v1.usage, v1.identifier, file_kind::cert) == (want_new ? f2.cert_pem : f1.cert_pem),
                   "crash at " << step << ": cert.crt does not match metadata");
        BOOST_TEST(*after.read_file(v1.usage, v1.identifier, file_kind::key) == *f1.key_pem);
        BOOST_TEST(*after.read_file(v1.usage, v1.identifier, file_kind::csr) == *f1.csr_pem);
        // Exactly the certificate directory and its four files remain.
        BOOST_TEST(tree(l).size() == 6u, "crash at " << step << ": leftovers remain");
        // Loading again finds nothing more to repair.
        auto again = fs_store(l).load_all(1);
        BOOST_TEST(again->removed_leftovers.empty());
        BOOST_TEST((again->records == rep->records));
    }
}

BOOST_AUTO_TEST_CASE(load_all_skips_what_it_cannot_trust) {
    temp_dir d;
    const layout l = layout_at(d);
    fs_store store(l);
    cert_record good = make_record(0);
    good.usage = cert_usage::api_mtls;
    BOOST_REQUIRE(store.create(good, make_files(good)).has_value());

    auto mkcert = [&](cert_usage u, const std::string& name, const std::string& metadata) {
        const fs::path dir = l.usage_dir(u) / name;
        fs::create_directories(dir);
        BOOST_REQUIRE(write_file_atomic(dir / "cert.crt", "x").has_value());
        BOOST_REQUIRE(write_file_atomic(dir / "metadata.json", metadata).has_value());
    };
    mkcert(cert_usage::api_mtls, "broken", "{not json");
    cert_record other = make_record(1);
    other.usage = cert_usage::api_mtls;
    mkcert(cert_usage::api_mtls, "renamed-dir", boost::json::serialize(to_json(other))); // identifier mismatch
    other.identifier = "wrong-usage";
    other.usage = cert_usage::vpn;
    mkcert(cert_usage::other, "wrong-usage", boost::json::serialize(to_json(other)));
    mkcert(cert_usage::vpn, "bad name!", boost::json::serialize(to_json(good)));
    cert_record nokey = make_record(6);
    nokey.identifier = "no-key";
    nokey.usage = cert_usage::vpn;
    nokey.has_private_key = true;
    mkcert(cert_usage::vpn, "no-key", boost::json::serialize(to_json(nokey)));

    auto rep = fs_store(l).load_all(3);
    BOOST_REQUIRE(rep.has_value());
    BOOST_REQUIRE(rep->records.size() == 1u);
    BOOST_TEST((rep->records[0] == good));
    BOOST_TEST(rep->skipped.size() == 5u);
    for (const auto& s : rep->skipped) BOOST_TEST_MESSAGE("skipped: " << s);
}

BOOST_AUTO_TEST_CASE(load_all_on_empty_data_dir) {
    temp_dir d;
    auto rep = fs_store(layout_at(d)).load_all(4);
    BOOST_REQUIRE(rep.has_value());
    BOOST_TEST(rep->records.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(service_on_fs_store_suite)

namespace {

using certmate::test::create_certificate;
using certmate::test::openssl_verify;
using certmate::test::run;

// A data dir made by init, with an EC CA (fast), and the service over the filesystem store on a
// clock the test moves: what survives a restart is the store's business.
struct service_fixture {
    temp_dir dir;
    app::config cfg;
    std::shared_ptr<time_point> now = std::make_shared<time_point>(std::chrono::system_clock::now());
    std::shared_ptr<storage::audit_log> audit_log;
    std::unique_ptr<cert_service> svc;

    explicit service_fixture(std::vector<std::string> extra = {}) {
        std::vector<std::string> o = {"--storage.data_dir",
                                      dir.path().string(),
                                      "--ca.key_type",
                                      "ec-p384",
                                      "--issuance.default_key_type",
                                      "ec-p256"};
        o.insert(o.end(), extra.begin(), extra.end());
        cfg = app::load_config({}, o);
        auto rep = app::init_data_dir(cfg, {});
        BOOST_REQUIRE_MESSAGE(rep, "init failed");
        open();
    }

    // `setup` sees the store before the service takes it (its test hooks).
    void open(const std::function<void(storage::fs_store&)>& setup = {}) {
        storage::layout l{cfg.data_dir};
        auto ca = storage::load_ca(l, app::ca_passphrase(cfg));
        BOOST_REQUIRE(ca);
        auto audit = storage::audit_log::open(l.audit_log(), [n = now] { return *n; });
        BOOST_REQUIRE(audit);
        audit_log = std::shared_ptr<storage::audit_log>(std::move(*audit));
        auto store = std::make_unique<storage::fs_store>(l);
        if (setup) setup(*store);
        svc = std::make_unique<cert_service>(
            *ca, std::move(store), audit_log, cfg.service, [n = now] { return *n; }, openssl_rng());
        BOOST_REQUIRE(svc->load());
    }

    storage::layout paths() const { return storage::layout{cfg.data_dir}; }

    cert_view create(const std::string& id, cert_usage usage = cert_usage::api_mtls) {
        return create_certificate(*svc, id, usage);
    }

    fs::path cert_file(const cert_view& v) const {
        return paths().cert_dir(v.record.usage, v.record.identifier) / "cert.crt";
    }

    std::shared_ptr<const built_crl> build_crl_now(bool force = true) { return test::build_crl_now(*svc, force); }
};

} // namespace

BOOST_AUTO_TEST_CASE(crl_number_grows_across_a_restart) {
    service_fixture f;
    f.create("good");
    f.create("bad");
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("bad", {revocation_reason::key_compromise}, {})));
    f.build_crl_now();
    auto crl2 = f.build_crl_now();
    BOOST_TEST(crl2->crl_number == 2u);

    // Restart: the files (written after the CRL was served, at the latest when the store goes)
    // hold CRL 2; it is served from disk, and the next one carries a larger number.
    f.svc.reset();
    BOOST_TEST(test::read_text(f.paths().crl_pem()) == crl2->pem);
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl2->der);
    f.open();
    BOOST_REQUIRE(f.svc->current_crl());
    BOOST_TEST(f.svc->current_crl()->crl_number == 2u);
    auto crl3 = f.build_crl_now();
    BOOST_TEST(crl3->crl_number == 3u);
}

// The crash window of CRL publication (docs/architecture.md "CRL publication"): CRL 2 was served
// (its number kept) with a revocation, and the process died before crl.der / crl.pem were
// written. The next start must not serve the files' CRL 1 (a lower number, without the
// revocation acknowledged): it serves nothing until its build, numbered above 2, which lists it.
BOOST_AUTO_TEST_CASE(a_stop_before_the_crl_files_are_written_never_serves_them) {
    service_fixture f;
    f.create("good");
    const auto bad = f.create("bad");
    auto crl1 = f.build_crl_now();
    BOOST_TEST(crl1->crl_number == 1u);
    f.svc.reset(); // the files of CRL 1 are written
    BOOST_REQUIRE(test::read_text(f.paths().crl_der()) == crl1->der);

    // A store whose CRL files are never written after this: as if killed each time before them.
    f.open([](storage::fs_store& s) { s.crash_hook = [](std::string_view step) { return step != "crl-files"; }; });
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("bad", {revocation_reason::key_compromise}, {})));
    auto crl2 = f.build_crl_now(false); // the revocation made a build due
    BOOST_TEST(crl2->crl_number == 2u);
    BOOST_TEST(f.svc->current_crl() == crl2); // served, so the revocation was acknowledged
    const std::string serial_hex = run("openssl x509 -noout -serial -in " + f.cert_file(bad).string()).output;
    BOOST_REQUIRE(serial_hex.rfind("serial=", 0) == 0);
    const std::string serial_line = "Serial Number: " + serial_hex.substr(7, serial_hex.find_last_not_of("\n") - 6);
    auto listed = [&](const std::string& der) {
        temp_dir t;
        test::write_text(t / "crl.der", der);
        return run("openssl crl -inform DER -noout -text -in " + (t / "crl.der").string()).output.find(serial_line) !=
               std::string::npos;
    };
    BOOST_TEST(listed(crl2->der));
    f.svc.reset();
    // On disk: the number 2 kept, the files still CRL 1, without the revocation.
    BOOST_TEST(load_crl_state(f.paths())->crl_number == 2u);
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl1->der);
    BOOST_TEST(!listed(crl1->der));
    // What the start reads of the files: their CRL number, without decoding the entries.
    BOOST_TEST((crl_number_of(crl1->der) == std::optional<std::uint64_t>(1)));
    BOOST_TEST((crl_number_of(crl2->der) == std::optional<std::uint64_t>(2)));
    BOOST_TEST(!crl_number_of(crl2->der.substr(0, crl2->der.size() / 2)));
    BOOST_TEST(!crl_number_of("not a CRL"));

    f.open();
    BOOST_TEST(!f.svc->current_crl());  // not CRL 1 again
    auto crl3 = f.build_crl_now(false); // due at start: nothing served
    BOOST_TEST(crl3->crl_number == 3u);
    BOOST_TEST(f.svc->current_crl() == crl3);
    BOOST_TEST(listed(crl3->der));
    f.svc.reset();
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl3->der);
    BOOST_TEST(test::read_text(f.paths().crl_pem()) == crl3->pem);

    // And with the files whole, the next start serves them: CRL 3.
    f.open();
    BOOST_REQUIRE(f.svc->current_crl());
    BOOST_TEST(f.svc->current_crl()->crl_number == 3u);
    BOOST_TEST(f.svc->current_crl()->der == crl3->der);
    BOOST_TEST(f.svc->current_crl()->pem == crl3->pem);
}

// Two builds in flight at once (the server overlaps their signatures): the later one carries the
// higher number whichever finishes first, the number kept never goes back, and the earlier one,
// finishing last, is not served over it.
BOOST_AUTO_TEST_CASE(overlapping_crl_builds_serve_in_number_order) {
    service_fixture f;
    f.svc.reset();
    f.open([](storage::fs_store& s) { s.overlap_crl_builds = true; });
    f.create("a");
    f.create("b");
    f.build_crl_now();
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("a", {revocation_reason::key_compromise}, {})));
    auto first = f.svc->stage_crl_build(false);
    BOOST_REQUIRE(first);
    BOOST_TEST(!f.svc->stage_crl_build(false)); // nothing changed since: no second build
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("b", {revocation_reason::key_compromise}, {})));
    auto second = f.svc->stage_crl_build(false);
    BOOST_REQUIRE(second);
    BOOST_TEST(!f.svc->stage_crl_build(true)); // two run: a forced one waits for them

    auto later = second->commit(second->work());
    BOOST_REQUIRE(later);
    BOOST_TEST((*later)->crl_number == 3u);
    BOOST_TEST(f.svc->current_crl() == *later);
    auto earlier = first->commit(first->work());
    BOOST_REQUIRE(earlier);
    BOOST_TEST((*earlier)->crl_number == 2u);
    BOOST_TEST(f.svc->current_crl() == *later); // CRL 2 is not served after CRL 3
    BOOST_TEST(load_crl_state(f.paths())->crl_number == 3u);
    // The forced build asked for meanwhile runs now, above both.
    auto next = f.build_crl_now(false);
    BOOST_TEST(next->crl_number == 4u);
    f.svc.reset();
    BOOST_TEST(test::read_text(f.paths().crl_der()) == next->der);
}

// A failing disk (EIO) under the CRL files, written after the CRL was served: the store says so
// (problem(), hence /health), writes them again every crl_files_retry, and when it goes makes one
// last try, neither hanging on the failing disk nor dropping files the disk now takes.
BOOST_AUTO_TEST_CASE(crl_files_that_cannot_be_written_are_reported_retried_and_tried_at_the_stop) {
    service_fixture f;
    auto crl1 = f.build_crl_now();
    f.svc.reset(); // the files of CRL 1 are written
    auto fail = std::make_shared<std::atomic<bool>>(true);
    auto tries = std::make_shared<std::atomic<int>>(0);
    // Set while no store thread runs, cleared after the last store went.
    storage::write_fault_hook = [fail, tries](const fs::path& p) {
        const auto name = p.filename().string();
        if (name.find("crl.der") == std::string::npos && name.find("crl.pem") == std::string::npos) return 0;
        ++*tries;
        return fail->load() ? EIO : 0;
    };
    struct clear_hook {
        ~clear_hook() { storage::write_fault_hook = nullptr; }
    } clear;
    storage::fs_store* store = nullptr;
    f.open([&](storage::fs_store& s) {
        s.crl_files_retry = 20ms;
        store = &s;
    });
    auto crl2 = f.build_crl_now();
    BOOST_TEST(crl2->crl_number == 2u);
    BOOST_TEST(test::eventually([&] { return tries->load() >= 3; })); // tried again, not once
    auto problem = store->problem();
    BOOST_REQUIRE(problem);
    BOOST_TEST(problem->find("the CRL files could not be written (CRL 2 is served") == 0u, *problem);
    BOOST_TEST(problem->find(f.paths().data_dir.string()) == std::string::npos, *problem); // public: no path
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl1->der);
    // The stop, the disk still failing: one last try, then the store goes.
    const int before = tries->load();
    f.svc.reset();
    BOOST_TEST(tries->load() > before);
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl1->der);

    // Again, with a retry far off: the disk works again just before the stop, whose try writes them.
    f.open([&](storage::fs_store& s) {
        s.crl_files_retry = std::chrono::hours(1);
        store = &s;
    });
    BOOST_TEST(!f.svc->current_crl()); // the files hold CRL 1, CRL 2 was kept: not served
    auto crl3 = f.build_crl_now(false);
    BOOST_TEST(crl3->crl_number == 3u);
    BOOST_TEST(test::eventually([&] { return store->problem().has_value(); }));
    fail->store(false);
    BOOST_TEST(!!store->problem()); // no retry yet (an hour away)
    f.svc.reset();
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl3->der);
    BOOST_TEST(test::read_text(f.paths().crl_pem()) == crl3->pem);
    f.open([&](storage::fs_store& s) { store = &s; });
    BOOST_REQUIRE(f.svc->current_crl());
    BOOST_TEST(f.svc->current_crl()->crl_number == 3u);
    BOOST_TEST(!store->problem());
    f.svc.reset(); // no store thread left when the hook is cleared
}

// crl_state.json lost (an operator's clean-up, a partial restore) while the CRL files remain: the
// numbering continues above the files' CRL number instead of starting again at 1, which relying
// parties would take for an older CRL than the one they hold (RFC 5280 5.2.3).
BOOST_AUTO_TEST_CASE(a_lost_crl_state_never_numbers_below_the_crl_files) {
    service_fixture f;
    f.build_crl_now();
    auto crl2 = f.build_crl_now();
    BOOST_TEST(crl2->crl_number == 2u);
    f.svc.reset();
    BOOST_REQUIRE(test::read_text(f.paths().crl_der()) == crl2->der);
    fs::remove(f.paths().crl_state());
    f.open();
    auto next = f.build_crl_now(false);
    BOOST_TEST(next->crl_number == 3u);
    BOOST_TEST(load_crl_state(f.paths())->crl_number == 3u);
}

// crl_number_of reads crl.der at every start without decoding it: every truncation of a real CRL
// is refused, and every value of every byte gives a number or nullopt, reading nothing outside the
// input (the ASan stage runs this).
BOOST_AUTO_TEST_CASE(crl_number_of_survives_every_truncation_and_byte_value) {
    service_fixture f;
    f.create("a");
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("a", {revocation_reason::key_compromise}, {})));
    auto crl = f.build_crl_now();
    const std::string der = crl->der;
    BOOST_TEST((crl_number_of(der) == std::optional<std::uint64_t>(crl->crl_number)));
    std::size_t refused = 0;
    for (std::size_t n = 0; n < der.size(); ++n) refused += !crl_number_of(std::string_view(der).substr(0, n));
    BOOST_TEST(refused == der.size());
    std::size_t numbers = 0;
    for (std::size_t i = 0; i < der.size(); ++i) {
        std::string bad = der;
        for (int v = 0; v < 256; ++v) {
            bad[i] = static_cast<char>(v);
            // Copied to a buffer of its exact size, so a read past the end is ASan's to see.
            auto exact = std::make_unique<char[]>(bad.size());
            std::memcpy(exact.get(), bad.data(), bad.size());
            numbers += crl_number_of(std::string_view(exact.get(), bad.size())).has_value();
        }
    }
    BOOST_TEST(numbers > 0u);
}

BOOST_AUTO_TEST_CASE(thousand_certificates_survive_a_restart) {
    service_fixture f;
    std::map<std::string, cert_record> before;
    for (int i = 0; i < 1000; ++i) {
        create_request r;
        r.identifier = "c" + std::to_string(i);
        r.subject.common_name = "client " + std::to_string(i);
        r.usage = all_usages[i % 3];
        r.key = key_type::ed25519;
        auto v = run_sync(f.svc->stage_create(r, {}));
        BOOST_REQUIRE(v);
        before[v->record.identifier] = v->record;
    }
    f.svc.reset();
    f.open();
    BOOST_TEST(f.svc->size() == 1000u);
    for (const auto& [id, rec] : before) {
        auto got = f.svc->get(id);
        BOOST_REQUIRE(got);
        BOOST_TEST((got->record == rec), "metadata of " << id << " changed across restart");
    }
}

BOOST_AUTO_TEST_CASE(keys_are_0600_and_encrypted_ca_key_with_passphrase) {
    temp_dir pass;
    test::write_text(pass / "pw", "correct horse battery staple\n");
    service_fixture f({"--ca.passphrase_file", (pass / "pw").string()});
    auto a = f.create("k1");
    struct stat st {};
    BOOST_REQUIRE(::stat((f.paths().cert_dir(cert_usage::api_mtls, "k1") / "cert.key").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_REQUIRE(::stat(f.paths().ca_key().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_REQUIRE(::stat(f.paths().admin_token().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    const auto ca_key = test::read_text(f.paths().ca_key());
    BOOST_TEST(ca_key.find("BEGIN ENCRYPTED PRIVATE KEY") != std::string::npos);
    BOOST_TEST(ca_key.find("BEGIN PRIVATE KEY") == std::string::npos);
    // Without the passphrase the CA does not load.
    auto no = storage::load_ca(f.paths(), std::nullopt);
    BOOST_REQUIRE(!no);
    BOOST_TEST(int(no.error().code) == int(errc::bad_passphrase));
    (void)a;
}

BOOST_AUTO_TEST_CASE(backup_restore_into_an_empty_dir_verifies_earlier_certificates) {
    service_fixture f;
    auto a = f.create("pre-backup");
    temp_dir out;
    const auto archive = out / "ca.tar";
    const std::string bin = test::certmate_binary();
    auto b = run(bin + " ca backup --out " + archive.string() + " --data-dir " + f.dir.path().string());
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.output);
    struct stat st {};
    BOOST_REQUIRE(::stat(archive.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(run("tar tf " + archive.string()).output.find("certs/ca/ca.key") != std::string::npos);

    temp_dir fresh;
    auto r = run(bin + " ca restore --in " + archive.string() + " --data-dir " + fresh.path().string());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto restored_ca = fresh / "certs/ca/ca.crt";
    BOOST_TEST(openssl_verify(restored_ca, f.cert_file(a)).find(": OK") != std::string::npos);
    // The restored key signs: a service on the restored dir issues certificates the old CA file verifies.
    BOOST_TEST(storage::load_ca(storage::layout{fresh.path()}, std::nullopt).has_value());

    // A different CA is not replaced without --force.
    service_fixture other;
    auto refuse = run(bin + " ca restore --in " + archive.string() + " --data-dir " + other.dir.path().string());
    BOOST_TEST(refuse.exit_code != 0);
    BOOST_TEST(refuse.output.find("different CA") != std::string::npos, refuse.output);
    // An archive whose key belongs to another CA is refused, and nothing is written.
    const auto mixed = out / "mixed.tar";
    test::write_text(mixed, tar_pack({{"certs/ca/ca.crt", test::read_text(f.paths().ca_cert())},
                                      {"certs/ca/ca.key", test::read_text(other.paths().ca_key())}}));
    temp_dir empty;
    auto bad = run(bin + " ca restore --in " + mixed.string() + " --data-dir " + empty.path().string());
    BOOST_TEST(bad.exit_code != 0);
    BOOST_TEST(bad.output.find("unusable") != std::string::npos, bad.output);
    BOOST_TEST(!fs::exists(empty / "certs/ca/ca.crt"));

    auto forced =
        run(bin + " ca restore --force --in " + archive.string() + " --data-dir " + other.dir.path().string());
    BOOST_TEST(forced.exit_code == 0, forced.output);
    BOOST_TEST(test::read_text(other.paths().ca_cert()) == test::read_text(f.paths().ca_cert()));
}

BOOST_AUTO_TEST_SUITE_END()
