// Config validation: a table of broken inputs, each with the exact message
// (file:line:column: key.path: what is wrong) an operator will see.
#include <catch2/catch.hpp>

#include "control/config/config.h"

using nimbus::config::parse;

namespace {

const char* kBase =
    "node: { name: conc-a }\n"
    "vrfs: [ { name: corp } ]\n"
    "ports:\n"
    "  - { name: wan0, device: \"net_af_packet0,iface=v0\", addresses: [192.0.2.10/24] }\n"
    "  - { name: lan0, device: \"0000:03:00.1\", vrf: corp, addresses: [10.0.0.2/24, \"2001:db8::2/64\"] }\n"
    "routes:\n"
    "  - { prefix: 0.0.0.0/0, via: 192.0.2.1 }\n"
    "  - { vrf: corp, prefix: 10.16.0.0/12, blackhole: true }\n";

}  // namespace

TEST_CASE("a complete config parses into the model") {
    auto r = parse(kBase, "c.yaml");
    REQUIRE(r.errors.empty());
    REQUIRE(r.ok());
    auto& c = *r.config;
    CHECK(c.node.name == "conc-a");
    REQUIRE(c.vrfs.size() == 2);
    CHECK(c.vrfs[0].name == "default");
    CHECK(c.vrfs[1].name == "corp");
    REQUIRE(c.ports.size() == 2);
    CHECK(c.ports[0].device_name() == "net_af_packet0");
    CHECK(c.ports[0].device_arg("iface") == "v0");
    CHECK_FALSE(c.ports[0].is_pci());
    CHECK(c.ports[1].is_pci());
    CHECK(c.ports[1].addresses[1].str() == "2001:db8::2/64");
    CHECK(c.ports[0].where.line == 4);
    REQUIRE(c.routes.size() == 2);
    CHECK(c.routes[0].via->str() == "192.0.2.1");
    CHECK(c.routes[1].blackhole);
    CHECK(c.routes[1].vrf == "corp");
    CHECK(c.dataplane.workers == 1);
    CHECK(c.dataplane.idle_sleep_us == 50);
}

TEST_CASE("broken configs are rejected with exact positions and key paths") {
    struct Case {
        const char* yaml;
        const char* error;
    };
    const Case cases[] = {
        {"node: { name: a }\nnodes: 1\n", "t.yaml:2:1: nodes: unknown key (did you mean 'node'?)"},
        {"ports: []\n", "t.yaml:1:1: node: required section is missing"},
        {"node: { }\n", "t.yaml:1:7: node.name: required key is missing"},
        {"node: { name: \"a b\" }\n",
         "t.yaml:1:15: node.name: 'a b' is not a valid name (letters, digits, '.', '_', '-'; up to 32)"},
        {"node: { name: a, role: hub }\n", "t.yaml:1:24: node.role: 'hub' is not one of: concentrator, edge"},
        {"node: { name: a }\ndataplane: { workers: 0 }\n", "t.yaml:2:23: dataplane.workers: 0 is out of range 1..64"},
        {"node: { name: a }\ndataplane: { workers: two }\n",
         "t.yaml:2:23: dataplane.workers: expected an integer, found 'two'"},
        {"node: { name: a }\ndataplane: { idle_sleep: 5 }\n",
         "t.yaml:2:14: dataplane.idle_sleep: unknown key (did you mean 'idle_sleep_us'?)"},
        {"node: { name: a }\ndataplane: { eal: --no-huge }\n",
         "t.yaml:2:19: dataplane.eal: expected a list, found a scalar"},
        {"node: { name: a }\ndataplane: { punt: { ike: { pps: 0 } } }\n",
         "t.yaml:2:34: dataplane.punt.ike.pps: 0 is out of range 1..10000000"},
        {"node: { name: a }\nmgmt: { socket: run/x.sock }\n", "t.yaml:2:17: mgmt.socket: must be an absolute path"},
        {"node: { name: a }\nports:\n  - { name: lan0 }\n", "t.yaml:3:5: ports[0].device: required key is missing"},
        {"node: { name: a }\nports:\n  - { name: 0lan, device: net_tap0 }\n",
         "t.yaml:3:13: ports[0].name: '0lan' is not a valid port name (an interface name: a letter, then "
         "letters, digits, '_', '.', '-'; up to 15)"},
        {"node: { name: a }\nports:\n  - { name: averyveryverylongname, device: net_tap0 }\n",
         "t.yaml:3:13: ports[0].name: 'averyveryverylongname' is not a valid port name (an interface name: a "
         "letter, then letters, digits, '_', '.', '-'; up to 15)"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: eth0 }\n",
         "t.yaml:3:27: ports[0].device: 'eth0' is neither a PCI address (0000:03:00.1) nor a vdev "
         "(net_af_packet0,iface=eth1)"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: net_tap0 }\n  - { name: lan0, device: net_tap1 }\n",
         "t.yaml:4:13: ports[1].name: duplicate port 'lan0'"},
        {"node: { name: a }\nports:\n  - { name: a0, device: net_tap0 }\n  - { name: a1, device: \"net_tap0,iface=x\" }\n",
         "t.yaml:4:25: ports[1].device: device 'net_tap0' is already used by port 'a0'"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: net_tap0, vrf: corp }\n",
         "t.yaml:3:42: ports[0].vrf: unknown VRF 'corp' (defined: default)"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: net_tap0, addresses: [10.0.0.1/33] }\n",
         "t.yaml:3:49: ports[0].addresses[0]: '10.0.0.1/33' is not a valid interface address (ADDRESS/LENGTH)"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: net_tap0, addresses: [10.0.0.1] }\n",
         "t.yaml:3:49: ports[0].addresses[0]: '10.0.0.1' is not a valid interface address (ADDRESS/LENGTH)"},
        {"node: { name: a }\nports:\n  - { name: lan0, device: net_tap0, addresses: [224.0.0.1/24] }\n",
         "t.yaml:3:49: ports[0].addresses[0]: '224.0.0.1/24' cannot be an interface address"},
        {"node: { name: a }\nports:\n  - { name: a0, device: net_tap0, addresses: [10.0.0.1/24] }\n"
         "  - { name: a1, device: net_tap1, addresses: [10.0.0.129/25] }\n",
         "t.yaml:4:47: ports[1].addresses[0]: 10.0.0.129/25 overlaps 10.0.0.1/24 of port 'a0' in VRF 'default'"},
        {"node: { name: a }\nports:\n  - { name: a0, device: net_tap0, mtu: 100 }\n",
         "t.yaml:3:40: ports[0].mtu: 100 is out of range 576..9600"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.1/8, via: 192.0.2.1 }\n",
         "t.yaml:3:15: routes[0].prefix: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8, via: 192.0.2.300 }\n",
         "t.yaml:3:32: routes[0].via: '192.0.2.300' is not a valid IP address"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8, via: \"2001:db8::1\" }\n",
         "t.yaml:3:32: routes[0].via: next hop 2001:db8::1 is not of the prefix's address family"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8 }\n",
         "t.yaml:3:5: routes[0]: a route needs 'via', 'port' or 'blackhole: true'"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8, port: nope }\n",
         "t.yaml:3:33: routes[0].port: unknown port 'nope'"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8, blackhole: yes }\n",
         "t.yaml:3:38: routes[0].blackhole: expected true or false, found 'yes'"},
        {"node: { name: a }\nroutes:\n  - { prefix: 10.0.0.0/8, blackhole: true }\n"
         "  - { prefix: 10.0.0.0/8, blackhole: true }\n",
         "t.yaml:4:5: routes[1]: duplicate of the route at line 3 (10.0.0.0/8 in VRF 'default')"},
        {"node: { name: a }\nvrfs: [ { name: x }, { name: x } ]\n", "t.yaml:2:30: vrfs[1].name: duplicate VRF 'x'"},
        {"node: { name: a }\nnode: { name: b }\n", "t.yaml:2:1: node: duplicate key"},
        {"node: { name: a\n", "t.yaml:2:1: (syntax): end of map flow not found"},
        {"- a\n- b\n", "t.yaml:1:1: (top level): expected a mapping, found a list"},
    };
    int n = 0;
    for (auto& c : cases) {
        INFO("case " << n++ << ": " << c.yaml);
        auto r = parse(c.yaml, "t.yaml");
        CHECK_FALSE(r.ok());
        CHECK(std::find(r.errors.begin(), r.errors.end(), c.error) != r.errors.end());
        if (std::find(r.errors.begin(), r.errors.end(), c.error) == r.errors.end())
            for (auto& e : r.errors) WARN("got: " << e);
    }
}

TEST_CASE("every error is reported, not just the first") {
    auto r = parse("node: { name: a }\nfoo: 1\nbar: 2\ndataplane: { workers: 99 }\n", "t.yaml");
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0] == "t.yaml:4:23: dataplane.workers: 99 is out of range 1..64");
    CHECK(r.errors[1] == "t.yaml:2:1: foo: unknown key");
    CHECK(r.errors[2] == "t.yaml:3:1: bar: unknown key");
}

TEST_CASE("configs compare equal regardless of positions") {
    auto a = parse(kBase, "a.yaml");
    auto b = parse(std::string("\n\n") + kBase, "b.yaml");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto ca = *a.config, cb = *b.config;
    ca.file = cb.file;
    CHECK(ca == cb);
    cb.routes.pop_back();
    CHECK_FALSE(ca == cb);
}

// ---- ha: (control/config/ha.cpp)

namespace {

const char* kHaPorts =
    "node: { name: a }\n"
    "ports:\n"
    "  - { name: lan0, device: net_tap0, addresses: [10.0.0.2/24, \"2001:db8::2/64\"] }\n"
    "  - { name: wan0, device: net_tap1, addresses: [192.0.2.2/24] }\n";

}  // namespace

TEST_CASE("ha: a complete section parses into the model") {
    std::string y = std::string(kHaPorts) +
                    "ha: { vrid: 51, priority: 200, preempt: false, preempt_delay_ms: 2000, advert_interval_ms: 50,\n"
                    "      interfaces: [lan0, wan0], virtual_ips: [10.0.0.1/24, 192.0.2.1/32, \"2001:db8::1/64\"],\n"
                    "      track: [{port: wan0, weight: 50}, {port: lan0, fault: true}],\n"
                    "      garp: {repeat: 5, delay_ms: 500, refresh_s: 60} }\n";
    auto r = parse(y, "c.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    REQUIRE(r.config->ha);
    auto& h = *r.config->ha;
    CHECK(h.vrid == 51);
    CHECK(h.priority == 200);
    CHECK_FALSE(h.preempt);
    CHECK(h.preempt_delay_ms == 2000);
    CHECK(h.advert_interval_ms == 50);
    CHECK(h.interfaces == std::vector<std::string>{"lan0", "wan0"});
    REQUIRE(h.virtual_ips.size() == 3);
    CHECK(h.virtual_ips[1].str() == "192.0.2.1/32");
    CHECK(h.virtual_ips[2].str() == "2001:db8::1/64");
    REQUIRE(h.track.size() == 2);
    CHECK(h.track[0].port == "wan0");
    CHECK(h.track[0].weight == 50);
    CHECK_FALSE(h.track[0].fault);
    CHECK(h.track[1].fault);
    CHECK(h.garp.repeat == 5);
    CHECK(h.garp.delay_ms == 500);
    CHECK(h.garp.refresh_s == 60);
    CHECK(h.where.line == 5);

    // Defaults, and no section at all.
    auto d = parse(std::string(kHaPorts) + "ha: { vrid: 7, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
                   "d.yaml");
    REQUIRE(d.ok());
    CHECK(d.config->ha->priority == 100);
    CHECK(d.config->ha->preempt);
    CHECK(d.config->ha->advert_interval_ms == 100);
    CHECK(d.config->ha->garp.repeat == 3);
    CHECK(d.config->ha->garp.delay_ms == 1000);
    CHECK(d.config->ha->garp.refresh_s == 0);
    auto none = parse(kHaPorts, "n.yaml");
    REQUIRE(none.ok());
    CHECK_FALSE(none.config->ha);
}

TEST_CASE("ha: broken sections are rejected with exact positions and key paths") {
    struct Case {
        const char* ha;
        const char* error;
    };
    const Case cases[] = {
        {"ha: { priority: 200, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:5: ha.vrid: required key is missing"},
        {"ha: { vrid: 0, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:13: ha.vrid: 0 is out of range 1..255"},
        {"ha: { vrid: 51, priority: 256, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:27: ha.priority: 256 is out of range 1..255"},
        {"ha: { vrid: 51, advert_interval_ms: 105, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:37: ha.advert_interval_ms: 105 is not a multiple of 10 (VRRPv3 advertises centiseconds, "
         "RFC 5798 §5.2.7)"},
        {"ha: { vrid: 51, advert_interval_ms: 5, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:37: ha.advert_interval_ms: 5 is out of range 10..40950"},
        {"ha: { vrid: 51, preempt: yes, interfaces: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:26: ha.preempt: expected true or false, found 'yes'"},
        {"ha: { vrid: 51, interfaces: [lan9], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:30: ha.interfaces[0]: unknown port 'lan9'"},
        {"ha: { vrid: 51, interfaces: [lan0, lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:36: ha.interfaces[1]: port 'lan0' is listed twice"},
        {"ha: { vrid: 51, interfaces: [], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:29: ha.interfaces: at least one interface is needed"},
        {"ha: { vrid: 51, virtual_ips: [10.0.0.1/24] }\n", "t.yaml:5:5: ha.interfaces: required key is missing"},
        {"ha: { vrid: 51, interfaces: [lan0] }\n", "t.yaml:5:5: ha.virtual_ips: required key is missing"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.9.0.1/24] }\n",
         "t.yaml:5:51: ha.virtual_ips[0]: 10.9.0.1/24 is not in a connected subnet of the listed interfaces "
         "(lan0: 10.0.0.2/24, 2001:db8::2/64)"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [192.0.2.1/24] }\n",
         "t.yaml:5:51: ha.virtual_ips[0]: 192.0.2.1/24 is not in a connected subnet of the listed interfaces "
         "(lan0: 10.0.0.2/24, 2001:db8::2/64)"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.0.0.2/24] }\n",
         "t.yaml:5:51: ha.virtual_ips[0]: 10.0.0.2 is the address of port 'lan0'; a virtual IP must be an address "
         "of its own"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.0.0.1/16] }\n",
         "t.yaml:5:51: ha.virtual_ips[0]: 10.0.0.1/16: the prefix length must be /24 like 10.0.0.2/24 of port "
         "'lan0' (or /32)"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.0.0.1/24, 10.0.0.1/32] }\n",
         "t.yaml:5:64: ha.virtual_ips[1]: 10.0.0.1 is already listed as virtual_ips[0]"},
        {"ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.0.0.1] }\n",
         "t.yaml:5:51: ha.virtual_ips[0]: '10.0.0.1' is not a valid interface address (ADDRESS/LENGTH)"},
        {"ha: { vrid: 51, interfaces: [lan0, wan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:36: ha.interfaces[1]: no virtual IP falls in a subnet of port 'wan0' (each listed interface "
         "runs a VRRP instance, which needs at least one address, RFC 9568 §5.2.5)"},
        {"ha: { vrid: 51, interface: [lan0], virtual_ips: [10.0.0.1/24] }\n",
         "t.yaml:5:17: ha.interface: unknown key (did you mean 'interfaces'?)"},
        {"ha: 51\n", "t.yaml:5:5: ha: expected a mapping, found a scalar"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n  track: [{port: wan9, weight: 10}]\n",
         "t.yaml:9:18: ha.track[0].port: unknown port 'wan9'"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n"
         "  track: [{port: wan0, weight: 10, fault: true}]\n",
         "t.yaml:9:11: ha.track[0]: give either 'weight: N' (priority drops by N while the link is down) or "
         "'fault: true' (link down forces backup)"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n  track: [{port: wan0}]\n",
         "t.yaml:9:11: ha.track[0]: give either 'weight: N' (priority drops by N while the link is down) or "
         "'fault: true' (link down forces backup)"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n  track: [{port: wan0, weight: 255}]\n",
         "t.yaml:9:32: ha.track[0].weight: 255 is out of range 1..254"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n"
         "  track: [{port: wan0, weight: 10}, {port: wan0, fault: true}]\n",
         "t.yaml:9:44: ha.track[1].port: port 'wan0' is already tracked at line 9"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n  garp: { repeat: 3, delay: 100 }\n",
         "t.yaml:9:22: ha.garp.delay: unknown key (did you mean 'delay_ms'?)"},
        {"ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n  garp: { repeat: 300 }\n",
         "t.yaml:9:19: ha.garp.repeat: 300 is out of range 0..255"},
    };
    int n = 0;
    for (auto& c : cases) {
        INFO("case " << n++ << ": " << c.ha);
        auto r = parse(std::string(kHaPorts) + c.ha, "t.yaml");
        CHECK_FALSE(r.ok());
        bool found = std::find(r.errors.begin(), r.errors.end(), c.error) != r.errors.end();
        CHECK(found);
        if (!found)
            for (auto& e : r.errors) WARN("got: " << e);
    }
}

#include "control/config/diff.h"

TEST_CASE("config diff: keyed lists, plain lists, scalars; secrets never shown") {
    const char* a =
        "node: { name: a }\n"
        "ports:\n"
        "  - { name: lan0, device: net_tap0, mtu: 1500, addresses: [10.0.0.1/24] }\n"
        "routes:\n"
        "  - { prefix: 10.1.0.0/16, via: 10.0.0.9 }\n"
        "secrets: { psk: hunter2 }\n";
    const char* b =
        "node: { name: a }\n"
        "ports:\n"
        "  - { name: lan0, device: net_tap0, mtu: 9000, addresses: [10.0.0.1/24, 10.9.0.1/24] }\n"
        "routes:\n"
        "  - { prefix: 10.2.0.0/16, via: 10.0.0.9 }\n"
        "secrets: { psk: swordfish }\n";
    auto d = nimbus::config::diff(a, b);
    std::vector<std::string> want = {
        "+ ports[lan0].addresses: 10.9.0.1/24",
        "~ ports[lan0].mtu: 1500 -> 9000",
        "- routes[10.1.0.0/16]: {prefix: 10.1.0.0/16, via: 10.0.0.9}",
        "+ routes[10.2.0.0/16]: {prefix: 10.2.0.0/16, via: 10.0.0.9}",
    };
    CHECK(d == want);  // the psk changed, but a redacted value never differs
    // ... but the section did change: an apply must see it.
    CHECK(nimbus::config::changed_sections(a, b) == std::vector<std::string>{"ports", "routes", "secrets"});
    CHECK(nimbus::config::diff(a, a).empty());
    std::string r = nimbus::config::redact(a);
    CHECK(r.find("hunter2") == std::string::npos);
    CHECK(r.find("psk: <redacted>") != std::string::npos);
    CHECK(nimbus::config::redact("a: [").find("not shown") != std::string::npos);
    CHECK(nimbus::config::hash("x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
}
