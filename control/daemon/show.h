// Registration of the daemon-level commands (interfaces, counters, version)
// and of each feature's commands.
#pragma once

#include "control/mgmt/commands.h"

namespace nimbus {
class Daemon;
namespace show {
void register_all(mgmt::Registry& reg, Daemon& d);
void register_ops(mgmt::Registry& reg, Daemon& d);
void register_capture(mgmt::Registry& reg, Daemon& d);
void register_alarms(mgmt::Registry& reg, Daemon& d);
nlohmann::json status_json(Daemon& d, const mgmt::Registry& reg);
}
}  // namespace nimbus
