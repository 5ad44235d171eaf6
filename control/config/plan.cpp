#include "control/config/plan.h"

#include <algorithm>

#include <fmt/format.h>

namespace nimbus::config {

namespace {

template <class T, class Key>
const T* find_by(const std::vector<T>& v, const Key& key, auto get) {
    for (auto& x : v)
        if (get(x) == key) return &x;
    return nullptr;
}

std::string route_str(const Route& r) {
    std::string s = fmt::format("{} vrf {}", r.prefix.str(), r.vrf);
    if (r.blackhole) s += " blackhole";
    if (r.via) s += " via " + r.via->str();
    if (!r.port.empty()) s += " port " + r.port;
    if (r.distance != 1) s += fmt::format(" distance {}", r.distance);
    return s;
}

void cloud_changes(const Config& a, const Config& b, std::vector<std::string>* out) {
    auto name = [](const Cloud& c) { return c.name; };
    for (auto& c : a.clouds)
        if (!find_by(b.clouds, c.name, name)) out->push_back(fmt::format("cloud - {}", c.name));
    for (auto& c : b.clouds) {
        const Cloud* o = find_by(a.clouds, c.name, name);
        if (!o) {
            out->push_back(fmt::format("cloud + {} ({} sites)", c.name, c.sites.size()));
            continue;
        }
        if (*o == c) continue;
        auto id = [](const Site& s) { return s.id; };
        for (auto& s : o->sites)
            if (!find_by(c.sites, s.id, id)) out->push_back(fmt::format("cloud {}: site - {}", c.name, s.id));
        for (auto& s : c.sites) {
            const Site* os = find_by(o->sites, s.id, id);
            if (!os) out->push_back(fmt::format("cloud {}: site + {}", c.name, s.id));
            else if (!(*os == s)) out->push_back(fmt::format("cloud {}: site ~ {}", c.name, s.id));
        }
        Cloud x = *o, y = c;
        x.sites.clear();
        y.sites.clear();
        if (!(x == y)) out->push_back(fmt::format("cloud {}: settings ~", c.name));
    }
    if (!(a.ike == b.ike)) out->push_back("ike settings ~");
    if (!(a.initiate == b.initiate)) out->push_back(fmt::format("initiate ~ ({} entries)", b.initiate.size()));
}

}  // namespace

bool Plan::empty() const {
    return restart.empty() && routes_del.empty() && routes_add.empty() && tunnels_del.empty() &&
           tunnels_add.empty() && !ike && !routing && !ha;
}

std::vector<std::string> Plan::ops() const {
    std::vector<std::string> v;
    for (auto& s : restart) v.push_back(fmt::format("{}: needs a restart", s));
    for (auto& r : routes_del) v.push_back("route - " + route_str(r));
    for (auto& r : routes_add) v.push_back("route + " + route_str(r));
    for (auto& t : tunnels_del) v.push_back("tunnel - " + t);
    for (auto& t : tunnels_add) v.push_back("tunnel + " + t);
    for (auto& c : ike_changes) v.push_back("ike: " + c);
    if (ha) v.push_back("ha: restart");
    if (routing) v.push_back("routing: restart");
    return v;
}

Plan plan(const Config& a, const Config& b) {
    Plan p;
    if (!(a.node == b.node)) p.restart.push_back("node");
    if (!(a.dataplane == b.dataplane)) p.restart.push_back("dataplane");
    if (!(a.mgmt == b.mgmt)) p.restart.push_back("mgmt");
    if (!(a.vrfs == b.vrfs)) p.restart.push_back("vrfs");
    if (!(a.ports == b.ports)) p.restart.push_back("ports");

    for (auto& r : a.routes)
        if (std::find(b.routes.begin(), b.routes.end(), r) == b.routes.end()) p.routes_del.push_back(r);
    for (auto& r : b.routes)
        if (std::find(a.routes.begin(), a.routes.end(), r) == a.routes.end()) p.routes_add.push_back(r);

    auto tname = [](const ManualTunnel& t) { return t.name; };
    for (auto& t : a.manual_sas) {
        const ManualTunnel* n = find_by(b.manual_sas, t.name, tname);
        if (!n || !(*n == t)) p.tunnels_del.push_back(t.name);
    }
    for (auto& t : b.manual_sas) {
        const ManualTunnel* o = find_by(a.manual_sas, t.name, tname);
        if (!o || !(*o == t)) p.tunnels_add.push_back(t.name);
    }

    p.ike = !(a.clouds == b.clouds && a.ike == b.ike && a.initiate == b.initiate);
    if (p.ike) cloud_changes(a, b, &p.ike_changes);
    p.routing = !(a.routing == b.routing);
    p.ha = !(a.ha == b.ha);
    return p;
}

}  // namespace nimbus::config
