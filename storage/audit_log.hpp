// The audit log (docs/audit.md): JSON Lines at logs/audit/certificate_audit.log, the
// Python CertMate's fields plus seq, prev_hash and hash (SHA-256 over the line without `hash`, chained). Each
// append is written and fsynced before it returns. If a write fails the log turns unhealthy: appends
// fail fast, and at most once per second an append reopens the file and tries again, so the log
// heals by itself once the disk takes writes again (reopen() forces a retry at once).
// With a signer, a `checkpoint` entry signed with Ed25519 over the chain head follows every
// `interval`-th entry and is written by checkpoint() (clean shutdown). A torn last line (a crash
// mid-write) is cut off at open and the cut recorded as an `audit_repair` entry.
// Thread-safety: all members are safe from any thread (an internal mutex orders appends).
// Several processes (the server and a CLI command) may append to the same file: each append
// takes an flock(2) and first catches up with entries another process wrote.
#pragma once

#include "core/audit_sink.hpp"
#include "core/ossl.hpp"
#include "storage/audit_chain.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace certmate::storage {

// The port's types, as storage/ and its users have always named them.
using certmate::audit_entry;
using certmate::audit_export;
using certmate::audit_query;
using certmate::audit_repair_note;
using certmate::audit_verify_result;

class audit_log final : public audit_sink {
public:
    // Opens (creating dirs and file, 0600) and reads the last line to continue the chain.
    static result<std::unique_ptr<audit_log>> open(std::filesystem::path file, clock_fn clock);

    // errc::audit_unavailable when the write/fsync fails, or fast while unhealthy and the last
    // attempt was less than a second ago. Appends a checkpoint after every interval-th entry.
    result<void> append(const audit_entry& e) override;
    bool healthy() const override;
    std::string last_error() const;
    std::uint64_t next_seq() const;
    // Newest-first entries matching the query (reads the file).
    result<std::vector<boost::json::object>> query(const audit_query& q) const override;

    // Test hook: makes the next writes fail as a full disk would.
    void simulate_failure(bool on);
    // Closes and reopens the file, re-reading the chain's tail; healthy again on success (SIGHUP).
    result<void> reopen() override;

    // Signs checkpoints with `key` (Ed25519) after every `interval`-th entry (seq % interval == 0;
    // 0: only on checkpoint()). Call before the log is shared. errc::crypto_failure (signer
    // unchanged) when the key's public half does not encode.
    result<void> set_signer(ossl::pkey key, std::uint64_t interval);
    // Appends a checkpoint over the current head (clean shutdown). Nothing (false) without a
    // signer, on an empty log, or when the last entry is a checkpoint already.
    result<bool> checkpoint(std::string reason = "shutdown") override;
    // The signer's public key as PEM; "" without a signer.
    std::string public_key_pem() const override;
    // The last entry this process wrote (or read as the head when continuing the chain): seq 0
    // before any.
    using head = audit_head;
    head head_written() const;
    // Entries from_seq..to_seq (to the last entry when absent), signed; errc::not_found when no
    // entry is in the range, errc::audit_unavailable without a signer. Signed only when the whole
    // log verifies (chain, checkpoints) and still holds head_written() unchanged: errc::conflict
    // otherwise, so a rewrite of the file is never signed.
    result<audit_export> export_range(std::uint64_t from_seq, std::optional<std::uint64_t> to_seq) const override;
    // verify_audit_file() of this log with the signer's public key, plus head_written(): a rewrite
    // with the chain recomputed, or a cut tail, fails even after the last checkpoint.
    audit_verify_result verify() const override;

private:
    audit_log(std::filesystem::path file, clock_fn clock) : file_(std::move(file)), clock_(std::move(clock)) {}
    struct opened_state;
    void adopt(opened_state&& o);
    // Retries a broken log (reopen) at most once per retry_every_; fails fast in between.
    result<void> ready_locked();
    // Under the file lock: continue from what another process wrote, mend a torn tail.
    result<void> catch_up_locked();
    // Writes one entry (the chain fields added); marks the log unhealthy on failure.
    result<void> write_locked(const audit_entry& e);
    result<void> write_pending_repair_locked();
    result<void> write_checkpoint_locked(std::string reason);
    result<void> fail_locked(std::string why);
    std::filesystem::path file_;
    clock_fn clock_;
    mutable std::mutex mu_;
    int fd_ = -1;
    std::uint64_t seq_ = 0;       // seq of the next entry
    std::string last_hash_;       // hex; 64 zeros before the first entry
    std::uint64_t size_seen_ = 0; // file size after our last write: a change means another process appended
    bool healthy_ = true;
    bool simulate_failure_ = false;
    std::string last_error_;
    bool last_is_checkpoint_ = false;
    std::uint64_t pending_repair_bytes_ = 0; // a torn tail cut off, not yet recorded
    std::chrono::steady_clock::time_point last_attempt_{};
    static constexpr std::chrono::seconds retry_every_{1};
    ossl::pkey signer_;
    std::string signer_id_;
    std::string signer_pem_; // public_key_pem(), encoded once by set_signer
    std::uint64_t checkpoint_interval_ = 0;

public:
    ~audit_log();
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;
};

// Walks the chain (audit_chain_verifier): each line parses, seq increments, prev_hash equals the
// previous hash and hash matches the recomputed one. Each checkpoint must name the entry before it
// (head_seq, head_hash) and, with `public_key`, carry its valid signature over checkpoint_message().
audit_verify_result verify_audit_file(const std::filesystem::path& file, EVP_PKEY* public_key = nullptr);
// The same over the text of a log; with `expected`, the entry at expected->seq must be there and
// carry expected->hash.
audit_verify_result verify_audit_text(std::string_view text, EVP_PKEY* public_key = nullptr,
                                      std::optional<audit_log::head> expected = std::nullopt);

} // namespace certmate::storage
