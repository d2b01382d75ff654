// Attacks on the dashboard's routes (issue 13), over a real socket, as a stranger with no
// credentials, a viewer and an operator: HEAD and other methods on the page routes (a HEAD answer
// must carry no content, RFC 9110 9.3.2, or a keep-alive client reads it as the next answer),
// asset paths that try to leave the embedded table, junk conditional and Accept-Encoding headers,
// the identifier `new` that the client-side route /client-certificates/new would shadow, caching
// of authenticated API answers, and the framing headers of every page answer. The browser side
// (certificate fields with markup rendered in the DOM) is in test/dashboard/dashboard.mjs.
#define BOOST_TEST_MODULE test_dashboard_attack
#include <boost/test/unit_test.hpp>

#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace asio = boost::asio;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Writes `bytes` on a fresh connection and returns everything the server sends until it closes
// (5 s receive timeout per read).
std::string raw_exchange(unsigned short port, const std::string& bytes) {
    asio::io_context ioc;
    asio::ip::tcp::socket s(ioc);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{5, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::write(s, asio::buffer(bytes));
    std::string out;
    char buf[16384];
    for (;;) {
        boost::system::error_code ec;
        const auto n = s.read_some(asio::buffer(buf), ec);
        out.append(buf, n);
        if (ec) break;
    }
    return out;
}

// One answer's head as read off the wire: the status line and lower-cased header names.
struct wire_head {
    std::string status_line;
    std::map<std::string, std::string> headers;
};

wire_head parse_head(const std::string& block) {
    wire_head h;
    std::size_t pos = block.find("\r\n");
    h.status_line = block.substr(0, pos);
    while (pos != std::string::npos && pos + 2 < block.size()) {
        const auto next = block.find("\r\n", pos + 2);
        const auto line = block.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        pos = next;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        h.headers[name] = value;
    }
    return h;
}

// `HEAD target` followed on the same connection by `GET /health`: the HEAD answer's head, and
// whether the next bytes after it are the second answer's status line (no content in between).
std::pair<wire_head, bool> head_then_get(unsigned short port, const std::string& target,
                                         const std::string& extra = {}) {
    const auto wire = raw_exchange(port, "HEAD " + target + " HTTP/1.1\r\nHost: t\r\n" + extra +
                                             "\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const auto end = wire.find("\r\n\r\n");
    BOOST_REQUIRE_MESSAGE(end != std::string::npos, "no answer to HEAD " << target << ": " << wire);
    const auto head = parse_head(wire.substr(0, end));
    const bool next_is_answer = wire.compare(end + 4, 9, "HTTP/1.1 ") == 0;
    return {head, next_is_answer};
}

void check_framing_headers(const std::map<std::string, std::string>& h, const std::string& what) {
    BOOST_TEST_CONTEXT(what) {
        auto get = [&](const char* k) {
            auto it = h.find(k);
            return it == h.end() ? std::string() : it->second;
        };
        BOOST_TEST(has(get("content-security-policy"), "frame-ancestors 'none'"));
        BOOST_TEST(has(get("content-security-policy"), "default-src 'self'"));
        BOOST_TEST(get("x-frame-options") == "DENY");
        BOOST_TEST(get("x-content-type-options") == "nosniff");
        BOOST_TEST(get("referrer-policy") == "no-referrer");
    }
}

std::string asset_version(http_client& c) {
    std::smatch m;
    const auto page = c.get("/").body;
    BOOST_REQUIRE(std::regex_search(page, m, std::regex("/assets/v-([0-9a-f]{16})/app\\.js")));
    return m[1];
}

} // namespace

// HEAD on a page or file answered 405 with a JSON body, and any HEAD answer (404, 405, 401)
// carried content: a keep-alive client took those bytes for the next answer.
BOOST_AUTO_TEST_CASE(head_on_page_routes_has_the_get_headers_and_no_content) {
    test_server srv;
    auto c = srv.client();
    const auto version = asset_version(c);
    for (const std::string& target : std::vector<std::string>{"/", "/audit", "/client-certificates",
                                                              "/client-certificates/new", "/client-certificates/seed-1",
                                                              "/assets/app.js", "/assets/v-" + version + "/app.css"}) {
        BOOST_TEST_CONTEXT("HEAD " << target) {
            const auto get = c.get(target);
            BOOST_REQUIRE_EQUAL(get.status, 200u);
            auto [head, clean] = head_then_get(srv.port(), target);
            BOOST_TEST(head.status_line == "HTTP/1.1 200 OK");
            BOOST_TEST(clean, "the HEAD answer carried content");
            for (const char* k : {"content-type", "etag", "cache-control", "content-security-policy", "x-frame-options",
                                  "referrer-policy", "vary"})
                BOOST_TEST(head.headers[k] == get.header(k), k);
            BOOST_TEST(head.headers["content-length"] == std::to_string(get.body.size()));
            check_framing_headers(head.headers, "HEAD " + target);
        }
    }
    // Conditional HEAD: 304 with the tag.
    const auto etag = c.get("/").header("etag");
    auto [h304, clean304] = head_then_get(srv.port(), "/", "If-None-Match: " + etag + "\r\n");
    BOOST_TEST(h304.status_line == "HTTP/1.1 304 Not Modified");
    BOOST_TEST(clean304);
    // Errors to HEAD carry no content either: an unknown path, a known path's wrong method, a missing token.
    for (const std::string target : {"/nope", "/assets/nope.js", "/api/client-certs", "/api/session"}) {
        auto [head, clean] = head_then_get(srv.port(), target);
        BOOST_TEST(clean, "HEAD " << target << " (" << head.status_line << ") carried content");
    }
}

// Other methods on the page routes are 405 naming GET and HEAD; TRACE echoes nothing back.
BOOST_AUTO_TEST_CASE(other_methods_on_pages_are_refused_and_echo_nothing) {
    test_server srv;
    auto c = srv.client();
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
        for (const char* target : {"/", "/client-certificates/x", "/assets/app.js"}) {
            BOOST_TEST_CONTEXT(method << " " << target) {
                auto r = c.request(method, target, {}, {{"Authorization", "Bearer " + srv.tokens.admin}});
                BOOST_TEST(r.status == 405u);
                BOOST_TEST(r.header("allow") == "GET, HEAD");
                BOOST_TEST(!has(r.body, srv.tokens.admin));
                BOOST_TEST(r.header("content-type") == "application/json");
            }
        }
    }
}

// Paths that try to leave the embedded table (traversal, encoded slashes and dots, NUL, case,
// doubled prefixes, long names) are 404s, never a file of the disk nor a file under another name.
BOOST_AUTO_TEST_CASE(asset_paths_stay_in_the_embedded_table) {
    test_server srv;
    auto c = srv.client();
    const auto version = asset_version(c);
    const std::string v = "v-" + version;
    const std::vector<std::string> paths = {"/assets/../CMakeLists.txt",
                                            "/assets/..%2f..%2fCMakeLists.txt",
                                            "/assets/%2e%2e/%2e%2e/etc/passwd",
                                            "/assets/..%5c..%5cCMakeLists.txt",
                                            "/assets/" + v + "/../app.js",
                                            "/assets/" + v + "/%2e%2e/app.js",
                                            "/assets/app.js%00",
                                            "/assets/app.js%00.html",
                                            "/assets/%00",
                                            "/assets/./app.js",
                                            "/assets//app.js",
                                            "/assets/APP.JS",
                                            "/assets/app.js/",
                                            "/assets/app.js;x",
                                            "/assets/" + v + "/" + v + "/app.js",
                                            "/assets/" + v,
                                            "/assets/" + v + "/",
                                            "/assets/v-/app.js",
                                            "/assets/%61pp.js",
                                            "/assets/index.html",
                                            "/assets/" + v + "/index.html",
                                            "/assets/" + std::string(4000, 'a') + ".js",
                                            "/assets/" + std::string(2000, '.') + "/etc/passwd"};
    for (const auto& p : paths) {
        BOOST_TEST_CONTEXT(p.substr(0, 80)) {
            auto r = c.get(p);
            BOOST_TEST((r.status == 404u || r.status == 400u), r.status);
            BOOST_TEST(r.header("content-type") == "application/json");
            BOOST_TEST(!has(r.body, "cmake_minimum_required"));
            BOOST_TEST(!has(r.body, "root:"));
        }
    }
    // A path longer than the header limit is refused before routing.
    auto huge = c.get("/client-certificates/" + std::string(70000, 'x'));
    BOOST_TEST(huge.status == 431u);
    // Page routes with hostile tails still serve the static page (nothing of the path is echoed).
    auto c2 = srv.client();
    for (const char* p : {"/client-certificates/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/client-certificates/..%2f..%2f",
                          "/client-certificates/%00", "/client-certificates/%ZZ"}) {
        auto r = c2.get(p);
        BOOST_TEST_CONTEXT(p) {
            BOOST_TEST((r.status == 200u || r.status == 400u), r.status);
            BOOST_TEST(!has(r.body, "<script>alert"));
            BOOST_TEST(!has(r.body, "alert(1)"));
        }
    }
}

// Junk If-None-Match and Accept-Encoding values: a 200 with the file or a 304 for a listed tag,
// never a 5xx, a 304 for a tag that is not the file's, or gzip that the client refused.
BOOST_AUTO_TEST_CASE(junk_conditional_and_encoding_headers) {
    test_server srv;
    auto c = srv.client();
    const auto file = c.get("/assets/app.js");
    const auto etag = file.header("etag");
    const std::vector<std::string> no_match = {"",
                                               "\"",
                                               ",,,,",
                                               std::string(6000, ','),
                                               "W/",
                                               "W/\"\"",
                                               etag.substr(0, etag.size() - 1),
                                               etag.substr(1),
                                               "\"" + etag + "\"",
                                               etag + "x"};
    for (const auto& inm : no_match) {
        BOOST_TEST_CONTEXT("If-None-Match: " << inm.substr(0, 40)) {
            auto r = c.get("/assets/app.js", {}, {{"If-None-Match", inm}});
            BOOST_TEST(r.status == 200u);
            BOOST_TEST(r.body == file.body);
        }
    }
    for (const auto& inm : {std::string("*"), "W/" + etag, " " + etag + " ", "\"a\",\t" + etag}) {
        auto r = c.get("/assets/app.js", {}, {{"If-None-Match", inm}});
        BOOST_TEST(r.status == 304u, inm);
        BOOST_TEST(r.body.empty());
    }
    for (const std::string& ae : std::vector<std::string>{"gzip;q=0", "gzip;q=0.000", "GZIP;q=0", "identity", "br",
                                                          ";;;,,,", std::string(6000, ' '), "x-gzip;q=0, gzip;q=0"}) {
        BOOST_TEST_CONTEXT("Accept-Encoding: " << ae.substr(0, 40)) {
            auto r = c.get("/assets/app.js", {}, {{"Accept-Encoding", ae}});
            BOOST_TEST(r.status == 200u);
            BOOST_TEST(r.header("content-encoding").empty());
            BOOST_TEST(r.body == file.body);
        }
    }
}

// The client-side route /client-certificates/new is the create page: a certificate named `new`
// could never be opened in the dashboard, so `new` is reserved like batch, stats and ca.
BOOST_AUTO_TEST_CASE(identifier_new_is_reserved) {
    test_server srv;
    auto c = srv.client();
    auto r = c.post_json("/api/client-certs", R"({"common_name":"x","identifier":"new"})", srv.tokens.operator_);
    expect_code(r, 400, "INVALID_IDENTIFIER", "identifier");
    BOOST_TEST(c.get("/api/client-certs/new", srv.tokens.viewer).status == 404u);
    // In a batch, a row error naming the field; nothing is created.
    r = c.post_json(
        "/api/client-certs/batch",
        R"({"certificates":[{"common_name":"a","identifier":"new-ok"},{"common_name":"b","identifier":"new"}]})",
        srv.tokens.operator_);
    expect_code(r, 400, "INVALID_ARGUMENT");
    BOOST_TEST(has(json::serialize(obj(r).at("errors")), R"("row":2,"field":"identifier")"));
    // Names that only start with "new" stay usable.
    BOOST_TEST(
        c.post_json("/api/client-certs", R"({"common_name":"x","identifier":"new-1"})", srv.tokens.operator_).status ==
        201u);
}

// Authenticated API answers are never stored by a cache (RFC 9111 5.2.2.5); the session answer
// tells a stranger and a wrong token nothing but "not signed in".
BOOST_AUTO_TEST_CASE(api_answers_are_not_cached_and_the_session_leaks_nothing) {
    test_server srv;
    auto c = srv.client();
    auto made = c.post_json("/api/client-certs", R"({"common_name":"cache.example","identifier":"cache-1"})",
                            srv.tokens.operator_);
    BOOST_REQUIRE_EQUAL(made.status, 201u);
    BOOST_TEST(made.header("cache-control") == "no-store");
    const std::vector<std::pair<std::string, std::string>> reads = {
        {"/api/session", srv.tokens.viewer},
        {"/api/client-certs", srv.tokens.viewer},
        {"/api/client-certs/cache-1", srv.tokens.viewer},
        {"/api/client-certs/stats", srv.tokens.viewer},
        {"/api/client-certs/cache-1/certificate", srv.tokens.viewer},
        {"/api/client-certs/cache-1/private-key", srv.tokens.operator_},
        {"/api/audit", srv.tokens.admin},
        {"/api/client-certs", ""},
        {"/api/client-certs/cache-1/private-key", srv.tokens.viewer}};
    for (const auto& [path, token] : reads) {
        BOOST_TEST_CONTEXT(path << (token.empty() ? " (no token)" : "")) {
            auto r = c.get(path, token);
            BOOST_TEST(r.header("cache-control") == "no-store");
            BOOST_TEST(r.header("x-content-type-options") == "nosniff");
        }
    }
    // A stranger, a malformed and a wrong token: the same answer, with nothing of the token in it.
    for (const std::string& bad :
         std::vector<std::string>{"", "cm_wrong", srv.tokens.viewer + "x", std::string(3000, 'A'), "\"><img src=x>"}) {
        auto r =
            c.get("/api/session", {}, bad.empty() ? header_list{} : header_list{{"Authorization", "Bearer " + bad}});
        BOOST_TEST(r.status == 200u);
        BOOST_TEST(json::serialize(r.json()) == R"({"authenticated":false})");
        BOOST_TEST(r.header("cache-control") == "no-store");
    }
}

// A page of another origin makes the browser send a "simple" POST (no body, no Content-Type, no
// preflight) with its ambient credential (the client certificate on the TLS listener; the
// browser side is in dashboard.mjs): the Origin or Sec-Fetch-Site headers tell it, and an
// unsafe request to an authenticated route from another origin is refused, whatever credential.
BOOST_AUTO_TEST_CASE(cross_site_writes_are_refused) {
    test_server srv;
    auto c = srv.client();
    const std::string host = "127.0.0.1:" + std::to_string(srv.port());
    auto made = c.post_json("/api/client-certs", R"({"common_name":"csrf.example","identifier":"csrf-1"})",
                            srv.tokens.operator_);
    BOOST_REQUIRE_EQUAL(made.status, 201u);
    auto post = [&](const std::string& path, header_list h) {
        h.emplace_back("Authorization", "Bearer " + srv.tokens.operator_);
        h.emplace_back("Host", host);
        return c.request("POST", path, {}, h);
    };
    for (const header_list& hostile :
         std::vector<header_list>{{{"Origin", "http://evil.example"}},
                                  {{"Origin", "null"}},
                                  {{"Origin", "http://" + host + ".evil.example"}},
                                  {{"Sec-Fetch-Site", "cross-site"}},
                                  {{"Sec-Fetch-Site", "same-site"}},
                                  {{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://" + host}}}) {
        BOOST_TEST_CONTEXT(hostile.front().first << ": " << hostile.front().second) {
            expect_code(post("/api/client-certs/csrf-1/revoke", hostile), 403, "FORBIDDEN");
            expect_code(post("/api/client-certs/csrf-1/renew", hostile), 403, "FORBIDDEN");
        }
    }
    BOOST_TEST(str(obj(c.get("/api/client-certs/csrf-1", srv.tokens.viewer)), "status") == "active");
    // Reads from another origin are not refused (their answers are opaque to the page), nor public routes.
    BOOST_TEST(c.get("/api/client-certs/csrf-1", srv.tokens.viewer, {{"Sec-Fetch-Site", "cross-site"}}).status == 200u);
    // The dashboard's own requests (same origin) and clients without these headers work.
    BOOST_TEST(post("/api/client-certs/csrf-1/renew", {{"Origin", "http://" + host}, {"Sec-Fetch-Site", "same-origin"}})
                   .status == 200u);
    BOOST_TEST(post("/api/client-certs/csrf-1/renew", {{"Origin", "HTTP://" + host}}).status == 200u);
    BOOST_TEST(post("/api/client-certs/csrf-1/revoke", {}).status == 200u);
}

// GET /api/session is public, so a guessed token there was answered {"authenticated":false} and
// left no trace; on any other route a token that is not ours is audited as a denial.
BOOST_AUTO_TEST_CASE(a_wrong_token_at_the_sign_in_is_audited) {
    test_server srv;
    auto c = srv.client();
    auto r = c.get("/api/session", "cm_guessed-token");
    BOOST_TEST(json::serialize(r.json()) == R"({"authenticated":false})");
    bool found = false;
    for (int i = 0; i < 100 && !found; ++i) { // the audit line is written on the pool
        auto log = obj(c.get("/api/audit?operation=denied", srv.tokens.admin));
        for (const auto& e : log.at("entries").as_array()) {
            const auto& o = e.as_object();
            if (str(o, "resource_id") == "GET /api/session" && has(json::serialize(o), "invalid_token")) found = true;
        }
        if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_TEST(found, "no denied audit entry for a wrong token at GET /api/session");
    // A stranger without a token asking who they are is not a failed sign-in.
    BOOST_TEST(c.get("/api/session").status == 200u);
}
