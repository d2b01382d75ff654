// The route table: method + path pattern ("/api/client-certs/{id}/revoke") -> handler, with the
// role the route needs and the rate-limit class it counts against. Tells an unknown path (404)
// from a known path with the wrong method (405 + the methods to list in Allow). A literal segment
// beats a parameter ("/api/client-certs/stats" over "/api/client-certs/{id}").
// Thread-safety: built once before the server starts, then read-only.
#pragma once

#include "core/cert_record.hpp"
#include "core/rate_limit.hpp"

#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certmate::net {

using path_params = std::vector<std::pair<std::string, std::string>>;

enum class body_kind {
    none,          // no body expected (a body is ignored)
    json_optional, // JSON object or nothing
    json,          // JSON object required
};

template <class Handler>
struct basic_route {
    boost::beast::http::verb method;
    std::string pattern;
    std::optional<api_role> role;   // nullopt: public
    rate_class cls = rate_class::default_;
    body_kind body = body_kind::none;
    bool protocol = false;          // served on plain HTTP even when server.api_on_http = false
    Handler handler;
};

template <class Handler>
class basic_router {
public:
    using route = basic_route<Handler>;

    void add(route r) {
        entry e{split(r.pattern), std::move(r)};
        entries_.push_back(std::move(e));
    }

    struct match {
        const route* found = nullptr;  // the route for this method and path
        path_params params;
        std::vector<boost::beast::http::verb> allowed;  // path known, method not: for Allow
        const route* any = nullptr;    // some route of this path (its pattern labels metrics)
    };

    // `path` without the query; segments are percent-decoded before matching.
    match find(boost::beast::http::verb method, std::string_view path) const {
        match m;
        std::vector<std::string> segs;
        if (!split_decoded(path, segs)) return m;
        int best = -1;
        for (const auto& e : entries_) {
            path_params params;
            int literal = 0;
            if (!matches(e.segments, segs, params, literal)) continue;
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

    // "%2F" etc. decoded; false for a malformed escape or an encoded NUL.
    static bool percent_decode(std::string_view in, std::string& out) {
        out.clear();
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] != '%') {
                out += in[i];
                continue;
            }
            if (i + 2 >= in.size()) return false;
            auto hex = [](char c) -> int {
                if (c >= '0' && c <= '9') return c - '0';
                if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                return -1;
            };
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        return true;
    }

private:
    struct entry {
        std::vector<std::string> segments;
        route r;
    };

    static std::vector<std::string> split(std::string_view path) {
        std::vector<std::string> out;
        std::size_t i = 0;
        while (i < path.size()) {
            if (path[i] == '/') {
                ++i;
                continue;
            }
            auto j = path.find('/', i);
            if (j == std::string_view::npos) j = path.size();
            out.emplace_back(path.substr(i, j - i));
            i = j;
        }
        return out;
    }

    static bool split_decoded(std::string_view path, std::vector<std::string>& out) {
        if (path.empty() || path.front() != '/') return false;
        for (auto& s : split(path)) {
            std::string d;
            if (!percent_decode(s, d)) return false;
            out.push_back(std::move(d));
        }
        return true;
    }

    static bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& segs,
                        path_params& params, int& literal) {
        if (pattern.size() != segs.size()) return false;
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            const auto& p = pattern[i];
            if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
                params.emplace_back(p.substr(1, p.size() - 2), segs[i]);
            } else if (p == segs[i]) {
                ++literal;
            } else {
                return false;
            }
        }
        return true;
    }

    std::vector<entry> entries_;
};

} // namespace certmate::net
