#include "app/bootstrap.hpp"

#include "core/keys.hpp"
#include "storage/atomic_file.hpp"
#include "storage/ca_files.hpp"
#include "storage/fs_store.hpp"

#include <spdlog/spdlog.h>

#include <openssl/rand.h>

#include <thread>

namespace certmate::app {

namespace fs = std::filesystem;

std::string new_token() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[32];
    openssl_rng()(b);
    std::string t = "cm_";
    for (unsigned char c : b) t += alphabet[c & 63];
    return t;
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

result<init_report> init_data_dir(const config& cfg, const fs::path& config_file) {
    storage::layout l{cfg.data_dir};
    init_report rep;
    for (const auto& d : {l.data_dir, l.ca_dir(), l.crl_dir(), l.ocsp_dir(), l.client_dir(), l.state_dir(),
                          l.audit_log().parent_path()}) {
        if (auto r = storage::ensure_dir(d, fs::perms(0700)); !r) return r.error();
    }
    for (auto u : all_usages)
        if (auto r = storage::ensure_dir(l.usage_dir(u), fs::perms(0700)); !r) return r.error();

    const auto passphrase = ca_passphrase(cfg);
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
        auto audit = storage::audit_log::open(l.audit_log(), system_clock_fn());
        if (!audit) return audit.error();
        storage::audit_entry e;
        e.operation = "ca_init";
        e.resource_type = "ca";
        e.resource_id = rep.ca_fingerprint;
        e.user = "cli";
        e.details = {{"key_type", ca->key_type_name()}, {"subject", ca->subject_string()},
                     {"encrypted_key", passphrase.has_value()}};
        if (auto r = (*audit)->append(e); !r) return r.error();
    }
    // Loading what was just written proves the passphrase and the files.
    auto ca = storage::load_ca(l, passphrase);
    if (!ca) return ca.error();
    rep.ca_fingerprint = (*ca)->fingerprint_sha256();
    auto responder = storage::ensure_ocsp_responder(l, **ca, std::chrono::system_clock::now(), std::chrono::hours(24 * 30));
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
                               "[auth]\ntoken = " + token_config_value(t) + "\n";
            if (auto r = storage::write_file_atomic(starter, text, fs::perms(0600)); !r) return r.error();
            rep.config_written = starter;
        }
    }
    return rep;
}

result<std::unique_ptr<cert_service>> open_service(const config& cfg) {
    storage::layout l{cfg.data_dir};
    auto ca = storage::load_ca(l, ca_passphrase(cfg));
    if (!ca) return ca.error();
    auto audit = storage::audit_log::open(l.audit_log(), system_clock_fn());
    if (!audit) return audit.error();
    auto svc_cfg = cfg.service;
    if (svc_cfg.load_threads == 0) svc_cfg.load_threads = std::max(1u, std::thread::hardware_concurrency());
    auto svc = std::make_unique<cert_service>(*ca, std::make_unique<storage::fs_store>(l),
                                              std::shared_ptr<storage::audit_log>(std::move(*audit)), l, svc_cfg,
                                              system_clock_fn(), openssl_rng());
    if (auto r = svc->load(); !r) return r.error();
    return svc;
}

} // namespace certmate::app
