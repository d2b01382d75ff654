// POST /ocsp and GET /ocsp/<base64>: RFC 6960 OCSP answered from the OCSP table (README.md "Revocation: OCSP and CRL").
#include "net/ocsp_endpoint.hpp"

#include "core/keys.hpp"
#include "net/api.hpp"

#include <boost/asio/post.hpp>

#include <ctime>
#include <mutex>

namespace certmate::net {

namespace {

using state = ocsp_single_answer::state;

ocsp_outcome outcome_of(state s) {
    switch (s) {
    case state::good: return ocsp_outcome::good;
    case state::revoked: return ocsp_outcome::revoked;
    case state::unknown: break;
    }
    return ocsp_outcome::unknown;
}

// The unsigned error responses never change: encoded once.
std::shared_ptr<const std::string> error_der(ocsp_response_status s) {
    static const auto malformed =
        std::make_shared<const std::string>(ocsp_error_response(ocsp_response_status::malformed_request));
    static const auto unauthorized =
        std::make_shared<const std::string>(ocsp_error_response(ocsp_response_status::unauthorized));
    static const auto internal =
        std::make_shared<const std::string>(ocsp_error_response(ocsp_response_status::internal_error));
    switch (s) {
    case ocsp_response_status::malformed_request: return malformed;
    case ocsp_response_status::unauthorized: return unauthorized;
    default: return internal;
    }
}

// IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT", independent of the locale.
std::string http_date(time_point t) {
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::string max_age_value(const ocsp_answer& a, time_point now) {
    // RFC 5019 6.2: "max-age=<n> -where n is a time value later than thisUpdate but earlier than nextUpdate."
    const auto max_age =
        std::max<std::int64_t>(0, std::chrono::floor<std::chrono::seconds>(a.next_update - now).count());
    return "max-age=" + std::to_string(max_age) + ", public, no-transform, must-revalidate";
}

// The answer as HTTP: always 200 application/ocsp-response (RFC 6960 A.1); on GET, a cacheable
// answer carries the RFC 5019 6.2 headers.
response to_http(const ocsp_answer& a, bool get, time_point now) {
    auto res = bytes_response(http::status::ok, "application/ocsp-response", *a.der);
    if (!get || !a.cacheable) return res;
    res.set(http::field::cache_control, max_age_value(a, now));
    res.set(http::field::date, http_date(now));
    // RFC 5019 6.2: Last-Modified "will be the same as the thisUpdate timestamp", Expires "the same
    // as the nextUpdate timestamp in the OCSP response itself".
    res.set(http::field::last_modified, http_date(a.this_update));
    res.set(http::field::expires, http_date(a.next_update));
    // The ETag is optional (RFC 5019 6.2 "MAY"): left out, with the cause logged, if it cannot be made.
    if (auto tag = sha256_hex(*a.der))
        res.set(http::field::etag, "\"" + *tag + "\"");
    else
        spdlog::error("OCSP response sent without an ETag: {}", tag.error().message);
    return res;
}

asio::awaitable<response> ocsp_post(call& c) {
    // RFC 6960 A.1: "Content-Type: application/ocsp-request".
    if (!media_type_is(c.req[http::field::content_type], "application/ocsp-request"))
        co_return error_json(http::status::unsupported_media_type, "UNSUPPORTED_MEDIA_TYPE",
                             "Content-Type must be application/ocsp-request");
    const auto a = co_await c.api.ocsp.answer(c.req.body());
    co_return to_http(a, false, c.core().view().now());
}

asio::awaitable<response> ocsp_get(call& c) {
    // RFC 6960 A.1: "GET {url}/{url-encoding of base-64 encoding of the DER encoding of the OCSPRequest}".
    const auto unescaped = percent_decode(c.param("req"));
    const auto der = unescaped ? decode_ocsp_get_path(*unescaped) : std::nullopt;
    ocsp_answer a;
    if (der)
        a = co_await c.api.ocsp.answer(*der);
    else
        a = c.api.ocsp.malformed();
    co_return to_http(a, true, c.core().view().now());
}

} // namespace

result<void> ocsp_endpoint::load() {
    auto& svc = core_.view();
    auto r = svc.ensure_ocsp_responder(renew_before);
    if (!r) return r.error();
    responder_.store(*r);
    spdlog::info("OCSP responder certificate valid until {}", format_time((*r)->not_after));
    return {};
}

void ocsp_endpoint::rotate_if_due() {
    auto& svc = core_.view();
    const auto cur = responder();
    if (cur && svc.now() < cur->not_after - renew_before) return;
    // A responder never outlives the CA: once it ends with the CA, a new one would be no better.
    if (cur && cur->not_after >= svc.ca().not_after()) return;
    if (rotating_.exchange(true)) return;
    asio::post(core_.pool(), [this] {
        auto& svc = core_.view();
        auto r = svc.ensure_ocsp_responder(renew_before);
        if (r) {
            responder_.store(*r);
            // Responses signed by the old responder stay valid, but new ones should name the new signer.
            svc.ocsp_statuses()->clear_cache();
            spdlog::info("OCSP responder rotated; the new certificate is valid until {}", format_time((*r)->not_after));
        } else {
            spdlog::error("cannot rotate the OCSP responder (retried at the next check): {}", r.error().message);
        }
        rotating_ = false;
    });
}

ocsp_answer ocsp_endpoint::error_answer(ocsp_response_status s) {
    stats_.ocsp_answered(s == ocsp_response_status::malformed_request ? ocsp_outcome::malformed
                         : s == ocsp_response_status::unauthorized    ? ocsp_outcome::unauthorized
                                                                      : ocsp_outcome::internal_error);
    return {error_der(s)};
}

ocsp_answer ocsp_endpoint::malformed() { return error_answer(ocsp_response_status::malformed_request); }

asio::awaitable<ocsp_answer> ocsp_endpoint::answer(std::string_view der) {
    auto& svc = core_.view();
    auto req = parse_ocsp_request(der, svc.ca());
    if (!req) co_return malformed();
    for (const auto& q : req->queries) {
        // RFC 6960 2.3: "The "unauthorized" response is returned in cases where the client is not
        // authorized to make this query to this server or the server is not capable of responding
        // authoritatively".
        if (!q.our_issuer) co_return error_answer(ocsp_response_status::unauthorized);
    }

    // Without a nonce, one CertID: the same signed bytes serve every client until the status changes
    // or nextUpdate comes near. A nonce asks for a fresh response echoing it (RFC 8954).
    // The cache is looked up first: a hit needs nothing else from the table.
    const auto table = svc.ocsp_statuses();
    const bool cacheable = !req->has_nonce && req->queries.size() == 1;
    const auto now = std::chrono::floor<std::chrono::seconds>(svc.now());
    if (cacheable) {
        const auto& q = req->queries.front();
        remember(der, q); // the next request of these bytes can take the server's fast path
        if (auto hit = table->cached(q.serial_decimal, q.hash_nid, now, refresh_before_)) {
            stats_.ocsp_cache(true);
            stats_.ocsp_answered(outcome_of(hit->status));
            co_return ocsp_answer{std::move(hit->der), true, hit->this_update, hit->next_update};
        }
        stats_.ocsp_cache(false);
    }

    std::vector<ocsp_single_answer> answers;
    std::uint64_t generation = 0; // of the last CertID's status: the cache's, when there is one CertID
    for (const auto& q : req->queries) {
        auto look = table->get(q.serial_decimal);
        answers.push_back(look.answer.value_or(ocsp_single_answer{})); // never issued: unknown
        generation = look.generation;
    }
    auto count = [&] {
        for (const auto& a : answers) stats_.ocsp_answered(outcome_of(a.status));
    };

    const auto signer = responder();
    if (!signer) co_return error_answer(ocsp_response_status::internal_error);
    const auto next = now + validity_;
    auto sign = [&] { return build_ocsp_response(*signer, req->der, answers, now, next); };
    auto signed_der = co_await core_.in_pool(sign);
    if (!signed_der) {
        spdlog::error("cannot sign an OCSP response: {}", signed_der.error().message);
        co_return error_answer(ocsp_response_status::internal_error);
    }
    auto out = std::make_shared<const std::string>(std::move(*signed_der));
    if (cacheable) {
        const auto& q = req->queries.front();
        // Ignored when the status changed while this was signed: a stale answer is never stored.
        table->cache_response(q.serial_decimal, q.hash_nid, generation, {out, now, next});
    }
    count();
    co_return ocsp_answer{std::move(out), !req->has_nonce, now, next};
}

void ocsp_fast_head(std::string& out, const ocsp_answer& a, bool get, time_point now, std::string_view request_id) {
    // to_http, then finish_response (X-Request-Id, X-CertMate-API-Version, Server, Cache-Control
    // unless set, X-Content-Type-Options), then prepare_payload (Content-Length); HTTP/1.1
    // keep-alive sends no Connection field.
    out.assign("HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n");
    if (get && a.cacheable) {
        out += "Cache-Control: ";
        out += max_age_value(a, now);
        out += "\r\nDate: ";
        out += http_date(now);
        out += "\r\nLast-Modified: ";
        out += http_date(a.this_update);
        out += "\r\nExpires: ";
        out += http_date(a.next_update);
        out += "\r\n";
        if (auto tag = sha256_hex(*a.der)) {
            out += "ETag: \"";
            out += *tag;
            out += "\"\r\n";
        } else {
            spdlog::error("OCSP response sent without an ETag: {}", tag.error().message);
        }
    }
    out += "X-Request-Id: ";
    out += request_id;
    out += "\r\nX-CertMate-API-Version: ";
    out += api_version;
    out += "\r\nServer: certmate\r\n";
    if (!get || !a.cacheable) out += "Cache-Control: no-store\r\n";
    out += "X-Content-Type-Options: nosniff\r\nContent-Length: ";
    out += std::to_string(a.der->size());
    out += "\r\n\r\n";
}

std::optional<ocsp_answer> ocsp_endpoint::cached_answer(std::string_view der) {
    auto& svc = core_.view();
    const auto now = std::chrono::floor<std::chrono::seconds>(svc.now());
    const auto table = svc.ocsp_statuses();
    std::optional<ocsp_table::cached_response> hit;
    {
        std::shared_lock lock(known_mu_); // held for the lookup: the serial is read in place
        const auto it = known_.find(std::hash<std::string_view>{}(der));
        if (it == known_.end() || it->second.der != der) return std::nullopt;
        hit = table->cached(it->second.serial, it->second.hash_nid, now, refresh_before_);
    }
    if (!hit) return std::nullopt;
    stats_.ocsp_cache(true);
    stats_.ocsp_answered(outcome_of(hit->status));
    return ocsp_answer{std::move(hit->der), true, hit->this_update, hit->next_update};
}

void ocsp_endpoint::remember(std::string_view der, const ocsp_query& q) {
    if (der.size() > max_known_request_bytes) return;
    const std::size_t key = std::hash<std::string_view>{}(der);
    {
        std::shared_lock lock(known_mu_);
        if (const auto it = known_.find(key); it != known_.end() && it->second.der == der) return;
    }
    std::unique_lock lock(known_mu_);
    if (known_.size() >= max_known_requests) known_.clear(); // many distinct requests: start afresh
    known_.insert_or_assign(key, known_request{std::string(der), q.serial_decimal, q.hash_nid});
}

void add_ocsp_routes(router& r) {
    constexpr auto pub = std::nullopt;
    r.add({http::verb::post, "/ocsp", pub, rate_class::ocsp, body_kind::raw, true, ocsp_post});
    // The base64 may hold '/': the tail takes the rest of the path as sent.
    r.add({http::verb::get, "/ocsp/{*req}", pub, rate_class::ocsp, body_kind::none, true, ocsp_get});
}

} // namespace certmate::net
