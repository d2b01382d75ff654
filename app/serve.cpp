#include "app/serve.hpp"

#include "app/bootstrap.hpp"
#include "app/server_options.hpp"
#include "app/systemd.hpp"
#include "net/server.hpp"
#include "storage/leftovers.hpp"
#include "storage/serve_lock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <csignal>
#include <functional>
#include <iostream>

namespace certmate::app {

namespace asio = boost::asio;

namespace {

void apply_log_level(const config& cfg) { spdlog::set_level(spdlog::level::from_str(cfg.log_level)); }

} // namespace

// init on first start, open the service, serve until SIGTERM/SIGINT; SIGHUP reloads tokens, rate
// limits, the log level and the TLS server certificate/key from the same file and overrides, and
// reopens the audit log. A clean stop ends the audit log with a signed checkpoint (docs/audit.md).
int run_server(const config& given, const std::filesystem::path& config_file,
               const std::vector<std::string>& overrides) {
    config cfg = given;
    apply_log_level(cfg);

    // Signals are caught from here on, before any thread starts.
    asio::io_context signal_ctx;
    asio::signal_set signals(signal_ctx, SIGINT, SIGTERM, SIGHUP);

    // One server per data dir, held until exit: the clean-up below assumes that no one else writes.
    auto lock = storage::serve_lock::acquire(cfg.data_dir);
    if (!lock) throw error_exception(lock.error());
    // Nothing writes to the data dir yet: every temp file is a leftover of an interrupted write.
    (void)storage::remove_temp_leftovers(storage::layout{cfg.data_dir}, std::chrono::seconds(0));
    auto rep = init_data_dir(cfg, config_file);
    if (!rep) throw error_exception(rep.error());
    if (!rep->admin_token.empty()) {
        std::cout << admin_token_announcement(*rep, ::isatty(STDOUT_FILENO) == 1) << std::endl;
        // With an operator's config file the token only works once its hash is there.
        if (rep->config_written.empty())
            std::cout << "add to the [auth] section of " << config_file.string() << " (then SIGHUP):\ntoken = "
                      << token_config_value(token_entry{"admin", api_role::admin, sha256_hex_of(rep->admin_token)})
                      << std::endl;
    }
    // A starter config written by init holds the admin token: read it like a restart would.
    std::filesystem::path effective_file = config_file.empty() ? resolve_config_file({}, overrides) : config_file;
    if (effective_file != config_file) cfg = load_config(effective_file, overrides);

    auto svc = open_service(cfg);
    if (!svc) throw error_exception(svc.error());
    // Owned by the service, which the server keeps until the end of this function.
    // The audit port is safe from any thread: SIGHUP and the shutdown reach it from here.
    cert_service& service = **svc;
    net::server srv(server_options_from(cfg), std::move(*svc));
    if (auto r = srv.start(); !r) throw error_exception(r.error());
    spdlog::info("listening on {}", srv.url());
    std::cout << "listening on " << srv.url() << std::endl;
    if (srv.tls_port()) {
        spdlog::info("listening on {} (client certificates: {})", srv.tls_url(), cfg.tls_client_auth);
        std::cout << "listening on " << srv.tls_url() << std::endl;
    }

    systemd::notify_ready("serving " + srv.url());

    // systemd's watchdog (WatchdogSec): pinged from the signal thread at half the interval.
    asio::steady_timer watchdog(signal_ctx);
    const auto watchdog_every = systemd::watchdog_interval();
    std::function<void()> arm_watchdog = [&] {
        if (!watchdog_every) return;
        watchdog.expires_after(*watchdog_every / 2);
        watchdog.async_wait([&](const boost::system::error_code& ec) {
            if (ec) return;
            systemd::notify_watchdog();
            arm_watchdog();
        });
    };
    arm_watchdog();

    for (;;) {
        int signal = 0;
        signals.async_wait([&](const boost::system::error_code& ec, int s) {
            signal = ec ? 0 : s;
            signal_ctx.stop();
        });
        signal_ctx.restart();
        signal_ctx.run();
        if (signal != SIGHUP) break;
        systemd::notify_reloading();
        if (auto r = service.reopen_audit(); !r) spdlog::error("SIGHUP: audit log not reopened: {}", r.error().message);
        try {
            const config fresh = load_config(effective_file, overrides);
            srv.reload(tokens_from(fresh), rate_limits_from(fresh));
            // The server certificate and key (renewed on disk); a bad one keeps the old context.
            if (auto r = srv.reload_tls(tls_options_from(fresh)); !r)
                spdlog::error("SIGHUP: TLS certificate not reloaded: {}", r.error().message);
            apply_log_level(fresh);
            spdlog::info("SIGHUP: reloaded {} ({} tokens)",
                         effective_file.empty() ? "overrides" : effective_file.string(), fresh.tokens.size());
        } catch (const error_exception& e) {
            spdlog::error("SIGHUP: config not reloaded: {}", e.err.message);
        }
        systemd::notify_ready("serving " + srv.url());
    }
    watchdog.cancel();
    systemd::notify_stopping();
    spdlog::info("stopping: draining connections (grace {} s)", cfg.shutdown_grace.count());
    srv.shutdown();
    // Nothing runs on the service any more: the snapshot for the next start, written here.
    if (cfg.snapshot_delay.count() > 0)
        if (auto s = service.stage_snapshot(std::chrono::seconds(0), true)) (void)s->commit(s->work());
    if (auto r = service.audit_checkpoint("shutdown"); !r)
        spdlog::error("audit log: no shutdown checkpoint: {}", r.error().message);
    return 0;
}

} // namespace certmate::app
