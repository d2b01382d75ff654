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

struct rate_limits {
    // requests per minute per principal and class; 0 = unlimited
    int default_per_min = 100, create_per_min = 30, batch_per_min = 10, ocsp_per_min = 200, crl_per_min = 60;
};

struct config {
    std::filesystem::path source; // the file read, if any

    // [server]
    std::string http_listen = "127.0.0.1:8080";
    std::string https_listen;  // empty: no TLS listener
    unsigned threads = 0;      // 0: one per core
    unsigned pool_threads = 0; // 0: one per core
    bool api_on_http = true;
    unsigned max_connections = 1024;
    unsigned max_connections_per_ip = 64; // 0: unlimited
    unsigned reserved_connections = 32;
    std::chrono::seconds shutdown_grace{10};
    std::size_t body_limit = 64 * 1024;
    std::size_t batch_body_limit = 32 * 1024 * 1024;
    bool metrics_public = true;
    net::job_options jobs; // [jobs]

    // [storage]
    std::filesystem::path data_dir = "./data";

    // [ca]
    key_type ca_key_type = key_type::rsa4096;
    std::string ca_common_name = "CertMate Private CA";
    std::string ca_organization = "CertMate";
    std::filesystem::path ca_passphrase_file; // or CERTMATE_CA_PASSPHRASE

    // [issuance], [crl], [renewal]
    service_config service;
    std::string renewal_time = "03:00";
    bool renewal_sweep_enabled = true;

    // [tls]
    std::filesystem::path tls_cert, tls_key;
    std::filesystem::path tls_key_passphrase_file;
    std::string tls_client_auth = "none";

    // [ocsp]
    std::chrono::hours ocsp_validity{24};
    std::chrono::minutes ocsp_refresh_before{60};

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
