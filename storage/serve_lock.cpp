#include "storage/serve_lock.hpp"

#include "storage/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace certmate::storage {

result<serve_lock> serve_lock::acquire(const std::filesystem::path& data_dir) {
    if (auto r = ensure_dir(data_dir, fs::perms(0700)); !r) return r.error();
    const auto path = data_dir / "serve.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return make_error(errc::storage_failure, "cannot open " + path.string() + ": " + std::strerror(errno));
    int r;
    while ((r = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {}
    if (r != 0) {
        const int err = errno;
        ::close(fd);
        if (err == EWOULDBLOCK)
            return make_error(errc::conflict, "another certmate serve is running on " + data_dir.string() +
                                                  " (it holds " + path.string() + ")");
        return make_error(errc::storage_failure, "cannot lock " + path.string() + ": " + std::strerror(err));
    }
    return serve_lock(fd);
}

serve_lock::serve_lock(serve_lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

serve_lock::~serve_lock() {
    if (fd_ >= 0) ::close(fd_); // closing the last descriptor releases the flock
}

} // namespace certmate::storage
