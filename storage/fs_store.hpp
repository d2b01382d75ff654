// The cert_repository port on the local file system, in the Python CertMate's layout:
// certs/client/<usage>/<identifier>/{cert.crt, cert.key (0600), cert.csr, metadata.json}.
// New certificates are written into certs/client/<usage>/.tmp-<identifier>-<random>/ and renamed
// into place; replacements go through .new-/.old- directories so a crash at any step leaves
// either the old or the new certificate; load_all() finishes or rolls back what it finds, and
// removes write_file_atomic's temp files left inside certificate directories.
// A directory fsync failing after the rename that made a change visible does not fail the call
// (the index must follow the disk): it is kept as io_error() for /health.
#pragma once

#include "core/cert_repository.hpp"
#include "storage/layout.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace certmate::storage {

class fs_store final : public cert_repository {
public:
    explicit fs_store(layout l);
    // Writes the CRL files still pending (see publish_next_crl) before it goes.
    ~fs_store() override;
    fs_store(const fs_store&) = delete;
    fs_store& operator=(const fs_store&) = delete;

    result<void> create(const cert_record& rec, const cert_files& files) override;
    result<void> replace(const cert_record& rec, const cert_files& files) override;
    result<void> write_metadata(const cert_record& rec) override;
    result<std::string> read_file(cert_usage usage, const std::string& id, file_kind kind) const override;
    result<load_report> load_all(unsigned threads) override;
    std::uint64_t write_count() const override;
    // state/index.snapshot (storage/snapshot.hpp), written atomically (0600) while no certificate
    // write has started since `at`; the stamps are taken here.
    result<bool> save_snapshot(const std::string& records, std::size_t count, std::uint64_t at) override;

    // CRL state in certs/crl/crl_state.json, the CRL in certs/crl/crl.der and certs/ca/crl.pem,
    // the sweep record in state/renewal_sweep.json; every write atomic.
    result<crl_state> load_crl_state() const override;
    result<void> save_crl_state(const crl_state& s) override;
    result<void> publish_crl(std::string_view der, std::string_view pem) override;
    // The files as they are once the CRL files pending are written.
    std::optional<std::pair<std::string, std::string>> published_crl() const override;
    // The number is kept (crl_state.json, fsynced) before this returns, so the CRL may be served;
    // crl.der and crl.pem, a mirror of the CRL served, are written after, on a thread of the
    // store's, newest CRL first (an older one still pending is skipped); files that cannot be
    // written are tried again (crl_files_retry) and problem() reports them meanwhile. A stop in
    // between leaves files older than the number kept, which cert_service::load() does not serve. Two calls may
    // overlap (signatures in parallel): crl_state.json never goes back to a lower number.
    result<built_crl> publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                       const std::function<result<built_crl>(std::uint64_t number)>& sign) override;
    // The number is `at_least` exactly and crl_state.json never goes back, so builds could overlap;
    // off unless `overlap_crl_builds`: measured on 2 cores it made more, smaller builds, whose
    // signatures took the pool threads from the revocations (BENCHMARKS.md, issue 15).
    bool crl_builds_may_overlap() const override { return overlap_crl_builds; }
    bool overlap_crl_builds = false;
    // How often CRL files that could not be written (a failing disk) are written again; until
    // they are, problem() (/health) says so.
    std::chrono::milliseconds crl_files_retry{std::chrono::seconds(5)};
    std::optional<renewal_summary> load_last_sweep() const override;
    result<void> save_last_sweep(const renewal_summary& s) override;
    std::optional<std::string> io_error() const override;
    std::optional<std::string> problem() const override;
    // certs/ocsp/responder.crt and responder.key (0600).
    std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const override;
    result<void> save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) override;
    // state/jobs/<id>.json (0600) and state/jobs/<id>.input.json (0600: rows may name people).
    result<void> save_job_input(const std::string& job_id, const job_input& in) override;
    result<job_input> load_job_input(const std::string& job_id) const override;
    result<void> save_job(const job_record& j) override;
    std::vector<job_record> load_jobs() const override;
    result<void> remove_job(const std::string& job_id) override;

    // Test hook: called with a step name ("files-written", "dir-synced", "renamed", ...) during
    // create/replace; returning false simulates a crash at that point (the call returns
    // errc::storage_failure and leaves the disk as a crash would). "crl-files": before the CRL
    // files of a kept CRL are written (false: they never are, as after a crash).
    std::function<bool(std::string_view step)> crash_hook;

private:
    // Counts a certificate write about to start and, the first time after a snapshot was kept,
    // removes the snapshot (and syncs state/) before anything changes: a crash after the write
    // leaves no snapshot that misses it (docs/architecture.md "Start-up snapshot").
    void before_write();
    result<void> create_unnoted(const cert_record& rec, const cert_files& files);
    result<void> replace_unnoted(const cert_record& rec, const cert_files& files);
    result<void> write_metadata_unnoted(const cert_record& rec);
    // Keeps a certificate write's storage_unavailable failure for problem() until a write succeeds.
    result<void> noted(result<void> r);
    // Records `e` (a directory fsync failing after a rename) as io_error() unless one is kept.
    void note_late_error(const error& e);
    // Runs write_file_atomic, turning a late directory fsync failure into note_late_error().
    result<void> write_visible(const fs::path& path, std::string_view data, fs::perms mode);

    // Hands `crl` to the CRL file writer (started on first use).
    void mirror_crl(const built_crl& crl);
    void mirror_loop();
    // Waits until no CRL file write is pending or running.
    void flush_crl_mirror() const;

    layout layout_;
    std::mutex crl_mu_;          // serialises the writes of crl_state.json
    std::uint64_t crl_kept_ = 0; // guarded by crl_mu_: the highest CRL number this store kept
    struct crl_files {
        std::uint64_t number = 0;
        std::string der, pem;
    };
    mutable std::mutex mirror_mu_;
    mutable std::condition_variable mirror_cv_;
    std::optional<crl_files> mirror_next_; // guarded by mirror_mu_: the newest CRL not written yet
    std::uint64_t mirror_queued_ = 0;      // guarded by mirror_mu_: the newest number handed over
    bool mirror_busy_ = false;             // guarded by mirror_mu_: a write runs
    bool mirror_stop_ = false;             // guarded by mirror_mu_
    std::thread mirror_thread_;
    mutable std::mutex io_mu_;
    std::optional<std::string> io_error_;          // guarded by io_mu_
    std::optional<std::string> write_problem_;     // guarded by io_mu_: the last certificate write failed
    std::optional<std::string> crl_files_problem_; // guarded by io_mu_: the newest CRL's files failed
    mutable std::mutex snap_mu_;
    std::uint64_t writes_ = 0;  // guarded by snap_mu_: certificate writes started
    bool snapshot_kept_ = true; // guarded by snap_mu_: state/index.snapshot may exist
};

} // namespace certmate::storage
