// Steps the service suites share (test_service on the in-memory ports, test_storage on the
// filesystem store): create a certificate as an operator would, build the CRL now, verify with openssl.
// Include after <boost/test/unit_test.hpp> (they assert with BOOST_REQUIRE).
#pragma once

#include "core/service.hpp"
#include "support/tools.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <memory>
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

// `openssl verify` of `cert` against `ca` (and `crl` when given): its output.
inline std::string openssl_verify(const std::filesystem::path& ca, const std::filesystem::path& cert,
                                  const std::filesystem::path* crl = nullptr) {
    std::string cmd = "openssl verify -CAfile " + ca.string();
    if (crl) cmd += " -crl_check -CRLfile " + crl->string();
    return run(cmd + " " + cert.string()).output;
}

} // namespace certmate::test
