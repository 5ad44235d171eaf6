// The worker lcore: poll, classify, forward or punt, transmit. Run to
// completion; no allocation, no locks (except a shared tx queue on devices
// with fewer queues than workers), no logging, no syscalls on the fast path.
// Every packet that is not transmitted is counted under a named reason.
#include <time.h>
#include <unistd.h>

#include <cstring>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/capture.h"
#include "dataplane/dp.h"
#include "dataplane/esp/sa.h"

namespace nimbus::dp {

namespace {

constexpr int kIdlePolls = 64;  // empty polls before a worker naps
constexpr int kPrefetchAhead = 4;
constexpr uint16_t kMaxBurst = 256;

inline void drop(WorkerCtx& w, uint16_t port, rte_mbuf* m, Drop why) {
    w.pc[port].drops[int(why)]++;
    rte_pktmbuf_free(m);
}

inline void tx(WorkerCtx& w, uint16_t port, rte_mbuf* m) { tx_pkt(w, port, m); }

// Which punt class an IPv4/IPv6 packet for the box belongs to, from its
// upper-layer header.
inline PuntClass classify_l4(uint8_t proto, const uint8_t* l4, uint32_t l4len) {
    switch (proto) {
        case 112: return PuntClass::Vrrp;
        case IPPROTO_TCP:
            if (l4len >= 4) {
                uint16_t sp = uint16_t(l4[0] << 8 | l4[1]), dp = uint16_t(l4[2] << 8 | l4[3]);
                if (sp == 179 || dp == 179) return PuntClass::Bgp;
            }
            return PuntClass::Other;
        case IPPROTO_UDP:
            if (l4len >= 4) {
                uint16_t sp = uint16_t(l4[0] << 8 | l4[1]), dp = uint16_t(l4[2] << 8 | l4[3]);
                if (dp == 500 || dp == 4500 || sp == 500 || sp == 4500) return PuntClass::Ike;
            }
            return PuntClass::Other;
        case IPPROTO_ICMP: return PuntClass::Icmp;
        case IPPROTO_ICMPV6:
            if (l4len >= 1 && l4[0] >= 133 && l4[0] <= 137) return PuntClass::ArpNd;  // RS RA NS NA Redirect
            return PuntClass::Icmp;
        default: return PuntClass::Other;
    }
}

inline PuntClass classify_v4(const rte_ipv4_hdr* ip, uint32_t l3len) {
    uint32_t hl = uint32_t(ip->ihl) * 4;
    if (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK)
        return ip->next_proto_id == 112 ? PuntClass::Vrrp : PuntClass::Other;
    return classify_l4(ip->next_proto_id, reinterpret_cast<const uint8_t*>(ip) + hl, l3len - hl);
}

// Walks IPv6 extension headers (bounded) to the upper-layer protocol.
inline PuntClass classify_v6(const rte_ipv6_hdr* ip, uint32_t l3len) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(ip) + sizeof(rte_ipv6_hdr);
    uint32_t left = l3len - uint32_t(sizeof(rte_ipv6_hdr));
    uint8_t nh = ip->proto;
    for (int i = 0; i < 4; i++) {
        if (nh == 0 || nh == 43 || nh == 60) {  // hop-by-hop, routing, destination options
            if (left < 8) return PuntClass::Other;
            uint32_t len = (uint32_t(p[1]) + 1) * 8;
            if (len > left) return PuntClass::Other;
            nh = p[0];
            p += len;
            left -= len;
        } else if (nh == 44) {  // fragment: only the first one has ports
            if (left < 8) return PuntClass::Other;
            if ((uint16_t(p[2] << 8 | p[3]) & 0xfff8) != 0) return PuntClass::Other;
            nh = p[0];
            p += 8;
            left -= 8;
        } else {
            break;
        }
    }
    return classify_l4(nh, p, left);
}

// Hands a packet to the control thread. On failure the packet is freed; it
// is counted as a drop unless the caller already counted it (ICMP errors:
// the packet is a drop either way, the punt only carries it to the ICMP
// generator).
inline bool punt(WorkerCtx& w, uint16_t port, rte_mbuf* m, PuntClass cls, PuntReason why,
                 bool counted = false) {
    int c = int(cls);
    Policer& pol = w.policer[c];
    uint64_t now = rte_rdtsc();
    pol.tokens += double(now - pol.last) * pol.rate_per_tsc;
    if (pol.tokens > pol.burst) pol.tokens = pol.burst;
    pol.last = now;
    if (pol.tokens < 1.0) {
        w.punt.policed[c]++;
        if (counted) rte_pktmbuf_free(m);
        else drop(w, port, m, Drop::punt_policed);
        return false;
    }
    pol.tokens -= 1.0;
    MbufMeta* md = meta(m);
    md->cls = cls;
    md->reason = why;
    rte_ring* r = c <= int(PuntClass::ArpNd) ? w.punt_hi : w.punt_lo;
    if (rte_ring_sp_enqueue(r, m) != 0) {
        w.punt.ring_full[c]++;
        if (counted) rte_pktmbuf_free(m);
        else drop(w, port, m, Drop::punt_ring_full);
        return false;
    }
    w.punt.punted[c]++;
    w.pc[port].punted++;
    w.punted = true;
    return true;
}

inline bool mac_accepted(const PortState& p, const rte_ether_addr& d) {
    if (d.addr_bytes[0] & 1) return true;  // broadcast and multicast
    if (likely(rte_is_same_ether_addr(&d, &p.mac))) return true;
    // HA virtual MACs while master (port_set_macs).
    const MacList* x = p.extra_macs.load(std::memory_order_acquire);
    if (x)
        for (uint32_t i = 0; i < x->n; i++)
            if (rte_is_same_ether_addr(&d, &x->mac[i])) return true;
    return false;
}

inline void rewrite_l2(rte_mbuf* m, const Nh* nh) {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    rte_ether_addr_copy(&nh->dst, &eth->dst_addr);
    rte_ether_addr_copy(&nh->src, &eth->src_addr);
}

// RFC 1624 incremental update for a TTL decrement (as Linux ip_decrease_ttl).
inline void ttl_dec(rte_ipv4_hdr* ip) {
    uint32_t c = ip->hdr_checksum;
    c += rte_cpu_to_be_16(0x0100);
    ip->hdr_checksum = uint16_t(c + (c >= 0xffff));
    ip->time_to_live--;
}

inline void set_aux_v4(MbufMeta* md, uint32_t be_addr) {
    md->aux = IpAddr();
    std::memcpy(md->aux.b.data(), &be_addr, 4);
    md->aux.family = Family::V4;
}

inline void set_aux(MbufMeta* md, const IpAddr& a) { md->aux = a; }

// The next hop is not resolved: hand the packet to the control thread, which
// holds it while the kernel resolves the address (the destination itself on
// a connected subnet, else the gateway) and re-injects it. A packet that
// comes back still unresolved is dropped.
inline void hold_for_neighbour(WorkerCtx& w, uint16_t in_port, rte_mbuf* m, const Nh* nh, const uint8_t* l3,
                               bool v4, int vrf) {
    MbufMeta* md = meta(m);
    if (md->reinjected) {
        drop(w, in_port, m, Drop::neigh_miss_again);
        return;
    }
    // A decrypted packet was routed in its tunnel's VRF, not in the VRF of
    // the port it arrived on: it must come back to the same table.
    md->route_vrf = int16_t(vrf);
    if (nh->type == NhType::Glean) {
        if (v4) set_aux_v4(md, reinterpret_cast<const rte_ipv4_hdr*>(l3)->dst_addr);
        else set_aux(md, IpAddr::v6_net(reinterpret_cast<const rte_ipv6_hdr*>(l3)->dst_addr));
    } else {
        set_aux(md, nh->gateway);
    }
    punt(w, in_port, m, PuntClass::Other, PuntReason::NeighMiss);
}

// A routed packet whose next hop is `nh`. `from_host`: the kernel sent it,
// so no TTL decrement and no ICMP errors for it. `esp_local`: packets for the
// box may be ESP (not for decapsulated packets: no ESP in ESP).
inline void forward(WorkerCtx& w, uint16_t in_port, rte_mbuf* m, NhId id, bool v4, bool from_host,
                    bool esp_local, int vrf) {
    Nh* nh = nh_get(id);
    MbufMeta* md = meta(m);
    uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, sizeof(rte_ether_hdr));
    uint32_t l3len = m->pkt_len - uint32_t(sizeof(rte_ether_hdr));
    if (unlikely(!nh)) {
        drop(w, in_port, m, Drop::blackhole);
        return;
    }
    if (from_host) {
        if (nh->type == NhType::Tunnel) {  // the box's own traffic to a site
            esp::out_push(w, in_port, m, nh->tunnel);
            return;
        }
        // The kernel already chose the interface and did ARP/ND: when the
        // dataplane agrees on the port, send the frame as it is.
        if (nh->type == NhType::Local || nh->type == NhType::NoRoute || nh->type == NhType::Drop ||
            ((nh->type == NhType::Glean || nh->type == NhType::Adjacency) && nh->port == in_port)) {
            tx(w, in_port, m);
            return;
        }
        if (nh->type == NhType::Glean || !nh->resolved) {
            hold_for_neighbour(w, in_port, m, nh, l3, v4, vrf);
            return;
        }
        rewrite_l2(m, nh);
        tx(w, nh->port, m);
        return;
    }

    switch (nh->type) {
        case NhType::Local: {
            if (esp_local && unlikely(esp::is_outer_fragment(l3, l3len, v4))) {
                // ESP or UDP (ESP in UDP, IKE) in fragments: put together here.
                m = esp::reassemble(w, in_port, m, v4);
                if (!m) return;
                l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, sizeof(rte_ether_hdr));
                l3len = m->pkt_len - uint32_t(sizeof(rte_ether_hdr));
            }
            if (esp_local && esp::classify_local(w, in_port, m, v4, l3, l3len)) return;
            PuntClass c = v4 ? classify_v4(reinterpret_cast<rte_ipv4_hdr*>(l3), l3len)
                             : classify_v6(reinterpret_cast<rte_ipv6_hdr*>(l3), l3len);
            punt(w, in_port, m, c, PuntReason::Host);
            return;
        }
        case NhType::NoRoute:
            w.pc[in_port].drops[int(Drop::no_route)]++;
            punt(w, in_port, m, PuntClass::Icmp, PuntReason::NoRoute, true);
            return;
        case NhType::Drop: drop(w, in_port, m, Drop::blackhole); return;
        default: break;
    }
    // Glean or Adjacency: a transit packet.
    uint8_t ttl = v4 ? reinterpret_cast<rte_ipv4_hdr*>(l3)->time_to_live
                     : reinterpret_cast<rte_ipv6_hdr*>(l3)->hop_limits;
    if (unlikely(ttl <= 1)) {
        w.pc[in_port].drops[int(Drop::ttl_exceeded)]++;
        punt(w, in_port, m, PuntClass::Icmp, PuntReason::TtlExceeded, true);
        return;
    }
    if (nh->type == NhType::Tunnel) {
        if (v4) ttl_dec(reinterpret_cast<rte_ipv4_hdr*>(l3));
        else reinterpret_cast<rte_ipv6_hdr*>(l3)->hop_limits--;
        esp::out_push(w, in_port, m, nh->tunnel);
        return;
    }
    if (nh->type == NhType::Glean || !nh->resolved) {
        hold_for_neighbour(w, in_port, m, nh, l3, v4, vrf);
        return;
    }
    if (unlikely(l3len > nh->mtu)) {
        bool df = !v4 || (rte_be_to_cpu_16(reinterpret_cast<rte_ipv4_hdr*>(l3)->fragment_offset) &
                          RTE_IPV4_HDR_DF_FLAG);
        w.pc[in_port].drops[int(Drop::mtu_exceeded)]++;
        if (df) {
            md->mtu = nh->mtu;
            punt(w, in_port, m, PuntClass::Icmp, PuntReason::TooBig, true);
        } else {
            rte_pktmbuf_free(m);  // fragmentation comes with the ESP work
        }
        return;
    }
    if (v4) ttl_dec(reinterpret_cast<rte_ipv4_hdr*>(l3));
    else reinterpret_cast<rte_ipv6_hdr*>(l3)->hop_limits--;
    rewrite_l2(m, nh);
    tx(w, nh->port, m);
}

// Validates an IPv4 header; trims Ethernet padding. Returns false if dropped.
inline bool check_v4(WorkerCtx& w, uint16_t port, rte_mbuf* m, rte_ipv4_hdr* ip) {
    uint32_t avail = m->pkt_len - uint32_t(sizeof(rte_ether_hdr));
    if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) ||
                 (ip->version_ihl >> 4) != 4 || (ip->version_ihl & 0xf) < 5)) {
        drop(w, port, m, Drop::ip4_bad_header);
        return false;
    }
    uint32_t hl = uint32_t(ip->version_ihl & 0xf) * 4;
    uint32_t tot = rte_be_to_cpu_16(ip->total_length);
    if (unlikely(tot < hl || tot > avail || m->data_len < sizeof(rte_ether_hdr) + hl)) {
        drop(w, port, m, Drop::ip4_bad_header);
        return false;
    }
    if (unlikely(rte_raw_cksum(ip, hl) != 0xffff)) {
        drop(w, port, m, Drop::ip4_bad_checksum);
        return false;
    }
    if (tot < avail) rte_pktmbuf_trim(m, uint16_t(avail - tot));
    return true;
}

inline bool check_v6(WorkerCtx& w, uint16_t port, rte_mbuf* m, rte_ipv6_hdr* ip) {
    uint32_t avail = m->pkt_len - uint32_t(sizeof(rte_ether_hdr));
    if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) ||
                 (rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6)) {
        drop(w, port, m, Drop::ip6_bad_header);
        return false;
    }
    uint32_t tot = uint32_t(sizeof(rte_ipv6_hdr)) + rte_be_to_cpu_16(ip->payload_len);
    if (unlikely(tot > avail)) {
        drop(w, port, m, Drop::ip6_bad_header);
        return false;
    }
    if (tot < avail) rte_pktmbuf_trim(m, uint16_t(avail - tot));
    return true;
}

inline bool v6_multicast(const uint8_t* a) { return a[0] == 0xff; }
inline bool v6_link_local(const uint8_t* a) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }

// One burst of packets that all belong to `port`'s VRF. Two passes: parse
// and classify, then bulk FIB lookups per family, then act.
// Decap: inner packets of ESP, already validated and stripped.
enum class Mode { Wire, Host, Reinject, Decap };

// The burst's next hops, in two passes (table slot, then the Nh), when the
// tables are big (dp.h): with a next hop per tunnel (100,000 of them) each
// is a cold line, and resolved one by one in forward() every packet would
// wait for two misses in a row.
template <typename Hop>
void prefetch_next_hops(const Hop* hops, uint16_t n) {
    if (!g->group_prefetch.load(std::memory_order_relaxed)) return;
    const uint32_t cap = g->nh_cap;
    for (uint16_t i = 0; i < n; i++)
        if (hops[i] < cap) __builtin_prefetch(&g->nh[hops[i]]);
    for (uint16_t i = 0; i < n; i++)
        if (hops[i] < cap)
            if (const Nh* nh = g->nh[hops[i]].load(std::memory_order_acquire)) __builtin_prefetch(nh);
}

template <Mode kMode>
void process_burst(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, int vrf) {
    uint32_t v4_dst[kMaxBurst];
    rte_mbuf* v4_m[kMaxBurst];
    uint8_t v6_dst[kMaxBurst][RTE_FIB6_IPV6_ADDR_SIZE];
    rte_mbuf* v6_m[kMaxBurst];
    uint16_t n4 = 0, n6 = 0;
    PortState& ps = g->ports[port];
    PortCounters& pc = w.pc[port];
    constexpr bool kFromHost = kMode == Mode::Host;
    constexpr bool kEspLocal = kMode == Mode::Wire || kMode == Mode::Reinject;

    for (uint16_t i = 0; i < n && i < kPrefetchAhead; i++) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
    for (uint16_t i = 0; i < n; i++) {
        if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
        rte_mbuf* m = pkts[i];
        if constexpr (kMode == Mode::Wire) {
            pc.rx_packets++;
            pc.rx_bytes += m->pkt_len;
        }
        if (unlikely(m->data_len < sizeof(rte_ether_hdr))) {
            drop(w, port, m, Drop::l2_too_short);
            continue;
        }
        auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
        if constexpr (kMode == Mode::Wire) {
            if (unlikely(!mac_accepted(ps, eth->dst_addr))) {
                drop(w, port, m, Drop::l2_other_host);
                continue;
            }
            MbufMeta* md = meta(m);
            md->in_port = port;
            md->origin = Origin::Wire;
            md->reinjected = 0;
        }
        uint16_t et = rte_be_to_cpu_16(eth->ether_type);
        if (et == RTE_ETHER_TYPE_IPV4) {
            auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
            if (!check_v4(w, port, m, ip)) continue;
            uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
            uint8_t d0 = uint8_t(dst >> 24);
            if (unlikely(d0 >= 224)) {  // multicast, limited broadcast, class E
                if constexpr (kFromHost) tx(w, port, m);
                else punt(w, port, m, classify_v4(ip, m->pkt_len - sizeof(*eth)), PuntReason::Host);
                continue;
            }
            if constexpr (!kFromHost) {
                uint8_t s0 = uint8_t(rte_be_to_cpu_32(ip->src_addr) >> 24);
                if (unlikely(s0 >= 224 || s0 == 127)) {
                    drop(w, port, m, Drop::ip4_martian_src);
                    continue;
                }
            }
            v4_dst[n4] = dst;
            v4_m[n4++] = m;
        } else if (et == RTE_ETHER_TYPE_IPV6) {
            auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
            if (!check_v6(w, port, m, ip)) continue;
            if (unlikely(v6_multicast(ip->dst_addr) || v6_link_local(ip->dst_addr))) {
                if constexpr (kFromHost) tx(w, port, m);
                else punt(w, port, m, classify_v6(ip, m->pkt_len - sizeof(*eth)), PuntReason::Host);
                continue;
            }
            if constexpr (!kFromHost) {
                if (unlikely(v6_link_local(ip->src_addr) || v6_multicast(ip->src_addr))) {
                    drop(w, port, m, Drop::ip6_link_local_src);
                    continue;
                }
            }
            std::memcpy(v6_dst[n6], ip->dst_addr, 16);
            v6_m[n6++] = m;
        } else if (et == RTE_ETHER_TYPE_ARP) {
            if constexpr (kFromHost) tx(w, port, m);
            else punt(w, port, m, PuntClass::ArpNd, PuntReason::Host);
        } else {
            if constexpr (kFromHost) tx(w, port, m);
            else punt(w, port, m, PuntClass::Other, PuntReason::Host);
        }
    }

    if (n4) {
        uint32_t hops[kMaxBurst];
        rte_lpm* l = vrf_v4(vrf);
        if (l) {
            rte_lpm_lookup_bulk(l, v4_dst, hops, n4);
            for (uint16_t i = 0; i < n4; i++)
                hops[i] = (hops[i] & RTE_LPM_LOOKUP_SUCCESS) ? (hops[i] & 0x00ffffff) : kNhNoRoute;
        } else {
            for (uint16_t i = 0; i < n4; i++) hops[i] = kNhNoRoute;
        }
        prefetch_next_hops(hops, n4);
        for (uint16_t i = 0; i < n4; i++) forward(w, port, v4_m[i], hops[i], true, kFromHost, kEspLocal, vrf);
    }
    if (n6) {
        uint64_t hops[kMaxBurst];
        rte_fib6* f = g->vrfs[vrf].v6_active.load(std::memory_order_acquire);
        if (f) rte_fib6_lookup_bulk(f, v6_dst, hops, n6);
        else
            for (uint16_t i = 0; i < n6; i++) hops[i] = kNhNoRoute;
        prefetch_next_hops(hops, n6);
        for (uint16_t i = 0; i < n6; i++) forward(w, port, v6_m[i], NhId(hops[i]), false, kFromHost, kEspLocal, vrf);
    }
}

}  // namespace

void process_rx(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n) {
    capture_port(port, pkts, n, CapDir::Rx);
    process_burst<Mode::Wire>(w, port, pkts, n, g->ports[port].spec.vrf);
    esp::flush(w);
}

void process_decap(WorkerCtx& w, uint16_t port, rte_mbuf** pkts, uint16_t n, int vrf) {
    process_burst<Mode::Decap>(w, port, pkts, n, vrf);
}

bool punt_pkt(WorkerCtx& w, uint16_t port, rte_mbuf* m, PuntClass cls, PuntReason why, bool counted) {
    return punt(w, port, m, cls, why, counted);
}

void process_inject(WorkerCtx& w, rte_mbuf** pkts, uint16_t n) {
    // Injected packets may come from several ports and origins: run them one
    // at a time through the same code (this is the exception path).
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        MbufMeta* md = meta(m);
        uint16_t port = md->in_port;
        if (port >= g->nports) {
            rte_pktmbuf_free(m);
            continue;
        }
        if (md->origin == Origin::Host) {
            w.pc[port].injected++;
            process_burst<Mode::Host>(w, port, &m, 1, g->ports[port].spec.vrf);
        } else {
            // A held wire packet coming back after its next hop resolved,
            // routed again in the VRF it was routed in before.
            int vrf = md->route_vrf >= 0 && md->route_vrf < kMaxVrfs ? md->route_vrf : g->ports[port].spec.vrf;
            process_burst<Mode::Reinject>(w, port, &m, 1, vrf);
        }
    }
    esp::flush(w);
}

// Sends what `port`'s tx buffer holds. The byte count is taken before the
// burst: once rte_eth_tx_burst returns, the mbufs it took belong to the
// driver (net_null frees them at once) and must not be read.
void tx_flush_port(WorkerCtx& w, uint16_t port) {
    uint16_t n = w.txn[port];
    w.txn[port] = 0;
    PortState& p = g->ports[port];
    uint16_t q = w.txq[port];
    rte_mbuf** b = w.txb[port];
    capture_port(port, b, n, CapDir::Tx);
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; i++) bytes += b[i]->pkt_len;
    if (p.tx_shared) rte_spinlock_lock(&p.txlock[q]);
    uint16_t sent = rte_eth_tx_burst(p.id, q, b, n);
    if (p.tx_shared) rte_spinlock_unlock(&p.txlock[q]);
    for (uint16_t i = sent; i < n; i++) {
        bytes -= b[i]->pkt_len;
        drop(w, port, b[i], Drop::tx_full);
    }
    w.pc[port].tx_packets += sent;
    w.pc[port].tx_bytes += bytes;
}

void flush_tx(WorkerCtx& w) {
    for (int port = 0; port < g->nports; port++)
        if (w.txn[port]) tx_flush_port(w, uint16_t(port));
}

// Wakes the control thread when it sleeps in epoll. Only on the exception
// path, at most once per loop iteration, and only when it asked (need_wakeup).
void signal_control(WorkerCtx& w) {
    w.punted = false;
    if (g->need_wakeup.exchange(false, std::memory_order_acq_rel)) {
        uint64_t one = 1;
        ssize_t r = ::write(g->efd, &one, sizeof one);
        (void)r;
    }
}

int worker_main(void* arg) {
    WorkerCtx& w = *static_cast<WorkerCtx*>(arg);
    const uint16_t burst = uint16_t(std::min<int>(g->spec.rx_burst, kMaxBurst));
    const int sleep_us = g->spec.idle_sleep_us;
    const timespec nap{0, long(sleep_us) * 1000};
    rte_mbuf* pkts[kMaxBurst];
    int idle = 0;
    rte_rcu_qsbr_thread_online(g->qsbr, unsigned(w.index));
    while (!g->stop.load(std::memory_order_relaxed)) {
        uint32_t got = 0;
        for (int i = 0; i < w.nrxq; i++) {
            const RxQueue& q = w.rxq[i];
            uint16_t n = rte_eth_rx_burst(g->ports[q.port].id, q.queue, pkts, burst);
            if (n) {
                process_rx(w, q.port, pkts, n);
                got += n;
            }
        }
        unsigned n = rte_ring_sc_dequeue_burst(w.inject, reinterpret_cast<void**>(pkts), burst, nullptr);
        if (n) {
            process_inject(w, pkts, uint16_t(n));
            got += n;
        }
        n = rte_ring_sc_dequeue_burst(w.handoff, reinterpret_cast<void**>(pkts), burst, nullptr);
        if (n) {
            process_handoff(w, pkts, uint16_t(n));
            got += n;
        }
        flush_tx(w);
        esp::frag_housekeeping(w);
        if (w.punted) signal_control(w);
        rte_rcu_qsbr_quiescent(g->qsbr, unsigned(w.index));
        w.info.loops++;
        if (got) {
            w.info.busy_loops++;
            idle = 0;
        } else if (sleep_us > 0 && ++idle >= kIdlePolls) {
            // Give the CPU back so several instances can share a small box.
            // Offline while asleep: grace periods do not wait for us.
            rte_rcu_qsbr_thread_offline(g->qsbr, unsigned(w.index));
            nanosleep(&nap, nullptr);
            rte_rcu_qsbr_thread_online(g->qsbr, unsigned(w.index));
            w.info.sleeps++;
            idle = 0;
        }
    }
    rte_rcu_qsbr_thread_offline(g->qsbr, unsigned(w.index));
    return 0;
}

}  // namespace nimbus::dp
