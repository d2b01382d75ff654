#include "support/sample_records.hpp"

#include <cstdio>

namespace certmate::test {

using namespace std::chrono_literals;

const time_point sample_t0 = std::chrono::sys_days{std::chrono::year{2025} / 1 / 1} + 12h;

cert_record make_record(int i) {
    cert_record r;
    char id[32];
    std::snprintf(id, sizeof id, "cert-%05d", i);
    r.identifier = id;
    r.subject = {"user" + std::to_string(i) + "@example.com",
                 "user" + std::to_string(i) + "@example.com",
                 i % 2 ? "ACME Corp" : "Globex",
                 "Engineering",
                 "US",
                 "California",
                 "San Francisco"};
    r.serial_number = std::to_string(12345678901234567890ull - static_cast<unsigned long long>(i) * 7919);
    r.key_usage = {"digitalSignature", "keyEncipherment"};
    r.extended_key_usage = {"clientAuth"};
    r.created_at = sample_t0 + i * 1h;
    r.not_before = r.created_at - 5min;
    r.expires_at = r.created_at + 365 * 24h;
    r.usage = all_usages[static_cast<std::size_t>(i % 3)];
    r.notes = i % 5 ? "" : "note \"quoted\" é\n";
    r.renewal.renewal_threshold_days = 30 + i % 7;
    r.fingerprint_sha256 = std::string(64, "0123456789abcdef"[i % 16]);
    r.key_type = i % 2 ? "ec-p256" : "rsa2048";
    if (i % 4 == 0) r.sans.dns = {"host" + std::to_string(i) + ".example.com"};
    if (i % 6 == 0) r.sans.ip = {"10.0.0." + std::to_string(i % 250)};
    if (i % 10 == 0) r.role = api_role::operator_;
    if (i % 11 == 0) {
        r.revocation.revoked = true;
        r.revocation.revoked_at = r.created_at + 24h;
        r.revocation.reason = i % 22 ? revocation_reason::key_compromise : revocation_reason::certificate_hold;
    }
    if (i % 13 == 0) {
        r.history.push_back({"99" + std::to_string(i), r.created_at - 400 * 24h, r.created_at - 35 * 24h,
                             std::string(64, 'a'), r.created_at, i % 26 == 0});
        r.renewal.last_renewed_at = r.created_at;
    }
    r.has_private_key = i % 3 != 1;
    return r;
}

} // namespace certmate::test
