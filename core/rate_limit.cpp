#include "core/rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace certmate {

std::string_view to_string(rate_class c) noexcept {
    switch (c) {
    case rate_class::default_: return "default";
    case rate_class::create: return "create";
    case rate_class::batch: return "batch";
    case rate_class::ocsp: return "ocsp";
    case rate_class::crl: return "crl";
    }
    return "default";
}

namespace {

double per_second(int per_minute) { return per_minute / 60.0; }

// Seconds since `last` for a bucket of `limit` to be full again.
double seconds_to_full(double tokens, int limit) { return (limit - tokens) / per_second(limit); }

} // namespace

rate_limiter::rate_limiter(rate_limit_config cfg, std::size_t max_buckets)
    : cfg_(cfg), max_buckets_(std::max<std::size_t>(max_buckets, 16)) {
    note_unlimited();
}

void rate_limiter::note_unlimited() {
    for (std::size_t i = 0; i < rate_class_count; ++i)
        unlimited_[i].store(cfg_.per_minute[i] <= 0, std::memory_order_relaxed);
}

rate_decision rate_limiter::check(std::string_view client, rate_class c, clock::time_point now) {
    std::lock_guard lock(mu_);
    const int limit = cfg_[c];
    rate_decision d;
    d.limit = limit;
    if (limit <= 0) return d;
    d.limited = true;

    std::string key;
    key.reserve(client.size() + 1);
    key += static_cast<char>('0' + static_cast<int>(c));
    key += client;
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_buckets_ || ++checks_since_sweep_ >= max_buckets_) evict(now);
        it = buckets_.emplace(std::move(key), bucket{static_cast<double>(limit), now}).first;
    }
    bucket& b = it->second;
    if (now > b.last) {
        const double elapsed = std::chrono::duration<double>(now - b.last).count();
        b.tokens = std::min<double>(limit, b.tokens + elapsed * per_second(limit));
        b.last = now;
    }
    b.tokens = std::min<double>(b.tokens, limit);
    if (b.tokens >= 1.0 - 1e-9) { // tolerance: 6 s at 10/min is one token, not 0.9999...
        b.tokens = std::max(0.0, b.tokens - 1.0);
        d.remaining = static_cast<int>(std::floor(b.tokens));
        return d;
    }
    d.allowed = false;
    d.remaining = 0;
    const double wait = (1.0 - b.tokens) / per_second(limit);
    d.retry_after = std::chrono::seconds(std::max<long long>(1, static_cast<long long>(std::ceil(wait))));
    return d;
}

void rate_limiter::evict(clock::time_point now) {
    checks_since_sweep_ = 0;
    // A bucket that has refilled is the same as no bucket: drop it.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        const int limit = cfg_[static_cast<rate_class>(it->first[0] - '0')];
        const double idle = std::chrono::duration<double>(now - it->second.last).count();
        if (limit <= 0 || idle >= seconds_to_full(it->second.tokens, limit))
            it = buckets_.erase(it);
        else
            ++it;
    }
    if (buckets_.size() < max_buckets_) return;
    // Still full of busy clients: drop the least recently used half.
    std::vector<clock::time_point> seen;
    seen.reserve(buckets_.size());
    for (const auto& [k, b] : buckets_) seen.push_back(b.last);
    auto mid = seen.begin() + static_cast<std::ptrdiff_t>(seen.size() / 2);
    std::nth_element(seen.begin(), mid, seen.end());
    const auto cutoff = *mid;
    for (auto it = buckets_.begin(); it != buckets_.end();)
        it = it->second.last <= cutoff ? buckets_.erase(it) : std::next(it);
}

void rate_limiter::set_config(const rate_limit_config& cfg) {
    std::lock_guard lock(mu_);
    const rate_limit_config old = cfg_;
    cfg_ = cfg;
    note_unlimited();
    // A class whose limit changed starts afresh: every client gets a full bucket of the new size.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        const auto c = static_cast<rate_class>(it->first[0] - '0');
        it = old[c] != cfg_[c] ? buckets_.erase(it) : std::next(it);
    }
}

rate_limit_config rate_limiter::config() const {
    std::lock_guard lock(mu_);
    return cfg_;
}

std::size_t rate_limiter::size() const {
    std::lock_guard lock(mu_);
    return buckets_.size();
}

} // namespace certmate
