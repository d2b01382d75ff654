#include "core/encoding.hpp"

namespace certmate {

namespace {

constexpr std::string_view lower_hex_digits = "0123456789abcdef";

} // namespace

std::string hex_encode(std::span<const unsigned char> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += lower_hex_digits[c >> 4];
        out += lower_hex_digits[c & 0x0f];
    }
    return out;
}

bool is_lower_hex(std::string_view s) noexcept {
    return s.find_first_not_of(lower_hex_digits) == std::string_view::npos;
}

} // namespace certmate
