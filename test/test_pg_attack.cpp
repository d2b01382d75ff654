// Attacks on the PostgreSQL backend (issue 18, docs/postgresql.md, docs/high-availability.md):
// what a stranger learns from the public /health when the database is away, and the refusal of
// a password in storage.postgresql however the URI spells the keyword.
#define BOOST_TEST_MODULE pg_attack
#include <boost/test/unit_test.hpp>

#include "app/config.hpp"
#include "storage/key_wrap.hpp"
#include "storage/pg_store.hpp"
#include "support/sample_records.hpp"

#include <openssl/rand.h>

using namespace certmate;
using namespace certmate::storage;

namespace {

key_wrap random_kek() {
    std::string k(32, '\0');
    BOOST_REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
    return key_wrap::from_key(k).value();
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
