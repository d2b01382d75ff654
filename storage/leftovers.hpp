// Start-up clean-up of write_file_atomic's temp files (".<name>.tmp-<12 hex>") that an
// interrupted write left in the data dir's fixed directories. Certificate directories are
// cleaned by fs_store::load_all. Thread-safety: free function; run before any writer starts.
#pragma once

#include "storage/layout.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace certmate::storage {

// The directories searched: the data dir itself (admin.token, certmate.conf), certs/ca,
// certs/crl, certs/ocsp, certs/audit (the audit signing key), state, state/jobs, tls and the audit log's directory.
std::vector<fs::path> temp_leftover_dirs(const layout& l);

// Removes (and logs) every temp file in temp_leftover_dirs() last modified at least `min_age`
// ago, and returns their paths. `min_age` 0 removes all (the server's own start, when nothing
// else writes); a command that may run beside a live server passes a margin so it never
// removes a write in flight.
std::vector<fs::path> remove_temp_leftovers(const layout& l, std::chrono::seconds min_age);

} // namespace certmate::storage
