// The certificate service: the lifecycle of client certificates over a cert_repository, the
// in-memory index, the audit log and the CRL state (docs/architecture.md).
//
// Threading contract. Every member marked [strand] touches mutable state and must be called
// from one serialising context at a time (the core strand in the server; the only thread in
// the CLI and unit tests). A mutation is staged: `stage_*()` [strand] validates and reserves
// (identifier, serial), and returns a `staged<T>` whose `work` is heavy and touches no service
// state (key generation, signing, file writes, fsync, audit append: run it on the thread pool)
// and whose `commit` applies the outcome to the index [strand]. `commit` must always run, also
// when `work` failed, since it releases the reservation. `run_sync()` runs the three steps in
// sequence for callers without executors.
// No Asio here: clock and RNG are parameters.
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"
#include "core/crl.hpp"
#include "core/issue.hpp"
#include "core/ocsp_table.hpp"
#include "core/renewal_summary.hpp"
#include "core/serial_owners.hpp"
#include "core/audit_sink.hpp"
#include "core/cert_index.hpp"
#include "core/cert_repository.hpp"
#include "core/ocsp.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace certmate {

struct parsed_csr;

// Who may obtain serverAuth certificates through the API (SECURITY.md "serverAuth"):
// admins only, for names matching `patterns` ("host.example.com" exactly, "*.example.com" one
// label under it; a wildcard name only where a pattern is that same wildcard), never a name in
// `reserved` (the CA's own listener: tls.cert's names and public_url's host).
struct server_name_policy {
    std::vector<std::string> patterns;
    std::vector<std::string> reserved;
};

struct service_config {
    issuance_policy issuance;
    server_name_policy server_names;
    key_type default_key_type = key_type::rsa2048;
    int expiring_days = 30; // "expiring soon" in stats and status=expiring
    int default_renewal_threshold_days = renewal_settings{}.renewal_threshold_days;
    bool revoke_superseded = false; // renewal revokes the old certificate as `superseded`
    std::chrono::hours crl_validity{24};
    unsigned load_threads = 4;
};

// Who asks: recorded in the audit log as `user` and `actor`, and the role that bounds what it
// may grant (SECURITY.md "Roles"). The default is the server itself (sweep, CLI): admin.
struct principal {
    enum class kind { system, token, certificate, anonymous };
    std::string user = "system"; // token name, certificate identifier, "system", "cli"
    std::string ip;
    kind actor = kind::system;
    std::string cert_serial;         // kind::certificate: the serial that authenticated (decimal)
    api_role role = api_role::admin; // the caller's role (anonymous callers: viewer)
    std::string job;                 // the batch job acting for the caller (audited as details.job)
};
// The server itself acting (the sweep, a CLI command, tests): kind system, role admin.
inline principal system_principal(std::string name, std::string ip = {}) {
    principal p;
    p.user = std::move(name);
    p.ip = std::move(ip);
    return p;
}
// `{"kind":"token","name":..}`, `{"kind":"certificate","id":..,"serial":..}`, `{"kind":"system","name":..}`.
boost::json::object actor_json(const principal& who);
std::string_view to_string(principal::kind k) noexcept;

struct create_request {
    std::string identifier; // generated (cert-<12 hex>) when empty
    subject_fields subject; // common_name required unless a CSR supplies it
    subject_alt_names sans;
    cert_usage usage = cert_usage::api_mtls;
    std::optional<key_type> key; // generated key type (not with csr)
    std::string csr_pem;         // when set: no key is generated
    int validity_days = 0;       // 0 = policy default
    std::vector<std::string> extra_eku;
    std::string notes;
    std::optional<bool> renewal_enabled;
    std::optional<int> renewal_threshold_days;
    std::optional<api_role> role;
};

struct update_request {
    std::optional<std::string> notes;
    std::optional<bool> renewal_enabled;
    std::optional<int> renewal_threshold_days;
    std::optional<std::optional<api_role>> role; // set: some(role) or some(nullopt) = clear
};

// A certificate as answered: its metadata, status now, and (create/renew) the PEM.
struct cert_view {
    cert_record record;
    cert_status status = cert_status::active;
    std::string certificate_pem;
};

struct revoke_request {
    revocation_reason reason = revocation_reason::unspecified;
};

struct downloaded_file {
    std::string data;
    std::string identifier;
};

template <class T>
struct staged {
    std::function<result<T>()> work;            // [pool]
    std::function<result<T>(result<T>)> commit; // [strand]
};

template <class T>
result<T> run_sync(result<staged<T>> s) {
    if (!s) return s.error();
    return s->commit(s->work());
}

class cert_service {
public:
    cert_service(std::shared_ptr<const certificate_authority> ca, std::unique_ptr<cert_repository> store,
                 std::shared_ptr<audit_sink> audit, service_config cfg, clock_fn clock, rng_fn rng);

    // [strand] Loads every certificate into the index (on `cfg.load_threads` workers) and the
    // persisted CRL state; logs leftovers removed. The report's records are moved into the index.
    result<load_report> load();

    // ---- mutations (staged) ----
    result<staged<cert_view>> stage_create(create_request req, const principal& who);
    // [any thread] Every check stage_create makes that needs no index (policy, CSR, roles,
    // identifier syntax and the reserved names batch, stats, ca and new): batch rows are validated
    // with it before anything is created.
    result<void> validate_create(create_request req, const principal& who) const;
    // [strand] The positions in `ids` of identifiers taken (or being created) now.
    std::vector<std::size_t> identifiers_in_use(const std::vector<std::string>& ids) const;
    // [strand] A fresh identifier (cert-<12 hex>), not taken now.
    std::string new_identifier() { return generate_identifier(); }
    result<staged<cert_view>> stage_revoke(const std::string& id, revoke_request req, const principal& who);
    result<staged<cert_view>> stage_unhold(const std::string& id, const principal& who);
    // `validity_days` 0 = the certificate's current lifetime, capped by policy. `automatic`
    // audits as auto_renew.
    result<staged<cert_view>> stage_renew(const std::string& id, int validity_days, const principal& who,
                                          bool automatic = false);
    result<staged<cert_view>> stage_update(const std::string& id, update_request req, const principal& who);
    // Private key (no_private_key for CSR-issued), certificate PEM/DER, CSR, chain (leaf + CA).
    // Key downloads are audited.
    enum class file_format { cert_pem, cert_der, key_pem, csr_pem, chain_pem };
    result<staged<downloaded_file>> stage_download(const std::string& id, file_format f, const principal& who);
    // The certificate, chain and (with `keys`, where `who` may have it) private key of each of
    // `ids` that exists, as archive members "<id>/<id>.crt", "<id>/<id>-chain.pem", "<id>/<id>.key",
    // and "ca.crt". The keys are audited in one `download` entry before they are handed out.
    result<staged<std::vector<std::pair<std::string, std::string>>>> stage_bundle(const std::vector<std::string>& ids,
                                                                                  bool keys, const principal& who);
    result<staged<downloaded_file>> stage_pkcs12(const std::string& id, std::string password, const principal& who);

    // ---- CRL ----
    // [strand] Stages a CRL build when one is needed (after revocations, or before nextUpdate
    // runs out), or nothing when as many as may run are running (one of them re-runs: bursts
    // coalesce). Two may run at once where the store allows it (crl_builds_may_overlap); the one
    // staged later gets the higher number, and a CRL is served only above the current one's.
    // The store numbers, keeps and publishes it in one step (cert_repository::publish_next_crl);
    // errc::conflict when another instance's change is not applied here yet: nothing is
    // published, and the CRL stays marked for the build after that change arrives.
    std::optional<staged<std::shared_ptr<const built_crl>>> stage_crl_build(bool force = false);
    // [any thread] The current CRL (null before the first build).
    std::shared_ptr<const built_crl> current_crl() const { return crl_.load(); }
    // [strand] A build is wanted: revocation state changed since the last CRL, and, when the last
    // build was refused because another instance's change was missing (errc::conflict), a newer
    // change has been applied since (building before that would be refused again).
    bool crl_rebuild_needed() const { return crl_dirty_ && (!crl_conflict_at_ || applied_seq_ > *crl_conflict_at_); }
    // [strand] The CRL served lists every change committed here: one is served, none is pending
    // and no build runs (a change that left the CRL entries as they were needs no build).
    bool crl_settled() const { return !crl_dirty_ && crl_builds_ == 0 && current_crl() != nullptr; }
    // [strand] True when nextUpdate is within `margin` (or no CRL exists).
    bool crl_due(std::chrono::seconds margin) const;

    // ---- several instances on one store (docs/high-availability.md) ----
    // [strand] Applies changes another instance committed (cert_repository::watch_changes) as a
    // local commit applies its own: index, OCSP table, serial owners, CRL entries; a change in
    // revocation state marks the CRL for a rebuild. Not audited here: the instance that made the
    // change audited it. Changes at or below the sequence applied already are skipped. When one
    // says a CRL was published, the staged step reads it from the store and checks it [pool] and
    // serves it when its number is above the current CRL's [strand].
    std::optional<staged<std::shared_ptr<const built_crl>>> apply_changes(std::vector<store_change> changes);
    // [strand] The newest change of another instance applied (the CRL build's `applied_seq`).
    std::uint64_t applied_seq() const { return applied_seq_; }
    // [any thread, once, after load()] Starts the store's delivery of other instances' changes;
    // `apply` runs on a thread of the store's and must only hand them to the strand.
    void watch_changes(std::function<void(std::vector<store_change>)> apply) {
        store_->watch_changes(std::move(apply));
    }
    // [any thread, blocking: the pool] The lease on a periodic task (cert_repository::try_lead):
    // nullptr while another instance leads it. Release it (destroy it) on the pool too.
    result<std::unique_ptr<task_lease>> try_lead(std::string_view task) const { return store_->try_lead(task); }
    // Whether other instances share the store (cert_repository::shared).
    bool shared_store() const { return store_->shared(); }
    // [any thread] cert_repository::crl_served_by_one_instance(): a revocation may be acknowledged
    // before its CRL is built, and each CRL request waits for the changes acknowledged (net/).
    bool crl_served_here_only() const { return store_->crl_served_by_one_instance(); }
    // [any thread, blocking: the pool] cert_repository::find_records.
    result<std::vector<cert_record>> find_records(const std::vector<std::string>& ids) const {
        return store_->find_records(ids);
    }

    // ---- the start-up snapshot (docs/architecture.md "Start-up snapshot") ----
    // [strand] Stages a snapshot of every record when one is due: certificate writes happened
    // since the last one kept (or the start did not come from an up-to-date snapshot), none since
    // `settle` (a first call only notes the time, unless `force`), none in flight, no snapshot
    // being written. `work` [pool] encodes nothing: the records are encoded here (a few ms at
    // 30,000) and written by the store; true when kept.
    std::optional<staged<bool>> stage_snapshot(std::chrono::seconds settle, bool force = false);

    // ---- reads [strand] ----
    result<cert_view> get(const std::string& id) const;
    list_page list(const list_query& q) const;
    // The page's records handed to `visit` in order with their status at the time the query used,
    // borrowed for the call, not copied (list_page::items stays empty): the list answer writes
    // them straight into its body.
    list_page list(const list_query& q, const std::function<void(const cert_record&, cert_status)>& visit) const;
    cert_stats stats() const;
    // Identifiers the sweep would renew at `now`.
    std::vector<std::string> renewal_plan(time_point now) const;
    std::size_t size() const { return index_.size(); }

    // Whole sweep, synchronously (CLI, tests): every candidate at clock() renewed, failures reported,
    // the summary recorded in state/renewal_sweep.json. The server's sweep (net/) drives the same
    // steps below through its strand and pool.
    renewal_summary run_renewal_sweep_sync(const principal& who);

    // ---- the renewal sweep's steps ----
    struct renewal_sweep {
        renewal_summary summary;       // started_at and candidates set
        std::vector<std::string> plan; // the identifiers to renew, in order
    };
    // [strand] Starts a sweep at now(): the candidates due then.
    renewal_sweep begin_renewal_sweep() const;
    // [strand] Stages one candidate's automatic renewal (default validity).
    result<staged<cert_view>> stage_sweep_renewal(const std::string& id, const principal& who) {
        return stage_renew(id, 0, who, true);
    }
    // [any thread] Counts one candidate's outcome into the summary.
    static void count_renewal(renewal_summary& sum, const std::string& id, const result<cert_view>& r);
    // [any thread, blocking: the pool] Records a finished sweep and logs its counts; a failure to
    // record is logged, not returned (the renewals are done either way).
    void finish_renewal_sweep(const renewal_summary& sum) const;

    // [any thread, blocking] Appends `e` before what it records happens: errc::audit_unavailable
    // when it cannot be written (SECURITY.md "Audit").
    result<void> audit_before(const audit_entry& e) const;
    // Appends an audit line (denied requests, downloads); errors logged, not returned.
    // [any thread] Safe from the pool; blocks on the fsync.
    void audit(const audit_entry& e) const;

    // ---- ports, through the service only (docs/architecture.md) ----
    // [any thread] What /health answers: the CA's validity, the audit log, the CRL's freshness and
    // the store's own report.
    struct health_check {
        std::string name;
        bool ok = true;
        std::string problem;
    };
    std::vector<health_check> health() const;
    bool audit_healthy() const { return audit_->healthy(); }
    // [any thread] The store's connection state (several instances: docs/high-availability.md).
    store_status storage_status() const { return store_->status(); }
    // [any thread] The audit log's reads; they read the file: call them on the pool.
    result<std::vector<boost::json::object>> audit_entries(const audit_query& q) const { return audit_->query(q); }
    audit_verify_result audit_verify() const { return audit_->verify(); }
    std::string audit_public_key() const { return audit_->public_key_pem(); }
    result<audit_export> audit_export_range(std::uint64_t from, std::optional<std::uint64_t> to) const {
        return audit_->export_range(from, to);
    }
    // Forces the audit log to retry now (SIGHUP); a signed checkpoint at a clean shutdown.
    result<void> reopen_audit() { return audit_->reopen(); }
    result<bool> audit_checkpoint(std::string reason) { return audit_->checkpoint(std::move(reason)); }
    // The renewal sweep's last record (nullopt: none yet).
    std::optional<renewal_summary> last_sweep() const { return store_->load_last_sweep(); }
    // [any thread, blocking: the pool] The delegated OCSP responder, issued anew (signing, a key, a
    // write) when missing or within `renew_before` of its expiry. One caller at a time.
    result<std::shared_ptr<const ocsp_responder>> ensure_ocsp_responder(std::chrono::hours renew_before) const {
        return certmate::ensure_ocsp_responder(*store_, *ca_, clock_(), renew_before, rng_);
    }

    // [any thread, blocking: the pool] Batch jobs as the repository keeps them (core/job.hpp).
    result<void> save_job_input(const std::string& id, const job_input& in) const {
        return store_->save_job_input(id, in);
    }
    result<job_input> load_job_input(const std::string& id) const { return store_->load_job_input(id); }
    result<void> save_job(const job_record& j) const { return store_->save_job(j); }
    std::vector<job_record> load_jobs() const { return store_->load_jobs(); }
    result<void> remove_job(const std::string& id) const { return store_->remove_job(id); }

    // [any thread] The statuses OCSP answers from, kept in step with the index by every commit.
    std::shared_ptr<const ocsp_table> ocsp_statuses() const { return ocsp_; }
    // [any thread] Serial -> identifier and api_role, for mTLS; kept in step like ocsp_statuses().
    std::shared_ptr<const serial_owner_table> serial_owners() const { return owners_; }

    const certificate_authority& ca() const { return *ca_; }
    std::shared_ptr<const certificate_authority> ca_ptr() const { return ca_; }
    const service_config& config() const { return cfg_; }
    time_point now() const { return clock_(); }

private:
    // The record a mutation may change: refused when the identifier is invalid or unknown, or
    // another mutation of it is in flight.
    result<const cert_record*> find_for_mutation(const std::string& id) const;
    // The checks of stage_create that need no index; fills `ireq`; the parsed CSR (null: none).
    result<std::shared_ptr<parsed_csr>> check_create(create_request& req, issue_request& ireq,
                                                     const principal& who) const;
    // A fresh random serial no certificate has or is being issued with.
    result<std::string> reserve_serial();
    std::string generate_identifier();
    cert_view view(const cert_record& r, std::string pem = {}) const;
    // Now, at the second precision metadata.json keeps.
    time_point stored_now() const;
    std::function<result<cert_view>(result<cert_view>)> commit_cert(std::string id, std::string serial,
                                                                    bool crl_affected);
    staged<cert_view> stage_metadata_change(cert_record updated, std::string operation, boost::json::object details,
                                            const principal& who, bool crl_affected);
    // Puts `rec` into the index, its serials' statuses into the OCSP table and their owner into
    // the serial owner table. True when the CRL entries the record contributes changed.
    bool index_record(cert_record rec);
    result<std::shared_ptr<const crl_signer>> crl_signer_for() const;

    std::shared_ptr<const certificate_authority> ca_;
    std::unique_ptr<cert_repository> store_;
    std::shared_ptr<audit_sink> audit_;
    service_config cfg_;
    clock_fn clock_;
    rng_fn rng_;

    cert_index index_;
    std::shared_ptr<ocsp_table> ocsp_ = std::make_shared<ocsp_table>();
    std::shared_ptr<serial_owner_table> owners_ = std::make_shared<serial_owner_table>();
    std::set<std::string> busy_ids_; // identifiers with a staged mutation in flight
    std::set<std::string> reserved_serials_;

    crl_entry_set crl_entries_;       // the revoked serials of the index, encoded [strand]
    std::size_t crl_bad_entries_ = 0; // entries that could not be encoded (fail every build)
    mutable std::mutex crl_signer_mu_;
    mutable std::shared_ptr<const crl_signer> crl_signer_;
    static constexpr std::uint64_t no_snapshot = ~std::uint64_t{0};
    std::uint64_t snapshot_at_ = no_snapshot;   // store_->write_count() of the last snapshot kept
    std::uint64_t snapshot_seen_ = no_snapshot; // write_count() at the last stage_snapshot() call
    time_point snapshot_seen_at_{};             // when it was first seen
    bool snapshot_running_ = false;

    std::atomic<std::shared_ptr<const built_crl>> crl_; // swapped whole
    std::uint64_t crl_number_ = 0;                      // last number persisted
    std::uint64_t crl_staged_number_ = 0;               // the number the last build staged asked for
    bool crl_dirty_ = true;
    // The last CRL build failed (not a deferral): no CRL lists the changes since, and where they
    // are acknowledged before their CRL (crl_served_by_one_instance) CRL requests get 503 until a
    // build succeeds. Set on the strand, read by health() on any thread.
    std::atomic<bool> crl_build_failing_{false};
    unsigned crl_builds_ = 0;                      // builds staged and not committed (at most 2, see stage_crl_build)
    std::uint64_t applied_seq_ = 0;                // newest change of another instance applied
    std::optional<std::uint64_t> crl_conflict_at_; // applied_seq_ of the last build refused as conflict
};

} // namespace certmate
