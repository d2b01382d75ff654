#include "net/target.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url_view.hpp>

namespace certmate::net {

std::optional<std::string> percent_decode(std::string_view in) {
    auto pct = boost::urls::make_pct_string_view(in);
    if (!pct) return std::nullopt;
    std::string out = pct->decode();
    if (out.find('\0') != std::string::npos) return std::nullopt;
    return out;
}

request_target parse_target(std::string_view target) {
    request_target t;
    t.path = target.substr(0, target.find('?'));
    auto url = boost::urls::parse_origin_form(target);
    if (!url) return t;
    // params(): '+' decodes as a space (the HTML form convention every client sends).
    for (auto p : url->params()) {
        if (p.key.empty() && !p.has_value) continue; // "a=1&&b=2"
        if (p.key.find('\0') != std::string::npos || p.value.find('\0') != std::string::npos) {
            t.query.clear();
            return t;
        }
        t.query.emplace_back(std::move(p.key), std::move(p.value));
    }
    t.path = url->encoded_path();
    t.valid = true;
    return t;
}

} // namespace certmate::net
