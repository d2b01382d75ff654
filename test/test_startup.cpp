// The built binary around start-up (issue 10, points 10-13): the listener certificate from
// `init --server-cert` is known to OCSP, the CRL and revocation; the admin token stays out of
// piped stdout; the CA key passphrase holds on restore, backup and serve; temp leftovers of
// interrupted writes are removed at start; the start-up snapshot (issue 15) is used only while it
// matches the certificate directories.
#define BOOST_TEST_MODULE startup
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <thread>

using namespace certmate::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string bin = certmate_binary();

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string token_of(const fs::path& data) {
    std::string t = read_text(data / "admin.token");
    t.erase(t.find_last_not_of('\n') + 1);
    return t;
}

// `certmate serve` on `data` (port 0) with `extra` arguments; stdout read by the caller.
struct server {
    fs::path data;
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;

    server(const fs::path& dir, const fs::path& data_dir, std::vector<std::string> extra = {}) : data(data_dir) {
        std::vector<std::string> argv{bin, "serve", "--data-dir", data.string(), "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc = std::make_unique<child_process>(argv, dir / "serve.err");
        auto line = proc->wait_for_line("listening on http://", 30s);
        BOOST_REQUIRE_MESSAGE(line, read_text(dir / "serve.err"));
        port = port_of_listen_line(*line);
    }
    ~server() {
        if (!proc) return; // killed
        proc->signal(SIGTERM);
        BOOST_TEST(proc->wait_exit(20s).value_or(-1) == 0);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

// `openssl ocsp` for `cert` against the server: the status word printed for it.
std::string ocsp_status(const server& s, const fs::path& cert) {
    const auto ca = (s.data / "certs/ca/ca.crt").string();
    auto r = run("openssl ocsp -url " + s.url() + "/ocsp -issuer " + ca + " -CAfile " + ca + " -cert " + cert.string());
    BOOST_TEST_INFO("ocsp: " << r.output);
    BOOST_TEST(has(r.output, "Response verify OK"));
    for (const char* w : {"good", "revoked", "unknown"})
        if (has(r.output, cert.string() + ": " + w)) return w;
    return "no answer";
}

// The serial of `cert` as `openssl crl -text` prints it (upper-case hex).
std::string serial_hex(const fs::path& cert) {
    auto r = run("openssl x509 -noout -serial -in " + cert.string());
    BOOST_REQUIRE(r.exit_code == 0);
    auto s = r.output.substr(r.output.find('=') + 1);
    s.erase(s.find_last_not_of('\n') + 1);
    return s;
}

// Plants `path` with some bytes, `age` old.
void plant(const fs::path& path, std::chrono::seconds age = 0s) {
    write_text(path, "half-written");
    if (age.count()) fs::last_write_time(path, fs::file_time_type::clock::now() - age);
}

} // namespace

BOOST_AUTO_TEST_CASE(the_init_server_certificate_is_known_to_ocsp_the_crl_and_revocation) {
    temp_dir dir;
    const auto data = dir / "data";
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256 --server-cert localhost");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const auto crt = data / "tls/server.crt";

    server s(dir.path(), data);
    BOOST_TEST(ocsp_status(s, crt) == "good");

    http_client http(s.port);
    const auto admin = token_of(data);
    auto list = http.get("/api/client-certs?cert_usage=server", admin);
    BOOST_REQUIRE_EQUAL(list.status, 200u);
    const auto items = obj(list).at("certificates").as_array();
    BOOST_REQUIRE_EQUAL(items.size(), 1u);
    const auto item = items.at(0).as_object();
    const std::string id = str(item, "identifier");
    BOOST_TEST(str(item, "cert_usage") == "server");
    BOOST_TEST(str(item, "common_name") == "localhost");
    BOOST_TEST(item.at("has_private_key") == boost::json::value(false));
    auto stats = obj(http.get("/api/client-certs/stats", admin));
    BOOST_TEST(stats.at("by_usage").as_object().at("server") == boost::json::value(1), boost::json::serialize(stats));
    // No key is held in the store: it is tls/server.key.
    BOOST_TEST(http.get("/api/client-certs/" + id + "/private-key", admin).status == 404u);

    auto rev = http.post_json("/api/client-certs/" + id + "/revoke", R"({"reason":"keyCompromise"})", admin);
    BOOST_REQUIRE_MESSAGE(rev.status == 200u, rev.body);
    BOOST_TEST(ocsp_status(s, crt) == "revoked");
    // The CRL (rebuilt in the background) carries the serial.
    const auto hex = serial_hex(crt);
    std::string text;
    eventually(
        [&] {
            write_text(dir / "crl.der", http.get("/crl.der").body);
            text = run("openssl crl -inform DER -noout -text -in " + (dir / "crl.der").string()).output;
            return has(text, "Serial Number: " + hex);
        },
        10s, 100ms);
    BOOST_TEST(has(text, "Serial Number: " + hex), text);
    BOOST_TEST(has(text, "Key Compromise"), text);
}

BOOST_AUTO_TEST_CASE(first_serve_writes_the_admin_token_to_admin_token_only) {
    temp_dir dir;
    const auto data = dir / "data";
    // stdout into a file, as a service manager's journal would take it.
    const auto out = dir / "stdout.txt";
    child_process proc({"/bin/sh", "-c",
                        "exec " + bin + " serve --data-dir " + data.string() +
                            " --listen 127.0.0.1:0 --ca.key_type ec-p256 >" + out.string()},
                       dir / "serve.err");
    std::string text;
    eventually(
        [&] {
            if (fs::exists(out)) text = read_text(out);
            return has(text, "listening on");
        },
        30s, 100ms);
    BOOST_REQUIRE_MESSAGE(has(text, "listening on"), read_text(dir / "serve.err"));
    const auto token = token_of(data);
    BOOST_TEST(token.rfind("cm_", 0) == 0u);
    BOOST_TEST(!has(text, token), text);
    BOOST_TEST(!has(read_text(dir / "serve.err"), token));
    BOOST_TEST(has(text, "admin token written to " + (data / "admin.token").string()), text);
    proc.signal(SIGTERM);
    BOOST_TEST(proc.wait_exit(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(with_a_passphrase_the_ca_key_is_written_encrypted_by_backup_restore_and_serve) {
    temp_dir dir;
    const auto data = dir / "data";
    const auto pw = dir / "pw";
    write_text(pw, "correct horse battery staple\n");
    const std::string with_pw = " --ca.passphrase_file " + pw.string();
    const std::string encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    BOOST_REQUIRE(read_text(data / "certs/ca/ca.key").rfind("-----BEGIN PRIVATE KEY-----", 0) == 0u);

    // backup of the plain key with a passphrase set: the archive holds it encrypted.
    const auto plain_tar = dir / "plain.tar", enc_tar = dir / "enc.tar";
    BOOST_REQUIRE(run(bin + " ca backup --out " + plain_tar.string() + " --data-dir " + data.string()).exit_code == 0);
    auto b = run(bin + " ca backup --out " + enc_tar.string() + " --data-dir " + data.string() + with_pw);
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.output);
    const auto member = run("tar -xOf " + enc_tar.string() + " certs/ca/ca.key").output;
    BOOST_TEST(member.rfind(encrypted, 0) == 0u, member.substr(0, 40));
    BOOST_TEST(run("printf '%s' '" + member + "' | openssl pkey -noout -passin file:" + pw.string()).exit_code == 0);
    BOOST_TEST(
        run("tar -xOf " + plain_tar.string() + " certs/ca/ca.key").output.rfind("-----BEGIN PRIVATE KEY-----", 0) ==
        0u);

    // restore of a plain archive with a passphrase set: written encrypted.
    const auto restored = dir / "restored";
    auto r = run(bin + " ca restore --in " + plain_tar.string() + " --data-dir " + restored.string() + with_pw);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto key = read_text(restored / "certs/ca/ca.key");
    BOOST_TEST(key.rfind(encrypted, 0) == 0u, key.substr(0, 40));
    BOOST_TEST(
        run("openssl pkey -noout -in " + (restored / "certs/ca/ca.key").string() + " -passin file:" + pw.string())
            .exit_code == 0);
    BOOST_TEST(has(read_text(restored / "logs/audit/certificate_audit.log"), "\"key_encrypted_with_passphrase\":true"));

    // serve on the plain key with a passphrase: encrypted in place at start, audited.
    {
        server s(dir.path(), data, {"--ca.passphrase_file", pw.string()});
        const auto now = read_text(data / "certs/ca/ca.key");
        BOOST_TEST(now.rfind(encrypted, 0) == 0u, now.substr(0, 40));
        BOOST_TEST(has(read_text(dir / "serve.err"), "encrypted it in place"));
        BOOST_TEST(http_client(s.port).get("/health").status == 200u);
    }
    BOOST_TEST(has(read_text(data / "logs/audit/certificate_audit.log"), "ca_key_encrypt"));
    auto verify = run(bin + " audit verify --data-dir " + data.string());
    BOOST_TEST(verify.exit_code == 0, verify.output);
    // And the next start without the passphrase is refused: the key is encrypted.
    auto refused = run("timeout 30 " + bin + " serve --data-dir " + data.string() + " --listen 127.0.0.1:0");
    BOOST_TEST(refused.exit_code != 0);
    BOOST_TEST(has(refused.output, "no passphrase"), refused.output);
}

// A wrong or missing CA passphrase stops `certmate serve` at start with the start-up error code (2)
// and a message naming the key file and the setting to fix; it never serves, crashes or answers 500.
BOOST_AUTO_TEST_CASE(a_bad_ca_passphrase_is_a_start_up_error_naming_ca_passphrase_file) {
    temp_dir dir;
    const auto data = dir / "data";
    write_text(dir / "pw", "correct horse battery staple\n");
    write_text(dir / "wrong", "incorrect horse\n");
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256 --ca.passphrase_file " +
                    (dir / "pw").string());
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const std::string serve = "timeout 30 " + bin + " serve --data-dir " + data.string() + " --listen 127.0.0.1:0";
    const std::string key = (data / "certs/ca/ca.key").string();

    auto wrong = run(serve + " --ca.passphrase_file " + (dir / "wrong").string());
    BOOST_TEST(wrong.exit_code == 2, wrong.output);
    BOOST_TEST(has(wrong.output, "ca.passphrase_file (" + (dir / "wrong").string() + ")"), wrong.output);
    BOOST_TEST(has(wrong.output, "wrong passphrase"), wrong.output);
    BOOST_TEST(has(wrong.output, key), wrong.output);

    auto wrong_env = run("CERTMATE_CA_PASSPHRASE=incorrect " + serve);
    BOOST_TEST(wrong_env.exit_code == 2, wrong_env.output);
    BOOST_TEST(has(wrong_env.output, "passphrase from CERTMATE_CA_PASSPHRASE: wrong passphrase"), wrong_env.output);

    auto none = run(serve);
    BOOST_TEST(none.exit_code == 2, none.output);
    BOOST_TEST(has(none.output, "is encrypted and no passphrase is configured: set ca.passphrase_file"), none.output);
    BOOST_TEST(has(none.output, key), none.output);

    // The right one still starts.
    server s(dir.path(), data, {"--ca.passphrase_file", (dir / "pw").string()});
    BOOST_TEST(http_client(s.port).get("/health").status == 200u);
}

BOOST_AUTO_TEST_CASE(serve_start_removes_every_temp_leftover_of_an_interrupted_write) {
    temp_dir dir;
    const auto data = dir / "data";
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256 --server-cert localhost");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    fs::path cert_dir; // the listener certificate's directory in the store
    for (const auto& e : fs::recursive_directory_iterator(data / "certs/client"))
        if (e.path().filename() == "metadata.json") cert_dir = e.path().parent_path();
    BOOST_REQUIRE(!cert_dir.empty());
    const std::vector<fs::path> leftovers = {
        data / "certs/crl/.crl.der.tmp-0123456789ab",        data / "certs/crl/.crl_state.json.tmp-0123456789ab",
        data / "certs/ca/.ca.key.tmp-0123456789ab",          data / "certs/ca/.crl.pem.tmp-abcdef012345",
        data / "state/.renewal_sweep.json.tmp-0123456789ab", data / ".admin.token.tmp-0123456789ab",
        data / "certs/ocsp/.responder.key.tmp-0123456789ab", data / "tls/.server.key.tmp-0123456789ab",
        cert_dir / ".metadata.json.tmp-0123456789ab",        data / "certs/audit/.audit_signing.key.tmp-0123456789ab"};
    for (const auto& p : leftovers) plant(p);
    const std::vector<fs::path> not_ours = {data / "state/.notes.tmp-mine", data / "certs/ca/ca.key.bak"};
    for (const auto& p : not_ours) plant(p);

    {
        server s(dir.path(), data);
        for (const auto& p : leftovers) BOOST_TEST(!fs::exists(p), p.string() << " survived the start");
        for (const auto& p : not_ours) BOOST_TEST(fs::exists(p), p.string() << " was removed");
    }
    const auto log = read_text(dir / "serve.err");
    BOOST_TEST(has(log, "certs/crl/.crl.der.tmp-0123456789ab"), log);
    BOOST_TEST(has(log, ".admin.token.tmp-0123456789ab"), log);
}

BOOST_AUTO_TEST_CASE(init_removes_old_temp_leftovers_and_leaves_writes_that_may_be_in_flight) {
    temp_dir dir;
    const auto data = dir / "data";
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const auto old_crl = data / "certs/crl/.crl.der.tmp-0123456789ab";
    const auto old_state = data / "state/.renewal_sweep.json.tmp-0123456789ab";
    const auto fresh = data / "certs/crl/.crl.der.tmp-fedcba987654";
    plant(old_crl, 3600s);
    plant(old_state, 3600s);
    plant(fresh);
    auto again = run(bin + " init --data-dir " + data.string());
    BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.output);
    BOOST_TEST(!fs::exists(old_crl));
    BOOST_TEST(!fs::exists(old_state));
    BOOST_TEST(fs::exists(fresh)); // a running server may be writing it
    BOOST_TEST(has(again.output, old_crl.string()), again.output);
}

// A key file that only looks encrypted (a plain key with an encryption marker after it, or an
// encrypted block followed by the plain key) was taken for encrypted by a substring test: `ca
// restore` with a passphrase wrote it as it was, and `serve` left it plain for good.
BOOST_AUTO_TEST_CASE(a_plain_ca_key_that_only_looks_encrypted_is_still_encrypted_by_restore_and_serve) {
    temp_dir dir;
    const auto data = dir / "data";
    const auto pw = dir / "pw";
    write_text(pw, "correct horse battery staple\n");
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const auto plain_tar = dir / "plain.tar";
    BOOST_REQUIRE(run(bin + " ca backup --out " + plain_tar.string() + " --data-dir " + data.string()).exit_code == 0);
    const std::string plain = read_text(data / "certs/ca/ca.key");
    const auto enc =
        run("openssl pkey -in " + (data / "certs/ca/ca.key").string() + " -aes256 -passout file:" + pw.string());
    BOOST_REQUIRE(enc.exit_code == 0);
    const std::string encrypted_block = enc.output.substr(enc.output.find("-----BEGIN"));

    // Truly encrypted: one PEM block, and no passphrase opens it.
    auto only_encrypted = [&](const fs::path& key) {
        const auto text = read_text(key);
        std::size_t blocks = 0;
        for (auto p = text.find("-----BEGIN "); p != std::string::npos; p = text.find("-----BEGIN ", p + 1)) ++blocks;
        BOOST_TEST(blocks == 1u, text);
        BOOST_TEST(run("openssl pkey -noout -in " + key.string() + " -passin pass:not-the-passphrase").exit_code != 0,
                   key.string() << " loads without the passphrase:\n"
                                << text);
        BOOST_TEST(run("openssl pkey -noout -in " + key.string() + " -passin file:" + pw.string()).exit_code == 0);
    };

    const std::vector<std::pair<std::string, std::string>> spoofs = {
        {"marker", plain + "Proc-Type: 4,ENCRYPTED\n"},
        {"both", encrypted_block + plain},
    };
    for (const auto& [name, key] : spoofs) {
        BOOST_TEST_CONTEXT(name) {
            // ca restore with a passphrase, from an archive whose ca.key is the spoof.
            const auto x = dir / ("x-" + name);
            fs::create_directories(x);
            BOOST_REQUIRE(run("tar -xf " + plain_tar.string() + " -C " + x.string()).exit_code == 0);
            write_text(x / "certs/ca/ca.key", key);
            const auto tar = dir / (name + ".tar");
            BOOST_REQUIRE(
                run("cd " + x.string() + " && tar --format=ustar -cf " + tar.string() + " $(find certs -type f | sort)")
                    .exit_code == 0);
            const auto restored = dir / ("restored-" + name);
            auto r = run(bin + " ca restore --in " + tar.string() + " --data-dir " + restored.string() +
                         " --ca.passphrase_file " + pw.string());
            BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
            only_encrypted(restored / "certs/ca/ca.key");

            // serve with a passphrase on a data dir whose ca.key is the spoof: encrypted at start.
            const auto live = dir / ("live-" + name);
            fs::copy(data, live, fs::copy_options::recursive);
            write_text(live / "certs/ca/ca.key", key);
            fs::permissions(live / "certs/ca/ca.key", fs::perms(0600));
            {
                server s(dir.path(), live, {"--ca.passphrase_file", pw.string()});
                only_encrypted(live / "certs/ca/ca.key");
            }
        }
    }
}

// The start-up clean-up removes temp files whatever their age and rolls interrupted creates and
// replaces forward or back: a second `serve` on a live data dir (here on another port; it did the
// same when it then failed to bind the live one's) deleted the live server's writes in flight.
BOOST_AUTO_TEST_CASE(a_second_serve_on_a_live_data_dir_is_refused_before_touching_it) {
    temp_dir dir;
    const auto data = dir / "data";
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    server live(dir.path(), data);
    // A write of the live server in flight.
    const auto in_flight = data / "certs/crl/.crl.der.tmp-0123456789ab";
    plant(in_flight);
    auto second = run("timeout 15 " + bin + " serve --data-dir " + data.string() + " --listen 127.0.0.1:0");
    BOOST_TEST(second.exit_code != 0);
    BOOST_TEST(second.exit_code != 124, "the second server ran");
    BOOST_TEST(has(second.output, "another certmate serve is running"), second.output);
    BOOST_TEST(fs::exists(in_flight), "the second server removed the live one's write in flight");
    BOOST_TEST(http_client(live.port).get("/health").status == 200u);
}

// ---- the start-up snapshot (docs/architecture.md "Start-up snapshot") ----
namespace {

// A server that may also be killed (SIGKILL, no clean stop).
struct killable_server {
    std::unique_ptr<server> s;
    killable_server(const fs::path& dir, const fs::path& data, std::vector<std::string> extra = {})
        : s(std::make_unique<server>(dir, data, std::move(extra))) {}
    void kill() {
        s->proc->signal(SIGKILL);
        BOOST_TEST(s->proc->wait_exit(20s).value_or(-1) == 128 + SIGKILL);
        s->proc.reset();
    }
};

// Every certificate as the API lists it (fields that do not depend on the clock), by identifier.
std::string state_of(unsigned short port, const std::string& token) {
    http_client http(port);
    auto r = http.get("/api/client-certs?limit=1000&sort=identifier", token);
    BOOST_REQUIRE_MESSAGE(r.status == 200u, r.body);
    std::string out;
    const auto body = obj(r);
    for (const auto& v : body.at("certificates").as_array()) {
        const auto& o = v.as_object();
        for (const char* k : {"identifier", "serial_number", "status", "notes", "common_name", "cert_usage"})
            out += (o.contains(k) ? boost::json::serialize(o.at(k)) : std::string("-")) + " ";
        out += "\n";
    }
    return out;
}

void create_cert(http_client& http, const std::string& token, const std::string& id) {
    auto r =
        http.post_json("/api/client-certs",
                       R"({"identifier":")" + id + R"(","common_name":")" + id + R"(","key_type":"ec-p256"})", token);
    BOOST_REQUIRE_MESSAGE(r.status == 201u, r.body);
}

// serve.err lines of the last start-up: how the records were found.
std::string start_line(const fs::path& dir) {
    std::string last;
    for (const auto& l : lines_of(dir / "serve.err"))
        if (has(l, "start-up from")) last = l;
    return last;
}

// No temp file of an interrupted write left in state/.
void no_leftovers(const fs::path& data) {
    for (const auto& e : fs::directory_iterator(data / "state"))
        BOOST_TEST(!has(e.path().filename().string(), ".tmp-"), e.path());
}

// An initialised data dir with certificates a, b and c (c has notes), stopped cleanly.
std::string populate(const fs::path& dir, const fs::path& data) {
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p256");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    const auto token = token_of(data);
    server s(dir, data);
    http_client http(s.port);
    for (const char* id : {"a", "b", "c"}) create_cert(http, token, id);
    auto p = http.patch_json("/api/client-certs/c", R"({"notes":"original-notes"})", token);
    BOOST_REQUIRE_MESSAGE(p.status == 200u, p.body);
    return state_of(s.port, token);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_clean_restart_starts_from_the_snapshot_with_the_same_state) {
    temp_dir dir;
    const auto data = dir / "data";
    const auto before = populate(dir.path(), data);
    BOOST_REQUIRE(fs::exists(data / "state/index.snapshot"));
    BOOST_TEST(((fs::status(data / "state/index.snapshot").permissions() & fs::perms(0077)) == fs::perms::none));
    const auto token = token_of(data);
    server s(dir.path(), data);
    BOOST_TEST(has(start_line(dir.path()), "start-up from the snapshot: 3 certificates, 0 directories read anew"),
               start_line(dir.path()));
    BOOST_TEST(state_of(s.port, token) == before);
    no_leftovers(data);
}

BOOST_AUTO_TEST_CASE(after_sigkill_following_create_revoke_and_patch_the_restart_sees_every_change) {
    temp_dir dir;
    const auto data = dir / "data";
    populate(dir.path(), data);
    const auto token = token_of(data);
    std::string after;
    {
        // Started from the snapshot; the changes are not in it, and the server dies before writing another.
        killable_server k(dir.path(), data, {"--storage.snapshot_delay", "3600"});
        http_client http(k.s->port);
        create_cert(http, token, "d");
        auto r = http.post_json("/api/client-certs/a/revoke", R"({"reason":"keyCompromise"})", token);
        BOOST_REQUIRE_MESSAGE(r.status == 200u, r.body);
        auto p = http.patch_json("/api/client-certs/b", R"({"notes":"patched-before-the-kill"})", token);
        BOOST_REQUIRE_MESSAGE(p.status == 200u, p.body);
        after = state_of(k.s->port, token);
        k.kill();
    }
    BOOST_TEST(has(after, "\"revoked\""));
    server s(dir.path(), data);
    BOOST_TEST(has(start_line(dir.path()), "start-up from the full scan (snapshot missing)"), start_line(dir.path()));
    BOOST_TEST(state_of(s.port, token) == after);
    no_leftovers(data);
}

BOOST_AUTO_TEST_CASE(an_older_snapshot_is_used_only_for_the_directories_that_did_not_change) {
    temp_dir dir;
    const auto data = dir / "data";
    populate(dir.path(), data);
    const auto token = token_of(data);
    // The snapshot of a, b, c; then a revoked, b patched, d created, and a clean stop (a new snapshot).
    fs::copy_file(data / "state/index.snapshot", dir / "old.snapshot");
    std::string after;
    {
        server s(dir.path(), data);
        http_client http(s.port);
        create_cert(http, token, "d");
        auto r = http.post_json("/api/client-certs/a/revoke", R"({"reason":"keyCompromise"})", token);
        BOOST_REQUIRE_MESSAGE(r.status == 200u, r.body);
        auto p = http.patch_json("/api/client-certs/b", R"({"notes":"patched-after-the-snapshot"})", token);
        BOOST_REQUIRE_MESSAGE(p.status == 200u, p.body);
        after = state_of(s.port, token);
    }
    // The old snapshot back (a restored backup, a clock step): its stamps no longer match a, b, d.
    fs::copy_file(dir / "old.snapshot", data / "state/index.snapshot", fs::copy_options::overwrite_existing);
    server s(dir.path(), data);
    BOOST_TEST(has(start_line(dir.path()), "start-up from the snapshot: 4 certificates, 3 directories read anew"),
               start_line(dir.path()));
    BOOST_TEST(state_of(s.port, token) == after);
    no_leftovers(data);
}

BOOST_AUTO_TEST_CASE(a_damaged_or_truncated_snapshot_falls_back_to_the_full_scan_with_the_same_state) {
    temp_dir dir;
    const auto data = dir / "data";
    const auto before = populate(dir.path(), data);
    const auto token = token_of(data);
    const auto snap = data / "state/index.snapshot";
    const std::string good = read_text(snap);
    // One byte of c's notes changed: a loader that trusted the file would show "original-notez".
    std::string damaged = good;
    const auto at = damaged.find("original-notes");
    BOOST_REQUIRE(at != std::string::npos);
    damaged[at + 13] = 'z';
    const std::pair<std::string, std::string> cases[] = {{damaged, "checksum mismatch"},
                                                         {good.substr(0, good.size() / 2), "checksum mismatch"},
                                                         {good.substr(0, 5), "bad magic or truncated"}};
    for (const auto& [text, why] : cases) {
        write_text(snap, text);
        server s(dir.path(), data);
        BOOST_TEST(has(start_line(dir.path()), "start-up from the full scan (snapshot corrupt: "),
                   start_line(dir.path()));
        BOOST_TEST(has(start_line(dir.path()), why), start_line(dir.path()));
        BOOST_TEST(state_of(s.port, token) == before);
    }
    // The clean stops above wrote a good snapshot again.
    server s(dir.path(), data);
    BOOST_TEST(has(start_line(dir.path()), "start-up from the snapshot: 3 certificates, 0 directories"),
               start_line(dir.path()));
    no_leftovers(data);
}
