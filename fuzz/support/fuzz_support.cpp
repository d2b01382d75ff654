#include "support/fuzz_support.hpp"

#include "support/memory_ports.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace certmate::fuzz {

using namespace std::chrono_literals;

std::shared_ptr<const certificate_authority> shared_ca() {
    static const std::shared_ptr<const certificate_authority> ca = [] {
        ca_options opts;
        opts.type = key_type::ec_p384;
        const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 1 / 1};
        auto made = certificate_authority::create(opts, t0, test::seeded_rng(1));
        if (!made) throw std::runtime_error("fuzz: cannot create the CA: " + made.error().message);
        return std::make_shared<const certificate_authority>(std::move(*made));
    }();
    return ca;
}

const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                               : std::filesystem::temp_directory_path();
        auto d = base / ("certmate-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        // Removed at exit (libFuzzer exits through exit() after -max_total_time).
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_dir(), ec);
        });
        return d;
    }();
    return dir;
}

std::filesystem::path write_scratch(std::string_view name, std::string_view data) {
    auto p = scratch_dir() / std::string(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) throw std::runtime_error("fuzz: cannot write " + p.string());
    return p;
}

} // namespace certmate::fuzz
