// A decimal serial number as a compact map key: two digits a byte, no heap allocation (a
// std::string key of 39 digits costs 32 bytes inline plus a 48-byte heap block). What the
// per-serial tables (ocsp_table, serial_owner_table) are keyed by, 30,000+ entries each.
// Thread-safety: a plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace certmate {

struct serial_key {
    std::array<std::uint8_t, 25> bcd{}; // digit 2i in the high nibble, 2i+1 in the low one
    std::uint8_t digits = 0;
    bool operator==(const serial_key&) const = default;

    // nullopt unless 1 to 50 decimal digits: no serial of ours (RFC 5280 4.1.2.2: at most 20
    // octets, 49 digits); a table answers such a serial as never issued.
    static std::optional<serial_key> from_decimal(std::string_view s) noexcept {
        if (s.empty() || s.size() > 50) return std::nullopt;
        serial_key k;
        k.digits = static_cast<std::uint8_t>(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] < '0' || s[i] > '9') return std::nullopt;
            const auto d = static_cast<std::uint8_t>(s[i] - '0');
            k.bcd[i / 2] |= static_cast<std::uint8_t>(i % 2 ? d : d << 4);
        }
        return k;
    }
};

struct serial_key_hash {
    std::size_t operator()(const serial_key& k) const noexcept {
        std::uint64_t h = 1469598103934665603ull ^ k.digits; // FNV-1a
        for (std::size_t i = 0; i < (k.digits + 1u) / 2; ++i) h = (h ^ k.bcd[i]) * 1099511628211ull;
        return static_cast<std::size_t>(h);
    }
};

} // namespace certmate
