// `show ha`: the HA pair as an operator sees it (registered next to the
// feature, like every show command).
#pragma once

#include <functional>

#include "control/ha/ha_daemon.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"

namespace nimbus::ha {

// `get` returns the running HaDaemon or nullptr when no `ha:` is configured.
void register_commands(mgmt::Registry& reg, std::function<const HaDaemon*()> get);

// Prometheus series of the HA pair (nimbus_ha_*), per instance.
void write_metrics(const HaDaemon& d, mgmt::MetricsWriter& w);

}  // namespace nimbus::ha
