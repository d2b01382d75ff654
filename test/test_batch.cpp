// Batch operations as jobs (docs/api.md "Batch jobs") against the real server on 127.0.0.1:
// CSV (BOM, CRLF, quoted commas and line breaks), the JSON shapes, whole-batch validation and
// ?partial=true, one CRL build for a revoke job, interactive latency while a job runs, and a
// SIGKILL in the middle of a job followed by a resume.
#define BOOST_TEST_MODULE test_batch
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <regex>
#include <set>
#include <thread>

using namespace certmate;
using namespace certmate::test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Polls the job until it is over (or `limit` passes); its last document.
json::object wait_job(http_client& c, const std::string& token, const std::string& id,
                      std::chrono::seconds limit = 300s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        auto r = c.get("/api/jobs/" + id, token);
        BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
        auto o = obj(r);
        const auto state = str(o, "state");
        if (state != "queued" && state != "running") return o;
        BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "job " << id << " still " << state);
        std::this_thread::sleep_for(50ms); // polling the API, as a client does
    }
}

std::uint64_t num(const json::object& o, const char* k) {
    const auto* v = o.if_contains(k);
    BOOST_REQUIRE_MESSAGE(v && v->is_number(), k << " missing in " << json::serialize(o));
    return v->to_number<std::uint64_t>();
}

std::size_t total_certs(http_client& c, const std::string& token, const std::string& query = "") {
    auto r = c.get("/api/client-certs?limit=1" + query, token);
    BOOST_REQUIRE(r.status == 200);
    return num(obj(r), "total");
}

// certmate_crl_builds_total{result="ok"} from /metrics.
std::uint64_t crl_builds(http_client& c, const std::string& token) {
    auto r = c.get("/metrics", token);
    std::smatch m;
    static const std::regex re(R"re(certmate_crl_builds_total\{result="ok"\} (\d+))re");
    BOOST_REQUIRE(std::regex_search(r.body, m, re));
    return std::stoull(m[1]);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + needle.size())) ++n;
    return n;
}

// A CSV of `rows` certificates the way a spreadsheet writes it: a BOM, CRLF, quoted fields with
// commas, and (in every 10th row) a note with a line break.
std::string spreadsheet_csv(std::size_t rows, const std::string& prefix) {
    std::string csv = "\xEF\xBB\xBF"
                      "common_name,organization,cert_usage,dns,notes\r\n";
    for (std::size_t i = 1; i <= rows; ++i) {
        csv += prefix + std::to_string(i) + ",\"Acme, Inc.\",vpn,";
        csv += prefix + std::to_string(i) + ".example;alt-" + std::to_string(i) + ".example,";
        csv +=
            i % 10 == 0 ? "\"first line\r\nsecond, \"\"quoted\"\" line\"" : "\"batch row " + std::to_string(i) + "\"";
        csv += "\r\n";
    }
    return csv;
}

http_reply post_csv(http_client& c, const std::string& target, const std::string& csv, const std::string& token) {
    return c.request("POST", target, csv, {{"Authorization", "Bearer " + token}, {"Content-Type", "text/csv"}});
}

} // namespace

BOOST_AUTO_TEST_CASE(a_1000_row_csv_job_completes_and_every_certificate_verifies) {
    test_server s([](app::config& cfg) { cfg.jobs.parallel_rows = 2; });
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    const std::string csv = spreadsheet_csv(1000, "row");
    BOOST_TEST_REQUIRE(csv.size() > 64 * 1024); // beyond server.body_limit: the batch limit applies

    auto r = post_csv(c, "/api/client-certs/batch", csv, op);
    BOOST_TEST_INFO(r.body);
    BOOST_TEST_REQUIRE(r.status == 202u);
    auto job = obj(r);
    const std::string id = str(job, "id");
    BOOST_TEST(r.header("location") == "/api/jobs/" + id);
    BOOST_TEST(str(job, "kind") == "create");
    BOOST_TEST(num(job, "total") == 1000u);

    const auto started = std::chrono::steady_clock::now();
    auto done = wait_job(c, op, id);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    BOOST_TEST_MESSAGE("1000-row CSV job: " << secs << " s, " << 1000 / secs << " certificates/s");
    BOOST_TEST(str(done, "state") == "succeeded");
    BOOST_TEST(num(done, "done") == 1000u);
    BOOST_TEST(num(done, "failed") == 0u);
    BOOST_TEST(!str(done, "finished_at").empty());

    // The store holds exactly the job's certificates, with the quoted cells intact.
    BOOST_TEST(total_certs(c, op) == 1000u);
    auto results = c.get("/api/jobs/" + id + "/results", op);
    BOOST_TEST_REQUIRE(results.status == 200u);
    BOOST_TEST(count_of(results.body, "\"status\":\"created\"") == 1000u);
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(results.body, m, std::regex(R"re("row":10,"identifier":"([^"]+)")re")));
    auto one = obj(c.get("/api/client-certs/" + m[1].str(), op));
    BOOST_TEST(str(one, "notes") == "first line\r\nsecond, \"quoted\" line");
    BOOST_TEST(json::serialize(one).find("Acme, Inc.") != std::string::npos);
    BOOST_TEST(json::serialize(one).find("alt-10.example") != std::string::npos);

    // The audit log: one batch_create entry and one create entry per certificate, tagged with the job.
    const std::string audit = audit_text(s.config());
    BOOST_TEST(count_of(audit, "\"operation\":\"batch_create\"") == 1u);
    BOOST_TEST(count_of(audit, "\"job\":\"" + id + "\"") >= 1000u);
    std::size_t tagged_creates = 0;
    for (const auto& line : audit_lines(s.config()))
        if (has(line, "\"operation\":\"create\"") && has(line, "\"job\":\"" + id + "\"") &&
            has(line, "\"status\":\"success\""))
            ++tagged_creates;
    BOOST_TEST(tagged_creates == 1000u);

    // The archive: every certificate verifies against the CA with openssl; keys are 0600 members.
    auto archive = c.get("/api/jobs/" + id + "/archive", op);
    BOOST_TEST_REQUIRE(archive.status == 200u);
    BOOST_TEST(archive.header("content-type") == "application/gzip");
    temp_dir out;
    write_text(out / "job.tar.gz", archive.body);
    auto x = run("cd " + out.path().string() + " && tar xzf job.tar.gz && ls */*.key | wc -l");
    BOOST_TEST_REQUIRE(x.exit_code == 0, x.output);
    BOOST_TEST(std::stoul(x.output) == 1000u);
    auto v = run("cd " + out.path().string() + " && openssl verify -CAfile ca.crt */*.crt");
    BOOST_TEST(v.exit_code == 0, v.output.substr(0, 2000));
    BOOST_TEST(count_of(v.output, ": OK") == 1000u);
}

BOOST_AUTO_TEST_CASE(an_invalid_row_refuses_the_whole_batch_unless_partial) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    std::string csv = "common_name,key_type,identifier\n";
    for (int i = 1; i <= 30; ++i)
        csv += "cn-" + std::to_string(i) + "," + (i == 17 ? "dsa1024" : "ec-p256") + ",id-" + std::to_string(i) + "\n";

    auto r = post_csv(c, "/api/client-certs/batch", csv, op);
    expect_code(r, 400, "INVALID_ARGUMENT", "key_type");
    auto body = obj(r);
    BOOST_TEST(num(body, "errors_total") == 1u);
    auto e = body.at("errors").as_array().at(0).as_object();
    BOOST_TEST(num(e, "row") == 17u);
    BOOST_TEST(str(e, "field") == "key_type");
    BOOST_TEST(has(str(e, "message"), "key_type"));
    BOOST_TEST(total_certs(c, op) == 0u);

    r = post_csv(c, "/api/client-certs/batch?partial=true", csv, op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    auto done = wait_job(c, op, str(obj(r), "id"));
    BOOST_TEST(str(done, "state") == "succeeded");
    BOOST_TEST(num(done, "succeeded") == 29u);
    BOOST_TEST(num(done, "failed") == 1u);
    auto errs = done.at("errors").as_array();
    BOOST_TEST_REQUIRE(errs.size() == 1u);
    BOOST_TEST(num(errs[0].as_object(), "row") == 17u);
    BOOST_TEST(total_certs(c, op) == 29u);
    BOOST_TEST(c.get("/api/client-certs/id-17", op).status == 404u);
    BOOST_TEST(c.get("/api/client-certs/id-18", op).status == 200u);

    // Identifiers: twice in one batch, taken in the store, or reserved for routes: row errors.
    r = c.post_json("/api/client-certs/batch",
                    R"({"certificates":[{"common_name":"a","identifier":"dup"},{"common_name":"b","identifier":"dup"},
                        {"common_name":"c","identifier":"id-1"},{"common_name":"d","identifier":"batch"}]})",
                    op);
    expect_code(r, 400, "INVALID_ARGUMENT");
    body = obj(r);
    BOOST_TEST(num(body, "errors_total") == 3u);
    const std::string all = json::serialize(body.at("errors"));
    BOOST_TEST(has(all, R"("row":2,"field":"identifier")"));
    BOOST_TEST(has(all, R"("row":3,"field":"identifier")"));
    BOOST_TEST(has(all, R"("row":4,"field":"identifier")"));
    // The reserved names are refused by the single create too.
    expect_code(c.post_json("/api/client-certs", R"({"common_name":"x","identifier":"stats"})", op), 400,
                "INVALID_IDENTIFIER", "identifier");

    // A viewer may not submit; a malformed CSV is a 400 naming its line; an unknown column too.
    BOOST_TEST(post_csv(c, "/api/client-certs/batch", csv, s.tokens.viewer).status == 403u);
    expect_code(post_csv(c, "/api/client-certs/batch", "common_name\n\"open", op), 400, "INVALID_ARGUMENT");
    expect_code(post_csv(c, "/api/client-certs/batch", "common_name,shoe_size\nx,42\n", op), 400, "INVALID_ARGUMENT",
                "shoe_size");
    BOOST_TEST(c.request("POST", "/api/client-certs/batch", "x",
                         {{"Authorization", "Bearer " + op}, {"Content-Type", "text/plain"}})
                   .status == 415u);
}

BOOST_AUTO_TEST_CASE(the_original_headers_and_rows_shape_works) {
    test_server s;
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    auto r = c.post_json("/api/client-certs/batch",
                         R"({"headers":["common_name","email","days_valid","identifier"],
                             "rows":[["alice","alice@example.com",30,"alice"],["bob","bob@example.com","60","bob"]]})",
                         op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    auto done = wait_job(c, op, str(obj(r), "id"));
    BOOST_TEST(str(done, "state") == "succeeded");
    auto alice = obj(c.get("/api/client-certs/alice", op));
    BOOST_TEST(has(json::serialize(alice), "alice@example.com"));
    auto bob = obj(c.get("/api/client-certs/bob", op));
    BOOST_TEST(has(json::serialize(bob), "bob@example.com"));
    BOOST_TEST(c.get("/api/jobs", op).body.find(str(done, "id")) != std::string::npos);
}

// One running job per client, the rest queued; a cancel stops a running job with what it did kept;
// a resume of the cancelled job finishes it; the job metrics count all of it.
BOOST_AUTO_TEST_CASE(jobs_queue_per_client_cancel_and_resume) {
    test_server s([](app::config& cfg) { cfg.jobs.parallel_rows = 1; });
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    std::string first = "common_name\n", second = "common_name\n";
    for (int i = 1; i <= 400; ++i) first += "q1-" + std::to_string(i) + "\n";
    for (int i = 1; i <= 5; ++i) second += "q2-" + std::to_string(i) + "\n";
    auto r1 = post_csv(c, "/api/client-certs/batch", first, op);
    auto r2 = post_csv(c, "/api/client-certs/batch", second, op);
    BOOST_TEST_REQUIRE(r1.status == 202u);
    BOOST_TEST_REQUIRE(r2.status == 202u);
    const std::string id1 = str(obj(r1), "id"), id2 = str(obj(r2), "id");
    BOOST_TEST(str(obj(c.get("/api/jobs/" + id2, op)), "state") == "queued"); // same client: waits for id1

    // Cancel the first while it runs: it stops, rows done stay done, then the second runs.
    for (auto deadline = std::chrono::steady_clock::now() + 60s;;) {
        if (num(obj(c.get("/api/jobs/" + id1, op)), "done") >= 20) break;
        BOOST_REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
    auto del = c.request("DELETE", "/api/jobs/" + id1, "", {{"Authorization", "Bearer " + op}});
    BOOST_TEST_REQUIRE(del.status == 202u, del.body);
    auto j1 = wait_job(c, op, id1);
    BOOST_TEST(str(j1, "state") == "cancelled");
    const auto done1 = num(j1, "done");
    BOOST_TEST(done1 < 400u);
    auto j2 = wait_job(c, op, id2);
    BOOST_TEST(str(j2, "state") == "succeeded");
    BOOST_TEST(total_certs(c, op) == done1 + 5);
    expect_code(c.request("DELETE", "/api/jobs/" + id1, "", {{"Authorization", "Bearer " + op}}), 409, "CONFLICT");
    BOOST_TEST(c.get("/api/jobs/job-0000000000000000", op).status == 404u);

    // Resume the cancelled job: it finishes without making anything twice.
    auto res = c.post_json("/api/jobs/" + id1 + "/resume", "", op);
    BOOST_TEST_REQUIRE(res.status == 202u, res.body);
    j1 = wait_job(c, op, id1);
    BOOST_TEST(str(j1, "state") == "succeeded");
    BOOST_TEST(num(j1, "done") == 400u);
    BOOST_TEST(num(j1, "failed") == 0u);
    BOOST_TEST(total_certs(c, op) == 405u);

    const std::string m = c.get("/metrics", op).body;
    BOOST_TEST(has(m, "certmate_jobs{state=\"succeeded\"} 2"));
    BOOST_TEST(has(m, "certmate_job_rows_total{kind=\"create\",result=\"ok\"} 405"));
}

// Acceptance 5 and 6: interactive latency while a 5,000-certificate job runs, then one revoke job
// of all 5,000 that makes one CRL build listing every one.
BOOST_AUTO_TEST_CASE(a_5000_revoke_job_builds_one_crl_and_reads_stay_fast_during_a_create_job) {
    test_server s([](app::config& cfg) { cfg.jobs.parallel_rows = 2; });
    auto c = s.client();
    const auto& op = s.tokens.operator_;
    auto probe = c.post_json("/api/client-certs", R"({"common_name":"probe","identifier":"probe"})", op);
    BOOST_TEST_REQUIRE(probe.status == 201u);
    temp_dir tmp;
    write_text(tmp / "probe.crt", str(obj(probe), "certificate"));
    write_text(tmp / "ca.crt", c.get("/api/client-certs/ca", op).body);
    auto req = run("openssl ocsp -issuer " + (tmp / "ca.crt").string() + " -cert " + (tmp / "probe.crt").string() +
                   " -no_nonce -reqout " + (tmp / "req.der").string());
    BOOST_TEST_REQUIRE(req.exit_code == 0, req.output);
    const std::string ocsp_req = read_text(tmp / "req.der");

    std::string csv = "common_name,cert_usage\n";
    for (int i = 1; i <= 5000; ++i) csv += "bulk-" + std::to_string(i) + ",vpn\n";
    auto r = post_csv(c, "/api/client-certs/batch", csv, op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    const std::string create_id = str(obj(r), "id");

    // Another client reads a certificate and asks OCSP while the job runs.
    std::vector<double> get_ms, ocsp_ms;
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::thread reader([&] {
        auto rc = s.client();
        while (!stop) {
            auto t0 = std::chrono::steady_clock::now();
            if (rc.get("/api/client-certs/probe", op).status != 200) ++failures;
            auto t1 = std::chrono::steady_clock::now();
            if (rc.request("POST", "/ocsp", ocsp_req, {{"Content-Type", "application/ocsp-request"}}).status != 200)
                ++failures;
            auto t2 = std::chrono::steady_clock::now();
            get_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            ocsp_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            std::this_thread::sleep_for(5ms); // a steady interactive client, not a flood
        }
    });
    const auto started = std::chrono::steady_clock::now();
    auto done = wait_job(c, op, create_id, 900s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stop = true;
    reader.join();
    BOOST_TEST(str(done, "state") == "succeeded");
    BOOST_TEST(num(done, "done") == 5000u);
    auto p99 = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[std::min(v.size() - 1, v.size() * 99 / 100)];
    };
    BOOST_TEST_MESSAGE("5000-certificate create job: " << secs << " s (" << 5000 / secs << "/s); during it, "
                                                       << get_ms.size() << " GET p99 " << p99(get_ms) << " ms, "
                                                       << ocsp_ms.size() << " OCSP p99 " << p99(ocsp_ms) << " ms");
    BOOST_TEST(failures == 0);
    BOOST_TEST(get_ms.size() > 10u);
    BOOST_TEST(p99(get_ms) < 1000.0); // loose: the figure is printed and recorded in BENCHMARKS.md
    BOOST_TEST(p99(ocsp_ms) < 1000.0);

    // Revoke all 5,000 by filter: one CRL build at the end, listing every one; OCSP says revoked.
    const auto builds_before = crl_builds(c, op);
    r = c.post_json("/api/client-certs/batch/revoke",
                    R"({"filter":{"usage":"vpn","search":"bulk-"},"reason":"cessationOfOperation"})", op);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    BOOST_TEST(num(obj(r), "total") == 5000u);
    done = wait_job(c, op, str(obj(r), "id"), 900s);
    BOOST_TEST(str(done, "state") == "succeeded");
    BOOST_TEST(num(done, "done") == 5000u);
    BOOST_TEST(crl_builds(c, op) - builds_before == 1u);
    write_text(tmp / "crl.der", c.get("/crl.der").body);
    auto crl = run("openssl crl -inform DER -in " + (tmp / "crl.der").string() + " -noout -text -CAfile " +
                   (tmp / "ca.crt").string());
    BOOST_TEST_REQUIRE(crl.exit_code == 0, crl.output.substr(0, 500));
    BOOST_TEST(has(crl.output, "verify OK"));
    BOOST_TEST(count_of(crl.output, "Serial Number:") == 5000u);
    BOOST_TEST(total_certs(c, op, "&status=revoked") == 5000u);
    BOOST_TEST(total_certs(c, op, "&status=active") == 1u); // the probe
}

// Acceptance 4: SIGKILL in the middle of a 2,000-certificate job; after the restart the job says
// interrupted with the count the store holds, a resume finishes it, nothing exists twice, and
// the audit chain verifies.
BOOST_AUTO_TEST_CASE(sigkill_during_a_job_then_resume_creates_nothing_twice) {
    temp_dir dir;
    const fs::path data = dir / "data";
    const fs::path conf = dir / "certmate.conf";
    const std::string token = "batch-kill-test-token-4f0c2a9d81e6b7305c";
    auto hash = run("printf %s " + token + " | sha256sum | cut -d' ' -f1");
    BOOST_TEST_REQUIRE(hash.exit_code == 0);
    write_text(conf, "[storage]\ndata_dir = " + data.string() +
                         "\n[ca]\nkey_type = ec-p256\n[issuance]\ndefault_key_type = ec-p256\n"
                         "[rate_limit]\ndefault = 0\ncreate = 0\nbatch = 0\n[jobs]\nparallel_rows = 2\n"
                         "[auth]\ntoken = admin:admin:" +
                         hash.output.substr(0, 64) + "\n");
    const std::string bin = certmate_binary();
    auto init = run(bin + " init -c " + conf.string());
    BOOST_TEST_REQUIRE(init.exit_code == 0, init.output);

    auto start = [&](const char* err) {
        auto p = std::make_unique<child_process>(
            std::vector<std::string>{bin, "serve", "-c", conf.string(), "--listen", "127.0.0.1:0"}, dir / err);
        auto line = p->wait_for_line("listening on http://", 30s);
        BOOST_REQUIRE_MESSAGE(line, read_text(dir / err));
        return std::make_pair(std::move(p), port_of_listen_line(*line));
    };
    std::string csv = "common_name\n";
    for (int i = 1; i <= 2000; ++i) csv += "k-" + std::to_string(i) + "\n";

    std::string id;
    {
        auto [proc, port] = start("serve1.err");
        http_client c(port);
        auto r = post_csv(c, "/api/client-certs/batch", csv, token);
        BOOST_TEST_REQUIRE(r.status == 202u, r.body);
        id = str(obj(r), "id");
        // Kill it somewhere in the middle.
        for (auto deadline = std::chrono::steady_clock::now() + 120s;;) {
            auto j = obj(c.get("/api/jobs/" + id, token));
            if (num(j, "done") >= 300) break;
            BOOST_REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(20ms);
        }
        proc->signal(SIGKILL);
        BOOST_TEST(proc->wait_exit(10s).has_value());
    }
    auto [proc, port] = start("serve2.err");
    http_client c(port);
    auto j = obj(c.get("/api/jobs/" + id, token));
    BOOST_TEST(str(j, "state") == "interrupted");
    const auto stored = total_certs(c, token);
    BOOST_TEST_MESSAGE("killed after " << stored << " of 2000 certificates");
    BOOST_TEST(num(j, "done") == stored);
    BOOST_TEST(stored < 2000u);
    BOOST_TEST(stored >= 300u);

    auto r = c.post_json("/api/jobs/" + id + "/resume", "", token);
    BOOST_TEST_REQUIRE(r.status == 202u, r.body);
    j = wait_job(c, token, id);
    BOOST_TEST(str(j, "state") == "succeeded");
    BOOST_TEST(num(j, "done") == 2000u);
    BOOST_TEST(num(j, "failed") == 0u);
    BOOST_TEST(total_certs(c, token) == 2000u);

    // No identifier, common name or serial twice.
    std::set<std::string> ids, cns, serials;
    for (std::size_t offset = 0; offset < 2000; offset += 1000) {
        auto page = obj(c.get("/api/client-certs?limit=1000&offset=" + std::to_string(offset), token));
        for (const auto& item : page.at("certificates").as_array()) {
            const auto& o = item.as_object();
            ids.insert(str(o, "identifier"));
            serials.insert(str(o, "serial_number"));
            cns.insert(str(o, "common_name"));
        }
    }
    BOOST_TEST(ids.size() == 2000u);
    BOOST_TEST(serials.size() == 2000u);
    BOOST_TEST(cns.size() == 2000u);
    proc->signal(SIGTERM);
    BOOST_TEST(proc->wait_exit(20s).value_or(-1) == 0);
    auto verify = run(bin + " audit verify --data-dir " + data.string());
    BOOST_TEST(verify.exit_code == 0, verify.output);
    const std::string audit = read_text(data / "logs/audit/certificate_audit.log");
    BOOST_TEST(count_of(audit, "\"operation\":\"batch_resume\"") == 1u);
}
