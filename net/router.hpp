// The route table: method + path pattern ("/api/client-certs/{id}/revoke") -> handler, with the
// role the route needs and the rate-limit class it counts against. Tells an unknown path (404)
// from a known path with the wrong method (405 + the methods to list in Allow). A literal segment
// beats a parameter ("/api/client-certs/stats" over "/api/client-certs/{id}"). A last segment
// "{*name}" takes the rest of the path as sent (slashes and escapes kept, at least one character).
// Thread-safety: built once before the server starts, then read-only.
#pragma once

#include "core/cert_record.hpp"
#include "core/rate_limit.hpp"
#include "net/target.hpp"

#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certmate::net {

enum class body_kind {
    none,          // no body expected (a body is ignored)
    json_optional, // JSON object or nothing
    json,          // JSON object required
    raw,           // any bytes: the handler checks the content type itself
};

// Whether the pipeline checks for Content-Type: application/json.
constexpr bool expects_json(body_kind k) { return k == body_kind::json || k == body_kind::json_optional; }

template <class Handler>
struct basic_route {
    boost::beast::http::verb method;
    std::string pattern;
    std::optional<api_role> role; // nullopt: public
    rate_class cls = rate_class::default_;
    body_kind body = body_kind::none;
    bool protocol = false; // served on plain HTTP even when server.api_on_http = false
    Handler handler;

    // Whether the last segment is a catch-all "{*name}" (the rest of the path, as sent).
    bool takes_tail() const { return pattern.ends_with("}") && pattern.find("/{*") != std::string::npos; }
};

template <class Handler>
class basic_router {
public:
    using route = basic_route<Handler>;

    void add(route r) {
        entry e{split(r.pattern), std::move(r)};
        entries_.push_back(std::move(e));
    }

    // Every registered route, in registration order (docs/openapi.yaml is checked against these).
    std::vector<const route*> routes() const {
        std::vector<const route*> out;
        out.reserve(entries_.size());
        for (const auto& e : entries_) out.push_back(&e.r);
        return out;
    }

    struct match {
        const route* found = nullptr; // the route for this method and path
        path_params params;
        std::vector<boost::beast::http::verb> allowed; // path known, method not: for Allow
        const route* any = nullptr;                    // some route of this path (its pattern labels metrics)
    };

    // `path` without the query; segments are percent-decoded before matching (a catch-all tail is not).
    match find(boost::beast::http::verb method, std::string_view path) const {
        match m;
        if (path.empty() || path.front() != '/') return m;
        const auto segs = split_decoded(path);
        int best = -1;
        for (const auto& e : entries_) {
            path_params params;
            int literal = 0;
            if (!matches(e.segments, path, segs, params, literal)) continue;
            if (!m.any) m.any = &e.r;
            if (e.r.method == method) {
                if (literal > best) {
                    best = literal;
                    m.found = &e.r;
                    m.params = std::move(params);
                }
            } else if (std::find(m.allowed.begin(), m.allowed.end(), e.r.method) == m.allowed.end()) {
                m.allowed.push_back(e.r.method);
            }
        }
        if (m.found) m.allowed.clear();
        return m;
    }

private:
    struct entry {
        std::vector<std::string> segments;
        route r;
    };

    // Calls f(begin, end) for each non-empty '/'-separated segment of `path`.
    template <class F>
    static void for_each_segment(std::string_view path, F f) {
        std::size_t i = 0;
        while (i < path.size()) {
            if (path[i] == '/') {
                ++i;
                continue;
            }
            auto j = path.find('/', i);
            if (j == std::string_view::npos) j = path.size();
            f(i, j);
            i = j;
        }
    }

    static std::vector<std::string> split(std::string_view path) {
        std::vector<std::string> out;
        for_each_segment(path, [&](std::size_t b, std::size_t e) { out.emplace_back(path.substr(b, e - b)); });
        return out;
    }

    // A segment percent-decoded (nullopt: a malformed escape), and where it ends in the path as sent.
    struct segment {
        std::size_t end = 0;
        std::optional<std::string> decoded;
    };

    static std::vector<segment> split_decoded(std::string_view path) {
        std::vector<segment> out;
        for_each_segment(path, [&](std::size_t b, std::size_t e) {
            out.push_back(segment{e, percent_decode(path.substr(b, e - b))});
        });
        return out;
    }

    static bool is_tail(const std::string& p) { return p.size() > 3 && p.starts_with("{*") && p.back() == '}'; }

    static bool matches(const std::vector<std::string>& pattern, std::string_view path,
                        const std::vector<segment>& segs, path_params& params, int& literal) {
        const bool tail = !pattern.empty() && is_tail(pattern.back());
        const std::size_t fixed = tail ? pattern.size() - 1 : pattern.size();
        if (tail ? segs.size() <= fixed : segs.size() != fixed) return false;
        for (std::size_t i = 0; i < fixed; ++i) {
            const auto& p = pattern[i];
            if (!segs[i].decoded) return false;
            if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
                params.emplace_back(p.substr(1, p.size() - 2), *segs[i].decoded);
            } else if (p == *segs[i].decoded) {
                ++literal;
            } else {
                return false;
            }
        }
        if (tail) {
            // Everything after the '/' that follows the last fixed segment, as sent.
            const std::size_t from = fixed ? segs[fixed - 1].end + 1 : 1;
            params.emplace_back(pattern.back().substr(2, pattern.back().size() - 3), std::string(path.substr(from)));
        }
        return true;
    }

    std::vector<entry> entries_;
};

} // namespace certmate::net
