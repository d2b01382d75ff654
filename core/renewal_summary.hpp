// What a renewal sweep did: plain values, recorded by the store and answered by the API.
#pragma once

#include "core/clock.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace certmate {

struct renewal_outcome {
    std::string identifier;
    bool ok = false;
    std::string new_serial;
    std::string error;
};

struct renewal_summary {
    time_point started_at{};
    time_point finished_at{};
    std::size_t candidates = 0, renewed = 0, failed = 0;
    std::vector<renewal_outcome> outcomes;
};

// The summary as stored (state/renewal_sweep.json) and answered (POST /api/renewals/run).
boost::json::object to_json(const renewal_summary& s);

} // namespace certmate
