#include "control/ha/ha_cli.h"

#include "src/common/clock.h"

namespace nimbus::ha {

void register_commands(mgmt::Registry& reg, std::function<const HaDaemon*()> get) {
    reg.add("show ha", "HA pair: state per VRRP instance, priorities, master, last transition, adverts, errors",
            [get](const mgmt::Args&) {
                const HaDaemon* d = get();
                if (!d) return mgmt::Result::error("% HA is not configured (no 'ha:' section)");
                Time now = mono_ns();
                return mgmt::Result{0, d->status_text(now), d->status_json(now)};
            });
}

}  // namespace nimbus::ha
