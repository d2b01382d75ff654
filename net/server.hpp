// The HTTP/1.1 server (docs/architecture.md "Threads", docs/api.md): io threads, the service on one strand, heavy work on a
// thread pool, one coroutine per connection, CRL upkeep. No Asio or Beast in this header.
// Thread-safety: start() once; reload() and reload_tls() from any thread; shutdown() from one thread, once.
#pragma once

#include "core/service.hpp"
#include "net/options.hpp"

#include <memory>
#include <string>

namespace certmate::net {

class server {
public:
    server(server_options opts, std::unique_ptr<cert_service> svc);
    ~server(); // shuts down (drain) if still running
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the listener and starts the io and pool threads; errc::invalid_argument when the
    // address cannot be bound.
    result<void> start();
    // The bound address (the chosen port when 0 was asked for).
    std::string host() const;
    unsigned short port() const;
    std::string url() const; // http://HOST:PORT
    // The TLS listener's port and https://HOST:PORT (0 and "" without server.https_listen).
    unsigned short tls_port() const;
    std::string tls_url() const;

    // New tokens and rate limits, without dropping connections.
    void reload(std::vector<token_credential> tokens, const rate_limit_config& limits);
    // A new server certificate, key and client_auth for the TLS listener: new handshakes use them,
    // open connections keep theirs. On error (errc::invalid_argument naming the key) the old
    // context stays. The listen address is not changed.
    result<void> reload_tls(const tls_options& tls);

    // Stops accepting (new connections are refused), lets in-flight requests finish for up to the
    // grace period, closes idle and remaining connections, joins the threads. True when every
    // connection finished within the grace.
    bool shutdown();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace certmate::net
