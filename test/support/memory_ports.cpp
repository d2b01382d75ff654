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

struct memory_store_state {
    struct entry {
        cert_record rec;
        cert_files files;
    };
    struct change {
        store_change c;
        unsigned view = 0; // who committed it
    };
    mutable std::mutex mu;
    std::map<std::string, entry> certs;
    std::map<std::string, job_record> jobs;
    std::map<std::string, job_input> job_inputs;
    crl_state crl;
    std::optional<std::pair<std::string, std::string>> published;
    std::optional<renewal_summary> sweep;
    std::optional<std::pair<std::string, std::string>> responder;
    bool shared = false;     // several views (shared_memory_store): changes are logged
    std::vector<change> log; // every change, in sequence order (shared only)
    std::uint64_t seq = 0;
    unsigned views = 0;
    std::map<std::string, unsigned, std::less<>> leases; // task -> view holding it
};

shared_memory_store::shared_memory_store() : state_(std::make_shared<memory_store_state>()) { state_->shared = true; }

std::uint64_t shared_memory_store::seq() const {
    std::lock_guard lk(state_->mu);
    return state_->seq;
}

namespace {
unsigned next_view(memory_store_state& st) {
    std::lock_guard lk(st.mu);
    return ++st.views;
}
} // namespace

memory_repository::memory_repository() : st_(std::make_shared<memory_store_state>()), view_(next_view(*st_)) {}

memory_repository::memory_repository(const shared_memory_store& shared) : st_(shared.state()), view_(next_view(*st_)) {}

void memory_repository::changed(const cert_record& rec) {
    ++st_->seq;
    if (!st_->shared) return; // a store of its own (the fuzz harness too): no log to grow
    store_change c;
    c.seq = st_->seq;
    c.record = rec;
    st_->log.push_back({std::move(c), view_});
}

result<built_crl> memory_repository::publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                                      const std::function<result<built_crl>(std::uint64_t)>& sign) {
    // Held while signing, as the row lock of a SQL store would be: one CRL at a time.
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w.error();
    // Only certificate changes could carry a revocation; another CRL's publication does not.
    for (const auto& ch : st_->log)
        if (ch.view != view_ && ch.c.record && ch.c.seq > applied_seq)
            return make_error(errc::conflict, "a change of another instance (sequence " + std::to_string(ch.c.seq) +
                                                  ") is not applied yet");
    auto crl = sign(std::max(at_least, st_->crl.crl_number + 1));
    if (!crl) return crl.error();
    st_->crl = crl_state{crl->crl_number, crl->this_update, crl->next_update};
    st_->published = std::make_pair(crl->der, crl->pem);
    ++st_->seq;
    if (st_->shared) {
        store_change c;
        c.seq = st_->seq;
        c.crl_published = true;
        st_->log.push_back({std::move(c), view_});
    }
    return crl;
}

void memory_repository::watch_changes(std::function<void(std::vector<store_change>)> apply) {
    std::lock_guard lk(watch_mu_);
    watch_ = std::move(apply);
}

std::size_t memory_repository::deliver() {
    std::lock_guard wl(watch_mu_);
    std::vector<store_change> batch;
    {
        std::lock_guard lk(st_->mu);
        for (const auto& ch : st_->log)
            if (ch.c.seq > delivered_ && ch.view != view_) batch.push_back(ch.c);
        delivered_ = st_->seq;
    }
    if (batch.empty() || !watch_) return 0;
    const std::size_t n = batch.size();
    watch_(std::move(batch));
    return n;
}

namespace {
class memory_lease final : public task_lease {
public:
    memory_lease(std::shared_ptr<memory_store_state> st, std::string task)
        : st_(std::move(st)), task_(std::move(task)) {}
    ~memory_lease() override {
        std::lock_guard lk(st_->mu);
        st_->leases.erase(task_);
    }

private:
    std::shared_ptr<memory_store_state> st_;
    std::string task_;
};
} // namespace

result<std::unique_ptr<task_lease>> memory_repository::try_lead(std::string_view task) {
    std::lock_guard lk(st_->mu);
    if (st_->leases.count(task)) return std::unique_ptr<task_lease>();
    st_->leases.emplace(std::string(task), view_);
    return std::unique_ptr<task_lease>(std::make_unique<memory_lease>(st_, std::string(task)));
}

result<void> memory_repository::writable() const {
    if (fail_) return make_error(errc::storage_failure, "write failed (simulated)");
    return {};
}

void memory_repository::fail_writes(bool on) {
    std::lock_guard lk(st_->mu);
    fail_ = on;
}

std::optional<cert_record> memory_repository::stored(const std::string& id) const {
    std::lock_guard lk(st_->mu);
    auto it = st_->certs.find(id);
    if (it == st_->certs.end()) return std::nullopt;
    return it->second.rec;
}

void memory_repository::drop_file(const std::string& id, file_kind kind) {
    std::lock_guard lk(st_->mu);
    auto it = st_->certs.find(id);
    if (it == st_->certs.end()) return;
    auto& f = it->second.files;
    if (kind == file_kind::key) f.key_pem.reset();
    if (kind == file_kind::csr) f.csr_pem.reset();
}

result<void> memory_repository::create(const cert_record& rec, const cert_files& files) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    if (st_->certs.count(rec.identifier))
        return make_error(errc::already_exists, "a certificate with this identifier already exists");
    st_->certs[rec.identifier] = memory_store_state::entry{rec, files};
    changed(rec);
    return {};
}

result<void> memory_repository::replace(const cert_record& rec, const cert_files& files) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    auto it = st_->certs.find(rec.identifier);
    if (it == st_->certs.end()) return make_error(errc::not_found, "certificate not found");
    cert_files kept = files;
    if (!kept.key_pem) kept.key_pem = it->second.files.key_pem;
    if (!kept.csr_pem) kept.csr_pem = it->second.files.csr_pem;
    it->second = memory_store_state::entry{rec, std::move(kept)};
    changed(rec);
    return {};
}

result<void> memory_repository::write_metadata(const cert_record& rec) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    auto it = st_->certs.find(rec.identifier);
    if (it == st_->certs.end()) return make_error(errc::not_found, "certificate not found");
    it->second.rec = rec;
    changed(rec);
    return {};
}

result<std::string> memory_repository::read_file(cert_usage, const std::string& id, file_kind kind) const {
    std::lock_guard lk(st_->mu);
    auto it = st_->certs.find(id);
    if (it == st_->certs.end()) return make_error(errc::not_found, "certificate not found");
    const auto& f = it->second.files;
    if (kind == file_kind::cert) return f.cert_pem;
    const auto& v = kind == file_kind::key ? f.key_pem : f.csr_pem;
    if (!v) return make_error(errc::not_found, "no such file");
    return *v;
}

result<load_report> memory_repository::load_all(unsigned) {
    std::lock_guard wl(watch_mu_);
    std::lock_guard lk(st_->mu);
    load_report rep;
    for (const auto& [id, e] : st_->certs) rep.records.push_back(e.rec);
    // Deliveries start after what the load reflects.
    rep.change_seq = delivered_ = st_->seq;
    return rep;
}

result<crl_state> memory_repository::load_crl_state() const {
    std::lock_guard lk(st_->mu);
    return st_->crl;
}

result<void> memory_repository::save_crl_state(const crl_state& s) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->crl = s;
    return {};
}

result<void> memory_repository::publish_crl(std::string_view der, std::string_view pem) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->published = std::make_pair(std::string(der), std::string(pem));
    return {};
}

std::optional<std::pair<std::string, std::string>> memory_repository::published_crl() const {
    std::lock_guard lk(st_->mu);
    return st_->published;
}

std::optional<renewal_summary> memory_repository::load_last_sweep() const {
    std::lock_guard lk(st_->mu);
    return st_->sweep;
}

result<void> memory_repository::save_last_sweep(const renewal_summary& s) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->sweep = s;
    return {};
}

std::optional<std::string> memory_repository::problem() const {
    std::lock_guard lk(st_->mu);
    if (fail_) return std::string("writes fail (simulated)");
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> memory_repository::load_ocsp_responder() const {
    std::lock_guard lk(st_->mu);
    return st_->responder;
}

result<void> memory_repository::save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->responder = std::make_pair(std::string(cert_pem), std::string(key_pem));
    return {};
}

result<void> memory_repository::save_job_input(const std::string& job_id, const job_input& in) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->job_inputs[job_id] = in;
    return {};
}

result<job_input> memory_repository::load_job_input(const std::string& job_id) const {
    std::lock_guard lk(st_->mu);
    auto it = st_->job_inputs.find(job_id);
    if (it == st_->job_inputs.end()) return make_error(errc::not_found, "no such job");
    return it->second;
}

result<void> memory_repository::save_job(const job_record& j) {
    std::lock_guard lk(st_->mu);
    if (auto w = writable(); !w) return w;
    st_->jobs[j.id] = j;
    return {};
}

std::vector<job_record> memory_repository::load_jobs() const {
    std::lock_guard lk(st_->mu);
    std::vector<job_record> out;
    for (const auto& [id, j] : st_->jobs) out.push_back(j);
    return out;
}

result<void> memory_repository::remove_job(const std::string& job_id) {
    std::lock_guard lk(st_->mu);
    st_->jobs.erase(job_id);
    st_->job_inputs.erase(job_id);
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
