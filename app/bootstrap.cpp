#include "app/bootstrap.hpp"

#include "app/backend.hpp"

#include "core/keys.hpp"
#include "storage/atomic_file.hpp"
#include "storage/audit_log.hpp"
#include "storage/ca_files.hpp"
#include "storage/fs_store.hpp"

#include <boost/json/array.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <openssl/rand.h>

#include <arpa/inet.h>

#include <fstream>
#include <thread>

namespace certmate::app {

namespace fs = std::filesystem;

namespace {
// Loads the CA with the configured passphrase; a missing or wrong one becomes a start-up error
// that names the key file and the setting to fix (ca.passphrase_file, certmate.conf.example).
result<std::shared_ptr<const certificate_authority>> load_ca_configured(const config& cfg, const storage::layout& l) {
    const auto passphrase = ca_passphrase(cfg);
    auto ca = storage::load_ca(l, passphrase);
    if (ca || ca.error().code != errc::bad_passphrase) return ca;
    const std::string key = l.ca_key().string();
    if (!passphrase)
        return make_error(errc::bad_passphrase,
                          "the CA key " + key +
                              " is encrypted and no passphrase is configured: set ca.passphrase_file "
                              "to a file holding its passphrase (or CERTMATE_CA_PASSPHRASE)",
                          "ca.passphrase_file");
    const std::string source = cfg.ca_passphrase_file.empty()
                                   ? std::string("CERTMATE_CA_PASSPHRASE")
                                   : "ca.passphrase_file (" + cfg.ca_passphrase_file.string() + ")";
    return make_error(errc::bad_passphrase,
                      "the CA key " + key + " does not open with the passphrase from " + source + ": wrong passphrase",
                      "ca.passphrase_file");
}
} // namespace

result<void> audit_cli_operation(const storage::layout& l, std::string operation, std::string resource_type,
                                 std::string resource_id, boost::json::object details) {
    auto audit = storage::audit_log::open(l.audit_log(), system_clock_fn());
    if (!audit) return audit.error();
    storage::audit_entry e;
    e.operation = std::move(operation);
    e.resource_type = std::move(resource_type);
    e.resource_id = std::move(resource_id);
    e.user = "cli";
    e.actor = actor_json(system_principal("cli"));
    e.details = std::move(details);
    return (*audit)->append(e);
}

std::string new_token() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[32];
    openssl_rng()(b);
    std::string t = "cm_";
    for (unsigned char c : b) t += alphabet[c & 63];
    return t;
}

std::string admin_token_announcement(const init_report& rep, bool to_terminal) {
    if (to_terminal)
        return "admin token (shown once, also in " + rep.admin_token_file.string() + "): " + rep.admin_token;
    return "admin token written to " + rep.admin_token_file.string() + " (0600; not printed: stdout is not a terminal)";
}

fs::path resolve_config_file(const fs::path& given, const std::vector<std::string>& overrides) {
    if (!given.empty()) return given;
    fs::path data_dir = "./data";
    for (std::size_t i = 0; i + 1 < overrides.size(); ++i)
        if (overrides[i] == "--storage.data_dir") data_dir = overrides[i + 1];
    std::error_code ec;
    auto candidate = data_dir / "certmate.conf";
    return fs::exists(candidate, ec) ? candidate : fs::path();
}

result<bool> ensure_audit_signing_key(const storage::layout& l) {
    if (auto r = storage::ensure_dir(l.audit_key_dir(), fs::perms(0700)); !r) return r.error();
    std::error_code ec;
    bool created = false;
    if (!fs::exists(l.audit_signing_key(), ec)) {
        auto k = generate_key(key_type::ed25519);
        if (!k) return k.error();
        auto pem = private_key_to_pem(k->get());
        if (!pem) return pem.error();
        auto pub = public_key_to_pem(k->get());
        if (!pub) return pub.error();
        // The public half first: a crash in between leaves no key, so the next start makes both again.
        if (auto r = storage::write_file_atomic(l.audit_signing_pub(), *pub, fs::perms(0644)); !r) return r.error();
        if (auto r = storage::write_file_atomic(l.audit_signing_key(), *pem, fs::perms(0600)); !r) return r.error();
        created = true;
    } else if (!fs::exists(l.audit_signing_pub(), ec)) {
        auto k = load_audit_signing_key(l);
        if (!k) return k.error();
        auto pub = public_key_to_pem(k->get());
        if (!pub) return pub.error();
        if (auto r = storage::write_file_atomic(l.audit_signing_pub(), *pub, fs::perms(0644)); !r) return r.error();
    }
    return created;
}

result<ossl::pkey> load_audit_signing_key(const storage::layout& l) {
    auto pem = storage::read_file(l.audit_signing_key());
    if (!pem)
        return make_error(errc::storage_failure, "cannot read the audit signing key " + l.audit_signing_key().string() +
                                                     " (certmate init creates it)");
    auto key = load_private_key(*pem);
    if (!key || EVP_PKEY_get_base_id(key->get()) != EVP_PKEY_ED25519)
        return make_error(errc::crypto_failure,
                          "the audit signing key " + l.audit_signing_key().string() + " is not an Ed25519 private key");
    return key;
}

result<init_report> init_data_dir(const config& cfg, const fs::path& config_file) {
    storage::layout l{cfg.data_dir};
    init_report rep;
    for (const auto& d : {l.data_dir, l.ca_dir(), l.crl_dir(), l.ocsp_dir(), l.client_dir(), l.state_dir(),
                          l.audit_log().parent_path()}) {
        if (auto r = storage::ensure_dir(d, fs::perms(0700)); !r) return r.error();
    }
    for (auto u : all_usages)
        if (auto r = storage::ensure_dir(l.usage_dir(u), fs::perms(0700)); !r) return r.error();

    // The audit signing key: recorded in ca_init for a new data dir, on its own for an older one.
    auto audit_key = ensure_audit_signing_key(l);
    if (!audit_key) return audit_key.error();
    auto loaded_audit_key = load_audit_signing_key(l);
    if (!loaded_audit_key) return loaded_audit_key.error();
    auto key_id = public_key_id(loaded_audit_key->get());
    if (!key_id) return key_id.error();
    const std::string audit_key_id = std::move(*key_id);

    const auto passphrase = ca_passphrase(cfg);
    if (*audit_key && storage::ca_exists(l))
        if (auto r = audit_cli_operation(l, "audit_key_create", "audit", audit_key_id,
                                         {{"key_id", audit_key_id},
                                          {"algorithm", "Ed25519"},
                                          {"public_key_file", l.audit_signing_pub().string()}});
            !r)
            return r.error();
    if (!storage::ca_exists(l)) {
        ca_options opts;
        opts.type = cfg.ca_key_type;
        opts.subject.common_name = cfg.ca_common_name;
        opts.subject.organization = cfg.ca_organization;
        auto ca = certificate_authority::create(opts, std::chrono::system_clock::now(), openssl_rng());
        if (!ca) return ca.error();
        if (auto r = storage::save_ca(l, *ca, passphrase); !r) return r.error();
        rep.created_ca = true;
        rep.ca_fingerprint = ca->fingerprint_sha256();
        if (auto r = audit_cli_operation(l, "ca_init", "ca", rep.ca_fingerprint,
                                         {{"key_type", ca->key_type_name()},
                                          {"subject", ca->subject_string()},
                                          {"encrypted_key", passphrase.has_value()},
                                          {"audit_key_id", audit_key_id}});
            !r)
            return r.error();
    }
    // Loading what was just written proves the passphrase and the files.
    auto ca = load_ca_configured(cfg, l);
    if (!ca) return ca.error();
    rep.ca_fingerprint = (*ca)->fingerprint_sha256();
    // With a passphrase the CA key is only ever on disk encrypted (certmate.conf.example): a
    // plain one (restored by hand, or written before the passphrase was set) is encrypted now.
    if (passphrase) {
        auto enc = storage::encrypt_ca_key_in_place(l, *passphrase);
        if (!enc) return enc.error();
        if (*enc) {
            spdlog::warn("{} was not encrypted although a CA passphrase is configured: encrypted it in place",
                         l.ca_key().string());
            if (auto r = audit_cli_operation(l, "ca_key_encrypt", "ca", rep.ca_fingerprint,
                                             {{"reason", "plain CA key found with a passphrase configured"}});
                !r)
                return r.error();
        }
    }
    storage::fs_store store(l);
    auto responder = ensure_ocsp_responder(store, **ca, std::chrono::system_clock::now(), std::chrono::hours(24 * 30),
                                           openssl_rng());
    if (!responder) return responder.error();

    rep.admin_token_file = l.admin_token();
    std::error_code ec;
    const fs::path starter = l.data_dir / "certmate.conf";
    if (!fs::exists(l.admin_token(), ec) && cfg.tokens.empty()) {
        rep.admin_token = new_token();
        if (auto r = storage::write_file_atomic(l.admin_token(), rep.admin_token + "\n", fs::perms(0600)); !r)
            return r.error();
        token_entry t{"admin", api_role::admin, sha256_hex_of(rep.admin_token)};
        if (config_file.empty() && !fs::exists(starter, ec)) {
            std::string text = "# Written by `certmate init`. Every key is documented in certmate.conf.example.\n"
                               "[auth]\ntoken = " +
                               token_config_value(t) + "\n";
            if (auto r = storage::write_file_atomic(starter, text, fs::perms(0600)); !r) return r.error();
            rep.config_written = starter;
        }
    }
    return rep;
}

namespace {

// An IPv4 or IPv6 address literal ("[::1]" allowed), as inet_pton reads it.
std::optional<std::string> ip_literal(std::string name) {
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1) return name;
    return std::nullopt;
}

result<std::optional<std::string>> tls_key_passphrase(const config& cfg) {
    if (cfg.tls_key_passphrase_file.empty()) return std::optional<std::string>();
    std::ifstream in(cfg.tls_key_passphrase_file);
    std::string p;
    if (!in || !std::getline(in, p) || p.empty())
        return make_error(errc::invalid_argument,
                          "tls.key_passphrase_file is missing or empty: " + cfg.tls_key_passphrase_file.string(),
                          "tls.key_passphrase_file");
    return std::optional<std::string>(p);
}

// Puts the listener certificate into the store as certs/client/server/server-<fingerprint
// prefix>/ (cert.crt and metadata.json; no key: it is tls/server.key), renewal off.
result<void> record_server_cert(const storage::layout& l, const issued_cert& cert, const issue_request& req,
                                const std::string& organization) {
    cert_record rec;
    rec.identifier = "server-" + cert.fingerprint_sha256.substr(0, 16);
    rec.subject.common_name = req.subject.common_name;
    rec.subject.organization = organization;
    record_issued(rec, cert, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    rec.usage = cert_usage::server;
    rec.notes = "TLS listener certificate from certmate init --server-cert (key in tls/server.key)";
    rec.renewal.renewal_enabled = false;
    rec.key_type = describe_key(X509_get0_pubkey(cert.cert.get())); // what issue_server_cert generated
    rec.sans = req.sans;
    rec.has_private_key = false;
    storage::fs_store store(l);
    return store.create(rec, cert_files{cert.pem, std::nullopt, std::nullopt});
}

} // namespace

result<server_cert_report> issue_server_cert(const config& cfg, const std::vector<std::string>& names,
                                             int validity_days) {
    if (names.empty())
        return make_error(errc::invalid_argument, "--server-cert needs at least one host name or address");
    storage::layout l{cfg.data_dir};
    auto ca = load_ca_configured(cfg, l);
    if (!ca) return ca.error();
    auto passphrase = tls_key_passphrase(cfg);
    if (!passphrase) return passphrase.error();

    server_cert_report rep;
    issue_request req;
    req.profile = cert_profile::tls_server;
    req.subject.common_name = names.front();
    if (!cfg.ca_organization.empty()) req.subject.organization = cfg.ca_organization;
    for (const auto& n : names) {
        if (auto ip = ip_literal(n)) {
            req.sans.ip.push_back(*ip);
            rep.ip.push_back(*ip);
        } else {
            req.sans.dns.push_back(n);
            rep.dns.push_back(n);
        }
    }
    req.validity_days = validity_days;
    auto serial = random_serial(openssl_rng());
    if (!serial) return serial.error();
    req.serial_decimal = std::move(*serial);
    auto key = generate_key(key_type::ec_p256);
    if (!key) return key.error();
    auto cert = issue_certificate(**ca, key->get(), req, cfg.service.issuance, std::chrono::system_clock::now());
    if (!cert) return cert.error();
    auto key_pem = private_key_to_pem(key->get(), *passphrase);
    if (!key_pem) return key_pem.error();

    // Recorded first (usage server, the key stays in tls/), so OCSP, the CRL and revocation know
    // every listener certificate that may be in use.
    if (auto r = record_server_cert(l, *cert, req, cfg.ca_organization); !r) return r.error();

    if (auto r = storage::ensure_dir(l.tls_dir(), fs::perms(0700)); !r) return r.error();
    // The key first: a certificate never sits next to a key it does not match for long.
    if (auto r = storage::write_file_atomic(l.tls_key(), *key_pem, fs::perms(0600)); !r) return r.error();
    if (auto r = storage::write_file_atomic(l.tls_cert(), cert->pem + (*ca)->cert_pem(), fs::perms(0644)); !r)
        return r.error();

    std::error_code ec;
    rep.cert_file = fs::absolute(l.tls_cert(), ec);
    rep.key_file = fs::absolute(l.tls_key(), ec);
    rep.serial_decimal = cert->serial_decimal;
    rep.fingerprint_sha256 = cert->fingerprint_sha256;
    rep.not_after = cert->not_after;

    boost::json::array sans;
    for (const auto& n : names) sans.emplace_back(n);
    if (auto r = audit_cli_operation(l, "server_cert_issue", "server_certificate", rep.serial_decimal,
                                     {{"subject_alt_names", std::move(sans)},
                                      {"fingerprint_sha256", rep.fingerprint_sha256},
                                      {"encrypted_key", passphrase->has_value()}});
        !r)
        return r.error();
    return rep;
}

namespace {
// The host of "scheme://host[:port][/path]" ("[::1]" without brackets), or "".
std::string url_host(std::string_view url) {
    auto p = url.find("://");
    if (p == std::string_view::npos) return {};
    url.remove_prefix(p + 3);
    url = url.substr(0, url.find('/'));
    if (!url.empty() && url.front() == '[') {
        auto close = url.find(']');
        return close == std::string_view::npos ? std::string() : std::string(url.substr(1, close - 1));
    }
    return std::string(url.substr(0, url.find(':')));
}
} // namespace

result<std::unique_ptr<cert_service>> open_service(const config& cfg) {
    storage::layout l{cfg.data_dir};
    auto ca = load_ca_configured(cfg, l);
    if (!ca) return ca.error();
    // The repository first: on an empty database it creates the schema the audit chain lives in.
    auto repo = open_repository(cfg);
    if (!repo) return repo.error();
    auto audit_key = load_audit_signing_key(l);
    if (!audit_key) return audit_key.error();
    auto audit = open_audit(cfg, std::move(*audit_key), system_clock_fn());
    if (!audit) return audit.error();
    auto svc_cfg = cfg.service;
    // The CA's own listener names are never issued through the API (SECURITY.md "serverAuth").
    auto& reserved = svc_cfg.server_names.reserved;
    if (auto host = url_host(svc_cfg.issuance.public_url); !host.empty()) reserved.push_back(host);
    if (!cfg.tls_cert.empty()) {
        auto pem = storage::read_file(cfg.tls_cert);
        auto names = pem ? certificate_host_names(*pem) : result<std::vector<std::string>>(pem.error());
        if (!names)
            return make_error(errc::invalid_argument, "tls.cert cannot be read: " + names.error().message, "tls.cert");
        reserved.insert(reserved.end(), names->begin(), names->end());
    }
    if (svc_cfg.load_threads == 0) svc_cfg.load_threads = std::max(1u, std::thread::hardware_concurrency());
    auto svc = std::make_unique<cert_service>(*ca, std::move(*repo), std::move(*audit), svc_cfg, system_clock_fn(),
                                              openssl_rng());
    if (auto r = svc->load(); !r) return r.error();
    // The load's temporaries (the snapshot's text, records moved into the index) are freed:
    // give their pages back (glibc keeps freed heap pages otherwise; malloc_trim(3)).
    ::malloc_trim(0);
    return svc;
}

} // namespace certmate::app
