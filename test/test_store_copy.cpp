// core/store_copy (issue 18: `certmate db import` / `db export`): a store copied through the port
// holds the same certificates, files, serials and CA-wide state; a repeated copy changes nothing;
// a target holding a certificate differently is refused without overwriting it.
#define BOOST_TEST_MODULE store_copy
#include <boost/test/unit_test.hpp>

#include "core/store_copy.hpp"
#include "storage/fs_store.hpp"
#include "support/sample_records.hpp"
#include "support/tools.hpp"

using namespace certmate;

namespace {

cert_files files_for(const cert_record& r) {
    cert_files f;
    f.cert_pem = "-----BEGIN CERTIFICATE-----\nMII" + r.identifier + "\n-----END CERTIFICATE-----\n";
    if (r.has_private_key)
        f.key_pem = "-----BEGIN PRIVATE KEY-----\nMII" + r.identifier + "\n-----END PRIVATE KEY-----\n";
    if (r.identifier.back() % 2 == 0)
        f.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\nMII" + r.identifier + "\n-----END CERTIFICATE REQUEST-----\n";
    return f;
}

// A data dir as `init` leaves it (the CA's directory holds crl.pem).
storage::layout data_dir(const test::temp_dir& d) {
    std::filesystem::create_directories(d / "data/certs/ca");
    return storage::layout{d / "data"};
}

void fill(cert_repository& repo, int n) {
    for (int i = 0; i < n; ++i) {
        auto r = test::make_record(i);
        BOOST_REQUIRE_MESSAGE(repo.create(r, files_for(r)), r.identifier);
    }
    BOOST_REQUIRE(repo.save_crl_state(crl_state{7, test::sample_t0, test::sample_t0 + std::chrono::hours(24)}));
    BOOST_REQUIRE(repo.publish_crl("DER", "-----BEGIN X509 CRL-----\nAA\n-----END X509 CRL-----\n"));
    BOOST_REQUIRE(repo.save_ocsp_responder("RESPONDER CERT", "RESPONDER KEY"));
}

} // namespace

BOOST_AUTO_TEST_CASE(a_copy_holds_everything_and_a_second_copy_changes_nothing) {
    test::temp_dir a, b;
    storage::fs_store from(data_dir(a)), to(data_dir(b));
    fill(from, 40);

    auto rep = copy_store(from, to, 2);
    BOOST_REQUIRE_MESSAGE(rep, (rep ? "" : rep.error().message));
    BOOST_TEST(rep->certificates == 40u);
    BOOST_TEST(rep->copied == 40u);
    BOOST_TEST(rep->already == 0u);
    BOOST_TEST(rep->serials >= 40u);
    BOOST_TEST(rep->crl_number == 7u);

    auto loaded = to.load_all(2);
    BOOST_REQUIRE(loaded);
    BOOST_TEST(loaded->records.size() == 40u);
    for (const auto& r : loaded->records) {
        auto f = files_for(r);
        BOOST_TEST(*to.read_file(r.usage, r.identifier, file_kind::cert) == f.cert_pem);
        auto key = to.read_file(r.usage, r.identifier, file_kind::key);
        BOOST_TEST(bool(key) == f.key_pem.has_value());
        if (key) BOOST_TEST(*key == *f.key_pem);
    }
    BOOST_TEST(to.load_crl_state()->crl_number == 7u);
    BOOST_TEST(to.published_crl()->first == "DER");
    BOOST_TEST(to.load_ocsp_responder()->second == "RESPONDER KEY");

    auto again = copy_store(from, to, 2);
    BOOST_REQUIRE(again);
    BOOST_TEST(again->copied == 0u);
    BOOST_TEST(again->already == 40u);
}

BOOST_AUTO_TEST_CASE(a_target_holding_a_certificate_differently_is_refused) {
    test::temp_dir a, b;
    storage::fs_store from(data_dir(a)), to(data_dir(b));
    fill(from, 5);
    auto other = test::make_record(3);
    other.notes = "changed by hand";
    BOOST_REQUIRE(to.create(other, files_for(other)));

    auto rep = copy_store(from, to, 1);
    BOOST_REQUIRE(!rep);
    BOOST_TEST(static_cast<int>(rep.error().code) == static_cast<int>(errc::conflict));
    BOOST_TEST(rep.error().message.find(other.identifier) != std::string::npos);
    auto loaded = to.load_all(1);
    BOOST_REQUIRE(loaded);
    for (const auto& r : loaded->records)
        if (r.identifier == other.identifier) BOOST_TEST(r.notes == "changed by hand");
}

BOOST_AUTO_TEST_CASE(the_crl_number_never_goes_back) {
    test::temp_dir a, b;
    storage::fs_store from(data_dir(a)), to(data_dir(b));
    fill(from, 1);
    BOOST_REQUIRE(to.save_crl_state(crl_state{50, test::sample_t0, test::sample_t0 + std::chrono::hours(24)}));
    auto rep = copy_store(from, to, 1);
    BOOST_REQUIRE(rep);
    BOOST_TEST(rep->crl_number == 50u);
    BOOST_TEST(to.load_crl_state()->crl_number == 50u);
}
