#include "net/tls_context.hpp"

#include "core/keys.hpp"

#include <boost/asio/ssl/context.hpp>

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

namespace certmate::net {

namespace ssl = boost::asio::ssl;

namespace {

// RFC 9325 4.2: "implementation and deployment of the following cipher suites is RECOMMENDED:
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
// TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"; plus
// ChaCha20-Poly1305 (RFC 7905) for clients without AES hardware. TLS 1.3 keeps OpenSSL's
// suites, all of them AEAD.
constexpr const char* tls12_cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Sessions resumed from tickets keep the client certificate; the context id ties them to us.
constexpr unsigned char session_id_context[] = "certmate";

error config_error(const std::string& key, const std::string& what) {
    const std::string queue = ossl::drain_errors();
    return make_error(errc::invalid_argument, key + ": " + what + (queue.empty() ? "" : " (" + queue + ")"), key);
}

std::optional<std::string> read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

result<std::shared_ptr<ssl::context>> make_tls_context(const tls_options& o, X509* client_ca) {
    ERR_clear_error();
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* h = ctx->native_handle();

    // RFC 8996 5: "TLS 1.1 MUST NOT be used. Negotiation of TLS 1.1 from any version of TLS MUST
    // NOT be permitted." (section 4 says the same of TLS 1.0).
    if (SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION) != 1)
        return config_error("server.https_listen", "cannot restrict the TLS versions");
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(h, tls12_cipher_list) != 1)
        return config_error("server.https_listen", "cannot set the cipher list");
    SSL_CTX_set_session_id_context(h, session_id_context, sizeof session_id_context - 1);

    if (SSL_CTX_use_certificate_chain_file(h, o.cert_file.c_str()) != 1)
        return config_error("tls.cert", "cannot load a PEM certificate (chain) from " + o.cert_file.string());

    std::optional<std::string> passphrase;
    if (!o.key_passphrase_file.empty()) {
        auto text = read_all(o.key_passphrase_file);
        if (!text) return config_error("tls.key_passphrase_file", "cannot read " + o.key_passphrase_file.string());
        passphrase = text->substr(0, text->find_first_of("\r\n"));
        if (passphrase->empty())
            return config_error("tls.key_passphrase_file", o.key_passphrase_file.string() + " is empty");
    }
    const auto key_pem = read_all(o.key_file);
    if (!key_pem) return config_error("tls.key", "cannot read " + o.key_file.string());
    auto key = load_private_key(*key_pem, passphrase);
    if (!key) {
        if (key.error().code == errc::bad_passphrase)
            return config_error(passphrase ? "tls.key_passphrase_file" : "tls.key",
                                o.key_file.string() + ": " + key.error().message);
        return config_error("tls.key", o.key_file.string() + ": " + key.error().message);
    }
    if (SSL_CTX_use_PrivateKey(h, key->get()) != 1 || SSL_CTX_check_private_key(h) != 1)
        return config_error("tls.key",
                            o.key_file.string() + " does not match the certificate in " + o.cert_file.string());

    if (o.client_auth != client_auth_mode::none) {
        if (!client_ca) return config_error("tls.client_auth", "no CA certificate to verify clients against");
        // Our CA is the only trust anchor: no system roots are loaded into this store.
        if (X509_STORE_add_cert(SSL_CTX_get_cert_store(h), client_ca) != 1)
            return config_error("tls.client_auth", "cannot trust the CA certificate");
        // RFC 8446 4.3.2 / RFC 5246 7.4.4: the CertificateRequest names the acceptable authorities.
        if (SSL_CTX_add_client_CA(h, client_ca) != 1) return config_error("tls.client_auth", "cannot name the CA");
        int mode = SSL_VERIFY_PEER;
        if (o.client_auth == client_auth_mode::require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(h, mode, nullptr);
        SSL_CTX_set_verify_depth(h, 2);
    }
    ERR_clear_error(); // what a successful load left behind must not surface in a later handshake
    return ctx;
}

std::optional<client_certificate> verified_peer_certificate(const SSL* ssl) {
    X509* c = SSL_get0_peer_certificate(ssl); // borrowed, valid while the SSL lives
    if (!c || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
    auto serial = serial_to_decimal(X509_get0_serialNumber(c));
    if (!serial) {
        // Fail closed: a certificate whose serial cannot be read authenticates no one.
        spdlog::error("cannot read a client certificate's serial number: {}", serial.error().message);
        return std::nullopt;
    }
    return client_certificate{std::move(*serial), from_asn1_time(X509_get0_notBefore(c)),
                              from_asn1_time(X509_get0_notAfter(c))};
}

} // namespace certmate::net
