#include "app/systemd.hpp"

#include <string>

#ifdef CERTMATE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace certmate::app::systemd {

namespace {
void send(const std::string& state) {
#ifdef CERTMATE_HAVE_SYSTEMD
    sd_notify(0, state.c_str());
#else
    (void)state;
#endif
}
} // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }
void notify_reloading() { send("RELOADING=1"); }
void notify_stopping() { send("STOPPING=1"); }
void notify_watchdog() { send("WATCHDOG=1"); }
void notify_status(std::string_view status) { send("STATUS=" + std::string(status)); }

std::optional<std::chrono::microseconds> watchdog_interval() {
#ifdef CERTMATE_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
#endif
    return std::nullopt;
}

} // namespace certmate::app::systemd
