// The command line as an operator uses it (issue 16, docs/cli.md): help for every command, typos
// answered with a suggestion and exit 2, and the API client against the real server binary
// (`certmate serve` on 127.0.0.1 with a temp data dir, its admin token from DIR/admin.token):
// create writes files `openssl verify` accepts, list pages, revoke shows in `ocsp check` and
// `crl check`, renew/download/unhold, mTLS on the TLS listener, and `inspect` agreeing with
// `openssl x509/req/crl/ocsp`.
#define BOOST_TEST_MODULE cli_client
#include <boost/test/unit_test.hpp>

#include "core/keys.hpp"
#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/two_instances.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <regex>
#include <thread>
#include <set>
#include <sstream>

using namespace certmate::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

const std::string bin = certmate_binary();

unsigned file_mode(const fs::path& p) {
    struct stat st {};
    BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

// `certmate serve` as a child process: cheap keys, no rate limits, public_url on its own port.
struct served {
    temp_dir dir;
    unsigned short port = 0;
    unsigned short tls_port = 0;
    std::unique_ptr<child_process> proc;

    std::vector<std::string> argv;

    explicit served(bool tls = false) {
        const auto data = (dir / "data").string();
        const auto backend = test_backend_args(dir.path()); // test_cli_client_pg: PostgreSQL
        argv = {bin,
                "serve",
                "--data-dir",
                data,
                "--ca.key_type",
                "ec-p384",
                "--issuance.default_key_type",
                "ec-p256",
                "--rate_limit.default",
                "0",
                "--rate_limit.create",
                "0",
                "--rate_limit.batch",
                "0",
                "--server.threads",
                "2",
                "--server.pool_threads",
                "2",
                "--renewal.enabled",
                "false"};
        if (tls) {
            std::string init_cmd = bin + " init --data-dir " + data + " --ca.key_type ec-p384 --server-cert 127.0.0.1";
            for (const auto& a : backend) init_cmd += " '" + a + "'";
            auto init = run(init_cmd);
            BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
            for (const auto& s :
                 {"--listen", "127.0.0.1:0", "--server.https_listen", "127.0.0.1:0", "--tls.client_auth", "optional"})
                argv.push_back(s);
            argv.insert(argv.end(), {"--tls.cert", data + "/tls/server.crt", "--tls.key", data + "/tls/server.key"});
        } else {
            const auto p = std::to_string(free_loopback_port());
            argv.insert(argv.end(), {"--listen", "127.0.0.1:" + p, "--issuance.public_url", "http://127.0.0.1:" + p});
        }
        argv.insert(argv.end(), backend.begin(), backend.end());
        start(tls);
    }
    // Starts (again) with the same arguments; with tls, waits for both listeners.
    void start(bool tls = false) {
        proc = std::make_unique<child_process>(argv, dir / "serve.err");
        auto line = proc->wait_for_line("listening on http://", 60s);
        BOOST_REQUIRE_MESSAGE(line, read_text(dir / "serve.err"));
        port = port_of_listen_line(*line);
        if (tls) {
            auto tline = proc->wait_for_line("listening on https://", 10s);
            BOOST_REQUIRE_MESSAGE(tline, read_text(dir / "serve.err"));
            tls_port = port_of_listen_line(*tline);
        }
    }
    void stop() {
        proc->signal(SIGTERM);
        BOOST_TEST(proc->wait_exit(20s).value_or(-1) == 0);
    }
    ~served() {
        proc->signal(SIGTERM);
        (void)proc->wait_exit(20s);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
    fs::path token_file() const { return dir / "data" / "admin.token"; }
    // The environment a script sets once: CERTMATE_URL and CERTMATE_TOKEN_FILE.
    std::string env() const { return "CERTMATE_URL=" + url() + " CERTMATE_TOKEN_FILE=" + token_file().string() + " "; }
    command_result cli(const std::string& args) const { return run(env() + bin + " " + args); }
    // stdout only, parsed as JSON.
    json::value cli_json(const std::string& args) const {
        auto r = run("(" + env() + bin + " " + args + " 2>/dev/null)");
        BOOST_TEST_REQUIRE(r.exit_code == 0, args << ": " << r.output);
        return json::parse(r.output);
    }
};

// The value after `key` on the line of `text` that starts with it (leading blanks skipped).
std::string field(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto s = line.find_first_not_of(' ');
        if (s != std::string::npos && line.compare(s, key.size(), key) == 0) {
            auto v = line.substr(s + key.size());
            return v.substr(std::min(v.size(), v.find_first_not_of(' ')));
        }
    }
    return {};
}

// What `openssl ... -noout -FLAG` prints after "name=".
std::string openssl_value(const std::string& cmd) {
    auto r = run(cmd);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, cmd << ": " << r.output);
    auto eq = r.output.find('=');
    auto v = r.output.substr(eq + 1);
    v.erase(v.find_last_not_of('\n') + 1);
    return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(help_for_every_command_lists_its_options_and_exits_zero) {
    auto overview = run(bin + " --help");
    BOOST_REQUIRE_MESSAGE(overview.exit_code == 0, overview.output);
    BOOST_TEST(overview.output.find("exit codes: 0 ok, 1 failure") != std::string::npos, overview.output);
    BOOST_TEST(run(bin + " help").output == overview.output);
    // Every command the overview lists answers --help, and `help CMD` says the same.
    std::vector<std::string> names;
    std::istringstream in(overview.output.substr(overview.output.find("commands:\n") + 10));
    for (std::string line; std::getline(in, line) && !line.empty();) {
        auto words = line.substr(2, line.find("  ", 2) - 2);
        std::string name;
        std::istringstream ws(words);
        for (std::string w; ws >> w && std::islower(static_cast<unsigned char>(w[0]));)
            name += (name.empty() ? "" : " ") + w;
        names.push_back(name);
    }
    for (const auto* expected : {"serve", "init", "ca backup", "ca restore", "token create", "audit verify", "version",
                                 "cert create", "cert list", "cert show", "cert revoke", "cert unhold", "cert renew",
                                 "cert download", "batch create", "batch revoke", "inspect", "ocsp check", "crl check"})
        BOOST_TEST((std::find(names.begin(), names.end(), expected) != names.end()), expected);
    for (const auto& n : names) {
        auto h = run(bin + " " + n + " --help");
        BOOST_TEST(h.exit_code == 0, n << ": " << h.output);
        BOOST_TEST(h.output.rfind("usage: certmate " + n, 0) == 0u, n << ": " << h.output);
        BOOST_TEST(h.output.find("--help") != std::string::npos, n);
        BOOST_TEST(h.output.find("example:\n  certmate " + n.substr(0, n.find(' '))) != std::string::npos, n);
        BOOST_TEST(h.output.find("exit codes:") != std::string::npos, n);
        BOOST_TEST(run(bin + " help " + n).output == h.output, n);
    }
    // A group's help lists its commands.
    auto group = run(bin + " cert --help");
    BOOST_TEST(group.exit_code == 0, group.output);
    BOOST_TEST(group.output.find("cert revoke ID") != std::string::npos, group.output);
    BOOST_TEST(run(bin + " help cert").output == group.output);
    BOOST_TEST(run(bin + " cert").exit_code == 2);
    // Options with their defaults, from the same descriptions that parse them.
    auto create = run(bin + " cert create -h").output;
    for (const auto* opt : {"--usage USAGE (=api-mtls)", "--out-dir DIR (=.)", "--key-type TYPE", "--csr FILE",
                            "--san SAN", "--days N", "--role ROLE", "--url URL", "--token-file FILE", "--cert FILE",
                            "--key FILE", "--cacert FILE", "--timeout SECONDS (=30)", "--json"})
        BOOST_TEST(create.find(opt) != std::string::npos, opt << " in\n" << create);
    BOOST_TEST(run(bin + " cert list --help").output.find("--page-size N (=1000)") != std::string::npos);
    BOOST_TEST(run(bin + " cert revoke --help").output.find("--reason REASON (=unspecified)") != std::string::npos);
    BOOST_TEST(run(bin + " token create --help").output.find("--role ROLE (=viewer)") != std::string::npos);
    BOOST_TEST(run(bin + " serve --help").output.find("--data-dir DIR") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(typos_get_a_suggestion_and_exit_two) {
    auto opt = run(bin + " cert create alice --out-dri x");
    BOOST_TEST(opt.exit_code == 2, opt.output);
    BOOST_TEST(opt.output.find("unknown option --out-dri") != std::string::npos, opt.output);
    BOOST_TEST(opt.output.find("did you mean --out-dir?") != std::string::npos, opt.output);
    auto serve = run(bin + " serve --data_dir /nonexistent --check-config");
    BOOST_TEST(serve.exit_code == 2, serve.output);
    BOOST_TEST(serve.output.find("did you mean --data-dir?") != std::string::npos, serve.output);
    auto sub = run(bin + " cert craete alice");
    BOOST_TEST(sub.exit_code == 2, sub.output);
    BOOST_TEST(sub.output.find("did you mean 'cert create'?") != std::string::npos, sub.output);
    auto cmd = run(bin + " inspekt x.crt");
    BOOST_TEST(cmd.exit_code == 2, cmd.output);
    BOOST_TEST(cmd.output.find("did you mean 'inspect'?") != std::string::npos, cmd.output);
    auto missing = run(bin + " cert show");
    BOOST_TEST(missing.exit_code == 2, missing.output);
    BOOST_TEST(missing.output.find("needs ID") != std::string::npos, missing.output);
    BOOST_TEST(run(bin + " cert show a b").exit_code == 2);
    BOOST_TEST(run(bin + " cert list --page-size x").exit_code == 2);
    auto key = run(bin + " serve --check-config --server.thraeds 2");
    BOOST_TEST(key.exit_code == 2, key.output);
    BOOST_TEST(key.output.find("unknown config key --server.thraeds (did you mean --server.threads?)") !=
                   std::string::npos,
               key.output);
    temp_dir d;
    write_text(d / "typo.conf", "[rate_limit]\ncraete = 5\n");
    auto file = run(bin + " serve --check-config -c " + (d / "typo.conf").string());
    BOOST_TEST(file.exit_code == 2, file.output);
    BOOST_TEST(file.output.find("typo.conf:2: rate_limit.craete: unknown key (did you mean rate_limit.create?)") !=
                   std::string::npos,
               file.output);
    // Server config overrides still pass through on the server's commands.
    BOOST_TEST(run(bin + " serve --check-config --server.threads 3").exit_code == 0);
}

BOOST_AUTO_TEST_CASE(create_list_show_revoke_renew_download_with_a_token) {
    served srv;
    const auto out = srv.dir / "out";
    auto created =
        srv.cli("cert create alice --out-dir " + out.string() + " --san alice.example --san 10.1.2.3 --role operator");
    BOOST_REQUIRE_MESSAGE(created.exit_code == 0, created.output);
    BOOST_TEST(created.output.find("created alice") != std::string::npos, created.output);
    BOOST_TEST(created.output.find("(in 365 days)") != std::string::npos, created.output);
    BOOST_TEST(file_mode(out / "alice.key") == 0600u);
    auto verify = run("openssl verify -CAfile " + (out / "ca.crt").string() + " " + (out / "alice.crt").string());
    BOOST_TEST(verify.exit_code == 0, verify.output);
    // the key is the certificate's
    BOOST_TEST(openssl_value("openssl x509 -noout -pubkey -in " + (out / "alice.crt").string() +
                             " | openssl pkey -pubin -outform DER | sha256sum | sed 's/^/h=/'") ==
               openssl_value("openssl pkey -in " + (out / "alice.key").string() +
                             " -pubout -outform DER | sha256sum | sed 's/^/h=/'"));

    auto shown = srv.cli_json("cert show alice --json");
    BOOST_TEST(shown.at("identifier").as_string() == "alice");
    BOOST_TEST(shown.at("api_role").as_string() == "operator");
    BOOST_TEST(shown.at("subject_alt_names").at("dns").as_array().at(0).as_string() == "alice.example");
    BOOST_TEST(shown.at("subject_alt_names").at("ip").as_array().at(0).as_string() == "10.1.2.3");
    auto human = srv.cli("cert show alice");
    BOOST_TEST(field(human.output, "status:") == "active", human.output);

    for (const auto* n : {"bob", "carol", "dave", "erin"}) {
        auto r = srv.cli(std::string("cert create ") + n + " --out-dir " + out.string());
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    }
    // Pages of 2: five certificates come back in three requests, none twice.
    auto all = srv.cli_json("cert list --json --page-size 2");
    BOOST_TEST(all.at("total").as_int64() == 5);
    std::set<std::string> ids;
    for (const auto& c : all.at("certificates").as_array()) ids.insert(std::string(c.at("identifier").as_string()));
    BOOST_TEST(ids == (std::set<std::string>{"alice", "bob", "carol", "dave", "erin"}));
    auto table = srv.cli("cert list --search ali");
    BOOST_TEST(table.exit_code == 0, table.output);
    BOOST_TEST(table.output.find("IDENTIFIER  COMMON NAME  USAGE") == 0u, table.output);
    BOOST_TEST(table.output.find("1 certificate\n") != std::string::npos, table.output);
    BOOST_TEST(table.output.find('\x1b') == std::string::npos); // no colour into a pipe
    // On a terminal (script(1) gives one) the status is coloured, unless NO_COLOR is set.
    const std::string on_tty = "script -qec '" + srv.env() + bin + " cert list --search alice' /dev/null";
    auto coloured = run("env -u NO_COLOR " + on_tty);
    BOOST_TEST(coloured.output.find("\x1b[32mactive\x1b[0m") != std::string::npos, coloured.output);
    auto plain = run("NO_COLOR=1 " + on_tty);
    BOOST_TEST(plain.output.find("active") != std::string::npos, plain.output);
    BOOST_TEST(plain.output.find("\x1b[") == std::string::npos, plain.output);
    auto csv = srv.cli("cert list --csv");
    BOOST_TEST(csv.output.rfind("identifier,common_name,cert_usage,status", 0) == 0u, csv.output);
    BOOST_TEST(std::count(csv.output.begin(), csv.output.end(), '\n') == 6);

    // Revoked: what a relying party concludes from OCSP and from the CRL, no server-side knowledge.
    auto rev = srv.cli("cert revoke bob --reason keyCompromise");
    BOOST_REQUIRE_MESSAGE(rev.exit_code == 0, rev.output);
    auto ocsp_bad = srv.cli("ocsp check " + (out / "bob.crt").string());
    BOOST_TEST(ocsp_bad.exit_code == 1, ocsp_bad.output);
    BOOST_TEST(ocsp_bad.output.find(": revoked at ") != std::string::npos, ocsp_bad.output);
    BOOST_TEST(ocsp_bad.output.find("(reason keyCompromise)") != std::string::npos, ocsp_bad.output);
    auto crl_bad = srv.cli("crl check --json " + (out / "bob.crt").string());
    BOOST_TEST(crl_bad.exit_code == 1, crl_bad.output);
    auto crl_json = json::parse(crl_bad.output);
    BOOST_TEST(crl_json.at("status").as_string() == "revoked");
    BOOST_TEST(crl_json.at("reason").as_string() == "keyCompromise");
    BOOST_TEST(crl_json.at("url").as_string() == srv.url() + "/crl.der");
    auto ocsp_good = srv.cli("ocsp check " + (out / "alice.crt").string() + " --issuer " + (out / "ca.crt").string());
    BOOST_TEST(ocsp_good.exit_code == 0, ocsp_good.output);
    BOOST_TEST(ocsp_good.output.find(": good") != std::string::npos, ocsp_good.output);
    auto crl_good = srv.cli("crl check " + (out / "alice.crt").string());
    BOOST_TEST(crl_good.exit_code == 0, crl_good.output);
    // openssl agrees
    auto openssl_crl = run("curl -sS " + srv.url() + "/crl.der -o " + (srv.dir / "crl.der").string() +
                           " && openssl crl -inform DER -in " + (srv.dir / "crl.der").string() + " -out " +
                           (srv.dir / "crl.pem").string() + " && cat " + (out / "ca.crt").string() + " " +
                           (srv.dir / "crl.pem").string() + " > " + (srv.dir / "ca_crl.pem").string() +
                           " && openssl verify -crl_check -CAfile " + (srv.dir / "ca_crl.pem").string() + " " +
                           (out / "bob.crt").string());
    BOOST_TEST(openssl_crl.exit_code != 0);
    BOOST_TEST(openssl_crl.output.find("certificate revoked") != std::string::npos, openssl_crl.output);
    auto twice = srv.cli("cert revoke bob");
    BOOST_TEST(twice.exit_code == 1, twice.output);
    BOOST_TEST(twice.output.find("409 ALREADY_REVOKED") != std::string::npos, twice.output);

    // A hold lifted: OCSP says good again.
    BOOST_REQUIRE(srv.cli("cert revoke carol --reason certificateHold").exit_code == 0);
    BOOST_TEST(srv.cli("ocsp check " + (out / "carol.crt").string()).exit_code == 1);
    auto unhold = srv.cli("cert unhold carol");
    BOOST_TEST(unhold.exit_code == 0, unhold.output);
    BOOST_TEST(srv.cli("ocsp check " + (out / "carol.crt").string()).exit_code == 0);

    // Renew writes the new pair; the serial changes.
    const auto renewed_dir = srv.dir / "renewed";
    auto renewed = srv.cli_json("cert renew alice --days 30 --json --out-dir " + renewed_dir.string());
    BOOST_TEST(renewed.at("serial_number").as_string() != shown.at("serial_number").as_string());
    BOOST_TEST(run("openssl verify -CAfile " + (out / "ca.crt").string() + " " + (renewed_dir / "alice.crt").string())
                   .exit_code == 0);
    BOOST_TEST(file_mode(renewed_dir / "alice.key") == 0600u);
    BOOST_TEST(srv.cli_json("cert show alice --json").at("serial_number") == renewed.at("serial_number"));
    BOOST_TEST(field(run(bin + " inspect " + (renewed_dir / "alice.crt").string()).output, "serial:")
                   .rfind(std::string(renewed.at("serial_number").as_string()) + " ", 0) == 0u);

    // Downloads.
    const auto dl = srv.dir / "dl";
    std::filesystem::create_directories(dl);
    BOOST_TEST(srv.cli("cert download dave --what chain --out " + (dl / "chain.pem").string()).exit_code == 0);
    const auto chain = read_text(dl / "chain.pem");
    BOOST_TEST(std::count(chain.begin(), chain.end(), '\n') > 10);
    BOOST_TEST(chain.find("BEGIN CERTIFICATE", chain.find("END CERTIFICATE")) != std::string::npos);
    BOOST_TEST(srv.cli("cert download dave --what key --out " + (dl / "dave.key").string()).exit_code == 0);
    BOOST_TEST(file_mode(dl / "dave.key") == 0600u);
    write_text(dl / "pw", "correct horse\n");
    auto p12 = srv.cli("cert download dave --what pkcs12 --password-file " + (dl / "pw").string() + " --out " +
                       (dl / "dave.p12").string());
    BOOST_TEST(p12.exit_code == 0, p12.output);
    BOOST_TEST(file_mode(dl / "dave.p12") == 0600u);
    auto p12_read =
        run("openssl pkcs12 -in " + (dl / "dave.p12").string() + " -passin pass:'correct horse' -nokeys -clcerts");
    BOOST_TEST(p12_read.exit_code == 0, p12_read.output);
    BOOST_TEST(p12_read.output.find("subject=CN = dave") != std::string::npos, p12_read.output);
    auto stdout_der = run("(" + srv.env() + bin +
                          " cert download dave --der --out - 2>/dev/null) | openssl x509 -inform DER -noout -subject");
    BOOST_TEST(stdout_der.output == "subject=CN = dave\n", stdout_der.output);

    // A CSR: the server signs our key, so no .key file is written.
    const auto csr_dir = srv.dir / "csr";
    fs::create_directories(csr_dir);
    BOOST_REQUIRE(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                      (csr_dir / "own.key").string() + " -subj /CN=frank -out " + (csr_dir / "frank.csr").string())
                      .exit_code == 0);
    auto from_csr = srv.cli("cert create frank --csr " + (csr_dir / "frank.csr").string() + " --out-dir " +
                            (csr_dir / "out").string());
    BOOST_REQUIRE_MESSAGE(from_csr.exit_code == 0, from_csr.output);
    BOOST_TEST(!fs::exists(csr_dir / "out" / "frank.key"));
    BOOST_TEST(run("openssl verify -CAfile " + (csr_dir / "out" / "ca.crt").string() + " " +
                   (csr_dir / "out" / "frank.crt").string())
                   .exit_code == 0);
    BOOST_TEST(
        openssl_value("openssl x509 -noout -pubkey -in " + (csr_dir / "out" / "frank.crt").string() +
                      " | sha256sum | sed 's/^/h=/'") ==
        openssl_value("openssl pkey -pubout -in " + (csr_dir / "own.key").string() + " | sha256sum | sed 's/^/h=/'"));
    BOOST_TEST(srv.cli("cert download frank --what csr --out " + (csr_dir / "back.csr").string()).exit_code == 0);
    BOOST_TEST(read_text(csr_dir / "back.csr") == read_text(csr_dir / "frank.csr"));
    auto no_key = srv.cli("cert download frank --what key --out " + (csr_dir / "x.key").string());
    BOOST_TEST(no_key.exit_code == 1, no_key.output);
    BOOST_TEST(no_key.output.find("NO_PRIVATE_KEY") != std::string::npos, no_key.output);

    // Failures: exit 1 with the server's words; no token: 401 and a hint.
    auto missing = srv.cli("cert show nosuch");
    BOOST_TEST(missing.exit_code == 1, missing.output);
    BOOST_TEST(missing.output.find("404 NOT_FOUND") != std::string::npos, missing.output);
    auto anonymous = run("CERTMATE_URL=" + srv.url() + " " + bin + " cert list");
    BOOST_TEST(anonymous.exit_code == 1, anonymous.output);
    BOOST_TEST(anonymous.output.find("HTTP 401") != std::string::npos, anonymous.output);
    BOOST_TEST(anonymous.output.find("--token-file") != std::string::npos, anonymous.output);
    // --url and --token-file given as flags instead of the environment
    auto flags = run(bin + " cert list --json --url " + srv.url() + " --token-file " + srv.token_file().string());
    BOOST_TEST(flags.exit_code == 0, flags.output);
    auto down = run(bin + " cert list --url http://127.0.0.1:1 --token-file " + srv.token_file().string());
    BOOST_TEST(down.exit_code == 1, down.output);
    BOOST_TEST(down.output.find("cannot connect") != std::string::npos, down.output);
}

BOOST_AUTO_TEST_CASE(inspect_prints_what_openssl_prints) {
    served srv;
    const auto out = srv.dir / "out";
    BOOST_REQUIRE(srv.cli("cert create alice --out-dir " + out.string() +
                          " --san alice.example --email a@example.com --org Example")
                      .exit_code == 0);
    BOOST_REQUIRE(srv.cli("cert create bob --out-dir " + out.string()).exit_code == 0);
    BOOST_REQUIRE(srv.cli("cert revoke bob --reason keyCompromise").exit_code == 0);
    const auto crt = (out / "alice.crt").string();

    // certificate
    auto c = run(bin + " inspect " + crt);
    BOOST_REQUIRE_MESSAGE(c.exit_code == 0, c.output);
    BOOST_TEST(c.output.rfind("certificate\n", 0) == 0u, c.output);
    BOOST_TEST(field(c.output, "subject:") == openssl_value("openssl x509 -noout -subject -in " + crt), c.output);
    BOOST_TEST(field(c.output, "issuer:") == openssl_value("openssl x509 -noout -issuer -in " + crt));
    BOOST_TEST(
        field(c.output, "serial:").find("(hex " + openssl_value("openssl x509 -noout -serial -in " + crt) + ")") !=
            std::string::npos,
        c.output);
    auto iso = [](std::string s) { return s.replace(s.find(' '), 1, "T"); };
    BOOST_TEST(field(c.output, "not before:")
                   .rfind(iso(openssl_value("openssl x509 -noout -startdate -dateopt iso_8601 -in " + crt)), 0) == 0u);
    BOOST_TEST(field(c.output, "not after:")
                   .rfind(iso(openssl_value("openssl x509 -noout -enddate -dateopt iso_8601 -in " + crt)), 0) == 0u);
    auto text = run("openssl x509 -noout -text -in " + crt).output;
    for (const auto* ext :
         {"X509v3 Subject Alternative Name", "X509v3 Extended Key Usage", "X509v3 Key Usage (critical)",
          "X509v3 Basic Constraints (critical)", "Authority Information Access"})
        BOOST_TEST(c.output.find(ext) != std::string::npos, ext);
    BOOST_TEST(field(c.output, "X509v3 Subject Alternative Name:") == "DNS:alice.example");
    BOOST_TEST(text.find("DNS:alice.example") != std::string::npos);
    BOOST_TEST(field(c.output, "X509v3 Extended Key Usage:") == "TLS Web Client Authentication");
    BOOST_TEST(text.find("TLS Web Client Authentication") != std::string::npos);
    BOOST_TEST(field(c.output, "public key:") == "ec-p256");
    BOOST_TEST(text.find("ASN1 OID: prime256v1") != std::string::npos);
    auto cj = json::parse(run(bin + " inspect --json " + crt).output);
    BOOST_TEST(cj.at("type").as_string() == "certificate");
    BOOST_TEST(cj.at("x509v3_subject_alternative_name").as_string() == "DNS:alice.example");
    BOOST_TEST(cj.at("serial").at("hex").as_string() == openssl_value("openssl x509 -noout -serial -in " + crt));
    BOOST_TEST(cj.at("not_after").as_string() ==
               iso(openssl_value("openssl x509 -noout -enddate -dateopt iso_8601 -in " + crt)));

    // DER certificate
    BOOST_REQUIRE(run("openssl x509 -in " + crt + " -outform DER -out " + (srv.dir / "a.der").string()).exit_code == 0);
    BOOST_TEST(field(run(bin + " inspect " + (srv.dir / "a.der").string()).output, "subject:") ==
               field(c.output, "subject:"));

    // CSR
    const auto csr = (srv.dir / "bob.csr").string();
    BOOST_REQUIRE(run("openssl req -new -newkey rsa:2048 -nodes -keyout " + (srv.dir / "k.pem").string() +
                      " -subj '/CN=req.example/O=Example' -addext subjectAltName=DNS:req.example,IP:10.9.8.7 -out " +
                      csr)
                      .exit_code == 0);
    auto r = run(bin + " inspect " + csr);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.rfind("certificate request\n", 0) == 0u, r.output);
    BOOST_TEST(field(r.output, "subject:") == openssl_value("openssl req -noout -subject -in " + csr), r.output);
    BOOST_TEST(field(r.output, "public key:") == "rsa2048");
    BOOST_TEST(run("openssl req -noout -text -in " + csr).output.find("Public-Key: (2048 bit)") != std::string::npos);
    BOOST_TEST(field(r.output, "self-signature:") == "valid");
    BOOST_TEST(field(r.output, "X509v3 Subject Alternative Name:") == "DNS:req.example, IP Address:10.9.8.7");

    // CRL (DER, as served)
    const auto crl = (srv.dir / "crl.der").string();
    BOOST_REQUIRE(run("curl -sS -o " + crl + " " + srv.url() + "/crl.der").exit_code == 0);
    auto l = run(bin + " inspect " + crl);
    BOOST_REQUIRE_MESSAGE(l.exit_code == 0, l.output);
    BOOST_TEST(l.output.rfind("crl\n", 0) == 0u, l.output);
    BOOST_TEST(field(l.output, "issuer:") == openssl_value("openssl crl -inform DER -noout -issuer -in " + crl));
    const auto crl_number = openssl_value("openssl crl -inform DER -noout -crlnumber -in " + crl); // 0x..
    BOOST_TEST(std::stoul(field(l.output, "X509v3 CRL Number:")) == std::stoul(crl_number, nullptr, 16), l.output);
    BOOST_TEST(field(l.output, "revoked:") == "1");
    const auto bob_serial = openssl_value("openssl x509 -noout -serial -in " + (out / "bob.crt").string());
    BOOST_TEST(run("openssl crl -inform DER -noout -text -in " + crl).output.find("Serial Number: " + bob_serial) !=
               std::string::npos);
    BOOST_TEST(l.output.find("serial " + bob_serial + ":") != std::string::npos, l.output);
    BOOST_TEST(l.output.find("reason keyCompromise") != std::string::npos, l.output);
    const auto lj = json::parse(run(bin + " inspect --json " + crl).output);
    BOOST_TEST(lj.at("revoked").as_int64() == 1);
    BOOST_TEST(lj.at("revoked_certificates").at(0).at("serial_hex").as_string() == bob_serial);
    BOOST_TEST(lj.at("revoked_certificates").at(0).at("reason").as_string() == "keyCompromise");
    BOOST_TEST(field(l.output, "next update:").find("(in 24 hours)") != std::string::npos, l.output);

    // OCSP response, fetched by openssl ocsp
    const auto resp = (srv.dir / "resp.der").string();
    auto fetched = run("openssl ocsp -issuer " + (out / "ca.crt").string() + " -cert " + (out / "bob.crt").string() +
                       " -url " + srv.url() + "/ocsp -respout " + resp + " -noverify");
    BOOST_REQUIRE_MESSAGE(fetched.exit_code == 0, fetched.output);
    auto o = run(bin + " inspect " + resp);
    BOOST_REQUIRE_MESSAGE(o.exit_code == 0, o.output);
    auto o_text = run("openssl ocsp -respin " + resp + " -resp_text -noverify").output;
    BOOST_TEST(o_text.find("Cert Status: revoked") != std::string::npos);
    BOOST_TEST(o.output.rfind("ocsp response\n", 0) == 0u, o.output);
    BOOST_TEST(field(o.output, "response status:") == "successful");
    BOOST_TEST(field(o.output, "cert 1 status:") == "revoked");
    BOOST_TEST(field(o.output, "cert 1 revocation reason:") == "keyCompromise");
    BOOST_TEST(o_text.find("Revocation Reason: keyCompromise") != std::string::npos);
    BOOST_TEST(o_text.find("Serial Number: " + bob_serial) != std::string::npos);
    BOOST_TEST(field(o.output, "cert 1 serial:").find("(hex " + bob_serial + ")") != std::string::npos, o.output);
    BOOST_TEST(o_text.find("Responder Id: " + field(o.output, "responder key hash:")) != std::string::npos, o.output);

    // Not a PKI file: exit 1.
    write_text(srv.dir / "junk", "hello");
    auto junk = run(bin + " inspect " + (srv.dir / "junk").string());
    BOOST_TEST(junk.exit_code == 1, junk.output);
    BOOST_TEST(junk.output.find("not a certificate, CSR, CRL") != std::string::npos, junk.output);
}

BOOST_AUTO_TEST_CASE(mtls_on_the_tls_listener) {
    served srv(true);
    const auto out = srv.dir / "out";
    const auto ca = (srv.dir / "data" / "certs" / "ca" / "ca.crt").string();
    const std::string https = "https://127.0.0.1:" + std::to_string(srv.tls_port);
    // The token over https, the server checked against our CA.
    auto created = run(bin + " cert create op --role operator --out-dir " + out.string() + " --url " + https +
                       " --cacert " + ca + " --token-file " + srv.token_file().string());
    BOOST_REQUIRE_MESSAGE(created.exit_code == 0, created.output);
    BOOST_REQUIRE(run(bin + " cert create viewer --role viewer --out-dir " + out.string() + " --url " + https +
                      " --cacert " + ca + " --token-file " + srv.token_file().string())
                      .exit_code == 0);
    // No token: the certificate is the credential.
    const auto as = [&](const std::string& who) {
        return " --url " + https + " --cacert " + ca + " --cert " + (out / (who + ".crt")).string() + " --key " +
               (out / (who + ".key")).string();
    };
    auto listed = run(bin + " cert list --json" + as("op"));
    BOOST_REQUIRE_MESSAGE(listed.exit_code == 0, listed.output);
    std::set<std::string> ids;
    const auto listed_json = json::parse(listed.output);
    for (const auto& c : listed_json.at("certificates").as_array())
        ids.insert(std::string(c.at("identifier").as_string()));
    BOOST_TEST(ids.count("op") == 1u);
    BOOST_TEST(ids.count("viewer") == 1u);
    auto made = run(bin + " cert create by-mtls --out-dir " + out.string() + as("op"));
    BOOST_TEST(made.exit_code == 0, made.output);
    auto denied = run(bin + " cert create nope --out-dir " + out.string() + as("viewer"));
    BOOST_TEST(denied.exit_code == 1, denied.output);
    BOOST_TEST(denied.output.find("HTTP 403") != std::string::npos, denied.output);
    // The viewer's certificate revoked: its next request is refused (401), exit 1.
    BOOST_TEST(run(bin + " cert list" + as("viewer")).exit_code == 0);
    BOOST_REQUIRE(run(bin + " cert revoke viewer" + as("op")).exit_code == 0);
    auto revoked = run(bin + " cert list" + as("viewer"));
    BOOST_TEST(revoked.exit_code == 1, revoked.output);
    BOOST_TEST(revoked.output.find("HTTP 401") != std::string::npos, revoked.output);
    // A server our --cacert does not vouch for: the handshake fails, exit 1.
    auto untrusted = run(bin + " cert list --url " + https + " --cacert " + (out / "op.crt").string() +
                         " --token-file " + srv.token_file().string());
    BOOST_TEST(untrusted.exit_code == 1, untrusted.output);
    BOOST_TEST(untrusted.output.find("TLS handshake") != std::string::npos, untrusted.output);
    // --cert on plain http is a usage error.
    auto plain = run(bin + " cert list --url " + srv.url() + " --cert " + (out / "op.crt").string());
    BOOST_TEST(plain.exit_code == 2, plain.output);
}

BOOST_AUTO_TEST_CASE(cert_list_pages_through_thirty_thousand_certificates) {
    if (skip_on_pg("the 29,999 records are written as the file store lays them out")) return;
    served srv;
    BOOST_REQUIRE(srv.cli("cert create seed --usage vpn --out-dir " + (srv.dir / "out").string()).exit_code == 0);
    srv.stop();
    // 29,999 more records beside the real one, written as the store lays them out (metadata.json and
    // cert.crt, no key), with their own identifiers and serials; the server indexes them at start.
    const auto vpn = srv.dir / "data" / "certs" / "client" / "vpn";
    auto meta = json::parse(read_text(vpn / "seed" / "metadata.json")).as_object();
    meta["has_private_key"] = false;
    const auto crt = read_text(vpn / "seed" / "cert.crt");
    const auto begun = std::chrono::steady_clock::now();
    for (int i = 1; i < 30000; ++i) {
        char id[32];
        std::snprintf(id, sizeof id, "bulk-%05d", i);
        meta["identifier"] = id;
        meta["common_name"] = id;
        meta["serial_number"] = std::to_string(1000000000000ull + static_cast<unsigned long long>(i));
        fs::create_directory(vpn / id);
        write_text(vpn / id / "metadata.json", json::serialize(meta));
        write_text(vpn / id / "cert.crt", crt);
    }
    const auto written = std::chrono::steady_clock::now();
    srv.start();
    const auto started = std::chrono::steady_clock::now();
    BOOST_TEST_MESSAGE("wrote 29,999 records in "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(written - begun).count()
                       << " ms, the server indexed them in "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(started - written).count() << " ms");
    auto all = srv.cli_json("cert list --json");
    BOOST_TEST_MESSAGE(
        "cert list --json of 30,000: "
        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
        << " ms");
    BOOST_TEST(all.at("total").as_int64() == 30000);
    std::set<std::string> ids;
    for (const auto& c : all.at("certificates").as_array()) ids.insert(std::string(c.at("identifier").as_string()));
    BOOST_TEST(ids.size() == 30000u);
    BOOST_TEST(ids.count("seed") == 1u);
    BOOST_TEST(ids.count("bulk-29999") == 1u);
    // the table and a filter over the same store
    auto table = srv.cli("cert list --search bulk-2999");
    BOOST_TEST(table.output.find("10 certificates\n") != std::string::npos, table.output.substr(0, 300));
}

BOOST_AUTO_TEST_CASE(cmake_install_puts_bash_completion_and_the_man_page_from_the_same_descriptions) {
    temp_dir d;
    const auto build_dir = fs::path(bin).parent_path().string();
    auto inst = run("DESTDIR=" + d.path().string() + " cmake --install " + build_dir + " --prefix /usr");
    BOOST_REQUIRE_MESSAGE(inst.exit_code == 0, inst.output);
    const auto completion = d / "usr/share/bash-completion/completions/certmate";
    const auto page = d / "usr/share/man/man1/certmate.1.gz"; // gzip -9n, as Debian policy 12.1 asks
    BOOST_REQUIRE(fs::exists(completion));
    BOOST_REQUIRE(fs::exists(page));
    // What bash offers after the words typed so far.
    auto offer = [&](const std::string& words, int cword) {
        auto r = run("bash -c 'source " + completion.string() + "; COMP_WORDS=(" + words +
                     "); COMP_CWORD=" + std::to_string(cword) + "; _certmate; echo \"${COMPREPLY[*]}\"'");
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        return r.output.substr(0, r.output.size() - 1);
    };
    BOOST_TEST(offer("certmate se", 1) == "serve");
    BOOST_TEST(offer("certmate cert cr", 2) == "create");
    BOOST_TEST(offer("certmate cert create alice --out", 4) == "--out-dir");
    BOOST_TEST(offer("certmate serve --data", 2) == "--data-dir");
    BOOST_TEST(offer("certmate ocsp ''", 2) == "check");
    auto man = run("LC_ALL=C MANWIDTH=200 man -l " + page.string());
    BOOST_REQUIRE_MESSAGE(man.exit_code == 0, man.output);
    BOOST_TEST(man.output.find("certmate cert create NAME") != std::string::npos, man.output.substr(0, 500));
    BOOST_TEST(man.output.find("--out-dir DIR (=.)") != std::string::npos);
    BOOST_TEST(man.output.find("--page-size N (=1000)") != std::string::npos);
    BOOST_TEST(man.output.find("EXIT STATUS") != std::string::npos);
    BOOST_TEST(run("gzip -dc " + page.string()).output == run(bin + " man").output);
}

namespace {

// A stand-in for issue 12's jobs API (docs/api.md "Batch jobs"), answering as its contract says, so
// the batch commands' side (bodies sent, Location followed, progress, exit code) is checked while the
// real API is not on main. One request per connection (Connection: close).
class jobs_stub {
public:
    struct request {
        std::string method, target, content_type, body;
    };

    jobs_stub() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        BOOST_REQUIRE(::listen(fd_, 16) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~jobs_stub() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<request> requests() {
        std::lock_guard<std::mutex> g(mu_);
        return seen_;
    }

private:
    // The answer to one request: batch submissions are accepted (a CSV holding "bad" is refused with
    // row errors); a job runs for two polls, then ends as its kind says.
    std::string answer(const request& r) {
        auto reply = [](int status, const std::string& extra, const std::string& body) {
            return "HTTP/1.1 " + std::to_string(status) +
                   " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n" + extra + "\r\n" + body;
        };
        if (r.method == "POST" && r.target.rfind("/api/client-certs/batch", 0) == 0) {
            if (r.body.find("bad") != std::string::npos)
                return reply(
                    400, "",
                    R"({"error":"Bad Request","code":"INVALID_ARGUMENT","message":"the batch has invalid rows",)"
                    R"("errors":[{"row":2,"field":"common_name","message":"common_name is required"}],"errors_total":1})");
            const std::string id = r.target.find("revoke") != std::string::npos ? "rv1" : "cr1";
            polls_[id] = 0;
            return reply(202, "Location: /api/jobs/" + id + "\r\n",
                         R"({"id":")" + id +
                             R"(","kind":"create","state":"queued","total":3,"done":0,"failed":0,"errors":[]})");
        }
        if (r.method == "GET" && r.target.rfind("/api/jobs/", 0) == 0) {
            const std::string id = r.target.substr(10);
            const int n = ++polls_[id];
            if (n < 3)
                return reply(200, "",
                             R"({"id":")" + id + R"(","state":"running","total":3,"done":)" + std::to_string(n) +
                                 R"(,"failed":0,"errors":[]})");
            if (id == "cr1") // a create job where one row failed
                return reply(
                    200, "",
                    R"({"id":"cr1","kind":"create","state":"succeeded","total":3,"done":3,"succeeded":2,"failed":1,)"
                    R"("errors":[{"row":3,"field":"identifier","message":"identifier taken"}]})");
            return reply(200, "",
                         R"({"id":")" + id +
                             R"(","kind":"revoke","state":"succeeded","total":3,"done":3,"failed":0,"errors":[]})");
        }
        return reply(404, "", R"({"error":"Not Found","code":"NOT_FOUND","message":"no route"})");
    }

    void serve() {
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string in;
            char buf[4096];
            std::size_t need = std::string::npos;
            for (;;) {
                auto n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                const auto end = in.find("\r\n\r\n");
                if (end != std::string::npos && need == std::string::npos) {
                    std::smatch m;
                    const std::string head = in.substr(0, end);
                    need = end + 4 +
                           (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)")) ? std::stoul(m[1])
                                                                                                      : 0);
                }
                if (need != std::string::npos && in.size() >= need) break;
            }
            request r;
            const auto end = in.find("\r\n\r\n");
            if (end != std::string::npos) {
                std::istringstream first(in.substr(0, in.find("\r\n")));
                first >> r.method >> r.target;
                std::smatch m;
                const std::string head = in.substr(0, end);
                if (std::regex_search(head, m, std::regex("[Cc]ontent-[Tt]ype: *([^\r]+)"))) r.content_type = m[1];
                r.body = in.substr(end + 4);
                {
                    std::lock_guard<std::mutex> g(mu_);
                    seen_.push_back(r);
                }
                const auto out = answer(r);
                (void)!::write(c, out.data(), out.size());
            }
            ::close(c);
        }
    }

    int fd_ = -1;
    unsigned short port_ = 0;
    std::thread thread_;
    std::mutex mu_;
    std::vector<request> seen_;
    std::map<std::string, int> polls_;
};

} // namespace

BOOST_AUTO_TEST_CASE(batch_commands_follow_the_jobs_contract_against_a_stub) {
    jobs_stub stub;
    temp_dir d;
    write_text(d / "token", "cm_test\n");
    const std::string conn = " --url " + stub.url() + " --token-file " + (d / "token").string() + " --interval-ms 50";
    write_text(d / "people.csv", "common_name,identifier\nAlice,alice\nBob,bob\nCarol,carol\n");

    // Without --wait: the job's id, exit 0.
    auto queued = run(bin + " batch create " + (d / "people.csv").string() + conn);
    BOOST_TEST(queued.exit_code == 0, queued.output);
    BOOST_TEST(queued.output.find("job cr1 queued (/api/jobs/cr1)") != std::string::npos, queued.output);
    auto reqs = stub.requests();
    BOOST_REQUIRE(!reqs.empty());
    BOOST_TEST(reqs.back().method == "POST");
    BOOST_TEST(reqs.back().target == "/api/client-certs/batch");
    BOOST_TEST(reqs.back().content_type == "text/csv");
    BOOST_TEST(reqs.back().body == read_text(d / "people.csv"));

    // --wait: progress lines (not a terminal), the row errors, exit 1 because a row failed.
    auto waited = run(bin + " batch create " + (d / "people.csv").string() + " --partial --wait" + conn);
    BOOST_TEST(waited.exit_code == 1, waited.output);
    BOOST_TEST(waited.output.find("running 1/3 done, 0 failed") != std::string::npos, waited.output);
    BOOST_TEST(waited.output.find("succeeded 3/3 done, 1 failed") != std::string::npos, waited.output);
    BOOST_TEST(waited.output.find("row 3: identifier: identifier taken") != std::string::npos, waited.output);
    BOOST_TEST(stub.requests().at(1).target == "/api/client-certs/batch?partial=true");

    // A refused batch: the rows the server names, exit 1.
    write_text(d / "bad.csv", "common_name\nbad\n");
    auto refused = run(bin + " batch create " + (d / "bad.csv").string() + conn);
    BOOST_TEST(refused.exit_code == 1, refused.output);
    BOOST_TEST(refused.output.find("row 2: common_name: common_name is required") != std::string::npos, refused.output);

    // Revoke from a file (first CSV column, comments and header skipped), then by filter; --json.
    write_text(d / "leavers.csv", "identifier,why\n# gone\nalice,left\nbob,left\n");
    auto from = run("(" + bin + " batch revoke --from " + (d / "leavers.csv").string() +
                    " --reason affiliationChanged --wait --json" + conn + " 2>/dev/null)");
    BOOST_TEST(from.exit_code == 0, from.output);
    BOOST_TEST(json::parse(from.output).at("state").as_string() == "succeeded");
    reqs = stub.requests();
    auto posted = std::find_if(reqs.begin(), reqs.end(),
                               [](const auto& r) { return r.target.find("revoke") != std::string::npos; });
    BOOST_REQUIRE(posted != reqs.end());
    BOOST_TEST(posted->content_type == "application/json");
    BOOST_TEST(json::parse(posted->body) ==
               json::parse(R"({"reason":"affiliationChanged","identifiers":["alice","bob"]})"));
    auto filtered = run(bin + " batch revoke --filter usage=vpn --filter expiring_within_days=30" + conn);
    BOOST_TEST(filtered.exit_code == 0, filtered.output);
    BOOST_TEST(json::parse(stub.requests().back().body) ==
               json::parse(R"({"reason":"unspecified","filter":{"usage":"vpn","expiring_within_days":30}})"));
    // Usage errors: both or neither source, an unknown filter key.
    BOOST_TEST(run(bin + " batch revoke" + conn).exit_code == 2);
    auto typo = run(bin + " batch revoke --filter usge=vpn" + conn);
    BOOST_TEST(typo.exit_code == 2, typo.output);
    BOOST_TEST(typo.output.find("did you mean usage?") != std::string::npos, typo.output);
}

BOOST_AUTO_TEST_CASE(version_and_token_create_speak_json_too) {
    auto v = run(bin + " version --json");
    BOOST_TEST(v.exit_code == 0, v.output);
    BOOST_TEST(json::parse(v.output).at("version").as_string() == CERTMATE_VERSION);
    auto t = run(bin + " token create --name ci --role operator --json");
    BOOST_TEST_REQUIRE(t.exit_code == 0, t.output);
    const auto j = json::parse(t.output);
    const std::string token(j.at("token").as_string());
    BOOST_TEST(j.at("role").as_string() == "operator");
    BOOST_TEST(j.at("config_line").as_string() == "token = ci:operator:" + certmate::sha256_hex(token).value());
}

BOOST_AUTO_TEST_CASE(batch_create_and_revoke_against_the_real_jobs_api) {
    served srv;
    temp_dir d;
    write_text(d / "people.csv", "identifier,common_name,cert_usage,dns\n"
                                 "b1,B One,vpn,b1.example\nb2,B Two,vpn,b2.example\nb3,B Three,vpn,b3.example\n");
    auto created = srv.cli("batch create " + (d / "people.csv").string() + " --wait --interval-ms 100");
    BOOST_REQUIRE_MESSAGE(created.exit_code == 0, created.output);
    BOOST_TEST(created.output.find(" succeeded\n") != std::string::npos, created.output);
    BOOST_TEST(created.output.find("3/3 done, 0 failed") != std::string::npos, created.output);
    auto vpn = srv.cli_json("cert list --usage vpn --json");
    BOOST_TEST(vpn.at("total").as_int64() == 3);
    BOOST_TEST(srv.cli_json("cert show b2 --json").at("subject_alt_names").at("dns").at(0).as_string() == "b2.example");

    // An invalid row refuses the whole batch: the rows named, exit 1, nothing created.
    write_text(d / "bad.csv", "identifier,common_name,cert_usage\nc1,C One,vpn\nc2,C Two,bogus\n");
    auto refused = srv.cli("batch create " + (d / "bad.csv").string() + " --wait");
    BOOST_TEST(refused.exit_code == 1, refused.output);
    BOOST_TEST(refused.output.find("HTTP 400") != std::string::npos, refused.output);
    BOOST_TEST(refused.output.find("row 2: cert_usage") != std::string::npos, refused.output);
    BOOST_TEST(srv.cli("cert show c1").exit_code == 1);
    // --partial: the valid row runs, the job reports the other, exit 1.
    auto partial = srv.cli("batch create " + (d / "bad.csv").string() + " --partial --wait --interval-ms 100");
    BOOST_TEST(partial.exit_code == 1, partial.output);
    BOOST_TEST(partial.output.find("row 2: cert_usage") != std::string::npos, partial.output);
    BOOST_TEST(srv.cli_json("cert show c1 --json").at("status").as_string() == "active");

    // Revoke from a file, then by a filter the server resolves; the job's outcome is the exit code.
    write_text(d / "leavers.txt", "# left in March\nb1\nb2\n");
    auto from = srv.cli("batch revoke --from " + (d / "leavers.txt").string() +
                        " --reason affiliationChanged --wait --interval-ms 100 --json");
    BOOST_REQUIRE_MESSAGE(from.exit_code == 0, from.output);
    for (const auto* id : {"b1", "b2"}) {
        auto rec = srv.cli_json(std::string("cert show --json ") + id);
        BOOST_TEST(rec.at("status").as_string() == "revoked", id);
        BOOST_TEST(rec.at("revocation").at("reason").as_string() == "affiliationChanged", id);
    }
    BOOST_TEST(srv.cli_json("cert show b3 --json").at("status").as_string() == "active");
    auto filtered = srv.cli("batch revoke --filter search=b3 --filter usage=vpn --wait --interval-ms 100");
    BOOST_TEST(filtered.exit_code == 0, filtered.output);
    BOOST_TEST(srv.cli_json("cert show b3 --json").at("status").as_string() == "revoked");
    BOOST_TEST(srv.cli_json("cert show c1 --json").at("status").as_string() == "active");
}
