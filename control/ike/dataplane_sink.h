// The IKE engine's ChildSaSink on the ESP dataplane (dataplane/api.h): an
// IKE tunnel becomes a dataplane tunnel with its first child SA, its agreed
// remote prefixes become tunnel routes in the cloud's VRF (the same table
// checks decrypted sources: cryptokey routing), and rekeys change SAs in
// place (tunnel_add_in_sa / tunnel_set_out_sa / tunnel_remove_in_sa) so
// routes, counters and the tunnel id stay. Keys are handed over once and
// wiped here; an outbound SA waiting for activation keeps its key only
// until then.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "control/ike/sink.h"
#include "control/routing/rib.h"
#include "dataplane/api.h"

namespace nimbus::ike {

class DataplaneSink : public ChildSaSink {
public:
    // `underlay_vrf(a)`: the VRF of the port holding local address a.
    DataplaneSink(routing::Rib& rib, std::function<int(const IpAddr&)> underlay_vrf);
    ~DataplaneSink() override;

    void tunnel_up(const TunnelSpec& t) override;
    void tunnel_update(const TunnelSpec& t) override;
    void tunnel_down(TunnelId id) override;
    bool child_install(const ChildSaSpec& s) override;
    void child_outbound(TunnelId id, uint32_t spi_in) override;
    void child_remove(TunnelId id, uint32_t spi_in) override;
    ChildStats child_stats(TunnelId id, uint32_t spi_in) const override;
    uint32_t spi_slot_mask() const override { return (1u << dp::kSpiSlotBits) - 1; }
    bool spi_slot_free(uint32_t spi) const override { return dp::spi_slot_free(spi); }

    // The dataplane tunnel of an IKE tunnel (kNoTunnel while it has none).
    dp::TunnelId dp_id(TunnelId id) const;
    uint64_t errors() const { return errors_; }

private:
    struct Pending {
        dp::SaSpec out;  // key wiped when it goes
    };
    struct Tun {
        TunnelSpec spec;
        dp::TunnelId dp = dp::kNoTunnel;
        std::vector<Prefix> routed;
        std::map<uint32_t, Pending> pending;  // by the child's spi_in
    };
    void routes(Tun& t, const std::vector<Prefix>& want);
    void drop(Tun& t);
    std::vector<dp::PathSpec> paths(const TunnelSpec& s) const;

    routing::Rib& rib_;
    std::function<int(const IpAddr&)> underlay_vrf_;
    std::map<TunnelId, Tun> tuns_;
    struct Seen {
        uint64_t packets = 0;
        uint64_t at_ns = 0;      // lower bound of the last packet's arrival
        uint64_t looked_ns = 0;  // when we last read the counter
    };
    mutable std::map<uint32_t, Seen> seen_;  // inbound SPI -> last packet count change
    uint64_t errors_ = 0;
};

}  // namespace nimbus::ike
