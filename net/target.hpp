// The request target (RFC 9112 3.2.1 origin-form) read with Boost.URL: the one percent-decoder of
// net/ (path segments, query pairs, the OCSP GET tail). Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certmate::net {

using path_params = std::vector<std::pair<std::string, std::string>>;

// `in` with its %XX escapes undone (RFC 3986 2.1, either case of hex digit); nullopt for a
// malformed escape or an encoded NUL. '+' stays '+' (it is a space only in a query).
std::optional<std::string> percent_decode(std::string_view in);

struct request_target {
    // The target parsed as origin-form with well-formed escapes and no encoded NUL in the query.
    bool valid = false;
    // The path as sent (escapes kept): what the router matches; up to the first '?' when not valid.
    std::string_view path;
    // The query pairs decoded ('+' is a space, empty parts dropped); empty when not valid.
    path_params query;
};

// Reads `target` (a view into it is kept: it must outlive the result).
request_target parse_target(std::string_view target);

} // namespace certmate::net
