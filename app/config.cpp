#include "app/config.hpp"

#include "app/suggest.hpp"
#include "core/encoding.hpp"
#include "core/keys.hpp"
#include "core/renewal_schedule.hpp"

#include <cctype>
#include <boost/program_options.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace certmate::app {

namespace po = boost::program_options;

namespace {

// Every key the file may hold, with the documentation that certmate.conf.example repeats.
const std::vector<std::pair<const char*, const char*>>& known_keys() {
    static const std::vector<std::pair<const char*, const char*>> keys = {
        {"server.http_listen", "HOST:PORT of the plain HTTP listener (port 0 picks a free port)"},
        {"server.https_listen", "HOST:PORT of the TLS listener; empty for none"},
        {"server.threads", "io threads; 0 = one per core"},
        {"server.pool_threads", "crypto/disk worker threads; 0 = one per core"},
        {"server.api_on_http", "serve the API and dashboard on plain HTTP"},
        {"server.max_connections", "connections beyond this get 503"},
        {"server.max_connections_per_ip", "connections one client address (IPv6: /64) may hold; 0 = unlimited"},
        {"server.reserved_connections", "the last slots of max_connections, not for addresses already holding 2"},
        {"server.shutdown_grace", "seconds in-flight requests get on SIGTERM"},
        {"server.body_limit", "maximum request body in bytes"},
        {"server.batch_body_limit", "maximum batch request body in bytes"},
        {"server.metrics_public", "serve /metrics without a token"},
        {"storage.data_dir", "where certificates, the CA and logs live"},
        {"storage.snapshot_delay",
         "seconds of no certificate writes before the start-up snapshot is written; 0 = never"},
        {"storage.backend", "fs (everything in the data dir) or postgresql (several instances on one database)"},
        {"storage.postgresql",
         "libpq connection string of the database (backend postgresql); the password comes from PGPASSFILE "
         "or passfile=, never from here"},
        {"storage.postgresql_pool", "database connections per instance"},
        {"storage.key_encryption_key_file",
         "backend postgresql: file with the 32-byte key (raw, or 64 hex digits) that encrypts private keys in "
         "the database (AES-256-GCM); 0600"},
        {"ca.key_type", "rsa4096, rsa3072, ec-p384 or ec-p256 (at init)"},
        {"ca.common_name", "CA subject CN (at init)"},
        {"ca.organization", "CA subject O (at init)"},
        {"ca.passphrase_file", "file holding the CA key passphrase"},
        {"issuance.public_url", "base URL put in CRL distribution point and AIA"},
        {"issuance.default_validity_days", "validity when a request names none"},
        {"issuance.max_validity_days", "upper bound for validity_days"},
        {"issuance.default_key_type", "key type generated when a request names none"},
        {"issuance.expiring_days", "\"expiring soon\" window in days"},
        {"issuance.server_name_patterns",
         "names admins may put in serverAuth certificates (comma-separated; empty: none)"},
        {"crl.validity_hours", "CRL nextUpdate - thisUpdate"},
        {"ocsp.validity_hours", "OCSP response nextUpdate - thisUpdate"},
        {"ocsp.refresh_before_minutes", "cached OCSP responses are re-signed this long before their nextUpdate"},
        {"renewal.enabled", "run the daily sweep"},
        {"renewal.time", "local HH:MM (or HH:MM:SS) of the daily sweep"},
        {"renewal.retry_seconds",
         "while another instance holds the sweep, ask again after this long (one sweep per day across instances)"},
        {"renewal.threshold_days", "default renewal_threshold_days of new certificates"},
        {"renewal.revoke_superseded", "revoke the old certificate (superseded) on renewal"},
        {"tls.cert", "server certificate PEM (with chain)"},
        {"tls.key", "server key PEM"},
        {"tls.key_passphrase_file", "file whose first line is the passphrase of an encrypted tls.key"},
        {"tls.client_auth", "none, optional or require"},
        {"rate_limit.default", "requests/min per client, default class; 0 = unlimited"},
        {"rate_limit.create", "certificate creations/min"},
        {"rate_limit.batch", "batch requests/min"},
        {"rate_limit.ocsp", "OCSP queries/min"},
        {"rate_limit.crl", "CRL downloads/min"},
        {"rate_limit.shared",
         "keep the buckets in the database so the limits hold across all instances (backend postgresql; "
         "one database round trip per limited request)"},
        {"auth.token", "name:role:sha256hex of a bearer token (repeatable)"},
        {"log.level", "trace, debug, info, warn, error"},
        {"audit.checkpoint_interval", "a signed checkpoint after every N audit entries; 0 = only at shutdown"},
        {"jobs.max_running", "batch jobs running at once (one per client)"},
        {"jobs.max_queued", "batch jobs waiting beyond those; more are refused with 503"},
        {"jobs.parallel_rows", "rows of one job in flight at once; 0 = half the pool threads, at least 2"},
        {"jobs.max_rows", "rows (certificates) one batch may hold"},
        {"jobs.keep_finished", "finished jobs kept for GET /api/jobs; older ones are forgotten"},
    };
    return keys;
}

// The 1-based line of `key` (section.name) in `file`, or 0.
int line_of(const std::filesystem::path& file, const std::string& key) {
    std::ifstream in(file);
    std::string line, section;
    const auto dot = key.find('.');
    const std::string want_section = key.substr(0, dot), want_name = key.substr(dot + 1);
    for (int n = 1; std::getline(in, line); ++n) {
        auto b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line[b] == '#' || line[b] == ';') continue;
        if (line[b] == '[') {
            section = line.substr(b + 1, line.find(']') - b - 1);
            continue;
        }
        auto eq = line.find('=');
        std::string name = line.substr(b, eq == std::string::npos ? std::string::npos : eq - b);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        if (section == want_section && name == want_name) return n;
        if (section.empty() && name == key) return n;
    }
    return 0;
}

[[noreturn]] void reject(const config& c, const std::string& key, const std::string& why) {
    std::string where;
    if (!c.source.empty()) {
        where = c.source.string();
        if (int n = line_of(c.source, key)) where += ":" + std::to_string(n);
        where += ": ";
    }
    throw error_exception(make_error(errc::invalid_argument, where + key + ": " + why, key));
}

long long to_int(const config& c, const std::string& key, const std::string& v, long long lo, long long hi) {
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno) reject(c, key, "'" + v + "' is not an integer");
    if (n < lo || n > hi)
        reject(c, key, std::to_string(n) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return n;
}

bool to_bool(const config& c, const std::string& key, const std::string& v) {
    if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
    if (v == "false" || v == "no" || v == "0" || v == "off") return false;
    reject(c, key, "'" + v + "' is not a boolean (true/false)");
}

void check_listen(const config& c, const std::string& key, const std::string& v, bool allow_empty) {
    if (v.empty() && allow_empty) return;
    auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0) reject(c, key, "'" + v + "' is not HOST:PORT");
    to_int(c, key, v.substr(colon + 1), 0, 65535);
}

} // namespace

std::string sha256_hex_of(std::string_view text) {
    auto hex = sha256_hex(text);
    if (!hex) throw error_exception(hex.error());
    return std::move(*hex);
}

std::string token_config_value(const token_entry& t) {
    return t.name + ":" + std::string(to_string(t.role)) + ":" + t.sha256_hex;
}

std::optional<token_entry> parse_token_entry(std::string_view value) {
    auto a = value.find(':');
    if (a == std::string_view::npos) return std::nullopt;
    auto b = value.find(':', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    token_entry t;
    t.name = std::string(value.substr(0, a));
    auto role = parse_api_role(value.substr(a + 1, b - a - 1));
    t.sha256_hex = std::string(value.substr(b + 1));
    if (t.name.empty() || !role || t.sha256_hex.size() != 64 || !is_lower_hex(t.sha256_hex)) return std::nullopt;
    t.role = *role;
    return t;
}

config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
    config c;
    c.source = file;
    po::options_description desc;
    for (const auto& [key, help] : known_keys()) {
        if (std::string_view(key) == "auth.token")
            desc.add_options()(key, po::value<std::vector<std::string>>()->composing(), help);
        else
            desc.add_options()(key, po::value<std::string>(), help);
    }
    po::variables_map vm;
    try {
        // Command-line overrides first: the first value stored wins in Program_options.
        if (!overrides.empty()) {
            std::vector<std::string> args = overrides;
            try {
                po::store(po::command_line_parser(args).options(desc).run(), vm);
            } catch (const po::unknown_option& e) {
                std::vector<std::string> keys;
                for (const auto& [key, help] : known_keys()) keys.push_back(key);
                const auto near = closest_match(e.get_option_name().substr(2), keys);
                throw error_exception(
                    make_error(errc::invalid_argument, "unknown config key " + e.get_option_name() +
                                                           (near.empty() ? "" : " (did you mean --" + near + "?)")));
            }
        }
        if (!file.empty()) {
            std::ifstream in(file);
            if (!in) throw error_exception(make_error(errc::invalid_argument, file.string() + ": cannot be read"));
            auto parsed = po::parse_config_file(in, desc, true);
            for (const auto& o : parsed.options)
                if (o.unregistered) {
                    std::vector<std::string> keys;
                    for (const auto& [key, help] : known_keys()) keys.push_back(key);
                    const auto near = closest_match(o.string_key, keys);
                    reject(c, o.string_key, "unknown key" + (near.empty() ? "" : " (did you mean " + near + "?)"));
                }
            po::store(parsed, vm);
        }
        po::notify(vm);
    } catch (const po::invalid_config_file_syntax& e) {
        // Not e.what(): Boost 1.81 substitutes the line for "%invalid_line%" until none is left,
        // forever when the line itself holds that text (fuzz/regressions/config/).
        const std::string why = "the options configuration file contains an invalid line '" + e.tokens() + "'";
        throw error_exception(make_error(errc::invalid_argument, file.string() + ": " + why));
    } catch (const po::error& e) {
        throw error_exception(
            make_error(errc::invalid_argument, (file.empty() ? std::string() : file.string() + ": ") + e.what()));
    }

    auto get = [&](const char* key) -> std::optional<std::string> {
        if (!vm.count(key)) return std::nullopt;
        return vm[key].as<std::string>();
    };
    auto& s = c.service;
    if (auto v = get("server.http_listen")) {
        check_listen(c, "server.http_listen", *v, false);
        c.http_listen = *v;
    }
    if (auto v = get("server.https_listen")) {
        check_listen(c, "server.https_listen", *v, true);
        c.https_listen = *v;
    }
    if (auto v = get("server.threads")) c.threads = static_cast<unsigned>(to_int(c, "server.threads", *v, 0, 256));
    if (auto v = get("server.pool_threads"))
        c.pool_threads = static_cast<unsigned>(to_int(c, "server.pool_threads", *v, 0, 256));
    if (auto v = get("server.api_on_http")) c.api_on_http = to_bool(c, "server.api_on_http", *v);
    if (auto v = get("server.max_connections"))
        c.max_connections = static_cast<unsigned>(to_int(c, "server.max_connections", *v, 1, 1000000));
    if (auto v = get("server.max_connections_per_ip"))
        c.max_connections_per_ip = static_cast<unsigned>(to_int(c, "server.max_connections_per_ip", *v, 0, 1000000));
    if (auto v = get("server.reserved_connections")) {
        c.reserved_connections = static_cast<unsigned>(to_int(c, "server.reserved_connections", *v, 0, 1000000));
        if (c.reserved_connections >= c.max_connections)
            reject(c, "server.reserved_connections", "must be below server.max_connections");
    } else {
        c.reserved_connections = std::min(c.reserved_connections, c.max_connections / 4); // a small max_connections
    }
    if (auto v = get("server.shutdown_grace"))
        c.shutdown_grace = std::chrono::seconds(to_int(c, "server.shutdown_grace", *v, 0, 3600));
    if (auto v = get("server.body_limit"))
        c.body_limit = static_cast<std::size_t>(to_int(c, "server.body_limit", *v, 1024, 1 << 30));
    if (auto v = get("server.batch_body_limit"))
        c.batch_body_limit = static_cast<std::size_t>(to_int(c, "server.batch_body_limit", *v, 1024, 1LL << 32));
    if (auto v = get("server.metrics_public")) c.metrics_public = to_bool(c, "server.metrics_public", *v);
    if (auto v = get("storage.snapshot_delay"))
        c.snapshot_delay = std::chrono::seconds(to_int(c, "storage.snapshot_delay", *v, 0, 86400));
    if (auto v = get("storage.data_dir")) {
        if (v->empty()) reject(c, "storage.data_dir", "must not be empty");
        c.data_dir = *v;
    }
    if (auto v = get("storage.backend")) {
        if (*v != "fs" && *v != "postgresql") reject(c, "storage.backend", "'" + *v + "' is not fs or postgresql");
        c.backend = *v;
    }
    if (auto v = get("storage.postgresql")) c.postgresql = *v;
    if (auto v = get("storage.postgresql_pool"))
        c.postgresql_pool = static_cast<unsigned>(to_int(c, "storage.postgresql_pool", *v, 1, 256));
    if (auto v = get("storage.key_encryption_key_file")) c.key_encryption_key_file = *v;
    if (auto v = get("rate_limit.shared")) c.limits.shared = to_bool(c, "rate_limit.shared", *v);
    if (c.limits.shared && c.backend != "postgresql")
        reject(c, "rate_limit.shared", "needs storage.backend = postgresql (the buckets live in the database)");
    if (c.backend == "postgresql") {
        if (c.postgresql.empty()) reject(c, "storage.postgresql", "is required with storage.backend = postgresql");
        if (c.key_encryption_key_file.empty())
            reject(c, "storage.key_encryption_key_file", "is required with storage.backend = postgresql");
        // A password in the config would sit in a file many can read and in `ps`: refused.
        // libpq percent-decodes a URI's parts and query keywords (pass%77ord=): decoded first.
        std::string lower;
        for (std::size_t i = 0; i < c.postgresql.size(); ++i) {
            char ch = c.postgresql[i];
            if (ch == '%' && i + 2 < c.postgresql.size() &&
                std::isxdigit(static_cast<unsigned char>(c.postgresql[i + 1])) &&
                std::isxdigit(static_cast<unsigned char>(c.postgresql[i + 2]))) {
                ch = static_cast<char>(std::stoi(c.postgresql.substr(i + 1, 2), nullptr, 16));
                i += 2;
            }
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        bool uri_password = false; // postgresql://user:secret@host
        for (std::string_view scheme : {"postgresql://", "postgres://"})
            if (lower.starts_with(scheme)) {
                auto rest = std::string_view(lower).substr(scheme.size());
                auto at = rest.find('@');
                uri_password = at != std::string_view::npos && rest.substr(0, at).find(':') != std::string_view::npos;
            }
        if (uri_password || lower.find("password") != std::string::npos)
            reject(c, "storage.postgresql",
                   "must not hold a password: use PGPASSFILE or passfile= (docs/postgresql.md)");
    }
    if (auto v = get("ca.key_type")) {
        auto k = parse_key_type(*v);
        if (!k ||
            (*k != key_type::rsa4096 && *k != key_type::ec_p384 && *k != key_type::rsa3072 && *k != key_type::ec_p256))
            reject(c, "ca.key_type", "'" + *v + "' is not rsa4096, rsa3072, ec-p384 or ec-p256");
        c.ca_key_type = *k;
    }
    if (auto v = get("ca.common_name")) c.ca_common_name = *v;
    if (auto v = get("ca.organization")) c.ca_organization = *v;
    if (auto v = get("ca.passphrase_file")) c.ca_passphrase_file = *v;
    if (auto v = get("issuance.public_url")) {
        if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)
            reject(c, "issuance.public_url", "must start with http:// or https://");
        std::string u = *v;
        while (!u.empty() && u.back() == '/') u.pop_back();
        s.issuance.public_url = u;
    }
    if (auto v = get("issuance.max_validity_days"))
        s.issuance.max_validity_days = static_cast<int>(to_int(c, "issuance.max_validity_days", *v, 1, 36500));
    if (auto v = get("issuance.default_validity_days"))
        s.issuance.default_validity_days = static_cast<int>(to_int(c, "issuance.default_validity_days", *v, 1, 36500));
    if (s.issuance.default_validity_days > s.issuance.max_validity_days)
        reject(c, "issuance.default_validity_days", "exceeds issuance.max_validity_days");
    if (auto v = get("issuance.default_key_type")) {
        auto k = parse_key_type(*v);
        if (!k) reject(c, "issuance.default_key_type", "'" + *v + "' is not a key type");
        s.default_key_type = *k;
    }
    if (auto v = get("issuance.expiring_days"))
        s.expiring_days = static_cast<int>(to_int(c, "issuance.expiring_days", *v, 1, 3650));
    if (auto v = get("issuance.server_name_patterns")) {
        std::string item;
        for (char ch : *v + ",") {
            if (ch == ',' || ch == ' ' || ch == '\t') {
                if (item.empty()) continue;
                const bool wild = item.rfind("*.", 0) == 0;
                if (item.find('*', wild ? 1 : 0) != std::string::npos || item == "*.")
                    reject(c, "issuance.server_name_patterns",
                           "'" + item + "': a '*' may only stand as the whole first label");
                s.server_names.patterns.push_back(item);
                item.clear();
            } else {
                item += ch;
            }
        }
    }
    if (auto v = get("crl.validity_hours"))
        s.crl_validity = std::chrono::hours(to_int(c, "crl.validity_hours", *v, 1, 24 * 365));
    if (auto v = get("ocsp.validity_hours"))
        c.ocsp_validity = std::chrono::hours(to_int(c, "ocsp.validity_hours", *v, 1, 24 * 7));
    if (auto v = get("ocsp.refresh_before_minutes"))
        c.ocsp_refresh_before = std::chrono::minutes(to_int(c, "ocsp.refresh_before_minutes", *v, 0, 24 * 7 * 60));
    if (c.ocsp_refresh_before >= c.ocsp_validity)
        reject(c, get("ocsp.refresh_before_minutes") ? "ocsp.refresh_before_minutes" : "ocsp.validity_hours",
               "ocsp.refresh_before_minutes must be shorter than ocsp.validity_hours");
    if (auto v = get("renewal.enabled")) c.renewal_sweep_enabled = to_bool(c, "renewal.enabled", *v);
    if (auto v = get("renewal.time")) {
        if (!parse_daily_time(*v)) reject(c, "renewal.time", "'" + *v + "' is not HH:MM (or HH:MM:SS)");
        c.renewal_time = *v;
    }
    if (auto v = get("renewal.retry_seconds"))
        c.renewal_retry = std::chrono::seconds(to_int(c, "renewal.retry_seconds", *v, 1, 3600));
    if (auto v = get("renewal.threshold_days"))
        s.default_renewal_threshold_days = static_cast<int>(to_int(c, "renewal.threshold_days", *v, 1, 3650));
    if (auto v = get("renewal.revoke_superseded")) s.revoke_superseded = to_bool(c, "renewal.revoke_superseded", *v);
    if (auto v = get("tls.cert")) c.tls_cert = *v;
    if (auto v = get("tls.key")) c.tls_key = *v;
    if (auto v = get("tls.key_passphrase_file")) c.tls_key_passphrase_file = *v;
    if (auto v = get("tls.client_auth")) {
        if (*v != "none" && *v != "optional" && *v != "require")
            reject(c, "tls.client_auth", "'" + *v + "' is not none, optional or require");
        c.tls_client_auth = *v;
    }
    auto limit = [&](const char* key, int& out) {
        if (auto v = get(key)) out = static_cast<int>(to_int(c, key, *v, 0, 1000000));
    };
    limit("rate_limit.default", c.limits.default_per_min);
    limit("rate_limit.create", c.limits.create_per_min);
    limit("rate_limit.batch", c.limits.batch_per_min);
    limit("rate_limit.ocsp", c.limits.ocsp_per_min);
    limit("rate_limit.crl", c.limits.crl_per_min);
    if (vm.count("auth.token")) {
        for (const auto& t : vm["auth.token"].as<std::vector<std::string>>()) {
            auto e = parse_token_entry(t);
            if (!e) reject(c, "auth.token", "'" + t.substr(0, t.find(':')) + ":...' is not name:role:sha256hex");
            c.tokens.push_back(*e);
        }
    }
    if (auto v = get("log.level")) {
        static const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
        if (std::find(levels.begin(), levels.end(), *v) == levels.end())
            reject(c, "log.level", "'" + *v + "' is not a log level");
        c.log_level = *v;
    }
    if (auto v = get("audit.checkpoint_interval"))
        c.audit_checkpoint_interval =
            static_cast<std::uint64_t>(to_int(c, "audit.checkpoint_interval", *v, 0, 1000000));
    if (auto v = get("jobs.max_running"))
        c.jobs.max_running = static_cast<unsigned>(to_int(c, "jobs.max_running", *v, 1, 64));
    if (auto v = get("jobs.max_queued"))
        c.jobs.max_queued = static_cast<unsigned>(to_int(c, "jobs.max_queued", *v, 0, 10000));
    if (auto v = get("jobs.parallel_rows"))
        c.jobs.parallel_rows = static_cast<unsigned>(to_int(c, "jobs.parallel_rows", *v, 0, 256));
    if (auto v = get("jobs.max_rows"))
        c.jobs.max_rows = static_cast<std::size_t>(to_int(c, "jobs.max_rows", *v, 1, 1000000));
    if (auto v = get("jobs.keep_finished"))
        c.jobs.keep_finished = static_cast<std::size_t>(to_int(c, "jobs.keep_finished", *v, 1, 100000));
    if (!c.https_listen.empty() && (c.tls_cert.empty() || c.tls_key.empty()))
        reject(c, "server.https_listen", "needs tls.cert and tls.key");
    return c;
}

std::optional<std::string> ca_passphrase(const config& c) {
    if (!c.ca_passphrase_file.empty()) {
        std::ifstream in(c.ca_passphrase_file);
        if (!in)
            throw error_exception(make_error(errc::invalid_argument,
                                             "ca.passphrase_file cannot be read: " + c.ca_passphrase_file.string()));
        std::string p;
        std::getline(in, p);
        if (p.empty()) throw error_exception(make_error(errc::invalid_argument, "ca.passphrase_file is empty"));
        return p;
    }
    if (const char* env = std::getenv("CERTMATE_CA_PASSPHRASE"); env && *env) return std::string(env);
    return std::nullopt;
}

} // namespace certmate::app
