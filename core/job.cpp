#include "core/job.hpp"

#include <algorithm>

namespace certmate {

namespace json = boost::json;

std::string_view to_string(job_kind k) noexcept { return k == job_kind::create ? "create" : "revoke"; }

std::string_view to_string(job_state s) noexcept {
    switch (s) {
    case job_state::queued: return "queued";
    case job_state::running: return "running";
    case job_state::succeeded: return "succeeded";
    case job_state::failed: return "failed";
    case job_state::cancelled: return "cancelled";
    case job_state::interrupted: return "interrupted";
    }
    return "failed";
}

std::optional<job_kind> parse_job_kind(std::string_view s) noexcept {
    if (s == "create") return job_kind::create;
    if (s == "revoke") return job_kind::revoke;
    return std::nullopt;
}

std::optional<job_state> parse_job_state(std::string_view s) noexcept {
    for (auto st : {job_state::queued, job_state::running, job_state::succeeded, job_state::failed,
                    job_state::cancelled, job_state::interrupted})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

std::size_t job_record::count(row_outcome o) const {
    return static_cast<std::size_t>(std::count(outcomes.begin(), outcomes.end(), static_cast<char>(o)));
}

namespace {

json::object error_json(const row_error& e) {
    json::object o{{"row", e.row}, {"field", e.field}, {"message", e.message}};
    if (!e.identifier.empty()) o["identifier"] = e.identifier;
    return o;
}

json::value time_or_null(const std::optional<time_point>& t) {
    return t ? json::value(format_time(*t)) : json::value(nullptr);
}

json::object common_json(const job_record& j) {
    return {{"id", j.id},
            {"kind", std::string(to_string(j.kind))},
            {"state", std::string(to_string(j.state))},
            {"actor", j.actor},
            {"owner", j.owner},
            {"role", std::string(to_string(j.role))},
            {"request_sha256", j.request_sha256},
            {"reason", j.reason},
            {"total", j.total},
            {"created_at", format_time(j.created_at)},
            {"started_at", time_or_null(j.started_at)},
            {"finished_at", time_or_null(j.finished_at)},
            {"resumes", j.resumes}};
}

const json::value* member(const json::object& o, std::string_view k) { return o.if_contains(k); }

std::optional<std::string> str(const json::object& o, std::string_view k) {
    const auto* v = member(o, k);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string(v->get_string());
}

std::optional<std::size_t> num(const json::object& o, std::string_view k) {
    const auto* v = member(o, k);
    if (!v) return std::nullopt;
    if (v->is_uint64()) return static_cast<std::size_t>(v->get_uint64());
    if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::size_t>(v->get_int64());
    return std::nullopt;
}

error corrupt(std::string what) { return make_error(errc::internal, "job record: " + what); }

} // namespace

json::object to_json(const job_record& j, time_point now, std::size_t errors_offset, std::size_t errors_limit) {
    json::object o = common_json(j);
    const std::size_t ok = j.count(row_outcome::ok), bad = j.count(row_outcome::failed);
    o["done"] = ok + bad;
    o["succeeded"] = ok;
    o["failed"] = bad;
    o["pending"] = j.total - ok - bad;
    double rate = 0;
    if (j.started_at) {
        const auto end = j.finished_at.value_or(now);
        const double s = std::chrono::duration<double>(end - *j.started_at).count();
        if (s > 0) rate = static_cast<double>(ok + bad) / s;
    }
    o["rate_per_second"] = rate;
    json::array errs;
    for (std::size_t i = errors_offset; i < j.errors.size() && errs.size() < errors_limit; ++i)
        errs.push_back(error_json(j.errors[i]));
    o["errors"] = std::move(errs);
    o["errors_total"] = j.errors.size();
    o["errors_offset"] = errors_offset;
    o["links"] = json::object{{"self", "/api/jobs/" + j.id},
                              {"results", "/api/jobs/" + j.id + "/results"},
                              {"archive", "/api/jobs/" + j.id + "/archive"}};
    return o;
}

json::object job_to_storage_json(const job_record& j) {
    json::object o = common_json(j);
    o["outcomes"] = j.outcomes;
    json::array errs;
    errs.reserve(j.errors.size());
    for (const auto& e : j.errors) errs.push_back(error_json(e));
    o["errors"] = std::move(errs);
    return o;
}

result<job_record> job_from_json(const json::value& v) {
    if (!v.is_object()) return corrupt("not an object");
    const auto& o = v.get_object();
    job_record j;
    auto id = str(o, "id");
    auto kind = str(o, "kind");
    auto state = str(o, "state");
    auto role = str(o, "role");
    auto created = str(o, "created_at");
    auto total = num(o, "total");
    auto outcomes = str(o, "outcomes");
    if (!id || !kind || !state || !role || !created || !total || !outcomes) return corrupt("a field is missing");
    auto k = parse_job_kind(*kind);
    auto s = parse_job_state(*state);
    auto r = parse_api_role(*role);
    auto c = parse_time(*created);
    if (!k || !s || !r || !c) return corrupt("a field has an unknown value");
    if (outcomes->size() != *total) return corrupt("outcomes do not match total");
    for (char ch : *outcomes)
        if (ch != '.' && ch != 'o' && ch != 'x') return corrupt("unknown outcome");
    j.id = *id;
    j.kind = *k;
    j.state = *s;
    j.role = *r;
    j.created_at = *c;
    j.total = *total;
    j.outcomes = std::move(*outcomes);
    if (const auto* a = member(o, "actor"); a && a->is_object()) j.actor = a->get_object();
    j.owner = str(o, "owner").value_or("");
    j.request_sha256 = str(o, "request_sha256").value_or("");
    j.reason = str(o, "reason").value_or("");
    j.resumes = num(o, "resumes").value_or(0);
    if (auto t = str(o, "started_at")) j.started_at = parse_time(*t);
    if (auto t = str(o, "finished_at")) j.finished_at = parse_time(*t);
    if (const auto* e = member(o, "errors"); e && e->is_array()) {
        for (const auto& item : e->get_array()) {
            if (!item.is_object()) return corrupt("an error is not an object");
            const auto& eo = item.get_object();
            j.errors.push_back(row_error{num(eo, "row").value_or(0), str(eo, "field").value_or(""),
                                         str(eo, "message").value_or(""), str(eo, "identifier").value_or("")});
        }
    }
    return j;
}

json::object to_json(const job_input& in) {
    json::array ids;
    ids.reserve(in.identifiers.size());
    for (const auto& id : in.identifiers) ids.emplace_back(id);
    json::array rows;
    rows.reserve(in.rows.size());
    for (const auto& r : in.rows) rows.emplace_back(r);
    return {{"identifiers", std::move(ids)}, {"rows", std::move(rows)}};
}

result<job_input> job_input_from_json(const json::value& v) {
    if (!v.is_object()) return corrupt("input is not an object");
    const auto& o = v.get_object();
    const auto* ids = member(o, "identifiers");
    const auto* rows = member(o, "rows");
    if (!ids || !ids->is_array() || !rows || !rows->is_array()) return corrupt("input lacks identifiers or rows");
    job_input in;
    for (const auto& id : ids->get_array()) {
        if (!id.is_string()) return corrupt("an identifier is not a string");
        in.identifiers.emplace_back(id.get_string());
    }
    for (const auto& r : rows->get_array()) {
        if (!r.is_object()) return corrupt("a row is not an object");
        in.rows.push_back(r.get_object());
    }
    if (!in.rows.empty() && in.rows.size() != in.identifiers.size()) return corrupt("rows and identifiers differ");
    return in;
}

} // namespace certmate
