// Typed request bodies: DTO structs described with Boost.Describe and read from JSON by one
// generic reader. Every failure is an errc::invalid_argument naming the field ("validity_days",
// "subject_alt_names.dns[1]"); fields the DTO does not describe are refused the same way. Types are
// strict: a boolean must be a JSON boolean ("false" is an error), an integer a JSON integer.
// `null` reads as absent, except for std::optional<std::optional<T>> where it means "clear".
// Thread-safety: free functions.
#pragma once

#include "core/errc.hpp"

#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>

#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace certmate::net::dto {

namespace json = boost::json;

// A serial number given as a string (decimal or 0x hex) or as a JSON integer.
struct serial_text {
    std::string text;
};

struct sans {
    std::optional<std::vector<std::string>> dns, email, ip, uri;
};
BOOST_DESCRIBE_STRUCT(sans, (), (dns, email, ip, uri))

struct create_cert {
    std::optional<std::string> common_name, identifier, email, organization, organizational_unit, country, state,
        locality, cert_usage, key_type, csr, notes, api_role;
    std::optional<int> validity_days, renewal_threshold_days;
    std::optional<sans> subject_alt_names;
    std::optional<std::vector<std::string>> extended_key_usage;
    std::optional<bool> renewal_enabled;
    // CertMate (Python) names
    std::optional<int> days_valid;
    std::optional<std::string> csr_pem;
    std::optional<bool> generate_key;
};
BOOST_DESCRIBE_STRUCT(create_cert, (),
                      (common_name, identifier, email, organization, organizational_unit, country, state, locality,
                       cert_usage, key_type, csr, notes, api_role, validity_days, renewal_threshold_days,
                       subject_alt_names, extended_key_usage, renewal_enabled, days_valid, csr_pem, generate_key))

struct revoke {
    std::optional<std::string> reason;
};
BOOST_DESCRIBE_STRUCT(revoke, (), (reason))

struct renew {
    std::optional<int> validity_days, days_valid;
};
BOOST_DESCRIBE_STRUCT(renew, (), (validity_days, days_valid))

struct pkcs12 {
    std::optional<std::string> password;
};
BOOST_DESCRIBE_STRUCT(pkcs12, (), (password))

struct update_cert {
    std::optional<std::string> notes;
    std::optional<bool> renewal_enabled;
    std::optional<int> renewal_threshold_days;
    std::optional<std::optional<std::string>> api_role;
};
BOOST_DESCRIBE_STRUCT(update_cert, (), (notes, renewal_enabled, renewal_threshold_days, api_role))

struct ocsp_status {
    std::optional<serial_text> serial_number;
};
BOOST_DESCRIBE_STRUCT(ocsp_status, (), (serial_number))

// ---- the reader ----
namespace detail {

// Declared first so that each overload sees the others (they recurse into each other).
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::vector<T>& out);
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::optional<T>& out);
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::optional<std::optional<T>>& out);
template <class T, class D = boost::describe::describe_members<T, boost::describe::mod_public>>
std::optional<error> read(const json::value& v, const std::string& f, T& out);

inline error bad(const std::string& field, std::string what) {
    return make_error(errc::invalid_argument, field + ": " + what, field);
}

inline std::optional<error> read(const json::value& v, const std::string& f, std::string& out) {
    if (!v.is_string()) return bad(f, "must be a string");
    out = std::string(v.get_string());
    return std::nullopt;
}
inline std::optional<error> read(const json::value& v, const std::string& f, bool& out) {
    if (!v.is_bool()) return bad(f, "must be a JSON boolean (true or false)");
    out = v.get_bool();
    return std::nullopt;
}
inline std::optional<error> read(const json::value& v, const std::string& f, int& out) {
    std::int64_t n = 0;
    if (v.is_int64())
        n = v.get_int64();
    else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
        n = static_cast<std::int64_t>(v.get_uint64());
    else
        return bad(f, "must be an integer");
    if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max()) return bad(f, "is out of range");
    out = static_cast<int>(n);
    return std::nullopt;
}
inline std::optional<error> read(const json::value& v, const std::string& f, serial_text& out) {
    if (v.is_string())
        out.text = std::string(v.get_string());
    else if (v.is_uint64())
        out.text = std::to_string(v.get_uint64());
    else if (v.is_int64() && v.get_int64() >= 0)
        out.text = std::to_string(v.get_int64());
    else
        return bad(f, "must be a serial number string");
    return std::nullopt;
}
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::vector<T>& out) {
    if (!v.is_array()) return bad(f, "must be an array");
    out.clear();
    std::size_t i = 0;
    for (const auto& item : v.get_array()) {
        T t{};
        if (auto e = read(item, f + "[" + std::to_string(i++) + "]", t)) return e;
        out.push_back(std::move(t));
    }
    return std::nullopt;
}
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::optional<T>& out) {
    if (v.is_null()) {
        out.reset();
        return std::nullopt;
    }
    T t{};
    if (auto e = read(v, f, t)) return e;
    out = std::move(t);
    return std::nullopt;
}
// Tri-state: absent (nullopt), null (some(nullopt)), value.
template <class T>
std::optional<error> read(const json::value& v, const std::string& f, std::optional<std::optional<T>>& out) {
    if (v.is_null()) {
        out.emplace(std::nullopt);
        return std::nullopt;
    }
    T t{};
    if (auto e = read(v, f, t)) return e;
    out.emplace(std::move(t));
    return std::nullopt;
}
template <class T, class D>
std::optional<error> read(const json::value& v, const std::string& f, T& out) {
    if (!v.is_object()) return bad(f.empty() ? std::string("body") : f, "must be a JSON object");
    const auto& obj = v.get_object();
    const std::string prefix = f.empty() ? std::string() : f + ".";
    for (const auto& kv : obj) {
        bool known = false;
        boost::mp11::mp_for_each<D>([&](auto d) { known = known || kv.key() == d.name; });
        if (!known) return bad(prefix + std::string(kv.key()), "unknown field");
    }
    std::optional<error> err;
    boost::mp11::mp_for_each<D>([&](auto d) {
        if (err) return;
        if (auto it = obj.find(d.name); it != obj.end()) err = read(it->value(), prefix + d.name, out.*d.pointer);
    });
    return err;
}

} // namespace detail

// Parses `body` as a JSON object into T. An empty body reads as {}.
template <class T>
result<T> parse(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) body = "{}";
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return make_error(errc::invalid_argument, "the body is not valid JSON", "body");
    T out{};
    if (auto e = detail::read(v, std::string(), out)) return *e;
    return out;
}

} // namespace certmate::net::dto
