// The engine's Transport on ordinary kernel UDP sockets (ARCHITECTURE.md
// §2: the dataplane punts IKE to the host interfaces, so these sockets work
// as on any Linux box). One socket per (address, port) when `listen` names
// addresses, otherwise one wildcard socket per family and port; IP_PKTINFO
// tells which local address a datagram arrived on and picks the source of
// what we send, so replies leave from the address the peer talked to.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "control/ike/transport.h"

namespace nimbus::ike {

class UdpTransport : public Transport {
public:
    using Rx = std::function<void(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> data)>;
    ~UdpTransport() override;

    // Opens the sockets. `addresses` empty: wildcard (IPv4 and IPv6).
    bool open(const std::vector<IpAddr>& addresses, uint16_t port_ike, uint16_t port_natt, std::string* err);
    void close();
    // HA: sockets for one more address (a virtual IP while we are master),
    // opened next to those of open(); returns the new fds (empty and *err
    // set on failure, nothing left open). Already bound: no new fds.
    std::vector<int> add_address(const IpAddr& a, uint16_t port_ike, uint16_t port_natt, std::string* err);
    // Closes the sockets add_address() opened for `a` (take fds_for(a) out
    // of any poller first).
    void remove_address(const IpAddr& a);
    bool bound_to(const IpAddr& a) const;
    std::vector<int> fds_for(const IpAddr& a) const;
    const std::vector<int>& fds() const { return fds_; }
    // Reads what is waiting on `fd` (non-blocking), calling `rx` per datagram.
    void drain(int fd, const Rx& rx);
    // Reads up to `max` waiting datagrams into `out` (views into an
    // internal buffer, valid until the next call). Returns how many.
    struct Datagram {
        Endpoint local, remote;
        std::span<const uint8_t> data;
    };
    size_t read_batch(int fd, std::vector<Datagram>* out, size_t max = 64);

    bool send(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> payload) override;
    std::optional<IpAddr> source_for(const IpAddr& dst) override;

    uint64_t rx_errors() const { return rx_errors_; }

private:
    struct Sock {
        int fd = -1;
        IpAddr addr;        // bound address (zero: wildcard)
        bool wildcard = true;
        Family family = Family::V4;
        uint16_t port = 0;
    };
    const Sock* pick(const Endpoint& local) const;
    // One socket on (a, port); -1 with *err (errno in *err_no) on failure.
    int open_socket(const IpAddr& a, uint16_t port, std::string* err, int* err_no);
    void drain_into(int fd, size_t max, const Rx& rx);
    std::vector<Sock> socks_;
    std::vector<uint8_t> batch_buf_;
    std::vector<int> fds_;
    uint64_t rx_errors_ = 0;
};

}  // namespace nimbus::ike
