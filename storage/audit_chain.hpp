// The audit chain (docs/audit.md) apart from where it is kept: the line format, its hash, the
// signed checkpoint entry and the verifier. Shared by the file log (storage/audit_log) and the
// PostgreSQL one (storage/pg_audit), so both write and check byte-identical lines.
// Thread-safety: the functions are safe from any thread; a verifier is used by one thread.
#pragma once

#include "core/audit_sink.hpp"
#include "core/clock.hpp"
#include "core/ossl.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certmate::storage {

// prev_hash of the first entry.
inline const std::string audit_zero_hash(64, '0');

// An entry of the chain by its seq and hash (seq 0: none).
struct audit_head {
    std::uint64_t seq = 0;
    std::string hash;
};

// The canonical message a checkpoint signs (docs/audit.md):
// "certmate-audit-checkpoint-v1\n" <head_seq in decimal> "\n" <head_hash, 64 hex> "\n".
std::string checkpoint_message(std::uint64_t head_seq, std::string_view head_hash);

// One line of the chain, without its '\n', and its hash.
struct audit_line {
    std::string text;
    std::string hash;
};

// Entry `e` as line `seq` chained after `prev_hash`, stamped `at`: the documented keys in their
// order, `hash` (SHA-256 hex of the line without it) last. errc::crypto_failure when hashing fails.
result<audit_line> make_audit_line(const audit_entry& e, std::uint64_t seq, time_point at, std::string_view prev_hash);

// The `checkpoint` entry over `head` (docs/audit.md "Signed checkpoints"), signed with `key`
// (Ed25519) whose id is `key_id`; errc::crypto_failure when signing fails.
result<audit_entry> make_checkpoint_entry(const audit_head& head, EVP_PKEY* key, std::string_view key_id,
                                          std::string reason);

// What an intact line says of itself (it parses, has the chain fields and its hash matches).
struct audit_line_info {
    std::uint64_t seq = 0;
    std::string hash;
    std::string operation;
};
std::optional<audit_line_info> read_audit_line(std::string_view line);
// The seq a line claims, without checking its hash (for lines verified already).
std::optional<std::uint64_t> audit_line_seq(std::string_view line);

// Walks a chain line by line: each line parses, seq increments from 1, prev_hash equals the
// previous hash and hash matches the recomputed one. Each checkpoint must name the entry before it
// (head_seq, head_hash) and, with `public_key`, carry its valid signature over
// checkpoint_message(). With `expected`, the entry at expected->seq must be there and carry
// expected->hash (the head a writer wrote: a rewrite or a cut after the last checkpoint fails).
class audit_chain_verifier {
public:
    explicit audit_chain_verifier(EVP_PKEY* public_key = nullptr, std::optional<audit_head> expected = std::nullopt)
        : public_key_(public_key), expected_(std::move(expected)) {}
    // Checks the next line; false once the chain is broken (then nothing more is read).
    bool add(std::string_view line);
    // Marks the next line broken for a reason found outside it (where it is stored).
    void fail(std::string reason);
    bool ok() const noexcept { return res_.ok; }
    // The lines seen so far (the 1-based number of the line add() would check next, minus one).
    std::size_t lines() const noexcept { return lines_; }
    // The result once every line was added.
    audit_verify_result finish();

private:
    EVP_PKEY* public_key_;
    std::optional<audit_head> expected_;
    audit_verify_result res_;
    std::string prev_ = audit_zero_hash;
    std::uint64_t expected_seq_ = 1;
    std::size_t lines_ = 0;
};

} // namespace certmate::storage
