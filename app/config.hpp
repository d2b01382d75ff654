// The configuration: an INI file parsed by Boost.Program_options, every key overridable on the
// command line as --section.key VALUE (README.md). certmate.conf.example documents each key.
#pragma once

#include "core/cert_record.hpp"
#include "core/service.hpp"
#include "net/options.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certmate::app {

struct token_entry {
    std::string name;
    api_role role = api_role::viewer;
    std::string sha256_hex; // of the token text
};

// Each default lives once, where it is used (net/options.hpp, core/); the config starts from it.
inline const net::server_options& server_defaults() {
    static const net::server_options d;
    return d;
}

struct rate_limits {
    // requests per minute per principal and class; 0 = unlimited (defaults: core/rate_limit.hpp)
    int default_per_min = rate_limit_config{}[rate_class::default_];
    int create_per_min = rate_limit_config{}[rate_class::create];
    int batch_per_min = rate_limit_config{}[rate_class::batch];
    int ocsp_per_min = rate_limit_config{}[rate_class::ocsp];
    int crl_per_min = rate_limit_config{}[rate_class::crl];
    // Buckets kept in the database, shared by every instance (backend postgresql only).
    bool shared = false;
};

struct config {
    std::filesystem::path source; // the file read, if any

    // [server]
    std::string http_listen = server_defaults().http_listen;
    std::string https_listen;                               // empty: no TLS listener
    unsigned threads = server_defaults().threads;           // 0: one per core
    unsigned pool_threads = server_defaults().pool_threads; // 0: one per core
    bool api_on_http = server_defaults().api_on_http;
    unsigned max_connections = server_defaults().max_connections;
    unsigned max_connections_per_ip = server_defaults().max_connections_per_ip; // 0: unlimited
    unsigned reserved_connections = server_defaults().reserved_connections;
    std::chrono::seconds shutdown_grace = server_defaults().shutdown_grace;
    std::size_t body_limit = server_defaults().body_limit;
    std::size_t batch_body_limit = server_defaults().batch_body_limit;
    bool metrics_public = server_defaults().metrics_public;
    net::job_options jobs; // [jobs]

    // [storage]
    std::filesystem::path data_dir = "./data";
    std::chrono::seconds snapshot_delay = server_defaults().snapshot_delay;
    // fs (the data dir holds everything) or postgresql (certificates, CRL, jobs and the audit chain
    // in the database; the data dir keeps the CA key and tokens): docs/postgresql.md.
    std::string backend = "fs";
    std::string postgresql;                        // libpq connection string, without a password
    unsigned postgresql_pool = 8;                  // connections per instance
    std::filesystem::path key_encryption_key_file; // 32 bytes (raw or 64 hex), 0600

    // [ca]
    key_type ca_key_type = ca_options{}.type;
    std::string ca_common_name = default_ca_subject().common_name;
    std::string ca_organization = default_ca_subject().organization;
    std::filesystem::path ca_passphrase_file; // or CERTMATE_CA_PASSPHRASE

    // [issuance], [crl], [renewal]
    service_config service;
    std::string renewal_time = server_defaults().renewal_time;
    std::chrono::seconds renewal_retry = server_defaults().renewal_retry;
    bool renewal_sweep_enabled = server_defaults().renewal_sweep;

    // [tls]
    std::filesystem::path tls_cert, tls_key;
    std::filesystem::path tls_key_passphrase_file;
    std::string tls_client_auth = "none";

    // [ocsp]
    std::chrono::hours ocsp_validity = std::chrono::duration_cast<std::chrono::hours>(server_defaults().ocsp_validity);
    std::chrono::minutes ocsp_refresh_before =
        std::chrono::duration_cast<std::chrono::minutes>(server_defaults().ocsp_refresh_before);

    // [rate_limit]
    rate_limits limits;

    // [auth]
    std::vector<token_entry> tokens;

    // [log]
    std::string log_level = "info";

    // [audit]
    std::uint64_t audit_checkpoint_interval = 100; // 0: checkpoints only at shutdown
};

// Reads `file` (if non-empty) and the `overrides` (--section.key VALUE pairs already split),
// validating every value. Throws error_exception naming the file, line and key on a bad one.
config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

// The token's config line value: name:role:sha256hex.
std::string token_config_value(const token_entry& t);
std::optional<token_entry> parse_token_entry(std::string_view value);
std::string sha256_hex_of(std::string_view text);

// The CA passphrase from ca.passphrase_file or CERTMATE_CA_PASSPHRASE, if any.
std::optional<std::string> ca_passphrase(const config& c);

} // namespace certmate::app
