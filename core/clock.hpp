// Time and randomness are parameters of core/, so tests are deterministic.
// Thread-safety: the default implementations are safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <optional>

namespace certmate {

using time_point = std::chrono::system_clock::time_point;
using clock_fn = std::function<time_point()>;
// Fills the span with cryptographically strong random bytes.
using rng_fn = std::function<void(std::span<unsigned char>)>;

clock_fn system_clock_fn();
rng_fn openssl_rng();

// RFC 3339 UTC with seconds: 2024-10-30T18:00:00Z.
std::string format_time(time_point t);
std::optional<time_point> parse_time(std::string_view s);

} // namespace certmate
