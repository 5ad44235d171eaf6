// The `firewall:` section: parsed into rules, broken entries refused with
// their exact position, applies planned as the rules that changed, and the
// dataplane specs with counter slots that stay with their rules.
#include <catch2/catch.hpp>

#include "control/config/plan.h"
#include "control/firewall/policy.h"

using nimbus::config::parse;
namespace fw = nimbus::firewall;

namespace {

std::string cfg(const std::string& firewall) {
    return "node: { name: conc-a }\n"
           "vrfs: [ { name: corp } ]\n"
           "ports:\n"
           "  - { name: wan0, device: \"net_af_packet0,iface=v0\", addresses: [192.0.2.10/24] }\n"
           "clouds:\n"
           "  - { name: shops, vrf: corp, psk: \"lab-psk-0123456789abcdef\", sites: [] }\n" +
           firewall;
}

nimbus::config::Config ok(const std::string& text) {
    auto r = parse(text, "t.yaml");
    INFO(text);
    for (auto& e : r.errors) INFO(e);
    REQUIRE(r.ok());
    return *r.config;
}

const std::string kFw =
    "firewall:\n"
    "  - cloud: shops\n"
    "    ingress_default: deny\n"
    "    state_timeout: 120\n"
    "    ingress:\n"
    "      - { name: pos, action: allow, proto: tcp, src: 10.16.0.0/12, dst: [10.0.1.0/24], dport: 8443 }\n"
    "      - { action: allow, proto: icmp }\n"
    "    egress:\n"
    "      - { name: voice, action: allow, proto: udp, dport: 10000-20000, dscp: [ef, 34] }\n"
    "      - { name: out, action: allow-stateful, src: [10.0.0.0/8, \"fd00::/8\"] }\n";

}  // namespace

TEST_CASE("a firewall section parses into rules per direction") {
    auto c = ok(cfg(kFw));
    REQUIRE(c.firewall.size() == 1);
    auto& f = c.firewall[0];
    CHECK(f.vrf == "corp");
    CHECK(f.cloud == "shops");
    CHECK(f.ingress_default == "deny");
    CHECK(f.egress_default == "allow");
    CHECK(f.state_timeout == 120);
    REQUIRE(f.ingress.size() == 2);
    CHECK(f.ingress[0].match_str() == "tcp 10.16.0.0/12 -> 10.0.1.0/24 dport 8443");
    CHECK(f.ingress[0].where.line == 12);
    CHECK(f.ingress[1].match_str() == "icmp any -> any");
    REQUIRE(f.egress.size() == 2);
    CHECK(f.egress[0].match_str() == "udp any -> any dport 10000-20000 dscp 34,46");
    CHECK(f.egress[0].dscp == ((uint64_t(1) << 46) | (uint64_t(1) << 34)));
    CHECK(f.egress[1].action == "allow-stateful");
    CHECK(f.egress[1].match_str() == "10.0.0.0/8,fd00::/8 -> any");
}

TEST_CASE("broken firewall entries are refused with their positions") {
    struct Case {
        std::string fw;
        const char* error;
    };
    const Case cases[] = {
        {"firewall:\n  - { vrf: nowhere }\n", "t.yaml:8:12: firewall[0].vrf: unknown VRF 'nowhere'"},
        {"firewall:\n  - { cloud: malls }\n", "t.yaml:8:14: firewall[0].cloud: unknown cloud 'malls'"},
        {"firewall:\n  - { vrf: corp, cloud: shops }\n", "t.yaml:8:5: firewall[0]: give either `vrf` or `cloud`, not both"},
        {"firewall:\n  - { vrf: corp, ingress_default: drop }\n",
         "t.yaml:8:35: firewall[0].ingress_default: 'drop' is not one of: allow, deny"},
        {"firewall:\n  - { vrf: corp, state_timeout: 0 }\n",
         "t.yaml:8:33: firewall[0].state_timeout: 0 is out of range 1..86400"},
        {"firewall:\n  - { vrf: corp, ingress: [ { proto: tcp } ] }\n",
         "t.yaml:8:29: firewall[0].ingress[0].action: required key is missing"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: permit } ] }\n",
         "t.yaml:8:38: firewall[0].egress[0].action: 'permit' is not one of: allow, deny, allow-stateful"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, proto: tpc } ] }\n",
         "t.yaml:8:51: firewall[0].egress[0].proto: 'tpc' is not a protocol (tcp, udp, icmp, ipv6-icmp, sctp, "
         "gre, esp, ah, udplite or 0..255)"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, dport: 22 } ] }\n",
         "t.yaml:8:51: firewall[0].egress[0].dport: ports need `proto: tcp`, `udp`, `sctp` or `udplite`"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, proto: udp, dport: 20-10 } ] }\n",
         "t.yaml:8:63: firewall[0].egress[0].dport: '20-10' is not a port or a range LOW-HIGH in 0..65535"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, proto: udp, sport: 70000 } ] }\n",
         "t.yaml:8:63: firewall[0].egress[0].sport: '70000' is not a port or a range LOW-HIGH in 0..65535"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, src: 10.0.0.0/33 } ] }\n",
         "t.yaml:8:49: firewall[0].egress[0].src: '10.0.0.0/33' is not a valid IP prefix"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, family: ipv6, dst: [10.0.0.0/8] } ] }\n",
         "t.yaml:8:64: firewall[0].egress[0].dst[0]: 10.0.0.0/8 is IPv4, but the rule has `family: ipv6`"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, src: 10.0.0.0/8, dst: \"fd00::/8\" } ] }\n",
         "t.yaml:8:66: firewall[0].egress[0].dst: no address family in common with `src`: the rule could never "
         "match"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, dscp: [ef, gold] } ] }\n",
         "t.yaml:8:55: firewall[0].egress[0].dscp[1]: 'gold' is not a DSCP (0..63, be, ef, va, cs0..cs7, "
         "af11..af43)"},
        {"firewall:\n  - { vrf: corp, egress: [ { action: deny, port: 22 } ] }\n",
         "t.yaml:8:44: firewall[0].egress[0].port: unknown key (did you mean 'sport'?)"},
        {"firewall:\n  - vrf: corp\n    egress:\n      - { name: a, action: deny }\n      - { name: a, action: allow }\n",
         "t.yaml:11:9: firewall[0].egress[1]: rule name 'a' already used at line 10"},
        {"firewall:\n  - { vrf: corp }\n  - { cloud: shops }\n",
         "t.yaml:9:5: firewall[1]: VRF 'corp' already has a firewall (line 8); one entry per VRF"},
    };
    for (auto& c : cases) {
        auto r = parse(cfg(c.fw), "t.yaml");
        INFO(c.fw);
        CHECK_FALSE(r.ok());
        REQUIRE(r.errors.size() >= 1);
        CHECK(r.errors[0] == c.error);
    }
}

TEST_CASE("an apply plans only the firewall rules that changed") {
    using nimbus::config::plan;
    auto base = ok(cfg(""));
    auto one = ok(cfg(kFw));
    auto p = plan(base, one);
    CHECK(p.ops() == std::vector<std::string>{"firewall: vrf corp: added (2 ingress, 2 egress rules)"});
    CHECK(p.routes_add.empty());
    CHECK_FALSE(p.ike);

    std::string more = kFw + "      - { name: ssh, action: deny, proto: tcp, dport: 22 }\n";
    auto two = ok(cfg(more));
    CHECK(plan(one, two).ops() == std::vector<std::string>{"firewall: vrf corp: egress + ssh"});

    std::string changed = kFw;
    changed.replace(changed.find("dport: 8443"), 11, "dport: 9443");
    CHECK(plan(one, ok(cfg(changed))).ops() ==
          std::vector<std::string>{"firewall: vrf corp: ingress - pos", "firewall: vrf corp: ingress + pos"});

    std::string swapped = kFw;
    auto voice = swapped.find("      - { name: voice");
    auto outl = swapped.find("      - { name: out");
    std::string v = swapped.substr(voice, outl - voice), o = swapped.substr(outl);
    swapped = swapped.substr(0, voice) + o + v;
    CHECK(plan(one, ok(cfg(swapped))).ops() == std::vector<std::string>{"firewall: vrf corp: order ~"});

    std::string deflt = kFw;
    deflt.replace(deflt.find("ingress_default: deny"), 21, "ingress_default: allow");
    CHECK(plan(one, ok(cfg(deflt))).ops() == std::vector<std::string>{"firewall: vrf corp: settings ~"});
    CHECK(plan(one, base).ops() == std::vector<std::string>{"firewall: vrf corp: removed"});
    CHECK(plan(one, ok(cfg(kFw))).empty());
}

TEST_CASE("counter slots stay with their rules across applies and are reused once free") {
    fw::Slots s;
    std::string err;
    auto one = ok(cfg(kFw));
    auto n1 = s.plan(one, &err);
    REQUIRE(n1);
    REQUIRE(n1->specs.count(1));  // VRF corp is index 1
    const auto spec1 = n1->specs.at(1);
    CHECK(spec1.in.dflt == nimbus::dp::FwAction::Deny);
    CHECK(spec1.out.dflt == nimbus::dp::FwAction::Allow);
    CHECK(spec1.state_timeout_s == 120);
    REQUIRE(spec1.in.rules.size() == 2);
    REQUIRE(spec1.out.rules.size() == 2);
    CHECK(spec1.out.rules[1].action == nimbus::dp::FwAction::AllowStateful);
    CHECK(spec1.in.rules[0].ports);
    CHECK(spec1.in.rules[0].dport_lo == 8443);
    CHECK(s.fresh(*n1).size() == 8);  // 4 rules + flows and default per direction
    CHECK(s.commit(*n1).empty());

    // A rule added in front: every other slot is kept.
    std::string more = kFw;
    more.replace(more.find("      - { name: voice"), 0, "      - { name: ssh, action: deny, proto: tcp, dport: 22 }\n");
    auto two = ok(cfg(more));
    auto n2 = s.plan(two, &err);
    REQUIRE(n2);
    const auto& spec2 = n2->specs.at(1);
    CHECK(spec2.out.rules[1].slot == spec1.out.rules[0].slot);
    CHECK(spec2.out.rules[2].slot == spec1.out.rules[1].slot);
    CHECK(spec2.in.rules[0].slot == spec1.in.rules[0].slot);
    CHECK(spec2.in.default_slot == spec1.in.default_slot);
    CHECK(spec2.out.state_slot == spec1.out.state_slot);
    auto fresh = s.fresh(*n2);
    REQUIRE(fresh.size() == 1);
    CHECK(fresh[0] == spec2.out.rules[0].slot);
    CHECK(s.commit(*n2).empty());

    // Removed: its slot comes back, after release, for the next new rule.
    auto n3 = s.plan(one, &err);
    REQUIRE(n3);
    auto gone = s.commit(*n3);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0] == fresh[0]);
    s.release(gone);
    auto n4 = s.plan(two, &err);
    REQUIRE(n4);
    CHECK(n4->specs.at(1).out.rules[0].slot == gone[0]);

    // Rows for `show firewall` carry the same slots.
    auto rows = fw::rows(one.firewall[0], true, s);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].name == "pos");
    CHECK(rows[0].slot == spec1.in.rules[0].slot);
    CHECK(rows[2].pseudo);
    CHECK(rows[2].name == "(flows)");
    CHECK(rows[3].name == "(default)");
    CHECK(rows[3].action == "deny");
    CHECK(rows[3].slot == spec1.in.default_slot);
}

TEST_CASE("running out of counter slots is refused before anything changes") {
    std::string many = "firewall:\n  - vrf: corp\n    egress:\n";
    for (uint32_t i = 0; i < nimbus::dp::kFwSlots; i++)
        many += "      - { action: deny, proto: udp, dport: " + std::to_string(i % 65536) + ", name: r" +
                std::to_string(i) + " }\n";
    auto c = ok(cfg(many));
    fw::Slots s;
    std::string err;
    CHECK_FALSE(s.plan(c, &err));
    CHECK(err == "firewall: more than 8192 rules and counters in all");
    CHECK(s.current().empty());
}
