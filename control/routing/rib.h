// The routing information base: every route from every source (connected,
// local, static, later tunnels and FRR via FPM), the best one per prefix
// selected by administrative distance, and the FIB kept in step with it
// through dataplane/api.h. Next hops are shared and reference-counted; a
// neighbour the kernel resolves updates the next hop in place (the FIB does
// not change).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dataplane/api.h"
#include "src/common/addr.h"

namespace nimbus::routing {

enum class Source : uint8_t { Local, Connected, Static, Tunnel, Fpm, Neighbor };
const char* source_name(Source s);
char source_code(Source s);  // FRR-style letter: L C S T F
int default_distance(Source s);

struct NextHop {
    enum class Kind : uint8_t { Local, Drop, Glean, Gateway, Tunnel } kind = Kind::Drop;
    int port = -1;   // Glean, Gateway (-1: find by connected subnet)
    IpAddr gateway;  // Gateway
    uint32_t tunnel = 0;  // Tunnel: dataplane tunnel id
    auto operator<=>(const NextHop&) const = default;
};

struct Route {
    Prefix prefix;
    Source source = Source::Static;
    int distance = 1;
    NextHop nh;
    uint32_t tag = 0;
    // Who added it, for observers: the tunnel (site) name for Source::Tunnel.
    std::string owner;
    bool operator==(const Route& o) const {
        return prefix == o.prefix && source == o.source && nh == o.nh;
    }
};

// What `show ip route` prints for one route.
struct RouteView {
    Route route;
    bool selected = false;  // installed in the FIB
    bool active = false;    // usable (gateway reachable)
    int port = -1;          // resolved egress port
    std::string reason;     // why not active
};

class Rib {
public:
    // Told about every route as it enters (added = true; also when an equal
    // route is replaced) or leaves the RIB, before commit(). Observers must
    // not change the RIB from inside the call. Used by control/routing's FRR
    // injection, which must not care who adds tunnel routes.
    using Observer = std::function<void(int vrf, const Route& r, bool added)>;
    void add_observer(Observer o) { observers_.push_back(std::move(o)); }

    // port_vrf[i] is the VRF of port i; names for messages.
    void set_ports(std::vector<int> port_vrf, std::vector<std::string> port_names);

    void add(int vrf, const Route& r);
    void remove(int vrf, const Prefix& p, Source s, const std::optional<NextHop>& nh = std::nullopt);
    // Removes every route of a source (e.g. all FPM routes) in a VRF.
    void remove_source(int vrf, Source s);
    // Pushes changes since the last commit to the FIB in one batch.
    bool commit(std::string* err);

    // A neighbour the kernel resolved (mac) or lost (nullopt) on a port.
    void neighbor(int port, const IpAddr& a, const std::optional<MacAddr>& mac);
    bool has_neighbor(int port, const IpAddr& a) const { return neigh_.count({port, a}) != 0; }
    // The connected port whose subnet holds `a` in `vrf`, or -1.
    int connected_port(int vrf, const IpAddr& a) const;

    std::vector<RouteView> view(int vrf, std::optional<Family> fam, bool with_neighbors = false) const;
    size_t size(int vrf) const;
    size_t nh_in_use() const { return nhs_.size(); }
    uint64_t fib_errors() const { return fib_errors_; }

private:
    struct NhKey {
        NextHop::Kind kind;
        int port;
        IpAddr gw;
        uint32_t tunnel = 0;
        auto operator<=>(const NhKey&) const = default;
    };
    struct NhEntry {
        dp::NhId id = 0;
        int refs = 0;
    };
    struct Installed {
        dp::NhId id = 0;
        NhKey key;
    };
    struct Vrf {
        std::map<Prefix, std::vector<Route>> routes;
        std::map<Prefix, Installed> fib;
        std::set<Prefix> dirty;
    };

    // Resolves a route's next hop to a key (port found for gateways).
    std::optional<NhKey> resolve(int vrf, const NextHop& nh, std::string* why) const;
    dp::NhId nh_ref(const NhKey& k);
    void nh_unref(const NhKey& k);
    void nh_publish(const NhKey& k, dp::NhId id);
    void mark_all_dirty();

    std::vector<int> port_vrf_;
    std::vector<std::string> port_names_;
    std::map<int, Vrf> vrfs_;
    std::map<NhKey, NhEntry> nhs_;
    std::map<std::pair<int, IpAddr>, MacAddr> neigh_;  // (port, address) -> MAC
    std::vector<NhKey> to_release_;
    uint64_t fib_errors_ = 0;
    std::vector<Observer> observers_;
};

}  // namespace nimbus::routing
