#include "support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace certmate::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}
} // namespace

std::string http_reply::header(const std::string& name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? std::string() : it->second;
}

bool http_reply::has_header(const std::string& name) const { return headers.count(lower(name)) > 0; }

boost::json::value http_reply::json() const { return boost::json::parse(body); }

struct http_client::impl {
    asio::io_context ioc;
    std::string host;
    unsigned short port;
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;

    // Runs the io_context until `done` or the timeout; on timeout the socket is closed.
    void run(bool& done, std::chrono::milliseconds timeout, const char* what) {
        ioc.restart();
        ioc.run_for(timeout);
        if (!done) {
            if (stream) stream->close();
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(100));
            stream.reset();
            throw std::runtime_error(std::string("http_client: timeout during ") + what);
        }
    }

    void connect(std::chrono::milliseconds timeout) {
        stream.emplace(ioc);
        buffer.clear();
        tcp::endpoint ep(asio::ip::make_address(host), port);
        bool done = false;
        beast::error_code ec;
        stream->async_connect(ep, [&](beast::error_code e) {
            ec = e;
            done = true;
        });
        run(done, timeout, "connect");
        if (ec) {
            stream.reset();
            throw std::runtime_error("http_client: connect failed: " + ec.message());
        }
    }

    http_reply exchange(auto& message_writer, std::chrono::milliseconds timeout) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(256 * 1024 * 1024);
        parser.header_limit(64 * 1024);
        bool done = false;
        beast::error_code ec;
        message_writer([&](beast::error_code wec) {
            if (wec) {
                ec = wec;
                done = true;
                return;
            }
            http::async_read(*stream, buffer, parser, [&](beast::error_code rec, std::size_t) {
                ec = rec;
                done = true;
            });
        });
        run(done, timeout, "request");
        if (ec) {
            stream.reset();
            throw std::runtime_error("http_client: " + ec.message());
        }
        auto res = parser.release();
        http_reply out;
        out.status = res.result_int();
        for (const auto& f : res) out.headers[lower(std::string(f.name_string()))] = std::string(f.value());
        out.body = std::move(res.body());
        if (!res.keep_alive()) stream.reset();
        return out;
    }
};

http_client::http_client(unsigned short port, std::string host, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()), timeout_(timeout) {
    impl_->host = std::move(host);
    impl_->port = port;
}

http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;
http_client& http_client::operator=(http_client&&) noexcept = default;

void http_client::close() { impl_->stream.reset(); }

http_reply http_client::request(const std::string& method, const std::string& target, const std::string& body,
                                const header_list& headers) {
    if (!impl_->stream) impl_->connect(timeout_);
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, impl_->host + ":" + std::to_string(impl_->port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(true);
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") req.prepare_payload();
    auto writer = [&](auto on_written) {
        http::async_write(*impl_->stream, req, [on_written](beast::error_code ec, std::size_t) { on_written(ec); });
    };
    return impl_->exchange(writer, timeout_);
}

http_reply http_client::raw(const std::string& bytes) {
    impl_->connect(timeout_);
    auto writer = [&](auto on_written) {
        asio::async_write(impl_->stream->socket(), asio::buffer(bytes),
                          [on_written](beast::error_code ec, std::size_t) { on_written(ec); });
    };
    auto r = impl_->exchange(writer, timeout_);
    impl_->stream.reset();
    return r;
}

http_reply http_client::get(const std::string& target, const std::string& token, const header_list& extra) {
    header_list h = extra;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return request("GET", target, {}, h);
}

http_reply http_client::post_json(const std::string& target, const std::string& json_body, const std::string& token,
                                  const header_list& extra) {
    header_list h = extra;
    h.emplace_back("Content-Type", "application/json");
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return request("POST", target, json_body, h);
}

http_reply http_client::patch_json(const std::string& target, const std::string& json_body, const std::string& token) {
    header_list h{{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return request("PATCH", target, json_body, h);
}

} // namespace certmate::test
