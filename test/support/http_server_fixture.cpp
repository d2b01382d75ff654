#include "support/http_server_fixture.hpp"

#include "app/bootstrap.hpp"
#include "app/server_options.hpp"

#include <stdexcept>

namespace certmate::test {

token_set make_tokens(std::vector<app::token_entry>& entries) {
    token_set t{app::new_token(), app::new_token(), app::new_token()};
    entries.push_back({"admin", api_role::admin, app::sha256_hex_of(t.admin)});
    entries.push_back({"ops", api_role::operator_, app::sha256_hex_of(t.operator_)});
    entries.push_back({"reader", api_role::viewer, app::sha256_hex_of(t.viewer)});
    return t;
}

app::config test_config(const std::filesystem::path& data_dir, token_set& tokens) {
    app::config cfg;
    cfg.data_dir = data_dir;
    cfg.http_listen = "127.0.0.1:0";
    cfg.ca_key_type = key_type::ec_p384;
    cfg.service.default_key_type = key_type::ec_p256;
    cfg.service.load_threads = 1;
    cfg.threads = 2;
    cfg.pool_threads = 2;
    cfg.shutdown_grace = std::chrono::seconds(5);
    cfg.limits = app::rate_limits{0, 0, 0, 0, 0};
    tokens = make_tokens(cfg.tokens);
    return cfg;
}

test_server::test_server(const std::function<void(app::config&)>& tweak,
                         const std::function<void(net::server_options&)>& tweak_options) {
    cfg_ = test_config(dir_.path() / "data", tokens);
    if (tweak) tweak(cfg_);
    auto init = app::init_data_dir(cfg_, {});
    if (!init) throw std::runtime_error("init_data_dir: " + init.error().message);
    auto svc = app::open_service(cfg_);
    if (!svc) throw std::runtime_error("open_service: " + svc.error().message);
    auto opts = app::server_options_from(cfg_);
    if (tweak_options) tweak_options(opts);
    server_ = std::make_unique<net::server>(std::move(opts), std::move(*svc));
    if (auto r = server_->start(); !r) throw std::runtime_error("server start: " + r.error().message);
}

test_server::~test_server() {
    if (server_) server_->shutdown();
}

} // namespace certmate::test
