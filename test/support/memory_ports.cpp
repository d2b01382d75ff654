#include "support/memory_ports.hpp"

#include <boost/json/value_from.hpp>

namespace certmate::test {

rng_fn seeded_rng(std::uint64_t seed) {
    auto state = std::make_shared<std::uint64_t>(seed);
    return [state](std::span<unsigned char> out) {
        for (auto& b : out) {
            std::uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            b = static_cast<unsigned char>(z ^ (z >> 31));
        }
    };
}

result<void> memory_repository::writable() const {
    if (fail_) return make_error(errc::storage_failure, "write failed (simulated)");
    return {};
}

void memory_repository::fail_writes(bool on) {
    std::lock_guard lk(mu_);
    fail_ = on;
}

std::optional<cert_record> memory_repository::stored(const std::string& id) const {
    std::lock_guard lk(mu_);
    auto it = certs_.find(id);
    if (it == certs_.end()) return std::nullopt;
    return it->second.rec;
}

void memory_repository::drop_file(const std::string& id, file_kind kind) {
    std::lock_guard lk(mu_);
    auto it = certs_.find(id);
    if (it == certs_.end()) return;
    auto& f = it->second.files;
    if (kind == file_kind::key) f.key_pem.reset();
    if (kind == file_kind::csr) f.csr_pem.reset();
}

result<void> memory_repository::create(const cert_record& rec, const cert_files& files) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    if (certs_.count(rec.identifier))
        return make_error(errc::already_exists, "a certificate with this identifier already exists");
    certs_[rec.identifier] = entry{rec, files};
    return {};
}

result<void> memory_repository::replace(const cert_record& rec, const cert_files& files) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    auto it = certs_.find(rec.identifier);
    if (it == certs_.end()) return make_error(errc::not_found, "certificate not found");
    cert_files kept = files;
    if (!kept.key_pem) kept.key_pem = it->second.files.key_pem;
    if (!kept.csr_pem) kept.csr_pem = it->second.files.csr_pem;
    it->second = entry{rec, std::move(kept)};
    return {};
}

result<void> memory_repository::write_metadata(const cert_record& rec) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    auto it = certs_.find(rec.identifier);
    if (it == certs_.end()) return make_error(errc::not_found, "certificate not found");
    it->second.rec = rec;
    return {};
}

result<std::string> memory_repository::read_file(cert_usage, const std::string& id, file_kind kind) const {
    std::lock_guard lk(mu_);
    auto it = certs_.find(id);
    if (it == certs_.end()) return make_error(errc::not_found, "certificate not found");
    const auto& f = it->second.files;
    if (kind == file_kind::cert) return f.cert_pem;
    const auto& v = kind == file_kind::key ? f.key_pem : f.csr_pem;
    if (!v) return make_error(errc::not_found, "no such file");
    return *v;
}

result<load_report> memory_repository::load_all(unsigned) {
    std::lock_guard lk(mu_);
    load_report rep;
    for (const auto& [id, e] : certs_) rep.records.push_back(e.rec);
    return rep;
}

result<crl_state> memory_repository::load_crl_state() const {
    std::lock_guard lk(mu_);
    return crl_state_;
}

result<void> memory_repository::save_crl_state(const crl_state& s) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    crl_state_ = s;
    return {};
}

result<void> memory_repository::publish_crl(std::string_view der, std::string_view pem) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    crl_ = std::make_pair(std::string(der), std::string(pem));
    return {};
}

std::optional<std::pair<std::string, std::string>> memory_repository::published_crl() const {
    std::lock_guard lk(mu_);
    return crl_;
}

std::optional<renewal_summary> memory_repository::load_last_sweep() const {
    std::lock_guard lk(mu_);
    return sweep_;
}

result<void> memory_repository::save_last_sweep(const renewal_summary& s) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    sweep_ = s;
    return {};
}

std::optional<std::string> memory_repository::problem() const {
    std::lock_guard lk(mu_);
    if (fail_) return std::string("writes fail (simulated)");
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> memory_repository::load_ocsp_responder() const {
    std::lock_guard lk(mu_);
    return responder_;
}

result<void> memory_repository::save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    responder_ = std::make_pair(std::string(cert_pem), std::string(key_pem));
    return {};
}

result<void> memory_repository::save_job_input(const std::string& job_id, const job_input& in) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    job_inputs_[job_id] = in;
    return {};
}

result<job_input> memory_repository::load_job_input(const std::string& job_id) const {
    std::lock_guard lk(mu_);
    auto it = job_inputs_.find(job_id);
    if (it == job_inputs_.end()) return make_error(errc::not_found, "no such job");
    return it->second;
}

result<void> memory_repository::save_job(const job_record& j) {
    std::lock_guard lk(mu_);
    if (auto w = writable(); !w) return w;
    jobs_[j.id] = j;
    return {};
}

std::vector<job_record> memory_repository::load_jobs() const {
    std::lock_guard lk(mu_);
    std::vector<job_record> out;
    for (const auto& [id, j] : jobs_) out.push_back(j);
    return out;
}

result<void> memory_repository::remove_job(const std::string& job_id) {
    std::lock_guard lk(mu_);
    jobs_.erase(job_id);
    job_inputs_.erase(job_id);
    return {};
}

result<void> memory_audit::append(const audit_entry& e) {
    std::lock_guard lk(mu_);
    healthy_ = !fail_;
    if (fail_) return make_error(errc::audit_unavailable, "audit log unavailable (simulated)");
    entries_.push_back(e);
    return {};
}

bool memory_audit::healthy() const {
    std::lock_guard lk(mu_);
    return healthy_;
}

result<std::vector<boost::json::object>> memory_audit::query(const audit_query& q) const {
    std::lock_guard lk(mu_);
    std::vector<boost::json::object> out;
    for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < q.limit; ++it) {
        if (!q.resource_id.empty() && it->resource_id != q.resource_id) continue;
        if (!q.operation.empty() && it->operation != q.operation) continue;
        out.push_back({{"operation", it->operation},
                       {"resource_id", it->resource_id},
                       {"status", it->status},
                       {"user", it->user},
                       {"actor", it->actor},
                       {"details", it->details}});
    }
    return out;
}

result<audit_export> memory_audit::export_range(std::uint64_t, std::optional<std::uint64_t>) const {
    return make_error(errc::not_found, "no signed export in memory");
}

audit_verify_result memory_audit::verify() const {
    std::lock_guard lk(mu_);
    audit_verify_result r;
    r.entries = entries_.size();
    return r;
}

void memory_audit::fail_appends(bool on) {
    std::lock_guard lk(mu_);
    fail_ = on;
}

std::vector<audit_entry> memory_audit::entries() const {
    std::lock_guard lk(mu_);
    return entries_;
}

} // namespace certmate::test
