// Token buckets per client and request class (docs/api.md "Rate limits"): `limit` requests per
// minute, refilled continuously, burst up to `limit`. 0 means unlimited. Buckets of idle clients
// are evicted, so memory stays bounded under address churn.
// No Asio and no hidden clock: `now` is a parameter. Thread-safety: all members are safe from any
// thread (one internal mutex).
#pragma once

#include "core/errc.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace certmate {

enum class rate_class { default_, create, batch, ocsp, crl };
inline constexpr std::size_t rate_class_count = 5;
std::string_view to_string(rate_class c) noexcept; // "default", "create", "batch", "ocsp", "crl"

// Requests per minute for each class; 0 = unlimited.
struct rate_limit_config {
    std::array<int, rate_class_count> per_minute{100, 30, 10, 200, 60};
    int& operator[](rate_class c) { return per_minute[static_cast<std::size_t>(c)]; }
    int operator[](rate_class c) const { return per_minute[static_cast<std::size_t>(c)]; }
};

struct rate_decision {
    bool allowed = true;
    bool limited = false;                // false: the class is unlimited (no headers to send)
    int limit = 0;                       // requests per minute
    int remaining = 0;                   // whole requests left after this one
    std::chrono::seconds retry_after{0}; // when !allowed: until one request is available again
};

class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    // `max_buckets` bounds memory: beyond it, idle (refilled) buckets are dropped first, then
    // the least recently used ones.
    explicit rate_limiter(rate_limit_config cfg = {}, std::size_t max_buckets = 100000);

    // Takes one token from the bucket of (`client`, `c`) at `now`.
    rate_decision check(std::string_view client, rate_class c, clock::time_point now);

    // New limits; the buckets of a class whose limit changed are dropped (full again).
    void set_config(const rate_limit_config& cfg);
    rate_limit_config config() const;
    std::size_t size() const;
    // Whether class `c` is unlimited now, without the lock (a hot path's check before it skips
    // check(): an unlimited class keeps no bucket and sends no RateLimit headers).
    bool unlimited(rate_class c) const noexcept {
        return unlimited_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    }

private:
    struct bucket {
        double tokens = 0;
        clock::time_point last{};
    };
    void evict(clock::time_point now);

    mutable std::mutex mu_;
    rate_limit_config cfg_;
    std::size_t max_buckets_;
    std::unordered_map<std::string, bucket> buckets_; // key: class byte + client
    std::size_t checks_since_sweep_ = 0;
    std::array<std::atomic<bool>, rate_class_count> unlimited_{}; // cfg_[c] <= 0, kept with cfg_
    void note_unlimited();
};

// Buckets shared by several instances (rate_limit.shared, docs/high-availability.md): the same
// token bucket as rate_limiter, kept where every instance takes from it (storage/pg_rate_buckets).
// [any thread, blocking: call it on the pool] errc::storage_unavailable when the store cannot be
// reached; the caller then decides with its own rate_limiter.
class shared_rate_buckets {
public:
    virtual ~shared_rate_buckets() = default;
    // Takes one token from the bucket `key` (class `c`) holding up to `per_minute` (> 0) tokens.
    virtual result<rate_decision> take(std::string_view key, rate_class c, int per_minute) = 0;
};

} // namespace certmate
