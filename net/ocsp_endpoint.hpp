// The RFC 6960 OCSP responder over HTTP (RFC 5019): the delegated signer, swapped whole and
// rotated before it expires; answers from the service's OCSP table without the core strand,
// signatures made on the pool, responses to requests without a nonce cached per serial.
// Thread-safety: every member is safe from any thread once load() has returned.
// Internal to net/.
#pragma once

#include "core/ocsp.hpp"
#include "net/http.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace certmate::net {

class core_access;
class metrics;

// An OCSPResponse ready to send. `cacheable`: a successful response without a nonce, which GET
// answers may let HTTP caches keep until nextUpdate (RFC 5019 6.2).
struct ocsp_answer {
    std::shared_ptr<const std::string> der;
    bool cacheable = false;
    time_point this_update{};
    time_point next_update{};
};

class ocsp_endpoint {
public:
    // A responder within this much of its notAfter is replaced.
    static constexpr std::chrono::hours renew_before{24 * 30};

    ocsp_endpoint(core_access& core, metrics& stats, std::chrono::seconds validity, std::chrono::seconds refresh_before)
        : core_(core), stats_(stats), validity_(validity), refresh_before_(refresh_before) {}

    // [before the server starts] Loads certs/ocsp/responder.{crt,key}, or issues and saves a new one.
    result<void> load();
    // Starts a rotation on the pool when the responder is due (and none runs); cheap otherwise.
    void rotate_if_due();
    std::shared_ptr<const ocsp_responder> responder() const { return responder_.load(); }

    // Answers one DER OCSPRequest: parsed on the caller's thread, statuses from the table,
    // cached responses returned at once, signatures made on the pool. Never an error: failures
    // are answered in the protocol (malformedRequest, unauthorized, internalError).
    asio::awaitable<ocsp_answer> answer(std::string_view der);
    // The unsigned malformedRequest answer (bytes that are not even base64).
    ocsp_answer malformed();

private:
    ocsp_answer error_answer(ocsp_response_status s);

    core_access& core_;
    metrics& stats_;
    const std::chrono::seconds validity_;
    const std::chrono::seconds refresh_before_;
    std::atomic<std::shared_ptr<const ocsp_responder>> responder_; // swapped whole
    std::atomic<bool> rotating_{false};
};

} // namespace certmate::net
