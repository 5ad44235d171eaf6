// FPM routes into the RIB: table -> VRF and kernel ifindex -> port mapping,
// next-hop kinds, what is left out, and a zebra reconnect that replaces the
// learned set in the RIB without the prefix ever leaving it.
#include <catch2/catch.hpp>

#include "control/routing/fpm_rib.h"
#include "control/routing/fpm_server.h"
#include "control/routing/rib.h"
#include "src/common/log.h"
#include "test/unit/zapi/nl_build.h"

using namespace nimbus;
using namespace nimbus::routing;
using nimbus::test::route_frame;

namespace {

const bool quiet = [] {
    log::set_level(log::Level::Error);
    return true;
}();

Prefix P(const char* s) { return *Prefix::parse(s); }

fpm::RouteEvent ev(const char* prefix, uint32_t table, const char* gw, uint32_t oif, uint8_t type = 1) {
    fpm::RouteEvent e;
    e.op = fpm::Op::Add;
    e.table = table;
    e.prefix = P(prefix);
    e.protocol = 186;
    e.type = type;
    if (gw || oif) {
        fpm::Nexthop n;
        if (gw) n.gateway = *IpAddr::parse(gw);
        n.ifindex = oif;
        e.nexthops.push_back(n);
    }
    return e;
}

// Ports: 0 = wan0 (TAP ifindex 7, VRF 0), 1 = core0 (ifindex 9, VRF 0),
// 2 = lan0 (ifindex 12, VRF 1). Kernel table 254 -> VRF 0, 1001 -> VRF 1.
FpmRibMap make_map() {
    FpmRibMap m;
    m.table_vrf = {{254, 0}, {1001, 1}};
    m.port_of = [](uint32_t ifindex) {
        switch (ifindex) {
            case 7: return 0;
            case 9: return 1;
            case 12: return 2;
            default: return -1;
        }
    };
    return m;
}

}  // namespace

TEST_CASE("FPM routes map to VRFs by kernel table and to ports by interface index") {
    FpmRibMap m = make_map();
    FpmRibCounters c;
    std::string why;
    struct Case {
        fpm::RouteEvent e;
        int vrf;
        NextHop::Kind kind;
        int port;
        const char* gw;
    };
    const Case ok[] = {
        {ev("198.51.100.0/24", 254, "192.0.2.2", 9), 0, NextHop::Kind::Gateway, 1, "192.0.2.2"},
        {ev("203.0.113.0/24", 1001, "10.3.0.9", 12), 1, NextHop::Kind::Gateway, 2, "10.3.0.9"},
        {ev("2001:db8:99::/48", 254, "fe80::1", 7), 0, NextHop::Kind::Gateway, 0, "fe80::1"},
        {ev("198.18.0.0/15", 254, nullptr, 9), 0, NextHop::Kind::Glean, 1, nullptr},
        {ev("192.0.2.128/25", 254, "192.0.2.2", 0), 0, NextHop::Kind::Gateway, -1, "192.0.2.2"},
        {ev("100.64.0.0/10", 254, nullptr, 0, 6), 0, NextHop::Kind::Drop, -1, nullptr},  // blackhole
    };
    for (auto& k : ok) {
        INFO(k.e.str());
        auto r = fpm_to_rib(k.e, m, c, &why);
        REQUIRE(r);
        CHECK(r->first == k.vrf);
        CHECK(r->second.source == Source::Fpm);
        CHECK(r->second.prefix == k.e.prefix);
        CHECK(r->second.nh.kind == k.kind);
        CHECK(r->second.nh.port == k.port);
        if (k.gw) CHECK(r->second.nh.gateway == *IpAddr::parse(k.gw));
    }
    CHECK(c.unmapped_table == 0);
    CHECK(c.foreign_interface == 0);

    CHECK_FALSE(fpm_to_rib(ev("198.51.100.0/24", 100, "192.0.2.2", 9), m, c, &why));
    CHECK(why == "table 100 is mapped to no VRF");
    CHECK(c.unmapped_table == 1);
    CHECK_FALSE(fpm_to_rib(ev("198.51.100.0/24", 254, "192.0.2.2", 3), m, c, &why));  // e.g. lo or a foreign veth
    CHECK(why == "next hop interface 3 is not a nimbus port");
    CHECK(c.foreign_interface == 1);
    CHECK_FALSE(fpm_to_rib(ev("198.51.100.0/24", 254, nullptr, 0), m, c, &why));
    CHECK(why == "no next hop");

    auto ecmp = ev("198.51.100.0/24", 254, "192.0.2.2", 9);
    ecmp.nexthops.push_back(ecmp.nexthops[0]);
    ecmp.nexthops[1].gateway = *IpAddr::parse("192.0.2.3");
    auto r = fpm_to_rib(ecmp, m, c, &why);
    REQUIRE(r);
    CHECK(r->second.nh.gateway == *IpAddr::parse("192.0.2.2"));
    CHECK(c.multipath_trimmed == 1);
}

namespace {

// The FPM routes of one VRF in the RIB: "prefix via gw port".
std::vector<std::string> fpm_routes(const Rib& rib, int vrf) {
    std::vector<std::string> out;
    for (auto& v : rib.view(vrf, std::nullopt))
        if (v.route.source == Source::Fpm)
            out.push_back(v.route.prefix.str() + " via " + v.route.nh.gateway.str() + " port " +
                          std::to_string(v.route.nh.port));
    return out;
}

}  // namespace

TEST_CASE("a zebra reconnect replaces the learned set in the RIB without the prefix leaving it") {
    Rib rib;
    rib.set_ports({0, 0, 1}, {"wan0", "core0", "lan0"});
    FpmRibMap m = make_map();
    FpmRibCounters c;
    FpmServerConfig fc;
    fc.drop_protocols = {191, 199, 2};
    fc.replay_quiet_ms = 3000;
    FpmServer srv(fc);
    // Every RIB change is recorded: a prefix that disappeared even for a
    // moment between two commits would show as a removal without a re-add.
    std::vector<std::string> log;
    rib.add_observer([&](int vrf, const Route& r, bool added) {
        if (r.source == Source::Fpm) log.push_back((added ? "+" : "-") + r.prefix.str() + "@" + std::to_string(vrf));
    });
    auto feed = [&](const std::vector<uint8_t>& f, uint64_t t) {
        srv.on_bytes(f, t);
        apply_fpm_changes(rib, m, srv.take_changes(), c);
    };

    srv.on_connected(0);
    feed(route_frame(true, "198.51.100.0/24", 186, "192.0.2.2", 9), 1);
    feed(route_frame(true, "203.0.113.0/24", 186, "10.3.0.9", 12, 1, 1001), 2);
    feed(route_frame(true, "10.16.1.0/24", 191, nullptr, 0, 6), 3);  // our own NHRP blackhole: dropped
    feed(route_frame(true, "10.0.0.0/24", 2, nullptr, 9), 4);        // connected: dropped
    feed(route_frame(true, "192.0.2.0/24", 186, "192.0.2.2", 3), 5);  // next hop not ours: left out
    CHECK(fpm_routes(rib, 0) == std::vector<std::string>{"198.51.100.0/24 via 192.0.2.2 port 1"});
    CHECK(fpm_routes(rib, 1) == std::vector<std::string>{"203.0.113.0/24 via 10.3.0.9 port 2"});
    CHECK(c.foreign_interface == 1);
    CHECK(srv.counters().filtered == 2);

    // zebra restarts: the old routes stay while it is away and during the
    // replay; the new replay moves 198.51.100.0/24 to another next hop and
    // no longer has 203.0.113.0/24, which the sweep then removes.
    srv.on_disconnected(10);
    srv.on_connected(20);
    log.clear();
    feed(route_frame(true, "198.51.100.0/24", 186, "192.0.2.3", 9), 21);
    CHECK(fpm_routes(rib, 0) == std::vector<std::string>{"198.51.100.0/24 via 192.0.2.3 port 1"});
    CHECK(fpm_routes(rib, 1).size() == 1);  // not swept before the replay is complete
    CHECK_FALSE(srv.on_tick(21 + 2999));
    REQUIRE(srv.on_tick(21 + 3000));
    apply_fpm_changes(rib, m, srv.take_changes(), c);
    CHECK(fpm_routes(rib, 1).empty());
    // The replaced prefix went out and in within one batch (no commit in
    // between), so the FIB only ever saw the old and then the new next hop.
    CHECK(log == std::vector<std::string>{"-198.51.100.0/24@0", "+198.51.100.0/24@0", "-203.0.113.0/24@1"});

    // A withdrawal.
    feed(route_frame(false, "198.51.100.0/24", 186), 4000);
    CHECK(fpm_routes(rib, 0).empty());
}
