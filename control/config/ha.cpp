// ha: { vrid, priority, preempt, preempt_delay_ms, advert_interval_ms,
//       interfaces: [ports], virtual_ips: [addr/len], track: [...], garp: {...} }
//
// track: [{ port: NAME | frr: zebra, weight: N | fault: true }]: a port's
// link, or nimbus's ZAPI session to zebra (up while zebra has accepted us:
// a master whose FRR went away hands over, so the core follows the box
// that can still announce the sites).
//
// One VRRPv3 sync group: every listed interface runs an instance for each
// address family among the virtual IPs that fall in its connected subnets.
// Each virtual IP must lie in a subnet of exactly one listed port, with that
// subnet's prefix length (or as a host address).
#include "control/config/ha.h"

#include <algorithm>

#include <fmt/format.h>

namespace nimbus::config {

namespace {

// The address of port `p` whose subnet holds `a` (same family), if any.
const IfAddr* subnet_of(const Port& p, const IpAddr& a) {
    for (auto& pa : p.addresses)
        if (pa.addr.family == a.family && pa.subnet().contains(a)) return &pa;
    return nullptr;
}

std::string subnets(const Config& c, const std::vector<std::string>& ports) {
    std::string s;
    for (auto& name : ports) {
        const Port* p = c.port(name);
        if (!p) continue;
        std::string a;
        for (auto& pa : p->addresses) a += (a.empty() ? "" : ", ") + pa.str();
        s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", name, a.empty() ? "no addresses" : a);
    }
    return s;
}

void read_track(MapReader& m, Ha& h, const Config& c, bool has_zebra) {
    Errors& e = m.errors();
    each(m.get("track"), m.path("track"), e, [&](const YAML::Node& n, const std::string& path) {
        MapReader t(n, path, e);
        if (!t.valid()) return;
        HaTrack tr;
        tr.where = where_of(n);
        bool ok = true;
        if (t.has("port") == t.has("frr")) {
            e.add(n.Mark(), path,
                  "give either 'port: NAME' (a link) or 'frr: zebra' (nimbus's ZAPI session to zebra) to track");
            ok = false;
            t.get("port");   // known keys either way: no "unknown key" on top
            t.get("frr");
        } else if (t.has("port")) {
            if (auto s = t.str("port", true)) {
                if (!c.port(*s)) {
                    e.add(t.get("port").Mark(), path + ".port", fmt::format("unknown port '{}'", *s));
                    ok = false;
                } else {
                    for (auto& o : h.track)
                        if (o.port == *s) {
                            e.add(t.get("port").Mark(), path + ".port",
                                  fmt::format("port '{}' is already tracked at line {}", *s, o.where.line));
                            ok = false;
                        }
                    tr.port = *s;
                }
            } else {
                ok = false;
            }
        } else if (auto s = t.choice("frr", {"zebra"})) {
            if (!has_zebra) {
                e.add(t.get("frr").Mark(), path + ".frr",
                      "nimbus has no session to zebra to track: set routing.zebra (the zserv socket)");
                ok = false;
            }
            for (auto& o : h.track)
                if (o.frr == *s) {
                    e.add(t.get("frr").Mark(), path + ".frr",
                          fmt::format("frr '{}' is already tracked at line {}", *s, o.where.line));
                    ok = false;
                }
            tr.frr = *s;
        } else {
            ok = false;
        }
        auto w = t.integer("weight", 1, 254);
        auto f = t.boolean("fault");
        if (t.has("weight") && !w) ok = false;
        if (t.has("fault") && !f) ok = false;
        if (ok && (bool(w) == (f && *f) || (f && !*f && !w))) {
            e.add(n.Mark(), path,
                  fmt::format("give either 'weight: N' (priority drops by N while the {} is down) or 'fault: true' "
                              "({} down forces backup)",
                              tr.frr.empty() ? "link" : "session", tr.frr.empty() ? "link" : "session"));
            ok = false;
        }
        if (w) tr.weight = int(*w);
        if (f) tr.fault = *f;
        t.finish();
        if (ok) h.track.push_back(tr);
    });
}

void read_garp(MapReader& m, Ha& h) {
    if (!m.has("garp")) return;
    MapReader g(m.get("garp"), m.path("garp"), m.errors());
    if (auto v = g.integer("repeat", 0, 255)) h.garp.repeat = int(*v);
    if (auto v = g.integer("delay_ms", 0, 60000)) h.garp.delay_ms = int(*v);
    if (auto v = g.integer("refresh_s", 0, 86400)) h.garp.refresh_s = int(*v);
    g.finish();
}

}  // namespace

void read_ha(MapReader& top, Config& c) {
    if (!top.has("ha")) return;
    YAML::Node n = top.get("ha");
    MapReader m(n, "ha", top.errors());
    if (!m.valid()) return;
    Errors& e = m.errors();
    Ha h;
    h.where = where_of(n);

    if (auto v = m.integer("vrid", 1, 255, true)) h.vrid = int(*v);
    if (auto v = m.integer("priority", 1, 255)) h.priority = int(*v);
    if (auto v = m.boolean("preempt")) h.preempt = *v;
    if (auto v = m.integer("preempt_delay_ms", 0, 3600000)) h.preempt_delay_ms = int(*v);
    if (auto v = m.integer("advert_interval_ms", 10, 40950)) {
        if (*v % 10 != 0)
            e.add(m.get("advert_interval_ms").Mark(), m.path("advert_interval_ms"),
                  fmt::format("{} is not a multiple of 10 (VRRPv3 advertises centiseconds, RFC 5798 §5.2.7)", *v));
        else h.advert_interval_ms = int(*v);
    }

    // interfaces: the ports that run an instance.
    std::vector<YAML::Node> if_nodes;
    if (!m.has("interfaces")) {
        e.add(m.node().Mark(), m.path("interfaces"), "required key is missing");
    } else {
        each(m.get("interfaces"), m.path("interfaces"), e, [&](const YAML::Node& in, const std::string& path) {
            auto s = as_str(in, path, e);
            if (!s) return;
            if (!c.port(*s)) {
                e.add(in.Mark(), path, fmt::format("unknown port '{}'", *s));
            } else if (std::find(h.interfaces.begin(), h.interfaces.end(), *s) != h.interfaces.end()) {
                e.add(in.Mark(), path, fmt::format("port '{}' is listed twice", *s));
            } else {
                h.interfaces.push_back(*s);
                if_nodes.push_back(in);
            }
        });
        if (m.get("interfaces").IsSequence() && m.get("interfaces").size() == 0)
            e.add(m.get("interfaces").Mark(), m.path("interfaces"), "at least one interface is needed");
    }

    // virtual_ips: each in a connected subnet of a listed port.
    std::vector<bool> port_has_vip(h.interfaces.size(), false);
    if (!m.has("virtual_ips")) {
        e.add(m.node().Mark(), m.path("virtual_ips"), "required key is missing");
    } else {
        each(m.get("virtual_ips"), m.path("virtual_ips"), e, [&](const YAML::Node& vn, const std::string& path) {
            auto a = as_ifaddr(vn, path, e);
            if (!a) return;
            for (size_t j = 0; j < h.virtual_ips.size(); j++)
                if (h.virtual_ips[j].addr == a->addr) {
                    e.add(vn.Mark(), path, fmt::format("{} is already listed as virtual_ips[{}]", a->addr.str(), j));
                    return;
                }
            for (auto& p : c.ports)
                for (auto& pa : p.addresses)
                    if (pa.addr == a->addr) {
                        e.add(vn.Mark(), path,
                              fmt::format("{} is the address of port '{}'; a virtual IP must be an address of its "
                                          "own", a->addr.str(), p.name));
                        return;
                    }
            int found = -1;
            const IfAddr* sub = nullptr;
            for (size_t i = 0; i < h.interfaces.size() && found < 0; i++)
                if ((sub = subnet_of(*c.port(h.interfaces[i]), a->addr))) found = int(i);
            if (found < 0) {
                if (!h.interfaces.empty())
                    e.add(vn.Mark(), path,
                          fmt::format("{} is not in a connected subnet of the listed interfaces ({})", a->str(),
                                      subnets(c, h.interfaces)));
                return;
            }
            if (a->len != sub->len && a->len != a->addr.bits()) {
                e.add(vn.Mark(), path,
                      fmt::format("{}: the prefix length must be /{} like {} of port '{}' (or /{})", a->str(),
                                  sub->len, sub->str(), h.interfaces[size_t(found)], a->addr.bits()));
                return;
            }
            port_has_vip[size_t(found)] = true;
            h.virtual_ips.push_back(*a);
        });
        if (m.get("virtual_ips").IsSequence() && m.get("virtual_ips").size() == 0)
            e.add(m.get("virtual_ips").Mark(), m.path("virtual_ips"), "at least one virtual IP is needed");
    }
    if (m.has("virtual_ips") && m.get("virtual_ips").IsSequence() && m.get("virtual_ips").size() > 0 &&
        h.virtual_ips.size() == m.get("virtual_ips").size())
        for (size_t i = 0; i < h.interfaces.size(); i++)
            if (!port_has_vip[i])
                e.add(if_nodes[i].Mark(), fmt::format("{}[{}]", m.path("interfaces"), i),
                      fmt::format("no virtual IP falls in a subnet of port '{}' (each listed interface runs a VRRP "
                                  "instance, which needs at least one address, RFC 9568 §5.2.5)",
                                  h.interfaces[i]));

    // routing: is read after ha:; what a track needs of it is known already.
    const YAML::Node rn = top.get("routing");
    bool has_zebra = rn.IsMap() && rn["zebra"].IsDefined() && rn["zebra"].IsScalar() && !rn["zebra"].Scalar().empty();
    read_track(m, h, c, has_zebra);
    read_garp(m, h);
    m.finish();
    c.ha = std::move(h);
}

}  // namespace nimbus::config
