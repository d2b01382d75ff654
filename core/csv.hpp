// An RFC 4180 CSV reader: fields separated by commas, records by CRLF (a lone LF or CR is
// accepted too), fields optionally in double quotes, where a quote is written twice and commas
// and line breaks are data. A UTF-8 byte-order mark before the first record is skipped.
// Thread-safety: a free function.
#pragma once

#include "core/errc.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace certmate {

struct csv_record {
    std::size_t line = 0; // the line (1-based) the record starts on
    std::vector<std::string> fields;
};

// Every record of `text`; an empty line is skipped (it is not a record of one empty field). Errors
// (errc::invalid_argument) name the line: a quote inside an unquoted field, text after a closing
// quote, a quoted field left open at the end, or more than `max_records` records.
result<std::vector<csv_record>> parse_csv(std::string_view text, std::size_t max_records);

} // namespace certmate
