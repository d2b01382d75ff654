#include "app/cli.hpp"

#include "app/bootstrap.hpp"
#include "app/config.hpp"
#include "app/serve.hpp"
#include "core/keys.hpp"
#include "storage/atomic_file.hpp"
#include "storage/audit_log.hpp"
#include "storage/ca_files.hpp"
#include "storage/leftovers.hpp"

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <iostream>

namespace certmate::app {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

constexpr const char* usage_text = R"(usage: certmate [COMMAND] [OPTIONS]

commands:
  serve [-c FILE] [--data-dir DIR] [--listen HOST:PORT] [--check-config]   run the server (default)
  init [-c FILE] [--data-dir DIR]                 create the CA, an admin token and a starter config
       [--server-cert HOST...]                    also issue the TLS listener's certificate (serverAuth,
                                                  SANs HOST...) as DIR/tls/server.crt and server.key
  ca backup --out FILE [--data-dir DIR]           CA key, certificate, metadata and CRL state in one archive (0600)
  ca restore --in FILE [--force] [--data-dir DIR] restore a CA backup (refuses a different CA without --force)
  token create --name NAME --role viewer|operator|admin
  audit verify [--data-dir DIR]                   walk the audit hash chain and check every signed
       [--public-key FILE]                        checkpoint (default key: certs/audit/audit_signing.pub)
  version

Every config key can be given as --section.key VALUE (see certmate.conf.example).
)";

struct parsed_args {
    po::variables_map vm;
    std::vector<std::string> overrides; // --section.key VALUE, normalised
    fs::path config_file;
};

// Parses the command's own options; the rest must be --section.key VALUE config overrides.
parsed_args parse(const std::vector<std::string>& args, po::options_description own) {
    own.add_options()("config,c", po::value<std::string>(), "config file")(
        "data-dir", po::value<std::string>(), "data directory")("listen", po::value<std::string>(), "HOST:PORT");
    parsed_args out;
    auto parsed = po::command_line_parser(args).options(own).allow_unregistered().run();
    po::store(parsed, out.vm);
    po::notify(out.vm);
    auto rest = po::collect_unrecognized(parsed.options, po::include_positional);
    for (std::size_t i = 0; i < rest.size(); ++i) {
        const auto& a = rest[i];
        if (a.rfind("--", 0) != 0 || a.find('.') == std::string::npos)
            throw error_exception(make_error(errc::invalid_argument, "unknown argument: " + a));
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            out.overrides.push_back(a.substr(0, eq));
            out.overrides.push_back(a.substr(eq + 1));
        } else {
            if (i + 1 >= rest.size()) throw error_exception(make_error(errc::invalid_argument, a + " needs a value"));
            out.overrides.push_back(a);
            out.overrides.push_back(rest[++i]);
        }
    }
    if (out.vm.count("data-dir"))
        out.overrides.insert(out.overrides.begin(), {"--storage.data_dir", out.vm["data-dir"].as<std::string>()});
    if (out.vm.count("listen"))
        out.overrides.insert(out.overrides.begin(), {"--server.http_listen", out.vm["listen"].as<std::string>()});
    out.config_file = resolve_config_file(
        out.vm.count("config") ? fs::path(out.vm["config"].as<std::string>()) : fs::path(), out.overrides);
    return out;
}

int cmd_init(const std::vector<std::string>& args) {
    po::options_description own("init");
    own.add_options()("server-cert", po::value<std::vector<std::string>>()->multitoken(),
                      "TLS server certificate names");
    auto a = parse(args, own);
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

int cmd_ca(const std::vector<std::string>& args) {
    if (args.empty()) throw error_exception(make_error(errc::invalid_argument, "ca: expected backup or restore"));
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::options_description own("ca");
    own.add_options()("out", po::value<std::string>())("in", po::value<std::string>())("force", po::bool_switch());
    auto a = parse(rest, own);
    auto cfg = load_config(a.config_file, a.overrides);
    storage::layout l{cfg.data_dir};
    if (args[0] == "backup") {
        if (!a.vm.count("out")) throw error_exception(make_error(errc::invalid_argument, "ca backup needs --out FILE"));
        if (auto r = storage::backup_ca(l, a.vm["out"].as<std::string>(), ca_passphrase(cfg)); !r)
            throw error_exception(r.error());
        std::cout << "wrote CA backup " << a.vm["out"].as<std::string>() << "\n";
        return 0;
    }
    if (args[0] == "restore") {
        if (!a.vm.count("in")) throw error_exception(make_error(errc::invalid_argument, "ca restore needs --in FILE"));
        if (auto r = storage::ensure_dir(l.data_dir, fs::perms(0700)); !r) throw error_exception(r.error());
        auto rep = storage::restore_ca(l, a.vm["in"].as<std::string>(), a.vm["force"].as<bool>(), ca_passphrase(cfg));
        if (!rep) throw error_exception(rep.error());
        if (auto w = audit_cli_operation(l, "ca_restore", "ca", rep->fingerprint_sha256,
                                         {{"files", rep->files},
                                          {"replaced_different_ca", rep->replaced},
                                          {"key_encrypted_with_passphrase", rep->key_encrypted}});
            !w)
            throw error_exception(w.error());
        std::cout << "restored CA " << rep->fingerprint_sha256 << " (" << rep->files << " files)\n";
        return 0;
    }
    throw error_exception(make_error(errc::invalid_argument, "ca: unknown subcommand " + args[0]));
}

int cmd_token(const std::vector<std::string>& args) {
    if (args.empty() || args[0] != "create")
        throw error_exception(make_error(errc::invalid_argument, "token: expected create"));
    po::options_description own("token");
    own.add_options()("name", po::value<std::string>())("role", po::value<std::string>()->default_value("viewer"));
    auto a = parse({args.begin() + 1, args.end()}, own);
    if (!a.vm.count("name")) throw error_exception(make_error(errc::invalid_argument, "token create needs --name"));
    auto role = parse_api_role(a.vm["role"].as<std::string>());
    if (!role) throw error_exception(make_error(errc::invalid_argument, "--role must be viewer, operator or admin"));
    token_entry t{a.vm["name"].as<std::string>(), *role, {}};
    if (t.name.find(':') != std::string::npos || t.name.empty())
        throw error_exception(make_error(errc::invalid_argument, "--name must be non-empty and without ':'"));
    const auto token = new_token();
    t.sha256_hex = sha256_hex_of(token);
    std::cout << "token: " << token
              << "\nadd to the [auth] section of the config (then SIGHUP):\ntoken = " << token_config_value(t) << "\n";
    return 0;
}

int cmd_audit(const std::vector<std::string>& args) {
    if (args.empty() || args[0] != "verify")
        throw error_exception(make_error(errc::invalid_argument, "audit: expected verify"));
    po::options_description own("audit");
    own.add_options()("public-key", po::value<std::string>(), "PEM public key that signs the checkpoints");
    auto a = parse({args.begin() + 1, args.end()}, own);
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
    auto r = storage::verify_audit_file(l.audit_log(), pub.get());
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

int run_cli(int argc, char** argv) {
    auto logger = spdlog::stderr_color_mt("certmate");
    spdlog::set_default_logger(logger);
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string cmd = "serve";
    if (!args.empty() && args[0].rfind("-", 0) != 0) {
        cmd = args[0];
        args.erase(args.begin());
    }
    try {
        if (cmd == "version" || cmd == "--version") {
            std::cout << "certmate " << CERTMATE_VERSION << "\n";
            return 0;
        }
        if (cmd == "help" || cmd == "--help" || cmd == "-h") {
            std::cout << usage_text;
            return 0;
        }
        if (cmd == "init") return cmd_init(args);
        if (cmd == "ca") return cmd_ca(args);
        if (cmd == "token") return cmd_token(args);
        if (cmd == "audit") return cmd_audit(args);
        if (cmd == "serve") {
            po::options_description own("serve");
            own.add_options()("check-config", po::bool_switch());
            auto a = parse(args, own);
            auto cfg = load_config(a.config_file, a.overrides);
            if (a.vm["check-config"].as<bool>()) {
                std::cout << "config ok" << (a.config_file.empty() ? "" : ": " + a.config_file.string()) << "\n";
                return 0;
            }
            return run_server(cfg, a.config_file, a.overrides);
        }
        std::cerr << "certmate: unknown command '" << cmd << "'\n" << usage_text;
        return 2;
    } catch (const error_exception& e) {
        std::cerr << "certmate: " << e.err.message << "\n";
        return 2;
    } catch (const po::error& e) {
        std::cerr << "certmate: " << e.what() << "\n";
        return 2;
    }
}

} // namespace certmate::app
