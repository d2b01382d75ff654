// The one hex and percent codec of the tree (request ids, identifiers, digests, URL paths and queries).
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace certmate {

// Lower-case hex, two digits per byte, high nibble first.
std::string hex_encode(std::span<const unsigned char> bytes);

// True when every character is a lower-case hex digit (the form hex_encode writes).
bool is_lower_hex(std::string_view s) noexcept;

// Decodes %XX escapes (RFC 3986 section 2.1; either case of hex digit); false for a malformed
// escape or an encoded NUL. Other characters, '+' included, are copied as they are.
bool percent_decode(std::string_view in, std::string& out);

} // namespace certmate
