#include "storage/pg_audit.hpp"

#include "core/keys.hpp"

#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <limits>

namespace certmate::storage {

namespace json = boost::json;

namespace {

constexpr auto max_bigint = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
// Rows verify() reads per statement: the chain is walked in slices, never held whole.
constexpr std::int64_t verify_batch = 2000;

// A timestamptz literal at microsecond precision, rounded up or down: the chain's timestamps are
// whole seconds, so `at >= ceil(since)` and `at <= floor(until)` select exactly what the file
// log's query does with the full-precision bounds.
std::string pg_timestamp(time_point t, bool round_up) {
    using namespace std::chrono;
    const auto us = round_up ? ceil<microseconds>(t) : floor<microseconds>(t);
    const auto day = floor<days>(us);
    const year_month_day ymd{day};
    const hh_mm_ss hms{us - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld.%06ld+00", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                  static_cast<long>(hms.seconds().count()), static_cast<long>(hms.subseconds().count()));
    return buf;
}

// In an append's transaction: takes the chain's lock. The commit is durable when it returns,
// whatever the server's default; a client that vanishes mid-append (no FIN reaches the server)
// holds the lock, and with it every instance's appends, for seconds rather than until TCP gives up.
result<void> lock_chain(pg::connection& c) {
    auto r = c.exec("SELECT set_config('synchronous_commit', 'on', true), "
                    "set_config('idle_in_transaction_session_timeout', '10s', true), pg_advisory_xact_lock($1)",
                    {pg_audit_lock_key});
    if (!r) return r.error();
    return {};
}

error unavailable(const error& e) { return make_error(errc::audit_unavailable, "audit log unavailable: " + e.message); }

} // namespace

result<void> pg_audit::ensure_schema(pg::connection& c) {
    auto tx = pg::transaction::begin(c);
    if (!tx) return tx.error();
    // CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE: instances take turns.
    if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {pg_audit_lock_key}); !r) return r.error();
    if (auto r = c.exec_script(pg_audit_schema); !r) return r.error();
    return tx->commit();
}

result<pg_audit::chain_head> pg_audit::read_head(pg::connection& c) {
    auto r = c.exec("SELECT seq, line FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (!r) return r.error();
    chain_head h;
    h.head = {0, audit_zero_hash};
    if (r->empty()) return h;
    const auto seq = static_cast<std::uint64_t>(r->int64(0, 0));
    auto info = read_audit_line(r->text(0, 1));
    // Continuing after a line that is not intact would chain onto a hash nobody can check.
    if (!info || info->seq != seq)
        return make_error(errc::conflict,
                          "the audit chain's last entry (seq " + std::to_string(seq) + ") is not intact");
    h.head = {seq, std::move(info->hash)};
    h.is_checkpoint = info->operation == "checkpoint";
    return h;
}

result<void> pg_audit::insert(pg::connection& c, const audit_entry& e, chain_head& h) {
    const auto at = clock_();
    const std::uint64_t seq = h.head.seq + 1;
    auto line = make_audit_line(e, seq, at, h.head.hash);
    if (!line) return line.error();
    auto r = c.exec("INSERT INTO audit_log (seq, at, operation, resource_type, resource_id, user_name, line) "
                    "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7)",
                    {seq, format_time(at), e.operation, e.resource_type, e.resource_id, e.user, line->text});
    if (!r) return r.error();
    h.head = {seq, std::move(line->hash)};
    h.is_checkpoint = e.operation == "checkpoint";
    return {};
}

result<std::unique_ptr<pg_audit>> pg_audit::open(std::shared_ptr<pg::pool> pool, clock_fn clock) {
    std::unique_ptr<pg_audit> log(new pg_audit(std::move(pool), std::move(clock)));
    auto lease = log->pool_->acquire();
    if (!lease) return unavailable(lease.error());
    auto h = read_head(**lease);
    if (!h && h.error().code != errc::conflict) return unavailable(h.error());
    if (!h) {
        // A last row that is not intact: open (reads need no chain) but refuse appends until
        // someone looks (verify() says where).
        (void)log->fail(h.error());
        return log;
    }
    log->head_ = std::move(h->head);
    return log;
}

result<void> pg_audit::set_signer(ossl::pkey key, std::uint64_t interval) {
    auto id = public_key_id(key.get());
    if (!id) return id.error();
    auto pem = public_key_to_pem(key.get());
    if (!pem) return pem.error();
    std::lock_guard lk(mu_);
    signer_id_ = std::move(*id);
    signer_pem_ = std::move(*pem);
    signer_ = std::move(key);
    checkpoint_interval_ = interval;
    return {};
}

std::string pg_audit::public_key_pem() const {
    std::lock_guard lk(mu_);
    return signer_pem_;
}

bool pg_audit::healthy() const { return healthy_.load(); }

std::string pg_audit::last_error() const {
    std::lock_guard lk(mu_);
    return last_error_;
}

audit_head pg_audit::head_written() const {
    std::lock_guard lk(mu_);
    return head_;
}

result<void> pg_audit::ready() {
    std::lock_guard lk(mu_);
    if (healthy_) return {};
    const auto now = std::chrono::steady_clock::now();
    if (now - last_attempt_ < retry_every_)
        return make_error(errc::audit_unavailable, "audit log unavailable: " + last_error_);
    last_attempt_ = now;
    return {};
}

error pg_audit::fail(const error& why) {
    std::lock_guard lk(mu_);
    healthy_ = false;
    last_error_ = why.message;
    last_attempt_ = std::chrono::steady_clock::now();
    spdlog::error("audit log (database): {}; retrying at most once per second", last_error_);
    return unavailable(why);
}

void pg_audit::succeeded(const audit_head& written) {
    std::lock_guard lk(mu_);
    head_ = written;
    healthy_ = true;
    last_error_.clear();
}

result<void> pg_audit::append(const audit_entry& e) {
    ossl::pkey signer;
    std::string signer_id;
    std::uint64_t interval = 0;
    {
        std::lock_guard lk(mu_);
        if (signer_) signer = ossl::up_ref(signer_.get());
        signer_id = signer_id_;
        interval = checkpoint_interval_;
    }
    std::lock_guard append_lock(append_mu_);
    if (auto r = ready(); !r) return r;
    auto lease = pool_->acquire();
    if (!lease) return fail(lease.error());
    auto& c = **lease;
    // READ COMMITTED: the head is read by a statement that starts after the lock is held, so it
    // sees the entry the previous holder committed.
    auto tx = pg::transaction::begin(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (!tx) return fail(tx.error());
    if (auto r = lock_chain(c); !r) return fail(r.error());
    auto h = read_head(c);
    if (!h) return fail(h.error());
    if (auto r = insert(c, e, *h); !r) return fail(r.error());
    if (signer && interval > 0 && h->head.seq % interval == 0) {
        // A checkpoint that cannot be signed does not hold the entry back.
        if (auto cp = make_checkpoint_entry(h->head, signer.get(), signer_id, "interval"); !cp)
            spdlog::error("audit log (database): {}", cp.error().message);
        else if (auto r = insert(c, *cp, *h); !r)
            return fail(r.error());
    }
    if (auto r = tx->commit(); !r) return fail(r.error());
    succeeded(h->head);
    return {};
}

result<bool> pg_audit::checkpoint(std::string reason) {
    ossl::pkey signer;
    std::string signer_id;
    {
        std::lock_guard lk(mu_);
        if (!signer_) return false;
        signer = ossl::up_ref(signer_.get());
        signer_id = signer_id_;
    }
    std::lock_guard append_lock(append_mu_);
    if (auto r = ready(); !r) return r.error();
    auto lease = pool_->acquire();
    if (!lease) return fail(lease.error());
    auto& c = **lease;
    auto tx = pg::transaction::begin(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (!tx) return fail(tx.error());
    if (auto r = lock_chain(c); !r) return fail(r.error());
    auto h = read_head(c);
    if (!h) return fail(h.error());
    if (h->head.seq == 0 || h->is_checkpoint) return false;
    auto cp = make_checkpoint_entry(h->head, signer.get(), signer_id, std::move(reason));
    if (!cp) return cp.error();
    if (auto r = insert(c, *cp, *h); !r) return fail(r.error());
    if (auto r = tx->commit(); !r) return fail(r.error());
    succeeded(h->head);
    return true;
}

result<void> pg_audit::reopen() {
    std::lock_guard append_lock(append_mu_);
    {
        std::lock_guard lk(mu_);
        last_attempt_ = std::chrono::steady_clock::now();
    }
    auto lease = pool_->acquire();
    if (!lease) return fail(lease.error());
    auto h = read_head(**lease);
    if (!h) return fail(h.error());
    succeeded(h->head);
    return {};
}

result<std::vector<json::object>> pg_audit::query(const audit_query& q) const {
    std::vector<json::object> out;
    if (q.limit == 0) return out;
    std::string sql = "SELECT line FROM audit_log";
    std::vector<pg::param> params;
    auto where = [&](std::string_view cond, pg::param p) {
        params.push_back(std::move(p));
        sql += params.size() == 1 ? " WHERE " : " AND ";
        sql += cond;
        sql += std::to_string(params.size());
    };
    if (!q.resource_id.empty()) where("resource_id = $", q.resource_id);
    if (!q.operation.empty()) where("operation = $", q.operation);
    if (q.since) where("at >= $", pg_timestamp(*q.since, true));
    if (q.until) where("at <= $", pg_timestamp(*q.until, false));
    params.emplace_back(std::min<std::uint64_t>(q.limit, max_bigint));
    sql += " ORDER BY seq DESC LIMIT $" + std::to_string(params.size());
    auto lease = pool_->acquire();
    if (!lease) return unavailable(lease.error());
    auto r = (*lease)->exec(sql, params);
    if (!r) return unavailable(r.error());
    out.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) {
        std::error_code ec;
        json::value v = json::parse(r->text(i, 0), ec);
        if (ec || !v.is_object()) continue; // as the file log skips a line that is not JSON
        out.push_back(std::move(v.get_object()));
    }
    return out;
}

result<audit_verify_result> pg_audit::verify_on(pg::connection& c, EVP_PKEY* public_key,
                                                const audit_head& expected) const {
    audit_chain_verifier v(public_key, expected);
    std::int64_t after = 0, bad_seq = 0;
    while (v.ok()) {
        auto r = c.exec("SELECT seq, line FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", {after, verify_batch});
        if (!r) return r.error();
        for (int i = 0; i < r->size() && v.ok(); ++i) {
            after = r->int64(i, 0);
            // The rows' own seq must count 1, 2, ... like the lines' (a deleted row leaves a gap).
            if (static_cast<std::uint64_t>(after) != v.lines() + 1)
                v.fail("seq out of order");
            else
                (void)v.add(r->text(i, 1));
            if (!v.ok()) bad_seq = after;
        }
        if (r->size() < verify_batch) break;
    }
    auto res = v.finish();
    if (!res.ok && bad_seq > 0) res.reason += " (seq " + std::to_string(bad_seq) + ")";
    return res;
}

audit_verify_result pg_audit::verify() const {
    ossl::pkey pub;
    audit_head expected;
    {
        std::lock_guard lk(mu_);
        if (signer_) pub = ossl::up_ref(signer_.get());
        expected = head_;
    }
    auto failed = [](const error& e) {
        audit_verify_result res;
        res.ok = false;
        res.reason = "database unavailable: " + e.message;
        return res;
    };
    auto lease = pool_->acquire();
    if (!lease) return failed(lease.error());
    // One snapshot: appends committed meanwhile are not half seen.
    auto tx = pg::transaction::begin(**lease, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx) return failed(tx.error());
    auto res = verify_on(**lease, pub.get(), expected);
    if (!res) return failed(res.error());
    return std::move(*res);
}

result<audit_export> pg_audit::export_range(std::uint64_t from_seq, std::optional<std::uint64_t> to_seq) const {
    ossl::pkey signer;
    std::string signer_id;
    audit_head expected;
    {
        std::lock_guard lk(mu_);
        if (signer_) signer = ossl::up_ref(signer_.get());
        signer_id = signer_id_;
        expected = head_;
    }
    if (from_seq > max_bigint || (to_seq && *to_seq < from_seq))
        return make_error(errc::not_found, "no audit entries in that range");
    auto lease = pool_->acquire();
    if (!lease) return unavailable(lease.error());
    auto& c = **lease;
    // The range is read from the snapshot the verification saw.
    auto tx = pg::transaction::begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!tx) return unavailable(tx.error());
    // The signature vouches for these bytes: only a chain that verifies, up to the head this
    // instance wrote, is signed. Otherwise whoever can write the table gets its rewrite signed.
    auto v = verify_on(c, signer.get(), expected);
    if (!v) return unavailable(v.error());
    if (!v->ok)
        return make_error(errc::conflict, "the audit log does not verify (line " + std::to_string(v->bad_line) + ": " +
                                              v->reason + "); nothing was signed");
    auto r = c.exec("SELECT seq, line FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
                    {from_seq, std::min(to_seq.value_or(max_bigint), max_bigint)});
    if (!r) return unavailable(r.error());
    if (r->empty()) return make_error(errc::not_found, "no audit entries in that range");
    audit_export out;
    out.from_seq = static_cast<std::uint64_t>(r->int64(0, 0));
    out.to_seq = static_cast<std::uint64_t>(r->int64(r->size() - 1, 0));
    out.count = static_cast<std::size_t>(r->size());
    for (int i = 0; i < r->size(); ++i) {
        out.bytes += r->text(i, 1);
        out.bytes += '\n';
    }
    if (!signer) return make_error(errc::audit_unavailable, "no audit signing key is loaded");
    auto sig = sign_raw(signer.get(), out.bytes);
    if (!sig) return sig.error();
    out.signature = std::move(*sig);
    out.key_id = std::move(signer_id);
    return out;
}

result<std::size_t> pg_audit::import_lines(pg::connection& c, const std::vector<std::string>& lines) {
    auto tx = pg::transaction::begin(c);
    if (!tx) return tx.error();
    if (auto r = c.exec("SELECT pg_advisory_xact_lock($1)", {pg_audit_lock_key}); !r) return r.error();
    auto held = c.exec("SELECT line FROM audit_log ORDER BY seq");
    if (!held) return held.error();
    const auto n = static_cast<std::size_t>(held->size());
    if (n > lines.size())
        return make_error(errc::conflict, "the database's audit chain is longer (" + std::to_string(n) +
                                              " entries) than the one imported (" + std::to_string(lines.size()) + ")");
    for (std::size_t i = 0; i < n; ++i)
        if (held->text(static_cast<int>(i), 0) != lines[i])
            return make_error(errc::conflict, "the database's audit chain differs at seq " + std::to_string(i + 1) +
                                                  ": nothing imported");
    for (std::size_t i = n; i < lines.size(); ++i) {
        boost::json::object o;
        try {
            o = boost::json::parse(lines[i]).as_object();
        } catch (const std::exception&) {
            return make_error(errc::invalid_argument, "audit line " + std::to_string(i + 1) + " is not a JSON object");
        }
        auto str = [&](const char* k) -> std::string {
            auto* v = o.if_contains(k);
            return v && v->is_string() ? std::string(v->as_string()) : std::string();
        };
        auto r = c.exec("INSERT INTO audit_log (seq, at, operation, resource_type, resource_id, user_name, line) "
                        "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7)",
                        {static_cast<std::uint64_t>(i + 1), str("timestamp"), str("operation"), str("resource_type"),
                         str("resource_id"), str("user"), lines[i]});
        if (!r) return make_error(r.error().code, "audit line " + std::to_string(i + 1) + ": " + r.error().message);
    }
    if (auto r = tx->commit(); !r) return r.error();
    return lines.size() - n;
}

result<std::vector<std::string>> pg_audit::export_lines(pg::connection& c) {
    auto r = c.exec("SELECT line FROM audit_log ORDER BY seq");
    if (!r) return r.error();
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) out.emplace_back(r->text(i, 0));
    return out;
}

} // namespace certmate::storage
