// What the IKE engine hands to the dataplane: the narrow interface between
// control/ike and the ESP tables. The engine calls it only after a peer has
// authenticated (unauthenticated packets never create dataplane state), and
// it orders the calls for hitless rekeys: a new inbound SA is installed
// before the old one goes, and an outbound SA becomes active only when the
// peer can already receive on it.
//
// A tunnel is one site (or one `initiate:` entry): it keeps its id across
// IKE SA rekeys and reconnections. It is "up" while it has at least one
// child SA; tunnel_up comes before its first child, tunnel_down after the
// last one went (and takes the routes with it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/ike/natt.h"
#include "control/ike/secret.h"
#include "src/common/addr.h"

namespace nimbus::ike {

using TunnelId = uint64_t;

struct TunnelPaths {
    Endpoint local;                  // our address and port for ESP (4500 with UDP encapsulation)
    Endpoint remote;                 // the peer's, as seen from here (after NAT)
    bool udp_encap = false;          // RFC 3948 ESP-in-UDP (a NAT was detected)
    std::vector<Endpoint> extra;     // further validated peer addresses (MOBIKE), for multi-path
    bool operator==(const TunnelPaths&) const = default;
};

struct TunnelSpec {
    TunnelId id = 0;
    std::string cloud;
    std::string name;                    // the site's identity, or the initiate entry
    int vrf = 0;
    std::vector<Prefix> remote_prefixes;  // allowed inner sources = routes in the VRF (cryptokey routing)
    std::vector<Prefix> local_prefixes;   // what we agreed to send into the tunnel
    std::vector<int> critical_dscp;
    TunnelPaths paths;
};

struct ChildSaSpec {
    TunnelId tunnel = 0;
    uint32_t spi_in = 0;       // ours: the dataplane looks inbound ESP up by it
    uint32_t spi_out = 0;      // the peer's
    uint16_t encr_id = 0;      // ENCR_AES_GCM_16 or ENCR_CHACHA20_POLY1305
    uint16_t key_bits = 0;     // 128/256 for AES-GCM, 0 for ChaCha20
    Secret key_in;             // key | 4-octet salt (RFC 4106 §8.1, RFC 7634 §2)
    Secret key_out;
    bool esn = false;
    uint32_t replay_window = 1024;
    bool outbound = true;      // make this child's outbound SA the tunnel's active one now
};

struct ChildStats {
    uint64_t in_packets = 0, in_bytes = 0, out_packets = 0, out_bytes = 0;
    uint64_t last_in_ns = 0;   // monotonic time of the last authenticated inbound packet, 0 = never
};

class ChildSaSink {
public:
    virtual ~ChildSaSink() = default;
    virtual void tunnel_up(const TunnelSpec& t) = 0;
    // Paths (MOBIKE, NAT mapping change) or prefixes changed.
    virtual void tunnel_update(const TunnelSpec& t) = 0;
    virtual void tunnel_down(TunnelId id) = 0;
    // The inbound SA is usable at once; the outbound one when spec.outbound
    // (otherwise after child_outbound). False: the dataplane could not take
    // it (its tables are full, no memory): nothing was installed.
    virtual bool child_install(const ChildSaSpec& spec) = 0;
    virtual void child_outbound(TunnelId id, uint32_t spi_in) = 0;
    virtual void child_remove(TunnelId id, uint32_t spi_in) = 0;
    virtual ChildStats child_stats(TunnelId, uint32_t) const { return {}; }
    // Inbound SPIs index the dataplane's SA table by some of their bits
    // (dataplane/api.h kSpiSlotBits): two inbound SAs whose SPIs agree in
    // the bits of spi_slot_mask() cannot both be installed. The engine
    // picks its SPIs unique in those bits, and in slots spi_slot_free()
    // says nothing else (a static tunnel) holds.
    virtual uint32_t spi_slot_mask() const { return 0xffffffffu; }
    virtual bool spi_slot_free(uint32_t) const { return true; }
};

}  // namespace nimbus::ike
