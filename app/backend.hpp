// The storage backend a config names (storage.backend): the file system store in the data dir, or
// PostgreSQL shared by several instances (docs/postgresql.md, docs/high-availability.md).
#pragma once

#include "app/config.hpp"
#include "core/audit_sink.hpp"
#include "core/cert_repository.hpp"
#include "core/ossl.hpp"
#include "core/store_copy.hpp"

#include <memory>
#include <string>

namespace certmate::app {

// A name for this running instance (host, pid, random): `changes.origin` in the database.
std::string instance_name();

// The repository of `cfg`. For postgresql: the key-encryption key read, the database reached and
// its schema at this binary's version (an empty database gets it; an older one is refused, naming
// `certmate db migrate`).
result<std::unique_ptr<cert_repository>> open_repository(const config& cfg);

// The audit chain of `cfg` (the data dir's log file, or the database's table), signing
// checkpoints with `signer` every audit.checkpoint_interval entries. For postgresql the schema is
// brought up first as open_repository does (whichever is opened first).
result<std::shared_ptr<audit_sink>> open_audit(const config& cfg, ossl::pkey signer, clock_fn clock);

// `certmate audit verify` with storage.backend = postgresql: the database's audit chain (every
// instance's entries, one line of hashes), oldest first, checkpoints checked with `public_key`.
result<audit_verify_result> verify_database_audit(const config& cfg, EVP_PKEY* public_key);

// `certmate db migrate`: the schema brought to this binary's version; (before, after).
result<std::pair<int, int>> migrate_database(const config& cfg);

// `certmate db import` / `db export` (docs/postgresql.md "Moving a store"): every certificate,
// the CRL state and CRL, the OCSP responder, the sweep record, the jobs and the audit chain,
// from the file system store in cfg.data_dir into the database of cfg.storage.postgresql, or
// back. Idempotent; verified afterwards (certificates, serials, the audit chain with the data
// dir's audit signing key).
struct db_copy_report {
    copy_report store;
    std::size_t audit_entries = 0; // in the chain after the copy
    std::size_t audit_added = 0;   // added by this copy
};
result<db_copy_report> import_data_dir(const config& cfg);
result<db_copy_report> export_data_dir(const config& cfg);

} // namespace certmate::app
