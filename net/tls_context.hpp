// The TLS listener's OpenSSL context (docs/api.md "Listeners", RFC 8446): TLS 1.2 and 1.3 only, forward-secret AEAD
// cipher suites, the server certificate and key from tls.cert / tls.key, and client
// certificates verified against our CA when tls.client_auth asks for them. Kept out of the
// widely included headers: only the server's source sees Asio's SSL types.
// Thread-safety: a built context is shared read-only by the handshakes that use it; a reload
// builds a new one (connections keep the one they started with).
#pragma once

#include "core/errc.hpp"
#include "core/ossl.hpp"
#include "net/client_auth.hpp"
#include "net/options.hpp"

#include <memory>
#include <optional>

#include <openssl/ssl.h>

namespace boost::asio::ssl {
class context;
}

namespace certmate::net {

// A server context for `o`. `client_ca` is the certificate client certificates must chain to
// (borrowed; the context takes its own reference). errc::invalid_argument naming the file when
// the certificate, key or passphrase cannot be used.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const tls_options& o, X509* client_ca);

// The client certificate of a finished handshake, if one was presented and verified.
std::optional<client_certificate> verified_peer_certificate(const SSL* ssl);

} // namespace certmate::net
