#include "support/http_server_fixture.hpp"

#include "app/bootstrap.hpp"
#include "app/server_options.hpp"

#include "storage/layout.hpp"
#include "storage/pg.hpp"
#include "support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <stdexcept>

namespace certmate::test {

token_set make_tokens(std::vector<app::token_entry>& entries) {
    token_set t{app::new_token(), app::new_token(), app::new_token()};
    entries.push_back({"admin", api_role::admin, app::sha256_hex_of(t.admin)});
    entries.push_back({"ops", api_role::operator_, app::sha256_hex_of(t.operator_)});
    entries.push_back({"reader", api_role::viewer, app::sha256_hex_of(t.viewer)});
    return t;
}

bool pg_backend() {
    static const bool pg = [] {
        const char* v = std::getenv("CERTMATE_TEST_BACKEND");
        std::string b = v ? v : "";
        if (b.empty() || b == "fs") return false;
        if (b == "postgresql") return true;
        throw std::runtime_error("CERTMATE_TEST_BACKEND=" + b + ": expected fs or postgresql");
    }();
    return pg;
}

bool skip_on_pg(const std::string& why) {
    if (!pg_backend()) return false;
    BOOST_TEST_MESSAGE("skipped on PostgreSQL: " << why);
    return true;
}

void use_test_backend(app::config& cfg, const std::filesystem::path& dir) {
    if (!pg_backend()) return;
    cfg.backend = "postgresql";
    cfg.postgresql = shared_pg_cluster().create_database();
    std::filesystem::create_directories(dir);
    cfg.key_encryption_key_file = dir / "kek";
    write_text(cfg.key_encryption_key_file, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    if (::chmod(cfg.key_encryption_key_file.c_str(), 0600) != 0) throw std::runtime_error("chmod kek");
}

std::vector<std::string> test_backend_args(const std::filesystem::path& dir) {
    app::config cfg;
    use_test_backend(cfg, dir);
    if (cfg.backend != "postgresql") return {};
    return {"--storage.backend",
            "postgresql",
            "--storage.postgresql",
            cfg.postgresql,
            "--storage.key_encryption_key_file",
            cfg.key_encryption_key_file.string()};
}

std::vector<std::string> audit_lines(const app::config& cfg) {
    if (cfg.backend != "postgresql") return lines_of(storage::layout{cfg.data_dir}.audit_log());
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) throw std::runtime_error("audit_lines: " + c.error().message);
    auto r = c->exec("SELECT line FROM audit_log ORDER BY seq");
    if (!r) throw std::runtime_error("audit_lines: " + r.error().message);
    std::vector<std::string> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(r->text(i, 0));
    return out;
}

std::string audit_text(const app::config& cfg) {
    std::string out;
    for (const auto& l : audit_lines(cfg)) out += l + "\n";
    return out;
}

void write_audit_lines(const app::config& cfg, const std::vector<std::string>& lines) {
    if (cfg.backend != "postgresql") {
        std::string out;
        for (const auto& l : lines) out += l + "\n";
        write_text(storage::layout{cfg.data_dir}.audit_log(), out);
        return;
    }
    auto c = storage::pg::connection::open(cfg.postgresql);
    if (!c) throw std::runtime_error("write_audit_lines: " + c.error().message);
    auto r = c->exec("SELECT seq, line FROM audit_log ORDER BY seq");
    if (!r) throw std::runtime_error("write_audit_lines: " + r.error().message);
    if (static_cast<std::size_t>(r->size()) != lines.size())
        throw std::runtime_error("write_audit_lines: the table holds " + std::to_string(r->size()) + " lines, not " +
                                 std::to_string(lines.size()));
    for (int i = 0; i < r->size(); ++i) {
        if (r->text(i, 1) == lines[static_cast<std::size_t>(i)]) continue;
        auto u = c->exec("UPDATE audit_log SET line = $1 WHERE seq = $2",
                         {storage::pg::param(lines[static_cast<std::size_t>(i)]), storage::pg::param(r->int64(i, 0))});
        if (!u) throw std::runtime_error("write_audit_lines: " + u.error().message);
    }
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
    use_test_backend(cfg, data_dir.parent_path());
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
