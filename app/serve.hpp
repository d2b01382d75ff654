// `certmate serve`: runs the server until SIGTERM/SIGINT; SIGHUP reloads the config.
#pragma once

#include "app/config.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace certmate::app {

int run_server(const config& cfg, const std::filesystem::path& config_file, const std::vector<std::string>& overrides);

} // namespace certmate::app
