// The TLS listener and mTLS (issue 6, docs/api.md "Listeners" and "Authentication and roles") against the real server on 127.0.0.1,
// driven by real clients (curl, openssl s_client, an Asio TLS client for keep-alive):
// 1. an operator certificate lists and creates, the audit names it; a viewer certificate gets 403;
// 2. a revoked certificate is refused (401) on its next request, without a restart;
// 3. another CA's, an expired and a missing certificate are refused with client_auth = require;
//    with optional, a bearer token alone works;
// 4. TLS 1.1 is refused, TLS 1.2 and 1.3 work;
// 5. with api_on_http = false, plain HTTP serves only the protocol endpoints.
// Plus: `certmate init --server-cert`, the server certificate reloaded on SIGHUP, an encrypted
// server key, and the per-request certificate check as a pure function.
#define BOOST_TEST_MODULE test_https
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "app/bootstrap.hpp"
#include "app/server_options.hpp"
#include "core/issue.hpp"
#include "core/keys.hpp"
#include "net/client_auth.hpp"
#include "storage/ca_files.hpp"
#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/wait.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>

#include <csignal>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A server with a TLS listener whose certificate comes from `issue_server_cert` (SANs 127.0.0.1
// and localhost), client certificates as `client_auth` asks.
std::unique_ptr<test_server> tls_server(const std::string& client_auth,
                                        const std::function<void(app::config&)>& more = {},
                                        const std::function<void(net::server_options&)>& options = {}) {
    return std::make_unique<test_server>(
        [&](app::config& c) {
            c.https_listen = "127.0.0.1:0";
            c.tls_client_auth = client_auth;
            if (more) more(c);
            auto init = app::init_data_dir(c, {});
            if (!init) throw std::runtime_error(init.error().message);
            auto sc = app::issue_server_cert(c, {"127.0.0.1", "localhost"});
            if (!sc) throw std::runtime_error(sc.error().message);
            c.tls_cert = sc->cert_file;
            c.tls_key = sc->key_file;
        },
        options);
}

std::string ca_file(test_server& srv) { return (srv.config().data_dir / "certs" / "ca" / "ca.crt").string(); }

struct curl_reply {
    int exit_code = -1;
    unsigned status = 0; // 0: no HTTP answer (connection or handshake refused)
    std::string body;
};

// curl against the TLS listener (or `url` as given), its CA trusted; `args` adds --cert etc.
curl_reply curl(const std::string& url, const std::string& args = {}) {
    auto r = run("curl -sS --max-time 15 -w '\\n%{http_code}' " + args + " '" + url + "'");
    curl_reply out;
    out.exit_code = r.exit_code;
    const auto nl = r.output.rfind('\n');
    out.status = static_cast<unsigned>(std::atoi(r.output.substr(nl == std::string::npos ? 0 : nl + 1).c_str()));
    out.body = r.output.substr(0, nl == std::string::npos ? 0 : nl);
    return out;
}

std::string https(test_server& srv, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(srv.server().tls_port()) + path;
}

// A client certificate made through the API (admin token, plain HTTP), written as DIR/ID.crt, .key.
struct client_files {
    std::string cert, key, serial;
    std::string args() const { return "--cert " + cert + " --key " + key; }
};

client_files make_client(test_server& srv, const temp_dir& dir, const std::string& id, const std::string& role_json) {
    http_client http(srv.port());
    auto created =
        http.post_json("/api/client-certs",
                       R"({"identifier":")" + id + R"(","common_name":")" + id + R"(","key_type":"ec-p256")" +
                           (role_json.empty() ? "" : R"(,"api_role":)" + role_json) + "}",
                       srv.tokens.admin);
    BOOST_REQUIRE_MESSAGE(created.status == 201u, created.body);
    client_files f{(dir / (id + ".crt")).string(), (dir / (id + ".key")).string(),
                   std::string(created.json().as_object().at("serial_number").as_string())};
    auto cert = http.get("/api/client-certs/" + id + "/certificate", srv.tokens.admin);
    auto key = http.get("/api/client-certs/" + id + "/private-key", srv.tokens.admin);
    BOOST_REQUIRE(cert.status == 200u);
    BOOST_REQUIRE(key.status == 200u);
    write_text(f.cert, cert.body);
    write_text(f.key, key.body);
    return f;
}

// The audit lines of `operation` on `resource_id`, parsed.
std::vector<json::object> audit_lines(test_server& srv, const std::string& operation, const std::string& resource_id) {
    std::vector<json::object> out;
    for (const auto& line : certmate::test::audit_lines(srv.config())) {
        auto o = json::parse(line).as_object();
        if (o.at("operation").as_string() == operation && o.at("resource_id").as_string() == resource_id)
            out.push_back(o);
    }
    return out;
}

// Denials are audited off the request path: waits (bounded) until one is in the file.
std::vector<json::object> wait_audit_lines(test_server& srv, const std::string& operation,
                                           const std::string& resource_id) {
    std::vector<json::object> lines;
    eventually([&] {
        lines = audit_lines(srv, operation, resource_id);
        return !lines.empty();
    });
    return lines;
}

// The CA's key and certificate, for certificates the API would never issue.
std::shared_ptr<const certificate_authority> load_test_ca(test_server& srv) {
    auto ca = storage::load_ca(storage::layout{srv.config().data_dir}, std::nullopt);
    BOOST_REQUIRE_MESSAGE(bool(ca), "load_ca");
    return *ca;
}

// A client certificate signed by our CA at `now` (the past, for an expired one), written to files.
client_files sign_client(test_server& srv, const temp_dir& dir, const std::string& name, time_point now, int days,
                         cert_profile profile = cert_profile::client) {
    auto ca = load_test_ca(srv);
    auto key = generate_key(key_type::ec_p256);
    BOOST_REQUIRE(bool(key));
    issue_request req;
    req.profile = profile;
    req.subject.common_name = name;
    if (profile == cert_profile::tls_server) req.sans.ip = {"127.0.0.1"};
    req.validity_days = days;
    req.serial_decimal = random_serial(openssl_rng()).value();
    auto cert = issue_certificate(*ca, key->get(), req, issuance_policy{}, now);
    BOOST_REQUIRE_MESSAGE(bool(cert), "issue_certificate");
    auto pem = private_key_to_pem(key->get());
    BOOST_REQUIRE(bool(pem));
    client_files f{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string(), cert->serial_decimal};
    write_text(f.cert, cert->pem);
    write_text(f.key, *pem);
    return f;
}

// SHA-256 fingerprint of the certificate a TLS listener presents now (a fresh handshake).
std::string served_fingerprint(unsigned short port, const std::string& ca) {
    auto r = run("openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile " + ca +
                 " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return r.output;
}

// A keep-alive TLS client (Asio), for what curl cannot show: several requests on one connection.
// Every operation has a deadline (tcp_stream expiry), so a server bug fails instead of hanging.
class tls_connection {
public:
    tls_connection(unsigned short port, const std::string& ca, const client_files* client)
        : ctx_(ssl::context::tls_client) {
        ctx_.load_verify_file(ca);
        ctx_.set_verify_mode(ssl::verify_peer);
        if (client) {
            ctx_.use_certificate_chain_file(client->cert);
            ctx_.use_private_key_file(client->key, ssl::context::pem);
        }
        stream_.emplace(ioc_, ctx_);
        auto& tcp = beast::get_lowest_layer(*stream_);
        tcp.expires_after(10s);
        boost::system::error_code ec;
        tcp.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](boost::system::error_code e) { ec = e; });
        run_all();
        if (!ec) {
            tcp.expires_after(10s);
            stream_->async_handshake(ssl::stream_base::client, [&](boost::system::error_code e) { ec = e; });
            run_all();
        }
        if (ec) throw std::runtime_error("TLS connect: " + ec.message());
    }

    // One GET on this connection; 0 when the server closed it instead of answering.
    unsigned get(const std::string& target) {
        http::request<http::string_body> req(http::verb::get, target, 11);
        req.set(http::field::host, "127.0.0.1");
        req.keep_alive(true);
        boost::system::error_code ec;
        beast::get_lowest_layer(*stream_).expires_after(10s);
        http::async_write(*stream_, req, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run_all();
        if (ec) return 0;
        http::response<http::string_body> res;
        http::async_read(*stream_, buffer_, res, [&](boost::system::error_code e, std::size_t) { ec = e; });
        run_all();
        return ec ? 0 : res.result_int();
    }

private:
    void run_all() {
        ioc_.restart();
        ioc_.run();
    }
    asio::io_context ioc_;
    ssl::context ctx_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
    beast::flat_buffer buffer_;
};

} // namespace

// ---- acceptance 1 and 2 ----

BOOST_AUTO_TEST_CASE(operator_certificate_lists_creates_and_is_audited_viewer_gets_403) {
    auto srv = tls_server("require");
    temp_dir dir;
    const auto op = make_client(*srv, dir, "op-cert", R"("operator")");
    const auto viewer = make_client(*srv, dir, "viewer-cert", R"("viewer")");
    const std::string ca = "--cacert " + ca_file(*srv) + " ";

    auto list = curl(https(*srv, "/api/client-certs"), ca + op.args());
    BOOST_TEST_INFO("curl: " << list.body);
    BOOST_TEST(list.exit_code == 0);
    BOOST_TEST(list.status == 200u);
    BOOST_TEST(list.body.find("\"op-cert\"") != std::string::npos);

    const std::string create =
        ca + "-H 'Content-Type: application/json' -d '{\"identifier\":\"made-by-op\",\"common_name\":\"made-by-op\"}' ";
    auto made = curl(https(*srv, "/api/client-certs"), create + op.args());
    BOOST_TEST_INFO("curl: " << made.body);
    BOOST_TEST(made.status == 201u);
    // the audit line names the certificate, not a token
    auto lines = audit_lines(*srv, "create", "made-by-op");
    BOOST_REQUIRE_EQUAL(lines.size(), 1u);
    BOOST_TEST(lines[0].at("user").as_string() == "op-cert");
    BOOST_TEST(lines[0].at("status").as_string() == "success");
    // issue 10.1: what authenticated is recorded, so a certificate named "admin" cannot pass for a token
    const auto& actor = lines[0].at("actor").as_object();
    BOOST_TEST(actor.at("kind").as_string() == "certificate");
    BOOST_TEST(actor.at("id").as_string() == "op-cert");
    BOOST_TEST(actor.at("serial").as_string() == op.serial);

    // a viewer certificate reads but may not create
    BOOST_TEST(curl(https(*srv, "/api/client-certs"), ca + viewer.args()).status == 200u);
    auto denied =
        curl(https(*srv, "/api/client-certs"),
             ca + "-H 'Content-Type: application/json' -d '{\"identifier\":\"nope\",\"common_name\":\"nope\"}' " +
                 viewer.args());
    BOOST_TEST_INFO("curl: " << denied.body);
    BOOST_TEST(denied.status == 403u);
    auto denial = wait_audit_lines(*srv, "denied", "POST /api/client-certs");
    BOOST_REQUIRE(!denial.empty());
    BOOST_TEST(denial.back().at("user").as_string() == "viewer-cert");

    // bearer tokens keep working on the TLS listener (with a certificate, since this one requires one)
    auto by_token = curl(https(*srv, "/api/client-certs/stats"),
                         ca + viewer.args() + " -H 'Authorization: Bearer " + srv->tokens.admin + "'");
    BOOST_TEST(by_token.status == 200u);
}

BOOST_AUTO_TEST_CASE(revoked_certificate_is_refused_on_its_next_request_without_restart) {
    auto srv = tls_server("require");
    temp_dir dir;
    const auto op = make_client(*srv, dir, "op-cert", R"("operator")");
    const std::string ca = "--cacert " + ca_file(*srv) + " ";
    BOOST_TEST(curl(https(*srv, "/api/client-certs"), ca + op.args()).status == 200u);

    // a keep-alive connection opened before the revocation
    tls_connection kept(srv->server().tls_port(), ca_file(*srv), &op);
    BOOST_TEST(kept.get("/api/client-certs") == 200u);

    http_client http(srv->port());
    BOOST_REQUIRE(
        http.post_json("/api/client-certs/op-cert/revoke", R"({"reason":"keyCompromise"})", srv->tokens.admin).status ==
        200u);

    // The handshake still succeeds (OpenSSL is given no CRL); the request is answered 401.
    auto next = curl(https(*srv, "/api/client-certs"), ca + op.args());
    BOOST_TEST_INFO("curl: " << next.body);
    BOOST_TEST(next.exit_code == 0);
    BOOST_TEST(next.status == 401u);
    BOOST_TEST(next.body.find("revoked") != std::string::npos);
    // the connection opened before is refused too: the check runs per request
    BOOST_TEST(kept.get("/api/client-certs") == 401u);
    // the denial is audited under the certificate's identifier
    auto denial = wait_audit_lines(*srv, "denied", "GET /api/client-certs");
    BOOST_REQUIRE(!denial.empty());
    BOOST_TEST(denial.back().at("user").as_string() == "op-cert");
    BOOST_TEST(denial.back().at("details").as_object().at("reason").as_string() == "certificate_revoked");
    // public endpoints still answer on that connection
    BOOST_TEST(kept.get("/health") == 200u);
}

// ---- acceptance 3 ----

BOOST_AUTO_TEST_CASE(foreign_expired_and_missing_certificates_are_refused_with_require) {
    auto srv = tls_server("require");
    temp_dir dir;
    const auto op = make_client(*srv, dir, "op-cert", R"("operator")");
    const std::string ca = "--cacert " + ca_file(*srv) + " ";
    const std::string url = https(*srv, "/api/client-certs");

    // Another CA (openssl CLI), its client certificate even carrying our operator's serial number.
    const auto d = dir.path().string();
    auto r = run(
        "cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out "
        "other-ca.crt"
        " -subj '/CN=Other CA' -days 30 -addext basicConstraints=critical,CA:TRUE -addext "
        "keyUsage=critical,keyCertSign,cRLSign"
        " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout intruder.key -out intruder.csr"
        " -subj /CN=op-cert"
        " && printf 'extendedKeyUsage=clientAuth\\n' > ext.cnf"
        " && openssl x509 -req -in intruder.csr -CA other-ca.crt -CAkey other-ca.key -days 30 -set_serial " +
        op.serial + " -extfile ext.cnf -out intruder.crt");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    auto foreign = curl(url, ca + "--cert " + d + "/intruder.crt --key " + d + "/intruder.key");
    BOOST_TEST_INFO("curl: " << foreign.body);
    BOOST_TEST(foreign.exit_code != 0);
    BOOST_TEST(foreign.status == 0u);

    // Ours, but expired nine days ago (signed with a clock ten days back, valid one day).
    const auto expired = sign_client(*srv, dir, "expired", std::chrono::system_clock::now() - std::chrono::days(10), 1);
    auto old = curl(url, ca + expired.args());
    BOOST_TEST_INFO("curl: " << old.body);
    BOOST_TEST(old.exit_code != 0);
    BOOST_TEST(old.status == 0u);

    // No certificate at all, even with a valid token.
    auto none = curl(url, ca + "-H 'Authorization: Bearer " + srv->tokens.admin + "'");
    BOOST_TEST_INFO("curl: " << none.body);
    BOOST_TEST(none.exit_code != 0);
    BOOST_TEST(none.status == 0u);

    // Our TLS server certificate is no client certificate (serverAuth only).
    const auto server_cert =
        sign_client(*srv, dir, "server-as-client", std::chrono::system_clock::now(), 5, cert_profile::tls_server);
    BOOST_TEST(curl(url, ca + server_cert.args()).status == 0u);

    // and the real one still works
    BOOST_TEST(curl(url, ca + op.args()).status == 200u);
}

BOOST_AUTO_TEST_CASE(optional_client_auth_token_alone_works_and_certificate_wins_when_valid) {
    auto srv = tls_server("optional");
    temp_dir dir;
    const std::string ca = "--cacert " + ca_file(*srv) + " ";
    const std::string url = https(*srv, "/api/client-certs");
    const std::string admin = " -H 'Authorization: Bearer " + srv->tokens.admin + "'";
    const std::string viewer_token = " -H 'Authorization: Bearer " + srv->tokens.viewer + "'";

    BOOST_TEST(curl(url, ca + admin).status == 200u); // no certificate, a valid token
    BOOST_TEST(curl(url, ca).status == 401u);         // neither
    BOOST_TEST(curl(url, ca + "-H 'Authorization: Bearer cm_wrong'").status == 401u);

    // A certificate without api_role gets no API access (403), public endpoints still answer; PATCH
    // gives it a role and the next request uses it.
    const auto plain = make_client(*srv, dir, "no-role", "");
    auto no_role = curl(url, ca + plain.args());
    BOOST_TEST_INFO("curl: " << no_role.body);
    BOOST_TEST(no_role.status == 403u);
    BOOST_TEST(curl(https(*srv, "/health"), ca + plain.args()).status == 200u);
    http_client http(srv->port());
    BOOST_REQUIRE(http.patch_json("/api/client-certs/no-role", R"({"api_role":"viewer"})", srv->tokens.admin).status ==
                  200u);
    BOOST_TEST(curl(url, ca + plain.args()).status == 200u);

    // Both a valid certificate and a token: the certificate is who acts (audit user), even when
    // the token is a viewer's.
    const auto op = make_client(*srv, dir, "op-cert", R"("operator")");
    const std::string create =
        "-H 'Content-Type: application/json' -d '{\"identifier\":\"both\",\"common_name\":\"both\"}' ";
    BOOST_TEST(curl(url, ca + create + op.args() + viewer_token).status == 201u);
    BOOST_TEST(audit_lines(*srv, "create", "both").at(0).at("user").as_string() == "op-cert");

    // A revoked certificate falls back to the token; without one it is 401.
    BOOST_REQUIRE(http.post_json("/api/client-certs/op-cert/revoke", "{}", srv->tokens.admin).status == 200u);
    BOOST_TEST(curl(url, ca + op.args()).status == 401u);
    BOOST_TEST(curl(url, ca + op.args() + viewer_token).status == 200u);
    const std::string create2 =
        "-H 'Content-Type: application/json' -d '{\"identifier\":\"both2\",\"common_name\":\"both2\"}' ";
    BOOST_TEST(curl(url, ca + create2 + op.args() + viewer_token).status == 403u);

    // A presented certificate must still verify: another CA's fails the handshake.
    const auto d = dir.path().string();
    auto r = run("cd " + d +
                 " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout self.key"
                 " -out self.crt -subj /CN=self -days 30");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    BOOST_TEST(curl(url, ca + "--cert " + d + "/self.crt --key " + d + "/self.key" + admin).status == 0u);
}

// ---- acceptance 4 ----

BOOST_AUTO_TEST_CASE(tls_1_1_is_refused_1_2_and_1_3_work) {
    auto srv = tls_server("optional");
    const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(srv->server().tls_port()) +
                             " -CAfile " + ca_file(*srv) + " -verify_return_error ";
    // The client is allowed the old protocol (security level 0), so the refusal is the server's.
    auto v11 = run(base + "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null");
    BOOST_TEST_INFO("s_client -tls1_1: " << v11.output);
    BOOST_TEST(v11.exit_code != 0);
    BOOST_TEST(v11.output.find("alert protocol version") != std::string::npos);

    auto v12 = run(base + "-tls1_2 </dev/null");
    BOOST_TEST_INFO("s_client -tls1_2: " << v12.output);
    BOOST_TEST(v12.exit_code == 0);
    BOOST_TEST(v12.output.find("New, TLSv1.2, Cipher is ECDHE-") != std::string::npos);
    BOOST_TEST(v12.output.find("Verify return code: 0 (ok)") != std::string::npos);

    auto v13 = run(base + "-tls1_3 </dev/null");
    BOOST_TEST_INFO("s_client -tls1_3: " << v13.output);
    BOOST_TEST(v13.exit_code == 0);
    BOOST_TEST(v13.output.find("New, TLSv1.3, Cipher is TLS_") != std::string::npos);

    // TLS 1.2 without forward secrecy or AEAD is not offered
    auto weak = run(base + "-tls1_2 -cipher 'AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-SHA' </dev/null");
    BOOST_TEST_INFO("s_client weak: " << weak.output);
    BOOST_TEST(weak.exit_code != 0);
}

// ---- acceptance 5 ----

BOOST_AUTO_TEST_CASE(api_on_http_false_plain_http_serves_protocol_endpoints_only) {
    auto srv = tls_server("optional", [](app::config& c) { c.api_on_http = false; });
    const std::string plain = "http://127.0.0.1:" + std::to_string(srv->port());
    const std::string admin = "-H 'Authorization: Bearer " + srv->tokens.admin + "'";

    auto api = curl(plain + "/api/client-certs", admin);
    BOOST_TEST_INFO("curl: " << api.body);
    BOOST_TEST(api.status == 404u);
    BOOST_TEST(curl(plain + "/api/ca", admin).status == 404u);
    BOOST_TEST(curl(plain + "/", admin).status == 404u);
    BOOST_TEST(curl(plain + "/crl.der").status == 200u);
    BOOST_TEST(curl(plain + "/ca.crt").status == 200u);
    BOOST_TEST(curl(plain + "/health").status == 200u);

    // OCSP over plain HTTP, as issued certificates point at it (RFC 6960 A.1 POST)
    temp_dir dir; // creating needs the API: over TLS with the token
    auto made = curl(https(*srv, "/api/client-certs"),
                     "--cacert " + ca_file(*srv) + " " + admin +
                         " -H 'Content-Type: application/json' -d "
                         "'{\"identifier\":\"ocsp-me\",\"common_name\":\"ocsp-me\",\"key_type\":\"ec-p256\"}'");
    BOOST_REQUIRE_MESSAGE(made.status == 201u, made.body);
    write_text(dir / "ocsp-me.crt", std::string(json::parse(made.body).as_object().at("certificate").as_string()));
    auto ocsp = run("openssl ocsp -issuer " + ca_file(*srv) + " -cert " + (dir / "ocsp-me.crt").string() + " -url " +
                    plain + "/ocsp -CAfile " + ca_file(*srv) + " -timeout 10");
    BOOST_TEST_INFO("openssl ocsp: " << ocsp.output);
    BOOST_TEST(ocsp.exit_code == 0);
    BOOST_TEST(ocsp.output.find(": good") != std::string::npos);

    // the API is on the TLS listener
    BOOST_TEST(curl(https(*srv, "/api/client-certs"), "--cacert " + ca_file(*srv) + " " + admin).status == 200u);
}

// ---- server certificate: reload, passphrase, init --server-cert ----

BOOST_AUTO_TEST_CASE(reload_swaps_the_server_certificate_for_new_handshakes) {
    auto srv = tls_server("none");
    temp_dir dir;
    const auto before = served_fingerprint(srv->server().tls_port(), ca_file(*srv));
    tls_connection kept(srv->server().tls_port(), ca_file(*srv), nullptr);
    BOOST_TEST(kept.get("/health") == 200u);

    // a renewed certificate on disk (written as an operator's tooling would), then reload
    const auto renewed =
        sign_client(*srv, dir, "renewed-server", std::chrono::system_clock::now(), 30, cert_profile::tls_server);
    auto opts = app::tls_options_from(srv->config());
    opts.cert_file = renewed.cert;
    opts.key_file = renewed.key;
    BOOST_REQUIRE(bool(srv->server().reload_tls(opts)));
    const auto after = served_fingerprint(srv->server().tls_port(), ca_file(*srv));
    BOOST_TEST(after != before);
    BOOST_TEST(kept.get("/health") == 200u); // open connections keep going

    // a broken one is refused and the current one stays
    auto broken = opts;
    broken.key_file = (dir / "missing.key").string();
    auto r = srv->server().reload_tls(broken);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().field == "tls.key");
    const auto mismatched =
        sign_client(*srv, dir, "other-server", std::chrono::system_clock::now(), 30, cert_profile::tls_server);
    broken = opts;
    broken.key_file = mismatched.key;
    BOOST_TEST(!srv->server().reload_tls(broken));
    BOOST_TEST(served_fingerprint(srv->server().tls_port(), ca_file(*srv)) == after);
}

BOOST_AUTO_TEST_CASE(encrypted_server_key_with_passphrase_file) {
    temp_dir secrets;
    const auto pass = secrets / "tls.pass";
    write_text(pass, "correct horse battery staple\n");
    auto srv = tls_server("none", [&](app::config& c) { c.tls_key_passphrase_file = pass; });
    const auto key_pem = read_text(srv->config().tls_key);
    BOOST_TEST(key_pem.find("ENCRYPTED PRIVATE KEY") != std::string::npos);
    BOOST_TEST(curl(https(*srv, "/health"), "--cacert " + ca_file(*srv)).status == 200u);

    // the wrong passphrase stops a start, naming the key
    write_text(pass, "wrong\n");
    auto opts = app::tls_options_from(srv->config());
    auto r = srv->server().reload_tls(opts);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().field == "tls.key_passphrase_file");
    auto cfg = srv->config();
    cfg.http_listen = "127.0.0.1:0";
    auto svc = app::open_service(cfg);
    BOOST_REQUIRE(bool(svc));
    net::server other(app::server_options_from(cfg), std::move(*svc));
    auto started = other.start();
    BOOST_REQUIRE(!started);
    BOOST_TEST(started.error().message.find("tls.key_passphrase_file") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(init_server_cert_then_serve_and_reload_on_sighup) {
    temp_dir dir;
    const auto data = dir / "data";
    const std::string bin = certmate_binary();
    const std::string common = " --data-dir " + data.string() + " --ca.key_type ec-p384";
    auto init = run(bin + " init" + common + " --server-cert 127.0.0.1 localhost ::1");
    BOOST_TEST_INFO("init: " << init.output);
    BOOST_REQUIRE_EQUAL(init.exit_code, 0);
    const auto crt = data / "tls" / "server.crt", key = data / "tls" / "server.key";
    BOOST_TEST(init.output.find("https_listen = 0.0.0.0:8443") != std::string::npos);
    BOOST_TEST(init.output.find("cert = " + fs::absolute(crt).string()) != std::string::npos);
    BOOST_TEST(init.output.find("key = " + fs::absolute(key).string()) != std::string::npos);
    struct stat st {};
    BOOST_REQUIRE(::stat(key.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);

    const std::string ca = (data / "certs" / "ca" / "ca.crt").string();
    auto ext =
        run("openssl x509 -in " + crt.string() + " -noout -ext extendedKeyUsage,subjectAltName,basicConstraints");
    BOOST_TEST_INFO("x509: " << ext.output);
    BOOST_TEST(ext.output.find("TLS Web Server Authentication") != std::string::npos);
    BOOST_TEST(ext.output.find("TLS Web Client Authentication") == std::string::npos);
    BOOST_TEST(ext.output.find("IP Address:127.0.0.1") != std::string::npos);
    BOOST_TEST(ext.output.find("IP Address:0:0:0:0:0:0:0:1") != std::string::npos);
    BOOST_TEST(ext.output.find("DNS:localhost") != std::string::npos);
    BOOST_TEST(ext.output.find("CA:FALSE") != std::string::npos);
    auto verify = run("openssl verify -CAfile " + ca + " -purpose sslserver " + crt.string());
    BOOST_TEST_INFO("verify: " << verify.output);
    BOOST_TEST(verify.exit_code == 0);
    // the chain file holds the leaf, then the CA
    const auto chain = read_text(crt);
    BOOST_TEST(chain.find("-----BEGIN CERTIFICATE-----", 10) != std::string::npos);
    BOOST_TEST(chain.find(read_text(ca)) != std::string::npos);
    BOOST_TEST(
        run("grep -c server_cert_issue " + (data / "logs" / "audit" / "certificate_audit.log").string()).output ==
        "1\n");

    // serve with it (the printed config lines, on port 0)
    const auto conf = dir / "certmate.conf";
    write_text(conf, "[server]\nhttp_listen = 127.0.0.1:0\nhttps_listen = 127.0.0.1:0\napi_on_http = false\n"
                     "[storage]\ndata_dir = " +
                         data.string() + "\n[tls]\ncert = " + crt.string() + "\nkey = " + key.string() +
                         "\nclient_auth = optional\n[renewal]\nenabled = false\n");
    child_process serve({bin, "serve", "-c", conf.string()}, dir / "serve.err");
    auto line = serve.wait_for_line("listening on https://", 20s);
    BOOST_REQUIRE_MESSAGE(line.has_value(), read_text(dir / "serve.err"));
    const auto port = port_of_listen_line(*line);
    BOOST_TEST(curl("https://localhost:" + std::to_string(port) + "/health", "--cacert " + ca).status == 200u);
    const auto before = served_fingerprint(port, ca);

    // a new certificate from the operator's own tooling with our CA key, then SIGHUP
    const auto d = dir.path().string();
    auto r =
        run("cd " + d +
            " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout new.key -out new.csr"
            " -subj /CN=127.0.0.1 && printf 'extendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.1\\n' > ext.cnf"
            " && openssl x509 -req -in new.csr -CA " +
            ca + " -CAkey " + (data / "certs" / "ca" / "ca.key").string() +
            " -days 5 -set_serial 4242 -extfile ext.cnf -out new.crt && cp new.crt " + crt.string() +
            " && cp new.key " + key.string());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    serve.signal(SIGHUP);
    std::string after;
    eventually([&] {
        after = served_fingerprint(port, ca);
        return !after.empty() && after != before;
    });
    BOOST_TEST(after != before);
    BOOST_TEST(run("openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile " + ca +
                   " </dev/null 2>/dev/null | openssl x509 -noout -serial")
                   .output == "serial=1092\n");
    serve.signal(SIGTERM);
    BOOST_TEST(serve.wait_exit(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(silent_clients_time_out_in_the_handshake_and_drain_closes_tls_connections) {
    auto srv = tls_server("optional", {}, [](net::server_options& o) { o.tls.handshake_timeout = 500ms; });
    // a client that connects and never says hello is closed after the handshake timeout
    asio::io_context ioc;
    asio::ip::tcp::socket silent(ioc);
    silent.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv->server().tls_port()));
    const auto t0 = std::chrono::steady_clock::now();
    pollfd p{silent.native_handle(), POLLIN, 0};
    BOOST_REQUIRE(::poll(&p, 1, 5000) == 1);
    char byte = 0;
    BOOST_TEST(::recv(silent.native_handle(), &byte, 1, 0) <= 0); // closed, nothing sent
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 3s));
    // the listener still serves
    BOOST_TEST(curl(https(*srv, "/health"), "--cacert " + ca_file(*srv)).status == 200u);

    // an idle keep-alive TLS connection does not hold up a drain
    tls_connection idle(srv->server().tls_port(), ca_file(*srv), nullptr);
    BOOST_TEST(idle.get("/health") == 200u);
    const auto t1 = std::chrono::steady_clock::now();
    BOOST_TEST(srv->server().shutdown());
    BOOST_TEST((std::chrono::steady_clock::now() - t1 < 3s));
}

// ---- the per-request check, without sockets ----

BOOST_AUTO_TEST_CASE(certificate_check_follows_the_live_tables) {
    ocsp_table statuses;
    serial_owner_table owners;
    const time_point t0 = std::chrono::sys_days(std::chrono::year(2030) / 1 / 1);
    net::client_certificate c{"1234", t0, t0 + std::chrono::days(30)};
    const time_point now = t0 + std::chrono::days(1);
    net::token_table tokens({{"ops", api_role::operator_, sha256_hex("tok").value()}});
    auto verdict = [&](time_point at) { return net::check_client_certificate(c, statuses, owners, at).verdict; };

    BOOST_TEST((verdict(now) == net::cert_verdict::unknown)); // never issued here
    owners.set("1234", serial_owner{"alice", std::nullopt, true});
    ocsp_single_answer good;
    good.status = ocsp_single_answer::state::good;
    statuses.set("1234", good);
    BOOST_TEST((verdict(now) == net::cert_verdict::no_role));
    owners.set("1234", serial_owner{"alice", api_role::admin, true});
    BOOST_TEST((verdict(now) == net::cert_verdict::accepted));
    BOOST_TEST((verdict(c.not_after + std::chrono::seconds(1)) == net::cert_verdict::expired));
    BOOST_TEST((verdict(c.not_before - std::chrono::seconds(1)) == net::cert_verdict::expired));

    net::peer_info peer{"10.0.0.1", true, c};
    auto who = net::authenticate(peer, "Bearer tok", tokens, statuses, owners, now);
    BOOST_REQUIRE(who.ident.has_value());
    BOOST_TEST(who.ident->name == "alice"); // the certificate wins over the token
    BOOST_TEST(who.by_certificate);

    ocsp_single_answer revoked;
    revoked.status = ocsp_single_answer::state::revoked;
    revoked.reason = revocation_reason::certificate_hold;
    statuses.set("1234", revoked);
    BOOST_TEST((verdict(now) == net::cert_verdict::revoked)); // on hold counts as revoked
    who = net::authenticate(peer, "Bearer tok", tokens, statuses, owners, now);
    BOOST_REQUIRE(who.ident.has_value());
    BOOST_TEST(who.ident->name == "ops"); // falls back to the token
    who = net::authenticate(peer, "", tokens, statuses, owners, now);
    BOOST_TEST(!who.ident.has_value());
    BOOST_TEST(who.user == "alice");
    BOOST_TEST((who.failure == net::auth_failure::certificate_refused));
    who =
        net::authenticate(net::peer_info{"10.0.0.1", true, std::nullopt}, "Bearer nope", tokens, statuses, owners, now);
    BOOST_TEST((who.failure == net::auth_failure::invalid_token));
    BOOST_TEST(who.user == "anonymous");
}

// ---- issue 10.2: revoking an identifier revokes every serial it has had ----
// Fails before issue 10: the superseded serial stayed `good` in OCSP, off the CRL, and kept
// authenticating over mTLS after its identifier was revoked.
BOOST_AUTO_TEST_CASE(renew_then_revoke_refuses_the_old_certificate_in_mtls_ocsp_and_crl) {
    auto srv = tls_server("require");
    temp_dir dir;
    const auto old_cert = make_client(*srv, dir, "machine", R"("operator")");
    const std::string ca = ca_file(*srv);
    const std::string cacert = "--cacert " + ca + " ";
    http_client http(srv->port());
    auto renewed = http.post_json("/api/client-certs/machine/renew", "{}", srv->tokens.admin);
    BOOST_REQUIRE_MESSAGE(renewed.status == 200u, renewed.body);
    const std::string new_serial(renewed.json().as_object().at("serial_number").as_string());
    BOOST_REQUIRE(new_serial != old_cert.serial);

    auto ocsp = [&](const std::string& cert_file) {
        auto r = run("openssl ocsp -url http://127.0.0.1:" + std::to_string(srv->port()) + "/ocsp -issuer " + ca +
                     " -CAfile " + ca + " -cert " + cert_file);
        BOOST_TEST_MESSAGE(r.output);
        return r.output;
    };
    // superseded but not revoked: it keeps working until it expires (renewal.revoke_superseded off)
    BOOST_TEST(curl(https(*srv, "/api/client-certs"), cacert + old_cert.args()).status == 200u);
    BOOST_TEST(ocsp(old_cert.cert).find(": good") != std::string::npos);

    auto revoked =
        http.post_json("/api/client-certs/machine/revoke", R"({"reason":"keyCompromise"})", srv->tokens.admin);
    BOOST_REQUIRE_MESSAGE(revoked.status == 200u, revoked.body);
    const auto history = revoked.json().as_object().at("history").as_array();
    BOOST_REQUIRE_EQUAL(history.size(), 1u);
    BOOST_TEST(history[0].as_object().at("revoked").as_bool());
    BOOST_TEST(history[0].as_object().at("reason").as_string() == "keyCompromise");

    auto after = curl(https(*srv, "/api/client-certs"), cacert + old_cert.args());
    BOOST_TEST_INFO("curl: " << after.body);
    BOOST_TEST(after.status == 401u);
    const auto status = ocsp(old_cert.cert);
    BOOST_TEST(status.find(": revoked") != std::string::npos);
    BOOST_TEST(status.find("Reason: keyCompromise") != std::string::npos);

    // the CRL lists both serials (openssl prints them in hex)
    auto crl_der = http.get("/crl.der");
    BOOST_REQUIRE(crl_der.status == 200u);
    write_text(dir / "crl.der", crl_der.body);
    auto serial_hex = [&](const std::string& file) {
        auto r = run("openssl x509 -noout -serial -in " + file);
        BOOST_REQUIRE(r.exit_code == 0);
        auto s = r.output.substr(r.output.find('=') + 1);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        return s;
    };
    auto crl_text = run("openssl crl -inform DER -noout -text -in " + (dir / "crl.der").string());
    BOOST_REQUIRE(crl_text.exit_code == 0);
    BOOST_TEST(crl_text.output.find(serial_hex(old_cert.cert)) != std::string::npos);
}

// ---- issue 10.5: the names of tls.cert are never issued through the API ----
// Fails before issue 10: an admin (or, then, an operator) got a serverAuth certificate for the
// listener's own name and could impersonate the API.
BOOST_AUTO_TEST_CASE(server_auth_for_the_tls_listener_names_is_refused_even_when_a_pattern_allows_them) {
    auto srv = tls_server("optional", [](app::config& c) {
        c.service.server_names.patterns = {"localhost", "127.0.0.1", "ok.example.com"};
        c.service.issuance.public_url = "http://ca.example.com";
    });
    http_client http(srv->port());
    auto ask = [&](const std::string& id, const std::string& sans) {
        return http.post_json("/api/client-certs",
                              R"({"identifier":")" + id +
                                  R"(","common_name":"ok.example.com","cert_usage":"other",)"
                                  R"("extended_key_usage":["serverAuth"],"subject_alt_names":)" +
                                  sans + "}",
                              srv->tokens.admin);
    };
    auto by_dns = ask("l1", R"({"dns":["localhost"]})");
    BOOST_TEST_INFO(by_dns.body);
    BOOST_TEST(by_dns.status == 403u);
    auto by_ip = ask("l2", R"({"ip":["127.0.0.1"]})");
    BOOST_TEST_INFO(by_ip.body);
    BOOST_TEST(by_ip.status == 403u);
    auto fine = ask("l3", R"({"dns":["ok.example.com"]})");
    BOOST_TEST_INFO(fine.body);
    BOOST_TEST(fine.status == 201u);
}

// The listener's own certificate (usage server): not made, renewed or given a role through the API;
// only an admin revokes it. Fails before: create with cert_usage server was accepted, an operator
// revoked the listener's certificate.
BOOST_AUTO_TEST_CASE(the_listener_certificate_is_admin_only_through_the_api) {
    auto srv = tls_server("optional");
    http_client http(srv->port());
    const auto& op = srv->tokens.operator_;
    const auto& admin = srv->tokens.admin;
    auto list = http.get("/api/client-certs?cert_usage=server", admin);
    BOOST_REQUIRE_EQUAL(list.status, 200u);
    const auto items = list.json().as_object().at("certificates").as_array();
    BOOST_REQUIRE_EQUAL(items.size(), 1u);
    const std::string id(items[0].as_object().at("identifier").as_string());
    const std::string base = "/api/client-certs/" + id;

    auto made = http.post_json("/api/client-certs",
                               R"({"identifier":"fake","common_name":"localhost","cert_usage":"server"})", admin);
    BOOST_TEST_INFO(made.body);
    BOOST_TEST(made.status == 400u);
    BOOST_TEST(http.post_json(base + "/revoke", R"({"reason":"certificateHold"})", op).status == 403u);
    BOOST_TEST(http.post_json(base + "/renew", "{}", admin).status == 409u);
    BOOST_TEST(http.patch_json(base, R"({"api_role":"admin"})", admin).status == 400u);
    BOOST_TEST(http.post_json(base + "/revoke", R"({"reason":"certificateHold"})", admin).status == 200u);
    BOOST_TEST(http.post_json(base + "/unhold", "{}", op).status == 403u);
    BOOST_TEST(http.post_json(base + "/unhold", "{}", admin).status == 200u);

    // Renewal settings: the sweep never renews it, so turning renewal on is refused (an operator
    // could otherwise make every sweep fail on it), and the sweep leaves it alone.
    auto on = http.patch_json(base, R"({"renewal_enabled":true,"renewal_threshold_days":3650})", op);
    BOOST_TEST_INFO(on.body);
    BOOST_TEST(on.status == 400u);
    BOOST_TEST(http.patch_json(base, R"({"notes":"rack 4"})", op).status == 200u);
    auto sweep = http.post_json("/api/renewals/run", "{}", admin);
    BOOST_TEST_INFO(sweep.body);
    BOOST_REQUIRE_EQUAL(sweep.status, 200u);
    BOOST_TEST(sweep.body.find(id) == std::string::npos);
    BOOST_TEST(sweep.json().as_object().at("failed") == boost::json::value(0));
}
