// The signed audit log as clients see it (docs/audit.md): the audit key made by init, checkpoints
// from the server, GET /api/audit/verify, /api/audit/public-key and /api/audit/export verified
// offline with `openssl pkeyutl`, `certmate audit verify`, and the shutdown checkpoint.
#define BOOST_TEST_MODULE audit_signing
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "app/bootstrap.hpp"
#include "storage/layout.hpp"
#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <sstream>
#include <sys/stat.h>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string create_body(const std::string& id) {
    return R"({"common_name":")" + id + R"(","identifier":")" + id + "\"}";
}

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

BOOST_AUTO_TEST_CASE(init_makes_the_audit_key_0600_pkcs8_with_its_public_half) {
    test_server srv;
    const storage::layout l{srv.data_dir() / "data"};
    BOOST_TEST(mode_of(l.audit_signing_key()) == 0600u);
    BOOST_TEST(mode_of(l.audit_signing_pub()) == 0644u);
    BOOST_TEST(read_text(l.audit_signing_key()).starts_with("-----BEGIN PRIVATE KEY-----"));
    auto pub = run("openssl pkey -in " + l.audit_signing_key().string() + " -pubout");
    BOOST_TEST(pub.exit_code == 0);
    BOOST_TEST(pub.output == read_text(l.audit_signing_pub()));
    BOOST_TEST(run("openssl pkey -in " + l.audit_signing_key().string() + " -noout -text").output.find("ED25519") !=
               std::string::npos);
    // ca_init names the key it was made with.
    auto first = json::parse(lines_of(l.audit_log()).at(0)).as_object();
    BOOST_TEST(first.at("operation").as_string() == "ca_init");
    BOOST_TEST(first.at("details").as_object().at("audit_key_id").as_string().size() == 64u);
}

BOOST_AUTO_TEST_CASE(a_data_dir_without_the_key_gets_one_at_start_audited) {
    temp_dir d;
    token_set tokens;
    auto cfg = test_config(d / "data", tokens);
    BOOST_REQUIRE(app::init_data_dir(cfg, {}));
    const storage::layout l{cfg.data_dir};
    fs::remove(l.audit_signing_key());
    fs::remove(l.audit_signing_pub());
    BOOST_REQUIRE(app::init_data_dir(cfg, {})); // what serve does at start
    BOOST_TEST(fs::exists(l.audit_signing_key()));
    BOOST_TEST(mode_of(l.audit_signing_key()) == 0600u);
    auto lines = lines_of(l.audit_log());
    BOOST_REQUIRE(lines.size() == 2u);
    auto made = json::parse(lines[1]).as_object();
    BOOST_TEST(made.at("operation").as_string() == "audit_key_create");
    BOOST_TEST(made.at("resource_type").as_string() == "audit");
    // A later start changes nothing.
    BOOST_REQUIRE(app::init_data_dir(cfg, {}));
    BOOST_TEST(lines_of(l.audit_log()).size() == 2u);
}

BOOST_AUTO_TEST_CASE(routes_verify_public_key_and_an_export_openssl_verifies) {
    test_server srv([](app::config& c) { c.audit_checkpoint_interval = 3; });
    auto http = srv.client();
    const auto& t = srv.tokens;
    for (const char* id : {"a1", "a2", "a3", "a4"})
        BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs", create_body(id), t.operator_).status, 201u);

    // The public key: for viewers, the same as the file.
    const storage::layout l{srv.config().data_dir};
    auto pk = http.get("/api/audit/public-key", t.viewer);
    BOOST_REQUIRE_EQUAL(pk.status, 200u);
    BOOST_TEST(pk.body == read_text(l.audit_signing_pub()));
    BOOST_TEST(http.get("/api/audit/public-key").status == 401u);

    // Verify: admin only; the chain and the checkpoints the interval made (after seq 3).
    expect_code(http.get("/api/audit/verify", t.operator_), 403, "FORBIDDEN");
    auto v = obj(http.get("/api/audit/verify", t.admin));
    BOOST_TEST(v.at("ok").as_bool());
    BOOST_TEST(v.at("entries").to_number<int>() >= 6);
    BOOST_TEST(v.at("checkpoints_verified").to_number<int>() >= 1);
    BOOST_TEST(lines_of(l.audit_log()).at(3).find("\"operation\":\"checkpoint\"") != std::string::npos);

    // Export: exact bytes of the range, signed; verifies offline with openssl and the public key.
    expect_code(http.get("/api/audit/export?from_seq=1&to_seq=2", t.operator_), 403, "FORBIDDEN");
    auto ex = http.get("/api/audit/export?from_seq=2&to_seq=5", t.admin);
    BOOST_REQUIRE_EQUAL(ex.status, 200u);
    auto o = obj(ex);
    BOOST_TEST(o.at("from_seq").to_number<int>() == 2);
    BOOST_TEST(o.at("to_seq").to_number<int>() == 5);
    BOOST_TEST(o.at("count").to_number<int>() == 4);
    BOOST_TEST(o.at("algorithm").as_string() == "Ed25519");
    const auto all = lines_of(l.audit_log());
    const std::string want = all[1] + "\n" + all[2] + "\n" + all[3] + "\n" + all[4] + "\n";
    BOOST_TEST(str(o, "lines") == want);

    temp_dir w;
    write_text(w / "audit.pub", pk.body);
    write_text(w / "export.json", ex.body);
    // The commands docs/audit.md gives (jq and base64 from coreutils).
    auto files =
        run("cd " + w.path().string() +
            " && jq -j .lines export.json > range.jsonl && jq -r .signature export.json | base64 -d > range.sig");
    BOOST_REQUIRE_MESSAGE(files.exit_code == 0, files.output);
    BOOST_TEST(read_text(w / "range.jsonl") == want);
    const std::string verify =
        "cd " + w.path().string() +
        " && openssl pkeyutl -verify -pubin -inkey audit.pub -rawin -in range.jsonl -sigfile range.sig";
    auto good = run(verify);
    BOOST_TEST(good.exit_code == 0, good.output);
    BOOST_TEST(good.output.find("Signature Verified Successfully") != std::string::npos, good.output);
    std::string changed = want;
    changed[changed.size() / 2] ^= 0x01;
    write_text(w / "range.jsonl", changed);
    auto bad = run(verify);
    BOOST_TEST(bad.exit_code != 0, bad.output);
    BOOST_TEST(bad.output.find("Signature Verified Successfully") == std::string::npos, bad.output);

    // Without to_seq: to the last entry.
    auto rest = obj(http.get("/api/audit/export?from_seq=3", t.admin));
    BOOST_TEST(rest.at("to_seq").to_number<std::size_t>() == all.size());
    // Bad ranges.
    expect_code(http.get("/api/audit/export?from_seq=abc", t.admin), 400, "INVALID_ARGUMENT", "from_seq");
    expect_code(http.get("/api/audit/export?from_seq=0", t.admin), 400, "INVALID_ARGUMENT", "from_seq");
    expect_code(http.get("/api/audit/export?to_seq=-1", t.admin), 400, "INVALID_ARGUMENT", "to_seq");
    expect_code(http.get("/api/audit/export?from_seq=5&to_seq=4", t.admin), 400, "INVALID_ARGUMENT", "to_seq");
    expect_code(http.get("/api/audit/export?from=1", t.admin), 400, "INVALID_ARGUMENT", "from");
    expect_code(http.get("/api/audit/export?from_seq=100000", t.admin), 404, "NOT_FOUND");
}

// `certmate audit verify` checks every checkpoint; a rewritten entry before one fails it (exit 1).
BOOST_AUTO_TEST_CASE(cli_verify_counts_checkpoints_and_fails_on_a_bad_signature) {
    test_server srv([](app::config& c) { c.audit_checkpoint_interval = 2; });
    const auto data = srv.config().data_dir;
    // Each answer comes after its audit entry is on disk; the server stays idle from here on.
    auto http = srv.client();
    for (const char* id : {"b1", "b2", "b3"})
        BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs", create_body(id), srv.tokens.operator_).status, 201u);
    const std::string verify = certmate_binary() + " audit verify --data-dir " + data.string();
    auto ok = run(verify);
    BOOST_TEST(ok.exit_code == 0, ok.output);
    BOOST_TEST(ok.output.find("checkpoints verified") != std::string::npos, ok.output);
    BOOST_TEST(ok.output.find(" 0 checkpoints verified") == std::string::npos, ok.output);

    // Another key's public half: the signatures do not verify.
    temp_dir w;
    BOOST_REQUIRE(run("openssl genpkey -algorithm ed25519 -out " + (w / "k").string() + " && openssl pkey -in " +
                      (w / "k").string() + " -pubout -out " + (w / "k.pub").string())
                      .exit_code == 0);
    auto other = run(verify + " --public-key " + (w / "k.pub").string());
    BOOST_TEST(other.exit_code == 1, other.output);
    BOOST_TEST(other.output.find("checkpoint signature does not verify") != std::string::npos, other.output);

    // Rewrite the first entry (before the first checkpoint) and recompute the whole chain.
    const storage::layout l{data};
    auto lines = lines_of(l.audit_log());
    std::string prev(64, '0'), text;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto o = json::parse(lines[i]).as_object();
        if (i == 0) o["user"] = "mallory";
        o.erase("hash");
        o["prev_hash"] = prev;
        if (o.at("operation").as_string() == "checkpoint") o["details"].as_object()["head_hash"] = prev;
        prev = app::sha256_hex_of(json::serialize(o));
        o["hash"] = prev;
        text += json::serialize(o) + "\n";
    }
    write_text(l.audit_log(), text);
    auto broken = run(verify);
    BOOST_TEST(broken.exit_code == 1, broken.output);
    BOOST_TEST(broken.output.find("checkpoint signature does not verify") != std::string::npos, broken.output);
}

// A torn last line: cut at start, the repair audited with its byte count, verify passes and shows it.
BOOST_AUTO_TEST_CASE(cli_verify_shows_the_repair_of_a_torn_line) {
    temp_dir d;
    token_set tokens;
    auto cfg = test_config(d / "data", tokens);
    BOOST_REQUIRE(app::init_data_dir(cfg, {}));
    const storage::layout l{cfg.data_dir};
    const std::string torn = "{\"seq\":2,\"timestamp\":\"20";
    write_text(l.audit_log(), read_text(l.audit_log()) + torn);
    const std::string verify = certmate_binary() + " audit verify --data-dir " + cfg.data_dir.string();
    BOOST_TEST(run(verify).exit_code == 1);
    BOOST_REQUIRE(app::open_service(cfg)); // what serve does at start
    auto r = run(verify);
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find("repair at seq 2: a torn last line of " + std::to_string(torn.size()) +
                             " bytes was cut") != std::string::npos,
               r.output);
}

// The real binary: SIGTERM ends the log with a signed shutdown checkpoint.
BOOST_AUTO_TEST_CASE(a_clean_shutdown_writes_a_checkpoint) {
    temp_dir d;
    const auto data = d / "data";
    child_process serve({certmate_binary(), "serve", "--data-dir", data.string(), "--listen", "127.0.0.1:0",
                         "--ca.key_type", "ec-p384", "--renewal.enabled", "false"},
                        d / "serve.err");
    auto line = serve.wait_for_line("listening on http://", 30s);
    BOOST_REQUIRE_MESSAGE(line.has_value(), read_text(d / "serve.err"));
    serve.signal(SIGHUP); // reopens the audit log (and keeps serving)
    http_client http(port_of_listen_line(*line));
    BOOST_TEST(http.get("/health").status == 200u);
    serve.signal(SIGTERM);
    BOOST_REQUIRE_EQUAL(serve.wait_exit(30s).value_or(-1), 0);
    auto lines = lines_of(storage::layout{data}.audit_log());
    BOOST_REQUIRE(!lines.empty());
    auto last = json::parse(lines.back()).as_object();
    BOOST_TEST(last.at("operation").as_string() == "checkpoint");
    BOOST_TEST(last.at("details").as_object().at("reason").as_string() == "shutdown");
    auto r = run(certmate_binary() + " audit verify --data-dir " + data.string());
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find("1 checkpoints verified") != std::string::npos, r.output);
}
