// ESP tunnels and SAs as the workers see them (dataplane internal).
//
// Ownership, the rule every field follows:
// - Tunnel, and the leading (immutable) part of SaOut / SaIn, are written by
//   the control thread before the object is published (RCU pointer swap) and
//   never again. A change publishes a new object; the old one is freed after
//   a grace period.
// - SaRuntime, replay::Window and TunnelCtr are written only by the worker
//   that owns the tunnel (tunnel id % workers). The control thread reads them
//   for `show` (monotonic counters, no snapshot) and never writes them while
//   the object is published.
//
// SPI -> inbound SA is one array index: slot = SPI & (2^18 - 1). SPIs we
// allocate put a generation above the slot bits (so never < 2^18 and a
// reused slot gets a new SPI); manual SPIs must not share a slot.
//
// Driving ESP without running workers (nimbus-bench esp, unit tests; see
// test/unit/esp/esp_test.cpp for a complete example):
//   1. dp::init() with the ports you want (net_pcap / net_null / net_ring
//      vdevs), workers = 1 to keep everything on one worker; do not call
//      dp::start() — start the ports with rte_eth_dev_start() yourself.
//   2. Routes and next hops through api.h: nh_alloc/nh_set (Adjacency with
//      a resolved MAC toward the peer; NhType::Tunnel with the tunnel id),
//      fib_apply() for the underlay, the LAN and the tunnel's allowed prefixes.
//   3. tunnel_install() N times (spi_alloc() for inbound SPIs, or manual
//      SPIs with distinct low 18 bits); `g->workers[tunnel_get(id)->worker]`
//      is the worker that owns a tunnel.
//   4. Encrypt: process_rx(w, lan_port, plain_frames, n) then flush_tx(w).
//      Decrypt: process_rx(w, wan_port, esp_frames, n) then flush_tx(w). ESP
//      frames need fresh sequence numbers per SA (the replay window drops
//      repeats as `duplicate`): capture what an encrypt run transmitted, or
//      set_seq_for_test() before building them.
//   5. Packets for a tunnel another worker owns wait in that worker's
//      `handoff` ring: process_handoff() drains it.
// Memory per tunnel (one outbound and one inbound SA): sizeof(Tunnel) +
// sizeof(SaOut) + sizeof(SaIn) + sizeof(TunnelCtr), 3,520 bytes today, plus
// 2 x 2 MiB of slot tables.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <rte_ip_frag.h>

#include "dataplane/crypto/aead.h"
#include "dataplane/dp.h"
#include "dataplane/replay/window.h"

namespace nimbus::dp::esp {

inline constexpr uint32_t kSpiSlotMask = (1u << kSpiSlotBits) - 1;
inline constexpr uint16_t kEspHdr = 8;          // SPI, sequence number
inline constexpr uint16_t kEspIv = crypto::kIvLen;
inline constexpr uint16_t kIcv = crypto::kTagLen;
inline constexpr uint16_t kNatTPort = 4500;     // RFC 3948 §2.1
inline constexpr uint16_t kGenUnresolved = 0;  // MbufMeta::tunnel_gen before out_flush saw the tunnel
inline constexpr int kBatch = 256;              // packets staged per crypto burst

// Worker-written part of an SA (one cache line of its own).
struct alignas(64) SaRuntime {
    uint64_t seq = 0;  // out: the last sequence number used
    uint64_t ctr[kSaCounterCount] = {};
    uint8_t soft_sent = 0;  // soft lifetime event raised
    uint8_t hard = 0;       // hard lifetime reached / sequence exhausted: SA unusable
};

struct SaOut;
struct SaIn;
struct Tunnel;

// One outer path. The function that writes its outer header is chosen once
// when the tunnel is built (family x encapsulation), not per packet.
struct Path;
using OuterFn = void (*)(WorkerCtx& w, const Path& p, uint8_t* l3, uint32_t esp_len, uint8_t tos);
struct Path {
    IpAddr local, remote;
    uint16_t sport = kNatTPort, dport = kNatTPort;  // host order
    bool v6 = false;
    bool up = true;
    uint16_t hdr_len = 0;  // outer IP (+ UDP) bytes
    OuterFn outer = nullptr;
};

struct Prepared;
// Per-SA processing functions (ESN x encapsulation), chosen at install.
using OutPrepFn = bool (*)(WorkerCtx& w, const Tunnel& t, SaOut& sa, rte_mbuf* m, Prepared& p);

struct alignas(64) SaOut {
    // ---- immutable after publish
    uint32_t spi = 0;
    TunnelId tunnel = kNoTunnel;
    uint16_t worker = 0;
    Cipher cipher = Cipher::AesGcm256;
    bool esn = false;
    uint64_t seq_max = 0;  // 2^32 - 1 or 2^64 - 1: never wraps (RFC 4303 §3.3.3)
    Lifetime life;
    OutPrepFn prep = nullptr;
    crypto::SaKey key;
    // ---- owner worker
    SaRuntime rt;
};

struct alignas(64) SaIn {
    // ---- immutable after publish
    uint32_t spi = 0;
    TunnelId tunnel = kNoTunnel;
    uint16_t worker = 0;
    uint16_t underlay_vrf = 0;
    Cipher cipher = Cipher::AesGcm256;
    bool esn = false;
    Lifetime life;
    crypto::SaKey key;
    // ---- owner worker
    SaRuntime rt;
    replay::Window win;
};

// Per-tunnel counters, by tunnel id; the owner worker writes them.
struct alignas(64) TunnelCtr {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_other_path, critical_copies;
    uint64_t path_rx[kMaxPaths], path_first[kMaxPaths], path_tx[kMaxPaths];
};

struct alignas(64) Tunnel {
    TunnelId id = kNoTunnel;
    uint16_t gen = 0;  // bumped each time the id is reused
    uint16_t worker = 0;
    uint16_t vrf = 0, underlay_vrf = 0;
    uint16_t mtu = 0;  // inner
    bool udp = true;
    bool mss_clamp = true;
    uint8_t npaths = 0;
    uint8_t nin = 0;
    uint64_t critical = 0;  // DSCP bit mask
    SaOut* out = nullptr;
    TunnelCtr* ctr = nullptr;
    uint32_t in_spi[kMaxInSas] = {};
    Path paths[kMaxPaths];
};

// What esp_out stages per packet between preparation and encryption.
struct Prepared {
    rte_mbuf* m;
    const Tunnel* t;
    uint8_t tos;  // inner DSCP + ECN: copied to the outer header
    uint8_t aad[crypto::kAadLenEsn];
};

// What esp_in stages per packet between the replay check and decryption.
struct InStage {
    rte_mbuf* m;
    SaIn* sa;
    const Tunnel* t;
    uint64_t seq;      // full (ESN inferred)
    uint8_t* esp;      // ESP header in the frame
    uint32_t esp_len;  // ESP header .. ICV
    uint8_t path;      // index in t->paths, 0xff: another outer address pair
    uint8_t outer_tos; // outer DSCP + ECN (RFC 6040 decapsulation)
    uint8_t aad[crypto::kAadLenEsn];
};

// Per-worker staging: packets collected during a burst, processed in bulk.
// In and out have their own crypto arrays: decryption routes packets that
// may go straight back into a tunnel while the inbound results are walked.
struct Batch {
    rte_mbuf* in[kBatch];
    uint16_t nin = 0;
    rte_mbuf* out[kBatch];
    uint16_t nout = 0;
    crypto::Op out_ops[kBatch];
    Prepared out_prep[kBatch];
    uint16_t nops = 0;
    crypto::Op in_ops[kBatch];
    InStage in_stage[kBatch];
    bool flushing = false;
    rte_ip_frag_tbl* frag = nullptr;  // outer reassembly (frag.cpp)
    rte_ip_frag_death_row dr;
};

struct EspState {
    std::atomic<SaIn*>* in = nullptr;         // [2^18] by SPI slot
    std::atomic<Tunnel*>* tunnels = nullptr;  // [kMaxTunnels] by id
    TunnelCtr* ctr = nullptr;                 // [kMaxTunnels]
    rte_ring* events = nullptr;               // SaEvent, MP/SC
    crypto::Engine* ctl = nullptr;            // key expansion, same arch as the workers'
    // ---- control thread only
    std::vector<std::string> names;           // by tunnel id
    std::vector<uint16_t> spi_gen;            // by slot: the next generation
    std::vector<uint16_t> tunnel_gen;         // by tunnel id: the last generation
    std::vector<TunnelId> free_ids;
    TunnelId next_id = 0;
    std::vector<SaOut*> all_out;              // by tunnel id, for show
};

// Group prefetch for a burst of packets (esp_in.cpp, esp_out.cpp). With
// 100,000 tunnels every packet's tunnel, SA, counters and 1 KiB key are
// cold: walked packet by packet, each level of that pointer chain costs a
// full memory latency. Walking the burst once per level and only issuing
// prefetches lets the misses of all packets of one level overlap.
inline void prefetch_lines(const void* p, size_t len) {
    const char* c = static_cast<const char*>(p);
    for (size_t o = 0; o < len; o += 64) __builtin_prefetch(c + o);
}

// Tables (sa.cpp).
bool init(std::string* err);  // after the workers' contexts exist
void fini();
inline Tunnel* tunnel_get(TunnelId id) {
    return id < kMaxTunnels ? g->esp->tunnels[id].load(std::memory_order_acquire) : nullptr;
}
inline SaIn* sa_in_get(uint32_t spi) {
    SaIn* s = g->esp->in[spi & kSpiSlotMask].load(std::memory_order_acquire);
    return s && s->spi == spi ? s : nullptr;
}
void raise_event(uint32_t spi, TunnelId tunnel, bool inbound, SaEventKind k);

// Worker side (esp_in.cpp, esp_out.cpp, handoff.cpp).
// Called from the forwarding code for a packet to a local address: consumes
// ESP and NAT keepalives (true), leaves the rest (IKE, ...) to the caller.
bool classify_local(WorkerCtx& w, uint16_t port, rte_mbuf* m, bool v4, uint8_t* l3, uint32_t l3len);
// A routed packet (frame with Ethernet header) whose next hop is a tunnel.
void out_push(WorkerCtx& w, uint16_t in_port, rte_mbuf* m, TunnelId t);
void in_push(WorkerCtx& w, rte_mbuf* m);
void in_flush(WorkerCtx& w);
void out_flush(WorkerCtx& w);
// Runs staged work until nothing is left (decryption may route into tunnels).
void flush(WorkerCtx& w);
// Hands a packet to the worker that owns its SA; false (dropped, counted) if full.
void handoff(WorkerCtx& w, rte_mbuf* m, uint16_t owner, Handoff what);

// Outer reassembly (frag.cpp).
bool frag_init(WorkerCtx& w, std::string* err);
void frag_fini(WorkerCtx& w);
void frag_housekeeping(WorkerCtx& w);  // expire old entries, free the death row
bool is_outer_fragment(const uint8_t* l3, uint32_t l3len, bool v4);  // ESP or UDP fragment
// Takes a fragment; returns the whole packet (one segment) when complete,
// nullptr while held or when dropped (counted).
rte_mbuf* reassemble(WorkerCtx& w, uint16_t port, rte_mbuf* m, bool v4);

// Helpers shared by both directions (inner.cpp).
// TCP MSS clamp (RFC 879 / RFC 6691) on a SYN; l3 is the inner IP header.
void mss_clamp(uint8_t* l3, uint32_t l3len, bool v4, uint16_t mtu);

}  // namespace nimbus::dp::esp
