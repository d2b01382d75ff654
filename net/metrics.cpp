#include "net/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace certmate::net {

namespace {

// Label values escape backslash, double quote and newline.
std::string escape(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

} // namespace

void metrics::observe_request(std::string_view route, std::string_view method, unsigned status, double seconds) {
    std::lock_guard lock(mu_);
    ++requests_[{std::string(route), std::string(method), status}];
    auto& h = latency_[std::string(route)];
    for (std::size_t i = 0; i < bounds_.size(); ++i)
        if (seconds <= bounds_[i]) ++h.buckets[i];
    ++h.count;
    h.sum += seconds;
}

void metrics::observe_fast(fast_route r, double seconds) {
    auto& f = fast_[static_cast<std::size_t>(r)];
    // One increment, in the first bucket that holds it (made cumulative at scrape time).
    for (std::size_t i = 0; i < bounds_.size(); ++i)
        if (seconds <= bounds_[i]) {
            f.buckets[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    f.sum_ns.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
    f.count.fetch_add(1, std::memory_order_relaxed);
}

void metrics::rate_limited(rate_class c) {
    std::lock_guard lock(mu_);
    ++rate_limited_[static_cast<std::size_t>(c)];
}

void metrics::denied(std::string_view reason) {
    std::lock_guard lock(mu_);
    ++denied_[std::string(reason)];
}

void metrics::connection_refused(std::string_view reason) {
    std::lock_guard lock(mu_);
    ++connections_refused_[std::string(reason)];
}

void metrics::next_renewal(double unix_seconds) {
    std::lock_guard lock(mu_);
    next_renewal_ = unix_seconds;
}

void metrics::renewals(std::size_t ok, std::size_t failed) {
    std::lock_guard lock(mu_);
    renewals_ok_ += ok;
    renewals_failed_ += failed;
}

void metrics::crl_built(bool ok) {
    std::lock_guard lock(mu_);
    ++(ok ? crl_builds_ok_ : crl_builds_failed_);
}

void metrics::crl_wait_timed_out() {
    std::lock_guard lock(mu_);
    ++crl_wait_timeouts_;
}

void metrics::job_row(std::string_view kind, bool ok) {
    std::lock_guard lock(mu_);
    ++job_rows_[{std::string(kind), ok}];
}

std::string metrics::render(const metrics_snapshot& s) const {
    std::string out;
    header(out, "certmate_certificates", "gauge", "Client certificates by state.");
    for (const auto& [state, n] : s.certificates_by_state)
        out += fmt::format("certmate_certificates{{state=\"{}\"}} {}\n", escape(state), n);
    header(out, "certmate_certificates_by_usage", "gauge", "Client certificates by usage.");
    for (const auto& [usage, n] : s.certificates_by_usage)
        out += fmt::format("certmate_certificates_by_usage{{usage=\"{}\"}} {}\n", escape(usage), n);
    header(out, "certmate_certificates_expiring_soon", "gauge",
           "Active certificates expiring within the configured window.");
    out += fmt::format("certmate_certificates_expiring_soon {}\n", s.expiring_soon);
    if (s.have_crl) {
        header(out, "certmate_crl_age_seconds", "gauge", "Seconds since the current CRL's thisUpdate.");
        out += fmt::format("certmate_crl_age_seconds {:.3f}\n", s.crl_age_seconds);
        header(out, "certmate_crl_next_update_seconds", "gauge", "Seconds until the current CRL's nextUpdate.");
        out += fmt::format("certmate_crl_next_update_seconds {:.3f}\n", s.crl_next_update_seconds);
        header(out, "certmate_crl_number", "gauge", "CRL number of the current CRL.");
        out += fmt::format("certmate_crl_number {}\n", s.crl_number);
    }
    header(out, "certmate_http_connections", "gauge", "Open HTTP connections.");
    out += fmt::format("certmate_http_connections {}\n", s.connections);
    header(out, "certmate_rate_limit_buckets", "gauge", "Token buckets held by the rate limiter.");
    out += fmt::format("certmate_rate_limit_buckets {}\n", s.rate_limit_buckets);
    header(out, "certmate_audit_log_healthy", "gauge", "1 when the audit log accepts writes.");
    out += fmt::format("certmate_audit_log_healthy {}\n", s.audit_healthy ? 1 : 0);
    if (s.storage.shared) {
        const auto& d = s.storage;
        out += "# HELP certmate_db_pool_connections Database connections of this instance by state.\n"
               "# TYPE certmate_db_pool_connections gauge\n";
        out += fmt::format("certmate_db_pool_connections{{state=\"idle\"}} {}\n", d.pool_idle);
        out += fmt::format("certmate_db_pool_connections{{state=\"in_use\"}} {}\n", d.pool_in_use);
        out += fmt::format("# TYPE certmate_db_pool_size gauge\ncertmate_db_pool_size {}\n", d.pool_size);
        out += fmt::format("# HELP certmate_db_pool_timeouts_total Waits for a free connection that ran out.\n"
                           "# TYPE certmate_db_pool_timeouts_total counter\ncertmate_db_pool_timeouts_total {}\n",
                           d.pool_timeouts);
        out += fmt::format(
            "# TYPE certmate_db_connections_opened_total counter\ncertmate_db_connections_opened_total {}\n",
            d.pool_opened);
        out += fmt::format(
            "# TYPE certmate_db_connections_broken_total counter\ncertmate_db_connections_broken_total {}\n",
            d.pool_broken);
        out += fmt::format("# HELP certmate_db_change_seq The newest change of the shared store read here.\n"
                           "# TYPE certmate_db_change_seq gauge\ncertmate_db_change_seq {}\n",
                           d.change_seq);
        if (d.latency_seconds)
            out += fmt::format("# HELP certmate_db_latency_seconds The change watch's last round trip.\n"
                               "# TYPE certmate_db_latency_seconds gauge\ncertmate_db_latency_seconds {:.6f}\n",
                               *d.latency_seconds);
        if (d.notification_lag_seconds)
            out += fmt::format("# HELP certmate_db_notification_lag_seconds Commit at another instance to delivery "
                               "here, of the last change.\n# TYPE certmate_db_notification_lag_seconds gauge\n"
                               "certmate_db_notification_lag_seconds {:.6f}\n",
                               *d.notification_lag_seconds);
        if (d.last_heard)
            out += fmt::format("# HELP certmate_db_last_heard_age_seconds Since the change watch last heard from the "
                               "database.\n# TYPE certmate_db_last_heard_age_seconds gauge\n"
                               "certmate_db_last_heard_age_seconds {:.3f}\n",
                               s.now_unix - std::chrono::duration<double>(d.last_heard->time_since_epoch()).count());
    }

    std::lock_guard lock(mu_);
    // The fast path's answers, merged into their route's series (copies: a scrape is rare).
    auto requests = requests_;
    auto latency = latency_;
    static constexpr std::pair<const char*, const char*> fast_labels[fast_route_count] = {{"/ocsp", "POST"},
                                                                                          {"/ocsp/{*req}", "GET"}};
    for (std::size_t r = 0; r < fast_route_count; ++r) {
        const auto& f = fast_[r];
        std::array<std::uint64_t, bounds_.size()> cumulative{};
        std::uint64_t below = 0;
        for (std::size_t i = 0; i < bounds_.size(); ++i)
            cumulative[i] = below += f.buckets[i].load(std::memory_order_relaxed);
        // Read after the buckets, and never below them: +Inf holds every bucket.
        const auto count = std::max(below, f.count.load(std::memory_order_relaxed));
        if (count == 0) continue;
        requests[{fast_labels[r].first, fast_labels[r].second, 200}] += count;
        auto& h = latency[fast_labels[r].first];
        for (std::size_t i = 0; i < bounds_.size(); ++i) h.buckets[i] += cumulative[i];
        h.count += count;
        h.sum += static_cast<double>(f.sum_ns.load(std::memory_order_relaxed)) / 1e9;
    }
    header(out, "certmate_http_requests_total", "counter", "HTTP requests answered, by route, method and status.");
    for (const auto& [key, n] : requests) {
        const auto& [route, method, status] = key;
        out += fmt::format("certmate_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                           escape(route), escape(method), status, n);
    }
    header(out, "certmate_http_request_duration_seconds", "histogram", "Time to answer a request, by route.");
    for (const auto& [route, h] : latency) {
        const auto r = escape(route);
        for (std::size_t i = 0; i < bounds_.size(); ++i)
            out += fmt::format("certmate_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", r,
                               bounds_[i], h.buckets[i]);
        out +=
            fmt::format("certmate_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", r, h.count);
        out += fmt::format("certmate_http_request_duration_seconds_sum{{route=\"{}\"}} {:.6f}\n", r, h.sum);
        out += fmt::format("certmate_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", r, h.count);
    }
    header(out, "certmate_rate_limited_total", "counter", "Requests refused with 429, by class.");
    for (std::size_t i = 0; i < rate_class_count; ++i)
        out += fmt::format("certmate_rate_limited_total{{class=\"{}\"}} {}\n", to_string(static_cast<rate_class>(i)),
                           rate_limited_[i]);
    header(out, "certmate_http_connections_refused_total", "counter",
           "Connections refused at accept: per-address cap, reserve, or max_connections.");
    for (const char* reason : {"per_address", "reserve", "limit"}) {
        auto it = connections_refused_.find(reason);
        out += fmt::format("certmate_http_connections_refused_total{{reason=\"{}\"}} {}\n", reason,
                           it == connections_refused_.end() ? 0 : it->second);
    }
    header(out, "certmate_auth_denied_total", "counter", "Requests denied by authentication or role.");
    for (const auto& [reason, n] : denied_)
        out += fmt::format("certmate_auth_denied_total{{reason=\"{}\"}} {}\n", escape(reason), n);
    header(out, "certmate_renewals_total", "counter", "Certificate renewals by the sweep, by result.");
    out += fmt::format("certmate_renewals_total{{result=\"ok\"}} {}\n", renewals_ok_);
    out += fmt::format("certmate_renewals_total{{result=\"failed\"}} {}\n", renewals_failed_);
    header(out, "certmate_renewal_next_run_timestamp_seconds", "gauge",
           "When the next renewal sweep runs (Unix time).");
    out += fmt::format("certmate_renewal_next_run_timestamp_seconds {:.0f}\n", next_renewal_);
    header(out, "certmate_crl_builds_total", "counter", "CRL builds, by result.");
    out += fmt::format("certmate_crl_builds_total{{result=\"ok\"}} {}\n", crl_builds_ok_);
    out += fmt::format("certmate_crl_builds_total{{result=\"failed\"}} {}\n", crl_builds_failed_);
    header(out, "certmate_crl_wait_timeouts_total", "counter",
           "Waits for a CRL listing a revocation that passed their bound: CRL requests answered 503, and "
           "revocations (shared store), batch revoke jobs and sweeps answered before their CRL.");
    out += fmt::format("certmate_crl_wait_timeouts_total {}\n", crl_wait_timeouts_);
    header(out, "certmate_ocsp_responses_total", "counter",
           "OCSP answers: each CertID of a successful response by status, error responses by kind.");
    static constexpr const char* ocsp_labels[ocsp_outcome_count] = {"good",      "revoked",      "unknown",
                                                                    "malformed", "unauthorized", "internal_error"};
    for (std::size_t i = 0; i < ocsp_outcome_count; ++i)
        out += fmt::format("certmate_ocsp_responses_total{{status=\"{}\"}} {}\n", ocsp_labels[i], ocsp_[i].load());
    header(out, "certmate_ocsp_cache_total", "counter",
           "OCSP requests without a nonce, answered from the cache (hit) or signed (miss).");
    out += fmt::format("certmate_ocsp_cache_total{{result=\"hit\"}} {}\n", ocsp_cache_hits_.load());
    out += fmt::format("certmate_ocsp_cache_total{{result=\"miss\"}} {}\n", ocsp_cache_misses_.load());
    header(out, "certmate_ocsp_fast_path_total", "counter",
           "OCSP answers from the cache for request bytes seen before, sent without routing (also counted as hits).");
    std::uint64_t fast = 0;
    for (const auto& f : fast_) fast += f.count.load(std::memory_order_relaxed);
    out += fmt::format("certmate_ocsp_fast_path_total {}\n", fast);
    header(out, "certmate_jobs", "gauge", "Batch jobs kept, by state.");
    for (const auto& [state, n] : s.jobs_by_state)
        out += fmt::format("certmate_jobs{{state=\"{}\"}} {}\n", escape(state), n);
    header(out, "certmate_job_rows_total", "counter", "Batch job rows done, by kind and result.");
    for (const char* kind : {"create", "revoke"})
        for (bool ok : {true, false}) {
            auto it = job_rows_.find({kind, ok});
            out += fmt::format("certmate_job_rows_total{{kind=\"{}\",result=\"{}\"}} {}\n", kind, ok ? "ok" : "failed",
                               it == job_rows_.end() ? 0 : it->second);
        }
    return out;
}

} // namespace certmate::net
