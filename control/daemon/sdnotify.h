// systemd readiness and watchdog notifications ($NOTIFY_SOCKET), without
// libsystemd: one datagram per message (sd_notify(3) protocol).
#pragma once

#include <cstdint>
#include <string>

namespace nimbus {

// Sends "READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."; false if not
// under systemd or the send failed.
bool sd_notify_msg(const std::string& msg);
// The watchdog period systemd asked for ($WATCHDOG_USEC for our pid), 0 if none.
uint64_t sd_watchdog_usec();

}  // namespace nimbus
