#include "support/test_store.hpp"

#include "support/http_server_fixture.hpp"
#include "support/memory_ports.hpp"
#include "support/pg_cluster.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg_store.hpp"

#include <stdexcept>

namespace certmate::test {

std::unique_ptr<test_store> test_store::make() {
    std::unique_ptr<test_store> s(new test_store);
    if (!pg_backend()) {
        auto m = std::make_unique<memory_repository>();
        s->memory_ = m.get();
        s->inner_ = std::move(m);
        return s;
    }
    const auto conninfo = shared_pg_cluster().create_database();
    s->db_ = conninfo.substr(conninfo.find("dbname=") + 7);
    s->db_ = s->db_.substr(0, s->db_.find(' '));
    auto kek = storage::key_wrap::from_key(std::string(storage::key_wrap::key_size, '\x5a'));
    if (!kek) throw std::runtime_error("test_store: " + kek.error().message);
    auto pg = std::make_unique<storage::pg_store>(conninfo, 4, std::move(*kek), "test");
    if (auto m = pg->migrate(); !m) throw std::runtime_error("test_store: migrate: " + m.error().message);
    s->inner_ = std::move(pg);
    return s;
}

test_store::~test_store() = default;

void test_store::fail_writes(bool on) {
    if (memory_) memory_->fail_writes(on);
    fail_ = on;
}

result<void> test_store::writable() const {
    if (fail_ && !memory_) return make_error(errc::storage_failure, "the database refuses writes (test)");
    return {};
}

std::optional<cert_record> test_store::stored(const std::string& id) const {
    if (memory_) return memory_->stored(id);
    auto found = inner_->find_records({id});
    if (!found) throw std::runtime_error("test_store::stored: " + found.error().message);
    if (found->empty()) return std::nullopt;
    return found->front();
}

void test_store::drop_file(const std::string& id, file_kind kind) {
    if (memory_) return memory_->drop_file(id, kind);
    const std::string column = kind == file_kind::key ? "key_wrapped" : "csr_pem";
    shared_pg_cluster().psql(db_, "UPDATE certificates SET " + column + " = NULL WHERE identifier = '" + id + "'");
}

// Writes: refused while fail_writes(true); otherwise the store's own.
template <class F>
auto test_store::guarded(F&& write) -> decltype(write()) {
    if (auto w = writable(); !w) return w.error();
    return write();
}

result<void> test_store::create(const cert_record& rec, const cert_files& files) {
    return guarded([&] { return inner_->create(rec, files); });
}
result<void> test_store::create_many(const std::vector<new_cert>& certs) {
    return guarded([&] { return inner_->create_many(certs); });
}
result<void> test_store::replace(const cert_record& rec, const cert_files& files) {
    return guarded([&] { return inner_->replace(rec, files); });
}
result<void> test_store::write_metadata(const cert_record& rec) {
    return guarded([&] { return inner_->write_metadata(rec); });
}
result<void> test_store::save_crl_state(const crl_state& s) {
    return guarded([&] { return inner_->save_crl_state(s); });
}
result<void> test_store::publish_crl(std::string_view der, std::string_view pem) {
    return guarded([&] { return inner_->publish_crl(der, pem); });
}
result<void> test_store::save_last_sweep(const renewal_summary& s) {
    return guarded([&] { return inner_->save_last_sweep(s); });
}
result<void> test_store::save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) {
    return guarded([&] { return inner_->save_ocsp_responder(cert_pem, key_pem); });
}
result<void> test_store::save_job_input(const std::string& job_id, const job_input& in) {
    return guarded([&] { return inner_->save_job_input(job_id, in); });
}
result<void> test_store::save_job(const job_record& j) {
    return guarded([&] { return inner_->save_job(j); });
}
result<void> test_store::remove_job(const std::string& job_id) {
    return guarded([&] { return inner_->remove_job(job_id); });
}
result<built_crl> test_store::publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                               const std::function<result<built_crl>(std::uint64_t)>& sign) {
    return guarded([&] { return inner_->publish_next_crl(at_least, applied_seq, sign); });
}
result<bool> test_store::save_snapshot(const std::string& records, std::size_t count, std::uint64_t at) {
    return inner_->save_snapshot(records, count, at);
}

// Reads and the rest: the store's own.
result<std::string> test_store::read_file(cert_usage usage, const std::string& id, file_kind kind) const {
    return inner_->read_file(usage, id, kind);
}
result<load_report> test_store::load_all(unsigned threads) { return inner_->load_all(threads); }
std::uint64_t test_store::write_count() const { return inner_->write_count(); }
result<crl_state> test_store::load_crl_state() const { return inner_->load_crl_state(); }
std::optional<std::pair<std::string, std::string>> test_store::published_crl() const { return inner_->published_crl(); }
std::optional<renewal_summary> test_store::load_last_sweep() const { return inner_->load_last_sweep(); }
std::optional<std::string> test_store::io_error() const { return inner_->io_error(); }
std::optional<std::string> test_store::problem() const {
    if (fail_ && !memory_) return "the database refuses writes (test)";
    return inner_->problem();
}
std::optional<std::pair<std::string, std::string>> test_store::load_ocsp_responder() const {
    return inner_->load_ocsp_responder();
}
result<job_input> test_store::load_job_input(const std::string& job_id) const { return inner_->load_job_input(job_id); }
std::vector<job_record> test_store::load_jobs() const { return inner_->load_jobs(); }
bool test_store::shared() const { return inner_->shared(); }
result<std::vector<cert_record>> test_store::find_records(const std::vector<std::string>& ids) const {
    return inner_->find_records(ids);
}
store_status test_store::status() const { return inner_->status(); }
void test_store::watch_changes(std::function<void(std::vector<store_change>)> apply) {
    inner_->watch_changes(std::move(apply));
}
result<std::unique_ptr<task_lease>> test_store::try_lead(std::string_view task) { return inner_->try_lead(task); }

} // namespace certmate::test
