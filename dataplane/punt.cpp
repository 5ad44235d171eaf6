// The exception path, control-thread side: draining punted packets (high
// priority ring of every worker first), injecting frames from the host
// interfaces, and re-injecting held packets.
#include <unistd.h>

#include <cstring>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "dataplane/dp.h"

namespace nimbus::dp {

void policers_init(WorkerCtx& w) {
    uint64_t hz = rte_get_tsc_hz();
    for (int c = 0; c < kPuntClassCount; c++) {
        Policer& p = w.policer[c];
        const PuntRate& r = g->spec.punt[c];
        p.rate_per_tsc = double(r.pps) / double(hz);
        p.burst = double(std::max<uint32_t>(1, r.burst));
        p.tokens = p.burst;
        p.last = rte_rdtsc();
    }
}

namespace {

void to_host_pkt(rte_mbuf* m, HostPkt& h) {
    MbufMeta* md = meta(m);
    h.owned = nullptr;
    h.handle = m;
    h.data = rte_pktmbuf_mtod(m, const uint8_t*);
    h.len = rte_pktmbuf_data_len(m) == m->pkt_len ? m->pkt_len : 0;
    h.port = md->in_port;
    h.cls = md->cls;
    h.reason = md->reason;
    h.from_host = md->origin == Origin::Host;
    h.mtu = md->mtu;
    h.aux = md->aux;
    h.vrf = md->reason == PuntReason::NeighMiss ? md->route_vrf : -1;
}

}  // namespace

int punt_poll(HostPkt* out, int max) {
    if (!g) return 0;
    int n = 0;
    void* objs[64];
    // High-priority rings of all workers before any low-priority ring.
    for (int pass = 0; pass < 2 && n < max; pass++) {
        for (int w = 0; w < g->nworkers && n < max; w++) {
            rte_ring* r = pass == 0 ? g->workers[w].punt_hi : g->workers[w].punt_lo;
            unsigned want = unsigned(std::min(max - n, 64));
            unsigned got = rte_ring_sc_dequeue_burst(r, objs, want, nullptr);
            for (unsigned i = 0; i < got; i++) {
                rte_mbuf* m = static_cast<rte_mbuf*>(objs[i]);
                if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
                    // Too big for one buffer (a reassembled IKE message):
                    // hand on a copy (control thread: allocation is fine).
                    HostPkt& h = out[n++];
                    to_host_pkt(m, h);
                    h.owned = new uint8_t[m->pkt_len];
                    h.data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, m->pkt_len, h.owned));
                    h.len = m->pkt_len;
                    continue;
                }
                to_host_pkt(m, out[n++]);
            }
        }
    }
    return n;
}

void release(HostPkt& p) {
    if (p.handle) rte_pktmbuf_free(static_cast<rte_mbuf*>(p.handle));
    p.handle = nullptr;
    delete[] p.owned;
    p.owned = nullptr;
}

void reinject(HostPkt& p) {
    auto* m = static_cast<rte_mbuf*>(p.handle);
    p.handle = nullptr;
    delete[] p.owned;
    p.owned = nullptr;
    if (!m) return;
    meta(m)->reinjected = 1;
    if (rte_ring_sp_enqueue(g->workers[0].inject, m) != 0) rte_pktmbuf_free(m);
}

int punt_eventfd() { return g ? g->efd : -1; }

bool punt_arm() {
    if (!g) return false;
    uint64_t v;
    while (::read(g->efd, &v, sizeof v) > 0) {
    }
    g->need_wakeup.store(true, std::memory_order_seq_cst);
    // Re-check after arming: a worker may have enqueued just before.
    for (int w = 0; w < g->nworkers; w++)
        if (!rte_ring_empty(g->workers[w].punt_hi) || !rte_ring_empty(g->workers[w].punt_lo)) {
            g->need_wakeup.store(false, std::memory_order_relaxed);
            return true;
        }
    return false;
}

bool inject(int port, const uint8_t* frame, uint32_t len) {
    if (!g || port < 0 || port >= g->nports || len < sizeof(rte_ether_hdr)) return false;
    rte_mbuf* m = rte_pktmbuf_alloc(g->pool);
    if (!m) {
        g->workers[0].pc[port].drops[int(Drop::inject_no_mbuf)]++;
        return false;
    }
    if (len > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        return false;
    }
    char* d = rte_pktmbuf_append(m, uint16_t(len));
    std::memcpy(d, frame, len);
    MbufMeta* md = meta(m);
    *md = MbufMeta{};
    md->in_port = uint16_t(port);
    md->origin = Origin::Host;
    m->port = uint16_t(port);
    if (rte_ring_sp_enqueue(g->workers[0].inject, m) != 0) {
        g->workers[0].pc[port].drops[int(Drop::inject_no_mbuf)]++;
        rte_pktmbuf_free(m);
        return false;
    }
    return true;
}

}  // namespace nimbus::dp
