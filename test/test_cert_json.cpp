// The certificate record as metadata.json (core/cert_json): exact round trips, the Python
// CertMate's field names, its own files still load, errors name the field.
#define BOOST_TEST_MODULE test_cert_json
#include <boost/test/unit_test.hpp>

#include "core/cert_json.hpp"
#include "core/json_text.hpp"
#include "support/print.hpp"
#include "support/sample_records.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace certmate;
using certmate::test::make_record;
using namespace std::chrono_literals;

namespace {

// What the API answered before append_json: the json::object tree, status and certificate added.
std::string reference_text(const cert_record& r, std::string_view status, std::string_view pem) {
    auto o = to_json(r);
    if (!status.empty()) o["status"] = status;
    if (!pem.empty()) o["certificate"] = pem;
    return boost::json::serialize(o);
}

// Records the list shows: make_record's variety (every usage, revoked, on hold, expired against
// the clocks below, SANs, roles, renewal settings, history revoked and not) and hand-made notes,
// subjects and SANs full of what JSON must escape, and UTF-8.
std::vector<cert_record> varied_records() {
    std::vector<cert_record> out;
    for (int i = 0; i < 300; ++i) out.push_back(make_record(i));
    std::string every_control;
    for (int c = 0; c < 0x20; ++c) every_control += static_cast<char>(c);
    every_control += "\x7f\"\\/";
    const std::vector<std::string> texts = {
        "",
        "plain",
        R"(say "hi" \ back\slash \\ two)",
        every_control,
        "tab\there\nnew line\r\nCRLF \b\f \x01\x1f\x0b",
        "UTF-8: é ü ß — ✓ 中文 日本語 😀 \xf0\x9f\x94\x92; not UTF-8: \xff\xfe \xc3 end",
        std::string("nul \0 inside", 12),
        "</script><script>alert(1)</script> & ' <",
        std::string(5000, '"'),
    };
    for (std::size_t k = 0; k < texts.size(); ++k) {
        cert_record r = make_record(static_cast<int>(1000 + k));
        const auto& t = texts[k];
        r.notes = t;
        r.subject.common_name = "cn " + t;
        r.subject.organization = t;
        r.subject.locality = t + "\n";
        r.sans.dns = {"a.example", t};
        r.sans.email = {t};
        r.sans.uri = {"https://example.com/" + t, ""};
        r.key_usage = {t};
        r.extended_key_usage = {};
        r.key_type = t;
        r.fingerprint_sha256 = t;
        r.renewal.renewal_enabled = k % 2 == 0;
        r.renewal.renewal_threshold_days = k % 3 == 0 ? -5 : static_cast<int>(k * 1000);
        r.role = k % 4 == 0 ? std::optional<api_role>{} : std::optional<api_role>{static_cast<api_role>(k % 3 + 1)};
        if (k % 2) {
            revoke_identity(r, r.created_at + 2h,
                            k % 4 == 1 ? revocation_reason::certificate_hold : revocation_reason::privilege_withdrawn);
            r.history.push_back({"7" + std::to_string(k), r.created_at - 700 * 24h, r.created_at - 300 * 24h, t,
                                 r.created_at - 1h, true, r.created_at, revocation_reason::superseded});
        }
        out.push_back(std::move(r));
    }
    // Times with sub-second parts and before 1970 (format_time floors to the second).
    cert_record r = make_record(7);
    r.created_at = time_point{} - 1ns;
    r.not_before = time_point{} - 86400s * 365 * 60 + 999ms;
    r.expires_at = std::chrono::sys_days{std::chrono::year{2262} / 1 / 1} + 123456789ns;
    r.renewal.last_renewed_at = time_point{};
    out.push_back(std::move(r));
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cert_json_suite)

BOOST_AUTO_TEST_CASE(round_trip_is_exact) {
    for (int i : {0, 1, 11, 13, 22, 26, 130}) {
        const cert_record r = make_record(i);
        auto text = boost::json::serialize(to_json(r));
        auto back = record_from_json(boost::json::parse(text));
        BOOST_REQUIRE(back.has_value());
        BOOST_TEST((*back == r), "round trip of record " << i);
    }
}

BOOST_AUTO_TEST_CASE(python_certmate_field_names) {
    cert_record r = make_record(286); // revoked on hold, with history
    auto o = to_json(r);
    for (const char* k : {"type",           "identifier",
                          "common_name",    "email",
                          "organization",   "organizational_unit",
                          "country",        "state",
                          "locality",       "serial_number",
                          "key_usage",      "extended_key_usage",
                          "created_at",     "expires_at",
                          "cert_usage",     "notes",
                          "revocation",     "renewal",
                          "not_before",     "fingerprint_sha256",
                          "key_type",       "subject_alt_names",
                          "api_role",       "history",
                          "has_private_key"})
        BOOST_TEST(o.contains(k), "field " << k);
    BOOST_TEST(o.at("type").as_string() == "client_certificate");
    BOOST_TEST(o.at("serial_number").is_string());
    BOOST_TEST(o.at("cert_usage").as_string() == to_string(r.usage));
    BOOST_TEST(o.at("created_at").as_string() == format_time(r.created_at));
    const auto& rev = o.at("revocation").as_object();
    BOOST_TEST(rev.at("revoked").as_bool());
    BOOST_TEST(rev.at("reason").as_string() == "certificateHold");
    BOOST_TEST(rev.at("reason_revoked").as_string() == "certificateHold");
    const auto& ren = o.at("renewal").as_object();
    BOOST_TEST(ren.contains("renewal_enabled"));
    BOOST_TEST(ren.contains("renewal_threshold_days"));
    BOOST_TEST(ren.contains("last_renewed_at"));
    const auto& h = o.at("history").as_array().at(0).as_object();
    for (const char* k :
         {"serial_number", "not_before", "expires_at", "fingerprint_sha256", "superseded_at", "revoked"})
        BOOST_TEST(h.contains(k), "history field " << k);
    BOOST_TEST(o.at("api_role").is_null());
    r.role = api_role::admin;
    BOOST_TEST(to_json(r).at("api_role").as_string() == "admin");
    const auto& sans = o.at("subject_alt_names").as_object();
    for (const char* k : {"dns", "email", "ip", "uri"}) BOOST_TEST(sans.contains(k));
}

BOOST_AUTO_TEST_CASE(reads_the_python_certmate_example) {
    // The Python CertMate's own metadata.json (no not_before, fingerprint, ...): still loads.
    auto v = boost::json::parse(R"({
 "type": "client_certificate", "identifier": "cert-001", "common_name": "user@example.com",
 "email": "user@example.com", "organization": "ACME Corp", "organizational_unit": "Engineering",
 "country": "US", "state": "California", "locality": "San Francisco",
 "serial_number": "12345678901234567890",
 "key_usage": ["digitalSignature", "keyEncipherment"], "extended_key_usage": ["serverAuth", "clientAuth"],
 "created_at": "2024-10-30T18:00:00Z", "expires_at": "2025-10-30T18:00:00Z",
 "cert_usage": "api-mtls", "notes": "Production certificate",
 "revocation": {"revoked": false, "revoked_at": null, "reason_revoked": null},
 "renewal": {"renewal_enabled": true, "renewal_threshold_days": 30, "last_renewed_at": null}})");
    auto r = record_from_json(v);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->identifier == "cert-001");
    BOOST_TEST(r->serial_number == "12345678901234567890");
    BOOST_TEST((r->usage == cert_usage::api_mtls));
    BOOST_TEST(format_time(r->not_before) == "2024-10-30T18:00:00Z");
    BOOST_TEST(!r->revocation.revoked);
}

BOOST_AUTO_TEST_CASE(errors_name_the_field) {
    auto base = to_json(make_record(13));
    auto check = [&](auto mutate, const std::string& field) {
        auto o = base;
        mutate(o);
        auto r = record_from_json(o);
        BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted bad " << field);
        BOOST_TEST(r.error().field == field);
    };
    check([](boost::json::object& o) { o.erase("identifier"); }, "identifier");
    check([](boost::json::object& o) { o["serial_number"] = "12a"; }, "serial_number");
    check([](boost::json::object& o) { o["serial_number"] = 1.5; }, "serial_number");
    check([](boost::json::object& o) { o["expires_at"] = "yesterday"; }, "expires_at");
    check([](boost::json::object& o) { o["cert_usage"] = "web"; }, "cert_usage");
    check([](boost::json::object& o) { o["api_role"] = "root"; }, "api_role");
    check([](boost::json::object& o) { o["revocation"].as_object()["revoked"] = "yes"; }, "revocation.revoked");
    check([](boost::json::object& o) { o["history"].as_array()[0].as_object()["superseded_at"] = 5; },
          "history[0].superseded_at");
    check([](boost::json::object& o) { o["identifier"] = "../etc"; }, "identifier");
}

// The list and the single-certificate answers are written by append_json, never through the
// json::object tree: it must give exactly the tree's bytes (same keys, order, values, escapes).
BOOST_AUTO_TEST_CASE(append_json_is_the_tree_byte_for_byte) {
    const auto records = varied_records();
    const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\"x\\\n-----END CERTIFICATE-----\n";
    std::size_t compared = 0, parsed = 0;
    std::size_t by_status[4] = {};
    for (const auto& r : records) {
        // The status the list gives at a few clocks (expired once now passes expires_at).
        for (auto now : {certmate::test::sample_t0 - 1000h, r.expires_at - 1s, r.expires_at}) {
            const auto status = to_string(status_at(r, now));
            ++by_status[static_cast<int>(status_at(r, now))];
            for (std::string_view cert : {std::string_view(), std::string_view(pem)}) {
                std::string direct = "prefix,";
                append_json(direct, r, status, cert);
                BOOST_REQUIRE(direct.starts_with("prefix,")); // appends, never replaces
                direct.erase(0, 7);
                const auto want = reference_text(r, status, cert);
                BOOST_REQUIRE_MESSAGE(direct == want,
                                      "record " << r.identifier << "\n direct: " << direct << "\n   tree: " << want);
                ++compared;
                // Parsed back by boost::json: the same value, and serialising it gives the same text
                // again (key order included). Invalid UTF-8 (one text above) is not JSON to parse.
                boost::system::error_code ec;
                auto v = boost::json::parse(direct, ec);
                if (ec) {
                    BOOST_TEST(r.identifier == "cert-01005", "unparsable: " << direct);
                    continue;
                }
                auto ref = to_json(r);
                ref["status"] = status;
                if (!cert.empty()) ref["certificate"] = cert;
                BOOST_TEST((v == boost::json::value(ref)));
                BOOST_TEST(boost::json::serialize(v) == direct);
                BOOST_TEST(std::string_view(v.as_object().at("notes").as_string()) == r.notes);
                ++parsed;
            }
        }
    }
    BOOST_TEST(compared == records.size() * 6);
    BOOST_TEST(parsed >= compared - 6);
    for (auto n : by_status) BOOST_TEST(n > 0u); // active, revoked, expired and on hold all seen
    // No status, no certificate: exactly the tree.
    std::string bare;
    append_json(bare, records[13]);
    BOOST_TEST(bare == boost::json::serialize(to_json(records[13])));
}

BOOST_AUTO_TEST_CASE(json_text_pieces_match_boost_json) {
    for (int c = 0; c < 256; ++c) {
        const std::string s = "a" + std::string(1, static_cast<char>(c)) + "b";
        std::string out;
        append_json_string(out, s);
        BOOST_TEST(out == boost::json::serialize(boost::json::string(s)), "byte " << c);
    }
    for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{30}, INT64_MIN, INT64_MAX}) {
        std::string out;
        append_json_int(out, v);
        BOOST_TEST(out == boost::json::serialize(boost::json::value(v)));
    }
    for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{50}, UINT64_MAX}) {
        std::string out;
        append_json_uint(out, v);
        BOOST_TEST(out == boost::json::serialize(boost::json::value(v)));
    }
    // Times: format_time's text, quoted, over the whole range a time_point holds, at random
    // offsets (sub-second parts, before 1970, leap days) and at the edges.
    std::mt19937_64 rng(15);
    std::uniform_int_distribution<std::int64_t> ns(time_point::min().time_since_epoch().count(),
                                                   time_point::max().time_since_epoch().count());
    std::vector<time_point> times = {time_point{},
                                     time_point{} - 1ns,
                                     time_point{} + 1ns,
                                     time_point::min(),
                                     time_point::max(),
                                     std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} + 23h + 59min + 59s,
                                     std::chrono::sys_days{std::chrono::year{2000} / 1 / 1},
                                     std::chrono::sys_days{std::chrono::year{1900} / 3 / 1} - 1s};
    for (int i = 0; i < 20000; ++i) times.push_back(time_point{time_point::duration{ns(rng)}});
    for (auto t : times) {
        std::string out;
        append_json_time(out, t);
        BOOST_TEST(out == "\"" + format_time(t) + "\"", "ticks " << t.time_since_epoch().count());
    }
}

BOOST_AUTO_TEST_SUITE_END()
