// The OpenAPI document (docs/openapi.yaml, served as JSON at GET /api/openapi.json) against the
// router: every route the server registers is documented with its role, rate class, listener and
// body, and every documented operation is a registered route (issue 11, acceptance 5). The
// document is fetched from the real server; its request schemas are checked against the DTOs.
#define BOOST_TEST_MODULE test_openapi
#include <boost/test/unit_test.hpp>

#include "net/api.hpp"
#include "net/dto.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

#include <map>
#include <set>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

const std::set<std::string> http_methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

// The router's pattern as an OpenAPI path: a catch-all "{*req}" is the parameter "{req}".
std::string openapi_path(const std::string& pattern) {
    std::string out = pattern;
    for (auto p = out.find("{*"); p != std::string::npos; p = out.find("{*")) out.erase(p + 1, 1);
    return out;
}

std::vector<std::string> path_params_of(const std::string& path) {
    std::vector<std::string> out;
    for (auto b = path.find('{'); b != std::string::npos; b = path.find('{', b + 1))
        out.push_back(path.substr(b + 1, path.find('}', b) - b - 1));
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string role_name(const std::optional<api_role>& r) { return r ? std::string(to_string(*r)) : "public"; }

const json::value* at(const json::value& v, std::initializer_list<std::string_view> keys) {
    const json::value* cur = &v;
    for (auto k : keys) {
        if (!cur->is_object()) return nullptr;
        cur = cur->as_object().if_contains(k);
        if (!cur) return nullptr;
    }
    return cur;
}

std::string string_at(const json::value& v, std::initializer_list<std::string_view> keys) {
    const auto* p = at(v, keys);
    return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

// A local "#/components/..." reference followed.
const json::value& deref(const json::value& doc, const json::value& v) {
    const auto* ref = at(v, {"$ref"});
    if (!ref || !ref->is_string()) return v;
    std::string_view s = ref->as_string();
    BOOST_REQUIRE(s.starts_with("#/"));
    const json::value* cur = &doc;
    s.remove_prefix(2);
    while (!s.empty()) {
        auto slash = s.find('/');
        cur = at(*cur, {s.substr(0, slash)});
        BOOST_REQUIRE_MESSAGE(cur, "dangling $ref " << ref->as_string());
        s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
    }
    return deref(doc, *cur);
}

struct fetched {
    net::server_options options; // what the server was started with
    json::value doc;
    std::string body;
};

// A real server on 127.0.0.1; its options captured so the router built here is the one it serves.
fetched fetch_document(const std::function<void(net::server_options&)>& tweak = {}) {
    fetched f;
    test_server srv({}, [&](net::server_options& o) {
        if (tweak) tweak(o);
        f.options = o;
    });
    auto r = srv.client().get("/api/openapi.json"); // public: no token
    BOOST_TEST_INFO("body: " << r.body.substr(0, 300));
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    BOOST_TEST(r.header("content-type") == "application/json");
    BOOST_TEST(!r.header("x-request-id").empty());
    f.body = r.body;
    f.doc = r.json();
    BOOST_REQUIRE(f.doc.is_object());
    return f;
}

net::router routes_of(const net::server_options& o) {
    net::router r;
    net::add_api_routes(r, o);
    return r;
}

template <class Dto>
std::set<std::string> dto_fields() {
    std::set<std::string> out;
    boost::mp11::mp_for_each<boost::describe::describe_members<Dto, boost::describe::mod_public>>(
        [&](auto d) { out.insert(d.name); });
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(served_document_is_the_checked_in_openapi_3_1_json) {
    const auto f = fetch_document();
    BOOST_TEST(string_at(f.doc, {"openapi"}).starts_with("3.1."));
    BOOST_TEST(string_at(f.doc, {"info", "version"}) == CERTMATE_VERSION);
    // Embedded at build time from docs/openapi.json, which scripts/openapi.sh writes from the YAML.
    BOOST_TEST(f.body == read_text(std::filesystem::path(CERTMATE_SOURCE_DIR) / "docs/openapi.json"));
}

BOOST_AUTO_TEST_CASE(every_route_is_documented_and_every_documented_operation_is_a_route) {
    const auto f = fetch_document();
    const auto& doc = f.doc;
    const auto* paths = at(doc, {"paths"});
    BOOST_REQUIRE(paths && paths->is_object());
    const auto router = routes_of(f.options);
    const auto routes = router.routes();
    BOOST_REQUIRE(!routes.empty());

    std::set<std::pair<std::string, std::string>> registered;
    for (const auto* rt : routes) {
        const std::string path = openapi_path(rt->pattern);
        const std::string method = lower(std::string(http::to_string(rt->method)));
        registered.emplace(path, method);
        BOOST_TEST_CONTEXT(method << " " << path) {
            const auto* op = at(*paths, {path, method});
            BOOST_TEST(op, "registered by the router but not in docs/openapi.yaml (document it, then bash "
                           "scripts/openapi.sh write)");
            if (!op) continue;
            BOOST_TEST(!string_at(*op, {"summary"}).empty());
            BOOST_TEST(!string_at(*op, {"operationId"}).empty());

            // The role, as the extension and as security requirements.
            BOOST_TEST(string_at(*op, {"x-certmate-role"}) == role_name(rt->role));
            const auto* sec = at(*op, {"security"});
            BOOST_REQUIRE(sec && sec->is_array());
            bool anonymous = sec->as_array().empty(), bearer = false, mtls = false;
            for (const auto& req : sec->as_array()) {
                anonymous = anonymous || req.as_object().empty();
                bearer = bearer || req.as_object().contains("bearerAuth");
                mtls = mtls || req.as_object().contains("mutualTLS");
            }
            BOOST_TEST(anonymous == !rt->role);
            if (rt->role) BOOST_TEST((bearer && mtls));
            const auto* responses = at(*op, {"responses"});
            BOOST_REQUIRE(responses && responses->is_object());
            auto documents = [&](const char* status) { return responses->as_object().contains(status); };
            if (rt->role) BOOST_TEST((documents("401") && documents("403")));
            BOOST_TEST(documents("429"));

            BOOST_TEST(string_at(*op, {"x-certmate-rate-class"}) == std::string(to_string(rt->cls)));
            const auto* protocol = at(*op, {"x-certmate-protocol"});
            BOOST_TEST((protocol && protocol->is_bool() && protocol->as_bool()) == rt->protocol);

            // The body the pipeline expects; a JSON body can be refused with 415.
            const auto* body = at(*op, {"requestBody"});
            const auto* required = body ? at(*body, {"required"}) : nullptr;
            const bool body_required = required && required->is_bool() && required->as_bool();
            switch (rt->body) {
            case net::body_kind::none: BOOST_TEST(!body); break;
            case net::body_kind::json:
            case net::body_kind::json_optional:
                BOOST_TEST(body);
                BOOST_TEST(at(*body, {"content", "application/json", "schema"}));
                BOOST_TEST(body_required == (rt->body == net::body_kind::json));
                BOOST_TEST(documents("415"));
                break;
            case net::body_kind::raw:
                // The handler reads the content type itself: JSON may be one of several types.
                BOOST_TEST(body);
                if (at(*body, {"content", "application/json"}))
                    BOOST_TEST(at(*body, {"content"})->as_object().size() > 1u);
                break;
            }

            // Each pattern parameter is a required path parameter (on the path item or the operation).
            for (const auto& name : path_params_of(path)) {
                bool found = false;
                for (const auto* list : {at(*paths, {path, "parameters"}), at(*op, {"parameters"})}) {
                    if (!list) continue;
                    for (const auto& p : list->as_array()) {
                        const auto& param = deref(doc, p);
                        if (string_at(param, {"name"}) == name && string_at(param, {"in"}) == "path") found = true;
                    }
                }
                BOOST_TEST(found, "path parameter {" << name << "} is not declared");
            }

            // Every error answer is documented with the error body of docs/api.md "Errors".
            for (const auto& [status, resp] : responses->as_object()) {
                if (status.empty() || status[0] < '4') continue;
                const auto* schema = at(deref(doc, resp), {"content", "application/json", "schema"});
                BOOST_TEST_CONTEXT("response " << status) {
                    BOOST_REQUIRE(schema);
                    const auto& s = deref(doc, *schema);
                    if (status == "503" && path == "/health") continue; // the health report itself
                    for (const char* key : {"error", "message", "code"}) BOOST_TEST(at(s, {"properties", key}));
                }
            }
        }
    }

    for (const auto& [path, item] : paths->as_object()) {
        for (const auto& [method, op] : item.as_object()) {
            if (!http_methods.count(std::string(method))) continue;
            BOOST_TEST(registered.count({std::string(path), std::string(method)}),
                       method << " " << path << " is documented but the router has no such route");
        }
    }
}

// A route whose role depends on the config (server.metrics_public) says so in the document.
BOOST_AUTO_TEST_CASE(configurable_roles_are_marked) {
    net::server_options on, off;
    on.metrics_public = true;
    off.metrics_public = false;
    const auto f = fetch_document();
    const auto router_on = routes_of(on), router_off = routes_of(off);
    const auto a = router_on.routes(), b = router_off.routes();
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    int configurable = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i]->role == b[i]->role) continue;
        ++configurable;
        const auto* op =
            at(f.doc, {"paths", openapi_path(a[i]->pattern), lower(std::string(http::to_string(a[i]->method)))});
        BOOST_REQUIRE(op);
        const auto* mark = at(*op, {"x-certmate-role-configurable"});
        BOOST_TEST((mark && mark->is_bool() && mark->as_bool()), a[i]->pattern);
    }
    BOOST_TEST(configurable == 1); // /metrics
}

// The request schemas name exactly the DTOs' fields and refuse others, as dto::parse does.
BOOST_AUTO_TEST_CASE(request_schemas_match_the_dtos) {
    const auto f = fetch_document();
    const std::map<std::string, std::set<std::string>> dtos = {
        {"CreateCertificate", dto_fields<net::dto::create_cert>()},
        {"UpdateCertificate", dto_fields<net::dto::update_cert>()},
        {"RevokeRequest", dto_fields<net::dto::revoke>()},
        {"RenewRequest", dto_fields<net::dto::renew>()},
        {"Pkcs12Request", dto_fields<net::dto::pkcs12>()},
        {"OcspStatusRequest", dto_fields<net::dto::ocsp_status>()},
        {"SubjectAltNames", dto_fields<net::dto::sans>()},
    };
    for (const auto& [name, fields] : dtos) {
        BOOST_TEST_CONTEXT(name) {
            const auto* s = at(f.doc, {"components", "schemas", name});
            BOOST_REQUIRE(s);
            const auto* extra = at(*s, {"additionalProperties"});
            BOOST_TEST((extra && extra->is_bool() && !extra->as_bool()));
            std::set<std::string> documented;
            if (const auto* props = at(*s, {"properties"}))
                for (const auto& kv : props->as_object()) documented.insert(std::string(kv.key()));
            BOOST_TEST(documented == fields, boost::test_tools::per_element());
        }
    }
}

// Real error answers have the shape the document gives them.
BOOST_AUTO_TEST_CASE(error_answers_match_the_error_schema) {
    test_server srv;
    auto c = srv.client();
    const auto doc = c.get("/api/openapi.json").json();
    const auto* schema = at(doc, {"components", "schemas", "Error"});
    BOOST_REQUIRE(schema);
    std::set<std::string> codes;
    for (const auto& v : at(*schema, {"properties", "code", "enum"})->as_array())
        codes.insert(std::string(v.as_string()));
    const std::vector<http_reply> answers = {
        c.get("/api/client-certs/nope", srv.tokens.viewer),    // 404
        c.get("/api/client-certs"),                            // 401
        c.get("/api/audit", srv.tokens.viewer),                // 403
        c.get("/api/client-certs?limit=0", srv.tokens.viewer), // 400 + field
        c.request("DELETE", "/api/ca"),                        // 405
        c.request("POST", "/api/client-certs", "{}",
                  {{"Authorization", "Bearer " + srv.tokens.operator_}, {"Content-Type", "text/plain"}}), // 415
        c.post_json("/api/client-certs", R"({"common_name":"a","bogus":1})", srv.tokens.operator_), // 400 unknown field
    };
    for (const auto& r : answers) {
        BOOST_TEST_CONTEXT(r.status << " " << r.body) {
            BOOST_TEST(r.status >= 400u);
            auto o = obj(r);
            for (const auto& kv : o)
                BOOST_TEST(at(*schema, {"properties", kv.key()}), "undocumented member " << kv.key());
            for (const auto& k : at(*schema, {"required"})->as_array()) BOOST_TEST(o.contains(k.as_string()));
            BOOST_TEST(codes.count(str(o, "code")));
        }
    }
}
