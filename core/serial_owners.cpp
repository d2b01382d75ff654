#include "core/serial_owners.hpp"

#include <mutex>

namespace certmate {

void serial_owner_table::set(const std::string& serial_decimal, serial_owner owner) {
    const auto key = serial_key::from_decimal(serial_decimal);
    if (!key) return; // never one of ours: get() answers it as unknown
    std::unique_lock lock(mu_);
    owners_[*key] = std::move(owner);
}

std::optional<serial_owner> serial_owner_table::get(const std::string& serial_decimal) const {
    const auto key = serial_key::from_decimal(serial_decimal);
    if (!key) return std::nullopt;
    std::shared_lock lock(mu_);
    auto it = owners_.find(*key);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
}

std::size_t serial_owner_table::size() const {
    std::shared_lock lock(mu_);
    return owners_.size();
}

} // namespace certmate
