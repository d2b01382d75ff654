// OCSP request parsing (core/ocsp.hpp): the bytes as a DER OCSPRequest (POST /ocsp) and as the
// base64 path of GET /ocsp/<...> (RFC 6960 A.1), decoded and then parsed. Errors are
// errc::invalid_argument; a parsed request has at least one query.
#include "core/ocsp.hpp"
#include "support/fuzz_support.hpp"

#include <cstdlib>

namespace {

void parse(std::string_view der) {
    using namespace certmate;
    auto r = parse_ocsp_request(der, *fuzz::shared_ca());
    if (!r) {
        if (r.error().code != errc::invalid_argument) std::abort();
        return;
    }
    if (r->queries.empty() || r->der != der) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = certmate::fuzz::as_text(data, size);
    parse(bytes);
    if (auto der = certmate::decode_ocsp_get_path(bytes)) parse(*der);
    return 0;
}
