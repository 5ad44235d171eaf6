// Reassembly of outer fragments addressed to us (ESP, and UDP: ESP in UDP
// and IKE), per worker with rte_ip_frag. Bounded: the table holds at most
// `reassembly_flows` packets in flight and forgets them after
// `reassembly_timeout_ms` (dataplane config), so a fragment flood costs a
// fixed amount of memory; what expires goes back to the pool (death row).
#include <rte_cycles.h>
#include <rte_ip.h>

#include "dataplane/esp/sa.h"

namespace nimbus::dp::esp {

bool frag_init(WorkerCtx& w, std::string* err) {
    Batch& b = *w.esp;
    uint32_t flows = uint32_t(std::max(16, g->spec.frag_flows));
    uint32_t buckets = rte_align32pow2((flows + 7) / 8);
    uint64_t cycles = g->tsc_hz / 1000 * uint64_t(std::max(1, g->spec.frag_timeout_ms));
    b.frag = rte_ip_frag_table_create(buckets, 8, flows, cycles, int(rte_socket_id()));
    if (!b.frag) {
        *err = "reassembly table allocation failed";
        return false;
    }
    b.dr.cnt = 0;
    return true;
}

void frag_fini(WorkerCtx& w) {
    if (!w.esp) return;
    rte_ip_frag_free_death_row(&w.esp->dr, 0);
    if (w.esp->frag) rte_ip_frag_table_destroy(w.esp->frag);
    w.esp->frag = nullptr;
}

void frag_housekeeping(WorkerCtx& w) {
    Batch& b = *w.esp;
    rte_ip_frag_table_del_expired_entries(b.frag, &b.dr, rte_rdtsc());
    if (b.dr.cnt) rte_ip_frag_free_death_row(&b.dr, 0);
}

bool is_outer_fragment(const uint8_t* l3, uint32_t l3len, bool v4) {
    if (v4) {
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(l3);
        return rte_ipv4_frag_pkt_is_fragmented(ip) &&
               (ip->next_proto_id == IPPROTO_ESP || ip->next_proto_id == IPPROTO_UDP);
    }
    const auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(l3);
    if (ip->proto != IPPROTO_FRAGMENT || l3len < sizeof(rte_ipv6_hdr) + sizeof(rte_ipv6_fragment_ext)) return false;
    const auto* fh = reinterpret_cast<const rte_ipv6_fragment_ext*>(ip + 1);
    return fh->next_header == IPPROTO_ESP || fh->next_header == IPPROTO_UDP;
}

rte_mbuf* reassemble(WorkerCtx& w, uint16_t port, rte_mbuf* m, bool v4) {
    Batch& b = *w.esp;
    uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, sizeof(rte_ether_hdr));
    m->l2_len = sizeof(rte_ether_hdr);
    rte_mbuf* r;
    if (v4) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
        m->l3_len = uint16_t(ip->ihl * 4);
        r = rte_ipv4_frag_reassemble_packet(b.frag, &b.dr, m, rte_rdtsc(), ip);
    } else {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(l3);
        if (m->pkt_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + sizeof(rte_ipv6_fragment_ext)) {
            drop_pkt(w, port, m, Drop::ip6_bad_header);
            return nullptr;
        }
        auto* fh = reinterpret_cast<rte_ipv6_fragment_ext*>(ip + 1);
        m->l3_len = uint16_t(sizeof(rte_ipv6_hdr) + sizeof(rte_ipv6_fragment_ext));
        r = rte_ipv6_frag_reassemble_packet(b.frag, &b.dr, m, rte_rdtsc(), ip, fh);
    }
    if (!r) return nullptr;  // held until the rest arrives (or expires)
    w.pc[port].reassembled++;
    // One segment when it fits (ESP is decrypted in place); a bigger one
    // stays chained: IKE goes to the host as it is, ESP is dropped as
    // reassembly_too_big.
    if (r->nb_segs > 1) rte_pktmbuf_linearize(r);
    if (v4) {
        auto* ip = rte_pktmbuf_mtod_offset(r, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    return r;
}

}  // namespace nimbus::dp::esp
