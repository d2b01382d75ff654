// The audit chain in PostgreSQL (docs/audit.md, issue 18): several CertMate instances on one
// database keep ONE chain of hashes. Table audit_log holds each entry as `line`, the exact line
// the file log (storage/audit_log) would write, so the same hashing, checkpoint signing and
// verification (storage/audit_chain) apply; the other columns only index it for queries.
// An append is one transaction that takes the advisory lock pg_audit_lock_key, reads the head
// (last seq and hash), inserts the next line and, every interval-th entry, a signed checkpoint;
// commits with synchronous_commit on, so the entry is durable when append() returns.
// Fail closed like the file log: when the database is away appends return
// errc::audit_unavailable and healthy() turns false; while unhealthy they fail fast, and at most
// once per second an append tries the database again (reopen() tries at once).
// Every call blocks on the database: run them on the service's pool, never on an io thread
// (healthy(), public_key_pem() and head_written() do not touch the database).
// Thread-safety: all members are safe from any thread (appends of one instance are serialised by
// a mutex, those of several instances by the advisory lock).
#pragma once

#include "core/audit_sink.hpp"
#include "core/ossl.hpp"
#include "storage/audit_chain.hpp"
#include "storage/pg.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate::storage {

// The table and its indexes, idempotent (IF NOT EXISTS): for the versioned migrations
// (storage/pg_schema) to fold in. `user_name` because `user` is reserved in SQL.
inline constexpr std::string_view pg_audit_schema = R"sql(
CREATE TABLE IF NOT EXISTS audit_log (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    at timestamptz NOT NULL,
    operation text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    user_name text NOT NULL,
    line text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_operation ON audit_log (operation, seq);
CREATE INDEX IF NOT EXISTS audit_log_resource ON audit_log (resource_id, seq);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_name, seq);
)sql";

// pg_advisory_xact_lock key that serialises appends to the chain across instances ("certaudi" in
// ASCII); no other lock may use it.
inline constexpr std::int64_t pg_audit_lock_key = 0x6365727461756469;

class pg_audit final : public audit_sink {
public:
    // Creates the table and indexes when missing (pg_audit_schema, under pg_audit_lock_key so
    // that instances starting together do not race).
    static result<void> ensure_schema(pg::connection& c);

    // `certmate db import` / `db export` (docs/postgresql.md "Moving a store"): the chain's lines
    // as they are, oldest first. import_lines() appends `lines` (a chain verified by the caller)
    // to the table in one transaction under the chain's lock: into an empty table, or after a
    // prefix equal to the lines' own (a repeated import adds only what is new); a table that holds
    // other lines is errc::conflict, nothing written. The number of lines added.
    static result<std::size_t> import_lines(pg::connection& c, const std::vector<std::string>& lines);
    static result<std::vector<std::string>> export_lines(pg::connection& c);

    // Reads the chain's head (the table must exist: ensure_schema or the migrations).
    // errc::audit_unavailable when the database cannot be reached. A last row that is not an
    // intact entry opens the sink unhealthy: appends fail (audit_unavailable) until it is mended.
    static result<std::unique_ptr<pg_audit>> open(std::shared_ptr<pg::pool> pool, clock_fn clock);

    // errc::audit_unavailable when the transaction fails, or fast while unhealthy and the last
    // attempt was less than a second ago. Appends a checkpoint after every interval-th entry.
    result<void> append(const audit_entry& e) override;
    bool healthy() const override;
    std::string last_error() const;
    // Newest-first entries matching the query, selected in SQL through the indexes.
    result<std::vector<boost::json::object>> query(const audit_query& q) const override;
    // Tries the database at once (a new connection if the old ones broke) and re-reads the head;
    // healthy again on success.
    result<void> reopen() override;

    // Signs checkpoints with `key` (Ed25519) after every `interval`-th entry (seq % interval == 0;
    // 0: only on checkpoint()). Call before the sink is shared. errc::crypto_failure (signer
    // unchanged) when the key's public half does not encode.
    result<void> set_signer(ossl::pkey key, std::uint64_t interval);
    // Appends a checkpoint over the current head. Nothing (false) without a signer, on an empty
    // chain, or when the last entry is a checkpoint already.
    result<bool> checkpoint(std::string reason = "shutdown") override;
    std::string public_key_pem() const override;
    // The last entry this instance wrote (or read as the head at open/reopen): seq 0 before any.
    audit_head head_written() const;
    // Entries from_seq..to_seq (to the last entry when absent), their lines each with '\n', signed.
    // From one snapshot in which the whole chain verifies and still holds head_written()
    // unchanged: errc::conflict otherwise. errc::not_found when no entry is in the range,
    // errc::audit_unavailable without a signer or without the database.
    result<audit_export> export_range(std::uint64_t from_seq, std::optional<std::uint64_t> to_seq) const override;
    // The whole chain in seq order through audit_chain_verifier with the signer's public key and
    // head_written(). A failure's reason ends with "(seq N)", N being the row's seq.
    audit_verify_result verify() const override;

    ~pg_audit() override = default;
    pg_audit(const pg_audit&) = delete;
    pg_audit& operator=(const pg_audit&) = delete;

private:
    pg_audit(std::shared_ptr<pg::pool> pool, clock_fn clock) : pool_(std::move(pool)), clock_(std::move(clock)) {}
    struct chain_head {
        audit_head head;
        bool is_checkpoint = false;
    };
    static result<chain_head> read_head(pg::connection& c);
    result<void> insert(pg::connection& c, const audit_entry& e, chain_head& h);
    // Fails fast while unhealthy and the last attempt was less than retry_every_ ago.
    result<void> ready();
    error fail(const error& why);
    void succeeded(const audit_head& written);
    // Verifies the chain inside the current (snapshot) transaction on `c`; an error when the
    // database fails meanwhile.
    result<audit_verify_result> verify_on(pg::connection& c, EVP_PKEY* public_key, const audit_head& expected) const;

    std::shared_ptr<pg::pool> pool_;
    clock_fn clock_;
    std::mutex append_mu_;  // held across an append's transaction: one audit connection per instance
    mutable std::mutex mu_; // the state below; never held across a database call
    std::atomic<bool> healthy_{true};
    std::string last_error_;
    std::chrono::steady_clock::time_point last_attempt_{};
    static constexpr std::chrono::seconds retry_every_{1};
    audit_head head_;
    ossl::pkey signer_;
    std::string signer_id_;
    std::string signer_pem_;
    std::uint64_t checkpoint_interval_ = 0;
};

} // namespace certmate::storage
