// The one hex codec of the tree (request ids, identifiers, digests). Percent-decoding is net/'s
// (net/target.hpp, Boost.URL): core never sees an escaped string.
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace certmate {

// Lower-case hex, two digits per byte, high nibble first.
std::string hex_encode(std::span<const unsigned char> bytes);

// True when every character is a lower-case hex digit (the form hex_encode writes).
bool is_lower_hex(std::string_view s) noexcept;

// The bytes of lower-case hex (hex_encode's form); nullopt for an odd length or another character.
std::optional<std::string> hex_decode(std::string_view s);

} // namespace certmate
