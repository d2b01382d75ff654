// Issue 14 "Hostile clients": the built `certmate` binary on loopback (plain HTTP and TLS, the
// default limits, rate limits off so the server itself is what is tested) under slowloris,
// 2,000 idle connections from 127.0.0.2-.9, header and pipelined floods, request smuggling, TLS
// handshake floods and renegotiation, deeply nested JSON and a 30,000-row batch body at the byte
// limit. Throughout each attack a well-behaved client on 127.0.0.1 (GET /health and POST /ocsp on
// fresh connections) must be answered within a second, and the server's VmRSS must stay bounded.
// Every wait is bounded; the whole file runs in about 40 s.
#define BOOST_TEST_MODULE test_hostile
#include <boost/test/unit_test.hpp>

#include "core/ossl.hpp"
#include "support/child_process.hpp"
#include "support/tools.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// scripts/test.sh runs this file in the ASan+UBSan Debug build too, where the server is slower
// and its RSS holds shadow memory and ASan's quarantine: there the bounds are looser.
#if defined(__has_feature) // clang
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CERTMATE_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) // GCC
#define CERTMATE_SANITIZED 1
#endif
#ifdef CERTMATE_SANITIZED
constexpr long sanitizer_factor = 4;
#else
constexpr long sanitizer_factor = 1;
#endif

// The attackers' addresses (all of 127/8 is loopback on Linux); the well-behaved client is 127.0.0.1.
const std::vector<std::string> attackers = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                                            "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"};

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Everything the server sends until it closes (or the socket's receive timeout passes).
std::string read_to_close(int fd) {
    std::string in;
    char buf[16384];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
}

// The status codes of the responses in `raw`, one after the other (each body skipped by its
// Content-Length).
std::vector<unsigned> statuses_in(const std::string& raw) {
    std::vector<unsigned> out;
    std::size_t at = 0;
    while (raw.compare(at, 7, "HTTP/1.") == 0 && at + 12 <= raw.size()) {
        out.push_back(static_cast<unsigned>(std::atoi(raw.substr(at + 9, 3).c_str())));
        const auto end = raw.find("\r\n\r\n", at);
        if (end == std::string::npos) break;
        const auto cl = raw.find("\r\nContent-Length: ", at);
        const std::size_t length = cl < end ? std::strtoul(raw.c_str() + cl + 18, nullptr, 10) : 0;
        at = end + 4 + length;
    }
    return out;
}

unsigned status_of(const std::string& raw) {
    auto s = statuses_in(raw);
    return s.empty() ? 0 : s.front();
}

// Sends `bytes` from `source` and reads until the server closes (10 s at most): the raw answer.
std::string exchange(const std::string& source, unsigned short port, const std::string& bytes) {
    const int fd = connect_from(source, port);
    if (fd < 0) return {};
    set_timeouts(fd, 10s);
    std::string in;
    if (send_all(fd, bytes)) in = read_to_close(fd);
    ::close(fd);
    return in;
}

std::string request_text(const std::string& method, const std::string& target, const std::string& body = {},
                         const std::string& content_type = {}, const std::string& token = {}) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    return req + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Sockets closed at the end of the scope.
struct socket_set {
    std::vector<int> fds;
    socket_set() = default;
    socket_set(const socket_set&) = delete;
    ~socket_set() { close_all(); }
    void close_all() {
        for (int fd : fds) ::close(fd);
        fds.clear();
    }
    // `n` connections from each attacker address, round robin; the failed connects are counted.
    std::size_t open(unsigned short port, std::size_t per_address) {
        std::size_t failed = 0;
        for (std::size_t i = 0; i < per_address; ++i)
            for (const auto& a : attackers) {
                const int fd = connect_from(a, port);
                if (fd < 0)
                    ++failed;
                else
                    fds.push_back(fd);
            }
        return failed;
    }
    // How many of the sockets the server has answered or closed.
    std::size_t ended() const {
        std::vector<pollfd> p;
        for (int fd : fds) p.push_back({fd, POLLIN, 0});
        ::poll(p.data(), p.size(), 0);
        return static_cast<std::size_t>(std::count_if(
            p.begin(), p.end(), [](const pollfd& x) { return x.revents & (POLLIN | POLLHUP | POLLERR); }));
    }
};

long status_value_kb(int pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
    return -1;
}

// `certmate serve` over a fresh data dir with a TLS listener (client certificates optional), the
// default connection limits and timeouts, 2 io and 2 pool threads, rate limits off.
struct served_ca {
    temp_dir dir;
    std::unique_ptr<child_process> proc;
    unsigned short port = 0, tls_port = 0;
    std::string token;
    std::string ocsp_der; // an OCSP request for a serial the CA never issued (answered "unknown")
    long baseline_kb = 0;

    served_ca() {
        raise_fd_limit();
        const auto data = (dir / "data").string();
        const auto bin = certmate_binary();
        auto init = run(bin + " init --data-dir " + data + " --ca.key_type ec-p384 --server-cert 127.0.0.1");
        BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.output);
        proc = std::make_unique<child_process>(std::vector<std::string>{bin,
                                                                        "serve",
                                                                        "--data-dir",
                                                                        data,
                                                                        "--listen",
                                                                        "127.0.0.1:0",
                                                                        "--server.https_listen",
                                                                        "127.0.0.1:0",
                                                                        "--tls.cert",
                                                                        data + "/tls/server.crt",
                                                                        "--tls.key",
                                                                        data + "/tls/server.key",
                                                                        "--tls.client_auth",
                                                                        "optional",
                                                                        "--server.threads",
                                                                        "2",
                                                                        "--server.pool_threads",
                                                                        "2",
                                                                        "--issuance.default_key_type",
                                                                        "ec-p256",
                                                                        "--rate_limit.default",
                                                                        "0",
                                                                        "--rate_limit.create",
                                                                        "0",
                                                                        "--rate_limit.batch",
                                                                        "0",
                                                                        "--rate_limit.ocsp",
                                                                        "0",
                                                                        "--rate_limit.crl",
                                                                        "0",
                                                                        "--renewal.enabled",
                                                                        "false"},
                                               dir / "serve.err");
        auto line = proc->wait_for_line("listening on http://", 60s);
        BOOST_REQUIRE_MESSAGE(line, read_text(dir / "serve.err"));
        port = port_of_listen_line(*line);
        auto tline = proc->wait_for_line("listening on https://", 10s);
        BOOST_REQUIRE_MESSAGE(tline, read_text(dir / "serve.err"));
        tls_port = port_of_listen_line(*tline);
        token = read_text(dir / "data/admin.token");
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
        auto r = run("openssl ocsp -issuer '" + ca_cert().string() + "' -serial 0x42 -no_nonce -reqout '" +
                     (dir / "q.der").string() + "'");
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        ocsp_der = read_text(dir / "q.der");
        BOOST_REQUIRE_EQUAL(status_of(exchange("127.0.0.1", port, request_text("GET", "/health"))), 200u);
        baseline_kb = rss_kb();
        BOOST_TEST_MESSAGE("server VmRSS after start: " << baseline_kb / 1024 << " MiB");
    }
    ~served_ca() {
        proc->signal(SIGTERM);
        (void)proc->wait_exit(20s);
    }
    fs::path ca_cert() const { return dir / "data/certs/ca/ca.crt"; }
    long rss_kb() const { return status_value_kb(proc->pid(), "VmRSS"); }
    // Waits until the connections of the previous attack are gone (the server's gauge counts the
    // /metrics request itself), so per-address caps start from zero.
    void settle() const {
        const bool settled = eventually(
            [&] {
                const std::string m = exchange("127.0.0.1", port, request_text("GET", "/metrics"));
                const auto at = m.find("\ncertmate_http_connections ");
                return at != std::string::npos && std::atol(m.c_str() + at + 28) <= 1;
            },
            20s, 100ms);
        BOOST_REQUIRE_MESSAGE(settled, "the previous attack's connections are still open");
    }
};

served_ca& server() {
    static served_ca s;
    return s;
}

// A well-behaved client while an attack runs: GET /health and POST /ocsp in turn from 127.0.0.1,
// each on a fresh connection, every 50 ms; the server's VmRSS sampled after each.
class probe {
public:
    // Starts once the previous attack's connections are gone.
    explicit probe(served_ca& s) : s_(s) {
        s_.settle();
        thread_ = std::thread([this] { run(); });
    }
    ~probe() { stop(); }

    // Stops, prints the figures, and checks: answered every time, within `latency_bound`, and the
    // server's VmRSS never more than `rss_growth_mib` above what it was after start (so the
    // bound holds beside a sanitizer's own memory, and whatever the order of the cases).
    void check(const std::string& attack, long rss_growth_mib, std::chrono::milliseconds latency_bound = 1000ms) {
        stop();
        std::sort(latencies_ms_.begin(), latencies_ms_.end());
        const double p50 = latencies_ms_.empty() ? 0 : latencies_ms_[latencies_ms_.size() / 2];
        const double worst = latencies_ms_.empty() ? 0 : latencies_ms_.back();
        BOOST_TEST_MESSAGE("hostile " << attack << ": well-behaved client " << latencies_ms_.size() << " requests, p50 "
                                      << p50 << " ms, max " << worst << " ms, unanswered " << failures_
                                      << "; server VmRSS peak " << peak_kb_ / 1024 << " MiB (at start "
                                      << s_.baseline_kb / 1024 << " MiB)");
        BOOST_TEST_CONTEXT(attack) {
            BOOST_TEST(!latencies_ms_.empty());
            BOOST_TEST(failures_ == 0u, "last status " << last_failure_);
            BOOST_TEST(worst < static_cast<double>(latency_bound.count() * sanitizer_factor));
            BOOST_TEST(peak_kb_ > 0);
            BOOST_TEST((peak_kb_ - s_.baseline_kb) / 1024 < rss_growth_mib * sanitizer_factor);
        }
    }

private:
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    void run() {
        const std::string health = request_text("GET", "/health");
        const std::string ocsp = request_text("POST", "/ocsp", s_.ocsp_der, "application/ocsp-request");
        // At least one round, however short the attack: a probe that asked nothing proves nothing.
        for (bool use_ocsp = false; latencies_ms_.empty() || !stop_; use_ocsp = !use_ocsp) {
            const auto t0 = steady::now();
            const unsigned st = status_of(exchange("127.0.0.1", s_.port, use_ocsp ? ocsp : health));
            latencies_ms_.push_back(std::chrono::duration<double, std::milli>(steady::now() - t0).count());
            if (st != 200) {
                ++failures_;
                last_failure_ = st;
            }
            peak_kb_ = std::max(peak_kb_, s_.rss_kb());
            std::this_thread::sleep_for(50ms);
        }
    }

    served_ca& s_;
    std::atomic<bool> stop_{false};
    std::vector<double> latencies_ms_;
    std::size_t failures_ = 0;
    unsigned last_failure_ = 0;
    long peak_kb_ = 0;
    std::thread thread_;
};

// A TLS ClientHello as a client would send it: the first flight of a handshake made against
// memory BIOs. Sent on many sockets, it makes the server do its half of each handshake.
std::string client_hello() {
    using ssl_ctx = ossl::handle<SSL_CTX, SSL_CTX_free>;
    using ssl = ossl::handle<SSL, SSL_free>;
    ssl_ctx ctx(SSL_CTX_new(TLS_client_method()));
    BOOST_REQUIRE(ctx);
    ssl s(SSL_new(ctx.get()));
    BOOST_REQUIRE(s);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(s.get(), in, out); // owned by the SSL from here
    SSL_set_connect_state(s.get());
    BOOST_REQUIRE(SSL_do_handshake(s.get()) <= 0); // waits for the ServerHello
    std::string hello(static_cast<std::size_t>(BIO_ctrl_pending(out)), '\0');
    BOOST_REQUIRE(!hello.empty());
    BOOST_REQUIRE(BIO_read(out, hello.data(), static_cast<int>(hello.size())) == static_cast<int>(hello.size()));
    return hello;
}

// One HTTPS GET /health with curl (verifying the server against our CA): "STATUS SECONDS".
std::string https_health(const served_ca& s) {
    auto r = run("curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' --cacert '" +
                 s.ca_cert().string() + "' https://127.0.0.1:" + std::to_string(s.tls_port) + "/health");
    return r.output;
}

} // namespace

// Headers a byte a second, and a body a byte a second: the request timeout (10 s for headers
// and body together, net/options.hpp) ends each, and nothing is answered meanwhile.
BOOST_AUTO_TEST_CASE(slowloris_connections_are_cut_at_the_request_timeout) {
    auto& s = server();
    probe p(s);
    socket_set slow;
    BOOST_REQUIRE_EQUAL(slow.open(s.port, 24), 0u); // 192 connections, 24 per address
    const std::string slow_headers = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(64, 'a');
    const std::string slow_body_head = "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                       "application/ocsp-request\r\nContent-Length: 1000\r\n\r\n";
    // Odd sockets send their whole header at once, then the body a byte a second.
    for (std::size_t i = 1; i < slow.fds.size(); i += 2) BOOST_REQUIRE(send_all(slow.fds[i], slow_body_head));
    const auto start = steady::now();
    std::vector<double> ended_at(slow.fds.size(), -1);
    std::size_t answered = 0;
    for (std::size_t second = 0; second < 20; ++second) {
        for (std::size_t i = 0; i < slow.fds.size(); ++i) {
            if (ended_at[i] >= 0) continue;
            pollfd pf{slow.fds[i], POLLIN, 0};
            if (::poll(&pf, 1, 0) > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR))) {
                char buf[512];
                if (::recv(slow.fds[i], buf, sizeof buf, MSG_DONTWAIT) > 0) ++answered;
                ended_at[i] = std::chrono::duration<double>(steady::now() - start).count();
                continue;
            }
            const char byte = i % 2 == 0 ? slow_headers[second % slow_headers.size()] : 'x';
            if (::send(slow.fds[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
                ended_at[i] = std::chrono::duration<double>(steady::now() - start).count();
        }
        if (std::all_of(ended_at.begin(), ended_at.end(), [](double t) { return t >= 0; })) break;
        // Deliberate: the attack itself is one byte per second.
        std::this_thread::sleep_for(1s);
    }
    const auto [first, last] = std::minmax_element(ended_at.begin(), ended_at.end());
    BOOST_TEST_MESSAGE("slowloris: " << slow.fds.size() << " connections closed between " << *first << " s and "
                                     << *last << " s");
    BOOST_TEST(*first >= 8.5);  // not before the request timeout (10 s; the loop polls once a second)
    BOOST_TEST(*last <= 13.0);  // every one cut once it passed
    BOOST_TEST(answered == 0u); // closed, not served
    p.check("slowloris", 128);
}

// 250 idle connections from each of eight addresses: each address keeps 64 (the per-address cap)
// and the rest are refused at once; the well-behaved client is served meanwhile.
BOOST_AUTO_TEST_CASE(two_thousand_idle_connections_from_eight_addresses) {
    auto& s = server();
    probe p(s);
    socket_set idle;
    BOOST_REQUIRE_EQUAL(idle.open(s.port, 250), 0u);
    BOOST_REQUIRE_EQUAL(idle.fds.size(), 2000u);
    std::size_t ended = 0;
    eventually(
        [&] {
            ended = idle.ended();
            return ended >= 2000 - 8 * 64;
        },
        10s);
    BOOST_TEST(ended == 2000u - 8 * 64);
    // Deliberate: time for a wrong close to happen while the client keeps asking.
    std::this_thread::sleep_for(1500ms);
    BOOST_TEST(idle.ended() == 2000u - 8 * 64);
    BOOST_TEST_MESSAGE("idle: 2,000 connections from 8 addresses, " << 2000 - idle.ended() << " held");
    p.check("2,000 idle connections", 128);
}

// Many headers, one huge header, and headers just under the limit: 431 for the first two (the
// 8 KiB header limit), an answer for the third; from eight addresses at once.
BOOST_AUTO_TEST_CASE(header_floods_get_431) {
    auto& s = server();
    probe p(s);
    std::string many = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < 5000; ++i) many += "X-" + std::to_string(i) + ": a\r\n";
    many += "\r\n";
    const std::string huge =
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: " + std::string(1 << 20, 'h') + "\r\n\r\n";
    std::string under = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (int i = 0; under.size() < 7900; ++i) under += "X-" + std::to_string(i) + ": b\r\n";
    under += "\r\n";
    std::mutex mu;
    std::map<std::string, std::map<unsigned, int>> seen;
    std::vector<std::thread> threads;
    for (const auto& a : attackers)
        threads.emplace_back([&, a] {
            for (int round = 0; round < 6; ++round)
                for (const auto* kind : {"many", "huge", "under"}) {
                    const std::string& bytes = kind == std::string("many")   ? many
                                               : kind == std::string("huge") ? huge
                                                                             : under;
                    const unsigned st = status_of(exchange(a, s.port, bytes));
                    std::lock_guard lock(mu);
                    ++seen[kind][st];
                }
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(seen["many"][431] == 48);
    BOOST_TEST(seen["huge"][431] == 48);
    BOOST_TEST(seen["under"][200] == 48);
    p.check("header floods", 128);
}

// Eight connections each pipelining 2,000 requests get 2,000 answers each, in order; one more
// pipelines without ever reading: the server stops reading it (bounded memory) and serves others.
BOOST_AUTO_TEST_CASE(pipelined_floods_are_answered_in_order_and_bounded) {
    auto& s = server();
    probe p(s);
    constexpr int n = 2000;
    std::string batch;
    for (int i = 0; i < n; ++i)
        batch += "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: p" + std::to_string(i) + "\r\n\r\n";
    // The never-reading one: as much as the socket buffers take.
    const int hog = connect_from("127.0.0.9", s.port);
    BOOST_REQUIRE(hog >= 0);
    std::size_t pushed = 0;
    for (int round = 0; round < 200; ++round) {
        const auto m = ::send(hog, batch.data(), batch.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (m <= 0) break;
        pushed += static_cast<std::size_t>(m);
    }
    std::vector<std::size_t> answers(attackers.size());
    std::vector<char> in_order(attackers.size(), 0); // not vector<bool>: written by 8 threads
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < attackers.size(); ++k)
        threads.emplace_back([&, k] {
            const int fd = connect_from(attackers[k], s.port);
            if (fd < 0) return;
            set_timeouts(fd, 15s);
            std::thread writer(
                [&] { send_all(fd, batch + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); });
            const std::string in = read_to_close(fd);
            writer.join();
            ::close(fd);
            const auto st = statuses_in(in);
            answers[k] = static_cast<std::size_t>(std::count(st.begin(), st.end(), 200u));
            in_order[k] = in.find("X-Request-Id: p0\r\n") < in.find("X-Request-Id: p1\r\n") &&
                          in.find("X-Request-Id: p1998\r\n") < in.find("X-Request-Id: p1999\r\n") &&
                          in.find("X-Request-Id: p1999\r\n") != std::string::npos;
        });
    for (auto& t : threads) t.join();
    for (std::size_t k = 0; k < attackers.size(); ++k) {
        BOOST_TEST(answers[k] == std::size_t{n} + 1, "from " << attackers[k] << ": " << answers[k] << " answers");
        BOOST_TEST(in_order[k] != 0, "from " << attackers[k]);
    }
    BOOST_TEST_MESSAGE("pipelined: 8 x " << n << " requests answered; a non-reading client pushed " << pushed / 1024
                                         << " KiB");
    p.check("pipelined floods", 128);
    ::close(hog);
}

// Framing that two parsers could read differently is refused with one answer and a close
// (RFC 9112 6.1, 6.3, 5.2): no second request is ever read from the same bytes.
BOOST_AUTO_TEST_CASE(request_smuggling_attempts_get_one_error_and_a_close) {
    auto& s = server();
    probe p(s);
    const std::string smuggled = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    struct attempt {
        const char* what;
        std::string bytes;
        unsigned want;
    };
    const std::string post = "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n";
    const std::vector<attempt> attempts = {
        {"CL then TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
        {"TE then CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, 400},
        {"two differing CL", post + "Content-Length: 5\r\nContent-Length: 0\r\n\r\n" + smuggled, 400},
        {"a CL list that differs", post + "Content-Length: 0, 5\r\n\r\n" + smuggled, 400},
        {"obs-fold", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Folded: a\r\n b\r\n\r\n" + smuggled, 400},
        {"obs-fold in TE", post + "Content-Length: 0\r\nX-A: b\r\n\tTransfer-Encoding: chunked\r\n\r\n" + smuggled,
         400},
        {"TE gzip only", post + "Transfer-Encoding: gzip\r\n\r\n" + smuggled, 400},
        {"TE chunked not last", post + "Transfer-Encoding: chunked, gzip\r\n\r\n" + smuggled, 400},
        {"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n" + smuggled, 400},
        {"TE gzip then chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, 501},
        {"TE in HTTP/1.0",
         "POST /ocsp HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
    };
    for (const auto& a : attempts) {
        BOOST_TEST_CONTEXT(a.what) {
            const std::string in = exchange("127.0.0.2", s.port, a.bytes);
            const auto st = statuses_in(in);
            BOOST_TEST(st.size() == 1u, "answers: " << st.size() << "\n" << in.substr(0, 600));
            if (!st.empty()) BOOST_TEST(st.front() == a.want);
            BOOST_TEST(in.find("\"status\":\"ok\"") == std::string::npos); // the smuggled /health was not served
        }
    }
    // A plain chunked request is fine (and one request is one answer).
    const auto ok = statuses_in(exchange("127.0.0.2", s.port,
                                         "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
                                         "chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"));
    BOOST_TEST(ok.size() == 1u);
    p.check("request smuggling", 128);
}

// 480 connections each sending a ClientHello and then nothing (the server does its half of each
// handshake), plus 64 that never send a byte: a full HTTPS request still completes quickly, and
// the plain listener is unaffected.
BOOST_AUTO_TEST_CASE(tls_handshake_floods_leave_room_for_real_clients) {
    auto& s = server();
    const std::string hello = client_hello();
    probe p(s);
    socket_set flood;
    BOOST_REQUIRE_EQUAL(flood.open(s.tls_port, 60), 0u);
    for (int fd : flood.fds) BOOST_REQUIRE(send_all(fd, hello));
    socket_set silent;
    for (int i = 0; i < 64; ++i) silent.fds.push_back(connect_from("127.0.0.10", s.tls_port));
    BOOST_TEST(std::count(silent.fds.begin(), silent.fds.end(), -1) == 0);
    // The server answers every ClientHello (its first flight) and waits for the client's.
    std::size_t replied = 0;
    eventually(
        [&] {
            replied = flood.ended();
            return replied == flood.fds.size();
        },
        10s);
    BOOST_TEST(replied == flood.fds.size());
    for (int i = 0; i < 3; ++i) {
        const auto out = https_health(s);
        BOOST_TEST_MESSAGE("https during the handshake flood: " << out);
        BOOST_TEST(out.rfind("200 ", 0) == 0u, out);
        if (out.rfind("200 ", 0) == 0) BOOST_TEST(std::stod(out.substr(4)) < 1.0 * sanitizer_factor);
    }
    p.check("TLS handshake flood", 192);
}

// TLS 1.2 client-initiated renegotiation is refused (SSL_OP_NO_RENEGOTIATION: RFC 5746 makes it
// safe, but it remains a way to make the server redo its expensive half of a handshake).
BOOST_AUTO_TEST_CASE(tls_renegotiation_is_refused) {
    auto& s = server();
    auto r =
        run("(printf 'GET /health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n'; sleep 0.5; printf 'R\\n'; sleep 1) | "
            "timeout 10 openssl s_client -tls1_2 -connect 127.0.0.1:" +
            std::to_string(s.tls_port) + " -CAfile '" + s.ca_cert().string() + "' 2>&1");
    BOOST_TEST(r.output.find("HTTP/1.1 200 OK") != std::string::npos, r.output);
    BOOST_TEST(r.output.find("RENEGOTIATING") != std::string::npos, r.output);
    BOOST_TEST(r.output.find("no renegotiation") != std::string::npos, r.output);
    BOOST_TEST(https_health(s).rfind("200 ", 0) == 0u);
}

// Deeply nested JSON gets a clear 400 (Boost.JSON's depth limit), never a crash; bodies past the
// limits get 413.
BOOST_AUTO_TEST_CASE(deeply_nested_and_oversized_json_get_clear_errors) {
    auto& s = server();
    probe p(s);
    const std::string json_ct = "application/json";
    auto call = [&](const std::string& target, const std::string& body) {
        return exchange("127.0.0.2", s.port, request_text("POST", target, body, json_ct, s.token));
    };
    const auto deep_batch = call("/api/client-certs/batch", std::string(100000, '['));
    BOOST_TEST(status_of(deep_batch) == 400u, deep_batch.substr(0, 400));
    BOOST_TEST(deep_batch.find("\"code\":\"INVALID_ARGUMENT\"") != std::string::npos);
    const auto deep_object = call("/api/client-certs/batch", "{\"certificates\":" + std::string(100000, '['));
    BOOST_TEST(status_of(deep_object) == 400u);
    const auto deep_one = call("/api/client-certs", std::string(64 * 1024, '['));
    BOOST_TEST(status_of(deep_one) == 400u, deep_one.substr(0, 400));
    const auto deep_revoke = call("/api/client-certs/batch/revoke", std::string(100000, '{'));
    BOOST_TEST(status_of(deep_revoke) == 400u);
    BOOST_TEST(status_of(call("/api/client-certs", std::string(64 * 1024 + 1, '['))) == 413u);
    p.check("nested JSON", 128);
}

// 30,000 rows in a body of exactly server.batch_body_limit (32 MiB) bytes: parsed and checked
// row by row (the last row is invalid, so nothing is created); one byte more is 413 before the
// body is read. The well-behaved client is served meanwhile.
BOOST_AUTO_TEST_CASE(a_30000_row_batch_body_at_the_byte_limit) {
    auto& s = server();
    constexpr std::size_t limit = 32 * 1024 * 1024;
    std::string body = "{\"certificates\":[";
    for (int i = 0; i < 30000; ++i) {
        const std::string id = "h-" + std::to_string(i);
        body += (i ? ",{" : "{") + std::string("\"identifier\":\"") + id + "\",\"common_name\":\"" + id +
                "\",\"notes\":\"" + std::string(1000, 'n') + "\"" + (i == 29999 ? ",\"key_type\":\"dsa-512\"" : "") +
                "}";
    }
    body += "]";
    BOOST_REQUIRE(body.size() < limit);
    body += std::string(limit - body.size() - 1, ' ') + "}";
    BOOST_REQUIRE_EQUAL(body.size(), limit);
    probe p(s);
    const auto t0 = steady::now();
    const auto at_limit = exchange("127.0.0.2", s.port,
                                   request_text("POST", "/api/client-certs/batch", body, "application/json", s.token));
    const double secs = std::chrono::duration<double>(steady::now() - t0).count();
    BOOST_TEST(status_of(at_limit) == 400u, at_limit.substr(0, 600));
    BOOST_TEST(at_limit.find("1 of 30000 rows are invalid") != std::string::npos, at_limit.substr(0, 600));
    // One byte more: refused from the header alone (a client that sends it all regardless gets
    // a reset while still sending, so this one sends the header only).
    const std::string head = request_text("POST", "/api/client-certs/batch", "", "application/json", s.token);
    const auto over = exchange("127.0.0.2", s.port,
                               head.substr(0, head.find("Content-Length: ")) +
                                   "Content-Length: " + std::to_string(limit + 1) + "\r\n\r\n");
    BOOST_TEST(status_of(over) == 413u, over);
    BOOST_TEST_MESSAGE("batch at the limit: 30,000 rows, 32 MiB, answered in " << secs << " s");
    p.check("30,000-row batch at the byte limit", 320);
}
