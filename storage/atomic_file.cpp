#include "storage/atomic_file.hpp"

#include "core/encoding.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>

namespace certmate::storage {

std::function<int(const fs::path& dir)> fsync_dir_fault_hook;
std::function<int(const fs::path& path)> write_fault_hook;

error storage_io_error(const char* what, const fs::path& p, int err) {
    spdlog::error("storage: {} {}: {}", what, p.string(), std::strerror(err));
    // A directory fsync fails after the rename that made a change visible: not "nothing changed".
    const bool after_change = std::string_view(what) == "fsync dir";
    if (!after_change && (err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO))
        return make_error(errc::storage_unavailable, std::string("the data directory cannot be written (") +
                                                         std::strerror(err) + "); nothing was changed");
    return make_error(errc::storage_failure, std::string("storage: ") + what + " failed");
}

namespace {

constexpr std::string_view temp_marker = ".tmp-";
constexpr std::size_t suffix_len = 12;

error io_error(const char* what, const fs::path& p, int err) { return storage_io_error(what, p, err); }

// Closes the descriptor on scope exit unless released.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

std::string random_suffix() {
    thread_local std::mt19937_64 gen{std::random_device{}()};
    static_assert(suffix_len % 2 == 0 && suffix_len / 2 <= sizeof(std::uint64_t));
    const std::uint64_t v = gen();
    unsigned char b[suffix_len / 2];
    std::memcpy(b, &v, sizeof b);
    return hex_encode(b);
}

// Creates `path` exclusively with exactly `mode` (umask neither narrows nor widens it), writes
// `data` and fsyncs. On failure the half-written file is unlinked.
result<void> create_and_write(const fs::path& path, std::string_view data, fs::perms mode, bool& exists) {
    exists = false;
    if (write_fault_hook)
        if (int err = write_fault_hook(path); err != 0) return io_error("write", path, err);
    const auto m = static_cast<mode_t>(mode) & 07777;
    fd_guard g{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, m)};
    if (g.fd < 0) {
        if (errno == EEXIST) {
            exists = true;
            return make_error(errc::already_exists, "storage: file exists");
        }
        return io_error("create", path, errno);
    }
    if (::fchmod(g.fd, m) != 0 || !write_all(g.fd, data) || ::fsync(g.fd) != 0) {
        int err = errno;
        ::close(g.release());
        ::unlink(path.c_str());
        return io_error("write", path, err);
    }
    if (::close(g.release()) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        return io_error("close", path, err);
    }
    return {};
}

} // namespace

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

result<void> write_file_synced(const fs::path& path, std::string_view data, fs::perms mode) {
    bool exists = false;
    return create_and_write(path, data, mode, exists);
}

result<void> write_file_atomic(const fs::path& path, std::string_view data, fs::perms mode,
                               std::optional<error>& late_error) {
    late_error.reset();
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    fs::path tmp;
    for (int attempt = 0;; ++attempt) {
        tmp = dir / ("." + path.filename().string() + std::string(temp_marker) + random_suffix());
        bool exists = false;
        auto r = create_and_write(tmp, data, mode, exists);
        if (r) break;
        if (!exists || attempt > 8) return r;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return io_error("rename", path, err);
    }
    // From here on the new content is what readers see.
    if (auto r = fsync_dir(dir); !r) late_error = r.error();
    return {};
}

result<void> write_file_atomic(const fs::path& path, std::string_view data, fs::perms mode) {
    std::optional<error> late;
    if (auto r = write_file_atomic(path, data, mode, late); !r) return r;
    if (late) return *late;
    return {};
}

bool is_atomic_temp_name(std::string_view name) noexcept {
    if (name.size() < 1 + temp_marker.size() + suffix_len + 1 || name.front() != '.') return false;
    const auto suffix = name.substr(name.size() - suffix_len);
    if (!is_lower_hex(suffix)) return false;
    return name.substr(name.size() - suffix_len - temp_marker.size(), temp_marker.size()) == temp_marker;
}

result<std::string> read_file(const fs::path& path) {
    fd_guard g{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (g.fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return make_error(errc::not_found, "file not found");
        return io_error("open", path, errno);
    }
    std::string out;
    struct stat st {};
    if (::fstat(g.fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(g.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("read", path, errno);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

result<void> fsync_dir(const fs::path& dir) {
    if (fsync_dir_fault_hook)
        if (int err = fsync_dir_fault_hook(dir); err != 0) return io_error("fsync dir", dir, err);
    fd_guard g{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (g.fd < 0) return io_error("open dir", dir, errno);
    if (::fsync(g.fd) != 0) return io_error("fsync dir", dir, errno);
    return {};
}

result<void> ensure_dir(const fs::path& dir, fs::perms mode) {
    const auto m = static_cast<mode_t>(mode) & 07777;
    fs::path cur;
    for (const auto& part : dir) {
        cur /= part;
        if (cur.empty() || part == cur.root_path()) continue;
        if (::mkdir(cur.c_str(), m) == 0) {
            // mkdir(2) applies the umask; set exactly the mode asked for.
            if (::chmod(cur.c_str(), m) != 0) return io_error("chmod", cur, errno);
            // The new entry lives in the parent: without this fsync a power loss may drop it
            // (and whatever is later renamed into it), see fsync(2) NOTES.
            if (auto r = fsync_dir(cur.has_parent_path() ? cur.parent_path() : fs::path(".")); !r) return r;
            continue;
        }
        if (errno != EEXIST) return io_error("mkdir", cur, errno);
        struct stat st {};
        if (::stat(cur.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return io_error("mkdir (not a directory)", cur, ENOTDIR);
    }
    return {};
}

} // namespace certmate::storage
