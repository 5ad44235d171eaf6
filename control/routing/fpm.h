// FPM codec: what zebra's dplane_fpm_nl module (FRR 8.4, Debian's
// /usr/lib/x86_64-linux-gnu/frr/modules/dplane_fpm_nl.so) sends to the
// forwarding plane manager, i.e. to nimbus.
//
// Framing (fpm/fpm.h, zebra/dplane_fpm_nl.c; frr-zapi.md §7.2):
//   u8 version = 1, u8 type = 1 (netlink; 2 = protobuf, never sent by this
//   module), u16 length BIG-endian including this 4-byte header, then one or
//   more rtnetlink messages in HOST byte order (struct nlmsghdr, rtmsg,
//   rtattr). A route update is RTM_DELROUTE followed by RTM_NEWROUTE in the
//   same frame; a withdrawal is RTM_DELROUTE alone.
//
// zebra's encoder (netlink_route_multipath_msg_encode, rt_netlink.c, with
// fpm=true): rtm_table holds the table id when < 256, else RTA_TABLE;
// RTA_PRIORITY is always 20 (NL_DEFAULT_ROUTE_METRIC), not the route's metric;
// rtm_protocol is zebra2proto(route type) (186 bgp, 191 nhrp, 196 static,
// 2 connected/kernel, 11 zebra); blackholes carry rtm_type 6/7/8 and no next
// hop; one next hop is RTA_GATEWAY/RTA_OIF, several are RTA_MULTIPATH; with
// "fpm use-next-hop-groups" (the module's default) routes carry RTA_NH_ID and
// the next hops come as RTM_NEWNEXTHOP: nimbus needs "no fpm
// use-next-hop-groups" and counts such messages instead of using them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::routing::fpm {

inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kTypeNetlink = 1;
inline constexpr uint8_t kTypeProtobuf = 2;
inline constexpr size_t kHeaderSize = 4;
inline constexpr size_t kMaxFrame = 65535;  // the length field is 16 bits

namespace nl {  // rtnetlink numbers (linux/rtnetlink.h; checked in fpm.cpp)
inline constexpr uint16_t kNlmsgHdrLen = 16, kRtmsgLen = 12;
inline constexpr uint16_t RTM_NEWROUTE = 24, RTM_DELROUTE = 25;
inline constexpr uint16_t RTM_NEWNEXTHOP = 104, RTM_DELNEXTHOP = 105;
inline constexpr uint16_t RTA_DST = 1, RTA_SRC = 2, RTA_OIF = 4, RTA_GATEWAY = 5,
                          RTA_PRIORITY = 6, RTA_PREFSRC = 7, RTA_MULTIPATH = 9, RTA_TABLE = 15,
                          RTA_VIA = 18, RTA_NH_ID = 30;
inline constexpr uint8_t RTN_UNICAST = 1, RTN_BLACKHOLE = 6, RTN_UNREACHABLE = 7,
                         RTN_PROHIBIT = 8;
inline constexpr uint8_t kAfInet = 2, kAfInet6 = 10, kAfMpls = 28;
inline constexpr uint32_t kTableMain = 254;
}  // namespace nl

enum class Op : uint8_t { Add, Del };

struct Nexthop {
    std::optional<IpAddr> gateway;  // RTA_GATEWAY, or RTA_VIA (IPv4 over IPv6 next hop)
    uint32_t ifindex = 0;           // RTA_OIF / rtnh_ifindex: kernel ifindex in zebra's netns
    uint16_t weight = 1;            // rtnh_hops + 1
    uint8_t flags = 0;              // RTNH_F_* (onlink ...)
    bool operator==(const Nexthop&) const = default;
};

struct RouteEvent {
    Op op = Op::Add;
    uint32_t table = 0;     // kernel table id: 254 (main) is the default VRF
    Prefix prefix;
    uint8_t protocol = 0;   // rtm_protocol
    uint8_t type = 0;       // rtm_type (0 in an RTM_DELROUTE from zebra)
    uint32_t priority = 0;  // RTA_PRIORITY
    std::vector<Nexthop> nexthops;
    uint32_t nh_id = 0;     // RTA_NH_ID (next-hop-group mode)
    uint8_t src_len = 0;    // IPv6 source-specific route
    std::optional<IpAddr> prefsrc;
    uint16_t nlmsg_flags = 0;
    bool is_blackhole() const {
        return type == nl::RTN_BLACKHOLE || type == nl::RTN_UNREACHABLE ||
               type == nl::RTN_PROHIBIT;
    }
    std::string str() const;
    bool operator==(const RouteEvent&) const = default;
};

struct DecodeStats {
    uint64_t frames = 0;
    uint64_t bytes = 0;
    uint64_t nlmsgs = 0;
    uint64_t routes = 0;              // RTM_NEWROUTE / RTM_DELROUTE decoded
    uint64_t ignored = 0;             // other netlink messages (MPLS LSPs, MACs, ...)
    uint64_t nexthop_msgs = 0;        // RTM_NEWNEXTHOP/DELNEXTHOP: zebra in NHG mode
    uint64_t unsupported_frames = 0;  // FPM type other than netlink (skipped whole)
    uint64_t malformed_frames = 0;    // framing faults (the stream stops)
    uint64_t malformed_msgs = 0;      // netlink messages dropped
    uint64_t dropped_bytes = 0;
};

// Why one netlink message was dropped (for tests and logs).
enum class MsgError : uint8_t {
    None, ShortHeader, BadNlmsgLen, ShortRtmsg, BadFamily, BadPrefixLen, BadRtattr,
    BadAttrSize, BadMultipath, MissingDst,
};
const char* msg_error_name(MsgError e);

// Decodes one route message: `msg` is the whole netlink message (nlmsghdr
// included, length already checked against the frame). Non-route messages
// return std::nullopt with *err == None.
std::optional<RouteEvent> decode_route_msg(std::span<const uint8_t> msg, MsgError* err);

// Walks every netlink message of one FPM frame's payload; appends the route
// events, counts the rest. A message with a bad nlmsg_len ends the walk (the
// rest of the frame cannot be located); any other malformed message is
// dropped alone.
void decode_netlink(std::span<const uint8_t> payload, std::vector<RouteEvent>& out,
                    DecodeStats& st);

// Stream decoder for the TCP byte stream from zebra. A bad header (version
// != 1, length < 4) loses the framing for good: it is counted once and every
// later byte dropped until reset() (the owner should close the connection;
// zebra reconnects after 3 s and replays everything).
class StreamDecoder {
public:
    enum class Fault : uint8_t { None, BadVersion, ShortLength };

    // Calls on_frame(const std::vector<RouteEvent>&) once per netlink frame,
    // with the events of that frame in order.
    template <class F>
    void feed(std::span<const uint8_t> in, F&& on_frame);

    void reset() {
        buf_.clear();
        fault_ = Fault::None;
    }
    bool failed() const { return fault_ != Fault::None; }
    Fault fault() const { return fault_; }
    const DecodeStats& stats() const { return stats_; }
    size_t buffered() const { return buf_.size(); }

private:
    size_t check(const uint8_t* p);  // frame length, or 0 on a fault
    template <class F>
    void deliver(const uint8_t* p, size_t len, F& on_frame);

    std::vector<uint8_t> buf_;
    std::vector<RouteEvent> events_;
    Fault fault_ = Fault::None;
    DecodeStats stats_;
};

template <class F>
void StreamDecoder::deliver(const uint8_t* p, size_t len, F& on_frame) {
    stats_.frames++;
    if (p[1] != kTypeNetlink) {
        stats_.unsupported_frames++;
        return;
    }
    events_.clear();
    decode_netlink(std::span<const uint8_t>(p + kHeaderSize, len - kHeaderSize), events_, stats_);
    on_frame(static_cast<const std::vector<RouteEvent>&>(events_));
}

template <class F>
void StreamDecoder::feed(std::span<const uint8_t> in, F&& on_frame) {
    if (failed()) {
        stats_.dropped_bytes += in.size();
        return;
    }
    stats_.bytes += in.size();
    size_t off = 0;
    auto fail_rest = [&] {
        stats_.dropped_bytes += in.size() - off;
        buf_.clear();
    };
    while (!buf_.empty()) {
        if (buf_.size() < kHeaderSize) {
            size_t take = std::min(kHeaderSize - buf_.size(), in.size() - off);
            buf_.insert(buf_.end(), in.begin() + off, in.begin() + off + take);
            off += take;
            if (buf_.size() < kHeaderSize) return;
            if (check(buf_.data()) == 0) return fail_rest();
        }
        size_t len = size_t(buf_[2]) << 8 | buf_[3];
        size_t take = std::min(len - buf_.size(), in.size() - off);
        buf_.insert(buf_.end(), in.begin() + off, in.begin() + off + take);
        off += take;
        if (buf_.size() < len) return;
        std::vector<uint8_t> frame;
        frame.swap(buf_);
        deliver(frame.data(), frame.size(), on_frame);
    }
    while (in.size() - off >= kHeaderSize) {
        size_t len = check(in.data() + off);
        if (len == 0) return fail_rest();
        if (in.size() - off < len) break;
        deliver(in.data() + off, len, on_frame);
        off += len;
    }
    buf_.insert(buf_.end(), in.begin() + off, in.end());
}

}  // namespace nimbus::routing::fpm
