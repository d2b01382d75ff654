// Boost.Test printing of CertMate values in failed assertions.
#pragma once

#include "core/cert_record.hpp"
#include "core/errc.hpp"
#include "core/service.hpp"

#include <ostream>

namespace certmate {
inline std::ostream& operator<<(std::ostream& os, cert_status s) { return os << to_string(s); }
inline std::ostream& operator<<(std::ostream& os, errc e) { return os << errc_name(e); }
inline std::ostream& operator<<(std::ostream& os, ocsp_single_answer::state s) {
    return os << (s == ocsp_single_answer::state::good      ? "good"
                  : s == ocsp_single_answer::state::revoked ? "revoked"
                                                            : "unknown");
}
} // namespace certmate
