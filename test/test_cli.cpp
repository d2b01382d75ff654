// The certmate binary's subcommands, run as an operator would.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>

#include "app/config.hpp"
#include "core/keys.hpp"
#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "support/tools.hpp"

#include <sys/stat.h>

#include <regex>

using certmate::test::run;
using certmate::test::temp_dir;

namespace {
const std::string bin = certmate::test::certmate_binary();
}

BOOST_AUTO_TEST_CASE(version_and_help) {
    auto v = run(bin + " version");
    BOOST_TEST(v.exit_code == 0);
    BOOST_TEST(v.output.rfind("certmate ", 0) == 0u, v.output);
    auto bad = run(bin + " frobnicate");
    BOOST_TEST(bad.exit_code != 0);
    BOOST_TEST(bad.output.find("unknown command") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(token_create_prints_a_token_and_its_hash_line) {
    auto r = run(bin + " token create --name ci --role operator");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    std::smatch m;
    BOOST_REQUIRE(std::regex_search(r.output, m, std::regex("token: (cm_[A-Za-z0-9_-]+)")));
    const std::string token = m[1];
    BOOST_TEST(r.output.find("token = ci:operator:" + certmate::sha256_hex(token).value()) != std::string::npos,
               r.output);
    BOOST_TEST(run(bin + " token create --name ci --role root").exit_code != 0);
}

BOOST_AUTO_TEST_CASE(init_creates_ca_token_and_starter_config) {
    temp_dir d;
    auto r = run(bin + " init --data-dir " + d.path().string() + " --ca.key_type ec-p384");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find("created CA") != std::string::npos, r.output);
    // stdout is a pipe here: the token is only in admin.token, never in the output (a journal).
    std::string token = certmate::test::read_text(d / "admin.token");
    BOOST_REQUIRE(std::regex_match(token, std::regex("cm_[A-Za-z0-9_-]{32}\n")));
    token.pop_back();
    BOOST_TEST(r.output.find(token) == std::string::npos, r.output);
    BOOST_TEST(r.output.find("cm_") == std::string::npos, r.output);
    BOOST_TEST(r.output.find("admin token written to " + (d / "admin.token").string()) != std::string::npos, r.output);
    BOOST_TEST(
        certmate::test::read_text(d / "certmate.conf").find("admin:admin:" + certmate::sha256_hex(token).value()) !=
        std::string::npos);
    for (const char* f : {"admin.token", "certs/ca/ca.key", "certs/ocsp/responder.key"}) {
        struct stat st {};
        BOOST_REQUIRE(::stat((d / f).c_str(), &st) == 0);
        BOOST_TEST((st.st_mode & 0777) == 0600u, f);
    }
    BOOST_TEST(run("openssl x509 -noout -text -in " + (d / "certs/ca/ca.crt").string()).output.find("CA:TRUE") !=
               std::string::npos);
    // Idempotent: a second init keeps the CA and prints no new token.
    auto again = run(bin + " init --data-dir " + d.path().string());
    BOOST_TEST(again.exit_code == 0);
    BOOST_TEST(again.output.find("CA exists") != std::string::npos, again.output);
    BOOST_TEST(again.output.find("admin token") == std::string::npos, again.output);
    BOOST_TEST(certmate::test::read_text(d / "admin.token") == token + "\n");
    auto audit = run(bin + " audit verify --data-dir " + d.path().string());
    BOOST_TEST(audit.output.find("ok 1 entries") != std::string::npos, audit.output);
}

BOOST_AUTO_TEST_CASE(check_config_names_the_bad_key_file_and_line) {
    temp_dir d;
    certmate::test::write_text(d / "typo.conf", "[server]\nhttp_listen = 127.0.0.1:0\n\n[rate_limit]\ncraete = 5\n");
    auto typo = run(bin + " serve --check-config -c " + (d / "typo.conf").string());
    BOOST_TEST(typo.exit_code != 0);
    BOOST_TEST(typo.output.find("typo.conf:5") != std::string::npos, typo.output);
    BOOST_TEST(typo.output.find("rate_limit.craete") != std::string::npos, typo.output);
    BOOST_TEST(typo.output.find("unknown key") != std::string::npos, typo.output);

    // Not only --check-config: a plain start refuses the file too, before touching the data dir.
    auto start = run(bin + " serve -c " + (d / "typo.conf").string() + " --data-dir " + (d / "data").string());
    BOOST_TEST(start.exit_code != 0);
    BOOST_TEST(start.output.find("rate_limit.craete") != std::string::npos, start.output);
    BOOST_TEST(!std::filesystem::exists(d / "data"));

    certmate::test::write_text(d / "neg.conf", "[rate_limit]\ncreate = -5\n");
    auto neg = run(bin + " serve --check-config -c " + (d / "neg.conf").string());
    BOOST_TEST(neg.exit_code != 0);
    BOOST_TEST(neg.output.find("neg.conf:2") != std::string::npos, neg.output);
    BOOST_TEST(neg.output.find("rate_limit.create") != std::string::npos, neg.output);

    auto example = run(bin + " serve --check-config -c " + std::string(CERTMATE_SOURCE_DIR) + "/certmate.conf.example");
    BOOST_TEST(example.exit_code == 0, example.output);
    BOOST_TEST(example.output.find("config ok") != std::string::npos);

    auto flag = run(bin + " serve --check-config --server.http_listen nonsense");
    BOOST_TEST(flag.exit_code != 0);
    BOOST_TEST(flag.output.find("server.http_listen") != std::string::npos, flag.output);

    // A CA key type init cannot make: the message names all four it can.
    auto key = run(bin + " serve --check-config --ca.key_type ed25519");
    BOOST_TEST(key.exit_code != 0);
    BOOST_TEST(key.output.find("ca.key_type") != std::string::npos, key.output);
    BOOST_TEST(key.output.find("rsa4096, rsa3072, ec-p384 or ec-p256") != std::string::npos, key.output);
}

BOOST_AUTO_TEST_CASE(the_database_settings_are_checked_and_a_password_in_them_refused) {
    const std::string pg = " serve --check-config --storage.backend postgresql";
    auto none = run(bin + pg + " --storage.key_encryption_key_file /k");
    BOOST_TEST(none.exit_code != 0);
    BOOST_TEST(none.output.find("storage.postgresql") != std::string::npos, none.output);
    auto no_kek = run(bin + pg + " --storage.postgresql 'dbname=certmate'");
    BOOST_TEST(no_kek.exit_code != 0);
    BOOST_TEST(no_kek.output.find("storage.key_encryption_key_file") != std::string::npos, no_kek.output);
    for (const char* secret : {"host=db dbname=certmate password=hunter2", "postgresql://certmate:hunter2@db/certmate",
                               "host=db PASSWORD = hunter2"}) {
        auto r = run(bin + pg + " --storage.key_encryption_key_file /k --storage.postgresql '" + secret + "'");
        BOOST_TEST(r.exit_code != 0, secret);
        BOOST_TEST(r.output.find("must not hold a password") != std::string::npos, r.output);
        BOOST_TEST(r.output.find("hunter2") == std::string::npos, "the password is echoed: " << r.output);
    }
    auto ok = run(bin + pg +
                  " --storage.key_encryption_key_file /k --storage.postgresql "
                  "'postgresql://certmate@db/certmate?passfile=/etc/certmate/pgpass'");
    BOOST_TEST(ok.exit_code == 0, ok.output);
    auto bad = run(bin + " serve --check-config --storage.backend mysql");
    BOOST_TEST(bad.exit_code != 0);
    BOOST_TEST(bad.output.find("fs or postgresql") != std::string::npos, bad.output);
    // The db commands need the database named.
    auto db = run(bin + " db migrate");
    BOOST_TEST(db.exit_code == 2, db.output);
    BOOST_TEST(db.output.find("storage.backend = postgresql") != std::string::npos, db.output);
}

BOOST_AUTO_TEST_CASE(init_on_a_terminal_prints_the_admin_token) {
    temp_dir d;
    // script(1) gives the command a pseudo-terminal as stdout.
    auto r = run("script -qec '" + bin + " init --data-dir " + d.path().string() + " --ca.key_type ec-p256' /dev/null");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    std::string token = certmate::test::read_text(d / "admin.token");
    token.erase(token.find_last_not_of('\n') + 1);
    BOOST_TEST(r.output.find("admin token (shown once, also in " + (d / "admin.token").string() + "): " + token) !=
                   std::string::npos,
               r.output);
}

// `certmate audit verify` on a chain with one edited byte names the line (docs/audit.md).
BOOST_AUTO_TEST_CASE(audit_verify_names_the_edited_line) {
    temp_dir d;
    auto init = run(bin + " init --data-dir " + d.path().string() + " --ca.key_type ec-p384");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const certmate::storage::layout l{d.path()};
    {
        auto log = certmate::storage::audit_log::open(l.audit_log(), [] { return std::chrono::system_clock::now(); });
        BOOST_REQUIRE(log);
        for (const char* id : {"a1", "a2", "a3"}) {
            certmate::audit_entry e;
            e.operation = "create";
            e.resource_type = "certificate";
            e.resource_id = id;
            e.status = "success";
            e.user = "tester";
            BOOST_REQUIRE((*log)->append(e).has_value());
        }
    }
    const std::string verify = bin + " audit verify --data-dir " + d.path().string();
    auto ok = run(verify);
    BOOST_TEST(ok.exit_code == 0, ok.output);
    // Edit one byte of line 3 (the entry for a2): verify names line 3.
    std::string text = certmate::test::read_text(l.audit_log());
    auto at = text.find("\"resource_id\":\"a2\"");
    BOOST_REQUIRE(at != std::string::npos);
    text[at + 16] = 'b';
    certmate::test::write_text(l.audit_log(), text);
    auto broken = run(verify);
    BOOST_TEST(broken.exit_code != 0);
    BOOST_TEST(broken.output.find("line 3") != std::string::npos, broken.output);
}

BOOST_AUTO_TEST_CASE(config_rejects_unknown_keys_and_bad_values_naming_them) {
    temp_dir t;
    // Loading `text` as `name` throws an error naming `where` (file:line) and `key`.
    auto rejected = [&](const std::string& name, const std::string& text, const std::string& what,
                        const std::string& where, const std::string& key) {
        certmate::test::write_text(t / name, text);
        try {
            (void)certmate::app::load_config(t / name, {});
            BOOST_FAIL("accepted " + what);
        } catch (const certmate::error_exception& e) {
            BOOST_TEST(e.err.message.find(where) != std::string::npos, e.err.message);
            BOOST_TEST(e.err.message.find(key) != std::string::npos, e.err.message);
        }
    };
    rejected("c.conf", "[server]\nhttp_listen = 127.0.0.1:0\n[rate_limit]\ncreate = -5\n", "a negative rate limit",
             "c.conf:4", "rate_limit.create");
    rejected("d.conf", "[server]\nhttp_lisen = 127.0.0.1:0\n", "a typo", "d.conf:2", "http_lisen");
}
