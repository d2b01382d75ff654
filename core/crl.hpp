// CRL v2 building. A CRL is an immutable value; its number only grows (the caller persists
// the number before publishing). Thread-safety: free functions, safe from any thread.
#pragma once

#include "core/ca.hpp"
#include "core/cert_record.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace certmate {

struct crl_entry {
    std::string serial_decimal;
    time_point revoked_at{};
    revocation_reason reason = revocation_reason::unspecified;
    std::optional<time_point> invalidity_date;
};

struct crl_params {
    std::uint64_t crl_number = 1;
    time_point this_update{};
    time_point next_update{};
};

struct built_crl {
    std::string der;
    std::string pem;
    std::uint64_t crl_number = 0;
    time_point this_update{};
    time_point next_update{};
};

// v2 CRL signed by the CA: entries with reasonCode (omitted for unspecified, as RFC 5280
// 5.3.1 recommends) and invalidityDate, CRL number, AKI.
result<built_crl> build_crl(const certificate_authority& ca, std::span<const crl_entry> entries, const crl_params& p);

} // namespace certmate
