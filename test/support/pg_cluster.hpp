// A throwaway PostgreSQL cluster for tests (issue 18): Debian's postgresql binaries, `initdb` into
// a temp dir, listening only on a Unix socket in that dir, run as the unprivileged `postgres`
// user when the tests run as root. Stopped and removed at destruction.
#pragma once

#include "support/tools.hpp"

#include <memory>
#include <string>

namespace certmate::test {

class pg_cluster {
public:
    // Starts a cluster; throws std::runtime_error saying why when it cannot (postgresql missing:
    // `CERTMATE_TEST_DEPS=1 bash scripts/install-deps.sh` installs it).
    pg_cluster();
    ~pg_cluster();
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;

    // A new empty database (t1, t2, ...) and its libpq connection string.
    std::string create_database();
    // The libpq connection string of database `db`.
    std::string conninfo(const std::string& db) const;
    // Stops the server (fast shutdown: clients are disconnected) / starts it again on the same dir.
    void stop();
    void start();
    // Runs SQL through psql as the superuser; returns its output (throws on failure).
    std::string psql(const std::string& db, const std::string& sql) const;
    const std::filesystem::path& dir() const { return dir_.path(); }

private:
    std::string as_owner(const std::string& cmd) const;
    temp_dir dir_;
    std::string bin_; // /usr/lib/postgresql/<v>/bin
    bool root_ = false;
    bool running_ = false;
    int next_db_ = 0;
};

// One cluster per test process, started on first use.
pg_cluster& shared_pg_cluster();

} // namespace certmate::test
