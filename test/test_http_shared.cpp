// Two servers over one store (docs/high-availability.md), the in-memory ports in shared mode: the
// net/ wiring of cert_repository::watch_changes. A delivery from the store's side is handed to
// the strand (crl_publisher::apply_changes), a remote revocation reaches the other server's OCSP
// statuses and, through a CRL build it starts itself, its /crl.der; a delivery after shutdown is
// dropped. The service-level rules are test_service_shared's.
#define BOOST_TEST_MODULE test_http_shared
#include <boost/test/unit_test.hpp>

#include "core/clock.hpp"
#include "core/keys.hpp"
#include "core/ossl.hpp"
#include "core/service.hpp"
#include "net/server.hpp"
#include "support/http_client.hpp"
#include "support/json_checks.hpp"
#include "support/memory_ports.hpp"
#include "support/wait.hpp"

#include <openssl/x509.h>

#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;

namespace {

const std::string admin_token = "shared-admin-token-0123456789";

// The serials (decimal) a CRL's DER lists; empty when it does not parse.
std::set<std::string> crl_serials(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509_crl parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    std::set<std::string> out;
    if (!parsed) return out;
    if (auto* revoked = X509_CRL_get_REVOKED(parsed.get()))
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i)
            if (auto s = serial_to_decimal(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))))
                out.insert(*s);
    return out;
}

struct node {
    memory_repository* repo = nullptr;
    cert_service* svc = nullptr; // owned by srv
    std::unique_ptr<net::server> srv;

    // `sweep`: the daily sweep on (with no sweep recorded, the one missed runs at start).
    node(const shared_memory_store& store, std::shared_ptr<const certificate_authority> ca, bool sweep = false) {
        auto r = std::make_unique<memory_repository>(store);
        repo = r.get();
        service_config cfg;
        cfg.default_key_type = key_type::ec_p256;
        auto s = std::make_unique<cert_service>(
            std::move(ca), std::move(r), std::make_shared<memory_audit>(), cfg,
            [] { return std::chrono::system_clock::now(); }, openssl_rng());
        BOOST_REQUIRE(s->load());
        svc = s.get();
        net::server_options opts;
        opts.http_listen = "127.0.0.1:0";
        opts.threads = 1;
        opts.pool_threads = 1;
        opts.renewal_sweep = sweep;
        opts.snapshot_delay = 0s;
        auto hash = sha256_hex(admin_token);
        BOOST_REQUIRE(hash);
        opts.tokens.push_back(net::token_credential{"admin", api_role::admin, *hash});
        srv = std::make_unique<net::server>(std::move(opts), std::move(s));
        BOOST_REQUIRE(srv->start());
    }
    ~node() {
        if (srv) srv->shutdown();
    }
};

std::shared_ptr<const certificate_authority> make_ca() {
    ca_options opts;
    opts.type = key_type::ec_p384;
    auto made = certificate_authority::create(opts, std::chrono::system_clock::now() - 1h, openssl_rng());
    BOOST_REQUIRE(made);
    return std::make_shared<const certificate_authority>(std::move(*made));
}

struct two_servers {
    shared_memory_store store;
    std::shared_ptr<const certificate_authority> ca = make_ca();
    node a{store, ca};
    node b{store, ca};
};

} // namespace

BOOST_AUTO_TEST_CASE(a_revocation_through_one_server_reaches_the_others_ocsp_and_crl) {
    two_servers t;
    http_client ha(t.a.srv->port()), hb(t.b.srv->port());
    auto created = ha.post_json("/api/client-certs", R"({"common_name":"alice","identifier":"alice"})", admin_token);
    BOOST_REQUIRE_EQUAL(created.status, 201u);
    const std::string serial = str(obj(created), "serial_number");
    BOOST_TEST(hb.get("/api/client-certs/alice", admin_token).status == 404u);

    t.b.repo->deliver();
    BOOST_REQUIRE(eventually([&] { return hb.get("/api/client-certs/alice", admin_token).status == 200u; }));
    BOOST_TEST(str(obj(hb.get("/api/client-certs/alice", admin_token)), "serial_number") == serial);

    auto revoked = ha.post_json("/api/client-certs/alice/revoke", R"({"reason":"keyCompromise"})", admin_token);
    BOOST_REQUIRE_EQUAL(revoked.status, 200u);
    BOOST_TEST(crl_serials(ha.get("/crl.der").body).count(serial) == 1u);
    auto status = [&] {
        auto s = t.b.svc->ocsp_statuses()->get(serial);
        return s.answer ? s.answer->status : ocsp_single_answer::state::unknown;
    };
    BOOST_TEST((status() == ocsp_single_answer::state::good));

    t.b.repo->deliver();
    BOOST_REQUIRE(eventually([&] { return status() == ocsp_single_answer::state::revoked; }));
    // B serves a CRL listing it: A's, read from the store, or B's own build after the revocation.
    BOOST_REQUIRE(eventually([&] { return crl_serials(hb.get("/crl.der").body).count(serial) == 1u; }));
    BOOST_TEST(str(obj(hb.get("/api/client-certs/alice", admin_token)), "status") == "revoked");

    // A delivery racing B's stop is dropped, not applied to a destroyed server.
    t.b.srv->shutdown();
    BOOST_REQUIRE_EQUAL(
        ha.post_json("/api/client-certs", R"({"common_name":"bob","identifier":"bob"})", admin_token).status, 201u);
    BOOST_TEST(t.b.repo->deliver() == 1u);
}

BOOST_AUTO_TEST_CASE(the_sweep_runs_only_on_the_instance_holding_the_lease) {
    shared_memory_store store;
    auto ca = make_ca();
    memory_repository other(store); // another instance, leading the sweep
    auto held = other.try_lead("sweep");
    BOOST_REQUIRE(held);
    BOOST_REQUIRE(*held);
    {
        node a(store, ca, true); // its missed sweep is due at start, but the lease is taken
        std::this_thread::sleep_for(1s);
        BOOST_TEST(!other.load_last_sweep().has_value());
    }
    // Asked for by hand meanwhile: refused, as one sweep at a time runs across instances.
    node c(store, ca);
    http_client hc(c.srv->port());
    auto refused = hc.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + admin_token}});
    BOOST_TEST(refused.status == 409u);
    BOOST_TEST(str(obj(refused), "code") == "CONFLICT");
    BOOST_TEST(!other.load_last_sweep().has_value());

    held->reset(); // the leader is done (or gone)
    node b(store, ca, true);
    BOOST_TEST(eventually([&] { return other.load_last_sweep().has_value(); }));
    // Once B let go of the lease (just after recording its sweep), a sweep by hand runs.
    BOOST_TEST(eventually([&] {
        return hc.request("POST", "/api/renewals/run", {}, {{"Authorization", "Bearer " + admin_token}}).status == 200u;
    }));
}
