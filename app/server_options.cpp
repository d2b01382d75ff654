#include "app/server_options.hpp"

#include "storage/pg_rate_buckets.hpp"

namespace certmate::app {

std::vector<net::token_credential> tokens_from(const config& cfg) {
    std::vector<net::token_credential> out;
    for (const auto& t : cfg.tokens) out.push_back({t.name, t.role, t.sha256_hex});
    return out;
}

rate_limit_config rate_limits_from(const config& cfg) {
    rate_limit_config r;
    r[rate_class::default_] = cfg.limits.default_per_min;
    r[rate_class::create] = cfg.limits.create_per_min;
    r[rate_class::batch] = cfg.limits.batch_per_min;
    r[rate_class::ocsp] = cfg.limits.ocsp_per_min;
    r[rate_class::crl] = cfg.limits.crl_per_min;
    return r;
}

net::tls_options tls_options_from(const config& cfg) {
    net::tls_options t;
    t.https_listen = cfg.https_listen;
    t.cert_file = cfg.tls_cert;
    t.key_file = cfg.tls_key;
    t.key_passphrase_file = cfg.tls_key_passphrase_file;
    t.client_auth = cfg.tls_client_auth == "require"    ? net::client_auth_mode::require
                    : cfg.tls_client_auth == "optional" ? net::client_auth_mode::optional
                                                        : net::client_auth_mode::none;
    return t;
}

net::server_options server_options_from(const config& cfg) {
    net::server_options o;
    o.http_listen = cfg.http_listen;
    o.tls = tls_options_from(cfg);
    o.threads = cfg.threads;
    o.pool_threads = cfg.pool_threads;
    o.max_connections = cfg.max_connections;
    o.max_connections_per_ip = cfg.max_connections_per_ip;
    o.reserved_connections = cfg.reserved_connections;
    o.shutdown_grace = cfg.shutdown_grace;
    o.snapshot_delay = cfg.snapshot_delay;
    o.body_limit = cfg.body_limit;
    o.batch_body_limit = cfg.batch_body_limit;
    o.jobs = cfg.jobs;
    o.metrics_public = cfg.metrics_public;
    o.api_on_http = cfg.api_on_http;
    o.renewal_sweep = cfg.renewal_sweep_enabled;
    o.renewal_time = cfg.renewal_time;
    o.renewal_retry = cfg.renewal_retry;
    o.ocsp_validity = cfg.ocsp_validity;
    o.ocsp_refresh_before = cfg.ocsp_refresh_before;
    o.tokens = tokens_from(cfg);
    o.rate_limits = rate_limits_from(cfg);
    // Connections opened on first use; the table made by open_repository. A bucket is not worth a
    // WAL flush: a crash of the database forgets at most the last moment's takes.
    if (cfg.limits.shared)
        o.shared_buckets = std::make_shared<storage::pg_rate_buckets>(std::make_shared<storage::pg::pool>(
            cfg.postgresql, 4, std::chrono::seconds(5), "SET synchronous_commit = off"));
    return o;
}

} // namespace certmate::app
