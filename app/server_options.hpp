// config -> what the HTTP server is told (net/options.hpp).
#pragma once

#include "app/config.hpp"
#include "net/options.hpp"

namespace certmate::app {

net::server_options server_options_from(const config& cfg);
std::vector<net::token_credential> tokens_from(const config& cfg);
rate_limit_config rate_limits_from(const config& cfg);
net::tls_options tls_options_from(const config& cfg);

} // namespace certmate::app
