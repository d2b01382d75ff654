// A varied certificate record per index (every status, usage, history, SANs, notes), for the
// metadata, index and store suites.
#pragma once

#include "core/cert_record.hpp"

namespace certmate::test {

// 2025-01-01 12:00 UTC: record i is created i hours later.
extern const time_point sample_t0;

cert_record make_record(int i);

} // namespace certmate::test
