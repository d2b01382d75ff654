// storage/pg (the libpq wrappers) against a throwaway PostgreSQL cluster (test/support/pg_cluster).
#define BOOST_TEST_MODULE pg
#include <boost/test/unit_test.hpp>

#include "storage/pg.hpp"
#include "support/pg_cluster.hpp"

#include <thread>

using namespace certmate;
namespace pg = certmate::storage::pg;

BOOST_AUTO_TEST_CASE(statements_parameters_bytes_and_errors) {
    auto conninfo = test::shared_pg_cluster().create_database();
    auto c = pg::connection::open(conninfo);
    BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    BOOST_REQUIRE(c->exec("CREATE TABLE t (id text PRIMARY KEY, n bigint, b bytea)"));
    const std::string raw("\x00\x01\xff'\\x", 6);
    BOOST_REQUIRE(c->exec("INSERT INTO t VALUES ($1, $2, $3)", {"a", std::int64_t(-5), pg::param::bytes(raw)}));
    auto dup = c->exec("INSERT INTO t VALUES ($1, NULL, NULL)", {"a"});
    BOOST_REQUIRE(!dup);
    BOOST_TEST(static_cast<int>(dup.error().code) == static_cast<int>(errc::already_exists));
    BOOST_TEST(c->last_sqlstate() == "23505");
    auto r = c->exec("SELECT id, n, b, NULL FROM t");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->size() == 1);
    BOOST_TEST(r->text(0, 0) == "a");
    BOOST_TEST(r->int64(0, 1) == -5);
    BOOST_TEST(r->bytes(0, 2) == raw);
    BOOST_TEST(r->is_null(0, 3));
    auto bad = c->exec("SELECT nope FROM t");
    BOOST_REQUIRE(!bad);
    BOOST_TEST(static_cast<int>(bad.error().code) == static_cast<int>(errc::storage_failure));
    BOOST_TEST(c->healthy());
}

BOOST_AUTO_TEST_CASE(a_transaction_not_committed_rolls_back) {
    auto c = pg::connection::open(test::shared_pg_cluster().create_database());
    BOOST_REQUIRE(c);
    BOOST_REQUIRE(c->exec("CREATE TABLE t (n int)"));
    {
        auto tx = pg::transaction::begin(*c);
        BOOST_REQUIRE(tx);
        BOOST_REQUIRE(c->exec("INSERT INTO t VALUES (1)"));
    }
    {
        auto tx = pg::transaction::begin(*c);
        BOOST_REQUIRE(c->exec("INSERT INTO t VALUES (2)"));
        BOOST_REQUIRE(tx->commit());
    }
    auto r = c->exec("SELECT string_agg(n::text, ',') FROM t");
    BOOST_TEST(r->text(0, 0) == "2");
    BOOST_TEST(c->healthy());
}

BOOST_AUTO_TEST_CASE(the_pool_bounds_connections_and_replaces_broken_ones) {
    pg::pool p(test::shared_pg_cluster().create_database(), 2, std::chrono::milliseconds(300));
    {
        auto a = p.acquire();
        auto b = p.acquire();
        BOOST_REQUIRE(a && b);
        auto c = p.acquire(); // both busy for the whole wait
        BOOST_REQUIRE(!c);
        BOOST_TEST(static_cast<int>(c.error().code) == static_cast<int>(errc::storage_unavailable));
        // A connection the server ends is dropped when given back.
        auto pid = (*a)->backend_pid();
        BOOST_REQUIRE((*b)->exec("SELECT pg_terminate_backend($1)", {pid}));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (int i = 0; i < 3; ++i) {
        auto l = p.acquire();
        BOOST_REQUIRE(l);
        BOOST_REQUIRE((*l)->exec("SELECT 1"));
    }
    auto s = p.stats();
    BOOST_TEST(s.broken == 1u);
    BOOST_TEST(s.timeouts == 1u);
}

BOOST_AUTO_TEST_CASE(notifications_arrive_on_a_listening_connection) {
    auto conninfo = test::shared_pg_cluster().create_database();
    auto listener = pg::connection::open(conninfo);
    auto sender = pg::connection::open(conninfo);
    BOOST_REQUIRE(listener && sender);
    BOOST_REQUIRE(listener->exec("LISTEN certmate_changes"));
    BOOST_REQUIRE(sender->exec("SELECT pg_notify('certmate_changes', $1)", {"42"}));
    std::vector<pg::notification> got;
    for (int i = 0; i < 50 && got.empty(); ++i) {
        auto n = listener->notifications();
        BOOST_REQUIRE(n);
        got = *n;
        if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].channel == "certmate_changes");
    BOOST_TEST(got[0].payload == "42");
    BOOST_TEST(got[0].backend_pid == sender->backend_pid());
}
