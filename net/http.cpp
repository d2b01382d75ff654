#include "net/http.hpp"

#include <boost/json/serialize.hpp>

#include <cctype>

namespace certmate::net {

namespace json = boost::json;

http::status status_of(errc e) noexcept {
    switch (e) {
    case errc::ok: return http::status::ok;
    case errc::invalid_argument:
    case errc::invalid_identifier:
    case errc::invalid_csr:
    case errc::unsupported_key: return http::status::bad_request;
    case errc::not_found:
    case errc::no_private_key: return http::status::not_found;
    case errc::already_exists:
    case errc::already_revoked:
    case errc::not_on_hold:
    case errc::conflict:
    case errc::ca_mismatch: return http::status::conflict;
    case errc::unauthorized: return http::status::unauthorized;
    case errc::forbidden: return http::status::forbidden;
    case errc::rate_limited: return http::status::too_many_requests;
    case errc::audit_unavailable:
    case errc::busy:
    case errc::ca_missing: return http::status::service_unavailable;
    case errc::bad_passphrase:
    case errc::storage_failure:
    case errc::crypto_failure:
    case errc::internal: return http::status::internal_server_error;
    }
    return http::status::internal_server_error;
}

json::object error_body(http::status s, std::string_view code, std::string_view message) {
    return json::object{{"error", std::string(http::obsolete_reason(s))}, {"message", message}, {"code", code}};
}

response error_json(http::status s, std::string_view code, std::string_view message) {
    return json_response(s, error_body(s, code, message));
}

response error_response(const error& e) {
    const auto status = status_of(e.code);
    auto body = error_body(status, errc_name(e.code),
                           status == http::status::internal_server_error ? std::string_view("internal server error")
                                                                         : std::string_view(e.message));
    if (!e.field.empty()) body["field"] = e.field;
    return json_response(status, body);
}

response error_response(errc code, std::string message, std::string field) {
    return error_response(make_error(code, std::move(message), std::move(field)));
}

response json_response(http::status s, const json::value& body) {
    response res{s, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = json::serialize(body);
    return res;
}

bool media_type_is(std::string_view ct, std::string_view media_type) {
    ct = ct.substr(0, ct.find(';'));
    while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.remove_suffix(1);
    while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
    if (ct.size() != media_type.size()) return false;
    for (std::size_t i = 0; i < ct.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(ct[i])) != std::tolower(static_cast<unsigned char>(media_type[i])))
            return false;
    return true;
}

response bytes_response(http::status s, std::string_view content_type, std::string body, std::string_view filename) {
    response res{s, 11};
    res.set(http::field::content_type, content_type);
    if (!filename.empty())
        res.set(http::field::content_disposition, "attachment; filename=\"" + std::string(filename) + "\"");
    res.body() = std::move(body);
    return res;
}

} // namespace certmate::net
