#include "storage/leftovers.hpp"

#include "storage/atomic_file.hpp"

#include <spdlog/spdlog.h>

namespace certmate::storage {

std::vector<fs::path> temp_leftover_dirs(const layout& l) {
    return {l.data_dir,   l.ca_dir(),        l.crl_dir(),
            l.ocsp_dir(), l.state_dir(),     l.state_dir() / "jobs",
            l.tls_dir(),  l.audit_key_dir(), l.audit_log().parent_path()};
}

std::vector<fs::path> remove_temp_leftovers(const layout& l, std::chrono::seconds min_age) {
    std::vector<fs::path> removed;
    const auto now = fs::file_time_type::clock::now();
    for (const auto& dir : temp_leftover_dirs(l)) {
        std::error_code ec;
        bool changed = false;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            if (!is_atomic_temp_name(it->path().filename().string())) continue;
            std::error_code tec;
            if (!it->is_regular_file(tec) || it->is_symlink(tec)) continue;
            const auto mtime = it->last_write_time(tec);
            if (tec || now - mtime < min_age) continue;
            if (!fs::remove(it->path(), tec) || tec) {
                spdlog::error("cannot remove the leftover {}: {}", it->path().string(), tec.message());
                continue;
            }
            spdlog::warn("removed {}, left by an interrupted write", it->path().string());
            removed.push_back(it->path());
            changed = true;
        }
        if (changed) (void)fsync_dir(dir);
    }
    return removed;
}

} // namespace certmate::storage
