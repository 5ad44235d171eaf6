#include "dataplane/capture.h"

#include <cstring>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_errno.h>

namespace nimbus::dp {

namespace {
constexpr uint32_t kSnap = 2048;
constexpr unsigned kCapBufs = 2047;
}  // namespace

void capture_copy(rte_mbuf* m, CapDir d) {
    if (g->cap_remaining.fetch_sub(1, std::memory_order_relaxed) <= 0) {
        g->cap_on.store(false, std::memory_order_relaxed);
        return;
    }
    rte_mbuf* c = rte_pktmbuf_copy(m, g->cap_pool, 0, std::min(m->pkt_len, kSnap));
    if (unlikely(!c)) {
        g->cap_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (d == CapDir::TunnelOutPlain) {
        // Staged for encryption the packet starts at its IP header: give the
        // copy an Ethernet header so every record of the file has one.
        auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(c, sizeof(rte_ether_hdr)));
        if (eth) {
            std::memset(eth, 0, sizeof *eth);
            uint8_t v = rte_pktmbuf_mtod_offset(c, const uint8_t*, sizeof *eth)[0] >> 4;
            eth->ether_type = rte_cpu_to_be_16(v == 6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
        }
    }
    auto* cm = static_cast<CapMeta*>(rte_mbuf_to_priv(c));
    cm->tsc = rte_rdtsc();
    cm->orig_len = m->pkt_len + (d == CapDir::TunnelOutPlain ? uint32_t(sizeof(rte_ether_hdr)) : 0);
    cm->dir = d;
    if (unlikely(rte_ring_mp_enqueue(g->cap_ring, c) != 0)) {
        rte_pktmbuf_free(c);
        g->cap_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    g->cap_copied.fetch_add(1, std::memory_order_relaxed);
}

bool capture_start(int port, TunnelId tunnel, uint32_t count, std::string* err) {
    if (!g) return false;
    if (g->cap_on.load()) {
        *err = "a capture is already running (debug capture stop)";
        return false;
    }
    if (!g->cap_pool) {
        g->cap_pool = rte_pktmbuf_pool_create("nimbus_cap", kCapBufs, 64, kMbufPrivSize,
                                              uint16_t(RTE_PKTMBUF_HEADROOM + kSnap), int(rte_socket_id()));
        g->cap_ring = rte_ring_create("nimbus_cap", 2048, int(rte_socket_id()), RING_F_SC_DEQ);
        if (!g->cap_pool || !g->cap_ring) {
            *err = fmt::format("capture buffers: {}", rte_strerror(rte_errno));
            return false;
        }
    }
    g->cap_port = port;
    g->cap_tunnel = tunnel;
    g->cap_copied.store(0);
    g->cap_dropped.store(0);
    g->cap_remaining.store(count);
    g->cap_on.store(true, std::memory_order_release);
    return true;
}

void capture_stop() {
    if (!g) return;
    g->cap_on.store(false, std::memory_order_release);
    g->cap_remaining.store(0);
}

int capture_poll(CapturedPkt* out, int max) {
    if (!g || !g->cap_ring) return 0;
    void* objs[64];
    unsigned n = rte_ring_sc_dequeue_burst(g->cap_ring, objs, unsigned(std::min(max, 64)), nullptr);
    for (unsigned i = 0; i < n; i++) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        if (m->nb_segs > 1) rte_pktmbuf_linearize(m);
        auto* cm = static_cast<CapMeta*>(rte_mbuf_to_priv(m));
        out[i] = CapturedPkt{m, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), cm->orig_len, cm->tsc,
                             uint8_t(cm->dir)};
    }
    return int(n);
}

void capture_release(CapturedPkt& p) {
    if (p.handle) rte_pktmbuf_free(static_cast<rte_mbuf*>(p.handle));
    p.handle = nullptr;
}

CaptureStatus capture_status() {
    CaptureStatus s;
    if (!g) return s;
    s.on = g->cap_on.load();
    s.port = g->cap_port;
    s.tunnel = g->cap_tunnel;
    s.remaining = std::max<int64_t>(0, g->cap_remaining.load());
    s.copied = g->cap_copied.load();
    s.dropped = g->cap_dropped.load();
    s.pending = g->cap_ring ? rte_ring_count(g->cap_ring) : 0;
    return s;
}

uint64_t tsc_hz() { return rte_get_tsc_hz(); }
uint64_t tsc_now() { return rte_rdtsc(); }

}  // namespace nimbus::dp
