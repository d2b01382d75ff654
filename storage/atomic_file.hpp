// Files that matter are written atomically: temp file in the same directory, write, fsync,
// rename over the target, fsync the directory. Thread-safety: free functions; concurrent
// writers of the same path must be serialised by the caller.
#pragma once

#include "core/errc.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace certmate::storage {

namespace fs = std::filesystem;

// Writes `data` to `path` atomically with permissions `mode` (set before any byte is written).
result<void> write_file_atomic(const fs::path& path, std::string_view data, fs::perms mode = fs::perms(0644));
// The same, except that a directory fsync failing AFTER the rename is no error: the new content
// is in place (readers see it), so the call succeeds and the failure is put in `late_error` for
// the caller to report (the rename may not survive a power loss).
result<void> write_file_atomic(const fs::path& path, std::string_view data, fs::perms mode,
                               std::optional<error>& late_error);
// True for the names of write_file_atomic's temp files (".<name>.tmp-<12 hex>"): a leftover when
// no write is in flight.
bool is_atomic_temp_name(std::string_view filename) noexcept;
// Writes a new file (no rename) and fsyncs it; used inside temp directories.
result<void> write_file_synced(const fs::path& path, std::string_view data, fs::perms mode);
result<std::string> read_file(const fs::path& path);
// write(2) of all of `data` to `fd`, retrying on EINTR and short writes; false with errno set.
bool write_all(int fd, std::string_view data);
result<void> fsync_dir(const fs::path& dir);
// mkdir -p with `mode` for the directories created; each new directory's parent is fsynced, so
// the new entry survives a power loss.
result<void> ensure_dir(const fs::path& dir, fs::perms mode = fs::perms(0755));

// Test hook: when set, fsync_dir(dir) first asks it and fails with the errno it returns (0: go on
// normally). Set only while no other thread writes.
extern std::function<int(const fs::path& dir)> fsync_dir_fault_hook;
// Test hook: when set, every file write first asks it and fails with the errno it returns (0: go
// on), as a failing disk would (EIO, ENOSPC).
extern std::function<int(const fs::path& path)> write_fault_hook;

// The error of a failed file system call (logged with the path): errc::storage_unavailable (503:
// the disk is full or read-only or failing; nothing was changed, retry later) for ENOSPC, EDQUOT,
// EROFS and EIO, errc::storage_failure otherwise. The message names no path.
error storage_io_error(const char* what, const fs::path& p, int err);

} // namespace certmate::storage
