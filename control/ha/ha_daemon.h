// The HA pair inside nimbusd: the `ha:` config turned into one sync group of
// VRRPv3 instances (control/ha/sync_group.h), one per listed interface and
// address family, driven from the control loop, with its actions carried out
// on the box:
//
//   adverts in   punted by the dataplane (class `vrrp`: highest priority ring,
//                own policer) and taken out of the punt stream here, before
//                the TAP: the kernel has no VRRP listener, so handing them on
//                would cost a write per advert and nothing else
//                (take_advert()).
//   adverts out  Ethernet frames from the virtual MAC (RFC 5798 §7.2/§7.3)
//                injected into the port's transmit path; so are the
//                gratuitous ARPs / unsolicited NAs at takeover (§6.4.2).
//   master       the port accepts the virtual MAC (dataplane MAC filter), the
//                virtual IPs become Local routes in the RIB (the dataplane
//                punts them to the host; ESP to a VIP takes the fast path once
//                ESP lands) and addresses on the host interface (netlink,
//                no DAD), so the kernel answers ARP/ND, ping and IKE on them.
//                What the kernel sends about a VIP (ARP, NA, packets from it)
//                leaves from the virtual MAC (fix_from_host()), and frames to
//                the virtual MAC reach the kernel as frames to the port's MAC
//                (fix_to_host()).
//   backup /     all of that undone; a master that shuts down gracefully
//   shutdown     sends priority 0 first (§6.4.3) so the peer takes over after
//                its Skew_Time.
//
// Tracking: every listed interface is tracked as "port:NAME" (link down
// forces backup, as keepalived's interface FAULT) unless `track:` gives it a
// weight; `track:` adds other ports. set_track() is the hook for other
// objects. `track: [{frr: zebra, ...}]` is "frr:zebra": nimbus's ZAPI
// session to zebra, up from the handshake (CAPABILITIES) until the socket
// closes; the daemon (ha_hooks.cpp) feeds it from routing::Frr. A BGP peer
// of bgpd's would be one more name ("frr:bgp:PEER") fed the same way.
// Setting an object nobody tracks is a no-op.
//
// Role-change event (for the IKE and FRR work): subscribe() gets a RoleEvent
// every time the box as a whole (the sync group) becomes Master, Backup or
// Init. On Master it fires after the VIPs are installed (IKE binds its
// sockets to them and accepts the sites' reconnections; FRR announces the
// injected routes); on Backup/Init it fires after they are removed (IKE
// closes what it bound to them; FRR withdraws). A subscriber that joins late
// reads role() and virtual_ips() for the current state. Handlers run on the
// control thread, synchronously, and must not change HA state from inside.
//
// Pure of DPDK and sockets: the daemon hands in an Env of callbacks, so the
// whole thing runs in unit tests on a simulated wire.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "control/config/config.h"
#include "control/ha/sync_group.h"
#include "control/ha/vrrp.h"
#include "src/common/addr.h"

namespace nimbus::ha {

// What the daemon lends the HA engine. Every callback runs on the control
// thread; those returning bool set *err on failure.
struct Env {
    // Puts an Ethernet frame on the wire of `port` (dp::inject).
    std::function<bool(int port, std::span<const uint8_t> frame)> send;
    // Adds or removes an address on the port's host interface (netlink).
    std::function<bool(int port, const IfAddr& a, bool add, std::string* err)> host_addr;
    // Adds or removes host routes of type Local in the RIB of the port's VRF,
    // committed to the FIB before returning.
    std::function<bool(int port, const std::vector<IpAddr>& addrs, bool add, std::string* err)> local_routes;
    // Replaces the extra unicast MACs the port accepts (dp::port_set_macs).
    std::function<bool(int port, const std::vector<MacAddr>& macs, std::string* err)> accept_macs;
    // Call on_timer() at this monotonic time (replaces the previous request;
    // nullopt: no timer needed).
    std::function<void(std::optional<Time>)> schedule;
};

// A dataplane port as HA sees it; index = port id.
struct PortView {
    std::string name;
    MacAddr mac;
    std::vector<IfAddr> addresses;
};

enum class Role : uint8_t { Init, Backup, Master };
const char* role_name(Role r);

struct RoleEvent {
    Role role = Role::Init;
    Role previous = Role::Init;
    std::string reason;
    Time at = 0;
    std::vector<IfAddr> vips;   // every virtual IP of the group
};
using RoleHandler = std::function<void(const RoleEvent&)>;

// The modified EUI-64 link-local address (RFC 4291 §2.5.1, appendix A) the
// kernel gives an interface with this MAC: the IPv6 instances' advert source.
IpAddr eui64_link_local(const MacAddr& mac);

// Daemon-level counters (per-instance ones are in Instance::counters()).
struct DaemonCounters {
    uint64_t frames_sent = 0;        // adverts, GARPs and NAs handed to the dataplane
    uint64_t send_failures = 0;      // inject refused (no buffer, ring full)
    uint64_t install_errors = 0;     // a VIP, route or MAC could not be installed/removed
    uint64_t rx_no_instance = 0;     // VRRP on an HA port for a family without an instance
    uint64_t rx_not_ip = 0;          // a `vrrp`-class punt that is not an IP frame
    uint64_t from_host_rewritten = 0;   // kernel frames about a VIP sent from the virtual MAC
    uint64_t to_host_rewritten = 0;     // frames to the virtual MAC handed to the kernel
    uint64_t role_changes = 0;
};

class HaDaemon {
public:
    // `ports` indexed by port id, in config order. The config is validated
    // (control/config/ha.cpp); a remaining inconsistency is an error.
    static std::unique_ptr<HaDaemon> create(const config::Ha& cfg, std::vector<PortView> ports, Env env,
                                            std::string* err);
    ~HaDaemon();

    // Initialize -> Backup (or Master for the owner), timers armed.
    void start(Time now);
    // Graceful: a Master resigns with priority 0 and removes its VIPs.
    void shutdown(Time now);
    void on_timer(Time now);

    // A punted frame of class `vrrp` that arrived on `port`. Returns true when
    // it was taken (every VRRP frame on an HA port is); false: hand it on.
    bool take_advert(Time now, int port, std::span<const uint8_t> frame);
    // A punted frame on its way to the kernel: one addressed to a virtual MAC
    // we accept gets the port's MAC, which is what the TAP answers to.
    void fix_to_host(int port, std::span<uint8_t> frame);
    // A frame the kernel sent on a port's host interface: ARP, NA/NS and IP
    // packets from a VIP we hold leave from the virtual MAC (as keepalived's
    // use_vmac), so neighbours never learn the box's own MAC for a VIP.
    void fix_from_host(int port, std::span<uint8_t> frame);

    // Tracking. Link state of a port (the daemon polls it).
    void set_link(Time now, int port, bool up);
    // Any tracked object by name ("port:wan0", "frr:core1"); unknown: no-op.
    void set_track(Time now, const std::string& object, bool up);

    // ---- role-change event
    int subscribe(RoleHandler h);
    void unsubscribe(int id);
    Role role() const { return role_; }
    // True while we are Master and `a` is one of the virtual IPs.
    bool owns(const IpAddr& a) const;
    const std::vector<IfAddr>& virtual_ips() const { return vips_; }

    // ---- for `show ha`, metrics and tests
    nlohmann::json status_json(Time now) const;
    std::string status_text(Time now) const;
    const DaemonCounters& counters() const { return ctr_; }
    size_t instance_count() const { return members_.size(); }
    const Instance& instance(size_t i) const { return *members_.at(i)->inst; }

private:
    struct Member {
        std::unique_ptr<Instance> inst;
        int port = -1;
        Family family = Family::V4;
        MacAddr vmac;
        IpAddr primary;               // advert source (IPv4 primary or IPv6 link-local)
        std::vector<IfAddr> vips;
        bool installed = false;
    };

    HaDaemon() = default;
    void apply(Time now, const GroupActions& acts);
    void install(Time now, Member& m);
    void remove(Member& m);
    void send_advert(Member& m, uint8_t priority);
    void announce(Member& m, uint8_t count);
    void send(int port, const std::vector<uint8_t>& frame);
    void update_macs(int port);
    void check_role(Time now, const std::string& reason);
    Member* member_for(int port, Family f);
    const Member* master_member_for(int port, Family f) const;

    config::Ha cfg_;
    std::vector<PortView> ports_;
    Env env_;
    std::vector<std::unique_ptr<Member>> members_;
    std::unique_ptr<SyncGroup> group_;
    std::vector<IfAddr> vips_;
    std::map<int, uint16_t> ip_id_;   // per-port IPv4 Identification counter
    Role role_ = Role::Init;
    std::string role_reason_;
    Time role_since_ = 0;
    std::map<int, RoleHandler> handlers_;
    int next_handler_ = 1;
    DaemonCounters ctr_;
    bool started_ = false;
};

}  // namespace nimbus::ha
