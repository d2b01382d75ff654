#include "storage/pg.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>

namespace certmate::storage::pg {

void conn_deleter::operator()(pg_conn* c) const noexcept { PQfinish(c); }
void result_deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

// ---- rows ----

int rows::size() const noexcept { return r_ ? PQntuples(r_.get()) : 0; }

bool rows::is_null(int row, int col) const noexcept { return PQgetisnull(r_.get(), row, col) != 0; }

std::string_view rows::text(int row, int col) const noexcept {
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
}

std::optional<std::string> rows::opt_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(text(row, col));
}

std::string rows::bytes(int row, int col) const {
    if (is_null(row, col)) return {};
    std::size_t n = 0;
    auto* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
    if (!raw) return {};
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
}

std::int64_t rows::int64(int row, int col) const {
    auto t = text(row, col);
    std::int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

bool rows::boolean(int row, int col) const noexcept { return text(row, col) == "t"; }

std::uint64_t rows::affected() const noexcept {
    const char* n = PQcmdTuples(r_.get());
    std::uint64_t v = 0;
    if (n) std::from_chars(n, n + std::strlen(n), v);
    return v;
}

// ---- connection ----

namespace {
std::string first_line(const char* msg) {
    std::string s = msg ? msg : "";
    if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    return s;
}
} // namespace

result<connection> connection::open(const std::string& conninfo) {
    // Defaults before the operator's string (expanded from `dbname`; its own settings win): a
    // database that goes silent over TCP (a fail-over without a reset, a cut network) fails calls
    // within about 30 s instead of the kernel's two hours, so mutations answer 503.
    static const char* const keys[] = {
        "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
    const char* const values[] = {"10", "5", "3", "30000", conninfo.c_str(), nullptr};
    conn_ptr c(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
    if (!c) return make_error(errc::storage_unavailable, "database: out of memory");
    if (PQstatus(c.get()) != CONNECTION_OK)
        return make_error(errc::storage_unavailable, "database unreachable: " + first_line(PQerrorMessage(c.get())));
    // Statements see UTC timestamps and fail rather than wait forever on a lock.
    // Notices (and a terminated backend's goodbye) go to our log, not to stderr.
    PQsetNoticeProcessor(
        c.get(), [](void*, const char* msg) { spdlog::debug("database: {}", first_line(msg)); }, nullptr);
    connection conn(std::move(c));
    if (auto r = conn.exec_script("SET TIME ZONE 'UTC'; SET lock_timeout = '10s'; SET statement_timeout = '60s'"); !r)
        return r.error();
    return conn;
}

result<rows> connection::exec(std::string_view sql, std::initializer_list<param> params) {
    return run(sql, params.begin(), params.size());
}

result<rows> connection::exec(std::string_view sql, const std::vector<param>& params) {
    return run(sql, params.data(), params.size());
}

result<rows> connection::run(std::string_view sql, const param* params, std::size_t n) {
    if (!c_) return make_error(errc::storage_unavailable, "database: not connected");
    std::vector<const char*> values(n);
    std::vector<int> lengths(n), formats(n);
    for (std::size_t i = 0; i < n; ++i) {
        values[i] = params[i].value ? params[i].value->data() : nullptr;
        lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
        formats[i] = params[i].binary ? 1 : 0;
    }
    const std::string q(sql);
    result_ptr r(PQexecParams(c_.get(), q.c_str(), static_cast<int>(n), nullptr, values.data(), lengths.data(),
                              formats.data(), 0));
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        sqlstate_.clear();
        return rows(std::move(r));
    }
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    sqlstate_ = state ? state : "";
    std::string msg = first_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_.get()));
    if (PQstatus(c_.get()) != CONNECTION_OK) return make_error(errc::storage_unavailable, "database: " + msg);
    if (sqlstate_ == "23505") return make_error(errc::already_exists, "database: " + msg);
    if (sqlstate_ == "40001" || sqlstate_ == "40P01" || sqlstate_ == "55P03")
        return make_error(errc::conflict, "database: " + msg);
    // 53xxx: insufficient resources (disk full, out of memory, too many connections).
    if (sqlstate_.starts_with("53") || sqlstate_.starts_with("08") || sqlstate_ == "57P01" || sqlstate_ == "57P03")
        return make_error(errc::storage_unavailable, "database: " + msg);
    return make_error(errc::storage_failure, "database: " + msg);
}

result<void> connection::exec_script(std::string_view sql) {
    if (!c_) return make_error(errc::storage_unavailable, "database: not connected");
    const std::string q(sql);
    result_ptr r(PQexec(c_.get(), q.c_str()));
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return {};
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    sqlstate_ = state ? state : "";
    std::string msg = first_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_.get()));
    if (PQstatus(c_.get()) != CONNECTION_OK) return make_error(errc::storage_unavailable, "database: " + msg);
    return make_error(errc::storage_failure, "database: " + msg);
}

bool connection::healthy() const noexcept {
    return c_ && PQstatus(c_.get()) == CONNECTION_OK && PQtransactionStatus(c_.get()) == PQTRANS_IDLE;
}

bool connection::check() noexcept {
    // Twice: the first read takes the server's FATAL message, the second meets the closed socket
    // (libpq marks the connection bad then). Neither blocks.
    for (int i = 0; i < 2 && c_ && PQstatus(c_.get()) == CONNECTION_OK; ++i) {
        if (PQconsumeInput(c_.get()) == 0) break;
        (void)PQisBusy(c_.get());
    }
    return healthy();
}

result<std::vector<notification>> connection::notifications() {
    if (!c_) return make_error(errc::storage_unavailable, "database: not connected");
    if (PQconsumeInput(c_.get()) == 0 || PQstatus(c_.get()) != CONNECTION_OK)
        return make_error(errc::storage_unavailable, "database: " + first_line(PQerrorMessage(c_.get())));
    std::vector<notification> out;
    while (PGnotify* n = PQnotifies(c_.get())) {
        out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
        PQfreemem(n);
    }
    return out;
}

int connection::socket() const noexcept { return c_ ? PQsocket(c_.get()) : -1; }

int connection::backend_pid() const noexcept { return c_ ? PQbackendPID(c_.get()) : 0; }

// ---- transaction ----

result<transaction> transaction::begin(connection& c, std::string_view begin_sql) {
    if (auto r = c.exec(begin_sql); !r) return r.error();
    return transaction(c);
}

transaction::~transaction() {
    if (c_) (void)c_->exec("ROLLBACK");
}

result<void> transaction::commit() {
    auto* c = c_;
    c_ = nullptr;
    if (!c) return make_error(errc::internal, "transaction already ended");
    if (auto r = c->exec("COMMIT"); !r) return r.error();
    return {};
}

// ---- pool ----

pool::pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait, std::string on_connect)
    : conninfo_(std::move(conninfo)), size_(size == 0 ? 1 : size), wait_(wait), on_connect_(std::move(on_connect)) {
    stats_.size = size_;
}

pool::lease::~lease() {
    if (p_ && c_) p_->give_back(std::move(c_));
}

result<pool::lease> pool::acquire() {
    std::unique_lock lock(mu_);
    ++stats_.acquired;
    const auto deadline = std::chrono::steady_clock::now() + wait_;
    bool waited = false;
    while (idle_.empty() && open_ >= size_) {
        waited = true;
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= size_) {
            ++stats_.timeouts;
            return make_error(errc::storage_unavailable, "database: every connection is busy");
        }
    }
    if (waited) ++stats_.waited;
    while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (!c->check()) { // the server ended it while idle (restart, pg_terminate_backend)
            ++stats_.broken;
            --open_;
            continue;
        }
        ++stats_.in_use;
        return lease(this, std::move(c));
    }
    ++open_;
    ++stats_.reconnects;
    lock.unlock();
    auto c = connection::open(conninfo_);
    if (c && !on_connect_.empty())
        if (auto r = c->exec_script(on_connect_); !r) c = r.error();
    lock.lock();
    if (!c) {
        --open_;
        cv_.notify_one();
        return c.error();
    }
    ++stats_.in_use;
    return lease(this, std::make_unique<connection>(std::move(*c)));
}

void pool::give_back(std::unique_ptr<connection> c) {
    std::lock_guard lock(mu_);
    --stats_.in_use;
    if (c->healthy()) {
        idle_.push_back(std::move(c));
    } else {
        ++stats_.broken;
        --open_;
    }
    cv_.notify_one();
}

pool_stats pool::stats() const {
    std::lock_guard lock(mu_);
    auto s = stats_;
    s.idle = idle_.size();
    return s;
}

} // namespace certmate::storage::pg
