#include "app/serve.hpp"

#include "app/bootstrap.hpp"

#include <spdlog/spdlog.h>

#include <iostream>

namespace certmate::app {

// Until the HTTP server lands: initialise the data dir and report what is there.
int run_server(const config& cfg, const std::filesystem::path& config_file, const std::vector<std::string>&) {
    auto rep = init_data_dir(cfg, config_file);
    if (!rep) throw error_exception(rep.error());
    if (!rep->admin_token.empty()) std::cout << "admin token: " << rep->admin_token << "\n";
    auto svc = open_service(cfg);
    if (!svc) throw error_exception(svc.error());
    std::cout << "CA " << rep->ca_fingerprint << ", " << (*svc)->size() << " certificates in " << cfg.data_dir.string()
              << "\n";
    return 0;
}

} // namespace certmate::app
