// What the HTTP server is told by app/: listeners, threads, limits, tokens, rate limits.
// Plain values; no Asio or Beast here.
#pragma once

#include "core/cert_record.hpp"
#include "core/issue.hpp"
#include "core/rate_limit.hpp"

#include <chrono>
#include <memory>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace certmate::net {

// A bearer token as the config holds it: never in clear, only its SHA-256.
struct token_credential {
    std::string name;
    api_role role = api_role::viewer;
    std::string sha256_hex; // lower-case hex of SHA-256(token)
};

// tls.client_auth: whether the TLS listener asks for a client certificate (docs/api.md "Listeners").
enum class client_auth_mode {
    none,     // no certificate requested; bearer tokens only
    optional, // requested; a presented one must verify against our CA, none is fine
    require,  // the handshake fails without a certificate that verifies against our CA
};

// The TLS listener: where, which server certificate, and client certificates.
struct tls_options {
    std::string https_listen;                  // HOST:PORT; empty: no TLS listener
    std::filesystem::path cert_file;           // PEM, leaf first, then its chain
    std::filesystem::path key_file;            // PEM private key, possibly encrypted
    std::filesystem::path key_passphrase_file; // first line = passphrase of key_file
    client_auth_mode client_auth = client_auth_mode::none;
    std::chrono::milliseconds handshake_timeout{10000};
};

// Batch jobs (net/jobs.hpp; certmate.conf.example [jobs]).
struct job_options {
    unsigned max_running = 2;        // jobs running at once
    unsigned max_queued = 16;        // jobs waiting beyond those; more: 503
    unsigned parallel_rows = 0;      // rows in flight per job; 0 = half the pool, at least 2
    std::size_t max_rows = 30000;    // rows per job
    std::size_t keep_finished = 200; // finished jobs kept (the oldest are forgotten)
};

struct server_options {
    std::string http_listen{default_http_listen}; // HOST:PORT, port 0 picks a free port
    tls_options tls;
    unsigned threads = 0;                 // io threads; 0 = one per core
    unsigned pool_threads = 0;            // crypto/disk workers; 0 = one per core
    unsigned max_connections = 1024;      // beyond: 503
    unsigned max_connections_per_ip = 64; // per client address (IPv6: /64); 0 = unlimited
    unsigned reserved_connections = 32;   // last slots of max_connections: not for addresses holding 2+
    std::chrono::seconds shutdown_grace{10};
    // The start-up snapshot is written once certificate writes paused this long (checked at this
    // interval) and at a clean stop; 0 = never written (docs/architecture.md "Start-up snapshot").
    std::chrono::seconds snapshot_delay{10};
    std::size_t header_limit = 8 * 1024;              // 431 beyond
    std::size_t body_limit = 64 * 1024;               // 413 beyond
    std::size_t batch_body_limit = 32 * 1024 * 1024;  // 413 beyond, for /api/client-certs/batch*
    std::chrono::milliseconds request_timeout{10000}; // whole request (headers and body)
    std::chrono::milliseconds idle_timeout{60000};    // keep-alive between requests
    // Under pressure (more than 3/4 of max_connections open): keep-alive and TLS handshakes, and
    // the whole request, get these instead.
    std::chrono::milliseconds pressure_idle_timeout{5000};
    std::chrono::milliseconds pressure_request_timeout{5000};
    bool metrics_public = true;
    bool api_on_http = true;                        // false: plain HTTP serves only the protocol endpoints
    std::chrono::seconds crl_check_interval{60};    // how often the CRL's nextUpdate is checked
    std::chrono::seconds ocsp_validity{24 * 3600};  // OCSP nextUpdate - thisUpdate
    std::chrono::seconds ocsp_refresh_before{3600}; // cached OCSP responses are re-signed this long before nextUpdate
    bool renewal_sweep = true;                      // the daily renewal sweep (README.md, `renewal.time`)
    std::string renewal_time = "03:00";             // local HH:MM[:SS] of the sweep
    // While another instance holds the sweep lease, ask again after this long (docs/high-availability.md).
    std::chrono::seconds renewal_retry{60};
    std::vector<token_credential> tokens;
    rate_limit_config rate_limits;
    // rate_limit.shared: buckets every instance takes from (null: this instance's own only).
    std::shared_ptr<shared_rate_buckets> shared_buckets;
    job_options jobs;
};

} // namespace certmate::net
