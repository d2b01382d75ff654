// The certificate service end to end on a real data dir, with a controllable clock:
// lifecycle, CRL number across restarts, audit chain through the CLI, CA backup/restore.
#define BOOST_TEST_MODULE service
#include "core/tar.hpp"
#include <boost/test/unit_test.hpp>

#include "storage/audit_log.hpp"
#include "storage/layout.hpp"
#include "app/bootstrap.hpp"
#include "app/config.hpp"
#include "core/keys.hpp"
#include "core/service.hpp"
#include "storage/ca_files.hpp"
#include "storage/fs_store.hpp"
#include "support/print.hpp"
#include "support/tools.hpp"

#include <sys/stat.h>

#include <fstream>
#include <memory>

using namespace certmate;
namespace fs = std::filesystem;
using certmate::test::run;
using certmate::test::temp_dir;

namespace {

constexpr auto day = std::chrono::hours(24);

// A data dir with an EC CA (fast) and a service whose clock the test moves.
struct fixture {
    temp_dir dir;
    app::config cfg;
    std::shared_ptr<time_point> now = std::make_shared<time_point>(std::chrono::system_clock::now());
    std::shared_ptr<storage::audit_log> audit_log;
    std::unique_ptr<cert_service> svc;

    explicit fixture(std::vector<std::string> extra = {}) {
        std::vector<std::string> o = {"--storage.data_dir",
                                      dir.path().string(),
                                      "--ca.key_type",
                                      "ec-p384",
                                      "--issuance.default_key_type",
                                      "ec-p256"};
        o.insert(o.end(), extra.begin(), extra.end());
        cfg = app::load_config({}, o);
        auto rep = app::init_data_dir(cfg, {});
        BOOST_REQUIRE_MESSAGE(rep, "init failed");
        open();
    }

    void open() {
        storage::layout l{cfg.data_dir};
        auto ca = storage::load_ca(l, app::ca_passphrase(cfg));
        BOOST_REQUIRE(ca);
        auto audit = storage::audit_log::open(l.audit_log(), [n = now] { return *n; });
        BOOST_REQUIRE(audit);
        audit_log = std::shared_ptr<storage::audit_log>(std::move(*audit));
        svc = std::make_unique<cert_service>(
            *ca, std::make_unique<storage::fs_store>(l), audit_log, cfg.service, [n = now] { return *n; },
            openssl_rng());
        BOOST_REQUIRE(svc->load());
    }

    storage::layout paths() const { return storage::layout{cfg.data_dir}; }

    cert_view create(const std::string& id, cert_usage usage = cert_usage::api_mtls) {
        create_request r;
        r.identifier = id;
        r.subject.common_name = id + "@example.com";
        r.subject.email = id + "@example.com";
        r.subject.organization = "ACME Corp";
        r.usage = usage;
        auto v = run_sync(svc->stage_create(r, system_principal("tester", "127.0.0.1")));
        BOOST_REQUIRE_MESSAGE(v.has_value(), "create " + id + " failed: " + (v ? "" : v.error().message));
        return *v;
    }

    fs::path cert_file(const cert_view& v) const {
        return paths().cert_dir(v.record.usage, v.record.identifier) / "cert.crt";
    }

    std::size_t audit_lines() const {
        std::ifstream in(paths().audit_log());
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);) n += !line.empty();
        return n;
    }

    std::shared_ptr<const built_crl> build_crl_now(bool force = true) {
        auto st = svc->stage_crl_build(force);
        BOOST_REQUIRE(st);
        auto r = st->commit(st->work());
        BOOST_REQUIRE(r);
        return *r;
    }
};

std::string openssl_verify(const fs::path& ca, const fs::path& cert, const fs::path* crl = nullptr) {
    std::string cmd = "openssl verify -CAfile " + ca.string();
    if (crl) cmd += " -crl_check -CRLfile " + crl->string();
    return run(cmd + " " + cert.string()).output;
}

} // namespace

BOOST_AUTO_TEST_CASE(create_get_list_revoke_renew) {
    fixture f;
    auto a = f.create("alice");
    auto b = f.create("bob", cert_usage::vpn);
    BOOST_TEST(a.status == cert_status::active);
    BOOST_TEST(!a.certificate_pem.empty());
    BOOST_TEST(a.record.has_private_key);
    BOOST_TEST(openssl_verify(f.paths().ca_cert(), f.cert_file(a)).find(": OK") != std::string::npos);

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
    const auto old_key = test::read_text(f.paths().cert_dir(cert_usage::vpn, "bob") / "cert.key");
    auto rn = run_sync(f.svc->stage_renew("bob", 0, {}));
    BOOST_REQUIRE(rn);
    BOOST_TEST(rn->record.serial_number != b.record.serial_number);
    BOOST_TEST(rn->record.subject.common_name == b.record.subject.common_name);
    BOOST_REQUIRE(rn->record.history.size() == 1u);
    BOOST_TEST(rn->record.history[0].serial_number == b.record.serial_number);
    BOOST_TEST(test::read_text(f.paths().cert_dir(cert_usage::vpn, "bob") / "cert.key") != old_key);
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
    BOOST_TEST(!fs::exists(f.paths().cert_dir(cert_usage::api_mtls, "device-7") / "cert.key"));
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
    BOOST_TEST(!fs::exists(f.paths().cert_dir(cert_usage::api_mtls, "garbage")));
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
    fs::remove(f.paths().cert_dir(cert_usage::api_mtls, "broken") / "cert.csr");
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
    // The failure was audited as auto_renew failure; the run is recorded under state/.
    auto log = test::read_text(f.paths().audit_log());
    BOOST_TEST(log.find("\"operation\":\"auto_renew\"") != std::string::npos);
    BOOST_TEST(log.find("\"status\":\"failure\"") != std::string::npos);
    auto state = test::read_text(f.paths().state_dir() / "renewal_sweep.json");
    BOOST_TEST(state.find("\"renewed\":3") != std::string::npos, state);
    // A second sweep at the same time has nothing left but the broken one.
    auto again = f.svc->run_renewal_sweep_sync(system_principal("renewal"));
    BOOST_TEST(again.candidates == 1u);
}

BOOST_AUTO_TEST_CASE(crl_lists_revocations_and_number_grows_across_restart) {
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

    const auto crl_pem = f.paths().crl_pem();
    BOOST_TEST(test::read_text(crl_pem) == crl2->pem);
    BOOST_TEST(test::read_text(f.paths().crl_der()) == crl2->der);
    auto text = run("openssl crl -noout -text -in " + crl_pem.string()).output;
    BOOST_TEST(text.find("Key Compromise") != std::string::npos);
    BOOST_TEST(text.find("Certificate Hold") != std::string::npos);
    BOOST_TEST(run("openssl crl -noout -CAfile " + f.paths().ca_cert().string() + " -in " + crl_pem.string())
                   .output.find("verify OK") != std::string::npos);
    BOOST_TEST(openssl_verify(f.paths().ca_cert(), f.cert_file(bad), &crl_pem).find("revoked") != std::string::npos);
    BOOST_TEST(openssl_verify(f.paths().ca_cert(), f.cert_file(good), &crl_pem).find(": OK") != std::string::npos);

    // Restart: the CRL is served from disk, and the next one carries a larger number.
    f.svc.reset();
    f.open();
    BOOST_REQUIRE(f.svc->current_crl());
    BOOST_TEST(f.svc->current_crl()->crl_number == 2u);
    auto crl3 = f.build_crl_now();
    BOOST_TEST(crl3->crl_number == 3u);
    (void)held;
}

BOOST_AUTO_TEST_CASE(thousand_certificates_survive_a_restart) {
    fixture f;
    std::map<std::string, cert_record> before;
    for (int i = 0; i < 1000; ++i) {
        create_request r;
        r.identifier = "c" + std::to_string(i);
        r.subject.common_name = "client " + std::to_string(i);
        r.usage = all_usages[i % 3];
        r.key = key_type::ed25519;
        auto v = run_sync(f.svc->stage_create(r, {}));
        BOOST_REQUIRE(v);
        before[v->record.identifier] = v->record;
    }
    f.svc.reset();
    f.open();
    BOOST_TEST(f.svc->size() == 1000u);
    for (const auto& [id, rec] : before) {
        auto got = f.svc->get(id);
        BOOST_REQUIRE(got);
        BOOST_TEST((got->record == rec), "metadata of " << id << " changed across restart");
    }
}

BOOST_AUTO_TEST_CASE(every_mutation_is_audited_and_cli_verifies_the_chain) {
    fixture f;
    const auto start = f.audit_lines(); // ca_init
    BOOST_TEST(start == 1u);
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

    const std::string verify = test::certmate_binary() + " audit verify --data-dir " + f.dir.path().string();
    auto ok = run(verify);
    BOOST_TEST(ok.exit_code == 0);
    BOOST_TEST(ok.output.find("ok " + std::to_string(start + 6) + " entries") != std::string::npos, ok.output);

    // Edit one byte of line 3: verify names line 3.
    const auto log = f.paths().audit_log();
    std::string text = test::read_text(log);
    std::size_t pos = 0;
    for (int i = 0; i < 2; ++i) pos = text.find('\n', pos) + 1;
    auto at = text.find("\"resource_id\":\"a1\"", pos);
    BOOST_REQUIRE(at != std::string::npos);
    text[at + 16] = 'b';
    test::write_text(log, text);
    auto broken = run(verify);
    BOOST_TEST(broken.exit_code != 0);
    BOOST_TEST(broken.output.find("line 3") != std::string::npos, broken.output);
}

BOOST_AUTO_TEST_CASE(fail_closed_when_the_audit_log_cannot_be_written) {
    fixture f;
    f.create("before");
    f.audit_log->simulate_failure(true);
    create_request r;
    r.identifier = "after-1";
    r.subject.common_name = "after";
    // Write-ahead (issue 10.3): the entry cannot be written, so nothing is created.
    auto created = run_sync(f.svc->stage_create(r, {}));
    BOOST_REQUIRE(!created);
    BOOST_TEST(int(created.error().code) == int(errc::audit_unavailable));
    BOOST_TEST(!f.svc->audit_healthy());
    BOOST_TEST(!f.svc->get("after-1"));
    auto revoked = run_sync(f.svc->stage_revoke("before", {}, {}));
    BOOST_REQUIRE(!revoked);
    BOOST_TEST(int(revoked.error().code) == int(errc::audit_unavailable));
    BOOST_TEST(f.svc->get("before")->status == cert_status::active);
    auto key = run_sync(f.svc->stage_download("before", cert_service::file_format::key_pem, {}));
    BOOST_REQUIRE(!key);
    BOOST_TEST(int(key.error().code) == int(errc::audit_unavailable));
}

BOOST_AUTO_TEST_CASE(keys_are_0600_and_encrypted_ca_key_with_passphrase) {
    temp_dir pass;
    test::write_text(pass / "pw", "correct horse battery staple\n");
    fixture f({"--ca.passphrase_file", (pass / "pw").string()});
    auto a = f.create("k1");
    struct stat st {};
    BOOST_REQUIRE(::stat((f.paths().cert_dir(cert_usage::api_mtls, "k1") / "cert.key").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_REQUIRE(::stat(f.paths().ca_key().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_REQUIRE(::stat(f.paths().admin_token().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    const auto ca_key = test::read_text(f.paths().ca_key());
    BOOST_TEST(ca_key.find("BEGIN ENCRYPTED PRIVATE KEY") != std::string::npos);
    BOOST_TEST(ca_key.find("BEGIN PRIVATE KEY") == std::string::npos);
    // Without the passphrase the CA does not load.
    auto no = storage::load_ca(f.paths(), std::nullopt);
    BOOST_REQUIRE(!no);
    BOOST_TEST(int(no.error().code) == int(errc::bad_passphrase));
    (void)a;
}

BOOST_AUTO_TEST_CASE(backup_restore_into_an_empty_dir_verifies_earlier_certificates) {
    fixture f;
    auto a = f.create("pre-backup");
    temp_dir out;
    const auto archive = out / "ca.tar";
    const std::string bin = test::certmate_binary();
    auto b = run(bin + " ca backup --out " + archive.string() + " --data-dir " + f.dir.path().string());
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.output);
    struct stat st {};
    BOOST_REQUIRE(::stat(archive.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(run("tar tf " + archive.string()).output.find("certs/ca/ca.key") != std::string::npos);

    temp_dir fresh;
    auto r = run(bin + " ca restore --in " + archive.string() + " --data-dir " + fresh.path().string());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto restored_ca = fresh / "certs/ca/ca.crt";
    BOOST_TEST(openssl_verify(restored_ca, f.cert_file(a)).find(": OK") != std::string::npos);
    // The restored key signs: a service on the restored dir issues certificates the old CA file verifies.
    BOOST_TEST(storage::load_ca(storage::layout{fresh.path()}, std::nullopt).has_value());

    // A different CA is not replaced without --force.
    fixture other;
    auto refuse = run(bin + " ca restore --in " + archive.string() + " --data-dir " + other.dir.path().string());
    BOOST_TEST(refuse.exit_code != 0);
    BOOST_TEST(refuse.output.find("different CA") != std::string::npos, refuse.output);
    // An archive whose key belongs to another CA is refused, and nothing is written.
    const auto mixed = out / "mixed.tar";
    test::write_text(mixed, tar_pack({{"certs/ca/ca.crt", test::read_text(f.paths().ca_cert())},
                                      {"certs/ca/ca.key", test::read_text(other.paths().ca_key())}}));
    temp_dir empty;
    auto bad = run(bin + " ca restore --in " + mixed.string() + " --data-dir " + empty.path().string());
    BOOST_TEST(bad.exit_code != 0);
    BOOST_TEST(bad.output.find("unusable") != std::string::npos, bad.output);
    BOOST_TEST(!fs::exists(empty / "certs/ca/ca.crt"));

    auto forced =
        run(bin + " ca restore --force --in " + archive.string() + " --data-dir " + other.dir.path().string());
    BOOST_TEST(forced.exit_code == 0, forced.output);
    BOOST_TEST(test::read_text(other.paths().ca_cert()) == test::read_text(f.paths().ca_cert()));
}

BOOST_AUTO_TEST_CASE(config_rejects_unknown_keys_and_bad_values_naming_them) {
    temp_dir t;
    // Loading `text` as `name` throws an error naming `where` (file:line) and `key`.
    auto rejected = [&](const std::string& name, const std::string& text, const std::string& what,
                        const std::string& where, const std::string& key) {
        test::write_text(t / name, text);
        try {
            (void)app::load_config(t / name, {});
            BOOST_FAIL("accepted " + what);
        } catch (const error_exception& e) {
            BOOST_TEST(e.err.message.find(where) != std::string::npos, e.err.message);
            BOOST_TEST(e.err.message.find(key) != std::string::npos, e.err.message);
        }
    };
    rejected("c.conf", "[server]\nhttp_listen = 127.0.0.1:0\n[rate_limit]\ncreate = -5\n", "a negative rate limit",
             "c.conf:4", "rate_limit.create");
    rejected("d.conf", "[server]\nhttp_lisen = 127.0.0.1:0\n", "a typo", "d.conf:2", "http_lisen");
}
