// The ustar reader of CA backups (core/tar.hpp tar_unpack) and the restore that checks an
// archive's members (storage/ca_files.hpp restore_ca, into a scratch data dir in /dev/shm).
// What unpacks packs again to the same members.
#include "core/tar.hpp"
#include "storage/ca_files.hpp"
#include "support/fuzz_support.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace certmate;
    const auto bytes = fuzz::as_text(data, size);
    auto files = tar_unpack(bytes);
    if (!files) {
        if (files.error().code != errc::invalid_argument) std::abort();
        return 0;
    }
    // Names of up to 99 bytes without NULs survive a round trip (tar_pack's contract).
    bool packable = true;
    for (const auto& [name, content] : *files) packable = packable && name.size() <= 99;
    if (packable) {
        auto again = tar_unpack(tar_pack(*files));
        if (!again || *again != *files) std::abort();
    }
    // The restore reads the archive from a file and writes the data dir: both in the scratch dir.
    const auto archive = fuzz::write_scratch("backup.tar", bytes);
    storage::layout l{fuzz::scratch_dir() / "data"};
    std::error_code ec;
    std::filesystem::remove_all(l.data_dir, ec);
    std::filesystem::create_directories(l.data_dir, ec);
    (void)storage::restore_ca(l, archive, false);
    return 0;
}
