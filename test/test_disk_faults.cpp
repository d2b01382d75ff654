// Disk faults under the real server (issue 14): the data dir on a small tmpfs the test mounts.
// When it is full, turns read-only, or fails writes with EIO (storage::write_fault_hook):
// mutations get 503 with a clear error, reads and OCSP keep answering, /health says degraded,
// nothing is half-written; when the fault goes away everything works again without a restart.
// Needs root (mount); skipped with a message otherwise.
#define BOOST_TEST_MODULE test_disk_faults
#include <boost/test/unit_test.hpp>

#include "storage/atomic_file.hpp"
#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

using namespace certmate;
using namespace certmate::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A tmpfs of `size` at a fresh directory, unmounted at the end.
struct small_disk {
    temp_dir dir;
    bool mounted = false;
    explicit small_disk(const std::string& size) {
        mounted = ::geteuid() == 0 &&
                  run("mount -t tmpfs -o size=" + size + ",mode=0700 tmpfs " + dir.path().string()).exit_code == 0;
    }
    ~small_disk() {
        if (mounted) run("umount -l " + dir.path().string());
    }
    fs::path path() const { return dir.path(); }
};

// Fills the disk with a file until writes fail with ENOSPC.
void fill(const fs::path& file) { run("dd if=/dev/zero of=" + file.string() + " bs=64k status=none 2>/dev/null"); }

std::size_t temp_files_under(const fs::path& root) {
    std::size_t n = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (has(name, ".tmp") || name.rfind(".new-", 0) == 0 || name.rfind(".old-", 0) == 0) ++n;
    }
    return n;
}

struct faulty_server {
    small_disk disk{"8m"};
    std::unique_ptr<test_server> s;
    std::string op, admin;
    std::string ocsp_req;
    faulty_server() {
        if (!disk.mounted) return;
        s = std::make_unique<test_server>([&](app::config& cfg) { cfg.data_dir = disk.path() / "data"; });
        op = s->tokens.operator_;
        admin = s->tokens.admin;
        auto c = s->client();
        auto a = c.post_json("/api/client-certs", R"({"common_name":"a","identifier":"a"})", op);
        BOOST_REQUIRE(a.status == 201u);
        temp_dir t;
        write_text(t / "a.crt", str(obj(a), "certificate"));
        write_text(t / "ca.crt", c.get("/api/client-certs/ca", op).body);
        auto r = run("openssl ocsp -issuer " + (t / "ca.crt").string() + " -cert " + (t / "a.crt").string() +
                     " -no_nonce -reqout " + (t / "req.der").string());
        BOOST_REQUIRE(r.exit_code == 0);
        ocsp_req = read_text(t / "req.der");
    }
    fs::path data() const { return s->config().data_dir; }

    // While the fault lasts: what must and must not work.
    void expect_refused_but_readable(const std::string& fault) {
        BOOST_TEST_CONTEXT(fault) {
            auto c = s->client();
            auto r = c.post_json("/api/client-certs", R"({"common_name":"b","identifier":"b"})", op);
            BOOST_TEST(r.status == 503u, r.body);
            const auto code = str(obj(r), "code");
            BOOST_TEST((code == "STORAGE_UNAVAILABLE" || code == "AUDIT_UNAVAILABLE"), code);
            BOOST_TEST(has(str(obj(r), "message"), "nothing was changed"), r.body);
            BOOST_TEST(c.post_json("/api/client-certs/a/revoke", "{}", op).status == 503u);
            BOOST_TEST(c.get("/api/client-certs/a", op).status == 200u);
            BOOST_TEST(c.get("/api/client-certs?limit=5", op).status == 200u);
            auto o = c.request("POST", "/ocsp", ocsp_req, {{"Content-Type", "application/ocsp-request"}});
            BOOST_TEST(o.status == 200u);
            BOOST_TEST(o.header("content-type") == "application/ocsp-response");
            BOOST_TEST(c.get("/crl.der").status == 200u);
            auto h = c.get("/health");
            BOOST_TEST(h.status == 503u, h.body);
            BOOST_TEST(str(obj(h), "status") == "degraded");
            // Nothing half-written: no certificate b, no temp files, a still active.
            BOOST_TEST(!fs::exists(data() / "certs/client/api-mtls/b"));
            BOOST_TEST(temp_files_under(data()) == 0u);
            BOOST_TEST(!obj(c.get("/api/client-certs/a", op)).at("revocation").as_object().at("revoked").as_bool());
        }
    }

    // After the fault: a create works again (the audit log retries by itself), /health is ok, the
    // audit chain verifies.
    void expect_recovered(const std::string& fault, const std::string& id) {
        BOOST_TEST_CONTEXT(fault) {
            auto c = s->client();
            BOOST_TEST(eventually([&] {
                return c.post_json("/api/client-certs", R"({"common_name":")" + id + R"(","identifier":")" + id + "\"}",
                                   op)
                           .status == 201u;
            }));
            BOOST_TEST(eventually([&] { return c.get("/health").status == 200u; }));
            auto v = c.get("/api/audit/verify", admin);
            BOOST_TEST(v.status == 200u, v.body);
            BOOST_TEST(obj(v).at("ok").as_bool(), v.body);
        }
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_full_disk_refuses_mutations_keeps_reads_and_recovers_without_restart) {
    faulty_server f;
    if (!f.disk.mounted) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    }
    fill(f.disk.path() / "filler");
    f.expect_refused_but_readable("full");
    fs::remove(f.disk.path() / "filler");
    f.expect_recovered("full", "after-full");
}

BOOST_AUTO_TEST_CASE(eio_on_certificate_writes_refuses_mutations_and_recovers) {
    faulty_server f;
    if (!f.disk.mounted) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    }
    // The audit log still writes: the create is audited, fails at the store, and is rolled back.
    storage::write_fault_hook = [](const fs::path& p) { return has(p.string(), "/certs/client/") ? EIO : 0; };
    auto c = f.s->client();
    auto r = c.post_json("/api/client-certs", R"({"common_name":"b","identifier":"b"})", f.op);
    BOOST_TEST(r.status == 503u, r.body);
    BOOST_TEST(str(obj(r), "code") == "STORAGE_UNAVAILABLE");
    BOOST_TEST(has(str(obj(r), "message"), "Input/output error"), r.body);
    BOOST_TEST(c.get("/api/client-certs/b", f.op).status == 404u);
    BOOST_TEST(!fs::exists(f.data() / "certs/client/api-mtls/b"));
    BOOST_TEST(temp_files_under(f.data()) == 0u);
    auto h = c.get("/health");
    BOOST_TEST(h.status == 503u, h.body);
    BOOST_TEST(has(h.body, "the last certificate write failed"), h.body);
    BOOST_TEST(c.get("/api/client-certs/a", f.op).status == 200u);
    const std::string audit = read_text(f.data() / "logs/audit/certificate_audit.log");
    BOOST_TEST(has(audit, R"("rolled_back":true)"));
    storage::write_fault_hook = nullptr;
    f.expect_recovered("eio", "after-eio");
}

BOOST_AUTO_TEST_CASE(a_read_only_data_dir_refuses_mutations_and_recovers_when_writable_again) {
    faulty_server f;
    if (!f.disk.mounted) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    }
    // A bind mount of the data dir over itself, remounted read-only: the data dir alone turns ro.
    const auto d = f.data().string();
    BOOST_TEST_REQUIRE(run("mount --bind " + d + " " + d).exit_code == 0);
    auto ro = run("mount -o remount,bind,ro " + d + " 2>&1");
    if (ro.exit_code != 0) {
        run("umount " + d);
        BOOST_TEST_MESSAGE("SKIPPED read-only: the kernel refuses a read-only remount here: " << ro.output);
        return;
    }
    f.expect_refused_but_readable("read-only");
    BOOST_TEST_REQUIRE(run("mount -o remount,bind,rw " + d).exit_code == 0);
    f.expect_recovered("read-only", "after-ro");
    run("umount " + d);
}
