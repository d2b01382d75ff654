// The API client commands: cert create|list|show|revoke|unhold|renew|download and batch
// create|revoke (docs/cli.md; the routes: docs/api.md, docs/openapi.yaml).
#include "app/client_common.hpp"

#include <boost/json.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <thread>

namespace certmate::app {

namespace po = boost::program_options;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string cert_path(const std::string& id) { return "/api/client-certs/" + url_encode(id); }

const json::value* member(const json::value& o, const char* key) {
    return o.is_object() ? o.as_object().if_contains(key) : nullptr;
}

// A SAN given as dns:NAME, ip:ADDR, email:ADDR, uri:URI, or bare (sorted by its look).
void add_san(json::object& sans, const std::string& s) {
    static const std::vector<std::pair<std::string, std::string>> prefixes = {
        {"dns:", "dns"}, {"ip:", "ip"}, {"email:", "email"}, {"uri:", "uri"}};
    std::string kind, value = s;
    for (const auto& [p, k] : prefixes)
        if (s.rfind(p, 0) == 0) {
            kind = k;
            value = s.substr(p.size());
        }
    if (kind.empty()) {
        if (s.find("://") != std::string::npos)
            kind = "uri";
        else if (s.find('@') != std::string::npos)
            kind = "email";
        else if (s.find(':') != std::string::npos || s.find_first_not_of("0123456789.") == std::string::npos)
            kind = "ip";
        else
            kind = "dns";
    }
    if (!sans.contains(kind)) sans[kind] = json::array{};
    sans[kind].as_array().push_back(json::string(value));
}

// ---- cert create ----

void create_options(po::options_description& d) {
    po::options_description c("certificate");
    c.add_options()("cn", po::value<std::string>()->value_name("NAME"), "subject common name (default: NAME)")(
        "usage", po::value<std::string>()->default_value("api-mtls")->value_name("USAGE"), "api-mtls, vpn or other")(
        "key-type", po::value<std::string>()->value_name("TYPE"),
        "rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 or ed25519 (default: the server's issuance.default_key_type)")(
        "csr", po::value<std::string>()->value_name("FILE"), "sign this CSR (PEM) instead of generating a key")(
        "san", po::value<std::vector<std::string>>()->composing()->value_name("SAN"),
        "subject alternative name, repeatable: dns:NAME, ip:ADDR, email:ADDR, uri:URI (or bare)")(
        "days", po::value<int>()->value_name("N"), "validity in days (default: the server's, 365)")(
        "role", po::value<std::string>()->value_name("ROLE"),
        "api_role for mTLS to the API: viewer, operator or admin (default: none)")(
        "email", po::value<std::string>()->value_name("ADDR"),
        "subject emailAddress")("org", po::value<std::string>()->value_name("O"), "subject organization")(
        "ou", po::value<std::string>()->value_name("OU"), "subject organizational unit")(
        "eku", po::value<std::vector<std::string>>()->composing()->value_name("EKU"),
        "extra extended key usage for vpn/other, repeatable (serverAuth, emailProtection)")(
        "notes", po::value<std::string>()->value_name("TEXT"),
        "free text kept in the record")("out-dir", po::value<std::string>()->default_value(".")->value_name("DIR"),
                                        "where NAME.crt, NAME.key and ca.crt are written");
    d.add(c);
    add_connection_options(d);
    add_json_option(d);
}

int cert_create(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    const std::string name = inv.positional.at(0);
    json::object body;
    body["identifier"] = name;
    if (!vm.count("csr"))
        body["common_name"] = vm.count("cn") ? vm["cn"].as<std::string>() : name;
    else if (vm.count("cn"))
        body["common_name"] = vm["cn"].as<std::string>();
    body["cert_usage"] = vm["usage"].as<std::string>();
    if (vm.count("key-type")) body["key_type"] = vm["key-type"].as<std::string>();
    if (vm.count("csr")) body["csr"] = read_input_file(vm["csr"].as<std::string>());
    if (vm.count("days")) body["validity_days"] = vm["days"].as<int>();
    if (vm.count("role")) body["api_role"] = vm["role"].as<std::string>();
    if (vm.count("email")) body["email"] = vm["email"].as<std::string>();
    if (vm.count("org")) body["organization"] = vm["org"].as<std::string>();
    if (vm.count("ou")) body["organizational_unit"] = vm["ou"].as<std::string>();
    if (vm.count("notes")) body["notes"] = vm["notes"].as<std::string>();
    if (vm.count("san")) {
        json::object sans;
        for (const auto& s : vm["san"].as<std::vector<std::string>>()) add_san(sans, s);
        body["subject_alt_names"] = std::move(sans);
    }
    if (vm.count("eku")) {
        json::array e;
        for (const auto& s : vm["eku"].as<std::vector<std::string>>()) e.push_back(json::string(s));
        body["extended_key_usage"] = std::move(e);
    }
    api_session api(vm);
    auto rec = api.post_json("/api/client-certs", body);
    // File names come from NAME, never from the answer: a server's "../x" or "/etc/x" is no path.
    const std::string& id = name;
    const fs::path dir = vm["out-dir"].as<std::string>();
    std::vector<std::string> files;
    const fs::path crt = dir / (id + ".crt");
    write_output_file(crt, str_of(rec, "certificate"), fs::perms(0644));
    files.push_back(crt.string());
    const auto* has_key = member(rec, "has_private_key");
    if (has_key && has_key->is_bool() && has_key->get_bool()) {
        const fs::path key = dir / (id + ".key");
        write_output_file(key, api.call("GET", cert_path(id) + "/private-key").body, fs::perms(0600));
        files.push_back(key.string());
    }
    const fs::path ca = dir / "ca.crt";
    write_output_file(ca, api.call("GET", "/api/client-certs/ca").body, fs::perms(0644));
    files.push_back(ca.string());
    if (vm["json"].as<bool>()) {
        auto out = rec.as_object();
        json::array fj;
        for (const auto& f : files) fj.push_back(json::string(f));
        out["files"] = std::move(fj);
        print_json(out);
        return 0;
    }
    const auto now = std::chrono::system_clock::now();
    std::cout << terminal_safe("created " + id + " (serial " + str_of(rec, "serial_number") + ", expires " +
                               time_with_relative(rec.at("expires_at"), now) + ")")
              << "\n";
    for (const auto& f : files) std::cout << "wrote " << f << (f.ends_with(".key") ? " (0600)" : "") << "\n";
    return 0;
}

// ---- cert list ----

void filter_options(po::options_description& d) {
    po::options_description f("filters");
    f.add_options()("usage", po::value<std::string>()->value_name("USAGE"), "api-mtls, vpn or other")(
        "status", po::value<std::string>()->value_name("STATUS"), "active, revoked, expired or expiring")(
        "search", po::value<std::string>()->value_name("TEXT"), "in CN, email, identifier, organization, serial")(
        "expiring", po::value<int>()->value_name("DAYS"), "only certificates expiring within DAYS");
    d.add(f);
}

std::string filter_query(const po::variables_map& vm) {
    std::string q;
    auto add = [&](const char* k, const std::string& v) { q += std::string("&") + k + "=" + url_encode(v); };
    if (vm.count("usage")) add("usage", vm["usage"].as<std::string>());
    if (vm.count("status")) add("status", vm["status"].as<std::string>());
    if (vm.count("search")) add("search", vm["search"].as<std::string>());
    if (vm.count("expiring")) add("expiring_within_days", std::to_string(vm["expiring"].as<int>()));
    return q;
}

// Every certificate the filters match, page by page (the API returns at most 1000 at a time).
json::array list_all(api_session& api, const std::string& filters, int page_size) {
    json::array all;
    for (std::int64_t offset = 0;;) {
        auto page = api.get_json("/api/client-certs?limit=" + std::to_string(page_size) +
                                 "&offset=" + std::to_string(offset) + "&sort=identifier" + filters);
        const auto* certs = member(page, "certificates");
        const auto* total = member(page, "total");
        if (!certs || !certs->is_array() || !total || !total->is_number())
            throw cli_failure("GET /api/client-certs: unexpected answer");
        for (const auto& c : certs->get_array()) all.push_back(c);
        offset += static_cast<std::int64_t>(certs->get_array().size());
        if (certs->get_array().empty() || offset >= total->to_number<std::int64_t>()) break;
    }
    return all;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

int cert_list(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    const int page = vm["page-size"].as<int>();
    if (page < 1 || page > 1000) throw cli_usage_error("--page-size must be between 1 and 1000");
    if (vm["json"].as<bool>() && vm["csv"].as<bool>()) throw cli_usage_error("--json and --csv exclude each other");
    api_session api(vm);
    auto all = list_all(api, filter_query(vm), page);
    if (vm["json"].as<bool>()) {
        const auto n = all.size();
        print_json(json::object{{"certificates", std::move(all)}, {"total", n}});
        return 0;
    }
    if (vm["csv"].as<bool>()) {
        std::cout << "identifier,common_name,cert_usage,status,serial_number,not_before,expires_at\n";
        for (const auto& c : all)
            std::cout << csv_field(str_of(c, "identifier")) << "," << csv_field(str_of(c, "common_name")) << ","
                      << str_of(c, "cert_usage") << "," << str_of(c, "status") << "," << str_of(c, "serial_number")
                      << "," << str_of(c, "not_before") << "," << str_of(c, "expires_at") << "\n";
        return 0;
    }
    const auto now = std::chrono::system_clock::now();
    std::vector<std::vector<std::string>> rows{{"IDENTIFIER", "COMMON NAME", "USAGE", "STATUS", "EXPIRES", "SERIAL"}};
    for (const auto& c : all) {
        auto exp = parse_time(str_of(c, "expires_at"));
        rows.push_back({str_of(c, "identifier"), str_of(c, "common_name"), str_of(c, "cert_usage"),
                        colour_status(str_of(c, "status")), exp ? relative_time(*exp, now) : "-",
                        str_of(c, "serial_number")});
    }
    print_table(rows);
    std::cout << all.size() << " certificate" << (all.size() == 1 ? "" : "s") << "\n";
    return 0;
}

// ---- cert show / revoke / unhold / renew ----

void print_record(const json::value& rec) {
    const auto now = std::chrono::system_clock::now();
    std::vector<std::vector<std::string>> rows;
    auto row = [&](const std::string& k, const std::string& v) {
        if (!v.empty()) rows.push_back({k + ":", v});
    };
    row("identifier", str_of(rec, "identifier"));
    row("common name", str_of(rec, "common_name"));
    row("email", str_of(rec, "email"));
    row("organization", str_of(rec, "organization"));
    row("org. unit", str_of(rec, "organizational_unit"));
    row("usage", str_of(rec, "cert_usage"));
    row("status", colour_status(str_of(rec, "status")));
    row("serial", str_of(rec, "serial_number"));
    row("key type", str_of(rec, "key_type"));
    if (const auto* v = member(rec, "not_before")) row("not before", time_with_relative(*v, now));
    if (const auto* v = member(rec, "expires_at")) row("expires", time_with_relative(*v, now));
    if (const auto* s = member(rec, "subject_alt_names"); s && s->is_object()) {
        std::string sans;
        for (const auto& [k, arr] : s->get_object())
            if (arr.is_array())
                for (const auto& x : arr.get_array())
                    if (x.is_string())
                        sans += (sans.empty() ? "" : ", ") + std::string(k) + ":" + std::string(x.get_string());
        row("SANs", sans);
    }
    row("api role", str_of(rec, "api_role"));
    row("fingerprint", str_of(rec, "fingerprint_sha256"));
    if (const auto* r = member(rec, "revocation"); r && str_of(*r, "revoked_at").size())
        row("revoked", time_with_relative(r->at("revoked_at"), now) + ", reason " + str_of(*r, "reason"));
    if (const auto* h = member(rec, "history"); h && h->is_array() && !h->get_array().empty())
        row("history", std::to_string(h->get_array().size()) + " earlier serial(s)");
    row("notes", str_of(rec, "notes"));
    print_table(rows);
}

void id_options(po::options_description& d) {
    add_connection_options(d);
    add_json_option(d);
}

int cert_show(const cli_invocation& inv) {
    api_session api(inv.vm);
    auto rec = api.get_json(cert_path(inv.positional.at(0)));
    if (inv.vm["json"].as<bool>())
        print_json(rec);
    else
        print_record(rec);
    return 0;
}

int cert_revoke(const cli_invocation& inv) {
    api_session api(inv.vm);
    const auto reason = inv.vm["reason"].as<std::string>();
    auto rec = api.post_json(cert_path(inv.positional.at(0)) + "/revoke", json::object{{"reason", reason}});
    if (inv.vm["json"].as<bool>())
        print_json(rec);
    else
        std::cout << terminal_safe("revoked " + inv.positional.at(0) + " (serial " + str_of(rec, "serial_number") +
                                   ", reason " + reason + ")")
                  << "\n";
    return 0;
}

int cert_unhold(const cli_invocation& inv) {
    api_session api(inv.vm);
    auto rec = api.post_json(cert_path(inv.positional.at(0)) + "/unhold", json::object{});
    if (inv.vm["json"].as<bool>())
        print_json(rec);
    else
        std::cout << terminal_safe("lifted the hold on " + inv.positional.at(0) + " (status " + str_of(rec, "status") +
                                   ")")
                  << "\n";
    return 0;
}

int cert_renew(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    const auto id = inv.positional.at(0);
    api_session api(vm);
    json::object body;
    if (vm.count("days")) body["validity_days"] = vm["days"].as<int>();
    auto rec = api.post_json(cert_path(id) + "/renew", body);
    std::vector<std::string> files;
    if (vm.count("out-dir")) {
        const fs::path dir = vm["out-dir"].as<std::string>();
        write_output_file(dir / (id + ".crt"), str_of(rec, "certificate"), fs::perms(0644));
        files.push_back((dir / (id + ".crt")).string());
        const auto* has_key = member(rec, "has_private_key");
        if (has_key && has_key->is_bool() && has_key->get_bool()) {
            write_output_file(dir / (id + ".key"), api.call("GET", cert_path(id) + "/private-key").body,
                              fs::perms(0600));
            files.push_back((dir / (id + ".key")).string());
        }
    }
    if (vm["json"].as<bool>()) {
        print_json(rec);
        return 0;
    }
    std::cout << terminal_safe("renewed " + id + " (new serial " + str_of(rec, "serial_number") + ", expires " +
                               time_with_relative(rec.at("expires_at"), std::chrono::system_clock::now()) + ")")
              << "\n";
    for (const auto& f : files) std::cout << "wrote " << f << (f.ends_with(".key") ? " (0600)" : "") << "\n";
    return 0;
}

// ---- cert download ----

int cert_download(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    const auto id = inv.positional.at(0);
    const auto what = vm["what"].as<std::string>();
    api_session api(vm);
    std::string data, default_name;
    auto mode = fs::perms(0644);
    if (what == "cert") {
        const bool der = vm["der"].as<bool>();
        data = api.call("GET", cert_path(id) + "/certificate" + (der ? "?format=der" : "")).body;
        default_name = id + (der ? ".der" : ".crt");
    } else if (what == "chain") {
        data = api.call("GET", cert_path(id) + "/chain").body;
        default_name = id + ".chain.crt";
    } else if (what == "key") {
        data = api.call("GET", cert_path(id) + "/private-key").body;
        default_name = id + ".key";
        mode = fs::perms(0600);
    } else if (what == "csr") {
        data = api.call("GET", cert_path(id) + "/csr").body;
        default_name = id + ".csr";
    } else if (what == "pkcs12") {
        if (!vm.count("password-file")) throw cli_usage_error("--what pkcs12 needs --password-file FILE");
        std::string pw = read_input_file(vm["password-file"].as<std::string>());
        pw.erase(pw.find_last_not_of("\r\n") + 1);
        data = api.call("POST", cert_path(id) + "/pkcs12", json::serialize(json::object{{"password", pw}})).body;
        default_name = id + ".p12";
        mode = fs::perms(0600);
    } else {
        throw cli_usage_error("--what must be cert, chain, key, csr or pkcs12");
    }
    const std::string out = vm.count("out") ? vm["out"].as<std::string>() : default_name;
    if (out == "-") {
        std::cout << data << std::flush;
        return 0;
    }
    write_output_file(out, data, mode);
    if (vm["json"].as<bool>())
        print_json(json::object{{"file", out}, {"bytes", data.size()}});
    else
        std::cout << "wrote " << out << (mode == fs::perms(0600) ? " (0600)" : "") << "\n";
    return 0;
}

// ---- batch (issue 12's jobs API) ----

// Polls GET /api/jobs/<id> until the job ends; a bar on a terminal (stderr), lines otherwise.
json::value wait_for_job(api_session& api, const std::string& location, int interval_ms) {
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    std::string last_state;
    auto last_line = std::chrono::steady_clock::time_point{};
    for (;;) {
        auto job = api.get_json(location);
        const auto state = terminal_safe(str_of(job, "state"));
        auto num = [&](const char* k) {
            const auto* v = member(job, k);
            return v && v->is_number() ? v->to_number<std::int64_t>() : std::int64_t(0);
        };
        const auto total = num("total"), done = num("done"), failed = num("failed");
        std::ostringstream line;
        if (tty) {
            const int width = 30;
            // the server's counts clamped: done > total or < 0 would make a negative width
            const auto shown = std::clamp<std::int64_t>(done, 0, std::max<std::int64_t>(total, 0));
            const int filled =
                total > 0 ? static_cast<int>(width * static_cast<double>(shown) / static_cast<double>(total)) : 0;
            line << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done << "/"
                 << total << (failed ? " (" + std::to_string(failed) + " failed)" : "") << " " << state;
            std::cerr << line.str() << std::flush;
        } else {
            // a line when the state changes, else at most one every 2 s (a log, not a flood)
            const auto now = std::chrono::steady_clock::now();
            if (state != last_state || now - last_line >= std::chrono::seconds(2)) {
                std::cerr << state << " " << done << "/" << total << " done, " << failed << " failed\n";
                last_state = state;
                last_line = now;
            }
        }
        if (state != "queued" && state != "running") {
            if (tty) std::cerr << "\n";
            return job;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
}

// Prints the job's outcome; the exit code is 0 only when it succeeded with no failed entry.
int finish_job(api_session& api, const json::value& accepted, const std::string& location_header,
               const po::variables_map& vm) {
    std::string location = location_header;
    if (location.empty() && !str_of(accepted, "id").empty()) location = "/api/jobs/" + str_of(accepted, "id");
    if (location.empty()) throw cli_failure("the server accepted the job but named no Location");
    // An absolute Location: keep its path (the session's prefix is added again by call()).
    if (auto p = location.find("://"); p != std::string::npos)
        location = location.substr(location.find('/', p + 3) == std::string::npos ? location.size()
                                                                                  : location.find('/', p + 3));
    if (!vm["wait"].as<bool>()) {
        if (vm["json"].as<bool>())
            print_json(accepted);
        else
            std::cout << terminal_safe("job " + str_of(accepted, "id") + " " + str_of(accepted, "state") + " (" +
                                       location + "); follow with --wait")
                      << "\n";
        return 0;
    }
    auto job = wait_for_job(api, location, vm["interval-ms"].as<int>());
    const auto* failed = member(job, "failed");
    const bool ok = str_of(job, "state") == "succeeded" &&
                    (!failed || !failed->is_number() || failed->to_number<std::int64_t>() == 0);
    if (vm["json"].as<bool>()) {
        print_json(job);
    } else {
        std::cout << terminal_safe("job " + str_of(job, "id") + " " + str_of(job, "state")) << "\n";
        if (const auto* errs = member(job, "errors"); errs && errs->is_array())
            for (const auto& e : errs->get_array()) {
                const auto* row = member(e, "row");
                std::cout << terminal_safe("  row " + (row ? json::serialize(*row) : std::string("?")) + ": " +
                                           (str_of(e, "field").empty() ? "" : str_of(e, "field") + ": ") +
                                           str_of(e, "message"))
                          << "\n";
            }
    }
    return ok ? 0 : 1;
}

void batch_common_options(po::options_description& d) {
    po::options_description b("job");
    b.add_options()("wait", po::bool_switch(), "wait for the job to end; the exit code is its outcome")(
        "interval-ms", po::value<int>()->default_value(500)->value_name("MS"), "how often --wait asks");
    d.add(b);
    add_connection_options(d);
    add_json_option(d);
}

int batch_create(const cli_invocation& inv) {
    const auto file = inv.positional.at(0);
    const auto data = read_input_file(file);
    const bool is_json = file.ends_with(".json");
    api_session api(inv.vm);
    auto a =
        api.call("POST", std::string("/api/client-certs/batch") + (inv.vm["partial"].as<bool>() ? "?partial=true" : ""),
                 data, is_json ? "application/json" : "text/csv");
    boost::system::error_code ec;
    auto accepted = json::parse(a.body, ec);
    if (ec) accepted = json::object{};
    return finish_job(api, accepted, a.header("location"), inv.vm);
}

int batch_revoke(const cli_invocation& inv) {
    const auto& vm = inv.vm;
    const bool from = vm.count("from") > 0, filter = vm.count("filter") > 0;
    if (from == filter) throw cli_usage_error("give exactly one of --from FILE and --filter KEY=VALUE");
    api_session api(vm);
    json::array ids;
    if (from) {
        std::istringstream in(read_input_file(vm["from"].as<std::string>()));
        for (std::string line; std::getline(in, line);) {
            line = line.substr(0, line.find(','));
            line.erase(line.find_last_not_of(" \t\r") + 1);
            line.erase(0, line.find_first_not_of(" \t"));
            if (line.empty() || line[0] == '#' || line == "identifier") continue;
            ids.push_back(json::string(line));
        }
    }
    json::object body{{"reason", vm["reason"].as<std::string>()}};
    if (from) {
        if (ids.empty()) throw cli_failure("no identifiers in " + vm["from"].as<std::string>());
        body["identifiers"] = std::move(ids);
    } else {
        // resolved by the server when it accepts the job (docs/api.md "Batch jobs")
        static const std::vector<std::string> keys = {"usage", "status", "search", "expiring_within_days"};
        json::object filter;
        for (const auto& f : vm["filter"].as<std::vector<std::string>>()) {
            const auto eq = f.find('=');
            const auto key = f.substr(0, eq);
            if (eq == std::string::npos || std::find(keys.begin(), keys.end(), key) == keys.end()) {
                auto near = closest_match(key, keys);
                throw cli_usage_error("--filter takes KEY=VALUE with KEY one of usage, status, search, "
                                      "expiring_within_days" +
                                      (near.empty() ? "" : " (did you mean " + near + "?)"));
            }
            const auto value = f.substr(eq + 1);
            if (key == "expiring_within_days") {
                try {
                    filter[key] = std::stoi(value);
                } catch (const std::exception&) {
                    throw cli_usage_error("--filter expiring_within_days needs a number of days");
                }
            } else {
                filter[key] = value;
            }
        }
        body["filter"] = std::move(filter);
    }
    auto a = api.call("POST", "/api/client-certs/batch/revoke", json::serialize(body));
    boost::system::error_code ec;
    auto accepted = json::parse(a.body, ec);
    if (ec) accepted = json::object{};
    return finish_job(api, accepted, a.header("location"), vm);
}

po::typed_value<std::string>* reason_value() {
    return po::value<std::string>()->default_value("unspecified")->value_name("REASON");
}
constexpr const char* reason_help = "RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded, "
                                    "cessationOfOperation, certificateHold, privilegeWithdrawn";

} // namespace

std::vector<cli_command> client_commands() {
    std::vector<cli_command> out;
    out.push_back({"cert create", "NAME", "issue a certificate and write NAME.crt, NAME.key (0600) and ca.crt",
                   "NAME is the certificate's identifier and, unless --cn says otherwise, its common name.\n"
                   "With --csr the server signs your key and no NAME.key is written.",
                   "  certmate cert create alice --usage api-mtls --role viewer --san alice@example.com\n"
                   "  certmate cert create vpn-gw --usage vpn --csr gw.csr --days 90 --out-dir /etc/vpn",
                   1, 1, false, create_options, cert_create});
    out.push_back(
        {"cert list", "", "list certificates as a table (--json, --csv), paging through all of them", "",
         "  certmate cert list --status expiring --expiring 30\n  certmate cert list --usage vpn --csv > vpn.csv", 0, 0,
         false,
         [](po::options_description& d) {
             filter_options(d);
             po::options_description o("output");
             o.add_options()("json", po::bool_switch(), "print JSON on stdout instead of a table")(
                 "csv", po::bool_switch(),
                 "print CSV instead of a table")("page-size", po::value<int>()->default_value(1000)->value_name("N"),
                                                 "certificates per API request (1..1000)");
             d.add(o);
             add_connection_options(d);
         },
         cert_list});
    out.push_back({"cert show", "ID", "print one certificate's record", "", "  certmate cert show alice --json", 1, 1,
                   false, id_options, cert_show});
    out.push_back({"cert revoke", "ID", "revoke a certificate (the CRL and OCSP say so at once)",
                   "Only certificateHold can be lifted later (cert unhold).",
                   "  certmate cert revoke alice --reason keyCompromise", 1, 1, false,
                   [](po::options_description& d) {
                       d.add_options()("reason", reason_value(), reason_help);
                       id_options(d);
                   },
                   cert_revoke});
    out.push_back({"cert unhold", "ID", "lift a certificateHold revocation", "", "  certmate cert unhold alice", 1, 1,
                   false, id_options, cert_unhold});
    out.push_back({"cert renew", "ID", "issue a new certificate for ID (new serial, same identifier and CN)",
                   "A key generated by the server is replaced with a new one; a CSR's key is signed again.",
                   "  certmate cert renew alice --days 90 --out-dir .", 1, 1, false,
                   [](po::options_description& d) {
                       d.add_options()("days", po::value<int>()->value_name("N"),
                                       "validity in days (default: the server's)")(
                           "out-dir", po::value<std::string>()->value_name("DIR"),
                           "also write ID.crt and ID.key (0600) there (default: write nothing)");
                       id_options(d);
                   },
                   cert_renew});
    out.push_back({"cert download", "ID", "download a certificate, chain, key, CSR or PKCS#12 file",
                   "Default file names: ID.crt (ID.der with --der), ID.chain.crt, ID.key, ID.csr, ID.p12; keys and\n"
                   "PKCS#12 files are written 0600. --out - writes to stdout.",
                   "  certmate cert download alice --what pkcs12 --password-file pw.txt --out alice.p12", 1, 1, false,
                   [](po::options_description& d) {
                       d.add_options()("what", po::value<std::string>()->default_value("cert")->value_name("WHAT"),
                                       "cert, chain, key, csr or pkcs12")(
                           "out", po::value<std::string>()->value_name("FILE"), "where to write (default: see above)")(
                           "der", po::bool_switch(), "the certificate in DER (--what cert)")(
                           "password-file", po::value<std::string>()->value_name("FILE"),
                           "the PKCS#12 password, at least 8 characters (--what pkcs12)");
                       id_options(d);
                   },
                   cert_download});
    out.push_back({"batch create", "FILE", "create many certificates from a CSV (or .json) file as one job",
                   "FILE is sent as text/csv (application/json when it ends in .json); the server answers with a\n"
                   "job. --wait follows it with a progress bar on a terminal, plain lines otherwise.",
                   "  certmate batch create people.csv --wait", 1, 1, false,
                   [](po::options_description& d) {
                       d.add_options()("partial", po::bool_switch(),
                                       "run the valid rows and report the invalid ones in the job (default: any "
                                       "invalid row refuses the whole batch)");
                       batch_common_options(d);
                   },
                   batch_create});
    out.push_back({"batch revoke", "", "revoke many certificates as one job",
                   "--from FILE: identifiers, one per line (the first CSV column; '#' comments and a header\n"
                   "`identifier` skipped). --filter KEY=VALUE (repeatable; usage, status, search,\n"
                   "expiring_within_days): every certificate the list filters match when the server accepts the job.",
                   "  certmate batch revoke --from leavers.txt --reason affiliationChanged --wait\n"
                   "  certmate batch revoke --filter usage=vpn --filter search=contractor --wait",
                   0, 0, false,
                   [](po::options_description& d) {
                       d.add_options()("from", po::value<std::string>()->value_name("FILE"), "identifiers to revoke")(
                           "filter", po::value<std::vector<std::string>>()->composing()->value_name("KEY=VALUE"),
                           "select by list filters")("reason", reason_value(), reason_help);
                       batch_common_options(d);
                   },
                   batch_revoke});
    return out;
}

} // namespace certmate::app
