#include "core/store_copy.hpp"

#include <map>
#include <set>

namespace certmate {

namespace {

result<cert_files> files_of(const cert_repository& repo, const cert_record& r) {
    cert_files f;
    auto cert = repo.read_file(r.usage, r.identifier, file_kind::cert);
    if (!cert) return cert.error();
    f.cert_pem = std::move(*cert);
    for (auto kind : {file_kind::key, file_kind::csr}) {
        auto v = repo.read_file(r.usage, r.identifier, kind);
        if (!v) {
            if (v.error().code == errc::not_found) continue;
            return v.error();
        }
        (kind == file_kind::key ? f.key_pem : f.csr_pem) = std::move(*v);
    }
    return f;
}

bool same_files(const cert_files& a, const cert_files& b) {
    return a.cert_pem == b.cert_pem && a.key_pem == b.key_pem && a.csr_pem == b.csr_pem;
}

error conflict(const std::string& id, const std::string& what) {
    return make_error(errc::conflict, "the target holds certificate " + id + " with a different " + what +
                                          ": nothing of it was overwritten");
}

} // namespace

result<copy_report> copy_store(cert_repository& from, cert_repository& to, unsigned threads) {
    copy_report rep;
    auto src = from.load_all(threads);
    if (!src) return src.error();
    auto dst = to.load_all(threads);
    if (!dst) return dst.error();
    std::map<std::string, const cert_record*> held;
    for (const auto& r : dst->records) held.emplace(r.identifier, &r);

    rep.certificates = src->records.size();
    // First every certificate the target holds already, compared: a conflict anywhere refuses the
    // copy before anything is written.
    std::vector<const cert_record*> missing;
    for (const auto& r : src->records) {
        auto it = held.find(r.identifier);
        if (it == held.end()) {
            missing.push_back(&r);
            continue;
        }
        if (!(*it->second == r)) return conflict(r.identifier, "record");
        auto files = files_of(from, r);
        if (!files) return make_error(files.error().code, r.identifier + ": " + files.error().message);
        auto theirs = files_of(to, *it->second);
        if (!theirs) return make_error(theirs.error().code, r.identifier + ": " + theirs.error().message);
        if (!same_files(*files, *theirs)) return conflict(r.identifier, "certificate, key or CSR");
        ++rep.already;
    }
    // Then what the target lacks, a few hundred at a time (one transaction each on PostgreSQL).
    constexpr std::size_t chunk = 500;
    for (std::size_t at = 0; at < missing.size(); at += chunk) {
        std::vector<cert_repository::new_cert> batch;
        for (std::size_t i = at; i < std::min(missing.size(), at + chunk); ++i) {
            auto files = files_of(from, *missing[i]);
            if (!files) return make_error(files.error().code, missing[i]->identifier + ": " + files.error().message);
            batch.push_back({missing[i], std::move(*files)});
        }
        if (auto w = to.create_many(batch); !w) return w.error();
        rep.copied += batch.size();
    }

    // CA-wide state: the number never goes back, so the larger one stays.
    auto src_crl = from.load_crl_state();
    if (!src_crl) return src_crl.error();
    auto dst_crl = to.load_crl_state();
    if (!dst_crl) return dst_crl.error();
    rep.crl_number = std::max(src_crl->crl_number, dst_crl->crl_number);
    if (src_crl->crl_number > dst_crl->crl_number) {
        if (auto w = to.save_crl_state(*src_crl); !w) return w.error();
        if (auto crl = from.published_crl())
            if (auto w = to.publish_crl(crl->first, crl->second); !w) return w.error();
    }
    if (auto responder = from.load_ocsp_responder(); responder && !to.load_ocsp_responder())
        if (auto w = to.save_ocsp_responder(responder->first, responder->second); !w) return w.error();
    if (auto sweep = from.load_last_sweep(); sweep && !to.load_last_sweep())
        if (auto w = to.save_last_sweep(*sweep); !w) return w.error();
    std::set<std::string> jobs_held;
    for (const auto& j : to.load_jobs()) jobs_held.insert(j.id);
    for (const auto& j : from.load_jobs()) {
        ++rep.jobs;
        if (jobs_held.count(j.id)) continue;
        if (auto in = from.load_job_input(j.id); in)
            if (auto w = to.save_job_input(j.id, *in); !w) return w.error();
        if (auto w = to.save_job(j); !w) return w.error();
    }

    // Verify: the target, loaded anew, holds every source certificate as it was, and its serials.
    auto check = to.load_all(threads);
    if (!check) return check.error();
    std::map<std::string, const cert_record*> now;
    std::set<std::string> serials;
    for (const auto& r : check->records) {
        now.emplace(r.identifier, &r);
        serials.insert(r.serial_number);
        for (const auto& h : r.history) serials.insert(h.serial_number);
    }
    for (const auto& r : src->records) {
        auto it = now.find(r.identifier);
        if (it == now.end())
            return make_error(errc::storage_failure, "after the copy the target lacks certificate " + r.identifier);
        if (!(*it->second == r)) return conflict(r.identifier, "record after the copy");
        std::vector<const std::string*> of_it{&r.serial_number};
        for (const auto& h : r.history) of_it.push_back(&h.serial_number);
        for (const auto* s : of_it) {
            if (!serials.count(*s))
                return make_error(errc::storage_failure, "after the copy the target lacks serial " + *s);
            ++rep.serials;
        }
    }
    return rep;
}

} // namespace certmate
