// Attacks on the PostgreSQL backend (issue 18, docs/postgresql.md, docs/high-availability.md):
// what a stranger learns from the public /health when the database is away, and the refusal of
// a password in storage.postgresql however the URI spells the keyword, and a COMMIT whose answer is
// lost (the connection drops after the server committed): the instance reports a failure, and its
// memory must still learn the change.
#define BOOST_TEST_MODULE pg_attack
#include <boost/test/unit_test.hpp>

#include "app/config.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg_store.hpp"
#include "support/pg_cluster.hpp"
#include "support/sample_records.hpp"
#include "support/tools.hpp"

#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <thread>

using namespace certmate;
using namespace certmate::storage;

namespace {

key_wrap random_kek() {
    std::string k(32, '\0');
    BOOST_REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
    return key_wrap::from_key(k).value();
}

// A Unix-socket proxy in front of the test cluster. Once armed, the first client message holding
// "COMMIT" is forwarded to the server, and then the client's side is closed before any answer:
// the server commits, the client sees the connection lost (a crash or network cut at COMMIT).
class commit_cutter {
public:
    commit_cutter(const std::string& server_dir) : server_(server_dir + "/.s.PGSQL.5432") {
        path_ = (dir_.path() / ".s.PGSQL.5432").string();
        lfd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        BOOST_REQUIRE(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        BOOST_REQUIRE(::listen(lfd_, 16) == 0);
        acceptor_ = std::jthread([this](std::stop_token st) { accept_loop(st); });
    }
    ~commit_cutter() {
        acceptor_.request_stop();
        acceptor_.join();
        ::close(lfd_);
        for (auto& t : pipes_) t.request_stop();
        pipes_.clear();
    }
    std::string dir() const { return dir_.path().string(); }
    void arm() { armed_ = true; }
    bool fired() const { return fired_; }

private:
    static int dial(const std::string& path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    void accept_loop(const std::stop_token& st) {
        while (!st.stop_requested()) {
            pollfd p{lfd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            int cfd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (cfd < 0) continue;
            int sfd = dial(server_);
            if (sfd < 0) {
                ::close(cfd);
                continue;
            }
            pipes_.emplace_back([this, cfd, sfd](std::stop_token s) { pipe(s, cfd, sfd); });
        }
    }
    void pipe(const std::stop_token& st, int cfd, int sfd) {
        char buf[65536];
        bool client_open = true;
        while (!st.stop_requested()) {
            pollfd p[2] = {{cfd, POLLIN, 0}, {sfd, POLLIN, 0}};
            if (::poll(p, client_open ? 2 : 1, 100) <= 0) continue;
            if (client_open && p[0].revents) {
                const ssize_t n = ::read(cfd, buf, sizeof buf);
                if (n <= 0) break;
                (void)::write(sfd, buf, static_cast<std::size_t>(n));
                if (armed_ &&
                    std::string_view(buf, static_cast<std::size_t>(n)).find("COMMIT") != std::string_view::npos) {
                    armed_ = false;
                    fired_ = true;
                    ::shutdown(cfd, SHUT_RDWR);                                  // the answer never reaches the client
                    std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the server commits meanwhile
                    break;
                }
            }
            if (p[1].revents) {
                const ssize_t n = ::read(sfd, buf, sizeof buf);
                if (n <= 0) break;
                (void)::write(cfd, buf, static_cast<std::size_t>(n));
            }
        }
        ::close(cfd);
        ::close(sfd);
    }

    test::temp_dir dir_;
    std::string path_, server_;
    int lfd_ = -1;
    std::atomic<bool> armed_{false}, fired_{false};
    std::vector<std::jthread> pipes_;
    std::jthread acceptor_;
};

std::string conninfo_field(const std::string& conninfo, const std::string& key) {
    std::smatch m;
    const std::regex re(key + "=(\\S+)");
    return std::regex_search(conninfo, m, re) ? m[1].str() : std::string();
}

bool refused(const std::string& conninfo) {
    try {
        (void)app::load_config({}, {"--storage.backend", "postgresql", "--storage.postgresql", conninfo,
                                    "--storage.key_encryption_key_file", "/nonexistent/kek"});
        return false;
    } catch (const std::exception& e) {
        return std::string(e.what()).find("password") != std::string::npos;
    }
}

} // namespace

// pg_store::problem() is shown by the public /health (net/api_misc.cpp): libpq's message names the
// database host, port and user ("connection to server at ... failed: ... for user ..."), which a
// stranger must not learn. The detail goes to the log only.
BOOST_AUTO_TEST_CASE(health_problem_reveals_no_host_or_user) {
    pg_store s("host=127.0.0.1 port=1 user=topsecretuser dbname=hiddendb connect_timeout=2", 2, random_kek(), "attack");
    auto rec = certmate::test::make_record(1);
    cert_files f;
    f.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----\n";
    auto r = s.create(rec, f);
    BOOST_REQUIRE(!r);
    BOOST_TEST(static_cast<int>(r.error().code) == static_cast<int>(errc::storage_unavailable));
    auto p = s.problem();
    BOOST_REQUIRE(p);
    BOOST_TEST(p->starts_with("database unreachable"), *p);
    BOOST_TEST(p->find("127.0.0.1") == std::string::npos, *p);
    BOOST_TEST(p->find("topsecretuser") == std::string::npos, *p);
    BOOST_TEST(p->find("hiddendb") == std::string::npos, *p);
    BOOST_TEST(p->find("port") == std::string::npos, *p);
}

// libpq percent-decodes URI query keywords (conninfo_uri_parse_params), so `pass%77ord=` is a
// password too; docs/postgresql.md promises the config never holds one.
BOOST_AUTO_TEST_CASE(config_refuses_percent_encoded_password) {
    BOOST_TEST(refused("postgresql://certmate:secret@db/certmate"));
    BOOST_TEST(refused("host=db password=secret"));
    BOOST_TEST(refused("postgresql://db/certmate?pass%77ord=secret"));
    BOOST_TEST(refused("postgresql://db/certmate?%70%61%73%73%77%6f%72%64=secret"));
    BOOST_TEST(!refused("postgresql://certmate@db/certmate?sslmode=verify-full"));
    BOOST_TEST(!refused("host=db user=certmate passfile=/etc/certmate/pgpass"));
}

// A COMMIT whose answer is lost: the caller gets 503 and its memory lacks the change, yet the
// change is in the database (and the other instances apply it). The change watch used to skip it
// as "our own": this instance's OCSP would say `good` for a revocation every other instance
// reports, and its next CRL could leave the revocation out, until a restart.
BOOST_AUTO_TEST_CASE(a_commit_whose_answer_is_lost_still_reaches_this_instance) {
    auto& cluster = test::shared_pg_cluster();
    const auto real = cluster.create_database();
    const auto kek = random_kek();
    auto direct = std::make_unique<pg_store>(real, 2, kek, "direct");
    BOOST_REQUIRE(direct->migrate());
    commit_cutter cut(conninfo_field(real, "host"));
    const std::string via = "host=" + cut.dir() + " user=" + conninfo_field(real, "user") +
                            " dbname=" + conninfo_field(real, "dbname") + " connect_timeout=5";
    pg_store a(via, 2, kek, "A");
    BOOST_REQUIRE(a.load_all(1));
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> delivered;
    a.watch_changes([&](std::vector<store_change> batch) {
        std::lock_guard lk(mu);
        for (auto& c : batch)
            if (c.record) delivered.push_back(c.record->identifier);
        cv.notify_all();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cert_files f;
    f.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----\n";

    auto acked = certmate::test::make_record(1); // an acknowledged own change: not delivered back
    BOOST_REQUIRE(a.create(acked, f));
    auto lost = certmate::test::make_record(2);
    cut.arm();
    auto r = a.create(lost, f);
    BOOST_REQUIRE(cut.fired());
    BOOST_REQUIRE(!r);
    BOOST_TEST(static_cast<int>(r.error().code) == static_cast<int>(errc::storage_unavailable), r.error().message);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    BOOST_TEST(direct->read_file(lost.usage, lost.identifier, file_kind::cert).has_value()); // it committed

    std::unique_lock lk(mu);
    const bool got = cv.wait_for(lk, std::chrono::seconds(5), [&] {
        return std::find(delivered.begin(), delivered.end(), lost.identifier) != delivered.end();
    });
    BOOST_TEST(got, "the committed change was never applied to this instance's memory");
    BOOST_TEST(std::count(delivered.begin(), delivered.end(), acked.identifier) == 0);
}
