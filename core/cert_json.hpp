// metadata.json <-> cert_record. The same object is what the API returns for a certificate.
// Thread-safety: free functions.
#pragma once

#include "core/cert_record.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace certmate {

// Every field of the Python CertMate's metadata.json ("type": "client_certificate", identifier, common_name, email,
// organization, organizational_unit, country, state, locality, serial_number (string),
// key_usage, extended_key_usage, created_at, expires_at, cert_usage, notes,
// revocation{revoked, revoked_at, reason_revoked, reason}, renewal{renewal_enabled,
// renewal_threshold_days, last_renewed_at}) plus not_before, fingerprint_sha256, key_type,
// subject_alt_names{dns,email,ip,uri}, api_role (null when none), history[], has_private_key.
// Times are RFC 3339 UTC strings or null.
boost::json::object to_json(const cert_record& r);
// errc::invalid_argument naming the field for anything missing or mistyped.
result<cert_record> record_from_json(const boost::json::value& v);

boost::json::object to_json(const subject_alt_names& s);

// Appends the text boost::json::serialize gives for to_json(r) with "status" and then
// "certificate" added at its end (each only when not empty) — the certificate as the API shows it —
// written straight into `out` without building the tree: the list answers 50-1,000 of these
// (docs/api.md "Listing certificates"). test_cert_json compares the two byte for byte.
void append_json(std::string& out, const cert_record& r, std::string_view status = {},
                 std::string_view certificate_pem = {});

} // namespace certmate
