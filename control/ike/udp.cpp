#include "control/ike/udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::ike {

namespace {

constexpr int kRcvBuf = 16 << 20;
constexpr size_t kMaxDatagram = 65536;

void to_sockaddr(const IpAddr& a, uint16_t port, sockaddr_storage* ss, socklen_t* len) {
    std::memset(ss, 0, sizeof *ss);
    if (a.is_v4()) {
        auto* s = reinterpret_cast<sockaddr_in*>(ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        std::memcpy(&s->sin_addr, a.b.data(), 4);
        *len = sizeof *s;
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(ss);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        std::memcpy(&s->sin6_addr, a.b.data(), 16);
        *len = sizeof *s;
    }
}

Endpoint from_sockaddr(const sockaddr_storage& ss) {
    Endpoint e;
    if (ss.ss_family == AF_INET) {
        auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
        e.addr = IpAddr::v4_net(reinterpret_cast<const uint8_t*>(&s->sin_addr));
        e.port = ntohs(s->sin_port);
    } else {
        auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
        e.addr = IpAddr::v6_net(reinterpret_cast<const uint8_t*>(&s->sin6_addr));
        e.port = ntohs(s->sin6_port);
    }
    return e;
}

}  // namespace

UdpTransport::~UdpTransport() { close(); }

void UdpTransport::close() {
    for (auto& s : socks_)
        if (s.fd >= 0) ::close(s.fd);
    socks_.clear();
    fds_.clear();
}

int UdpTransport::open_socket(const IpAddr& a, uint16_t port, std::string* err, int* err_no) {
    int af = a.is_v4() ? AF_INET : AF_INET6;
    int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err_no = errno;
        *err = fmt::format("IKE socket: {}", std::strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Room for a reconnect storm: 10,000 IKE_SA_INITs arriving at once take
    // ~13 MB of socket memory on loopback (FORCE: past rmem_max, as root).
    int rb = kRcvBuf;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (af == AF_INET) {
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        // The host interface's address may still be coming up (or be a
        // virtual IP HA is installing).
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
    }
    sockaddr_storage ss;
    socklen_t len;
    to_sockaddr(a, port, &ss, &len);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        *err_no = errno;
        *err = fmt::format("IKE socket on {}[{}]: {}", a.str(), port, std::strerror(errno));
        ::close(fd);
        return -1;
    }
    return fd;
}

bool UdpTransport::open(const std::vector<IpAddr>& addresses, uint16_t port_ike, uint16_t port_natt,
                        std::string* err) {
    std::vector<IpAddr> addrs = addresses;
    bool wildcard = addrs.empty();
    if (wildcard) addrs = {IpAddr::v4(0), *IpAddr::parse("::")};
    for (const IpAddr& a : addrs) {
        for (uint16_t port : {port_ike, port_natt}) {
            int e = 0;
            std::string why;
            int fd = open_socket(a, port, &why, &e);
            if (fd < 0) {
                if (wildcard && !a.is_v4() && (e == EAFNOSUPPORT || e == EADDRNOTAVAIL)) continue;  // no IPv6
                *err = why;
                close();
                return false;
            }
            Sock s;
            s.fd = fd;
            s.addr = a;
            s.wildcard = a.is_zero();
            s.family = a.family;
            s.port = port;
            fds_.push_back(fd);
            socks_.push_back(s);
        }
    }
    return true;
}

bool UdpTransport::bound_to(const IpAddr& a) const {
    return std::any_of(socks_.begin(), socks_.end(), [&](const Sock& s) { return !s.wildcard && s.addr == a; });
}

std::vector<int> UdpTransport::add_address(const IpAddr& a, uint16_t port_ike, uint16_t port_natt,
                                           std::string* err) {
    std::vector<int> out;
    if (bound_to(a)) return out;
    std::vector<Sock> added;
    for (uint16_t port : {port_ike, port_natt}) {
        int e = 0;
        int fd = open_socket(a, port, err, &e);
        if (fd < 0) {
            for (auto& s : added) ::close(s.fd);
            return {};
        }
        Sock s;
        s.fd = fd;
        s.addr = a;
        s.wildcard = false;
        s.family = a.family;
        s.port = port;
        added.push_back(s);
    }
    for (auto& s : added) {
        socks_.push_back(s);
        fds_.push_back(s.fd);
        out.push_back(s.fd);
    }
    return out;
}

std::vector<int> UdpTransport::fds_for(const IpAddr& a) const {
    std::vector<int> out;
    for (auto& s : socks_)
        if (!s.wildcard && s.addr == a) out.push_back(s.fd);
    return out;
}

void UdpTransport::remove_address(const IpAddr& a) {
    for (auto it = socks_.begin(); it != socks_.end();) {
        if (!it->wildcard && it->addr == a) {
            ::close(it->fd);
            fds_.erase(std::remove(fds_.begin(), fds_.end(), it->fd), fds_.end());
            it = socks_.erase(it);
        } else {
            ++it;
        }
    }
}

void UdpTransport::drain(int fd, const Rx& rx) { drain_into(fd, 256, rx); }

void UdpTransport::drain_into(int fd, size_t max, const Rx& rx) {
    const Sock* sock = nullptr;
    for (auto& s : socks_)
        if (s.fd == fd) sock = &s;
    if (!sock) return;
    static thread_local std::vector<uint8_t> buf(kMaxDatagram);
    for (size_t i = 0; i < max; i++) {
        sockaddr_storage from;
        iovec iov{buf.data(), buf.size()};
        alignas(cmsghdr) char cbuf[256];
        msghdr mh{};
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) rx_errors_++;
            return;
        }
        if (mh.msg_flags & MSG_TRUNC) {
            rx_errors_++;
            continue;
        }
        Endpoint local{sock->addr, sock->port};
        for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                in_pktinfo pi;
                std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
                local.addr = IpAddr::v4_net(reinterpret_cast<const uint8_t*>(&pi.ipi_addr));
            } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                in6_pktinfo pi;
                std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
                local.addr = IpAddr::v6_net(reinterpret_cast<const uint8_t*>(&pi.ipi6_addr));
            }
        }
        rx(local, from_sockaddr(from), std::span<const uint8_t>(buf.data(), size_t(n)));
    }
}

size_t UdpTransport::read_batch(int fd, std::vector<Datagram>* out, size_t max) {
    out->clear();
    if (batch_buf_.size() < max * kMaxDatagram) batch_buf_.resize(max * kMaxDatagram);
    size_t n = 0;
    drain_into(fd, max, [&](const Endpoint& l, const Endpoint& r, std::span<const uint8_t> d) {
        uint8_t* slot = batch_buf_.data() + n * kMaxDatagram;
        std::copy(d.begin(), d.end(), slot);
        out->push_back(Datagram{l, r, std::span<const uint8_t>(slot, d.size())});
        n++;
    });
    return n;
}

const UdpTransport::Sock* UdpTransport::pick(const Endpoint& local) const {
    const Sock* any = nullptr;
    for (auto& s : socks_) {
        if (s.port != local.port || s.family != local.addr.family) continue;
        if (!s.wildcard && s.addr == local.addr) return &s;
        if (s.wildcard && !any) any = &s;
    }
    return any;
}

bool UdpTransport::send(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> payload) {
    const Sock* s = pick(local);
    if (!s) return false;
    sockaddr_storage to;
    socklen_t len;
    to_sockaddr(remote.addr, remote.port, &to, &len);
    iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
    msghdr mh{};
    mh.msg_name = &to;
    mh.msg_namelen = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    if (s->wildcard && !local.addr.is_zero()) {
        // The source address: the one the peer talks to.
        mh.msg_control = cbuf;
        if (local.addr.is_v4()) {
            mh.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
            cmsghdr* c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
            in_pktinfo pi{};
            std::memcpy(&pi.ipi_spec_dst, local.addr.b.data(), 4);
            std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
        } else {
            mh.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
            cmsghdr* c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
            in6_pktinfo pi{};
            std::memcpy(&pi.ipi6_addr, local.addr.b.data(), 16);
            std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
        }
    }
    return sendmsg(s->fd, &mh, 0) == ssize_t(payload.size());
}

std::optional<IpAddr> UdpTransport::source_for(const IpAddr& dst) {
    int fd = socket(dst.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_storage ss;
    socklen_t len;
    to_sockaddr(dst, 500, &ss, &len);
    std::optional<IpAddr> out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
        sockaddr_storage me;
        socklen_t ml = sizeof me;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&me), &ml) == 0) out = from_sockaddr(me).addr;
    }
    ::close(fd);
    return out;
}

}  // namespace nimbus::ike
