// What OCSP answers, readable from any thread without the core strand: the status of every
// serial we issued, and pre-signed responses for requests without a nonce, cached per serial and
// CertID hash, dropped the moment the serial's status changes.
// Thread-safety: every member is safe from any thread (shared_mutex inside). Only the owner of the
// statuses (the service) calls set(); readers hold a `const ocsp_table`, whose response cache they
// may still fill and drop: the cache is not the table's state, only a memo of signatures over it.
#pragma once

#include "core/ocsp.hpp"
#include "core/serial_key.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace certmate {

class ocsp_table {
public:
    struct cached_response {
        std::shared_ptr<const std::string> der;
        time_point this_update{};
        time_point next_update{};
        ocsp_single_answer::state status = ocsp_single_answer::state::unknown; // set by cached()
    };
    struct lookup {
        std::optional<ocsp_single_answer> answer; // nullopt: a serial we never issued
        std::uint64_t generation = 0;             // changes whenever the serial's status changes
    };

    // Sets the status of a serial and drops its cached responses.
    void set(const std::string& serial, const ocsp_single_answer& a);
    lookup get(const std::string& serial) const;
    std::size_t size() const;

    // A cached response still fresh at `now` (until `refresh_before` of nextUpdate), if any, with
    // the status it gives.
    std::optional<cached_response> cached(const std::string& serial, int hash_nid, time_point now,
                                          std::chrono::seconds refresh_before) const;
    // Caches a response signed for the status seen at `generation`; ignored if the status changed since.
    void cache_response(const std::string& serial, int hash_nid, std::uint64_t generation, cached_response r) const;
    // Drops every cached response (responder rotated).
    void clear_cache() const;

private:
    struct entry {
        ocsp_single_answer answer;
        std::uint64_t generation = 0;
        // By CertID hash NID (one or two in use; a vector is 32 bytes smaller than a map); a cache, see above.
        mutable std::vector<std::pair<int, cached_response>> responses;
    };
    mutable std::shared_mutex mu_;
    std::unordered_map<serial_key, entry, serial_key_hash> entries_; // compact keys: 30,000+ entries
    std::uint64_t next_generation_ = 1;
};

} // namespace certmate
