#include "app/backend.hpp"

#include "core/encoding.hpp"
#include "core/keys.hpp"
#include "storage/atomic_file.hpp"
#include "storage/fs_store.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg.hpp"
#include "storage/pg_schema.hpp"
#include "storage/audit_log.hpp"
#include "storage/pg_audit.hpp"
#include "storage/pg_rate_buckets.hpp"
#include "storage/pg_store.hpp"

#include <openssl/rand.h>

#include <thread>

#include <unistd.h>

namespace certmate::app {

std::string instance_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    unsigned char r[4] = {};
    RAND_bytes(r, sizeof r);
    return std::string(host) + "-" + std::to_string(::getpid()) + "-" + hex_encode(std::span<const unsigned char>(r));
}

result<std::pair<int, int>> migrate_database(const config& cfg) {
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) return c.error();
    auto before = storage::pg_schema::current_version(*c);
    if (!before) return before.error();
    auto after = storage::pg_schema::migrate(*c);
    if (!after) return after.error();
    return std::pair{*before, *after};
}

namespace {

// The database's schema at this binary's version before either port uses it: an empty database
// gets it, an older one is refused naming `certmate db migrate`, a newer one is refused.
// open_repository and open_audit both call it, so whichever opens first finds the tables.
result<void> ensure_schema(const config& cfg) {
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) return c.error();
    auto v = storage::pg_schema::current_version(*c);
    if (!v) return v.error();
    if (*v == 0) {
        if (auto m = storage::pg_schema::migrate(*c); !m) return m.error();
    } else if (*v < storage::pg_schema::latest_version()) {
        return make_error(errc::storage_failure, "the database schema is at version " + std::to_string(*v) +
                                                     ", this binary needs " +
                                                     std::to_string(storage::pg_schema::latest_version()) +
                                                     ": run `certmate db migrate` first");
    } else if (*v > storage::pg_schema::latest_version()) {
        return make_error(errc::storage_failure,
                          "the database schema (version " + std::to_string(*v) + ") is newer than this binary knows");
    }
    if (cfg.limits.shared)
        if (auto r = storage::pg_rate_buckets::ensure_schema(*c); !r) return r.error();
    return {};
}

} // namespace

result<std::unique_ptr<cert_repository>> open_repository(const config& cfg) {
    if (cfg.backend != "postgresql") return std::make_unique<storage::fs_store>(storage::layout{cfg.data_dir});
    auto kek = storage::key_wrap::from_file(cfg.key_encryption_key_file);
    if (!kek) return make_error(kek.error().code, "storage.key_encryption_key_file: " + kek.error().message);
    if (auto r = ensure_schema(cfg); !r) return r.error();
    return std::make_unique<storage::pg_store>(cfg.postgresql, cfg.postgresql_pool, std::move(*kek), instance_name());
}

result<std::shared_ptr<audit_sink>> open_audit(const config& cfg, ossl::pkey signer, clock_fn clock) {
    if (cfg.backend == "postgresql") {
        if (auto r = ensure_schema(cfg); !r) return r.error();
        // Its own two connections: an append never waits behind certificate writes for one.
        auto pool = std::make_shared<storage::pg::pool>(cfg.postgresql, 2);
        auto sink = storage::pg_audit::open(std::move(pool), clock);
        if (!sink) return sink.error();
        if (auto r = (*sink)->set_signer(std::move(signer), cfg.audit_checkpoint_interval); !r) return r.error();
        return std::shared_ptr<audit_sink>(std::move(*sink));
    }
    auto log = storage::audit_log::open(storage::layout{cfg.data_dir}.audit_log(), clock);
    if (!log) return log.error();
    if (auto r = (*log)->set_signer(std::move(signer), cfg.audit_checkpoint_interval); !r) return r.error();
    return std::shared_ptr<audit_sink>(std::move(*log));
}

namespace {

struct db_ends {
    std::unique_ptr<storage::fs_store> fs;
    std::unique_ptr<cert_repository> db;
    ossl::pkey audit_pub;
};

result<db_ends> open_ends(const config& cfg) {
    if (cfg.backend != "postgresql" || cfg.postgresql.empty())
        return make_error(errc::invalid_argument,
                          "the config names no database: set storage.backend = postgresql and storage.postgresql",
                          "storage.postgresql");
    db_ends e;
    storage::layout l{cfg.data_dir};
    e.fs = std::make_unique<storage::fs_store>(l);
    auto db = open_repository(cfg);
    if (!db) return db.error();
    e.db = std::move(*db);
    auto pem = storage::read_file(l.audit_signing_pub());
    if (!pem) return make_error(errc::invalid_argument, "cannot read " + l.audit_signing_pub().string());
    auto pub = load_public_key(*pem);
    if (!pub) return make_error(errc::invalid_argument, l.audit_signing_pub().string() + ": not a PEM public key");
    e.audit_pub = std::move(*pub);
    return e;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        out.emplace_back(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    }
    return out;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

result<void> verified(std::string_view what, const std::string& text, EVP_PKEY* pub) {
    auto v = storage::verify_audit_text(text, pub);
    if (!v.ok)
        return make_error(errc::conflict, std::string(what) + " audit chain does not verify at line " +
                                              std::to_string(v.bad_line) + ": " + v.reason);
    return {};
}

} // namespace

result<audit_verify_result> verify_database_audit(const config& cfg, EVP_PKEY* public_key) {
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) return c.error();
    auto lines = storage::pg_audit::export_lines(*c);
    if (!lines) return lines.error();
    return storage::verify_audit_text(join_lines(*lines), public_key);
}

result<db_copy_report> import_data_dir(const config& cfg) {
    auto e = open_ends(cfg);
    if (!e) return e.error();
    db_copy_report rep;
    // The chain first: a data dir whose log does not verify is not moved at all.
    std::string text;
    if (auto t = storage::read_file(storage::layout{cfg.data_dir}.audit_log())) text = std::move(*t);
    if (auto v = verified("the data dir's", text, e->audit_pub.get()); !v) return v.error();
    auto store = copy_store(*e->fs, *e->db, std::max(1u, std::thread::hardware_concurrency()));
    if (!store) return store.error();
    rep.store = *store;
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) return c.error();
    const auto lines = split_lines(text);
    auto added = storage::pg_audit::import_lines(*c, lines);
    if (!added) return added.error();
    rep.audit_added = *added;
    auto back = storage::pg_audit::export_lines(*c);
    if (!back) return back.error();
    if (auto v = verified("the database's", join_lines(*back), e->audit_pub.get()); !v) return v.error();
    rep.audit_entries = back->size();
    return rep;
}

result<db_copy_report> export_data_dir(const config& cfg) {
    auto e = open_ends(cfg);
    if (!e) return e.error();
    db_copy_report rep;
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) return c.error();
    auto lines = storage::pg_audit::export_lines(*c);
    if (!lines) return lines.error();
    const std::string text = join_lines(*lines);
    if (auto v = verified("the database's", text, e->audit_pub.get()); !v) return v.error();
    // The data dir's log: absent, empty, or the start of the database's chain.
    const auto log = storage::layout{cfg.data_dir}.audit_log();
    std::string held;
    if (auto t = storage::read_file(log)) held = std::move(*t);
    if (text.compare(0, held.size(), held) != 0)
        return make_error(errc::conflict,
                          log.string() + " holds audit entries the database does not: nothing exported");
    auto store = copy_store(*e->db, *e->fs, std::max(1u, std::thread::hardware_concurrency()));
    if (!store) return store.error();
    rep.store = *store;
    if (held.size() < text.size()) {
        if (auto d = storage::ensure_dir(log.parent_path(), std::filesystem::perms(0700)); !d) return d.error();
        if (auto w = storage::write_file_atomic(log, text, std::filesystem::perms(0600)); !w) return w.error();
    }
    rep.audit_entries = lines->size();
    rep.audit_added = split_lines(text).size() - split_lines(held).size();
    return rep;
}

} // namespace certmate::app
