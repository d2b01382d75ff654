// The in-memory certificate index (core/cert_index): filters, search, sort and paging, stats,
// serials, the renewal plan, consistency through churn, and speed at 30,000 certificates.
#define BOOST_TEST_MODULE test_cert_index
#include <boost/test/unit_test.hpp>

#include "core/cert_index.hpp"
#include "core/encoding.hpp"
#include "support/print.hpp"
#include "support/sample_records.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <tuple>

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
    (void)idx.query(list_query{}, at, 30); // the first query builds the ordered lists
    const auto build = std::chrono::steady_clock::now() - start;
    start = std::chrono::steady_clock::now();
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
    BOOST_TEST_MESSAGE("30k: first query (builds the orders) " << ms(build).count() << " ms");
    BOOST_TEST_MESSAGE("30k: search query " << ms(per_query).count() << " ms, status query " << ms(per_all).count()
                                            << " ms, stats " << ms(per_stats).count() << " ms");
    // Generous for unoptimised or sanitised builds; an optimised build takes a few ms.
    BOOST_TEST(ms(per_query).count() < 100.0);
    BOOST_TEST(ms(per_all).count() < 100.0);
}

// ---- against a naive reference: every filter, sort, direction, offset and cursor ----

namespace {

std::string ascii_lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// What the index must answer, computed the slow way from the records themselves.
struct reference {
    std::map<std::string, cert_record> recs;

    static bool matches(const cert_record& r, const list_query& q, time_point now, int def_days) {
        if (q.usage && r.usage != *q.usage) return false;
        if (q.revoked && r.revocation.revoked != *q.revoked) return false;
        const int days = q.expiring_within_days.value_or(def_days);
        const bool in_days = r.expires_at > now && r.expires_at <= now + days * 24h;
        if (q.status) {
            const cert_status st = status_at(r, now);
            switch (*q.status) {
            case status_filter::active:
                if (st != cert_status::active) return false;
                break;
            case status_filter::revoked:
                if (st != cert_status::revoked) return false;
                break;
            case status_filter::expired:
                if (st != cert_status::expired) return false;
                break;
            case status_filter::on_hold:
                if (st != cert_status::on_hold) return false;
                break;
            case status_filter::expiring:
                if (r.revocation.revoked || !in_days) return false;
                break;
            }
        }
        if (q.expiring_within_days && !in_days) return false;
        if (!q.search.empty()) {
            const std::string n = ascii_lower(q.search);
            bool any = false;
            for (const std::string* f :
                 {&r.subject.common_name, &r.subject.email, &r.identifier, &r.subject.organization, &r.serial_number})
                any = any || ascii_lower(*f).find(n) != std::string::npos;
            if (!any) return false;
        }
        return true;
    }

    // (time, name, identifier) of a record in sort order k, ascending.
    static std::tuple<std::int64_t, std::string, std::string> key(const cert_record& r, sort_key k) {
        std::int64_t t = 0;
        std::string n;
        if (k == sort_key::created_at) t = r.created_at.time_since_epoch().count();
        if (k == sort_key::expires_at) t = r.expires_at.time_since_epoch().count();
        if (k == sort_key::common_name) n = ascii_lower(r.subject.common_name);
        return {t, n, r.identifier};
    }

    // Every match in order; with q.after, only those strictly after the cursor. Offset/limit not applied.
    std::vector<std::string> all(const list_query& q, time_point now, int def_days) const {
        std::vector<const cert_record*> m;
        for (const auto& [id, r] : recs)
            if (matches(r, q, now, def_days)) m.push_back(&r);
        std::sort(m.begin(), m.end(), [&](const cert_record* a, const cert_record* b) {
            return q.descending ? key(*a, q.sort) > key(*b, q.sort) : key(*a, q.sort) < key(*b, q.sort);
        });
        std::vector<std::string> out;
        for (const auto* r : m) {
            if (q.after) {
                const std::tuple<std::int64_t, std::string, std::string> c{
                    q.sort == sort_key::created_at || q.sort == sort_key::expires_at ? q.after->time : 0,
                    q.sort == sort_key::common_name ? q.after->name : "", q.after->identifier};
                if (q.descending ? !(key(*r, q.sort) < c) : !(c < key(*r, q.sort))) continue;
            }
            out.push_back(r->identifier);
        }
        return out;
    }

    cert_stats stats(time_point now, int days) const {
        cert_stats s;
        for (auto u : all_usages) s.by_usage[std::string(to_string(u))] = 0;
        for (const auto& [id, r] : recs) {
            ++s.total;
            ++s.by_usage[std::string(to_string(r.usage))];
            switch (status_at(r, now)) {
            case cert_status::active: ++s.active; break;
            case cert_status::revoked: ++s.revoked; break;
            case cert_status::expired: ++s.expired; break;
            case cert_status::on_hold: ++s.on_hold; break;
            }
            if (!r.revocation.revoked && r.expires_at > now) {
                if (r.expires_at <= now + days * 24h) ++s.expiring_soon;
                const auto week = static_cast<std::size_t>((r.expires_at - now) / (7 * 24h));
                if (week < cert_stats::expiry_weeks) ++s.expiring_per_week[week];
            }
        }
        return s;
    }
};

const char* const names[] = {"Alice", "alice", "ALICE", "Bob", "bob-vpn", "Carol", "carol.x", "dave", "Émile", "zed"};

// A record on a day grid, so expiries fall exactly on `now` and on `now + days` often.
cert_record random_record(std::mt19937& rng, const std::string& id) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    cert_record r;
    r.identifier = id;
    r.subject.common_name = std::string(names[pick(10)]) + (pick(3) ? "" : std::to_string(pick(100)));
    r.subject.email = id + (pick(2) ? "@Corp.test" : "@home.example");
    r.subject.organization = pick(2) ? "Acme" : "Globex";
    r.serial_number = std::to_string(100000 + rng() % 900000000u);
    r.usage = all_usages[static_cast<std::size_t>(pick(4))];
    r.created_at = t0 + pick(60) * 24h;
    r.not_before = r.created_at;
    r.expires_at = t0 + pick(400) * 24h;
    const int rv = pick(6);
    if (rv == 0) r.revocation = {true, t0, revocation_reason::key_compromise};
    if (rv == 1) r.revocation = {true, t0, revocation_reason::certificate_hold};
    return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(matches_a_naive_reference_through_churn) {
    std::mt19937 rng(20261130);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    cert_index idx;
    reference ref;
    auto id_of = [](int i) { return "id-" + std::to_string(i); };
    auto put = [&](cert_record r) {
        ref.recs[r.identifier] = r;
        idx.upsert(std::move(r));
    };
    for (int i = 0; i < 2500; ++i) put(random_record(rng, id_of(i)));

    const sort_key sorts[] = {sort_key::created_at, sort_key::expires_at, sort_key::common_name, sort_key::identifier};
    std::size_t checked = 0, paged = 0;
    for (int round = 0; round < 12; ++round) {
        // Churn between rounds: new records, replacements, revocations, unholds, renewals, erasures.
        for (int k = 0; k < 300; ++k) {
            const std::string id = id_of(pick(3200));
            auto it = ref.recs.find(id);
            const int op = pick(6);
            if (it == ref.recs.end() || op == 0) {
                put(random_record(rng, id));
            } else if (op == 1) {
                BOOST_REQUIRE(idx.erase(id));
                ref.recs.erase(it);
            } else if (op == 2) {
                cert_record r = it->second;
                revoke_identity(r, t0, pick(2) ? revocation_reason::certificate_hold : revocation_reason::superseded);
                put(r);
            } else if (op == 3) {
                cert_record r = it->second;
                unhold_identity(r);
                put(r);
            } else if (op == 4) {
                cert_record r = it->second; // renewal: new serial and expiry, old one in history
                r.history.push_back({r.serial_number, r.not_before, r.expires_at, "", t0, false});
                r.serial_number = std::to_string(1000000000 + rng() % 900000000u);
                r.created_at = t0 + pick(60) * 24h;
                r.expires_at = t0 + pick(400) * 24h;
                put(r);
            } else {
                cert_record r = it->second;
                r.subject.common_name = names[pick(10)];
                r.usage = all_usages[static_cast<std::size_t>(pick(4))];
                put(r);
            }
        }
        BOOST_REQUIRE_EQUAL(idx.size(), ref.recs.size());

        const time_point now = t0 + pick(420) * 24h;
        const int def_days = pick(2) ? 30 : 7;
        // Stats at this `now`, several horizons.
        for (int days : {0, 1, 7, def_days, 90}) {
            const auto got = idx.stats(now, days);
            const auto want = ref.stats(now, days);
            BOOST_TEST(got.total == want.total);
            BOOST_TEST(got.active == want.active);
            BOOST_TEST(got.revoked == want.revoked);
            BOOST_TEST(got.expired == want.expired);
            BOOST_TEST(got.on_hold == want.on_hold);
            BOOST_TEST(got.expiring_soon == want.expiring_soon);
            BOOST_TEST((got.by_usage == want.by_usage));
            BOOST_TEST(got.expiring_per_week == want.expiring_per_week, boost::test_tools::per_element());
        }

        // Every sort x direction x status x usage x revoked, some with search and expiring_within_days.
        std::vector<std::optional<status_filter>> statuses = {
            std::nullopt,           status_filter::active,   status_filter::revoked,
            status_filter::expired, status_filter::expiring, status_filter::on_hold};
        for (int rep = 0; rep < 2; ++rep)
            for (auto k : sorts)
                for (bool desc : {false, true})
                    for (const auto& st : statuses)
                        for (int u = -1; u < 4; ++u) {
                            list_query q;
                            q.sort = k;
                            q.descending = desc;
                            q.status = st;
                            if (u >= 0) q.usage = all_usages[static_cast<std::size_t>(u)];
                            if (pick(4) == 0) q.revoked = pick(2) == 0;
                            if (pick(4) == 0) q.expiring_within_days = pick(3) ? pick(60) : 0;
                            const int s = pick(8);
                            if (s == 0) q.search = "ALIC";
                            if (s == 1) q.search = "corp";
                            if (s == 2) q.search = "id-1";
                            if (s == 3) q.search = ref.recs.begin()->second.serial_number.substr(2, 5);
                            if (s == 4) q.search = "é";
                            if (s == 5)
                                q.search = std::to_string(pick(10)) + (pick(2) ? "al" : "Bo"); // spans two rows' texts
                            const auto want = ref.all(q, now, def_days);
                            q.limit = static_cast<std::size_t>(1 + pick(pick(2) ? 10 : 200));
                            q.offset =
                                pick(3) == 0 ? 0 : static_cast<std::size_t>(pick(static_cast<int>(want.size()) + 5));
                            const auto page = idx.query(q, now, def_days);
                            BOOST_TEST(page.total == want.size());
                            const std::size_t b = std::min(q.offset, want.size());
                            const std::size_t e = std::min(want.size(), b + q.limit);
                            const std::vector<std::string> slice(want.begin() + static_cast<std::ptrdiff_t>(b),
                                                                 want.begin() + static_cast<std::ptrdiff_t>(e));
                            BOOST_TEST(ids(page) == slice, boost::test_tools::per_element());
                            BOOST_TEST(page.next_cursor.empty() == (e >= want.size()));
                            for (const auto& r : page.items) BOOST_TEST((r == ref.recs.at(r.identifier)));
                            // With a visitor (the list answer's way): the same records in the same
                            // order, the same total and cursor, and no copies in items.
                            std::vector<std::string> visited;
                            const auto vpage = idx.query(q, now, def_days, [&](const cert_record& r) {
                                BOOST_TEST((r == ref.recs.at(r.identifier)));
                                visited.push_back(r.identifier);
                            });
                            BOOST_TEST(visited == ids(page), boost::test_tools::per_element());
                            BOOST_TEST(vpage.items.empty());
                            BOOST_TEST(vpage.total == page.total);
                            BOOST_TEST(vpage.next_cursor == page.next_cursor);
                            ++checked;

                            // Follow the cursors from that page to the end: exactly the rest, in order.
                            list_query c = q;
                            c.offset = 0;
                            std::vector<std::string> walked = ids(page);
                            std::string next = page.next_cursor;
                            for (int guard = 0; !next.empty() && guard < 5000; ++guard) {
                                auto cur = decode_cursor(next);
                                BOOST_REQUIRE(cur.has_value());
                                BOOST_REQUIRE(cur->sort == q.sort);
                                BOOST_REQUIRE(cur->descending == q.descending);
                                c.after = *cur;
                                c.limit = std::max<std::size_t>(q.limit, 37);
                                const auto p = idx.query(c, now, def_days);
                                BOOST_TEST(p.total == want.size());
                                const auto got = ids(p);
                                walked.insert(walked.end(), got.begin(), got.end());
                                next = p.next_cursor;
                                ++paged;
                            }
                            const std::vector<std::string> rest(want.begin() + static_cast<std::ptrdiff_t>(b),
                                                                want.end());
                            BOOST_TEST(walked == rest, boost::test_tools::per_element());
                        }

        // A cursor stays valid when the item it names is erased or changed: the page continues
        // strictly after the position it encodes.
        for (auto k : sorts) {
            list_query q;
            q.sort = k;
            q.descending = pick(2) == 0;
            q.limit = 20;
            const auto first = idx.query(q, now, def_days);
            BOOST_REQUIRE(!first.next_cursor.empty());
            const auto cur = decode_cursor(first.next_cursor);
            BOOST_REQUIRE(cur.has_value());
            BOOST_REQUIRE(idx.erase(cur->identifier));
            ref.recs.erase(cur->identifier);
            q.after = *cur;
            q.limit = 1000;
            auto want = ref.all(q, now, def_days);
            want.resize(std::min<std::size_t>(want.size(), 1000));
            BOOST_TEST(ids(idx.query(q, now, def_days)) == want, boost::test_tools::per_element());
        }
    }
    BOOST_TEST_MESSAGE("reference: " << checked << " queries, " << paged << " cursor pages");
    BOOST_TEST(checked > 5000u);
    BOOST_TEST(paged > 1000u);
}

BOOST_AUTO_TEST_CASE(cursor_text_round_trips_and_refuses_garbage) {
    for (auto k : {sort_key::created_at, sort_key::expires_at, sort_key::common_name, sort_key::identifier}) {
        list_cursor c{k, k == sort_key::expires_at, "id-7.x_Y", k == sort_key::common_name ? "a:b é" : "",
                      k == sort_key::created_at || k == sort_key::expires_at ? -1234567890123 : 0};
        const std::string t = encode_cursor(c);
        BOOST_TEST(is_lower_hex(t));
        auto back = decode_cursor(t);
        BOOST_REQUIRE(back.has_value());
        BOOST_TEST((*back == c));
    }
    auto hex = [](std::string s) { return hex_encode({reinterpret_cast<const unsigned char*>(s.data()), s.size()}); };
    BOOST_TEST((hex_decode("00ff41") == std::string("\0\xff"
                                                    "A",
                                                    3)));
    BOOST_TEST(!hex_decode("0F").has_value());
    BOOST_TEST(!hex_decode("abc").has_value());
    for (std::string bad : {std::string(), std::string("zz"), std::string("abc"), hex("v2:ca:id:1"), hex("v1:xa:id:1"),
                            hex("v1:cx:id:1"), hex("v1:ca:id:"), hex("v1:ca:id:12a"), hex("v1:ca:../x:1"),
                            hex("v1:ia:id:extra"), hex("v1:na:id"), hex("v1:ca"), std::string(2000, 'a')})
        BOOST_TEST(!decode_cursor(bad).has_value(), bad);
}

BOOST_AUTO_TEST_SUITE_END()
