// The HTTP request path without sockets: raw bytes through Beast's request_parser with the limits
// the server sets (net/server.cpp serve(): header limit, the batch body limit until the target is
// known, then the route's), then net's router and pipeline (dispatch(), net/api.hpp) and the
// handlers, over a real cert_service on in-memory ports (test/support/memory_ports.hpp) with a
// fixed clock and a seeded RNG. State is fresh for every input (one certificate, "alice", exists),
// so a crash reproduces from its input alone. Tokens: "Bearer fuzz-admin", "fuzz-operator",
// "fuzz-viewer".
#include "core/keys.hpp"
#include "core/service.hpp"
#include "net/api.hpp"
#include "support/fuzz_support.hpp"
#include "support/memory_ports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/parser.hpp>

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace {

using namespace certmate;
namespace http = boost::beast::http;

const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 6 / 1};

const net::server_options& options() {
    static const net::server_options o = [] {
        net::server_options o;
        o.pool_threads = 1;
        o.renewal_sweep = false;
        for (auto [name, role] :
             {std::pair{"fuzz-admin", api_role::admin}, std::pair{"fuzz-operator", api_role::operator_},
              std::pair{"fuzz-viewer", api_role::viewer}})
            o.tokens.push_back(net::token_credential{name, role, sha256_hex(name).value()});
        return o;
    }();
    return o;
}

// Parses `bytes` as the server does; nullopt when the server would not dispatch it (an error
// answered early, or an incomplete request that would wait for more bytes).
std::optional<net::request> parse(std::string_view bytes) {
    const auto& opts = options();
    http::request_parser<http::string_body> p;
    p.header_limit(static_cast<std::uint32_t>(opts.header_limit));
    const std::size_t largest = std::max(opts.body_limit, opts.batch_body_limit);
    p.body_limit(largest);
    p.eager(false);
    boost::system::error_code ec;
    boost::asio::const_buffer buf(bytes.data(), bytes.size());
    // The header first: the route's body limit is known once the target is.
    while (!p.is_header_done()) {
        const auto n = p.put(buf, ec);
        if (ec) return std::nullopt; // need_more here: the input ended inside the header
        buf += n;
        if (n == 0) return std::nullopt;
    }
    const std::string_view target = p.get().target();
    if (!target.substr(0, target.find('?')).starts_with("/api/client-certs/batch")) {
        if (p.content_length() && *p.content_length() > opts.body_limit) return std::nullopt;
        p.body_limit(opts.body_limit);
    }
    p.eager(true);
    while (!p.is_done()) {
        const auto n = p.put(buf, ec);
        if (ec == http::error::need_more) return std::nullopt;
        if (ec) return std::nullopt;
        buf += n;
        if (n == 0 && !p.is_done()) return std::nullopt;
    }
    return p.release();
}

// Key generation for RSA is slow under ASan (seconds for rsa4096): a batch of such rows would
// time out without finding anything; those inputs are skipped (EC keys cover the same paths).
bool asks_for_rsa(std::string_view bytes) {
    for (std::size_t i = 0; i + 3 <= bytes.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(bytes[i])) == 'r' &&
            std::tolower(static_cast<unsigned char>(bytes[i + 1])) == 's' &&
            std::tolower(static_cast<unsigned char>(bytes[i + 2])) == 'a')
            return true;
    return false;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::as_text(data, size);
    if (asks_for_rsa(bytes)) return 0;
    auto req = parse(bytes);
    if (!req) return 0;

    auto rng = test::seeded_rng(7);
    service_config cfg;
    cfg.default_key_type = key_type::ec_p256;
    cfg.load_threads = 1;
    auto svc = std::make_unique<cert_service>(
        fuzz::shared_ca(), std::make_unique<test::memory_repository>(), std::make_shared<test::memory_audit>(), cfg,
        [] { return t0; }, rng);
    if (!svc->load()) std::abort();
    create_request alice;
    alice.identifier = "alice";
    alice.subject.common_name = "alice";
    if (!run_sync(svc->stage_create(alice, system_principal("fuzz")))) std::abort();

    boost::asio::io_context ioc;
    boost::asio::thread_pool pool(1);
    {
        net::api_state api(ioc, pool, *svc, options());
        net::add_api_routes(api.routes, options());
        api.connection_count = [] { return std::size_t{1}; };
        net::peer_info peer{"127.0.0.1", false, std::nullopt};
        bool answered = false;
        boost::asio::co_spawn(ioc, net::dispatch(api, *req, peer), [&](std::exception_ptr e, net::response res) {
            if (e) std::rethrow_exception(e); // dispatch never throws
            // An unexpected exception in a handler is a 500: report it.
            if (res.result_int() == 500) std::abort();
            answered = true;
            // CERTMATE_FUZZ_PRINT=1: each answer's status and body start (checking the seeds).
            if (std::getenv("CERTMATE_FUZZ_PRINT"))
                std::fprintf(stderr, "%s %s -> %d %.120s\n", std::string(req->method_string()).c_str(),
                             std::string(req->target()).c_str(), res.result_int(), res.body().c_str());
        });
        ioc.run(); // the request, then whatever it started (jobs, CRL builds), to the end
        pool.join();
        if (!answered) std::abort();
    }
    return 0;
}
