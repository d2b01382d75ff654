// Error codes of the certificate engine and the result type every fallible call returns.
// Thread-safety: plain values. The one mapping to HTTP lives in net/, not here.
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace certmate {

enum class errc {
    ok = 0,
    invalid_argument,   // a request field is wrong (field names it)
    invalid_identifier, // identifier fails [A-Za-z0-9][A-Za-z0-9._-]{0,63}
    invalid_csr,        // not PEM, bad signature, unparsable
    unsupported_key,    // key type or size not allowed
    not_found,
    already_exists,  // identifier taken
    already_revoked, // second revoke (409)
    not_on_hold,     // unhold of a cert not on hold (409)
    conflict,        // another operation on the same certificate is in flight, or the state forbids it (409)
    no_private_key,  // CSR-issued certificate: no key is held
    ca_missing,
    ca_mismatch, // restore onto a different CA without --force
    bad_passphrase,
    storage_failure,
    audit_unavailable, // audit log cannot be written: mutations refused (fail closed)
    crypto_failure,
    unauthorized,
    forbidden,
    rate_limited,
    busy, // a queue is full: try again later (503)
    internal,
};

const std::error_category& certmate_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), certmate_category()}; }

// Stable upper-case name ("NOT_FOUND"), used as the JSON `code`.
std::string_view errc_name(errc e) noexcept;

// An error with a message safe to show to a client and, when one field is to blame, its name.
struct error {
    errc code = errc::internal;
    std::string message;
    std::string field;
};

inline error make_error(errc code, std::string message, std::string field = {}) {
    return error{code, std::move(message), std::move(field)};
}

[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

// Thrown by the few call sites that prefer exceptions (CLI); carries the error.
struct error_exception : std::runtime_error {
    explicit error_exception(error e) : std::runtime_error(e.message), err(std::move(e)) {}
    error err;
};

} // namespace certmate

template <>
struct std::is_error_code_enum<certmate::errc> : std::true_type {};
