// Batch operations and their jobs (docs/api.md "Batch jobs"): POST /api/client-certs/batch
// (JSON, CSV or the original CertMate {"headers","rows"} shape), POST /api/client-certs/batch/revoke,
// and /api/jobs. A batch is validated whole before anything is created; the rows then run as a
// job (net/jobs.hpp).
#include "core/csv.hpp"
#include "core/encoding.hpp"
#include "core/keys.hpp"
#include "core/tar.hpp"
#include "net/api.hpp"
#include "net/batch_parse.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/rand.h>

#include <map>
#include <set>

namespace certmate::net {

namespace json = boost::json;
using http::verb;

namespace {

// At most this many row errors in a 400 answer (errors_total says how many there were).
constexpr std::size_t max_errors_answered = 100;
// Rows validated per trip to the pool (CSR signatures are checked there).
constexpr std::size_t validate_chunk = 500;

std::string new_job_id() {
    unsigned char b[8];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    return "job-" + hex_encode(b);
}

// The submitter's queue key: one running job per token or certificate.
std::string owner_of(const principal& who) { return std::string(to_string(who.actor)) + ":" + who.user; }

struct parsed_rows {
    std::vector<json::object> rows;
    std::vector<row_error> errors; // rows that could not be read (numbered from 1)
};

// ---- CSV and {"headers","rows"}: cells by column name into a create body ----

enum class column { string, integer, boolean, san_list, list };

const std::map<std::string, std::pair<column, std::string>, std::less<>>& columns() {
    static const std::map<std::string, std::pair<column, std::string>, std::less<>> c{
        {"common_name", {column::string, "common_name"}},
        {"identifier", {column::string, "identifier"}},
        {"email", {column::string, "email"}},
        {"organization", {column::string, "organization"}},
        {"organizational_unit", {column::string, "organizational_unit"}},
        {"country", {column::string, "country"}},
        {"state", {column::string, "state"}},
        {"locality", {column::string, "locality"}},
        {"cert_usage", {column::string, "cert_usage"}},
        {"key_type", {column::string, "key_type"}},
        {"csr", {column::string, "csr"}},
        {"csr_pem", {column::string, "csr_pem"}},
        {"notes", {column::string, "notes"}},
        {"api_role", {column::string, "api_role"}},
        {"validity_days", {column::integer, "validity_days"}},
        {"days_valid", {column::integer, "days_valid"}},
        {"renewal_threshold_days", {column::integer, "renewal_threshold_days"}},
        {"renewal_enabled", {column::boolean, "renewal_enabled"}},
        {"generate_key", {column::boolean, "generate_key"}},
        {"dns", {column::san_list, "dns"}},
        {"ip", {column::san_list, "ip"}},
        {"email_san", {column::san_list, "email"}},
        {"uri", {column::san_list, "uri"}},
        {"extended_key_usage", {column::list, "extended_key_usage"}},
    };
    return c;
}

std::string trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// "a;b; c" -> ["a","b","c"] (empty items dropped).
json::array split_list(std::string_view s) {
    json::array out;
    while (!s.empty()) {
        auto semi = s.find(';');
        auto item = trimmed(s.substr(0, semi));
        if (!item.empty()) out.emplace_back(item);
        s = semi == std::string_view::npos ? std::string_view() : s.substr(semi + 1);
    }
    return out;
}

// The header row: each column's meaning, or a 400 naming the unknown column.
result<std::vector<const std::pair<column, std::string>*>> read_header(const std::vector<std::string>& names) {
    std::vector<const std::pair<column, std::string>*> out;
    std::set<std::string> seen;
    for (const auto& raw : names) {
        const std::string name = lower(trimmed(raw));
        auto it = columns().find(name);
        if (it == columns().end())
            return make_error(errc::invalid_argument,
                              "unknown column \"" + name + "\" (see docs/api.md \"Batch jobs\" for the columns)",
                              name.empty() ? std::string("headers") : name);
        if (!seen.insert(name).second)
            return make_error(errc::invalid_argument, "column \"" + name + "\" appears twice", name);
        out.push_back(&it->second);
    }
    if (out.empty()) return make_error(errc::invalid_argument, "the header row is empty", "headers");
    return out;
}

// One row of cells as a create body; an empty cell is an absent field.
result<json::object> row_from_cells(const std::vector<const std::pair<column, std::string>*>& cols,
                                    const std::vector<std::string>& cells) {
    if (cells.size() > cols.size())
        return make_error(errc::invalid_argument,
                          "the row has " + std::to_string(cells.size()) + " cells; the header has " +
                              std::to_string(cols.size()) + " columns",
                          "row");
    json::object row;
    json::object sans;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const auto& [kind, field] = *cols[i];
        const std::string cell = kind == column::string && (field == "csr" || field == "csr_pem" || field == "notes")
                                     ? cells[i]
                                     : trimmed(cells[i]);
        if (cell.empty()) continue;
        switch (kind) {
        case column::string: row[field] = cell; break;
        case column::integer: {
            char* end = nullptr;
            errno = 0;
            const long long n = std::strtoll(cell.c_str(), &end, 10);
            if (*end || errno || n < -1000000 || n > 1000000)
                return make_error(errc::invalid_argument, field + ": must be an integer", field);
            row[field] = n;
            break;
        }
        case column::boolean: {
            const std::string v = lower(cell);
            if (v != "true" && v != "false")
                return make_error(errc::invalid_argument, field + ": must be true or false", field);
            row[field] = v == "true";
            break;
        }
        case column::san_list: sans[field] = split_list(cell); break;
        case column::list: row[field] = split_list(cell); break;
        }
    }
    if (!sans.empty()) row["subject_alt_names"] = std::move(sans);
    return row;
}

// A cell of the {"headers","rows"} shape as CSV text: strings as they are, numbers and booleans
// written out, null as empty.
result<std::string> cell_text(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    if (v.is_null()) return std::string();
    if (v.is_bool()) return std::string(v.get_bool() ? "true" : "false");
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    return make_error(errc::invalid_argument, "a cell must be a string, number, boolean or null", "rows");
}

result<parsed_rows> rows_from_table(const std::vector<std::string>& header,
                                    const std::vector<std::vector<std::string>>& table) {
    auto cols = read_header(header);
    if (!cols) return cols.error();
    parsed_rows out;
    out.rows.reserve(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto row = row_from_cells(*cols, table[i]);
        if (!row) {
            out.errors.push_back(row_error{i + 1, row.error().field, row.error().message, {}});
            out.rows.emplace_back();
        } else {
            out.rows.push_back(std::move(*row));
        }
    }
    return out;
}

result<parsed_rows> rows_from_csv(std::string_view body, std::size_t max_rows) {
    auto records = parse_csv(body, max_rows + 1);
    if (!records) return records.error();
    if (records->empty()) return make_error(errc::invalid_argument, "the CSV has no header row", "body");
    std::vector<std::vector<std::string>> table;
    table.reserve(records->size() - 1);
    for (std::size_t i = 1; i < records->size(); ++i) table.push_back(std::move((*records)[i].fields));
    return rows_from_table((*records)[0].fields, table);
}

// More rows than a batch may hold: refused before a row is looked at (the body is up to 32 MiB).
error too_many_rows(std::size_t n, std::size_t max_rows) {
    return make_error(errc::invalid_argument,
                      "a batch holds at most " + std::to_string(max_rows) + " rows; this one has " + std::to_string(n),
                      "body");
}

// Values a batch document may hold per row: a create body has some 25 fields and lists.
constexpr std::size_t json_values_per_row = 64;

// Whether `body` holds at most about `max` JSON values (commas, colons and opening brackets outside
// strings), counted before a DOM is built: 32 MiB of "[]," would be 11 million values, half a
// GiB of DOM.
bool json_values_within(std::string_view body, std::size_t max) {
    std::size_t n = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char ch = body[i];
        if (in_string) {
            if (ch == '\\')
                ++i;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == ',' || ch == ':' || ch == '[' || ch == '{') {
            if (++n > max) return false;
        }
    }
    return true;
}

result<parsed_rows> rows_from_json(std::string_view body, std::size_t max_rows) {
    if (!json_values_within(body, (max_rows + 1) * json_values_per_row))
        return make_error(errc::invalid_argument,
                          "the body holds more values than " + std::to_string(max_rows) + " rows may have", "body");
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return make_error(errc::invalid_argument, "the body is not valid JSON", "body");
    if (!v.is_object()) return make_error(errc::invalid_argument, "body: must be a JSON object", "body");
    auto& o = v.get_object();
    if (auto* certs = o.if_contains("certificates")) {
        if (o.size() != 1) return make_error(errc::invalid_argument, "only \"certificates\" is expected", "body");
        if (!certs->is_array())
            return make_error(errc::invalid_argument, "certificates: must be an array", "certificates");
        if (certs->get_array().size() > max_rows) return too_many_rows(certs->get_array().size(), max_rows);
        parsed_rows out;
        std::size_t n = 0;
        for (auto& item : certs->get_array()) {
            ++n;
            if (!item.is_object()) {
                out.errors.push_back(
                    row_error{n, "certificates[" + std::to_string(n - 1) + "]", "must be a JSON object", {}});
                out.rows.emplace_back();
            } else {
                out.rows.push_back(std::move(item.get_object()));
            }
        }
        return out;
    }
    const auto* headers = o.if_contains("headers");
    const auto* rows = o.if_contains("rows");
    if (!headers || !rows || o.size() != 2)
        return make_error(errc::invalid_argument,
                          "expected {\"certificates\":[...]} or {\"headers\":[...],\"rows\":[[...]]}", "body");
    if (!headers->is_array() || !rows->is_array())
        return make_error(errc::invalid_argument, "headers and rows must be arrays", "headers");
    if (rows->get_array().size() > max_rows) return too_many_rows(rows->get_array().size(), max_rows);
    std::vector<std::string> header;
    for (const auto& h : headers->get_array()) {
        if (!h.is_string()) return make_error(errc::invalid_argument, "headers: must be strings", "headers");
        header.emplace_back(h.get_string());
    }
    std::vector<std::vector<std::string>> table;
    std::vector<row_error> shape_errors;
    for (const auto& r : rows->get_array()) {
        std::vector<std::string> cells;
        if (!r.is_array()) {
            shape_errors.push_back(row_error{table.size() + 1, "rows", "a row must be an array", {}});
        } else {
            for (const auto& c : r.get_array()) {
                auto t = cell_text(c);
                if (!t) {
                    shape_errors.push_back(row_error{table.size() + 1, "rows", t.error().message, {}});
                    break;
                }
                cells.push_back(std::move(*t));
            }
        }
        table.push_back(std::move(cells));
    }
    auto out = rows_from_table(header, table);
    if (!out) return out;
    for (auto& e : shape_errors) {
        out->rows[e.row - 1] = json::object();
        out->errors.push_back(std::move(e));
    }
    return out;
}

response rows_refused(std::vector<row_error> errors, std::size_t total) {
    std::sort(errors.begin(), errors.end(), [](const row_error& a, const row_error& b) { return a.row < b.row; });
    auto body = error_body(http::status::bad_request, errc_name(errc::invalid_argument),
                           std::to_string(errors.size()) + " of " + std::to_string(total) +
                               " rows are invalid; nothing was created (?partial=true creates the valid rows)");
    json::array list;
    for (std::size_t i = 0; i < errors.size() && i < max_errors_answered; ++i) {
        json::object e{{"row", errors[i].row}, {"field", errors[i].field}, {"message", errors[i].message}};
        if (!errors[i].identifier.empty()) e["identifier"] = errors[i].identifier;
        list.push_back(std::move(e));
    }
    body["errors"] = std::move(list);
    body["errors_total"] = errors.size();
    if (!errors.empty()) body["field"] = errors.front().field;
    return json_response(http::status::bad_request, body);
}

response job_accepted(const job_record& j, time_point now) {
    auto res = json_response(http::status::accepted, to_json(j, now));
    res.set(http::field::location, "/api/jobs/" + j.id);
    return res;
}

result<bool> partial_flag(call& c) {
    auto p = c.query_value("partial");
    if (!p) return false;
    if (*p != "true" && *p != "false")
        return make_error(errc::invalid_argument, "partial must be true or false", "partial");
    return *p == "true";
}

// ---- POST /api/client-certs/batch ----

asio::awaitable<response> batch_create(call& c) {
    auto partial = partial_flag(c);
    if (!partial) co_return error_response(partial.error());
    const auto ct = c.req[http::field::content_type];
    const auto max_rows = c.api.opts.jobs.max_rows;
    const bool csv = media_type_is(ct, "text/csv");
    if (!csv && !media_type_is(ct, "application/json"))
        co_return error_json(http::status::unsupported_media_type, "UNSUPPORTED_MEDIA_TYPE",
                             "Content-Type must be text/csv or application/json");
    // Parsing a body of up to the batch limit (32 MiB by default) takes CPU time: on the pool, so
    // the io thread keeps serving other connections. The body stays in this frame meanwhile.
    const std::string_view body = c.req.body();
    result<parsed_rows> parsed = co_await c.core().in_pool(
        [body, csv, max_rows] { return csv ? rows_from_csv(body, max_rows) : rows_from_json(body, max_rows); });
    if (!parsed) co_return error_response(parsed.error());
    auto& rows = parsed->rows;
    const std::size_t total = rows.size();
    if (total == 0) co_return error_response(errc::invalid_argument, "the batch has no rows", "body");
    if (total > max_rows)
        co_return error_response(errc::invalid_argument,
                                 "a batch holds at most " + std::to_string(max_rows) + " rows; this one has " +
                                     std::to_string(total),
                                 "body");

    // Every row is checked as POST /api/client-certs would check it, on the pool (CSRs are verified).
    std::vector<std::optional<row_error>> errs(total);
    for (auto& e : parsed->errors) errs[e.row - 1] = std::move(e);
    std::vector<std::string> ids(total);
    const principal& who = c.who;
    auto& svc = c.core().view();
    for (std::size_t from = 0; from < total; from += validate_chunk) {
        const std::size_t to = std::min(total, from + validate_chunk);
        auto check = [&, from, to]() {
            for (std::size_t i = from; i < to; ++i) {
                if (errs[i]) continue;
                auto rq = create_request_from_json(rows[i]);
                if (!rq) {
                    errs[i] = row_error{i + 1, rq.error().field, rq.error().message, {}};
                    continue;
                }
                ids[i] = rq->identifier;
                if (auto v = svc.validate_create(std::move(*rq), who); !v)
                    errs[i] = row_error{i + 1, v.error().field, v.error().message, ids[i]};
            }
            return 0;
        };
        co_await c.core().in_pool(check);
    }
    // Identifiers: unique in the batch, free in the store; the rows without one get one now (the
    // reservation a resume relies on, core/job.hpp).
    std::map<std::string, std::size_t> first_row;
    for (std::size_t i = 0; i < total; ++i) {
        if (ids[i].empty() || errs[i]) continue;
        auto [it, fresh] = first_row.emplace(ids[i], i);
        if (!fresh)
            errs[i] =
                row_error{i + 1, "identifier",
                          "identifier appears twice in the batch (row " + std::to_string(it->second + 1) + ")", ids[i]};
    }
    auto reserve = [&](cert_service& s) {
        for (auto i : s.identifiers_in_use(ids))
            if (!errs[i] && !ids[i].empty())
                errs[i] = row_error{i + 1, "identifier", "a certificate with this identifier already exists", ids[i]};
        for (std::size_t i = 0; i < total; ++i) {
            if (!ids[i].empty()) continue;
            std::string id;
            do id = s.new_identifier();
            while (first_row.count(id));
            first_row.emplace(id, i);
            ids[i] = id;
        }
        return 0;
    };
    co_await c.core().in_core(reserve);

    std::vector<row_error> errors;
    for (auto& e : errs)
        if (e) errors.push_back(std::move(*e));
    if (!errors.empty() && (!*partial || errors.size() == total)) co_return rows_refused(std::move(errors), total);

    job_record j;
    j.id = new_job_id();
    j.kind = job_kind::create;
    j.state = job_state::queued;
    j.actor = actor_json(who);
    j.owner = owner_of(who);
    j.role = who.role;
    auto digest = co_await c.core().in_pool([body] { return sha256_hex(body); });
    if (!digest) co_return error_response(digest.error());
    j.request_sha256 = std::move(*digest);
    j.total = total;
    j.outcomes.assign(total, static_cast<char>(row_outcome::pending));
    for (auto& e : errors) j.outcomes[e.row - 1] = static_cast<char>(row_outcome::failed);
    j.errors = std::move(errors);
    j.created_at = svc.now();
    job_input in;
    in.identifiers = ids;
    in.rows = std::move(rows);
    for (std::size_t i = 0; i < total; ++i) in.rows[i]["identifier"] = ids[i];
    auto r = co_await c.api.jobs.submit(std::move(j), std::move(in), c.who);
    if (!r) co_return error_response(r.error());
    co_return job_accepted(*r, svc.now());
}

// ---- POST /api/client-certs/batch/revoke ----

asio::awaitable<response> batch_revoke(call& c) {
    // A body of up to the batch limit: counted and parsed on the pool (see batch_create).
    const std::string_view body = c.req.body();
    const std::size_t max_values = c.api.opts.jobs.max_rows + 64;
    struct parsed_body {
        bool within = false;
        boost::system::error_code ec;
        json::value v;
    };
    auto parsed = co_await c.core().in_pool([body, max_values] {
        parsed_body p;
        p.within = json_values_within(body, max_values);
        if (p.within) p.v = json::parse(body, p.ec);
        return p;
    });
    if (!parsed.within)
        co_return error_response(errc::invalid_argument,
                                 "a batch holds at most " + std::to_string(c.api.opts.jobs.max_rows) + " certificates",
                                 "identifiers");
    const auto ec = parsed.ec;
    json::value v = std::move(parsed.v);
    if (ec || !v.is_object())
        co_return error_response(errc::invalid_argument, "the body must be a JSON object", "body");
    const auto& o = v.get_object();
    for (const auto& kv : o)
        if (kv.key() != "identifiers" && kv.key() != "filter" && kv.key() != "reason")
            co_return error_response(errc::invalid_argument, std::string(kv.key()) + ": unknown field",
                                     std::string(kv.key()));
    revocation_reason reason = revocation_reason::unspecified;
    if (const auto* r = o.if_contains("reason")) {
        auto parsed = r->is_string() ? parse_revocation_reason(r->get_string()) : std::nullopt;
        if (!parsed)
            co_return error_response(
                errc::invalid_argument,
                "reason must be one of unspecified, keyCompromise, affiliationChanged, superseded, "
                "cessationOfOperation, certificateHold, privilegeWithdrawn",
                "reason");
        reason = *parsed;
    }
    const auto* ids_v = o.if_contains("identifiers");
    const auto* filter_v = o.if_contains("filter");
    if (!!ids_v == !!filter_v)
        co_return error_response(errc::invalid_argument, "give either identifiers or filter", "identifiers");
    std::vector<std::string> ids;
    const auto max_rows = c.api.opts.jobs.max_rows;
    if (ids_v) {
        if (!ids_v->is_array())
            co_return error_response(errc::invalid_argument, "identifiers: must be an array", "identifiers");
        std::set<std::string> seen;
        for (const auto& id : ids_v->get_array()) {
            if (!id.is_string() || !valid_identifier(id.get_string()))
                co_return error_response(
                    errc::invalid_argument,
                    "identifiers[" + std::to_string(ids.size()) + "]: not a certificate identifier", "identifiers");
            if (seen.insert(std::string(id.get_string())).second) ids.emplace_back(id.get_string());
        }
    } else {
        if (!filter_v->is_object())
            co_return error_response(errc::invalid_argument, "filter: must be an object", "filter");
        // An empty filter selects every certificate: too easy to send by mistake to be a request.
        if (filter_v->get_object().empty())
            co_return error_response(errc::invalid_argument,
                                     "filter: name at least one of usage, search, status, expiring_within_days",
                                     "filter");
        path_params q;
        for (const auto& kv : filter_v->get_object()) {
            const std::string k(kv.key());
            if (k != "usage" && k != "search" && k != "status" && k != "expiring_within_days")
                co_return error_response(errc::invalid_argument, "filter." + k + ": unknown field", "filter." + k);
            auto t = cell_text(kv.value());
            if (!t)
                co_return error_response(errc::invalid_argument, "filter." + k + ": must be a string", "filter." + k);
            q.emplace_back(k, *t);
        }
        auto lq = parse_list_query(q);
        if (!lq) co_return error_response(lq.error());
        lq->limit = max_rows + 1;
        lq->offset = 0;
        auto list = [&](cert_service& s) { return s.list(*lq); };
        auto page = co_await c.core().in_core(list);
        for (const auto& rec : page.items) ids.push_back(rec.identifier);
    }
    if (ids.empty()) co_return error_response(errc::invalid_argument, "no certificate to revoke", "identifiers");
    if (ids.size() > max_rows)
        co_return error_response(errc::invalid_argument,
                                 "a batch holds at most " + std::to_string(max_rows) + " certificates", "identifiers");
    auto& svc = c.core().view();
    job_record j;
    j.id = new_job_id();
    j.kind = job_kind::revoke;
    j.actor = actor_json(c.who);
    j.owner = owner_of(c.who);
    j.role = c.who.role;
    auto digest = sha256_hex(c.req.body());
    if (!digest) co_return error_response(digest.error());
    j.request_sha256 = std::move(*digest);
    j.reason = std::string(to_string(reason));
    j.total = ids.size();
    j.outcomes.assign(ids.size(), static_cast<char>(row_outcome::pending));
    j.created_at = svc.now();
    job_input in;
    in.identifiers = std::move(ids);
    auto r = co_await c.api.jobs.submit(std::move(j), std::move(in), c.who);
    if (!r) co_return error_response(r.error());
    co_return job_accepted(*r, svc.now());
}

// ---- /api/jobs ----

asio::awaitable<response> list_jobs(call& c) {
    const auto now = c.core().view().now();
    json::array items;
    for (const auto& j : c.api.jobs.list()) {
        auto o = to_json(j, now, 0, 0);
        items.push_back(std::move(o));
    }
    co_return json_response(http::status::ok, json::object{{"jobs", std::move(items)}});
}

asio::awaitable<response> get_job(call& c) {
    auto j = c.api.jobs.get(c.param("id"));
    if (!j) co_return error_response(errc::not_found, "no such job");
    std::size_t offset = 0, limit = 100;
    for (auto [name, target, hi] : {std::tuple{"errors_offset", &offset, std::size_t(100000000)},
                                    std::tuple{"errors_limit", &limit, std::size_t(1000)}}) {
        auto v = c.query_value(name);
        if (!v) continue;
        char* end = nullptr;
        const unsigned long long n = std::strtoull(v->c_str(), &end, 10);
        if (v->empty() || *end || n > hi || (*v)[0] == '-')
            co_return error_response(errc::invalid_argument,
                                     std::string(name) + " must be an integer between 0 and " + std::to_string(hi),
                                     name);
        *target = static_cast<std::size_t>(n);
    }
    co_return json_response(http::status::ok, to_json(*j, c.core().view().now(), offset, limit));
}

asio::awaitable<response> cancel_job(call& c) {
    auto r = co_await c.api.jobs.cancel(c.param("id"), c.who);
    if (!r) co_return error_response(r.error());
    co_return json_response(http::status::accepted, to_json(*r, c.core().view().now()));
}

asio::awaitable<response> resume_job(call& c) {
    auto r = co_await c.api.jobs.resume(c.param("id"), c.who);
    if (!r) co_return error_response(r.error());
    co_return job_accepted(*r, c.core().view().now());
}

// One JSON line per row: row, identifier, status (created|revoked|failed|pending), serial, error.
asio::awaitable<response> job_results(call& c) {
    const std::string id = c.param("id");
    auto j = c.api.jobs.get(id);
    if (!j) co_return error_response(errc::not_found, "no such job");
    auto in = co_await c.api.jobs.input(id);
    if (!in) co_return error_response(in.error());
    std::map<std::size_t, const row_error*> by_row;
    for (const auto& e : j->errors) by_row.emplace(e.row, &e);
    std::vector<std::string> serials(j->total);
    auto lookup = [&](cert_service& s) {
        for (std::size_t i = 0; i < j->total; ++i)
            if (j->outcomes[i] == static_cast<char>(row_outcome::ok))
                if (auto v = s.get(in->identifiers[i])) serials[i] = v->record.serial_number;
        return 0;
    };
    co_await c.core().in_core(lookup);
    std::string out;
    const char* ok_word = j->kind == job_kind::create ? "created" : "revoked";
    for (std::size_t i = 0; i < j->total; ++i) {
        const char o = j->outcomes[i];
        json::object line{{"row", i + 1},
                          {"identifier", in->identifiers[i]},
                          {"status", o == 'o'   ? ok_word
                                     : o == 'x' ? "failed"
                                                : "pending"}};
        if (!serials[i].empty()) line["serial_number"] = serials[i];
        if (auto it = by_row.find(i + 1); it != by_row.end())
            line["error"] = json::object{{"field", it->second->field}, {"message", it->second->message}};
        out += json::serialize(line);
        out += '\n';
    }
    co_return bytes_response(http::status::ok, "application/x-ndjson", std::move(out));
}

// The created certificates, their chains and (where the caller's role allows) keys, as .tar.gz.
asio::awaitable<response> job_archive(call& c) {
    const std::string id = c.param("id");
    auto j = c.api.jobs.get(id);
    if (!j) co_return error_response(errc::not_found, "no such job");
    if (j->kind != job_kind::create)
        co_return error_response(errc::invalid_argument, "only a create job has an archive", "id");
    auto in = co_await c.api.jobs.input(id);
    if (!in) co_return error_response(in.error());
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < j->total; ++i)
        if (j->outcomes[i] == static_cast<char>(row_outcome::ok)) ids.push_back(in->identifiers[i]);
    const bool keys = c.query_value("keys").value_or("true") != "false";
    principal who = c.who;
    who.job = id;
    auto stage = [&](cert_service& s) { return s.stage_bundle(ids, keys, who); };
    auto files = co_await c.core().run_staged<std::vector<std::pair<std::string, std::string>>>(stage);
    if (!files) co_return error_response(files.error());
    auto pack = [&]() { return gzip(tar_pack(*files)); };
    auto gz = co_await c.core().in_pool(pack);
    if (!gz) co_return error_response(gz.error());
    co_return bytes_response(http::status::ok, "application/gzip", std::move(*gz), id + ".tar.gz");
}

} // namespace

result<batch_rows> parse_batch_csv(std::string_view body, std::size_t max_rows) {
    auto p = rows_from_csv(body, max_rows);
    if (!p) return p.error();
    return batch_rows{std::move(p->rows), std::move(p->errors)};
}

result<batch_rows> parse_batch_json(std::string_view body, std::size_t max_rows) {
    auto p = rows_from_json(body, max_rows);
    if (!p) return p.error();
    return batch_rows{std::move(p->rows), std::move(p->errors)};
}

void add_job_routes(router& r) {
    constexpr auto op = api_role::operator_;
    r.add({verb::post, "/api/client-certs/batch", op, rate_class::batch, body_kind::raw, false, batch_create});
    r.add({verb::post, "/api/client-certs/batch/revoke", op, rate_class::batch, body_kind::json, false, batch_revoke});
    r.add({verb::get, "/api/jobs", op, rate_class::default_, body_kind::none, false, list_jobs});
    r.add({verb::get, "/api/jobs/{id}", op, rate_class::default_, body_kind::none, false, get_job});
    r.add({verb::delete_, "/api/jobs/{id}", op, rate_class::default_, body_kind::none, false, cancel_job});
    r.add({verb::post, "/api/jobs/{id}/resume", op, rate_class::batch, body_kind::json_optional, false, resume_job});
    r.add({verb::get, "/api/jobs/{id}/results", op, rate_class::default_, body_kind::none, false, job_results});
    r.add({verb::get, "/api/jobs/{id}/archive", op, rate_class::batch, body_kind::none, false, job_archive});
}

} // namespace certmate::net
