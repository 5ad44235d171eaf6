// Packets for an SA another worker owns go to that worker through its
// handoff ring (multi-producer, single consumer), as VPP's ipsec handoff:
// sequence numbers, replay windows and counters then need no locks.
#include "dataplane/esp/sa.h"

namespace nimbus::dp {

namespace esp {

void handoff(WorkerCtx& w, rte_mbuf* m, uint16_t owner, Handoff what) {
    MbufMeta* md = meta(m);
    md->handoff = what;
    if (unlikely(owner >= g->nworkers || rte_ring_mp_enqueue(g->workers[owner].handoff, m) != 0))
        drop_pkt(w, md->in_port, m, Drop::handoff_full);
}

void flush(WorkerCtx& w) {
    Batch& b = *w.esp;
    if (b.flushing) return;  // the outermost call finishes the work
    b.flushing = true;
    // Outbound first (what the burst routed into tunnels), then inbound
    // (whose decrypted packets may route into tunnels again), then that.
    while (b.nout || b.nin) {
        out_flush(w);
        in_flush(w);
    }
    if (b.dr.cnt) rte_ip_frag_free_death_row(&b.dr, 0);
    b.flushing = false;
}

}  // namespace esp

void process_handoff(WorkerCtx& w, rte_mbuf** pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        MbufMeta* md = meta(m);
        Handoff h = md->handoff;
        md->handoff = Handoff::None;
        if (h == Handoff::EspIn) esp::in_push(w, m);
        else if (h == Handoff::EspOut) {
            // Straight into the batch: keep the generation it was routed with.
            esp::Batch& b = *w.esp;
            if (b.nout == esp::kBatch) esp::out_flush(w);
            b.out[b.nout++] = m;
        }
        else rte_pktmbuf_free(m);
    }
    esp::flush(w);
}

}  // namespace nimbus::dp
