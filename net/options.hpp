// What the HTTP server is told by app/: listeners, threads, limits, tokens, rate limits.
// Plain values; no Asio or Beast here.
#pragma once

#include "core/cert_record.hpp"
#include "core/rate_limit.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace certmate::net {

// A bearer token as the config holds it: never in clear, only its SHA-256.
struct token_credential {
    std::string name;
    api_role role = api_role::viewer;
    std::string sha256_hex;   // lower-case hex of SHA-256(token)
};

struct server_options {
    std::string http_listen = "127.0.0.1:8080";   // HOST:PORT, port 0 picks a free port
    unsigned threads = 0;                          // io threads; 0 = one per core
    unsigned pool_threads = 0;                     // crypto/disk workers; 0 = one per core
    unsigned max_connections = 1024;               // beyond: 503
    std::chrono::seconds shutdown_grace{10};
    std::size_t header_limit = 8 * 1024;           // 431 beyond
    std::size_t body_limit = 64 * 1024;            // 413 beyond
    std::chrono::milliseconds request_timeout{10000}; // whole request (headers and body)
    std::chrono::milliseconds idle_timeout{60000};    // keep-alive between requests
    bool metrics_public = true;
    bool api_on_http = true;                       // false: plain HTTP serves only the protocol endpoints
    std::chrono::seconds crl_check_interval{60};   // how often the CRL's nextUpdate is checked
    std::chrono::seconds ocsp_validity{24 * 3600}; // OCSP nextUpdate - thisUpdate
    std::chrono::seconds ocsp_refresh_before{3600}; // cached OCSP responses are re-signed this long before nextUpdate
    bool renewal_sweep = true;                     // the daily renewal sweep (DESIGN.md 9)
    std::string renewal_time = "03:00";            // local HH:MM of the sweep
    std::vector<token_credential> tokens;
    rate_limit_config rate_limits;
};

} // namespace certmate::net
