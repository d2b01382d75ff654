// The cert_repository port on PostgreSQL (docs/postgresql.md), for several instances serving one CA
// (docs/high-availability.md). Certificates are rows of `certificates` (metadata as the JSON of
// core/cert_json, PEMs as text, the private key wrapped by storage/key_wrap); their serials are
// claimed in `serials` (unique by constraint); every committed change appends to `changes` and
// sends NOTIFY certmate_changes, which watch_changes() turns into store_change batches.
// Every call blocks on the network (the pool): callers run on the service's thread pool.
// Thread-safety: every method is safe from any thread; the watch thread is the store's own.
#pragma once

#include "core/cert_repository.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <thread>

namespace certmate::storage {

class pg_store final : public cert_repository {
public:
    // Connects lazily (the first call opens a connection): constructing never fails. `instance_id`
    // names this instance in `changes.origin` (unique per running instance).
    pg_store(std::string conninfo, std::size_t pool_size, key_wrap kek, std::string instance_id);
    ~pg_store() override;
    pg_store(const pg_store&) = delete;
    pg_store& operator=(const pg_store&) = delete;

    // Brings the schema to this binary's version (storage/pg_schema.hpp); the version afterwards.
    result<int> migrate();

    result<void> create(const cert_record& rec, const cert_files& files) override;
    // The lot in one transaction: one multi-row INSERT each for changes, certificates and serials.
    result<void> create_many(const std::vector<new_cert>& certs) override;
    result<void> replace(const cert_record& rec, const cert_files& files) override;
    result<void> write_metadata(const cert_record& rec) override;
    result<std::string> read_file(cert_usage usage, const std::string& id, file_kind kind) const override;
    // One SELECT in a REPEATABLE READ snapshot with the newest change sequence (change_seq); the
    // metadata parsed by `threads` workers. `threads` and the snapshot fields as fs_store.
    result<load_report> load_all(unsigned threads) override;

    result<crl_state> load_crl_state() const override;
    result<void> save_crl_state(const crl_state& s) override;
    result<void> publish_crl(std::string_view der, std::string_view pem) override;
    std::optional<std::pair<std::string, std::string>> published_crl() const override;
    std::optional<renewal_summary> load_last_sweep() const override;
    result<void> save_last_sweep(const renewal_summary& s) override;
    // Always nullopt: a committed transaction is durable (the database's fsync).
    std::optional<std::string> io_error() const override;
    // nullopt when the last database call (or the watch thread's connection) reached the database;
    // otherwise "database unreachable: ...".
    std::optional<std::string> problem() const override;
    std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const override;
    result<void> save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) override;
    result<void> save_job_input(const std::string& job_id, const job_input& in) override;
    result<job_input> load_job_input(const std::string& job_id) const override;
    result<void> save_job(const job_record& j) override;
    // Rows without a job document are removed only when older than an hour: another instance may
    // be between the two writes of a submit.
    std::vector<job_record> load_jobs() const override;
    result<void> remove_job(const std::string& job_id) override;

    // The CRL row locked (SELECT ... FOR UPDATE) for the whole step; errc::conflict when another
    // instance committed a change after `applied_seq`.
    result<built_crl> publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                       const std::function<result<built_crl>(std::uint64_t number)>& sign) override;
    // Starts the watch thread (once; a second call is ignored). It LISTENs on its own connection,
    // wakes on a notification or every second, reads `changes` after the last sequence delivered
    // (from load_all()'s change_seq) and delivers other instances' changes with their records.
    void watch_changes(std::function<void(std::vector<store_change>)> apply) override;
    bool shared() const override { return true; }
    result<std::vector<cert_record>> find_records(const std::vector<std::string>& ids) const override;
    // pg_try_advisory_lock on a connection of its own, held by the lease.
    result<std::unique_ptr<task_lease>> try_lead(std::string_view task) override;

    // Removes `changes` rows older than `keep` (the newest is always kept) and records the highest
    // sequence removed; a watcher behind it catches up from certificates.updated_seq instead.
    // The number of rows removed. Run by the instance leading "sweep" (docs/postgresql.md).
    result<std::uint64_t> prune_changes(std::chrono::seconds keep);

    store_status status() const override;
    const std::string& instance_id() const noexcept { return me_; }
    pg::pool_stats pool_stats() const { return pool_.stats(); }
    // The newest change sequence the watch thread has read (delivered or this instance's own).
    std::uint64_t watched_seq() const noexcept { return watched_.load(); }

private:
    result<void> missing_or_changed(pg::connection& c, const cert_record& rec) const;
    // status(): written by the watch thread.
    std::atomic<double> latency_seconds_{-1}, lag_seconds_{-1};
    std::atomic<std::int64_t> last_heard_ns_{0};
    // Runs `f` on a pooled connection and notes whether the database was reachable (problem()).
    template <class F>
    auto with_conn(F&& f) const -> decltype(f(std::declval<pg::connection&>()));
    void note(const std::optional<error>& e) const;
    // In the caller's transaction: appends a `changes` row after the changes lock (so sequence
    // order is commit order) and queues the NOTIFY. The new sequence.
    struct own_change;
    result<std::uint64_t> add_change(pg::connection& c, std::string_view kind, const std::string* id,
                                     own_change& own) const;
    // Our own changes are skipped by catch_up (the caller applied them) unless the COMMIT was not
    // acknowledged: a connection lost during COMMIT leaves it committed or not, the caller reports
    // a failure and its memory does not have the change, so the change watch applies it when it
    // shows up. Until the COMMIT returns, catch_up does not pass an own change (pending_).
    struct own_change {
        const pg_store* store;
        std::uint64_t seq = 0;
        bool committing = false; // COMMIT was sent: a failure leaves the outcome unknown
        bool acknowledged = false;
        own_change(const pg_store* s) : store(s) {}
        own_change(const own_change&) = delete;
        own_change& operator=(const own_change&) = delete;
        ~own_change() { store->settle(seq, committing && !acknowledged); }
    };
    void settle(std::uint64_t seq, bool uncertain) const;
    // The instance name for replace()'s "last written here" test: none while uncertain_ is not empty.
    std::string last_writer_check() const;
    // Commits `tx` and records whether the COMMIT was acknowledged.
    static result<void> commit_own(pg::transaction& tx, own_change& own);
    void watch_loop(std::stop_token st);
    // Delivers the changes after watched_; errors end the connection (reconnect).
    result<void> catch_up(pg::connection& c);
    // Catch-up when changes after watched_ were pruned: every certificate written since, and the CRL.
    result<void> resync(pg::connection& c);
    // Waits up to `ms` for the stop event or `fd` (-1: none) to be readable; false when stopping.
    bool wait(int fd, int ms, const std::stop_token& st) const;

    const std::string conninfo_;
    mutable pg::pool pool_;
    const key_wrap kek_;
    const std::string me_;
    mutable std::mutex mu_;
    mutable std::optional<std::string> problem_; // guarded by mu_
    std::optional<std::uint64_t> loaded_seq_;    // guarded by mu_: change_seq of the last load_all
    std::atomic<std::uint64_t> watched_{0};
    mutable std::set<std::uint64_t> pending_;   // guarded by mu_: own changes whose COMMIT has not returned
    mutable std::set<std::uint64_t> uncertain_; // guarded by mu_: own changes whose COMMIT failed
    std::function<void(std::vector<store_change>)> apply_;
    int stop_fd_ = -1; // eventfd: wakes the watch thread to stop
    std::jthread watcher_;
};

} // namespace certmate::storage
