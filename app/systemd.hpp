// sd_notify(3) for Type=notify units: READY, RELOADING, STOPPING, WATCHDOG, STATUS. Every call is
// a no-op when NOTIFY_SOCKET is unset (not run by systemd). Thread-safety: safe from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace certmate::app::systemd {

void notify_ready(std::string_view status);
void notify_reloading();
void notify_stopping();
void notify_watchdog();
void notify_status(std::string_view status);
// The interval at which WATCHDOG=1 must be sent (WatchdogSec), if the watchdog is on.
std::optional<std::chrono::microseconds> watchdog_interval();

} // namespace certmate::app::systemd
