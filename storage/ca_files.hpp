// The CA on disk: certs/ca/{ca.crt, ca.key (0600, PKCS#8, encrypted when a passphrase is
// configured), ca_metadata.json}, the CRL state (certs/crl/crl_state.json) and the CA backup
// archive (a POSIX ustar file, 0600). Thread-safety: free functions; callers serialise writers.
#pragma once

#include "core/ca.hpp"
#include "core/ocsp.hpp"
#include "core/cert_repository.hpp"
#include "storage/layout.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace certmate::storage {

bool ca_exists(const layout& l);
// Writes key (first), certificate and metadata atomically. Refuses to overwrite an existing CA.
result<void> save_ca(const layout& l, const certificate_authority& ca, std::optional<std::string_view> passphrase);
result<std::shared_ptr<const certificate_authority>> load_ca(const layout& l,
                                                             std::optional<std::string_view> passphrase);

// True when `pem` is one encrypted private key (PKCS#8 or legacy PEM encryption) that does not
// load without a passphrase; a plain key carrying an "ENCRYPTED" marker, or any second block, is not.
bool key_pem_encrypted(std::string_view pem);
// With a passphrase configured the CA key is only ever on disk encrypted: a plain ca.key is
// rewritten encrypted with `passphrase` (atomically, 0600). True when it was rewritten, false
// when it already was encrypted.
result<bool> encrypt_ca_key_in_place(const layout& l, std::string_view passphrase);

result<crl_state> load_crl_state(const layout& l); // zero state when the file is absent
// `late`, when given, takes a directory fsync failure after the rename (see write_file_atomic).
result<void> save_crl_state(const layout& l, const crl_state& s, std::optional<error>* late = nullptr);

// The delegated OCSP responder's files: certs/ocsp/responder.crt, responder.key (0600). Issuing and
// rotating it is core's (ensure_ocsp_responder in core/cert_repository.hpp).
std::optional<std::pair<std::string, std::string>> load_ocsp_responder_files(const layout& l);
// The key first, so the certificate on disk always has its key.
result<void> save_ocsp_responder_files(const layout& l, std::string_view cert_pem, std::string_view key_pem);

// Files in a CA backup, relative to data_dir.
std::vector<std::string> ca_backup_members();
// With `passphrase`, a plain ca.key goes into the archive encrypted with it.
result<void> backup_ca(const layout& l, const fs::path& archive,
                       std::optional<std::string_view> passphrase = std::nullopt);
struct restore_report {
    std::string fingerprint_sha256;
    std::size_t files = 0;
    bool replaced = false;
    bool key_encrypted = false; // the archive's plain key was written encrypted with the passphrase
};
// Refuses (errc::ca_mismatch) to replace a different CA unless `force`; restoring the same CA is fine.
// The archive's key must match its certificate (checked with `passphrase` when the key is
// encrypted; without one an encrypted key is restored unchecked, and a warning logged). With
// `passphrase`, a plain key in the archive is written encrypted with it.
result<restore_report> restore_ca(const layout& l, const fs::path& archive, bool force,
                                  std::optional<std::string_view> passphrase = std::nullopt);

} // namespace certmate::storage
