#include "app/cli.hpp"

#include "app/bootstrap.hpp"
#include "app/cli_commands.hpp"
#include "app/config.hpp"
#include "app/serve.hpp"
#include "core/keys.hpp"
#include "storage/atomic_file.hpp"
#include "app/backend.hpp"
#include "storage/audit_log.hpp"
#include "storage/ca_files.hpp"
#include "storage/leftovers.hpp"

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <iostream>

namespace certmate::app {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct parsed_args {
    po::variables_map vm;
    std::vector<std::string> overrides; // --section.key VALUE, normalised
    fs::path config_file;
};

// The options every server command takes: the config file and the two shorthands (DESIGN.md 1).
void add_server_options(po::options_description& d) {
    d.add_options()("config,c", po::value<std::string>()->value_name("FILE"),
                    "config file (default: DIR/certmate.conf when it exists)")(
        "data-dir", po::value<std::string>()->value_name("DIR"), "data directory (storage.data_dir, default ./data)")(
        "listen", po::value<std::string>()->value_name("HOST:PORT"),
        "plain HTTP listener (server.http_listen, default 127.0.0.1:8080; port 0 picks one)");
}

// The config file and --section.key overrides of a parsed server command.
parsed_args server_args(const cli_invocation& inv) {
    parsed_args out;
    out.vm = inv.vm;
    out.overrides = inv.overrides;
    if (out.vm.count("data-dir"))
        out.overrides.insert(out.overrides.begin(), {"--storage.data_dir", out.vm["data-dir"].as<std::string>()});
    if (out.vm.count("listen"))
        out.overrides.insert(out.overrides.begin(), {"--server.http_listen", out.vm["listen"].as<std::string>()});
    out.config_file = resolve_config_file(
        out.vm.count("config") ? fs::path(out.vm["config"].as<std::string>()) : fs::path(), out.overrides);
    return out;
}

int cmd_init(const cli_invocation& inv) {
    auto a = server_args(inv);
    auto cfg = load_config(a.config_file, a.overrides);
    // A server may be running on this data dir: only leftovers too old to be a write in flight.
    (void)storage::remove_temp_leftovers(storage::layout{cfg.data_dir}, std::chrono::minutes(10));
    auto rep = init_data_dir(cfg, a.config_file);
    if (!rep) throw error_exception(rep.error());
    std::cout << (rep->created_ca ? "created CA " : "CA exists ") << rep->ca_fingerprint << " in "
              << (cfg.data_dir / "certs" / "ca").string() << "\n";
    if (!rep->admin_token.empty()) {
        std::cout << admin_token_announcement(*rep, ::isatty(STDOUT_FILENO) == 1) << "\n";
        if (!rep->config_written.empty())
            std::cout << "wrote starter config " << rep->config_written.string() << "\n";
        else
            std::cout << "add to the [auth] section of your config:\ntoken = "
                      << token_config_value(token_entry{"admin", api_role::admin, sha256_hex_of(rep->admin_token)})
                      << "\n";
    }
    if (a.vm.count("server-cert")) {
        auto srv = issue_server_cert(cfg, a.vm["server-cert"].as<std::vector<std::string>>());
        if (!srv) throw error_exception(srv.error());
        std::cout << "wrote TLS server certificate " << srv->cert_file.string() << " (serial " << srv->serial_decimal
                  << ", expires " << format_time(srv->not_after) << ") and key " << srv->key_file.string() << "\n"
                  << "for the TLS listener, add to your config (then restart, or SIGHUP when only renewing):\n"
                  << "[server]\nhttps_listen = 0.0.0.0:8443\napi_on_http = false\n"
                  << "[tls]\ncert = " << srv->cert_file.string() << "\nkey = " << srv->key_file.string()
                  << "\nclient_auth = require\n";
        if (!cfg.tls_key_passphrase_file.empty())
            std::cout << "key_passphrase_file = " << fs::absolute(cfg.tls_key_passphrase_file).string() << "\n";
    }
    return 0;
}

int cmd_ca(const std::string& sub, const cli_invocation& inv) {
    auto a = server_args(inv);
    auto cfg = load_config(a.config_file, a.overrides);
    storage::layout l{cfg.data_dir};
    if (sub == "backup") {
        if (!a.vm.count("out")) throw error_exception(make_error(errc::invalid_argument, "ca backup needs --out FILE"));
        if (auto r = storage::backup_ca(l, a.vm["out"].as<std::string>(), ca_passphrase(cfg)); !r)
            throw error_exception(r.error());
        std::cout << "wrote CA backup " << a.vm["out"].as<std::string>() << "\n";
        return 0;
    }
    if (sub == "restore") {
        if (!a.vm.count("in")) throw error_exception(make_error(errc::invalid_argument, "ca restore needs --in FILE"));
        if (auto r = storage::ensure_dir(l.data_dir, fs::perms(0700)); !r) throw error_exception(r.error());
        auto rep = storage::restore_ca(l, a.vm["in"].as<std::string>(), a.vm["force"].as<bool>(), ca_passphrase(cfg));
        if (!rep) throw error_exception(rep.error());
        if (auto w = audit_cli_operation(cfg, "ca_restore", "ca", rep->fingerprint_sha256,
                                         {{"files", rep->files},
                                          {"replaced_different_ca", rep->replaced},
                                          {"key_encrypted_with_passphrase", rep->key_encrypted}});
            !w)
            throw error_exception(w.error());
        std::cout << "restored CA " << rep->fingerprint_sha256 << " (" << rep->files << " files)\n";
        return 0;
    }
    return 2;
}

int cmd_db(const std::string& sub, const cli_invocation& inv) {
    auto a = server_args(inv);
    auto cfg = load_config(a.config_file, a.overrides);
    if (cfg.backend != "postgresql")
        throw error_exception(make_error(errc::invalid_argument,
                                         "certmate db needs storage.backend = postgresql and storage.postgresql "
                                         "(in the config or as --storage.backend / --storage.postgresql)"));
    if (sub == "migrate") {
        auto r = migrate_database(cfg);
        if (!r) {
            std::cerr << "certmate: " << r.error().message << "\n";
            return 1;
        }
        if (r->first == r->second)
            std::cout << "schema at version " << r->second << " (nothing to do)\n";
        else
            std::cout << "schema migrated from version " << r->first << " to " << r->second << "\n";
        return 0;
    }
    auto r = sub == "import" ? import_data_dir(cfg) : export_data_dir(cfg);
    if (!r) { // a refusal or a failure of the copy, not of the command line (docs/cli.md "Exit codes")
        std::cerr << "certmate: " << sub << ": " << r.error().message << "\n";
        return 1;
    }
    std::cout << (sub == "import" ? "imported " : "exported ") << r->store.certificates << " certificates ("
              << r->store.copied << " copied, " << r->store.already << " already there; " << r->store.serials
              << " serials checked), " << r->store.jobs << " jobs, CRL number " << r->store.crl_number
              << "; audit chain of " << r->audit_entries << " entries verified (" << r->audit_added << " added)\n";
    return 0;
}

int cmd_token(const cli_invocation& inv) {
    const auto& a = inv;
    if (!a.vm.count("name")) throw error_exception(make_error(errc::invalid_argument, "token create needs --name"));
    auto role = parse_api_role(a.vm["role"].as<std::string>());
    if (!role) throw error_exception(make_error(errc::invalid_argument, "--role must be viewer, operator or admin"));
    token_entry t{a.vm["name"].as<std::string>(), *role, {}};
    if (t.name.find(':') != std::string::npos || t.name.empty())
        throw error_exception(make_error(errc::invalid_argument, "--name must be non-empty and without ':'"));
    const auto token = new_token();
    t.sha256_hex = sha256_hex_of(token);
    if (a.vm["json"].as<bool>()) {
        std::cout << boost::json::serialize(boost::json::object{{"name", t.name},
                                                                {"role", to_string(t.role)},
                                                                {"token", token},
                                                                {"config_line", "token = " + token_config_value(t)}})
                  << "\n";
        return 0;
    }
    std::cout << "token: " << token
              << "\nadd to the [auth] section of the config (then SIGHUP):\ntoken = " << token_config_value(t) << "\n";
    return 0;
}

int cmd_audit(const cli_invocation& inv) {
    auto a = server_args(inv);
    auto cfg = load_config(a.config_file, a.overrides);
    storage::layout l{cfg.data_dir};
    const fs::path pub_file =
        a.vm.count("public-key") ? fs::path(a.vm["public-key"].as<std::string>()) : l.audit_signing_pub();
    ossl::pkey pub;
    if (auto pem = storage::read_file(pub_file)) {
        auto k = load_public_key(*pem);
        if (!k) throw error_exception(make_error(errc::invalid_argument, pub_file.string() + ": not a PEM public key"));
        pub = std::move(*k);
    } else if (a.vm.count("public-key")) {
        throw error_exception(make_error(errc::invalid_argument, "cannot read " + pub_file.string()));
    }
    // With a database the chain is its table's (docs/high-availability.md), not the data dir's file.
    storage::audit_verify_result r;
    if (cfg.backend == "postgresql") {
        auto v = verify_database_audit(cfg, pub.get());
        if (!v) throw error_exception(v.error());
        r = std::move(*v);
    } else {
        r = storage::verify_audit_file(l.audit_log(), pub.get());
    }
    for (const auto& rep : r.repairs)
        std::cout << "repair at seq " << rep.seq << ": a torn last line of " << rep.removed_bytes << " bytes was cut\n";
    if (!r.ok) {
        std::cout << "broken at line " << r.bad_line << ": " << r.reason << "\n";
        return 1;
    }
    std::cout << "ok " << r.entries << " entries, " << r.checkpoints << " checkpoints verified";
    if (r.checkpoints > 0) std::cout << " (last at seq " << r.last_checkpoint_seq << ")";
    std::cout << ", " << r.after_last_checkpoint << " entries after the last checkpoint\n";
    if (r.unchecked_checkpoints > 0) {
        std::cout << "cannot check " << r.unchecked_checkpoints << " checkpoint signatures: no public key at "
                  << pub_file.string() << " (give --public-key FILE)\n";
        return 1;
    }
    return 0;
}

} // namespace

std::vector<cli_command> server_commands() {
    std::vector<cli_command> out;
    out.push_back({"serve", "", "run the server (the default command); on an empty data dir it runs `init` first",
                   "Logs `listening on http://HOST:PORT` once it accepts connections; SIGHUP reloads tokens, rate\n"
                   "limits, the log level and the TLS certificate; SIGTERM drains and exits 0.",
                   "  certmate serve -c /etc/certmate/certmate.conf\n"
                   "  certmate serve --data-dir ./data --listen 127.0.0.1:8080 --server.threads 4",
                   0, 0, true,
                   [](po::options_description& d) {
                       add_server_options(d);
                       d.add_options()("check-config", po::bool_switch(),
                                       "check the config file and flags, print `config ok`, and exit");
                   },
                   [](const cli_invocation& inv) {
                       auto a = server_args(inv);
                       auto cfg = load_config(a.config_file, a.overrides);
                       if (a.vm["check-config"].as<bool>()) {
                           std::cout << "config ok" << (a.config_file.empty() ? "" : ": " + a.config_file.string())
                                     << "\n";
                           return 0;
                       }
                       return run_server(cfg, a.config_file, a.overrides);
                   }});
    out.push_back({"init", "", "create the CA, the OCSP responder, an admin token and a starter config",
                   "The admin token is written to DIR/admin.token (0600) and printed only on a terminal.\n"
                   "Idempotent: an existing CA is kept and no new token is made.",
                   "  certmate init --data-dir ./data --server-cert ca.example.internal 10.0.0.5", 0, 0, true,
                   [](po::options_description& d) {
                       add_server_options(d);
                       d.add_options()("server-cert",
                                       po::value<std::vector<std::string>>()->multitoken()->value_name("HOST..."),
                                       "also issue the TLS listener's certificate (serverAuth, SANs HOST...) as "
                                       "DIR/tls/server.crt and server.key");
                   },
                   cmd_init});
    out.push_back({"ca backup", "", "write the CA key, certificate, metadata and CRL state to one archive (0600)", "",
                   "  certmate ca backup --data-dir ./data --out ca-backup.tar", 0, 0, true,
                   [](po::options_description& d) {
                       add_server_options(d);
                       d.add_options()("out", po::value<std::string>()->value_name("FILE"),
                                       "the archive to write (required)");
                   },
                   [](const cli_invocation& inv) { return cmd_ca("backup", inv); }});
    out.push_back({"ca restore", "", "restore a CA backup (refuses a different CA without --force)", "",
                   "  certmate ca restore --data-dir ./data --in ca-backup.tar", 0, 0, true,
                   [](po::options_description& d) {
                       add_server_options(d);
                       d.add_options()("in", po::value<std::string>()->value_name("FILE"),
                                       "the archive to read (required)")("force", po::bool_switch(),
                                                                         "replace a different CA");
                   },
                   [](const cli_invocation& inv) { return cmd_ca("restore", inv); }});
    out.push_back({"db migrate", "", "create or upgrade the PostgreSQL schema (storage.backend = postgresql)",
                   "Each migration runs in one transaction under a lock; a schema newer than this binary is refused.",
                   "  certmate db migrate -c /etc/certmate/certmate.conf", 0, 0, true, add_server_options,
                   [](const cli_invocation& inv) { return cmd_db("migrate", inv); }});
    out.push_back({"db import", "",
                   "copy the file system store of --data-dir DIR into the database (idempotent, verified)",
                   "Certificates, CRL state, OCSP responder, sweep record, jobs and the audit chain; run with no "
                   "server writing either.",
                   "  certmate db import -c /etc/certmate/certmate.conf --data-dir /var/lib/certmate", 0, 0, true,
                   add_server_options, [](const cli_invocation& inv) { return cmd_db("import", inv); }});
    out.push_back({"db export", "", "copy the database into the file system store of --data-dir DIR (verified)",
                   "The way back from PostgreSQL to one instance on its data dir.",
                   "  certmate db export -c /etc/certmate/certmate.conf --data-dir /var/lib/certmate", 0, 0, true,
                   add_server_options, [](const cli_invocation& inv) { return cmd_db("export", inv); }});
    out.push_back({"token create", "", "print a new API token and the config line holding its SHA-256",
                   "Add the printed line to the [auth] section of the config, then SIGHUP the server.",
                   "  certmate token create --name ci --role operator", 0, 0, false,
                   [](po::options_description& d) {
                       d.add_options()("name", po::value<std::string>()->value_name("NAME"),
                                       "token name (required, no ':')")(
                           "role", po::value<std::string>()->default_value("viewer")->value_name("ROLE"),
                           "viewer, operator or admin");
                       add_json_option(d);
                   },
                   cmd_token});
    out.push_back({"audit verify", "", "walk the audit log's hash chain and check every signed checkpoint",
                   "Prints `ok N entries ...`, or the first broken line and exits 1. With storage.backend =\n"
                   "postgresql it verifies the database's chain (every instance's entries).",
                   "  certmate audit verify --data-dir ./data", 0, 0, true,
                   [](po::options_description& d) {
                       add_server_options(d);
                       d.add_options()("public-key", po::value<std::string>()->value_name("FILE"),
                                       "PEM public key that signs the checkpoints (default: "
                                       "DIR/certs/audit/audit_signing.pub)");
                   },
                   cmd_audit});
    out.push_back(
        {"version", "", "print the version", "", "  certmate version", 0, 0, false, add_json_option,
         [](const cli_invocation& inv) {
             if (inv.vm["json"].as<bool>())
                 std::cout << boost::json::serialize(boost::json::object{{"version", CERTMATE_VERSION}}) << "\n";
             else
                 std::cout << "certmate " << CERTMATE_VERSION << "\n";
             return 0;
         }});
    return out;
}

int run_cli(int argc, char** argv) {
    auto logger = spdlog::stderr_color_mt("certmate");
    spdlog::set_default_logger(logger);
    std::vector<cli_command> all = server_commands();
    for (auto* more : {&client_commands, &pki_commands})
        for (auto& c : more()) all.push_back(std::move(c));
    for (auto& c : meta_commands(all)) all.push_back(std::move(c));
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        return run_commands(all, args);
    } catch (const error_exception& e) {
        std::cerr << "certmate: " << e.err.message << "\n";
        // The server's commands fail on their config or start-up checks (a wrong CA passphrase, a bad
        // key): a configuration error, 2 as ever (docs/cli.md "Exit codes").
        return 2;
    } catch (const std::exception& e) {
        // A malformed answer from a server (a missing member, a non-object, a non-integer count) is a
        // failure to report, not an abort (docs/cli.md "Exit codes").
        std::cerr << "certmate: unexpected data: " << e.what() << "\n";
        return 1;
    }
}

} // namespace certmate::app
