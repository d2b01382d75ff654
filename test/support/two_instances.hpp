// Two `certmate serve` processes of one CA on one database of the shared throwaway cluster
// (issue 18, docs/high-availability.md "Deploying"): A's data dir made by `certmate init`, B's by
// `ca backup` / `ca restore` of A's (and A's TLS identity copied), the schema by `certmate db
// migrate`; each process talked to directly on its own loopback port.
#pragma once

#include "support/child_process.hpp"
#include "support/tools.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace certmate::test {

// Runs `cmd` (stdout and stderr captured), requiring exit 0; its output.
std::string must(const std::string& cmd);
// A TCP port on 127.0.0.1 free at the time of asking.
unsigned short free_loopback_port();

struct ha_instance {
    std::filesystem::path data;
    std::unique_ptr<child_process> proc;
    unsigned short port = 0, tls_port = 0;
    std::string log; // its stderr (spdlog)
};

struct ha_options {
    bool tls = false;    // an https listener too (client certificates optional), the server cert from init
    bool migrate = true; // `certmate db migrate` first (checked, and idempotent); else `serve` makes the schema
    std::vector<std::string> limits{"--rate_limit.default", "0", "--rate_limit.create", "0"};
    std::vector<std::string> extra; // more options for both instances
};

class two_instances {
public:
    explicit two_instances(ha_options o = {});

    // The storage options of both, as arguments and as a shell-quoted string.
    std::vector<std::string> db_args() const;
    std::string db_flags() const;
    // Starts `i` with the options of both and `renewal` (default: no daily sweep); its log goes to
    // <data>.<log>. Waits for its listeners.
    void start(ha_instance& i, std::vector<std::string> renewal = {"--renewal.enabled", "false"},
               const std::string& log = "err");
    void stop(ha_instance& i); // SIGTERM, a clean exit
    void kill(ha_instance& i); // SIGKILL
    // psql as the cluster's superuser on this database.
    std::string sql(const std::string& q) const;
    std::size_t sql_count(const std::string& q) const { return std::stoul(sql(q)); }

    ha_options opts;
    temp_dir dir;
    std::string bin = certmate_binary();
    std::string conninfo, db;
    std::filesystem::path kek = dir / "kek";
    std::filesystem::path conf;
    std::string token; // A's admin token (B's data dir has the same)
    ha_instance a, b;
};

} // namespace certmate::test
