// cert_service built from its ports in memory (test/support/memory_ports.hpp) with a fixed clock
// and a seeded RNG: lifecycle, CSR issuance, the renewal sweep, the CRL, audit and role rules,
// without a data dir (docs/architecture.md, SECURITY.md). The filesystem store has its own suite
// (test_storage.cpp); openssl verifies what the service issues. As test_service_pg the same cases
// run with the certificates in PostgreSQL (support/test_store.hpp; issue 18 test 1).
#define BOOST_TEST_MODULE test_service
#include <boost/test/unit_test.hpp>

#include "core/service.hpp"
#include "support/memory_ports.hpp"
#include "support/test_store.hpp"
#include "support/print.hpp"
#include "support/service_steps.hpp"
#include "support/tools.hpp"

#include <map>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto day = std::chrono::hours(24);
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

// An EC CA (fast) and a service over the in-memory ports, on a clock the test moves.
struct fixture {
    temp_dir dir; // files for openssl only
    fs::path ca_file = dir / "ca.crt";
    std::shared_ptr<time_point> now = std::make_shared<time_point>(t0);
    test_store* repo = nullptr; // in memory, or PostgreSQL for test_service_pg
    std::shared_ptr<memory_audit> audit = std::make_shared<memory_audit>();
    std::unique_ptr<cert_service> svc;

    explicit fixture(service_config cfg = {}, std::uint64_t seed = 42) {
        auto rng = seeded_rng(seed);
        ca_options opts;
        opts.type = key_type::ec_p384;
        auto ca = certificate_authority::create(opts, t0 - 24h, rng);
        BOOST_REQUIRE(ca);
        write_text(ca_file, ca->cert_pem());
        auto r = test_store::make();
        repo = r.get();
        cfg.default_key_type = key_type::ec_p256;
        svc = std::make_unique<cert_service>(
            std::make_shared<const certificate_authority>(std::move(*ca)), std::move(r), audit, cfg,
            [n = now] { return *n; }, rng);
        BOOST_REQUIRE(svc->load());
    }

    // Asks for a certificate as `who`; the outcome is the test's to check.
    result<cert_view> try_create(const std::string& id, const principal& who = system_principal("test"),
                                 std::optional<api_role> role = std::nullopt) {
        create_request r;
        r.identifier = id;
        r.subject.common_name = id.empty() ? "generated" : id;
        r.role = role;
        return run_sync(svc->stage_create(r, who));
    }

    // A certificate as an operator would ask for it, required to succeed.
    cert_view create(const std::string& id, cert_usage usage = cert_usage::api_mtls) {
        return create_certificate(*svc, id, usage);
    }

    // The certificate's PEM in a file, for openssl.
    fs::path cert_file(const cert_view& v) const {
        auto p = dir / (v.record.identifier + "-" + v.record.serial_number + ".crt");
        write_text(p, v.certificate_pem);
        return p;
    }

    std::size_t audit_lines() const { return audit->entries().size(); }

    std::shared_ptr<const built_crl> build_crl_now(bool force = true) { return test::build_crl_now(*svc, force); }

    ocsp_single_answer::state ocsp(const std::string& serial) const {
        auto a = svc->ocsp_statuses()->get(serial).answer;
        return a ? a->status : ocsp_single_answer::state::unknown;
    }
};

bool has_code(const auto& r, errc code) { return !r && r.error().code == code; }

} // namespace

BOOST_AUTO_TEST_CASE(create_get_list_revoke_renew) {
    fixture f;
    auto a = f.create("alice");
    auto b = f.create("bob", cert_usage::vpn);
    BOOST_TEST(a.status == cert_status::active);
    BOOST_TEST(!a.certificate_pem.empty());
    BOOST_TEST(a.record.has_private_key);
    BOOST_TEST(openssl_verify(f.ca_file, f.cert_file(a), nullptr, *f.now).find(": OK") != std::string::npos);

    // Generated identifier.
    create_request anon;
    anon.subject.common_name = "anonymous";
    auto c = run_sync(f.svc->stage_create(anon, {}));
    BOOST_REQUIRE(c);
    BOOST_TEST(c->record.identifier.rfind("cert-", 0) == 0);
    BOOST_TEST(c->record.identifier.size() == 17u);

    // Duplicate identifier, bad identifier, missing CN.
    create_request dup;
    dup.identifier = "alice";
    dup.subject.common_name = "x";
    auto d = f.svc->stage_create(dup, {});
    BOOST_REQUIRE(!d);
    BOOST_TEST(int(d.error().code) == int(errc::already_exists));
    for (const std::string& bad :
         std::vector<std::string>{"../x", "a/b", std::string("a\0b", 3), std::string(65, 'a'), ".hidden"}) {
        create_request r;
        r.identifier = bad;
        r.subject.common_name = "x";
        auto e = f.svc->stage_create(r, {});
        BOOST_REQUIRE(!e);
        BOOST_TEST(int(e.error().code) == int(errc::invalid_identifier));
        BOOST_TEST(e.error().field == "identifier");
    }
    create_request nocn;
    auto e = f.svc->stage_create(nocn, {});
    BOOST_REQUIRE(!e);
    BOOST_TEST(e.error().field == "common_name");

    // List filters.
    list_query q;
    q.usage = cert_usage::vpn;
    auto page = f.svc->list(q);
    BOOST_TEST(page.total == 1u);
    BOOST_TEST(page.items.at(0).identifier == "bob");
    q = {};
    q.search = "ALICE";
    BOOST_TEST(f.svc->list(q).total == 1u);
    q = {};
    q.limit = 2;
    q.offset = 2;
    page = f.svc->list(q);
    BOOST_TEST(page.total == 3u);
    BOOST_TEST(page.items.size() == 1u);

    // Revoke, then a second revoke is a conflict.
    auto r = run_sync(f.svc->stage_revoke("alice", {revocation_reason::key_compromise}, {}));
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == cert_status::revoked);
    auto again = f.svc->stage_revoke("alice", {revocation_reason::key_compromise}, {});
    BOOST_REQUIRE(!again);
    BOOST_TEST(int(again.error().code) == int(errc::already_revoked));
    // What OCSP answers: the OCSP table, kept in step with every commit.
    const auto ocsp_state = [&](const std::string& serial) {
        const auto look = f.svc->ocsp_statuses()->get(serial);
        return look.answer ? look.answer->status : ocsp_single_answer::state::unknown;
    };
    BOOST_TEST(ocsp_state(a.record.serial_number) == ocsp_single_answer::state::revoked);
    BOOST_TEST(
        (f.svc->ocsp_statuses()->get(a.record.serial_number).answer->reason == revocation_reason::key_compromise));
    BOOST_TEST(ocsp_state("12345") == ocsp_single_answer::state::unknown);
    auto not_found = f.svc->stage_revoke("nobody", {}, {});
    BOOST_REQUIRE(!not_found);
    BOOST_TEST(int(not_found.error().code) == int(errc::not_found));

    // Hold, then lift it; lifting a non-held certificate is a conflict.
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("bob", {revocation_reason::certificate_hold}, {})));
    BOOST_TEST(f.svc->get("bob")->status == cert_status::on_hold);
    auto unhold_a = f.svc->stage_unhold("alice", {});
    BOOST_REQUIRE(!unhold_a);
    BOOST_TEST(int(unhold_a.error().code) == int(errc::not_on_hold));
    BOOST_REQUIRE(run_sync(f.svc->stage_unhold("bob", {})));
    BOOST_TEST(f.svc->get("bob")->status == cert_status::active);

    // Renew: new serial, same identifier and CN, history kept, re-keyed.
    const auto old_key = f.repo->read_file(cert_usage::vpn, "bob", file_kind::key).value();
    auto rn = run_sync(f.svc->stage_renew("bob", 0, {}));
    BOOST_REQUIRE(rn);
    BOOST_TEST(rn->record.serial_number != b.record.serial_number);
    BOOST_TEST(rn->record.subject.common_name == b.record.subject.common_name);
    BOOST_REQUIRE(rn->record.history.size() == 1u);
    BOOST_TEST(rn->record.history[0].serial_number == b.record.serial_number);
    BOOST_TEST(f.repo->read_file(cert_usage::vpn, "bob", file_kind::key).value() != old_key);
    // The superseded serial stays good until it expires (revoke_superseded is off by default).
    BOOST_TEST(ocsp_state(b.record.serial_number) == ocsp_single_answer::state::good);
    BOOST_TEST(ocsp_state(rn->record.serial_number) == ocsp_single_answer::state::good);
    // A revoked certificate cannot be renewed.
    BOOST_TEST(!f.svc->stage_renew("alice", 0, {}));

    auto stats = f.svc->stats();
    BOOST_TEST(stats.total == 3u);
    BOOST_TEST(stats.revoked == 1u);
    BOOST_TEST(stats.by_usage["vpn"] == 1u);
}

BOOST_AUTO_TEST_CASE(csr_issuance_keeps_no_key_and_renews_from_stored_csr) {
    fixture f;
    temp_dir t;
    BOOST_REQUIRE(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                      (t / "k.pem").string() + " -out " + (t / "r.csr").string() +
                      " -subj /CN=device-7/O=Devices -addext basicConstraints=critical,CA:TRUE")
                      .exit_code == 0);
    create_request r;
    r.identifier = "device-7";
    r.csr_pem = test::read_text(t / "r.csr");
    auto v = run_sync(f.svc->stage_create(r, {}));
    BOOST_REQUIRE_MESSAGE(v.has_value(), (v ? std::string() : v.error().message));
    BOOST_TEST(v->record.subject.common_name == "device-7");
    BOOST_TEST(!v->record.has_private_key);
    BOOST_TEST(!f.repo->read_file(cert_usage::api_mtls, "device-7", file_kind::key));
    auto key = f.svc->stage_download("device-7", cert_service::file_format::key_pem, {});
    BOOST_REQUIRE(!key);
    BOOST_TEST(int(key.error().code) == int(errc::no_private_key));
    // The CSR asked for CA:TRUE; the certificate says CA:FALSE.
    auto text = run("openssl x509 -noout -text -in " + f.cert_file(*v).string()).output;
    BOOST_TEST(text.find("CA:FALSE") != std::string::npos);
    BOOST_TEST(text.find("CA:TRUE") == std::string::npos);

    auto rn = run_sync(f.svc->stage_renew("device-7", 30, {}));
    BOOST_REQUIRE(rn);
    // Re-signed with the same public key.
    auto pub_old = run("openssl pkey -in " + (t / "k.pem").string() + " -pubout").output;
    auto pub_new = run("openssl x509 -noout -pubkey -in " + f.cert_file(*rn).string()).output;
    BOOST_TEST(pub_old == pub_new);

    // Garbage CSR: a clear error, nothing written.
    create_request g;
    g.identifier = "garbage";
    g.csr_pem = "hello, not a CSR";
    auto ge = f.svc->stage_create(g, {});
    BOOST_REQUIRE(!ge);
    BOOST_TEST(int(ge.error().code) == int(errc::invalid_csr));
    BOOST_TEST(!f.repo->stored("garbage"));
}

BOOST_AUTO_TEST_CASE(expired_certificate_can_be_renewed_and_sweep_plan) {
    fixture f;
    auto a = f.create("soon");
    auto b = f.create("later");
    (void)b;
    auto off = f.create("off");
    update_request u;
    u.renewal_enabled = false;
    BOOST_REQUIRE(run_sync(f.svc->stage_update("off", u, {})));
    (void)off;

    // Nothing due today; 340 days on, all three are within 30 days of expiry, "off" is excluded.
    BOOST_TEST(f.svc->renewal_plan(*f.now).empty());
    auto plan = f.svc->renewal_plan(*f.now + 340 * day);
    BOOST_TEST(plan.size() == 2u);

    // A year and a day later: expired, still renewable.
    *f.now += 366 * day;
    BOOST_TEST(f.svc->get("soon")->status == cert_status::expired);
    auto sum = f.svc->run_renewal_sweep_sync(system_principal("renewal"));
    BOOST_TEST(sum.renewed == 2u);
    BOOST_TEST(sum.failed == 0u);
    BOOST_TEST(f.svc->get("soon")->status == cert_status::active);
    BOOST_TEST(f.svc->get("off")->status == cert_status::expired);
    BOOST_TEST(f.svc->get("soon")->record.serial_number != a.record.serial_number);
}

BOOST_AUTO_TEST_CASE(sweep_renews_inside_threshold_skips_the_rest_and_survives_a_failure) {
    fixture f;
    f.create("due-1");
    f.create("due-2");
    f.create("revoked");
    f.create("disabled");
    // Longer-lived: outside the threshold when the others are due.
    create_request lr;
    lr.identifier = "long";
    lr.subject.common_name = "long";
    lr.validity_days = 700;
    BOOST_REQUIRE(run_sync(f.svc->stage_create(lr, {})));
    // A custom threshold of 60 days.
    create_request wide;
    wide.identifier = "wide";
    wide.subject.common_name = "wide";
    wide.validity_days = 400;
    wide.renewal_threshold_days = 60;
    BOOST_REQUIRE(run_sync(f.svc->stage_create(wide, {})));
    // CSR-issued, then its stored CSR goes missing: its renewal must fail, the rest proceed.
    temp_dir t;
    BOOST_REQUIRE(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                      (t / "k.pem").string() + " -out " + (t / "r.csr").string() + " -subj /CN=broken")
                      .exit_code == 0);
    create_request br;
    br.identifier = "broken";
    br.csr_pem = test::read_text(t / "r.csr");
    BOOST_REQUIRE(run_sync(f.svc->stage_create(br, {})));
    f.repo->drop_file("broken", file_kind::csr);
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("revoked", {revocation_reason::cessation_of_operation}, {})));
    update_request u;
    u.renewal_enabled = false;
    BOOST_REQUIRE(run_sync(f.svc->stage_update("disabled", u, {})));

    std::map<std::string, std::string> serial_before;
    list_query all;
    all.limit = 1000;
    for (const auto& r : f.svc->list(all).items) serial_before[r.identifier] = r.serial_number;

    // 350 days on: 365-day certificates are 15 days from expiry, "wide" 50 (inside its 60),
    // "long" 350 (outside).
    *f.now += 350 * day;
    auto sum = f.svc->run_renewal_sweep_sync(system_principal("renewal"));
    BOOST_TEST(sum.candidates == 4u);
    BOOST_TEST(sum.renewed == 3u);
    BOOST_TEST(sum.failed == 1u);
    bool broken_reported = false;
    for (const auto& o : sum.outcomes)
        if (o.identifier == "broken") broken_reported = !o.ok && o.error.find("CSR") != std::string::npos;
    BOOST_TEST(broken_reported);
    for (const auto& [id, serial] : serial_before) {
        const bool renewed = f.svc->get(id)->record.serial_number != serial;
        const bool expected = id == "due-1" || id == "due-2" || id == "wide";
        BOOST_TEST(renewed == expected, id << (renewed ? " renewed" : " untouched"));
        if (renewed) BOOST_TEST(f.svc->get(id)->record.history.at(0).serial_number == serial);
    }
    // The failure was audited as an auto_renew failure; the run is saved through the repository.
    bool failure_audited = false;
    for (const auto& e : f.audit->entries())
        failure_audited |= e.operation == "auto_renew" && e.status == "failure" && e.resource_id == "broken";
    BOOST_TEST(failure_audited);
    auto last = f.repo->load_last_sweep();
    BOOST_REQUIRE(last);
    BOOST_TEST(last->renewed == 3u);
    // A second sweep at the same time has nothing left but the broken one.
    auto again = f.svc->run_renewal_sweep_sync(system_principal("renewal"));
    BOOST_TEST(again.candidates == 1u);
}

BOOST_AUTO_TEST_CASE(crl_lists_revocations_and_its_number_grows) {
    fixture f;
    auto good = f.create("good");
    auto bad = f.create("bad");
    auto held = f.create("held");
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("bad", {revocation_reason::key_compromise}, {})));
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("held", {revocation_reason::certificate_hold}, {})));
    auto crl1 = f.build_crl_now();
    BOOST_TEST(crl1->crl_number == 1u);
    auto crl2 = f.build_crl_now();
    BOOST_TEST(crl2->crl_number == 2u);

    // Published through the repository, then checked with openssl.
    const auto published = f.repo->published_crl();
    BOOST_REQUIRE(published);
    BOOST_TEST(published->first == crl2->der);
    BOOST_TEST(published->second == crl2->pem);
    const auto crl_pem = f.dir / "crl.pem";
    test::write_text(crl_pem, crl2->pem);
    auto text = run("openssl crl -noout -text -in " + crl_pem.string()).output;
    BOOST_TEST(text.find("Key Compromise") != std::string::npos);
    BOOST_TEST(text.find("Certificate Hold") != std::string::npos);
    BOOST_TEST(
        run("openssl crl -noout -CAfile " + f.ca_file.string() + " -in " + crl_pem.string()).output.find("verify OK") !=
        std::string::npos);
    BOOST_TEST(openssl_verify(f.ca_file, f.cert_file(bad), &crl_pem, *f.now).find("revoked") != std::string::npos);
    BOOST_TEST(openssl_verify(f.ca_file, f.cert_file(good), &crl_pem, *f.now).find(": OK") != std::string::npos);

    (void)held;
}

BOOST_AUTO_TEST_CASE(every_mutation_is_audited) {
    fixture f;
    const std::size_t start = 0;
    BOOST_TEST(f.audit_lines() == start);
    f.create("a1");
    BOOST_TEST(f.audit_lines() == start + 1);
    BOOST_REQUIRE(run_sync(f.svc->stage_revoke("a1", {revocation_reason::certificate_hold}, {})));
    BOOST_TEST(f.audit_lines() == start + 2);
    BOOST_REQUIRE(run_sync(f.svc->stage_unhold("a1", {})));
    BOOST_TEST(f.audit_lines() == start + 3);
    BOOST_REQUIRE(run_sync(f.svc->stage_renew("a1", 0, {})));
    BOOST_TEST(f.audit_lines() == start + 4);
    update_request u;
    u.notes = "hello";
    BOOST_REQUIRE(run_sync(f.svc->stage_update("a1", u, {})));
    BOOST_TEST(f.audit_lines() == start + 5);
    BOOST_REQUIRE(run_sync(f.svc->stage_download("a1", cert_service::file_format::key_pem, {})));
    BOOST_TEST(f.audit_lines() == start + 6);
    // A failed mutation is audited as a failure, too.
    create_request bad;
    bad.identifier = "x";
    bad.subject.common_name = "x";
    bad.validity_days = 100000;
    BOOST_TEST(!f.svc->stage_create(bad, {}));

    BOOST_TEST(f.audit->entries().size() == 6u);
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_identifiers) {
    fixture a({}, 7), b({}, 7);
    auto x = a.try_create("");
    auto y = b.try_create("");
    BOOST_REQUIRE(x && y);
    BOOST_TEST(x->record.identifier == y->record.identifier);
    BOOST_TEST(x->record.identifier.rfind("cert-", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(revoking_an_identifier_revokes_every_unexpired_serial) {
    fixture f;
    auto first = f.try_create("m");
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
    BOOST_TEST(has_code(f.try_create("a", op, api_role::admin), errc::forbidden));
    BOOST_TEST(!f.repo->stored("a"));
    BOOST_REQUIRE(f.try_create("o", op, api_role::operator_));
    BOOST_REQUIRE(f.try_create("adm", system_principal("test"), api_role::admin));

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
    BOOST_REQUIRE(f.try_create("before"));
    const auto before = *f.repo->stored("before");
    f.audit->fail_appends(true);
    BOOST_TEST(has_code(f.try_create("after"), errc::audit_unavailable));
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
    BOOST_TEST(bool(f.try_create("after")));
}

BOOST_AUTO_TEST_CASE(a_store_failure_after_the_audit_entry_is_audited_as_rolled_back) {
    fixture f;
    f.repo->fail_writes(true);
    BOOST_TEST(has_code(f.try_create("x"), errc::storage_failure));
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
