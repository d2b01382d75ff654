#include "core/ocsp_table.hpp"

#include <mutex>

namespace certmate {

void ocsp_table::set(const std::string& serial, const ocsp_single_answer& a) {
    std::unique_lock lock(mu_);
    auto [it, inserted] = entries_.try_emplace(serial);
    auto& e = it->second;
    if (!inserted && e.answer == a) return; // unchanged: cached responses stay valid
    e.answer = a;
    e.generation = next_generation_++;
    e.responses.clear();
}

ocsp_table::lookup ocsp_table::get(const std::string& serial) const {
    std::shared_lock lock(mu_);
    auto it = entries_.find(serial);
    if (it == entries_.end()) return {};
    return {it->second.answer, it->second.generation};
}

std::size_t ocsp_table::size() const {
    std::shared_lock lock(mu_);
    return entries_.size();
}

std::optional<ocsp_table::cached_response> ocsp_table::cached(const std::string& serial, int hash_nid, time_point now,
                                                              std::chrono::seconds refresh_before) const {
    std::shared_lock lock(mu_);
    auto it = entries_.find(serial);
    if (it == entries_.end()) return std::nullopt;
    auto r = it->second.responses.find(hash_nid);
    if (r == it->second.responses.end() || now + refresh_before >= r->second.next_update) return std::nullopt;
    return r->second;
}

void ocsp_table::cache_response(const std::string& serial, int hash_nid, std::uint64_t generation,
                                cached_response r) const {
    std::unique_lock lock(mu_);
    auto it = entries_.find(serial);
    if (it == entries_.end() || it->second.generation != generation) return;
    it->second.responses[hash_nid] = std::move(r);
}

void ocsp_table::clear_cache() const {
    std::unique_lock lock(mu_);
    for (const auto& [serial, e] : entries_) e.responses.clear();
}

} // namespace certmate
