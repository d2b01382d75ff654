// CRL publication under attack (docs/architecture.md "CRL publication"): the CRL is served once its
// number is durable and the file store writes crl.der / crl.pem after, on a thread of its own.
// A failing disk while those files are written must show in /health (not only in the log) and
// the files must catch up once the disk works again; strangers fetching /crl.der while operators
// revoke must never get a CRL lacking an acknowledged revocation, nor a lower number than before.
#define BOOST_TEST_MODULE test_crl_attack
#include <boost/test/unit_test.hpp>

#include "core/crl.hpp"
#include "core/ossl.hpp"
#include "storage/atomic_file.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/wait.hpp"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The revoked serials (decimal) of a DER CRL; nullopt when it does not parse whole.
std::optional<std::set<std::string>> revoked_serials(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::x509_crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!crl || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) return std::nullopt;
    std::set<std::string> out;
    STACK_OF(X509_REVOKED)* revs = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revs); ++i) {
        ossl::bignum bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i)), nullptr));
        if (!bn) return std::nullopt;
        ossl::openssl_string dec(BN_bn2dec(bn.get()));
        if (!dec) return std::nullopt;
        out.insert(dec.get());
    }
    return out;
}

// write_fault_hook is a plain std::function read by the store's CRL file thread: set once before
// the server starts and cleared after it stopped; the fault itself is switched by this flag.
std::atomic<bool> crl_files_fail{false};

struct crl_fault_hook {
    crl_fault_hook() {
        crl_files_fail = false;
        storage::write_fault_hook = [](const fs::path& p) {
            const auto name = p.filename().string();
            return crl_files_fail && (has(name, "crl.der") || has(name, "crl.pem")) ? EIO : 0;
        };
    }
    ~crl_fault_hook() { storage::write_fault_hook = nullptr; }
};

} // namespace

// The disk fails (EIO) exactly while the CRL files are written: the revocation is acknowledged and
// served all the same (its number is durable), but crl.der / crl.pem on disk stay older, without
// it. An operator must see that in /health, not only in the log; once the disk works again the
// files are written without waiting for the next CRL (which may be days away), and /health is ok.
BOOST_AUTO_TEST_CASE(crl_files_that_cannot_be_written_make_health_degraded_until_written) {
    if (skip_on_pg("the CRL files are the file store's")) return;
    crl_fault_hook hook; // outlives the server
    auto s = std::make_unique<test_server>();
    auto c = s->client();
    const std::string op = s->tokens.operator_;
    const fs::path data = s->config().data_dir;
    BOOST_REQUIRE(eventually([&] { return c.get("/health").status == 200u; }));
    auto a = c.post_json("/api/client-certs", R"({"common_name":"a","identifier":"a"})", op);
    BOOST_REQUIRE(a.status == 201u);
    const std::string serial = str(obj(a), "serial_number");
    // The files of the CRL served now are on disk (written after it was served).
    BOOST_REQUIRE(eventually([&] { return read_text(data / "certs/crl/crl.der") == c.get("/crl.der").body; }));

    crl_files_fail = true;
    auto r = c.post_json("/api/client-certs/a/revoke", R"({"reason":"keyCompromise"})", op);
    BOOST_REQUIRE_MESSAGE(r.status == 200u, r.body);
    const std::string served = c.get("/crl.der").body;
    auto listed = revoked_serials(served);
    BOOST_REQUIRE(listed);
    BOOST_TEST(listed->count(serial) == 1u); // acknowledged, so served
    // The file thread tried and failed: the files hold the older CRL, without the revocation.
    BOOST_TEST(eventually([&] {
        auto h = c.get("/health");
        return h.status == 503u && has(h.body, "CRL files");
    }));
    auto h = c.get("/health");
    BOOST_TEST(str(obj(h), "status") == "degraded", h.body);
    BOOST_TEST(!has(h.body, data.string()), h.body); // public: no path
    const std::string on_disk = read_text(data / "certs/crl/crl.der");
    BOOST_TEST(on_disk != served);
    BOOST_TEST(revoked_serials(on_disk)->count(serial) == 0u);

    // The disk works again; no revocation since: the files catch up by themselves.
    crl_files_fail = false;
    BOOST_TEST(eventually([&] { return read_text(data / "certs/crl/crl.der") == served; }, 30s));
    BOOST_TEST(eventually([&] { return c.get("/health").status == 200u; }, 30s));
    BOOST_TEST(c.get("/crl.der").body == served); // no new CRL was needed for it
    auto pem = c.get("/api/crl/pem", s->tokens.viewer);
    BOOST_TEST(read_text(data / "certs/ca/crl.pem") == pem.body);
    s.reset();
}

// Strangers fetch /crl.der (and viewers /api/crl/pem) while operators revoke, hold and unhold:
// every CRL parses whole, the number a client sees never goes back (across both forms), and a CRL
// fetched after a revocation was acknowledged lists it.
BOOST_AUTO_TEST_CASE(crls_fetched_during_a_revocation_storm_never_lack_an_acknowledged_one) {
    test_server s;
    auto c = s.client();
    const std::string op = s.tokens.operator_, viewer = s.tokens.viewer;
    BOOST_REQUIRE(eventually([&] { return c.get("/crl.der").status == 200u; }));
    constexpr int per_revoker = 8, revokers = 3;
    std::vector<std::vector<std::string>> serials(revokers);
    for (int t = 0; t < revokers; ++t)
        for (int i = 0; i < per_revoker; ++i) {
            const std::string id = "s" + std::to_string(t) + "-" + std::to_string(i);
            auto r =
                c.post_json("/api/client-certs", R"({"common_name":")" + id + R"(","identifier":")" + id + "\"}", op);
            BOOST_REQUIRE(r.status == 201u);
            serials[t].push_back(str(obj(r), "serial_number"));
        }

    std::mutex mu;
    std::set<std::string> acknowledged; // guarded by mu
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < revokers; ++t)
        threads.emplace_back([&, t] {
            auto rc = s.client();
            for (int i = 0; i < per_revoker; ++i) {
                const std::string id = "s" + std::to_string(t) + "-" + std::to_string(i);
                // A hold and an unhold first (CRL changes the stranger sees come and go), then the revocation.
                if (i % 2 == 0) {
                    (void)rc.post_json("/api/client-certs/" + id + "/revoke", R"({"reason":"certificateHold"})", op);
                    (void)rc.post_json("/api/client-certs/" + id + "/unhold", "", op);
                }
                auto r = rc.post_json("/api/client-certs/" + id + "/revoke", R"({"reason":"keyCompromise"})", op);
                if (r.status != 200u) {
                    ++failures;
                    continue;
                }
                std::lock_guard lk(mu);
                acknowledged.insert(serials[t][static_cast<std::size_t>(i)]);
            }
        });
    std::atomic<int> fetched{0}, missing{0}, backwards{0}, torn{0};
    for (int k = 0; k < 2; ++k)
        threads.emplace_back([&, k] {
            auto rc = s.client();
            std::uint64_t last = 0;
            while (!done) {
                std::set<std::string> before;
                {
                    std::lock_guard lk(mu);
                    before = acknowledged;
                }
                std::string der;
                if (k == 0) {
                    der = rc.get("/crl.der").body;
                } else {
                    // The PEM form, through the same CRL object: decoded with the openssl API.
                    auto pem = rc.get("/api/crl/pem", viewer).body;
                    ossl::bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
                    ossl::x509_crl crl(PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr));
                    if (crl) {
                        unsigned char* out = nullptr;
                        const int n = i2d_X509_CRL(crl.get(), &out);
                        ossl::openssl_string owned(reinterpret_cast<char*>(out));
                        if (n > 0) der.assign(owned.get(), static_cast<std::size_t>(n));
                    }
                }
                auto listed = revoked_serials(der);
                auto number = crl_number_of(der);
                ++fetched;
                if (!listed || !number) {
                    ++torn;
                    continue;
                }
                if (*number < last) ++backwards;
                last = *number;
                for (const auto& sn : before)
                    if (!listed->count(sn)) ++missing;
            }
        });
    for (int t = 0; t < revokers; ++t) threads[static_cast<std::size_t>(t)].join();
    done = true;
    for (std::size_t t = revokers; t < threads.size(); ++t) threads[t].join();
    BOOST_TEST(failures.load() == 0);
    BOOST_TEST(acknowledged.size() == static_cast<std::size_t>(revokers * per_revoker));
    BOOST_TEST(fetched.load() > 0);
    BOOST_TEST(torn.load() == 0);
    BOOST_TEST(backwards.load() == 0);
    // An acknowledgement is sent at the latest after 3 s even without its CRL (counted): the
    // promise holds for those answered on the publish itself.
    const auto metrics = c.get("/metrics", s.tokens.admin).body;
    if (has(metrics, "certmate_crl_wait_timeouts_total 0"))
        BOOST_TEST(missing.load() == 0);
    else
        BOOST_TEST_MESSAGE("some revocations were answered on the 3 s bound: 'missing' not checked");
    auto final_crl = revoked_serials(c.get("/crl.der").body);
    BOOST_REQUIRE(final_crl);
    for (const auto& per : serials)
        for (const auto& sn : per) BOOST_TEST(final_crl->count(sn) == 1u);
}
