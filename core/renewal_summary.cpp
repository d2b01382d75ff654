#include "core/renewal_summary.hpp"

#include <boost/json/array.hpp>

namespace certmate {

namespace json = boost::json;

json::object to_json(const renewal_summary& s) {
    json::array outcomes;
    for (const auto& o : s.outcomes) {
        json::object j{{"identifier", o.identifier}, {"ok", o.ok}};
        if (o.ok)
            j["new_serial"] = o.new_serial;
        else
            j["error"] = o.error;
        outcomes.push_back(std::move(j));
    }
    return {{"started_at", format_time(s.started_at)},
            {"finished_at", format_time(s.finished_at)},
            {"candidates", s.candidates},
            {"renewed", s.renewed},
            {"failed", s.failed},
            {"outcomes", std::move(outcomes)}};
}

} // namespace certmate
