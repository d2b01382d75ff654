// CSR validation and the client profile (core/csr.hpp, core/issue.hpp): the bytes as a PEM CSR
// (parse_csr verifies it), its subject and SANs checked by validate_issue_request under the
// default policy for each usage, and, when valid, signed by the CA with the profile
// (issue_certificate), whose result must carry the profile's extensions.
#include "core/csr.hpp"
#include "core/issue.hpp"
#include "support/fuzz_support.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace certmate;
    auto csr = parse_csr(fuzz::as_text(data, size));
    if (!csr) {
        const auto c = csr.error().code;
        if (c != errc::invalid_csr && c != errc::unsupported_key) std::abort();
        return 0;
    }
    const issuance_policy policy;
    const time_point now = std::chrono::sys_days{std::chrono::year{2026} / 6 / 1};
    bool signed_once = false;
    for (auto usage : {cert_usage::api_mtls, cert_usage::vpn, cert_usage::other}) {
        issue_request req;
        req.subject = csr->subject;
        req.sans = csr->sans;
        req.usage = usage;
        if (usage != cert_usage::api_mtls) req.extra_eku = {"emailProtection"};
        req.serial_decimal = "4242";
        if (!validate_issue_request(req, policy)) continue;
        if (signed_once) continue; // one signature per input: the profile is the same
        signed_once = true;
        auto issued = issue_certificate(*fuzz::shared_ca(), csr->public_key.get(), req, policy, now);
        if (!issued) continue; // e.g. a subject the CA refuses to encode: an error, not a crash
        if (issued->extended_key_usage.empty() || issued->key_usage.empty() || issued->der.empty()) std::abort();
    }
    return 0;
}
