// The storage layout under data_dir (docs/architecture.md "Storage layout"). Only validated identifiers reach here.
#pragma once

#include "core/cert_record.hpp"

#include <filesystem>

namespace certmate::storage {

namespace fs = std::filesystem;

struct layout {
    fs::path data_dir;

    fs::path ca_dir() const { return data_dir / "certs" / "ca"; }
    fs::path ca_cert() const { return ca_dir() / "ca.crt"; }
    fs::path ca_key() const { return ca_dir() / "ca.key"; }
    fs::path ca_metadata() const { return ca_dir() / "ca_metadata.json"; }
    fs::path crl_pem() const { return ca_dir() / "crl.pem"; }
    fs::path crl_dir() const { return data_dir / "certs" / "crl"; }
    fs::path crl_der() const { return crl_dir() / "crl.der"; }
    fs::path crl_state() const { return crl_dir() / "crl_state.json"; }
    fs::path ocsp_dir() const { return data_dir / "certs" / "ocsp"; }
    fs::path client_dir() const { return data_dir / "certs" / "client"; }
    fs::path usage_dir(cert_usage u) const { return client_dir() / std::string(to_string(u)); }
    fs::path cert_dir(cert_usage u, const std::string& id) const { return usage_dir(u) / id; }
    fs::path audit_log() const { return data_dir / "logs" / "audit" / "certificate_audit.log"; }
    // The Ed25519 key that signs audit checkpoints and exports (docs/audit.md): key 0600, public half 0644.
    fs::path audit_key_dir() const { return data_dir / "certs" / "audit"; }
    fs::path audit_signing_key() const { return audit_key_dir() / "audit_signing.key"; }
    fs::path audit_signing_pub() const { return audit_key_dir() / "audit_signing.pub"; }
    fs::path state_dir() const { return data_dir / "state"; }
    // Every certificate record, for a fast start (docs/architecture.md "Start-up snapshot").
    fs::path index_snapshot() const { return state_dir() / "index.snapshot"; }
    fs::path admin_token() const { return data_dir / "admin.token"; }
    // The TLS listener's certificate from `certmate init --server-cert` (not a client certificate).
    fs::path tls_dir() const { return data_dir / "tls"; }
    fs::path tls_cert() const { return tls_dir() / "server.crt"; }
    fs::path tls_key() const { return tls_dir() / "server.key"; }
};

} // namespace certmate::storage
