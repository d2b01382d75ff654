// The request pipeline: everything a request goes through before and after its handler.
#include "core/encoding.hpp"
#include "net/api.hpp"
#include "net/client_auth.hpp"
#include "net/target.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace certmate::net {

namespace json = boost::json;

namespace {

bool sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') return false;
    return true;
}

bool is_json_content_type(std::string_view ct) { return media_type_is(ct, "application/json"); }

response rate_limited_response(const rate_decision& d) {
    auto body = error_body(http::status::too_many_requests, errc_name(errc::rate_limited),
                           "Too many requests. Please try again later.");
    body["error"] = "Rate limit exceeded"; // the seed's text, not the reason phrase
    body["retry_after"] = d.retry_after.count();
    auto res = json_response(http::status::too_many_requests, body);
    res.set(http::field::retry_after, std::to_string(d.retry_after.count()));
    return res;
}

response method_not_allowed(const std::vector<http::verb>& allowed) {
    auto res =
        error_json(http::status::method_not_allowed, "METHOD_NOT_ALLOWED", "method not allowed on this resource");
    std::string allow;
    for (auto v : allowed) {
        if (!allow.empty()) allow += ", ";
        allow += std::string(http::to_string(v));
    }
    res.set(http::field::allow, allow);
    return res;
}

// Writes a `denied` entry for `METHOD resource` off the request path (the fsync runs on the pool).
void post_denial(api_state& api, const principal& who, const request& req, std::string_view resource,
                 boost::json::object details) {
    audit_entry e;
    e.operation = "denied";
    e.resource_type = "endpoint";
    e.resource_id = std::string(http::to_string(req.method())) + " " + std::string(resource);
    e.status = "denied";
    e.user = who.user;
    e.ip_address = who.ip;
    e.actor = actor_json(who);
    e.details = std::move(details);
    asio::post(api.core.pool(), [&svc = api.core.view(), e = std::move(e)] { svc.audit(e); });
}

// Audits a denied request, at most one line per client and minute.
void audit_denial(api_state& api, const principal& who, const request& req, std::string_view route_label,
                  std::string_view reason) {
    std::uint64_t suppressed = 0;
    if (!api.denials.admit(denial_client_key(who.ip, who.user), std::chrono::steady_clock::now(), suppressed)) return;
    post_denial(api, who, req, route_label, {{"reason", std::string(reason)}, {"suppressed_since_last", suppressed}});
}

// Audits a request that was authenticated and routed but refused by policy (a role ceiling, a
// serverAuth rule): each one, not aggregated, since these are attempts to gain a privilege.
void audit_policy_denial(api_state& api, const principal& who, const request& req, std::string_view path,
                         const response& res) {
    std::error_code ec;
    auto body = json::parse(res.body(), ec);
    std::string why = "forbidden";
    if (!ec && body.is_object())
        if (const auto* m = body.get_object().if_contains("message"); m && m->is_string()) why = m->get_string();
    post_denial(api, who, req, path, {{"reason", "policy"}, {"message", why}});
}

// Whether an unsafe request (not GET/HEAD/OPTIONS) comes from a page of another origin, by the
// browser's Sec-Fetch-Site (Fetch Metadata) or Origin (RFC 6454 7) against Host. A client
// certificate is ambient, like a cookie: a browser presents it to this server whichever page
// asks, and a "simple" request (no body, no Content-Type, mode no-cors) needs no preflight.
// Clients that are not browsers send neither header and are not affected.
bool cross_site_write(const request& req) {
    const auto m = req.method();
    if (m == http::verb::get || m == http::verb::head || m == http::verb::options) return false;
    if (auto site = req["Sec-Fetch-Site"]; !site.empty()) return site != "same-origin" && site != "none";
    const std::string_view origin = req[http::field::origin];
    if (origin.empty()) return false;
    const auto scheme_end = origin.find("://");
    if (scheme_end == std::string_view::npos) return true; // "null" (a sandboxed or opaque origin)
    const auto authority = origin.substr(scheme_end + 3);
    const std::string_view host = req[http::field::host];
    return authority.size() != host.size() ||
           !std::equal(authority.begin(), authority.end(), host.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
}

// The principal a request acts as: what authenticated it and with which role.
principal principal_of(const caller& auth, const peer_info& peer) {
    principal who;
    who.user = auth.user;
    who.ip = peer.ip;
    if (!auth.ident) {
        who.actor = principal::kind::anonymous;
        who.role = api_role::viewer;
        return who;
    }
    who.role = auth.ident->role;
    if (auth.by_certificate) {
        who.actor = principal::kind::certificate;
        who.cert_serial = peer.cert ? peer.cert->serial_decimal : std::string();
    } else {
        who.actor = principal::kind::token;
    }
    return who;
}

} // namespace

// 24 hex digits, unique in practice: each thread draws 12 random bytes once and then adds a
// counter to their low 8, so a request costs no call into the DRBG (it showed in the OCSP profile).
// Request ids correlate logs; they are not secrets.
std::string new_request_id() {
    thread_local unsigned char b[12];
    thread_local std::uint64_t n = 0;
    thread_local bool seeded = false;
    if (!seeded) {
        if (RAND_bytes(b, sizeof b) != 1) {
            static std::atomic<std::uint64_t> counter{0};
            return "req-" + std::to_string(++counter);
        }
        std::memcpy(&n, b + 4, sizeof n);
        seeded = true;
    }
    ++n;
    std::memcpy(b + 4, &n, sizeof n);
    return hex_encode(b);
}

void finish_response(response& res, const request* req, std::string_view request_id) {
    res.set("X-Request-Id", request_id);
    res.set("X-CertMate-API-Version", api_version);
    res.set(http::field::server, "certmate");
    if (res.find(http::field::cache_control) == res.end()) res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    if (req) res.version(req->version());
}

std::size_t body_limit_for(api_state& api, const request& req, const peer_info& peer) {
    const auto& opts = api.opts;
    if (opts.batch_body_limit <= opts.body_limit) return opts.body_limit;
    const std::string_view target = req.target();
    // The batch routes' first segment is "api" (the router skips empty segments and decodes
    // escapes): another literal one cannot be a batch route, and needs no routing pass here.
    {
        auto first = target.substr(std::min(target.size(), target.find_first_not_of('/')));
        first = first.substr(0, first.find_first_of("/?"));
        if (first != "api" && first.find('%') == std::string_view::npos) return opts.body_limit;
    }
    const auto m = api.routes.find(req.method(), target.substr(0, target.find('?')));
    const route* rt = m.found;
    if (!rt || !rt->role || (!peer.tls && !opts.api_on_http && !rt->protocol)) return opts.body_limit;
    if (rt->pattern != "/api/client-certs/batch" && rt->pattern != "/api/client-certs/batch/revoke")
        return opts.body_limit;
    auto& svc = api.core.view();
    const caller auth = authenticate(peer, req[http::field::authorization], *api.token_snapshot(), *svc.ocsp_statuses(),
                                     *svc.serial_owners(), svc.now());
    if (!auth.ident || static_cast<int>(auth.ident->role) < static_cast<int>(*rt->role)) return opts.body_limit;
    return opts.batch_body_limit;
}

bool fast_answer(api_state& api, const request& req, const peer_info& peer, std::string& head,
                 std::shared_ptr<const std::string>& body) {
    const auto started = std::chrono::steady_clock::now();
    const auto method = req.method();
    const bool get = method == http::verb::get;
    if (!get && method != http::verb::post) return false;
    // dispatch's answer would carry a Connection field, RateLimit-* fields, or a log line; or it
    // would authenticate a caller (a denial to audit, another rate-limit key).
    if (req.version() != 11 || !req.keep_alive()) return false;
    if (peer.cert || req.find(http::field::authorization) != req.end()) return false;
    if (!api.limiter.unlimited(rate_class::ocsp) || api.opts.shared_buckets) return false;
    if (spdlog::should_log(spdlog::level::debug)) return false;

    const std::string_view target = req.target();
    std::optional<std::string> from_path;
    std::string_view der;
    if (get) {
        // The route's tail as the router would take it: what follows "/ocsp/", no query.
        constexpr std::string_view prefix = "/ocsp/";
        if (!target.starts_with(prefix) || target.size() == prefix.size() || target[prefix.size()] == '/' ||
            target.find('?') != std::string_view::npos)
            return false;
        const auto unescaped = percent_decode(target.substr(prefix.size()));
        if (unescaped) from_path = decode_ocsp_get_path(*unescaped);
        if (!from_path) return false;
        der = *from_path;
    } else {
        if (target != "/ocsp" || !media_type_is(req[http::field::content_type], "application/ocsp-request"))
            return false;
        der = req.body();
    }
    auto a = api.ocsp.cached_answer(der);
    if (!a) return false;

    const std::string_view given_id = req["X-Request-Id"];
    std::string fresh_id;
    if (!sane_request_id(given_id)) fresh_id = new_request_id();
    ocsp_fast_head(head, *a, get, api.core.view().now(), fresh_id.empty() ? given_id : std::string_view(fresh_id));
    body = std::move(a->der);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    api.stats.observe_fast(get ? fast_route::ocsp_get : fast_route::ocsp_post, seconds);
    return true;
}

asio::awaitable<response> dispatch(api_state& api, request& req, const peer_info& peer) {
    const auto started = std::chrono::steady_clock::now();
    const auto given_id = req["X-Request-Id"];
    const std::string request_id = sane_request_id(given_id) ? std::string(given_id) : new_request_id();

    const request_target target = parse_target(req.target());
    const std::string_view path = target.path;
    auto m = api.routes.find(req.method(), path);
    // Without server.api_on_http, plain HTTP serves the protocol endpoints only (docs/api.md "Listeners").
    if (m.found && !peer.tls && !api.opts.api_on_http && !m.found->protocol) m = {};
    const route* rt = m.found;
    const std::string route_label = m.any ? m.any->pattern : std::string("unmatched");

    // A client certificate is checked against the live revocation state on every request.
    auto& svc = api.core.view();
    const caller auth = authenticate(peer, req[http::field::authorization], *api.token_snapshot(), *svc.ocsp_statuses(),
                                     *svc.serial_owners(), svc.now());
    const std::optional<identity>& ident = auth.ident;
    const bool bad_credentials = auth.failure == auth_failure::invalid_token;
    const principal who = principal_of(auth, peer);
    const rate_class cls = rt ? rt->cls : rate_class::default_;
    const std::string rate_key = ident ? (auth.by_certificate ? "c:" : "t:") + ident->name : "ip:" + peer.ip;
    auto limit = api.limiter.check(rate_key, cls, started);
    // rate_limit.shared: the decision is the shared bucket's (the local one above only counts);
    // while the database is away the local bucket decides (docs/high-availability.md). A request
    // the local bucket refuses is refused without asking: the shared bucket has seen at least as
    // many takes, and a flood from one client does not hold worker threads on the database.
    if (const auto& shared = api.opts.shared_buckets; shared && limit.limited && limit.allowed) {
        auto take = [&shared, &rate_key, cls, per_minute = limit.limit]() {
            return shared->take(rate_key, cls, per_minute);
        };
        if (auto d = co_await api.core.in_pool(take)) limit = *d;
    }
    std::optional<api_role> required = rt ? rt->role : std::nullopt;

    response res;
    try {
        if (!limit.allowed) {
            api.stats.rate_limited(cls);
            res = rate_limited_response(limit);
        } else if (!rt && !target.valid) {
            res = error_response(errc::invalid_argument, "malformed request target", "target");
        } else if (!rt) {
            res =
                m.allowed.empty() ? error_response(errc::not_found, "no such resource") : method_not_allowed(m.allowed);
        } else if (required && cross_site_write(req)) {
            res = error_response(errc::forbidden, "a request from a page of another origin is refused");
            api.stats.denied("forbidden");
            audit_denial(api, who, req, route_label, "cross_site");
        } else if (required && !ident && auth.failure == auth_failure::certificate_without_role) {
            res = error_response(errc::forbidden, "this client certificate carries no api_role");
            api.stats.denied("forbidden");
            audit_denial(api, who, req, route_label, to_string(auth.failure));
        } else if (required && !ident) {
            std::string why = bad_credentials ? "invalid bearer token" : "a bearer token is required";
            if (auth.failure == auth_failure::certificate_refused)
                why = "client certificate " + std::string(to_string(*auth.cert)) + "; a bearer token is required";
            res = error_response(errc::unauthorized, why);
            res.set(http::field::www_authenticate, bad_credentials ? R"(Bearer realm="certmate", error="invalid_token")"
                                                                   : R"(Bearer realm="certmate")");
            api.stats.denied("unauthorized");
            audit_denial(api, who, req, route_label,
                         auth.cert ? "certificate_" + std::string(to_string(*auth.cert))
                                   : std::string(to_string(auth.failure)));
        } else if (required && static_cast<int>(ident->role) < static_cast<int>(*required)) {
            res = error_response(errc::forbidden,
                                 "this operation needs the " + std::string(to_string(*required)) + " role");
            api.stats.denied("forbidden");
            audit_denial(api, who, req, route_label, "role_too_low");
        } else if (auto ct = req[http::field::content_type];
                   expects_json(rt->body) && (ct.empty() ? !req.body().empty() : !is_json_content_type(ct))) {
            res = error_json(http::status::unsupported_media_type, "UNSUPPORTED_MEDIA_TYPE",
                             "Content-Type must be application/json");
        } else {
            // A token that is not ours on a public route (GET /api/session, the dashboard's sign-in)
            // is a failed sign-in all the same: audited like one on any other route.
            if (!required && bad_credentials) audit_denial(api, who, req, route_label, to_string(auth.failure));
            call c{api,          req, std::move(m.params),
                   target.query, who, ident ? std::optional(ident->role) : std::nullopt,
                   request_id};
            // A catch-all tail is the handler's to judge as sent (GET /ocsp/..., RFC 6960 A.1).
            if (!target.valid && !rt->takes_tail())
                res = error_response(errc::invalid_argument, "malformed request target", "target");
            else
                res = co_await rt->handler(c);
            if (res.result() == http::status::forbidden) audit_policy_denial(api, who, req, path, res);
        }
    } catch (const std::exception& e) {
        spdlog::error("request {} {} {}: unexpected exception: {}", request_id,
                      std::string(http::to_string(req.method())), route_label, e.what());
        res = error_response(errc::internal, "internal error");
    }

    finish_response(res, &req, request_id);
    if (limit.limited) {
        res.set("RateLimit-Limit", std::to_string(limit.limit));
        res.set("RateLimit-Remaining", std::to_string(limit.remaining));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    api.stats.observe_request(route_label, http::to_string(req.method()), res.result_int(), seconds);
    if (spdlog::should_log(spdlog::level::debug)) // the arguments are not built for nothing
        spdlog::debug("{} {} {} -> {} {:.1f} ms [{}] {}", peer.ip, std::string(http::to_string(req.method())),
                      std::string(path), res.result_int(), seconds * 1000, request_id, who.user);
    co_return res;
}

} // namespace certmate::net
