// rtnetlink for the host interfaces: links, addresses, kernel routes and
// neighbours. A request socket (synchronous, acknowledged) and an event
// socket (link, address and neighbour notifications) that the control loop
// watches. Built on libmnl.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/common/addr.h"

struct mnl_socket;

namespace nimbus::hostif {

struct NeighEvent {
    int ifindex = 0;
    IpAddr addr;
    std::optional<MacAddr> mac;  // absent while incomplete or failed
    uint16_t state = 0;          // NUD_* bits
    bool deleted = false;
    bool usable() const;         // has a MAC and is not FAILED/INCOMPLETE
};

struct LinkEvent {
    int ifindex = 0;
    std::string name;
    bool up = false;       // IFF_UP
    bool running = false;  // carrier (IFF_RUNNING / IFF_LOWER_UP)
    bool deleted = false;
};

class Netlink {
public:
    Netlink() = default;
    ~Netlink();
    bool open(std::string* err);
    int event_fd() const;

    // Requests; each returns false and sets *err on a kernel NACK.
    bool link_set(int ifindex, std::optional<bool> up, std::optional<int> mtu,
                  std::optional<MacAddr> mac, std::string* err);
    bool addr_add(int ifindex, const IfAddr& a, std::string* err);
    bool addr_del(int ifindex, const IfAddr& a, std::string* err);
    // Kernel route in the main table, tagged with our own protocol number so
    // we can find and remove ours (and only ours).
    bool route_add(const Prefix& p, const std::optional<IpAddr>& via, int ifindex, bool blackhole,
                   std::string* err);
    bool route_del(const Prefix& p, const std::optional<IpAddr>& via, int ifindex, bool blackhole,
                   std::string* err);
    // Asks the kernel to resolve `a` on the interface (NTF_USE): it sends
    // ARP/ND and reports the result as a neighbour event. A permanent (or
    // NOARP) entry is left as it is.
    bool neigh_resolve(int ifindex, const IpAddr& a, std::string* err);
    // The kernel's NUD state of one entry, if it has one.
    std::optional<uint16_t> neigh_state(int ifindex, const IpAddr& a);
    bool neigh_dump(std::vector<NeighEvent>* out, std::string* err);

    // Reads pending events (non-blocking) and calls the handlers.
    void read_events(const std::function<void(const NeighEvent&)>& on_neigh,
                     const std::function<void(const LinkEvent&)>& on_link);
    uint64_t events_lost() const { return lost_; }

    static constexpr uint8_t kRouteProto = 199;  // "nimbus" in ip route's proto column

private:
    bool request(void* nlh, std::string* err, const std::function<void(const void*)>& each = nullptr);
    mnl_socket* req_ = nullptr;
    mnl_socket* ev_ = nullptr;
    uint32_t seq_ = 1;
    uint64_t lost_ = 0;
};

int ifindex_of(const std::string& name);
// Writes /proc/sys/<path> ("net/ipv6/conf/eth0/disable_ipv6").
bool sysctl_set(const std::string& path, const std::string& value);

}  // namespace nimbus::hostif
