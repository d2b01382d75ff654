// /api/client-certs: create, list, stats, get, update, downloads, revoke, unhold, renew, and the
// aliases of CertMate's Python API. Each handler: parse, call the service, format.
#include "core/cert_json.hpp"
#include "core/json_text.hpp"
#include "net/api.hpp"
#include "net/dto.hpp"

#include <boost/json/object.hpp>

namespace certmate::net {

namespace json = boost::json;
using http::verb;

namespace {

using file_format = cert_service::file_format;

// The wait for the CRL that lists a revocation, before the revoke is answered.
constexpr std::chrono::milliseconds crl_publish_wait{3000};

// The certificate with its status (and PEM when the view has it), written without a JSON tree
// (core/cert_json append_json: the same bytes as to_json plus those fields).
response reply(const result<cert_view>& r, http::status ok = http::status::ok) {
    if (!r) return error_response(r.error());
    std::string body;
    body.reserve(1536 + r->certificate_pem.size());
    append_json(body, r->record, to_string(r->status), r->certificate_pem);
    return bytes_response(ok, "application/json", std::move(body));
}

// ---- create ----

result<create_request> to_create_request(dto::create_cert b) {
    create_request rq;
    rq.identifier = b.identifier.value_or("");
    auto& s = rq.subject;
    s.common_name = b.common_name.value_or("");
    s.email = b.email.value_or("");
    s.organization = b.organization.value_or("");
    s.organizational_unit = b.organizational_unit.value_or("");
    s.country = b.country.value_or("");
    s.state = b.state.value_or("");
    s.locality = b.locality.value_or("");
    if (b.cert_usage) {
        auto u = parse_cert_usage(*b.cert_usage);
        if (!u) return make_error(errc::invalid_argument, "cert_usage must be api-mtls, vpn or other", "cert_usage");
        rq.usage = *u;
    }
    if (b.csr && b.csr_pem && *b.csr != *b.csr_pem)
        return make_error(errc::invalid_argument, "csr and csr_pem differ", "csr_pem");
    rq.csr_pem = b.csr ? *b.csr : b.csr_pem.value_or("");
    if (b.csr && b.csr->empty()) return make_error(errc::invalid_argument, "csr must not be empty", "csr");
    if (b.generate_key) {
        if (!*b.generate_key && rq.csr_pem.empty())
            return make_error(errc::invalid_argument, "generate_key false requires csr", "csr");
        if (*b.generate_key && !rq.csr_pem.empty())
            return make_error(errc::invalid_argument, "generate_key true cannot be combined with csr", "generate_key");
    }
    if (b.key_type) {
        auto k = parse_key_type(*b.key_type);
        if (!k)
            return make_error(errc::invalid_argument,
                              "key_type must be rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 or ed25519", "key_type");
        rq.key = *k;
    }
    if (b.validity_days && b.days_valid && *b.validity_days != *b.days_valid)
        return make_error(errc::invalid_argument, "validity_days and days_valid differ", "days_valid");
    if (auto v = b.validity_days ? b.validity_days : b.days_valid) {
        if (*v < 1)
            return make_error(errc::invalid_argument, "validity_days must be at least 1",
                              b.validity_days ? "validity_days" : "days_valid");
        rq.validity_days = *v;
    }
    if (b.subject_alt_names) {
        auto& n = *b.subject_alt_names;
        rq.sans.dns = n.dns.value_or(std::vector<std::string>{});
        rq.sans.email = n.email.value_or(std::vector<std::string>{});
        rq.sans.ip = n.ip.value_or(std::vector<std::string>{});
        rq.sans.uri = n.uri.value_or(std::vector<std::string>{});
    }
    rq.extra_eku = b.extended_key_usage.value_or(std::vector<std::string>{});
    rq.notes = b.notes.value_or("");
    if (rq.notes.size() > 4096) return make_error(errc::invalid_argument, "notes must be at most 4096 bytes", "notes");
    rq.renewal_enabled = b.renewal_enabled;
    rq.renewal_threshold_days = b.renewal_threshold_days;
    if (b.api_role) {
        auto role = parse_api_role(*b.api_role);
        if (!role) return make_error(errc::invalid_argument, "api_role must be viewer, operator or admin", "api_role");
        rq.role = *role;
    }
    return rq;
}

asio::awaitable<response> create_cert(call& c) {
    auto body = dto::parse<dto::create_cert>(c.req.body());
    if (!body) co_return error_response(body.error());
    auto rq = to_create_request(std::move(*body));
    if (!rq) co_return error_response(rq.error());
    auto stage = [&](cert_service& s) { return s.stage_create(std::move(*rq), c.who); };
    auto r = co_await c.core().run_staged<cert_view>(stage);
    co_return reply(r, http::status::created);
}

// ---- list, stats, get ----

result<list_query> to_list_query(const path_params& query) {
    list_query q;
    auto to_int = [](const std::string& name, const std::string& v, long long lo, long long hi) -> result<long long> {
        char* end = nullptr;
        errno = 0;
        long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || errno || n < lo || n > hi)
            return make_error(errc::invalid_argument,
                              name + " must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi),
                              name);
        return n;
    };
    std::optional<std::string> after;
    for (const auto& [k, v] : query) {
        if (k == "after") {
            after = v;
        } else if (k == "usage" || k == "cert_usage") {
            auto u = parse_cert_usage(v);
            if (!u) return make_error(errc::invalid_argument, k + " must be api-mtls, vpn, other or server", k);
            q.usage = *u;
        } else if (k == "status") {
            auto s = parse_status_filter(v);
            if (!s)
                return make_error(errc::invalid_argument,
                                  "status must be active, revoked, expired, expiring or on_hold", k);
            q.status = *s;
        } else if (k == "revoked") {
            if (v != "true" && v != "false")
                return make_error(errc::invalid_argument, "revoked must be true or false", k);
            q.revoked = v == "true";
        } else if (k == "search") {
            q.search = v;
        } else if (k == "expiring_within_days") {
            auto n = to_int(k, v, 0, 36500);
            if (!n) return n.error();
            q.expiring_within_days = static_cast<int>(*n);
        } else if (k == "sort") {
            std::string_view key = v;
            if (!key.empty() && key.front() == '-') {
                key.remove_prefix(1);
                q.descending = true;
            } else {
                q.descending = key == "created_at";
            }
            if (key == "created_at")
                q.sort = sort_key::created_at;
            else if (key == "expires_at")
                q.sort = sort_key::expires_at;
            else if (key == "common_name")
                q.sort = sort_key::common_name;
            else if (key == "identifier")
                q.sort = sort_key::identifier;
            else
                return make_error(
                    errc::invalid_argument,
                    "sort must be created_at, expires_at, common_name or identifier (prefix - for descending)", k);
        } else if (k == "order") {
            if (v != "asc" && v != "desc") return make_error(errc::invalid_argument, "order must be asc or desc", k);
            q.descending = v == "desc";
        } else if (k == "limit") {
            auto n = to_int(k, v, 1, 1000);
            if (!n) return n.error();
            q.limit = static_cast<std::size_t>(*n);
        } else if (k == "offset") {
            auto n = to_int(k, v, 0, 100000000);
            if (!n) return n.error();
            q.offset = static_cast<std::size_t>(*n);
        } else {
            return make_error(errc::invalid_argument, "unknown query parameter", k);
        }
    }
    // A cursor is a position in one order: the request must ask for that order (docs/api.md).
    if (after) {
        q.after = decode_cursor(*after);
        if (!q.after) return make_error(errc::invalid_argument, "after must be a next_cursor from this list", "after");
        if (q.after->sort != q.sort || q.after->descending != q.descending)
            return make_error(errc::invalid_argument, "after belongs to another sort order", "after");
    }
    return q;
}

asio::awaitable<response> list_certs(call& c) {
    auto q = to_list_query(c.query);
    if (!q) co_return error_response(q.error());
    // {"certificates": [...], "total", "limit", "offset", "next_cursor"?}. Each certificate is
    // written straight into the body on the core strand, where the index hands it over without a
    // copy, with its status at the query's time: a json::object tree per certificate, or a copy of
    // each record, cost most of a page's CPU (BENCHMARKS.md "Store at 30,000").
    std::string body;
    body.reserve(64 + std::min<std::size_t>(q->limit, 100) * 1024);
    body += R"({"certificates":[)";
    bool first = true;
    auto list = [&](cert_service& s) {
        return s.list(*q, [&](const cert_record& rec, cert_status status) {
            if (!first) body += ',';
            first = false;
            append_json(body, rec, to_string(status));
        });
    };
    auto page = co_await c.core().in_core(list);
    body += R"(],"total":)";
    append_json_uint(body, page.total);
    body += R"(,"limit":)";
    append_json_uint(body, q->limit);
    body += R"(,"offset":)";
    append_json_uint(body, q->offset);
    if (!page.next_cursor.empty()) {
        body += R"(,"next_cursor":)";
        append_json_string(body, page.next_cursor);
    }
    body += '}';
    co_return bytes_response(http::status::ok, "application/json", std::move(body));
}

asio::awaitable<response> cert_stats(call& c) {
    auto stats = [](cert_service& s) { return s.stats(); };
    auto st = co_await c.core().in_core(stats);
    json::object by_usage;
    for (auto u : all_usages) by_usage[to_string(u)] = 0;
    for (const auto& [u, n] : st.by_usage) by_usage[u] = n;
    json::object by_state{
        {"active", st.active}, {"revoked", st.revoked}, {"expired", st.expired}, {"on_hold", st.on_hold}};
    json::array per_week(st.expiring_per_week.begin(), st.expiring_per_week.end());
    co_return json_response(http::status::ok, json::object{{"total", st.total},
                                                           {"active", st.active},
                                                           {"revoked", st.revoked},
                                                           {"expired", st.expired},
                                                           {"on_hold", st.on_hold},
                                                           {"expiring_soon", st.expiring_soon},
                                                           {"by_usage", std::move(by_usage)},
                                                           {"by_state", std::move(by_state)},
                                                           {"expiring_per_week", std::move(per_week)}});
}

asio::awaitable<response> get_cert(call& c) {
    const std::string id = c.param("id");
    auto get = [&](cert_service& s) { return s.get(id); };
    auto r = co_await c.core().in_core(get);
    co_return reply(r);
}

asio::awaitable<response> update_cert(call& c) {
    auto body = dto::parse<dto::update_cert>(c.req.body());
    if (!body) co_return error_response(body.error());
    update_request rq;
    rq.notes = body->notes;
    rq.renewal_enabled = body->renewal_enabled;
    rq.renewal_threshold_days = body->renewal_threshold_days;
    if (body->api_role) {
        if (!*body->api_role) {
            rq.role.emplace(std::nullopt);
        } else {
            auto role = parse_api_role(**body->api_role);
            if (!role)
                co_return error_response(errc::invalid_argument, "api_role must be viewer, operator, admin or null",
                                         "api_role");
            rq.role.emplace(*role);
        }
    }
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_update(id, std::move(rq), c.who); };
    auto r = co_await c.core().run_staged<cert_view>(stage);
    co_return reply(r);
}

// ---- downloads ----

struct file_kind_info {
    file_format format;
    std::string_view content_type;
    std::string_view suffix;
};

constexpr file_kind_info cert_pem_info{file_format::cert_pem, "application/x-pem-file", ".crt"};
constexpr file_kind_info cert_der_info{file_format::cert_der, "application/pkix-cert", ".der"};
constexpr file_kind_info chain_info{file_format::chain_pem, "application/x-pem-file", "-chain.pem"};
constexpr file_kind_info csr_info{file_format::csr_pem, "application/x-pem-file", ".csr"};
constexpr file_kind_info key_info{file_format::key_pem, "application/x-pem-file", ".key"};

asio::awaitable<response> download(call& c, const file_kind_info& k) {
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_download(id, k.format, c.who); };
    auto r = co_await c.core().run_staged<downloaded_file>(stage);
    if (!r) co_return error_response(r.error());
    co_return bytes_response(http::status::ok, k.content_type, std::move(r->data),
                             r->identifier + std::string(k.suffix));
}

asio::awaitable<response> download_certificate(call& c) {
    const auto format = c.query_value("format").value_or("pem");
    if (format != "pem" && format != "der")
        co_return error_response(errc::invalid_argument, "format must be pem or der", "format");
    co_return co_await download(c, format == "der" ? cert_der_info : cert_pem_info);
}
asio::awaitable<response> download_chain(call& c) { co_return co_await download(c, chain_info); }
asio::awaitable<response> download_csr(call& c) { co_return co_await download(c, csr_info); }
asio::awaitable<response> download_key(call& c) { co_return co_await download(c, key_info); }

asio::awaitable<response> pkcs12_with(call& c, const std::string& password, std::string_view suffix) {
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_pkcs12(id, password, c.who); };
    auto r = co_await c.core().run_staged<downloaded_file>(stage);
    if (!r) co_return error_response(r.error());
    co_return bytes_response(http::status::ok, "application/x-pkcs12", std::move(r->data),
                             r->identifier + std::string(suffix));
}

asio::awaitable<response> download_pkcs12(call& c) {
    auto body = dto::parse<dto::pkcs12>(c.req.body());
    if (!body) co_return error_response(body.error());
    if (!body->password) co_return error_response(errc::invalid_argument, "password is required", "password");
    const std::string password = std::move(*body->password);
    co_return co_await pkcs12_with(c, password, ".p12");
}

// CertMate: GET …/download/pfx with the password in X-PKCS12-Password.
asio::awaitable<response> download_pfx(call& c) {
    auto pw = c.req["X-PKCS12-Password"];
    if (pw.empty())
        co_return error_response(errc::invalid_argument, "the X-PKCS12-Password header is required",
                                 "X-PKCS12-Password");
    const std::string password(pw);
    co_return co_await pkcs12_with(c, password, ".pfx");
}

// ---- revocation and renewal ----

// Runs a mutation that changes revocation state and starts the CRL build that lists it. The
// answer goes out once the change is durable where this process alone serves the CRL: each CRL
// request waits for the build of every change acknowledged (crl_as, net/api_misc.cpp). On a
// shared store the answer waits for that CRL (another instance's /crl.der knows of no build
// pending here). docs/architecture.md "CRL publication".
template <class Stage>
asio::awaitable<response> revocation_change(call& c, Stage& stage) {
    std::uint64_t gen = 0;
    auto after = [&](result<cert_view>& out) {
        if (out) gen = c.api.crl.note_change();
    };
    auto r = co_await c.core().run_staged<cert_view>(stage, after);
    if (r) {
        const bool acked_early = c.api.crl.acks_before_publish();
        if (acked_early)
            c.api.crl.kick_acknowledged();
        else
            c.api.crl.kick();
        if (!acked_early && !co_await c.api.crl.wait_published(gen, crl_publish_wait))
            spdlog::warn("[{}] CRL not yet published after {} of {}", c.request_id, r->record.identifier,
                         c.req.target());
    }
    co_return reply(r);
}

asio::awaitable<response> revoke_cert(call& c) {
    auto body = dto::parse<dto::revoke>(c.req.body());
    if (!body) co_return error_response(body.error());
    revoke_request rq;
    if (body->reason) {
        auto reason = parse_revocation_reason(*body->reason);
        if (!reason)
            co_return error_response(
                errc::invalid_argument,
                "reason must be one of unspecified, keyCompromise, affiliationChanged, superseded, "
                "cessationOfOperation, certificateHold, privilegeWithdrawn",
                "reason");
        rq.reason = *reason;
    }
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_revoke(id, rq, c.who); };
    co_return co_await revocation_change(c, stage);
}

asio::awaitable<response> unhold_cert(call& c) {
    auto body = dto::parse<dto::revoke>(c.req.body()); // {} or nothing; a reason is meaningless here
    if (!body) co_return error_response(body.error());
    if (body->reason) co_return error_response(errc::invalid_argument, "unknown field", "reason");
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_unhold(id, c.who); };
    co_return co_await revocation_change(c, stage);
}

asio::awaitable<response> renew_cert(call& c) {
    auto body = dto::parse<dto::renew>(c.req.body());
    if (!body) co_return error_response(body.error());
    if (body->validity_days && body->days_valid && *body->validity_days != *body->days_valid)
        co_return error_response(errc::invalid_argument, "validity_days and days_valid differ", "days_valid");
    const int days = body->validity_days.value_or(body->days_valid.value_or(0));
    if ((body->validity_days || body->days_valid) && days < 1)
        co_return error_response(errc::invalid_argument, "validity_days must be at least 1", "validity_days");
    const bool revokes_old = c.core().view().config().revoke_superseded;
    const std::string id = c.param("id");
    auto stage = [&](cert_service& s) { return s.stage_renew(id, days, c.who); };
    if (revokes_old) co_return co_await revocation_change(c, stage);
    auto r = co_await c.core().run_staged<cert_view>(stage);
    co_return reply(r);
}

// ---- CertMate compatibility ----

asio::awaitable<response> ca_pem(call& c) {
    co_return bytes_response(http::status::ok, "application/x-pem-file", c.core().view().ca().cert_pem(), "ca.crt");
}

} // namespace

result<list_query> parse_list_query(const path_params& query) { return to_list_query(query); }

result<create_request> create_request_from_json(const json::value& body) {
    dto::create_cert b{};
    if (auto e = dto::detail::read(body, std::string(), b)) return *e;
    return to_create_request(std::move(b));
}

void add_cert_routes(router& r) {
    constexpr auto viewer = api_role::viewer;
    constexpr auto op = api_role::operator_;
    const std::string base = "/api/client-certs";
    r.add({verb::post, base, op, rate_class::create, body_kind::json, false, create_cert});
    r.add({verb::post, base + "/create", op, rate_class::create, body_kind::json, false, create_cert});
    r.add({verb::get, base, viewer, rate_class::default_, body_kind::none, false, list_certs});
    r.add({verb::get, base + "/stats", viewer, rate_class::default_, body_kind::none, false, cert_stats});
    r.add({verb::get, base + "/ca", viewer, rate_class::default_, body_kind::none, false, ca_pem});
    r.add({verb::get, base + "/{id}", viewer, rate_class::default_, body_kind::none, false, get_cert});
    r.add({verb::patch, base + "/{id}", op, rate_class::default_, body_kind::json, false, update_cert});
    r.add({verb::get, base + "/{id}/certificate", viewer, rate_class::default_, body_kind::none, false,
           download_certificate});
    r.add({verb::get, base + "/{id}/chain", viewer, rate_class::default_, body_kind::none, false, download_chain});
    r.add({verb::get, base + "/{id}/csr", viewer, rate_class::default_, body_kind::none, false, download_csr});
    r.add({verb::get, base + "/{id}/private-key", op, rate_class::default_, body_kind::none, false, download_key});
    r.add({verb::post, base + "/{id}/pkcs12", op, rate_class::default_, body_kind::json, false, download_pkcs12});
    r.add({verb::post, base + "/{id}/revoke", op, rate_class::default_, body_kind::json_optional, false, revoke_cert});
    r.add({verb::post, base + "/{id}/unhold", op, rate_class::default_, body_kind::json_optional, false, unhold_cert});
    r.add({verb::post, base + "/{id}/renew", op, rate_class::create, body_kind::json_optional, false, renew_cert});
    // CertMate (Python) downloads
    r.add({verb::get, base + "/{id}/download/crt", viewer, rate_class::default_, body_kind::none, false,
           download_certificate});
    r.add({verb::get, base + "/{id}/download/csr", viewer, rate_class::default_, body_kind::none, false, download_csr});
    r.add({verb::get, base + "/{id}/download/key", op, rate_class::default_, body_kind::none, false, download_key});
    r.add({verb::get, base + "/{id}/download/pfx", op, rate_class::default_, body_kind::none, false, download_pfx});
}

} // namespace certmate::net
