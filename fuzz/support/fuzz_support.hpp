// What the fuzz targets share: a CA made once per process, and a scratch directory in /dev/shm
// for the parsers that only read files. Thread-safety: the fuzz targets are single-threaded.
#pragma once

#include "core/ca.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

namespace certmate::fuzz {

// An EC P-384 CA, created once (deterministic seeded RNG) and shared by every input.
std::shared_ptr<const certificate_authority> shared_ca();

// A per-process directory under /dev/shm (else the temp dir), created on first use.
const std::filesystem::path& scratch_dir();

// Writes `data` to scratch_dir() / name, replacing it; returns the path.
std::filesystem::path write_scratch(std::string_view name, std::string_view data);

// The fuzzer's bytes as text.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

} // namespace certmate::fuzz
