// Batch jobs under attack (docs/api.md "Batch jobs"): a stranger on the network and the larger
// batch body limit, path tricks in job identifiers, the batch revoke filter, a failing or dirty
// disk (the audit log full, temp files and orphans left in state/jobs, a corrupt kept job).
#define BOOST_TEST_MODULE test_batch_attack
#include <boost/test/unit_test.hpp>

#include "storage/layout.hpp"
#include "storage/leftovers.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

#include <malloc.h>
#include <sys/mount.h>

#include <fstream>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A POST whose header announces `length` bytes of body, none of which is sent: a server that
// waits for the body before it looks at the caller never answers (the client times out).
std::optional<http_reply> announce_body(unsigned short port, const std::string& target, std::size_t length,
                                        const std::string& token = {}) {
    http_client c(port, "127.0.0.1", 3s);
    std::string req = "POST " + target +
                      " HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: " + std::to_string(length) +
                      "\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "\r\n";
    try {
        return c.raw(req);
    } catch (const std::exception& e) {
        BOOST_TEST_MESSAGE("no answer: " << e.what());
        return std::nullopt;
    }
}

http_reply post_csv(http_client& c, const std::string& target, const std::string& csv, const std::string& token) {
    return c.request("POST", target, csv, {{"Authorization", "Bearer " + token}, {"Content-Type", "text/csv"}});
}

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
}

// Waits until the server answers /health (the listeners start once kept jobs are recovered).
bool answers(unsigned short port, std::chrono::seconds limit = 5s) {
    http_client c(port, "127.0.0.1", limit);
    try {
        return c.get("/health").status == 200u;
    } catch (const std::exception& e) {
        BOOST_TEST_MESSAGE("/health: " << e.what());
        return false;
    }
}

} // namespace

// (2) A stranger may not make the server read a 32 MiB body: the batch limit is for a caller
// authenticated with the batch routes' role; anyone else has the ordinary limit (413 at once).
BOOST_AUTO_TEST_CASE(the_batch_body_limit_needs_an_authenticated_operator) {
    test_server s;
    const std::size_t big = 1024 * 1024; // over body_limit (64 KiB), under batch_body_limit (32 MiB)
    for (const auto& [target, token] : std::vector<std::pair<std::string, std::string>>{
             {"/api/client-certs/batch", ""},
             {"/api/client-certs/batch/revoke", ""},
             {"/api/client-certs/batch", "not-a-token"},
             {"/api/client-certs/batch", s.tokens.viewer},
             // Only the two batch routes: not every path that starts with their name.
             {"/api/client-certs/batchx", s.tokens.operator_},
             {"/api/client-certs/batch/../batch", ""},
         }) {
        BOOST_TEST_CONTEXT(target << " token " << (token.empty() ? "none" : token.substr(0, 6))) {
            auto r = announce_body(s.port(), target, big, token);
            BOOST_TEST_REQUIRE(r.has_value());
            BOOST_TEST(r->status == 413u);
        }
    }
    // An operator still gets the larger limit (the server waits for the announced body).
    auto r = announce_body(s.port(), "/api/client-certs/batch", big, s.tokens.operator_);
    BOOST_TEST(!r.has_value());
    // And a real batch over 64 KiB from an operator is accepted.
    std::string csv = "common_name,notes\n";
    for (int i = 0; csv.size() < 100 * 1024; ++i)
        csv += "big-" + std::to_string(i) + "," + std::string(200, 'n') + "\n";
    auto c = s.client();
    auto ok = post_csv(c, "/api/client-certs/batch", csv, s.tokens.operator_);
    BOOST_TEST(ok.status == 202u, ok.body.substr(0, 300));
}

// (2) Job identifiers from the path never name a file outside state/jobs, and unknown ones are 404.
BOOST_AUTO_TEST_CASE(path_tricks_in_job_ids_are_404) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    for (const std::string id :
         {"..", "..%2F..%2Fstate", "job-..", "job-0123456789abcdef%2F..", "%2e%2e", "job-0123456789abcdef.input"}) {
        BOOST_TEST_CONTEXT(id) {
            auto r = c.get("/api/jobs/" + id, op);
            BOOST_TEST(r.status == 404u);
            BOOST_TEST(c.get("/api/jobs/" + id + "/results", op).status == 404u);
            BOOST_TEST(c.get("/api/jobs/" + id + "/archive", op).status == 404u);
            BOOST_TEST(c.post_json("/api/jobs/" + id + "/resume", "", op).status == 404u);
            BOOST_TEST(c.request("DELETE", "/api/jobs/" + id, "", {{"Authorization", "Bearer " + op}}).status == 404u);
        }
    }
    // Every job route wants a token.
    BOOST_TEST(c.get("/api/jobs").status == 401u);
    BOOST_TEST(c.get("/api/jobs/job-0123456789abcdef").status == 401u);
    BOOST_TEST(c.get("/api/jobs/job-0123456789abcdef/results").status == 401u);
    BOOST_TEST(c.get("/api/jobs/job-0123456789abcdef/archive").status == 401u);
    BOOST_TEST(c.post_json("/api/jobs/job-0123456789abcdef/resume", "").status == 401u);
    BOOST_TEST(c.request("DELETE", "/api/jobs/job-0123456789abcdef").status == 401u);
    BOOST_TEST(c.get("/api/jobs", s.tokens.viewer).status == 403u);
}

// (1) A batch row cannot go past the caller's ceilings: api_role above its own, serverAuth,
// cert_usage server, a reserved identifier.
BOOST_AUTO_TEST_CASE(batch_rows_respect_the_operators_ceilings) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    const std::string csv = "common_name,api_role,extended_key_usage,cert_usage,identifier\n"
                            "a1,admin,,,\n"
                            "a2,,serverAuth,,\n"
                            "a3,,,server,\n"
                            "a4,,,,batch\n"
                            "a5,operator,,,\n";
    auto r = post_csv(c, "/api/client-certs/batch?partial=true", csv, op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    const std::string id = str(obj(r), "id");
    json::object j;
    for (int i = 0; i < 200; ++i) {
        j = obj(c.get("/api/jobs/" + id, op));
        if (str(j, "state") != "queued" && str(j, "state") != "running") break;
        std::this_thread::sleep_for(25ms);
    }
    BOOST_TEST(str(j, "state") == "succeeded");
    BOOST_TEST(j.at("failed").to_number<int>() == 4);
    BOOST_TEST(c.get("/api/client-certs?limit=1", op).json().at("total").to_number<int>() == 1);
}

// (1) A filter that selects everything is a mistake, not a request: {"filter":{}} is refused.
BOOST_AUTO_TEST_CASE(an_empty_revoke_filter_is_refused) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    BOOST_TEST_REQUIRE(c.post_json("/api/client-certs", R"({"common_name":"keep-me"})", op).status == 201u);
    auto r = c.post_json("/api/client-certs/batch/revoke", R"({"filter":{}})", op);
    BOOST_TEST(r.status == 400u, r.body);
    BOOST_TEST(has(r.body, "filter"));
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(c.get("/api/client-certs?limit=1&status=active", op).json().at("total").to_number<int>() == 1);
}

// (3) A kept job whose rows do not match it (a torn or edited file) must not stop the server
// from serving: it is reported failed and the rest is served.
BOOST_AUTO_TEST_CASE(a_corrupt_kept_job_does_not_stop_the_server) {
    if (skip_on_pg("corrupt job files in state/jobs are the file store's")) return;
    const std::string bad = "job-00112233445566aa";
    fs::path data;
    test_server s([&](app::config& cfg) { data = cfg.data_dir; },
                  [&](net::server_options&) {
                      // Written after init, before start (when kept jobs are recovered).
                      const fs::path jobs = data / "state" / "jobs";
                      write_file(jobs / (bad + ".json"),
                                 R"({"id":")" + bad +
                                     R"(","kind":"create","state":"running","role":"operator",)"
                                     R"("created_at":"2026-01-01T00:00:00Z","total":3,"outcomes":"...","errors":[]})");
                      write_file(
                          jobs / (bad + ".input.json"),
                          R"({"identifiers":["only-one"],"rows":[{"common_name":"x","identifier":"only-one"}]})");
                      write_file(jobs / "job-00112233445566bb.json", "{not json");
                      // A document under another job's name (a copied file) is not that job.
                      write_file(jobs / "job-00112233445566ee.json",
                                 R"({"id":"job-00112233445566ef","kind":"revoke","state":"succeeded",)"
                                 R"("role":"operator","created_at":"2026-01-01T00:00:00Z","total":0,"outcomes":""})");
                  });
    BOOST_TEST_REQUIRE(answers(s.port()));
    auto c = s.client();
    auto r = c.get("/api/jobs/" + bad, s.tokens.operator_);
    BOOST_TEST(r.status == 200u, r.body);
    BOOST_TEST(str(obj(r), "state") == "failed");
    BOOST_TEST(c.post_json("/api/jobs/" + bad + "/resume", "", s.tokens.operator_).status == 409u);
    BOOST_TEST(c.get("/api/jobs/job-00112233445566ef", s.tokens.operator_).status == 404u);
    BOOST_TEST(c.get("/api/jobs/job-00112233445566ee", s.tokens.operator_).status == 404u);
}

// (3) What a crash leaves in state/jobs is cleaned at start-up: write_file_atomic's temp files
// (a 32 MiB input each) and the rows of a job whose document was never written (the request was
// never answered 202).
BOOST_AUTO_TEST_CASE(leftovers_in_state_jobs_are_removed_at_start_up) {
    if (skip_on_pg("leftover files in state/jobs are the file store's")) return;
    temp_dir dir;
    const storage::layout l{dir.path()};
    const fs::path jobs = l.state_dir() / "jobs";
    const fs::path temp = jobs / ".job-00112233445566cc.input.json.tmp-0123456789ab";
    write_file(temp, "{\"identifiers\":[");
    storage::remove_temp_leftovers(l, 0s);
    BOOST_TEST(!fs::exists(temp));

    const std::string orphan = "job-00112233445566dd";
    fs::path data;
    test_server s([&](app::config& cfg) { data = cfg.data_dir; },
                  [&](net::server_options&) {
                      write_file(data / "state" / "jobs" / (orphan + ".input.json"),
                                 R"({"identifiers":["o1"],"rows":[{"common_name":"o1","identifier":"o1"}]})");
                  });
    BOOST_TEST_REQUIRE(answers(s.port()));
    BOOST_TEST(!fs::exists(data / "state" / "jobs" / (orphan + ".input.json")));
}

namespace {
struct tmpfs_mount {
    fs::path dir;
    bool ok = false;
    tmpfs_mount(fs::path d, const std::string& size) : dir(std::move(d)) {
        fs::create_directories(dir);
        ok = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
    }
    ~tmpfs_mount() {
        if (ok) ::umount2(dir.c_str(), MNT_DETACH);
    }
};
void fill(const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    std::string block(4096, 'x');
    for (int i = 0; i < 100000 && out.write(block.data(), static_cast<std::streamsize>(block.size())); ++i) out.flush();
}
} // namespace

// (3) The audit log cannot be written: a batch is refused 503 and nothing is created or kept.
BOOST_AUTO_TEST_CASE(a_full_audit_disk_refuses_a_batch_and_keeps_nothing) {
    if (skip_on_pg("a full audit file system (tmpfs) and job files in state/jobs are the file store's")) return;
    std::unique_ptr<tmpfs_mount> mnt;
    test_server s(
        [&](app::config& cfg) { mnt = std::make_unique<tmpfs_mount>(cfg.data_dir / "logs" / "audit", "256k"); });
    if (!mnt->ok) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    fill(mnt->dir / "filler");
    http_reply r;
    for (int i = 0; i < 20; ++i) { // the log's last page may still take a line or two
        r = post_csv(c, "/api/client-certs/batch", "common_name\nfull-" + std::to_string(i) + "\n", op);
        if (r.status != 202u) break;
        std::this_thread::sleep_for(200ms);
    }
    expect_code(r, 503, "AUDIT_UNAVAILABLE");
    const auto before = c.get("/api/jobs", op).json().at("jobs").as_array().size();
    r = c.post_json("/api/client-certs/batch/revoke", R"({"identifiers":["nope"]})", op);
    expect_code(r, 503, "AUDIT_UNAVAILABLE");
    BOOST_TEST(c.get("/api/jobs", op).json().at("jobs").as_array().size() == before);
    std::size_t kept = 0;
    const fs::path jobs = s.data_dir() / "data" / "state" / "jobs";
    if (fs::exists(jobs))
        for (const auto& e : fs::directory_iterator(jobs))
            kept += e.path().filename().string().ends_with(".json") ? 1 : 0;
    BOOST_TEST(kept == 2 * before);
}

namespace {
// This process's peak resident set (VmHWM), in MiB: the in-process server's allocations count.
std::size_t peak_rss_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmHWM:")) return std::stoul(line.substr(6)) / 1024;
    return 0;
}
} // namespace

// (1) An operator's batch at the body limit is refused for its shape without the server's memory
// growing tenfold: a line of 32 million commas, 10 million empty rows or objects, 8 million
// identifiers to revoke.
BOOST_AUTO_TEST_CASE(a_batch_body_of_empty_cells_or_rows_stays_small_in_memory) {
    test_server s;
    auto c = s.client();
    c.set_timeout(60s);
    const auto& op = s.tokens.operator_;
    const std::size_t limit = 32 * 1024 * 1024 - 64;
    std::vector<std::pair<std::string, std::string>> bodies;
    bodies.emplace_back("text/csv", "common_name\n" + std::string(limit - 20, ',') + "\n");
    std::string rows = R"({"headers":["common_name"],"rows":[)";
    while (rows.size() < limit - 8) rows += "[],";
    rows.back() = ']';
    rows += "}";
    bodies.emplace_back("application/json", std::move(rows));
    std::string certs = R"({"certificates":[)";
    while (certs.size() < limit - 8) certs += "{},";
    certs.back() = ']';
    certs += "}";
    bodies.emplace_back("application/json", std::move(certs));
    std::string ids = R"({"identifiers":[)";
    while (ids.size() < limit - 8) ids += R"("a",)";
    ids.back() = ']';
    ids += "}";
    bodies.emplace_back("revoke", std::move(ids));
    for (auto& [type, body] : bodies) {
        const auto before = peak_rss_mib();
        const bool revoke = type == "revoke";
        if (revoke) type = "application/json";
        auto r = c.request("POST", revoke ? "/api/client-certs/batch/revoke" : "/api/client-certs/batch", body,
                           {{"Authorization", "Bearer " + op}, {"Content-Type", type}});
        const auto after = peak_rss_mib();
        BOOST_TEST_MESSAGE(type << " " << body.size() / (1024 * 1024) << " MiB: " << r.status << ", peak RSS " << before
                                << " -> " << after << " MiB");
        BOOST_TEST(r.status == 400u, r.body.substr(0, 200));
        BOOST_TEST(after <= before + 400, "peak RSS grew by " << after - before << " MiB");
    }
}

namespace {
std::size_t rss_mib() {
    ::malloc_trim(0); // freed memory back to the system, so RSS counts what is still held
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6)) / 1024;
    return 0;
}
} // namespace

// (1) A finished job's rows live on disk, not in the server's memory: keep_finished (200) jobs of
// 32 MiB each would otherwise hold gigabytes. Each job here carries 24 MiB of rows (24 invalid
// rows of 1 MiB notes, ?partial=true, and one valid row).
BOOST_AUTO_TEST_CASE(finished_jobs_do_not_keep_their_rows_in_memory) {
    test_server s;
    auto c = s.client();
    c.set_timeout(60s);
    const auto& op = s.tokens.operator_;
    auto run_job = [&](int n) {
        std::string csv = "common_name,cert_usage,notes\n";
        csv += "keep-" + std::to_string(n) + ",,\n";
        for (int i = 0; i < 24; ++i) csv += "bad-" + std::to_string(i) + ",bogus," + std::string(1 << 20, 'n') + "\n";
        auto r = post_csv(c, "/api/client-certs/batch?partial=true", csv, op);
        BOOST_TEST_REQUIRE(r.status == 202u, r.body.substr(0, 300));
        const std::string id = str(obj(r), "id");
        for (int i = 0; i < 400; ++i) {
            auto st = str(obj(c.get("/api/jobs/" + id, op)), "state");
            if (st != "queued" && st != "running") return;
            std::this_thread::sleep_for(25ms);
        }
        BOOST_FAIL("job " << id << " did not finish");
    };
    run_job(0); // warm up
    const auto before = rss_mib();
    for (int n = 1; n <= 8; ++n) run_job(n);
    const auto after = rss_mib();
    BOOST_TEST_MESSAGE("RSS " << before << " -> " << after << " MiB after 8 jobs of 24 MiB");
    // Keeping the rows would hold 8 x 24 = 192 MiB; half of that bounds what the allocator's arenas
    // (the pool threads', libpq's result buffers on PostgreSQL) keep of the jobs' passing buffers,
    // measured at up to 73 MiB.
    BOOST_TEST(after <= before + 96, "RSS grew by " << after - before << " MiB");
    // The rows are still there for the results.
    auto list = c.get("/api/jobs", op).json().at("jobs").as_array();
    BOOST_TEST_REQUIRE(list.size() == 9u);
    auto results = c.get("/api/jobs/" + std::string(list[0].at("id").as_string()) + "/results", op);
    BOOST_TEST(results.status == 200u);
    BOOST_TEST(has(results.body, "\"status\":\"created\""));
}

// (1) An operator cannot cancel an admin's job, nor resume it (which would run the admin's rows
// as an operator and fail for good those only an admin may create): the submitter's role bounds
// who may steer the job.
BOOST_AUTO_TEST_CASE(an_operator_cannot_cancel_or_resume_an_admins_job) {
    test_server s([](app::config& cfg) {
        cfg.jobs.max_running = 1;
        cfg.jobs.parallel_rows = 1;
    });
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    const auto& admin = s.tokens.admin;
    std::string csv = "common_name,api_role\n";
    for (int i = 0; i < 400; ++i) csv += "adm-" + std::to_string(i) + ",admin\n";
    auto first = post_csv(c, "/api/client-certs/batch", csv, admin);
    BOOST_TEST_REQUIRE(first.status == 202u, first.body);
    std::string csv2 = "common_name,api_role\nadm-second,admin\n";
    auto second = post_csv(c, "/api/client-certs/batch", csv2, admin);
    BOOST_TEST_REQUIRE(second.status == 202u, second.body);
    const std::string id1 = str(obj(first), "id"), id2 = str(obj(second), "id");
    auto del = [&](const std::string& id, const std::string& token) {
        return c.request("DELETE", "/api/jobs/" + id, "", {{"Authorization", "Bearer " + token}});
    };
    BOOST_TEST(del(id2, op).status == 403u);
    BOOST_TEST(del(id1, op).status == 403u);
    BOOST_TEST(str(obj(c.get("/api/jobs/" + id2, op)), "state") == "queued");
    auto r = del(id2, admin);
    BOOST_TEST(r.status == 202u, r.body);
    BOOST_TEST(str(obj(c.get("/api/jobs/" + id2, op)), "state") == "cancelled");
    BOOST_TEST(c.post_json("/api/jobs/" + id2 + "/resume", "", op).status == 403u);
    BOOST_TEST(str(obj(c.get("/api/jobs/" + id2, op)), "state") == "cancelled");
    r = c.post_json("/api/jobs/" + id2 + "/resume", "", admin);
    BOOST_TEST(r.status == 202u, r.body);
    BOOST_TEST(del(id1, admin).status == 202u);
}

// (1) The archive of an admin's job, fetched by an operator, holds no key of a certificate with
// api_role admin (the operator may not download that key singly either); the admin gets it.
BOOST_AUTO_TEST_CASE(an_operator_gets_no_admin_key_from_an_archive) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    const auto& admin = s.tokens.admin;
    auto r = post_csv(c, "/api/client-certs/batch",
                      "common_name,identifier,api_role\nA,arc-admin,admin\nB,arc-plain,\n", admin);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    const std::string id = str(obj(r), "id");
    for (int i = 0; i < 200 && str(obj(c.get("/api/jobs/" + id, op)), "state") != "succeeded"; ++i)
        std::this_thread::sleep_for(25ms);
    temp_dir tmp;
    auto members = [&](const std::string& token) {
        auto a = c.get("/api/jobs/" + id + "/archive", token);
        BOOST_TEST_REQUIRE(a.status == 200u, a.body.substr(0, 200));
        write_text(tmp.path() / "a.tar.gz", a.body);
        auto l = run("tar tzf " + (tmp.path() / "a.tar.gz").string());
        BOOST_TEST_REQUIRE(l.exit_code == 0, l.output);
        return l.output;
    };
    const auto as_op = members(op);
    BOOST_TEST(has(as_op, "arc-admin/arc-admin.crt"));
    BOOST_TEST(!has(as_op, "arc-admin/arc-admin.key"), as_op);
    BOOST_TEST(has(as_op, "arc-plain/arc-plain.key"), as_op);
    BOOST_TEST(has(members(admin), "arc-admin/arc-admin.key"));
    BOOST_TEST(c.get("/api/jobs/" + id + "/archive", s.tokens.viewer).status == 403u);
}

// (1) An archive of up to 30,000 certificates and keys is built in memory: it counts against the
// batch rate class, not the default one (100 a minute).
BOOST_AUTO_TEST_CASE(the_archive_is_in_the_batch_rate_class) {
    test_server s([](app::config& cfg) { cfg.limits.batch_per_min = 2; });
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    auto r = post_csv(c, "/api/client-certs/batch", "common_name\nrate-1\n", op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    const std::string id = str(obj(r), "id");
    for (int i = 0; i < 200 && str(obj(c.get("/api/jobs/" + id, op)), "state") != "succeeded"; ++i)
        std::this_thread::sleep_for(25ms);
    BOOST_TEST(c.get("/api/jobs/" + id + "/archive", op).status == 200u);
    BOOST_TEST(c.get("/api/jobs/" + id + "/archive", op).status == 429u);
}

// (3) state/jobs cannot take the job's rows (a full disk): the batch is refused, nothing is
// created, nothing is left in state/jobs, and the server keeps serving.
BOOST_AUTO_TEST_CASE(a_full_state_jobs_disk_refuses_a_batch_and_leaves_nothing) {
    if (skip_on_pg("a full state/jobs file system (tmpfs) is the file store's")) return;
    std::unique_ptr<tmpfs_mount> mnt;
    test_server s(
        [&](app::config& cfg) { mnt = std::make_unique<tmpfs_mount>(cfg.data_dir / "state" / "jobs", "64k"); });
    if (!mnt->ok) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    std::string csv = "common_name,notes\n";
    for (int i = 0; i < 200; ++i) csv += "full-" + std::to_string(i) + "," + std::string(1000, 'n') + "\n";
    auto r = post_csv(c, "/api/client-certs/batch", csv, op);
    BOOST_TEST(r.status >= 500u, r.body);
    BOOST_TEST(c.get("/api/jobs", op).json().at("jobs").as_array().empty());
    std::size_t left = 0;
    for (const auto& e : fs::directory_iterator(mnt->dir)) {
        BOOST_TEST_MESSAGE("left: " << e.path());
        ++left;
    }
    BOOST_TEST(left == 0u);
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(c.get("/api/client-certs?limit=1", op).json().at("total").to_number<int>() == 0);
    // A small batch still fits and runs.
    r = post_csv(c, "/api/client-certs/batch", "common_name\nsmall-1\n", op);
    BOOST_TEST(r.status == 202u, r.body);
}
