// Keys and certificates to and from bytes; the facts about them the metadata records.
// Thread-safety: free functions, safe from any thread.
#pragma once

#include "core/cert_record.hpp"
#include "core/ossl.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace certmate {

// Generates a fresh private key. RSA sizes 2048/3072/4096, EC P-256/P-384, Ed25519.
result<ossl::pkey> generate_key(key_type type);

// PKCS#8 PEM; encrypted with AES-256-CBC (PBKDF2) when `passphrase` is given.
result<std::string> private_key_to_pem(EVP_PKEY* key, std::optional<std::string_view> passphrase = std::nullopt);
// Loads a PEM private key (PKCS#8 or traditional), decrypting it with `passphrase` if needed;
// errc::bad_passphrase when it is encrypted and the passphrase is missing or wrong.
result<ossl::pkey> load_private_key(std::string_view pem, std::optional<std::string_view> passphrase = std::nullopt);
// True when `pem` holds exactly one PEM block and it is a private key that no empty or missing
// passphrase opens: encrypted in fact, not merely carrying an "ENCRYPTED" marker somewhere.
bool private_key_pem_encrypted(std::string_view pem);
// SubjectPublicKeyInfo PEM; errc::crypto_failure for a null or unencodable key.
result<std::string> public_key_to_pem(EVP_PKEY* key);

// "rsa2048", "rsa3072", "rsa4096" (other RSA sizes: "rsa<bits>"), "ec-p256", "ec-p384", "ed25519".
std::string describe_key(EVP_PKEY* key);
// Allowed for client certificates: RSA >= 2048, EC P-256/P-384 as named curves, Ed25519.
// errc::unsupported_key otherwise (also for EC keys with explicit parameters).
result<void> check_allowed_key(EVP_PKEY* key);

// errc::crypto_failure for a null or unencodable certificate (never an empty string).
result<std::string> cert_to_pem(X509* cert);
result<std::string> cert_to_der(X509* cert);
result<ossl::x509> load_cert_pem(std::string_view pem);
result<ossl::x509> load_cert_der(std::string_view der);

// SHA-256 of the DER, hex, lower case, no separators; errc::crypto_failure for a null certificate.
result<std::string> fingerprint_sha256(X509* cert);
// errc::crypto_failure for a null or unconvertible serial.
result<std::string> serial_to_decimal(const ASN1_INTEGER* serial);
// Parses decimal, or hex with a 0x prefix; nullopt for anything else.
std::optional<std::string> normalize_serial(std::string_view text);
result<ossl::asn1_integer> decimal_to_asn1_integer(std::string_view decimal);
// A random positive 128-bit serial as a decimal string (top bit cleared, never zero).
result<std::string> random_serial(const rng_fn& rng);

time_point from_asn1_time(const ASN1_TIME* t);
ossl::asn1_time to_asn1_time(time_point t);

// Subject DN fields and SANs read back from a certificate or request (absent ones empty);
// errc::invalid_argument when one present does not convert to UTF-8, never an empty field.
result<subject_fields> read_subject(const X509_NAME* name);
result<subject_alt_names> read_sans(const GENERAL_NAMES* names);

// errc::crypto_failure if the digest cannot be computed (no SHA-256 provider).
result<std::string> sha256_hex(std::string_view data);

// The names a TLS client may match a certificate to (RFC 6125 6.4: DNS-ID, IP SAN, and the CN as
// the legacy fallback): the subject CN, the DNS and IP SANs of the first certificate in `pem`.
result<std::vector<std::string>> certificate_host_names(std::string_view pem);

// Shared by the CSR, CA and issuance code.
// A subject DN (C, ST, L, O, OU, CN, emailAddress; empty fields left out) in UTF-8, within the
// RFC 5280 upper bounds; errc::invalid_argument naming the field ("common_name", "country", ...).
result<ossl::x509_name> build_name(const subject_fields& subject);
// SANs (DNS, email, IP, URI) as GENERAL_NAMES; errc::invalid_argument, field "subject_alt_names",
// for a malformed entry (IP that does not parse, email without '@', URI without a scheme, ...).
result<ossl::general_names> build_general_names(const subject_alt_names& sans);
// The digest to sign with under `key`: SHA-384 for P-384, nullptr for Ed25519, SHA-256 otherwise.
const EVP_MD* signing_digest(EVP_PKEY* key);

// Adds the extension `nid` written in OpenSSL's config syntax ("critical,CA:FALSE") to `cert`;
// only for fixed profile strings, never for caller input.
result<void> add_config_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value);
// An unsigned v3 certificate with its serial, issuer, subject, validity and public key set, and
// the context its extensions are made in; the extensions and the signature are the caller's.
struct v3_draft {
    ossl::x509 cert;
    X509V3_CTX ctx; // issuer and subject certificates set (pointers into cert / the issuer)
};
// `issuer` is the CA's certificate, or null for a self-signed one (issuer = subject).
// `what` is the error message if OpenSSL fails.
result<v3_draft> new_v3_certificate(ASN1_INTEGER* serial, X509* issuer, const X509_NAME* subject, time_point not_before,
                                    time_point not_after, EVP_PKEY* key, const std::string& what);
// A GeneralName holding an IA5String (RFC 5280 4.2.1.6: dNSName, rfc822Name,
// uniformResourceIdentifier); `what` is the error message if OpenSSL fails.
result<ossl::general_name> ia5_general_name(int type, std::string_view value,
                                            const char* what = "cannot encode a subject alternative name");

// ---- signatures over raw bytes (the audit log's checkpoints and exports, docs/audit.md) ----
// A public key from PEM (SubjectPublicKeyInfo, as public_key_to_pem writes it).
result<ossl::pkey> load_public_key(std::string_view pem);
// The signature of `data` with no pre-hash (Ed25519 per RFC 8032 5.1.6), what
// `openssl pkeyutl -sign -rawin` makes.
result<std::string> sign_raw(EVP_PKEY* key, std::string_view data);
// Whether `sig` is `key`'s signature of `data` (as sign_raw makes it).
bool verify_raw(EVP_PKEY* key, std::string_view data, std::string_view sig);
// SHA-256 (hex) of the key's SubjectPublicKeyInfo DER: names a key in audit entries.
// errc::crypto_failure for a null or unencodable key.
result<std::string> public_key_id(EVP_PKEY* key);
// Standard base64 (RFC 4648 4) with padding; decode refuses anything else.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

} // namespace certmate
