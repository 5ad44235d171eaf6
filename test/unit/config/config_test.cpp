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
    "initiate:\n"
    "  - { peer: 192.0.2.1, cloud: corp, local_id: \"CN=edge-1\", local_prefixes: [10.20.0.0/24] }\n";

}  // namespace

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
