// Storage: metadata JSON, atomic files, fs_store (layout, crash safety, parallel load) and the index.
#define BOOST_TEST_MODULE storage
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "core/cert_json.hpp"
#include "storage/atomic_file.hpp"
#include "core/cert_index.hpp"
#include "storage/fs_store.hpp"
#include "support/tools.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cctype>
#include <map>
#include <set>

using namespace certmate;
using namespace certmate::storage;
using namespace std::chrono_literals;

namespace {

using certmate::test::temp_dir;

// Restores the process umask on scope exit.
struct umask_guard {
    mode_t old;
    explicit umask_guard(mode_t m) : old(::umask(m)) {}
    ~umask_guard() { ::umask(old); }
};

const time_point t0 = std::chrono::sys_days{std::chrono::year{2025} / 1 / 1} + 12h;

std::string fake_pem(std::string_view kind, std::string_view who) {
    return "-----BEGIN " + std::string(kind) + "-----\nMII" + std::string(who) + "AAAA\n-----END " + std::string(kind) +
           "-----\n";
}

cert_record make_record(int i) {
    cert_record r;
    char id[32];
    std::snprintf(id, sizeof id, "cert-%05d", i);
    r.identifier = id;
    r.subject = {"user" + std::to_string(i) + "@example.com",
                 "user" + std::to_string(i) + "@example.com",
                 i % 2 ? "ACME Corp" : "Globex",
                 "Engineering",
                 "US",
                 "California",
                 "San Francisco"};
    r.serial_number = std::to_string(12345678901234567890ull - static_cast<unsigned long long>(i) * 7919);
    r.key_usage = {"digitalSignature", "keyEncipherment"};
    r.extended_key_usage = {"clientAuth"};
    r.created_at = t0 + i * 1h;
    r.not_before = r.created_at - 5min;
    r.expires_at = r.created_at + 365 * 24h;
    r.usage = all_usages[static_cast<std::size_t>(i % 3)];
    r.notes = i % 5 ? "" : "note \"quoted\" é\n";
    r.renewal.renewal_threshold_days = 30 + i % 7;
    r.fingerprint_sha256 = std::string(64, "0123456789abcdef"[i % 16]);
    r.key_type = i % 2 ? "ec-p256" : "rsa2048";
    if (i % 4 == 0) r.sans.dns = {"host" + std::to_string(i) + ".example.com"};
    if (i % 6 == 0) r.sans.ip = {"10.0.0." + std::to_string(i % 250)};
    if (i % 10 == 0) r.role = api_role::operator_;
    if (i % 11 == 0) {
        r.revocation.revoked = true;
        r.revocation.revoked_at = r.created_at + 24h;
        r.revocation.reason = i % 22 ? revocation_reason::key_compromise : revocation_reason::certificate_hold;
    }
    if (i % 13 == 0) {
        r.history.push_back({"99" + std::to_string(i), r.created_at - 400 * 24h, r.created_at - 35 * 24h,
                             std::string(64, 'a'), r.created_at, i % 26 == 0});
        r.renewal.last_renewed_at = r.created_at;
    }
    r.has_private_key = i % 3 != 1;
    return r;
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

BOOST_AUTO_TEST_SUITE(cert_json_suite)

BOOST_AUTO_TEST_CASE(round_trip_is_exact) {
    for (int i : {0, 1, 11, 13, 22, 26, 130}) {
        const cert_record r = make_record(i);
        auto text = boost::json::serialize(to_json(r));
        auto back = record_from_json(boost::json::parse(text));
        BOOST_REQUIRE(back.has_value());
        BOOST_TEST((*back == r), "round trip of record " << i);
    }
}

BOOST_AUTO_TEST_CASE(python_certmate_field_names) {
    cert_record r = make_record(286); // revoked on hold, with history
    auto o = to_json(r);
    for (const char* k : {"type",           "identifier",
                          "common_name",    "email",
                          "organization",   "organizational_unit",
                          "country",        "state",
                          "locality",       "serial_number",
                          "key_usage",      "extended_key_usage",
                          "created_at",     "expires_at",
                          "cert_usage",     "notes",
                          "revocation",     "renewal",
                          "not_before",     "fingerprint_sha256",
                          "key_type",       "subject_alt_names",
                          "api_role",       "history",
                          "has_private_key"})
        BOOST_TEST(o.contains(k), "field " << k);
    BOOST_TEST(o.at("type").as_string() == "client_certificate");
    BOOST_TEST(o.at("serial_number").is_string());
    BOOST_TEST(o.at("cert_usage").as_string() == to_string(r.usage));
    BOOST_TEST(o.at("created_at").as_string() == format_time(r.created_at));
    const auto& rev = o.at("revocation").as_object();
    BOOST_TEST(rev.at("revoked").as_bool());
    BOOST_TEST(rev.at("reason").as_string() == "certificateHold");
    BOOST_TEST(rev.at("reason_revoked").as_string() == "certificateHold");
    const auto& ren = o.at("renewal").as_object();
    BOOST_TEST(ren.contains("renewal_enabled"));
    BOOST_TEST(ren.contains("renewal_threshold_days"));
    BOOST_TEST(ren.contains("last_renewed_at"));
    const auto& h = o.at("history").as_array().at(0).as_object();
    for (const char* k :
         {"serial_number", "not_before", "expires_at", "fingerprint_sha256", "superseded_at", "revoked"})
        BOOST_TEST(h.contains(k), "history field " << k);
    BOOST_TEST(o.at("api_role").is_null());
    r.role = api_role::admin;
    BOOST_TEST(to_json(r).at("api_role").as_string() == "admin");
    const auto& sans = o.at("subject_alt_names").as_object();
    for (const char* k : {"dns", "email", "ip", "uri"}) BOOST_TEST(sans.contains(k));
}

BOOST_AUTO_TEST_CASE(reads_the_python_certmate_example) {
    // The Python CertMate's own metadata.json (no not_before, fingerprint, ...): still loads.
    auto v = boost::json::parse(R"({
 "type": "client_certificate", "identifier": "cert-001", "common_name": "user@example.com",
 "email": "user@example.com", "organization": "ACME Corp", "organizational_unit": "Engineering",
 "country": "US", "state": "California", "locality": "San Francisco",
 "serial_number": "12345678901234567890",
 "key_usage": ["digitalSignature", "keyEncipherment"], "extended_key_usage": ["serverAuth", "clientAuth"],
 "created_at": "2024-10-30T18:00:00Z", "expires_at": "2025-10-30T18:00:00Z",
 "cert_usage": "api-mtls", "notes": "Production certificate",
 "revocation": {"revoked": false, "revoked_at": null, "reason_revoked": null},
 "renewal": {"renewal_enabled": true, "renewal_threshold_days": 30, "last_renewed_at": null}})");
    auto r = record_from_json(v);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->identifier == "cert-001");
    BOOST_TEST(r->serial_number == "12345678901234567890");
    BOOST_TEST((r->usage == cert_usage::api_mtls));
    BOOST_TEST(format_time(r->not_before) == "2024-10-30T18:00:00Z");
    BOOST_TEST(!r->revocation.revoked);
}

BOOST_AUTO_TEST_CASE(errors_name_the_field) {
    auto base = to_json(make_record(13));
    auto check = [&](auto mutate, const std::string& field) {
        auto o = base;
        mutate(o);
        auto r = record_from_json(o);
        BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted bad " << field);
        BOOST_TEST(r.error().field == field);
    };
    check([](boost::json::object& o) { o.erase("identifier"); }, "identifier");
    check([](boost::json::object& o) { o["serial_number"] = "12a"; }, "serial_number");
    check([](boost::json::object& o) { o["serial_number"] = 1.5; }, "serial_number");
    check([](boost::json::object& o) { o["expires_at"] = "yesterday"; }, "expires_at");
    check([](boost::json::object& o) { o["cert_usage"] = "web"; }, "cert_usage");
    check([](boost::json::object& o) { o["api_role"] = "root"; }, "api_role");
    check([](boost::json::object& o) { o["revocation"].as_object()["revoked"] = "yes"; }, "revocation.revoked");
    check([](boost::json::object& o) { o["history"].as_array()[0].as_object()["superseded_at"] = 5; },
          "history[0].superseded_at");
    check([](boost::json::object& o) { o["identifier"] = "../etc"; }, "identifier");
}

BOOST_AUTO_TEST_SUITE_END()

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

BOOST_AUTO_TEST_SUITE(index_suite)

namespace {

// Five certificates, one per status, at `now` = t0 + 100 days.
const time_point now = t0 + 100 * 24h;

cert_record rec(const std::string& id, const std::string& cn, cert_usage u, time_point created, time_point expires) {
    cert_record r;
    r.identifier = id;
    r.subject.common_name = cn;
    r.subject.email = id + "@corp.test";
    r.subject.organization = "Org " + id;
    r.usage = u;
    r.created_at = r.not_before = created;
    r.expires_at = expires;
    r.serial_number = std::to_string(1000 + id.size() * 37 + static_cast<std::size_t>(id.back()));
    return r;
}

cert_index sample(std::vector<cert_record>* out = nullptr) {
    std::vector<cert_record> v;
    v.push_back(rec("alpha", "Alice", cert_usage::api_mtls, t0 + 1h, now + 300 * 24h)); // active
    v.push_back(rec("bravo", "bob", cert_usage::vpn, t0 + 2h, now + 10 * 24h));         // expiring
    v.push_back(rec("charlie", "Carol", cert_usage::vpn, t0 + 3h, now - 1h));           // expired
    v.push_back(rec("delta", "dave", cert_usage::other, t0 + 4h, now + 200 * 24h));     // revoked
    v[3].revocation = {true, now - 24h, revocation_reason::key_compromise};
    v.push_back(rec("echo", "Eve", cert_usage::api_mtls, t0 + 5h, now + 5 * 24h)); // on hold
    v[4].revocation = {true, now - 2h, revocation_reason::certificate_hold};
    v[0].serial_number = "340282366920938463463374607431768211455"; // 2^128 - 1
    v[0].history.push_back({"555", t0 - 400 * 24h, t0 - 35 * 24h, "", t0, true});
    v[0].history.push_back({"556", t0 - 800 * 24h, t0 - 400 * 24h, "", t0 - 400 * 24h, false});
    cert_index idx;
    for (const auto& r : v) idx.upsert(r);
    if (out) *out = v;
    return idx;
}

std::vector<std::string> ids(const list_page& p) {
    std::vector<std::string> out;
    for (const auto& r : p.items) out.push_back(r.identifier);
    return out;
}

using svec = std::vector<std::string>;

} // namespace

BOOST_AUTO_TEST_CASE(filters) {
    const cert_index idx = sample();
    auto run = [&](list_query q) { return ids(idx.query(q, now, 30)); };
    list_query q;
    q.sort = sort_key::identifier;
    q.descending = false;
    BOOST_TEST(run(q) == (svec{"alpha", "bravo", "charlie", "delta", "echo"}), boost::test_tools::per_element());

    auto with = [&](auto f) {
        list_query x = q;
        f(x);
        return run(x);
    };
    BOOST_TEST(with([](list_query& x) { x.usage = cert_usage::vpn; }) == (svec{"bravo", "charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::active; }) == (svec{"alpha", "bravo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::revoked; }) == (svec{"delta"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::on_hold; }) == (svec{"echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::expired; }) == (svec{"charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::expiring; }) == (svec{"bravo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) {
                   x.status = status_filter::expiring;
                   x.expiring_within_days = 5;
               }).empty());
    BOOST_TEST(with([](list_query& x) {
                   x.status = status_filter::expiring;
                   x.expiring_within_days = 250;
               }) == (svec{"bravo"}),
               boost::test_tools::per_element()); // revoked delta never counts as expiring
    BOOST_TEST(with([](list_query& x) { x.revoked = true; }) == (svec{"delta", "echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.revoked = false; }) == (svec{"alpha", "bravo", "charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.expiring_within_days = 11; }) == (svec{"bravo", "echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) {
                   x.usage = cert_usage::api_mtls;
                   x.status = status_filter::active;
               }) == (svec{"alpha"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(search_is_case_insensitive_over_five_fields) {
    const cert_index idx = sample();
    auto find = [&](std::string s) {
        list_query q;
        q.search = std::move(s);
        q.sort = sort_key::identifier;
        q.descending = false;
        return ids(idx.query(q, now, 30));
    };
    BOOST_TEST(find("ALICE") == (svec{"alpha"}), boost::test_tools::per_element()); // common name
    BOOST_TEST(find("BoB") == (svec{"bravo"}), boost::test_tools::per_element());
    BOOST_TEST(find("charlie@CORP") == (svec{"charlie"}), boost::test_tools::per_element()); // email
    BOOST_TEST(find("org DELTA") == (svec{"delta"}), boost::test_tools::per_element());      // organization
    BOOST_TEST(find("ech") == (svec{"echo"}), boost::test_tools::per_element());             // identifier
    BOOST_TEST(find("46346337460743") == (svec{"alpha"}), boost::test_tools::per_element()); // serial
    BOOST_TEST(find("corp.test").size() == 5u);
    BOOST_TEST(find("nobody").empty());
}

BOOST_AUTO_TEST_CASE(sort_and_paging) {
    const cert_index idx = sample();
    list_query q;
    q.sort = sort_key::created_at; // default: newest first
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"echo", "delta", "charlie", "bravo", "alpha"}),
               boost::test_tools::per_element());
    q.descending = false;
    q.sort = sort_key::expires_at;
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"charlie", "echo", "bravo", "delta", "alpha"}),
               boost::test_tools::per_element());
    q.sort = sort_key::common_name; // case-insensitive: Alice bob Carol dave Eve
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"alpha", "bravo", "charlie", "delta", "echo"}),
               boost::test_tools::per_element());
    q.descending = true;
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"echo", "delta", "charlie", "bravo", "alpha"}),
               boost::test_tools::per_element());

    q.limit = 2;
    q.offset = 1;
    auto page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(ids(page) == (svec{"delta", "charlie"}), boost::test_tools::per_element());
    q.offset = 4;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(ids(page) == (svec{"alpha"}), boost::test_tools::per_element());
    q.offset = 5;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(page.items.empty());
    q.offset = 0;
    q.usage = cert_usage::api_mtls;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 2u);
}

BOOST_AUTO_TEST_CASE(stats_count_each_status) {
    const cert_index idx = sample();
    auto s = idx.stats(now, 30);
    BOOST_TEST(s.total == 5u);
    BOOST_TEST(s.active == 2u);
    BOOST_TEST(s.revoked == 1u);
    BOOST_TEST(s.on_hold == 1u);
    BOOST_TEST(s.expired == 1u);
    BOOST_TEST(s.expiring_soon == 1u);
    BOOST_TEST(s.by_usage.at("api-mtls") == 2u);
    BOOST_TEST(s.by_usage.at("vpn") == 2u);
    BOOST_TEST(s.by_usage.at("other") == 1u);
    BOOST_TEST(idx.stats(now, 400).expiring_soon == 2u);
}

BOOST_AUTO_TEST_CASE(serials_current_and_historical) {
    std::vector<cert_record> v;
    cert_index idx = sample(&v);
    // Current and historical serials are indexed (serial uniqueness); OCSP answers them from the
    // service's ocsp_table (test_service, test_http_ocsp).
    for (const auto& s : {std::string("340282366920938463463374607431768211455"), std::string("555"),
                          std::string("556"), v[3].serial_number})
        BOOST_TEST(idx.serial_exists(s), s);
    BOOST_TEST(!idx.serial_exists("1"));

    // CRL: current revoked (including on hold) and superseded-revoked history.
    std::set<std::string> crl;
    for (const auto& r : idx.revoked()) crl.insert(r.serial_decimal);
    BOOST_TEST((crl == std::set<std::string>{v[3].serial_number, v[4].serial_number, "555"}));

    // Renewal moves the current serial into history; re-indexing follows.
    cert_record alpha = *idx.find("alpha");
    alpha.history.push_back({alpha.serial_number, alpha.not_before, alpha.expires_at, "", now, false});
    alpha.serial_number = "4242";
    idx.upsert(alpha);
    BOOST_TEST(idx.size() == 5u);
    BOOST_TEST(idx.serial_exists("4242"));
    BOOST_TEST(idx.serial_exists("340282366920938463463374607431768211455")); // now in history
    BOOST_TEST(idx.erase("alpha"));
    BOOST_TEST(!idx.erase("alpha"));
    BOOST_TEST(!idx.serial_exists("4242"));
    BOOST_TEST(!idx.serial_exists("555"));
    BOOST_TEST(idx.find("alpha") == nullptr);
    BOOST_TEST(idx.serial_exists(v[1].serial_number));
}

BOOST_AUTO_TEST_CASE(due_for_renewal_in_expiry_order) {
    std::vector<cert_record> v;
    cert_index idx = sample(&v);
    // bravo (10 days, threshold 30) and charlie (expired) are due; echo is on hold, delta revoked.
    BOOST_TEST(idx.due_for_renewal(now) == (svec{"charlie", "bravo"}), boost::test_tools::per_element());
    cert_record b = v[1];
    b.renewal.renewal_enabled = false;
    idx.upsert(b);
    BOOST_TEST(idx.due_for_renewal(now) == (svec{"charlie"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stays_consistent_through_churn) {
    // Erasing and re-inserting (which moves rows and compacts search texts) never changes answers.
    cert_index idx;
    std::map<std::string, cert_record> truth;
    for (int i = 0; i < 3000; ++i) {
        auto r = make_record(i);
        truth[r.identifier] = r;
        idx.upsert(r);
    }
    for (int i = 0; i < 3000; i += 3) {
        auto r = make_record(i);
        BOOST_REQUIRE(idx.erase(r.identifier));
        truth.erase(r.identifier);
    }
    for (int i = 1; i < 3000; i += 4) {
        auto r = make_record(i);
        r.subject.common_name = "Renamed " + std::to_string(i);
        truth[r.identifier] = r;
        idx.upsert(r);
    }
    BOOST_TEST(idx.size() == truth.size());
    const time_point at = t0 + 200 * 24h;
    for (std::string needle : {"renamed 1", "USER2", "acme", "cert-0001", "1234567890"}) {
        list_query q;
        q.search = needle;
        q.sort = sort_key::identifier;
        q.descending = false;
        q.limit = 100000;
        std::vector<std::string> want;
        std::string low = needle;
        for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto has = [&](std::string f) {
            for (auto& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return f.find(low) != std::string::npos;
        };
        for (const auto& [id, r] : truth)
            if (has(r.subject.common_name) || has(r.subject.email) || has(r.identifier) ||
                has(r.subject.organization) || has(r.serial_number))
                want.push_back(id);
        auto page = idx.query(q, at, 30);
        BOOST_TEST(ids(page) == want, boost::test_tools::per_element());
        BOOST_TEST(page.total == want.size());
        for (const auto& r : page.items) BOOST_TEST((r == truth.at(r.identifier)));
    }
}

BOOST_AUTO_TEST_CASE(thirty_thousand_certificates_query_fast) {
    cert_index idx;
    for (int i = 0; i < 30000; ++i) idx.upsert(make_record(i));
    BOOST_TEST(idx.size() == 30000u);
    const time_point at = t0 + 200 * 24h;
    list_query q;
    q.search = "USER2";
    q.sort = sort_key::common_name;
    q.limit = 50;
    q.offset = 100;
    list_page page;
    auto start = std::chrono::steady_clock::now();
    constexpr int rounds = 10;
    for (int k = 0; k < rounds; ++k) page = idx.query(q, at, 30);
    auto per_query = (std::chrono::steady_clock::now() - start) / rounds;
    BOOST_TEST(page.total == 11111u); // user2, user2x, user2xx, user2xxx, user2xxxx
    BOOST_TEST(page.items.size() == 50u);
    list_query all;
    all.status = status_filter::active;
    start = std::chrono::steady_clock::now();
    for (int k = 0; k < rounds; ++k) page = idx.query(all, at, 30);
    auto per_all = (std::chrono::steady_clock::now() - start) / rounds;
    start = std::chrono::steady_clock::now();
    auto st = idx.stats(at, 30);
    auto per_stats = std::chrono::steady_clock::now() - start;
    BOOST_TEST(st.total == 30000u);
    using ms = std::chrono::duration<double, std::milli>;
    BOOST_TEST_MESSAGE("30k: search query " << ms(per_query).count() << " ms, status query " << ms(per_all).count()
                                            << " ms, stats " << ms(per_stats).count() << " ms");
    // Generous for unoptimised or sanitised builds; an optimised build takes a few ms.
    BOOST_TEST(ms(per_query).count() < 100.0);
    BOOST_TEST(ms(per_all).count() < 100.0);
}

BOOST_AUTO_TEST_SUITE_END()
