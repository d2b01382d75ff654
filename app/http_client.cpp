#include "app/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace certmate::app {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

parsed_url parse_url(std::string_view url) {
    parsed_url u;
    std::string_view rest;
    if (url.rfind("https://", 0) == 0) {
        u.https = true;
        rest = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else {
        throw cli_usage_error("URL must start with http:// or https://: " + std::string(url));
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (authority.empty()) throw cli_usage_error("URL has no host: " + std::string(url));
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) throw cli_usage_error("bad IPv6 host in URL: " + std::string(url));
        u.host = std::string(authority.substr(1, close - 1));
        authority = authority.substr(close + 1);
        if (!authority.empty() && authority.front() == ':') u.port = std::string(authority.substr(1));
    } else {
        const auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
    }
    if (u.port.empty()) u.port = u.https ? "443" : "80";
    if (u.host.empty() || !std::all_of(u.port.begin(), u.port.end(), [](unsigned char c) { return std::isdigit(c); }))
        throw cli_usage_error("bad host or port in URL: " + std::string(url));
    return u;
}

std::string url_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string http_answer::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

struct http_connection::impl {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    std::chrono::seconds timeout;
    bool open = false;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

    // Runs one asynchronous operation to completion under the stream's deadline.
    template <class Start>
    void run(Start&& start, const std::string& what) {
        boost::system::error_code result;
        lowest().expires_after(timeout);
        start([&](boost::system::error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        if (result) {
            open = false;
            throw cli_failure(what + ": " + (result == beast::error::timeout ? "timed out" : result.message()));
        }
    }

    void connect(const parsed_url& o) {
        plain.reset();
        secure.reset();
        buffer.clear();
        const std::string where = o.host + ":" + o.port;
        tcp::resolver resolver(ioc);
        boost::system::error_code ec;
        auto endpoints = resolver.resolve(o.host, o.port, ec);
        if (ec) throw cli_failure("cannot resolve " + o.host + ": " + ec.message());
        if (o.https) {
            secure.emplace(ioc, ctx);
        } else {
            plain.emplace(ioc);
        }
        run([&](auto handler) { lowest().async_connect(endpoints, handler); }, "cannot connect to " + where);
        if (o.https) {
            // SNI only for names (RFC 6066 3: "Literal IPv4 and IPv6 addresses are not permitted").
            boost::system::error_code ip_ec;
            (void)asio::ip::make_address(o.host, ip_ec);
            if (ip_ec && !SSL_set_tlsext_host_name(secure->native_handle(), o.host.c_str()))
                throw cli_failure("cannot set the TLS server name " + o.host);
            secure->set_verify_callback(ssl::host_name_verification(o.host));
            run([&](auto handler) { secure->async_handshake(ssl::stream_base::client, handler); },
                "TLS handshake with " + where + " failed");
        }
        open = true;
    }

    template <class Message>
    void write(Message& m, const std::string& what) {
        if (secure)
            run([&](auto handler) { http::async_write(*secure, m, handler); }, what);
        else
            run([&](auto handler) { http::async_write(*plain, m, handler); }, what);
    }

    template <class Parser>
    void read(Parser& p, const std::string& what) {
        if (secure)
            run([&](auto handler) { http::async_read(*secure, buffer, p, handler); }, what);
        else
            run([&](auto handler) { http::async_read(*plain, buffer, p, handler); }, what);
    }
};

http_connection::http_connection(parsed_url origin, tls_files tls, std::chrono::seconds timeout)
    : origin_(std::move(origin)), impl_(std::make_unique<impl>()) {
    impl_->timeout = timeout;
    if (origin_.https) {
        auto& ctx = impl_->ctx;
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        ctx.set_verify_mode(ssl::verify_peer);
        boost::system::error_code ec;
        if (tls.cacert.empty())
            ctx.set_default_verify_paths(ec);
        else
            ctx.load_verify_file(tls.cacert, ec);
        if (ec) throw cli_failure("cannot load --cacert " + tls.cacert + ": " + ec.message());
        if (!tls.cert.empty()) {
            ctx.use_certificate_chain_file(tls.cert, ec);
            if (ec) throw cli_failure("cannot load --cert " + tls.cert + ": " + ec.message());
            ctx.use_private_key_file(tls.key.empty() ? tls.cert : tls.key, ssl::context::pem, ec);
            if (ec) throw cli_failure("cannot load --key " + tls.key + ": " + ec.message());
        }
    }
}

http_connection::~http_connection() = default;

http_answer http_connection::request(const std::string& method, const std::string& target, const std::string& body,
                                     const std::vector<std::pair<std::string, std::string>>& headers) {
    auto& d = *impl_;
    const std::string where = origin_.host + ":" + origin_.port;
    for (int attempt = 0;; ++attempt) {
        const bool reused = d.open;
        if (!d.open) d.connect(origin_);
        http::request<http::string_body> req;
        req.method_string(method);
        req.target(target);
        req.version(11);
        const bool default_port = origin_.port == (origin_.https ? "443" : "80");
        const bool v6 = origin_.host.find(':') != std::string::npos;
        req.set(http::field::host,
                (v6 ? "[" + origin_.host + "]" : origin_.host) + (default_port ? std::string() : ":" + origin_.port));
        req.set(http::field::user_agent, "certmate-cli/" CERTMATE_VERSION);
        for (const auto& [k, v] : headers) req.set(k, v);
        if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") req.body() = body;
        req.prepare_payload();
        http::response_parser<http::string_body> parser;
        parser.body_limit(256u * 1024 * 1024);
        try {
            d.write(req, "sending to " + where + " failed");
            d.read(parser, "no answer from " + where);
        } catch (const cli_failure&) {
            // A kept-alive connection the server closed meanwhile: reopen once, for reads only.
            if (reused && attempt == 0 && method == "GET") continue;
            throw;
        }
        auto res = parser.release();
        http_answer out;
        out.status = res.result_int();
        for (const auto& f : res) {
            std::string name(f.name_string());
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
            out.headers[name] = std::string(f.value());
        }
        out.body = std::move(res.body());
        if (!res.keep_alive()) d.open = false;
        return out;
    }
}

} // namespace certmate::app
