#include "control/hostif/icmp.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "src/common/clock.h"

namespace nimbus::hostif {

namespace {

uint16_t csum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += uint32_t(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

constexpr double kRatePerSec = 1000, kBurst = 100;

}  // namespace

std::optional<std::vector<uint8_t>> build_icmp_error(IcmpError type, std::span<const uint8_t> o,
                                                     const IpAddr& src, uint16_t mtu) {
    if (o.empty()) return std::nullopt;
    int ver = o[0] >> 4;
    if (ver == 4) {
        if (o.size() < 20 || !src.is_v4()) return std::nullopt;
        size_t hl = size_t(o[0] & 0xf) * 4;
        if (hl < 20 || o.size() < hl) return std::nullopt;
        IpAddr osrc = IpAddr::v4_net(&o[12]), odst = IpAddr::v4_net(&o[16]);
        uint16_t frag = uint16_t(o[6] << 8 | o[7]);
        if (frag & 0x1fff) return std::nullopt;                                  // non-initial fragment
        if (odst.is_multicast() || odst.v4_host() == 0xffffffff) return std::nullopt;
        if (osrc.is_multicast() || osrc.is_zero() || osrc.b[0] == 127 || osrc.v4_host() == 0xffffffff)
            return std::nullopt;
        if (o[9] == 1 && o.size() >= hl + 1) {
            uint8_t t = o[hl];
            // Errors only about echo/echo reply/timestamp/info (queries), never errors.
            if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) return std::nullopt;
        }
        uint8_t it = 3, ic = 0;
        switch (type) {
            case IcmpError::TimeExceeded: it = 11, ic = 0; break;
            case IcmpError::NetUnreachable: it = 3, ic = 0; break;
            case IcmpError::HostUnreachable: it = 3, ic = 1; break;
            case IcmpError::TooBig: it = 3, ic = 4; break;
        }
        // RFC 1812 §4.3.2.3: as much of the original as fits in 576 bytes.
        size_t quote = std::min(o.size(), size_t(576 - 20 - 8));
        std::vector<uint8_t> p(20 + 8 + quote, 0);
        p[0] = 0x45;
        p[1] = 0xc0;  // precedence "internetwork control", as routers send errors
        uint16_t tot = uint16_t(p.size());
        p[2] = uint8_t(tot >> 8);
        p[3] = uint8_t(tot);
        p[8] = 64;
        p[9] = 1;
        std::memcpy(&p[12], src.b.data(), 4);
        std::memcpy(&p[16], &o[12], 4);
        uint16_t hc = csum(p.data(), 20);
        p[10] = uint8_t(hc >> 8);
        p[11] = uint8_t(hc);
        uint8_t* icmp = &p[20];
        icmp[0] = it;
        icmp[1] = ic;
        if (type == IcmpError::TooBig) {
            icmp[6] = uint8_t(mtu >> 8);  // RFC 1191 §4: next-hop MTU
            icmp[7] = uint8_t(mtu);
        }
        std::memcpy(icmp + 8, o.data(), quote);
        uint16_t c = csum(icmp, 8 + quote);
        icmp[2] = uint8_t(c >> 8);
        icmp[3] = uint8_t(c);
        return p;
    }
    if (ver == 6) {
        if (o.size() < 40 || !src.is_v6()) return std::nullopt;
        IpAddr osrc = IpAddr::v6_net(&o[8]), odst = IpAddr::v6_net(&o[24]);
        if (osrc.is_multicast() || osrc.is_zero()) return std::nullopt;
        // RFC 4443 §2.4(e.3): no errors for multicast destinations, except
        // Packet Too Big.
        if (odst.is_multicast() && type != IcmpError::TooBig) return std::nullopt;
        if (o[6] == 58 && o.size() >= 41 && o[40] < 128) return std::nullopt;  // about an ICMPv6 error
        uint8_t it = 1, ic = 0;
        switch (type) {
            case IcmpError::TimeExceeded: it = 3, ic = 0; break;
            case IcmpError::NetUnreachable: it = 1, ic = 0; break;
            case IcmpError::HostUnreachable: it = 1, ic = 3; break;
            case IcmpError::TooBig: it = 2, ic = 0; break;
        }
        // RFC 4443 §2.4(c): as much as fits in the IPv6 minimum MTU.
        size_t quote = std::min(o.size(), size_t(1280 - 40 - 8));
        std::vector<uint8_t> p(8 + quote, 0);
        p[0] = it;
        p[1] = ic;
        if (type == IcmpError::TooBig) {
            p[6] = uint8_t(mtu >> 8);
            p[7] = uint8_t(mtu);
        }
        std::memcpy(&p[8], o.data(), quote);
        return p;
    }
    return std::nullopt;
}

IcmpSender::~IcmpSender() {
    if (fd4_ >= 0) close(fd4_);
    if (fd6_ >= 0) close(fd6_);
}

bool IcmpSender::open() {
    fd4_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    fd6_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6);
    // Only sending: never queue what arrives on these sockets.
    int zero = 0;
    if (fd6_ >= 0) setsockopt(fd6_, SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero);
    return fd4_ >= 0 && fd6_ >= 0;
}

bool IcmpSender::send(IcmpError type, std::span<const uint8_t> orig, const IpAddr& src, uint16_t mtu) {
    uint64_t now = mono_ns();
    tokens_ = std::min(kBurst, tokens_ + double(now - last_ns_) * kRatePerSec / 1e9);
    last_ns_ = now;
    if (tokens_ < 1) {
        suppressed_++;
        return false;
    }
    auto pkt = build_icmp_error(type, orig, src, mtu);
    if (!pkt) {
        suppressed_++;
        return false;
    }
    tokens_ -= 1;
    ssize_t r;
    if (src.is_v4()) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        std::memcpy(&to.sin_addr, &orig[12], 4);
        r = sendto(fd4_, pkt->data(), pkt->size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    } else {
        sockaddr_in6 to{};
        to.sin6_family = AF_INET6;
        std::memcpy(&to.sin6_addr, &orig[8], 16);
        iovec iov{pkt->data(), pkt->size()};
        alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
        msghdr mh{};
        mh.msg_name = &to;
        mh.msg_namelen = sizeof to;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        cmsghdr* cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, src.b.data(), 16);
        std::memcpy(CMSG_DATA(cm), &pi, sizeof pi);
        r = sendmsg(fd6_, &mh, 0);
    }
    if (r < 0) return false;
    sent_++;
    return true;
}

}  // namespace nimbus::hostif
