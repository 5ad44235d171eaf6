// What applying a new config to a running one means: the operations a
// transaction performs, section by section, touching only what changed.
// Pure (no side effects): the daemon executes a Plan step by step and undoes
// the completed steps in reverse order if a later one fails.
#pragma once

#include <string>
#include <vector>

#include "control/config/config.h"

namespace nimbus::config {

struct Plan {
    // Sections that changed but cannot change under a running dataplane
    // (node, dataplane, mgmt, vrfs, ports): the apply is refused.
    std::vector<std::string> restart;

    // routes: exactly the routes that differ.
    std::vector<Route> routes_del, routes_add;
    // manual_sas: a changed tunnel is removed and installed again; the
    // others keep their SAs, counters and uptime.
    std::vector<std::string> tunnels_del, tunnels_add;
    // clouds/ike/initiate: the IKE engine takes the new policy as a whole
    // (it keeps established SAs and closes only those of removed sites).
    bool ike = false;
    std::vector<std::string> ike_changes;  // readable: "cloud corp: site + CN=store-2"
    // firewall: the VRFs whose rules changed get their new rules at once
    // (other VRFs' counters and flows stay; a rule kept keeps its counters).
    std::vector<std::string> firewall;  // readable: "vrf corp: egress + lan-out"
    // routing (FRR) and ha are restarted as a unit when they changed.
    bool routing = false;
    bool ha = false;

    bool empty() const;
    // One line per operation, in execution order, e.g.
    //   "route - 10.50.0.0/16 vrf default", "tunnel + site2", "ike: cloud corp: site + CN=s2",
    //   "routing: restart", "ha: restart"
    std::vector<std::string> ops() const;
};

// Execution order of the live steps (and the reverse for rollback).
inline constexpr const char* kLiveSections[] = {"firewall", "routes", "manual_sas", "clouds", "ike", "initiate", "ha", "routing"};

Plan plan(const Config& running, const Config& next);

}  // namespace nimbus::config
