#include "support/two_instances.hpp"

#include "support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <csignal>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

namespace certmate::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string must(const std::string& cmd) {
    auto r = run(cmd + " 2>&1");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, cmd << "\n" << r.output);
    return r.output;
}

unsigned short free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

two_instances::two_instances(ha_options o) : opts(std::move(o)) {
    conninfo = shared_pg_cluster().create_database();
    db = conninfo.substr(conninfo.find("dbname=") + 7);
    db = db.substr(0, db.find(' '));
    write_text(kek, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    ::chmod(kek.c_str(), 0600);
    a.data = dir / "a";
    b.data = dir / "b";
    must(bin + " init --data-dir " + a.data.string() + " --ca.key_type ec-p384" +
         (opts.tls ? " --server-cert 127.0.0.1" : ""));
    conf = a.data / "certmate.conf";
    token = read_text(a.data / "admin.token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    // The second instance: the same CA (and audit signer) from a backup, the same TLS identity.
    must(bin + " ca backup --data-dir " + a.data.string() + " --out " + (dir / "ca.tar").string());
    must(bin + " ca restore --data-dir " + b.data.string() + " --in " + (dir / "ca.tar").string());
    if (opts.tls) {
        fs::create_directories(b.data / "tls");
        fs::copy_file(a.data / "tls/server.crt", b.data / "tls/server.crt");
        fs::copy_file(a.data / "tls/server.key", b.data / "tls/server.key");
    }
    if (opts.migrate) {
        const auto migrate = bin + " db migrate -c " + conf.string() + " --data-dir " + a.data.string() + db_flags();
        auto out = must(migrate);
        BOOST_TEST(out.find("schema migrated from version 0 to") != std::string::npos, out);
        auto again = must(migrate);
        BOOST_TEST(again.find("nothing to do") != std::string::npos, again);
    }
    start(a);
    start(b);
}

std::vector<std::string> two_instances::db_args() const {
    return {"--storage.backend", "postgresql", "--storage.postgresql", conninfo, "--storage.key_encryption_key_file",
            kek.string()};
}

std::string two_instances::db_flags() const {
    std::string s;
    for (const auto& x : db_args()) s += " '" + x + "'";
    return s;
}

void two_instances::start(ha_instance& i, std::vector<std::string> renewal, const std::string& log) {
    std::vector<std::string> argv{bin,
                                  "serve",
                                  "-c",
                                  conf.string(),
                                  "--data-dir",
                                  i.data.string(),
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--server.threads",
                                  "2",
                                  "--server.pool_threads",
                                  "2"};
    if (opts.tls)
        for (const auto& x : std::vector<std::string>{
                 "--server.https_listen", "127.0.0.1:0", "--tls.cert", (i.data / "tls/server.crt").string(),
                 "--tls.key", (i.data / "tls/server.key").string(), "--tls.client_auth", "optional"})
            argv.push_back(x);
    for (const auto* list : {&renewal, &opts.limits, &opts.extra}) argv.insert(argv.end(), list->begin(), list->end());
    const auto storage = db_args();
    argv.insert(argv.end(), storage.begin(), storage.end());
    i.log = i.data.string() + "." + log;
    i.proc = std::make_unique<child_process>(argv, i.log);
    auto line = i.proc->wait_for_line("listening on http://", 120s);
    BOOST_REQUIRE_MESSAGE(line, read_text(i.log));
    i.port = port_of_listen_line(*line);
    if (opts.tls) {
        auto tline = i.proc->wait_for_line("listening on https://", 30s);
        BOOST_REQUIRE_MESSAGE(tline, read_text(i.log));
        i.tls_port = port_of_listen_line(*tline);
    }
}

void two_instances::stop(ha_instance& i) {
    i.proc->signal(SIGTERM);
    BOOST_REQUIRE(i.proc->wait_exit(30s));
}

void two_instances::kill(ha_instance& i) {
    i.proc->signal(SIGKILL);
    BOOST_REQUIRE(i.proc->wait_exit(10s));
}

std::string two_instances::sql(const std::string& q) const { return shared_pg_cluster().psql(db, q); }

} // namespace certmate::test
