// cert_service built from its ports in memory (test/support/memory_ports.hpp) with a fixed clock and
// a seeded RNG: the service's rules without a data dir (docs/architecture.md, SECURITY.md).
// test_service.cpp runs the same service over the file system store.
#define BOOST_TEST_MODULE test_service_unit
#include <boost/test/unit_test.hpp>

#include "core/service.hpp"
#include "support/memory_ports.hpp"
#include "support/print.hpp"

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;

namespace {

const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 30} + 12h;

principal operator_token() {
    principal p;
    p.user = "ops";
    p.actor = principal::kind::token;
    p.role = api_role::operator_;
    return p;
}

// net/ reads the OCSP statuses; only the service sets them (issue 11: no mutable back door).
static_assert(
    std::is_same_v<decltype(std::declval<const cert_service&>().ocsp_statuses()), std::shared_ptr<const ocsp_table>>);

struct fixture {
    std::shared_ptr<time_point> now = std::make_shared<time_point>(t0);
    memory_repository* repo = nullptr;
    std::shared_ptr<memory_audit> audit = std::make_shared<memory_audit>();
    std::unique_ptr<cert_service> svc;

    explicit fixture(service_config cfg = {}, std::uint64_t seed = 42) {
        auto rng = seeded_rng(seed);
        ca_options opts;
        opts.type = key_type::ec_p384;
        auto ca = certificate_authority::create(opts, t0 - 24h, rng);
        BOOST_REQUIRE(ca);
        auto r = std::make_unique<memory_repository>();
        repo = r.get();
        cfg.default_key_type = key_type::ec_p256;
        svc = std::make_unique<cert_service>(
            std::make_shared<const certificate_authority>(std::move(*ca)), std::move(r), audit, cfg,
            [n = now] { return *n; }, rng);
        BOOST_REQUIRE(svc->load());
    }

    result<cert_view> create(const std::string& id, const principal& who = system_principal("test"),
                             std::optional<api_role> role = std::nullopt) {
        create_request r;
        r.identifier = id;
        r.subject.common_name = id.empty() ? "generated" : id;
        r.role = role;
        return run_sync(svc->stage_create(r, who));
    }
    ocsp_single_answer::state ocsp(const std::string& serial) const {
        auto a = svc->ocsp_statuses()->get(serial).answer;
        return a ? a->status : ocsp_single_answer::state::unknown;
    }
};

bool has_code(const auto& r, errc code) { return !r && r.error().code == code; }

} // namespace

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_identifiers) {
    fixture a({}, 7), b({}, 7);
    auto x = a.create("");
    auto y = b.create("");
    BOOST_REQUIRE(x && y);
    BOOST_TEST(x->record.identifier == y->record.identifier);
    BOOST_TEST(x->record.identifier.rfind("cert-", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(revoking_an_identifier_revokes_every_unexpired_serial) {
    fixture f;
    auto first = f.create("m");
    BOOST_REQUIRE(first);
    *f.now += 1h;
    auto renewed = run_sync(f.svc->stage_renew("m", 0, system_principal("test")));
    BOOST_REQUIRE(renewed);
    const auto old_serial = first->record.serial_number;
    BOOST_TEST((f.ocsp(old_serial) == ocsp_single_answer::state::good));

    // a hold covers both, and its lift too
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("m", {revocation_reason::certificate_hold}, system_principal("test"))));
    BOOST_TEST((f.ocsp(old_serial) == ocsp_single_answer::state::revoked));
    BOOST_REQUIRE(run_sync(f.svc->stage_unhold("m", system_principal("test"))));
    BOOST_TEST((f.ocsp(old_serial) == ocsp_single_answer::state::good));

    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("m", {revocation_reason::key_compromise}, system_principal("test"))));
    auto answer = f.svc->ocsp_statuses()->get(old_serial).answer;
    BOOST_REQUIRE(answer);
    BOOST_TEST((answer->status == ocsp_single_answer::state::revoked));
    BOOST_TEST((answer->reason == revocation_reason::key_compromise));
    // what a restart would load says the same
    auto stored = f.repo->stored("m");
    BOOST_REQUIRE(stored);
    BOOST_REQUIRE_EQUAL(stored->history.size(), 1u);
    BOOST_TEST(stored->history[0].revoked);
    BOOST_TEST((stored->history[0].reason == revocation_reason::key_compromise));
    // and the next CRL lists both
    auto crl = f.svc->stage_crl_build(true);
    BOOST_REQUIRE(crl);
    auto built = crl->commit(crl->work());
    BOOST_REQUIRE(built);
}

BOOST_AUTO_TEST_CASE(role_ceilings_hold_at_the_service) {
    fixture f;
    const auto op = operator_token();
    BOOST_TEST(has_code(f.create("a", op, api_role::admin), errc::forbidden));
    BOOST_TEST(!f.repo->stored("a"));
    BOOST_REQUIRE(f.create("o", op, api_role::operator_));
    BOOST_REQUIRE(f.create("adm", system_principal("test"), api_role::admin));

    update_request up;
    up.role = std::optional<api_role>(api_role::admin);
    BOOST_TEST(has_code(f.svc->stage_update("o", up, op), errc::forbidden));
    up.role = std::optional<api_role>();
    BOOST_TEST(has_code(f.svc->stage_update("adm", up, op), errc::forbidden));
    BOOST_TEST(has_code(f.svc->stage_download("adm", cert_service::file_format::key_pem, op), errc::forbidden));
    BOOST_TEST(has_code(f.svc->stage_pkcs12("adm", "longenough", op), errc::forbidden));
    BOOST_TEST(has_code(f.svc->stage_renew("adm", 0, op), errc::forbidden));
    BOOST_TEST(bool(run_sync(f.svc->stage_download("o", cert_service::file_format::key_pem, op))));
    // the download was audited with the token actor
    const auto entries = f.audit->entries();
    BOOST_REQUIRE(!entries.empty());
    BOOST_TEST(entries.back().operation == "download");
    BOOST_TEST(entries.back().actor.at("kind").as_string() == "token");
}

BOOST_AUTO_TEST_CASE(server_auth_names_follow_the_patterns) {
    service_config cfg;
    cfg.server_names.patterns = {"*.vpn.example.com", "gw.example.com"};
    cfg.server_names.reserved = {"ca.vpn.example.com"};
    fixture f(cfg);
    auto ask = [&](const std::string& id, const std::string& cn, std::vector<std::string> dns, const principal& who) {
        create_request r;
        r.identifier = id;
        r.subject.common_name = cn;
        r.usage = cert_usage::vpn;
        r.extra_eku = {"serverAuth"};
        r.sans.dns = std::move(dns);
        return run_sync(f.svc->stage_create(r, who));
    };
    const auto admin = system_principal("admin");
    BOOST_TEST(has_code(ask("a", "a.vpn.example.com", {"a.vpn.example.com"}, operator_token()), errc::forbidden));
    BOOST_TEST(bool(ask("b", "A.VPN.example.com", {"a.vpn.example.com", "gw.example.com"}, admin)));
    BOOST_TEST(has_code(ask("c", "x.y.vpn.example.com", {}, admin), errc::forbidden));
    BOOST_TEST(has_code(ask("d", "evil.example.org", {}, admin), errc::forbidden));
    BOOST_TEST(has_code(ask("e", "ca.vpn.example.com", {}, admin), errc::forbidden));
    BOOST_TEST(has_code(ask("f", "gw.example.com", {"*.example.com"}, admin), errc::forbidden));
}

BOOST_AUTO_TEST_CASE(no_audit_entry_no_change) {
    fixture f;
    BOOST_REQUIRE(f.create("before"));
    const auto before = *f.repo->stored("before");
    f.audit->fail_appends(true);
    BOOST_TEST(has_code(f.create("after"), errc::audit_unavailable));
    BOOST_TEST(!f.repo->stored("after"));
    BOOST_TEST(!f.svc->get("after"));
    BOOST_TEST(
        has_code(run_sync(f.svc->stage_revoke("before", {}, system_principal("test"))), errc::audit_unavailable));
    BOOST_TEST((*f.repo->stored("before") == before));
    BOOST_TEST(f.svc->get("before")->status == cert_status::active);
    BOOST_TEST(
        has_code(run_sync(f.svc->stage_download("before", cert_service::file_format::key_pem, system_principal("t"))),
                 errc::audit_unavailable));
    BOOST_TEST(!f.svc->audit_healthy());
    f.audit->fail_appends(false);
    BOOST_TEST(bool(f.create("after")));
}

BOOST_AUTO_TEST_CASE(a_store_failure_after_the_audit_entry_is_audited_as_rolled_back) {
    fixture f;
    f.repo->fail_writes(true);
    BOOST_TEST(has_code(f.create("x"), errc::storage_failure));
    BOOST_TEST(!f.svc->get("x"));
    const auto entries = f.audit->entries();
    BOOST_REQUIRE_EQUAL(entries.size(), 2u);
    BOOST_TEST(entries[0].status == "success");
    BOOST_TEST(entries[1].status == "failure");
    BOOST_TEST(entries[1].details.at("rolled_back").as_bool());
    bool storage_ok = true;
    for (const auto& h : f.svc->health())
        if (h.name == "storage") storage_ok = h.ok;
    BOOST_TEST(!storage_ok);
}
