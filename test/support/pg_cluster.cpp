#include "support/pg_cluster.hpp"

#include <filesystem>
#include <mutex>
#include <stdexcept>

#include <unistd.h>

namespace certmate::test {

namespace fs = std::filesystem;

namespace {
std::string find_bin() {
    std::string best;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
        if (fs::exists(e.path() / "bin" / "initdb")) best = std::max(best, (e.path() / "bin").string());
    return best;
}
std::mutex counter_mu, psql_mu;
} // namespace

pg_cluster::pg_cluster() : bin_(find_bin()), root_(::geteuid() == 0) {
    if (bin_.empty())
        throw std::runtime_error("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run "
                                 "CERTMATE_TEST_DEPS=1 bash scripts/install-deps.sh");
    if (root_) {
        // initdb refuses root; the cluster belongs to Debian's `postgres` user.
        if (run("id -u postgres").exit_code != 0)
            throw std::runtime_error("the `postgres` user is missing (Debian's postgresql package creates it)");
        if (auto r = run("chown postgres: '" + dir().string() + "' && chmod 0700 '" + dir().string() + "'");
            r.exit_code != 0)
            throw std::runtime_error("chown of the cluster dir failed: " + r.output);
    }
    auto r = run(as_owner("'" + bin_ + "/initdb' -D '" + (dir() / "data").string() +
                          "' -U certmate --auth=trust -E UTF8 --locale=C.UTF-8 -N"));
    if (r.exit_code != 0) throw std::runtime_error("initdb failed: " + r.output);
    // Tests trade durability for speed (fsync off): a crash of the machine is not what they test.
    std::string conf = "listen_addresses = ''\nunix_socket_directories = '" + dir().string() +
                       "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n";
    write_text(dir() / "extra.conf", conf);
    run("cat '" + (dir() / "extra.conf").string() + "' >> '" + (dir() / "data" / "postgresql.conf").string() + "'");
    start();
}

pg_cluster::~pg_cluster() {
    if (running_) run(as_owner("'" + bin_ + "/pg_ctl' -D '" + (dir() / "data").string() + "' -m immediate -w stop"));
}

std::string pg_cluster::as_owner(const std::string& cmd) const {
    return root_ ? "runuser -u postgres -- sh -c \"cd / && " + cmd + "\" 2>&1" : "sh -c \"" + cmd + "\" 2>&1";
}

void pg_cluster::start() {
    auto r = run(as_owner("'" + bin_ + "/pg_ctl' -D '" + (dir() / "data").string() + "' -l '" +
                          (dir() / "server.log").string() + "' -w -t 60 start"));
    if (r.exit_code != 0)
        throw std::runtime_error("pg_ctl start failed: " + r.output + read_text(dir() / "server.log"));
    running_ = true;
}

void pg_cluster::stop() {
    auto r = run(as_owner("'" + bin_ + "/pg_ctl' -D '" + (dir() / "data").string() + "' -m fast -w stop"));
    if (r.exit_code != 0) throw std::runtime_error("pg_ctl stop failed: " + r.output);
    running_ = false;
}

std::string pg_cluster::conninfo(const std::string& db) const {
    return "host=" + dir().string() + " user=certmate dbname=" + db + " connect_timeout=5";
}

std::string pg_cluster::psql(const std::string& db, const std::string& sql) const {
    std::lock_guard lock(psql_mu); // one query.sql at a time
    write_text(dir() / "query.sql", sql);
    auto r = run("psql -X -q -At -v ON_ERROR_STOP=1 '" + conninfo(db) + "' -f '" + (dir() / "query.sql").string() +
                 "' 2>&1");
    if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.output);
    return r.output;
}

std::string pg_cluster::create_database() {
    std::string name;
    {
        // Servers of one test process may start on several threads.
        std::lock_guard lock(counter_mu);
        name = "t" + std::to_string(++next_db_);
    }
    psql("postgres", "CREATE DATABASE " + name);
    return conninfo(name);
}

pg_cluster& shared_pg_cluster() {
    static pg_cluster cluster;
    return cluster;
}

} // namespace certmate::test
