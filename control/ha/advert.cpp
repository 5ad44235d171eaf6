#include "control/ha/advert.h"

#include <algorithm>

#include "src/common/bytes.h"

namespace nimbus::ha {

namespace {

constexpr size_t kIpv4HeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr uint8_t kIcmpv6 = 58;
constexpr uint8_t kIcmpv6NeighborAdvert = 136;   // RFC 4861 §4.4
constexpr uint8_t kNdOptTargetLinkAddr = 2;      // RFC 4861 §4.6.1

size_t addr_len(Family f) { return f == Family::V4 ? 4 : 16; }

// One's complement sum, 16 bits at a time, network order (RFC 1071).
struct CsumAcc {
    uint32_t sum = 0;
    bool odd = false;   // an odd byte is pending in the low half of the next word
    uint8_t pending = 0;
    void add(std::span<const uint8_t> d) {
        for (uint8_t b : d) {
            if (odd) {
                sum += uint32_t(pending) << 8 | b;
                odd = false;
            } else {
                pending = b;
                odd = true;
            }
        }
    }
    void add16(uint16_t v) {
        uint8_t b[2] = {uint8_t(v >> 8), uint8_t(v)};
        add(b);
    }
    uint16_t fold() const {
        uint32_t s = sum + (odd ? uint32_t(pending) << 8 : 0);
        while (s >> 16) s = (s & 0xffff) + (s >> 16);
        return uint16_t(~s);
    }
};

void add_pseudo(CsumAcc& c, const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t len) {
    size_t n = addr_len(src.family);
    c.add({src.b.data(), n});
    c.add({dst.b.data(), n});
    if (src.is_v4()) {
        // RFC 768 style: zero, protocol, 16-bit length.
        c.add16(proto);
        c.add16(uint16_t(len));
    } else {
        // RFC 8200 §8.1: 32-bit upper-layer length, three zero bytes, next header.
        c.add16(uint16_t(len >> 16));
        c.add16(uint16_t(len));
        c.add16(0);
        c.add16(proto);
    }
}

void put_mac(ByteWriter& w, const MacAddr& m) { w.bytes(m.b.data(), 6); }
void put_addr(ByteWriter& w, const IpAddr& a) { w.bytes(a.b.data(), addr_len(a.family)); }

void ether_header(ByteWriter& w, const MacAddr& dst, const MacAddr& src, uint16_t type) {
    put_mac(w, dst);
    put_mac(w, src);
    w.u16(type);
}

// IPv4 header (no options) with its header checksum.
void ipv4_header(ByteWriter& w, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                 size_t payload_len, uint16_t id, uint8_t tos) {
    size_t at = w.mark();
    w.u8(0x45);
    w.u8(tos);
    w.u16(uint16_t(kIpv4HeaderLen + payload_len));
    w.u16(id);
    w.u16(0);   // flags/fragment offset: none (keepalived sends DF clear too)
    w.u8(kVrrpTtl);
    w.u8(proto);
    w.u16(0);   // checksum, patched below
    put_addr(w, src);
    put_addr(w, dst);
    w.put_u16_at(at + 10, inet_checksum({w.data().data() + at, kIpv4HeaderLen}));
}

void ipv6_header(ByteWriter& w, const IpAddr& src, const IpAddr& dst, uint8_t next,
                 size_t payload_len, uint8_t tclass) {
    w.u32(uint32_t(6) << 28 | uint32_t(tclass) << 20);   // version, traffic class, flow label 0
    w.u16(uint16_t(payload_len));
    w.u8(next);
    w.u8(kVrrpTtl);   // hop limit 255: VRRP (§5.1.2.3) and ND (RFC 4861 §7.1.2) both need it
    put_addr(w, src);
    put_addr(w, dst);
}

}  // namespace

IpAddr vrrp_group(Family f) {
    if (f == Family::V4) return IpAddr::v4(0xe0000012);   // 224.0.0.18
    IpAddr a;
    a.family = Family::V6;
    a.b[0] = 0xff;
    a.b[1] = 0x02;
    a.b[15] = 0x12;   // ff02::12
    return a;
}

MacAddr virtual_mac(uint8_t vrid, Family f) {
    return MacAddr{{0x00, 0x00, 0x5e, 0x00, uint8_t(f == Family::V4 ? 0x01 : 0x02), vrid}};
}

MacAddr multicast_mac(const IpAddr& g) {
    if (g.is_v4()) return MacAddr{{0x01, 0x00, 0x5e, uint8_t(g.b[1] & 0x7f), g.b[2], g.b[3]}};
    return MacAddr{{0x33, 0x33, g.b[12], g.b[13], g.b[14], g.b[15]}};
}

uint16_t inet_checksum(std::span<const uint8_t> data) {
    CsumAcc c;
    c.add(data);
    return c.fold();
}

uint16_t pseudo_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                         std::span<const uint8_t> data) {
    CsumAcc c;
    add_pseudo(c, src, dst, proto, data.size());
    c.add(data);
    return c.fold();
}

std::vector<uint8_t> encode_advert(const Advert& a, const IpAddr& src, const IpAddr& dst,
                                   V4Checksum v4) {
    Family f = src.family;
    if (a.addrs.size() > 255 || a.max_adver_int_cs > kMaxAdverIntCs || dst.family != f) return {};
    for (const auto& ip : a.addrs)
        if (ip.family != f) return {};
    ByteWriter w;
    w.u8(kVrrpVersion << 4 | kVrrpTypeAdvert);
    w.u8(a.vrid);
    w.u8(a.priority);
    w.u8(uint8_t(a.addrs.size()));
    w.u16(a.max_adver_int_cs & kMaxAdverIntCs);   // 4 reserved bits zero (§5.2.6)
    w.u16(0);
    for (const auto& ip : a.addrs) put_addr(w, ip);
    auto& d = w.data();
    uint16_t ck = (f == Family::V4 && v4 == V4Checksum::MessageOnly)
                      ? inet_checksum(d)
                      : pseudo_checksum(src, dst, kIpProtoVrrp, d);
    w.put_u16_at(6, ck);
    return w.take();
}

std::optional<Advert> decode_advert(std::span<const uint8_t> msg, Family f) {
    ByteReader r(msg);
    Advert a;
    r.u8();   // version/type: not judged here
    a.vrid = r.u8();
    a.priority = r.u8();
    uint8_t count = r.u8();
    a.max_adver_int_cs = r.u16() & kMaxAdverIntCs;
    r.u16();
    size_t n = addr_len(f);
    for (int i = 0; i < count && r.ok(); i++) {
        auto s = r.span(n);
        if (!r.ok()) break;
        a.addrs.push_back(f == Family::V4 ? IpAddr::v4_net(s.data()) : IpAddr::v6_net(s.data()));
    }
    if (!r.ok()) return std::nullopt;
    return a;
}

std::vector<uint8_t> build_advert_packet(const Advert& a, const IpAddr& src, const IpOptions& o) {
    IpAddr dst = vrrp_group(src.family);
    auto msg = encode_advert(a, src, dst, o.v4_checksum);
    if (msg.empty()) return {};
    ByteWriter w;
    if (src.is_v4())
        ipv4_header(w, src, dst, kIpProtoVrrp, msg.size(), o.ipv4_id, o.tos);
    else
        ipv6_header(w, src, dst, kIpProtoVrrp, msg.size(), o.tos);
    w.bytes(msg);
    return w.take();
}

std::vector<uint8_t> build_advert_frame(const Advert& a, const IpAddr& src, const MacAddr& src_mac,
                                        const IpOptions& o) {
    auto pkt = build_advert_packet(a, src, o);
    if (pkt.empty()) return {};
    ByteWriter w;
    ether_header(w, multicast_mac(vrrp_group(src.family)), src_mac,
                 src.is_v4() ? kEtherTypeIpv4 : kEtherTypeIpv6);
    w.bytes(pkt);
    return w.take();
}

std::vector<uint8_t> build_garp(const IpAddr& vip, const MacAddr& mac) {
    if (!vip.is_v4()) return {};
    const MacAddr bcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    ByteWriter w;
    ether_header(w, bcast, mac, kEtherTypeArp);
    w.u16(1);               // hardware type Ethernet
    w.u16(kEtherTypeIpv4);  // protocol type IPv4
    w.u8(6);
    w.u8(4);
    w.u16(1);               // request (keepalived; RFC 5227 §3 announcement)
    put_mac(w, mac);        // sender hardware address = virtual MAC (§6.4.2 (380))
    put_addr(w, vip);       // sender protocol address = VIP
    put_mac(w, bcast);      // target hardware address, as keepalived sends it
    put_addr(w, vip);       // target protocol address = VIP
    return w.take();
}

std::vector<uint8_t> build_unsolicited_na(const IpAddr& vip, const IpAddr& src, const MacAddr& mac,
                                          bool router) {
    if (!vip.is_v6() || !src.is_v6()) return {};
    IpAddr all_nodes;
    all_nodes.family = Family::V6;
    all_nodes.b[0] = 0xff;
    all_nodes.b[1] = 0x02;
    all_nodes.b[15] = 0x01;   // ff02::1
    // ICMPv6 NA (RFC 4861 §4.4) with a Target Link-Layer Address option (§4.6.1).
    ByteWriter icmp;
    icmp.u8(kIcmpv6NeighborAdvert);
    icmp.u8(0);
    icmp.u16(0);   // checksum, patched below
    uint32_t flags = 0x20000000u;      // O: override (§6.4.2 (395))
    if (router) flags |= 0x80000000u;  // R: we are a router; S stays clear (unsolicited)
    icmp.u32(flags);
    put_addr(icmp, vip);
    icmp.u8(kNdOptTargetLinkAddr);
    icmp.u8(1);   // length in units of 8 bytes
    put_mac(icmp, mac);
    icmp.put_u16_at(2, pseudo_checksum(src, all_nodes, kIcmpv6, icmp.data()));

    ByteWriter w;
    ether_header(w, multicast_mac(all_nodes), mac, kEtherTypeIpv6);
    ipv6_header(w, src, all_nodes, kIcmpv6, icmp.size(), 0);
    w.bytes(icmp.data());
    return w.take();
}

// ---- receive side ----

namespace {

struct ReasonInfo {
    const char* name;
    const char* help;
};

// One table for `show`, metrics and tests (STYLE: every drop has a name).
constexpr ReasonInfo kReasons[kRxReasonCount] = {
    {"rx_ok", "advertisements that passed every check"},
    {"rx_too_short", "shorter than an IP header, the VRRP header or the counted addresses"},
    {"rx_ip_header_error", "bad IP version, header length or total length, or a fragment"},
    {"rx_family_mismatch", "IPv4 advertisement for an IPv6 instance or the reverse"},
    {"rx_not_vrrp", "IP protocol is not 112"},
    {"rx_ttl_error", "TTL or hop limit not 255 (RFC 5798 §5.1.1.3, §5.1.2.3)"},
    {"rx_version_error", "VRRP version not 3"},
    {"rx_type_error", "VRRP type not ADVERTISEMENT"},
    {"rx_length_error", "bytes after the counted addresses"},
    {"rx_checksum_error", "VRRP checksum wrong (RFC 5798 §5.2.8)"},
    {"rx_vrid_mismatch", "VRID not configured on this instance"},
    {"rx_addr_count_zero", "advertisement lists no address (RFC 9568 §5.2.5)"},
    {"rx_interval_zero", "Max Advert Int is zero (RFC 9568 §7.1)"},
    {"rx_addr_count_mismatch", "address count differs from ours, sender not the owner"},
    {"rx_addr_list_mismatch", "addresses differ from ours, sender not the owner"},
};

RxResult fail(RxResult r, RxReason why) {
    r.reason = why;
    return r;
}

// Locates the VRRP message inside an IP packet. Sets reason on failure.
struct Located {
    RxReason reason = RxReason::Ok;
    Family family = Family::V4;
    IpAddr src, dst;
    uint8_t ttl = 0;
    uint8_t proto = 0;
    std::span<const uint8_t> payload;
};

Located locate(std::span<const uint8_t> p) {
    Located l;
    if (p.empty()) {
        l.reason = RxReason::TooShort;
        return l;
    }
    int ver = p[0] >> 4;
    if (ver == 4) {
        l.family = Family::V4;
        if (p.size() < kIpv4HeaderLen) {
            l.reason = RxReason::TooShort;
            return l;
        }
        size_t ihl = size_t(p[0] & 0x0f) * 4;
        size_t total = size_t(p[2]) << 8 | p[3];
        uint16_t frag = uint16_t(p[6] << 8 | p[7]);
        if (ihl < kIpv4HeaderLen || total < ihl || (frag & 0x3fff) != 0) {
            l.reason = RxReason::IpHeaderError;   // bad IHL/length, or MF / offset set
            return l;
        }
        if (total > p.size()) {
            l.reason = RxReason::TooShort;        // truncated capture
            return l;
        }
        l.ttl = p[8];
        l.proto = p[9];
        l.src = IpAddr::v4_net(p.data() + 12);
        l.dst = IpAddr::v4_net(p.data() + 16);
        l.payload = p.subspan(ihl, total - ihl);   // drops any Ethernet padding
        return l;
    }
    if (ver == 6) {
        l.family = Family::V6;
        if (p.size() < kIpv6HeaderLen) {
            l.reason = RxReason::TooShort;
            return l;
        }
        size_t plen = size_t(p[4]) << 8 | p[5];
        if (kIpv6HeaderLen + plen > p.size()) {
            l.reason = RxReason::TooShort;
            return l;
        }
        l.ttl = p[7];
        l.src = IpAddr::v6_net(p.data() + 8);
        l.dst = IpAddr::v6_net(p.data() + 24);
        // Skip hop-by-hop and destination options headers (RFC 8200 §4.3, §4.6);
        // anything else (routing, fragment, ...) is not how VRRP travels.
        uint8_t next = p[6];
        ByteReader r(p.data() + kIpv6HeaderLen, plen);
        for (int guard = 0; guard < 8 && (next == 0 || next == 60); guard++) {
            uint8_t nh = r.u8();
            size_t len = (size_t(r.u8()) + 1) * 8;
            if (!r.skip(len - 2)) {
                l.reason = RxReason::TooShort;
                return l;
            }
            next = nh;
        }
        if (next == 0 || next == 60 || next == 44 || next == 43) {
            l.reason = RxReason::IpHeaderError;
            return l;
        }
        l.proto = next;
        l.payload = r.rest();
        return l;
    }
    l.reason = RxReason::IpHeaderError;
    return l;
}

}  // namespace

const char* rx_reason_name(RxReason r) {
    size_t i = size_t(r);
    return i < kRxReasonCount ? kReasons[i].name : "rx_unknown";
}

const char* rx_reason_help(RxReason r) {
    size_t i = size_t(r);
    return i < kRxReasonCount ? kReasons[i].help : "";
}

std::optional<uint8_t> peek_vrid(std::span<const uint8_t> ip_packet) {
    auto l = locate(ip_packet);
    if (l.reason != RxReason::Ok || l.proto != kIpProtoVrrp || l.payload.size() < 2) return std::nullopt;
    return l.payload[1];
}

RxResult validate_advert(std::span<const uint8_t> ip_packet, const RxExpect& e) {
    RxResult r;
    auto l = locate(ip_packet);
    r.src = l.src;
    r.dst = l.dst;
    r.ttl = l.ttl;
    if (l.reason != RxReason::Ok) return fail(r, l.reason);
    if (l.family != e.family) return fail(r, RxReason::FamilyMismatch);
    if (l.proto != kIpProtoVrrp) return fail(r, RxReason::NotVrrp);
    // §7.1, in the RFC's order.
    if (l.ttl != kVrrpTtl) return fail(r, RxReason::TtlError);
    auto msg = l.payload;
    if (msg.size() < kVrrpHeaderLen) return fail(r, RxReason::TooShort);
    if ((msg[0] >> 4) != kVrrpVersion) return fail(r, RxReason::VersionError);
    if ((msg[0] & 0x0f) != kVrrpTypeAdvert) return fail(r, RxReason::TypeError);
    size_t count = msg[3];
    size_t want = kVrrpHeaderLen + count * addr_len(l.family);
    if (msg.size() < want) return fail(r, RxReason::TooShort);     // "the complete VRRP packet"
    if (msg.size() > want) return fail(r, RxReason::LengthError);
    if (l.family == Family::V6) {
        if (pseudo_checksum(l.src, l.dst, kIpProtoVrrp, msg) != 0) return fail(r, RxReason::ChecksumError);
    } else {
        bool pseudo = e.v4_checksum != V4ChecksumRx::MessageOnly &&
                      pseudo_checksum(l.src, l.dst, kIpProtoVrrp, msg) == 0;
        bool bare = !pseudo && e.v4_checksum != V4ChecksumRx::PseudoHeader && inet_checksum(msg) == 0;
        if (!pseudo && !bare) return fail(r, RxReason::ChecksumError);
        r.v4_message_only_checksum = bare;
    }
    auto a = decode_advert(msg, l.family);
    if (!a) return fail(r, RxReason::TooShort);   // unreachable: length checked above
    r.advert = std::move(*a);
    if (r.advert.vrid != e.vrid) return fail(r, RxReason::VridMismatch);
    if (count == 0) return fail(r, RxReason::AddrCountZero);
    if (r.advert.max_adver_int_cs == 0) return fail(r, RxReason::IntervalZero);
    // RFC 5798 §7.1: MAY check the addresses; if they differ and the sender is
    // not the owner (priority 255), MUST drop; an owner's advert is processed.
    if (!e.vips.empty()) {
        bool owner = r.advert.priority == kPriorityOwner;
        if (count != e.vips.size()) {
            if (!owner) return fail(r, RxReason::AddrCountMismatch);
            r.owner_addr_mismatch = true;
        } else {
            // Order-insensitive: the RFC does not fix an order (keepalived
            // checks membership too).
            bool same = std::all_of(r.advert.addrs.begin(), r.advert.addrs.end(), [&](const IpAddr& x) {
                return std::find(e.vips.begin(), e.vips.end(), x) != e.vips.end();
            });
            if (!same) {
                if (!owner) return fail(r, RxReason::AddrListMismatch);
                r.owner_addr_mismatch = true;
            }
        }
    }
    // RFC 9568 §7.1: SHOULD verify the interval matches ours, but only log:
    // the Backup adopts the Active Router's interval (§6.4.2).
    r.interval_mismatch = r.advert.max_adver_int_cs != e.adver_int_cs;
    r.reason = RxReason::Ok;
    return r;
}

}  // namespace nimbus::ha
