#include "storage/pg_schema.hpp"

#include "storage/pg_audit.hpp"

#include <spdlog/spdlog.h>

#include <string_view>

namespace certmate::storage::pg_schema {

namespace {

struct migration {
    int version;
    std::string_view description;
    std::string_view sql;
};

// Append only: a released migration is never edited (docs/postgresql.md "Migrations").
constexpr migration migrations[] = {
    {1, "certificates, serials, CRL, OCSP responder, sweep, jobs, changes", R"sql(
CREATE TABLE certificates (
    identifier  text PRIMARY KEY CHECK (identifier ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    usage       text NOT NULL CHECK (usage IN ('api-mtls', 'vpn', 'other', 'server')),
    metadata    json NOT NULL,
    cert_pem    text NOT NULL,
    key_wrapped bytea,
    csr_pem     text,
    updated_seq bigint NOT NULL DEFAULT 0,
    updated_by  text NOT NULL DEFAULT ''
);
CREATE TABLE serials (
    serial     text PRIMARY KEY CHECK (serial ~ '^[0-9]+$'),
    identifier text NOT NULL REFERENCES certificates (identifier) ON DELETE CASCADE
);
CREATE INDEX serials_identifier ON serials (identifier);
CREATE TABLE crl (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    crl_number  bigint NOT NULL DEFAULT 0 CHECK (crl_number >= 0),
    this_update timestamptz,
    next_update timestamptz,
    der         bytea,
    pem         text
);
INSERT INTO crl (id) VALUES (true);
CREATE TABLE ocsp_responder (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    cert_pem    text NOT NULL,
    key_wrapped bytea NOT NULL
);
CREATE TABLE sweep (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    summary json NOT NULL
);
CREATE TABLE jobs (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    document   json NOT NULL
);
CREATE TABLE job_inputs (
    job_id   text PRIMARY KEY,
    input    json NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE changes (
    seq        bigserial PRIMARY KEY,
    origin     text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('create', 'replace', 'metadata', 'crl')),
    identifier text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE changes_pruned (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    through bigint NOT NULL DEFAULT 0
);
INSERT INTO changes_pruned (id) VALUES (true);
)sql"},
    // The audit chain (storage/pg_audit.hpp); IF NOT EXISTS, so a table pg_audit::ensure_schema made
    // earlier is kept.
    {2, "audit log", pg_audit_schema},
};

result<bool> has_table(pg::connection& c) {
    auto r = c.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!r) return r.error();
    return r->boolean(0, 0);
}

} // namespace

int latest_version() noexcept { return migrations[std::size(migrations) - 1].version; }

result<int> current_version(pg::connection& c) {
    auto has = has_table(c);
    if (!has) return has.error();
    if (!*has) return 0;
    auto r = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!r) return r.error();
    return static_cast<int>(r->int64(0, 0));
}

result<int> migrate(pg::connection& c) {
    int at = 0;
    for (const auto& m : migrations) {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        // Held until commit: a second instance waits here and then sees the version applied.
        if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {migration_lock_key}); !r) return r.error();
        if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, "
                            "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
            !r)
            return r.error();
        auto v = current_version(c);
        if (!v) return v.error();
        if (*v > latest_version())
            return make_error(errc::storage_failure, "database schema version " + std::to_string(*v) +
                                                         " is newer than this binary knows (" +
                                                         std::to_string(latest_version()) + "): upgrade CertMate");
        at = *v;
        if (*v >= m.version) continue; // applied already (by us earlier or by another instance)
        if (auto r = c.exec_script(m.sql); !r) return r.error();
        if (auto r = c.exec("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                            {m.version, m.description});
            !r)
            return r.error();
        if (auto r = tx->commit(); !r) return r.error();
        spdlog::info("database: schema migrated to version {} ({})", m.version, m.description);
        at = m.version;
    }
    return at;
}

} // namespace certmate::storage::pg_schema
