// The Debian package (docs/packaging.md), installed into the running system as an operator
// would: user, modes, conffile, enabled unit; an operator's config edit and the data survive an
// upgrade to a higher version, which restarts a running service; remove stops it and keeps
// config and data; purge removes both. Needs root, dpkg and cpack; skipped with a message
// otherwise. systemd is not running in CI containers: a stub `systemctl`/`deb-systemd-invoke`
// on PATH (and /run/systemd/system, made for the test) records what the maintainer scripts ask.
// Also: one version everywhere (CMake, `certmate version`, the package, /health).
#define BOOST_TEST_MODULE test_package
#include <boost/test/unit_test.hpp>

#include "support/http_server_fixture.hpp"
#include "support/json_checks.hpp"
#include "support/tools.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace certmate;
using namespace certmate::test;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    BOOST_REQUIRE_MESSAGE(::stat(p.c_str(), &st) == 0, p);
    return st.st_mode & 07777;
}

std::string owner_of(const fs::path& p) { return trim(run("stat -c %U:%G " + p.string()).output); }

// Why the package test cannot run here, or "" when it can.
std::string cannot_run() {
    if (::geteuid() != 0) return "not root";
    for (const char* tool : {"dpkg", "dpkg-deb", "cpack", "systemd-sysusers", "deb-systemd-helper"})
        if (run(std::string("command -v ") + tool).exit_code != 0) return std::string(tool) + " is missing";
    if (run("dpkg-query -W -f='${Status}' certmate 2>/dev/null | grep -q installed").exit_code == 0)
        return "a certmate package is installed on this machine already";
    return {};
}

} // namespace

BOOST_AUTO_TEST_CASE(one_version_everywhere) {
    auto v = run(certmate_binary() + " version");
    BOOST_TEST(trim(v.output) == std::string("certmate ") + CERTMATE_VERSION);
    test_server s;
    auto health = obj(s.client().get("/health"));
    BOOST_TEST(str(health, "version") == CERTMATE_VERSION);
    // docs/openapi.yaml's info.version is checked against the same project version by the
    // ctest test openapi_document.
}

BOOST_AUTO_TEST_CASE(install_upgrade_remove_purge) {
    if (auto why = cannot_run(); !why.empty()) {
        BOOST_TEST_MESSAGE("SKIPPED: the package test needs root, dpkg and cpack: " << why);
        return;
    }
    temp_dir dir;
    const fs::path build = fs::path(certmate_binary()).parent_path();
    auto pack = [&](const std::string& version) {
        const fs::path out = dir / version;
        auto r = run("cd " + build.string() + " && cpack -G DEB -B " + out.string() +
                     " -D CPACK_PACKAGE_VERSION=" + version + " 2>&1");
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        auto deb = out / ("certmate_" + version + "_" + trim(run("dpkg --print-architecture").output) + ".deb");
        BOOST_REQUIRE_MESSAGE(fs::exists(deb), "no " << deb << ": " << r.output);
        return deb;
    };
    const std::string v1 = CERTMATE_VERSION, v2 = std::string(CERTMATE_VERSION) + "+upgrade1";
    const fs::path deb1 = pack(v1), deb2 = pack(v2);

    // What an operator reads before installing: the layout, conffiles, scripts, and lintian.
    auto info = run("dpkg-deb -I " + deb1.string());
    BOOST_TEST(has(info.output, "conffiles"));
    BOOST_TEST(has(info.output, "postinst"));
    BOOST_TEST(has(info.output, "Recommends: openssl"));
    BOOST_TEST(has(info.output, "certmate ca backup"));
    BOOST_TEST(has(run("dpkg-deb --ctrl-tarfile " + deb1.string() + " | tar -xO ./conffiles").output,
                   "/etc/certmate/certmate.conf"));
    auto contents = run("dpkg-deb -c " + deb1.string());
    for (const char* f : {"./usr/bin/certmate", "./usr/lib/systemd/system/certmate.service",
                          "./usr/lib/sysusers.d/certmate.conf", "./etc/certmate/certmate.conf",
                          "./usr/share/doc/certmate/copyright", "./usr/share/doc/certmate/changelog.gz"})
        BOOST_TEST(has(contents.output, f), f);
    if (run("command -v lintian").exit_code == 0) {
        auto l = run("lintian --allow-root " + deb1.string() + " 2>&1");
        BOOST_TEST_MESSAGE("lintian: " << (l.output.empty() ? std::string("clean") : l.output));
        BOOST_TEST(!has(l.output, "E: "), l.output);
        BOOST_TEST(!has(l.output, "W: "), l.output);
    }

    // systemd stand-ins that record what the maintainer scripts ask of it.
    const fs::path stubs = dir / "stubs", calls = dir / "systemd-calls.log";
    fs::create_directories(stubs);
    for (const char* tool : {"systemctl", "deb-systemd-invoke"}) {
        write_text(stubs / tool,
                   "#!/bin/sh\necho \"" + std::string(tool) + " $*\" >> " + calls.string() + "\nexit 0\n");
        fs::permissions(stubs / tool, fs::perms(0755));
    }
    const bool made_run_dir = !fs::exists("/run/systemd/system");
    const std::string env = "PATH=" + stubs.string() + ":/usr/sbin:/usr/bin:/sbin:/bin ";
    struct cleanup {
        bool made;
        ~cleanup() {
            run("dpkg -P certmate >/dev/null 2>&1");
            if (made) fs::remove("/run/systemd/system");
        }
    } guard{made_run_dir};

    // Install: the user, the data dir (0700, certmate), the conffile, the unit enabled, not started.
    auto in = run("dpkg -i " + deb1.string() + " 2>&1");
    BOOST_TEST_REQUIRE(in.exit_code == 0, in.output);
    BOOST_TEST(run("getent passwd certmate").exit_code == 0);
    BOOST_TEST(mode_of("/var/lib/certmate") == 0700u);
    BOOST_TEST(owner_of("/var/lib/certmate") == "certmate:certmate");
    BOOST_TEST(mode_of("/etc/certmate/certmate.conf") == 0640u);
    BOOST_TEST(owner_of("/etc/certmate/certmate.conf") == "root:certmate");
    BOOST_TEST(fs::is_symlink("/etc/systemd/system/multi-user.target.wants/certmate.service"));
    BOOST_TEST(trim(run("dpkg-query -W -f='${Version}' certmate").output) == v1);
    BOOST_TEST(trim(run("/usr/bin/certmate version").output) == std::string("certmate ") + CERTMATE_VERSION);

    // The operator's day one: a CA in /var/lib/certmate, an edit to the config.
    auto init = run("runuser -u certmate -- /usr/bin/certmate init -c /etc/certmate/certmate.conf "
                    "--data-dir /var/lib/certmate --ca.key_type ec-p256 2>&1");
    BOOST_TEST_REQUIRE(init.exit_code == 0, init.output);
    const std::string ca_before = read_text("/var/lib/certmate/certs/ca/ca.crt");
    {
        std::ofstream conf("/etc/certmate/certmate.conf", std::ios::app);
        conf << "\n# operator edit: kept across upgrades\n";
    }
    const std::string conf_before = read_text("/etc/certmate/certmate.conf");

    // Upgrade to a higher version while "running": the edit and the data stay, the service restarts.
    fs::create_directories("/run/systemd/system");
    auto up = run(env + "dpkg -i " + deb2.string() + " 2>&1");
    BOOST_TEST_REQUIRE(up.exit_code == 0, up.output);
    BOOST_TEST(trim(run("dpkg-query -W -f='${Version}' certmate").output) == v2);
    BOOST_TEST(read_text("/etc/certmate/certmate.conf") == conf_before);
    BOOST_TEST(read_text("/var/lib/certmate/certs/ca/ca.crt") == ca_before);
    BOOST_TEST(has(read_text(calls), "systemctl --system daemon-reload"));
    BOOST_TEST(has(read_text(calls), "deb-systemd-invoke try-restart certmate.service"));
    auto verify = run("runuser -u certmate -- /usr/bin/certmate audit verify --data-dir /var/lib/certmate 2>&1");
    BOOST_TEST(verify.exit_code == 0, verify.output);

    // Remove: stopped; config and data kept. Purge: both gone, as the description says.
    auto rm = run(env + "dpkg -r certmate 2>&1");
    BOOST_TEST_REQUIRE(rm.exit_code == 0, rm.output);
    BOOST_TEST(has(read_text(calls), "deb-systemd-invoke stop certmate.service"));
    BOOST_TEST(!fs::exists("/usr/bin/certmate"));
    BOOST_TEST(fs::exists("/etc/certmate/certmate.conf"));
    BOOST_TEST(fs::exists("/var/lib/certmate/certs/ca/ca.crt"));
    auto purge = run(env + "dpkg -P certmate 2>&1");
    BOOST_TEST_REQUIRE(purge.exit_code == 0, purge.output);
    BOOST_TEST(has(purge.output, "purge removes /var/lib/certmate"));
    BOOST_TEST(!fs::exists("/var/lib/certmate"));
    BOOST_TEST(!fs::exists("/etc/certmate"));
}
