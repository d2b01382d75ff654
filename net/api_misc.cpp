// Health, metrics, the CA, the CRL, JSON OCSP status, the audit log, the renewal sweep and the
// OpenAPI document.
#include "core/keys.hpp"
#include "net/api.hpp"
#include "net/dto.hpp"

#include <boost/json/object.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace certmate::net {

namespace json = boost::json;
using http::verb;

namespace {

// ---- health and metrics ----

asio::awaitable<response> health(call& c) {
    json::object checks;
    bool ok = true;
    for (auto& h : c.core().view().health()) {
        checks[h.name] = h.ok ? std::string("ok") : std::move(h.problem);
        ok = ok && h.ok;
    }
    json::object body{{"status", ok ? "ok" : "degraded"}, {"version", CERTMATE_VERSION}, {"checks", std::move(checks)}};
    // Several instances on one database (docs/high-availability.md): how this one reaches it.
    if (auto st = c.core().view().storage_status(); st.shared) {
        json::object db{
            {"change_seq", st.change_seq},
            {"pool", json::object{{"size", st.pool_size}, {"idle", st.pool_idle}, {"in_use", st.pool_in_use}}}};
        db["latency_ms"] = st.latency_seconds ? json::value(*st.latency_seconds * 1000.0) : json::value(nullptr);
        db["last_notification"] = st.last_heard ? json::value(format_time(*st.last_heard)) : json::value(nullptr);
        db["notification_lag_ms"] =
            st.notification_lag_seconds ? json::value(*st.notification_lag_seconds * 1000.0) : json::value(nullptr);
        body["database"] = std::move(db);
    }
    co_return json_response(ok ? http::status::ok : http::status::service_unavailable, std::move(body));
}

asio::awaitable<response> metrics_text(call& c) {
    metrics_snapshot snap;
    auto stats = [](cert_service& s) { return s.stats(); };
    auto st = co_await c.core().in_core(stats);
    snap.certificates_by_state = {
        {"active", st.active}, {"revoked", st.revoked}, {"expired", st.expired}, {"on_hold", st.on_hold}};
    for (auto u : all_usages) snap.certificates_by_usage[std::string(to_string(u))] = 0;
    for (const auto& [u, n] : st.by_usage) snap.certificates_by_usage[u] = n;
    snap.expiring_soon = st.expiring_soon;
    snap.jobs_by_state = c.api.jobs.counts_by_state();
    auto& svc = c.core().view();
    // The CRL gauges after the changes acknowledged, as a CRL request would see them (crl_as);
    // a scrape is never refused for it: past a short bound it shows the CRL served.
    if (c.api.crl.acks_before_publish()) co_await c.api.crl.wait_acknowledged(std::chrono::milliseconds(1000));
    if (auto crl = svc.current_crl()) {
        const auto now = svc.now();
        snap.have_crl = true;
        snap.crl_age_seconds = std::chrono::duration<double>(now - crl->this_update).count();
        snap.crl_next_update_seconds = std::chrono::duration<double>(crl->next_update - now).count();
        snap.crl_number = crl->crl_number;
    }
    snap.connections = c.api.connection_count ? c.api.connection_count() : 0;
    snap.rate_limit_buckets = c.api.limiter.size();
    snap.audit_healthy = svc.audit_healthy();
    snap.storage = svc.storage_status();
    snap.now_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    co_return bytes_response(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", c.api.stats.render(snap));
}

// ---- CA ----

asio::awaitable<response> ca_der(call& c) {
    auto res = bytes_response(http::status::ok, "application/pkix-cert", c.core().view().ca().cert_der(), "ca.crt");
    res.set(http::field::cache_control, "public, max-age=3600");
    co_return res;
}

asio::awaitable<response> ca_info(call& c) {
    const auto& ca = c.core().view().ca();
    json::object o = ca.metadata();
    o["certificate"] = ca.cert_pem();
    co_return json_response(http::status::ok, o);
}

// ---- CRL ----

enum class crl_form { der, pem, info, json };

// How long a CRL request waits for the build of the changes acknowledged before it arrived.
constexpr std::chrono::milliseconds crl_serve_wait{3000};

asio::awaitable<response> crl_as(call& c, crl_form form, bool public_der = false) {
    // Where this process alone serves the CRL, a revocation is acknowledged before its CRL is
    // built: every CRL served lists each change acknowledged before the request came
    // (docs/architecture.md "CRL publication"), else 503, never a CRL missing one.
    if (c.api.crl.acks_before_publish() && !co_await c.api.crl.wait_acknowledged(crl_serve_wait)) {
        auto res =
            error_response(errc::busy, "the CRL listing the latest revocations is not built yet; try again later");
        res.set(http::field::retry_after, "5");
        co_return res;
    }
    auto crl = c.core().view().current_crl();
    if (!crl) co_return error_response(errc::not_found, "no CRL has been published yet");
    switch (form) {
    case crl_form::der: {
        auto res = bytes_response(http::status::ok, "application/pkix-crl", crl->der, public_der ? "" : "crl.der");
        if (public_der) res.set(http::field::cache_control, "public, max-age=60");
        co_return res;
    }
    case crl_form::pem: co_return bytes_response(http::status::ok, "application/x-pem-file", crl->pem, "crl.pem");
    case crl_form::info:
    case crl_form::json: {
        auto count_fn = [&] { return c.api.crl.revoked_count(crl); };
        const std::size_t count = co_await c.core().in_pool(count_fn);
        json::object o{{"crl_number", crl->crl_number},
                       {"this_update", format_time(crl->this_update)},
                       {"next_update", format_time(crl->next_update)},
                       {"revoked_count", count}};
        if (form == crl_form::json) o["crl_pem"] = crl->pem;
        co_return json_response(http::status::ok, o);
    }
    }
    co_return error_response(errc::internal, "unreachable");
}

asio::awaitable<response> crl_der_public(call& c) { co_return co_await crl_as(c, crl_form::der, true); }
asio::awaitable<response> crl_der(call& c) { co_return co_await crl_as(c, crl_form::der); }
asio::awaitable<response> crl_pem(call& c) { co_return co_await crl_as(c, crl_form::pem); }
asio::awaitable<response> crl_info(call& c) { co_return co_await crl_as(c, crl_form::info); }
asio::awaitable<response> crl_json(call& c) { co_return co_await crl_as(c, crl_form::json); }

// ---- JSON OCSP status (the Python CertMate's format) ----

response ocsp_status_of(call& c, std::string_view serial_text) {
    auto serial = normalize_serial(serial_text);
    if (!serial)
        return error_response(errc::invalid_argument, "serial_number must be decimal or 0x-prefixed hex",
                              "serial_number");
    auto& svc = c.core().view();
    const auto look = svc.ocsp_statuses()->get(*serial);
    using state = ocsp_single_answer::state;
    const state st = look.answer ? look.answer->status : state::unknown;
    json::object o{{"response_status", "successful"},
                   {"certificate_status", st == state::good      ? "good"
                                          : st == state::revoked ? "revoked"
                                                                 : "unknown"},
                   {"certificate_serial", *serial},
                   {"this_update", format_time(svc.now())},
                   {"next_update", nullptr},
                   {"responder_name", "CertMate OCSP Responder"},
                   {"revocation_time", nullptr},
                   {"revocation_reason", nullptr}};
    if (st == state::revoked) {
        o["revocation_time"] = format_time(look.answer->revoked_at);
        o["revocation_reason"] = std::string(to_string(look.answer->reason.value_or(revocation_reason::unspecified)));
    }
    return json_response(http::status::ok, o);
}

asio::awaitable<response> ocsp_status_get(call& c) { co_return ocsp_status_of(c, c.param("serial")); }

asio::awaitable<response> ocsp_status_post(call& c) {
    auto body = dto::parse<dto::ocsp_status>(c.req.body());
    if (!body) co_return error_response(body.error());
    if (!body->serial_number)
        co_return error_response(errc::invalid_argument, "serial_number is required", "serial_number");
    co_return ocsp_status_of(c, body->serial_number->text);
}

// ---- audit ----

asio::awaitable<response> audit_query(call& c) {
    certmate::audit_query q;
    for (const auto& [k, v] : c.query) {
        if (k == "resource_id") {
            q.resource_id = v;
        } else if (k == "operation") {
            q.operation = v;
        } else if (k == "since" || k == "until") {
            auto t = parse_time(v);
            if (!t) co_return error_response(errc::invalid_argument, k + " must be an RFC 3339 UTC time", k);
            (k == "since" ? q.since : q.until) = *t;
        } else if (k == "limit") {
            char* end = nullptr;
            long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || n < 1 || n > 1000)
                co_return error_response(errc::invalid_argument, "limit must be an integer between 1 and 1000", k);
            q.limit = static_cast<std::size_t>(n);
        } else {
            co_return error_response(errc::invalid_argument, "unknown query parameter", k);
        }
    }
    auto query = [&] { return c.core().view().audit_entries(q); };
    auto entries = co_await c.core().in_pool(query);
    if (!entries) co_return error_response(entries.error());
    json::array arr;
    for (auto& e : *entries) arr.push_back(std::move(e));
    const auto n = arr.size();
    co_return json_response(http::status::ok, json::object{{"entries", std::move(arr)}, {"count", n}});
}

// GET /api/audit/verify: the chain and every checkpoint signature (docs/audit.md).
asio::awaitable<response> audit_verify(call& c) {
    auto verify = [&] { return c.core().view().audit_verify(); };
    const auto r = co_await c.core().in_pool(verify);
    json::array repairs;
    for (const auto& rep : r.repairs)
        repairs.push_back(json::object{{"seq", rep.seq}, {"removed_bytes", rep.removed_bytes}});
    json::object o{{"ok", r.ok},
                   {"entries", r.entries},
                   {"checkpoints_verified", r.checkpoints},
                   {"last_checkpoint_seq", r.last_checkpoint_seq},
                   {"entries_after_last_checkpoint", r.after_last_checkpoint},
                   {"repairs", std::move(repairs)}};
    if (!r.ok) {
        o["bad_line"] = r.bad_line;
        o["reason"] = r.reason;
    }
    co_return json_response(http::status::ok, o);
}

asio::awaitable<response> audit_public_key(call& c) {
    auto pem = c.core().view().audit_public_key();
    if (pem.empty()) co_return error_response(errc::not_found, "no audit signing key is loaded");
    co_return bytes_response(http::status::ok, "application/x-pem-file", std::move(pem), "audit.pub");
}

// GET /api/audit/export?from_seq=&to_seq=: the lines exactly as stored and an Ed25519 signature over
// exactly those bytes, checkable offline with `openssl pkeyutl -verify -rawin` (docs/audit.md).
asio::awaitable<response> audit_export(call& c) {
    std::uint64_t from = 1;
    std::optional<std::uint64_t> to;
    for (const auto& [k, v] : c.query) {
        if (k != "from_seq" && k != "to_seq")
            co_return error_response(errc::invalid_argument, "unknown query parameter", k);
        char* end = nullptr;
        errno = 0;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end || errno || n < 1 || v.front() == '-')
            co_return error_response(errc::invalid_argument, k + " must be a positive integer", k);
        (k == "from_seq" ? from : to.emplace()) = n;
    }
    if (to && *to < from)
        co_return error_response(errc::invalid_argument, "to_seq must not be below from_seq", "to_seq");
    auto run = [&] { return c.core().view().audit_export_range(from, to); };
    auto ex = co_await c.core().in_pool(run);
    if (!ex) co_return error_response(ex.error());
    co_return json_response(http::status::ok, json::object{{"from_seq", ex->from_seq},
                                                           {"to_seq", ex->to_seq},
                                                           {"count", ex->count},
                                                           {"algorithm", "Ed25519"},
                                                           {"key_id", ex->key_id},
                                                           {"lines", ex->bytes},
                                                           {"signature", base64_encode(ex->signature)}});
}

// ---- this API's document ----

// GET /api/openapi.json: docs/openapi.yaml as JSON, embedded at build time.
asio::awaitable<response> openapi_document(call&) {
    co_return bytes_response(http::status::ok, "application/json", std::string(openapi_json()));
}

// ---- renewal sweep ----

// One sweep at a time across instances (docs/high-availability.md): this one runs holding the
// store's "sweep" lease, as the daily one does; 409 while another instance holds it.
asio::awaitable<response> run_renewals(call& c) {
    auto lead = [&] { return c.core().view().try_lead("sweep"); };
    auto lease = co_await c.core().in_pool(lead);
    if (!lease) co_return error_response(lease.error());
    if (!*lease) co_return error_response(errc::conflict, "another instance is running the renewal sweep");
    const auto sum = co_await run_renewal_sweep(c.api, c.who);
    auto release = [&] { lease->reset(); };
    co_await c.core().in_pool(release);
    co_return json_response(http::status::ok, to_json(sum));
}

// GET /api/renewals/last: when the last sweep ran and its counts (its outcomes are in the
// answer of POST /api/renewals/run and in state/renewal_sweep.json); 204 before the first.
asio::awaitable<response> last_renewal(call& c) {
    auto load = [&] { return c.core().view().last_sweep(); };
    const auto last = co_await c.core().in_pool(load);
    if (!last) {
        response res{http::status::no_content, 11};
        co_return res;
    }
    auto o = to_json(*last);
    o.erase("outcomes");
    co_return json_response(http::status::ok, o);
}

} // namespace

void add_misc_routes(router& r, const server_options& opts) {
    constexpr auto viewer = api_role::viewer;
    constexpr auto admin = api_role::admin;
    constexpr auto pub = std::nullopt;
    using rc = rate_class;
    using bk = body_kind;
    r.add({verb::get, "/health", pub, rc::default_, bk::none, true, health});
    r.add({verb::get, "/metrics", opts.metrics_public ? std::nullopt : std::optional(viewer), rc::default_, bk::none,
           true, metrics_text});
    r.add({verb::get, "/ca.crt", pub, rc::crl, bk::none, true, ca_der});
    r.add({verb::get, "/crl.der", pub, rc::crl, bk::none, true, crl_der_public});
    r.add({verb::get, "/api/ca", viewer, rc::default_, bk::none, false, ca_info});
    r.add({verb::get, "/api/crl", viewer, rc::crl, bk::none, false, crl_json});
    r.add({verb::get, "/api/crl/pem", viewer, rc::crl, bk::none, false, crl_pem});
    r.add({verb::get, "/api/crl/der", viewer, rc::crl, bk::none, false, crl_der});
    r.add({verb::get, "/api/crl/info", viewer, rc::crl, bk::none, false, crl_info});
    r.add({verb::get, "/api/crl/download/pem", viewer, rc::crl, bk::none, false, crl_pem});
    r.add({verb::get, "/api/crl/download/der", viewer, rc::crl, bk::none, false, crl_der});
    r.add({verb::get, "/api/crl/download/info", viewer, rc::crl, bk::none, false, crl_info});
    r.add({verb::get, "/api/ocsp/status/{serial}", viewer, rc::ocsp, bk::none, false, ocsp_status_get});
    r.add({verb::post, "/api/ocsp/status", viewer, rc::ocsp, bk::json, false, ocsp_status_post});
    r.add({verb::get, "/api/audit", admin, rc::default_, bk::none, false, audit_query});
    r.add({verb::get, "/api/audit/verify", admin, rc::default_, bk::none, false, audit_verify});
    r.add({verb::get, "/api/audit/export", admin, rc::default_, bk::none, false, audit_export});
    r.add({verb::get, "/api/audit/public-key", viewer, rc::default_, bk::none, false, audit_public_key});
    r.add({verb::post, "/api/renewals/run", admin, rc::default_, bk::json_optional, false, run_renewals});
    r.add({verb::get, "/api/renewals/last", viewer, rc::default_, bk::none, false, last_renewal});
    r.add({verb::get, "/api/openapi.json", pub, rc::default_, bk::none, false, openapi_document});
}

void add_api_routes(router& r, const server_options& opts) {
    add_cert_routes(r);
    add_job_routes(r);
    add_misc_routes(r, opts);
    add_ocsp_routes(r);
    add_dashboard_routes(r);
}

} // namespace certmate::net
