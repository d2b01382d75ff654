// core/ocsp without a server: requests made by `openssl ocsp`, responses verified by it.
#define BOOST_TEST_MODULE ocsp_core
#include <boost/test/unit_test.hpp>

#include "core/issue.hpp"
#include "core/keys.hpp"
#include "core/ocsp.hpp"
#include "core/ocsp_table.hpp"
#include "core/serial_owners.hpp"
#include "support/tools.hpp"

using namespace certmate;
using certmate::test::run;
using certmate::test::temp_dir;

namespace {

struct world {
    temp_dir dir;
    std::unique_ptr<certificate_authority> ca;
    ocsp_responder responder;
    time_point now = std::chrono::system_clock::now();

    world() {
        ca_options o;
        o.type = key_type::ec_p384;
        auto c = certificate_authority::create(o, now, openssl_rng());
        BOOST_REQUIRE(c);
        ca = std::make_unique<certificate_authority>(std::move(*c));
        auto r = issue_ocsp_responder(*ca, now, openssl_rng());
        BOOST_REQUIRE(r);
        responder = std::move(*r);
        test::write_text(dir / "ca.crt", ca->cert_pem());
    }

    // Issues a client certificate, writes it as NAME.crt, returns its serial.
    std::string issue(const std::string& name) {
        auto key = generate_key(key_type::ec_p256);
        BOOST_REQUIRE(key);
        issue_request req;
        req.subject.common_name = name;
        req.serial_decimal = random_serial(openssl_rng()).value();
        auto c = issue_certificate(*ca, key->get(), req, issuance_policy{}, now);
        BOOST_REQUIRE(c);
        test::write_text(dir / (name + ".crt"), c->pem);
        return c->serial_decimal;
    }

    // An OCSP request for NAME.crt made by the openssl CLI.
    std::string request(const std::string& name, const std::string& extra = "") {
        auto r = run("openssl ocsp " + extra + " -issuer " + (dir / "ca.crt").string() + " -cert " +
                     (dir / (name + ".crt")).string() + " -reqout " + (dir / "req.der").string());
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        return test::read_text(dir / "req.der");
    }

    // `openssl ocsp -respin` on our response, verified against the CA (no -noverify).
    std::string check(const std::string& resp, const std::string& name, bool with_req = true) {
        test::write_text(dir / "resp.der", resp);
        std::string cmd = "openssl ocsp -respin " + (dir / "resp.der").string() + " -issuer " +
                          (dir / "ca.crt").string() + " -CAfile " + (dir / "ca.crt").string() + " -cert " +
                          (dir / (name + ".crt")).string();
        // With -reqin the CLI adds a nonce of its own to the request it read; nonce echo is
        // checked through the API in nonce_is_echoed.
        if (with_req) cmd += " -no_nonce -reqin " + (dir / "req.der").string();
        return run(cmd).output;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(responder_certificate_profile) {
    world w;
    test::write_text(w.dir / "responder.crt", w.responder.cert_pem);
    auto text = run("openssl x509 -noout -text -in " + (w.dir / "responder.crt").string()).output;
    BOOST_TEST(text.find("OCSP Signing") != std::string::npos);
    BOOST_TEST(text.find("OCSP No Check") != std::string::npos);
    BOOST_TEST(text.find("prime256v1") != std::string::npos);
    BOOST_TEST(run("openssl verify -CAfile " + (w.dir / "ca.crt").string() + " " + (w.dir / "responder.crt").string())
                   .exit_code == 0);
    auto loaded = load_ocsp_responder(*w.ca, w.responder.cert_pem, w.responder.key_pem);
    BOOST_TEST(loaded.has_value());
    // A client certificate of the same CA is not a responder: it lacks id-kp-OCSPSigning.
    auto key = generate_key(key_type::ec_p256);
    BOOST_REQUIRE(key);
    issue_request req;
    req.subject.common_name = "not-a-responder";
    req.serial_decimal = random_serial(openssl_rng()).value();
    auto client = issue_certificate(*w.ca, key->get(), req, issuance_policy{}, w.now);
    BOOST_REQUIRE(client);
    auto key_pem = private_key_to_pem(key->get());
    BOOST_REQUIRE(key_pem);
    BOOST_TEST(!load_ocsp_responder(*w.ca, client->pem, *key_pem).has_value());
    BOOST_TEST(!issue_ocsp_responder(*w.ca, w.now, openssl_rng(), 0).has_value());
}

BOOST_AUTO_TEST_CASE(good_revoked_unknown_signed_and_verified) {
    world w;
    const auto serial = w.issue("alice");
    const auto req = w.request("alice");
    auto info = parse_ocsp_request(req, *w.ca);
    BOOST_REQUIRE(info);
    BOOST_REQUIRE(info->queries.size() == 1u);
    BOOST_TEST(info->queries[0].serial_decimal == serial);
    BOOST_TEST(info->queries[0].our_issuer);
    BOOST_TEST(info->has_nonce); // openssl sends one by default

    const auto tu = w.now, nu = w.now + std::chrono::hours(24);
    auto good = build_ocsp_response(w.responder, req, {{ocsp_single_answer::state::good, {}, {}}}, tu, nu);
    BOOST_REQUIRE(good);
    auto out = w.check(*good, "alice");
    BOOST_TEST(out.find("Response verify OK") != std::string::npos, out);
    BOOST_TEST(out.find(": good") != std::string::npos, out);

    ocsp_single_answer revoked{ocsp_single_answer::state::revoked, w.now, revocation_reason::key_compromise};
    auto rev = build_ocsp_response(w.responder, req, {revoked}, tu, nu);
    BOOST_REQUIRE(rev);
    out = w.check(*rev, "alice");
    BOOST_TEST(out.find(": revoked") != std::string::npos, out);
    BOOST_TEST(out.find("keyCompromise") != std::string::npos, out);

    auto unk = build_ocsp_response(w.responder, req, {{}}, tu, nu);
    BOOST_REQUIRE(unk);
    out = w.check(*unk, "alice");
    BOOST_TEST(out.find(": unknown") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(nonce_is_echoed) {
    world w;
    w.issue("nina");
    const auto req_der = w.request("nina");
    auto resp = build_ocsp_response(w.responder, req_der, {{ocsp_single_answer::state::good, {}, {}}}, w.now,
                                    w.now + std::chrono::hours(1));
    BOOST_REQUIRE(resp);
    const auto* p = reinterpret_cast<const unsigned char*>(req_der.data());
    ossl::ocsp_request req(d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(req_der.size())));
    const auto* q = reinterpret_cast<const unsigned char*>(resp->data());
    ossl::ocsp_response r(d2i_OCSP_RESPONSE(nullptr, &q, static_cast<long>(resp->size())));
    BOOST_REQUIRE(req);
    BOOST_REQUIRE(r);
    ossl::ocsp_basicresp bs(OCSP_response_get1_basic(r.get()));
    BOOST_REQUIRE(bs);
    // 1: nonces present and equal.
    BOOST_TEST(OCSP_check_nonce(req.get(), bs.get()) == 1);
}

BOOST_AUTO_TEST_CASE(sha256_certid_and_no_nonce) {
    world w;
    w.issue("bob");
    const auto req = w.request("bob", "-sha256 -no_nonce");
    auto info = parse_ocsp_request(req, *w.ca);
    BOOST_REQUIRE(info);
    BOOST_TEST(!info->has_nonce);
    BOOST_TEST(info->queries.at(0).hash_nid == NID_sha256);
    BOOST_TEST(info->queries.at(0).our_issuer);
    auto resp = build_ocsp_response(w.responder, req, {{ocsp_single_answer::state::good, {}, {}}}, w.now,
                                    w.now + std::chrono::hours(1));
    BOOST_REQUIRE(resp);
    auto out = w.check(*resp, "bob");
    BOOST_TEST(out.find("Response verify OK") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(another_issuer_is_not_ours) {
    world w;
    world other;
    other.issue("eve");
    auto req = other.request("eve");
    auto info = parse_ocsp_request(req, *w.ca);
    BOOST_REQUIRE(info);
    BOOST_TEST(!info->queries.at(0).our_issuer);
}

BOOST_AUTO_TEST_CASE(malformed_requests_and_error_responses) {
    world w;
    w.issue("carol");
    const auto req = w.request("carol");
    BOOST_TEST(!parse_ocsp_request("", *w.ca));
    BOOST_TEST(!parse_ocsp_request("garbage bytes", *w.ca));
    BOOST_TEST(!parse_ocsp_request(req.substr(0, req.size() / 2), *w.ca));
    BOOST_TEST(!parse_ocsp_request(req + "x", *w.ca));
    // Every single-bit flip either fails to parse or parses into something we can answer: never a crash.
    for (std::size_t i = 0; i < req.size(); ++i) {
        std::string m = req;
        m[i] = static_cast<char>(m[i] ^ (1 << (i % 8)));
        (void)parse_ocsp_request(m, *w.ca);
    }
    auto err = ocsp_error_response(ocsp_response_status::malformed_request);
    test::write_text(w.dir / "err.der", err);
    auto out = run("openssl ocsp -respin " + (w.dir / "err.der").string() + " -resp_text -noverify").output;
    BOOST_TEST(out.find("malformedrequest") != std::string::npos, out);
    // The fixed DER is exactly what OpenSSL encodes for each unsigned status (RFC 6960 4.2.1).
    for (auto st :
         {ocsp_response_status::malformed_request, ocsp_response_status::internal_error,
          ocsp_response_status::try_later, ocsp_response_status::sig_required, ocsp_response_status::unauthorized}) {
        ossl::ocsp_response resp(OCSP_response_create(static_cast<int>(st), nullptr));
        unsigned char* der = nullptr;
        const int n = i2d_OCSP_RESPONSE(resp.get(), &der);
        BOOST_REQUIRE(n > 0);
        ossl::openssl_string owned(reinterpret_cast<char*>(der));
        BOOST_TEST(ocsp_error_response(st) == std::string(owned.get(), static_cast<std::size_t>(n)));
    }
}

BOOST_AUTO_TEST_CASE(get_path_decoding) {
    BOOST_TEST(*decode_ocsp_get_path("aGVsbG8=") == "hello");
    BOOST_TEST(*decode_ocsp_get_path("aGVsbG8") == "hello");
    BOOST_TEST(*decode_ocsp_get_path("-_8+") == *decode_ocsp_get_path("+/8+"));
    // Escapes are undone by net/ before (test_http_ocsp sends escaped and malformed ones).
    BOOST_TEST(!decode_ocsp_get_path("a%3D"));
    BOOST_TEST(!decode_ocsp_get_path("a!b"));
}

// The tables key serials compactly (core/serial_key.hpp): every decimal serial of up to 50 digits
// is its own key, anything else is never stored (and answered as never issued).
BOOST_AUTO_TEST_CASE(table_keys_are_exact_decimal_serials) {
    ocsp_table t;
    serial_owner_table owners;
    const std::string longest(49, '9'); // 20 octets (RFC 5280 4.1.2.2) in decimal
    std::vector<std::string> serials{
        "7", "70", "07", "1", "10", "100", longest, longest.substr(1) + "8", std::string(50, '1')};
    for (std::size_t i = 0; i < serials.size(); ++i) {
        ocsp_single_answer a{ocsp_single_answer::state::revoked, time_point(std::chrono::seconds(i)), {}};
        t.set(serials[i], a);
        owners.set(serials[i], serial_owner{"id-" + std::to_string(i), std::nullopt, true});
    }
    BOOST_TEST(t.size() == serials.size());
    for (std::size_t i = 0; i < serials.size(); ++i) {
        auto l = t.get(serials[i]);
        BOOST_REQUIRE(l.answer);
        BOOST_TEST((l.answer->revoked_at == time_point(std::chrono::seconds(i))), serials[i]);
        BOOST_TEST(owners.get(serials[i])->identifier == "id-" + std::to_string(i));
    }
    for (const std::string& bad : std::vector<std::string>{"", "-7", "7a", " 7", std::string(51, '1')}) {
        t.set(bad, {ocsp_single_answer::state::good, {}, {}});
        owners.set(bad, serial_owner{"x", std::nullopt, true});
        BOOST_TEST(!t.get(bad).answer.has_value(), bad);
        BOOST_TEST(!owners.get(bad).has_value(), bad);
    }
    BOOST_TEST(t.size() == serials.size());
    BOOST_TEST(owners.size() == serials.size());
}

BOOST_AUTO_TEST_CASE(table_invalidates_cache_on_status_change) {
    ocsp_table t;
    const auto now = std::chrono::system_clock::now();
    t.set("7", {ocsp_single_answer::state::good, {}, {}});
    auto l = t.get("7");
    BOOST_REQUIRE(l.answer);
    // What the service hands out is read-only; the response cache is still usable through it.
    const ocsp_table& shared = t;
    shared.cache_response("7", NID_sha1, l.generation,
                          {std::make_shared<const std::string>("resp"), now, now + std::chrono::hours(1)});
    BOOST_TEST(t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    // Same status again: the cache stays.
    t.set("7", {ocsp_single_answer::state::good, {}, {}});
    BOOST_TEST(t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    // Revoked: gone, and a response signed for the old status is not stored.
    t.set("7", {ocsp_single_answer::state::revoked, now, revocation_reason::superseded});
    BOOST_TEST(!t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    shared.cache_response("7", NID_sha1, l.generation,
                          {std::make_shared<const std::string>("stale"), now, now + std::chrono::hours(1)});
    BOOST_TEST(!t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    // A rotated responder drops every cached response, through the read-only view too.
    const auto l2 = t.get("7");
    shared.cache_response("7", NID_sha1, l2.generation,
                          {std::make_shared<const std::string>("fresh"), now, now + std::chrono::hours(1)});
    BOOST_TEST(t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    shared.clear_cache();
    BOOST_TEST(!t.cached("7", NID_sha1, now, std::chrono::seconds(60)).has_value());
    BOOST_TEST(!t.get("8").answer.has_value());
}
