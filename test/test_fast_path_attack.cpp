// Attacks on the OCSP fast path and the certificate JSON written without a tree (issue 15),
// against the real server over raw sockets: as a stranger (pipelining, smuggling, stalls, a
// client that never reads) and as an operator (strings that must stay valid JSON, the same bytes
// boost::json writes).
#define BOOST_TEST_MODULE test_fast_path_attack
#include <boost/test/unit_test.hpp>

#include "app/server_options.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/raw_socket.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

void send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        BOOST_REQUIRE(n > 0);
        sent += static_cast<std::size_t>(n);
    }
}

// The next answer on `fd` (header block and, unless `head_only`, the Content-Length body);
// `pending` keeps what came after it. Empty when the server closed first.
std::string read_answer(int fd, std::string& pending, bool head_only = false) {
    std::size_t want = std::string::npos;
    char buf[4096];
    for (;;) {
        const auto end = pending.find("\r\n\r\n");
        if (want == std::string::npos && end != std::string::npos) {
            std::smatch m;
            const std::string head = pending.substr(0, end);
            std::size_t length = 0;
            if (std::regex_search(head, m, std::regex("\r\nContent-Length: (\\d+)"))) length = std::stoul(m[1]);
            want = end + 4 + (head_only ? 0 : length);
        }
        if (want != std::string::npos && pending.size() >= want) break;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return {};
        pending.append(buf, static_cast<std::size_t>(n));
    }
    auto out = pending.substr(0, want);
    pending.erase(0, want);
    return out;
}

// Whether the server closes `fd` (EOF or reset) within `limit`, reading and dropping what comes.
bool closed_within(int fd, std::chrono::milliseconds limit) {
    const auto until = steady::now() + limit;
    char buf[65536];
    while (steady::now() < until) {
        pollfd pf{fd, POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
        if (::poll(&pf, 1, static_cast<int>(std::max<long>(left, 1))) <= 0) continue;
        const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
    return false;
}

std::string body_of(const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); }

std::string b64(const std::string& der) {
    static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < der.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(der[i]) << 16) | (static_cast<unsigned char>(der[i + 1]) << 8) |
                           static_cast<unsigned char>(der[i + 2]);
        out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
    }
    if (i + 1 == der.size()) {
        const unsigned v = static_cast<unsigned char>(der[i]) << 16;
        out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == der.size()) {
        const unsigned v = (static_cast<unsigned char>(der[i]) << 16) | (static_cast<unsigned char>(der[i + 1]) << 8);
        out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
    }
    std::string escaped;
    for (char c : out) escaped += c == '+' ? "%2B" : c == '/' ? "%2F" : c == '=' ? "%3D" : std::string(1, c);
    return escaped;
}

std::string post_ocsp_request(const std::string& der, const std::string& fields = {}) {
    return "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n" + fields +
           "Content-Length: " + std::to_string(der.size()) + "\r\n\r\n" + der;
}

std::string chunked_ocsp_request(const std::string& der) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", der.size());
    return "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" +
           std::string(size) + "\r\n" + der + "\r\n0\r\n\r\n";
}

// A server with short timeouts (the stalls below), a certificate and its cached OCSP answer.
struct fast_fixture {
    test_server srv{{}, [](net::server_options& o) {
                        o.request_timeout = 1500ms;
                        o.idle_timeout = 30s;
                    }};
    http_client http{srv.port()};
    temp_dir work;
    std::string der;  // a request without a nonce for "mallory"
    std::string good; // its answer's DER

    fast_fixture() {
        const auto ca = (work / "ca.pem").string();
        write_text(ca, str(obj(http.get("/api/ca", srv.tokens.viewer)), "certificate"));
        auto made = http.post_json("/api/client-certs", R"({"common_name":"mallory","identifier":"mallory"})",
                                   srv.tokens.operator_);
        BOOST_REQUIRE_EQUAL(made.status, 201u);
        write_text(work / "m.crt", str(obj(made), "certificate"));
        auto r = run("openssl ocsp -issuer " + ca + " -cert " + (work / "m.crt").string() + " -no_nonce -reqout " +
                     (work / "q.der").string());
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        der = read_text(work / "q.der");
        good = http.request("POST", "/ocsp", der, {{"Content-Type", "application/ocsp-request"}}).body;
        BOOST_REQUIRE(!good.empty());
    }
    double fast() {
        const auto text = http.get("/metrics", srv.tokens.viewer).body;
        const auto at = text.find("\ncertmate_ocsp_fast_path_total ");
        BOOST_REQUIRE(at != std::string::npos);
        return std::stod(text.substr(at + 31));
    }
};

} // namespace

// ---- a stranger on the network ----

// One write of many requests, fast-path ones between routed ones (HEAD, chunked, malformed, a
// health check; HEAD, which the route does not allow), then Connection: close and a request after it: every answer in order, the HEAD
// one without a body, and nothing after the close.
BOOST_FIXTURE_TEST_CASE(pipelined_requests_stay_in_step_across_the_fast_path, fast_fixture) {
    const double fast0 = fast();
    const std::string get = "GET /ocsp/" + b64(der) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::string head = "HEAD /ocsp/" + b64(der) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::string empty_post =
        "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 0\r\n\r\n";
    const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // A body that looks like a request: it is the body, not a second request.
    const std::string inner = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string posing = "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                               "Content-Length: " +
                               std::to_string(inner.size()) + "\r\n\r\n" + inner;
    const int fd = connect_from("127.0.0.1", srv.port());
    BOOST_REQUIRE(fd >= 0);
    send_all(fd, post_ocsp_request(der) + head + get + chunked_ocsp_request(der) + empty_post + posing + health +
                     post_ocsp_request(der, "Connection: close\r\n") + health);
    std::string pending;
    const auto a1 = read_answer(fd, pending);
    const auto a2 = read_answer(fd, pending, true);
    const auto a3 = read_answer(fd, pending);
    const auto a4 = read_answer(fd, pending);
    const auto a5 = read_answer(fd, pending);
    const auto a6 = read_answer(fd, pending);
    const auto a7 = read_answer(fd, pending);
    const auto a8 = read_answer(fd, pending);
    const auto a9 = read_answer(fd, pending);
    ::close(fd);
    BOOST_TEST_INFO("pending after: " << pending);
    BOOST_TEST(body_of(a1) == good);
    BOOST_TEST_INFO("HEAD answer: " << a2);
    BOOST_TEST(a2.starts_with("HTTP/1.1 405 ")); // the routed path's answer (GET only), headers only
    BOOST_TEST(has(a2, "\r\nAllow: GET\r\n"));
    BOOST_TEST(a3.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(body_of(a3) == good); // the HEAD answer's body was not sent: the GET's answer is next
    BOOST_TEST(body_of(a4) == good); // chunked: the same request
    BOOST_TEST(a5.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(body_of(a5) != good); // empty: malformedRequest
    BOOST_TEST(a6.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(body_of(a6) != good); // the request-like body, read as OCSP: malformedRequest
    BOOST_TEST(a7.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(has(a7, "Content-Type: application/json"));
    BOOST_TEST(has(a8, "\r\nConnection: close\r\n"));
    BOOST_TEST(body_of(a8) == good);
    BOOST_TEST(a9.empty()); // nothing after Connection: close
    BOOST_TEST(pending.empty());
    BOOST_TEST(fast() >= fast0 + 3); // a1, a3, a4 at least took the fast path
}

// Framing a proxy and this server might read differently, each after a fast-path request in the
// same write: refused with 400 and the connection closed, the smuggled request never answered.
BOOST_FIXTURE_TEST_CASE(smuggling_after_a_fast_path_request_is_refused, fast_fixture) {
    const std::string smuggled = "GET /api/client-certs HTTP/1.1\r\nHost: x\r\n\r\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", smuggled.size());
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"CL and TE", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          std::string(hex) + "\r\n" + smuggled + "\r\n0\r\n\r\n"},
        {"two lengths", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                        "Content-Length: 0\r\nContent-Length: " +
                            std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled},
        {"TE not chunked last", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                                "Transfer-Encoding: chunked, identity\r\n\r\n" +
                                    smuggled},
        {"bare LF", "POST /ocsp HTTP/1.1\nHost: 127.0.0.1\nContent-Length: " + std::to_string(smuggled.size()) +
                        "\n\n" + smuggled},
        {"folded TE", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nX-A: b\r\n Transfer-Encoding: "
                      "chunked\r\n\r\n" +
                          smuggled},
    };
    for (const auto& [name, attack] : cases) {
        BOOST_TEST_CONTEXT(name) {
            const int fd = connect_from("127.0.0.1", srv.port());
            BOOST_REQUIRE(fd >= 0);
            send_all(fd, post_ocsp_request(der) + attack);
            std::string pending;
            const auto first = read_answer(fd, pending);
            const auto second = read_answer(fd, pending);
            const auto third = read_answer(fd, pending);
            ::close(fd);
            BOOST_TEST(body_of(first) == good);
            BOOST_TEST_INFO("second: " << second);
            BOOST_TEST((second.starts_with("HTTP/1.1 400 ") || second.starts_with("HTTP/1.1 501 ") || second.empty()));
            BOOST_TEST(!has(second + third, "certificates")); // the smuggled list was never answered
            BOOST_TEST(third.empty());
        }
    }
}

// A request buffered whole skips the timer re-arm: the stall after it must still be cut at the
// request timeout (1.5 s here), not at the idle one (30 s), both for a partial header and for a
// partial body following the fast-path request in one write.
BOOST_FIXTURE_TEST_CASE(stalls_after_a_buffered_request_are_cut_at_the_request_timeout, fast_fixture) {
    const std::vector<std::pair<std::string, std::string>> tails = {
        {"partial header", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"},
        {"partial body", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                         "Content-Length: 100\r\n\r\n0123456789"},
        {"partial chunk", "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n64\r\n0123"},
    };
    for (const auto& [name, tail] : tails) {
        BOOST_TEST_CONTEXT(name) {
            const int fd = connect_from("127.0.0.1", srv.port());
            BOOST_REQUIRE(fd >= 0);
            const auto start = steady::now();
            send_all(fd, post_ocsp_request(der) + post_ocsp_request(der) + tail);
            std::string pending;
            BOOST_TEST(body_of(read_answer(fd, pending)) == good);
            BOOST_TEST(body_of(read_answer(fd, pending)) == good);
            BOOST_TEST(closed_within(fd, 5s));
            const double took = std::chrono::duration<double>(steady::now() - start).count();
            ::close(fd);
            BOOST_TEST_MESSAGE(name << ": closed after " << took << " s");
            BOOST_TEST(took >= 1.2);
            BOOST_TEST(took < 4.5);
        }
    }
}

// A client that pipelines fast-path requests and never reads: the server's synchronous write
// never blocks a thread (another client is answered meanwhile), and once the socket buffers
// are full the write times out and the connection is closed.
BOOST_FIXTURE_TEST_CASE(a_client_that_never_reads_is_cut_and_blocks_nobody, fast_fixture) {
    const int fd = connect_from("127.0.0.1", srv.port());
    BOOST_REQUIRE(fd >= 0);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string batch;
    for (int i = 0; i < 200; ++i) batch += post_ocsp_request(der);
    // Written until the server stops reading (its answers fill both buffers), for at most 5 s.
    const auto until = steady::now() + 5s;
    std::size_t off = 0, total = 0;
    while (steady::now() < until) {
        const auto n = ::send(fd, batch.data() + off, batch.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) break;
            pollfd pf{fd, POLLOUT, 0};
            if (::poll(&pf, 1, 300) == 0) break; // nothing taken for 300 ms: the server stopped reading
            continue;
        }
        total += static_cast<std::size_t>(n);
        off = (off + static_cast<std::size_t>(n)) % batch.size();
    }
    BOOST_TEST_MESSAGE("never reading: " << total << " bytes of requests sent before the server stopped reading");
    // Others are served meanwhile.
    for (int i = 0; i < 3; ++i) {
        const auto t0 = steady::now();
        http_client other(srv.port());
        BOOST_TEST(other.get("/health").status == 200u);
        BOOST_TEST((steady::now() - t0 < 1s));
    }
    // Cut at the request timeout of the stuck write (1.5 s), not held.
    BOOST_TEST(closed_within(fd, 8s));
    ::close(fd);
}

// The ocsp rate class set by a reload while a kept-alive connection is taking the fast path:
// its next request is counted and limited at once.
BOOST_FIXTURE_TEST_CASE(a_reload_limits_an_open_fast_path_connection_at_once, fast_fixture) {
    const int fd = connect_from("127.0.0.1", srv.port());
    BOOST_REQUIRE(fd >= 0);
    std::string pending;
    send_all(fd, post_ocsp_request(der));
    const auto before = read_answer(fd, pending);
    BOOST_TEST(body_of(before) == good);
    BOOST_TEST(!has(before, "RateLimit-Limit"));
    auto cfg = srv.config();
    cfg.limits.ocsp_per_min = 1;
    srv.server().reload(app::tokens_from(cfg), app::rate_limits_from(cfg));
    send_all(fd, post_ocsp_request(der) + post_ocsp_request(der));
    const auto limited1 = read_answer(fd, pending);
    const auto limited2 = read_answer(fd, pending);
    ::close(fd);
    BOOST_TEST(has(limited1, "\r\nRateLimit-Limit: 1\r\n"));
    BOOST_TEST(limited2.starts_with("HTTP/1.1 429 "));
}

// Expect: 100-continue (the server sends no 100: the client sends its body after a pause, as
// curl does), an HTTP/1.0 keep-alive request and an empty line before a request line, each
// pipelined with fast-path requests: answered in order, the 1.0 one routed with its own framing.
BOOST_FIXTURE_TEST_CASE(expect_http10_and_empty_lines_around_the_fast_path, fast_fixture) {
    const double fast0 = fast();
    const int fd = connect_from("127.0.0.1", srv.port());
    BOOST_REQUIRE(fd >= 0);
    std::string pending;
    const std::string head_only = "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                                  "Expect: 100-continue\r\nContent-Length: " +
                                  std::to_string(der.size()) + "\r\n\r\n";
    send_all(fd, head_only);
    std::this_thread::sleep_for(300ms); // the client's wait for a 100 that does not come
    pollfd pf{fd, POLLIN, 0};
    BOOST_TEST(::poll(&pf, 1, 0) == 0); // nothing answered before the body
    std::string v10 = post_ocsp_request(der, "Connection: keep-alive\r\n");
    v10.replace(v10.find("HTTP/1.1"), 8, "HTTP/1.0");
    send_all(fd, der + v10 + "\r\n" + post_ocsp_request(der));
    const auto a1 = read_answer(fd, pending);
    const auto a2 = read_answer(fd, pending);
    const auto a3 = read_answer(fd, pending);
    ::close(fd);
    BOOST_TEST(body_of(a1) == good);
    BOOST_TEST_INFO("HTTP/1.0 answer: " << a2);
    BOOST_TEST(a2.starts_with("HTTP/1.0 200 "));
    BOOST_TEST(body_of(a2) == good);
    BOOST_TEST_MESSAGE("after an empty line: " << (a3.empty() ? "closed" : a3.substr(0, a3.find("\r\n"))));
    BOOST_TEST_INFO("after the empty line: " << a3);
    BOOST_TEST((a3.empty() || body_of(a3) == good || a3.starts_with("HTTP/1.1 400 ")));
    BOOST_TEST(pending.empty());
    BOOST_TEST(fast() >= fast0 + 1); // the Expect one, at least
}

// ---- an operator's strings in the certificate JSON written without a tree ----

namespace {

// Every byte the escaping must handle (control characters, quote, backslash, DEL), multi-byte
// UTF-8 (U+2028 and U+2029, which JavaScript once took for line ends, and an emoji), as JSON text.
std::string hostile_json_string() {
    std::string s = "\"";
    for (int c = 1; c < 0x20; ++c) {
        char u[8];
        std::snprintf(u, sizeof u, "\\u%04x", c);
        s += u;
    }
    s += R"(\"\\/<script>\u007f\u2028\u2029\ud83d\ude00 é )";
    s += R"(\u0000 end")";
    return s;
}

} // namespace

// Notes set at create and by PATCH with every escape, then read back by GET and by the list:
// each answer parses as strict JSON, gives back exactly the string sent, and is the very text
// boost::json writes for the same value (serialize(parse(body)) == body).
BOOST_FIXTURE_TEST_CASE(operator_strings_come_back_as_the_same_json, fast_fixture) {
    const auto op = srv.tokens.operator_;
    const std::string notes_json = hostile_json_string();
    const std::string expected(json::parse(notes_json).as_string());
    BOOST_REQUIRE(expected.find('\0') != std::string::npos);
    auto made = http.post_json("/api/client-certs",
                               R"({"common_name":"notes-1","identifier":"notes-1","notes":)" + notes_json + "}", op);
    BOOST_REQUIRE_EQUAL(made.status, 201u);
    const std::string long_notes(4000, 'q');
    auto patched = http.patch_json("/api/client-certs/mallory", R"({"notes":)" + notes_json + "}", op);
    BOOST_REQUIRE_EQUAL(patched.status, 200u);

    auto check = [&](const std::string& what, const std::string& body) {
        std::error_code ec;
        const auto v = json::parse(body, ec);
        BOOST_REQUIRE_MESSAGE(!ec, what << ": not JSON: " << ec.message() << "\n" << body);
        BOOST_TEST(json::serialize(v) == body, what << ": not boost::json's text"); // boost::json's own text
        return v;
    };
    for (const auto& id : {"notes-1", "mallory"}) {
        const auto one = http.get(std::string("/api/client-certs/") + id, srv.tokens.viewer);
        BOOST_REQUIRE_EQUAL(one.status, 200u);
        const auto v = check(std::string("GET ") + id, one.body);
        BOOST_TEST(std::string(v.at("notes").as_string()) == expected);
    }
    const auto list = http.get("/api/client-certs?limit=10", srv.tokens.viewer);
    BOOST_REQUIRE_EQUAL(list.status, 200u);
    const auto v = check("list", list.body);
    std::size_t with_notes = 0;
    for (const auto& c : v.at("certificates").as_array())
        if (std::string(c.at("notes").as_string()) == expected) ++with_notes;
    BOOST_TEST(with_notes == 2u);
    // The create and PATCH answers (the same writer) too.
    check("create", made.body);
    check("patch", patched.body);

    // Longest notes allowed, and one byte over.
    auto at_limit = http.patch_json("/api/client-certs/mallory", R"({"notes":")" + long_notes + "\"}", op);
    BOOST_TEST(at_limit.status == 200u);
    check("4000-byte notes", at_limit.body);
    auto over = http.patch_json("/api/client-certs/mallory", R"({"notes":")" + std::string(4097, 'q') + "\"}", op);
    BOOST_TEST(over.status == 400u);
}

// Strings that are not UTF-8 in the request (raw bytes, lone surrogates) are refused at the door
// or come back as valid JSON; never invalid JSON in an answer.
BOOST_FIXTURE_TEST_CASE(invalid_utf8_never_reaches_an_answer, fast_fixture) {
    const auto op = srv.tokens.operator_;
    const std::vector<std::pair<std::string, std::string>> notes = {
        {"raw 0xff", "\"a\xff"
                     "b\""},
        {"raw overlong", "\"\xc0\xaf\""},
        {"lone high surrogate", R"("\ud800x")"},
        {"lone low surrogate", R"("\udc00")"},
        {"reversed pair", R"("\ude00\ud83d")"},
    };
    int n = 0;
    for (const auto& [name, text] : notes) {
        BOOST_TEST_CONTEXT(name) {
            const std::string id = "utf-" + std::to_string(n++);
            auto r = http.post_json(
                "/api/client-certs",
                R"({"common_name":")" + id + R"(","identifier":")" + id + R"(","notes":)" + text + "}", op);
            BOOST_TEST_MESSAGE(name << ": " << r.status);
            if (r.status == 201u) {
                std::error_code ec;
                json::parse(r.body, ec);
                BOOST_TEST(!ec, "create answer: " << ec.message());
                const auto g = http.get("/api/client-certs/" + id, srv.tokens.viewer);
                json::parse(g.body, ec);
                BOOST_TEST(!ec, "GET answer: " << ec.message());
            } else {
                BOOST_TEST(r.status == 400u);
            }
        }
    }
    const auto list = http.get("/api/client-certs?limit=100", srv.tokens.viewer);
    std::error_code ec;
    json::parse(list.body, ec);
    BOOST_TEST(!ec, "list answer: " << ec.message());
}
