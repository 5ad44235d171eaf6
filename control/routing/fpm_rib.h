// FPM-learned routes into the RIB: which nimbus VRF a zebra route belongs to
// (its kernel table id: 254 = main = the default VRF, others by config) and
// which port its next hop leaves by (RTA_OIF is zebra's kernel ifindex in the
// concentrator's namespace: the host interface (TAP) of a DPDK port). A route
// whose table or interface nimbus does not know is counted and left out.
//
// Every FPM route becomes one RIB route of Source::Fpm: a gateway next hop
// (Gateway, resolved by the RIB against the port's connected subnets and the
// kernel's neighbours), an interface-only next hop (Glean) or a blackhole
// (Drop). With several next hops (RTA_MULTIPATH) the first is used: the FIB
// has one next hop per prefix.
//
// An update replaces the prefix's FPM route within one RIB batch, so the FIB
// moves from the old next hop to the new one without a miss in between.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/routing/fpm_server.h"
#include "control/routing/rib.h"

namespace nimbus::routing {

struct FpmRibMap {
    std::map<uint32_t, int> table_vrf;           // kernel table -> nimbus VRF
    std::function<int(uint32_t ifindex)> port_of;  // host interface -> port, -1 if not ours
};

struct FpmRibCounters {
    uint64_t upserts = 0;           // FPM routes put into the RIB
    uint64_t removes = 0;           // ... taken out
    uint64_t unmapped_table = 0;    // table with no VRF
    uint64_t foreign_interface = 0; // next hop on an interface that is no port of ours
    uint64_t multipath_trimmed = 0; // ECMP routes reduced to their first next hop
};

// The RIB form of an FPM route, or nullopt with *why (and a counter bumped).
std::optional<std::pair<int, Route>> fpm_to_rib(const fpm::RouteEvent& ev, const FpmRibMap& map,
                                                FpmRibCounters& c, std::string* why);

// Applies FpmServer changes to the RIB (the caller commits).
void apply_fpm_changes(Rib& rib, const FpmRibMap& map, const std::vector<FibChange>& changes,
                       FpmRibCounters& c);

}  // namespace nimbus::routing
