// The CSV reader of batch uploads (core/csv.hpp): any bytes either parse into records or give
// errc::invalid_argument; never a crash, and records come in line order.
#include "core/csv.hpp"
#include "support/fuzz_support.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace certmate;
    auto records = parse_csv(fuzz::as_text(data, size), 1000);
    if (!records) {
        if (records.error().code != errc::invalid_argument) std::abort();
        return 0;
    }
    std::size_t line = 0;
    for (const auto& r : *records) {
        if (r.line < line || r.line == 0 || r.line > size + 1) std::abort();
        line = r.line;
    }
    if (records->size() > 1000) std::abort();
    return 0;
}
