// Pieces of JSON text appended straight to a string, for answers built without a boost::json
// tree (the certificate list, core/cert_json append_json). Each writes exactly what
// boost::json::serialize writes for the same value, so the two paths give the same bytes
// (test_cert_json checks it). Thread-safety: free functions.
#pragma once

#include "core/clock.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace certmate {

// A JSON string (RFC 8259 section 7): `"` and `\` escaped, control characters as \b \t \n \f \r
// or \u00xx (lower-case hex), every other byte (UTF-8 included) as is — boost::json's choices.
void append_json_string(std::string& out, std::string_view s);
// format_time(t) as a JSON string, without strftime for years 1000-9999.
void append_json_time(std::string& out, time_point t);
void append_json_int(std::string& out, std::int64_t v);
void append_json_uint(std::string& out, std::uint64_t v);
inline void append_json_bool(std::string& out, bool v) { out += v ? "true" : "false"; }

} // namespace certmate
