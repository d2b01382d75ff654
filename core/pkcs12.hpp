// PKCS#12 bundles: certificate + key + CA chain, AES-256-CBC with PBKDF2 and a SHA-256 MAC.
#pragma once

#include "core/errc.hpp"

#include <string>
#include <string_view>

namespace certmate {

// DER PKCS#12. errc::invalid_argument (field "password") when the password has fewer than 8 characters.
result<std::string> build_pkcs12(std::string_view cert_pem, std::string_view key_pem, std::string_view ca_cert_pem,
                                 std::string_view password, std::string_view friendly_name);

} // namespace certmate
