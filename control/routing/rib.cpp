#include "control/routing/rib.h"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::routing {

const char* source_name(Source s) {
    switch (s) {
        case Source::Local: return "local";
        case Source::Connected: return "connected";
        case Source::Static: return "static";
        case Source::Tunnel: return "tunnel";
        case Source::Fpm: return "fpm";
        case Source::Neighbor: return "neighbor";
    }
    return "?";
}

char source_code(Source s) {
    switch (s) {
        case Source::Local: return 'L';
        case Source::Connected: return 'C';
        case Source::Static: return 'S';
        case Source::Tunnel: return 'T';
        case Source::Fpm: return 'F';
        case Source::Neighbor: return 'N';
    }
    return '?';
}

int default_distance(Source s) {
    switch (s) {
        case Source::Local:
        case Source::Connected: return 0;
        case Source::Static: return 1;
        case Source::Tunnel: return 10;
        case Source::Fpm: return 200;
        case Source::Neighbor: return 250;
    }
    return 255;
}

void Rib::set_ports(std::vector<int> port_vrf, std::vector<std::string> port_names) {
    port_vrf_ = std::move(port_vrf);
    port_names_ = std::move(port_names);
}

void Rib::add(int vrf, const Route& r) {
    auto& v = vrfs_[vrf];
    auto& list = v.routes[r.prefix];
    auto it = std::find(list.begin(), list.end(), r);
    if (it != list.end()) *it = r;
    else list.push_back(r);
    v.dirty.insert(r.prefix);
    for (auto& o : observers_) o(vrf, r, true);
    if (r.source == Source::Connected) mark_all_dirty();  // gateways may resolve now
}

void Rib::remove(int vrf, const Prefix& p, Source s, const std::optional<NextHop>& nh) {
    auto vit = vrfs_.find(vrf);
    if (vit == vrfs_.end()) return;
    auto it = vit->second.routes.find(p);
    if (it == vit->second.routes.end()) return;
    auto& list = it->second;
    auto gone = std::stable_partition(list.begin(), list.end(),
                                      [&](const Route& r) { return !(r.source == s && (!nh || r.nh == *nh)); });
    if (gone == list.end()) return;
    std::vector<Route> removed(std::make_move_iterator(gone), std::make_move_iterator(list.end()));
    list.erase(gone, list.end());
    if (list.empty()) vit->second.routes.erase(it);
    vit->second.dirty.insert(p);
    if (s == Source::Connected) mark_all_dirty();
    for (auto& r : removed)
        for (auto& o : observers_) o(vrf, r, false);
}

void Rib::remove_source(int vrf, Source s) {
    auto vit = vrfs_.find(vrf);
    if (vit == vrfs_.end()) return;
    std::vector<Prefix> ps;
    for (auto& [p, list] : vit->second.routes)
        for (auto& r : list)
            if (r.source == s) {
                ps.push_back(p);
                break;
            }
    for (auto& p : ps) remove(vrf, p, s);
}

void Rib::mark_all_dirty() {
    for (auto& [id, v] : vrfs_)
        for (auto& [p, l] : v.routes) v.dirty.insert(p);
}

int Rib::connected_port(int vrf, const IpAddr& a) const {
    auto vit = vrfs_.find(vrf);
    if (vit == vrfs_.end()) return -1;
    int best = -1, best_len = -1;
    for (auto& [p, list] : vit->second.routes) {
        if (!p.contains(a) || p.len <= best_len) continue;
        for (auto& r : list)
            if (r.source == Source::Connected && r.nh.kind == NextHop::Kind::Glean) {
                best = r.nh.port;
                best_len = p.len;
            }
    }
    return best;
}

std::optional<Rib::NhKey> Rib::resolve(int vrf, const NextHop& nh, std::string* why) const {
    switch (nh.kind) {
        case NextHop::Kind::Local: return NhKey{nh.kind, -1, {}};
        case NextHop::Kind::Drop: return NhKey{nh.kind, -1, {}};
        case NextHop::Kind::Tunnel: return NhKey{nh.kind, -1, {}, nh.tunnel};
        case NextHop::Kind::Glean:
            if (nh.port < 0) {
                *why = "no port";
                return std::nullopt;
            }
            return NhKey{nh.kind, nh.port, {}};
        case NextHop::Kind::Gateway: {
            int port = connected_port(vrf, nh.gateway);
            if (nh.port >= 0 && port != nh.port) port = -1;
            if (port < 0) {
                *why = fmt::format("gateway {} is not on a connected subnet{}", nh.gateway.str(),
                                   nh.port >= 0 && size_t(nh.port) < port_names_.size()
                                       ? " of " + port_names_[size_t(nh.port)]
                                       : "");
                return std::nullopt;
            }
            return NhKey{nh.kind, port, nh.gateway};
        }
    }
    return std::nullopt;
}

void Rib::nh_publish(const NhKey& k, dp::NhId id) {
    dp::NhSpec s;
    s.port = k.port;
    if (k.kind == NextHop::Kind::Glean) {
        s.type = dp::NhType::Glean;
    } else if (k.kind == NextHop::Kind::Tunnel) {
        s.type = dp::NhType::Tunnel;
        s.tunnel = k.tunnel;
    } else {
        s.type = dp::NhType::Adjacency;
        s.gateway = k.gw;
        auto it = neigh_.find({k.port, k.gw});
        if (it != neigh_.end()) {
            s.resolved = true;
            s.dst_mac = it->second;
        }
    }
    dp::nh_set(id, s);
}

dp::NhId Rib::nh_ref(const NhKey& k) {
    if (k.kind == NextHop::Kind::Local) return dp::kNhLocal;
    if (k.kind == NextHop::Kind::Drop) return dp::kNhDrop;
    auto& e = nhs_[k];
    if (e.refs++ == 0) {
        e.id = dp::nh_alloc();
        if (e.id == 0) {
            nhs_.erase(k);
            return 0;
        }
        nh_publish(k, e.id);
    }
    return e.id;
}

void Rib::nh_unref(const NhKey& k) {
    if (k.kind == NextHop::Kind::Local || k.kind == NextHop::Kind::Drop) return;
    auto it = nhs_.find(k);
    if (it == nhs_.end()) return;
    if (--it->second.refs == 0) {
        dp::nh_free(it->second.id);
        nhs_.erase(it);
    }
}

bool Rib::commit(std::string* err) {
    std::vector<dp::FibOp> ops;
    struct Change {
        int vrf;
        Prefix p;
        std::optional<Installed> old_, new_;
    };
    std::vector<Change> changes;
    bool full = false;
    for (auto& [vrf, v] : vrfs_) {
        for (auto& p : v.dirty) {
            const Route* best = nullptr;
            std::optional<NhKey> best_key;
            auto rit = v.routes.find(p);
            if (rit != v.routes.end()) {
                for (auto& r : rit->second) {
                    std::string why;
                    auto k = resolve(vrf, r.nh, &why);
                    if (!k) continue;
                    if (!best || r.distance < best->distance) {
                        best = &r;
                        best_key = k;
                    }
                }
            }
            auto fit = v.fib.find(p);
            std::optional<Installed> old_;
            if (fit != v.fib.end()) old_ = fit->second;
            if (best_key && old_ && old_->key == *best_key) continue;
            if (!best_key && !old_) continue;
            Change c{vrf, p, old_, std::nullopt};
            if (best_key) {
                dp::NhId id = nh_ref(*best_key);
                if (id == 0) {
                    full = true;
                    continue;
                }
                c.new_ = Installed{id, *best_key};
                ops.push_back(dp::FibOp{true, vrf, p, id});
            } else {
                ops.push_back(dp::FibOp{false, vrf, p, 0});
            }
            changes.push_back(c);
        }
    }
    if (!ops.empty() && !dp::fib_apply(ops, err)) {
        fib_errors_++;
        for (auto& c : changes)
            if (c.new_) nh_unref(c.new_->key);
        // Keep the prefixes dirty so a later commit retries them.
        return false;
    }
    for (auto& [vrf, v] : vrfs_) v.dirty.clear();
    for (auto& c : changes) {
        auto& fib = vrfs_[c.vrf].fib;
        if (c.new_) fib[c.p] = *c.new_;
        else fib.erase(c.p);
        if (c.old_) nh_unref(c.old_->key);
    }
    if (full) {
        *err = "next-hop table full";
        fib_errors_++;
        return false;
    }
    return true;
}

void Rib::neighbor(int port, const IpAddr& a, const std::optional<MacAddr>& mac) {
    auto key = std::make_pair(port, a);
    auto it = neigh_.find(key);
    if (mac) {
        if (it != neigh_.end() && it->second == *mac) return;
        neigh_[key] = *mac;
    } else {
        if (it == neigh_.end()) return;
        neigh_.erase(it);
    }
    NhKey k{NextHop::Kind::Gateway, port, a};
    auto nit = nhs_.find(k);
    if (nit != nhs_.end()) nh_publish(k, nit->second.id);
    // A host route per neighbour on a connected subnet, so transit packets
    // to it take one FIB lookup and no hash lookup.
    if (port < 0 || size_t(port) >= port_vrf_.size()) return;
    int vrf = port_vrf_[size_t(port)];
    if (connected_port(vrf, a) != port) return;
    Prefix host(a, a.bits());
    NextHop nh{NextHop::Kind::Gateway, port, a};
    if (mac) add(vrf, Route{host, Source::Neighbor, default_distance(Source::Neighbor), nh, 0});
    else remove(vrf, host, Source::Neighbor, nh);
}

std::vector<RouteView> Rib::view(int vrf, std::optional<Family> fam, bool with_neighbors) const {
    std::vector<RouteView> out;
    auto vit = vrfs_.find(vrf);
    if (vit == vrfs_.end()) return out;
    const Vrf& v = vit->second;
    for (auto& [p, list] : v.routes) {
        if (fam && p.family() != *fam) continue;
        auto fit = v.fib.find(p);
        for (auto& r : list) {
            if (r.source == Source::Neighbor && !with_neighbors) continue;
            RouteView rv;
            rv.route = r;
            std::string why;
            auto k = resolve(vrf, r.nh, &why);
            rv.active = k.has_value();
            rv.reason = why;
            rv.port = k ? k->port : -1;
            rv.selected = k && fit != v.fib.end() && fit->second.key == *k;
            out.push_back(rv);
        }
    }
    return out;
}

size_t Rib::size(int vrf) const {
    auto vit = vrfs_.find(vrf);
    return vit == vrfs_.end() ? 0 : vit->second.routes.size();
}

}  // namespace nimbus::routing
