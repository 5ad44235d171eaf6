// Dataplane internals shared by its own files (never by the control plane,
// which sees only api.h). DPDK types live here.
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_fib6.h>
#include <rte_lpm.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

#include "dataplane/acl/acl.h"
#include "dataplane/api.h"

namespace nimbus::crypto {
class Engine;
}

namespace nimbus::dp {

namespace esp {
struct EspState;
struct Batch;
}  // namespace esp

// Per-packet metadata in the mbuf private area (set by whoever hands the
// packet over: a worker punting it, the control thread injecting it).
enum class Origin : uint8_t { Wire, Host };
// What a packet on a handoff ring is waiting for.
enum class Handoff : uint8_t { None, EspIn, EspOut };
struct MbufMeta {
    uint16_t in_port;
    Origin origin;
    uint8_t reinjected;
    PuntClass cls;
    PuntReason reason;
    uint16_t mtu;
    IpAddr aux;
    Handoff handoff;
    uint8_t esp_path;   // EspIn: index of the tunnel path it came on (0xff: other)
    uint16_t esp_off;   // EspIn: offset of the ESP header in the frame
    uint32_t tunnel;    // EspOut: tunnel id; EspIn: SPI
    uint16_t tunnel_gen;  // EspOut: the tunnel's generation once out_flush resolved it (ids are reused); 0 before
    int16_t route_vrf;    // NeighMiss: the VRF it was routed in (-1: its port's), where a re-injection routes it
};
inline constexpr uint16_t kMbufPrivSize = 64;
static_assert(sizeof(MbufMeta) <= kMbufPrivSize);
inline MbufMeta* meta(rte_mbuf* m) { return static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

// A next hop as workers read it. Immutable once published: the control
// thread builds a new one and swaps the pointer (RCU).
struct alignas(64) Nh {
    NhType type;
    uint8_t resolved;
    uint16_t port;
    uint16_t mtu;
    rte_ether_addr dst;  // L2 rewrite: destination ...
    rte_ether_addr src;  // ... and source (the egress port's MAC)
    IpAddr gateway;
    uint32_t tunnel;     // Tunnel: tunnel id
};
static_assert(sizeof(Nh) == 64);

struct VrfTables {
    std::atomic<rte_lpm*> v4{nullptr};  // updated in place; tbl8 reuse deferred by RCU
    rte_fib6* v6[2] = {nullptr, nullptr};
    std::atomic<rte_fib6*> v6_active{nullptr};  // double-buffered
};

struct Policer {
    double tokens = 0;
    double rate_per_tsc = 0;
    double burst = 0;
    uint64_t last = 0;
};

inline constexpr int kTxBuf = 64;

struct RxQueue {
    uint16_t port;
    uint16_t queue;
};

struct alignas(64) WorkerCtx {
    int index = 0;
    unsigned lcore = 0;
    RxQueue rxq[kMaxPorts * 4];
    int nrxq = 0;
    uint16_t txq[kMaxPorts];  // our tx queue on each port
    rte_ring* punt_hi = nullptr;  // VRRP, BGP, ARP/ND
    rte_ring* punt_lo = nullptr;  // the rest
    rte_ring* inject = nullptr;   // from the control thread
    rte_ring* handoff = nullptr;  // from other workers: packets for SAs we own (MP/SC)
    crypto::Engine* engine = nullptr;  // IPsec-MB manager of this lcore
    acl::FlowTable* flows = nullptr;   // firewall flows of the tunnels this worker owns
    acl::Counters* fwc = nullptr;      // firewall counters per slot
    esp::Batch* esp = nullptr;         // ESP in/out batches being built this burst
    uint16_t ip_id = 0;                // outer IPv4 identification
    rte_mbuf* txb[kMaxPorts][kTxBuf];
    uint16_t txn[kMaxPorts];
    Policer policer[kPuntClassCount];
    bool punted = false;  // something was punted this iteration
    PortCounters pc[kMaxPorts];
    PuntCounters punt;
    WorkerInfo info;
};

// Extra unicast destination MACs a port accepts (port_set_macs). Immutable
// once published; replaced by pointer swap, freed after a grace period.
struct MacList {
    uint32_t n = 0;
    rte_ether_addr mac[kMaxPortMacs];
};

struct PortState {
    uint16_t id = 0;  // DPDK port id
    PortSpec spec;
    std::string driver;
    rte_ether_addr mac{};
    uint16_t nrxq = 1, ntxq = 1;
    bool tx_shared = false;  // fewer tx queues than workers: lock per queue
    rte_spinlock_t txlock[kMaxWorkers];
    std::atomic<const MacList*> extra_macs{nullptr};
};

struct Dataplane {
    // Fast-path capture (capture.h): set by the control thread, read by workers.
    std::atomic<bool> cap_on{false};
    int cap_port = -1;
    uint32_t cap_tunnel = UINT32_MAX;
    std::atomic<int64_t> cap_remaining{0};
    std::atomic<uint64_t> cap_copied{0}, cap_dropped{0};
    rte_ring* cap_ring = nullptr;
    rte_mempool* cap_pool = nullptr;
    InitSpec spec;
    PortState ports[kMaxPorts];
    int nports = 0;
    WorkerCtx* workers = nullptr;  // rte_zmalloc'ed array
    int nworkers = 0;
    rte_mempool* pool = nullptr;
    std::atomic<Nh*>* nh = nullptr;  // indexed by NhId
    // More tunnels (and so next hops) than the caches hold: workers then
    // prefetch a burst's tables level by level (esp_in/esp_out, worker.cpp);
    // with few, the passes would only cost. A hint, set by the control thread.
    std::atomic<bool> group_prefetch{false};
    uint32_t nh_cap = 0;
    VrfTables vrfs[kMaxVrfs];
    rte_rcu_qsbr* qsbr = nullptr;
    std::atomic<bool> stop{false};
    std::atomic<bool> need_wakeup{false};
    int efd = -1;
    bool started = false;
    uint64_t tsc_hz = 0;
    esp::EspState* esp = nullptr;
    std::atomic<const acl::Policy*> fw[kMaxVrfs] = {};  // firewall per VRF (RCU)
};

extern Dataplane* g;

// worker.cpp
int worker_main(void* arg);
// Processes one burst as a worker would: used by the worker loop and by
// nimbus-bench. Transmit goes to the worker's tx buffers; call flush_tx().
void process_rx(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n);
void process_inject(WorkerCtx& w, rte_mbuf** pkts, uint16_t n);
void flush_tx(WorkerCtx& w);
void signal_control(WorkerCtx& w);

// Routes packets of one VRF (decapsulated ESP) as a worker does; used by
// esp_in after the cryptokey check.
void process_decap(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, int vrf);
// Handoff ring contents (ESP for SAs this worker owns).
void process_handoff(WorkerCtx& w, rte_mbuf** pkts, uint16_t n);
// Punts a packet (policed). `counted`: the caller already counted the drop.
bool punt_pkt(WorkerCtx& w, uint16_t port, rte_mbuf* m, PuntClass cls, PuntReason why, bool counted);
// Sends a full tx buffer (tx_pkt) or what is left at the end of a loop
// iteration (flush_tx).
void tx_flush_port(WorkerCtx& w, uint16_t port);
// Queues a packet for transmission on `port` (inline: every forwarded
// packet goes through here).
inline void tx_pkt(WorkerCtx& w, uint16_t port, rte_mbuf* m) {
    w.txb[port][w.txn[port]++] = m;
    if (unlikely(w.txn[port] == kTxBuf)) tx_flush_port(w, port);
}
inline void drop_pkt(WorkerCtx& w, uint16_t port, rte_mbuf* m, Drop why) {
    w.pc[port].drops[int(why)]++;
    rte_pktmbuf_free(m);
}

// fib.cpp
bool fib_init(std::string* err);
void fib_fini();
inline rte_lpm* vrf_v4(int vrf) { return g->vrfs[vrf].v4.load(std::memory_order_acquire); }
inline Nh* nh_get(NhId id) { return g->nh[id].load(std::memory_order_acquire); }

// punt.cpp
void policers_init(WorkerCtx& w);

// acl/firewall.cpp: the VRF's firewall, or nullptr (the common case: one
// load and a branch per packet).
inline const acl::Policy* fw_policy(int vrf) { return g->fw[vrf].load(std::memory_order_acquire); }
// The verdict for one inner packet (l3: IP header, len: IP total length)
// of a tunnel in `vrf`, leaving the tunnel (egress false) or entering it.
// `now`: the burst's time, read on first use (0 before): one TSC read a
// burst, not a packet (rdtsc costs tens of cycles).
bool fw_pass(WorkerCtx& w, const acl::Policy& p, bool egress, int vrf, const uint8_t* l3, uint32_t len,
             uint64_t& now);

}  // namespace nimbus::dp
