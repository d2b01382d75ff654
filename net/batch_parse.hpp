// The body readers of POST /api/client-certs/batch (net/api_jobs.cpp), for the fuzz targets
// (docs/fuzzing.md): CSV (a header row, then one row per certificate) and JSON
// ({"certificates":[...]} or {"headers":[...],"rows":[[...]]}), each row a create body.
// Thread-safety: free functions.
#pragma once

#include "core/errc.hpp"
#include "core/job.hpp"

#include <boost/json/object.hpp>

#include <string_view>
#include <vector>

namespace certmate::net {

struct batch_rows {
    std::vector<boost::json::object> rows;
    std::vector<row_error> errors; // rows that could not be read (numbered from 1); their row is {}
};

// errc::invalid_argument for a body that is not a batch at all (the row errors are in `errors`).
result<batch_rows> parse_batch_csv(std::string_view body, std::size_t max_rows);
result<batch_rows> parse_batch_json(std::string_view body, std::size_t max_rows);

} // namespace certmate::net
