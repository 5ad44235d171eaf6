// Config transactions: a table of (running config, new config) -> the
// operations an apply performs, in order. Only what changed is touched.
#include <catch2/catch.hpp>

#include "control/config/plan.h"

using nimbus::config::parse;
using nimbus::config::plan;

namespace {

const char* kKey1 = "0000000000000000000000000000000000000000000000000000000000000000000000aa";
const char* kKey2 = "0000000000000000000000000000000000000000000000000000000000000000000000bb";

std::string tunnel(const std::string& name, const std::string& allowed, int spi, const char* key = kKey1) {
    return "  - { name: " + name + ", cipher: aes256gcm16, allowed: [" + allowed +
           "], paths: [ { local: 192.0.2.10, remote: 192.0.2.20 } ], out: { spi: " + std::to_string(spi) +
           ", key: \"" + key + "\" }, in: [ { spi: " + std::to_string(spi + 1) + ", key: \"" + key + "\" } ] }\n";
}

// A base config with optional extra sections appended.
std::string cfg(const std::string& extra, const std::string& ports_extra = "", const std::string& node = "conc-a") {
    return "node: { name: " + node + " }\n"
           "vrfs: [ { name: corp } ]\n"
           "ports:\n"
           "  - { name: wan0, device: \"net_af_packet0,iface=v0\", addresses: [192.0.2.10/24] }\n" +
           ports_extra + extra;
}

const std::string kRoutes =
    "routes:\n"
    "  - { prefix: 10.50.0.0/16, via: 192.0.2.1 }\n"
    "  - { vrf: corp, prefix: 10.16.0.0/12, blackhole: true }\n";
const std::string kCloud =
    "clouds:\n"
    "  - name: corp\n"
    "    vrf: corp\n"
    "    psk: \"lab-psk-0123456789abcdef\"\n"
    "    sites:\n"
    "      - { id: s1.example, prefixes: [10.16.1.0/24] }\n";

}  // namespace

TEST_CASE("apply planning: (running, new) -> operations, only what changed") {
    struct Case {
        const char* what;
        std::string running, next;
        std::vector<std::string> ops;
    };
    const Case cases[] = {
        {"identical", cfg(kRoutes), cfg(kRoutes), {}},
        {"comments and order of keys do not matter", cfg(kRoutes),
         "# pushed by orchestration\n" + cfg(kRoutes), {}},
        {"a route added", cfg(kRoutes), cfg(kRoutes + "  - { prefix: 10.51.0.0/16, via: 192.0.2.1 }\n"),
         {"route + 10.51.0.0/16 vrf default via 192.0.2.1"}},
        {"a route removed", cfg(kRoutes), cfg("routes:\n  - { prefix: 10.50.0.0/16, via: 192.0.2.1 }\n"),
         {"route - 10.16.0.0/12 vrf corp blackhole"}},
        {"a route's next hop changed: remove, then add", cfg(kRoutes),
         cfg("routes:\n  - { prefix: 10.50.0.0/16, via: 192.0.2.2 }\n"
             "  - { vrf: corp, prefix: 10.16.0.0/12, blackhole: true }\n"),
         {"route - 10.50.0.0/16 vrf default via 192.0.2.1", "route + 10.50.0.0/16 vrf default via 192.0.2.2"}},
        {"a static tunnel added: the other is untouched", cfg("manual_sas:\n" + tunnel("site1", "10.16.1.0/24", 4096)),
         cfg("manual_sas:\n" + tunnel("site1", "10.16.1.0/24", 4096) + tunnel("site2", "10.16.2.0/24", 8192)),
         {"tunnel + site2"}},
        {"a static tunnel's key changed: it is replaced",
         cfg("manual_sas:\n" + tunnel("site1", "10.16.1.0/24", 4096) + tunnel("site2", "10.16.2.0/24", 8192)),
         cfg("manual_sas:\n" + tunnel("site1", "10.16.1.0/24", 4096) + tunnel("site2", "10.16.2.0/24", 8192, kKey2)),
         {"tunnel - site2", "tunnel + site2"}},
        {"a site added to a cloud", cfg(kCloud), cfg(kCloud + "      - { id: s2.example, prefixes: [10.16.2.0/24] }\n"),
         {"ike: cloud corp: site + s2.example"}},
        {"a site's prefixes changed and a cloud setting", cfg(kCloud),
         cfg("clouds:\n  - name: corp\n    vrf: corp\n    psk: \"lab-psk-0123456789abcdef\"\n"
             "    dpd: { interval: 5, retries: 3 }\n"
             "    sites:\n      - { id: s1.example, prefixes: [10.16.1.0/24, 10.17.1.0/24] }\n"),
         {"ike: cloud corp: site ~ s1.example", "ike: cloud corp: settings ~"}},
        {"a cloud removed", cfg(kCloud), cfg(""), {"ike: cloud - corp"}},
        {"routing switched on", cfg(""), cfg("routing: { zebra: /run/frr/zserv.api }\n"), {"routing: restart"}},
        {"ha changed", cfg("ha: { vrid: 10, priority: 200, interfaces: [wan0], virtual_ips: [192.0.2.1/24] }\n"),
         cfg("ha: { vrid: 10, priority: 100, interfaces: [wan0], virtual_ips: [192.0.2.1/24] }\n"),
         {"ha: restart"}},
        {"several sections: executed in order routes, tunnels, ike, ha, routing", cfg(kCloud),
         cfg(kCloud + "      - { id: s2.example, prefixes: [10.16.2.0/24] }\n" + kRoutes +
             "manual_sas:\n" + tunnel("site9", "10.19.0.0/24", 4096) + "routing: { zebra: /run/frr/zserv.api }\n"),
         {"route + 10.50.0.0/16 vrf default via 192.0.2.1", "route + 10.16.0.0/12 vrf corp blackhole", "tunnel + site9",
          "ike: cloud corp: site + s2.example", "routing: restart"}},
        {"a port added needs a restart", cfg(""),
         cfg("", "  - { name: lan0, device: \"net_af_packet1,iface=v1\", addresses: [10.0.0.1/24] }\n"),
         {"ports: needs a restart"}},
        {"the node's name needs a restart", cfg(""), cfg("", "", "conc-b"), {"node: needs a restart"}},
    };
    for (auto& c : cases) {
        INFO(c.what);
        auto a = parse(c.running, "a.yaml"), b = parse(c.next, "b.yaml");
        for (auto& e : a.errors) WARN(e);
        for (auto& e : b.errors) WARN(e);
        REQUIRE(a.ok());
        REQUIRE(b.ok());
        auto p = plan(*a.config, *b.config);
        CHECK(p.ops() == c.ops);
        CHECK(p.empty() == c.ops.empty());
    }
}

TEST_CASE("apply planning: restart sections are named and nothing live is planned twice") {
    auto a = parse(cfg(kRoutes), "a.yaml");
    auto b = parse("node: { name: x }\ndataplane: { workers: 2 }\nvrfs: [ { name: corp } ]\n"
                   "ports:\n  - { name: wan0, device: \"net_af_packet0,iface=v0\", addresses: [192.0.2.11/24] }\n" +
                       kRoutes,
                   "b.yaml");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto p = plan(*a.config, *b.config);
    CHECK(p.restart == std::vector<std::string>{"node", "dataplane", "ports"});
    CHECK(p.routes_add.empty());
    CHECK(p.routes_del.empty());
}
