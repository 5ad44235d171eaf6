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
    X(no_mbuf, "buffer pool empty")                                                   \
    X(nat_keepalive, "NAT-T keepalive (RFC 3948 §2.3): counted and consumed")        \
    X(esp_malformed, "ESP packet too short or truncated")                             \
    X(bad_spi, "ESP with an SPI we have no inbound SA for (in this underlay VRF)")    \
    X(handoff_full, "queue to the worker that owns the SA full")                      \
    X(duplicate, "ESP sequence number already seen inside the window (second copy)")  \
    X(replay_too_old, "ESP sequence number left of the anti-replay window, or zero")  \
    X(auth_fail, "ESP integrity check (AEAD tag) failed")                             \
    X(bad_padding, "ESP padding or pad length wrong (RFC 4303 §2.4)")                 \
    X(bad_next_header, "ESP next header not IPv4/IPv6, or inner header malformed")   \
    X(esp_dummy, "ESP dummy packet (next header 59, RFC 4303 §2.6): consumed")        \
    X(inner_src_not_allowed, "decrypted inner source outside the tunnel's allowed prefixes") \
    X(ecn_ce_not_ect, "outer ECN CE over a not-ECT inner packet (RFC 6040 §4.2)")      \
    X(no_tunnel, "route points to a tunnel that is gone or has no usable SA")         \
    X(sa_expired, "SA reached its hard lifetime: no longer used")                     \
    X(seq_exhausted, "outbound sequence number space exhausted (never wraps)")        \
    X(esp_no_room, "no buffer room to encapsulate (multi-segment or headroom)")       \
    X(encrypt_fail, "AEAD encryption reported failure")                               \
    X(underlay_no_route, "no usable underlay route to the tunnel's peer")             \
    X(reassembly_too_big, "reassembled ESP packet larger than one buffer")            \
    X(fw_denied, "denied by the firewall of the tunnel's VRF (a rule or the default)")

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
    int handoff_ring = 4096;  // per worker: packets for SAs another worker owns
    int frag_flows = 1024;        // outer reassembly: packets in flight per worker
    int frag_timeout_ms = 1000;   // ... and how long a partial packet is kept
    int fw_flows = 65536;         // firewall flow entries per worker (stateful allow)
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
    uint64_t reassembled = 0;  // outer packets put together from fragments
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
    int vrf = -1;            // NeighMiss: the VRF it was routed in (-1: its port's)
    uint8_t* owned = nullptr;  // a copy of a chained packet (freed by release())
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

enum class NhType : uint8_t { NoRoute, Local, Drop, Glean, Adjacency, Tunnel };
struct NhSpec {
    NhType type = NhType::Drop;
    int port = -1;
    uint32_t tunnel = 0;    // Tunnel: the tunnel id (see tunnel_install)
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

// ---- fast-path capture (`nimbus debug capture`): a port's rx and tx, or a
// tunnel's packets before encryption and after. One capture at a time.
struct CapturedPkt {
    void* handle = nullptr;
    const uint8_t* data = nullptr;
    uint32_t caplen = 0, orig_len = 0;
    uint64_t tsc = 0;
    uint8_t dir = 0;  // 0 rx, 1 tx, 2 tunnel out plain, 3 out ESP, 4 in ESP, 5 in plain
};
struct CaptureStatus {
    bool on = false;
    int port = -1;
    uint32_t tunnel = UINT32_MAX;
    int64_t remaining = 0;
    uint64_t copied = 0, dropped = 0, pending = 0;
};
// port >= 0 captures that port; otherwise `tunnel` (a TunnelId).
bool capture_start(int port, uint32_t tunnel, uint32_t count, std::string* err);
void capture_stop();
int capture_poll(CapturedPkt* out, int max);
void capture_release(CapturedPkt& p);
CaptureStatus capture_status();
uint64_t tsc_hz();
uint64_t tsc_now();

// Waits until every worker has passed a quiescent state (RCU grace period).
void synchronize();
// Frees next hops retired since the last grace period; the control loop
// calls it periodically.
void maintenance();
std::string dpdk_version();

// ---- ESP tunnels and SAs (dataplane/esp/)
//
// A tunnel is one peer site: one outbound SA, 1..4 inbound SAs, 1..4 paths
// (outer address pairs; the first is the primary). Tunnels are pinned to
// worker (id % workers); their SAs' sequence numbers, replay windows and
// counters are written by that worker only. The control thread builds
// immutable objects and publishes them by pointer swap (RCU).
enum class Cipher : uint8_t { AesGcm128, AesGcm256, Chacha20Poly1305 };
const char* cipher_name(Cipher c);  // strongSwan names: aes128gcm16 ...
size_t cipher_keymat_len(Cipher c);  // key || salt: 20 or 36 bytes

using TunnelId = uint32_t;
inline constexpr TunnelId kNoTunnel = 0xffffffffu;
inline constexpr uint32_t kMaxTunnels = 1u << 18;
inline constexpr uint32_t kSpiSlotBits = 18;  // SPI -> slot = low 18 bits
inline constexpr int kMaxPaths = 4;
inline constexpr int kMaxInSas = 4;

struct Lifetime {  // 0 = no limit
    uint64_t soft_bytes = 0, hard_bytes = 0, soft_packets = 0, hard_packets = 0;
};

struct SaSpec {
    uint32_t spi = 0;
    Cipher cipher = Cipher::AesGcm256;
    bool esn = false;
    uint32_t replay_window = 1024;  // inbound
    std::vector<uint8_t> keymat;    // key || salt (the caller wipes its copy)
    Lifetime lifetime;
};

struct PathSpec {
    IpAddr local, remote;
    uint16_t local_port = 4500, remote_port = 4500;  // UDP encapsulation only
    bool up = true;  // administratively
};

struct TunnelSpec {
    std::string name;
    int vrf = 0;           // inner VRF: decrypted traffic is routed here
    int underlay_vrf = 0;  // where the outer packets are routed
    bool udp = true;       // RFC 3948 UDP encapsulation, else IP protocol 50
    int mtu = 0;           // inner MTU; 0: from the path MTU minus the ESP overhead
    bool mss_clamp = true;
    uint64_t critical_dscp = 0;  // bit d set: DSCP d is critical (sent on every path)
    std::vector<PathSpec> paths;
    SaSpec out;
    std::vector<SaSpec> in;
};

// Validates and installs a tunnel with its SAs (keys expanded here, once).
// Returns kNoTunnel with *err on failure (nothing installed). Inbound SPIs
// must be free: slot spi & (2^18 - 1) unused.
TunnelId tunnel_install(const TunnelSpec& spec, std::string* err);
void tunnel_remove(TunnelId id);
// Replaces a tunnel's paths and options (not its SAs), keeping counters.
bool tunnel_update_paths(TunnelId id, const std::vector<PathSpec>& paths, std::string* err);
// Rekeying (IKE): SAs change while the tunnel, its routes and counters stay.
// Adds an inbound SA (up to kMaxInSas); the new SA is live when this returns.
bool tunnel_add_in_sa(TunnelId id, const SaSpec& sa, std::string* err);
// Replaces the outbound SA: packets leave on the new SA (its own sequence
// space) once this returns; the old one is freed after a grace period.
bool tunnel_set_out_sa(TunnelId id, const SaSpec& sa, std::string* err);
// Removes one inbound SA; a tunnel keeps at least one (remove the tunnel).
bool tunnel_remove_in_sa(TunnelId id, uint32_t spi, std::string* err);
// True when an inbound SPI's slot is free (manual SPIs) ...
bool spi_slot_free(uint32_t spi);
// ... and an SPI we allocate ourselves: slot + generation, never < 2^18.
uint32_t spi_alloc();
int tunnel_mtu(TunnelId id);  // the inner MTU in force

// Counters for `show`. Read while workers run: monotonic, not a snapshot.
#define NIMBUS_SA_COUNTERS(X)                                            \
    X(packets, "packets encrypted (out) or decrypted and accepted (in)") \
    X(bytes, "inner bytes")                                              \
    X(auth_fail, "integrity check failed")                               \
    X(duplicate, "second copies: already seen inside the window")        \
    X(replay_too_old, "left of the window")                              \
    X(bad_padding, "padding or pad length wrong")                        \
    X(bad_next_header, "next header or inner header wrong")              \
    X(inner_src_not_allowed, "inner source outside the allowed prefixes") \
    X(expired, "dropped after the hard lifetime")                         \
    X(seq_exhausted, "dropped: sequence numbers exhausted")              \
    X(handoff, "handed to the owning worker")

enum class SaCounter : uint8_t {
#define NIMBUS_X(n, d) n,
    NIMBUS_SA_COUNTERS(NIMBUS_X)
#undef NIMBUS_X
        Count
};
inline constexpr int kSaCounterCount = int(SaCounter::Count);
const char* sa_counter_name(int i);

struct SaInfo {
    uint32_t spi = 0;
    bool inbound = false;
    TunnelId tunnel = kNoTunnel;
    Cipher cipher = Cipher::AesGcm256;
    bool esn = false;
    int worker = 0;
    uint64_t seq = 0;         // out: last sequence number sent
    uint64_t window_top = 0;  // in: highest authenticated sequence number
    uint32_t window_size = 0;
    bool soft_expired = false, hard_expired = false;
    Lifetime lifetime;
    uint64_t counters[kSaCounterCount] = {};
};
struct PathInfo {
    PathSpec spec;
    uint64_t rx = 0;     // ESP packets for this tunnel's SAs received on this path
    uint64_t first = 0;  // ... of which first copies delivered
    uint64_t tx = 0;     // sent on this path
};
struct TunnelInfo {
    TunnelId id = kNoTunnel;
    std::string name;
    int vrf = 0, underlay_vrf = 0, worker = 0, mtu = 0;
    bool udp = true, mss_clamp = true;
    uint64_t critical_dscp = 0;
    uint32_t out_spi = 0;
    std::vector<uint32_t> in_spis;
    std::vector<PathInfo> paths;
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    uint64_t rx_other_path = 0;  // from an outer address pair not in `paths`
    uint64_t critical_copies = 0;
};
std::vector<TunnelId> tunnel_ids();
bool tunnel_info(TunnelId id, TunnelInfo* out);
// An inbound SA by its SPI (ours: unique), a tunnel's outbound SA by the
// tunnel (the SPI is the peer's choice: two peers may pick the same one).
// Both O(1): `show` commands call them once per SA of 100,000 tunnels.
bool sa_in_info(uint32_t spi, SaInfo* out);
bool sa_out_info(TunnelId tunnel, SaInfo* out);

// Lifetime events from the workers (soft limit crossed, hard limit reached,
// sequence numbers exhausted). The control thread polls; never blocks.
enum class SaEventKind : uint8_t { Soft, Hard, SeqExhausted };
struct SaEvent {
    uint32_t spi = 0;
    TunnelId tunnel = kNoTunnel;
    bool inbound = false;
    SaEventKind kind = SaEventKind::Soft;
};
int sa_event_poll(SaEvent* out, int max);

// ---- firewall per VRF (dataplane/acl/)
//
// Rules for traffic leaving tunnels of a VRF (ingress: decrypted, after the
// cryptokey check, before routing) and entering them (egress: before
// encryption). First match wins, else the direction's default. Each rule,
// default and the flow hits of a direction count into a slot the caller
// assigns (0..kFwSlots-1): a slot kept across fw_set() keeps its counters.
// AllowStateful lets the packet through and records its flow; packets of a
// recorded flow pass in either direction until it is idle for
// state_timeout_s (flow entries live per worker: the tunnel's SA owner).
enum class FwAction : uint8_t { Allow, Deny, AllowStateful };
const char* fw_action_name(FwAction a);  // allow | deny | allow-stateful
inline constexpr uint32_t kFwSlots = 8192;
struct FwRuleSpec {
    uint32_t slot = 0;
    FwAction action = FwAction::Allow;
    int family = 0;   // 0: any, 4, 6
    int proto = -1;   // -1: any
    std::vector<Prefix> src, dst;  // empty: any
    bool ports = false;            // match on the port ranges below (TCP, UDP, SCTP, UDP-Lite)
    uint16_t sport_lo = 0, sport_hi = 65535, dport_lo = 0, dport_hi = 65535;
    uint64_t dscp = 0;  // bit d: DSCP d; 0: any
    bool operator==(const FwRuleSpec&) const = default;
};
struct FwDirSpec {
    std::vector<FwRuleSpec> rules;
    FwAction dflt = FwAction::Allow;
    uint32_t default_slot = 0, state_slot = 0;
    bool operator==(const FwDirSpec&) const = default;
};
struct FwPolicySpec {
    FwDirSpec in, out;
    uint32_t state_timeout_s = 300;
    bool operator==(const FwPolicySpec&) const = default;
};
// Publishes (nullptr: removes) the VRF's firewall. Workers use the new one
// when this returns.
bool fw_set(int vrf, const FwPolicySpec* spec, std::string* err);
struct FwCounter {
    uint64_t packets = 0, bytes = 0;
};
FwCounter fw_counter(uint32_t slot);  // summed over workers
struct FwFlowStats {
    uint64_t live = 0, capacity = 0, created = 0, refreshed = 0, evicted = 0;
};
FwFlowStats fw_flow_stats();

// The crypto path the workers use, e.g. "AVX512 (VAES, ...) IPsec-MB 1.3.0".
std::string crypto_describe();
// Test-only: sets an outbound SA's next sequence number (ESN wrap, exhaustion).
bool set_seq_for_test(uint32_t out_spi, uint64_t seq);

}  // namespace nimbus::dp
