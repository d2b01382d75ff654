// Types shared by net/: the request and response we handle, and the answers every handler builds
// (JSON, bytes, errors). Internal to net/ (Beast headers): nothing outside net/ includes it.
#pragma once

#include "core/errc.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace certmate::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

inline constexpr std::string_view api_version = "1";

// The single mapping of an error code to its HTTP status.
http::status status_of(errc e) noexcept;

// The one error body: {"error": <reason phrase of s>, "message", "code"}; callers may add fields.
boost::json::object error_body(http::status s, std::string_view code, std::string_view message);
// A JSON answer with error_body(s, code, message): the errors made outside errc (405, 415, limits).
response error_json(http::status s, std::string_view code, std::string_view message);

// {"error": <reason phrase>, "message", "code", "field"?}. Server-side failures (5xx) answer a
// fixed text: the details were logged where they happened, never sent to a client.
response error_response(const error& e);
response error_response(errc code, std::string message, std::string field = {});

response json_response(http::status s, const boost::json::value& body);
// Whether a Content-Type value names `media_type` (case-insensitive, parameters ignored).
bool media_type_is(std::string_view content_type, std::string_view media_type);
// Raw bytes with a content type; `filename` adds Content-Disposition: attachment.
response bytes_response(http::status s, std::string_view content_type, std::string body,
                        std::string_view filename = {});

} // namespace certmate::net
