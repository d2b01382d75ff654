// Storage under faults (issue 10, point 9): new directories' parents are fsynced, a directory
// fsync failing after the rename keeps the change (the index follows the disk) and /health
// reports it, and start-up removes temp files left inside certificate directories.
#define BOOST_TEST_MODULE storage_faults
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "storage/atomic_file.hpp"
#include "storage/fs_store.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"

#include <algorithm>
#include <cerrno>
#include <vector>

using namespace certmate;
using namespace certmate::storage;
using certmate::test::temp_dir;

namespace {

// Sets fsync_dir_fault_hook for the scope; cleared on exit so later tests run unharmed.
struct fault_guard {
    explicit fault_guard(std::function<int(const fs::path&)> f) { fsync_dir_fault_hook = std::move(f); }
    ~fault_guard() { fsync_dir_fault_hook = nullptr; }
};

// Fails (EIO) every fsync of exactly `dir`.
fault_guard fail_fsync_of(const fs::path& dir) {
    return fault_guard([dir](const fs::path& d) { return d == dir ? EIO : 0; });
}

cert_record record(const std::string& id, cert_usage u = cert_usage::vpn) {
    cert_record r;
    r.identifier = id;
    r.subject.common_name = id;
    r.serial_number = "1234567";
    r.extended_key_usage = {"clientAuth"};
    r.created_at = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
    r.not_before = r.created_at;
    r.expires_at = r.created_at + std::chrono::hours(24 * 30);
    r.usage = u;
    r.fingerprint_sha256 = std::string(64, 'a');
    r.key_type = "ec-p256";
    return r;
}

cert_files files(const std::string& tag) {
    return cert_files{"-----BEGIN CERTIFICATE-----\n" + tag + "\n-----END CERTIFICATE-----\n", std::nullopt,
                      std::nullopt};
}

std::vector<std::string> loaded_ids(fs_store& s) {
    auto rep = s.load_all(1);
    BOOST_REQUIRE(rep);
    std::vector<std::string> ids;
    for (const auto& r : rep->records) ids.push_back(r.identifier);
    return ids;
}

} // namespace

BOOST_AUTO_TEST_CASE(ensure_dir_fsyncs_the_parent_of_each_directory_it_creates) {
    temp_dir d;
    std::vector<fs::path> synced;
    fault_guard g([&](const fs::path& p) {
        synced.push_back(p);
        return 0;
    });
    BOOST_REQUIRE(ensure_dir(d / "a/b/c", fs::perms(0700)));
    for (const auto& parent : {d.path(), d / "a", d / "a/b"})
        BOOST_TEST((std::count(synced.begin(), synced.end(), parent) == 1), parent.string() << " not fsynced once");
    // Nothing new: nothing to sync.
    synced.clear();
    BOOST_REQUIRE(ensure_dir(d / "a/b/c", fs::perms(0700)));
    BOOST_TEST(synced.empty());
    // A failing parent fsync is an error of the mkdir.
    fault_guard fail([&](const fs::path& p) { return p == d / "a" ? EIO : 0; });
    BOOST_TEST(!ensure_dir(d / "a/x", fs::perms(0700)));
}

BOOST_AUTO_TEST_CASE(a_dir_fsync_failing_after_the_rename_reports_success_and_keeps_the_error) {
    temp_dir d;
    const layout l{d / "data"};
    fs_store store(l);
    BOOST_REQUIRE(ensure_dir(l.usage_dir(cert_usage::vpn), fs::perms(0700)));
    BOOST_TEST(!store.io_error().has_value());

    // create: the certificate directory was renamed into place, then the usage dir fsync fails.
    {
        auto g = fail_fsync_of(l.usage_dir(cert_usage::vpn));
        auto r = store.create(record("late-create"), files("one"));
        BOOST_TEST(r.has_value(), (r ? "" : r.error().message));
    }
    BOOST_REQUIRE(store.io_error().has_value());
    BOOST_TEST(store.io_error()->find("fsync") != std::string::npos, *store.io_error());
    fs_store fresh(l);
    BOOST_TEST(!fresh.io_error().has_value());
    auto ids = loaded_ids(fresh);
    BOOST_TEST((std::find(ids.begin(), ids.end(), "late-create") != ids.end()));

    // write_metadata: metadata.json renamed over, then the certificate dir fsync fails.
    auto rec = record("late-create");
    rec.notes = "changed";
    {
        auto g = fail_fsync_of(l.cert_dir(cert_usage::vpn, "late-create"));
        auto r = fresh.write_metadata(rec);
        BOOST_TEST(r.has_value(), (r ? "" : r.error().message));
    }
    BOOST_TEST(fresh.io_error().has_value());
    BOOST_TEST(test::read_text(l.cert_dir(cert_usage::vpn, "late-create") / "metadata.json").find("changed") !=
               std::string::npos);

    // replace: the new directory renamed into place (the old one still beside it as .old-), then
    // the usage dir fsync fails.
    fs_store third(l);
    {
        const auto dir = l.cert_dir(cert_usage::vpn, "late-create");
        const auto old = l.usage_dir(cert_usage::vpn) / ".old-late-create";
        fault_guard g([&](const fs::path& p) {
            return p == l.usage_dir(cert_usage::vpn) && fs::exists(dir) && fs::exists(old) ? EIO : 0;
        });
        auto r = third.replace(record("late-create"), files("two"));
        BOOST_TEST(r.has_value(), (r ? "" : r.error().message));
    }
    BOOST_TEST(third.io_error().has_value());
    BOOST_TEST(test::read_text(l.cert_dir(cert_usage::vpn, "late-create") / "cert.crt").find("two") !=
               std::string::npos);

    // publish_crl: crl.der renamed into place, then certs/crl fsync fails.
    fs_store fourth(l);
    BOOST_REQUIRE(ensure_dir(l.crl_dir()));
    BOOST_REQUIRE(ensure_dir(l.ca_dir()));
    {
        auto g = fail_fsync_of(l.crl_dir());
        auto r = fourth.publish_crl("DER", "PEM");
        BOOST_TEST(r.has_value(), (r ? "" : r.error().message));
    }
    BOOST_TEST(fourth.io_error().has_value());
    BOOST_TEST(test::read_text(l.crl_der()) == "DER");

    // A failure before the rename still fails the operation and changes nothing.
    fs_store fifth(l);
    {
        fault_guard g([](const fs::path& p) { return p.filename().string().starts_with(".tmp-") ? EIO : 0; });
        BOOST_TEST(!fifth.create(record("early-fail"), files("x")));
    }
    BOOST_TEST(!fifth.io_error().has_value());
    BOOST_TEST(!fs::exists(l.cert_dir(cert_usage::vpn, "early-fail")));
}

BOOST_AUTO_TEST_CASE(load_all_removes_temp_files_left_inside_certificate_directories) {
    temp_dir d;
    const layout l{d / "data"};
    fs_store store(l);
    BOOST_REQUIRE(store.create(record("has-leftover"), files("one")));
    const auto dir = l.cert_dir(cert_usage::vpn, "has-leftover");
    // What an interrupted write_file_atomic of metadata.json leaves behind.
    test::write_text(dir / ".metadata.json.tmp-0123456789ab", "{ half");
    test::write_text(dir / ".keep", "not ours");
    auto rep = store.load_all(2);
    BOOST_REQUIRE(rep);
    BOOST_TEST(!fs::exists(dir / ".metadata.json.tmp-0123456789ab"));
    BOOST_TEST(fs::exists(dir / ".keep"));
    BOOST_REQUIRE_EQUAL(rep->records.size(), 1u);
    BOOST_TEST((std::find_if(rep->removed_leftovers.begin(), rep->removed_leftovers.end(), [](const std::string& s) {
                    return s.find("vpn/has-leftover/.metadata.json.tmp-0123456789ab") != std::string::npos;
                }) != rep->removed_leftovers.end()));
}

BOOST_AUTO_TEST_CASE(health_reports_the_storage_io_error_after_a_late_fsync_failure) {
    test::test_server srv;
    auto http = srv.client();
    BOOST_REQUIRE_EQUAL(http.get("/health").status, 200u);
    const auto udir = layout{srv.config().data_dir}.usage_dir(cert_usage::vpn);
    {
        auto g = fail_fsync_of(udir);
        auto r = http.post_json("/api/client-certs", R"({"common_name":"late","identifier":"late","cert_usage":"vpn"})",
                                srv.tokens.admin);
        BOOST_TEST(r.status == 201u, r.body);
    }
    // The index followed the disk: the certificate is there.
    BOOST_TEST(http.get("/api/client-certs/late", srv.tokens.viewer).status == 200u);
    auto h = http.get("/health");
    BOOST_TEST(h.status == 503u, h.body);
    auto o = test::obj(h);
    BOOST_TEST(test::str(o, "status") == "degraded");
    BOOST_REQUIRE(o.at("checks").is_object());
    const auto& storage_check = o.at("checks").as_object().at("storage");
    BOOST_REQUIRE(storage_check.is_string());
    BOOST_TEST(std::string(storage_check.as_string()).find("fsync") != std::string::npos, storage_check);
}
