// The built binary as a child process: stdout read line by line (with a timeout), stderr to a
// file, signals, and a bounded wait for exit. Killed at destruction if still running.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certmate::test {

class child_process {
public:
    child_process(const std::vector<std::string>& argv, const std::filesystem::path& stderr_file);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // The first stdout line containing `needle` (stdout read until then), or nullopt on timeout/EOF.
    std::optional<std::string> wait_for_line(const std::string& needle, std::chrono::milliseconds timeout);
    void signal(int sig);
    // The exit status (or 128 + signal), or nullopt if still running after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    int pid() const { return pid_; }

private:
    int pid_ = -1;
    int out_fd_ = -1;
    std::string pending_;
    bool exited_ = false;
};

// The port of a "listening on http://HOST:PORT" line.
unsigned short port_of_listen_line(const std::string& line);

} // namespace certmate::test
