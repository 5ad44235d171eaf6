#include "control/routing/zapi.h"

#include <array>
#include <cctype>
#include <initializer_list>

#include <fmt/format.h>

namespace nimbus::routing::zapi {

// ---- tables -------------------------------------------------------------------

namespace {

constexpr CmdInfo kCommands[] = {
    {Cmd::InterfaceAdd, "INTERFACE_ADD", Dir::Both},
    {Cmd::InterfaceDelete, "INTERFACE_DELETE", Dir::Both},
    {Cmd::InterfaceAddressAdd, "INTERFACE_ADDRESS_ADD", Dir::FromZebra},
    {Cmd::InterfaceAddressDelete, "INTERFACE_ADDRESS_DELETE", Dir::FromZebra},
    {Cmd::InterfaceUp, "INTERFACE_UP", Dir::FromZebra},
    {Cmd::InterfaceDown, "INTERFACE_DOWN", Dir::FromZebra},
    {Cmd::InterfaceSetMaster, "INTERFACE_SET_MASTER", Dir::FromZebra},
    {Cmd::InterfaceSetProtodown, "INTERFACE_SET_PROTODOWN", Dir::ToZebra},
    {Cmd::RouteAdd, "ROUTE_ADD", Dir::ToZebra},
    {Cmd::RouteDelete, "ROUTE_DELETE", Dir::ToZebra},
    {Cmd::RouteNotifyOwner, "ROUTE_NOTIFY_OWNER", Dir::FromZebra},
    {Cmd::RedistributeAdd, "REDISTRIBUTE_ADD", Dir::ToZebra},
    {Cmd::RedistributeDelete, "REDISTRIBUTE_DELETE", Dir::ToZebra},
    {Cmd::RouterIdUpdate, "ROUTER_ID_UPDATE", Dir::FromZebra},
    {Cmd::Hello, "HELLO", Dir::ToZebra},
    {Cmd::Capabilities, "CAPABILITIES", Dir::FromZebra},
    {Cmd::NexthopUpdate, "NEXTHOP_UPDATE", Dir::FromZebra},
    {Cmd::InterfaceNbrAddressAdd, "INTERFACE_NBR_ADDRESS_ADD", Dir::FromZebra},
    {Cmd::InterfaceNbrAddressDelete, "INTERFACE_NBR_ADDRESS_DELETE", Dir::FromZebra},
    {Cmd::RedistributeRouteAdd, "REDISTRIBUTE_ROUTE_ADD", Dir::FromZebra},
    {Cmd::RedistributeRouteDel, "REDISTRIBUTE_ROUTE_DEL", Dir::FromZebra},
    {Cmd::VrfAdd, "VRF_ADD", Dir::FromZebra},
    {Cmd::VrfDelete, "VRF_DELETE", Dir::FromZebra},
    {Cmd::InterfaceVrfUpdate, "INTERFACE_VRF_UPDATE", Dir::FromZebra},
    {Cmd::InterfaceLinkParams, "INTERFACE_LINK_PARAMS", Dir::FromZebra},
    {Cmd::Error, "ERROR", Dir::FromZebra},
    {Cmd::ClientCapabilities, "CLIENT_CAPABILITIES", Dir::ToZebra},
    {Cmd::RouteNotifyRequest, "ROUTE_NOTIFY_REQUEST", Dir::ToZebra},
    {Cmd::ClientCloseNotify, "CLIENT_CLOSE_NOTIFY", Dir::FromZebra},
};

constexpr const char* kRouteTypeNames[kRouteTypeMax] = {
    "system", "kernel", "connected", "static", "rip", "ripng", "ospf", "ospf6",
    "isis", "bgp", "pim", "eigrp", "nhrp", "hsls", "olsr", "table",
    "ldp", "vnc", "vnc-direct", "vnc-rn", "bgp-direct", "bgp-direct-to-nve-groups", "babel",
    "sharp", "pbr", "bfd", "openfabric", "vrrp", "zebra", "srte", "wildcard",
};

// lib/zclient.h at each tag; 8.4.4 is the pin (see frr-zapi.md §4.3).
constexpr DriftRow kDrift[] = {
    {"7.5.1", 18, 19, 8, 9, 10, 112, 113, 10},
    {"8.0", 18, 19, 8, 9, 10, 117, 118, 10},
    {"8.4.4", 18, 19, 8, 9, 10, 118, 119, 10},
    {"8.5.4", 18, 19, 8, 9, 10, 118, 119, 10},
    {"9.0", 18, 19, 8, 9, 10, 118, 119, 10},
    {"9.1", 18, 19, 8, 9, 10, 117, 118, 11},
    {"10.0", 19, 20, 9, 10, 11, 118, 119, 11},
    {"10.2", 19, 20, 9, 10, 11, 120, 121, 12},
};

static_assert(uint16_t(Cmd::Hello) == 18 && uint16_t(Cmd::Capabilities) == 19);
static_assert(uint16_t(Cmd::RouteAdd) == 8 && uint16_t(Cmd::RouteDelete) == 9);
static_assert(uint16_t(Cmd::Error) == 118 && uint16_t(Cmd::ClientCapabilities) == 119);
static_assert(uint8_t(RouteType::Nhrp) == 12 && uint8_t(RouteType::Bgp) == 9);

uint8_t psize(int len) { return uint8_t((len + 7) / 8); }

void put_header(ByteWriter& w, Cmd cmd, uint32_t vrf_id) {
    w.u16(0);  // patched by finish()
    w.u8(kMarker);
    w.u8(kPin.zserv_version);
    w.u32(vrf_id);
    w.u16(uint16_t(cmd));
}

void finish(ByteWriter& w, size_t start) { w.put_u16_at(start, uint16_t(w.size() - start)); }

void put_prefix(ByteWriter& w, const Prefix& p) {
    w.u8(p.is_v4() ? kAfInet : kAfInet6);
    w.u8(p.len);
    w.bytes(p.addr.b.data(), psize(p.len));
}

bool put_nexthop(ByteWriter& w, const Nexthop& nh, uint32_t message) {
    uint8_t flags = nh.flags;
    if (flags & (nhflag::Label | nhflag::HasBackup | nhflag::Seg6 | nhflag::Seg6Local |
                 nhflag::Evpn))
        return false;  // not produced by nimbus; decode-only
    if (nh.weight) flags |= nhflag::Weight;
    else flags &= uint8_t(~nhflag::Weight);
    w.u32(nh.vrf_id);
    w.u8(uint8_t(nh.type));
    w.u8(flags);
    switch (nh.type) {
        case NexthopType::Blackhole: w.u8(uint8_t(nh.bh_type)); break;
        case NexthopType::Ipv4:
        case NexthopType::Ipv4Ifindex:
            if (!nh.gate.is_v4()) return false;
            w.bytes(nh.gate.b.data(), 4);
            w.u32(nh.ifindex);
            break;
        case NexthopType::Ifindex: w.u32(nh.ifindex); break;
        case NexthopType::Ipv6:
        case NexthopType::Ipv6Ifindex:
            if (!nh.gate.is_v6()) return false;
            w.bytes(nh.gate.b.data(), 16);
            w.u32(nh.ifindex);
            break;
        default: return false;
    }
    if (nh.weight) w.u32(nh.weight);
    if (message & msg::Srte) w.u32(nh.srte_color);
    return true;
}

bool encode_route(ByteWriter& out, Cmd cmd, uint32_t vrf_id, const Route& r, bool del) {
    if (uint8_t(r.type) >= kRouteTypeMax || r.safi < 1 || r.safi > 2) return false;
    if (r.prefix.len > r.prefix.addr.bits()) return false;
    uint32_t message = 0;
    if (!del) {
        if (r.nexthops.empty()) return false;
        message = msg::Nexthop;
        if (r.distance) message |= msg::Distance;
        if (r.metric) message |= msg::Metric;
        if (r.tag) message |= msg::Tag;
        if (r.mtu) message |= msg::Mtu;
        if (r.table_id) message |= msg::TableId;
        message |= r.message & msg::Srte;
    }
    ByteWriter& w = out;
    size_t start = w.size();
    auto undo = [&] {
        w.data().resize(start);
        return false;
    };
    put_header(w, cmd, vrf_id);
    w.u8(uint8_t(r.type));
    w.u16(r.instance);
    w.u32(r.flags);
    w.u32(message);
    w.u8(r.safi);
    put_prefix(w, r.prefix);
    if (message & msg::Nexthop) {
        if (r.nexthops.size() > 256) return undo();  // Debian's MULTIPATH_NUM
        w.u16(uint16_t(r.nexthops.size()));
        for (const auto& nh : r.nexthops)
            if (!put_nexthop(w, nh, message)) return undo();
    }
    if (message & msg::Distance) w.u8(r.distance);
    if (message & msg::Metric) w.u32(r.metric);
    if (message & msg::Tag) w.u32(r.tag);
    if (message & msg::Mtu) w.u32(r.mtu);
    if (message & msg::TableId) w.u32(r.table_id);
    if (w.size() - start > kMaxFrame) return undo();
    finish(w, start);
    return true;
}

void encode_client_cap(ByteWriter& out, ClientCap cap, std::initializer_list<uint32_t> args) {
    size_t start = out.size();
    put_header(out, Cmd::ClientCapabilities, 0);
    out.u32(uint32_t(cap));
    for (uint32_t a : args) out.u32(a);
    finish(out, start);
}

std::optional<Prefix> read_prefix(ByteReader& r, bool full_length) {
    uint8_t fam = r.u8();
    uint8_t len = r.u8();
    if (!r.ok()) return std::nullopt;
    int alen;
    if (fam == kAfInet) alen = 4;
    else if (fam == kAfInet6) alen = 16;
    else return std::nullopt;
    if (len > alen * 8) return std::nullopt;
    uint8_t raw[16] = {};
    if (!r.bytes(raw, full_length ? size_t(alen) : psize(len))) return std::nullopt;
    IpAddr a = alen == 4 ? IpAddr::v4_net(raw) : IpAddr::v6_net(raw);
    return Prefix(a, len);
}

bool read_nexthop(ByteReader& r, uint32_t message, Nexthop* nh) {
    nh->vrf_id = r.u32();
    nh->type = NexthopType(r.u8());
    nh->flags = r.u8();
    uint8_t raw[16];
    switch (nh->type) {
        case NexthopType::Blackhole: nh->bh_type = BlackholeType(r.u8()); break;
        case NexthopType::Ipv4:
        case NexthopType::Ipv4Ifindex:
            if (!r.bytes(raw, 4)) return false;
            nh->gate = IpAddr::v4_net(raw);
            nh->ifindex = r.u32();
            break;
        case NexthopType::Ifindex: nh->ifindex = r.u32(); break;
        case NexthopType::Ipv6:
        case NexthopType::Ipv6Ifindex:
            if (!r.bytes(raw, 16)) return false;
            nh->gate = IpAddr::v6_net(raw);
            nh->ifindex = r.u32();
            break;
        default: return false;
    }
    if (nh->flags & nhflag::Label) {
        uint8_t n = r.u8();
        if (n > 16) return false;  // MPLS_MAX_LABELS
        for (int i = 0; i < n; i++) nh->labels.push_back(r.u32_host());
    }
    if (nh->flags & nhflag::Weight) nh->weight = r.u32();
    if (nh->flags & nhflag::Evpn) r.skip(6);
    if (message & msg::Srte) nh->srte_color = r.u32();
    if (nh->flags & nhflag::HasBackup) r.skip(r.u8());
    if (nh->flags & nhflag::Seg6Local) r.skip(4 + 24);  // action + struct seg6local_context
    if (nh->flags & nhflag::Seg6) r.skip(16);
    return r.ok();
}

}  // namespace

// ---- version --------------------------------------------------------------------

std::string expected_version() {
    return fmt::format(
        "FRR {}.x (pinned to {}; ZAPI ZSERV_VERSION {}, HELLO={} CAPABILITIES={} with a {}-byte "
        "body, ROUTE_ADD={} ROUTE_DELETE={} ROUTE_NOTIFY_OWNER={} ERROR={} CLIENT_CAPABILITIES={})",
        kPin.frr_series, kPin.frr, kPin.zserv_version, uint16_t(Cmd::Hello),
        uint16_t(Cmd::Capabilities), kPin.capabilities_body, uint16_t(Cmd::RouteAdd),
        uint16_t(Cmd::RouteDelete), uint16_t(Cmd::RouteNotifyOwner), uint16_t(Cmd::Error),
        uint16_t(Cmd::ClientCapabilities));
}

VersionCheck check_frr_version(std::string_view s) {
    VersionCheck v;
    // The first "N.N[.N]" in the string.
    for (size_t i = 0; i < s.size(); i++) {
        if (!std::isdigit(uint8_t(s[i])) || (i > 0 && std::isdigit(uint8_t(s[i - 1])))) continue;
        int parts[3] = {-1, -1, -1};
        size_t j = i;
        int n = 0;
        while (n < 3 && j < s.size() && std::isdigit(uint8_t(s[j]))) {
            int x = 0;
            while (j < s.size() && std::isdigit(uint8_t(s[j])) && x < 100000)
                x = x * 10 + (s[j++] - '0');
            parts[n++] = x;
            if (j + 1 < s.size() && s[j] == '.' && std::isdigit(uint8_t(s[j + 1]))) j++;
            else break;
        }
        if (n < 2) continue;
        v.major = parts[0];
        v.minor = parts[1];
        v.patch = parts[2];
        break;
    }
    if (v.major < 0) {
        v.detail = fmt::format("no version number in '{}'", s);
        return v;
    }
    std::string seen = v.patch >= 0 ? fmt::format("{}.{}.{}", v.major, v.minor, v.patch)
                                    : fmt::format("{}.{}", v.major, v.minor);
    if (v.major == 8 && v.minor == 4) {
        v.verdict = VersionVerdict::Pinned;
        v.detail = fmt::format("FRR {} matches the pinned {}.x", seen, kPin.frr_series);
    } else if ((v.major == 8 && v.minor == 5) || (v.major == 9 && v.minor == 0)) {
        v.verdict = VersionVerdict::WireCompatible;
        v.detail = fmt::format(
            "FRR {} is not the pinned {}.x but uses the same numbers for every command and "
            "route type nimbus sends",
            seen, kPin.frr_series);
    } else {
        v.detail = fmt::format("FRR {} is not supported: nimbus speaks {}", seen, expected_version());
    }
    return v;
}

std::span<const DriftRow> drift_table() { return kDrift; }

std::string guess_peer(uint16_t command, size_t body_len) {
    std::string out;
    for (const auto& r : kDrift) {
        if (r.capabilities == command && r.capabilities_body == body_len)
            out += (out.empty() ? "FRR " : "/") + std::string(r.frr);
    }
    if (!out.empty()) return out;
    // An ERROR in answer to HELLO: from a release where our HELLO number is not HELLO.
    for (const auto& r : kDrift) {
        if (r.error == command && r.hello != uint16_t(Cmd::Hello))
            out += (out.empty() ? "FRR " : "/") + std::string(r.frr);
    }
    if (!out.empty()) return out + " (an ERROR reply)";
    return "unknown";
}

// ---- names -------------------------------------------------------------------------

std::span<const CmdInfo> command_table() { return kCommands; }

const CmdInfo* find_command(uint16_t code) {
    for (const auto& c : kCommands)
        if (uint16_t(c.cmd) == code) return &c;
    return nullptr;
}

std::string command_name(uint16_t code) {
    if (auto* c = find_command(code)) return c->name;
    return fmt::format("CMD_{}", code);
}

const char* route_type_name(uint8_t t) { return t < kRouteTypeMax ? kRouteTypeNames[t] : "?"; }

std::optional<RouteType> parse_route_type(std::string_view name) {
    for (uint8_t i = 0; i < kRouteTypeMax; i++)
        if (name == kRouteTypeNames[i]) return RouteType(i);
    return std::nullopt;
}

uint8_t rtprot_for(RouteType t) {
    switch (t) {  // zebra2proto(), zebra/rt_netlink.c; numbers from zebra/rt_netlink.h
        case RouteType::Babel: return 42;
        case RouteType::Bgp: return 186;
        case RouteType::Isis: return 187;
        case RouteType::Ospf:
        case RouteType::Ospf6: return 188;
        case RouteType::Rip: return 189;
        case RouteType::Ripng: return 190;
        case RouteType::Nhrp: return 191;
        case RouteType::Eigrp: return 192;
        case RouteType::Ldp: return 193;
        case RouteType::Sharp: return 194;
        case RouteType::Pbr: return 195;
        case RouteType::Static: return 196;
        case RouteType::Openfabric: return 197;
        case RouteType::Srte: return 198;
        case RouteType::Connect:
        case RouteType::Kernel: return 2;  // RTPROT_KERNEL
        default: return 11;                // RTPROT_ZEBRA
    }
}

const char* note_name(Note n) {
    switch (n) {
        case Note::FailInstall: return "FAIL_INSTALL";
        case Note::BetterAdminWon: return "BETTER_ADMIN_WON";
        case Note::Installed: return "INSTALLED";
        case Note::Removed: return "REMOVED";
        case Note::RemoveFail: return "REMOVE_FAIL";
    }
    return "?";
}

Route blackhole_route(RouteType type, uint16_t instance, const Prefix& p, uint32_t tag,
                      uint32_t metric, uint8_t distance) {
    Route r;
    r.type = type;
    r.instance = instance;
    r.prefix = p;
    r.tag = tag;
    r.metric = metric;
    r.distance = distance;
    Nexthop nh;
    nh.type = NexthopType::Blackhole;
    nh.bh_type = BlackholeType::Null;
    r.nexthops.push_back(nh);
    return r;
}

// ---- encoders ------------------------------------------------------------------------

void encode_hello(ByteWriter& out, const Hello& h) {
    size_t start = out.size();
    put_header(out, Cmd::Hello, kDefaultVrf);
    out.u8(uint8_t(h.proto));
    out.u16(h.instance);
    out.u32(h.session_id);
    out.u8(h.receive_notify ? 1 : 0);
    out.u8(h.synchronous ? 1 : 0);
    finish(out, start);
}

bool encode_route_add(ByteWriter& out, uint32_t vrf_id, const Route& r) {
    return encode_route(out, Cmd::RouteAdd, vrf_id, r, false);
}

bool encode_route_delete(ByteWriter& out, uint32_t vrf_id, const Route& r) {
    return encode_route(out, Cmd::RouteDelete, vrf_id, r, true);
}

void encode_route_notify_request(ByteWriter& out, bool notify) {
    size_t start = out.size();
    put_header(out, Cmd::RouteNotifyRequest, kDefaultVrf);
    out.u8(notify ? 1 : 0);
    finish(out, start);
}

void encode_redistribute(ByteWriter& out, bool add, uint8_t afi, RouteType type,
                         uint16_t instance, uint32_t vrf_id) {
    size_t start = out.size();
    put_header(out, add ? Cmd::RedistributeAdd : Cmd::RedistributeDelete, vrf_id);
    out.u8(afi);
    out.u8(uint8_t(type));
    out.u16(instance);
    finish(out, start);
}

void encode_gr_capabilities(ByteWriter& out, uint32_t stale_time_s, uint32_t vrf_id) {
    encode_client_cap(out, ClientCap::GrCapabilities, {stale_time_s, vrf_id});
}

void encode_rib_stale_time(ByteWriter& out, uint32_t stale_time_s, uint32_t vrf_id) {
    encode_client_cap(out, ClientCap::RibStaleTime, {stale_time_s, vrf_id});
}

void encode_route_update(ByteWriter& out, bool complete, uint8_t afi, uint8_t safi,
                         uint32_t vrf_id) {
    encode_client_cap(out,
                      complete ? ClientCap::RouteUpdateComplete : ClientCap::RouteUpdatePending,
                      {afi, safi, vrf_id});
}

void encode_gr_disable(ByteWriter& out, uint32_t vrf_id) {
    encode_client_cap(out, ClientCap::GrDisable, {vrf_id});
}

// ---- decoders ----------------------------------------------------------------------------

std::optional<Header> decode_header(std::span<const uint8_t> frame) {
    ByteReader r(frame);
    Header h;
    h.length = r.u16();
    h.marker = r.u8();
    h.version = r.u8();
    h.vrf_id = r.u32();
    h.command = r.u16();
    if (!r.ok()) return std::nullopt;
    return h;
}

std::optional<Hello> decode_hello(std::span<const uint8_t> body) {
    ByteReader r(body);
    Hello h;
    uint8_t proto = r.u8();
    h.instance = r.u16();
    h.session_id = r.u32();
    h.receive_notify = r.u8() != 0;
    h.synchronous = r.u8() != 0;
    if (!r.ok() || !r.empty() || proto >= kRouteTypeMax) return std::nullopt;
    h.proto = RouteType(proto);
    return h;
}

std::optional<Capabilities> decode_capabilities(std::span<const uint8_t> body) {
    if (body.size() != kPin.capabilities_body) return std::nullopt;
    ByteReader r(body);
    Capabilities c;
    c.vrf_backend = r.u32();
    c.mpls_enabled = r.u8() != 0;
    c.multipath_num = r.u32();
    c.mlag_role = r.u8();
    if (!r.ok()) return std::nullopt;
    return c;
}

std::optional<NotifyOwner> decode_notify_owner(uint32_t vrf_id, std::span<const uint8_t> body) {
    ByteReader r(body);
    NotifyOwner n;
    n.vrf_id = vrf_id;
    n.raw_note = r.u32_host();  // stream_put(&note, sizeof note): host order
    auto p = read_prefix(r, true);  // prefix_blen(): the whole address, not PSIZE
    n.table_id = r.u32();
    n.afi = r.u8();
    n.safi = r.u8();
    if (!p || !r.ok() || !r.empty() || n.raw_note > uint32_t(Note::RemoveFail)) return std::nullopt;
    n.note = Note(n.raw_note);
    n.prefix = *p;
    return n;
}

std::optional<Route> decode_route(std::span<const uint8_t> body) {
    ByteReader r(body);
    Route rt;
    uint8_t type = r.u8();
    rt.instance = r.u16();
    rt.flags = r.u32();
    rt.message = r.u32();
    rt.safi = r.u8();
    if (!r.ok() || type >= kRouteTypeMax) return std::nullopt;
    rt.type = RouteType(type);
    auto p = read_prefix(r, false);
    if (!p) return std::nullopt;
    rt.prefix = *p;
    uint32_t m = rt.message;
    if (m & msg::SrcPfx) {
        uint8_t sl = r.u8();
        if (sl > 128) return std::nullopt;
        r.skip(psize(sl));
    }
    if (m & msg::Nhg) r.u32();
    if (m & msg::Nexthop) {
        uint16_t n = r.u16();
        if (n > 256) return std::nullopt;  // more than Debian's MULTIPATH_NUM
        for (uint16_t i = 0; i < n && r.ok(); i++) {
            Nexthop nh;
            if (!read_nexthop(r, m, &nh)) return std::nullopt;
            rt.nexthops.push_back(nh);
        }
    }
    if (m & msg::BackupNexthops) {
        uint16_t n = r.u16();
        if (n > 256) return std::nullopt;
        for (uint16_t i = 0; i < n && r.ok(); i++) {
            Nexthop nh;
            if (!read_nexthop(r, m, &nh)) return std::nullopt;
        }
    }
    if (m & msg::Distance) rt.distance = r.u8();
    if (m & msg::Metric) rt.metric = r.u32();
    if (m & msg::Tag) rt.tag = r.u32();
    if (m & msg::Mtu) rt.mtu = r.u32();
    if (m & msg::TableId) rt.table_id = r.u32();
    if (m & msg::Opaque) {
        uint16_t n = r.u16();
        if (n > 1024) return std::nullopt;  // ZAPI_MESSAGE_OPAQUE_LENGTH
        r.skip(n);
    }
    if (!r.ok() || !r.empty()) return std::nullopt;
    return rt;
}

std::optional<ZebraError> decode_error(std::span<const uint8_t> body, uint32_t* raw) {
    ByteReader r(body);
    uint32_t code = r.u32_host();
    if (!r.ok() || !r.empty()) return std::nullopt;
    if (raw) *raw = code;
    return ZebraError(code);
}

std::optional<VrfAdd> decode_vrf_add(uint32_t vrf_id, std::span<const uint8_t> body) {
    // struct vrf_data { u32 table_id (host order); char netns_name[36]; } + char name[36]
    constexpr size_t kNs = 36, kName = 36;
    ByteReader r(body);
    VrfAdd v;
    v.vrf_id = vrf_id;
    v.table_id = r.u32_host();
    auto ns = r.span(kNs);
    auto name = r.span(kName);
    if (!r.ok() || !r.empty()) return std::nullopt;
    auto cstr = [](std::span<const uint8_t> s) {
        size_t n = 0;
        while (n < s.size() && s[n]) n++;
        return std::string(reinterpret_cast<const char*>(s.data()), n);
    };
    v.netns_name = cstr(ns);
    v.name = cstr(name);
    return v;
}

std::optional<CloseNotify> decode_close_notify(std::span<const uint8_t> body) {
    ByteReader r(body);
    CloseNotify c;
    c.proto = r.u8();
    c.instance = r.u16();
    c.session_id = r.u32();
    if (!r.ok() || !r.empty()) return std::nullopt;
    return c;
}

// ---- stream decoder --------------------------------------------------------------------------

size_t FrameDecoder::check(const uint8_t* p) {
    size_t len = size_t(p[0]) << 8 | p[1];
    Fault f = Fault::None;
    if (p[2] != kMarker) f = Fault::BadMarker;
    else if (p[3] != kPin.zserv_version) f = Fault::BadVersion;
    else if (len < kHeaderSize) f = Fault::ShortLength;
    else if (len > max_frame_) f = Fault::LongLength;
    if (f == Fault::None) return len;
    fault_ = f;
    stats_.malformed++;
    return 0;
}

void FrameDecoder::reset() {
    buf_.clear();
    fault_ = Fault::None;
}

const char* FrameDecoder::fault_name(Fault f) {
    switch (f) {
        case Fault::None: return "none";
        case Fault::BadMarker: return "bad marker";
        case Fault::BadVersion: return "bad version";
        case Fault::ShortLength: return "length below header";
        case Fault::LongLength: return "length above limit";
    }
    return "?";
}

}  // namespace nimbus::routing::zapi
