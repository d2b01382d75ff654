// The audit log (DESIGN.md 8): JSON Lines at logs/audit/certificate_audit.log, the seed's fields
// plus seq, prev_hash and hash (SHA-256 over the line without `hash`, chained). Each append is
// written and fsynced before it returns. If a write fails the log turns unhealthy and refuses
// further appends (fail closed) until reopen() succeeds.
// Thread-safety: all members are safe from any thread (an internal mutex orders appends).
// Several processes (the server and a CLI command) may append to the same file: each append
// takes an flock(2) and first catches up with entries another process wrote.
#pragma once

#include "core/clock.hpp"
#include "core/errc.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace certmate::storage {

struct audit_entry {
    std::string operation;       // create|revoke|unhold|renew|auto_renew|update|download|batch_import|denied|ca_init|...
    std::string resource_type = "certificate"; // certificate|endpoint|ca|token
    std::string resource_id;
    std::string status = "success"; // success|failure|denied
    std::string user;
    std::string ip_address;
    // What authenticated (docs/security.md "Audit"): {"kind":"token","name":..} or
    // {"kind":"certificate","id":..,"serial":..}; omitted when empty.
    boost::json::object actor;
    boost::json::object details;
    std::optional<std::string> error;
};

struct audit_query {
    std::string resource_id;
    std::string operation;
    std::optional<time_point> since, until;
    std::size_t limit = 100;     // newest first
};

class audit_log {
public:
    // Opens (creating dirs and file, 0600) and reads the last line to continue the chain.
    static result<std::unique_ptr<audit_log>> open(std::filesystem::path file, clock_fn clock);

    // errc::audit_unavailable when the log is unhealthy or the write/fsync fails.
    result<void> append(const audit_entry& e);
    bool healthy() const;
    std::string last_error() const;
    std::uint64_t next_seq() const;
    // Newest-first entries matching the query (reads the file).
    result<std::vector<boost::json::object>> query(const audit_query& q) const;

    // Test hook: makes the next writes fail as a full disk would.
    void simulate_failure(bool on);
    // Closes and reopens the file, re-reading the chain's tail; healthy again on success.
    result<void> reopen();

private:
    audit_log(std::filesystem::path file, clock_fn clock) : file_(std::move(file)), clock_(std::move(clock)) {}
    std::filesystem::path file_;
    clock_fn clock_;
    mutable std::mutex mu_;
    int fd_ = -1;
    std::uint64_t seq_ = 0;      // seq of the next entry
    std::string last_hash_;      // hex; 64 zeros before the first entry
    std::uint64_t size_seen_ = 0; // file size after our last write: a change means another process appended
    bool healthy_ = true;
    bool simulate_failure_ = false;
    std::string last_error_;
public:
    ~audit_log();
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;
};

struct audit_verify_result {
    bool ok = true;
    std::size_t entries = 0;
    std::size_t bad_line = 0;    // 1-based, when !ok
    std::string reason;
};
// Walks the chain: each line parses, seq increments, prev_hash equals the previous hash and
// hash matches the recomputed one.
audit_verify_result verify_audit_file(const std::filesystem::path& file);

} // namespace certmate::storage
