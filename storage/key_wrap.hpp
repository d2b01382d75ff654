// Private keys at rest in the database (docs/postgresql.md "Keys at rest"): AES-256-GCM under a
// 32-byte key-encryption key (storage.key_encryption_key_file), a random 96-bit nonce per key
// (NIST SP 800-38D 8.2.2) and the owner's identifier as associated data, so a wrapped key moved
// to another row does not open. Layout: version (1 byte) | nonce (12) | ciphertext | tag (16).
// Thread-safety: const methods are safe from any thread.
#pragma once

#include "core/errc.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace certmate::storage {

class key_wrap {
public:
    static constexpr unsigned char version = 1;
    static constexpr std::size_t key_size = 32, nonce_size = 12, tag_size = 16;

    // Reads the key-encryption key: exactly 32 raw bytes, or 64 hex digits (one trailing newline
    // allowed). Refused when the file is not a regular file or is readable or writable by group or
    // others (it must be 0600 or 0400).
    static result<key_wrap> from_file(const std::filesystem::path& p);
    // From 32 raw bytes (tests, import).
    static result<key_wrap> from_key(std::string_view raw);

    key_wrap(const key_wrap&) = default;
    key_wrap& operator=(const key_wrap&) = default;
    ~key_wrap();

    // The wrapped form of `plain`, bound to `aad` (the identifier).
    result<std::string> seal(std::string_view plain, std::string_view aad) const;
    // The key again; errc::crypto_failure when the blob was altered, belongs to another `aad`, or
    // was sealed under another key-encryption key.
    result<std::string> open(std::string_view blob, std::string_view aad) const;

private:
    explicit key_wrap(std::string key) : key_(std::move(key)) {}
    std::string key_;
};

} // namespace certmate::storage
