// Which certificate a serial belongs to and the API role its metadata grants, readable from any
// thread without the core strand: what mTLS authentication maps a client certificate to
// (docs/api.md "Authentication and roles"). Kept in step with the index by cert_service (every commit), like ocsp_table.
// Thread-safety: every member is safe from any thread (shared_mutex inside).
#pragma once

#include "core/cert_record.hpp"
#include "core/serial_key.hpp"

#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace certmate {

struct serial_owner {
    std::string identifier;
    std::optional<api_role> role; // the certificate's api_role; nullopt: no API access
    bool current = true;          // false: a serial superseded by a renewal
    bool operator==(const serial_owner&) const = default;
};

class serial_owner_table {
public:
    void set(const std::string& serial_decimal, serial_owner owner);
    // nullopt: a serial we never issued (or not loaded).
    std::optional<serial_owner> get(const std::string& serial_decimal) const;
    std::size_t size() const;

private:
    mutable std::shared_mutex mu_;
    std::unordered_map<serial_key, serial_owner, serial_key_hash> owners_; // compact keys: 30,000+ entries
};

} // namespace certmate
