#include "net/server.hpp"

#include "core/clock.hpp"
#include "core/renewal_schedule.hpp"
#include "net/api.hpp"
#include "net/conn_limits.hpp"
#include "net/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <condition_variable>
#include <list>
#include <sstream>
#include <thread>
#include <variant>

namespace certmate::net {

using tcp = asio::ip::tcp;
namespace json = boost::json;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One accepted connection, plain or TLS: its stream, what a drain needs to know, who the peer is.
struct connection {
    explicit connection(tcp::socket s) : stream(std::in_place_index<0>, std::move(s)) {}
    connection(tcp::socket s, std::shared_ptr<asio::ssl::context> ctx)
        : tls_ctx(std::move(ctx)), stream(std::in_place_index<1>, std::move(s), *tls_ctx) {}
    std::shared_ptr<asio::ssl::context> tls_ctx; // the context of this connection's handshake
    std::variant<beast::tcp_stream, tls_stream> stream;
    // [connection executor] what the connection waits for, and since when: idle = no request in
    // flight (in the TLS handshake, or waiting for the first byte of the next request);
    // reading = a request is arriving; busy = being answered.
    enum class phase { busy, idle, reading } state = phase::busy;
    std::chrono::steady_clock::time_point since;
    void enter(phase p) {
        state = p;
        since = std::chrono::steady_clock::now();
    }
    bool idle() const { return state == phase::idle; }
    std::string address;  // connection_table key (address_key of the peer)
    bool counted = false; // admitted into the connection_table (released when it ends)
    peer_info peer;
    beast::tcp_stream& lowest() {
        return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream);
    }
};

unsigned or_cores(unsigned n) { return n ? n : std::max(1u, std::thread::hardware_concurrency()); }

// An answer made before a request could be routed (limits, malformed requests, overload).
response early_answer(http::status s, std::string code, std::string message) {
    auto res = error_json(s, code, message);
    finish_response(res, nullptr, new_request_id());
    res.keep_alive(false);
    res.prepare_payload();
    return res;
}

// Refused at accept (per-address cap, reserve): a 503 written without waiting for the request
// (the empty send buffer takes it whole), then closed; a TLS client just sees the close.
void refuse_now(tcp::socket& s, bool tls, std::string message) {
    boost::system::error_code ec;
    if (!tls) {
        auto res = early_answer(http::status::service_unavailable, "OVERLOADED", std::move(message));
        res.set(http::field::retry_after, "1");
        std::ostringstream os;
        os << res;
        s.non_blocking(true, ec);
        if (!ec) s.write_some(asio::buffer(os.str()), ec);
    }
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
}

// Where the header block in `have` ends (just past its blank line), searching from `from`; npos
// while incomplete.
std::size_t header_end(std::string_view have, std::size_t from) {
    const auto at = have.find("\r\n\r\n", from);
    return at == std::string_view::npos ? at : at + 4;
}

// RFC 9112 5.2: a field line continued on the next (obs-fold: CRLF then SP or HTAB) we refuse
// rather than unfold, as a proxy in front of us may have read it differently; 2.2: so is
// whitespace between the start line and the first field.
bool has_line_folding(std::string_view head) {
    for (auto at = head.find("\r\n"); at != std::string_view::npos && at + 2 < head.size();
         at = head.find("\r\n", at + 2))
        if (head[at + 2] == ' ' || head[at + 2] == '\t') return true;
    return false;
}

// RFC 9112 6.1: chunked is the one transfer coding we implement. Not the final coding: the body's
// length cannot be known, 400 (a front proxy may see the next request where we see a body); other
// codings before it: 501; Transfer-Encoding in an HTTP/1.0 request: faulty framing, 400. (Beast
// itself refuses it alongside Content-Length, and differing Content-Lengths, RFC 9112 6.3.)
std::optional<response> framing_refusal(const request& req) {
    bool present = false;
    std::vector<std::string_view> codings;
    for (const auto& f : req)
        if (f.name() == http::field::transfer_encoding) {
            present = true;
            for (auto t : http::token_list(f.value())) codings.emplace_back(t.data(), t.size());
        }
    if (!present) return std::nullopt;
    if (req.version() < 11)
        return early_answer(http::status::bad_request, "BAD_REQUEST", "Transfer-Encoding in an HTTP/1.0 request");
    if (codings.empty() || !beast::iequals(codings.back(), "chunked"))
        return early_answer(http::status::bad_request, "BAD_REQUEST", "Transfer-Encoding must end with chunked");
    if (codings.size() > 1)
        return early_answer(http::status::not_implemented, "NOT_IMPLEMENTED",
                            "no transfer coding but chunked is supported");
    return std::nullopt;
}

// Reads until `buffer` holds a whole header block (its end is returned) or more than `limit`
// bytes (npos: Beast's parser then answers 431), under the timer already set on the stream.
template <class Stream>
asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
read_header_block(Stream& s, beast::flat_buffer& buffer, std::size_t limit) {
    std::size_t searched = 0;
    for (;;) {
        const std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
        if (auto end = header_end(have, searched); end != std::string_view::npos)
            co_return std::pair{boost::system::error_code{}, end};
        if (have.size() > limit) co_return std::pair{boost::system::error_code{}, std::string_view::npos};
        searched = have.size() < 3 ? 0 : have.size() - 3;
        auto [ec, n] = co_await s.async_read_some(buffer.prepare(4096), tuple_awaitable);
        if (ec) co_return std::pair{ec, std::string_view::npos};
        buffer.commit(n);
    }
}

} // namespace

struct server::impl {
    impl(server_options o, std::unique_ptr<cert_service> s)
        : opts(std::move(o)), svc(std::move(s)), pool(or_cores(opts.pool_threads)),
          api(std::make_unique<api_state>(ioc, pool, *svc, opts)), accept_strand(asio::make_strand(ioc)),
          acceptor(accept_strand), crl_timer(api->core.strand()), snapshot_timer(api->core.strand()),
          renewal_timer(api->core.strand()), pressure_timer(asio::make_strand(ioc)), jobs_timer(asio::make_strand(ioc)),
          table({opts.max_connections, opts.max_connections_per_ip, opts.reserved_connections}) {
        add_api_routes(api->routes, opts);
        api->connection_count = [this] {
            std::lock_guard lock(conn_mu);
            return conns.size();
        };
    }

    server_options opts;
    std::unique_ptr<cert_service> svc;
    asio::io_context ioc;
    asio::thread_pool pool;
    std::unique_ptr<api_state> api;
    asio::strand<asio::io_context::executor_type> accept_strand;
    tcp::acceptor acceptor;
    std::optional<tcp::acceptor> tls_acceptor;
    std::atomic<std::shared_ptr<asio::ssl::context>> tls_ctx; // swapped whole on reload
    asio::steady_timer crl_timer;
    asio::steady_timer snapshot_timer;
    asio::system_timer renewal_timer;
    asio::steady_timer pressure_timer;
    asio::steady_timer jobs_timer; // a shared store's job refresh
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::vector<std::thread> threads;
    tcp::endpoint bound, tls_bound;
    std::atomic<bool> draining{false};
    bool running = false;
    // Where the store's watch thread hands other instances' changes: cleared at shutdown, so a
    // delivery racing the stop never reaches a destroyed api_state.
    struct change_gate {
        std::mutex mu;
        api_state* api = nullptr;
    };
    std::shared_ptr<change_gate> gate = std::make_shared<change_gate>();

    std::mutex conn_mu;
    std::condition_variable conn_cv;
    std::list<std::shared_ptr<connection>> conns;
    connection_table table;            // [conn_mu] admitted connections by address
    std::atomic<bool> pressure{false}; // table.under_pressure(), readable without the lock

    // The short timeouts while under pressure, the configured ones otherwise.
    std::chrono::milliseconds idle_timeout() const {
        return pressure ? std::min(opts.idle_timeout, opts.pressure_idle_timeout) : opts.idle_timeout;
    }
    std::chrono::milliseconds request_timeout() const {
        return pressure ? std::min(opts.request_timeout, opts.pressure_request_timeout) : opts.request_timeout;
    }

    result<void> listen();
    result<tcp::endpoint> listen_on(tcp::acceptor& a, const std::string& address, const char* key);
    asio::awaitable<void> accept_loop(tcp::acceptor& a, bool tls);
    asio::awaitable<void> session(std::shared_ptr<connection> c);
    asio::awaitable<bool> handshake(connection& c, tls_stream& s, std::chrono::milliseconds timeout);
    template <class Stream>
    asio::awaitable<void> serve(connection& c, Stream& s);
    std::optional<response> failure_answer(const boost::system::error_code& ec, std::size_t body_limit) const;
    asio::awaitable<void> reject(std::shared_ptr<connection> c);
    template <class Stream>
    asio::awaitable<void> answer_overloaded(connection& c, Stream& s);
    template <class Stream>
    asio::awaitable<void> linger_close(connection& c, Stream& s);
    template <class Stream>
    asio::awaitable<void> close(connection& c, Stream& s);
    asio::awaitable<void> crl_timer_loop();
    asio::awaitable<void> snapshot_loop();
    asio::awaitable<void> renewal_loop();
    enum class sweep_outcome { run, already_run, busy, failed, unrecorded };
    asio::awaitable<void> scheduled_sweep(time_point slot, const principal& who);
    asio::awaitable<sweep_outcome> led_sweep(time_point slot, const principal& who);
    asio::awaitable<void> led_crl_refresh();
    asio::awaitable<void> pressure_loop();
    asio::awaitable<void> jobs_loop();
    void forget(const std::shared_ptr<connection>& c) {
        std::lock_guard lock(conn_mu);
        if (c->counted) table.release(c->address);
        pressure = table.under_pressure();
        conns.remove(c);
        conn_cv.notify_all();
    }
    void for_each_connection(const std::function<void(connection&)>& f) {
        std::lock_guard lock(conn_mu);
        for (auto& c : conns) asio::post(c->lowest().get_executor(), [c, f] { f(*c); });
    }
    bool wait_connections(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(conn_mu);
        return conn_cv.wait_until(lock, deadline, [&] { return conns.empty(); });
    }
};

result<tcp::endpoint> server::impl::listen_on(tcp::acceptor& a, const std::string& address, const char* key) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return make_error(errc::invalid_argument, "listen address is not HOST:PORT", key);
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port = address.substr(colon + 1);
    boost::system::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
        return make_error(errc::invalid_argument, "cannot resolve " + address + ": " + ec.message(), key);
    const tcp::endpoint ep = results.begin()->endpoint();
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error(errc::invalid_argument, "cannot listen on " + address + ": " + ec.message(), key);
    return a.local_endpoint(ec);
}

// The plain listener, and the TLS one when server.https_listen is set (its context built first,
// so a bad certificate or key stops the start).
result<void> server::impl::listen() {
    auto b = listen_on(acceptor, opts.http_listen, "server.http_listen");
    if (!b) return b.error();
    bound = *b;
    if (opts.tls.https_listen.empty()) return {};
    auto ctx = make_tls_context(opts.tls, svc->ca().cert());
    if (!ctx) return ctx.error();
    tls_ctx.store(std::move(*ctx));
    tls_acceptor.emplace(accept_strand);
    auto t = listen_on(*tls_acceptor, opts.tls.https_listen, "server.https_listen");
    if (!t) return t.error();
    tls_bound = *t;
    return {};
}

asio::awaitable<void> server::impl::accept_loop(tcp::acceptor& a, bool tls) {
    asio::steady_timer backoff(accept_strand);
    for (;;) {
        auto [ec, sock] = co_await a.async_accept(asio::make_strand(ioc), tuple_awaitable);
        if (draining || ec == asio::error::operation_aborted) co_return;
        if (ec) {
            spdlog::warn("accept failed: {}", ec.message());
            backoff.expires_after(std::chrono::milliseconds(50)); // e.g. out of file descriptors
            co_await backoff.async_wait(tuple_awaitable);
            continue;
        }
        auto c = tls ? std::make_shared<connection>(tcp::socket(std::move(sock)), tls_ctx.load())
                     : std::make_shared<connection>(tcp::socket(std::move(sock)));
        boost::system::error_code ep_ec;
        c->peer.ip = c->lowest().socket().remote_endpoint(ep_ec).address().to_string();
        c->peer.tls = tls;
        c->address = address_key(c->peer.ip);
        admission verdict;
        {
            std::lock_guard lock(conn_mu);
            verdict = table.admit(c->address);
            c->counted = verdict == admission::admitted;
            pressure = table.under_pressure();
            if (c->counted || verdict == admission::full) conns.push_back(c);
        }
        if (verdict == admission::per_address || verdict == admission::reserve) {
            // Closed at once: holding these open would hand the slots to the client we refuse.
            const bool per_address = verdict == admission::per_address;
            api->stats.connection_refused(per_address ? "per_address" : "reserve");
            spdlog::debug("refused a connection from {}: {}", c->peer.ip,
                          per_address ? "server.max_connections_per_ip reached" : "only reserved connections left");
            refuse_now(c->lowest().socket(), tls,
                       per_address ? "too many connections from your address; try again later"
                                   : "too many connections; try again later");
            continue;
        }
        const bool over = verdict == admission::full;
        if (over) api->stats.connection_refused("limit");
        asio::co_spawn(c->lowest().get_executor(), over ? reject(c) : session(c), [this, c](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("connection from {} failed: {}", c->peer.ip, ex.what());
                }
            }
            forget(c);
        });
    }
}

// Reads what the client still sends after an early answer, so it sees the answer rather than a reset.
template <class Stream>
asio::awaitable<void> server::impl::linger_close(connection&, Stream& s) {
    auto& sock = beast::get_lowest_layer(s);
    boost::system::error_code ec;
    if constexpr (!std::is_same_v<Stream, tls_stream>) sock.socket().shutdown(tcp::socket::shutdown_send, ec);
    sock.expires_after(std::chrono::seconds(1));
    std::array<char, 8192> sink;
    std::size_t total = 0;
    while (total < 4 * 1024 * 1024) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(sink), tuple_awaitable);
        if (rec) break;
        total += n;
    }
    sock.close();
}

// The end of a connection: a TLS one says close_notify first (RFC 8446 6.1: "Each party MUST send
// a "close_notify" alert before closing its write side of the connection, unless it has already
// sent some error alert."), waiting a moment at most for the peer's.
template <class Stream>
asio::awaitable<void> server::impl::close(connection&, Stream& s) {
    auto& sock = beast::get_lowest_layer(s);
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        sock.expires_after(std::chrono::milliseconds(500));
        co_await s.async_shutdown(tuple_awaitable);
    }
    boost::system::error_code ec;
    sock.socket().shutdown(tcp::socket::shutdown_send, ec);
    sock.close();
}

// The TLS handshake within `timeout`; the client certificate it verified is kept for the requests.
// A failed handshake (scanners, old clients, a certificate we refuse) is the client's problem:
// logged at debug.
asio::awaitable<bool> server::impl::handshake(connection& c, tls_stream& s, std::chrono::milliseconds timeout) {
    c.enter(connection::phase::idle); // a drain (and pressure) closes a connection still in its handshake
    if (draining) co_return false;
    beast::get_lowest_layer(s).expires_after(pressure ? std::min(timeout, opts.pressure_idle_timeout) : timeout);
    auto [ec] = co_await s.async_handshake(asio::ssl::stream_base::server, tuple_awaitable);
    c.enter(connection::phase::busy);
    if (ec) {
        spdlog::debug("TLS handshake with {} failed: {}", c.peer.ip, ec.message());
        beast::get_lowest_layer(s).close();
        co_return false;
    }
    c.peer.cert = verified_peer_certificate(s.native_handle());
    co_return true;
}

asio::awaitable<void> server::impl::session(std::shared_ptr<connection> c) {
    if (auto* s = std::get_if<tls_stream>(&c->stream)) {
        if (co_await handshake(*c, *s, opts.tls.handshake_timeout)) co_await serve(*c, *s);
    } else {
        co_await serve(*c, std::get<beast::tcp_stream>(c->stream));
    }
}

template <class Stream>
asio::awaitable<void> server::impl::serve(connection& c, Stream& s) {
    constexpr bool plain = !std::is_same_v<Stream, tls_stream>;
    auto& sock = beast::get_lowest_layer(s);
    if constexpr (plain) {
        // The fast path's write is tried at once, synchronously: it must never wait on the socket.
        boost::system::error_code nb;
        sock.socket().non_blocking(true, nb);
    }
    beast::flat_buffer buffer;
    std::string fast_head; // the fast path's header block, reused by every answer on the connection
    std::shared_ptr<const std::string> fast_body;
    for (;;) {
        // Idle keep-alive: wait for the first byte of the next request (a drain cancels this wait).
        if (buffer.size() == 0) {
            c.enter(connection::phase::idle);
            if (draining) break;
            sock.expires_after(idle_timeout());
            auto [ec, n] = co_await s.async_read_some(buffer.prepare(4096), tuple_awaitable);
            if (ec) break; // closed by the client, idle timeout, pressure or drain: not an error
            buffer.commit(n);
        }

        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
        // Beast checks Content-Length against the limit as the header completes: the larger limit
        // first, the route's own once the target is known (docs/api.md "Batch jobs").
        const std::size_t largest = std::max(opts.body_limit, opts.batch_body_limit);
        parser.body_limit(largest);
        c.enter(connection::phase::reading);
        // The whole request, headers and body, within request_timeout of its first read; what is
        // buffered already is parsed here, with no read and no hop through the scheduler (Beast's
        // read posts its completion even when it needed no read).
        bool timed = false;
        auto before_read = [&] {
            if (!timed) sock.expires_after(request_timeout());
            timed = true;
        };
        // Parses what the buffer holds: the header (the parser is not eager: it stops after the
        // header), or as much of the body as is there; the caller reads the rest if need be.
        auto parse_buffered = [&](boost::system::error_code& pec, bool header) {
            while (!parser.is_done() && buffer.size() > 0) {
                const auto used = parser.put(buffer.data(), pec);
                buffer.consume(used);
                if (pec == http::error::need_more) pec = {};
                if (pec || used == 0 || header) break;
            }
        };
        std::optional<response> early; // refused before the body is read
        boost::system::error_code ec;
        std::size_t head = header_end({static_cast<const char*>(buffer.data().data()), buffer.size()}, 0);
        if (head == std::string_view::npos) {
            before_read();
            std::tie(ec, head) = co_await read_header_block(s, buffer, opts.header_limit);
        }
        if (!ec && head != std::string_view::npos &&
            has_line_folding({static_cast<const char*>(buffer.data().data()), head}))
            early = early_answer(http::status::bad_request, "BAD_REQUEST",
                                 "obsolete line folding in the request header (RFC 9112 5.2)");
        std::size_t n = 0;
        if (!ec && !early) {
            if (head != std::string_view::npos) parse_buffered(ec, true);
            if (!ec && !parser.is_header_done()) {
                before_read();
                std::tie(ec, n) = co_await http::async_read_header(s, buffer, parser, tuple_awaitable);
            }
        }
        if (!ec && !early) early = framing_refusal(parser.get());
        std::size_t body_limit = largest;
        if (!ec && !early) {
            // Authenticated from the header alone, before a byte of the body is read.
            body_limit = body_limit_for(*api, parser.get(), c.peer);
            if (body_limit < largest) {
                if (parser.content_length() && *parser.content_length() > body_limit)
                    ec = http::error::body_limit;
                else
                    parser.body_limit(body_limit);
            }
            if (!ec) parse_buffered(ec, false);
            if (!ec && !parser.is_done()) {
                before_read();
                std::tie(ec, n) = co_await http::async_read(s, buffer, parser, tuple_awaitable);
            }
        }
        (void)n;
        c.enter(connection::phase::busy);
        if (ec == http::error::end_of_stream || ec == asio::error::eof) break;
        if (ec || early) {
            // A timeout has closed the socket already; other failures get an answer if one fits.
            if (!early) early = failure_answer(ec, body_limit);
            if (early) {
                sock.expires_after(std::chrono::seconds(5));
                co_await http::async_write(s, *early, tuple_awaitable);
                co_await linger_close(c, s);
            }
            co_return;
        }

        request req = parser.release();
        if (!draining && fast_answer(*api, req, c.peer, fast_head, fast_body)) {
            // One write of the header block and the shared DER, kept alive (fast_answer's terms).
            const std::array<asio::const_buffer, 2> out{asio::buffer(fast_head), asio::buffer(*fast_body)};
            const std::size_t total = fast_head.size() + fast_body->size();
            std::size_t sent = 0;
            boost::system::error_code wec;
            if constexpr (plain) {
                // What the send buffer takes now, without an asynchronous operation (nor its timer).
                sent = sock.socket().write_some(out, wec);
                if (wec == asio::error::would_block || wec == asio::error::try_again) wec = {};
            }
            if (!wec && sent < total) {
                beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(out);
                rest.consume(sent);
                sock.expires_after(opts.request_timeout);
                std::tie(wec, std::ignore) = co_await asio::async_write(s, rest, tuple_awaitable);
            }
            fast_body.reset();
            if (wec) break;
            continue;
        }
        response res = co_await dispatch(*api, req, c.peer);
        res.keep_alive(req.keep_alive() && !draining);
        res.prepare_payload();
        // RFC 9110 9.3.2: a HEAD answer has GET's headers (Content-Length kept) and no content.
        if (req.method() == http::verb::head) res.body().clear();
        sock.expires_after(opts.request_timeout);
        auto [wec, wn] = co_await http::async_write(s, res, tuple_awaitable);
        (void)wn;
        if (wec || !res.keep_alive()) break;
    }
    co_await close(c, s);
}

// The answer to a request that failed to arrive whole: 431, 413, 400 for what Beast refused; none
// for a timeout or a reset (nobody is listening).
std::optional<response> server::impl::failure_answer(const boost::system::error_code& ec,
                                                     std::size_t body_limit) const {
    if (ec == http::error::header_limit)
        return early_answer(http::status::request_header_fields_too_large, "HEADERS_TOO_LARGE",
                            "request headers exceed " + std::to_string(opts.header_limit) + " bytes");
    if (ec == http::error::body_limit)
        return early_answer(http::status::payload_too_large, "BODY_TOO_LARGE",
                            "request body exceeds " + std::to_string(body_limit) + " bytes");
    if (ec.category() == http::make_error_code(http::error::header_limit).category())
        return early_answer(http::status::bad_request, "BAD_REQUEST", "malformed HTTP request");
    return std::nullopt;
}

// Over server.max_connections: read the request (so the client sees the answer), answer 503.
asio::awaitable<void> server::impl::reject(std::shared_ptr<connection> c) {
    if (auto* s = std::get_if<tls_stream>(&c->stream)) {
        if (co_await handshake(*c, *s, std::chrono::seconds(2))) co_await answer_overloaded(*c, *s);
    } else {
        co_await answer_overloaded(*c, std::get<beast::tcp_stream>(c->stream));
    }
}

template <class Stream>
asio::awaitable<void> server::impl::answer_overloaded(connection& c, Stream& s) {
    auto& sock = beast::get_lowest_layer(s);
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.header_limit));
    parser.body_limit(opts.body_limit);
    sock.expires_after(std::chrono::seconds(2));
    co_await http::async_read(s, buffer, parser, tuple_awaitable);
    auto res = early_answer(http::status::service_unavailable, "OVERLOADED", "too many connections; try again later");
    res.set(http::field::retry_after, "1");
    sock.expires_after(std::chrono::seconds(2));
    co_await http::async_write(s, res, tuple_awaitable);
    co_await linger_close(c, s);
}

// Under pressure, connections idle or reading one request for longer than the short timeouts are
// closed: their timers were armed with the long ones before the pressure began (a pending Beast
// operation keeps the expiry it started with).
asio::awaitable<void> server::impl::pressure_loop() {
    using namespace std::chrono_literals;
    const auto tick = std::clamp<std::chrono::milliseconds>(
        std::min(opts.pressure_idle_timeout, opts.pressure_request_timeout) / 4, 50ms, 1000ms);
    for (;;) {
        pressure_timer.expires_after(tick);
        auto [ec] = co_await pressure_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
        if (!pressure) continue;
        for_each_connection([this](connection& c) {
            const auto held = std::chrono::steady_clock::now() - c.since;
            if ((c.state == connection::phase::idle && held >= opts.pressure_idle_timeout) ||
                (c.state == connection::phase::reading && held >= opts.pressure_request_timeout))
                c.lowest().cancel();
        });
    }
}

asio::awaitable<void> server::impl::crl_timer_loop() {
    for (;;) {
        crl_timer.expires_after(opts.crl_check_interval);
        auto [ec] = co_await crl_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
        // A refresh with no change pending is led by one instance at a time; a change pending
        // is built here (its waiters are here), whoever leads.
        const auto margin = std::chrono::duration_cast<std::chrono::seconds>(svc->config().crl_validity) / 4;
        if (!svc->crl_rebuild_needed() && svc->crl_due(margin))
            co_await led_crl_refresh();
        else
            api->crl.kick(true); // builds only when nextUpdate is near or a change is pending
        api->ocsp.rotate_if_due();
    }
}

// The start-up snapshot, written on the pool once certificate writes paused for snapshot_delay
// (the service encodes the records on the strand and says when one is due).
asio::awaitable<void> server::impl::snapshot_loop() {
    for (;;) {
        snapshot_timer.expires_after(opts.snapshot_delay);
        auto [ec] = co_await snapshot_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
        auto staged = svc->stage_snapshot(opts.snapshot_delay);
        if (!staged) continue;
        auto after = [](result<bool>&) {};
        co_await api->core.finish_staged<bool>(*staged, after);
    }
}

// A shared store (docs/postgresql.md "Several instances"): every 2 s the jobs other instances
// keep are read, and those a dead instance left live are taken over (job_runner::refresh).
asio::awaitable<void> server::impl::jobs_loop() {
    for (;;) {
        jobs_timer.expires_after(std::chrono::seconds(2));
        auto [ec] = co_await jobs_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
        try {
            co_await api->jobs.refresh();
        } catch (const std::exception& e) {
            spdlog::error("job refresh: {}", e.what());
        }
    }
}

// The daily sweep at renewal_time (local); a run missed while the server was down runs at start.
asio::awaitable<void> server::impl::renewal_loop() {
    const auto at = parse_daily_time(opts.renewal_time).value_or(daily_time{});
    const principal sweeper = system_principal("renewal-sweep");
    auto load = [this] { return svc->last_sweep(); };
    const auto last = co_await api->core.in_pool(load);
    if (const auto now = svc->now(); run_was_missed(last ? std::optional(last->started_at) : std::nullopt, now, at))
        co_await scheduled_sweep(previous_daily_run(now, at), sweeper);
    for (;;) {
        const auto next = next_daily_run(svc->now(), at);
        api->stats.next_renewal(std::chrono::duration<double>(next.time_since_epoch()).count());
        renewal_timer.expires_at(next);
        auto [ec] = co_await renewal_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
        co_await scheduled_sweep(next, sweeper);
    }
}

// The sweep due at `slot`, once across the instances of a shared store (docs/high-availability.md
// "Renewal sweep"): while another instance holds the sweep, or the store cannot be asked, ask
// again every renewal_retry, so that a sweep cut short by a dead instance is finished by one of
// the others. A run whose record was not kept is run again after renewal_retry, then twice as
// long each time up to an hour (each run tries every due renewal again: a store failing for
// hours must not have them all retried every minute). Given up when the next day's run is near.
asio::awaitable<void> server::impl::scheduled_sweep(time_point slot, const principal& who) {
    const auto give_up = slot + std::chrono::hours(23);
    std::chrono::seconds unrecorded_wait = opts.renewal_retry;
    for (;;) {
        const auto outcome = co_await led_sweep(slot, who);
        if (outcome == sweep_outcome::run || outcome == sweep_outcome::already_run) co_return;
        std::chrono::seconds wait = opts.renewal_retry;
        if (outcome == sweep_outcome::unrecorded) {
            wait = unrecorded_wait;
            unrecorded_wait = std::min<std::chrono::seconds>(unrecorded_wait * 2, std::chrono::hours(1));
        }
        if (svc->now() + wait > give_up) {
            spdlog::warn("renewal sweep: gave up on the run due at {}", format_time(slot));
            co_return;
        }
        renewal_timer.expires_after(wait);
        auto [ec] = co_await renewal_timer.async_wait(tuple_awaitable);
        if (ec || draining) co_return;
    }
}

// The CRL refresh before nextUpdate, holding the store's "crl-refresh" lease until the new CRL
// is out (docs/high-availability.md): the others serve it once it reaches them.
asio::awaitable<void> server::impl::led_crl_refresh() {
    auto lead = [this] { return svc->try_lead("crl-refresh"); };
    auto lease = co_await api->core.in_pool(lead);
    if (!lease) {
        spdlog::error("CRL refresh skipped: cannot ask the store who leads it: {}", lease.error().message);
        co_return;
    }
    if (!*lease) {
        spdlog::info("CRL refresh skipped: another instance leads the CRL refresh");
        co_return;
    }
    // Another instance's refresh may have been applied here while the lease was asked for.
    const auto margin = std::chrono::duration_cast<std::chrono::seconds>(svc->config().crl_validity) / 4;
    if (svc->crl_due(margin) || svc->crl_rebuild_needed()) {
        const auto gen = api->crl.note_refresh();
        api->crl.kick();
        co_await api->crl.wait_published(gen, std::chrono::seconds(30));
    }
    auto release = [&lease] { lease->reset(); };
    co_await api->core.in_pool(release);
}

// One instance sweeps at a time (docs/high-availability.md): the sweep runs holding the store's
// "sweep" lease (taken and released on the pool: a shared store's lock is a database call). The
// holder runs it unless the store records a sweep started since `slot` (another instance's, or
// a manual one); a store only this process writes always grants the lease.
asio::awaitable<server::impl::sweep_outcome> server::impl::led_sweep(time_point slot, const principal& who) {
    auto lead = [this] { return svc->try_lead("sweep"); };
    auto lease = co_await api->core.in_pool(lead);
    if (!lease) {
        spdlog::error("renewal sweep not run: cannot ask the store who leads it: {}; asking again in {} s",
                      lease.error().message, opts.renewal_retry.count());
        co_return sweep_outcome::failed;
    }
    if (!*lease) {
        spdlog::info("renewal sweep: another instance leads the sweep; asking again in {} s",
                     opts.renewal_retry.count());
        co_return sweep_outcome::busy;
    }
    auto release = [&lease] { lease->reset(); };
    // Each instance stamps a sweep with its own clock at or after its own `slot` (the same local
    // time: instances share a time zone), so clocks a little apart still see one run.
    auto load = [this] { return svc->last_sweep(); };
    if (const auto last = co_await api->core.in_pool(load); last && last->started_at >= slot) {
        spdlog::info("renewal sweep due at {}: already run, at {}", format_time(slot), format_time(last->started_at));
        co_await api->core.in_pool(release);
        co_return sweep_outcome::already_run;
    }
    const auto sum = co_await run_renewal_sweep(*api, who);
    // A run whose record the store did not keep (cert_service::finish_renewal_sweep logs why) is
    // a run no instance can tell happened: asked again, as when the store cannot be asked. The
    // next run renews only what is still due. (Stored times are whole seconds.)
    const auto recorded = co_await api->core.in_pool(load);
    co_await api->core.in_pool(release);
    if (!recorded || recorded->started_at < std::chrono::floor<std::chrono::seconds>(sum.started_at)) {
        spdlog::error("renewal sweep due at {}: its record was not kept; running it again", format_time(slot));
        co_return sweep_outcome::unrecorded;
    }
    co_return sweep_outcome::run;
}

server::server(server_options opts, std::unique_ptr<cert_service> svc)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(svc))) {}

server::~server() { shutdown(); }

result<void> server::start() {
    auto& m = *impl_;
    if (m.running) return {};
    if (auto r = m.api->ocsp.load(); !r) return r;
    if (auto r = m.listen(); !r) return r;
    m.running = true;
    // Other instances' changes on a shared store: handed to the strand, never applied on the
    // store's thread (a store only this process writes delivers none).
    m.gate->api = m.api.get();
    m.svc->watch_changes([gate = m.gate](std::vector<store_change> changes) {
        std::lock_guard lock(gate->mu);
        if (gate->api) gate->api->crl.apply_changes(std::move(changes));
    });
    m.work.emplace(m.ioc.get_executor());
    auto log_failure = [](const char* what) {
        return [what](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("{} failed: {}", what, ex.what());
            }
        };
    };
    // Kept batch jobs are loaded (and those a stop interrupted marked so) before the first
    // request is accepted; connections wait in the listen backlog meanwhile.
    // (A captureless lambda: a coroutine's parameters live in its frame, a closure's captures would not.)
    auto serve_after_recovery = [](auto& m, auto log_failure) -> asio::awaitable<void> {
        // A kept job that cannot be recovered must not keep the server from serving.
        try {
            co_await m.api->jobs.recover();
        } catch (const std::exception& e) {
            spdlog::error("job recovery stopped early: {}; serving anyway", e.what());
        }
        if (m.svc->shared_store())
            asio::co_spawn(m.jobs_timer.get_executor(), m.jobs_loop(), log_failure("job refresh"));
        asio::co_spawn(m.accept_strand, m.accept_loop(m.acceptor, false), log_failure("listener"));
        if (m.tls_acceptor)
            asio::co_spawn(m.accept_strand, m.accept_loop(*m.tls_acceptor, true), log_failure("TLS listener"));
    };
    asio::co_spawn(m.accept_strand, serve_after_recovery(m, log_failure), log_failure("job recovery"));
    asio::co_spawn(m.api->core.strand(), m.crl_timer_loop(), log_failure("CRL timer"));
    asio::co_spawn(m.pressure_timer.get_executor(), m.pressure_loop(), log_failure("pressure sweep"));
    if (m.opts.snapshot_delay.count() > 0)
        asio::co_spawn(m.api->core.strand(), m.snapshot_loop(), log_failure("snapshot timer"));
    if (m.opts.renewal_sweep) asio::co_spawn(m.api->core.strand(), m.renewal_loop(), log_failure("renewal sweep"));
    // No CRL served after load() (none kept, or one missing a revocation acknowledged before its
    // build: cert_service::load): CRL requests wait for this first build rather than find none.
    if (!m.svc->current_crl() && m.api->crl.acks_before_publish()) m.api->crl.note_change();
    m.api->crl.kick(); // the first CRL (or a fresh one) before anyone asks
    const unsigned n = or_cores(m.opts.threads);
    for (unsigned i = 0; i < n; ++i) m.threads.emplace_back([&m] { m.ioc.run(); });
    // A first start has no CRL yet: give its build a moment so /health starts out "ok".
    const auto crl_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!m.svc->current_crl() && std::chrono::steady_clock::now() < crl_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    spdlog::info("{} io threads, {} pool threads", n, or_cores(m.opts.pool_threads));
    return {};
}

std::string server::host() const { return impl_->bound.address().to_string(); }
unsigned short server::port() const { return impl_->bound.port(); }
std::string server::url() const {
    const auto a = impl_->bound.address();
    return "http://" + (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(port());
}
unsigned short server::tls_port() const { return impl_->tls_acceptor ? impl_->tls_bound.port() : 0; }
std::string server::tls_url() const {
    if (!impl_->tls_acceptor) return {};
    const auto a = impl_->tls_bound.address();
    return "https://" + (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(tls_port());
}

result<void> server::reload_tls(const tls_options& tls) {
    auto& m = *impl_;
    if (!m.tls_acceptor) return {};
    auto ctx = make_tls_context(tls, m.svc->ca().cert());
    if (!ctx) return ctx.error();
    m.tls_ctx.store(std::move(*ctx)); // new handshakes only; open connections keep theirs
    return {};
}

void server::reload(std::vector<token_credential> tokens, const rate_limit_config& limits) {
    impl_->api->set_tokens(std::move(tokens));
    impl_->api->limiter.set_config(limits);
}

bool server::shutdown() {
    auto& m = *impl_;
    if (!m.running) return true;
    m.running = false;
    m.draining = true;
    {
        std::lock_guard lock(m.gate->mu);
        m.gate->api = nullptr;
    }
    const auto deadline = std::chrono::steady_clock::now() + m.opts.shutdown_grace;
    asio::post(m.accept_strand, [&m] {
        boost::system::error_code ec;
        m.acceptor.close(ec);
        if (m.tls_acceptor) m.tls_acceptor->close(ec);
    });
    asio::post(m.api->core.strand(), [&m] {
        m.crl_timer.cancel();
        m.snapshot_timer.cancel();
        m.renewal_timer.cancel();
    });
    asio::post(m.pressure_timer.get_executor(), [&m] { m.pressure_timer.cancel(); });
    asio::post(m.jobs_timer.get_executor(), [&m] { m.jobs_timer.cancel(); });
    // Idle keep-alive connections close now; busy ones finish their request, then close.
    m.for_each_connection([](connection& c) {
        if (c.idle()) c.lowest().cancel();
    });
    const bool clean = m.wait_connections(deadline);
    if (!clean) {
        spdlog::warn("shutdown grace over: closing the remaining connections");
        m.for_each_connection([](connection& c) {
            boost::system::error_code ec;
            c.lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
            c.lowest().close();
        });
        m.wait_connections(std::chrono::steady_clock::now() + std::chrono::seconds(2));
    }
    m.work.reset();
    m.ioc.stop();
    for (auto& t : m.threads) t.join();
    m.threads.clear();
    m.pool.join();
    spdlog::info("server stopped ({})", clean ? "drained" : "grace exceeded");
    return clean;
}

} // namespace certmate::net
