#include "core/cert_json.hpp"

#include "core/json_text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

namespace certmate {

namespace json = boost::json;

namespace {

json::value time_or_null(const std::optional<time_point>& t) {
    if (!t) return nullptr;
    return json::string(format_time(*t));
}

// The subject's fields as metadata.json names and orders them; common_name is required.
constexpr std::pair<std::string_view, std::string subject_fields::*> subject_keys[] = {
    {"common_name", &subject_fields::common_name},   {"email", &subject_fields::email},
    {"organization", &subject_fields::organization}, {"organizational_unit", &subject_fields::organizational_unit},
    {"country", &subject_fields::country},           {"state", &subject_fields::state},
    {"locality", &subject_fields::locality},
};

json::array string_array(const std::vector<std::string>& v) {
    json::array a;
    a.reserve(v.size());
    for (const auto& s : v) a.emplace_back(s);
    return a;
}

// Reads typed fields of one JSON object; every error names the field with its full path.
class reader {
public:
    reader(const json::object& o, std::string prefix) : o_(o), prefix_(std::move(prefix)) {}

    error missing(std::string_view k) const { return make_error(errc::invalid_argument, "missing field", path(k)); }
    error mistyped(std::string_view k, std::string_view what) const {
        return make_error(errc::invalid_argument, "field must be " + std::string(what), path(k));
    }
    std::string path(std::string_view k) const { return prefix_ + std::string(k); }
    const json::value* get(std::string_view k) const { return o_.if_contains(k); }

    // Required string (null is not accepted).
    result<std::string> str(std::string_view k) const {
        const auto* v = get(k);
        if (!v) return missing(k);
        if (!v->is_string()) return mistyped(k, "a string");
        return std::string(v->get_string());
    }
    // Optional string: absent or null gives "".
    result<std::string> opt_str(std::string_view k) const {
        const auto* v = get(k);
        if (!v || v->is_null()) return std::string();
        if (!v->is_string()) return mistyped(k, "a string");
        return std::string(v->get_string());
    }
    result<bool> opt_bool(std::string_view k, bool def) const {
        const auto* v = get(k);
        if (!v || v->is_null()) return def;
        if (!v->is_bool()) return mistyped(k, "a boolean");
        return v->get_bool();
    }
    result<int> opt_int(std::string_view k, int def) const {
        const auto* v = get(k);
        if (!v || v->is_null()) return def;
        if (v->is_int64() && v->get_int64() >= INT32_MIN && v->get_int64() <= INT32_MAX)
            return static_cast<int>(v->get_int64());
        if (v->is_uint64() && v->get_uint64() <= INT32_MAX) return static_cast<int>(v->get_uint64());
        return mistyped(k, "an integer");
    }
    result<time_point> time(std::string_view k) const {
        const auto* v = get(k);
        if (!v) return missing(k);
        if (!v->is_string()) return mistyped(k, "an RFC 3339 time");
        auto t = parse_time(v->get_string());
        if (!t) return mistyped(k, "an RFC 3339 time");
        return *t;
    }
    result<std::optional<time_point>> opt_time(std::string_view k) const {
        const auto* v = get(k);
        if (!v || v->is_null()) return std::optional<time_point>{};
        if (!v->is_string()) return mistyped(k, "an RFC 3339 time or null");
        auto t = parse_time(v->get_string());
        if (!t) return mistyped(k, "an RFC 3339 time or null");
        return std::optional<time_point>{*t};
    }
    result<std::vector<std::string>> opt_str_array(std::string_view k) const {
        std::vector<std::string> out;
        const auto* v = get(k);
        if (!v || v->is_null()) return out;
        if (!v->is_array()) return mistyped(k, "an array of strings");
        for (const auto& e : v->get_array()) {
            if (!e.is_string()) return mistyped(k, "an array of strings");
            out.emplace_back(e.get_string());
        }
        return out;
    }
    // A decimal serial number: a string of digits (an integer is accepted from older files).
    result<std::string> serial(std::string_view k) const {
        const auto* v = get(k);
        if (!v) return missing(k);
        std::string s;
        if (v->is_string())
            s = std::string(v->get_string());
        else if (v->is_uint64())
            s = std::to_string(v->get_uint64());
        else if (v->is_int64() && v->get_int64() >= 0)
            s = std::to_string(v->get_int64());
        else
            return mistyped(k, "a decimal string");
        if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return mistyped(k, "a decimal string");
        return s;
    }

private:
    const json::object& o_;
    std::string prefix_;
};

#define CM_TRY(var, expr)                                                                                              \
    auto var##_r = (expr);                                                                                             \
    if (!var##_r) return var##_r.error();                                                                              \
    auto var = std::move(*var##_r)

// Stored reasons may include those a caller cannot choose, so every RFC 5280 name is read.
std::optional<revocation_reason> parse_any_revocation_reason(std::string_view name) {
    for (int i = 0; i <= 10; ++i) {
        if (i == 7) continue;
        auto r = static_cast<revocation_reason>(i);
        if (to_string(r) == name) return r;
    }
    return std::nullopt;
}

result<history_entry> history_from_json(const json::value& v, const std::string& prefix) {
    if (!v.is_object()) return make_error(errc::invalid_argument, "field must be an object", prefix);
    reader rd(v.get_object(), prefix + ".");
    history_entry h;
    CM_TRY(serial, rd.serial("serial_number"));
    CM_TRY(nb, rd.time("not_before"));
    CM_TRY(exp, rd.time("expires_at"));
    CM_TRY(fp, rd.opt_str("fingerprint_sha256"));
    CM_TRY(sup, rd.time("superseded_at"));
    CM_TRY(rev, rd.opt_bool("revoked", false));
    CM_TRY(rev_at, rd.opt_time("revoked_at"));
    std::optional<revocation_reason> reason;
    if (const auto* rv = rd.get("reason"); rv && !rv->is_null()) {
        auto parsed = rv->is_string() ? parse_any_revocation_reason(rv->get_string()) : std::nullopt;
        if (!parsed)
            return make_error(errc::invalid_argument, "field must be an RFC 5280 reason name", prefix + ".reason");
        reason = *parsed;
    }
    h.serial_number = std::move(serial);
    h.not_before = nb;
    h.expires_at = exp;
    h.fingerprint_sha256 = std::move(fp);
    h.superseded_at = sup;
    // Entries written before whole-identity revocation carry neither: they were revoked as
    // superseded at superseded_at, which is what readers take for a missing value.
    h.revoked = rev;
    h.revoked_at = rev_at;
    h.reason = reason;
    return h;
}

} // namespace

json::object to_json(const subject_alt_names& s) {
    json::object o;
    o["dns"] = string_array(s.dns);
    o["email"] = string_array(s.email);
    o["ip"] = string_array(s.ip);
    o["uri"] = string_array(s.uri);
    return o;
}

json::object to_json(const cert_record& r) {
    json::object o;
    o["type"] = "client_certificate";
    o["identifier"] = r.identifier;
    for (const auto& [key, field] : subject_keys) o[key] = r.subject.*field;
    o["serial_number"] = r.serial_number;
    o["key_usage"] = string_array(r.key_usage);
    o["extended_key_usage"] = string_array(r.extended_key_usage);
    o["created_at"] = format_time(r.created_at);
    o["not_before"] = format_time(r.not_before);
    o["expires_at"] = format_time(r.expires_at);
    o["cert_usage"] = to_string(r.usage);
    o["notes"] = r.notes;

    json::object rev;
    rev["revoked"] = r.revocation.revoked;
    rev["revoked_at"] = time_or_null(r.revocation.revoked_at);
    // reason_revoked is the Python CertMate's field; reason is the same RFC 5280 5.3.1 name.
    json::value reason = nullptr;
    if (r.revocation.reason) reason = json::string(to_string(*r.revocation.reason));
    rev["reason_revoked"] = reason;
    rev["reason"] = reason;
    o["revocation"] = std::move(rev);

    json::object ren;
    ren["renewal_enabled"] = r.renewal.renewal_enabled;
    ren["renewal_threshold_days"] = r.renewal.renewal_threshold_days;
    ren["last_renewed_at"] = time_or_null(r.renewal.last_renewed_at);
    o["renewal"] = std::move(ren);

    o["fingerprint_sha256"] = r.fingerprint_sha256;
    o["key_type"] = r.key_type;
    o["subject_alt_names"] = to_json(r.sans);
    o["api_role"] = r.role ? json::value(json::string(to_string(*r.role))) : json::value(nullptr);

    json::array hist;
    hist.reserve(r.history.size());
    for (const auto& h : r.history) {
        json::object e;
        e["serial_number"] = h.serial_number;
        e["not_before"] = format_time(h.not_before);
        e["expires_at"] = format_time(h.expires_at);
        e["fingerprint_sha256"] = h.fingerprint_sha256;
        e["superseded_at"] = format_time(h.superseded_at);
        e["revoked"] = h.revoked;
        e["revoked_at"] = time_or_null(h.revoked_at);
        e["reason"] = h.reason ? json::value(json::string(to_string(*h.reason))) : json::value(nullptr);
        hist.emplace_back(std::move(e));
    }
    o["history"] = std::move(hist);
    o["has_private_key"] = r.has_private_key;
    return o;
}

namespace {

void append_string_array(std::string& out, const std::vector<std::string>& v) {
    out += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, v[i]);
    }
    out += ']';
}

void append_time_or_null(std::string& out, const std::optional<time_point>& t) {
    if (t)
        append_json_time(out, *t);
    else
        out += "null";
}

void append_reason_or_null(std::string& out, const std::optional<revocation_reason>& r) {
    if (r)
        append_json_string(out, to_string(*r));
    else
        out += "null";
}

} // namespace

// The same keys, order and values as to_json above (boost::json::object keeps insertion order).
void append_json(std::string& out, const cert_record& r, std::string_view status, std::string_view certificate_pem) {
    out += R"({"type":"client_certificate","identifier":)";
    append_json_string(out, r.identifier);
    for (const auto& [key, field] : subject_keys) {
        out += ",\"";
        out += key;
        out += "\":";
        append_json_string(out, r.subject.*field);
    }
    out += R"(,"serial_number":)";
    append_json_string(out, r.serial_number);
    out += R"(,"key_usage":)";
    append_string_array(out, r.key_usage);
    out += R"(,"extended_key_usage":)";
    append_string_array(out, r.extended_key_usage);
    out += R"(,"created_at":)";
    append_json_time(out, r.created_at);
    out += R"(,"not_before":)";
    append_json_time(out, r.not_before);
    out += R"(,"expires_at":)";
    append_json_time(out, r.expires_at);
    out += R"(,"cert_usage":)";
    append_json_string(out, to_string(r.usage));
    out += R"(,"notes":)";
    append_json_string(out, r.notes);

    out += R"(,"revocation":{"revoked":)";
    append_json_bool(out, r.revocation.revoked);
    out += R"(,"revoked_at":)";
    append_time_or_null(out, r.revocation.revoked_at);
    out += R"(,"reason_revoked":)";
    append_reason_or_null(out, r.revocation.reason);
    out += R"(,"reason":)";
    append_reason_or_null(out, r.revocation.reason);

    out += R"(},"renewal":{"renewal_enabled":)";
    append_json_bool(out, r.renewal.renewal_enabled);
    out += R"(,"renewal_threshold_days":)";
    append_json_int(out, r.renewal.renewal_threshold_days);
    out += R"(,"last_renewed_at":)";
    append_time_or_null(out, r.renewal.last_renewed_at);

    out += R"(},"fingerprint_sha256":)";
    append_json_string(out, r.fingerprint_sha256);
    out += R"(,"key_type":)";
    append_json_string(out, r.key_type);
    out += R"(,"subject_alt_names":{"dns":)";
    append_string_array(out, r.sans.dns);
    out += R"(,"email":)";
    append_string_array(out, r.sans.email);
    out += R"(,"ip":)";
    append_string_array(out, r.sans.ip);
    out += R"(,"uri":)";
    append_string_array(out, r.sans.uri);
    out += R"(},"api_role":)";
    if (r.role)
        append_json_string(out, to_string(*r.role));
    else
        out += "null";

    out += R"(,"history":[)";
    for (std::size_t i = 0; i < r.history.size(); ++i) {
        const auto& h = r.history[i];
        out += i ? R"(,{"serial_number":)" : R"({"serial_number":)";
        append_json_string(out, h.serial_number);
        out += R"(,"not_before":)";
        append_json_time(out, h.not_before);
        out += R"(,"expires_at":)";
        append_json_time(out, h.expires_at);
        out += R"(,"fingerprint_sha256":)";
        append_json_string(out, h.fingerprint_sha256);
        out += R"(,"superseded_at":)";
        append_json_time(out, h.superseded_at);
        out += R"(,"revoked":)";
        append_json_bool(out, h.revoked);
        out += R"(,"revoked_at":)";
        append_time_or_null(out, h.revoked_at);
        out += R"(,"reason":)";
        append_reason_or_null(out, h.reason);
        out += '}';
    }
    out += R"(],"has_private_key":)";
    append_json_bool(out, r.has_private_key);
    if (!status.empty()) {
        out += R"(,"status":)";
        append_json_string(out, status);
    }
    if (!certificate_pem.empty()) {
        out += R"(,"certificate":)";
        append_json_string(out, certificate_pem);
    }
    out += '}';
}

result<cert_record> record_from_json(const json::value& v) {
    if (!v.is_object()) return make_error(errc::invalid_argument, "metadata must be a JSON object");
    const auto& o = v.get_object();
    reader rd(o, "");
    cert_record r;

    if (const auto* t = rd.get("type"); t && !t->is_null()) {
        if (!t->is_string() || t->get_string() != "client_certificate")
            return rd.mistyped("type", "\"client_certificate\"");
    }
    CM_TRY(id, rd.str("identifier"));
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    r.identifier = std::move(id);

    for (const auto& [key, field] : subject_keys) {
        CM_TRY(value, field == &subject_fields::common_name ? rd.str(key) : rd.opt_str(key));
        r.subject.*field = std::move(value);
    }

    CM_TRY(serial, rd.serial("serial_number"));
    r.serial_number = std::move(serial);
    CM_TRY(ku, rd.opt_str_array("key_usage"));
    r.key_usage = std::move(ku);
    CM_TRY(eku, rd.opt_str_array("extended_key_usage"));
    r.extended_key_usage = std::move(eku);

    CM_TRY(created, rd.time("created_at"));
    r.created_at = created;
    CM_TRY(expires, rd.time("expires_at"));
    r.expires_at = expires;
    // Files written by the original CertMate have no not_before: it is the issuance time.
    if (rd.get("not_before")) {
        CM_TRY(nb, rd.time("not_before"));
        r.not_before = nb;
    } else {
        r.not_before = created;
    }

    CM_TRY(usage_s, rd.str("cert_usage"));
    auto usage = parse_cert_usage(usage_s);
    if (!usage) return rd.mistyped("cert_usage", "api-mtls, vpn, other or server");
    r.usage = *usage;
    CM_TRY(notes, rd.opt_str("notes"));
    r.notes = std::move(notes);

    if (const auto* rv = rd.get("revocation"); rv && !rv->is_null()) {
        if (!rv->is_object()) return rd.mistyped("revocation", "an object");
        reader rr(rv->get_object(), "revocation.");
        CM_TRY(revoked, rr.opt_bool("revoked", false));
        r.revocation.revoked = revoked;
        CM_TRY(at, rr.opt_time("revoked_at"));
        r.revocation.revoked_at = at;
        // Prefer `reason`; fall back to the Python CertMate's `reason_revoked`.
        std::string_view key = "reason";
        const auto* reason = rr.get("reason");
        if (!reason || reason->is_null()) {
            key = "reason_revoked";
            reason = rr.get("reason_revoked");
        }
        if (reason && !reason->is_null()) {
            if (!reason->is_string()) return rr.mistyped(key, "an RFC 5280 reason name");
            auto found = parse_any_revocation_reason(reason->get_string());
            if (!found) return rr.mistyped(key, "an RFC 5280 reason name");
            r.revocation.reason = found;
        }
    }

    if (const auto* rn = rd.get("renewal"); rn && !rn->is_null()) {
        if (!rn->is_object()) return rd.mistyped("renewal", "an object");
        reader rr(rn->get_object(), "renewal.");
        CM_TRY(enabled, rr.opt_bool("renewal_enabled", true));
        r.renewal.renewal_enabled = enabled;
        CM_TRY(days, rr.opt_int("renewal_threshold_days", renewal_settings{}.renewal_threshold_days));
        r.renewal.renewal_threshold_days = days;
        CM_TRY(last, rr.opt_time("last_renewed_at"));
        r.renewal.last_renewed_at = last;
    }

    CM_TRY(fp, rd.opt_str("fingerprint_sha256"));
    r.fingerprint_sha256 = std::move(fp);
    CM_TRY(kt, rd.opt_str("key_type"));
    r.key_type = std::move(kt);

    if (const auto* s = rd.get("subject_alt_names"); s && !s->is_null()) {
        if (!s->is_object()) return rd.mistyped("subject_alt_names", "an object");
        reader rs(s->get_object(), "subject_alt_names.");
        CM_TRY(dns, rs.opt_str_array("dns"));
        CM_TRY(em, rs.opt_str_array("email"));
        CM_TRY(ip, rs.opt_str_array("ip"));
        CM_TRY(uri, rs.opt_str_array("uri"));
        r.sans = subject_alt_names{std::move(dns), std::move(em), std::move(ip), std::move(uri)};
    }

    if (const auto* role = rd.get("api_role"); role && !role->is_null()) {
        if (!role->is_string()) return rd.mistyped("api_role", "viewer, operator, admin or null");
        auto parsed = parse_api_role(role->get_string());
        if (!parsed) return rd.mistyped("api_role", "viewer, operator, admin or null");
        r.role = parsed;
    }

    if (const auto* h = rd.get("history"); h && !h->is_null()) {
        if (!h->is_array()) return rd.mistyped("history", "an array");
        const auto& arr = h->get_array();
        r.history.reserve(arr.size());
        for (std::size_t i = 0; i < arr.size(); ++i) {
            auto e = history_from_json(arr[i], "history[" + std::to_string(i) + "]");
            if (!e) return e.error();
            r.history.push_back(std::move(*e));
        }
    }

    CM_TRY(has_key, rd.opt_bool("has_private_key", false));
    r.has_private_key = has_key;
    return r;
}

#undef CM_TRY

} // namespace certmate
