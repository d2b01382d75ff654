#include "storage/pg_rate_buckets.hpp"

#include <cmath>

namespace certmate::storage {

result<void> pg_rate_buckets::ensure_schema(pg::connection& c) { return c.exec_script(pg_rate_buckets_schema); }

result<rate_decision> pg_rate_buckets::take(std::string_view key, rate_class c, int per_minute) {
    auto lease = pool_->acquire();
    if (!lease) return lease.error();
    const std::string k = std::string(to_string(c)) + ":" + std::string(key);
    // Refill by the time since the last take (the database's clock: one clock for all instances),
    // then take one token when a whole one is there (the tolerance as rate_limiter's); one
    // statement under the row's lock.
    static constexpr const char* refill =
        "least($2::float8, r.tokens + extract(epoch FROM now() - r.at) * $2::float8 / 60.0)";
    static const std::string sql =
        std::string("INSERT INTO rate_buckets AS r (key, tokens, at, taken) VALUES ($1, $2::float8 - 1, now(), true) "
                    "ON CONFLICT (key) DO UPDATE SET tokens = CASE WHEN ") +
        refill + " >= 1 - 1e-9 THEN greatest(0, " + refill + " - 1) ELSE " + refill + " END, taken = " + refill +
        " >= 1 - 1e-9, at = now() RETURNING tokens, taken";
    auto r = (*lease)->exec(sql, {k, per_minute});
    if (!r) return r.error();
    if (r->empty()) return make_error(errc::storage_failure, "rate bucket not returned");
    const double left = std::strtod(std::string(r->text(0, 0)).c_str(), nullptr);
    rate_decision d;
    d.limited = true;
    d.limit = per_minute;
    if (r->boolean(0, 1)) {
        d.remaining = static_cast<int>(std::floor(std::max(0.0, left)));
    } else {
        d.allowed = false;
        const double wait = (1.0 - left) * 60.0 / per_minute;
        d.retry_after = std::chrono::seconds(static_cast<long>(std::ceil(wait)));
    }
    // Buckets idle long enough to be full again are dropped now and then (every 1,000th take).
    if (++takes_ % 1000 == 0)
        (void)(*lease)->exec("DELETE FROM rate_buckets WHERE at < clock_timestamp() - interval '1 hour'");
    return d;
}

} // namespace certmate::storage
