// The contract between the control plane and the dataplane. This is the only
// dataplane header the control plane includes: no DPDK types cross it.
//
// Threads: every function here is called from the control thread (the EAL
// main lcore) only, unless it says otherwise. Workers never call back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::dp {

inline constexpr int kMaxPorts = 32;
inline constexpr int kMaxWorkers = 64;
inline constexpr int kMaxVrfs = 256;

// ---- named drop reasons: one table feeds counters, `show counters`, metrics
// and tests. X(name, description)
#define NIMBUS_DP_DROPS(X)                                                            \
    X(l2_other_host, "unicast frame for another MAC address")                         \
    X(l2_too_short, "frame shorter than its Ethernet header")                         \
    X(ip4_bad_header, "IPv4 header malformed (version, IHL, length)")                 \
    X(ip4_bad_checksum, "IPv4 header checksum wrong")                                 \
    X(ip6_bad_header, "IPv6 header malformed (version, payload length)")              \
    X(ip6_link_local_src, "IPv6 link-local source in a packet that must be routed")   \
    X(ip4_martian_src, "IPv4 source is multicast, broadcast or loopback")             \
    X(no_route, "no route to the destination (ICMP unreachable sent, rate-limited)")  \
    X(blackhole, "route is a blackhole")                                              \
    X(ttl_exceeded, "TTL or hop limit expired (ICMP time exceeded sent, rate-limited)") \
    X(mtu_exceeded, "packet larger than the egress MTU (ICMP sent when DF or IPv6)")  \
    X(neigh_miss_again, "next hop still unresolved after a resolution attempt")       \
    X(punt_policed, "exception traffic over its class rate")                          \
    X(punt_ring_full, "exception path queue to the control thread full")              \
    X(inject_no_mbuf, "no buffer for a frame from the host interface")                \
    X(tx_full, "transmit queue full")                                                 \
    X(no_mbuf, "buffer pool empty")

enum class Drop : uint16_t {
#define NIMBUS_X(n, d) n,
    NIMBUS_DP_DROPS(NIMBUS_X)
#undef NIMBUS_X
        Count
};
inline constexpr int kDropCount = int(Drop::Count);
const char* drop_name(int i);
const char* drop_help(int i);

// Exception ("punt") classes, highest priority first. VRRP and BGP are
// drained first and each class has its own policer, so an IKE storm can
// never starve HA adverts or BGP keepalives.
enum class PuntClass : uint8_t { Vrrp, Bgp, ArpNd, Ike, Icmp, Other, Count };
inline constexpr int kPuntClassCount = int(PuntClass::Count);
const char* punt_class_name(int c);

// Why a packet reached the control thread.
enum class PuntReason : uint8_t {
    Host,         // for the kernel: write it to the port's host interface
    NeighMiss,    // next hop `aux` unresolved: hold, resolve, re-inject
    TtlExceeded,  // send ICMP time exceeded
    NoRoute,      // send ICMP destination unreachable
    TooBig,       // send ICMP fragmentation needed / packet too big (mtu in `mtu`)
};

struct PuntRate {
    uint32_t pps = 0;
    uint32_t burst = 0;
};

struct PortSpec {
    std::string name;    // host interface name
    std::string device;  // PCI address or vdev string
    int vrf = 0;
    int mtu = 1500;
};

struct InitSpec {
    std::string prog = "nimbusd";
    std::vector<std::string> eal_args;  // as given by the config, before ours
    std::string file_prefix;            // used unless eal_args has one
    int workers = 1;
    int idle_sleep_us = 50;
    int mbufs = 16383;
    int rx_burst = 32;
    int nvrfs = 1;
    int ipv4_tbl8 = 4096;
    int ipv6_routes = 65536;
    int ipv6_tbl8 = 8192;
    PuntRate punt[kPuntClassCount];
    std::vector<PortSpec> ports;
};

// EAL, memory, ports (configured, not started), tables. On failure returns
// false with a message; nothing is left running.
bool init(const InitSpec& spec, std::string* err);
// Starts ports and worker lcores.
bool start(std::string* err);
// Stops workers and ports, frees everything, cleans the EAL runtime files.
void shutdown();
bool running();

// ---- ports
struct PortInfo {
    std::string name, device, driver;
    MacAddr mac;
    bool link_up = false;
    uint32_t speed_mbps = 0;
    int mtu = 0;
    int vrf = 0;
    int rxq = 0, txq = 0;
    // from the PMD
    uint64_t hw_rx_missed = 0, hw_rx_errors = 0, hw_tx_errors = 0, rx_nombuf = 0;
};
int port_count();
PortInfo port_info(int port);
// Unicast MACs a port accepts besides its own (HA virtual MACs, RFC 5798
// §7.3), replacing the previous list. Published RCU-style: when this returns,
// every worker uses the new list. Ports run promiscuous, so the filter is the
// worker's (no rte_eth_dev_mac_addr_add needed, and none of its limits).
inline constexpr int kMaxPortMacs = 8;
bool port_set_macs(int port, const std::vector<MacAddr>& macs, std::string* err);
std::vector<MacAddr> port_macs(int port);

// ---- counters (read while workers run; values are monotonic, not atomic
// snapshots across fields)
struct PortCounters {
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    uint64_t punted = 0, injected = 0;
    uint64_t drops[kDropCount] = {};
    void add(const PortCounters& o);
};
struct PuntCounters {
    uint64_t punted[kPuntClassCount] = {};
    uint64_t policed[kPuntClassCount] = {};
    uint64_t ring_full[kPuntClassCount] = {};
};
struct WorkerInfo {
    int lcore = 0;
    uint64_t loops = 0, busy_loops = 0, sleeps = 0;
};
int worker_count();
WorkerInfo worker_info(int w);
PortCounters port_counters(int port, int worker);  // worker -1: sum over workers
PuntCounters punt_counters(int worker);            // worker -1: sum

// ---- exception path (host interfaces)
struct HostPkt {
    void* handle = nullptr;  // owned; give back with release() or reinject()
    const uint8_t* data = nullptr;
    uint32_t len = 0;
    uint16_t port = 0;
    PuntClass cls = PuntClass::Other;
    PuntReason reason = PuntReason::Host;
    bool from_host = false;  // it came from a host interface, not a wire
    uint16_t mtu = 0;        // TooBig: the MTU to report
    IpAddr aux;              // NeighMiss: the address to resolve
};
// Drains punted packets, higher priority classes first. Never blocks.
int punt_poll(HostPkt* out, int max);
void release(HostPkt& p);
// Hands a held packet back to a worker to be processed again (after its next
// hop resolved). A second miss drops it.
void reinject(HostPkt& p);
// An eventfd that becomes readable when punted packets wait. Call
// punt_arm() right before sleeping in epoll: it returns true if packets are
// already waiting (do not sleep then).
int punt_eventfd();
bool punt_arm();
// A frame the kernel sent on port's host interface, to be sent or routed.
bool inject(int port, const uint8_t* frame, uint32_t len);

// ---- next hops and FIB
using NhId = uint32_t;
inline constexpr NhId kNhNoRoute = 0;  // lookup miss: ICMP unreachable
inline constexpr NhId kNhLocal = 1;    // for the box: punt to the host
inline constexpr NhId kNhDrop = 2;     // blackhole
inline constexpr NhId kNhFirstDynamic = 3;

enum class NhType : uint8_t { NoRoute, Local, Drop, Glean, Adjacency };
struct NhSpec {
    NhType type = NhType::Drop;
    int port = -1;
    bool resolved = false;  // Adjacency: dst_mac is valid
    MacAddr dst_mac;
    IpAddr gateway;         // Adjacency: what to resolve while unresolved
};
NhId nh_alloc();                          // 0 when the table is full
void nh_set(NhId id, const NhSpec& spec);  // publish (RCU)
void nh_free(NhId id);                     // after no route refers to it
size_t nh_capacity();

// Route changes. A batch is applied as a unit: IPv6 tables are double
// buffered (rte_fib6 has no RCU hook in 22.11), so one batch costs one grace
// period, not one per route.
struct FibOp {
    bool add = true;
    int vrf = 0;
    Prefix prefix;
    NhId nh = kNhDrop;
};
bool fib_apply(const std::vector<FibOp>& ops, std::string* err);
// Looks a destination up as a worker would (control thread, for `show` and tests).
NhId fib_lookup(int vrf, const IpAddr& dst);

// Waits until every worker has passed a quiescent state (RCU grace period).
void synchronize();
// Frees next hops retired since the last grace period; the control loop
// calls it periodically.
void maintenance();
std::string dpdk_version();

}  // namespace nimbus::dp
