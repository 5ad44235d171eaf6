// How the engine reaches the network: send a datagram from one of our
// addresses and ports, and find the source address the kernel would use
// towards a peer. The daemon implements it with kernel UDP sockets
// (udp.h); tests use an in-memory network.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "control/ike/natt.h"

namespace nimbus::ike {

class Transport {
public:
    virtual ~Transport() = default;
    // Sends `payload` from `local` to `remote`. On the NAT-T port the
    // engine has already put the non-ESP marker (or the keepalive octet) in
    // front. False if the datagram could not be handed to the kernel.
    virtual bool send(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> payload) = 0;
    // The local address the kernel picks for `dst` (initiator role).
    virtual std::optional<IpAddr> source_for(const IpAddr& dst) = 0;
};

}  // namespace nimbus::ike
