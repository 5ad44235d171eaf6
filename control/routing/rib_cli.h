// `show ip route`, `show ipv6 route`: the RIB as an operator sees it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/mgmt/commands.h"
#include "control/routing/rib.h"

namespace nimbus::routing {

struct RibCliContext {
    Rib* rib = nullptr;
    std::vector<std::string> vrf_names;   // index = VRF id
    std::vector<std::string> port_names;  // index = port
    std::function<std::string(uint32_t)> tunnel_name;  // dataplane tunnel id -> name
};

void register_commands(mgmt::Registry& reg, RibCliContext ctx);

}  // namespace nimbus::routing
