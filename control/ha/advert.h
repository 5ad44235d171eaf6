// VRRPv3 wire formats (RFC 5798, obsoleted by RFC 9568 with the same wire
// format): the advertisement, its checksum, the IPv4/IPv6 packet and the
// Ethernet frame around it, the gratuitous ARP and unsolicited Neighbor
// Advertisement sent on takeover, and the receive-side validator (§7.1) whose
// every drop reason is a named counter.
//
// Pure functions on bytes: no sockets, no clocks. The caller (the HA event
// loop) hands received IP packets to validate_advert() and puts the frames
// built here on the wire.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::ha {

// ---- wire constants (RFC 5798 §5) ----
inline constexpr uint8_t kIpProtoVrrp = 112;          // §5.1.1.4 / §5.1.2.4
inline constexpr uint8_t kVrrpVersion = 3;            // §5.2.1
inline constexpr uint8_t kVrrpTypeAdvert = 1;         // §5.2.2
inline constexpr uint8_t kVrrpTtl = 255;              // §5.1.1.3 / §5.1.2.3 (GTSM, RFC 5082)
inline constexpr uint8_t kPriorityOwner = 255;        // §5.2.4: the address owner
inline constexpr uint8_t kPriorityStop = 0;           // §5.2.4: "I am resigning"
inline constexpr uint16_t kMaxAdverIntCs = 0x0fff;    // §5.2.7: 12 bits of centiseconds
inline constexpr size_t kVrrpHeaderLen = 8;
inline constexpr uint8_t kIpv4TosNetControl = 0xc0;   // what keepalived puts in the TOS byte
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeArp = 0x0806;

IpAddr vrrp_group(Family f);            // 224.0.0.18 (§5.1.1.2) or ff02::12 (§5.1.2.2)
// §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
MacAddr virtual_mac(uint8_t vrid, Family f);
// Ethernet multicast MAC of an IPv4 (01:00:5e + low 23 bits) or IPv6
// (33:33 + low 32 bits) group address.
MacAddr multicast_mac(const IpAddr& group);

// One advertisement (§5.2). `addrs` all have the family of the packet.
struct Advert {
    uint8_t vrid = 0;
    uint8_t priority = 0;
    uint16_t max_adver_int_cs = 100;   // Max Advert Int, centiseconds, 12 bits
    std::vector<IpAddr> addrs;
    bool operator==(const Advert&) const = default;
};

// §5.2.8. RFC 5798 says the checksum covers "the entire VRRP message ... and a
// pseudo-header as defined in RFC 2460 §8.1"; keepalived (2.2.7, checked on the
// wire, test/unit/ha) and FRR by default prepend an IPv4 pseudo-header (src,
// dst, zero, protocol 112, VRRP length) for IPv4 too. RFC 9568 §5.2.8 changed
// IPv4 to the VRRP message alone (no pseudo-header). We send the RFC 5798 /
// keepalived form and accept either on receive unless told otherwise.
enum class V4Checksum : uint8_t { PseudoHeader, MessageOnly };
enum class V4ChecksumRx : uint8_t { PseudoHeader, MessageOnly, Either };

// Internet checksum (RFC 1071) of the pseudo-header for (src, dst, len,
// protocol) plus `data`. The family of `src` picks the IPv4 (12-byte) or IPv6
// (40-byte, RFC 8200 §8.1) pseudo-header. Returns the value to store, i.e.
// the complement; verifying a message that includes its checksum gives 0.
uint16_t pseudo_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                         std::span<const uint8_t> data);
uint16_t inet_checksum(std::span<const uint8_t> data);

// The VRRP message alone (§5.2), checksum filled in for the given src/dst.
// Fails closed (empty result) on a count over 255, a mixed address family or
// an interval that does not fit 12 bits.
std::vector<uint8_t> encode_advert(const Advert& a, const IpAddr& src, const IpAddr& dst,
                                   V4Checksum v4 = V4Checksum::PseudoHeader);
// Structural decode of a VRRP message (no semantic checks; see
// validate_advert). nullopt when the bytes cannot hold the header and the
// counted addresses.
std::optional<Advert> decode_advert(std::span<const uint8_t> msg, Family f);

struct IpOptions {
    uint16_t ipv4_id = 0;              // IPv4 Identification
    uint8_t tos = kIpv4TosNetControl;  // IPv4 TOS / IPv6 Traffic Class
    V4Checksum v4_checksum = V4Checksum::PseudoHeader;
};
// The IP packet carrying `a` from `src` (the interface's primary IPv4 address
// or IPv6 link-local address, §7.2) to the VRRP group: TTL/hop limit 255,
// protocol 112, no fragmentation, IPv4 header checksum set.
std::vector<uint8_t> build_advert_packet(const Advert& a, const IpAddr& src, const IpOptions& o = {});
// The same in an Ethernet II frame from `src_mac` (the virtual MAC, §7.2) to
// the group's multicast MAC. No padding: the NIC pads to 60 bytes.
std::vector<uint8_t> build_advert_frame(const Advert& a, const IpAddr& src, const MacAddr& src_mac,
                                        const IpOptions& o = {});

// Gratuitous ARP (§6.4.2 (380), RFC 5227 §3 style announcement) as keepalived
// sends it: broadcast request "who-has VIP tell VIP", sender and Ethernet
// source = `mac` (the virtual MAC), target hardware address ff:ff:ff:ff:ff:ff.
std::vector<uint8_t> build_garp(const IpAddr& vip, const MacAddr& mac);
// Unsolicited Neighbor Advertisement (§6.4.2 (395), RFC 4861 §7.2.6) from
// `src` (the interface's link-local address) to ff02::1, hop limit 255,
// Override set, Solicited clear, Router set unless `router` is false, with a
// Target Link-Layer Address option carrying `mac`.
std::vector<uint8_t> build_unsolicited_na(const IpAddr& vip, const IpAddr& src, const MacAddr& mac,
                                          bool router = true);

// ---- receive side (§7.1) ----

// Why an advertisement was dropped. Every value but Ok is a drop with its own
// counter; see rx_reason_name / rx_reason_help. Order = order of the checks.
enum class RxReason : uint8_t {
    Ok = 0,
    TooShort,           // shorter than an IP header, the VRRP header or the counted addresses
    IpHeaderError,      // bad IP version/IHL/total length, or a fragment
    FamilyMismatch,     // IPv4 packet for an IPv6 instance or the reverse
    NotVrrp,            // IP protocol / next header is not 112
    TtlError,           // TTL / hop limit != 255 (§5.1.1.3, §5.1.2.3)
    VersionError,       // VRRP version != 3
    TypeError,          // VRRP type != 1 (ADVERTISEMENT)
    LengthError,        // bytes after the counted addresses
    ChecksumError,      // §5.2.8
    VridMismatch,       // not a VRID of ours (§7.1)
    AddrCountZero,      // count of addresses 0 (RFC 9568 §5.2.5, erratum 8299)
    IntervalZero,       // Max Advert Int 0 (RFC 9568 §7.1, erratum 8301)
    AddrCountMismatch,  // count differs from ours and the sender is not the owner
    AddrListMismatch,   // same count, other addresses, sender not the owner
    kCount
};
inline constexpr size_t kRxReasonCount = size_t(RxReason::kCount);
const char* rx_reason_name(RxReason r);   // counter name, e.g. "rx_ttl_error"
const char* rx_reason_help(RxReason r);   // one line for `show` and metrics

// What the receiving instance expects.
struct RxExpect {
    uint8_t vrid = 0;
    Family family = Family::V4;
    std::span<const IpAddr> vips;       // configured addresses; empty skips the list check
    uint16_t adver_int_cs = 100;        // ours, for the mismatch warning
    V4ChecksumRx v4_checksum = V4ChecksumRx::Either;
};

struct RxResult {
    RxReason reason = RxReason::TooShort;
    Advert advert;                      // filled when reason is Ok (and as far as parsed)
    IpAddr src, dst;
    uint8_t ttl = 0;
    // Accepted, but worth a counter and a rate-limited log line:
    bool interval_mismatch = false;     // RFC 9568 §7.1: SHOULD log, the Backup learns it (§6.4.2)
    bool owner_addr_mismatch = false;   // RFC 5798 §7.1: list differs but priority 255 → processed
    bool v4_message_only_checksum = false;  // peer used the RFC 9568 IPv4 form
    bool ok() const { return reason == RxReason::Ok; }
};

// Validates one received IP packet (IPv4 header or IPv6 header first; an
// Ethernet pad after the IPv4 total length is ignored). Checks in the order of
// RFC 5798 §7.1. Never reads out of bounds.
RxResult validate_advert(std::span<const uint8_t> ip_packet, const RxExpect& e);

// The VRID of a received IP packet, for dispatch to the instance (nullopt if it
// is not a VRRP packet at all). No other check.
std::optional<uint8_t> peek_vrid(std::span<const uint8_t> ip_packet);

}  // namespace nimbus::ha
