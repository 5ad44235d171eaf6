// ESP outbound, tunnel mode (RFC 4303), on the worker that owns the tunnel:
// MTU (ICMP too big, or IPv4 fragmentation before encryption) -> MSS clamp ->
// sequence number (never wraps) -> ESP header, IV = sequence number, trailer
// -> one AEAD burst -> outer IPv4/IPv6 (+UDP 4500, RFC 3948) with DSCP copied
// (RFC 4301 §5.1.2.1) and ECN per RFC 6040 -> underlay FIB + neighbour -> tx.
// Critical packets of a multi-path tunnel are encrypted once and copied per
// active path: the copies differ only in their outer headers.
#include <cstring>

#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/capture.h"
#include "dataplane/esp/sa.h"

namespace nimbus::dp::esp {

namespace {

inline void put32(uint8_t* p, uint32_t v) {
    v = rte_cpu_to_be_32(v);
    std::memcpy(p, &v, 4);
}

// RFC 791 header checksum from the header's values (RFC 1071 sum of the
// 16-bit words), not by reading back the header just written: that 16-byte
// load over a row of narrow stores cannot be forwarded from the store
// buffer and cost ~20 cycles a packet (perf: the hottest line of this file).
inline uint16_t v4_cksum(uint8_t tos, uint16_t tot, uint16_t id, uint8_t proto, uint32_t src, uint32_t dst) {
    uint32_t s = (0x45u << 8 | tos) + tot + id + (64u << 8 | proto) + (src >> 16) + (src & 0xffff) + (dst >> 16) +
                 (dst & 0xffff);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return uint16_t(~s);
}

template <bool kUdp>
void outer_v4(WorkerCtx& w, const Path& p, uint8_t* l3, uint32_t esp_len, uint8_t tos) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
    uint16_t tot = uint16_t(20 + (kUdp ? 8 : 0) + esp_len);
    uint16_t id = w.ip_id++;
    constexpr uint8_t proto = kUdp ? IPPROTO_UDP : IPPROTO_ESP;
    uint32_t src, dst;  // network order
    std::memcpy(&src, p.local.b.data(), 4);
    std::memcpy(&dst, p.remote.b.data(), 4);
    ip->version_ihl = 0x45;
    ip->type_of_service = tos;
    ip->total_length = rte_cpu_to_be_16(tot);
    ip->packet_id = rte_cpu_to_be_16(id);
    ip->fragment_offset = 0;  // DF clear: the peer reassembles outer fragments
    ip->time_to_live = 64;
    ip->next_proto_id = proto;
    ip->src_addr = src;
    ip->dst_addr = dst;
    ip->hdr_checksum = rte_cpu_to_be_16(v4_cksum(tos, tot, id, proto, rte_be_to_cpu_32(src), rte_be_to_cpu_32(dst)));
    if constexpr (kUdp) {
        auto* u = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        u->src_port = rte_cpu_to_be_16(p.sport);
        u->dst_port = rte_cpu_to_be_16(p.dport);
        u->dgram_len = rte_cpu_to_be_16(uint16_t(8 + esp_len));
        u->dgram_cksum = 0;  // RFC 3948 §2.1: zero over IPv4
    }
}

template <bool kUdp>
void outer_v6(WorkerCtx&, const Path& p, uint8_t* l3, uint32_t esp_len, uint8_t tos) {
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(l3);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | uint32_t(tos) << 20);
    ip->payload_len = rte_cpu_to_be_16(uint16_t((kUdp ? 8 : 0) + esp_len));
    ip->proto = kUdp ? IPPROTO_UDP : IPPROTO_ESP;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, p.local.b.data(), 16);
    std::memcpy(ip->dst_addr, p.remote.b.data(), 16);
    if constexpr (kUdp) {
        auto* u = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        u->src_port = rte_cpu_to_be_16(p.sport);
        u->dst_port = rte_cpu_to_be_16(p.dport);
        u->dgram_len = ip->payload_len;
        u->dgram_cksum = 0;
        // IPv6 forbids a zero UDP checksum for us (RFC 8200 §8.1).
        u->dgram_cksum = rte_ipv6_udptcp_cksum(ip, u);
    }
}

// Inner DSCP and ECN -> outer TOS / traffic class. DSCP copied (RFC 4301
// §5.1.2.1); ECN in RFC 6040 normal mode: the outer ECN field is a copy.
inline uint8_t inner_tos(const uint8_t* l3, bool v4) {
    if (v4) return reinterpret_cast<const rte_ipv4_hdr*>(l3)->type_of_service;
    uint32_t f = rte_be_to_cpu_32(reinterpret_cast<const rte_ipv6_hdr*>(l3)->vtc_flow);
    return uint8_t(f >> 20);
}

// Builds the ESP packet around the inner one in place: data then starts at
// the ESP header and ends after the (still empty) ICV. Sequence number and
// lifetimes are checked here: an SA whose numbers or lifetime ran out is
// never used again.
template <bool kEsn>
bool prep(WorkerCtx& w, const Tunnel& t, SaOut& sa, rte_mbuf* m, Prepared& p) {
    uint16_t port = meta(m)->in_port;
    SaRuntime& rt = sa.rt;
    if (unlikely(rt.hard)) {
        rt.ctr[int(SaCounter::expired)]++;
        drop_pkt(w, port, m, Drop::sa_expired);
        return false;
    }
    uint32_t len = m->pkt_len;  // inner L3 (Ethernet already stripped)
    uint64_t seq = rt.seq + 1;
    if (unlikely(seq > sa.seq_max || seq == 0)) {
        // RFC 4303 §3.3.3: the counter must not cycle; a new SA is needed.
        rt.hard = 1;
        raise_event(sa.spi, sa.tunnel, false, SaEventKind::SeqExhausted);
        rt.ctr[int(SaCounter::seq_exhausted)]++;
        drop_pkt(w, port, m, Drop::seq_exhausted);
        return false;
    }
    const Lifetime& l = sa.life;
    if (unlikely((l.hard_packets && rt.ctr[int(SaCounter::packets)] >= l.hard_packets) ||
                 (l.hard_bytes && rt.ctr[int(SaCounter::bytes)] + len > l.hard_bytes))) {
        rt.hard = 1;
        raise_event(sa.spi, sa.tunnel, false, SaEventKind::Hard);
        rt.ctr[int(SaCounter::expired)]++;
        drop_pkt(w, port, m, Drop::sa_expired);
        return false;
    }
    uint8_t* l3 = rte_pktmbuf_mtod(m, uint8_t*);
    bool v4 = (l3[0] >> 4) == 4;
    uint32_t pad = (4 - ((len + 2) & 3)) & 3;
    uint8_t* tr = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(pad + 2 + kIcv)));
    uint8_t* esp = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEspHdr + kEspIv));
    if (unlikely(!tr || !esp || rte_pktmbuf_headroom(m) < sizeof(rte_ether_hdr) + 48)) {
        drop_pkt(w, port, m, Drop::esp_no_room);
        return false;
    }
    rt.seq = seq;
    rt.ctr[int(SaCounter::packets)]++;
    rt.ctr[int(SaCounter::bytes)] += len;
    if (unlikely(!rt.soft_sent && ((l.soft_packets && rt.ctr[int(SaCounter::packets)] >= l.soft_packets) ||
                                   (l.soft_bytes && rt.ctr[int(SaCounter::bytes)] >= l.soft_bytes)))) {
        rt.soft_sent = 1;
        raise_event(sa.spi, sa.tunnel, false, SaEventKind::Soft);
    }
    // Trailer: padding 1, 2, 3 ... (RFC 4303 §2.4), pad length, next header.
    for (uint32_t i = 0; i < pad; i++) tr[i] = uint8_t(i + 1);
    tr[pad] = uint8_t(pad);
    tr[pad + 1] = v4 ? IPPROTO_IPIP : IPPROTO_IPV6;
    put32(esp, sa.spi);
    put32(esp + 4, uint32_t(seq));
    // IV = the 64-bit sequence number: unique under the key as long as the
    // sequence never repeats (RFC 4106 §3.1, RFC 7634 §2).
    uint64_t iv = rte_cpu_to_be_64(seq);
    std::memcpy(esp + 8, &iv, 8);
    p.m = m;
    p.t = &t;
    p.tos = inner_tos(l3 + 0, v4);
    crypto::Op& op = w.esp->out_ops[w.esp->nops];
    op.ok = false;
    op.key = &sa.key;
    op.iv = esp + 8;
    if constexpr (kEsn) {
        // RFC 4106 §5 / RFC 7634 §2.1: AAD = SPI || seq-hi || seq-lo.
        std::memcpy(p.aad, esp, 4);
        put32(p.aad + 4, uint32_t(seq >> 32));
        put32(p.aad + 8, uint32_t(seq));
        op.aad = p.aad;
        op.aad_len = crypto::kAadLenEsn;
    } else {
        op.aad = esp;
        op.aad_len = crypto::kAadLen;
    }
    op.data = esp + kEspHdr + kEspIv;
    op.len = len + pad + 2;
    op.tag = op.data + op.len;
    return true;
}

template <bool kEsn, bool kUdp>
bool prep_fn(WorkerCtx& w, const Tunnel& t, SaOut& sa, rte_mbuf* m, Prepared& p) {
    return prep<kEsn>(w, t, sa, m, p);
}

// Outer headers for path `pi`, then the underlay route and neighbour.
void send_on_path(WorkerCtx& w, const Tunnel& t, int pi, rte_mbuf* m, uint8_t tos) {
    const Path& p = t.paths[pi];
    uint16_t in_port = meta(m)->in_port;
    uint32_t esp_len = m->pkt_len;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(
        rte_pktmbuf_prepend(m, uint16_t(sizeof(rte_ether_hdr) + p.hdr_len)));
    if (unlikely(!eth)) {
        drop_pkt(w, in_port, m, Drop::esp_no_room);
        return;
    }
    uint8_t* l3 = reinterpret_cast<uint8_t*>(eth + 1);
    p.outer(w, p, l3, esp_len, tos);
    eth->ether_type = rte_cpu_to_be_16(p.v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    NhId id = kNhNoRoute;
    if (!p.v6) {
        rte_lpm* l = vrf_v4(t.underlay_vrf);
        uint32_t nh;
        if (l && rte_lpm_lookup(l, p.remote.v4_host(), &nh) == 0) id = nh;
    } else if (rte_fib6* f = g->vrfs[t.underlay_vrf].v6_active.load(std::memory_order_acquire)) {
        uint8_t a[1][RTE_FIB6_IPV6_ADDR_SIZE];
        std::memcpy(a[0], p.remote.b.data(), 16);
        uint64_t nh = kNhNoRoute;
        rte_fib6_lookup_bulk(f, a, &nh, 1);
        id = NhId(nh);
    }
    Nh* nh = nh_get(id);
    if (unlikely(!nh || (nh->type != NhType::Adjacency && nh->type != NhType::Glean))) {
        drop_pkt(w, in_port, m, Drop::underlay_no_route);
        return;
    }
    t.ctr->path_tx[pi]++;
    if (unlikely(nh->type == NhType::Glean || !nh->resolved)) {
        // Hold it like any routed packet while the kernel resolves the
        // neighbour; it comes back through the egress port's VRF (the
        // underlay), so its in_port becomes the egress port.
        MbufMeta* md = meta(m);
        if (md->reinjected) {
            drop_pkt(w, in_port, m, Drop::neigh_miss_again);
            return;
        }
        md->in_port = nh->port;
        md->origin = Origin::Wire;
        md->route_vrf = -1;  // the egress port's VRF (the underlay)
        md->aux = nh->type == NhType::Glean ? p.remote : nh->gateway;
        punt_pkt(w, nh->port, m, PuntClass::Other, PuntReason::NeighMiss, false);
        return;
    }
    rte_ether_addr_copy(&nh->dst, &eth->dst_addr);
    rte_ether_addr_copy(&nh->src, &eth->src_addr);
    capture_tunnel(t.id, m, CapDir::TunnelOutEsp);
    tx_pkt(w, nh->port, m);
}

// Encrypts what is staged and sends it.
void run_stage(WorkerCtx& w) {
    uint16_t n = w.esp->nops;
    if (!n) return;
    w.engine->encrypt(std::span<crypto::Op>(w.esp->out_ops, n));
    for (uint16_t i = 0; i < n; i++) {
        Prepared& p = w.esp->out_prep[i];
        rte_mbuf* m = p.m;
        const Tunnel& t = *p.t;
        if (unlikely(!w.esp->out_ops[i].ok)) {
            drop_pkt(w, meta(m)->in_port, m, Drop::encrypt_fail);
            continue;
        }
        t.ctr->tx_packets++;
        t.ctr->tx_bytes += m->pkt_len;
        // Critical: one copy per further active path, made before any outer
        // header exists; the ciphertext, SPI and sequence number are shared.
        if (t.npaths > 1 && ((t.critical >> (p.tos >> 2)) & 1)) {
            for (int k = 1; k < t.npaths; k++) {
                if (!t.paths[k].up) continue;
                rte_mbuf* c = rte_pktmbuf_copy(m, g->pool, 0, UINT32_MAX);
                if (unlikely(!c)) {
                    w.pc[meta(m)->in_port].drops[int(Drop::no_mbuf)]++;
                    continue;
                }
                *meta(c) = *meta(m);
                t.ctr->critical_copies++;
                send_on_path(w, t, k, c, p.tos);
            }
        }
        int primary = 0;
        while (primary < t.npaths - 1 && !t.paths[primary].up) primary++;
        send_on_path(w, t, primary, m, p.tos);
    }
    w.esp->nops = 0;
}

void stage(WorkerCtx& w, const Tunnel& t, rte_mbuf* m) {
    capture_tunnel(t.id, m, CapDir::TunnelOutPlain);
    if (w.esp->nops == kBatch) run_stage(w);
    // (prep fills every field of the op: no reset here, whose zeroed
    // temporary copy stalled on store forwarding.)
    if (t.out->prep(w, t, *t.out, m, w.esp->out_prep[w.esp->nops])) w.esp->nops++;
}

// RFC 791 fragmentation of an inner IPv4 packet without DF, before
// encryption, into direct mbufs (each is then encapsulated on its own).
// Copies rather than chaining indirect buffers (rte_ipv4_fragment_packet):
// ESP works in place on one contiguous segment.
void fragment_v4(WorkerCtx& w, const Tunnel& t, rte_mbuf* m) {
    uint16_t port = meta(m)->in_port;
    auto* ip = rte_pktmbuf_mtod(m, rte_ipv4_hdr*);
    uint32_t hl = uint32_t(ip->ihl) * 4;
    uint32_t tot = rte_be_to_cpu_16(ip->total_length);
    uint16_t fo = rte_be_to_cpu_16(ip->fragment_offset);
    uint32_t base = uint32_t(fo & RTE_IPV4_HDR_OFFSET_MASK) * 8;
    bool more = fo & RTE_IPV4_HDR_MF_FLAG;
    uint32_t chunk = (uint32_t(t.mtu) - hl) & ~7u;
    const uint8_t* payload = reinterpret_cast<const uint8_t*>(ip) + hl;
    uint32_t plen = tot - hl;
    for (uint32_t off = 0; off < plen; off += chunk) {
        uint32_t n = std::min(chunk, plen - off);
        rte_mbuf* f = rte_pktmbuf_alloc(g->pool);
        if (unlikely(!f)) {
            w.pc[port].drops[int(Drop::no_mbuf)]++;
            break;
        }
        *meta(f) = *meta(m);
        uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(f, uint16_t(hl + n)));
        if (unlikely(!d)) {
            drop_pkt(w, port, f, Drop::esp_no_room);
            break;
        }
        std::memcpy(d, ip, hl);
        std::memcpy(d + hl, payload + off, n);
        auto* fi = reinterpret_cast<rte_ipv4_hdr*>(d);
        bool last = off + n >= plen;
        fi->total_length = rte_cpu_to_be_16(uint16_t(hl + n));
        fi->fragment_offset = rte_cpu_to_be_16(
            uint16_t(((base + off) >> 3) | ((!last || more) ? RTE_IPV4_HDR_MF_FLAG : 0)));
        fi->hdr_checksum = 0;
        fi->hdr_checksum = rte_ipv4_cksum(fi);
        stage(w, t, f);
    }
    rte_pktmbuf_free(m);
}

}  // namespace

OutPrepFn choose_prep(bool esn, bool udp) {
    if (esn) return udp ? prep_fn<true, true> : prep_fn<true, false>;
    return udp ? prep_fn<false, true> : prep_fn<false, false>;
}

OuterFn choose_outer(bool v6, bool udp) {
    if (v6) return udp ? outer_v6<true> : outer_v6<false>;
    return udp ? outer_v4<true> : outer_v4<false>;
}

void out_push(WorkerCtx& w, uint16_t in_port, rte_mbuf* m, TunnelId t) {
    MbufMeta* md = meta(m);
    md->in_port = in_port;
    md->tunnel = t;
    // Not read here: with many tunnels this would be one full cache miss per
    // packet; out_flush resolves the burst's tunnels together.
    md->tunnel_gen = kGenUnresolved;
    Batch& b = *w.esp;
    if (b.nout == kBatch) out_flush(w);
    b.out[b.nout++] = m;
}

void out_flush(WorkerCtx& w) {
    Batch& b = *w.esp;
    if (!b.nout) return;
    rte_mbuf* pkts[kBatch];
    const Tunnel* tun[kBatch];
    uint16_t n = b.nout;
    std::memcpy(pkts, b.out, sizeof(rte_mbuf*) * n);
    b.nout = 0;
    // Group prefetch (sa.h) when the tables are big, one level of the chain
    // per pass: the tunnel table's slot, the tunnel, then its outbound SA
    // (header, runtime line, key) and counters. The tunnels are resolved
    // here in any case.
    const bool pf = g->group_prefetch.load(std::memory_order_relaxed);
    for (uint16_t i = 0; pf && i < n; i++) {
        TunnelId id = meta(pkts[i])->tunnel;
        if (id < kMaxTunnels) __builtin_prefetch(&g->esp->tunnels[id]);
    }
    // A run of packets of one tunnel (the common case with few tunnels) is
    // prefetched once.
    for (uint16_t i = 0; i < n; i++) {
        tun[i] = tunnel_get(meta(pkts[i])->tunnel);
        if (pf && tun[i] && (i == 0 || tun[i] != tun[i - 1])) prefetch_lines(tun[i], offsetof(Tunnel, paths) + sizeof(Path));
    }
    for (uint16_t i = 0; pf && i < n; i++) {
        const Tunnel* t = tun[i];
        if (!t || !t->out || (i && t == tun[i - 1])) continue;
        __builtin_prefetch(t->out);
        __builtin_prefetch(&t->out->rt);
        __builtin_prefetch(t->ctr);
    }
    // The keys last: 16 lines each, they would crowd out the lines above
    // (the core tracks only a few dozen misses at a time).
    for (uint16_t i = 0; pf && i < n; i++)
        if (tun[i] && tun[i]->out && (i == 0 || tun[i] != tun[i - 1])) tun[i]->out->key.prefetch();
    uint64_t fw_now = 0;  // the firewall's clock for this burst
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        MbufMeta* md = meta(m);
        uint16_t port = md->in_port;
        const Tunnel* t = tun[i];
        // A packet handed off across a tunnel's removal must not leave
        // through a new tunnel that reuses the id: it carries the generation
        // its first worker resolved.
        if (unlikely(!t || !t->out || (md->tunnel_gen != kGenUnresolved && t->gen != md->tunnel_gen))) {
            drop_pkt(w, port, m, Drop::no_tunnel);
            continue;
        }
        if (t->worker != w.index) {
            md->tunnel_gen = t->gen;
            t->out->rt.ctr[int(SaCounter::handoff)]++;  // benign race: statistics only
            handoff(w, m, t->worker, Handoff::EspOut);
            continue;
        }
        if (unlikely(m->nb_segs != 1)) {
            drop_pkt(w, port, m, Drop::esp_no_room);
            continue;
        }
        rte_pktmbuf_adj(m, sizeof(rte_ether_hdr));
        uint8_t* l3 = rte_pktmbuf_mtod(m, uint8_t*);
        bool v4 = (l3[0] >> 4) == 4;
        uint32_t len = m->pkt_len;
        if (const acl::Policy* fp = fw_policy(t->vrf);
            unlikely(fp != nullptr) && !fw_pass(w, *fp, true, t->vrf, l3, len, fw_now)) {
            drop_pkt(w, port, m, Drop::fw_denied);
            continue;
        }
        if (t->mss_clamp) mss_clamp(l3, len, v4, t->mtu);
        if (unlikely(len > t->mtu)) {
            bool df = !v4 || (rte_be_to_cpu_16(reinterpret_cast<rte_ipv4_hdr*>(l3)->fragment_offset) &
                              RTE_IPV4_HDR_DF_FLAG);
            if (df) {
                // ICMP fragmentation needed / packet too big with the tunnel's
                // MTU, through the control thread (the frame needs its
                // Ethernet header back for the punt path).
                rte_pktmbuf_prepend(m, sizeof(rte_ether_hdr));
                w.pc[port].drops[int(Drop::mtu_exceeded)]++;
                md->mtu = t->mtu;
                punt_pkt(w, port, m, PuntClass::Icmp, PuntReason::TooBig, true);
            } else {
                fragment_v4(w, *t, m);
            }
            continue;
        }
        stage(w, *t, m);
    }
    run_stage(w);
}

}  // namespace nimbus::dp::esp
