// Kernel routes for tunnel prefixes, so the box's own traffic to a site
// (ping, ssh, ICMP errors, anything the kernel originates) leaves by a host
// interface into the dataplane, whose FIB sends it into the tunnel — and is
// not swallowed by what zebra installs for the same prefix.
//
// The problem: injected as route type NHRP, every site prefix is installed
// by zebra in the kernel's main table as `blackhole ... proto nhrp metric 20`.
// A route of ours in main with a lower metric would win in the kernel, but
// zebra reads main-table kernel routes back as `K` routes of distance 0 that
// beat our NHRP route in its RIB: bgpd would stop advertising the prefix
// (checked with FRR 8.4.4). Routes in another kernel table are kept by zebra
// in a per-table RIB of their own and never compete with main.
//
// The design: our tunnel routes live in a table of their own (default 250),
// looked up by an `ip rule` (default preference 1000) ahead of main (32766).
// A lookup that misses there falls through to main, so only tunnel prefixes
// are affected. Each route is `PREFIX via 169.254.0.1 dev PORT onlink` (IPv6:
// via fe80::1) with a permanent neighbour entry carrying the port's own MAC:
// the kernel never ARPs for it, and the dataplane routes what the kernel
// sends by its IP destination. The source address is the port's own.
//
// Left out: default routes and prefixes that overlap the box's own subnets in
// the default VRF (the rule would take the kernel's traffic to them).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/routing/rib.h"
#include "src/common/addr.h"

struct mnl_socket;

namespace nimbus::routing {

class HostRoutes {
public:
    // Puts a prefix into (add) or out of the kernel table; false with *err.
    using Apply = std::function<bool(const Prefix& p, bool add, std::string* err)>;

    HostRoutes(std::vector<Prefix> own_subnets, Apply apply);

    // The RIB observer: tunnel routes of the default VRF (0).
    void on_rib(int vrf, const Route& r, bool added);
    // Applies up to `max` pending kernel changes; returns how many it applied.
    size_t pump(size_t max);
    bool has_work() const { return !pending_.empty(); }

    size_t wanted() const { return refs_.size(); }
    size_t installed() const { return installed_.size(); }
    uint64_t failures() const { return failures_; }
    uint64_t refused() const { return refused_; }
    const std::string& last_error() const { return last_error_; }

private:
    std::vector<Prefix> own_;
    Apply apply_;
    std::map<Prefix, int> refs_;  // tunnel routes holding each prefix
    std::set<Prefix> installed_;
    std::set<Prefix> pending_;    // desired and installed state differ
    uint64_t failures_ = 0, refused_ = 0;
    std::string last_error_;
};

// The kernel side: one routing table, its `ip rule`s (IPv4 and IPv6) and the
// fake gateways' neighbour entries, over a netlink socket of its own.
class KernelTable {
public:
    KernelTable() = default;
    ~KernelTable();
    KernelTable(const KernelTable&) = delete;
    KernelTable& operator=(const KernelTable&) = delete;

    // Opens the socket, flushes what an earlier run left in the table and
    // adds the rules.
    bool open(uint32_t table, uint32_t priority, std::string* err);
    // The host interface to send on, its MAC and its addresses (sources).
    bool set_port(int ifindex, const MacAddr& mac, std::optional<IpAddr> src4, std::optional<IpAddr> src6,
                  std::string* err);
    bool apply(const Prefix& p, bool add, std::string* err);
    // Removes the rules and every route of ours in the table.
    void close();

    static constexpr uint8_t kProto = 199;  // as hostif::Netlink::kRouteProto: "nimbus"

private:
    bool request(void* nlh, std::string* err, const std::function<void(const void*)>& each = nullptr);
    bool rule(bool add, bool v6, std::string* err);
    void flush();

    mnl_socket* nl_ = nullptr;
    uint32_t seq_ = 1;
    uint32_t table_ = 0, priority_ = 0;
    int ifindex_ = 0;
    MacAddr mac_;
    std::optional<IpAddr> src4_, src6_;
    bool rules_ = false;
};

}  // namespace nimbus::routing
