// One `certmate serve` per data dir: an exclusive flock(2) on <data_dir>/serve.lock, held for the
// life of the process. The start-up clean-up (temp leftovers removed whatever their age, and
// fs_store's roll-back of interrupted creates and replaces) is only sound when no other server
// writes: without the lock a second `serve` (even one that then fails to bind the port) deleted
// the live server's writes in flight. Thread-safety: one object per process, not shared.
#pragma once

#include "core/errc.hpp"

#include <filesystem>

namespace certmate::storage {

class serve_lock {
public:
    // Creates the data dir (0700) if needed and takes the lock; errc::conflict when another
    // process holds it.
    static result<serve_lock> acquire(const std::filesystem::path& data_dir);
    serve_lock(serve_lock&& o) noexcept;
    serve_lock& operator=(serve_lock&&) = delete;
    serve_lock(const serve_lock&) = delete;
    ~serve_lock();

private:
    explicit serve_lock(int fd) noexcept : fd_(fd) {}
    int fd_ = -1;
};

} // namespace certmate::storage
