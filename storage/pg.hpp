// libpq behind RAII (docs/postgresql.md): a connection, a result set, parameterised statements, a
// transaction guard and a small pool. Every call blocks on the network: callers run on the
// service's thread pool or a thread of their own, never on an io_context thread.
// Thread-safety: a connection is used by one thread at a time (the pool hands each out once);
// the pool itself is safe from any thread.
#pragma once

#include "core/errc.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// libpq's opaque handles, declared here so that libpq-fe.h stays in storage/pg.cpp.
struct pg_conn;
struct pg_result;

namespace certmate::storage::pg {

struct conn_deleter {
    void operator()(pg_conn* c) const noexcept;
};
struct result_deleter {
    void operator()(pg_result* r) const noexcept;
};
using conn_ptr = std::unique_ptr<pg_conn, conn_deleter>;
using result_ptr = std::unique_ptr<pg_result, result_deleter>;

// A statement parameter: text (ints are sent as their decimal text), raw bytes (bytea) or NULL.
struct param {
    std::optional<std::string> value;
    bool binary = false;

    param() = default;
    param(std::string_view text) : value(std::string(text)) {}
    param(const std::string& text) : value(text) {}
    param(const char* text) : value(std::string(text)) {}
    param(std::int64_t n) : value(std::to_string(n)) {}
    param(std::uint64_t n) : value(std::to_string(n)) {}
    param(int n) : value(std::to_string(n)) {}
    param(bool b) : value(b ? "true" : "false") {}
    static param bytes(std::string_view raw) {
        param p;
        p.value = std::string(raw);
        p.binary = true;
        return p;
    }
    static param null() { return {}; }
};

// The rows a statement returned (text format; bytea decoded by bytes()).
class rows {
public:
    explicit rows(result_ptr r) : r_(std::move(r)) {}
    int size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    bool is_null(int row, int col) const noexcept;
    std::string_view text(int row, int col) const noexcept;
    std::optional<std::string> opt_text(int row, int col) const;
    std::string bytes(int row, int col) const;  // a bytea column
    std::int64_t int64(int row, int col) const; // 0 for NULL or not a number
    bool boolean(int row, int col) const noexcept;
    // Rows an INSERT/UPDATE/DELETE touched.
    std::uint64_t affected() const noexcept;

private:
    result_ptr r_;
};

struct notification {
    std::string channel;
    std::string payload;
    int backend_pid = 0;
};

class connection {
public:
    // Connects with a libpq connection string (a password comes from PGPASSFILE or the string's
    // passfile=, never from our config). errc::storage_unavailable when the server is unreachable.
    static result<connection> open(const std::string& conninfo);

    connection() = default;
    connection(connection&&) noexcept = default;
    connection& operator=(connection&&) noexcept = default;

    // One statement with parameters ($1, $2, ...). SQLSTATE 23505 (unique violation) is
    // errc::already_exists, 40001/40P01 (serialisation, deadlock) errc::conflict, a lost
    // connection errc::storage_unavailable, anything else errc::storage_failure.
    result<rows> exec(std::string_view sql, std::initializer_list<param> params = {});
    result<rows> exec(std::string_view sql, const std::vector<param>& params);
    // Several statements without parameters (migrations).
    result<void> exec_script(std::string_view sql);

    bool healthy() const noexcept; // connected and not in a failed state
    // healthy() after reading what the server sent meanwhile (a terminated backend's goodbye).
    bool check() noexcept;
    // Reads what arrived on the socket and returns the notifications (LISTEN) received so far.
    result<std::vector<notification>> notifications();
    // The socket to poll(2) for notifications; -1 when not connected.
    int socket() const noexcept;
    // The backend's process id (pg_backend_pid()), which NOTIFY reports as the sender.
    int backend_pid() const noexcept;
    // SQLSTATE of the last failed statement ("" when none).
    const std::string& last_sqlstate() const noexcept { return sqlstate_; }

private:
    explicit connection(conn_ptr c) : c_(std::move(c)) {}
    result<rows> run(std::string_view sql, const param* params, std::size_t n);
    conn_ptr c_;
    std::string sqlstate_;
};

// BEGIN on begin(), ROLLBACK when destroyed without commit().
class transaction {
public:
    static result<transaction> begin(connection& c, std::string_view begin_sql = "BEGIN");
    transaction(transaction&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    transaction& operator=(transaction&&) = delete;
    ~transaction();
    result<void> commit();

private:
    explicit transaction(connection& c) : c_(&c) {}
    connection* c_;
};

struct pool_stats {
    std::size_t size = 0, idle = 0, in_use = 0;
    std::uint64_t acquired = 0, waited = 0, timeouts = 0, reconnects = 0, broken = 0;
};

// A fixed number of connections opened on demand; a broken one is dropped when returned and a
// new one opened next time.
class pool {
public:
    // `on_connect`: statements every new connection runs first (session settings).
    pool(std::string conninfo, std::size_t size, std::chrono::milliseconds wait = std::chrono::seconds(5),
         std::string on_connect = {});
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    class lease {
    public:
        lease(lease&& o) noexcept : p_(o.p_), c_(std::move(o.c_)) { o.p_ = nullptr; }
        lease& operator=(lease&&) = delete;
        ~lease();
        connection& operator*() noexcept { return *c_; }
        connection* operator->() noexcept { return c_.get(); }

    private:
        friend class pool;
        lease(pool* p, std::unique_ptr<connection> c) : p_(p), c_(std::move(c)) {}
        pool* p_;
        std::unique_ptr<connection> c_;
    };

    // A connection within the wait; errc::storage_unavailable when the database cannot be reached
    // or every connection stays busy for the whole wait.
    result<lease> acquire();
    pool_stats stats() const;
    const std::string& conninfo() const noexcept { return conninfo_; }

private:
    void give_back(std::unique_ptr<connection> c);
    const std::string conninfo_;
    const std::size_t size_;
    const std::chrono::milliseconds wait_;
    const std::string on_connect_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<connection>> idle_;
    std::size_t open_ = 0; // idle + leased + being opened
    pool_stats stats_;
};

} // namespace certmate::storage::pg
