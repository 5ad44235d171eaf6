#include "control/routing/fpm.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "src/common/bytes.h"

namespace nimbus::routing::fpm {

static_assert(nl::RTM_NEWROUTE == RTM_NEWROUTE && nl::RTM_DELROUTE == RTM_DELROUTE);
static_assert(nl::RTM_NEWNEXTHOP == RTM_NEWNEXTHOP && nl::RTM_DELNEXTHOP == RTM_DELNEXTHOP);
static_assert(nl::RTA_DST == RTA_DST && nl::RTA_SRC == RTA_SRC && nl::RTA_OIF == RTA_OIF);
static_assert(nl::RTA_GATEWAY == RTA_GATEWAY && nl::RTA_PRIORITY == RTA_PRIORITY);
static_assert(nl::RTA_PREFSRC == RTA_PREFSRC && nl::RTA_MULTIPATH == RTA_MULTIPATH);
static_assert(nl::RTA_TABLE == RTA_TABLE && nl::RTA_VIA == RTA_VIA && nl::RTA_NH_ID == RTA_NH_ID);
static_assert(nl::RTN_BLACKHOLE == RTN_BLACKHOLE && nl::RTN_PROHIBIT == RTN_PROHIBIT);
static_assert(nl::kAfInet == AF_INET && nl::kAfInet6 == AF_INET6 && nl::kAfMpls == AF_MPLS);
static_assert(nl::kNlmsgHdrLen == sizeof(struct nlmsghdr) && nl::kRtmsgLen == sizeof(struct rtmsg));
static_assert(nl::kTableMain == RT_TABLE_MAIN);

namespace {

constexpr size_t align4(size_t n) { return (n + 3) & ~size_t(3); }

struct Attr {
    uint16_t type;
    std::span<const uint8_t> data;
};

// Walks rtattrs (u16 length including the 4-byte header, u16 type, value
// padded to 4): calls fn(Attr) for each; false when a length does not fit.
template <class F>
bool walk_attrs(std::span<const uint8_t> s, F&& fn) {
    size_t off = 0;
    while (s.size() - off >= 4) {
        ByteReader r(s.data() + off, 4);
        uint16_t len = r.u16_host();
        uint16_t type = r.u16_host() & NLA_TYPE_MASK;
        if (len < 4 || len > s.size() - off) return false;
        if (!fn(Attr{type, s.subspan(off + 4, len - 4)})) return false;
        off += std::min(align4(len), s.size() - off);
    }
    return off == s.size();  // trailing bytes too short for a header
}

bool read_addr(std::span<const uint8_t> d, uint8_t family, IpAddr* out) {
    if (family == nl::kAfInet && d.size() == 4) *out = IpAddr::v4_net(d.data());
    else if (family == nl::kAfInet6 && d.size() == 16) *out = IpAddr::v6_net(d.data());
    else return false;
    return true;
}

bool read_u32(std::span<const uint8_t> d, uint32_t* out) {
    if (d.size() != 4) return false;
    ByteReader r(d);
    *out = r.u32_host();
    return true;
}

// RTA_VIA: struct rtvia { sa_family_t (u16 host order); u8 addr[] }.
bool read_via(std::span<const uint8_t> d, IpAddr* out) {
    if (d.size() < 2) return false;
    ByteReader r(d);
    uint16_t fam = r.u16_host();
    return fam <= 0xff && read_addr(d.subspan(2), uint8_t(fam), out);
}

// Next-hop attributes (inside RTA_MULTIPATH or at the top level).
bool nexthop_attr(const Attr& a, uint8_t family, Nexthop* nh) {
    IpAddr g;
    switch (a.type) {
        case nl::RTA_GATEWAY:
            if (!read_addr(a.data, family, &g)) return false;
            nh->gateway = g;
            return true;
        case nl::RTA_VIA:
            if (!read_via(a.data, &g)) return false;
            nh->gateway = g;
            return true;
        case nl::RTA_OIF: return read_u32(a.data, &nh->ifindex);
        default: return true;
    }
}

// RTA_MULTIPATH: a run of struct rtnexthop { u16 len; u8 flags; u8 hops;
// i32 ifindex } each followed by its own rtattrs, each aligned to 4.
bool read_multipath(std::span<const uint8_t> s, uint8_t family, std::vector<Nexthop>* out) {
    size_t off = 0;
    while (off < s.size()) {
        if (s.size() - off < 8) return false;
        ByteReader r(s.data() + off, 8);
        uint16_t len = r.u16_host();
        Nexthop nh;
        nh.flags = r.u8();
        nh.weight = uint16_t(r.u8() + 1);
        nh.ifindex = r.u32_host();
        if (len < 8 || len > s.size() - off) return false;
        bool ok = walk_attrs(s.subspan(off + 8, len - 8),
                             [&](const Attr& a) { return nexthop_attr(a, family, &nh); });
        if (!ok) return false;
        out->push_back(nh);
        off += std::min(align4(len), s.size() - off);
    }
    return !out->empty();
}

}  // namespace

const char* msg_error_name(MsgError e) {
    switch (e) {
        case MsgError::None: return "none";
        case MsgError::ShortHeader: return "short nlmsghdr";
        case MsgError::BadNlmsgLen: return "bad nlmsg_len";
        case MsgError::ShortRtmsg: return "short rtmsg";
        case MsgError::BadFamily: return "bad family";
        case MsgError::BadPrefixLen: return "bad prefix length";
        case MsgError::BadRtattr: return "bad rtattr length";
        case MsgError::BadAttrSize: return "bad attribute size";
        case MsgError::BadMultipath: return "bad RTA_MULTIPATH";
        case MsgError::MissingDst: return "no RTA_DST for a non-default prefix";
    }
    return "?";
}

std::string RouteEvent::str() const {
    std::string s = fmt::format("{} table {} {} proto {} type {} prio {}",
                                op == Op::Add ? "add" : "del", table, prefix.str(), protocol,
                                type, priority);
    for (const auto& nh : nexthops) {
        s += " nh[";
        if (nh.gateway) s += "via " + nh.gateway->str() + " ";
        s += fmt::format("oif {} w {}]", nh.ifindex, nh.weight);
    }
    if (nh_id) s += fmt::format(" nh_id {}", nh_id);
    return s;
}

// struct rtmsg and the route attributes: RFC 3549 §3.1.1 (network route
// service module), as extended by linux/rtnetlink.h.
std::optional<RouteEvent> decode_route_msg(std::span<const uint8_t> msg, MsgError* err) {
    *err = MsgError::None;
    auto fail = [&](MsgError e) -> std::optional<RouteEvent> {
        *err = e;
        return std::nullopt;
    };
    if (msg.size() < nl::kNlmsgHdrLen) return fail(MsgError::ShortHeader);
    ByteReader h(msg.data(), nl::kNlmsgHdrLen);
    uint32_t nlmsg_len = h.u32_host();
    uint16_t nlmsg_type = h.u16_host();
    uint16_t nlmsg_flags = h.u16_host();
    if (nlmsg_len < nl::kNlmsgHdrLen || nlmsg_len > msg.size()) return fail(MsgError::BadNlmsgLen);
    if (nlmsg_type != nl::RTM_NEWROUTE && nlmsg_type != nl::RTM_DELROUTE) return std::nullopt;

    auto body = msg.subspan(nl::kNlmsgHdrLen, nlmsg_len - nl::kNlmsgHdrLen);
    if (body.size() < nl::kRtmsgLen) return fail(MsgError::ShortRtmsg);
    ByteReader r(body.data(), nl::kRtmsgLen);
    uint8_t family = r.u8(), dst_len = r.u8(), src_len = r.u8();
    r.u8();  // tos
    uint8_t table = r.u8(), protocol = r.u8();
    r.u8();  // scope
    uint8_t type = r.u8();
    if (family == nl::kAfMpls) return std::nullopt;  // LSPs: not routes for the FIB
    if (family != nl::kAfInet && family != nl::kAfInet6) return fail(MsgError::BadFamily);
    int bits = family == nl::kAfInet ? 32 : 128;
    if (dst_len > bits || src_len > bits) return fail(MsgError::BadPrefixLen);

    RouteEvent ev;
    ev.op = nlmsg_type == nl::RTM_NEWROUTE ? Op::Add : Op::Del;
    ev.nlmsg_flags = nlmsg_flags;
    ev.table = table;
    ev.protocol = protocol;
    ev.type = type;
    ev.src_len = src_len;
    std::optional<IpAddr> dst;
    Nexthop single;
    bool have_single = false, have_multi = false;
    MsgError attr_err = MsgError::None;
    bool ok = walk_attrs(body.subspan(nl::kRtmsgLen), [&](const Attr& a) {
        IpAddr addr;
        switch (a.type) {
            case nl::RTA_DST:
                if (!read_addr(a.data, family, &addr)) break;
                dst = addr;
                return true;
            case nl::RTA_SRC:
            case nl::RTA_PREFSRC:
                if (!read_addr(a.data, family, &addr)) break;
                if (a.type == nl::RTA_PREFSRC) ev.prefsrc = addr;
                return true;
            case nl::RTA_GATEWAY:
            case nl::RTA_VIA:
            case nl::RTA_OIF:
                have_single = true;
                if (!nexthop_attr(a, family, &single)) break;
                return true;
            case nl::RTA_PRIORITY:
                if (!read_u32(a.data, &ev.priority)) break;
                return true;
            case nl::RTA_TABLE:
                if (!read_u32(a.data, &ev.table)) break;
                return true;
            case nl::RTA_NH_ID:
                if (!read_u32(a.data, &ev.nh_id)) break;
                return true;
            case nl::RTA_MULTIPATH:
                have_multi = true;
                if (!read_multipath(a.data, family, &ev.nexthops)) {
                    attr_err = MsgError::BadMultipath;
                    return false;
                }
                return true;
            default: return true;  // RTA_METRICS, RTA_ENCAP, RTA_FLOW ...
        }
        attr_err = MsgError::BadAttrSize;
        return false;
    });
    if (!ok) return fail(attr_err == MsgError::None ? MsgError::BadRtattr : attr_err);
    if (!dst) {
        if (dst_len != 0) return fail(MsgError::MissingDst);
        IpAddr zero;
        zero.family = family == nl::kAfInet ? Family::V4 : Family::V6;
        dst = zero;
    }
    ev.prefix = Prefix(*dst, dst_len);
    if (have_single && !have_multi) ev.nexthops.push_back(single);
    return ev;
}

void decode_netlink(std::span<const uint8_t> payload, std::vector<RouteEvent>& out,
                    DecodeStats& st) {
    size_t off = 0;
    while (off < payload.size()) {
        size_t rem = payload.size() - off;
        if (rem < nl::kNlmsgHdrLen) {
            st.malformed_msgs++;
            return;
        }
        ByteReader h(payload.data() + off, nl::kNlmsgHdrLen);
        uint32_t len = h.u32_host();
        uint16_t type = h.u16_host();
        if (len < nl::kNlmsgHdrLen || len > rem) {
            st.malformed_msgs++;  // the rest of the frame cannot be located
            return;
        }
        st.nlmsgs++;
        auto msg = payload.subspan(off, len);
        off += std::min<size_t>(align4(len), rem);
        if (type == nl::RTM_NEWNEXTHOP || type == nl::RTM_DELNEXTHOP) {
            st.nexthop_msgs++;
            continue;
        }
        MsgError err;
        auto ev = decode_route_msg(msg, &err);
        if (ev) {
            st.routes++;
            out.push_back(std::move(*ev));
        } else if (err != MsgError::None) {
            st.malformed_msgs++;
        } else {
            st.ignored++;
        }
    }
}

size_t StreamDecoder::check(const uint8_t* p) {
    size_t len = size_t(p[2]) << 8 | p[3];
    Fault f = Fault::None;
    if (p[0] != kVersion) f = Fault::BadVersion;
    else if (len < kHeaderSize) f = Fault::ShortLength;
    if (f == Fault::None) return len;
    fault_ = f;
    stats_.malformed_frames++;
    return 0;
}

}  // namespace nimbus::routing::fpm
