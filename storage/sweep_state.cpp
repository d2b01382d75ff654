#include "storage/sweep_state.hpp"

#include "storage/atomic_file.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace certmate::storage {

namespace json = boost::json;

namespace {
fs::path sweep_file(const layout& l) { return l.state_dir() / "renewal_sweep.json"; }
} // namespace

std::optional<renewal_summary> parse_last_sweep(std::string_view text) {
    boost::system::error_code jec;
    auto v = json::parse(text, jec);
    const json::object* o = jec ? nullptr : v.if_object();
    auto started = o && o->if_contains("started_at") && o->at("started_at").is_string()
                       ? parse_time(o->at("started_at").as_string())
                       : std::nullopt;
    if (!started) return std::nullopt;
    renewal_summary s;
    s.started_at = *started;
    auto num = [&](const char* k) -> std::size_t {
        auto p = o->if_contains(k);
        return p && p->is_int64() && p->as_int64() >= 0 ? static_cast<std::size_t>(p->as_int64())
               : p && p->is_uint64()                    ? static_cast<std::size_t>(p->as_uint64())
                                                        : 0;
    };
    if (auto p = o->if_contains("finished_at"); p && p->is_string())
        s.finished_at = parse_time(p->as_string()).value_or(s.started_at);
    s.candidates = num("candidates");
    s.renewed = num("renewed");
    s.failed = num("failed");
    if (auto arr = o->if_contains("outcomes"); arr && arr->is_array()) {
        for (const auto& e : arr->as_array()) {
            const auto* eo = e.if_object();
            if (!eo) continue;
            renewal_outcome out;
            if (auto p = eo->if_contains("identifier"); p && p->is_string()) out.identifier = p->as_string();
            if (auto p = eo->if_contains("ok"); p && p->is_bool()) out.ok = p->as_bool();
            if (auto p = eo->if_contains("new_serial"); p && p->is_string()) out.new_serial = p->as_string();
            if (auto p = eo->if_contains("error"); p && p->is_string()) out.error = p->as_string();
            s.outcomes.push_back(std::move(out));
        }
    }
    return s;
}

std::optional<renewal_summary> load_last_sweep(const layout& l) {
    std::error_code ec;
    if (!fs::exists(sweep_file(l), ec)) return std::nullopt;
    auto text = read_file(sweep_file(l));
    if (!text) return std::nullopt;
    auto s = parse_last_sweep(*text);
    if (!s) spdlog::warn("{} is unreadable; treating the sweep as never run", sweep_file(l).string());
    return s;
}

result<void> save_last_sweep(const layout& l, const renewal_summary& s, std::optional<error>* late) {
    if (auto r = ensure_dir(l.state_dir(), fs::perms(0700)); !r) return r;
    const std::string text = json::serialize(to_json(s)) + "\n";
    if (late) return write_file_atomic(sweep_file(l), text, fs::perms(0644), *late);
    return write_file_atomic(sweep_file(l), text);
}

} // namespace certmate::storage
