// What request handlers share: the service behind its strand with heavy work on the pool, the
// CRL publisher, metrics, rate limits, tokens; the per-request `call`; the route table.
// Internal to net/.
#pragma once

#include "core/service.hpp"
#include "net/auth.hpp"
#include "net/client_auth.hpp"
#include "net/http.hpp"
#include "net/jobs.hpp"
#include "net/metrics.hpp"
#include "net/ocsp_endpoint.hpp"
#include "net/options.hpp"
#include "net/router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>

namespace certmate::net {

// The service is owned by one strand; `work` of staged mutations runs on the pool.
// Contract (core/service.hpp): stage [strand] -> work [pool] -> commit [strand], commit always.
class core_access {
public:
    core_access(asio::io_context& ioc, asio::thread_pool& pool, cert_service& svc)
        : strand_(asio::make_strand(ioc)), pool_(pool), svc_(svc) {}

    // GCC 12 destroys some temporaries of a co_await expression twice: callers pass named
    // functors, and the lambdas created inside coroutines here capture by reference only.

    // Runs f(service) on the strand; the caller resumes on its own executor.
    template <class F>
    auto in_core(F f) -> asio::awaitable<std::invoke_result_t<F&, cert_service&>> {
        using R = std::invoke_result_t<F&, cert_service&>;
        return asio::co_spawn(
            strand_, [this, f = std::move(f)]() mutable -> asio::awaitable<R> { co_return f(svc_); },
            asio::use_awaitable);
    }

    // Runs f() on the thread pool.
    template <class F>
    auto in_pool(F f) -> asio::awaitable<std::invoke_result_t<F&>> {
        using R = std::invoke_result_t<F&>;
        return asio::co_spawn(
            pool_.get_executor(), [f = std::move(f)]() mutable -> asio::awaitable<R> { co_return f(); },
            asio::use_awaitable);
    }

    // stage (strand) -> work (pool) -> commit (strand) -> after(result&) (strand, same hop).
    template <class T, class Stage, class After>
    asio::awaitable<result<T>> run_staged(Stage stage, After after) {
        auto stage_fn = [&stage](cert_service& svc) { return stage(svc); };
        auto s = co_await in_core(stage_fn);
        if (!s) co_return s.error();
        co_return co_await finish_staged<T>(*s, after);
    }

    // The second half of run_staged, for a mutation staged already: work (pool) -> commit
    // (strand) -> after (strand, same hop), as after(result&) or after(service&, result&).
    // Both are borrowed until the returned awaitable completes.
    template <class T, class After>
    asio::awaitable<result<T>> finish_staged(staged<T>& s, After& after) {
        auto work = std::move(s.work);
        auto commit = std::move(s.commit);
        auto work_fn = [&work]() -> result<T> {
            try {
                return work();
            } catch (const std::exception& e) {
                spdlog::error("unexpected exception in staged work: {}", e.what());
                return make_error(errc::internal, "internal error");
            }
        };
        result<T> r = co_await in_pool(work_fn);
        auto commit_fn = [&commit, &after, &r](cert_service& svc) {
            result<T> out = commit(std::move(r));
            if constexpr (std::is_invocable_v<After&, cert_service&, result<T>&>)
                after(svc, out);
            else
                after(out);
            return out;
        };
        co_return co_await in_core(commit_fn);
    }
    template <class T, class Stage>
    asio::awaitable<result<T>> run_staged(Stage stage) {
        return run_staged<T>(std::move(stage), [](result<T>&) {});
    }

    // [any thread] Runs f(service) on the strand later, in the order posted; nothing waits for it.
    template <class F>
    void post(F f) {
        asio::post(strand_, [this, f = std::move(f)]() mutable { f(svc_); });
    }

    // [any thread] The service read-only: the members documented [any thread] (CA, CRL, OCSP
    // table, serial owners, config, now(), health, the audit reads). Mutations go through the strand.
    const cert_service& view() const { return svc_; }
    asio::strand<asio::io_context::executor_type>& strand() { return strand_; }
    asio::thread_pool& pool() { return pool_; }

private:
    asio::strand<asio::io_context::executor_type> strand_;
    asio::thread_pool& pool_;
    cert_service& svc_;
};

// Builds CRLs on the pool after revocations (bursts coalesce inside the service) and lets a
// request wait until a CRL listing a change is published: the revoking request itself on a
// shared store, each CRL request where this process alone serves the CRL (docs/architecture.md
// "CRL publication").
class crl_publisher {
public:
    crl_publisher(core_access& core, metrics& m) : core_(core), metrics_(m) {}

    // [strand] A revocation state changed (and may be acknowledged): the generation a CRL must
    // reach to include it; CRL requests wait for it (wait_acknowledged).
    std::uint64_t note_change() {
        const auto gen = requested_.load() + 1;
        requested_.store(gen);
        acknowledged_.store(gen);
        return gen;
    }
    // [strand] A CRL is wanted with no change behind it (the refresh before nextUpdate): the
    // generation to wait for; CRL requests do not wait for it (the CRL served lists every change).
    std::uint64_t note_refresh() {
        const auto gen = requested_.load() + 1;
        requested_.store(gen);
        return gen;
    }
    // Whether a revocation's answer goes out once the change is durable, the CRL requests waiting
    // for its build instead (cert_service::crl_served_here_only), or waits for the CRL itself.
    bool acks_before_publish() const { return core_.view().crl_served_here_only(); }
    // Waits until the CRL served lists every change noted when called (note_change), at most
    // `timeout`; false on timeout (counted like wait_published's). No wait and no strand hop
    // when it does already (the common case).
    asio::awaitable<bool> wait_acknowledged(std::chrono::milliseconds timeout);
    // [any thread] kick() for a change acknowledged before its CRL (acks_before_publish): while
    // builds are paced (a storm, nobody waiting for a CRL) the paused build loop takes it.
    void kick_acknowledged() {
        if (pausing_.load() == 0) kick();
    }
    // Where revocations are acknowledged before their CRL, a build that ends with more changes
    // pending and no request waiting for a CRL starts the next one after this pause (a CRL request
    // or any other waiter arriving ends it): back-to-back builds took a pool thread from the
    // revocations' own work during a storm (BENCHMARKS.md "Revocation at 30,000").
    static constexpr std::chrono::milliseconds build_pace{100};
    // [any thread] Starts a build if one is needed and none runs (a running one re-runs).
    // `periodic` (the CRL timer): while a batch revoke holds builds, only a CRL near its
    // nextUpdate is rebuilt, so that the job's revocations make one CRL; a periodic build that
    // ends with changes pending builds them as any other (their kicks left them to it).
    void kick(bool periodic = false);
    // [any thread] A batch revoke job runs (hold) or has finished (release).
    void hold() { ++holds_; }
    void release() { --holds_; }
    // Waits until a CRL of generation >= `gen` is published, at most `timeout`; false on timeout
    // (counted in certmate_crl_wait_timeouts_total). Woken by the publish itself, not by polling.
    // A generation whose change needed no build is published when the CRL is settled.
    // The caller runs on a strand (a connection's, a job's): the wake-up is posted to it.
    asio::awaitable<bool> wait_published(std::uint64_t gen, std::chrono::milliseconds timeout);
    // [any thread] Entries in the current CRL (parsed once per CRL).
    std::size_t revoked_count(const std::shared_ptr<const built_crl>& crl);
    // [any thread, non-blocking] Changes another instance committed to the shared store
    // (cert_repository::watch_changes): applied on the strand in the order handed in, a CRL it
    // published read on the pool and served, and a build started when a revocation arrived or a
    // build refused for a missing change can now run. Waiters are released only by a CRL built
    // here after their change (the other instance's CRL may predate it).
    void apply_changes(std::vector<store_change> changes);

private:
    asio::awaitable<void> build_loop(bool periodic);
    asio::awaitable<void> serve_published(staged<std::shared_ptr<const built_crl>> step);
    // [strand] A CRL of generation `gen` is out: wakes the waiters it satisfies.
    void published(std::uint64_t gen);

    core_access& core_;
    metrics& metrics_;
    // Written on the strand, read anywhere (CRL requests read acknowledged_ on their own threads).
    std::atomic<std::uint64_t> requested_{0};    // the newest generation asked for
    std::atomic<std::uint64_t> acknowledged_{0}; // the newest of a change (note_change)
    std::atomic<int> holds_{0};
    std::atomic<int> pausing_{0}; // build loops in their pause (build_pace)
    std::atomic<std::uint64_t> published_{0};
    std::mutex wait_mu_;
    std::multimap<std::uint64_t, std::shared_ptr<asio::steady_timer>> waiters_; // by generation awaited
    std::mutex count_mu_;
    std::uint64_t counted_number_ = 0;
    std::size_t counted_ = 0;
    bool counted_valid_ = false;
};

// Denied requests are audited at most once per client and minute (docs/architecture.md), and at most
// max_lines_per_window lines a minute in all, so clients rotating addresses cannot fill the audit
// disk (which, the audit being fail-closed, would stop every mutation). The lines skipped are
// counted into the next one written.
class denial_auditor {
public:
    static constexpr std::size_t max_lines_per_window = 600;
    // True when this denial should be written now; `suppressed` gets the count skipped since
    // (this client's, and any dropped over the budget).
    bool admit(const std::string& client, std::chrono::steady_clock::time_point now, std::uint64_t& suppressed);

private:
    struct slot {
        std::chrono::steady_clock::time_point last{};
        std::uint64_t suppressed = 0;
    };
    std::mutex mu_;
    std::unordered_map<std::string, slot> slots_;
    std::chrono::steady_clock::time_point window_start_{};
    std::size_t lines_in_window_ = 0;
    std::uint64_t over_budget_ = 0;
};

// The client a denial is counted under: the peer's address as connections count it (an IPv6
// /64, an IPv4-mapped address as IPv4; net/conn_limits.hpp) and the name it claimed.
std::string denial_client_key(std::string_view ip, std::string_view user);

struct api_state;

// One request as its handler sees it.
struct call {
    api_state& api;
    const request& req;
    path_params params;
    path_params query;            // decoded, in order
    principal who;                // token name (or "anonymous") and client IP
    std::optional<api_role> role; // nullopt: anonymous
    std::string request_id;

    std::string param(std::string_view name) const;
    std::optional<std::string> query_value(std::string_view name) const;
    core_access& core();
};

using handler = std::function<asio::awaitable<response>(call&)>;
using route = basic_route<handler>;
using router = basic_router<handler>;

struct api_state {
    api_state(asio::io_context& ioc, asio::thread_pool& pool, cert_service& svc, const server_options& opts)
        : opts(opts), core(ioc, pool, svc), crl(core, stats),
          ocsp(core, stats, opts.ocsp_validity, opts.ocsp_refresh_before), limiter(opts.rate_limits),
          tokens(std::make_shared<const token_table>(opts.tokens)), jobs(*this) {}

    std::shared_ptr<const token_table> token_snapshot() const { return tokens.load(); }
    void set_tokens(std::vector<token_credential> t) {
        tokens.store(std::make_shared<const token_table>(std::move(t)));
    }

    const server_options opts;
    metrics stats;
    core_access core;
    crl_publisher crl;
    ocsp_endpoint ocsp;
    rate_limiter limiter;
    denial_auditor denials;
    router routes;
    std::function<std::size_t()> connection_count;
    std::atomic<std::shared_ptr<const token_table>> tokens; // swapped whole
    job_runner jobs;
};

// A create body (docs/api.md) as the service takes it: the one reader for POST /api/client-certs
// and each row of a batch (net/api_certs.cpp).
result<create_request> create_request_from_json(const boost::json::value& body);
// The query of GET /api/client-certs (usage, status, search, sort, limit, offset, ...) as the index takes it.
result<list_query> parse_list_query(const path_params& query);

// Route registration (net/api_certs.cpp, net/api_misc.cpp, net/api_jobs.cpp).
void add_cert_routes(router& r);
void add_job_routes(router& r);
void add_misc_routes(router& r, const server_options& opts);
void add_ocsp_routes(router& r); // net/ocsp_endpoint.cpp
// The dashboard (/, /audit, /client-certificates/..., /assets/...) and GET /api/session (net/static_assets.cpp).
void add_dashboard_routes(router& r);
// Every route the server serves: the four above (net/api_misc.cpp). docs/openapi.yaml documents each.
void add_api_routes(router& r, const server_options& opts);
// docs/openapi.json, embedded at build time (scripts/embed_file.cmake).
std::string_view openapi_json();

// The renewal sweep (README.md, `renewal.time`): every due certificate renewed through the strand and the pool,
// failures reported, metrics counted, the summary recorded under state/.
asio::awaitable<renewal_summary> run_renewal_sweep(api_state& api, const principal& who);

// The body limit of a request whose header has been read (docs/api.md "Batch jobs"):
// server.batch_body_limit on the two batch routes for a caller the header already authenticates
// with their role (a bearer token or the TLS client certificate), server.body_limit otherwise, so
// a stranger cannot make the server read a batch-sized body before it is refused.
std::size_t body_limit_for(api_state& api, const request& req, const peer_info& peer);

// The whole pipeline for one request: request id, routing, auth, rate limit, content type,
// handler, the headers every answer carries, metrics. Never throws.
asio::awaitable<response> dispatch(api_state& api, request& req, const peer_info& peer);

// The fast path for POST /ocsp and GET /ocsp/... (BENCHMARKS.md "OCSP at 30,000"): when `req`
// is an HTTP/1.1 keep-alive request dispatch would answer from the OCSP cache without any header
// of its own (no credentials, no client certificate, the ocsp rate class unlimited and not shared,
// debug logging off), the answer as `head` (status line and header fields, the same bytes
// dispatch's answer would carry but the request id) and `body` (the shared DER), counted in the
// metrics as dispatch counts it; false, with nothing counted, when dispatch must answer.
// [any thread, non-blocking]
bool fast_answer(api_state& api, const request& req, const peer_info& peer, std::string& head,
                 std::shared_ptr<const std::string>& body);

// Headers every answer carries (for answers made outside dispatch: 431, 413, 503, ...).
void finish_response(response& res, const request* req, std::string_view request_id);
std::string new_request_id();

} // namespace certmate::net
