// Inner-packet helpers shared by both ESP directions.
#include <cstring>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "dataplane/esp/sa.h"

namespace nimbus::dp::esp {

// TCP MSS clamping on SYNs crossing a tunnel, so that neither end sends
// segments the tunnel would have to fragment (RFC 879, RFC 6691: MSS = MTU
// minus the IP and TCP headers without options). The TCP checksum is updated
// incrementally (RFC 1624).
void mss_clamp(uint8_t* l3, uint32_t l3len, bool v4, uint16_t mtu) {
    uint32_t hl;
    uint8_t proto;
    if (v4) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
        if (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) return;
        hl = uint32_t(ip->ihl) * 4;
        proto = ip->next_proto_id;
    } else {
        hl = 40;
        proto = l3[6];
    }
    if (proto != IPPROTO_TCP || l3len < hl + 20) return;
    uint8_t* tcp = l3 + hl;
    if (!(tcp[13] & 0x02)) return;  // SYN (and SYN-ACK)
    uint32_t thl = uint32_t(tcp[12] >> 4) * 4;
    if (thl < 20 || l3len < hl + thl) return;
    uint16_t want = uint16_t(mtu - (v4 ? 40 : 60));
    for (uint32_t o = 20; o + 1 < thl;) {
        uint8_t kind = tcp[o];
        if (kind == 0) break;
        if (kind == 1) {
            o++;
            continue;
        }
        uint8_t len = tcp[o + 1];
        if (len < 2 || o + len > thl) break;
        if (kind == 2 && len == 4) {
            uint16_t mss = uint16_t(tcp[o + 2] << 8 | tcp[o + 3]);
            if (mss <= want) return;
            // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
            uint16_t hc;
            std::memcpy(&hc, tcp + 16, 2);
            uint32_t sum = uint16_t(~rte_be_to_cpu_16(hc)) + uint16_t(~mss) + want;
            sum = (sum & 0xffff) + (sum >> 16);
            sum = (sum & 0xffff) + (sum >> 16);
            uint16_t nc = rte_cpu_to_be_16(uint16_t(~sum));
            std::memcpy(tcp + 16, &nc, 2);
            tcp[o + 2] = uint8_t(want >> 8);
            tcp[o + 3] = uint8_t(want);
            return;
        }
        o += len;
    }
}

}  // namespace nimbus::dp::esp
