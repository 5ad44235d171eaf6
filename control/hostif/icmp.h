// ICMP and ICMPv6 errors the box originates for transit packets (time
// exceeded, destination unreachable, packet too big). Built here and handed
// to the kernel through raw sockets, so the kernel routes them and the
// dataplane carries them like any other traffic the box sends.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::hostif {

enum class IcmpError { TimeExceeded, NetUnreachable, HostUnreachable, TooBig };

// Builds the ICMP (IPv4: the whole IP packet, for IP_HDRINCL) or ICMPv6
// (message only: the kernel adds the IPv6 header and checksum) error for the
// offending IP packet `orig` (starting at its IP header). Returns nothing
// when the rules forbid an error: RFC 1812 §4.3.2.7 / RFC 4443 §2.4(e) — no
// error about an ICMP error, a multicast or broadcast destination, a
// non-initial fragment, or a source that is not a unicast address.
std::optional<std::vector<uint8_t>> build_icmp_error(IcmpError type, std::span<const uint8_t> orig,
                                                     const IpAddr& src, uint16_t mtu);

class IcmpSender {
public:
    ~IcmpSender();
    bool open();
    // `orig` is the offending IP packet; `src` the address we send from.
    bool send(IcmpError type, std::span<const uint8_t> orig, const IpAddr& src, uint16_t mtu);
    uint64_t sent() const { return sent_; }
    uint64_t suppressed() const { return suppressed_; }

private:
    int fd4_ = -1, fd6_ = -1;
    uint64_t sent_ = 0, suppressed_ = 0;
    double tokens_ = 100;
    uint64_t last_ns_ = 0;
};

}  // namespace nimbus::hostif
