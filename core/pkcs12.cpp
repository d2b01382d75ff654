#include "core/pkcs12.hpp"

#include "core/keys.hpp"

#include <string>

namespace certmate {

namespace {
// PBKDF2 iterations for the key/cert bags and the MAC.
constexpr int pkcs12_iterations = 10000;
} // namespace

result<std::string> build_pkcs12(std::string_view cert_pem, std::string_view key_pem, std::string_view ca_cert_pem,
                                 std::string_view password, std::string_view friendly_name) {
    if (password.size() < 8)
        return make_error(errc::invalid_argument, "the PKCS#12 password must have at least 8 characters", "password");
    if (password.find('\0') != std::string_view::npos)
        return make_error(errc::invalid_argument, "the PKCS#12 password must not contain NUL", "password");
    auto cert = load_cert_pem(cert_pem);
    if (!cert) return make_error(errc::invalid_argument, "the certificate does not parse", "certificate");
    auto key = load_private_key(key_pem);
    if (!key) return key.error();
    if (X509_check_private_key(cert->get(), key->get()) != 1)
        return ossl::fail(errc::invalid_argument, "the private key does not match the certificate");

    ossl::x509_stack chain(sk_X509_new_null());
    if (!chain) return ossl::fail(errc::crypto_failure, "cannot build the PKCS#12 chain");
    if (!ca_cert_pem.empty()) {
        auto ca = load_cert_pem(ca_cert_pem);
        if (!ca) return make_error(errc::invalid_argument, "the CA certificate does not parse", "ca_certificate");
        if (sk_X509_push(chain.get(), ca->get()) <= 0)
            return ossl::fail(errc::crypto_failure, "cannot build the PKCS#12 chain");
        ca->release(); // the stack owns it now
    }

    const std::string pass(password);
    const std::string name(friendly_name);
    // PBES2 (PBKDF2 + AES-256-CBC) for both the key bag and the certificate bag; MAC added below.
    ossl::pkcs12 p12(PKCS12_create_ex(pass.c_str(), name.empty() ? nullptr : name.c_str(), key->get(), cert->get(),
                                      chain.get(), NID_aes_256_cbc, NID_aes_256_cbc, pkcs12_iterations, -1, 0, nullptr,
                                      nullptr));
    if (!p12) return ossl::fail(errc::crypto_failure, "cannot build the PKCS#12 bundle");
    // RFC 7292 5: integrity by a password-based MAC; SHA-256 instead of the legacy SHA-1 default.
    if (PKCS12_set_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size()), nullptr, 0, pkcs12_iterations,
                       EVP_sha256()) != 1)
        return ossl::fail(errc::crypto_failure, "cannot add the PKCS#12 MAC");

    unsigned char* der = nullptr;
    int n = i2d_PKCS12(p12.get(), &der);
    if (n <= 0) return ossl::fail(errc::crypto_failure, "cannot encode the PKCS#12 bundle");
    ossl::openssl_string owned(reinterpret_cast<char*>(der));
    return std::string(owned.get(), static_cast<std::size_t>(n));
}

} // namespace certmate
