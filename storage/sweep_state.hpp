// Bookkeeping of the renewal sweep under state/: the last run and its summary
// (state/renewal_sweep.json), written atomically. Thread-safety: free functions.
#pragma once

#include "core/errc.hpp"
#include "core/renewal_summary.hpp"
#include "storage/layout.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

namespace certmate::storage {

// A sweep record as renewal_sweep.json holds it (nullopt when it is not one).
std::optional<renewal_summary> parse_last_sweep(std::string_view text);
// The last recorded run (nullopt when none, or when the file is unreadable: logged).
std::optional<renewal_summary> load_last_sweep(const layout& l);
// `late`, when given, takes a directory fsync failure after the rename (see write_file_atomic).
result<void> save_last_sweep(const layout& l, const renewal_summary& s, std::optional<error>* late = nullptr);

} // namespace certmate::storage
