// NAT traversal for IKE (RFC 7296 §2.23, RFC 3948): the NAT_DETECTION hashes
// and the framing of datagrams on the NAT-T port. Pure functions: the engine
// decides what to do with a detected NAT.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "src/common/addr.h"

namespace nimbus::ike {

// An IP address and UDP port: one end of an IKE or ESP-in-UDP path.
struct Endpoint {
    IpAddr addr;
    uint16_t port = 0;
    std::string str() const;  // "192.0.2.1[4500]" / "[2001:db8::1]:500" style: addr[port]
    auto operator<=>(const Endpoint&) const = default;
    bool operator==(const Endpoint&) const = default;
};

// §2.23: SHA-1(SPIi | SPIr | IP | Port), with the IP in network order (4 or
// 16 octets) and the port as two octets. SPIr is zero in an IKE_SA_INIT
// request.
std::array<uint8_t, 20> natd_hash(uint64_t spi_i, uint64_t spi_r, const Endpoint& e);

// The outcome of comparing received NAT_DETECTION notifies with what we see.
struct NatState {
    bool peer_behind_nat = false;   // their SOURCE hash does not match the source we saw
    bool local_behind_nat = false;  // no DESTINATION hash matches the address we received on
    bool any() const { return peer_behind_nat || local_behind_nat; }
};

// `source_hashes` are the NAT_DETECTION_SOURCE_IP data (several are allowed
// for a multi-homed sender), `dest_hash` the NAT_DETECTION_DESTINATION_IP
// data; `remote` is the source we received from, `local` the address and port
// it arrived on (§2.23).
NatState nat_detect(uint64_t spi_i, uint64_t spi_r, std::span<const std::vector<uint8_t>> source_hashes,
                    std::span<const uint8_t> dest_hash, const Endpoint& remote, const Endpoint& local);

// RFC 3948 §2.2: an IKE message on the NAT-T port is preceded by four zero
// octets (the non-ESP marker); a single 0xFF octet is a NAT-keepalive
// (§2.3); anything else with a non-zero first word is ESP.
enum class NattKind : uint8_t { Ike, Keepalive, Esp, Runt };
NattKind classify_natt(std::span<const uint8_t> datagram);
inline constexpr size_t kNonEspMarkerLen = 4;
inline constexpr uint8_t kNattKeepalive = 0xff;

}  // namespace nimbus::ike
