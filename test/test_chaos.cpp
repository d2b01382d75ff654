// Kill -9 chaos (issue 14): the real binary serves a mixed stream of creates, renewals,
// revocations, holds and unholds, PATCHes and batch jobs, and is SIGKILLed at random moments,
// CHAOS_KILLS times (default 50), restarting each time. After every start it must hold: every
// certificate a client got a 2xx for, complete and as acknowledged; no identifier or serial
// twice; every acknowledged revocation in the CRL and in OCSP; a CRL number that never went
// back; no temp/new/old leftovers. At the end interrupted jobs are resumed and every row of an
// accepted batch exists, and the audit chain with its signed checkpoints verifies.
// Prints: "lost 0, duplicated 0, unpublished 0, audit ok".
#define BOOST_TEST_MODULE test_chaos
#include <boost/test/unit_test.hpp>

#include "core/ossl.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"

#include <boost/json.hpp>

#include <openssl/bn.h>

#include <atomic>
#include <csignal>
#include <map>
#include <random>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

enum class rev { active, held, revoked };

// What the clients were told, per identifier. `pending` counts requests on it without an answer
// yet; one the kill cut off stays pending, and its outcome is read back after the restart.
struct expected {
    int pending = 0;
    std::string serial;
    rev state = rev::active;
    std::string notes;
    std::set<std::string> revoked_serials; // acknowledged revocations (also of earlier serials)
};

struct model {
    std::mutex mu;
    std::map<std::string, expected> certs;
    std::vector<std::pair<std::string, std::vector<std::string>>> jobs; // accepted job -> its identifiers
};

std::string hex_of_decimal(const std::string& dec) {
    BIGNUM* bn = nullptr;
    BOOST_REQUIRE(BN_dec2bn(&bn, dec.c_str()) > 0);
    char* hex = BN_bn2hex(bn);
    std::string out(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    if (out.size() % 2) out.insert(out.begin(), '0');
    return out;
}

// One client's mixed stream until the server dies under it. At most one request per identifier
// is in flight, so the order of answers is the order of commits.
void client_stream(unsigned short port, const std::string& token, model& m, unsigned seed, std::atomic<int>& next_id) {
    std::mt19937 rng(seed);
    http_client c(port, "127.0.0.1", 5s);
    for (;;) {
        std::string id, op;
        {
            std::lock_guard lk(m.mu);
            const int roll = static_cast<int>(rng() % 100);
            std::vector<std::string> idle;
            for (const auto& [k, e] : m.certs)
                if (e.pending == 0) idle.push_back(k);
            if (roll < 35 || idle.size() < 3) {
                op = roll < 5 ? "batch" : "create";
            } else {
                id = idle[rng() % idle.size()];
                const auto& e = m.certs[id];
                if (e.state == rev::revoked)
                    op = "patch";
                else if (e.state == rev::held)
                    op = roll % 2 ? "unhold" : "revoke";
                else
                    op = roll < 55 ? "renew" : roll < 70 ? "revoke" : roll < 80 ? "hold" : "patch";
            }
            if (op == "create") id = "chaos-" + std::to_string(next_id++);
            if (op != "batch") ++m.certs[id].pending;
        }
        http_reply r;
        std::vector<std::string> ids;
        std::string notes;
        try {
            if (op == "create") {
                r = c.post_json("/api/client-certs", R"({"common_name":")" + id + R"(","identifier":")" + id + "\"}",
                                token);
            } else if (op == "batch") {
                std::string body = R"({"certificates":[)";
                for (int i = 0; i < 8; ++i) {
                    ids.push_back("chaos-" + std::to_string(next_id++));
                    body += (i ? "," : "") + std::string(R"({"common_name":")") + ids.back() + R"(","identifier":")" +
                            ids.back() + "\"}";
                }
                r = c.post_json("/api/client-certs/batch", body + "]}", token);
            } else if (op == "renew") {
                r = c.post_json("/api/client-certs/" + id + "/renew", "{}", token);
            } else if (op == "revoke" || op == "hold") {
                r = c.post_json("/api/client-certs/" + id + "/revoke",
                                op == "hold" ? R"({"reason":"certificateHold"})" : R"({"reason":"keyCompromise"})",
                                token);
            } else if (op == "unhold") {
                r = c.post_json("/api/client-certs/" + id + "/unhold", "", token);
            } else {
                notes = "note-" + std::to_string(rng() % 100000);
                r = c.patch_json("/api/client-certs/" + id, R"({"notes":")" + notes + "\"}", token);
            }
        } catch (const std::exception&) {
            return; // the server is gone: this request stays pending
        }
        std::lock_guard lk(m.mu);
        if (op == "batch") {
            if (r.status == 202) m.jobs.emplace_back(str(obj(r), "id"), ids);
            continue;
        }
        auto& e = m.certs[id];
        --e.pending;
        if (op == "create") {
            if (r.status == 201)
                e.serial = str(obj(r), "serial_number");
            else
                m.certs.erase(id); // refused: nothing was made
        } else if (r.status != 200) {
            // Refused (e.g. 409): nothing changed.
        } else if (op == "renew") {
            e.serial = str(obj(r), "serial_number");
        } else if (op == "revoke" || op == "hold") {
            e.state = op == "hold" ? rev::held : rev::revoked;
            e.revoked_serials.insert(e.serial);
        } else if (op == "unhold") {
            e.state = rev::active;
            e.revoked_serials.erase(e.serial);
        } else {
            e.notes = notes;
        }
    }
}

struct tally {
    std::size_t lost = 0, duplicated = 0, unpublished = 0;
};

// Every certificate the server lists, by identifier (pages of 1,000).
std::map<std::string, json::object> listing(http_client& c, const std::string& token, tally& t) {
    std::map<std::string, json::object> out;
    std::set<std::string> serials;
    for (std::size_t offset = 0;; offset += 1000) {
        auto page = obj(c.get("/api/client-certs?limit=1000&offset=" + std::to_string(offset), token));
        const auto& items = page.at("certificates").as_array();
        for (const auto& item : items) {
            const auto& o = item.as_object();
            if (!out.emplace(str(o, "identifier"), o).second) ++t.duplicated;
            if (!serials.insert(str(o, "serial_number")).second) ++t.duplicated;
        }
        if (items.size() < 1000) break;
    }
    return out;
}

std::string reason_of(const json::object& cert) {
    const auto& r = cert.at("revocation").as_object();
    if (!r.at("revoked").as_bool()) return "";
    const auto* reason = r.if_contains("reason");
    return reason && reason->is_string() ? std::string(reason->as_string()) : "unspecified";
}

} // namespace

BOOST_AUTO_TEST_CASE(sigkill_at_random_moments_loses_nothing) {
    const int kills = std::getenv("CHAOS_KILLS") ? std::atoi(std::getenv("CHAOS_KILLS")) : 50;
    temp_dir dir;
    const fs::path data = dir / "data", conf = dir / "certmate.conf";
    const std::string token = "chaos-test-token-7d1c9e22a4b05f3c81";
    const std::string hash = run("printf %s " + token + " | sha256sum | cut -c1-64").output.substr(0, 64);
    write_text(conf, "[storage]\ndata_dir = " + data.string() +
                         "\n[ca]\nkey_type = ec-p256\n[issuance]\ndefault_key_type = ec-p256\n"
                         "[rate_limit]\ndefault = 0\ncreate = 0\nbatch = 0\ncrl = 0\nocsp = 0\n"
                         "[audit]\ncheckpoint_interval = 25\n[auth]\ntoken = chaos:admin:" +
                         hash + "\n");
    const std::string bin = certmate_binary();
    auto init = run(bin + " init -c " + conf.string());
    BOOST_TEST_REQUIRE(init.exit_code == 0, init.output);

    model m;
    tally t;
    std::atomic<int> next_id{1};
    std::uint64_t last_crl_number = 0;
    std::mt19937 rng(20261130);
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;
    fs::file_time_type started{};
    auto start = [&](int round) {
        // Files written from here on are this run's (a CRL build in flight), not leftovers.
        write_text(dir / "start-mark", "");
        started = fs::last_write_time(dir / "start-mark");
        proc = std::make_unique<child_process>(
            std::vector<std::string>{bin, "serve", "-c", conf.string(), "--listen", "127.0.0.1:0"},
            dir / ("serve-" + std::to_string(round) + ".err"));
        auto line = proc->wait_for_line("listening on http://", 60s);
        BOOST_REQUIRE_MESSAGE(line, read_text(dir / ("serve-" + std::to_string(round) + ".err")));
        port = port_of_listen_line(*line);
    };

    // After a start: what the clients were told is what the server holds.
    auto check = [&](int round) {
        http_client c(port, "127.0.0.1", 30s);
        std::size_t leftovers = 0;
        std::error_code walk;
        for (fs::recursive_directory_iterator it(data, walk), end; !walk && it != end; it.increment(walk)) {
            const std::string name = it->path().filename().string();
            const bool temp =
                name.find(".tmp") != std::string::npos || name.rfind(".new-", 0) == 0 || name.rfind(".old-", 0) == 0;
            std::error_code ec;
            if (temp && fs::last_write_time(it->path(), ec) < started && !ec) {
                BOOST_TEST_MESSAGE("round " << round << ": leftover " << it->path());
                ++leftovers;
            }
        }
        BOOST_TEST(leftovers == 0u);
        auto all = listing(c, token, t);
        // The first CRL served after the start lists every revocation acknowledged before the
        // kill (issue 15: acknowledged once durable, a kept CRL missing one is not served; a CRL
        // request waits for the start-up build). Only a refusal (503) is asked again.
        std::string crl_text;
        for (auto deadline = std::chrono::steady_clock::now() + 10s;;) {
            auto der = c.get("/crl.der");
            if (der.status != 200 && std::chrono::steady_clock::now() < deadline) {
                BOOST_TEST_MESSAGE("round " << round << ": /crl.der answered " << der.status);
                std::this_thread::sleep_for(100ms);
                continue;
            }
            BOOST_TEST(der.status == 200u);
            auto info = obj(c.get("/api/crl/info", token));
            const auto number = info.at("crl_number").to_number<std::uint64_t>();
            BOOST_TEST(number >= last_crl_number);
            last_crl_number = std::max(last_crl_number, number);
            write_text(dir / "crl.der", der.body);
            crl_text = run("openssl crl -inform DER -noout -text -in " + (dir / "crl.der").string()).output;
            break;
        }
        std::lock_guard lk(m.mu);
        for (auto& [id, e] : m.certs) {
            auto it = all.find(id);
            if (e.pending > 0) {
                // The kill came before the answer: adopt what the server holds (or that nothing was made).
                e.pending = 0;
                if (it == all.end()) {
                    e.serial.clear();
                    continue;
                }
                const auto reason = reason_of(it->second);
                e.serial = str(it->second, "serial_number");
                e.notes = str(it->second, "notes");
                e.state = reason.empty() ? rev::active : reason == "certificateHold" ? rev::held : rev::revoked;
                if (e.state == rev::active)
                    e.revoked_serials.erase(e.serial);
                else
                    e.revoked_serials.insert(e.serial);
                continue;
            }
            if (it == all.end()) {
                BOOST_TEST_MESSAGE("round " << round << ": lost " << id);
                ++t.lost;
                continue;
            }
            const auto& got = it->second;
            const auto reason = reason_of(got);
            const bool same = str(got, "serial_number") == e.serial && str(got, "notes") == e.notes &&
                              (e.state == rev::active ? reason.empty()
                               : e.state == rev::held ? reason == "certificateHold"
                                                      : !reason.empty() && reason != "certificateHold");
            if (!same) {
                BOOST_TEST_MESSAGE("round " << round << ": " << id
                                            << " differs from what was acknowledged: " << json::serialize(got));
                ++t.lost;
            }
            for (const auto& s : e.revoked_serials) {
                const bool in_crl = crl_text.find("Serial Number: " + hex_of_decimal(s)) != std::string::npos;
                auto st = obj(c.get("/api/ocsp/status/" + s, token));
                if (!in_crl || str(st, "certificate_status") != "revoked") {
                    BOOST_TEST_MESSAGE("round " << round << ": revocation of " << id << " serial " << s
                                                << " not published (CRL " << in_crl << ", OCSP "
                                                << str(st, "certificate_status") << ")");
                    ++t.unpublished;
                }
            }
        }
        for (auto it = m.certs.begin(); it != m.certs.end();)
            it = it->second.serial.empty() ? m.certs.erase(it) : std::next(it);
    };

    for (int round = 0; round < kills; ++round) {
        start(round);
        check(round);
        std::vector<std::thread> clients;
        for (unsigned i = 0; i < 3; ++i)
            clients.emplace_back(client_stream, port, token, std::ref(m), rng(), std::ref(next_id));
        std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 900));
        proc->signal(SIGKILL);
        BOOST_TEST_REQUIRE(proc->wait_exit(10s).has_value());
        for (auto& th : clients) th.join();
    }

    // The last start: resume what the kills interrupted, then every accepted batch row exists.
    start(kills);
    check(kills);
    http_client c(port, "127.0.0.1", 30s);
    std::size_t resumed = 0;
    for (const auto& [job, ids] : m.jobs) {
        auto got = c.get("/api/jobs/" + job, token);
        if (got.status == 404) continue; // finished long ago and forgotten (jobs.keep_finished)
        BOOST_TEST_REQUIRE(got.status == 200u, job << ": " << got.body);
        auto j = obj(got);
        if (str(j, "state") == "interrupted") {
            BOOST_TEST(c.post_json("/api/jobs/" + job + "/resume", "", token).status == 202u);
            ++resumed;
        }
    }
    for (const auto& [job, ids] : m.jobs) {
        for (auto deadline = std::chrono::steady_clock::now() + 60s;;) {
            auto got = c.get("/api/jobs/" + job, token);
            if (got.status == 404) break; // forgotten after it finished (jobs.keep_finished)
            BOOST_TEST_REQUIRE(got.status == 200u, job << ": " << got.body);
            const auto state = str(obj(got), "state");
            if (state != "queued" && state != "running") break;
            BOOST_REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(50ms);
        }
        for (const auto& id : ids)
            if (c.get("/api/client-certs/" + id, token).status != 200) {
                BOOST_TEST_MESSAGE("job " << job << ": row " << id << " missing");
                ++t.lost;
            }
    }
    auto final_list = listing(c, token, t);
    proc->signal(SIGTERM);
    BOOST_TEST(proc->wait_exit(30s).value_or(-1) == 0);
    auto verify = run(bin + " audit verify --data-dir " + data.string());
    const bool audit_ok = verify.exit_code == 0;
    BOOST_TEST(audit_ok, verify.output);
    std::cout << kills << " kills, " << final_list.size() << " certificates, " << m.jobs.size() << " batch jobs ("
              << resumed << " resumed): lost " << t.lost << ", duplicated " << t.duplicated << ", unpublished "
              << t.unpublished << ", audit " << (audit_ok ? "ok" : "BROKEN") << std::endl;
    BOOST_TEST(t.lost == 0u);
    BOOST_TEST(t.duplicated == 0u);
    BOOST_TEST(t.unpublished == 0u);
}
