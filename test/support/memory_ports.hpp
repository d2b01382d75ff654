// In-memory implementations of core's ports (docs/architecture.md): the service's unit tests
// build it from these, with a fixed clock and a seeded RNG, and need no data dir.
// Thread-safety: a mutex per store (shared by its views); good enough for the unit tests.
#pragma once

#include "core/audit_sink.hpp"
#include "core/cert_repository.hpp"

#include <map>
#include <memory>
#include <mutex>

namespace certmate::test {

// A deterministic RNG (splitmix64 from `seed`): the same serials and identifiers every run.
rng_fn seeded_rng(std::uint64_t seed);

struct memory_store_state;

// A store several memory_repository views share, as instances share one PostgreSQL
// (docs/high-availability.md): one set of certificates and CA-wide state, a change sequence
// every committed certificate write and published CRL bumps, and task leases.
class shared_memory_store {
public:
    shared_memory_store();
    std::shared_ptr<memory_store_state> state() const { return state_; }
    // The newest change sequence.
    std::uint64_t seq() const;

private:
    std::shared_ptr<memory_store_state> state_;
};

class memory_repository final : public cert_repository {
public:
    // A store of its own (the change sequence and leases concern no one else).
    memory_repository();
    // One instance's view of `shared`: its writes are the others' changes and theirs its own.
    explicit memory_repository(const shared_memory_store& shared);

    result<void> create(const cert_record& rec, const cert_files& files) override;
    result<void> replace(const cert_record& rec, const cert_files& files) override;
    result<void> write_metadata(const cert_record& rec) override;
    result<std::string> read_file(cert_usage usage, const std::string& id, file_kind kind) const override;
    result<load_report> load_all(unsigned threads) override;
    result<crl_state> load_crl_state() const override;
    result<void> save_crl_state(const crl_state& s) override;
    result<void> publish_crl(std::string_view der, std::string_view pem) override;
    std::optional<std::pair<std::string, std::string>> published_crl() const override;
    std::optional<renewal_summary> load_last_sweep() const override;
    result<void> save_last_sweep(const renewal_summary& s) override;
    std::optional<std::string> io_error() const override { return std::nullopt; }
    std::optional<std::string> problem() const override;
    std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const override;
    result<void> save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) override;
    result<void> save_job_input(const std::string& job_id, const job_input& in) override;
    result<job_input> load_job_input(const std::string& job_id) const override;
    result<void> save_job(const job_record& j) override;
    std::vector<job_record> load_jobs() const override;
    result<void> remove_job(const std::string& job_id) override;
    // Several instances: the conflict rule (a certificate change of another view above `applied_seq`:
    // errc::conflict, nothing kept), the number above every one kept; exclusive leases.
    result<built_crl> publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                       const std::function<result<built_crl>(std::uint64_t)>& sign) override;
    void watch_changes(std::function<void(std::vector<store_change>)> apply) override;
    result<std::unique_ptr<task_lease>> try_lead(std::string_view task) override;

    // Hands the changes other views committed since the last delivery to the watch_changes
    // callback, synchronously on the caller's thread; how many were delivered.
    std::size_t deliver();

    // Makes every write fail (errc::storage_failure) while set, as a broken disk would.
    void fail_writes(bool on);
    // The stored record of `id` (what a restart would load), nullopt when absent.
    std::optional<cert_record> stored(const std::string& id) const;
    // Loses the key or CSR of `id`, as a file deleted by hand would be.
    void drop_file(const std::string& id, file_kind kind);

private:
    result<void> writable() const;
    // Records a committed certificate write as a change of this view [state mutex held].
    void changed(const cert_record& rec);
    std::shared_ptr<memory_store_state> st_;
    const unsigned view_;
    bool fail_ = false; // [st_->mu]
    std::mutex watch_mu_;
    std::function<void(std::vector<store_change>)> watch_; // [watch_mu_]
    std::uint64_t delivered_ = 0;                          // [watch_mu_]
};

// The audit port in memory: entries in order; appends fail while fail_appends(true).
class memory_audit final : public audit_sink {
public:
    result<void> append(const audit_entry& e) override;
    bool healthy() const override;
    result<std::vector<boost::json::object>> query(const audit_query& q) const override;
    result<void> reopen() override { return {}; }
    result<bool> checkpoint(std::string) override { return false; }
    std::string public_key_pem() const override { return {}; }
    result<audit_export> export_range(std::uint64_t, std::optional<std::uint64_t>) const override;
    audit_verify_result verify() const override;

    void fail_appends(bool on);
    std::vector<audit_entry> entries() const;

private:
    mutable std::mutex mu_;
    std::vector<audit_entry> entries_;
    bool fail_ = false;
    bool healthy_ = true;
};

} // namespace certmate::test
