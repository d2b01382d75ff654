// The PostgreSQL schema of the pg_store (docs/postgresql.md "Schema"): versioned migrations kept
// in `schema_migrations`, each applied in one transaction under a transaction-level advisory lock,
// so that two instances starting together apply each migration once.
// Thread-safety: free functions on a connection the caller holds.
#pragma once

#include "core/errc.hpp"
#include "storage/pg.hpp"

namespace certmate::storage::pg_schema {

// The newest schema version this binary knows.
int latest_version() noexcept;

// Applies every migration the database lacks and returns the version it is at afterwards.
// errc::storage_failure (touching nothing) when the database is at a newer version than this
// binary knows: an older binary must not write a schema it does not understand.
result<int> migrate(pg::connection& c);

// The version the database is at (0: no schema yet), without changing anything.
result<int> current_version(pg::connection& c);

// The key of pg_advisory_xact_lock taken by migrate() (docs/postgresql.md "Locks").
inline constexpr std::int64_t migration_lock_key = 0x63657274'6d617465; // "certmate"

} // namespace certmate::storage::pg_schema
