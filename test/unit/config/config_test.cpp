// Config validation: a table of broken inputs, each with the exact message
// (file:line:column: key.path: what is wrong) an operator will see.
#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "control/config/config.h"
#include "control/config/tree.h"

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

TEST_CASE("vdev arguments may have hyphenated keys (net_null0,no-rx=1 in scripts/bench/esp.sh)") {
    std::string y = kBase;
    y.replace(y.find("net_af_packet0,iface=v0"), 23, "net_null0,no-rx=1");
    auto r = parse(y, "c.yaml");
    REQUIRE(r.errors.empty());
    CHECK(r.config->ports[0].device_name() == "net_null0");
    CHECK(r.config->ports[0].device_arg("no-rx") == "1");
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
        {"node: { name: a }\nrouting: { zebra: run/zserv.api }\n",
         "t.yaml:2:19: routing.zebra: must be an absolute path"},
        {"node: { name: a }\nrouting: { fpm: 127.0.0.1 }\n",
         "t.yaml:2:17: routing.fpm: '127.0.0.1' is not ADDRESS:PORT (127.0.0.1:2620, [::1]:2620)"},
        {"node: { name: a }\nrouting: { fpm: \"127.0.0.1:70000\" }\n",
         "t.yaml:2:17: routing.fpm: '127.0.0.1:70000' is not ADDRESS:PORT (127.0.0.1:2620, [::1]:2620)"},
        {"node: { name: a }\nrouting: { route_type: bgp }\n",
         "t.yaml:2:24: routing.route_type: 'bgp' is not one of: nhrp, static, table, sharp, eigrp, babel, openfabric"},
        {"node: { name: a }\nrouting: { distance: 0 }\n",
         "t.yaml:2:22: routing.distance: 0 is out of range 1..255"},
        {"node: { name: a }\nrouting: { max_prefixes_per_site: 0 }\n",
         "t.yaml:2:35: routing.max_prefixes_per_site: 0 is out of range 1..1000000"},
        {"node: { name: a }\nrouting: { frr_version: latest }\n",
         "t.yaml:2:25: routing.frr_version: 'latest' is not an FRR version (8.4.4, 8.4.4-1.1~deb12u2)"},
        {"node: { name: a }\nrouting: { zebr: /x }\n",
         "t.yaml:2:12: routing.zebr: unknown key (did you mean 'zebra'?)"},
        {"node: { name: a }\nrouting: { fpm_replay_hold_ms: -1 }\n",
         "t.yaml:2:32: routing.fpm_replay_hold_ms: -1 is out of range 0..600000"},
        {"node: { name: a }\nrouting: { host_routes: { table: 254 } }\n",
         "t.yaml:2:34: routing.host_routes.table: table 254 is a kernel table zebra selects from or reserved; use "
         "another"},
        {"node: { name: a }\nrouting: { host_routes: { port: nope } }\n",
         "t.yaml:2:33: routing.host_routes.port: unknown port 'nope'"},
        {"node: { name: a }\nrouting:\n  clouds: [ { name: corp, vrf: corp } ]\n",
         "t.yaml:3:32: routing.clouds[0].vrf: unknown VRF 'corp'"},
        {"node: { name: a }\nrouting:\n  clouds: [ { name: a }, { name: b } ]\n",
         "t.yaml:3:26: routing.clouds[1].vrf: VRF 'default' already belongs to cloud 'a'"},
        {"node: { name: a }\nrouting:\n  clouds: [ { name: a, advertise: [10.0.0.1/8] } ]\n",
         "t.yaml:3:36: routing.clouds[0].advertise[0]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"},
        {"node: { name: a }\nrouting:\n  clouds: [ { name: a, table: 255 } ]\n",
         "t.yaml:3:31: routing.clouds[0].table: table 255 is a reserved kernel table"},
        {"node: { name: a }\nvrfs: [ { name: b } ]\nrouting:\n  clouds: [ { name: a, table: 7 }, { name: b, vrf: b, table: 7 } ]\n",
         "t.yaml:4:62: routing.clouds[1].table: table 7 is already mapped to cloud 'a'"},
        {"node: { name: a }\nrouting:\n  clouds: [ { name: a, advertise_bgp: 1 } ]\n",
         "t.yaml:3:39: routing.clouds[0].advertise_bgp: expected true or false, found '1'"},
        {"node: { name: a }\nrouting:\n  sites: [ { name: s1, tag: -1 } ]\n",
         "t.yaml:3:29: routing.sites[0].tag: -1 is out of range 0..4294967295"},
        {"node: { name: a }\nrouting:\n  sites: [ { name: s1 }, { name: s1 } ]\n",
         "t.yaml:3:34: routing.sites[1].name: duplicate site 's1'"},
        {"node: { name: a }\nrouting:\n  sites: [ { name: s1, max_prefix: 3 } ]\n",
         "t.yaml:3:24: routing.sites[0].max_prefix: unknown key (did you mean 'max_prefixes'?)"},
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

// ---- clouds:, ike:, initiate:

namespace {

const char* kClouds =
    "node: { name: conc-a }\n"
    "vrfs: [ { name: corp } ]\n"
    "ports:\n"
    "  - { name: wan0, device: \"net_af_packet0,iface=v0\", addresses: [192.0.2.10/24] }\n"
    "clouds:\n"
    "  - name: corp\n"
    "    vrf: corp\n"
    "    pki: { ca: /etc/nimbus/ca.pem, crl: /etc/nimbus/ca.crl, cert: /etc/nimbus/c.pem, key: /etc/nimbus/c.key }\n"
    "    proposals: { ike: [aes256gcm16-prfsha256-x25519, chacha20poly1305-prfsha256-x25519], esp: [aes256gcm16] }\n"
    "    advertise: [10.0.0.0/8, 172.16.0.0/12]\n"
    "    dpd: { interval: 5, retries: 3 }\n"
    "    rekey: { ike: 7200, child: 1800 }\n"
    "    sites:\n"
    "      - { id: \"CN=store-0001\", prefixes: [10.16.1.0/24], critical: { dscp: [ef, 34] } }\n"
    "      - { id: store2.example, prefixes: [10.16.2.0/24, \"2001:db8:16:2::/64\"], psk: \"0123456789abcdef-site\" }\n"
    "  - name: lab\n"
    "    psk: \"lab-psk-0123456789abcdef\"\n"
    "    sites: [ { id: 192.0.2.77, prefixes: [10.99.0.0/24] } ]\n"
    "ike:\n"
    "  listen: [wan0, 192.0.2.10]\n"
    "  ports: { ike: 500, natt: 4500 }\n"
    "  cookie_threshold: 100\n"
    "  delete_on_stop_ms: 250\n"
    "initiate:\n"
    "  - { peer: 192.0.2.1, cloud: corp, local_id: \"CN=edge-1\", local_prefixes: [10.20.0.0/24] }\n";

}  // namespace

TEST_CASE("one edge may initiate to one peer as several identities (sites), each once") {
    const char* yaml =
        "node: { name: e }\n"
        "clouds: [ { name: c, psk: \"0123456789abcdefXX\" } ]\n"
        "initiate:\n"
        "  - { peer: 192.0.2.1, cloud: c, local_id: a.example, local_prefixes: [10.1.0.0/24] }\n"
        "  - { peer: 192.0.2.1, cloud: c, local_id: b.example, local_prefixes: [10.2.0.0/24] }\n";
    auto r = parse(yaml, "t.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    CHECK(r.config->initiate.size() == 2);
}

TEST_CASE("clouds, sites, ike and initiate sections parse into the model") {
    auto r = parse(kClouds, "c.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    auto& c = *r.config;
    REQUIRE(c.clouds.size() == 2);
    auto& corp = c.clouds[0];
    CHECK(corp.vrf == "corp");
    REQUIRE(corp.pki);
    CHECK(corp.pki->crl == "/etc/nimbus/ca.crl");
    CHECK(corp.ike_proposals.size() == 2);
    CHECK(corp.esp_proposals == std::vector<std::string>{"aes256gcm16"});
    CHECK(corp.advertise.size() == 2);
    CHECK(corp.dpd.interval == 5);
    CHECK(corp.rekey_child == 1800);
    REQUIRE(corp.sites.size() == 2);
    CHECK(corp.sites[0].critical_dscp == std::vector<int>{46, 34});
    CHECK(corp.sites[1].psk.value == "0123456789abcdef-site");
    CHECK(corp.sites[1].prefixes.size() == 2);
    CHECK(c.clouds[1].psk.value == "lab-psk-0123456789abcdef");
    CHECK(c.clouds[1].esp_proposals == std::vector<std::string>{"aes256gcm16"});  // default
    CHECK(c.ike.listen == std::vector<std::string>{"wan0", "192.0.2.10"});
    CHECK(c.ike.cookie_threshold == 100);
    CHECK(c.ike.delete_on_stop_ms == 250);
    CHECK(nimbus::config::Ike{}.delete_on_stop_ms == 1000);   // the default: DELETEs on SIGTERM, 1 s for the answers
    REQUIRE(c.initiate.size() == 1);
    CHECK(c.initiate[0].peer.str() == "192.0.2.1");
    CHECK(c.initiate[0].local_prefixes[0].str() == "10.20.0.0/24");
}

TEST_CASE("broken IKE sections are rejected with exact positions, and secrets are never echoed") {
    struct Case {
        const char* yaml;
        const char* error;
    };
    const char* head = "node: { name: a }\nvrfs: [ { name: corp } ]\n";
    const Case cases[] = {
        {"clouds:\n  - { vrf: corp, psk: \"0123456789abcdefXX\" }\n", "t.yaml:4:5: clouds[0].name: required key is missing"},
        {"clouds:\n  - { name: c, vrf: nope, psk: \"0123456789abcdefXX\" }\n",
         "t.yaml:4:21: clouds[0].vrf: unknown VRF 'nope' (defined: default, corp)"},
        {"clouds:\n  - { name: c, psk: \"short-secret\" }\n",
         "t.yaml:4:21: clouds[0].psk: a pre-shared key needs at least 16 characters (value not shown)"},
        {"clouds:\n  - { name: c, psk: \"0123456789abcdefXX\", pki: { ca: /a, cert: /b, key: /c } }\n",
         "t.yaml:4:5: clouds[0]: give either 'pki' or 'psk', not both (per-site 'psk' is allowed with 'pki')"},
        {"clouds:\n  - { name: c, pki: { ca: ca.pem, cert: /b, key: /c } }\n",
         "t.yaml:4:27: clouds[0].pki.ca: must be an absolute path"},
        {"clouds:\n  - { name: c, pki: { ca: /a, cert: /b } }\n", "t.yaml:4:21: clouds[0].pki.key: required key is missing"},
        {"clouds:\n  - { name: c, pki: { ca: /a, cert: /b, key: /c, ocsp: /d } }\n",
         "t.yaml:4:50: clouds[0].pki.ocsp: unknown key"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    proposals: { ike: [aes256-sha256-modp2048] }\n",
         "t.yaml:6:24: clouds[0].proposals.ike[0]: proposal 'aes256-sha256-modp2048': 'aes256': AES-CBC is not "
         "supported; use an AEAD (aes128gcm16, aes256gcm16, chacha20poly1305)"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    proposals: { esp: [aes256gcm16-prfsha256] }\n",
         "t.yaml:6:24: clouds[0].proposals.esp[0]: proposal 'aes256gcm16-prfsha256': 'prfsha256': a PRF belongs in "
         "IKE proposals only"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    proposals: { ike: [] }\n",
         "t.yaml:6:23: clouds[0].proposals.ike: needs at least one proposal"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    dpd: { interval: 0 }\n",
         "t.yaml:6:22: clouds[0].dpd.interval: 0 is out of range 1..3600"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    dpd: { retries: 1 }\n",
         "t.yaml:6:21: clouds[0].dpd.retries: 1 is out of range 2..20"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    advertise: [10.0.0.1/8]\n",
         "t.yaml:6:17: clouds[0].advertise[0]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { prefixes: [10.1.0.0/24] } ]\n",
         "t.yaml:6:14: clouds[0].sites[0].id: required key is missing"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { id: \"XY=1\", prefixes: [10.1.0.0/24] } ]\n",
         "t.yaml:6:20: clouds[0].sites[0].id: unknown attribute 'XY' in a distinguished name"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { id: a.example } ]\n",
         "t.yaml:6:14: clouds[0].sites[0].prefixes: required key is missing"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { id: a.example, prefixes: [0.0.0.0/0] } ]\n",
         "t.yaml:6:42: clouds[0].sites[0].prefixes[0]: 0.0.0.0/0 would give the site every address; list its own "
         "prefixes"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites:\n"
         "      - { id: a.example, prefixes: [10.1.0.0/16] }\n      - { id: b.example, prefixes: [10.1.2.0/24] }\n",
         "t.yaml:8:37: clouds[0].sites[1].prefixes[0]: 10.1.2.0/24 overlaps 10.1.0.0/16 of site 'a.example'"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites:\n"
         "      - { id: a.example, prefixes: [10.1.0.0/16] }\n      - { id: A.example, prefixes: [10.2.0.0/24] }\n",
         "t.yaml:8:15: clouds[0].sites[1].id: duplicate site 'A.example' (line 7)"},
        {"clouds:\n  - name: c\n    sites: [ { id: a.example, prefixes: [10.1.0.0/24] } ]\n",
         "t.yaml:5:14: clouds[0].sites[0]: cloud 'c' has neither 'pki' nor 'psk': the site needs a 'psk'"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { id: a.example, prefixes: [10.1.0.0/24], "
         "psk: \"tiny\" } ]\n",
         "t.yaml:6:61: clouds[0].sites[0].psk: a pre-shared key needs at least 16 characters (value not shown)"},
        {"clouds:\n  - name: c\n    psk: \"0123456789abcdefXX\"\n    sites: [ { id: a.example, prefixes: [10.1.0.0/24], "
         "critical: { dscp: [gold] } } ]\n",
         "t.yaml:6:75: clouds[0].sites[0].critical.dscp[0]: 'gold' is not a DSCP (0..63, be, ef, va, cs0..cs7, "
         "af11..af43)"},
        {"clouds:\n  - { name: c, psk: \"0123456789abcdefXX\" }\n  - { name: c, psk: \"0123456789abcdefXX\" }\n",
         "t.yaml:5:13: clouds[1].name: duplicate cloud 'c'"},
        {"ike: { listen: [wan9] }\n", "t.yaml:3:17: ike.listen[0]: 'wan9' is neither an IP address nor a port name"},
        {"ike: { ports: { ike: 4500, natt: 4500 } }\n", "t.yaml:3:34: ike.ports.natt: must differ from ike.ports.ike"},
        {"ike: { ports: { ike: 0 } }\n", "t.yaml:3:22: ike.ports.ike: 0 is out of range 1..65535"},
        {"ike: { fragment_size: 100 }\n", "t.yaml:3:23: ike.fragment_size: 100 is out of range 576..65535"},
        {"ike: { delete_on_stop_ms: 60000 }\n", "t.yaml:3:27: ike.delete_on_stop_ms: 60000 is out of range 0..30000"},
        {"ike: { cookies: 5 }\n", "t.yaml:3:8: ike.cookies: unknown key"},
        {"initiate:\n  - { cloud: x, local_prefixes: [10.1.0.0/24] }\n", "t.yaml:4:5: initiate[0].peer: required key is missing"},
        {"initiate:\n  - { peer: 192.0.2.1, cloud: x, local_prefixes: [10.1.0.0/24] }\n",
         "t.yaml:4:31: initiate[0].cloud: unknown cloud 'x' (defined: none)"},
        {"clouds: [ { name: c, psk: \"0123456789abcdefXX\" } ]\ninitiate:\n  - { peer: 192.0.2.1, cloud: c, "
         "local_prefixes: [10.1.0.0/24] }\n",
         "t.yaml:5:5: initiate[0].local_id: required with PSK authentication (the cloud has no 'pki' and no 'id')"},
        {"clouds: [ { name: c, psk: \"0123456789abcdefXX\" } ]\ninitiate:\n  - { peer: 192.0.2.1, cloud: c, "
         "local_id: e.example }\n",
         "t.yaml:5:5: initiate[0].local_prefixes: required key is missing"},
        {"clouds: [ { name: c, psk: \"0123456789abcdefXX\" } ]\ninitiate:\n"
         "  - { peer: 192.0.2.1, cloud: c, local_id: e.example, local_prefixes: [10.1.0.0/24] }\n"
         "  - { peer: 192.0.2.1, cloud: c, local_id: e.example, local_prefixes: [10.2.0.0/24] }\n",
         "t.yaml:6:5: initiate[1]: duplicate of the entry at line 5 (192.0.2.1 in cloud 'c' as 'e.example')"},
    };
    int n = 0;
    for (auto& c : cases) {
        std::string yaml = std::string(head) + c.yaml;
        INFO("case " << n++ << ": " << yaml);
        auto r = parse(yaml, "t.yaml");
        CHECK_FALSE(r.ok());
        CHECK(std::find(r.errors.begin(), r.errors.end(), c.error) != r.errors.end());
        if (std::find(r.errors.begin(), r.errors.end(), c.error) == r.errors.end())
            for (auto& e : r.errors) WARN("got: " << e);
        for (auto& e : r.errors) {
            CHECK(e.find("0123456789abcdefXX") == std::string::npos);
            CHECK(e.find("short-secret") == std::string::npos);
            CHECK(e.find("tiny") == std::string::npos);
        }
    }
}

TEST_CASE("the routing section parses with its defaults and overrides") {
    auto r = parse(std::string(kBase) +
                       "routing:\n"
                       "  zebra: /run/frr/zserv.api\n"
                       "  fpm: 127.0.0.1:2620\n"
                       "  metric: 100\n"
                       "  max_prefixes_per_site: 50\n"
                       "  frr_version: 8.4.4-1.1~deb12u2\n"
                       "  host_routes: { port: wan0 }\n"
                       "  clouds:\n"
                       "    - { name: internet, tag: 100, advertise: [198.51.100.0/24], advertise_bgp: true }\n"
                       "    - { name: corp, vrf: corp, tag: 200, table: 1001 }\n"
                       "  sites:\n"
                       "    - { name: store-1, tag: 142, metric: 50, max_prefixes: 2 }\n",
                   "c.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    REQUIRE(r.config->routing);
    auto& rt = *r.config->routing;
    CHECK(rt.zebra == "/run/frr/zserv.api");
    REQUIRE(rt.fpm_addr);
    CHECK(rt.fpm_addr->str() == "127.0.0.1");
    CHECK(rt.fpm_port == 2620);
    CHECK(rt.route_type == "nhrp");
    CHECK(rt.instance == 0);
    CHECK(rt.metric == 100);
    CHECK(rt.distance == 0);
    CHECK(rt.max_prefixes_per_site == 50);
    CHECK(rt.fpm_replay_quiet_ms == 3000);
    CHECK(rt.fpm_replay_hold_ms == 10000);
    CHECK(rt.frr_version == "8.4.4-1.1~deb12u2");
    CHECK(rt.host_routes.enabled);
    CHECK(rt.host_routes.table == 250);
    CHECK(rt.host_routes.port == "wan0");
    REQUIRE(rt.clouds.size() == 2);
    CHECK(rt.cloud_for_vrf("default")->name == "internet");
    CHECK(rt.cloud_for_vrf("corp")->tag == 200u);
    CHECK(rt.clouds[0].advertise_bgp);
    CHECK(rt.clouds[0].advertise.at(0).str() == "198.51.100.0/24");
    REQUIRE(rt.site("store-1"));
    CHECK(rt.site("store-1")->max_prefixes == 2u);
    CHECK(rt.site("store-1")->where.line == 20);
    // FPM: main goes to the default VRF, 1001 to corp.
    auto t = rt.fpm_tables();
    CHECK(std::find(t.begin(), t.end(), std::make_pair(254u, std::string("default"))) != t.end());
    CHECK(std::find(t.begin(), t.end(), std::make_pair(1001u, std::string("corp"))) != t.end());

    auto none = parse(kBase, "c.yaml");
    REQUIRE(none.ok());
    CHECK_FALSE(none.config->routing);
    auto v6 = parse("node: { name: a }\nrouting: { fpm: \"[::1]:2621\" }\n", "c.yaml");
    REQUIRE(v6.ok());
    CHECK(v6.config->routing->fpm_addr->str() == "::1");
    CHECK(v6.config->routing->fpm_port == 2621);
    CHECK_FALSE(v6.config->routing->fpm_addr->is_v4());
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

TEST_CASE("ha: tracking nimbus's session to zebra (frr: zebra)") {
    // routing: comes after ha: in the file and is still known to the track.
    std::string y = std::string(kHaPorts) +
                    "ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n"
                    "  track: [{frr: zebra, weight: 60}, {port: wan0, fault: true}]\n"
                    "routing: { zebra: /run/frr/zserv.api }\n";
    auto r = parse(y, "c.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    auto& t = r.config->ha->track;
    REQUIRE(t.size() == 2);
    CHECK(t[0].frr == "zebra");
    CHECK(t[0].port.empty());
    CHECK(t[0].weight == 60);
    CHECK_FALSE(t[0].fault);
    CHECK(t[1].port == "wan0");
    CHECK(t[1].frr.empty());
    auto f = parse(std::string(kHaPorts) +
                       "routing: { zebra: /run/frr/zserv.api }\n"
                       "ha: { vrid: 51, interfaces: [lan0], virtual_ips: [10.0.0.1/24], track: [{frr: zebra, fault: true}] }\n",
                   "f.yaml");
    for (auto& e : f.errors) WARN(e);
    REQUIRE(f.ok());
    CHECK(f.config->ha->track[0].fault);

    struct Case {
        const char* yaml;
        const char* error;
    };
    const char* ha = "ha:\n  vrid: 51\n  interfaces: [lan0]\n  virtual_ips: [10.0.0.1/24]\n";
    const Case cases[] = {
        {"  track: [{frr: zebra, weight: 10}]\n",
         "t.yaml:9:17: ha.track[0].frr: nimbus has no session to zebra to track: set routing.zebra (the zserv "
         "socket)"},
        {"  track: [{frr: zebra, weight: 10}]\nrouting: { fpm: \"127.0.0.1:2620\" }\n",
         "t.yaml:9:17: ha.track[0].frr: nimbus has no session to zebra to track: set routing.zebra (the zserv "
         "socket)"},
        {"  track: [{frr: bgpd, weight: 10}]\nrouting: { zebra: /z }\n",
         "t.yaml:9:17: ha.track[0].frr: 'bgpd' is not one of: zebra"},
        {"  track: [{frr: zebra, port: wan0, weight: 10}]\nrouting: { zebra: /z }\n",
         "t.yaml:9:11: ha.track[0]: give either 'port: NAME' (a link) or 'frr: zebra' (nimbus's ZAPI session to "
         "zebra) to track"},
        {"  track: [{weight: 10}]\n",
         "t.yaml:9:11: ha.track[0]: give either 'port: NAME' (a link) or 'frr: zebra' (nimbus's ZAPI session to "
         "zebra) to track"},
        {"  track: [{frr: zebra}]\nrouting: { zebra: /z }\n",
         "t.yaml:9:11: ha.track[0]: give either 'weight: N' (priority drops by N while the session is down) or "
         "'fault: true' (session down forces backup)"},
        {"  track:\n    - {frr: zebra, weight: 10}\n    - {frr: zebra, fault: true}\nrouting: { zebra: /z }\n",
         "t.yaml:11:13: ha.track[1].frr: frr 'zebra' is already tracked at line 10"},
        {"  track: [{frr: zebra, weight: 0}]\nrouting: { zebra: /z }\n",
         "t.yaml:9:32: ha.track[0].weight: 0 is out of range 1..254"},
    };
    int n = 0;
    for (auto& c : cases) {
        INFO("case " << n++ << ": " << c.yaml);
        auto res = parse(std::string(kHaPorts) + ha + c.yaml, "t.yaml");
        CHECK_FALSE(res.ok());
        bool found = std::find(res.errors.begin(), res.errors.end(), c.error) != res.errors.end();
        CHECK(found);
        if (!found)
            for (auto& e : res.errors) WARN("got: " << e);
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
        "~ secrets.psk: <redacted> (changed)",  // that it changed, never what to
    };
    CHECK(d == want);
    for (auto& l : d) CHECK((l.find("hunter2") == std::string::npos && l.find("swordfish") == std::string::npos));
    // The trees parse() keeps give the same answers without parsing again.
    auto pa = parse("node: { name: a }\nclouds: [ { name: c, psk: \"0123456789abcdefXX\" } ]\n", "a");
    auto pb = parse("node: { name: b }\nclouds: [ { name: c, psk: \"0123456789abcdefYY\" } ]\n", "b");
    REQUIRE((pa.ok() && pb.ok() && pa.tree && pb.tree));
    CHECK(nimbus::config::diff(*pa.tree, *pb.tree) ==
          std::vector<std::string>{"~ clouds[c].psk: <redacted> (changed)", "~ node.name: a -> b"});
    std::string rb = nimbus::config::redact(*pb.tree);
    CHECK(rb.find("psk: <redacted>") != std::string::npos);
    CHECK(rb.find("abcdefYY") == std::string::npos);
    // ... but the section did change: an apply must see it.
    CHECK(nimbus::config::changed_sections(a, b) == std::vector<std::string>{"ports", "routes", "secrets"});
    CHECK(nimbus::config::diff(a, a).empty());
    std::string r = nimbus::config::redact(a);
    CHECK(r.find("hunter2") == std::string::npos);
    CHECK(r.find("psk: <redacted>") != std::string::npos);
    CHECK(nimbus::config::redact("a: [").find("not shown") != std::string::npos);
    // A secret key's value is never shown, whatever it is: not the elements
    // of a list, not the scalars of a mapping, added, removed or changed.
    const char* ca = "secrets: { key: [k1, k2], password: { x: p1 } }\n";
    const char* cb = "secrets: { key: [k1, k3], password: { x: p2, y: p3 } }\nextra: { psk: [p4] }\n";
    auto dc = nimbus::config::diff(ca, cb);
    CHECK(dc == std::vector<std::string>{"+ extra: {psk: <redacted>}", "~ secrets.key: <redacted> (changed)",
                                         "~ secrets.password.x: <redacted> (changed)",
                                         "+ secrets.password.y: <redacted>"});
    std::string rc = nimbus::config::redact(cb);
    for (const char* leak : {"k1", "k3", "p2", "p3", "p4"}) {
        CHECK(rc.find(leak) == std::string::npos);
        for (auto& l : dc) CHECK(l.find(leak) == std::string::npos);
    }
    CHECK(nimbus::config::hash("x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
}

TEST_CASE("config tree: the document diff and redact work on, in flat arrays") {
    using nimbus::config::Tree;
    using K = Tree::Kind;
    const char* text =
        "node: { name: &n conc }\n"
        "copy: *n\n"
        "tagged: !!str 123\n"
        "quoted: \"q\"\n"
        "nothing: ~\n"
        "list: [a, {k: v}, [x]]\n"
        "key: hunter2\n";
    Tree t = Tree::of(YAML::Load(text));
    Tree::Id root = t.root();
    REQUIRE(t.is(root, K::map));
    CHECK(t.size(root) == 7);
    CHECK(t.scalar(t.key(root, 0)) == "node");
    Tree::Id node = t.get(root, "node");
    REQUIRE(t.is(node, K::map));
    CHECK(t.scalar(t.get(node, "name")) == "conc");
    CHECK(t.scalar(t.get(root, "copy")) == "conc");  // an alias: a copy where it is used
    CHECK(t.tag(t.get(root, "tagged")) == "tag:yaml.org,2002:str");
    CHECK(t.tag(t.get(root, "quoted")) == "!");
    CHECK(t.tag(t.get(node, "name")) == "?");
    CHECK(t.kind(t.get(root, "nothing")) == K::null);
    CHECK(t.get(root, "absent") == Tree::kNone);
    CHECK(t.get(t.get(root, "copy"), "x") == Tree::kNone);  // not a map
    Tree::Id list = t.get(root, "list");
    REQUIRE(t.is(list, K::sequence));
    REQUIRE(t.size(list) == 3);
    CHECK(t.scalar(t.item(list, 0)) == "a");
    CHECK(t.scalar(t.get(t.item(list, 1), "k")) == "v");
    CHECK(t.scalar(t.item(t.item(list, 2), 0)) == "x");
    CHECK(t.scalar(list).empty());
    // Every scalar, key and container once: the root, 7 keys, 7 values, node's
    // pair, and in the list: a, {k: v} with its pair, [x] with x.
    CHECK(t.nodes() == 1 + 7 + 7 + 2 + 6);
    CHECK(t.bytes() < 4096);
    // As the emitter writes it: tags kept (not the plain / quoted markers), secrets replaced.
    std::string r = nimbus::config::redact(t);
    CHECK(r.find("tagged: !<tag:yaml.org,2002:str> 123") != std::string::npos);
    CHECK(r.find("key: <redacted>") != std::string::npos);
    CHECK(r.find("hunter2") == std::string::npos);
    CHECK(r.find("copy: conc") != std::string::npos);
    // An empty document is a null root; so is a default tree.
    Tree e = Tree::of(YAML::Load(""));
    CHECK(e.kind(e.root()) == K::null);
    CHECK(Tree().kind(Tree().root()) == K::null);
    CHECK(Tree().tag(Tree().root()).empty());
    CHECK(nimbus::config::diff(Tree(), t).size() == 1);  // "+ : {...}": all of it added
}

// ---- manual_sas: static ESP tunnels
namespace {

const char* kEspBase =
    "node: { name: a }\n"
    "vrfs: [ { name: corp } ]\n"
    "ports:\n"
    "  - { name: wan0, device: net_tap0, addresses: [192.0.2.10/24, \"2001:db8::10/64\"] }\n"
    "  - { name: lan0, device: net_tap1, vrf: corp, addresses: [10.0.0.1/24] }\n"
    "manual_sas:\n";
const char* kK20 = "000102030405060708090a0b0c0d0e0f10111213";
const char* kK36 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223";

std::string tunnel(const std::string& name, const std::string& extra, const std::string& allowed = "10.16.1.0/24",
                   const std::string& out_spi = "0x1001", const std::string& in_spi = "0x2001") {
    return "  - { name: " + name + ", vrf: corp, cipher: aes128gcm16, allowed: [" + allowed +
           "], paths: [ { local: 192.0.2.10, remote: 198.51.100.7 } ], out: { spi: " + out_spi + ", key: " + kK20 +
           " }, in: [ { spi: " + in_spi + ", key: " + kK20 + " } ]" + (extra.empty() ? "" : ", " + extra) + " }\n";
}

std::string sub(std::string s, const std::string& a, const std::string& b) {
    auto at = s.find(a);
    if (at != std::string::npos) s.replace(at, a.size(), b);
    return s;
}

}  // namespace

TEST_CASE("manual_sas parse into tunnels") {
    std::string y = std::string(kEspBase) +
                    "  - name: store1\n"
                    "    vrf: corp\n"
                    "    cipher: chacha20poly1305\n"
                    "    esn: true\n"
                    "    encap: esp\n"
                    "    replay_window: 4096\n"
                    "    mss_clamp: false\n"
                    "    critical: { dscp: [ef, 34, cs1] }\n"
                    "    allowed: [10.16.1.0/24, \"2001:db8:16::/48\"]\n"
                    "    paths:\n"
                    "      - { local: 192.0.2.10, remote: 198.51.100.7 }\n"
                    "      - { local: \"2001:db8::10\", remote: \"2001:db8:99::7\", port: 4501 }\n"
                    "    out: { spi: 0x1001, key: \"" + kK36 + "\" }\n"
                    "    in: [ { spi: 4098, key: \"0x" + kK36 + "\" }, { spi: 0x2001, key: \"" + kK36 + "\" } ]\n"
                    "    lifetime: { soft_packets: 100, hard_packets: 200 }\n";
    auto r = parse(y, "t.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    REQUIRE(r.config->manual_sas.size() == 1);
    auto& t = r.config->manual_sas[0];
    CHECK(t.cipher == "chacha20poly1305");
    CHECK(t.esn);
    CHECK_FALSE(t.udp);
    CHECK(t.replay_window == 4096);
    CHECK_FALSE(t.mss_clamp);
    CHECK(t.critical_dscp == ((1ull << 46) | (1ull << 34) | (1ull << 8)));
    REQUIRE(t.paths.size() == 2);
    CHECK(t.paths[1].port == 4501);
    CHECK(t.out.spi == 0x1001);
    CHECK(t.out.key.bytes.size() == 36);
    REQUIRE(t.in.size() == 2);
    CHECK(t.in[0].spi == 4098);
    CHECK(t.hard_packets == 200);
    CHECK(t.vrf == "corp");
    CHECK(t.underlay_vrf == "default");
}

TEST_CASE("broken manual_sas are rejected with exact positions, and keys never appear") {
    struct Case {
        std::string yaml;
        const char* error;
    };
    std::string two = tunnel("s1", "") ;
    const Case cases[] = {
        {tunnel("s1", "", "0.0.0.0/0"),
         "t.yaml:7:59: manual_sas[0].allowed[0]: 0.0.0.0/0: a site may not claim a default route"},
        {tunnel("s1", "", "\"::/0\""), "t.yaml:7:59: manual_sas[0].allowed[0]: ::/0: a site may not claim a default route"},
        {two + tunnel("s2", "", "10.16.1.128/25", "0x1002", "0x2002"),
         "t.yaml:8:59: manual_sas[1].allowed[0]: 10.16.1.128/25 overlaps 10.16.1.0/24 of tunnel 's1' in VRF 'corp'"},
        // wider than an earlier one, equal, and between two earlier ones
        {two + tunnel("s2", "", "10.16.0.0/16", "0x1002", "0x2002"),
         "t.yaml:8:59: manual_sas[1].allowed[0]: 10.16.0.0/16 overlaps 10.16.1.0/24 of tunnel 's1' in VRF 'corp'"},
        {two + tunnel("s2", "", "10.16.1.0/24", "0x1002", "0x2002"),
         "t.yaml:8:59: manual_sas[1].allowed[0]: 10.16.1.0/24 overlaps 10.16.1.0/24 of tunnel 's1' in VRF 'corp'"},
        {two + tunnel("s2", "", "10.16.3.0/24", "0x1002", "0x2002") + tunnel("s3", "", "10.16.0.0/22", "0x1003", "0x2003"),
         "t.yaml:9:59: manual_sas[2].allowed[0]: 10.16.0.0/22 overlaps 10.16.3.0/24 of tunnel 's2' in VRF 'corp'"},
        {tunnel("s1", "", "\"2001:db8:16::/48\"") + tunnel("s2", "", "\"2001:db8:16:1::/64\"", "0x1002", "0x2002"),
         "t.yaml:8:59: manual_sas[1].allowed[0]: 2001:db8:16:1::/64 overlaps 2001:db8:16::/48 of tunnel 's1' in VRF "
         "'corp'"},
        {two + tunnel("s1", "", "10.17.0.0/24", "0x1002", "0x2002"), "t.yaml:8:13: manual_sas[1].name: duplicate tunnel 's1'"},
        {two + tunnel("s2", "", "10.17.0.0/24", "0x1002", "0x2001"),
         "t.yaml:8:212: manual_sas[1].in[0].spi: SPI 0x00002001 is already used by tunnel 's1'"},
        {two + tunnel("s2", "", "10.17.0.0/24", "0x1002", "0x42001"),
         "t.yaml:8:212: manual_sas[1].in[0].spi: inbound SPI 0x00042001 shares its table slot with 0x00002001 of "
         "tunnel 's1' (inbound SPIs must differ in their low 18 bits)"},
        {tunnel("s1", "", "10.16.1.0/24", "255"),
         "t.yaml:7:142: manual_sas[0].out.spi: SPI 255 is reserved (RFC 4303 §2.1: 1..255); use 256 or more"},
        {tunnel("s1", "", "10.16.1.0/24", "0x1001", "zz"),
         "t.yaml:7:212: manual_sas[0].in[0].spi: 'zz' is not an SPI (a 32-bit number, decimal or 0x hex)"},
        {sub(tunnel("s1", "cipher: aes256gcm16"), std::string("cipher: aes128gcm16, "), ""),
         "t.yaml:7:134: manual_sas[0].out.key: 20 bytes of key material; aes256gcm16 needs 36 (32-byte key and "
         "4-byte salt)"},
        {sub(tunnel("s1", ""), std::string("key: ") + kK20 + " }, in", "key: 00112233445566778899aabbccddeeff001122 }, in"),
         "t.yaml:7:155: manual_sas[0].out.key: 19 bytes of key material; aes128gcm16 needs 20 (16-byte key and "
         "4-byte salt)"},
        {sub(tunnel("s1", ""), std::string("key: ") + kK20 + " }, in", "key: secretsecret }, in"),
         "t.yaml:7:155: manual_sas[0].out.key: not an even number of hexadecimal digits (the value is not shown)"},
        {sub(tunnel("s1", ""), "local: 192.0.2.10", "local: 192.0.2.11"),
         "t.yaml:7:92: manual_sas[0].paths[0].local: 192.0.2.11 is not an address of a port in VRF 'default'"},
        {sub(tunnel("s1", ""), "remote: 198.51.100.7", "remote: \"2001:db8::7\""),
         "t.yaml:7:112: manual_sas[0].paths[0].remote: 2001:db8::7 is not of the family of local 192.0.2.10"},
        {sub(tunnel("s1", "cipher: aes512"), "cipher: aes128gcm16, ", ""),
         "t.yaml:7:258: manual_sas[0].cipher: 'aes512' is not one of: aes128gcm16, aes256gcm16, chacha20poly1305"},
        {tunnel("s1", "replay_window: 32"), "t.yaml:7:286: manual_sas[0].replay_window: 32 is out of range 64..4096"},
        {tunnel("s1", "critical: { dscp: [ef, af51] }"),
         "t.yaml:7:294: manual_sas[0].critical.dscp[1]: 'af51' is not a DSCP (0..63, ef, afXY, csN, va, be)"},
        {tunnel("s1", "encap: gre"), "t.yaml:7:278: manual_sas[0].encap: 'gre' is not one of: udp, esp"},
        {tunnel("s1", "underlay_vrf: wan"),
         "t.yaml:7:285: manual_sas[0].underlay_vrf: unknown VRF 'wan' (defined: default, corp)"},
        {tunnel("s1", "lifetime: { soft_bytes: 10, hard_bytes: 5 }"),
         "t.yaml:7:295: manual_sas[0].lifetime.soft_bytes: must be below hard_bytes"},
        {tunnel("s1", "keys: 1"), "t.yaml:7:271: manual_sas[0].keys: unknown key"},
        {"  - { name: s1, cipher: aes128gcm16 }\n",
         "t.yaml:7:5: manual_sas[0].allowed: required key is missing (the inner prefixes the site may use)"},
    };
    int n = 0;
    for (auto& c : cases) {
        std::string y = std::string(kEspBase) + c.yaml;
        INFO("case " << n++ << ": " << y);
        auto r = parse(y, "t.yaml");
        CHECK_FALSE(r.ok());
        bool found = std::find(r.errors.begin(), r.errors.end(), c.error) != r.errors.end();
        CHECK(found);
        if (!found)
            for (auto& e : r.errors) WARN("got: " << e);
        for (auto& e : r.errors) {
            CHECK(e.find("0102030405060708") == std::string::npos);
            CHECK(e.find("secretsecret") == std::string::npos);
        }
    }
}

TEST_CASE("mgmt.metrics per-tunnel series and mgmt.alarms thresholds: defaults, overrides, errors") {
    auto d = parse(kBase, "c.yaml");
    REQUIRE(d.ok());
    CHECK(d.config->mgmt.metrics_per_tunnel == "auto");
    CHECK(d.config->mgmt.metrics_per_tunnel_limit == 1000);
    CHECK(d.config->mgmt.alarm_cert_days == 30);
    CHECK(d.config->mgmt.alarm_crl_hours == 24);
    auto r = parse(std::string(kBase) +
                       "mgmt:\n"
                       "  metrics: { listen: \"127.0.0.1:9100\", per_tunnel: on, per_tunnel_limit: 5000 }\n"
                       "  alarms: { cert_expiry_days: 14, crl_expiry_hours: 6 }\n",
                   "c.yaml");
    for (auto& e : r.errors) WARN(e);
    REQUIRE(r.ok());
    CHECK(r.config->mgmt.metrics_per_tunnel == "on");
    CHECK(r.config->mgmt.metrics_per_tunnel_limit == 5000);
    CHECK(r.config->mgmt.alarm_cert_days == 14);
    CHECK(r.config->mgmt.alarm_crl_hours == 6);

    struct Case {
        const char* yaml;
        const char* error;
    };
    const Case cases[] = {
        {"node: { name: a }\nmgmt: { metrics: { per_tunnel: yes } }\n",
         "t.yaml:2:32: mgmt.metrics.per_tunnel: 'yes' is not one of: auto, on, off"},
        {"node: { name: a }\nmgmt: { metrics: { per_tunnel_limit: -1 } }\n",
         "t.yaml:2:38: mgmt.metrics.per_tunnel_limit: -1 is out of range 0..10000000"},
        {"node: { name: a }\nmgmt: { metrics: { per_tunnels: on } }\n",
         "t.yaml:2:20: mgmt.metrics.per_tunnels: unknown key (did you mean 'per_tunnel'?)"},
        {"node: { name: a }\nmgmt: { alarms: { cert_expiry_days: 4000 } }\n",
         "t.yaml:2:37: mgmt.alarms.cert_expiry_days: 4000 is out of range 0..3650"},
        {"node: { name: a }\nmgmt: { alarms: { crl_expiry_hours: x } }\n",
         "t.yaml:2:37: mgmt.alarms.crl_expiry_hours: expected an integer, found 'x'"},
        {"node: { name: a }\nmgmt: { alarms: { crl_hours: 2 } }\n",
         "t.yaml:2:19: mgmt.alarms.crl_hours: unknown key"},
    };
    int n = 0;
    for (auto& c : cases) {
        INFO("case " << n++ << ": " << c.yaml);
        auto e = parse(c.yaml, "t.yaml");
        CHECK_FALSE(e.ok());
        CHECK(std::find(e.errors.begin(), e.errors.end(), c.error) != e.errors.end());
        if (std::find(e.errors.begin(), e.errors.end(), c.error) == e.errors.end())
            for (auto& x : e.errors) WARN("got: " << x);
    }
}
