// The server as a server: issue 4 acceptance 5 (crypto off the io threads and the strand: readers
// keep a low p99 while RSA-4096 keys are generated) and 6 (SIGTERM drains: in-flight requests
// complete, new connections are refused, exit 0 within the grace), plus connection limits and
// timeouts.
#define BOOST_TEST_MODULE test_http_server
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/wait.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// A blocking socket whose reads give up after `timeout` (so a bug fails instead of hanging).
struct raw_conn {
    asio::io_context ioc;
    tcp::socket sock{ioc};
    explicit raw_conn(unsigned short port, std::chrono::milliseconds timeout = 10s) {
        sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
        ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    void send(const std::string& s) { asio::write(sock, asio::buffer(s)); }
    // Reads until the peer closes or `needle` has arrived (then a little more for the body).
    std::string read_until(const std::string& needle, bool& closed) {
        std::string out;
        closed = false;
        char buf[4096];
        for (;;) {
            boost::system::error_code ec;
            auto n = sock.read_some(asio::buffer(buf), ec);
            if (ec == asio::error::eof || ec == asio::error::connection_reset) {
                closed = true;
                return out;
            }
            if (ec) return out; // timeout
            out.append(buf, n);
            if (!needle.empty() && out.find(needle) != std::string::npos) {
                auto hdr_end = out.find("\r\n\r\n");
                auto cl = out.find("Content-Length: ");
                if (hdr_end != std::string::npos && cl != std::string::npos) {
                    auto len = std::stoul(out.substr(cl + 16));
                    if (out.size() >= hdr_end + 4 + len) return out;
                }
            }
        }
    }
};

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

} // namespace

BOOST_AUTO_TEST_CASE(readers_keep_low_latency_while_rsa4096_keys_are_generated) {
    test_server srv([](app::config& c) {
        c.threads = 2;
        c.pool_threads = 2;
    });
    const auto& t = srv.tokens;
    std::vector<std::string> ids, serials;
    {
        http_client http(srv.port());
        for (int i = 0; i < 12; ++i) {
            auto r =
                http.post_json("/api/client-certs", R"({"common_name":"load)" + std::to_string(i) + "\"}", t.operator_);
            BOOST_REQUIRE_EQUAL(r.status, 201u);
            auto o = r.json().as_object();
            ids.emplace_back(o.at("identifier").as_string());
            serials.emplace_back(o.at("serial_number").as_string());
        }
    }

    std::atomic<bool> creating{false}, stop{false};
    std::atomic<int> creates{0};
    std::thread creator([&] {
        http_client http(srv.port(), "127.0.0.1", 120s);
        const auto begin = steady::now();
        // At least one RSA-4096 key generation, and readers measured for ~2.5 s of them.
        for (int i = 0; i == 0 || (steady::now() - begin < 2500ms && i < 20); ++i) {
            creating = true;
            auto r = http.post_json("/api/client-certs",
                                    R"({"common_name":"big)" + std::to_string(i) + R"(","key_type":"rsa4096"})",
                                    t.operator_);
            creating = false;
            if (r.status == 201u) ++creates;
        }
        stop = true;
    });

    constexpr int clients = 50;
#if defined(__SANITIZE_ADDRESS__)
    constexpr auto think_time = 60ms; // AddressSanitizer: the same check at a load it can carry
#else
    constexpr auto think_time = 20ms;
#endif
    std::vector<std::vector<double>> lat(clients);
    std::atomic<int> failures{0};
    std::vector<std::thread> readers;
    for (int k = 0; k < clients; ++k)
        readers.emplace_back([&, k] {
            http_client http(srv.port(), "127.0.0.1", 10s);
            for (int i = 0; !stop; ++i) {
                const auto n = static_cast<std::size_t>(k + i);
                std::string target = n % 3 == 0   ? "/api/client-certs?limit=5"
                                     : n % 3 == 1 ? "/api/client-certs/" + ids[n % ids.size()]
                                                  : "/api/ocsp/status/" + serials[n % serials.size()];
                const bool during = creating;
                const auto t0 = steady::now();
                try {
                    if (http.get(target, t.viewer).status != 200u) ++failures;
                } catch (const std::exception&) {
                    ++failures;
                }
                const double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
                if (during && creating) lat[k].push_back(ms);
                // Deliberate: a client's think time paces the load.
                std::this_thread::sleep_for(think_time);
            }
        });
    creator.join();
    for (auto& r : readers) r.join();

    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    BOOST_TEST(creates.load() >= 1);
    BOOST_TEST(failures.load() == 0);
    BOOST_REQUIRE_GE(all.size(), 100u);
    const double p50 = percentile(all, 0.50), p99 = percentile(all, 0.99);
    BOOST_TEST_MESSAGE(all.size() << " reads during " << creates.load() << " RSA-4096 creates: p50 " << p50
                                  << " ms, p99 " << p99 << " ms");
#if defined(__SANITIZE_ADDRESS__)
    const double bound = 150.0; // AddressSanitizer slows every request several times over
#else
    const double bound = 50.0;
#endif
    BOOST_TEST(p99 < bound);
}

BOOST_AUTO_TEST_CASE(sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_zero) {
    temp_dir dir;
    std::vector<std::string> argv{CERTMATE_BINARY,
                                  "serve",
                                  "--data-dir",
                                  (dir / "data").string(),
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--ca.key_type",
                                  "ec-p384",
                                  "--issuance.default_key_type",
                                  "ec-p256",
                                  "--server.shutdown_grace",
                                  "10",
                                  "--server.threads",
                                  "2",
                                  "--server.pool_threads",
                                  "2",
                                  "--rate_limit.default",
                                  "0",
                                  "--rate_limit.create",
                                  "0"};
    for (const auto& a : test_backend_args(dir.path())) argv.push_back(a);
    child_process proc(argv, dir / "stderr.log");
    // stdout is a pipe: the token is in admin.token only.
    auto token_line = proc.wait_for_line("admin token written to", 30s);
    BOOST_REQUIRE_MESSAGE(token_line, read_text(dir / "stderr.log"));
    std::string token = read_text(dir / "data" / "admin.token");
    token.erase(token.find_last_not_of('\n') + 1);
    auto line = proc.wait_for_line("listening on http://", 30s);
    BOOST_REQUIRE(line);
    const auto port = port_of_listen_line(*line);

    // an idle keep-alive connection
    raw_conn idle(port);
    idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    bool closed = false;
    BOOST_REQUIRE(idle.read_until("\"status\"", closed).find("200 OK") != std::string::npos);

    // a request whose body is still arriving when SIGTERM comes
    const std::string body = R"({"common_name":"slow-upload","identifier":"slow"})";
    raw_conn slow(port);
    slow.send("POST /api/client-certs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
              "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
              body.substr(0, 10));

    // key generations in flight
    std::vector<unsigned> statuses(2, 0);
    std::vector<std::thread> creators;
    for (int i = 0; i < 2; ++i)
        creators.emplace_back([&, i] {
            http_client http(port, "127.0.0.1", 60s);
            try {
                statuses[i] =
                    http.post_json("/api/client-certs",
                                   R"({"common_name":"big)" + std::to_string(i) + R"(","key_type":"rsa4096"})", token)
                        .status;
            } catch (const std::exception& e) {
                BOOST_TEST_MESSAGE("create " << i << ": " << e.what());
            }
        });
    // The two creators' requests reach key generation (no endpoint shows work in flight): a margin.
    std::this_thread::sleep_for(300ms);

    const auto term_at = steady::now();
    proc.signal(SIGTERM);

    // new connections are refused while the drain runs
    const bool refused = eventually(
        [&] {
            try {
                http_client(port, "127.0.0.1", 2s).get("/health");
                return false;
            } catch (const std::exception&) {
                return true;
            }
        },
        5s, 10ms);
    BOOST_TEST(refused);
    // the idle keep-alive connection was closed, not waited for
    idle.read_until({}, closed);
    BOOST_TEST(closed);

    // the in-flight upload completes and is answered (and told the connection closes)
    slow.send(body.substr(10));
    auto answer = slow.read_until("\"identifier\"", closed);
    BOOST_TEST_INFO(answer);
    BOOST_TEST(answer.rfind("HTTP/1.1 201", 0) == 0);
    BOOST_TEST(answer.find("Connection: close") != std::string::npos);

    for (auto& c : creators) c.join();
    BOOST_TEST(statuses[0] == 201u);
    BOOST_TEST(statuses[1] == 201u);

    auto code = proc.wait_exit(12s);
    BOOST_REQUIRE_MESSAGE(code, "did not exit; stderr: " << read_text(dir / "stderr.log"));
    BOOST_TEST(*code == 0);
    BOOST_TEST((steady::now() - term_at < 10s));
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_get_503_and_slow_requests_time_out) {
    test_server srv([](app::config& c) { c.max_connections = 2; },
                    [](net::server_options& o) { o.request_timeout = 500ms; });
    http_client a(srv.port()), b(srv.port());
    BOOST_REQUIRE_EQUAL(a.get("/health").status, 200u);
    BOOST_REQUIRE_EQUAL(b.get("/health").status, 200u);
    auto over = http_client(srv.port()).get("/health");
    BOOST_TEST(over.status == 503u);
    BOOST_TEST(over.json().as_object().at("code").as_string() == "OVERLOADED");
    BOOST_TEST(!over.header("x-request-id").empty());
    a.close();
    http_reply ok;
    eventually([&] {
        ok = http_client(srv.port()).get("/health");
        return ok.status == 200u;
    });
    BOOST_TEST(ok.status == 200u);
    b.close();
    // The next connection must find a free slot: wait until one answers (b's close is seen).
    eventually([&] {
        try {
            return http_client(srv.port()).get("/health").status == 200u;
        } catch (const std::exception&) {
            return false;
        }
    });

    // headers that never finish: the connection is closed after the request timeout
    raw_conn slow(srv.port(), 5s);
    slow.send("GET /health HTTP/1.1\r\nHost: x\r\n");
    const auto t0 = steady::now();
    bool closed = false;
    slow.read_until({}, closed);
    BOOST_TEST(closed);
    BOOST_TEST((steady::now() - t0 < 3s));
}

BOOST_AUTO_TEST_CASE(private_metrics_and_protocol_only_plain_http) {
    test_server srv([](app::config& c) {
        c.metrics_public = false;
        c.api_on_http = false;
    });
    http_client http(srv.port());
    BOOST_TEST(http.get("/metrics").status == 401u);
    BOOST_TEST(http.get("/metrics", srv.tokens.viewer).status == 200u);
    // plain HTTP serves only what issued certificates point at (and health)
    BOOST_TEST(http.get("/ca.crt").status == 200u);
    BOOST_TEST(http.get("/crl.der").status == 200u);
    BOOST_TEST(http.get("/health").status == 200u);
    BOOST_TEST(http.get("/api/ca", srv.tokens.admin).status == 404u);
    BOOST_TEST(http.get("/api/client-certs", srv.tokens.admin).status == 404u);
}
