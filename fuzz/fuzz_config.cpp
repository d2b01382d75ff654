// The config file parser (app/config.hpp load_config, certmate.conf.example): the bytes written to
// a scratch file and loaded, then turned into the server's options. A bad file is an
// error_exception naming the key; any other exception escapes and libFuzzer reports it.
#include "app/config.hpp"
#include "app/server_options.hpp"
#include "support/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace certmate;
    const auto file = fuzz::write_scratch("certmate.conf", fuzz::as_text(data, size));
    try {
        const auto cfg = app::load_config(file, {});
        (void)app::server_options_from(cfg);
    } catch (const error_exception&) {}
    return 0;
}
