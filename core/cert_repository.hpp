// The repository port (docs/architecture.md): where certificates and the CA-wide state persist.
// core/ defines it, storage/ implements it (fs_store); a second backend (PostgreSQL) fits behind it.
// Thread-safety: implementations are safe for concurrent calls on different identifiers;
// calls on the same identifier are serialised by the caller (the core strand).
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"
#include "core/crl.hpp"
#include "core/job.hpp"
#include "core/ocsp.hpp"
#include "core/renewal_summary.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

struct cert_files {
    std::string cert_pem;
    std::optional<std::string> key_pem; // only when the key was generated here
    std::optional<std::string> csr_pem;
};

enum class file_kind { cert, key, csr };

// The CRL number last persisted and the validity of the CRL that carries it.
struct crl_state {
    std::uint64_t crl_number = 0;
    std::optional<time_point> this_update, next_update;
};

struct load_report {
    std::vector<cert_record> records;
    std::vector<std::string> removed_leftovers; // temp dirs and files of interrupted writes, removed
    std::vector<std::string> skipped;           // unreadable entries, with the reason (logged, not loaded)
    // The start-up snapshot (save_snapshot): used, with how many directories were read anew
    // because they changed since; or why it was not ("missing", "corrupt: ...", "stale: ...").
    bool from_snapshot = false;
    std::size_t replayed = 0;
    std::string snapshot_problem;
    // A shared store (docs/high-availability.md): the change sequence the records reflect, so
    // that watch_changes' deliveries at or below it are known to be applied already. 0 otherwise.
    std::uint64_t change_seq = 0;
};

// One change another instance committed to a shared store (docs/high-availability.md).
struct store_change {
    std::uint64_t seq = 0;             // the store's change sequence, increasing
    std::optional<cert_record> record; // a certificate as committed (create, replace, metadata)
    bool crl_published = false;        // a newer CRL was published: read published_crl()
};

// What a shared store reports for /health and /metrics (docs/high-availability.md).
struct store_status {
    bool shared = false;                            // several instances use this store
    std::optional<double> latency_seconds;          // of the last round trip of the change watch
    std::optional<time_point> last_heard;           // when the change watch last heard from the database
    std::uint64_t change_seq = 0;                   // newest change read here
    std::optional<double> notification_lag_seconds; // commit -> delivery here, of the last change delivered
    std::size_t pool_size = 0, pool_idle = 0, pool_in_use = 0;
    std::uint64_t pool_timeouts = 0, pool_opened = 0, pool_broken = 0;
};

// Held while this instance leads a periodic task; released when destroyed (or when the instance dies).
class task_lease {
public:
    virtual ~task_lease() = default;
};

class cert_repository {
public:
    virtual ~cert_repository() = default;
    // All or nothing: afterwards either the complete certificate exists or nothing does.
    // errc::already_exists if the identifier is taken (in any usage).
    virtual result<void> create(const cert_record& rec, const cert_files& files) = 0;
    // Many new certificates at once (`db import`, core/store_copy): as create() for each, in
    // order, stopping at the first failure (its error names the identifier); what was written
    // before it stays. This default calls create() per certificate; a store may group them
    // (pg_store: one transaction for the lot, a few statements in all).
    struct new_cert {
        const cert_record* rec = nullptr;
        cert_files files;
    };
    virtual result<void> create_many(const std::vector<new_cert>& certs);
    // Renewal: replaces certificate, key (if given; otherwise keeps the old one) and metadata, all or nothing.
    virtual result<void> replace(const cert_record& rec, const cert_files& files) = 0;
    // Atomically rewrites metadata.json only.
    virtual result<void> write_metadata(const cert_record& rec) = 0;
    // errc::not_found when absent (a CSR-issued certificate has no key).
    virtual result<std::string> read_file(cert_usage usage, const std::string& id, file_kind kind) const = 0;
    // Scans everything (using `threads` workers), removing leftovers of interrupted writes first.
    // With a start-up snapshot whose directories still match, only what changed is read.
    virtual result<load_report> load_all(unsigned threads) = 0;

    // ---- the start-up snapshot (docs/architecture.md "Start-up snapshot") ----
    // [any thread] How many certificate writes (create, replace, write_metadata) have started.
    virtual std::uint64_t write_count() const { return 0; }
    // [any thread, blocking: the pool] Keeps `records` (`count` records, each a varint length and
    // encode_record()) for the next load_all(). `at` is write_count() when they were encoded with no
    // write in flight; false (nothing kept) when a write started since.
    virtual result<bool> save_snapshot(const std::string& records, std::size_t count, std::uint64_t at) {
        (void)records, (void)count, (void)at;
        return false;
    }

    // ---- CA-wide state (safe from any thread; one writer at a time, the service's) ----
    // A zero state when none was saved yet.
    virtual result<crl_state> load_crl_state() const = 0;
    virtual result<void> save_crl_state(const crl_state& s) = 0;
    // Publishes a CRL where clients and the next start find it; published_crl() gives (DER, PEM).
    virtual result<void> publish_crl(std::string_view der, std::string_view pem) = 0;
    virtual std::optional<std::pair<std::string, std::string>> published_crl() const = 0;
    // The renewal sweep's last run (nullopt: never, or unreadable, which is logged).
    virtual std::optional<renewal_summary> load_last_sweep() const = 0;
    virtual result<void> save_last_sweep(const renewal_summary& s) = 0;

    // [any thread] The first write that took effect but whose durability is unknown (a directory
    // fsync failed after its rename: the operation reported success, since the change is visible),
    // kept until restart; nullopt when none. /health reports it.
    virtual std::optional<std::string> io_error() const = 0;
    // [any thread] Why the store cannot take writes now (unwritable, or io_error()); nullopt when it can.
    virtual std::optional<std::string> problem() const = 0;

    // The delegated OCSP responder's certificate and key, as PEM (nullopt: none kept, or unreadable).
    virtual std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const = 0;
    // Keeps a new responder: the key first (0600), so a kept certificate always has its key.
    virtual result<void> save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) = 0;

    // ---- batch jobs (core/job.hpp); safe from any thread, one writer per job ----
    // The rows of a job, kept once before it runs (atomically: all rows or none).
    virtual result<void> save_job_input(const std::string& job_id, const job_input& in) = 0;
    virtual result<job_input> load_job_input(const std::string& job_id) const = 0;
    // The job's document and progress, replaced atomically.
    virtual result<void> save_job(const job_record& j) = 0;
    // Every kept job, oldest first (an unreadable one is logged and skipped). At start-up only:
    // kept rows without a job document (never accepted) are removed.
    virtual std::vector<job_record> load_jobs() const = 0;
    // Forgets a finished job (retention).
    virtual result<void> remove_job(const std::string& job_id) = 0;

    // ---- several instances on one store (docs/high-availability.md) ----
    // The defaults are a store only this process writes (fs_store: the data dir's lock).
    //
    // Whether other instances may write this store too (its jobs, certificates and leases are shared).
    virtual bool shared() const { return false; }
    // [any thread, blocking: the pool] The records of those of `ids` the store keeps now, read from
    // the store itself (not an index that may lag another instance's commits). A store only this
    // process writes need not answer it (errc::internal): its caller's index is the store.
    virtual result<std::vector<cert_record>> find_records(const std::vector<std::string>& ids) const {
        (void)ids;
        return make_error(errc::internal, "find_records: not a shared store");
    }
    // [any thread, blocking: the pool] Publishes the next CRL as one step against the store:
    // picks its number (at least `at_least` and above every number the store has kept), calls
    // `sign` with it, and keeps the number, the validity and the CRL together, so the number only
    // grows and every instance serves the newest. `applied_seq` is the newest change of another
    // instance applied to the entries `sign` encodes: errc::conflict (nothing published, and
    // better before `sign`: no signature spent) when another instance committed a newer
    // certificate change, since that CRL could miss its revocation; catch up and build again.
    // (Another instance's CRL publication is no such change.) Once it returns the CRL may be
    // served: its number is durable and the next load finds a number at least as high; a store
    // may write copies of the CRL for others to read (fs_store's files) after it returned.
    virtual result<built_crl> publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                               const std::function<result<built_crl>(std::uint64_t number)>& sign) {
        (void)applied_seq;
        auto crl = sign(at_least);
        if (!crl) return crl.error();
        // The number is persisted before the CRL carrying it is published, so it only grows.
        if (auto w = save_crl_state(crl_state{crl->crl_number, crl->this_update, crl->next_update}); !w)
            return w.error();
        if (auto w = publish_crl(crl->der, crl->pem); !w) return w.error();
        return crl;
    }
    // Whether two publish_next_crl calls may run at once: true only for a store that numbers each
    // CRL `at_least` exactly (the caller stages them in number order) and never lets its kept
    // number go back when they finish out of order. A store that picks the number itself, in the
    // order calls reach it, would give an older build a higher number than a newer one.
    virtual bool crl_builds_may_overlap() const { return false; }
    // Whether every CRL clients fetch is served by this one process (docs/architecture.md "CRL
    // publication"): then a change may be acknowledged once durable, before a CRL lists it, since
    // each CRL request here first waits for the build of every change acknowledged (a stop in
    // between: cert_service::load() serves no kept CRL that misses one). Not so where other
    // instances serve the store's CRL too: they cannot know of a build pending here, so a
    // revocation's answer waits for its CRL. The default: true unless shared().
    virtual bool crl_served_by_one_instance() const { return !shared(); }
    // [any thread, non-blocking] The store's connection state; a store of this process only says
    // shared = false and nothing else.
    virtual store_status status() const { return {}; }
    // Starts delivering the changes other instances commit, in sequence order, each batch once,
    // on a thread of the repository's; `apply` must not block (it posts to the service's strand).
    // Called once, after load_all(): deliveries start after its load_report::change_seq (the
    // service skips any at or below what it applied). After a lost connection the store catches
    // up from the last sequence it delivered.
    virtual void watch_changes(std::function<void(std::vector<store_change>)> apply) { (void)apply; }
    // [blocking] The lease on a periodic task ("sweep", "crl-refresh") or a running batch job
    // ("job:<id>", net/jobs.hpp) when no other instance holds it, nullptr when one does. It ends
    // with the holder (a killed process's lease is free again). A store only this process writes
    // always grants it.
    virtual result<std::unique_ptr<task_lease>> try_lead(std::string_view task) {
        (void)task;
        return std::make_unique<task_lease>();
    }
};

// The delegated OCSP responder (RFC 6960 4.2.2.2): the one `repo` keeps when it loads against `ca`
// and is valid past now + renew_before; otherwise a new one, issued here and kept.
// [any thread, blocking] One caller at a time.
result<std::shared_ptr<const ocsp_responder>> ensure_ocsp_responder(cert_repository& repo,
                                                                    const certificate_authority& ca, time_point now,
                                                                    std::chrono::hours renew_before, const rng_fn& rng);

} // namespace certmate
