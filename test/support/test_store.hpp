// The repository a service test builds cert_service on (docs/architecture.md "Ports"): the
// in-memory one (support/memory_ports.hpp), or, with CERTMATE_TEST_BACKEND=postgresql (CTest's
// *_pg entries, issue 18 test 1), a pg_store on a fresh database of the shared throwaway cluster.
// Either way behind the same test hooks: failing writes, the stored record, a lost file.
#pragma once

#include "core/cert_repository.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace certmate::test {

class memory_repository;

class test_store final : public cert_repository {
public:
    // The backend pg_backend() names (support/http_server_fixture.hpp).
    static std::unique_ptr<test_store> make();
    ~test_store() override;

    bool on_postgresql() const { return !db_.empty(); }

    // Makes every write fail (errc::storage_failure) while set, as a broken disk or database would.
    void fail_writes(bool on);
    // The stored record of `id` (what a restart would load), nullopt when absent.
    std::optional<cert_record> stored(const std::string& id) const;
    // Loses the key or CSR of `id`, as a file deleted by hand (or a row updated behind our back) would.
    void drop_file(const std::string& id, file_kind kind);

    result<void> create(const cert_record& rec, const cert_files& files) override;
    result<void> create_many(const std::vector<new_cert>& certs) override;
    result<void> replace(const cert_record& rec, const cert_files& files) override;
    result<void> write_metadata(const cert_record& rec) override;
    result<std::string> read_file(cert_usage usage, const std::string& id, file_kind kind) const override;
    result<load_report> load_all(unsigned threads) override;
    std::uint64_t write_count() const override;
    result<bool> save_snapshot(const std::string& records, std::size_t count, std::uint64_t at) override;
    result<crl_state> load_crl_state() const override;
    result<void> save_crl_state(const crl_state& s) override;
    result<void> publish_crl(std::string_view der, std::string_view pem) override;
    std::optional<std::pair<std::string, std::string>> published_crl() const override;
    std::optional<renewal_summary> load_last_sweep() const override;
    result<void> save_last_sweep(const renewal_summary& s) override;
    std::optional<std::string> io_error() const override;
    std::optional<std::string> problem() const override;
    std::optional<std::pair<std::string, std::string>> load_ocsp_responder() const override;
    result<void> save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) override;
    result<void> save_job_input(const std::string& job_id, const job_input& in) override;
    result<job_input> load_job_input(const std::string& job_id) const override;
    result<void> save_job(const job_record& j) override;
    std::vector<job_record> load_jobs() const override;
    result<void> remove_job(const std::string& job_id) override;
    bool shared() const override;
    result<std::vector<cert_record>> find_records(const std::vector<std::string>& ids) const override;
    result<built_crl> publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                       const std::function<result<built_crl>(std::uint64_t)>& sign) override;
    store_status status() const override;
    void watch_changes(std::function<void(std::vector<store_change>)> apply) override;
    result<std::unique_ptr<task_lease>> try_lead(std::string_view task) override;

private:
    test_store() = default;
    result<void> writable() const;
    // `write()`, unless writes fail (fail_writes): then their error.
    template <class F>
    auto guarded(F&& write) -> decltype(write());

    std::unique_ptr<cert_repository> inner_;
    memory_repository* memory_ = nullptr; // inner_, when in memory
    std::string db_;                      // the database, on PostgreSQL
    std::atomic<bool> fail_{false};
};

} // namespace certmate::test
