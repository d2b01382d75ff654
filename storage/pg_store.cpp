#include "storage/pg_store.hpp"

#include "core/cert_json.hpp"
#include "core/encoding.hpp"
#include "storage/pg_schema.hpp"
#include "storage/sweep_state.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace certmate::storage {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// pg_advisory_xact_lock key serialising the `changes` appends (docs/postgresql.md "Locks").
constexpr std::int64_t changes_lock_key = 0x63657274'6368616e; // "certchan"
// The first key of pg_try_advisory_lock(int, int) for task leases; the second is hashtext(task).
constexpr int lead_lock_class = 0x43455254; // "CERT"
constexpr std::string_view notify_channel = "certmate_changes";
// Label of the OCSP responder's key as associated data (certificate keys use their identifier).
constexpr std::string_view responder_aad = "ocsp-responder";
// Changes read per query while catching up.
constexpr int catch_up_batch = 2000;

std::int64_t micros(time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
time_point from_micros(std::int64_t v) { return time_point(std::chrono::microseconds(v)); }
pg::param opt_micros(const std::optional<time_point>& t) { return t ? pg::param(micros(*t)) : pg::param::null(); }
// SQL for a timestamptz column as microseconds since the epoch, and back.
#define CM_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
#define CM_TS(n) "('epoch'::timestamptz + " n "::bigint * interval '1 microsecond')"

std::string metadata_json(const cert_record& rec) { return json::serialize(to_json(rec)); }

result<cert_record> parse_record(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return make_error(errc::storage_failure, "metadata is not JSON");
    auto rec = record_from_json(v);
    if (!rec) return make_error(errc::storage_failure, "metadata invalid (" + rec.error().field + ")");
    return rec;
}

// Every serial the record has had (the current one and its history), as a text[] literal.
std::string serial_array(const cert_record& rec) {
    std::string out = "{";
    auto add = [&](const std::string& s) {
        if (s.empty()) return;
        if (out.size() > 1) out += ',';
        out += '"';
        for (char ch : s) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    };
    add(rec.serial_number);
    for (const auto& h : rec.history) add(h.serial_number);
    out += '}';
    return out;
}

// A text[] literal of `v` (NULL for an absent element), every element quoted and escaped.
std::string text_array(const std::vector<std::optional<std::string>>& v) {
    std::string out = "{";
    for (const auto& e : v) {
        if (out.size() > 1) out += ',';
        if (!e) {
            out += "NULL";
            continue;
        }
        out += '"';
        for (char ch : *e) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    return out + '}';
}

// Claims the record's serials for its identifier; errc::already_exists when one belongs to another.
result<void> claim_serials(pg::connection& c, const cert_record& rec) {
    const std::string arr = serial_array(rec);
    if (arr == "{}") return {};
    if (auto r = c.exec("INSERT INTO serials (serial, identifier) SELECT unnest($1::text[]), $2 "
                        "ON CONFLICT (serial) DO NOTHING",
                        {arr, rec.identifier});
        !r)
        return r.error();
    auto r =
        c.exec("SELECT serial, identifier FROM serials WHERE serial = ANY($1::text[]) AND identifier <> $2 LIMIT 1",
               {arr, rec.identifier});
    if (!r) return r.error();
    if (!r->empty())
        return make_error(errc::already_exists,
                          "serial " + std::string(r->text(0, 0)) + " already belongs to " + std::string(r->text(0, 1)),
                          "serial_number");
    return {};
}

// Job identifiers are made by the server (job-<hex>), as fs_store checks them.
bool job_id_ok(const std::string& id) {
    if (id.size() < 5 || id.size() > 64 || id.compare(0, 4, "job-") != 0) return false;
    for (char c : id.substr(4))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

error not_found_error() { return make_error(errc::not_found, "certificate not found", "identifier"); }

// A lease on a periodic task: the advisory lock lives as long as this connection's session.
class pg_lease final : public task_lease {
public:
    pg_lease(pg::connection c, std::string task) : c_(std::move(c)), task_(std::move(task)) {}
    ~pg_lease() override {
        if (auto r = c_.exec("SELECT pg_advisory_unlock($1, hashtext($2))", {lead_lock_class, task_}); !r)
            spdlog::debug("database: unlocking task {}: {}", task_, r.error().message);
    } // the connection closes here: the lock would go with the session anyway

private:
    pg::connection c_;
    std::string task_;
};

} // namespace

pg_store::pg_store(std::string conninfo, std::size_t pool_size, key_wrap kek, std::string instance_id)
    : conninfo_(std::move(conninfo)), pool_(conninfo_, pool_size), kek_(std::move(kek)), me_(std::move(instance_id)),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

pg_store::~pg_store() {
    if (watcher_.joinable()) {
        watcher_.request_stop();
        const std::uint64_t one = 1;
        if (stop_fd_ >= 0) (void)::write(stop_fd_, &one, sizeof one);
        watcher_.join();
    }
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

template <class F>
auto pg_store::with_conn(F&& f) const -> decltype(f(std::declval<pg::connection&>())) {
    auto lease = pool_.acquire();
    if (!lease) {
        note(lease.error());
        return lease.error();
    }
    auto r = f(**lease);
    note(r ? std::nullopt : std::optional<error>(r.error()));
    return r;
}

void pg_store::note(const std::optional<error>& e) const {
    std::lock_guard lk(mu_);
    if (!e || e->code != errc::storage_unavailable) {
        problem_.reset();
        return;
    }
    std::string msg = e->message;
    if (msg.starts_with("database: ")) msg = msg.substr(10);
    if (!msg.starts_with("database unreachable")) msg = "database unreachable: " + msg;
    if (!problem_) spdlog::error("pg_store: {}", msg);
    // problem() is shown by the public /health: libpq's message names the database's host, port
    // and user, which only the log may hold (docs/high-availability.md, failure modes).
    problem_ = "database unreachable (details in the log)";
}

std::optional<std::string> pg_store::problem() const {
    std::lock_guard lk(mu_);
    return problem_;
}

std::optional<std::string> pg_store::io_error() const { return std::nullopt; }

result<int> pg_store::migrate() {
    return with_conn([](pg::connection& c) { return pg_schema::migrate(c); });
}

result<std::uint64_t> pg_store::add_change(pg::connection& c, std::string_view kind, const std::string* id,
                                           own_change& own) const {
    // Held until commit: sequences are taken, and become visible, in commit order, so a reader
    // that saw sequence N never misses a smaller one committed later.
    if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {changes_lock_key}); !r) return r.error();
    auto r = c.exec("WITH ch AS (INSERT INTO changes (origin, kind, identifier) VALUES ($1, $2, $3) RETURNING seq) "
                    "SELECT seq, pg_notify($4, seq::text) FROM ch",
                    {me_, kind, id ? pg::param(*id) : pg::param::null(), notify_channel});
    if (!r) return r.error();
    own.seq = static_cast<std::uint64_t>(r->int64(0, 0));
    {
        std::lock_guard lk(mu_);
        pending_.insert(own.seq);
    }
    return own.seq;
}

std::string pg_store::last_writer_check() const {
    // While an own COMMIT's outcome is unknown, "written here" no longer means "seen here": only
    // what the change watch delivered counts (an empty name matches no instance).
    std::lock_guard lk(mu_);
    return uncertain_.empty() ? me_ : std::string();
}

void pg_store::settle(std::uint64_t seq, bool uncertain) const {
    if (seq == 0) return;
    std::lock_guard lk(mu_);
    pending_.erase(seq);
    if (uncertain) uncertain_.insert(seq);
}

result<void> pg_store::commit_own(pg::transaction& tx, own_change& own) {
    own.committing = true;
    auto r = tx.commit();
    own.acknowledged = r.has_value();
    return r;
}

// ---- certificates ----

// replace() and write_metadata() change a row only when this instance has seen its last write:
// made here, or by another instance at a change already delivered here (watch_changes).
// Otherwise two instances changing one certificate at once (two renewals through the load
// balancer) would both succeed and the first one's certificate would be lost; the second gets
// errc::conflict (409, try again) instead.

result<void> pg_store::create(const cert_record& rec, const cert_files& files) {
    const std::string& id = rec.identifier;
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    std::optional<std::string> wrapped;
    if (files.key_pem) {
        auto w = kek_.seal(*files.key_pem, id);
        if (!w) return w.error();
        wrapped = std::move(*w);
    }
    const std::string meta = metadata_json(rec);
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        own_change own(this);
        auto seq = add_change(c, "create", &id, own);
        if (!seq) return seq.error();
        auto r = c.exec("INSERT INTO certificates (identifier, usage, metadata, cert_pem, key_wrapped, csr_pem, "
                        "updated_seq, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                        "ON CONFLICT (identifier) DO NOTHING",
                        {id, to_string(rec.usage), meta, files.cert_pem,
                         wrapped ? pg::param::bytes(*wrapped) : pg::param::null(),
                         files.csr_pem ? pg::param(*files.csr_pem) : pg::param::null(), *seq, me_});
        if (!r) return r.error();
        if (r->affected() == 0) return make_error(errc::already_exists, "identifier already exists", "identifier");
        if (auto s = claim_serials(c, rec); !s) return s;
        return commit_own(*tx, own);
    });
}

// After an UPDATE that touched no row: the certificate is gone, or another instance changed it.
result<void> pg_store::missing_or_changed(pg::connection& c, const cert_record& rec) const {
    auto r = c.exec("SELECT updated_by FROM certificates WHERE identifier = $1 AND usage = $2",
                    {rec.identifier, to_string(rec.usage)});
    if (!r) return r.error();
    if (r->empty()) return not_found_error();
    return make_error(errc::conflict,
                      "certificate " + rec.identifier + " was changed by another instance a moment ago; try again");
}

result<void> pg_store::create_many(const std::vector<new_cert>& certs) {
    if (certs.empty()) return {};
    std::vector<std::optional<std::string>> ids, usages, metas, pems, keys, csrs, serials, owners;
    for (const auto& c : certs) {
        const std::string& id = c.rec->identifier;
        if (!valid_identifier(id))
            return make_error(errc::invalid_identifier, id + ": invalid identifier", "identifier");
        ids.emplace_back(id);
        usages.emplace_back(std::string(to_string(c.rec->usage)));
        metas.emplace_back(metadata_json(*c.rec));
        pems.emplace_back(c.files.cert_pem);
        if (c.files.key_pem) {
            auto w = kek_.seal(*c.files.key_pem, id);
            if (!w) return make_error(w.error().code, id + ": " + w.error().message);
            keys.emplace_back(hex_encode(
                std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(w->data()), w->size())));
        } else {
            keys.emplace_back(std::nullopt);
        }
        csrs.emplace_back(c.files.csr_pem);
        auto add = [&](const std::string& serial) {
            if (serial.empty()) return;
            serials.emplace_back(serial);
            owners.emplace_back(id);
        };
        add(c.rec->serial_number);
        for (const auto& h : c.rec->history) add(h.serial_number);
    }
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        // One change per certificate, taken in order under the changes lock (as add_change), and
        // one notification for the lot: a listener reads every change above the last it saw.
        if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {changes_lock_key}); !r) return r.error();
        auto ch = c.exec("INSERT INTO changes (origin, kind, identifier) SELECT $1, 'create', i "
                         "FROM unnest($2::text[]) WITH ORDINALITY AS t(i, n) ORDER BY n RETURNING seq, identifier",
                         {me_, text_array(ids)});
        if (!ch) return ch.error();
        std::map<std::string, std::int64_t, std::less<>> seq_of;
        std::int64_t last = 0;
        for (int i = 0; i < ch->size(); ++i) {
            seq_of.emplace(std::string(ch->text(i, 1)), ch->int64(i, 0));
            last = std::max(last, ch->int64(i, 0));
        }
        std::vector<std::optional<std::string>> seqs;
        for (const auto& id : ids) seqs.emplace_back(std::to_string(seq_of[*id]));
        auto r = c.exec("INSERT INTO certificates (identifier, usage, metadata, cert_pem, key_wrapped, csr_pem, "
                        "updated_seq, updated_by) SELECT i, u, m::json, p, decode(k, 'hex'), s, q, $8 "
                        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
                        "$7::bigint[]) AS t(i, u, m, p, k, s, q) ON CONFLICT (identifier) DO NOTHING",
                        {text_array(ids), text_array(usages), text_array(metas), text_array(pems), text_array(keys),
                         text_array(csrs), text_array(seqs), me_});
        if (!r) return r.error();
        if (r->affected() != certs.size()) {
            auto taken = c.exec("SELECT identifier FROM certificates WHERE identifier = ANY($1::text[]) LIMIT 1",
                                {text_array(ids)});
            return make_error(errc::already_exists,
                              (taken && !taken->empty() ? std::string(taken->text(0, 0)) + ": " : std::string()) +
                                  "identifier already exists",
                              "identifier");
        }
        if (!serials.empty()) {
            if (auto w = c.exec("INSERT INTO serials (serial, identifier) SELECT * FROM unnest($1::text[], $2::text[]) "
                                "ON CONFLICT (serial) DO NOTHING",
                                {text_array(serials), text_array(owners)});
                !w)
                return w.error();
            auto other = c.exec("SELECT s.serial, s.identifier, t.i FROM serials s JOIN unnest($1::text[], "
                                "$2::text[]) AS t(serial, i) ON s.serial = t.serial WHERE s.identifier <> t.i LIMIT 1",
                                {text_array(serials), text_array(owners)});
            if (!other) return other.error();
            if (!other->empty())
                return make_error(errc::already_exists,
                                  std::string(other->text(0, 2)) + ": serial " + std::string(other->text(0, 0)) +
                                      " already belongs to " + std::string(other->text(0, 1)),
                                  "serial_number");
        }
        if (auto n = c.exec("SELECT pg_notify($1, $2)", {notify_channel, std::to_string(last)}); !n) return n.error();
        return tx->commit();
    });
}

result<void> pg_store::replace(const cert_record& rec, const cert_files& files) {
    const std::string& id = rec.identifier;
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    std::optional<std::string> wrapped;
    if (files.key_pem) {
        auto w = kek_.seal(*files.key_pem, id);
        if (!w) return w.error();
        wrapped = std::move(*w);
    }
    const std::string meta = metadata_json(rec);
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        own_change own(this);
        auto seq = add_change(c, "replace", &id, own);
        if (!seq) return seq.error();
        // The key and CSR are kept unless new ones are given.
        auto r = c.exec(
            "UPDATE certificates SET metadata = $3, cert_pem = $4, "
            "key_wrapped = coalesce($5, key_wrapped), csr_pem = coalesce($6, csr_pem), updated_seq = $7, "
            "updated_by = $8 WHERE identifier = $1 AND usage = $2 AND (updated_by = $10 OR updated_seq <= $9)",
            {id, to_string(rec.usage), meta, files.cert_pem, wrapped ? pg::param::bytes(*wrapped) : pg::param::null(),
             files.csr_pem ? pg::param(*files.csr_pem) : pg::param::null(), *seq, me_, watched_.load(),
             last_writer_check()});
        if (!r) return r.error();
        if (r->affected() == 0) return missing_or_changed(c, rec);
        if (auto s = claim_serials(c, rec); !s) return s;
        return commit_own(*tx, own);
    });
}

result<void> pg_store::write_metadata(const cert_record& rec) {
    const std::string& id = rec.identifier;
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    const std::string meta = metadata_json(rec);
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        own_change own(this);
        auto seq = add_change(c, "metadata", &id, own);
        if (!seq) return seq.error();
        auto r = c.exec("UPDATE certificates SET metadata = $3, updated_seq = $4, updated_by = $5 "
                        "WHERE identifier = $1 AND usage = $2 AND (updated_by = $7 OR updated_seq <= $6)",
                        {id, to_string(rec.usage), meta, *seq, me_, watched_.load(), last_writer_check()});
        if (!r) return r.error();
        if (r->affected() == 0) return missing_or_changed(c, rec);
        if (auto s = claim_serials(c, rec); !s) return s;
        return commit_own(*tx, own);
    });
}

result<std::string> pg_store::read_file(cert_usage usage, const std::string& id, file_kind kind) const {
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    const char* sql = kind == file_kind::cert ? "SELECT cert_pem FROM certificates WHERE identifier = $1 AND usage = $2"
                      : kind == file_kind::key
                          ? "SELECT key_wrapped FROM certificates WHERE identifier = $1 AND usage = $2"
                          : "SELECT csr_pem FROM certificates WHERE identifier = $1 AND usage = $2";
    auto got = with_conn([&](pg::connection& c) -> result<std::string> {
        auto r = c.exec(sql, {id, to_string(usage)});
        if (!r) return r.error();
        if (r->empty() || r->is_null(0, 0)) return make_error(errc::not_found, "no such file");
        return kind == file_kind::key ? r->bytes(0, 0) : std::string(r->text(0, 0));
    });
    if (!got || kind != file_kind::key) return got;
    return kek_.open(*got, id);
}

result<load_report> pg_store::load_all(unsigned threads) {
    const auto t0 = std::chrono::steady_clock::now();
    auto loaded = with_conn([&](pg::connection& c) -> result<std::pair<std::uint64_t, pg::rows>> {
        // One snapshot: the records are exactly those of the changes up to `seq`.
        auto tx = pg::transaction::begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if (!tx) return tx.error();
        auto s = c.exec("SELECT coalesce(max(seq), 0) FROM changes");
        if (!s) return s.error();
        auto r = c.exec("SELECT identifier, usage, metadata FROM certificates ORDER BY identifier COLLATE \"C\"");
        if (!r) return r.error();
        if (auto e = tx->commit(); !e) return e.error();
        return std::pair{static_cast<std::uint64_t>(s->int64(0, 0)), std::move(*r)};
    });
    if (!loaded) return loaded.error();
    const auto t1 = std::chrono::steady_clock::now();
    const pg::rows& rows = loaded->second;
    const int n = rows.size();
    std::vector<std::optional<cert_record>> recs(static_cast<std::size_t>(n));
    std::vector<std::string> why(static_cast<std::size_t>(n));
    std::atomic<int> next{0};
    auto work = [&] {
        for (int i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) {
            auto rec = parse_record(rows.text(i, 2));
            const auto i_ = static_cast<std::size_t>(i);
            if (!rec)
                why[i_] = rec.error().message;
            else if (rec->identifier != rows.text(i, 0))
                why[i_] = "identifier does not match the row";
            else if (to_string(rec->usage) != rows.text(i, 1))
                why[i_] = "cert_usage does not match the row";
            else
                recs[i_] = std::move(*rec);
        }
    };
    {
        const unsigned t = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max(1, n / 1000))));
        std::vector<std::jthread> pool;
        for (unsigned k = 1; k < t; ++k) pool.emplace_back(work);
        work();
    }
    load_report rep;
    rep.change_seq = loaded->first;
    rep.snapshot_problem = "not used (database)";
    rep.records.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const auto i_ = static_cast<std::size_t>(i);
        if (recs[i_])
            rep.records.push_back(std::move(*recs[i_]));
        else
            rep.skipped.push_back(std::string(rows.text(i, 1)) + "/" + std::string(rows.text(i, 0)) + ": " + why[i_]);
    }
    for (const auto& s : rep.skipped) spdlog::warn("pg_store: skipped {}", s);
    {
        std::lock_guard lk(mu_);
        loaded_seq_ = rep.change_seq;
    }
    using ms = std::chrono::milliseconds;
    spdlog::info("pg_store: loaded {} certificates at change {} ({} skipped; query {} ms, parse {} ms)",
                 rep.records.size(), rep.change_seq, rep.skipped.size(),
                 std::chrono::duration_cast<ms>(t1 - t0).count(),
                 std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t1).count());
    return rep;
}

// ---- CRL ----

result<crl_state> pg_store::load_crl_state() const {
    return with_conn([&](pg::connection& c) -> result<crl_state> {
        auto r = c.exec("SELECT crl_number, " CM_MICROS("this_update") ", " CM_MICROS("next_update") " FROM crl");
        if (!r) return r.error();
        crl_state s;
        if (r->empty()) return s;
        s.crl_number = static_cast<std::uint64_t>(r->int64(0, 0));
        if (!r->is_null(0, 1)) s.this_update = from_micros(r->int64(0, 1));
        if (!r->is_null(0, 2)) s.next_update = from_micros(r->int64(0, 2));
        return s;
    });
}

result<void> pg_store::save_crl_state(const crl_state& s) {
    return with_conn([&](pg::connection& c) -> result<void> {
        auto r = c.exec("UPDATE crl SET crl_number = $1, this_update = " CM_TS("$2") ", next_update = " CM_TS("$3"),
                        {s.crl_number, opt_micros(s.this_update), opt_micros(s.next_update)});
        if (!r) return r.error();
        return {};
    });
}

result<void> pg_store::publish_crl(std::string_view der, std::string_view pem) {
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        // The CRL row before the changes lock, as publish_next_crl takes them (no deadlock).
        if (auto r = c.exec("SELECT 1 FROM crl FOR UPDATE"); !r) return r.error();
        own_change own(this);
        if (auto seq = add_change(c, "crl", nullptr, own); !seq) return seq.error();
        if (auto r = c.exec("UPDATE crl SET der = $1, pem = $2", {pg::param::bytes(der), pem}); !r) return r.error();
        return commit_own(*tx, own);
    });
}

std::optional<std::pair<std::string, std::string>> pg_store::published_crl() const {
    auto r = with_conn([&](pg::connection& c) -> result<std::optional<std::pair<std::string, std::string>>> {
        auto r = c.exec("SELECT der, pem FROM crl WHERE der IS NOT NULL AND pem IS NOT NULL");
        if (!r) return r.error();
        if (r->empty()) return std::nullopt;
        return std::pair{r->bytes(0, 0), std::string(r->text(0, 1))};
    });
    if (!r) {
        spdlog::error("pg_store: reading the published CRL: {}", r.error().message);
        return std::nullopt;
    }
    return *r;
}

result<built_crl> pg_store::publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                             const std::function<result<built_crl>(std::uint64_t number)>& sign) {
    return with_conn([&](pg::connection& c) -> result<built_crl> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        // The row lock makes concurrent publishers take turns: each sees the number the other kept.
        auto cur = c.exec("SELECT crl_number FROM crl FOR UPDATE");
        if (!cur) return cur.error();
        const auto stored = cur->empty() ? 0 : static_cast<std::uint64_t>(cur->int64(0, 0));
        // A pruned range above applied_seq may have held another instance's change: a conflict too.
        // So may our own change whose COMMIT reported a failure (it is not in the caller's memory).
        std::string uncertain = "{";
        {
            std::lock_guard lk(mu_);
            for (auto u : uncertain_) uncertain += (uncertain.size() > 1 ? "," : "") + std::to_string(u);
        }
        uncertain += '}';
        auto newer = c.exec("(SELECT seq FROM changes WHERE (origin <> $1 OR seq = ANY($3::bigint[])) AND seq > $2 "
                            "ORDER BY seq LIMIT 1) "
                            "UNION ALL (SELECT through FROM changes_pruned WHERE through > $2) LIMIT 1",
                            {me_, applied_seq, uncertain});
        if (!newer) return newer.error();
        if (!newer->empty())
            return make_error(errc::conflict, "another instance committed change " + std::string(newer->text(0, 0)) +
                                                  " after " + std::to_string(applied_seq) +
                                                  ": catch up and build the CRL again");
        auto crl = sign(std::max(at_least, stored + 1));
        if (!crl) return crl.error();
        own_change own(this);
        if (auto seq = add_change(c, "crl", nullptr, own); !seq) return seq.error();
        if (auto r = c.exec("UPDATE crl SET crl_number = $1, this_update = " CM_TS("$2") ", next_update = " CM_TS(
                                "$3") ", der = $4, pem = $5",
                            {crl->crl_number, micros(crl->this_update), micros(crl->next_update),
                             pg::param::bytes(crl->der), crl->pem});
            !r)
            return r.error();
        if (auto r = commit_own(*tx, own); !r) return r.error();
        return crl;
    });
}

// ---- sweep, OCSP responder ----

std::optional<renewal_summary> pg_store::load_last_sweep() const {
    auto r = with_conn([&](pg::connection& c) -> result<std::optional<std::string>> {
        auto r = c.exec("SELECT summary FROM sweep");
        if (!r) return r.error();
        if (r->empty()) return std::nullopt;
        return std::string(r->text(0, 0));
    });
    if (!r) {
        spdlog::error("pg_store: reading the sweep record: {}", r.error().message);
        return std::nullopt;
    }
    if (!*r) return std::nullopt;
    auto s = parse_last_sweep(**r);
    if (!s) spdlog::warn("pg_store: the sweep record is unreadable; treating the sweep as never run");
    return s;
}

result<void> pg_store::save_last_sweep(const renewal_summary& s) {
    const std::string text = json::serialize(to_json(s));
    return with_conn([&](pg::connection& c) -> result<void> {
        auto r = c.exec("INSERT INTO sweep (id, summary) VALUES (true, $1) "
                        "ON CONFLICT (id) DO UPDATE SET summary = EXCLUDED.summary",
                        {text});
        if (!r) return r.error();
        return {};
    });
}

std::optional<std::pair<std::string, std::string>> pg_store::load_ocsp_responder() const {
    auto r = with_conn([&](pg::connection& c) -> result<std::optional<std::pair<std::string, std::string>>> {
        auto r = c.exec("SELECT cert_pem, key_wrapped FROM ocsp_responder");
        if (!r) return r.error();
        if (r->empty()) return std::nullopt;
        return std::pair{std::string(r->text(0, 0)), r->bytes(0, 1)};
    });
    if (!r || !*r) {
        if (!r) spdlog::error("pg_store: reading the OCSP responder: {}", r.error().message);
        return std::nullopt;
    }
    auto key = kek_.open((*r)->second, responder_aad);
    if (!key) {
        spdlog::error("pg_store: the OCSP responder's key: {}", key.error().message);
        return std::nullopt;
    }
    return std::pair{std::move((*r)->first), std::move(*key)};
}

result<void> pg_store::save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) {
    auto wrapped = kek_.seal(key_pem, responder_aad);
    if (!wrapped) return wrapped.error();
    return with_conn([&](pg::connection& c) -> result<void> {
        // Certificate and key in one row: a kept certificate always has its key.
        auto r =
            c.exec("INSERT INTO ocsp_responder (id, cert_pem, key_wrapped) VALUES (true, $1, $2) "
                   "ON CONFLICT (id) DO UPDATE SET cert_pem = EXCLUDED.cert_pem, key_wrapped = EXCLUDED.key_wrapped",
                   {cert_pem, pg::param::bytes(*wrapped)});
        if (!r) return r.error();
        return {};
    });
}

// ---- jobs ----

result<void> pg_store::save_job_input(const std::string& job_id, const job_input& in) {
    if (!job_id_ok(job_id)) return make_error(errc::invalid_argument, "invalid job identifier");
    const std::string text = json::serialize(to_json(in));
    return with_conn([&](pg::connection& c) -> result<void> {
        auto r = c.exec("INSERT INTO job_inputs (job_id, input) VALUES ($1, $2) "
                        "ON CONFLICT (job_id) DO UPDATE SET input = EXCLUDED.input, saved_at = now()",
                        {job_id, text});
        if (!r) return r.error();
        return {};
    });
}

result<job_input> pg_store::load_job_input(const std::string& job_id) const {
    if (!job_id_ok(job_id)) return make_error(errc::not_found, "no such job");
    auto text = with_conn([&](pg::connection& c) -> result<std::string> {
        auto r = c.exec("SELECT input FROM job_inputs WHERE job_id = $1", {job_id});
        if (!r) return r.error();
        if (r->empty()) return make_error(errc::not_found, "no such job");
        return std::string(r->text(0, 0));
    });
    if (!text) return text.error();
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (ec) return make_error(errc::storage_failure, "the input of " + job_id + " is not valid JSON");
    return job_input_from_json(v);
}

result<void> pg_store::save_job(const job_record& j) {
    if (!job_id_ok(j.id)) return make_error(errc::invalid_argument, "invalid job identifier");
    const std::string text = json::serialize(job_to_storage_json(j));
    return with_conn([&](pg::connection& c) -> result<void> {
        auto r = c.exec("INSERT INTO jobs (id, created_at, document) VALUES ($1, " CM_TS(
                            "$2") ", $3) "
                                  "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document",
                        {j.id, micros(j.created_at), text});
        if (!r) return r.error();
        return {};
    });
}

std::vector<job_record> pg_store::load_jobs() const {
    auto got = with_conn([&](pg::connection& c) -> result<pg::rows> {
        // The rows of a job whose document was never written (the submit was never answered 202).
        if (auto r = c.exec("DELETE FROM job_inputs WHERE saved_at < now() - interval '1 hour' "
                            "AND job_id NOT IN (SELECT id FROM jobs) RETURNING job_id");
            !r)
            return r.error();
        else
            for (int i = 0; i < r->size(); ++i)
                spdlog::warn("removed the rows of job {}: a job that was never accepted", r->text(i, 0));
        return c.exec("SELECT id, document FROM jobs ORDER BY created_at, id");
    });
    std::vector<job_record> out;
    if (!got) {
        spdlog::error("pg_store: reading jobs: {}", got.error().message);
        return out;
    }
    for (int i = 0; i < got->size(); ++i) {
        boost::system::error_code ec;
        auto v = json::parse(got->text(i, 1), ec);
        auto j = ec ? result<job_record>(make_error(errc::storage_failure, "not valid JSON")) : job_from_json(v);
        if (j && j->id != got->text(i, 0)) j = make_error(errc::storage_failure, "it names another job");
        if (!j) {
            spdlog::error("skipping job {}: {}", got->text(i, 0), j.error().message);
            continue;
        }
        out.push_back(std::move(*j));
    }
    return out;
}

result<void> pg_store::remove_job(const std::string& job_id) {
    if (!job_id_ok(job_id)) return make_error(errc::not_found, "no such job");
    return with_conn([&](pg::connection& c) -> result<void> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        if (auto r = c.exec("DELETE FROM jobs WHERE id = $1", {job_id}); !r) return r.error();
        if (auto r = c.exec("DELETE FROM job_inputs WHERE job_id = $1", {job_id}); !r) return r.error();
        return tx->commit();
    });
}

// ---- several instances ----

result<std::vector<cert_record>> pg_store::find_records(const std::vector<std::string>& ids) const {
    std::string arr = "{";
    for (const auto& id : ids) {
        if (!valid_identifier(id)) continue; // such an identifier is never kept
        if (arr.size() > 1) arr += ',';
        arr += '"' + id + '"'; // valid identifiers hold no quote or backslash
    }
    arr += '}';
    auto got = with_conn([&](pg::connection& c) -> result<pg::rows> {
        return c.exec("SELECT metadata FROM certificates WHERE identifier = ANY($1::text[])", {arr});
    });
    if (!got) return got.error();
    std::vector<cert_record> out;
    for (int i = 0; i < got->size(); ++i) {
        auto rec = parse_record(got->text(i, 0));
        if (!rec) return rec.error();
        out.push_back(std::move(*rec));
    }
    return out;
}

result<std::unique_ptr<task_lease>> pg_store::try_lead(std::string_view task) {
    auto c = pg::connection::open(conninfo_);
    if (!c) {
        note(c.error());
        return c.error();
    }
    auto r = c->exec("SELECT pg_try_advisory_lock($1, hashtext($2))", {lead_lock_class, task});
    note(r ? std::nullopt : std::optional<error>(r.error()));
    if (!r) return r.error();
    if (!r->boolean(0, 0)) return std::unique_ptr<task_lease>();
    return std::unique_ptr<task_lease>(std::make_unique<pg_lease>(std::move(*c), std::string(task)));
}

void pg_store::watch_changes(std::function<void(std::vector<store_change>)> apply) {
    if (watcher_.joinable() || !apply) return;
    apply_ = std::move(apply);
    {
        std::lock_guard lk(mu_);
        if (loaded_seq_) watched_ = *loaded_seq_;
    }
    watcher_ = std::jthread([this](std::stop_token st) { watch_loop(std::move(st)); });
}

bool pg_store::wait(int fd, int ms, const std::stop_token& st) const {
    if (st.stop_requested()) return false;
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    (void)::poll(fds, fd >= 0 ? 2 : 1, ms);
    return !st.stop_requested();
}

void pg_store::watch_loop(std::stop_token st) {
    bool started;
    {
        std::lock_guard lk(mu_);
        started = loaded_seq_.has_value();
    }
    auto backoff = 100ms;
    bool was_down = false;
    auto next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (!st.stop_requested()) {
        auto c = pg::connection::open(conninfo_);
        if (c) {
            if (auto r = c->exec(std::string("LISTEN ") + std::string(notify_channel)); !r) c = r.error();
        }
        if (c && !started) { // no load_all: the changes from now on
            auto r = c->exec("SELECT coalesce(max(seq), 0) FROM changes");
            if (r) {
                watched_ = static_cast<std::uint64_t>(r->int64(0, 0));
                started = true;
            } else {
                c = r.error();
            }
        }
        if (!c) {
            if (c.error().code == errc::storage_unavailable) note(c.error()); // problem() without traffic
            if (!was_down) spdlog::warn("pg_store: change watch: {}; retrying", c.error().message);
            was_down = true;
            if (!wait(-1, static_cast<int>(backoff.count()), st)) return;
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
            continue;
        }
        if (was_down) {
            note(std::nullopt);
            spdlog::info("pg_store: change watch reconnected; catching up from change {}", watched_.load());
        }
        was_down = false;
        backoff = 100ms;
        // LISTEN before reading: a change committed meanwhile is read now or notified later.
        auto ok = catch_up(*c);
        while (ok && !st.stop_requested()) {
            // The change log is kept a day (docs/postgresql.md "Pruning"); any instance may prune.
            if (const auto now = std::chrono::steady_clock::now(); now >= next_prune) {
                next_prune = now + std::chrono::hours(1);
                if (auto n = prune_changes(std::chrono::hours(24)); n && *n > 0)
                    spdlog::info("pg_store: pruned {} changes older than a day", *n);
            }
            // A notification wakes us; otherwise the table is read every second anyway.
            if (!wait(c->socket(), 1000, st)) return;
            auto n = c->notifications();
            if (!n) {
                ok = n.error();
                break;
            }
            ok = catch_up(*c);
        }
        if (!ok && !st.stop_requested()) {
            if (ok.error().code == errc::storage_unavailable) note(ok.error());
            spdlog::warn("pg_store: change watch lost its connection: {}", ok.error().message);
            was_down = true;
            if (!wait(-1, static_cast<int>(backoff.count()), st)) return;
        }
    }
}

result<std::uint64_t> pg_store::prune_changes(std::chrono::seconds keep) {
    return with_conn([&](pg::connection& c) -> result<std::uint64_t> {
        auto tx = pg::transaction::begin(c);
        if (!tx) return tx.error();
        // Under the changes lock: no sequence is being taken meanwhile.
        if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {changes_lock_key}); !r) return r.error();
        auto r = c.exec("WITH gone AS (DELETE FROM changes WHERE at < now() - $1 * interval '1 second' "
                        "AND seq < (SELECT max(seq) FROM changes) RETURNING seq) "
                        "SELECT count(*), coalesce(max(seq), 0) FROM gone",
                        {static_cast<std::int64_t>(keep.count())});
        if (!r) return r.error();
        const auto n = static_cast<std::uint64_t>(r->int64(0, 0));
        if (n > 0) {
            if (auto u = c.exec("UPDATE changes_pruned SET through = greatest(through, $1)", {r->int64(0, 1)}); !u)
                return u.error();
        }
        if (auto e = tx->commit(); !e) return e.error();
        return n;
    });
}

result<void> pg_store::resync(pg::connection& c) {
    const std::uint64_t from = watched_.load();
    auto tx = pg::transaction::begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx) return tx.error();
    auto top = c.exec("SELECT coalesce(max(seq), 0) FROM changes");
    if (!top) return top.error();
    auto r = c.exec("SELECT updated_seq, metadata FROM certificates WHERE updated_seq > $1 AND updated_by <> $2 "
                    "ORDER BY updated_seq",
                    {from, me_});
    if (!r) return r.error();
    if (auto e = tx->commit(); !e) return e.error();
    spdlog::warn("pg_store: changes after {} were pruned; catching up with {} certificates written since", from,
                 r->size());
    std::vector<store_change> batch;
    for (int i = 0; i < r->size(); ++i) {
        auto rec = parse_record(r->text(i, 1));
        if (!rec) {
            spdlog::error("pg_store: resync: {}", rec.error().message);
            continue;
        }
        batch.push_back(store_change{static_cast<std::uint64_t>(r->int64(i, 0)), std::move(*rec), false});
    }
    const auto last = std::max(from, static_cast<std::uint64_t>(top->int64(0, 0)));
    batch.push_back(store_change{last, std::nullopt, true}); // the CRL may have changed too
    apply_(std::move(batch));
    watched_ = last;
    return {};
}

store_status pg_store::status() const {
    store_status s;
    s.shared = true;
    if (const double l = latency_seconds_.load(); l >= 0) s.latency_seconds = l;
    if (const double l = lag_seconds_.load(); l >= 0) s.notification_lag_seconds = l;
    if (const auto ns = last_heard_ns_.load(); ns > 0) s.last_heard = time_point(std::chrono::nanoseconds(ns));
    s.change_seq = watched_.load();
    const auto p = pool_.stats();
    s.pool_size = p.size;
    s.pool_idle = p.idle;
    s.pool_in_use = p.in_use;
    s.pool_timeouts = p.timeouts;
    s.pool_opened = p.reconnects;
    s.pool_broken = p.broken;
    return s;
}

result<void> pg_store::catch_up(pg::connection& c) {
    const auto asked = std::chrono::steady_clock::now();
    auto pruned = c.exec("SELECT through FROM changes_pruned");
    if (!pruned) return pruned.error();
    latency_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    last_heard_ns_ =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (!pruned->empty() && static_cast<std::uint64_t>(pruned->int64(0, 0)) > watched_.load()) {
        if (auto r = resync(c); !r) return r;
    }
    for (;;) {
        const std::uint64_t from = watched_.load();
        auto r = c.exec("SELECT ch.seq, ch.origin = $2, ch.kind, c.metadata, "
                        "extract(epoch FROM clock_timestamp() - ch.at) FROM changes ch "
                        "LEFT JOIN certificates c ON c.identifier = ch.identifier "
                        "WHERE ch.seq > $1 ORDER BY ch.seq LIMIT " +
                            std::to_string(catch_up_batch),
                        {from, me_});
        if (!r) return r.error();
        if (r->empty()) return {};
        std::vector<store_change> batch;
        std::uint64_t last = from;
        bool held = false;
        for (int i = 0; i < r->size(); ++i) {
            const auto seq = static_cast<std::uint64_t>(r->int64(i, 0));
            if (r->boolean(i, 1)) { // our own change: applied by its caller unless its COMMIT failed
                std::lock_guard lk(mu_);
                if (pending_.contains(seq)) { // its COMMIT has not returned yet: wait for it
                    held = true;
                    break;
                }
                if (uncertain_.erase(seq) == 0) {
                    last = seq;
                    continue;
                }
                spdlog::warn("pg_store: change {} was committed though its COMMIT reported a failure; applying it",
                             seq);
            }
            last = seq;
            store_change ch;
            ch.seq = last;
            if (r->text(i, 2) == "crl") {
                ch.crl_published = true;
            } else if (!r->is_null(i, 3)) {
                auto rec = parse_record(r->text(i, 3));
                if (rec)
                    ch.record = std::move(*rec);
                else
                    spdlog::error("pg_store: change {}: {}", last, rec.error().message);
            }
            batch.push_back(std::move(ch));
        }
        if (!batch.empty()) {
            auto lag = r->text(r->size() - 1, 4);
            lag_seconds_ = std::max(0.0, std::strtod(std::string(lag).c_str(), nullptr));
            apply_(std::move(batch));
        }
        watched_ = last;
        {
            // Failed COMMITs at or below a delivered change are known not to have committed.
            std::lock_guard lk(mu_);
            uncertain_.erase(uncertain_.begin(), uncertain_.upper_bound(last));
        }
        if (held || r->size() < catch_up_batch) return {};
    }
}

} // namespace certmate::storage
