#include "app/client_common.hpp"

#include "storage/atomic_file.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace certmate::app {

namespace po = boost::program_options;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

const char* env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

std::string trim(std::string s) {
    s.erase(s.find_last_not_of(" \t\r\n") + 1);
    s.erase(0, s.find_first_not_of(" \t\r\n"));
    return s;
}

} // namespace

void add_connection_options(po::options_description& d) {
    po::options_description c("connection");
    c.add_options()("url", po::value<std::string>()->value_name("URL"),
                    "the server (default: $CERTMATE_URL, else http://127.0.0.1:8080)")(
        "token-file", po::value<std::string>()->value_name("FILE"),
        "file holding a bearer token (default: $CERTMATE_TOKEN_FILE)")(
        "cert", po::value<std::string>()->value_name("FILE"),
        "client certificate (PEM) for mTLS on an https URL; its record needs an api_role")(
        "key", po::value<std::string>()->value_name("FILE"), "the client certificate's private key (PEM)")(
        "cacert", po::value<std::string>()->value_name("FILE"),
        "CA certificate(s) to verify an https server with (default: the system's)")(
        "timeout", po::value<int>()->default_value(30)->value_name("SECONDS"), "for each request");
    d.add(c);
}

api_session::api_session(const po::variables_map& vm) {
    base_url_ = vm.count("url") ? vm["url"].as<std::string>() : env_or("CERTMATE_URL", "http://127.0.0.1:8080");
    auto origin = parse_url(base_url_);
    prefix_ = origin.target;
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    std::string token_file =
        vm.count("token-file") ? vm["token-file"].as<std::string>() : env_or("CERTMATE_TOKEN_FILE", "");
    if (!token_file.empty()) {
        auto t = storage::read_file(token_file);
        if (!t) throw cli_failure("cannot read the token file " + token_file + ": " + t.error().message);
        token_ = trim(*t);
        if (token_.empty()) throw cli_failure("the token file " + token_file + " is empty");
    }
    tls_files tls;
    if (vm.count("cacert")) tls.cacert = vm["cacert"].as<std::string>();
    if (vm.count("cert")) tls.cert = vm["cert"].as<std::string>();
    if (vm.count("key")) tls.key = vm["key"].as<std::string>();
    if (!tls.cert.empty() && !origin.https)
        throw cli_usage_error("--cert needs an https:// URL (client certificates are checked on the TLS listener)");
    if (tls.key.size() && tls.cert.empty()) throw cli_usage_error("--key needs --cert");
    const int timeout = vm.count("timeout") ? vm["timeout"].as<int>() : 30;
    if (timeout <= 0) throw cli_usage_error("--timeout must be positive");
    conn_ = std::make_unique<http_connection>(origin, tls, std::chrono::seconds(timeout));
}

http_answer api_session::call(const std::string& method, const std::string& path, const std::string& body,
                              const std::string& content_type,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
    auto h = headers;
    if (!token_.empty()) h.emplace_back("Authorization", "Bearer " + token_);
    if (!body.empty() || method != "GET") h.emplace_back("Content-Type", content_type);
    h.emplace_back("Accept", "application/json, */*");
    auto a = conn_->request(method, prefix_ + path, body, h);
    if (a.status >= 200 && a.status < 300) return a;
    std::string what = method + " " + path + ": HTTP " + std::to_string(a.status);
    boost::system::error_code ec;
    auto j = json::parse(a.body, ec);
    if (!ec && j.is_object()) {
        const auto code = str_of(j, "code"), message = str_of(j, "message"), field = str_of(j, "field");
        if (!code.empty()) what += " " + code;
        if (!message.empty()) what += ": " + message;
        if (!field.empty()) what += " (field " + field + ")";
        // a refused batch names its bad rows (docs/api.md "Batch jobs")
        if (const auto* errs = j.as_object().if_contains("errors"); errs && errs->is_array()) {
            std::size_t shown = 0;
            for (const auto& e : errs->get_array()) {
                if (++shown > 20) break;
                const auto* row = e.is_object() ? e.as_object().if_contains("row") : nullptr;
                what += "\n  row " + (row ? json::serialize(*row) : std::string("?")) + ": " +
                        (str_of(e, "field").empty() ? "" : str_of(e, "field") + ": ") + str_of(e, "message");
            }
            const auto* total = j.as_object().if_contains("errors_total");
            if (total && total->is_number() && total->to_number<std::int64_t>() > 20)
                what += "\n  (" + std::to_string(total->to_number<std::int64_t>()) + " rows refused in all)";
        }
    }
    if (a.status == 401 && token_.empty())
        what += "\nhint: give a token with --token-file FILE (or $CERTMATE_TOKEN_FILE), or --cert/--key on https";
    throw cli_failure(what);
}

json::value api_session::get_json(const std::string& path) {
    auto a = call("GET", path);
    boost::system::error_code ec;
    auto v = json::parse(a.body, ec);
    if (ec) throw cli_failure("GET " + path + ": the answer is not JSON");
    return v;
}

json::value api_session::post_json(const std::string& path, const json::value& body) {
    auto a = call("POST", path, json::serialize(body));
    if (a.body.empty()) return json::object{};
    boost::system::error_code ec;
    auto v = json::parse(a.body, ec);
    if (ec) throw cli_failure("POST " + path + ": the answer is not JSON");
    return v;
}

std::string relative_time(time_point t, time_point now) {
    using namespace std::chrono;
    const auto diff = duration_cast<seconds>(t - now).count();
    const auto a = diff < 0 ? -diff : diff;
    if (a < 10) return "just now";
    std::string amount;
    // rounded to the nearest unit: a year's certificate a few seconds old still says "in 365 days"
    auto unit = [a](long long size, const char* u) {
        const long long n = (a + size / 2) / size;
        return std::to_string(n) + " " + u + (n == 1 ? "" : "s");
    };
    if (a < 60)
        amount = unit(1, "second");
    else if (a < 3600)
        amount = unit(60, "minute");
    else if (a < 86400 * 2)
        amount = unit(3600, "hour");
    else
        amount = unit(86400, "day");
    return diff >= 0 ? "in " + amount : amount + " ago";
}

std::string time_with_relative(const json::value& v, time_point now) {
    if (!v.is_string()) return "-";
    const std::string s(v.get_string());
    auto t = parse_time(s);
    return t ? s + " (" + relative_time(*t, now) + ")" : s;
}

bool use_colour() {
    const char* no = std::getenv("NO_COLOR");
    return ::isatty(STDOUT_FILENO) == 1 && !(no && *no);
}

std::string colour_status(const std::string& status) {
    if (!use_colour()) return status;
    const char* c = status == "active" ? "32" : status == "revoked" ? "31" : "33";
    return std::string("\033[") + c + "m" + status + "\033[0m";
}

std::string terminal_safe(std::string_view s, bool keep_colour) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == 0x1b && keep_colour && i + 1 < s.size() && s[i + 1] == '[') {
            auto end = s.find_first_not_of("0123456789;", i + 2);
            if (end != std::string_view::npos && s[end] == 'm') {
                out.append(s.substr(i, end + 1 - i));
                i = end;
                continue;
            }
        }
        out += (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
    }
    return out;
}

void print_table(const std::vector<std::vector<std::string>>& rows_in) {
    std::vector<std::vector<std::string>> rows = rows_in;
    for (auto& r : rows)
        for (auto& cell : r) cell = terminal_safe(cell, true);
    // Widths count what is shown: the escape sequences of colour take no columns.
    auto visible = [](const std::string& s) {
        std::size_t n = 0;
        bool esc = false;
        for (unsigned char c : s) {
            if (c == 0x1b)
                esc = true;
            else if (esc && c == 'm')
                esc = false;
            else if (!esc && (c & 0xC0) != 0x80)
                ++n;
        }
        return n;
    };
    std::vector<std::size_t> w;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (w.size() <= i) w.push_back(0);
            w[i] = std::max(w[i], visible(r[i]));
        }
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) line += std::string(w[i] - visible(r[i]) + 2, ' ');
        }
        std::cout << line << "\n";
    }
}

std::string str_of(const json::value& o, const char* key) {
    if (!o.is_object()) return {};
    const auto* v = o.as_object().if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

void print_json(const json::value& v) { std::cout << json::serialize(v) << "\n"; }

void write_output_file(const fs::path& path, const std::string& data, fs::perms mode) {
    if (path.has_parent_path())
        if (auto r = storage::ensure_dir(path.parent_path()); !r)
            throw cli_failure("cannot create " + path.parent_path().string() + ": " + r.error().message);
    if (auto r = storage::write_file_atomic(path, data, mode); !r)
        throw cli_failure("cannot write " + path.string() + ": " + r.error().message);
}

std::string read_input_file(const std::string& path) {
    if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
    auto r = storage::read_file(path);
    if (!r) throw cli_failure("cannot read " + path + ": " + r.error().message);
    return *r;
}

} // namespace certmate::app
