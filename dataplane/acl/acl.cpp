#include "dataplane/acl/acl.h"

#include <algorithm>

namespace nimbus::dp::acl {

namespace {

uint64_t be64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// Ports (or the ICMP echo identifier) of the L4 header at p, `avail` bytes.
void l4(const uint8_t* p, uint32_t avail, Key* k) {
    switch (k->proto) {
        case 6:    // TCP
        case 17:   // UDP
        case 132:  // SCTP
        case 136:  // UDP-Lite
            if (avail < 4) return;
            k->sport = be16(p);
            k->dport = be16(p + 2);
            k->ports = 1;
            return;
        case 1:     // ICMP: echo request / reply (RFC 792)
        case 58: {  // ICMPv6: echo request / reply (RFC 4443 §4)
            if (avail < 8) return;
            uint8_t t = p[0];
            bool echo = k->proto == 1 ? (t == 8 || t == 0) : (t == 128 || t == 129);
            if (echo) k->sport = k->dport = be16(p + 4);
            // Errors: unreachable, source quench, redirect, time exceeded,
            // parameter problem (RFC 792); unreachable, packet too big, time
            // exceeded, parameter problem (RFC 4443 §3).
            k->icmp_error = k->proto == 1 ? (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) : (t >= 1 && t <= 4);
            k->ports = 1;
            return;
        }
        default:
            return;
    }
}

}  // namespace

bool extract(const uint8_t* l3, uint32_t len, Key* k) {
    *k = Key{};
    if (len < 1) return false;
    if ((l3[0] >> 4) == 4) {
        if (len < 20) return false;
        uint32_t hl = uint32_t(l3[0] & 0xf) * 4;
        if (hl < 20 || hl > len) return false;
        k->src[0] = uint64_t(be32(l3 + 12)) << 32;
        k->dst[0] = uint64_t(be32(l3 + 16)) << 32;
        k->proto = l3[9];
        k->dscp = l3[1] >> 2;
        uint16_t frag = be16(l3 + 6);
        k->l4_off = uint16_t(hl);
        if (frag & 0x3fff) {  // MF or an offset: a fragment (RFC 791)
            k->frag = (frag & 0x1fff) ? 2 : 1;
            k->frag_id = be16(l3 + 4);
        }
        if ((frag & 0x1fff) == 0) l4(l3 + hl, len - hl, k);  // a later fragment has no L4 header
        return true;
    }
    if ((l3[0] >> 4) == 6) {
        if (len < 40) return false;
        k->v6 = 1;
        k->src[0] = be64(l3 + 8);
        k->src[1] = be64(l3 + 16);
        k->dst[0] = be64(l3 + 24);
        k->dst[1] = be64(l3 + 32);
        k->dscp = uint8_t(((l3[0] & 0xf) << 4 | l3[1] >> 4) >> 2);
        uint8_t nh = l3[6];
        uint32_t off = 40;
        // Hop-by-hop, routing, destination options (RFC 8200 §4) and the
        // fragment header; at most a few, as a router would.
        for (int n = 0; n < 4; n++) {
            if (nh == 0 || nh == 43 || nh == 60) {
                if (off + 8 > len) return false;
                uint8_t next = l3[off];
                off += (uint32_t(l3[off + 1]) + 1) * 8;
                nh = next;
            } else if (nh == 44) {  // RFC 8200 §4.5
                if (off + 8 > len) return false;
                uint8_t next = l3[off];
                bool later = (be16(l3 + off + 2) & 0xfff8) != 0;
                k->frag = later ? 2 : 1;
                k->frag_id = be32(l3 + off + 4);
                off += 8;
                nh = next;
                if (later) {
                    k->proto = nh;
                    return true;
                }
            } else {
                break;
            }
        }
        k->proto = nh;
        k->l4_off = uint16_t(off);
        if (off <= len) l4(l3 + off, len - off, k);
        return true;
    }
    return false;
}

bool extract_quoted(const uint8_t* l3, uint32_t len, const Key& k, Key* quoted) {
    if (!k.icmp_error) return false;
    uint32_t off = uint32_t(k.l4_off) + 8;  // the ICMP header
    if (off >= len) return false;
    const uint8_t* q = l3 + off;
    if (((q[0] >> 4) == 4) == bool(k.v6)) return false;  // the same family as the error
    if (!extract(q, len - off, quoted)) return false;
    return !quoted->icmp_error;  // never an error about an error (RFC 1122 §3.2.2)
}

PrefixMatch make_prefix(const uint8_t* addr, bool v6, int len) {
    PrefixMatch p;
    p.v6 = v6;
    uint64_t a[2] = {v6 ? be64(addr) : uint64_t(be32(addr)) << 32, v6 ? be64(addr + 8) : 0};
    for (int h = 0; h < 2; h++) {
        int bits = len - 64 * h;
        p.mask[h] = bits <= 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits);
        p.addr[h] = a[h] & p.mask[h];
    }
    return p;
}

FlowTable::FlowTable(uint32_t capacity) {
    uint64_t sets = 1;
    while (sets * kWays < capacity) sets <<= 1;
    mask_ = sets - 1;
    e_.assign(size_t(sets * kWays), Entry{});
    // Fragmented packets in flight are far fewer than flows.
    uint64_t fsets = std::max<uint64_t>(sets / 16, 1);
    fmask_ = fsets - 1;
    f_.assign(size_t(fsets * kWays), FragEntry{});
}

uint64_t FlowTable::live(uint64_t now) const {
    uint64_t n = 0;
    for (auto& e : e_) n += e.expires > now;
    return n;
}

}  // namespace nimbus::dp::acl
