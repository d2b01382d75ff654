// A compact binary form of cert_record for the start-up snapshot (docs/architecture.md
// "Start-up snapshot"): every field, lengths as LEB128 varints, times as nanoseconds since the
// epoch. Not an exchange format: only the same record_codec_version reads it back, and the
// snapshot that carries it is checked and thrown away when anything is off.
// Thread-safety: free functions on plain values.
#pragma once

#include "core/cert_record.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certmate {

// Bumped whenever cert_record or the encoding changes: an older snapshot is then ignored.
inline constexpr std::uint32_t record_codec_version = 1;

// Appends the encoding of `r` to `out`.
void encode_record(const cert_record& r, std::string& out);
// Appends a varint of the encoding's length, then the encoding (the snapshot's framing).
void append_framed_record(const cert_record& r, std::string& out);
// Decodes one record from the front of `in` and advances it; nullopt when malformed or cut short.
std::optional<cert_record> decode_record(std::string_view& in);

} // namespace certmate
