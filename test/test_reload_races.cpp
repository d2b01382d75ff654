// Races (issue 14) of the reload path, in every build and under ThreadSanitizer (scripts/test.sh,
// stage test-tsan, where the `certmate` binary run here is the TSan build too): SIGHUP, which
// reopens the audit log and reloads tokens, rate limits, the log level and the TLS certificate,
// sent again and again while clients create certificates (audit appends), list them, and make
// fresh TLS handshakes, with the certificate and key on disk swapped between two before each
// SIGHUP. Every request is answered, both certificates are served, the audit chain verifies,
// the server stops cleanly, and (under TSan) its stderr holds no report.
#define BOOST_TEST_MODULE test_reload_races
#include <boost/test/unit_test.hpp>

#include "core/ossl.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// One GET /health over a fresh TLS connection (the server's certificate is not verified: the
// test swaps it for a self-signed one); the status, and the SHA-256 of the certificate served.
unsigned tls_health(unsigned short port, std::string& served) {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    asio::ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
    boost::system::error_code ec;
    s.next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return 0;
    const timeval tv{10, 0}; // a hung server fails the request instead of the test run
    ::setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    s.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return 0;
    const ossl::x509 peer(SSL_get1_peer_certificate(s.native_handle()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (peer && X509_digest(peer.get(), EVP_sha256(), md, &n) == 1) served.assign(reinterpret_cast<char*>(md), n);
    http::request<http::empty_body> req{http::verb::get, "/health", 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    http::write(s, req, ec);
    if (ec) return 0;
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res, ec);
    if (ec) return 0;
    s.shutdown(ec); // close_notify; the server's answer to it does not matter
    return res.result_int();
}

// Replaces `to` by `from`'s content atomically (a reload sees the old file or the new, whole).
void swap_in(const fs::path& from, const fs::path& to) {
    const fs::path tmp = to.string() + ".swap";
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, to);
}

} // namespace

BOOST_AUTO_TEST_CASE(sighup_reloads_during_load_and_handshakes_drop_nothing) {
    temp_dir dir;
    const auto data = dir / "data";
    const auto bin = certmate_binary();
    auto init = run(bin + " init --data-dir " + data.string() + " --ca.key_type ec-p384 --server-cert 127.0.0.1");
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
    // The two certificates the TLS listener alternates between: the one init issued, and a
    // self-signed one; the listener serves copies at fixed paths.
    fs::create_directories(dir / "a");
    fs::create_directories(dir / "b");
    fs::copy_file(data / "tls/server.crt", dir / "a/server.crt");
    fs::copy_file(data / "tls/server.key", dir / "a/server.key");
    auto other = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 "
                     "-addext subjectAltName=IP:127.0.0.1 -keyout '" +
                     (dir / "b/server.key").string() + "' -out '" + (dir / "b/server.crt").string() + "' 2>&1");
    BOOST_REQUIRE_MESSAGE(other.exit_code == 0, other.output);
    const fs::path cert = dir / "live.crt", key = dir / "live.key";
    swap_in(dir / "a/server.crt", cert);
    swap_in(dir / "a/server.key", key);

    child_process proc({bin,
                        "serve",
                        "--data-dir",
                        data.string(),
                        "--listen",
                        "127.0.0.1:0",
                        "--server.https_listen",
                        "127.0.0.1:0",
                        "--tls.cert",
                        cert.string(),
                        "--tls.key",
                        key.string(),
                        "--tls.client_auth",
                        "none",
                        "--server.threads",
                        "2",
                        "--server.pool_threads",
                        "2",
                        "--ca.key_type",
                        "ec-p384",
                        "--issuance.default_key_type",
                        "ec-p256",
                        "--rate_limit.default",
                        "0",
                        "--rate_limit.create",
                        "0",
                        "--renewal.enabled",
                        "false"},
                       dir / "serve.err");
    auto line = proc.wait_for_line("listening on http://", 120s);
    BOOST_REQUIRE_MESSAGE(line, read_text(dir / "serve.err"));
    const unsigned short port = port_of_listen_line(*line);
    auto tline = proc.wait_for_line("listening on https://", 30s);
    BOOST_REQUIRE_MESSAGE(tline, read_text(dir / "serve.err"));
    const unsigned short tls_port = port_of_listen_line(*tline);
    std::string token = read_text(data / "admin.token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();

    std::atomic<bool> stop{false};
    std::atomic<int> tls_ok{0}, tls_failed{0}, lists{0}, creates{0}, failed{0};
    std::mutex mu;
    std::set<std::string> served;
    std::vector<std::thread> load;
    for (int t = 0; t < 2; ++t)
        load.emplace_back([&] {
            while (!stop) {
                std::string fp;
                if (tls_health(tls_port, fp) == 200) {
                    ++tls_ok;
                    std::lock_guard lock(mu);
                    served.insert(fp);
                } else {
                    ++tls_failed;
                }
            }
        });
    load.emplace_back([&] {
        http_client hc(port);
        while (!stop) (hc.get("/api/client-certs?limit=5", token).status == 200 ? lists : failed)++;
    });
    load.emplace_back([&] {
        http_client hc(port);
        for (int i = 0; !stop; ++i) {
            const std::string id = "r-" + std::to_string(i);
            const auto st = hc.post_json("/api/client-certs",
                                         R"({"identifier":")" + id + R"(","common_name":")" + id + "\"}", token)
                                .status;
            (st == 201 ? creates : failed)++;
        }
    });

    constexpr int reloads = 20;
    for (int i = 0; i < reloads; ++i) {
        const auto& from = i % 2 == 0 ? dir / "b" : dir / "a";
        swap_in(from / "server.key", key);
        swap_in(from / "server.crt", cert);
        proc.signal(SIGHUP);
        // Deliberate: reloads spread over the load (and signals not merged into one).
        std::this_thread::sleep_for(150ms);
    }
    // A last round of handshakes after the final reload, then the load stops.
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& t : load) t.join();

    const auto err = read_text(dir / "serve.err");
    std::size_t reloaded = 0;
    for (auto at = err.find("SIGHUP: reloaded"); at != std::string::npos; at = err.find("SIGHUP: reloaded", at + 1))
        ++reloaded;
    BOOST_TEST_MESSAGE(reloaded << " reloads; during them " << tls_ok << " TLS handshakes + requests, " << lists
                                << " lists, " << creates << " creates");
    BOOST_TEST(reloaded >= std::size_t{reloads / 2}); // a signal arriving during a reload may merge
    BOOST_TEST(tls_failed == 0);
    BOOST_TEST(failed == 0);
    BOOST_TEST(tls_ok > 0);
    BOOST_TEST(lists > 0);
    BOOST_TEST(creates > 0);
    BOOST_TEST(served.size() == 2u); // both certificates were served in turn

    // The audit log, reopened 20 times while creates appended to it, still verifies.
    http_client hc(port);
    const auto verify = hc.get("/api/audit/verify", token);
    BOOST_TEST(verify.status == 200u);
    BOOST_TEST(verify.json().as_object().at("ok").as_bool());

    proc.signal(SIGTERM);
    BOOST_TEST(proc.wait_exit(60s).value_or(-1) == 0);
    const auto final_err = read_text(dir / "serve.err");
    BOOST_TEST(final_err.find("ThreadSanitizer") == std::string::npos, final_err);
}
