// Counters and histograms for /metrics, rendered in the Prometheus text format (0.0.4).
// Labels are route patterns ("/api/client-certs/{id}"), never raw paths, so cardinality is bounded.
// Thread-safety: every member is safe from any thread (one mutex; the OCSP counters are atomics).
#pragma once

#include "core/cert_repository.hpp"

#include "core/rate_limit.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace certmate::net {

// Values read at scrape time from the service and the server.
struct metrics_snapshot {
    std::map<std::string, std::size_t> certificates_by_state; // "active" -> n
    std::map<std::string, std::size_t> certificates_by_usage;
    std::size_t expiring_soon = 0;
    bool have_crl = false;
    double crl_age_seconds = 0;
    double crl_next_update_seconds = 0; // until nextUpdate
    std::uint64_t crl_number = 0;
    std::size_t connections = 0;
    std::size_t rate_limit_buckets = 0;
    bool audit_healthy = true;
    std::map<std::string, std::size_t> jobs_by_state; // every state, 0 included
    store_status storage;                             // shared stores only (PostgreSQL)
    double now_unix = 0;                              // for the age of storage.last_heard
};

// What an OCSP answer said: each CertID of a successful response by its status, or the error response.
enum class ocsp_outcome { good, revoked, unknown, malformed, unauthorized, internal_error };
inline constexpr std::size_t ocsp_outcome_count = 6;

// The requests the server's fast path answers (net/server.cpp): counted without the mutex, shown
// in certmate_http_requests_total and the duration histogram like any other 200 of their route.
enum class fast_route { ocsp_post, ocsp_get };
inline constexpr std::size_t fast_route_count = 2;

class metrics {
public:
    void observe_request(std::string_view route, std::string_view method, unsigned status, double seconds);
    void rate_limited(rate_class c);
    void denied(std::string_view reason); // "unauthorized" | "forbidden"
    // A connection refused at accept: "per_address", "reserve" or "limit" (max_connections).
    void connection_refused(std::string_view reason);
    void renewals(std::size_t ok, std::size_t failed);
    // When the next renewal sweep is due (seconds since the epoch).
    void next_renewal(double unix_seconds);
    void crl_built(bool ok);
    // A revoke answered before a CRL listing it was out (the wait's bound passed).
    void crl_wait_timed_out();
    // One batch row done: kind "create"|"revoke", ok or failed.
    void job_row(std::string_view kind, bool ok);
    void ocsp_answered(ocsp_outcome o) { ++ocsp_[static_cast<std::size_t>(o)]; }
    void ocsp_cache(bool hit) { ++(hit ? ocsp_cache_hits_ : ocsp_cache_misses_); }
    // A 200 of `r` answered by the fast path in `seconds` (lock-free).
    void observe_fast(fast_route r, double seconds);
    std::string render(const metrics_snapshot& s) const;

private:
    static constexpr std::array<double, 12> bounds_{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
    struct histogram {
        std::array<std::uint64_t, bounds_.size()> buckets{};
        std::uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mu_;
    std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
    std::map<std::string, histogram> latency_;
    std::array<std::uint64_t, rate_class_count> rate_limited_{};
    std::map<std::string, std::uint64_t> denied_;
    std::map<std::string, std::uint64_t> connections_refused_;
    std::uint64_t renewals_ok_ = 0, renewals_failed_ = 0;
    double next_renewal_ = 0;
    std::uint64_t crl_builds_ok_ = 0, crl_builds_failed_ = 0, crl_wait_timeouts_ = 0;
    std::map<std::pair<std::string, bool>, std::uint64_t> job_rows_;
    std::array<std::atomic<std::uint64_t>, ocsp_outcome_count> ocsp_{}; // lock-free: the OCSP hot path
    std::atomic<std::uint64_t> ocsp_cache_hits_{0}, ocsp_cache_misses_{0};
    struct fast_series {
        std::array<std::atomic<std::uint64_t>, bounds_.size()> buckets{}; // not cumulative: the first bucket only
        std::atomic<std::uint64_t> count{0};
        std::atomic<std::uint64_t> sum_ns{0};
    };
    std::array<fast_series, fast_route_count> fast_{};
};

} // namespace certmate::net
