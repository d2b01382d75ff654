// Files that matter are written atomically: temp file in the same directory, write, fsync,
// rename over the target, fsync the directory. Thread-safety: free functions; concurrent
// writers of the same path must be serialised by the caller.
#pragma once

#include "core/errc.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace certmate::storage {

namespace fs = std::filesystem;

// Writes `data` to `path` atomically with permissions `mode` (set before any byte is written).
result<void> write_file_atomic(const fs::path& path, std::string_view data, fs::perms mode = fs::perms(0644));
// Writes a new file (no rename) and fsyncs it; used inside temp directories.
result<void> write_file_synced(const fs::path& path, std::string_view data, fs::perms mode);
result<std::string> read_file(const fs::path& path);
// write(2) of all of `data` to `fd`, retrying on EINTR and short writes; false with errno set.
bool write_all(int fd, std::string_view data);
result<void> fsync_dir(const fs::path& dir);
// mkdir -p with `mode` for the directories created.
result<void> ensure_dir(const fs::path& dir, fs::perms mode = fs::perms(0755));

} // namespace certmate::storage
