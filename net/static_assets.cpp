// The dashboard's files over HTTP. index.html is served at "/", "/audit", "/client-certificates"
// and every path below it (client-side routes); the other files at /assets/<name> and, with long
// caching, at /assets/v-<version>/<name> where <version> is a hash over all files (index.html
// names its scripts and styles there, so a new build never meets a stale cache).
// Strong ETags (RFC 9110 8.8.3) with If-None-Match -> 304 (RFC 9110 13.1.2); gzip (RFC 1952) when
// Accept-Encoding allows it, with Vary: Accept-Encoding. Every answer carries a strict
// Content-Security-Policy (no inline script or style), Referrer-Policy and frame-ancestors.
#include "core/keys.hpp"
#include "core/tar.hpp"
#include "net/api.hpp"
#include "net/static_assets.hpp"

#include <map>
#include <stdexcept>

namespace certmate::net {

namespace {

struct served_file {
    std::string content_type;
    std::string body;
    std::string gzipped; // empty: not worth compressing (or not text)
    std::string etag;    // quoted, strong
};

std::string_view content_type_of(std::string_view name) {
    auto ends = [&](std::string_view s) { return name.ends_with(s); };
    if (ends(".html")) return "text/html; charset=utf-8";
    if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
    if (ends(".css")) return "text/css; charset=utf-8";
    if (ends(".svg")) return "image/svg+xml";
    if (ends(".png")) return "image/png";
    if (ends(".ico")) return "image/x-icon";
    if (ends(".json")) return "application/json";
    if (ends(".csv")) return "text/csv; charset=utf-8";
    if (ends(".txt")) return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

bool is_text(std::string_view content_type) {
    return content_type.starts_with("text/") || content_type == "image/svg+xml" || content_type == "application/json";
}

// SHA-256 as hex; a failure (OpenSSL out of memory) throws, and dispatch answers 500.
std::string hash_hex(std::string_view data) { return sha256_hex(data).value(); }

struct asset_table {
    std::string version; // 16 hex digits over every file's name and bytes
    std::map<std::string, served_file, std::less<>> files;
};

served_file make_file(std::string_view name, std::string body) {
    served_file f;
    f.content_type = content_type_of(name);
    f.etag = "\"" + hash_hex(body).substr(0, 32) + "\"";
    if (is_text(f.content_type) && body.size() > 256) {
        // At the best level, once per file (at first use); a failure serves it uncompressed.
        auto gz = gzip(body, 9);
        if (gz && gz->size() < body.size()) f.gzipped = std::move(*gz);
    }
    f.body = std::move(body);
    return f;
}

// Built once, at first use (a function-local static: thread-safe), then read-only.
const asset_table& table() {
    static const asset_table t = [] {
        asset_table out;
        std::string all;
        for (const auto& a : assets::all()) {
            all += a.name;
            all += '\0';
            all += hash_hex(a.data);
        }
        out.version = hash_hex(all).substr(0, 16);
        for (const auto& a : assets::all()) {
            std::string body(a.data);
            if (a.name == "index.html") {
                // The page names its files under the versioned prefix: "/assets/" -> "/assets/v-<version>/".
                const std::string from = "/assets/", to = "/assets/v-" + out.version + "/";
                for (auto p = body.find(from); p != std::string::npos; p = body.find(from, p + to.size()))
                    body.replace(p, from.size(), to);
            }
            out.files.emplace(std::string(a.name), make_file(a.name, std::move(body)));
        }
        return out;
    }();
    return t;
}

// Whether Accept-Encoding allows gzip (RFC 9110 12.5.3: "gzip" or "x-gzip", q > 0; "*" counts).
bool accepts_gzip(std::string_view accept) {
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto item = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        auto semi = item.find(';');
        auto coding = item.substr(0, semi);
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.remove_suffix(1);
        std::string lower(coding);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower != "gzip" && lower != "x-gzip" && lower != "*") continue;
        if (semi != std::string_view::npos) {
            auto params = item.substr(semi + 1);
            auto q = params.find("q=");
            if (q != std::string_view::npos) {
                auto v = params.substr(q + 2);
                if (!v.empty() && v.front() == '0' && v.find_first_of("123456789") == std::string_view::npos)
                    continue; // q=0, 0.0, 0.000: refused
            }
        }
        return true;
    }
    return false;
}

// Whether an If-None-Match value lists `etag` (weak comparison, RFC 9110 13.1.2) or is "*".
bool none_match(std::string_view header, std::string_view etag) {
    while (!header.empty()) {
        auto comma = header.find(',');
        auto item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.starts_with("W/")) item.remove_prefix(2);
        if (item == "*" || item == etag) return true;
    }
    return false;
}

// The headers every dashboard answer carries (issue 13): scripts and styles from this origin only.
void security_headers(response& res) {
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
    res.set("Cross-Origin-Opener-Policy", "same-origin");
}

response serve_file(const call& c, const served_file& f, std::string_view cache_control) {
    response res;
    res.version(c.req.version());
    res.set(http::field::etag, f.etag);
    res.set(http::field::cache_control, cache_control);
    res.set(http::field::vary, "Accept-Encoding");
    security_headers(res);
    if (none_match(c.req[http::field::if_none_match], f.etag)) {
        res.result(http::status::not_modified);
        return res;
    }
    res.result(http::status::ok);
    res.set(http::field::content_type, f.content_type);
    if (!f.gzipped.empty() && accepts_gzip(c.req[http::field::accept_encoding])) {
        res.set(http::field::content_encoding, "gzip");
        res.body() = f.gzipped;
    } else {
        res.body() = f.body;
    }
    res.prepare_payload();
    return res;
}

response not_found() {
    auto res = error_response(errc::not_found, "no such resource");
    security_headers(res);
    return res;
}

// GET /, /audit, /client-certificates[/...]: the page; its script routes on the path.
asio::awaitable<response> dashboard_page(call& c) {
    const auto& t = table();
    auto it = t.files.find("index.html");
    if (it == t.files.end()) co_return not_found();
    co_return serve_file(c, it->second, "no-cache");
}

// GET /assets/{*path}: a file by name; under v-<current version>/ cached for a year (immutable).
asio::awaitable<response> dashboard_asset(call& c) {
    const auto& t = table();
    std::string_view path = c.params.empty() ? std::string_view() : std::string_view(c.params.front().second);
    std::string_view cache = "no-cache";
    const std::string prefix = "v-" + t.version + "/";
    if (path.starts_with(prefix)) {
        path.remove_prefix(prefix.size());
        cache = "public, max-age=31536000, immutable";
    }
    auto it = t.files.find(path);
    if (path == "index.html" || it == t.files.end()) co_return not_found();
    co_return serve_file(c, it->second, cache);
}

// GET /api/session: who the caller is (the dashboard's sign-in check). Public, so that the page can
// ask without a credential (on the TLS listener, a client certificate alone) and learn "nobody"
// without a failed request; an unknown token is answered as nobody, never with a role.
asio::awaitable<response> session_info(call& c) {
    if (!c.role) co_return json_response(http::status::ok, boost::json::object{{"authenticated", false}});
    const char* by = c.who.actor == principal::kind::certificate ? "certificate" : "token";
    co_return json_response(http::status::ok, boost::json::object{{"authenticated", true},
                                                                  {"name", c.who.user},
                                                                  {"role", to_string(*c.role)},
                                                                  {"authenticated_by", by}});
}

} // namespace

void add_dashboard_routes(router& r) {
    using http::verb;
    constexpr auto pub = std::nullopt;
    // GET and HEAD (RFC 9110 9.3.2: the same headers; the server drops the content of a HEAD answer).
    for (auto v : {verb::get, verb::head}) {
        for (const char* p : {"/", "/audit", "/client-certificates", "/client-certificates/{*path}"})
            r.add({v, p, pub, rate_class::default_, body_kind::none, false, dashboard_page});
        r.add({v, "/assets/{*path}", pub, rate_class::default_, body_kind::none, false, dashboard_asset});
    }
    r.add({verb::get, "/api/session", pub, rate_class::default_, body_kind::none, false, session_info});
}

} // namespace certmate::net
