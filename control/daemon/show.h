// Registration of the daemon-level commands (interfaces, counters, version)
// and of each feature's commands.
#pragma once

#include "control/mgmt/commands.h"

namespace nimbus {
class Daemon;
namespace show {
void register_all(mgmt::Registry& reg, Daemon& d);
}
}  // namespace nimbus
