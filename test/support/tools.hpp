// Shared helpers for tests: temp dirs, running commands, files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace certmate::test {

// A fresh directory under /tmp, removed at destruction (unless CERTMATE_KEEP_TMP is set).
class temp_dir {
public:
    temp_dir();
    explicit temp_dir(const std::filesystem::path& base); // under `base` instead of the system's temp dir
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

private:
    std::filesystem::path path_;
};

struct command_result {
    int exit_code = -1;
    std::string output; // stdout and stderr together
};

// Runs `cmd` with /bin/sh, capturing stdout+stderr.
command_result run(const std::string& cmd);

void write_text(const std::filesystem::path& p, const std::string& data);
std::string read_text(const std::filesystem::path& p);
// The file's lines, without their '\n'.
std::vector<std::string> lines_of(const std::filesystem::path& p);

// The built certmate binary and the source tree.
std::string certmate_binary();

} // namespace certmate::test
