#include "core/ocsp_table.hpp"

#include <mutex>

namespace certmate {

void ocsp_table::set(const std::string& serial, const ocsp_single_answer& a) {
    const auto key = serial_key::from_decimal(serial);
    if (!key) return; // never one of ours: get() answers it as never issued
    std::unique_lock lock(mu_);
    auto [it, inserted] = entries_.try_emplace(*key);
    auto& e = it->second;
    if (!inserted && e.answer == a) return; // unchanged: cached responses stay valid
    e.answer = a;
    e.generation = next_generation_++;
    e.responses.clear();
    e.responses.shrink_to_fit();
}

ocsp_table::lookup ocsp_table::get(const std::string& serial) const {
    const auto key = serial_key::from_decimal(serial);
    if (!key) return {};
    std::shared_lock lock(mu_);
    auto it = entries_.find(*key);
    if (it == entries_.end()) return {};
    return {it->second.answer, it->second.generation};
}

std::size_t ocsp_table::size() const {
    std::shared_lock lock(mu_);
    return entries_.size();
}

std::optional<ocsp_table::cached_response> ocsp_table::cached(const std::string& serial, int hash_nid, time_point now,
                                                              std::chrono::seconds refresh_before) const {
    const auto key = serial_key::from_decimal(serial);
    if (!key) return std::nullopt;
    std::shared_lock lock(mu_);
    auto it = entries_.find(*key);
    if (it == entries_.end()) return std::nullopt;
    for (const auto& [nid, r] : it->second.responses)
        if (nid == hash_nid) {
            if (now + refresh_before >= r.next_update) return std::nullopt;
            auto out = r;
            out.status = it->second.answer.status;
            return out;
        }
    return std::nullopt;
}

void ocsp_table::cache_response(const std::string& serial, int hash_nid, std::uint64_t generation,
                                cached_response r) const {
    const auto key = serial_key::from_decimal(serial);
    if (!key) return;
    std::unique_lock lock(mu_);
    auto it = entries_.find(*key);
    if (it == entries_.end() || it->second.generation != generation) return;
    auto& rs = it->second.responses;
    for (auto& [nid, old] : rs)
        if (nid == hash_nid) {
            old = std::move(r);
            return;
        }
    rs.emplace_back(hash_nid, std::move(r));
}

void ocsp_table::clear_cache() const {
    std::unique_lock lock(mu_);
    for (const auto& [serial, e] : entries_) {
        e.responses.clear();
        e.responses.shrink_to_fit();
    }
}

} // namespace certmate
