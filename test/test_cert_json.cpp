// The certificate record as metadata.json (core/cert_json): exact round trips, the Python
// CertMate's field names, its own files still load, errors name the field.
#define BOOST_TEST_MODULE test_cert_json
#include <boost/test/unit_test.hpp>

#include "core/cert_json.hpp"
#include "support/print.hpp"
#include "support/sample_records.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

using namespace certmate;
using certmate::test::make_record;

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

BOOST_AUTO_TEST_SUITE_END()
