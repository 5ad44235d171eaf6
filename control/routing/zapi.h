// ZAPI codec: the zebra client protocol of FRRouting, pinned to FRR 8.4
// (ZSERV_VERSION 6, as shipped by Debian 12: frr 8.4.4).
//
// ZAPI is FRR's internal API. The header version stays 6 from FRR 7.5 to
// master while command and route-type numbers move between releases (e.g.
// ROUTE_ADD is 8 in 8.4 and 9 in 10.0), so every number used on the wire comes
// from the tables below, and `kPin` says which FRR release they belong to.
// Byte layouts follow lib/zclient.c and zebra/zapi_msg.c at tag frr-8.4.4
// (see /work/shared/reference/frr-zapi.md §4); nothing was copied from FRR.
//
// All multi-byte integers are big-endian (stream_putw/putl), except the few
// fields zebra writes with stream_put(&enum, 4) in host order: the note of
// ROUTE_NOTIFY_OWNER, the code of ERROR, the table id of VRF_ADD.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/addr.h"
#include "src/common/bytes.h"

namespace nimbus::routing::zapi {

// ---- the version pin ------------------------------------------------------

struct Pin {
    const char* frr;             // the FRR release the tables below are taken from
    const char* frr_series;      // what a version check accepts ("8.4" = 8.4.x)
    uint8_t zserv_version;       // ZSERV_VERSION in the header
    size_t capabilities_body;    // CAPABILITIES body length in that release
};
inline constexpr Pin kPin{"8.4.4", "8.4", 6, 10};

// One line naming exactly what this codec speaks, for logs and `show`.
std::string expected_version();

// Checks a version string from outside the protocol (`zebra --version`,
// `dpkg-query -W frr`: "8.4.4-1.1~deb12u2", "FRRouting 8.4.4 (...)").
enum class VersionVerdict {
    Pinned,          // 8.4.x: what the tables were written for
    WireCompatible,  // 8.5.x, 9.0.x: same numbers for every command we use (source diff)
    Incompatible,    // anything else, or unparsable
};
struct VersionCheck {
    VersionVerdict verdict = VersionVerdict::Incompatible;
    int major = -1, minor = -1, patch = -1;
    std::string detail;
};
VersionCheck check_frr_version(std::string_view version_string);

// Command numbers across releases (source: lib/zclient.h at each tag), used to
// tell an operator which FRR a mismatching zebra probably is. ZSERV_VERSION
// is 6 in every row, so the header alone cannot tell them apart.
struct DriftRow {
    const char* frr;
    uint16_t hello, capabilities, route_add, route_delete, notify_owner, error, client_caps;
    size_t capabilities_body;  // CAPABILITIES body bytes zebra sends
};
std::span<const DriftRow> drift_table();
// "FRR 9.1" style guess from what arrived in answer to HELLO, or "unknown".
std::string guess_peer(uint16_t command, size_t body_len);

// ---- framing ----------------------------------------------------------------

inline constexpr uint8_t kMarker = 0xFE;          // ZEBRA_HEADER_MARKER
inline constexpr size_t kHeaderSize = 10;         // ZEBRA_HEADER_SIZE
inline constexpr size_t kMaxFrame = 16384;        // ZEBRA_MAX_PACKET_SIZ
inline constexpr uint32_t kDefaultVrf = 0;        // VRF_DEFAULT

// ---- command numbers (enum zebra_message_types_t, lib/zclient.h, 8.4) -----

enum class Cmd : uint16_t {
    InterfaceAdd = 0,
    InterfaceDelete = 1,
    InterfaceAddressAdd = 2,
    InterfaceAddressDelete = 3,
    InterfaceUp = 4,
    InterfaceDown = 5,
    InterfaceSetMaster = 6,
    InterfaceSetProtodown = 7,
    RouteAdd = 8,
    RouteDelete = 9,
    RouteNotifyOwner = 10,
    RedistributeAdd = 11,
    RedistributeDelete = 12,
    RouterIdUpdate = 17,
    Hello = 18,
    Capabilities = 19,
    NexthopUpdate = 22,
    InterfaceNbrAddressAdd = 23,
    InterfaceNbrAddressDelete = 24,
    RedistributeRouteAdd = 30,
    RedistributeRouteDel = 31,
    VrfAdd = 33,
    VrfDelete = 34,
    InterfaceVrfUpdate = 36,
    InterfaceLinkParams = 42,
    Error = 118,
    ClientCapabilities = 119,
    RouteNotifyRequest = 124,
    ClientCloseNotify = 125,
};

enum class Dir : uint8_t { ToZebra, FromZebra, Both };
struct CmdInfo {
    Cmd cmd;
    const char* name;  // FRR's name without the ZEBRA_ prefix
    Dir dir;
};
// The commands this codec knows, with their FRR 8.4 numbers.
std::span<const CmdInfo> command_table();
const CmdInfo* find_command(uint16_t code);
std::string command_name(uint16_t code);  // "ROUTE_ADD" or "CMD_77"

// ---- route types (lib/route_types.txt order, 8.4) -------------------------

enum class RouteType : uint8_t {
    System = 0, Kernel = 1, Connect = 2, Static = 3, Rip = 4, Ripng = 5, Ospf = 6,
    Ospf6 = 7, Isis = 8, Bgp = 9, Pim = 10, Eigrp = 11, Nhrp = 12, Hsls = 13, Olsr = 14,
    Table = 15, Ldp = 16, Vnc = 17, VncDirect = 18, VncRn = 19, BgpDirect = 20,
    BgpDirectExt = 21, Babel = 22, Sharp = 23, Pbr = 24, Bfd = 25, Openfabric = 26,
    Vrrp = 27, Nhg = 28, Srte = 29, All = 30,
};
inline constexpr uint8_t kRouteTypeMax = 31;  // ZEBRA_ROUTE_MAX
const char* route_type_name(uint8_t t);       // "nhrp", "bgp", ... or "?"
std::optional<RouteType> parse_route_type(std::string_view name);
// Kernel rtm_protocol zebra uses for a route type (zebra2proto(), rt_netlink.c):
// what FPM and `ip route` show, e.g. 186 for bgp, 191 for nhrp, 196 for static.
uint8_t rtprot_for(RouteType t);

// ---- flags and enums ---------------------------------------------------------

namespace msg {  // ZAPI_MESSAGE_* (zapi_route.message, u32)
inline constexpr uint32_t Nexthop = 0x01, Distance = 0x02, Metric = 0x04, Tag = 0x08,
                          Mtu = 0x10, SrcPfx = 0x20, BackupNexthops = 0x40, Nhg = 0x80,
                          TableId = 0x100, Srte = 0x200, Opaque = 0x400;
}
namespace flag {  // ZEBRA_FLAG_* (zapi_route.flags, u32)
inline constexpr uint32_t AllowRecursion = 0x01, Selfroute = 0x02, Ibgp = 0x04,
                          Selected = 0x08, FibOverride = 0x10, EvpnRoute = 0x20,
                          RrUseDistance = 0x40, Trapped = 0x80, Offloaded = 0x100,
                          OffloadFailed = 0x200;
}
namespace nhflag {  // ZAPI_NEXTHOP_FLAG_* (u8)
inline constexpr uint8_t Onlink = 0x01, Label = 0x02, Weight = 0x04, HasBackup = 0x08,
                         Seg6 = 0x10, Seg6Local = 0x20, Evpn = 0x40;
}

enum class NexthopType : uint8_t {  // enum nexthop_types_t, lib/nexthop.h
    Ifindex = 1, Ipv4 = 2, Ipv4Ifindex = 3, Ipv6 = 4, Ipv6Ifindex = 5, Blackhole = 6,
};
enum class BlackholeType : uint8_t { Unspec = 0, Null = 1, Reject = 2, AdminProhib = 3 };

enum class Note : uint32_t {  // enum zapi_route_notify_owner
    FailInstall = 0, BetterAdminWon = 1, Installed = 2, Removed = 3, RemoveFail = 4,
};
const char* note_name(Note n);

enum class ZebraError : uint32_t { Unknown = 0, NoVrf = 1, InvalidMsgType = 2 };

enum class ClientCap : uint32_t {  // enum zserv_client_capabilities
    GrCapabilities = 1, RouteUpdateComplete = 2, RouteUpdatePending = 3, GrDisable = 4,
    RibStaleTime = 5,
};

inline constexpr uint8_t kAfiIp = 1, kAfiIp6 = 2, kSafiUnicast = 1;
inline constexpr uint8_t kAfInet = 2, kAfInet6 = 10;  // Linux AF_* values on the wire

// ---- messages ------------------------------------------------------------------

struct Header {
    uint16_t length = 0;  // whole frame, header included
    uint8_t marker = kMarker;
    uint8_t version = 6;
    uint32_t vrf_id = 0;
    uint16_t command = 0;
};

// HELLO: the route type given here owns the session: zebra sends notifications
// for it and flushes its routes when the session closes (unless GR).
struct Hello {
    RouteType proto = RouteType::Nhrp;
    uint16_t instance = 0;
    uint32_t session_id = 0;
    bool receive_notify = true;
    bool synchronous = false;
};

struct Nexthop {
    NexthopType type = NexthopType::Blackhole;
    uint32_t vrf_id = 0;
    uint8_t flags = 0;  // nhflag::*; Weight is set by the encoder when weight != 0
    BlackholeType bh_type = BlackholeType::Null;
    IpAddr gate;
    uint32_t ifindex = 0;
    uint32_t weight = 0;
    std::vector<uint32_t> labels;  // decoded only
    uint32_t srte_color = 0;       // decoded only
    bool operator==(const Nexthop&) const = default;
};

// zapi_route (ROUTE_ADD / ROUTE_DELETE / REDISTRIBUTE_ROUTE_ADD / _DEL body).
// The optional fields are on the wire only when their msg:: bit is set.
struct Route {
    RouteType type = RouteType::Nhrp;
    uint16_t instance = 0;
    uint32_t flags = 0;
    uint32_t message = 0;
    uint8_t safi = kSafiUnicast;
    Prefix prefix;
    std::vector<Nexthop> nexthops;
    uint8_t distance = 0;
    uint32_t metric = 0;
    uint32_t tag = 0;
    uint32_t mtu = 0;
    uint32_t table_id = 0;
    bool operator==(const Route&) const = default;
};

// A route with one blackhole next hop, the way nimbus injects VPN prefixes
// (frr-zapi.md §6). tag/metric/distance are put on the wire when non-zero;
// distance 0 leaves zebra's default for the type (nhrp: 10).
Route blackhole_route(RouteType type, uint16_t instance, const Prefix& p, uint32_t tag = 0,
                      uint32_t metric = 0, uint8_t distance = 0);

struct Capabilities {
    uint32_t vrf_backend = 0;  // 0 = VRF-lite, 1 = netns
    bool mpls_enabled = false;
    uint32_t multipath_num = 0;  // ECMP width zebra was built with
    uint8_t mlag_role = 0;
};

struct NotifyOwner {
    uint32_t vrf_id = 0;  // from the header
    Note note = Note::FailInstall;
    uint32_t raw_note = 0;
    Prefix prefix;
    uint32_t table_id = 0;
    uint8_t afi = 0, safi = 0;
};

struct VrfAdd {
    uint32_t vrf_id = 0;  // from the header
    uint32_t table_id = 0;
    std::string netns_name;
    std::string name;
};

struct CloseNotify {
    uint8_t proto = 0;
    uint16_t instance = 0;
    uint32_t session_id = 0;
};

// ---- encoders: each appends one whole frame to `out` -----------------------------

void encode_hello(ByteWriter& out, const Hello& h);
// ROUTE_ADD: needs at least one next hop (zebra drops an ADD without one).
// Returns false (and writes nothing) when the route cannot be encoded within
// kMaxFrame or is invalid (no nexthop, bad prefix family).
bool encode_route_add(ByteWriter& out, uint32_t vrf_id, const Route& r);
// ROUTE_DELETE: zebra matches on afi, safi, type, instance and prefix (plus
// distance and metric when non-zero), so only those are sent: message = 0.
bool encode_route_delete(ByteWriter& out, uint32_t vrf_id, const Route& r);
void encode_route_notify_request(ByteWriter& out, bool notify);
void encode_redistribute(ByteWriter& out, bool add, uint8_t afi, RouteType type,
                         uint16_t instance = 0, uint32_t vrf_id = kDefaultVrf);
// CLIENT_CAPABILITIES. The header VRF is always 0; the VRF is in the body.
void encode_gr_capabilities(ByteWriter& out, uint32_t stale_time_s, uint32_t vrf_id);
void encode_rib_stale_time(ByteWriter& out, uint32_t stale_time_s, uint32_t vrf_id);
void encode_route_update(ByteWriter& out, bool complete, uint8_t afi, uint8_t safi,
                         uint32_t vrf_id);  // ROUTE_UPDATE_COMPLETE / _PENDING
void encode_gr_disable(ByteWriter& out, uint32_t vrf_id);

// ---- decoders: bodies only (the frame decoder below strips the header) ----------

std::optional<Header> decode_header(std::span<const uint8_t> frame);
std::optional<Hello> decode_hello(std::span<const uint8_t> body);
// Strict: the body must be exactly kPin.capabilities_body bytes long.
std::optional<Capabilities> decode_capabilities(std::span<const uint8_t> body);
std::optional<NotifyOwner> decode_notify_owner(uint32_t vrf_id, std::span<const uint8_t> body);
std::optional<Route> decode_route(std::span<const uint8_t> body);
std::optional<ZebraError> decode_error(std::span<const uint8_t> body, uint32_t* raw = nullptr);
std::optional<VrfAdd> decode_vrf_add(uint32_t vrf_id, std::span<const uint8_t> body);
std::optional<CloseNotify> decode_close_notify(std::span<const uint8_t> body);

// ---- stream decoder ------------------------------------------------------------
//
// Splits a byte stream into frames whatever the chunking. A frame with a bad
// marker or version, a length below the header or above the limit cannot be
// skipped safely (the length is not to be trusted), so the decoder counts it
// once and stops: every later byte is dropped until reset(). zebra does the
// same with a broken client (zserv.c: it closes the connection); the session
// above asks its owner to reconnect.
class FrameDecoder {
public:
    enum class Fault : uint8_t { None, BadMarker, BadVersion, ShortLength, LongLength };
    struct Stats {
        uint64_t frames = 0;
        uint64_t bytes = 0;
        uint64_t malformed = 0;      // framing faults (at most one per reset)
        uint64_t dropped_bytes = 0;  // bytes discarded after a fault
    };

    explicit FrameDecoder(size_t max_frame = kMaxFrame) : max_frame_(max_frame) {}

    // Calls on_frame(const Header&, std::span<const uint8_t> body) per frame.
    // The span is valid only during the call.
    template <class F>
    void feed(std::span<const uint8_t> in, F&& on_frame);

    void reset();
    bool failed() const { return fault_ != Fault::None; }
    Fault fault() const { return fault_; }
    static const char* fault_name(Fault f);
    const Stats& stats() const { return stats_; }
    size_t buffered() const { return buf_.size(); }

private:
    // Validates a header; returns the frame length or 0 on a fault.
    size_t check(const uint8_t* p);

    size_t max_frame_;
    std::vector<uint8_t> buf_;
    Fault fault_ = Fault::None;
    Stats stats_;
};

template <class F>
void FrameDecoder::feed(std::span<const uint8_t> in, F&& on_frame) {
    if (failed()) {
        stats_.dropped_bytes += in.size();
        return;
    }
    stats_.bytes += in.size();
    size_t off = 0;
    auto deliver = [&](const uint8_t* p, size_t len) {
        Header h = *decode_header(std::span<const uint8_t>(p, kHeaderSize));
        stats_.frames++;
        on_frame(h, std::span<const uint8_t>(p + kHeaderSize, len - kHeaderSize));
    };
    auto fail_rest = [&] {
        stats_.dropped_bytes += in.size() - off;
        buf_.clear();
    };
    // Complete a frame started in an earlier chunk.
    while (!buf_.empty()) {
        if (buf_.size() < kHeaderSize) {
            size_t take = std::min(kHeaderSize - buf_.size(), in.size() - off);
            buf_.insert(buf_.end(), in.begin() + off, in.begin() + off + take);
            off += take;
            if (buf_.size() < kHeaderSize) return;
            if (check(buf_.data()) == 0) return fail_rest();
        }
        size_t len = size_t(buf_[0]) << 8 | buf_[1];
        size_t take = std::min(len - buf_.size(), in.size() - off);
        buf_.insert(buf_.end(), in.begin() + off, in.begin() + off + take);
        off += take;
        if (buf_.size() < len) return;
        std::vector<uint8_t> frame;
        frame.swap(buf_);
        deliver(frame.data(), frame.size());
    }
    // Whole frames straight from the input, without copying.
    while (in.size() - off >= kHeaderSize) {
        size_t len = check(in.data() + off);
        if (len == 0) return fail_rest();
        if (in.size() - off < len) break;
        deliver(in.data() + off, len);
        off += len;
    }
    buf_.insert(buf_.end(), in.begin() + off, in.end());
}

}  // namespace nimbus::routing::zapi
