// Two cert_service instances over one store (docs/high-availability.md), with the in-memory ports
// in shared mode (test/support/memory_ports.hpp): each instance applies the changes the other
// committed (index, OCSP table, serial owners, CRL entries), a CRL build that could miss another
// instance's revocation is refused until that change is applied, every instance serves the newest
// CRL, and one instance at a time leads the sweep. Deliveries are synchronous (deliver()), so the
// order of events is the test's.
#define BOOST_TEST_MODULE test_service_shared
#include <boost/test/unit_test.hpp>

#include "core/keys.hpp"
#include "core/ossl.hpp"
#include "core/service.hpp"
#include "support/memory_ports.hpp"
#include "support/print.hpp"
#include "support/service_steps.hpp"

#include <openssl/x509.h>

#include <set>

using namespace certmate;
using namespace certmate::test;
using namespace std::chrono_literals;

namespace {

const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 30} + 12h;

// The serials (decimal) a CRL lists.
std::set<std::string> crl_serials(const built_crl& crl) {
    const auto* p = reinterpret_cast<const unsigned char*>(crl.der.data());
    ossl::x509_crl parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(crl.der.size())));
    BOOST_REQUIRE(parsed);
    std::set<std::string> out;
    if (auto* revoked = X509_CRL_get_REVOKED(parsed.get()))
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
            auto s = serial_to_decimal(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)));
            BOOST_REQUIRE(s);
            out.insert(*s);
        }
    return out;
}

// One instance: a service over its own view of the shared store, applying what deliver() hands
// it as the server's strand would (apply_changes, then its CRL step, work then commit).
struct instance {
    memory_repository* repo = nullptr;
    std::shared_ptr<memory_audit> audit = std::make_shared<memory_audit>();
    std::unique_ptr<cert_service> svc;
    std::size_t crl_steps = 0; // CRL reads staged by apply_changes

    instance(const shared_memory_store& store, std::shared_ptr<const certificate_authority> ca,
             std::shared_ptr<time_point> now, std::uint64_t seed) {
        auto r = std::make_unique<memory_repository>(store);
        repo = r.get();
        service_config cfg;
        cfg.default_key_type = key_type::ec_p256;
        svc = std::make_unique<cert_service>(
            std::move(ca), std::move(r), audit, cfg, [now] { return *now; }, seeded_rng(seed));
        BOOST_REQUIRE(svc->load());
        svc->watch_changes([this](std::vector<store_change> changes) {
            auto step = svc->apply_changes(std::move(changes));
            if (!step) return;
            ++crl_steps;
            BOOST_REQUIRE(step->commit(step->work()));
        });
    }
    std::size_t deliver() { return repo->deliver(); }
};

struct two_instances {
    shared_memory_store store;
    std::shared_ptr<time_point> now = std::make_shared<time_point>(t0);
    std::shared_ptr<const certificate_authority> ca = [] {
        auto rng = seeded_rng(7);
        ca_options opts;
        opts.type = key_type::ec_p384;
        auto made = certificate_authority::create(opts, t0 - 24h, rng);
        BOOST_REQUIRE(made);
        return std::make_shared<const certificate_authority>(std::move(*made));
    }();
    instance a{store, ca, now, 1};
    instance b{store, ca, now, 2};
};

cert_view revoke(cert_service& svc, const std::string& id) {
    revoke_request req;
    req.reason = revocation_reason::key_compromise;
    auto r = run_sync(svc.stage_revoke(id, req, system_principal("tester")));
    BOOST_REQUIRE_MESSAGE(r, "revoke " + id + " failed: " + (r ? "" : r.error().message));
    return *r;
}

// Stages a CRL build and runs it: the result of the store's step (conflict or a CRL).
result<std::shared_ptr<const built_crl>> try_build_crl(cert_service& svc) {
    auto st = svc.stage_crl_build(true);
    BOOST_REQUIRE(st);
    return st->commit(st->work());
}

} // namespace

BOOST_AUTO_TEST_CASE(a_create_on_one_instance_appears_on_the_other_after_delivery) {
    two_instances t;
    const auto made = create_certificate(*t.a.svc, "alice");
    BOOST_TEST(t.b.svc->get("alice").error().code == errc::not_found);
    BOOST_TEST(t.b.deliver() == 1u);
    auto seen = t.b.svc->get("alice");
    BOOST_REQUIRE(seen);
    BOOST_TEST(seen->record.serial_number == made.record.serial_number);
    BOOST_TEST(seen->record.fingerprint_sha256 == made.record.fingerprint_sha256);
    list_query q;
    const auto page = t.b.svc->list(q);
    BOOST_TEST(page.total == 1u);
    BOOST_TEST(t.b.svc->size() == 1u);
    // The serial is B's to answer for: OCSP good, owned by alice for mTLS.
    auto st = t.b.svc->ocsp_statuses()->get(made.record.serial_number);
    BOOST_REQUIRE(st.answer);
    BOOST_TEST((st.answer->status == ocsp_single_answer::state::good));
    auto owner = t.b.svc->serial_owners()->get(made.record.serial_number);
    BOOST_REQUIRE(owner);
    BOOST_TEST(owner->identifier == "alice");
    // B audited nothing: A did, where the change happened.
    BOOST_TEST(t.b.audit->entries().empty());
    BOOST_TEST(t.a.audit->entries().size() == 1u);
    // A delivery is not repeated, and A never receives its own change.
    BOOST_TEST(t.b.deliver() == 0u);
    BOOST_TEST(t.a.deliver() == 0u);
    // The identifier is taken for B too.
    create_request again;
    again.identifier = "alice";
    again.subject.common_name = "alice";
    BOOST_TEST(run_sync(t.b.svc->stage_create(again, system_principal("tester"))).error().code == errc::already_exists);
}

BOOST_AUTO_TEST_CASE(a_revocation_on_one_instance_reaches_the_others_ocsp_and_crl) {
    two_instances t;
    const auto bad = create_certificate(*t.a.svc, "bad");
    const auto good = create_certificate(*t.a.svc, "good");
    t.b.deliver();
    auto before = t.b.svc->ocsp_statuses()->get(bad.record.serial_number);
    BOOST_REQUIRE(before.answer);
    BOOST_TEST((before.answer->status == ocsp_single_answer::state::good));
    BOOST_REQUIRE(try_build_crl(*t.b.svc));
    BOOST_TEST(!t.b.svc->crl_rebuild_needed());

    // A change that revokes nothing leaves B's CRL as it is.
    update_request upd;
    upd.notes = "n";
    BOOST_REQUIRE(run_sync(t.a.svc->stage_update("good", upd, system_principal("tester"))));
    BOOST_TEST(t.b.deliver() == 1u);
    BOOST_TEST(t.b.svc->get("good")->record.notes == "n");
    BOOST_TEST(!t.b.svc->crl_rebuild_needed());
    BOOST_TEST(!t.b.svc->stage_crl_build(false).has_value());

    revoke(*t.a.svc, "bad");
    BOOST_TEST(t.b.deliver() == 1u);
    auto after = t.b.svc->ocsp_statuses()->get(bad.record.serial_number);
    BOOST_REQUIRE(after.answer);
    BOOST_TEST((after.answer->status == ocsp_single_answer::state::revoked));
    BOOST_TEST((after.answer->reason == revocation_reason::key_compromise));
    BOOST_TEST(t.b.svc->get("bad")->status == cert_status::revoked);
    BOOST_TEST(t.b.svc->stats().revoked == 1u);

    // B wants a CRL for it (unforced), and that CRL lists it.
    BOOST_TEST(t.b.svc->crl_rebuild_needed());
    auto st = t.b.svc->stage_crl_build(false);
    BOOST_REQUIRE(st);
    auto crl = st->commit(st->work());
    BOOST_REQUIRE(crl);
    const auto listed = crl_serials(**crl);
    BOOST_TEST(listed.count(bad.record.serial_number) == 1u);
    BOOST_TEST(listed.count(good.record.serial_number) == 0u);
    BOOST_TEST(t.b.svc->current_crl() == *crl);
    BOOST_TEST(t.b.audit->entries().empty());
}

BOOST_AUTO_TEST_CASE(a_crl_build_missing_a_change_is_refused_and_runs_after_delivery) {
    two_instances t;
    create_certificate(*t.a.svc, "x");
    t.b.deliver();
    auto a1 = try_build_crl(*t.a.svc);
    BOOST_REQUIRE(a1);
    BOOST_TEST((*a1)->crl_number == 1u);
    t.b.deliver(); // B serves A's CRL 1
    BOOST_REQUIRE(t.b.svc->current_crl());
    BOOST_TEST(t.b.svc->current_crl()->crl_number == 1u);

    revoke(*t.a.svc, "x");
    auto a2 = try_build_crl(*t.a.svc);
    BOOST_REQUIRE(a2);
    BOOST_TEST((*a2)->crl_number == 2u);
    const auto published_before = t.b.repo->published_crl();
    const auto seq_before = t.store.seq();

    // B has not applied the revocation: its build is refused and publishes nothing.
    auto refused = try_build_crl(*t.b.svc);
    BOOST_REQUIRE(!refused);
    BOOST_TEST(refused.error().code == errc::conflict);
    BOOST_TEST((t.b.repo->published_crl() == published_before));
    BOOST_TEST(t.store.seq() == seq_before);
    BOOST_TEST(t.b.svc->current_crl()->crl_number == 1u);
    // Still wanted, but not before the missing change is applied (it would be refused again).
    BOOST_TEST(!t.b.svc->crl_rebuild_needed());

    BOOST_TEST(t.b.deliver() == 2u); // the revocation and A's CRL 2
    BOOST_TEST(t.b.svc->current_crl()->crl_number == 2u);
    BOOST_TEST(t.b.svc->crl_rebuild_needed());
    auto b3 = try_build_crl(*t.b.svc);
    BOOST_REQUIRE(b3);
    BOOST_TEST((*b3)->crl_number > (*a2)->crl_number);
    BOOST_TEST(crl_serials(**b3).count(t.a.svc->get("x")->record.serial_number) == 1u);
    BOOST_TEST(t.b.repo->published_crl()->first == (*b3)->der);
    BOOST_TEST(!t.b.svc->crl_rebuild_needed());
    // A's next CRL numbers above B's, though A has not seen B's CRL (its own count stands at 2):
    // the store picks the number. B's CRL carries no revocation, so A's build is not refused.
    auto a4 = try_build_crl(*t.a.svc);
    BOOST_REQUIRE(a4);
    BOOST_TEST((*a4)->crl_number == (*b3)->crl_number + 1);
}

BOOST_AUTO_TEST_CASE(a_crl_published_by_one_instance_is_served_by_the_other) {
    two_instances t;
    create_certificate(*t.a.svc, "y");
    revoke(*t.a.svc, "y");
    t.b.deliver();
    BOOST_TEST(t.b.svc->current_crl() == nullptr);
    auto a1 = try_build_crl(*t.a.svc);
    BOOST_REQUIRE(a1);
    BOOST_TEST(t.b.deliver() == 1u);
    BOOST_TEST(t.b.crl_steps == 1u);
    auto served = t.b.svc->current_crl();
    BOOST_REQUIRE(served);
    BOOST_TEST(served->der == (*a1)->der);
    BOOST_TEST(served->pem == (*a1)->pem);
    BOOST_TEST(served->crl_number == (*a1)->crl_number);
    BOOST_TEST((served->this_update == (*a1)->this_update));
    BOOST_TEST((served->next_update == (*a1)->next_update));
    BOOST_TEST(!t.b.svc->crl_due(1h));

    // A CRL is only served when newer than the current one: B builds 2, then a notice of a
    // publication arrives (as after a reconnect) while the store keeps B's own 2; B keeps it.
    auto b2 = try_build_crl(*t.b.svc);
    BOOST_REQUIRE(b2);
    BOOST_TEST((*b2)->crl_number == 2u);
    store_change stale;
    stale.seq = t.b.svc->applied_seq() + 100;
    stale.crl_published = true;
    // What the store publishes now is B's own 2: reading it changes nothing.
    auto step = t.b.svc->apply_changes({stale});
    BOOST_REQUIRE(step);
    BOOST_REQUIRE(step->commit(step->work()));
    BOOST_TEST(t.b.svc->current_crl() == *b2);
}

BOOST_AUTO_TEST_CASE(a_published_crl_not_signed_by_the_ca_is_not_served) {
    two_instances t;
    // Another CA's CRL in the store (a misconfigured instance): B reads it and refuses it.
    auto rng = seeded_rng(99);
    ca_options opts;
    opts.type = key_type::ec_p256;
    auto other = certificate_authority::create(opts, t0 - 24h, rng);
    BOOST_REQUIRE(other);
    crl_params p;
    p.crl_number = 50;
    p.this_update = t0;
    p.next_update = t0 + 24h;
    auto foreign = build_crl(*other, {}, p);
    BOOST_REQUIRE(foreign);
    memory_repository intruder(t.store);
    auto sign = [&](std::uint64_t) -> result<built_crl> { return *foreign; };
    BOOST_REQUIRE(intruder.publish_next_crl(1, t.store.seq(), sign));
    BOOST_TEST(t.b.svc->current_crl() == nullptr);
    auto changes = std::vector<store_change>{};
    store_change c;
    c.seq = t.store.seq();
    c.crl_published = true;
    changes.push_back(c);
    auto step = t.b.svc->apply_changes(std::move(changes));
    BOOST_REQUIRE(step);
    auto r = step->commit(step->work());
    BOOST_TEST(!r);
    BOOST_TEST(t.b.svc->current_crl() == nullptr);
}

BOOST_AUTO_TEST_CASE(changes_at_or_below_the_applied_sequence_are_skipped) {
    two_instances t;
    create_certificate(*t.a.svc, "z");
    t.b.deliver();
    const auto applied = t.b.svc->applied_seq();
    BOOST_TEST(applied == t.store.seq());
    // A stale copy of z (an older delivery replayed) does not overwrite what B has.
    auto old = t.b.svc->get("z")->record;
    old.notes = "stale";
    store_change c;
    c.seq = applied;
    c.record = old;
    BOOST_TEST(!t.b.svc->apply_changes({c}));
    BOOST_TEST(t.b.svc->get("z")->record.notes.empty());
    // An instance started after the change loads it and counts it applied.
    instance late(t.store, t.ca, t.now, 3);
    BOOST_TEST(late.svc->applied_seq() == t.store.seq());
    BOOST_TEST(late.svc->get("z").has_value());
    BOOST_TEST(late.deliver() == 0u);
}

BOOST_AUTO_TEST_CASE(a_renewal_on_one_instance_moves_the_serial_owner_on_the_other) {
    two_instances t;
    const auto first = create_certificate(*t.a.svc, "r");
    t.b.deliver();
    auto renewed = run_sync(t.a.svc->stage_renew("r", 0, system_principal("tester")));
    BOOST_REQUIRE(renewed);
    t.b.deliver();
    auto cur = t.b.svc->serial_owners()->get(renewed->record.serial_number);
    BOOST_REQUIRE(cur);
    BOOST_TEST(cur->identifier == "r");
    BOOST_TEST(cur->current);
    auto old = t.b.svc->serial_owners()->get(first.record.serial_number);
    BOOST_REQUIRE(old);
    BOOST_TEST(!old->current);
    BOOST_TEST(t.b.svc->get("r")->record.serial_number == renewed->record.serial_number);
}

BOOST_AUTO_TEST_CASE(only_one_instance_gets_the_sweep_lease) {
    two_instances t;
    auto la = t.a.svc->try_lead("sweep");
    auto lb = t.b.svc->try_lead("sweep");
    BOOST_REQUIRE(la);
    BOOST_REQUIRE(lb);
    BOOST_TEST(*la != nullptr);
    BOOST_TEST(*lb == nullptr);
    // Another task is leased independently.
    auto other = t.b.svc->try_lead("crl-refresh");
    BOOST_REQUIRE(other);
    BOOST_TEST(*other != nullptr);
    // Released (A done, or A gone): B takes over on its next attempt.
    la->reset();
    auto lb2 = t.b.svc->try_lead("sweep");
    BOOST_REQUIRE(lb2);
    BOOST_TEST(*lb2 != nullptr);
    auto la2 = t.a.svc->try_lead("sweep");
    BOOST_REQUIRE(la2);
    BOOST_TEST(*la2 == nullptr);
}

BOOST_AUTO_TEST_CASE(a_store_of_its_own_grants_every_lease_and_never_refuses_a_crl) {
    memory_repository solo;
    auto l1 = solo.try_lead("sweep");
    BOOST_REQUIRE(l1);
    BOOST_TEST(*l1 != nullptr);
    // The port's defaults (the filesystem store): always granted.
    struct plain final : cert_repository {
        result<void> create(const cert_record&, const cert_files&) override { return {}; }
        result<void> replace(const cert_record&, const cert_files&) override { return {}; }
        result<void> write_metadata(const cert_record&) override { return {}; }
        result<std::string> read_file(cert_usage, const std::string&, file_kind) const override { return {}; }
        result<load_report> load_all(unsigned) override { return load_report{}; }
        result<crl_state> load_crl_state() const override { return crl_state{}; }
        result<void> save_crl_state(const crl_state& s) override {
            kept = s.crl_number;
            return {};
        }
        result<void> publish_crl(std::string_view, std::string_view) override { return {}; }
        std::optional<std::pair<std::string, std::string>> published_crl() const override { return {}; }
        std::optional<renewal_summary> load_last_sweep() const override { return {}; }
        result<void> save_last_sweep(const renewal_summary&) override { return {}; }
        std::optional<std::string> io_error() const override { return {}; }
        std::optional<std::string> problem() const override { return {}; }
        std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const override { return {}; }
        result<void> save_ocsp_responder(std::string_view, std::string_view) override { return {}; }
        result<void> save_job_input(const std::string&, const job_input&) override { return {}; }
        result<job_input> load_job_input(const std::string&) const override { return job_input{}; }
        result<void> save_job(const job_record&) override { return {}; }
        std::vector<job_record> load_jobs() const override { return {}; }
        result<void> remove_job(const std::string&) override { return {}; }
        std::uint64_t kept = 0;
    } p;
    auto a = p.try_lead("sweep"), b = p.try_lead("sweep");
    BOOST_REQUIRE(a);
    BOOST_REQUIRE(b);
    BOOST_TEST(*a != nullptr);
    BOOST_TEST(*b != nullptr);
    auto crl = p.publish_next_crl(5, 0, [](std::uint64_t n) -> result<built_crl> {
        built_crl c;
        c.crl_number = n;
        return c;
    });
    BOOST_REQUIRE(crl);
    BOOST_TEST(crl->crl_number == 5u);
    BOOST_TEST(p.kept == 5u);
}
