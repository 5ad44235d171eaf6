// Static ESP tunnels (`manual_sas:`) on the control thread: installs them in
// the dataplane (keys expanded there, once), adds each allowed prefix to the
// RIB as a tunnel route in the tunnel's VRF (so the same table sends traffic
// into the tunnel and checks decrypted sources: cryptokey routing), logs the
// workers' lifetime events, and registers `show ipsec sa` / `show tunnels`.
// IKE will drive the same dataplane calls with negotiated SAs.
#pragma once

#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/mgmt/commands.h"
#include "control/routing/rib.h"
#include "dataplane/api.h"

namespace nimbus::esp {

struct TunnelState {
    std::string name;
    dp::TunnelId id = dp::kNoTunnel;
    int vrf = 0;
    std::vector<Prefix> allowed;
    const config::ManualTunnel* cfg = nullptr;  // into the daemon's config
};

class Tunnels {
public:
    // Installs every tunnel of cfg.manual_sas and their routes (the caller
    // commits the RIB). On failure: *err names the config line; what was
    // installed stays (the daemon exits anyway).
    bool install(const config::Config& cfg, routing::Rib& rib, std::string* err);
    void remove_all(routing::Rib& rib);
    // Drains the workers' SA events (soft / hard lifetime, exhausted
    // sequence numbers) and logs them; rekeying arrives with IKE.
    void poll_events();
    std::string name(dp::TunnelId id) const;
    const std::vector<TunnelState>& tunnels() const { return tunnels_; }
    // `show ipsec sa [SPI] [keys]`, `show tunnels [NAME]`.
    void register_commands(mgmt::Registry& reg, const config::Config& cfg);

private:
    std::vector<TunnelState> tunnels_;
};

dp::Cipher cipher_of(const std::string& name);

}  // namespace nimbus::esp
