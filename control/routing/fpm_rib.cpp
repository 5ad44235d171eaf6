#include "control/routing/fpm_rib.h"

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::routing {

std::optional<std::pair<int, Route>> fpm_to_rib(const fpm::RouteEvent& ev, const FpmRibMap& map,
                                                FpmRibCounters& c, std::string* why) {
    auto t = map.table_vrf.find(ev.table);
    if (t == map.table_vrf.end()) {
        c.unmapped_table++;
        *why = fmt::format("table {} is mapped to no VRF", ev.table);
        return std::nullopt;
    }
    Route r;
    r.prefix = ev.prefix;
    r.source = Source::Fpm;
    r.distance = default_distance(Source::Fpm);
    if (ev.is_blackhole()) {
        r.nh = NextHop{NextHop::Kind::Drop, -1, {}};
        return std::make_pair(t->second, r);
    }
    if (ev.nexthops.empty()) {
        *why = "no next hop";
        return std::nullopt;
    }
    if (ev.nexthops.size() > 1) c.multipath_trimmed++;
    const fpm::Nexthop& nh = ev.nexthops.front();
    int port = -1;
    if (nh.ifindex) {
        port = map.port_of ? map.port_of(nh.ifindex) : -1;
        if (port < 0) {
            c.foreign_interface++;
            *why = fmt::format("next hop interface {} is not a nimbus port", nh.ifindex);
            return std::nullopt;
        }
    }
    if (nh.gateway) {
        r.nh = NextHop{NextHop::Kind::Gateway, port, *nh.gateway};
    } else if (port >= 0) {
        r.nh = NextHop{NextHop::Kind::Glean, port, {}};
    } else {
        *why = "next hop has neither gateway nor interface";
        return std::nullopt;
    }
    return std::make_pair(t->second, r);
}

void apply_fpm_changes(Rib& rib, const FpmRibMap& map, const std::vector<FibChange>& changes,
                       FpmRibCounters& c) {
    for (const auto& ch : changes) {
        auto t = map.table_vrf.find(ch.route.table);
        if (ch.kind == FibChange::Kind::Remove) {
            if (t == map.table_vrf.end()) continue;  // never went in
            rib.remove(t->second, ch.route.prefix, Source::Fpm);
            c.removes++;
            continue;
        }
        std::string why;
        auto r = fpm_to_rib(ch.route, map, c, &why);
        // Whatever the prefix had from FPM goes: replaced in the same batch,
        // or removed when the new version is unusable here.
        if (t != map.table_vrf.end()) rib.remove(t->second, ch.route.prefix, Source::Fpm);
        if (!r) {
            LOG_DEBUG("fpm", "event=route_skipped route=\"{}\" reason=\"{}\"", ch.route.str(), why);
            continue;
        }
        rib.add(r->first, r->second);
        c.upserts++;
    }
}

}  // namespace nimbus::routing
