#include "core/record_codec.hpp"

namespace certmate {

namespace {

void put_u(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}
void put_i(std::string& out, std::int64_t v) { // zig-zag
    put_u(out, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}
void put_s(std::string& out, std::string_view s) {
    put_u(out, s.size());
    out += s;
}
void put_t(std::string& out, time_point t) {
    put_i(out, std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}
void put_ot(std::string& out, const std::optional<time_point>& t) {
    out += static_cast<char>(t ? 1 : 0);
    if (t) put_t(out, *t);
}
void put_reason(std::string& out, const std::optional<revocation_reason>& r) {
    put_u(out, r ? static_cast<std::uint64_t>(*r) + 1 : 0);
}
void put_v(std::string& out, const std::vector<std::string>& v) {
    put_u(out, v.size());
    for (const auto& s : v) put_s(out, s);
}

// Reads from a string_view; any overrun or bad value sets ok = false (and keeps returning zeros).
struct reader {
    std::string_view in;
    bool ok = true;

    std::uint64_t u() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (in.empty()) break;
            const auto b = static_cast<unsigned char>(in.front());
            in.remove_prefix(1);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        ok = false;
        return 0;
    }
    std::int64_t i() {
        const std::uint64_t z = u();
        return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
    }
    bool b() {
        const auto v = u();
        if (v > 1) ok = false;
        return v == 1;
    }
    std::string s() {
        const auto n = u();
        if (!ok || n > in.size()) {
            ok = false;
            return {};
        }
        std::string out(in.substr(0, n));
        in.remove_prefix(n);
        return out;
    }
    time_point t() {
        return time_point(std::chrono::duration_cast<time_point::duration>(std::chrono::nanoseconds(i())));
    }
    std::optional<time_point> ot() {
        if (!b()) return std::nullopt;
        return t();
    }
    std::optional<revocation_reason> reason() {
        const auto v = u();
        if (v == 0) return std::nullopt;
        if (v > 11) ok = false;
        return static_cast<revocation_reason>(v - 1);
    }
    std::vector<std::string> v() {
        const auto n = u();
        std::vector<std::string> out;
        if (!ok || n > in.size()) {
            ok = false;
            return out;
        }
        out.reserve(n);
        for (std::uint64_t k = 0; k < n && ok; ++k) out.push_back(s());
        return out;
    }
};

} // namespace

void encode_record(const cert_record& r, std::string& out) {
    put_s(out, r.identifier);
    for (const auto* f : {&r.subject.common_name, &r.subject.email, &r.subject.organization,
                          &r.subject.organizational_unit, &r.subject.country, &r.subject.state, &r.subject.locality})
        put_s(out, *f);
    put_s(out, r.serial_number);
    put_v(out, r.key_usage);
    put_v(out, r.extended_key_usage);
    put_t(out, r.created_at);
    put_t(out, r.not_before);
    put_t(out, r.expires_at);
    put_u(out, static_cast<std::uint64_t>(r.usage));
    put_s(out, r.notes);
    put_u(out, r.revocation.revoked ? 1 : 0);
    put_ot(out, r.revocation.revoked_at);
    put_reason(out, r.revocation.reason);
    put_u(out, r.renewal.renewal_enabled ? 1 : 0);
    put_i(out, r.renewal.renewal_threshold_days);
    put_ot(out, r.renewal.last_renewed_at);
    put_s(out, r.fingerprint_sha256);
    put_s(out, r.key_type);
    put_v(out, r.sans.dns);
    put_v(out, r.sans.email);
    put_v(out, r.sans.ip);
    put_v(out, r.sans.uri);
    put_u(out, r.role ? static_cast<std::uint64_t>(*r.role) : 0);
    put_u(out, r.history.size());
    for (const auto& h : r.history) {
        put_s(out, h.serial_number);
        put_t(out, h.not_before);
        put_t(out, h.expires_at);
        put_s(out, h.fingerprint_sha256);
        put_t(out, h.superseded_at);
        put_u(out, h.revoked ? 1 : 0);
        put_ot(out, h.revoked_at);
        put_reason(out, h.reason);
    }
    put_u(out, r.has_private_key ? 1 : 0);
}

void append_framed_record(const cert_record& r, std::string& out) {
    thread_local std::string one;
    one.clear();
    encode_record(r, one);
    put_s(out, one);
}

std::optional<cert_record> decode_record(std::string_view& in) {
    reader rd{in};
    cert_record r;
    r.identifier = rd.s();
    for (auto* f : {&r.subject.common_name, &r.subject.email, &r.subject.organization, &r.subject.organizational_unit,
                    &r.subject.country, &r.subject.state, &r.subject.locality})
        *f = rd.s();
    r.serial_number = rd.s();
    r.key_usage = rd.v();
    r.extended_key_usage = rd.v();
    r.created_at = rd.t();
    r.not_before = rd.t();
    r.expires_at = rd.t();
    const auto usage = rd.u();
    if (usage > static_cast<std::uint64_t>(cert_usage::server)) rd.ok = false;
    r.usage = static_cast<cert_usage>(usage);
    r.notes = rd.s();
    r.revocation.revoked = rd.b();
    r.revocation.revoked_at = rd.ot();
    r.revocation.reason = rd.reason();
    r.renewal.renewal_enabled = rd.b();
    r.renewal.renewal_threshold_days = static_cast<int>(rd.i());
    r.renewal.last_renewed_at = rd.ot();
    r.fingerprint_sha256 = rd.s();
    r.key_type = rd.s();
    r.sans.dns = rd.v();
    r.sans.email = rd.v();
    r.sans.ip = rd.v();
    r.sans.uri = rd.v();
    const auto role = rd.u();
    if (role > static_cast<std::uint64_t>(api_role::admin)) rd.ok = false;
    if (role) r.role = static_cast<api_role>(role);
    const auto n = rd.u();
    if (n > rd.in.size()) rd.ok = false;
    for (std::uint64_t k = 0; k < n && rd.ok; ++k) {
        history_entry h;
        h.serial_number = rd.s();
        h.not_before = rd.t();
        h.expires_at = rd.t();
        h.fingerprint_sha256 = rd.s();
        h.superseded_at = rd.t();
        h.revoked = rd.b();
        h.revoked_at = rd.ot();
        h.reason = rd.reason();
        r.history.push_back(std::move(h));
    }
    r.has_private_key = rd.b();
    if (!rd.ok || !valid_identifier(r.identifier)) return std::nullopt;
    in = rd.in;
    return r;
}

} // namespace certmate
