// rate_limit.shared on PostgreSQL (docs/high-availability.md "Rate limits"): one row per bucket in
// `rate_buckets`, refilled and taken from in one statement under its row lock, so every instance
// takes from the same bucket. Rows of idle clients are removed now and then.
// Thread-safety: safe from any thread; every call blocks on the network (the pool).
#pragma once

#include "core/rate_limit.hpp"
#include "storage/pg.hpp"

#include <atomic>
#include <memory>

namespace certmate::storage {

// The table, created when missing (also by the migrations).
inline constexpr std::string_view pg_rate_buckets_schema = R"sql(
CREATE TABLE IF NOT EXISTS rate_buckets (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    at timestamptz NOT NULL,
    taken boolean NOT NULL
);
)sql";

class pg_rate_buckets final : public shared_rate_buckets {
public:
    explicit pg_rate_buckets(std::shared_ptr<pg::pool> pool) : pool_(std::move(pool)) {}
    static result<void> ensure_schema(pg::connection& c);
    result<rate_decision> take(std::string_view key, rate_class c, int per_minute) override;

private:
    std::shared_ptr<pg::pool> pool_;
    std::atomic<unsigned> takes_{0};
};

} // namespace certmate::storage
