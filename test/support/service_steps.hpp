// Steps the service suites share (test_service on the in-memory ports, test_storage on the
// filesystem store): create a certificate as an operator would, build the CRL now, verify with openssl.
// Include after <boost/test/unit_test.hpp> (they assert with BOOST_REQUIRE).
#pragma once

#include "core/service.hpp"
#include "support/tools.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace certmate::test {

// A certificate for `id` (CN and email id@example.com, O=ACME Corp), required to succeed.
inline cert_view create_certificate(cert_service& svc, const std::string& id, cert_usage usage = cert_usage::api_mtls) {
    create_request r;
    r.identifier = id;
    r.subject.common_name = id + "@example.com";
    r.subject.email = id + "@example.com";
    r.subject.organization = "ACME Corp";
    r.usage = usage;
    auto v = run_sync(svc.stage_create(r, system_principal("tester", "127.0.0.1")));
    BOOST_REQUIRE_MESSAGE(v.has_value(), "create " + id + " failed: " + (v ? "" : v.error().message));
    return *v;
}

// Builds and commits a CRL on this thread (the strand's steps run in a row), required to succeed.
inline std::shared_ptr<const built_crl> build_crl_now(cert_service& svc, bool force = true) {
    auto st = svc.stage_crl_build(force);
    BOOST_REQUIRE(st);
    auto r = st->commit(st->work());
    BOOST_REQUIRE(r);
    return *r;
}

// `openssl verify` of `cert` against `ca` (and `crl` when given): its output. `at`: the time to
// verify at (a test's own clock), so that a CRL made on a fixed date does not expire under the test.
inline std::string openssl_verify(const std::filesystem::path& ca, const std::filesystem::path& cert,
                                  const std::filesystem::path* crl = nullptr,
                                  std::optional<std::chrono::system_clock::time_point> at = std::nullopt) {
    std::string cmd = "openssl verify -CAfile " + ca.string();
    if (at)
        cmd += " -attime " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(at->time_since_epoch()).count());
    if (crl) cmd += " -crl_check -CRLfile " + crl->string();
    return run(cmd + " " + cert.string()).output;
}

} // namespace certmate::test
