// firewall: [{ vrf: NAME | cloud: NAME, ingress_default: allow|deny,
//              egress_default: allow|deny, state_timeout: S,
//              ingress: [RULE...], egress: [RULE...] }]
// RULE: { name, action: allow|deny|allow-stateful, family: ipv4|ipv6,
//         proto: tcp|udp|icmp|ipv6-icmp|sctp|NUMBER, src: PREFIX|[PREFIX..],
//         dst: ..., sport: N|"N-M", dport: N|"N-M", dscp: VALUE|[VALUE..] }
//
// One entry per VRF: it applies to the tunnels whose inner VRF that is
// (a cloud's, or static tunnels'). Ingress is what leaves those tunnels
// (decrypted), egress what enters them.
#include "control/config/firewall.h"

#include <charconv>
#include <set>

#include <fmt/format.h>

#include "control/config/clouds.h"

namespace nimbus::config {

namespace {

struct ProtoName {
    const char* name;
    int num;
};
constexpr ProtoName kProtos[] = {{"icmp", 1},  {"tcp", 6},     {"udp", 17},        {"gre", 47}, {"esp", 50},
                                 {"ah", 51},   {"ipv6-icmp", 58}, {"icmpv6", 58}, {"sctp", 132}, {"udplite", 136}};

std::string proto_str(int p) {
    for (auto& x : kProtos)
        if (x.num == p) return x.name;
    return fmt::format("proto {}", p);
}

bool has_ports(int proto) { return proto == 6 || proto == 17 || proto == 132 || proto == 136; }

std::optional<std::pair<int, int>> port_range(const std::string& s) {
    auto num = [](std::string_view v) -> std::optional<int> {
        int x = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        if (v.empty() || ec != std::errc() || p != v.data() + v.size() || x < 0 || x > 65535) return std::nullopt;
        return x;
    };
    auto dash = s.find('-');
    if (dash == std::string::npos) {
        auto v = num(s);
        if (!v) return std::nullopt;
        return std::make_pair(*v, *v);
    }
    auto a = num(std::string_view(s).substr(0, dash)), b = num(std::string_view(s).substr(dash + 1));
    if (!a || !b || *a > *b) return std::nullopt;
    return std::make_pair(*a, *b);
}

// A scalar or a list of scalars.
void each_scalar(const YAML::Node& n, const std::string& path, Errors& e,
                 const std::function<void(const YAML::Node&, const std::string&)>& f) {
    if (n.IsSequence()) each(n, path, e, f);
    else f(n, path);
}

std::optional<FwRule> read_rule(const YAML::Node& n, const std::string& path, Errors& e) {
    MapReader m(n, path, e);
    FwRule r;
    r.where = where_of(n);
    bool ok = m.valid();
    if (auto s = m.str("name")) r.name = *s;
    if (auto a = m.choice("action", {"allow", "deny", "allow-stateful"}, true)) r.action = *a;
    else ok = false;
    if (auto f = m.choice("family", {"ipv4", "ipv6"})) r.family = *f == "ipv4" ? 4 : 6;
    if (m.has("proto")) {
        auto pn = m.get("proto");
        if (auto s = as_str(pn, m.path("proto"), e)) {
            int v = -1;
            for (auto& x : kProtos)
                if (*s == x.name) v = x.num;
            if (v < 0) {
                int x = 0;
                auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
                if (!s->empty() && ec == std::errc() && p == s->data() + s->size() && x >= 0 && x <= 255) v = x;
            }
            if (v < 0) {
                e.add(pn.Mark(), m.path("proto"),
                      fmt::format("'{}' is not a protocol (tcp, udp, icmp, ipv6-icmp, sctp, gre, esp, ah, udplite "
                                  "or 0..255)",
                                  *s));
                ok = false;
            }
            r.proto = v;
        } else {
            ok = false;
        }
    }
    for (const char* key : {"src", "dst"}) {
        std::string k = key;
        if (!m.has(k)) continue;
        auto& out = k == "src" ? r.src : r.dst;
        each_scalar(m.get(k), m.path(k), e, [&](const YAML::Node& pn, const std::string& pp) {
            auto p = as_prefix(pn, pp, e);
            if (!p) {
                ok = false;
                return;
            }
            int fam = p->is_v4() ? 4 : 6;
            if (r.family && r.family != fam) {
                e.add(pn.Mark(), pp, fmt::format("{} is IPv{}, but the rule has `family: ipv{}`", p->str(), fam,
                                                 r.family));
                ok = false;
                return;
            }
            out.push_back(*p);
        });
    }
    // Source and destination prefixes of no common family: never matches.
    auto fams = [](const std::vector<Prefix>& v) {
        int f = 0;
        for (auto& p : v) f |= p.is_v4() ? 1 : 2;
        return f;
    };
    if (ok && !r.src.empty() && !r.dst.empty() && !(fams(r.src) & fams(r.dst))) {
        e.add(m.get("dst").Mark(), m.path("dst"), "no address family in common with `src`: the rule could never match");
        ok = false;
    }
    for (const char* key : {"sport", "dport"}) {
        std::string k = key;
        if (!m.has(k)) continue;
        auto pn = m.get(k);
        auto s = as_str(pn, m.path(k), e);
        auto range = s ? port_range(*s) : std::nullopt;
        if (!range) {
            if (s) e.add(pn.Mark(), m.path(k), fmt::format("'{}' is not a port or a range LOW-HIGH in 0..65535", *s));
            ok = false;
            continue;
        }
        if (!has_ports(r.proto)) {
            e.add(pn.Mark(), m.path(k), "ports need `proto: tcp`, `udp`, `sctp` or `udplite`");
            ok = false;
            continue;
        }
        r.ports = true;
        (k == "sport" ? r.sport_lo : r.dport_lo) = range->first;
        (k == "sport" ? r.sport_hi : r.dport_hi) = range->second;
    }
    if (m.has("dscp")) {
        each_scalar(m.get("dscp"), m.path("dscp"), e, [&](const YAML::Node& dn, const std::string& dp) {
            auto v = as_str(dn, dp, e);
            int d = v ? dscp_value(*v) : -1;
            if (d < 0) {
                if (v) e.add(dn.Mark(), dp, fmt::format("'{}' is not a DSCP (0..63, be, ef, va, cs0..cs7, af11..af43)", *v));
                ok = false;
                return;
            }
            r.dscp |= uint64_t(1) << d;
        });
    }
    m.finish();
    if (!ok) return std::nullopt;
    return r;
}

}  // namespace

std::string FwRule::match_str() const {
    auto list = [](const std::vector<Prefix>& ps) {
        if (ps.empty()) return std::string("any");
        std::string s;
        for (auto& p : ps) s += (s.empty() ? "" : ",") + p.str();
        return s;
    };
    std::string s;
    if (proto >= 0) s += proto_str(proto) + " ";
    else if (family) s += fmt::format("ipv{} ", family);
    s += list(src) + " -> " + list(dst);
    auto range = [](int lo, int hi) { return lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi); };
    if (ports && (sport_lo != 0 || sport_hi != 65535)) s += " sport " + range(sport_lo, sport_hi);
    if (ports && (dport_lo != 0 || dport_hi != 65535)) s += " dport " + range(dport_lo, dport_hi);
    if (dscp) {
        std::string d;
        for (int i = 0; i < 64; i++)
            if ((dscp >> i) & 1) d += (d.empty() ? "" : ",") + std::to_string(i);
        s += " dscp " + d;
    }
    return s;
}

std::string FwRule::identity() const { return fmt::format("{}|{}|{}|{}", name, action, family, match_str()); }

void read_firewall(MapReader& top, Config& c) {
    std::map<std::string, int> seen;  // VRF -> line of its entry
    each(top.get("firewall"), "firewall", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        Firewall f;
        f.where = where_of(n);
        bool ok = m.valid();
        auto vrf = m.str("vrf");
        auto cloud = m.str("cloud");
        if (vrf && cloud) {
            e.add(n.Mark(), path, "give either `vrf` or `cloud`, not both");
            ok = false;
        } else if (cloud) {
            const Cloud* cl = c.cloud(*cloud);
            if (!cl) {
                e.add(m.get("cloud").Mark(), m.path("cloud"), fmt::format("unknown cloud '{}'", *cloud));
                ok = false;
            } else {
                f.cloud = *cloud;
                f.vrf = cl->vrf;
            }
        } else if (vrf) {
            if (!c.vrf(*vrf)) {
                e.add(m.get("vrf").Mark(), m.path("vrf"), fmt::format("unknown VRF '{}'", *vrf));
                ok = false;
            } else {
                f.vrf = *vrf;
            }
        }
        if (auto d = m.choice("ingress_default", {"allow", "deny"})) f.ingress_default = *d;
        if (auto d = m.choice("egress_default", {"allow", "deny"})) f.egress_default = *d;
        if (auto t = m.integer("state_timeout", 1, 86400)) f.state_timeout = int(*t);
        for (const char* dir : {"ingress", "egress"}) {
            std::string d = dir;
            auto& rules = d == "ingress" ? f.ingress : f.egress;
            std::map<std::string, int> names;
            each(m.get(d), m.path(d), e, [&](const YAML::Node& rn, const std::string& rp) {
                auto r = read_rule(rn, rp, e);
                if (!r) {
                    ok = false;
                    return;
                }
                if (!r->name.empty()) {
                    auto [it, fresh] = names.emplace(r->name, r->where.line);
                    if (!fresh) {
                        e.add(rn.Mark(), rp,
                              fmt::format("rule name '{}' already used at line {}", r->name, it->second));
                        ok = false;
                        return;
                    }
                }
                rules.push_back(std::move(*r));
            });
        }
        m.finish();
        if (ok) {
            auto [it, fresh] = seen.emplace(f.vrf, f.where.line);
            if (!fresh) {
                e.add(n.Mark(), path,
                      fmt::format("VRF '{}' already has a firewall (line {}); one entry per VRF", f.vrf, it->second));
                ok = false;
            }
        }
        if (ok) c.firewall.push_back(std::move(f));
    });
}

}  // namespace nimbus::config
