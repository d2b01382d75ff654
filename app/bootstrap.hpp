// From a config to a ready data dir and service: `certmate init` and the start of `serve`.
#pragma once

#include "app/config.hpp"
#include "core/service.hpp"
#include "storage/layout.hpp"

#include <memory>
#include <string>

namespace certmate::app {

struct init_report {
    bool created_ca = false;
    std::string ca_fingerprint;
    std::string admin_token; // empty unless created now
    std::filesystem::path admin_token_file;
    std::filesystem::path config_written; // starter config, when one was written
};

// Creates what is missing in the data dir: directories, the CA (encrypted when a passphrase is
// configured), an admin token (printed once by the caller, kept in admin.token, 0600) and a starter
// config holding its hash when `config_file` is empty and none exists. Idempotent.
result<init_report> init_data_dir(const config& cfg, const std::filesystem::path& config_file);

struct server_cert_report {
    std::filesystem::path cert_file, key_file;
    std::string serial_decimal;
    std::string fingerprint_sha256;
    time_point not_after{};
    std::vector<std::string> dns, ip;
};

// `certmate init --server-cert NAME...`: a TLS server certificate for the CA's own listener,
// issued by our CA (EKU serverAuth only; each name a SAN, IP addresses recognised, the rest DNS
// names; CN the first name; key ec-p256), written as <data_dir>/tls/server.crt (leaf, then the
// CA certificate) and server.key (0600; encrypted when tls.key_passphrase_file is set). Replaces
// earlier ones (SIGHUP makes the server use them). Audited as server_cert_issue.
result<server_cert_report> issue_server_cert(const config& cfg, const std::vector<std::string>& names,
                                             int validity_days = issuance_policy{}.default_validity_days);

// The audit signing key (Ed25519, PKCS#8 PEM, 0600) and its public half (0644) under
// certs/audit/ (docs/audit.md): created when missing; the public half rewritten when missing.
// True when the key was created now.
result<bool> ensure_audit_signing_key(const storage::layout& l);
result<ossl::pkey> load_audit_signing_key(const storage::layout& l);

// Opens the CA, audit log (signing checkpoints with the audit key) and store, and loads the index.
result<std::unique_ptr<cert_service>> open_service(const config& cfg);

// `-c FILE` if given, else <data_dir>/certmate.conf when it exists (data_dir from the overrides).
std::filesystem::path resolve_config_file(const std::filesystem::path& given,
                                          const std::vector<std::string>& overrides);

// Appends one audit line for a CLI operation (user "cli") to the audit chain of cfg's backend
// (the data dir's log, or the database's table for postgresql).
result<void> audit_cli_operation(const config& cfg, std::string operation, std::string resource_type,
                                 std::string resource_id, boost::json::object details);

// A new random bearer token (cm_ + 43 base64url characters).
std::string new_token();

// The line announcing a new admin token: the token itself only when `to_terminal` (stdout is a
// tty); otherwise only where it is (admin.token, 0600), so it never lands in a journal or CI log.
std::string admin_token_announcement(const init_report& rep, bool to_terminal);

} // namespace certmate::app
