// ESP inbound, tunnel mode (RFC 4303), on the worker that owns the SA:
// classify (IP protocol 50, or UDP 4500 with a non-zero marker, RFC 3948) ->
// SPI -> SA in O(1) (hand off when another worker owns it) -> anti-replay
// check before decryption -> one AEAD burst -> window update only after
// authentication (RFC 4303 §3.4.3; a second copy of a critical packet ends
// as `duplicate`) -> padding and next-header checks -> strip -> cryptokey
// routing: the inner source must route back into this very tunnel -> route
// in the tunnel's VRF.
#include <cstring>

#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/capture.h"
#include "dataplane/esp/sa.h"

namespace nimbus::dp::esp {

namespace {

inline uint32_t get32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return rte_be_to_cpu_32(v);
}
inline void put32(uint8_t* p, uint32_t v) {
    v = rte_cpu_to_be_32(v);
    std::memcpy(p, &v, 4);
}

// Fixed-size address equality (a memcmp with a run-time length is a libc
// call per packet).
template <size_t N>
inline bool same_addr(const uint8_t* a, const uint8_t* b) {
    if constexpr (N == 4) {
        uint32_t x, y;
        std::memcpy(&x, a, 4);
        std::memcpy(&y, b, 4);
        return x == y;
    } else {
        uint64_t a0, a1, b0, b1;
        std::memcpy(&a0, a, 8);
        std::memcpy(&a1, a + 8, 8);
        std::memcpy(&b0, b, 8);
        std::memcpy(&b1, b + 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
}

// Which of the tunnel's paths an outer header came on: its source is our
// path's remote and its destination our path's local address.
uint8_t which_path(const Tunnel& t, const uint8_t* l3) {
    bool v6 = (l3[0] >> 4) == 6;
    for (uint8_t i = 0; i < t.npaths; i++) {
        const Path& p = t.paths[i];
        if (p.v6 != v6) continue;
        if (v6 ? same_addr<16>(p.remote.b.data(), l3 + 8) && same_addr<16>(p.local.b.data(), l3 + 24)
               : same_addr<4>(p.remote.b.data(), l3 + 12) && same_addr<4>(p.local.b.data(), l3 + 16))
            return i;
    }
    return 0xff;
}

// Cryptokey routing (WireGuard allowed-ips style): the route for the inner
// source in the tunnel's VRF must be this tunnel. The same table sends
// traffic out and checks it in.
bool src_allowed(const Tunnel& t, const uint8_t* inner, bool v4) {
    NhId id = kNhNoRoute;
    if (v4) {
        rte_lpm* l = vrf_v4(t.vrf);
        uint32_t src, nh;
        std::memcpy(&src, inner + 12, 4);
        if (l && rte_lpm_lookup(l, rte_be_to_cpu_32(src), &nh) == 0) id = nh;
    } else if (rte_fib6* f = g->vrfs[t.vrf].v6_active.load(std::memory_order_acquire)) {
        uint8_t a[1][RTE_FIB6_IPV6_ADDR_SIZE];
        std::memcpy(a[0], inner + 8, 16);
        uint64_t nh = kNhNoRoute;
        rte_fib6_lookup_bulk(f, a, &nh, 1);
        id = NhId(nh);
    }
    if (id < kNhFirstDynamic) return false;
    const Nh* nh = nh_get(id);
    return nh && nh->type == NhType::Tunnel && nh->tunnel == t.id;
}

// RFC 6040 §4.2 decapsulation (normal mode): outer CE marks an ECN-capable
// inner packet CE; over a not-ECT inner packet it means drop.
bool ecn_decap(uint8_t* inner, bool v4, uint8_t outer_tos) {
    if ((outer_tos & 3) != 3) return true;
    if (v4) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(inner);
        uint8_t ecn = ip->type_of_service & 3;
        if (ecn == 0) return false;
        if (ecn != 3) {
            ip->type_of_service |= 3;
            ip->hdr_checksum = 0;
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        return true;
    }
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(inner);
    uint32_t f = rte_be_to_cpu_32(ip->vtc_flow);
    uint8_t ecn = uint8_t(f >> 20) & 3;
    if (ecn == 0) return false;
    ip->vtc_flow = rte_cpu_to_be_32(f | (3u << 20));
    return true;
}

inline void sa_drop(WorkerCtx& w, uint16_t port, rte_mbuf* m, SaIn* sa, SaCounter c, Drop d) {
    sa->rt.ctr[int(c)]++;
    drop_pkt(w, port, m, d);
}

// Group prefetch (sa.h) of an inbound burst, one level per pass: the SPI's
// slot, the SA (header, runtime, window), the tunnel table's slot and the
// tunnel's counters, the tunnel, then the keys. Nothing is decided here:
// in_flush checks everything again on warm lines.
void prefetch_burst(rte_mbuf* const* pkts, uint16_t n) {
    constexpr uint32_t kNoSlot = ~0u;
    uint32_t slot[kBatch];
    SaIn* sas[kBatch];
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        uint32_t off = meta(m)->esp_off;
        slot[i] = kNoSlot;
        if (m->nb_segs != 1 || m->pkt_len < off + kEspHdr) continue;
        slot[i] = get32(rte_pktmbuf_mtod(m, uint8_t*) + off) & kSpiSlotMask;
        __builtin_prefetch(&g->esp->in[slot[i]]);
    }
    // (A run of packets of one SA is prefetched once.)
    const SaIn* prev = nullptr;
    for (uint16_t i = 0; i < n; i++) {
        SaIn* sa = slot[i] == kNoSlot ? nullptr : g->esp->in[slot[i]].load(std::memory_order_acquire);
        bool again = sa == prev;
        prev = sa;
        sas[i] = again ? nullptr : sa;  // null: nothing (more) to prefetch for this one
        if (!sas[i]) continue;
        __builtin_prefetch(sa);
        __builtin_prefetch(&sa->rt);
        __builtin_prefetch(&sa->win);
    }
    for (uint16_t i = 0; i < n; i++) {
        SaIn* sa = sas[i];
        if (!sa || sa->tunnel >= kMaxTunnels) continue;
        __builtin_prefetch(&g->esp->tunnels[sa->tunnel]);
        __builtin_prefetch(&g->esp->ctr[sa->tunnel]);
    }
    for (uint16_t i = 0; i < n; i++) {
        if (!sas[i]) continue;
        if (const Tunnel* t = tunnel_get(sas[i]->tunnel)) prefetch_lines(t, offsetof(Tunnel, paths) + sizeof(Path));
    }
    // The keys last (16 lines each; see esp_out.cpp).
    for (uint16_t i = 0; i < n; i++)
        if (sas[i]) sas[i]->key.prefetch();
}

}  // namespace

bool classify_local(WorkerCtx& w, uint16_t port, rte_mbuf* m, bool v4, uint8_t* l3, uint32_t l3len) {
    uint8_t proto;
    uint32_t hl;
    if (v4) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
        if (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG))
            return false;  // outer fragments: to the host (no reassembly here yet)
        proto = ip->next_proto_id;
        hl = uint32_t(ip->ihl) * 4;
    } else {
        proto = reinterpret_cast<rte_ipv6_hdr*>(l3)->proto;
        hl = sizeof(rte_ipv6_hdr);
    }
    uint32_t off = uint32_t(sizeof(rte_ether_hdr)) + hl;
    if (proto == IPPROTO_ESP) {
        meta(m)->esp_off = uint16_t(off);
        in_push(w, m);
        return true;
    }
    if (proto != IPPROTO_UDP || l3len < hl + 8 || m->data_len < off + 8) return false;
    const uint8_t* u = l3 + hl;
    if ((uint16_t(u[2] << 8 | u[3])) != kNatTPort) return false;
    uint32_t ulen = uint32_t(u[4] << 8 | u[5]);
    if (ulen < 8 || ulen > l3len - hl) return false;
    uint32_t plen = ulen - 8;
    // RFC 3948 §2.2: a zero "non-ESP marker" means IKE (to the host);
    // §2.3: a single 0xFF byte is a NAT keepalive.
    if (plen == 1 && m->data_len > off + 8 && u[8] == 0xff) {
        drop_pkt(w, port, m, Drop::nat_keepalive);
        return true;
    }
    // (A reassembled packet may be chained: the marker must be in the first segment.)
    if (plen < 4 || m->data_len < off + 8 + 4 || get32(u + 8) == 0) return false;
    meta(m)->esp_off = uint16_t(off + 8);
    in_push(w, m);
    return true;
}

void in_push(WorkerCtx& w, rte_mbuf* m) {
    Batch& b = *w.esp;
    if (b.nin == kBatch) in_flush(w);
    b.in[b.nin++] = m;
}

void in_flush(WorkerCtx& w) {
    Batch& b = *w.esp;
    if (!b.nin) return;
    rte_mbuf* pkts[kBatch];
    uint16_t n = b.nin;
    std::memcpy(pkts, b.in, sizeof(rte_mbuf*) * n);
    b.nin = 0;
    uint16_t ns = 0;

    // ---- 0. with big tables, prefetch them for the whole burst
    if (g->group_prefetch.load(std::memory_order_relaxed)) prefetch_burst(pkts, n);

    // ---- 1. parse, SA, owner, path, replay check (nothing changes yet)
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        MbufMeta* md = meta(m);
        uint16_t port = md->in_port;
        uint32_t off = md->esp_off;
        if (unlikely(m->nb_segs != 1)) {
            drop_pkt(w, port, m, Drop::reassembly_too_big);
            continue;
        }
        if (unlikely(m->pkt_len < off + kEspHdr + kEspIv + 2 + kIcv)) {
            drop_pkt(w, port, m, Drop::esp_malformed);
            continue;
        }
        uint8_t* fr = rte_pktmbuf_mtod(m, uint8_t*);
        uint8_t* esp = fr + off;
        uint32_t spi = get32(esp);
        SaIn* sa = sa_in_get(spi);
        const Tunnel* t = sa ? tunnel_get(sa->tunnel) : nullptr;
        if (unlikely(!t || sa->underlay_vrf != g->ports[port].spec.vrf)) {
            drop_pkt(w, port, m, Drop::bad_spi);
            continue;
        }
        if (sa->worker != w.index) {
            md->tunnel = spi;
            sa->rt.ctr[int(SaCounter::handoff)]++;  // benign race: statistics only
            handoff(w, m, sa->worker, Handoff::EspIn);
            continue;
        }
        capture_tunnel(t->id, m, CapDir::TunnelInEsp);
        const uint8_t* l3 = fr + sizeof(rte_ether_hdr);
        uint8_t path = which_path(*t, l3);
        if (path < kMaxPaths) t->ctr->path_rx[path]++;
        else t->ctr->rx_other_path++;
        if (unlikely(sa->rt.hard)) {
            sa_drop(w, port, m, sa, SaCounter::expired, Drop::sa_expired);
            continue;
        }
        replay::Check c = sa->win.check(get32(esp + 4));
        if (c.verdict == replay::Verdict::Duplicate) {
            sa_drop(w, port, m, sa, SaCounter::duplicate, Drop::duplicate);
            continue;
        }
        if (c.verdict != replay::Verdict::Ok) {
            sa_drop(w, port, m, sa, SaCounter::replay_too_old, Drop::replay_too_old);
            continue;
        }
        InStage& s = b.in_stage[ns];
        s.m = m;
        s.sa = sa;
        s.t = t;
        s.seq = c.seq;
        s.esp = esp;
        s.esp_len = m->pkt_len - off;
        s.path = path;
        s.outer_tos = (l3[0] >> 4) == 4 ? l3[1] : uint8_t((l3[0] << 4) | (l3[1] >> 4));
        crypto::Op& op = b.in_ops[ns];
        op.ok = false;  // every field set here (a reset would stall on store forwarding)
        op.key = &sa->key;
        op.iv = esp + kEspHdr;
        if (sa->esn) {
            // AAD = SPI || seq-hi || seq-lo (RFC 4106 §5, RFC 7634 §2.1); the
            // high half is the window's inference (RFC 4303 Appendix A2).
            std::memcpy(s.aad, esp, 4);
            put32(s.aad + 4, uint32_t(c.seq >> 32));
            std::memcpy(s.aad + 8, esp + 4, 4);
            op.aad = s.aad;
            op.aad_len = crypto::kAadLenEsn;
        } else {
            op.aad = esp;
            op.aad_len = crypto::kAadLen;
        }
        op.data = esp + kEspHdr + kEspIv;
        op.len = s.esp_len - kEspHdr - kEspIv - kIcv;
        op.tag = op.data + op.len;
        ns++;
    }
    if (!ns) return;

    // ---- 2. one AEAD burst
    w.engine->decrypt(std::span<crypto::Op>(b.in_ops, ns));

    // ---- 3. window update, trailer, strip, cryptokey check
    rte_mbuf* dec[kBatch];
    uint16_t dec_vrf[kBatch];
    uint16_t nd = 0;
    uint64_t fw_now = 0;  // the firewall's clock for this burst
    for (uint16_t i = 0; i < ns; i++) {
        InStage& s = b.in_stage[i];
        rte_mbuf* m = s.m;
        SaIn* sa = s.sa;
        const Tunnel& t = *s.t;
        uint16_t port = meta(m)->in_port;
        const crypto::Op& op = b.in_ops[i];
        if (!op.ok) {
            sa_drop(w, port, m, sa, SaCounter::auth_fail, Drop::auth_fail);
            continue;
        }
        // Only now, authenticated, may the window move (RFC 4303 §3.4.3). Two
        // copies in one burst both passed check(): the second stops here.
        replay::Verdict v = sa->win.update(s.seq);
        if (v == replay::Verdict::Duplicate) {
            sa_drop(w, port, m, sa, SaCounter::duplicate, Drop::duplicate);
            continue;
        }
        if (v != replay::Verdict::Ok) {
            sa_drop(w, port, m, sa, SaCounter::replay_too_old, Drop::replay_too_old);
            continue;
        }
        uint8_t* d = op.data;
        uint32_t len = op.len;
        uint8_t nh = d[len - 1];
        uint32_t pad = d[len - 2];
        if (unlikely(pad + 2 > len)) {
            sa_drop(w, port, m, sa, SaCounter::bad_padding, Drop::bad_padding);
            continue;
        }
        // RFC 4303 §2.4: the default padding is 1, 2, 3, ...; check it.
        const uint8_t* pp = d + len - 2 - pad;
        bool pad_ok = true;
        for (uint32_t k = 0; k < pad; k++) pad_ok &= pp[k] == uint8_t(k + 1);
        if (unlikely(!pad_ok)) {
            sa_drop(w, port, m, sa, SaCounter::bad_padding, Drop::bad_padding);
            continue;
        }
        if (nh == 59) {  // RFC 4303 §2.6: dummy packet (traffic flow confidentiality)
            drop_pkt(w, port, m, Drop::esp_dummy);
            continue;
        }
        uint32_t ilen = len - 2 - pad;
        uint32_t itot = 0;
        bool v4 = nh == IPPROTO_IPIP;
        if (v4) {
            auto* ip = reinterpret_cast<rte_ipv4_hdr*>(d);
            if (ilen >= 20 && (d[0] >> 4) == 4 && (d[0] & 0xf) >= 5) itot = rte_be_to_cpu_16(ip->total_length);
            if (itot < uint32_t(d[0] & 0xf) * 4) itot = 0;
        } else if (nh == IPPROTO_IPV6) {
            if (ilen >= 40 && (d[0] >> 4) == 6)
                itot = 40 + rte_be_to_cpu_16(reinterpret_cast<rte_ipv6_hdr*>(d)->payload_len);
        }
        if (unlikely(itot == 0 || itot > ilen)) {
            sa_drop(w, port, m, sa, SaCounter::bad_next_header, Drop::bad_next_header);
            continue;
        }
        if (unlikely(!src_allowed(t, d, v4))) {
            sa_drop(w, port, m, sa, SaCounter::inner_src_not_allowed, Drop::inner_src_not_allowed);
            continue;
        }
        if (s.path < kMaxPaths) t.ctr->path_first[s.path]++;
        SaRuntime& rt = sa->rt;
        rt.ctr[int(SaCounter::packets)]++;
        rt.ctr[int(SaCounter::bytes)] += itot;
        const Lifetime& l = sa->life;
        if (unlikely(!rt.soft_sent && ((l.soft_packets && rt.ctr[int(SaCounter::packets)] >= l.soft_packets) ||
                                       (l.soft_bytes && rt.ctr[int(SaCounter::bytes)] >= l.soft_bytes)))) {
            rt.soft_sent = 1;
            raise_event(sa->spi, sa->tunnel, true, SaEventKind::Soft);
        }
        if (unlikely(!rt.hard && ((l.hard_packets && rt.ctr[int(SaCounter::packets)] >= l.hard_packets) ||
                                  (l.hard_bytes && rt.ctr[int(SaCounter::bytes)] >= l.hard_bytes)))) {
            rt.hard = 1;  // this packet still goes; the next ones do not
            raise_event(sa->spi, sa->tunnel, true, SaEventKind::Hard);
        }
        if (const acl::Policy* fp = fw_policy(t.vrf);
            unlikely(fp != nullptr) && !fw_pass(w, *fp, false, t.vrf, d, itot, fw_now)) {
            drop_pkt(w, port, m, Drop::fw_denied);
            continue;
        }
        if (unlikely(!ecn_decap(d, v4, s.outer_tos))) {
            drop_pkt(w, port, m, Drop::ecn_ce_not_ect);
            continue;
        }
        if (t.mss_clamp) mss_clamp(d, itot, v4, t.mtu);
        t.ctr->rx_packets++;
        t.ctr->rx_bytes += itot;
        // Strip: the inner packet gets a fresh Ethernet header in front.
        uint8_t* fr = rte_pktmbuf_mtod(m, uint8_t*);
        rte_pktmbuf_adj(m, uint16_t(d - fr - sizeof(rte_ether_hdr)));
        rte_pktmbuf_trim(m, uint16_t(m->pkt_len - sizeof(rte_ether_hdr) - itot));
        auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
        rte_ether_addr_copy(&g->ports[port].mac, &eth->dst_addr);
        std::memset(&eth->src_addr, 0, sizeof(eth->src_addr));
        eth->ether_type = rte_cpu_to_be_16(v4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
        capture_tunnel(t.id, m, CapDir::TunnelInPlain);
        dec[nd] = m;
        dec_vrf[nd++] = t.vrf;
    }

    // ---- 4. route the inner packets, a run of one port and VRF at a time
    for (uint16_t i = 0; i < nd;) {
        uint16_t j = i + 1;
        uint16_t port = meta(dec[i])->in_port;
        while (j < nd && dec_vrf[j] == dec_vrf[i] && meta(dec[j])->in_port == port) j++;
        process_decap(w, port, dec + i, uint16_t(j - i), dec_vrf[i]);
        i = j;
    }
}

}  // namespace nimbus::dp::esp
