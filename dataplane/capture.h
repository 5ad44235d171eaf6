// Fast-path packet capture (`nimbus debug capture`): tcpdump on a host
// interface only sees punted traffic, so the workers copy what a capture asks
// for — a port's rx and tx, or a tunnel's packets before encryption and after
// — into a small pool and a ring the control thread writes to a pcap file.
// Off, the cost is one relaxed load per burst. On, copies that find the pool
// or ring full are counted, never waited for.
#pragma once

#include "dataplane/dp.h"

namespace nimbus::dp {

enum class CapDir : uint8_t { Rx, Tx, TunnelOutPlain, TunnelOutEsp, TunnelInEsp, TunnelInPlain };

// In the private area of a capture copy (copies are never forwarded).
struct CapMeta {
    uint64_t tsc;
    uint32_t orig_len;
    CapDir dir;
};
static_assert(sizeof(CapMeta) <= kMbufPrivSize);

void capture_copy(rte_mbuf* m, CapDir d);

// Hooks for the workers.
inline bool capture_on() { return g->cap_on.load(std::memory_order_relaxed); }

inline void capture_port(uint16_t port, rte_mbuf** pkts, uint16_t n, CapDir d) {
    if (likely(!capture_on()) || g->cap_port != port) return;
    for (uint16_t i = 0; i < n; i++) capture_copy(pkts[i], d);
}

inline void capture_tunnel(uint32_t tunnel_id, rte_mbuf* m, CapDir d) {
    if (likely(!capture_on()) || g->cap_tunnel != tunnel_id) return;
    capture_copy(m, d);
}

}  // namespace nimbus::dp
