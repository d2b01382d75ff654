// Holes an adversarial review of issue 10 found, each against the real server on 127.0.0.1:
// 1. the audit export signed whatever the file held: someone who can write the log rewrote an
//    entry (chain recomputed) and got a valid Ed25519 signature over the forged range;
// 2. serverAuth names: a wildcard covering the listener's name, or the listener's IP in another
//    spelling, passed the "never the listener's names" rule;
// 3. denied requests: a client rotating addresses (an IPv6 /64 has 2^64) got one fsynced audit
//    line per address, without bound: a stranger could fill the audit disk and, the audit being
//    fail-closed, stop every mutation of the CA.
#define BOOST_TEST_MODULE test_attack
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "core/keys.hpp"
#include "net/api.hpp"
#include "storage/layout.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <sstream>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string create_body(const std::string& id) {
    return R"({"common_name":")" + id + R"(","identifier":")" + id + "\"}";
}

// What someone who can write the file does: edits entry `index` with `edit` and recomputes the
// hash chain from there on, so the chain alone verifies again.
void rewrite_with_recomputed_chain(const app::config& cfg, std::size_t index,
                                   const std::function<void(json::object&)>& edit) {
    auto lines = audit_lines(cfg);
    BOOST_REQUIRE(index < lines.size());
    std::string prev = index == 0 ? std::string(64, '0')
                                  : std::string(json::parse(lines[index - 1]).as_object().at("hash").as_string());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i >= index) {
            json::object o = json::parse(lines[i]).as_object();
            if (i == index) edit(o);
            json::object body;
            for (const auto& kv : o)
                if (kv.key() != "hash") body.emplace(kv.key(), kv.value());
            body["prev_hash"] = prev;
            prev = sha256_hex(json::serialize(body)).value();
            body["hash"] = prev;
            lines[i] = json::serialize(body);
        }
    }
    write_audit_lines(cfg, lines);
}

} // namespace

// ---- 1: the export signs only what the server wrote ----

BOOST_AUTO_TEST_CASE(export_and_verify_refuse_a_log_rewritten_behind_the_servers_back) {
    test_server srv([](app::config& c) { c.audit_checkpoint_interval = 0; }); // no checkpoint yet
    auto http = srv.client();
    const auto& t = srv.tokens;
    for (const char* id : {"b1", "b2", "b3"})
        BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs", create_body(id), t.operator_).status, 201u);
    const auto before = audit_lines(srv.config());
    std::size_t target = before.size();
    for (std::size_t i = 0; i < before.size(); ++i)
        if (before[i].find("\"resource_id\":\"b2\"") != std::string::npos) target = i;
    BOOST_REQUIRE(target < before.size());
    BOOST_REQUIRE_EQUAL(obj(http.get("/api/audit/verify", t.admin)).at("ok").as_bool(), true);

    // Who created b2 is rewritten: "ops" becomes "someone-else", every later hash recomputed.
    rewrite_with_recomputed_chain(srv.config(), target, [](json::object& o) { o["user"] = "someone-else"; });

    // The server still knows the head it wrote: neither verify nor export vouch for the rewrite.
    auto v = obj(http.get("/api/audit/verify", t.admin));
    BOOST_TEST_INFO(json::serialize(v));
    BOOST_TEST(v.at("ok").as_bool() == false);
    auto ex = http.get("/api/audit/export", t.admin);
    BOOST_TEST(ex.body.find("someone-else") == std::string::npos);
    expect_code(ex, 409, "CONFLICT");
}

BOOST_AUTO_TEST_CASE(export_refuses_a_range_whose_checkpoint_no_longer_verifies) {
    test_server srv([](app::config& c) { c.audit_checkpoint_interval = 2; });
    auto http = srv.client();
    const auto& t = srv.tokens;
    for (const char* id : {"c1", "c2", "c3"})
        BOOST_REQUIRE_EQUAL(http.post_json("/api/client-certs", create_body(id), t.operator_).status, 201u);
    BOOST_REQUIRE_EQUAL(http.get("/api/audit/export?from_seq=1&to_seq=2", t.admin).status, 200u);

    // An edit of entry 1 without touching hashes: the chain breaks at once.
    auto lines = audit_lines(srv.config());
    BOOST_REQUIRE(!lines.empty());
    const auto at = lines[0].find("\"user\":\"");
    BOOST_REQUIRE(at != std::string::npos);
    lines[0].insert(at + 8, "x");
    write_audit_lines(srv.config(), lines);
    auto ex = http.get("/api/audit/export?from_seq=1&to_seq=2", t.admin);
    expect_code(ex, 409, "CONFLICT");
    BOOST_TEST(!obj(ex).contains("signature"));
}

// ---- 2: serverAuth never for the listener's names, however spelled ----

BOOST_AUTO_TEST_CASE(server_auth_wildcard_cannot_cover_the_listener_name) {
    test_server srv([](app::config& c) {
        c.service.server_names.patterns = {"*.example.com"};
        c.service.issuance.public_url = "http://ca.example.com:8443";
    });
    auto http = srv.client();
    auto req = [](const std::string& id, const std::string& cn, const std::string& dns) {
        return R"({"identifier":")" + id + R"(","common_name":")" + cn +
               R"(","cert_usage":"vpn","extended_key_usage":["serverAuth"],"subject_alt_names":{"dns":[")" + dns +
               R"("]}})";
    };
    // A wildcard the pattern allows, but which covers ca.example.com: a certificate for the listener.
    expect_code(http.post_json("/api/client-certs", req("w1", "www.example.com", "*.example.com"), srv.tokens.admin),
                403, "FORBIDDEN", "subject_alt_names.dns");
    expect_code(http.post_json("/api/client-certs", req("w2", "*.EXAMPLE.com", "www.example.com"), srv.tokens.admin),
                403, "FORBIDDEN", "common_name");
    // the listener's name in upper case, or with a trailing dot (not a valid SAN at all)
    expect_code(http.post_json("/api/client-certs", req("w3", "www.example.com", "CA.Example.COM"), srv.tokens.admin),
                403, "FORBIDDEN", "subject_alt_names.dns");
    expect_code(http.post_json("/api/client-certs", req("w4", "www.example.com", "ca.example.com."), srv.tokens.admin),
                400, "INVALID_ARGUMENT", "subject_alt_names");
    // a name the wildcard covers that is not the listener's stays allowed
    BOOST_TEST(
        http.post_json("/api/client-certs", req("w5", "www.example.com", "www.example.com"), srv.tokens.admin).status ==
        201u);
}

BOOST_AUTO_TEST_CASE(server_auth_refuses_the_listener_ip_in_another_spelling) {
    test_server srv([](app::config& c) {
        c.service.server_names.patterns = {"0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "10.0.0.1"};
        c.service.issuance.public_url = "http://[::1]:8443";
    });
    auto http = srv.client();
    auto req = [](const std::string& id, const std::string& ip) {
        return R"({"identifier":")" + id +
               R"(","common_name":"10.0.0.1","cert_usage":"vpn",)"
               R"("extended_key_usage":["serverAuth"],"subject_alt_names":{"ip":[")" +
               ip + R"("]}})";
    };
    // ::1 written out in full is the same 16 bytes in the certificate
    expect_code(http.post_json("/api/client-certs", req("i1", "0:0:0:0:0:0:0:1"), srv.tokens.admin), 403, "FORBIDDEN",
                "subject_alt_names.ip");
    BOOST_TEST(http.post_json("/api/client-certs", req("i2", "10.0.0.1"), srv.tokens.admin).status == 201u);
}

// ---- 3: denied requests cannot fill the audit disk ----

BOOST_AUTO_TEST_CASE(denial_audit_lines_have_a_budget_across_all_clients) {
    net::denial_auditor d;
    const auto t0 = std::chrono::steady_clock::now();
    std::uint64_t suppressed = 0;
    std::size_t written = 0;
    // 50,000 addresses, one denial each, within one minute.
    for (int i = 0; i < 50000; ++i) written += d.admit("2001:db8::" + std::to_string(i) + "|", t0, suppressed);
    BOOST_TEST(written <= net::denial_auditor::max_lines_per_window);
    BOOST_TEST(written > 0u);
    // The next window: one line carries the count of everything dropped over the budget.
    suppressed = 0;
    BOOST_TEST(d.admit("2001:db8::1|", t0 + std::chrono::minutes(2), suppressed));
    BOOST_TEST(suppressed >= 50000u - written);
}

BOOST_AUTO_TEST_CASE(denials_from_one_ipv6_network_count_as_one_client) {
    // The key the pipeline uses: addresses of one /64 are one client, IPv4-mapped ones their IPv4.
    BOOST_TEST(net::denial_client_key("2001:db8:1:2::5", "") == net::denial_client_key("2001:db8:1:2:ffff::9", ""));
    BOOST_TEST(net::denial_client_key("::ffff:192.0.2.1", "") == net::denial_client_key("192.0.2.1", ""));
    BOOST_TEST(net::denial_client_key("2001:db8:1:2::5", "") != net::denial_client_key("2001:db8:1:3::5", ""));
    BOOST_TEST(net::denial_client_key("192.0.2.1", "ops") != net::denial_client_key("192.0.2.1", ""));
}
