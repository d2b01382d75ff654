// The HTTP/1.1 server (DESIGN.md 2, 6, 7): io threads, the service on one strand, heavy work on a
// thread pool, one coroutine per connection, CRL upkeep. No Asio or Beast in this header.
// Thread-safety: start() once; reload() from any thread; shutdown() from one thread, once.
#pragma once

#include "core/service.hpp"
#include "net/options.hpp"

#include <memory>
#include <string>

namespace certmate::net {

class server {
public:
    server(server_options opts, std::unique_ptr<cert_service> svc);
    ~server();   // shuts down (drain) if still running
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the listener and starts the io and pool threads; errc::invalid_argument when the
    // address cannot be bound.
    result<void> start();
    // The bound address (the chosen port when 0 was asked for).
    std::string host() const;
    unsigned short port() const;
    std::string url() const;   // http://HOST:PORT

    // New tokens and rate limits, without dropping connections.
    void reload(std::vector<token_credential> tokens, const rate_limit_config& limits);

    // Stops accepting (new connections are refused), lets in-flight requests finish for up to the
    // grace period, closes idle and remaining connections, joins the threads. True when every
    // connection finished within the grace.
    bool shutdown();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace certmate::net
