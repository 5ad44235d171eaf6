// The `routing:` section: how nimbusd talks to FRRouting (ZAPI injection of
// site prefixes into zebra, FPM learning of FRR's selected routes) and the
// policy around it (tags, metric, distance, per-site limits, what is offered
// to sites). Read by read_routing() in routing.cpp; see conf/frr/ for the FRR
// side and control/routing/ for what uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::config {

struct Config;
class MapReader;

// Where an entry came from in the file; never makes two configs differ.
struct RoutingPos {
    int line = 0, col = 0;
    bool operator==(const RoutingPos&) const { return true; }
};

// Per-cloud injection policy and what the cloud offers to its sites. A cloud
// is a nimbus VRF: its tunnels' routes carry its tag; FPM routes of FRR
// kernel table `table` are learned into it.
struct RoutingCloud {
    std::string name;
    std::string vrf = "default";
    std::optional<uint32_t> tag, metric;
    std::optional<uint8_t> distance;
    std::optional<uint32_t> table;  // FRR/kernel table whose FPM routes go into `vrf`
    std::vector<Prefix> advertise;  // offered to sites as the concentrator's selectors
    bool advertise_bgp = false;     // ... plus what FRR learned over BGP in this VRF
    RoutingPos where;
    bool operator==(const RoutingCloud&) const = default;
};

// Per-site overrides, by site (tunnel) name.
struct RoutingSite {
    std::string name;
    std::optional<uint32_t> tag, metric;
    std::optional<uint8_t> distance;
    std::optional<uint32_t> max_prefixes;
    RoutingPos where;
    bool operator==(const RoutingSite&) const = default;
};

// Kernel routes for tunnel prefixes so the box's own traffic to sites goes
// out of a host interface into the dataplane rather than into zebra's
// blackhole (see control/routing/host_routes.h).
struct HostRoutes {
    bool enabled = true;
    uint32_t table = 250;     // a kernel table zebra does not select from
    uint32_t priority = 1000;  // `ip rule` preference, before main (32766)
    std::string port;         // host interface to send on; "" = first port of the VRF
    bool operator==(const HostRoutes&) const = default;
};

struct Routing {
    std::string zebra;                  // zserv socket path; "" = no injection
    std::optional<IpAddr> fpm_addr;     // FPM listen address; absent = no learning
    uint16_t fpm_port = 2620;
    std::string route_type = "nhrp";    // ZAPI route type we inject as
    uint16_t instance = 0;
    uint32_t tag = 0, metric = 0;
    uint8_t distance = 0;               // 0: zebra's default for the route type
    uint32_t max_prefixes_per_site = 1000;
    std::string frr_version;            // optional version guard ("8.4.4")
    uint32_t graceful_restart = 0;      // seconds zebra keeps our routes when we go; 0 = off
    uint32_t zapi_batch = 256;          // route messages per control-loop turn
    uint32_t fpm_replay_quiet_ms = 3000;
    // After zebra (re)connects, learned routes it has not replayed stay at
    // least this long (FRR re-learning BGP after a restart), then are swept.
    uint32_t fpm_replay_hold_ms = 10000;
    HostRoutes host_routes;
    std::vector<RoutingCloud> clouds;
    std::vector<RoutingSite> sites;

    const RoutingCloud* cloud_for_vrf(const std::string& vrf) const;
    const RoutingSite* site(const std::string& name) const;
    // FRR kernel table -> nimbus VRF name, for FPM: 254 (main) is the
    // default VRF unless a cloud maps it elsewhere.
    std::vector<std::pair<uint32_t, std::string>> fpm_tables() const;
    bool operator==(const Routing&) const = default;
};

// Route types nimbus may inject as (each needs `redistribute <type>` in bgpd).
inline constexpr const char* kInjectRouteTypes[] = {"nhrp",  "static", "table",     "sharp",
                                                    "eigrp", "babel",  "openfabric"};

// Reads `routing:` (if present) into c.routing; called once from parse().
void read_routing(MapReader& top, Config& c);

}  // namespace nimbus::config
