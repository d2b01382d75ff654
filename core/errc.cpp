#include "core/errc.hpp"

namespace certmate {

namespace {
struct category final : std::error_category {
    const char* name() const noexcept override { return "certmate"; }
    std::string message(int ev) const override { return std::string(errc_name(static_cast<errc>(ev))); }
};
} // namespace

const std::error_category& certmate_category() noexcept {
    static const category c;
    return c;
}

std::string_view errc_name(errc e) noexcept {
    switch (e) {
    case errc::ok: return "OK";
    case errc::invalid_argument: return "INVALID_ARGUMENT";
    case errc::invalid_identifier: return "INVALID_IDENTIFIER";
    case errc::invalid_csr: return "INVALID_CSR";
    case errc::unsupported_key: return "UNSUPPORTED_KEY";
    case errc::not_found: return "NOT_FOUND";
    case errc::already_exists: return "ALREADY_EXISTS";
    case errc::already_revoked: return "ALREADY_REVOKED";
    case errc::not_on_hold: return "NOT_ON_HOLD";
    case errc::conflict: return "CONFLICT";
    case errc::no_private_key: return "NO_PRIVATE_KEY";
    case errc::ca_missing: return "CA_MISSING";
    case errc::ca_mismatch: return "CA_MISMATCH";
    case errc::bad_passphrase: return "BAD_PASSPHRASE";
    case errc::storage_failure: return "STORAGE_FAILURE";
    case errc::audit_unavailable: return "AUDIT_UNAVAILABLE";
    case errc::busy: return "BUSY";
    case errc::crypto_failure: return "CRYPTO_FAILURE";
    case errc::unauthorized: return "UNAUTHORIZED";
    case errc::forbidden: return "FORBIDDEN";
    case errc::rate_limited: return "RATE_LIMITED";
    case errc::internal: return "INTERNAL";
    }
    return "INTERNAL";
}

void throw_exception_from_error(const error& e, const boost::source_location&) { throw error_exception(e); }

} // namespace certmate
