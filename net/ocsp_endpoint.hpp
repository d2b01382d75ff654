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
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

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

    // [any thread, non-blocking] The server's fast path: the cached response for request bytes
    // answer() has already read as one CertID of our CA without a nonce, counted like answer()
    // counts a hit; nullopt for anything else (never seen, or no fresh cached response: a
    // revocation drops them from the OCSP table at once), which answer() then handles.
    std::optional<ocsp_answer> cached_answer(std::string_view der);

    // Request bytes remembered for cached_answer(): a bound on memory (about 250 bytes each at 30,000);
    // past it the set starts afresh.
    static constexpr std::size_t max_known_requests = 65536;
    // Longer request bytes are not remembered (the routed path answers them from the same cache):
    // an unsigned one-CertID request is 70-200 bytes, but valid DER may reach the 64 KiB a request
    // may have (a private extension), and 65,536 of those would hold 4 GiB.
    static constexpr std::size_t max_known_request_bytes = 512;

private:
    ocsp_answer error_answer(ocsp_response_status s);
    void remember(std::string_view der, const ocsp_query& q);

    // What request bytes ask, as answer() read them: a pure function of the bytes (and the CA),
    // so an entry is never stale; the status and the signed response stay the OCSP table's.
    struct known_request {
        std::string der;    // the request bytes (two requests whose hashes collide: the last one kept)
        std::string serial; // decimal
        int hash_nid = 0;
    };

    core_access& core_;
    metrics& stats_;
    const std::chrono::seconds validity_;
    const std::chrono::seconds refresh_before_;
    std::atomic<std::shared_ptr<const ocsp_responder>> responder_; // swapped whole
    std::atomic<bool> rotating_{false};
    std::shared_mutex known_mu_;
    // [known_mu_] By the hash of the request bytes: an integer key, so a lookup walks no node's
    // bytes but the one it compares (std::string keys with a custom hash are not hash-cached,
    // and at 30,000 entries that walk showed at 6% of the fast path's CPU).
    std::unordered_map<std::size_t, known_request> known_;
};

// The HTTP/1.1 keep-alive answer the routed path makes for a cached `a` (POST /ocsp, or GET
// /ocsp/... when `get`), as bytes: the status line and the same header fields in the same order
// (net/pipeline.cpp finish_response, Content-Length last), up to the blank line, into `out`.
// The body is *a.der. test_http_ocsp compares the two paths' answers byte for byte.
void ocsp_fast_head(std::string& out, const ocsp_answer& a, bool get, time_point now, std::string_view request_id);

} // namespace certmate::net
