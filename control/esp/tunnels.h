// Static ESP tunnels (`manual_sas:`) on the control thread: installs them in
// the dataplane (keys expanded there, once), adds each allowed prefix to the
// RIB as a tunnel route in the tunnel's VRF (so the same table sends traffic
// into the tunnel and checks decrypted sources: cryptokey routing), logs the
// workers' lifetime events, and registers `show ipsec sa` / `show tunnels`.
// IKE will drive the same dataplane calls with negotiated SAs.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/config.h"
#include "control/esp/tunnel_view.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"
#include "control/routing/rib.h"
#include "dataplane/api.h"

namespace nimbus::control {
class Bridge;
}

namespace nimbus::esp {

struct TunnelState {
    std::string name;
    dp::TunnelId id = dp::kNoTunnel;
    int vrf = 0;
    std::vector<Prefix> allowed;
    uint64_t since_s = 0;  // wall clock when installed (its uptime)
};

// A tunnel another feature manages (IKE): `show tunnels` lists it next to
// the static ones, with its state.
struct DynamicTunnel {
    uint64_t id = 0;                  // the feature's id (`clear tunnel ID`)
    std::string cloud, name, state;   // state: up, connecting, down
    uint64_t uptime_s = 0;
    double rtt_ms = -1;               // last liveness round trip, -1: none yet
    uint32_t child_rekeys = 0, ike_rekeys = 0;
    std::vector<std::string> paths, prefixes;
    std::string peer;                 // remote address while up
    double rtt_min_ms = -1, rtt_avg_ms = -1, rtt_max_ms = -1;
    uint64_t rtt_samples = 0;
    uint32_t flaps = 0;
    std::string last_down, last_down_detail;  // reason name and the engine's text
    int64_t last_down_age_s = -1;
    dp::TunnelId dp = dp::kNoTunnel;  // while it has SAs in the dataplane
};

// What a row's JSON needs beyond TunnelRow, copied on the control thread so
// that the JSON can be built on the reply's writer thread (row_json).
struct RowSource {
    dp::TunnelInfo ti;                 // static tunnels; IKE ones while they have SAs
    bool live = false;                 // ti is valid
    std::array<uint64_t, 8> drops{};   // the SAs' drop counters by kind
    std::string vrf, underlay_vrf;     // names
    std::shared_ptr<const DynamicTunnel> ike;  // IKE rows (a pointer: static rows are most rows, 100,000 of them)
};
nlohmann::json row_json(const TunnelRow& r, const RowSource& s);

// An SA as `show ipsec sa` lists it, with its tunnel's name.
using SaRow = std::pair<dp::SaInfo, std::string>;
struct SaSlice : SliceHead {
    std::vector<SaRow> sas;
};

// IKE's tunnels as `show tunnels`, its summary and the metrics see them;
// the daemon implements it over ike::Engine. Called on the control thread.
class IkeTunnels {
public:
    // One tunnel, as much as a metrics scrape needs (no row, no copies).
    struct Brief {
        const std::string& cloud;
        const std::string& name;
        const char* state;  // up, connecting, down
        double rtt_ms;      // -1: no sample yet
        uint32_t flaps;
        dp::TunnelId dp;    // while it has SAs in the dataplane
    };
    virtual ~IkeTunnels() = default;
    // At most n tunnels with ids above `after`, in id order, so that listings
    // take them a slice at a time. Ids start at 1 and only grow: the engine
    // lives as long as the daemon (a reload changes its policy in place).
    virtual std::vector<DynamicTunnel> list(uint64_t after, size_t n) const = 0;
    // Counts per cloud: up, connecting, down.
    virtual std::map<std::string, std::array<uint64_t, 3>> counts() const = 0;
    virtual void each(const std::function<void(const Brief&)>& fn) const = 0;
    // The ids of the tunnels with that site name.
    virtual std::vector<uint64_t> named(const std::string& name) const = 0;
    // Handshake rates and downs by reason.
    virtual SummaryExtra summary_extra() const = 0;
};

class Tunnels {
public:
    // IKE's tunnels (none while unset); `ike` outlives the commands.
    void set_ike(const IkeTunnels* ike) { ike_ = ike; }
    // Static tunnels are up since they were installed, or since the
    // dataplane started for those installed at bring-up.
    void set_started(uint64_t wall_s) { started_at_ = wall_s; }
    // Installs every tunnel of cfg.manual_sas and their routes (the caller
    // commits the RIB). On failure: *err names the config line; what was
    // installed stays (the daemon exits anyway).
    bool install(const config::Config& cfg, routing::Rib& rib, std::string* err);
    void remove_all(routing::Rib& rib);
    // A config transaction: removes the tunnels named in `del`, installs
    // those in `add` from `to` (a changed tunnel is in both), commits the
    // RIB. On failure, `from` is restored and *err says why.
    bool apply(const config::Config& from, const config::Config& to, const std::vector<std::string>& del,
               const std::vector<std::string>& add, routing::Rib& rib, std::string* err);
    // Drains the workers' SA events (soft / hard lifetime, exhausted
    // sequence numbers) and logs them; rekeying arrives with IKE.
    void poll_events();
    std::string name(dp::TunnelId id) const;
    // The dataplane tunnel a word names, as `show tunnels` shows it: a
    // tunnel's name, "sN" (static tunnel N) or N (IKE tunnel N, while it
    // has SAs in the dataplane). kNoTunnel if none.
    dp::TunnelId resolve(const std::string& word) const;
    const std::vector<TunnelState>& tunnels() const { return tunnels_; }
    // `show ipsec sa [SPI] [keys]`, `show tunnels [filters] | summary | NAME`.
    // `show tunnels [filters]` and `show ipsec sa [SPI]` gather their rows in
    // slices of kSliceTunnels tunnels through `bridge`, each a callback of its
    // own on the control thread, from the reply's writer thread (the table or
    // the JSON is built there).
    void register_commands(mgmt::Registry& reg, const config::Config& cfg, control::Bridge& bridge);
    static constexpr size_t kSliceTunnels = 1000;
    // The tunnels a word names (name, or ID as `show tunnels` shows it), with
    // copies of what each row's full JSON object is built from (row_json).
    std::vector<TunnelRow> named_rows(const config::Config& cfg, const std::string& word,
                                      std::vector<RowSource>* src) const;
    // One slice of `show tunnels` for collect_slices (tunnel_view.h), on the
    // control thread: the rows of up to n static tunnels from `from`, then,
    // once they are done, of up to n IKE tunnels at a time; with `with_src`,
    // each row's RowSource.
    RowSlice slice(const config::Config& cfg, const SliceCursor& from, size_t n, bool with_src) const;
    // The same for `show ipsec sa`: the SAs of those tunnels (IKE ones while
    // they have SAs in the dataplane); with `spi`, only the SAs with that SPI.
    SaSlice sa_slice(const SliceCursor& from, size_t n, std::optional<uint32_t> spi) const;
    // Prometheus: nimbus_cloud_tunnels{cloud,state} and per-cloud traffic
    // always; nimbus_tunnel_up{cloud,site} ... when enabled.
    void register_metrics(mgmt::Metrics& m, const config::Config& cfg);

private:
    // A static tunnel's row (and what its JSON is built from); false if the
    // dataplane no longer has it.
    bool static_row(const config::Config& cfg, const TunnelState& t, TunnelRow* r, RowSource* src) const;
    void dynamic_rows(const config::Config& cfg, std::vector<DynamicTunnel>&& dyn, std::vector<TunnelRow>& v,
                      const std::function<void(RowSource&&)>& src) const;
    // The IKE tunnels a word names: by id or by site name, without listing all.
    std::vector<DynamicTunnel> dynamic_named(const std::string& word) const;
    mgmt::Result sliced_listing(const config::Config& cfg, const TunnelFilter& f, bool json_out) const;
    template <class Slice, class OnStatic, class OnIke>
    Slice cut(const SliceCursor& from, size_t n, OnStatic on_static, OnIke on_ike) const;
    // Runs `f` (returning a slice) on the control thread through the bridge;
    // a slice it did not run (stopping, timed out) has `ran` false.
    template <class S, class F>
    S on_control(F f) const;
    bool install_one(const config::Config& cfg, const config::ManualTunnel& t, routing::Rib& rib, std::string* err);
    void remove(const std::vector<std::string>& names, routing::Rib& rib);

    std::vector<TunnelState> tunnels_;
    uint64_t gen_ = 0;  // bumped whenever tunnels_ changes (a listing in slices starts over)
    control::Bridge* bridge_ = nullptr;
    // id -> name of tunnels_: `show ip route` names the tunnel of each of
    // 100,000 routes.
    std::unordered_map<dp::TunnelId, std::string> names_;
    const IkeTunnels* ike_ = nullptr;
    uint64_t started_at_ = 0;
};

dp::Cipher cipher_of(const std::string& name);

}  // namespace nimbus::esp
