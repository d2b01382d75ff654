// The audit port (docs/audit.md, SECURITY.md "What the audit log proves, and to whom"): what the service needs of the
// audit log. core/ defines it; storage/audit_log implements it on a file.
// Thread-safety: implementations are safe from any thread.
#pragma once

#include "core/clock.hpp"
#include "core/errc.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace certmate {

struct audit_entry {
    std::string operation; // create|revoke|unhold|renew|auto_renew|update|download|batch_import|denied|ca_init|...
    std::string resource_type = "certificate"; // certificate|endpoint|ca|token
    std::string resource_id;
    std::string status = "success"; // success|failure|denied
    std::string user;
    std::string ip_address;
    // What authenticated (SECURITY.md "Audit"): {"kind":"token","name":..} or
    // {"kind":"certificate","id":..,"serial":..}; omitted when empty.
    boost::json::object actor;
    boost::json::object details;
    std::optional<std::string> error;
};

struct audit_query {
    std::string resource_id;
    std::string operation;
    std::optional<time_point> since, until;
    std::size_t limit = 100; // newest first
};

struct audit_repair_note {
    std::uint64_t seq = 0;
    std::uint64_t removed_bytes = 0;
};

struct audit_verify_result {
    bool ok = true;
    std::size_t entries = 0;
    std::size_t bad_line = 0; // 1-based, when !ok
    std::string reason;
    std::size_t checkpoints = 0;           // checkpoints whose signature verified
    std::size_t unchecked_checkpoints = 0; // seen without a public key to check them
    std::uint64_t last_checkpoint_seq = 0;
    std::size_t after_last_checkpoint = 0; // entries not covered by any checkpoint
    std::vector<audit_repair_note> repairs;
};

// A range of the log as exported (GET /api/audit/export): the lines exactly as in the file, each
// with its '\n', and an Ed25519 signature over exactly those bytes.
struct audit_export {
    std::uint64_t from_seq = 0, to_seq = 0;
    std::size_t count = 0;
    std::string bytes;
    std::string signature; // raw 64 bytes
    std::string key_id;    // SHA-256 hex of the signing key's SubjectPublicKeyInfo
};

class audit_sink {
public:
    virtual ~audit_sink() = default;
    // Appended and durable (fsynced) when it returns; errc::audit_unavailable otherwise.
    virtual result<void> append(const audit_entry& e) = 0;
    // The last write succeeded.
    virtual bool healthy() const = 0;
    // Newest-first entries matching the query.
    virtual result<std::vector<boost::json::object>> query(const audit_query& q) const = 0;
    // Forces a retry of a broken log (SIGHUP).
    virtual result<void> reopen() = 0;
    // A signed checkpoint over the current head (clean shutdown); false when none was needed.
    virtual result<bool> checkpoint(std::string reason) = 0;
    // The checkpoint signer's public key (PEM), "" without one.
    virtual std::string public_key_pem() const = 0;
    // A signed range (see audit_export); errc::conflict when the log no longer verifies.
    virtual result<audit_export> export_range(std::uint64_t from_seq, std::optional<std::uint64_t> to_seq) const = 0;
    // The chain, every checkpoint signature and the head this process wrote.
    virtual audit_verify_result verify() const = 0;
};

} // namespace certmate
