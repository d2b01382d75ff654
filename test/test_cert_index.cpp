// The in-memory certificate index (core/cert_index): filters, search, sort and paging, stats,
// serials, the renewal plan, consistency through churn, and speed at 30,000 certificates.
#define BOOST_TEST_MODULE test_cert_index
#include <boost/test/unit_test.hpp>

#include "core/cert_index.hpp"
#include "support/print.hpp"
#include "support/sample_records.hpp"

#include <cctype>
#include <chrono>
#include <map>

using namespace certmate;
using namespace std::chrono_literals;
using certmate::test::make_record;

namespace {
const time_point t0 = test::sample_t0;
} // namespace

BOOST_AUTO_TEST_SUITE(index_suite)

namespace {

// Five certificates, one per status, at `now` = t0 + 100 days.
const time_point now = t0 + 100 * 24h;

cert_record rec(const std::string& id, const std::string& cn, cert_usage u, time_point created, time_point expires) {
    cert_record r;
    r.identifier = id;
    r.subject.common_name = cn;
    r.subject.email = id + "@corp.test";
    r.subject.organization = "Org " + id;
    r.usage = u;
    r.created_at = r.not_before = created;
    r.expires_at = expires;
    r.serial_number = std::to_string(1000 + id.size() * 37 + static_cast<std::size_t>(id.back()));
    return r;
}

cert_index sample(std::vector<cert_record>* out = nullptr) {
    std::vector<cert_record> v;
    v.push_back(rec("alpha", "Alice", cert_usage::api_mtls, t0 + 1h, now + 300 * 24h)); // active
    v.push_back(rec("bravo", "bob", cert_usage::vpn, t0 + 2h, now + 10 * 24h));         // expiring
    v.push_back(rec("charlie", "Carol", cert_usage::vpn, t0 + 3h, now - 1h));           // expired
    v.push_back(rec("delta", "dave", cert_usage::other, t0 + 4h, now + 200 * 24h));     // revoked
    v[3].revocation = {true, now - 24h, revocation_reason::key_compromise};
    v.push_back(rec("echo", "Eve", cert_usage::api_mtls, t0 + 5h, now + 5 * 24h)); // on hold
    v[4].revocation = {true, now - 2h, revocation_reason::certificate_hold};
    v[0].serial_number = "340282366920938463463374607431768211455"; // 2^128 - 1
    v[0].history.push_back({"555", t0 - 400 * 24h, t0 - 35 * 24h, "", t0, true});
    v[0].history.push_back({"556", t0 - 800 * 24h, t0 - 400 * 24h, "", t0 - 400 * 24h, false});
    cert_index idx;
    for (const auto& r : v) idx.upsert(r);
    if (out) *out = v;
    return idx;
}

std::vector<std::string> ids(const list_page& p) {
    std::vector<std::string> out;
    for (const auto& r : p.items) out.push_back(r.identifier);
    return out;
}

using svec = std::vector<std::string>;

} // namespace

BOOST_AUTO_TEST_CASE(filters) {
    const cert_index idx = sample();
    auto run = [&](list_query q) { return ids(idx.query(q, now, 30)); };
    list_query q;
    q.sort = sort_key::identifier;
    q.descending = false;
    BOOST_TEST(run(q) == (svec{"alpha", "bravo", "charlie", "delta", "echo"}), boost::test_tools::per_element());

    auto with = [&](auto f) {
        list_query x = q;
        f(x);
        return run(x);
    };
    BOOST_TEST(with([](list_query& x) { x.usage = cert_usage::vpn; }) == (svec{"bravo", "charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::active; }) == (svec{"alpha", "bravo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::revoked; }) == (svec{"delta"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::on_hold; }) == (svec{"echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::expired; }) == (svec{"charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.status = status_filter::expiring; }) == (svec{"bravo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) {
                   x.status = status_filter::expiring;
                   x.expiring_within_days = 5;
               }).empty());
    BOOST_TEST(with([](list_query& x) {
                   x.status = status_filter::expiring;
                   x.expiring_within_days = 250;
               }) == (svec{"bravo"}),
               boost::test_tools::per_element()); // revoked delta never counts as expiring
    BOOST_TEST(with([](list_query& x) { x.revoked = true; }) == (svec{"delta", "echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.revoked = false; }) == (svec{"alpha", "bravo", "charlie"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) { x.expiring_within_days = 11; }) == (svec{"bravo", "echo"}),
               boost::test_tools::per_element());
    BOOST_TEST(with([](list_query& x) {
                   x.usage = cert_usage::api_mtls;
                   x.status = status_filter::active;
               }) == (svec{"alpha"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(search_is_case_insensitive_over_five_fields) {
    const cert_index idx = sample();
    auto find = [&](std::string s) {
        list_query q;
        q.search = std::move(s);
        q.sort = sort_key::identifier;
        q.descending = false;
        return ids(idx.query(q, now, 30));
    };
    BOOST_TEST(find("ALICE") == (svec{"alpha"}), boost::test_tools::per_element()); // common name
    BOOST_TEST(find("BoB") == (svec{"bravo"}), boost::test_tools::per_element());
    BOOST_TEST(find("charlie@CORP") == (svec{"charlie"}), boost::test_tools::per_element()); // email
    BOOST_TEST(find("org DELTA") == (svec{"delta"}), boost::test_tools::per_element());      // organization
    BOOST_TEST(find("ech") == (svec{"echo"}), boost::test_tools::per_element());             // identifier
    BOOST_TEST(find("46346337460743") == (svec{"alpha"}), boost::test_tools::per_element()); // serial
    BOOST_TEST(find("corp.test").size() == 5u);
    BOOST_TEST(find("nobody").empty());
}

BOOST_AUTO_TEST_CASE(sort_and_paging) {
    const cert_index idx = sample();
    list_query q;
    q.sort = sort_key::created_at; // default: newest first
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"echo", "delta", "charlie", "bravo", "alpha"}),
               boost::test_tools::per_element());
    q.descending = false;
    q.sort = sort_key::expires_at;
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"charlie", "echo", "bravo", "delta", "alpha"}),
               boost::test_tools::per_element());
    q.sort = sort_key::common_name; // case-insensitive: Alice bob Carol dave Eve
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"alpha", "bravo", "charlie", "delta", "echo"}),
               boost::test_tools::per_element());
    q.descending = true;
    BOOST_TEST(ids(idx.query(q, now, 30)) == (svec{"echo", "delta", "charlie", "bravo", "alpha"}),
               boost::test_tools::per_element());

    q.limit = 2;
    q.offset = 1;
    auto page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(ids(page) == (svec{"delta", "charlie"}), boost::test_tools::per_element());
    q.offset = 4;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(ids(page) == (svec{"alpha"}), boost::test_tools::per_element());
    q.offset = 5;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 5u);
    BOOST_TEST(page.items.empty());
    q.offset = 0;
    q.usage = cert_usage::api_mtls;
    page = idx.query(q, now, 30);
    BOOST_TEST(page.total == 2u);
}

BOOST_AUTO_TEST_CASE(stats_count_each_status) {
    const cert_index idx = sample();
    auto s = idx.stats(now, 30);
    BOOST_TEST(s.total == 5u);
    BOOST_TEST(s.active == 2u);
    BOOST_TEST(s.revoked == 1u);
    BOOST_TEST(s.on_hold == 1u);
    BOOST_TEST(s.expired == 1u);
    BOOST_TEST(s.expiring_soon == 1u);
    BOOST_TEST(s.by_usage.at("api-mtls") == 2u);
    BOOST_TEST(s.by_usage.at("vpn") == 2u);
    BOOST_TEST(s.by_usage.at("other") == 1u);
    BOOST_TEST(idx.stats(now, 400).expiring_soon == 2u);
}

BOOST_AUTO_TEST_CASE(serials_current_and_historical) {
    std::vector<cert_record> v;
    cert_index idx = sample(&v);
    // Current and historical serials are indexed (serial uniqueness); OCSP answers them from the
    // service's ocsp_table (test_service, test_http_ocsp).
    for (const auto& s : {std::string("340282366920938463463374607431768211455"), std::string("555"),
                          std::string("556"), v[3].serial_number})
        BOOST_TEST(idx.serial_exists(s), s);
    BOOST_TEST(!idx.serial_exists("1"));

    // CRL: current revoked (including on hold) and superseded-revoked history.
    std::set<std::string> crl;
    for (const auto& r : idx.revoked()) crl.insert(r.serial_decimal);
    BOOST_TEST((crl == std::set<std::string>{v[3].serial_number, v[4].serial_number, "555"}));

    // Renewal moves the current serial into history; re-indexing follows.
    cert_record alpha = *idx.find("alpha");
    alpha.history.push_back({alpha.serial_number, alpha.not_before, alpha.expires_at, "", now, false});
    alpha.serial_number = "4242";
    idx.upsert(alpha);
    BOOST_TEST(idx.size() == 5u);
    BOOST_TEST(idx.serial_exists("4242"));
    BOOST_TEST(idx.serial_exists("340282366920938463463374607431768211455")); // now in history
    BOOST_TEST(idx.erase("alpha"));
    BOOST_TEST(!idx.erase("alpha"));
    BOOST_TEST(!idx.serial_exists("4242"));
    BOOST_TEST(!idx.serial_exists("555"));
    BOOST_TEST(idx.find("alpha") == nullptr);
    BOOST_TEST(idx.serial_exists(v[1].serial_number));
}

BOOST_AUTO_TEST_CASE(due_for_renewal_in_expiry_order) {
    std::vector<cert_record> v;
    cert_index idx = sample(&v);
    // bravo (10 days, threshold 30) and charlie (expired) are due; echo is on hold, delta revoked.
    BOOST_TEST(idx.due_for_renewal(now) == (svec{"charlie", "bravo"}), boost::test_tools::per_element());
    cert_record b = v[1];
    b.renewal.renewal_enabled = false;
    idx.upsert(b);
    BOOST_TEST(idx.due_for_renewal(now) == (svec{"charlie"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stays_consistent_through_churn) {
    // Erasing and re-inserting (which moves rows and compacts search texts) never changes answers.
    cert_index idx;
    std::map<std::string, cert_record> truth;
    for (int i = 0; i < 3000; ++i) {
        auto r = make_record(i);
        truth[r.identifier] = r;
        idx.upsert(r);
    }
    for (int i = 0; i < 3000; i += 3) {
        auto r = make_record(i);
        BOOST_REQUIRE(idx.erase(r.identifier));
        truth.erase(r.identifier);
    }
    for (int i = 1; i < 3000; i += 4) {
        auto r = make_record(i);
        r.subject.common_name = "Renamed " + std::to_string(i);
        truth[r.identifier] = r;
        idx.upsert(r);
    }
    BOOST_TEST(idx.size() == truth.size());
    const time_point at = t0 + 200 * 24h;
    for (std::string needle : {"renamed 1", "USER2", "acme", "cert-0001", "1234567890"}) {
        list_query q;
        q.search = needle;
        q.sort = sort_key::identifier;
        q.descending = false;
        q.limit = 100000;
        std::vector<std::string> want;
        std::string low = needle;
        for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto has = [&](std::string f) {
            for (auto& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return f.find(low) != std::string::npos;
        };
        for (const auto& [id, r] : truth)
            if (has(r.subject.common_name) || has(r.subject.email) || has(r.identifier) ||
                has(r.subject.organization) || has(r.serial_number))
                want.push_back(id);
        auto page = idx.query(q, at, 30);
        BOOST_TEST(ids(page) == want, boost::test_tools::per_element());
        BOOST_TEST(page.total == want.size());
        for (const auto& r : page.items) BOOST_TEST((r == truth.at(r.identifier)));
    }
}

BOOST_AUTO_TEST_CASE(thirty_thousand_certificates_query_fast) {
    cert_index idx;
    for (int i = 0; i < 30000; ++i) idx.upsert(make_record(i));
    BOOST_TEST(idx.size() == 30000u);
    const time_point at = t0 + 200 * 24h;
    list_query q;
    q.search = "USER2";
    q.sort = sort_key::common_name;
    q.limit = 50;
    q.offset = 100;
    list_page page;
    auto start = std::chrono::steady_clock::now();
    constexpr int rounds = 10;
    for (int k = 0; k < rounds; ++k) page = idx.query(q, at, 30);
    auto per_query = (std::chrono::steady_clock::now() - start) / rounds;
    BOOST_TEST(page.total == 11111u); // user2, user2x, user2xx, user2xxx, user2xxxx
    BOOST_TEST(page.items.size() == 50u);
    list_query all;
    all.status = status_filter::active;
    start = std::chrono::steady_clock::now();
    for (int k = 0; k < rounds; ++k) page = idx.query(all, at, 30);
    auto per_all = (std::chrono::steady_clock::now() - start) / rounds;
    start = std::chrono::steady_clock::now();
    auto st = idx.stats(at, 30);
    auto per_stats = std::chrono::steady_clock::now() - start;
    BOOST_TEST(st.total == 30000u);
    using ms = std::chrono::duration<double, std::milli>;
    BOOST_TEST_MESSAGE("30k: search query " << ms(per_query).count() << " ms, status query " << ms(per_all).count()
                                            << " ms, stats " << ms(per_stats).count() << " ms");
    // Generous for unoptimised or sanitised builds; an optimised build takes a few ms.
    BOOST_TEST(ms(per_query).count() < 100.0);
    BOOST_TEST(ms(per_all).count() < 100.0);
}

BOOST_AUTO_TEST_SUITE_END()
