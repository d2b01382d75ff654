// The real server in-process on 127.0.0.1, port 0, over a fresh data dir with cheap keys
// (CA ec-p384, clients ec-p256), three tokens (admin, operator, viewer) and no rate limits
// unless a test sets them.
#pragma once

#include "app/config.hpp"
#include "net/server.hpp"
#include "support/http_client.hpp"
#include "support/tools.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace certmate::test {

struct token_set {
    std::string admin, operator_, viewer;
};

// Config lines ("name:role:sha256") for a fresh token set.
token_set make_tokens(std::vector<app::token_entry>& entries);

// The storage backend the in-process suites run on: CERTMATE_TEST_BACKEND=postgresql (CTest's
// *_pg entries, issue 18 test 1) or the file system store (unset or "fs"); any other value throws.
bool pg_backend();
// True (printing "skipped on PostgreSQL: <why>") when the suite runs on PostgreSQL and the calling
// case tests the file store itself (files in the data dir); the case then returns.
bool skip_on_pg(const std::string& why);
// Points `cfg` at the test backend: nothing for fs; for postgresql a fresh database of the shared
// throwaway cluster (support/pg_cluster.hpp) and a key-encryption key file (0600) in `dir`.
void use_test_backend(app::config& cfg, const std::filesystem::path& dir);
// The same as command-line options for a `certmate` child process (none for fs).
std::vector<std::string> test_backend_args(const std::filesystem::path& dir);

// The audit chain's lines (JSON, oldest first) where `cfg` keeps it: the data dir's log file or
// the database's audit_log table.
std::vector<std::string> audit_lines(const app::config& cfg);
// The same, as one text with a '\n' after each line.
std::string audit_text(const app::config& cfg);
// Overwrites the stored chain with `lines` (as many as audit_lines gave), behind the server's back:
// the file rewritten, or each changed row's line updated in place.
void write_audit_lines(const app::config& cfg, const std::vector<std::string>& lines);

// The test servers' config: data in `data_dir`, port 0, cheap keys, 2+2 threads, no rate limits,
// a fresh token set (returned in `tokens`), on the test backend (its files beside `data_dir`).
app::config test_config(const std::filesystem::path& data_dir, token_set& tokens);

class test_server {
public:
    explicit test_server(const std::function<void(app::config&)>& tweak = {},
                         const std::function<void(net::server_options&)>& tweak_options = {});
    ~test_server();

    unsigned short port() const { return server_->port(); }
    http_client client() const { return http_client(port()); }
    net::server& server() { return *server_; }
    const std::filesystem::path& data_dir() const { return dir_.path(); }
    app::config& config() { return cfg_; }

    token_set tokens;

private:
    temp_dir dir_;
    app::config cfg_;
    std::unique_ptr<net::server> server_;
};

} // namespace certmate::test
