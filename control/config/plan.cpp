#include "control/config/plan.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

namespace nimbus::config {

namespace {

template <class T, class Key>
const T* find_by(const std::vector<T>& v, const Key& key, auto get) {
    for (auto& x : v)
        if (get(x) == key) return &x;
    return nullptr;
}

// For the long lists (100,000 tunnels, a cloud's sites): name -> element,
// so that planning is not O(n^2) on the control thread.
template <class T>
std::unordered_map<std::string, const T*> index_by(const std::vector<T>& v, auto get) {
    std::unordered_map<std::string, const T*> m;
    m.reserve(v.size());
    for (auto& x : v) m.emplace(get(x), &x);
    return m;
}

template <class T>
const T* lookup(const std::unordered_map<std::string, const T*>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? nullptr : it->second;
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
        auto old_sites = index_by(o->sites, id), new_sites = index_by(c.sites, id);
        for (auto& s : o->sites)
            if (!lookup(new_sites, s.id)) out->push_back(fmt::format("cloud {}: site - {}", c.name, s.id));
        for (auto& s : c.sites) {
            const Site* os = lookup(old_sites, s.id);
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

void firewall_changes(const Config& a, const Config& b, std::vector<std::string>* out) {
    auto vrf = [](const Firewall& f) { return f.vrf; };
    for (auto& f : a.firewall)
        if (!find_by(b.firewall, f.vrf, vrf)) out->push_back(fmt::format("vrf {}: removed", f.vrf));
    for (auto& f : b.firewall) {
        const Firewall* o = find_by(a.firewall, f.vrf, vrf);
        if (!o) {
            out->push_back(fmt::format("vrf {}: added ({} ingress, {} egress rules)", f.vrf, f.ingress.size(),
                                       f.egress.size()));
            continue;
        }
        if (*o == f) continue;
        size_t before = out->size();
        auto rules = [&](const char* dir, const std::vector<FwRule>& x, const std::vector<FwRule>& y) {
            auto label = [](const FwRule& r) { return r.name.empty() ? r.match_str() : r.name; };
            for (auto& r : x)
                if (std::find(y.begin(), y.end(), r) == y.end())
                    out->push_back(fmt::format("vrf {}: {} - {}", f.vrf, dir, label(r)));
            for (auto& r : y)
                if (std::find(x.begin(), x.end(), r) == x.end())
                    out->push_back(fmt::format("vrf {}: {} + {}", f.vrf, dir, label(r)));
        };
        rules("ingress", o->ingress, f.ingress);
        rules("egress", o->egress, f.egress);
        Firewall x = *o, y = f;
        x.ingress.clear();
        x.egress.clear();
        y.ingress.clear();
        y.egress.clear();
        if (!(x == y)) out->push_back(fmt::format("vrf {}: settings ~", f.vrf));
        // The same rules in another order.
        if (out->size() == before) out->push_back(fmt::format("vrf {}: order ~", f.vrf));
    }
}

}  // namespace

bool Plan::empty() const {
    return restart.empty() && firewall.empty() && routes_del.empty() && routes_add.empty() && tunnels_del.empty() &&
           tunnels_add.empty() && !ike && !routing && !ha;
}

std::vector<std::string> Plan::ops() const {
    std::vector<std::string> v;
    for (auto& s : restart) v.push_back(fmt::format("{}: needs a restart", s));
    for (auto& f : firewall) v.push_back("firewall: " + f);
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
    auto old_t = index_by(a.manual_sas, tname), new_t = index_by(b.manual_sas, tname);
    for (auto& t : a.manual_sas) {
        const ManualTunnel* n = lookup(new_t, t.name);
        if (!n || !(*n == t)) p.tunnels_del.push_back(t.name);
    }
    for (auto& t : b.manual_sas) {
        const ManualTunnel* o = lookup(old_t, t.name);
        if (!o || !(*o == t)) p.tunnels_add.push_back(t.name);
    }

    if (!(a.firewall == b.firewall)) firewall_changes(a, b, &p.firewall);
    p.ike = !(a.clouds == b.clouds && a.ike == b.ike && a.initiate == b.initiate);
    if (p.ike) cloud_changes(a, b, &p.ike_changes);
    p.routing = !(a.routing == b.routing);
    p.ha = !(a.ha == b.ha);
    return p;
}

}  // namespace nimbus::config
