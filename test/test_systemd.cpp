// Running as a systemd service: the unit file verifies, the binary speaks sd_notify on a test
// NOTIFY_SOCKET (READY, RELOADING, WATCHDOG, STOPPING), and `cmake --install` lays out the files.
#define BOOST_TEST_MODULE systemd
#include <boost/test/unit_test.hpp>

#include "app/bootstrap.hpp"
#include "app/config.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

using namespace certmate::test;
namespace fs = std::filesystem;

namespace {

const fs::path source_dir = CERTMATE_SOURCE_DIR;

// A datagram socket standing in for systemd's notification socket.
class notify_socket {
public:
    explicit notify_socket(const fs::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        BOOST_REQUIRE(fd_ >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        BOOST_REQUIRE(path.string().size() < sizeof addr.sun_path);
        std::strcpy(addr.sun_path, path.c_str());
        BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~notify_socket() { ::close(fd_); }

    // Datagrams until one contains `needle` (all of them returned), or empty on timeout.
    std::string wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
        std::string seen;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
            char buf[4096];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::string msg(buf, static_cast<std::size_t>(n));
            seen += msg + "\n";
            if (msg.find(needle) != std::string::npos) return seen;
        }
        return {};
    }

private:
    fs::path path_;
    int fd_ = -1;
};

} // namespace

BOOST_AUTO_TEST_CASE(unit_file_verifies_and_is_hardened) {
    temp_dir d;
    // systemd-analyze checks that ExecStart's binary exists: point it at the one we built.
    std::string unit = read_text(source_dir / "scripts/certmate.service");
    const std::string from = "/usr/bin/certmate";
    unit.replace(unit.find(from), from.size(), certmate_binary());
    write_text(d / "certmate.service", unit);
    auto v = run("systemd-analyze verify " + (d / "certmate.service").string());
    BOOST_TEST(v.exit_code == 0, v.output);
    BOOST_TEST(v.output.empty(), v.output);
    for (const char* key :
         {"Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
          "PrivateDevices=yes", "RestrictAddressFamilies=", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
          "SystemCallFilter=@system-service", "StateDirectory=certmate", "User=certmate",
          "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec="})
        BOOST_TEST(unit.find(key) != std::string::npos, key);
    auto sec = run("systemd-analyze security --offline=true " + (d / "certmate.service").string());
    BOOST_TEST(sec.output.find("Overall exposure level") != std::string::npos, sec.output);
    BOOST_TEST_MESSAGE(sec.output.substr(sec.output.rfind("Overall")));
}

BOOST_AUTO_TEST_CASE(notify_socket_gets_ready_reloading_watchdog_and_stopping) {
    temp_dir d;
    notify_socket sock(d / "notify.sock");
    ::setenv("NOTIFY_SOCKET", (d / "notify.sock").c_str(), 1);
    ::setenv("WATCHDOG_USEC", "400000", 1);
    child_process p({certmate_binary(), "serve", "--data-dir", (d / "data").string(), "--listen", "127.0.0.1:0",
                     "--ca.key_type", "ec-p384", "--renewal.enabled", "false"},
                    d / "stderr.log");
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");

    auto ready = sock.wait_for("READY=1", std::chrono::seconds(30));
    BOOST_REQUIRE_MESSAGE(!ready.empty(), read_text(d / "stderr.log"));
    BOOST_TEST(ready.find("STATUS=serving http://127.0.0.1:") != std::string::npos, ready);
    // The listener is up by the time READY=1 is sent.
    BOOST_TEST(p.wait_for_line("listening on", std::chrono::seconds(5)).has_value());

    BOOST_TEST(!sock.wait_for("WATCHDOG=1", std::chrono::seconds(3)).empty());

    p.signal(SIGHUP);
    auto reload = sock.wait_for("READY=1", std::chrono::seconds(10));
    BOOST_TEST(reload.find("RELOADING=1") != std::string::npos, reload);

    p.signal(SIGTERM);
    BOOST_TEST(!sock.wait_for("STOPPING=1", std::chrono::seconds(10)).empty());
    auto code = p.wait_exit(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
}

BOOST_AUTO_TEST_CASE(cmake_install_lays_out_binary_unit_and_config) {
    temp_dir d;
    const fs::path build_dir = fs::path(certmate_binary()).parent_path();
    auto r = run("DESTDIR=" + d.path().string() + " cmake --install " + build_dir.string() + " --prefix /usr");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    for (const char* f :
         {"usr/bin/certmate", "usr/lib/systemd/system/certmate.service", "usr/lib/sysusers.d/certmate.conf",
          "etc/certmate/certmate.conf", "usr/share/doc/certmate/certmate.conf.example"})
        BOOST_TEST(fs::exists(d / f), f);
    // The installed config is valid as shipped.
    auto check = run((d / "usr/bin/certmate").string() + " serve --check-config -c " +
                     (d / "etc/certmate/certmate.conf").string());
    BOOST_TEST(check.exit_code == 0, check.output);
    // A second install keeps an operator's edits.
    write_text(d / "etc/certmate/certmate.conf", "# edited\n");
    BOOST_REQUIRE(
        run("DESTDIR=" + d.path().string() + " cmake --install " + build_dir.string() + " --prefix /usr").exit_code ==
        0);
    BOOST_TEST(read_text(d / "etc/certmate/certmate.conf") == "# edited\n");
}

// A sweep missed while the process was down (last run two days ago) runs when it starts; a
// certificate that is due gets renewed without anyone calling the API.
BOOST_AUTO_TEST_CASE(missed_sweep_runs_at_start) {
    temp_dir d;
    const auto data = d / "data";
    const std::vector<std::string> o = {"--storage.data_dir",          data.string(), "--ca.key_type", "ec-p384",
                                        "--issuance.default_key_type", "ec-p256"};
    const auto cfg = certmate::app::load_config({}, o);
    BOOST_REQUIRE(certmate::app::init_data_dir(cfg, {}));
    std::string serial_before;
    {
        auto svc = certmate::app::open_service(cfg);
        BOOST_REQUIRE(svc);
        certmate::create_request r;
        r.identifier = "due";
        r.subject.common_name = "due";
        r.validity_days = 10;
        auto v = certmate::run_sync((*svc)->stage_create(r, {}));
        BOOST_REQUIRE(v);
        serial_before = v->record.serial_number;
    }
    fs::create_directories(data / "state");
    const auto two_days_ago = std::chrono::system_clock::now() - std::chrono::hours(48);
    write_text(data / "state/renewal_sweep.json", "{\"started_at\":\"" + certmate::format_time(two_days_ago) +
                                                      "\",\"candidates\":0,\"renewed\":0,\"failed\":0}\n");

    child_process p({certmate_binary(), "serve", "--data-dir", data.string(), "--listen", "127.0.0.1:0"},
                    d / "stderr.log");
    auto line = p.wait_for_line("listening on", std::chrono::seconds(30));
    BOOST_REQUIRE_MESSAGE(line, read_text(d / "stderr.log"));
    http_client http(port_of_listen_line(*line));
    std::string token = read_text(data / "admin.token");
    token.erase(token.find_last_not_of("\n") + 1);
    std::string serial_now;
    eventually(
        [&] {
            auto r = http.get("/api/client-certs/due", token);
            BOOST_REQUIRE_EQUAL(r.status, 200u);
            serial_now = r.json().as_object().at("serial_number").as_string().c_str();
            return serial_now != serial_before;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    BOOST_TEST(serial_now != serial_before, "the missed sweep did not renew the due certificate");
    // The sweep records its run after the renewal is visible: wait (bounded) for the record.
    std::string state;
    eventually([&] {
        state = read_text(data / "state/renewal_sweep.json");
        return state.find("\"renewed\":1") != std::string::npos;
    });
    BOOST_TEST(state.find("\"renewed\":1") != std::string::npos, state);
    auto metrics = http.get("/metrics");
    BOOST_TEST(metrics.body.find("certmate_renewals_total{result=\"ok\"} 1") != std::string::npos, metrics.body);
    p.signal(SIGTERM);
    auto code = p.wait_exit(std::chrono::seconds(15));
    BOOST_TEST((code && *code == 0));
}
