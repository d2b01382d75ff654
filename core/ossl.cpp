#include "core/ossl.hpp"

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <climits>

namespace certmate::ossl {

std::string drain_errors() {
    std::string out;
    unsigned long e = 0;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

error fail(errc code, std::string what) {
    auto queue = drain_errors();
    if (!queue.empty()) spdlog::debug("openssl: {}: {}", what, queue);
    return make_error(code, std::move(what));
}

std::string bio_to_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

bio mem_bio(std::string_view data) {
    // A negative length makes BIO_new_mem_buf take strlen() of data, which has no NUL.
    if (data.size() > static_cast<std::size_t>(INT_MAX)) return bio();
    return bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

} // namespace certmate::ossl
