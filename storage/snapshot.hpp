// The start-up snapshot file, state/index.snapshot (docs/architecture.md "Start-up snapshot"):
// every certificate record (core/record_codec.hpp) and, for each certificate directory, the
// inode and mtime it had when the snapshot was written. load_all() uses a record only while its
// directory still has that stamp; the directories stay the source of truth.
// Layout: "CMSNAP1\n", varints (format version, record_codec_version, write count, record count,
// records length), the records (each a varint length and its encoding), a varint stamp count,
// the stamps (varint usage, name, inode, zig-zag mtime in ns), then CRC-32 of all before (4 bytes LE).
// Thread-safety: free functions.
#pragma once

#include "core/cert_record.hpp"
#include "storage/layout.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace certmate::storage {

struct dir_stamp {
    std::uint64_t ino = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const dir_stamp&) const = default;
};
// Keyed "<usage>/<identifier>".
using dir_stamps = std::unordered_map<std::string, dir_stamp>;

// lstat(2) of a certificate directory; nullopt when it is not one (or is gone).
std::optional<dir_stamp> stamp_of(const fs::path& dir);
// The stamps of every certificate directory load_all() would load (valid identifiers, not hidden).
dir_stamps scan_stamps(const layout& l);

// The file's bytes: `records` holds `count` records, each a varint length and encode_record().
std::string encode_snapshot(const std::string& records, std::size_t count, std::uint64_t write_count,
                            const dir_stamps& stamps);
struct snapshot {
    std::vector<cert_record> records;
    dir_stamps stamps;
};
// The error's message says why the file cannot be used ("truncated", "checksum mismatch", ...).
result<snapshot> decode_snapshot(std::string_view file);

} // namespace certmate::storage
