// The firewall in nimbusd: publishes the `firewall:` config to the
// dataplane (one rule set per VRF, dataplane/acl), `show firewall`, and
// the firewall's metrics.
#pragma once

#include <string>

#include "control/config/config.h"
#include "control/firewall/policy.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"

namespace nimbus::firewall {

class Firewall {
public:
    // Publishes cfg's rules: VRFs whose rules changed get the new ones at
    // once, VRFs that lost their entry none; the others are not touched
    // (their flows and counters stay). On failure nothing changed.
    bool apply(const config::Config& cfg, std::string* err);
    // `show firewall [vrf VRF]`, `clear firewall counters [vrf VRF]`; cfg
    // is the running config (a reference that stays valid).
    void register_commands(mgmt::Registry& reg, const config::Config& cfg);
    void register_metrics(mgmt::Metrics& m, const config::Config& cfg);

    // A rule's counters since it was added (packets, bytes), or since
    // `clear firewall counters`.
    dp::FwCounter counter(uint32_t slot, bool since_clear = false) const;

private:
    void register_clear(mgmt::Registry& reg, const config::Config& cfg);
    Slots slots_;
};

}  // namespace nimbus::firewall
