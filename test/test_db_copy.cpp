// `certmate db import` / `db export` at size (issue 18, acceptance 6; docs/postgresql.md "Moving a
// store"): a data dir of 30,000 certificates goes into a throwaway PostgreSQL through the CLI, a
// second import copies nothing, and `db export` into another data dir gives the same store byte for
// byte (every file under certs/client/, the CRL state and CRL, the OCSP responder, the audit log).
// Refusals write nothing: a data dir whose audit log was tampered with is not imported, and an
// export into a data dir holding a different certificate under a copied identifier is a conflict.
#define BOOST_TEST_MODULE db_copy
#include <boost/test/unit_test.hpp>

#include "app/bootstrap.hpp"
#include "storage/audit_log.hpp"
#include "storage/fs_store.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg_store.hpp"
#include "support/child_process.hpp"
#include "support/pg_cluster.hpp"
#include "support/two_instances.hpp"
#include "support/sample_records.hpp"
#include "support/tools.hpp"

#include <openssl/evp.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace fs = std::filesystem;

namespace {

fs::path fast_base() {
    // Many small files and their fsyncs: tmpfs when the machine has one.
    if (fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return fs::temp_directory_path();
}

// PEM text of `bytes` pseudo-random bytes seeded by `seed` (base64, 64 columns), as a real one looks.
std::string pem(const std::string& kind, unsigned seed, std::size_t bytes) {
    std::string der(bytes, '\0');
    std::uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    der[0] = '\x30';
    der[1] = '\x82';
    for (std::size_t i = 2; i < bytes; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        der[i] = static_cast<char>(x & 0xff);
    }
    std::string b64(4 * ((bytes + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                  reinterpret_cast<const unsigned char*>(der.data()), static_cast<int>(bytes));
    b64.resize(static_cast<std::size_t>(n));
    std::string out = "-----BEGIN " + kind + "-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    return out + "-----END " + kind + "-----\n";
}

cert_files files_for(const cert_record& r, unsigned seed) {
    cert_files f;
    f.cert_pem = pem("CERTIFICATE", seed, 620 + seed % 200);
    if (r.has_private_key)
        f.key_pem = pem("PRIVATE KEY", seed + 1'000'000, r.key_type == "rsa2048" ? 1218 : 138);
    else
        f.csr_pem = pem("CERTIFICATE REQUEST", seed + 2'000'000, 280);
    return f;
}

// Certificates first..first+count-1 (make_record, varied) written through the file system store.
void fill(const fs::path& data, int first, int count, unsigned threads) {
    storage::fs_store store{storage::layout{data}};
    std::atomic<int> next{first};
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i; (i = next++) < first + count;) {
                auto r = make_record(i);
                if (!store.create(r, files_for(r, static_cast<unsigned>(i)))) ++failed;
            }
        });
    for (auto& t : ts) t.join();
    BOOST_REQUIRE_EQUAL(failed.load(), 0);
}

// A few audit lines (the CLI's own appends: the chain verifies with the data dir's signing key).
void audit_some(const fs::path& data, int n) {
    app::config cfg; // the file store's log in `data`
    cfg.data_dir = data;
    for (int i = 0; i < n; ++i)
        BOOST_REQUIRE(
            app::audit_cli_operation(cfg, "bulk_fill", "certificate", "cert-" + std::to_string(i), {{"round", i}}));
}

// Every regular file under `root`, by relative path, with its bytes.
std::map<std::string, std::string> tree(const fs::path& root) {
    std::map<std::string, std::string> out;
    if (!fs::exists(root)) return out;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) out.emplace(fs::relative(e.path(), root).string(), read_text(e.path()));
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string dbname_of(const std::string& conninfo) {
    auto p = conninfo.find("dbname=");
    auto e = conninfo.find(' ', p);
    return conninfo.substr(p + 7, e - p - 7);
}

struct db_fixture {
    temp_dir dir{fast_base()};
    std::string bin = certmate_binary();
    std::string conninfo = shared_pg_cluster().create_database();
    std::string db = dbname_of(conninfo);
    fs::path kek = dir / "kek";

    db_fixture() {
        write_text(kek, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
        ::chmod(kek.c_str(), 0600);
    }
    std::string flags(const fs::path& data) const {
        return " --data-dir '" + data.string() + "' --storage.backend postgresql --storage.postgresql '" + conninfo +
               "' --storage.key_encryption_key_file '" + kek.string() + "'";
    }
    // `certmate db SUB` on `data`, with the first data dir's config.
    command_result db_cmd(const std::string& sub, const fs::path& conf, const fs::path& data) const {
        return run(bin + " db " + sub + " -c '" + conf.string() + "'" + flags(data) + " 2>&1");
    }
    std::string count(const std::string& table) const {
        auto out = shared_pg_cluster().psql(db, "SELECT count(*) FROM " + table);
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    // A data dir to export into: no CA, only the audit signing key's public half (export verifies
    // the database's chain with it).
    fs::path empty_target(const fs::path& from, const std::string& name) const {
        auto t = dir / name;
        fs::create_directories(t / "certs/audit");
        fs::copy_file(from / "certs/audit/audit_signing.pub", t / "certs/audit/audit_signing.pub");
        return t;
    }
};

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

} // namespace

BOOST_AUTO_TEST_CASE(import_and_export_of_30000_certificates_give_identical_stores) {
    db_fixture f;
    const int n = env_int("CERTMATE_DB_COPY_N", 30000);
    const auto a = f.dir / "a";
    must(f.bin + " init --data-dir '" + a.string() + "' --ca.key_type ec-p256");
    const auto conf = a / "certmate.conf";
    auto t0 = std::chrono::steady_clock::now();
    fill(a, 0, n, 2);
    audit_some(a, 25);
    {
        // The CRL state and a published CRL, as the server keeps them after some revocations.
        storage::fs_store store{storage::layout{a}};
        BOOST_REQUIRE(store.save_crl_state({42, sample_t0, sample_t0 + std::chrono::hours(24 * 7)}));
        const std::string der = "\x30\x82" + std::string(300, '\x5a');
        BOOST_REQUIRE(store.publish_crl(der, pem("X509 CRL", 4242, 302)));
    }
    const double fill_s = seconds_since(t0);
    BOOST_REQUIRE(fs::exists(a / "certs/crl/crl_state.json"));

    t0 = std::chrono::steady_clock::now();
    auto imp = f.db_cmd("import", conf, a);
    const double import_s = seconds_since(t0);
    BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.output);
    const std::string ns = std::to_string(n);
    BOOST_TEST(imp.output.find("imported " + ns + " certificates (" + ns + " copied, 0 already there") !=
                   std::string::npos,
               imp.output);
    BOOST_TEST(f.count("certificates") == ns);

    t0 = std::chrono::steady_clock::now();
    auto again = f.db_cmd("import", conf, a);
    const double again_s = seconds_since(t0);
    BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.output);
    BOOST_TEST(again.output.find("(0 copied, " + ns + " already there") != std::string::npos, again.output);
    BOOST_TEST(again.output.find("(0 added)") != std::string::npos, again.output);
    BOOST_TEST(f.count("certificates") == ns);

    const auto b = f.empty_target(a, "b");
    t0 = std::chrono::steady_clock::now();
    auto exp = f.db_cmd("export", conf, b);
    const double export_s = seconds_since(t0);
    BOOST_REQUIRE_MESSAGE(exp.exit_code == 0, exp.output);
    BOOST_TEST(exp.output.find("exported " + ns + " certificates (" + ns + " copied, 0 already there") !=
                   std::string::npos,
               exp.output);

    // Byte for byte: every certificate file, the CRL state and CRL, the responder, the audit log.
    const auto ta = tree(a / "certs/client"), tb = tree(b / "certs/client");
    BOOST_TEST(ta.size() >= static_cast<std::size_t>(3 * n));
    BOOST_TEST(ta.size() == tb.size());
    std::size_t differ = 0;
    for (const auto& [rel, bytes] : ta) {
        auto it = tb.find(rel);
        if (it == tb.end() || it->second != bytes) {
            if (++differ <= 5) BOOST_ERROR("certs/client/" << rel << " differs or is missing after the export");
        }
    }
    BOOST_TEST(differ == 0u);
    for (const auto* rel :
         {"certs/crl/crl_state.json", "certs/crl/crl.der", "certs/ca/crl.pem", "certs/ocsp/responder.crt",
          "certs/ocsp/responder.key", "logs/audit/certificate_audit.log"}) {
        BOOST_REQUIRE_MESSAGE(fs::exists(a / rel), rel);
        BOOST_TEST(read_text(a / rel) == read_text(b / rel), rel);
    }
    BOOST_TEST(lines_of(b / "logs/audit/certificate_audit.log").size() >= 25u);
    // Private keys stay 0600 on the way back.
    std::size_t keys = 0;
    for (const auto& [rel, bytes] : tb) {
        if (!rel.ends_with("/cert.key")) continue;
        ++keys;
        struct stat st {};
        BOOST_REQUIRE(::stat((b / "certs/client" / rel).c_str(), &st) == 0);
        if ((st.st_mode & 0777) != 0600) BOOST_ERROR(rel << " is not 0600");
    }
    BOOST_TEST(keys > 0u);
    // The exported dir reads back as the same store and its audit log verifies.
    must(f.bin + " audit verify --data-dir '" + b.string() + "'");

    std::cout << "db copy of " << n << " certificates: fill " << fill_s << " s, import " << import_s
              << " s, repeated import " << again_s << " s, export " << export_s << " s\n";
}

BOOST_AUTO_TEST_CASE(a_tampered_audit_log_is_refused_with_nothing_written) {
    db_fixture f;
    const auto a = f.dir / "a";
    must(f.bin + " init --data-dir '" + a.string() + "'");
    fill(a, 0, 20, 1);
    audit_some(a, 6);
    const auto log = a / "logs/audit/certificate_audit.log";
    auto lines = lines_of(log);
    BOOST_REQUIRE(lines.size() >= 6u);
    // One entry's resource id changed, its hash left alone: the chain breaks there.
    auto& l = lines[lines.size() - 3];
    auto p = l.find("cert-");
    BOOST_REQUIRE(p != std::string::npos);
    l.replace(p, 5, "cert_");
    std::string text;
    for (const auto& x : lines) text += x + "\n";
    write_text(log, text);

    auto r = f.db_cmd("import", a / "certmate.conf", a);
    BOOST_TEST(r.exit_code != 0, r.output);
    BOOST_TEST(r.output.find("does not verify") != std::string::npos, r.output);
    BOOST_TEST(f.count("certificates") == "0");
    BOOST_TEST(f.count("serials") == "0");
    BOOST_TEST(f.count("audit_log") == "0");
}

BOOST_AUTO_TEST_CASE(an_export_over_a_different_certificate_is_a_conflict_writing_nothing) {
    db_fixture f;
    const auto a = f.dir / "a";
    must(f.bin + " init --data-dir '" + a.string() + "'");
    fill(a, 0, 40, 1);
    audit_some(a, 3);
    const auto conf = a / "certmate.conf";
    auto imp = f.db_cmd("import", conf, a);
    BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.output);

    // The target holds cert-00020 (sorted after many others) with another certificate.
    const auto b = f.empty_target(a, "b");
    {
        storage::fs_store other{storage::layout{b}};
        auto r = make_record(20);
        BOOST_REQUIRE(other.create(r, files_for(r, 777'777)));
    }
    const auto before = tree(b);
    auto exp = f.db_cmd("export", conf, b);
    BOOST_TEST(exp.exit_code != 0, exp.output);
    BOOST_TEST(exp.output.find("cert-00020") != std::string::npos, exp.output);
    BOOST_TEST(exp.output.find("different") != std::string::npos, exp.output);
    const auto after = tree(b);
    BOOST_TEST(after.size() == before.size());
    BOOST_TEST((after == before), "the refused export changed files in the target");
    BOOST_TEST(!fs::exists(b / "logs/audit/certificate_audit.log"));
}

// The bulk path `db import` uses: one transaction per lot, so a lot with one identifier (or one
// serial) already taken is refused whole, naming the certificate, and leaves the store as it was;
// a lot written reads back like certificates made one by one (keys sealed and opened again).
BOOST_AUTO_TEST_CASE(pg_store_create_many_is_all_or_nothing_per_lot) {
    db_fixture f;
    auto kek = storage::key_wrap::from_key(std::string(32, '\x42'));
    BOOST_REQUIRE(kek);
    storage::pg_store store(f.conninfo, 2, *kek, "test-bulk");
    BOOST_REQUIRE(store.migrate());
    std::vector<cert_record> recs;
    for (int i = 0; i < 30; ++i) recs.push_back(make_record(i));
    auto lot = [&](int from, int to) {
        std::vector<cert_repository::new_cert> out;
        for (int i = from; i < to; ++i)
            out.push_back({&recs[static_cast<std::size_t>(i)],
                           files_for(recs[static_cast<std::size_t>(i)], static_cast<unsigned>(i))});
        return out;
    };
    BOOST_REQUIRE(store.create_many(lot(0, 10)));
    BOOST_TEST(f.count("certificates") == "10");
    const std::string changes = f.count("changes");

    // 10..19 with 5 again: refused, naming cert-00005; none of 10..19 written.
    auto again = lot(10, 20);
    again.push_back({&recs[5], files_for(recs[5], 5)});
    auto r = store.create_many(again);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().code == errc::already_exists);
    BOOST_TEST(r.error().message.find("cert-00005") != std::string::npos, r.error().message);
    BOOST_TEST(f.count("certificates") == "10");
    BOOST_TEST(f.count("changes") == changes);

    // A new identifier carrying cert-00003's serial: refused, naming both.
    cert_record thief = make_record(25);
    thief.identifier = "thief";
    thief.serial_number = recs[3].serial_number;
    std::vector<cert_repository::new_cert> stolen = lot(20, 22);
    stolen.push_back({&thief, files_for(thief, 99)});
    auto s2 = store.create_many(stolen);
    BOOST_REQUIRE(!s2);
    BOOST_TEST(s2.error().message.find("thief") != std::string::npos, s2.error().message);
    BOOST_TEST(s2.error().message.find("cert-00003") != std::string::npos, s2.error().message);
    BOOST_TEST(f.count("certificates") == "10");

    // What was written reads back as written, through a load and read_file.
    BOOST_REQUIRE(store.create_many(lot(10, 30)));
    auto loaded = store.load_all(2);
    BOOST_REQUIRE(loaded);
    BOOST_REQUIRE_EQUAL(loaded->records.size(), 30u);
    std::map<std::string, const cert_record*> by_id;
    for (const auto& x : loaded->records) by_id.emplace(x.identifier, &x);
    for (int i = 0; i < 30; ++i) {
        const auto& want = recs[static_cast<std::size_t>(i)];
        BOOST_REQUIRE(by_id.count(want.identifier));
        BOOST_TEST((*by_id[want.identifier] == want), want.identifier);
        const auto files = files_for(want, static_cast<unsigned>(i));
        BOOST_TEST(store.read_file(want.usage, want.identifier, file_kind::cert).value() == files.cert_pem);
        if (files.key_pem)
            BOOST_TEST(store.read_file(want.usage, want.identifier, file_kind::key).value() == *files.key_pem);
        else
            BOOST_TEST(store.read_file(want.usage, want.identifier, file_kind::csr).value() == *files.csr_pem);
    }
    BOOST_TEST(f.count("serials") == std::to_string(30 + 3)); // records 0, 13 and 26 carry one old serial each
}

// `certmate serve` on an empty database (no `db migrate` run) creates the schema, the audit table
// included, and serves: bench/pg.sh found it failing with `relation "audit_log" does not exist`.
BOOST_AUTO_TEST_CASE(serve_on_an_empty_database_creates_the_schema) {
    db_fixture f;
    const auto a = f.dir / "a";
    must(f.bin + " init --data-dir '" + a.string() + "'");
    std::vector<std::string> argv{f.bin,
                                  "serve",
                                  "--data-dir",
                                  a.string(),
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--storage.backend",
                                  "postgresql",
                                  "--storage.postgresql",
                                  f.conninfo,
                                  "--storage.key_encryption_key_file",
                                  f.kek.string(),
                                  "--renewal.enabled",
                                  "false"};
    child_process p(argv, f.dir / "serve.err");
    auto line = p.wait_for_line("listening on http://", std::chrono::seconds(60));
    BOOST_REQUIRE_MESSAGE(line, read_text(f.dir / "serve.err"));
    // A create goes into the database, its audit entry too.
    std::string token = read_text(a / "admin.token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    auto r = run("curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer " + token +
                 "' -H 'Content-Type: application/json' -d '{\"common_name\":\"first\",\"identifier\":\"first\"}' "
                 "http://127.0.0.1:" +
                 std::to_string(port_of_listen_line(*line)) + "/api/client-certs");
    BOOST_TEST(r.output == "201", r.output);
    BOOST_TEST(f.count("certificates") == "1");
    BOOST_TEST(f.count("audit_log") != "0");
    p.signal(SIGTERM);
    BOOST_TEST(p.wait_exit(std::chrono::seconds(30)).value_or(-1) == 0);
}
