// The FPM server side of nimbus: learns FRR's selected routes from zebra's
// dplane_fpm_nl module for the dataplane FIB. Like ZapiSession it owns no
// socket: the control loop accepts zebra's TCP connection (127.0.0.1:2620 in
// zebra's netns), feeds the bytes in, and drains FIB changes out.
//
// Replacing the learned set on every zebra (re)connect, without a gap:
// dplane_fpm_nl replays the whole FIB on each new connection (fpm_connect ->
// lsp/nhg/rib reset -> fpm_rib_send walks every table). Each connection starts
// a new generation; a replayed route that is identical to what we hold only
// gets the new generation stamped (no FIB change), a different one becomes an
// Upsert, and nothing is removed while the replay runs. Once the replay is
// complete, every route still carrying an older generation is removed (mark
// and sweep).
//
// "Replay complete" in zebra 8.4.4: the module sends no end-of-replay marker
// (the walk's end, FNE_RIB_FINISHED, is only a debug log line), and it keeps
// sending live updates on the same stream. So the replay is declared complete
// after a quiet period with no frame (default 3 s) — longer than the 1 s the
// RIB walk pauses when zebra's output buffer is full (fpm_rib_send re-arms
// itself with a 1 s timer) — or at the latest `replay_max_ms` after the
// connect, so a busy stream cannot postpone the sweep for ever.
//
// Our own routes come back too (zebra echoes its whole FIB): routes whose
// rtm_protocol is in `drop_protocols` (default 191, RTPROT_NHRP = the route
// type nimbus injects with) are counted and dropped, adds and deletes alike.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/routing/fpm.h"

namespace nimbus::routing {

struct FpmServerConfig {
    std::vector<uint8_t> drop_protocols{191};  // zapi::rtprot_for(RouteType::Nhrp)
    uint64_t replay_quiet_ms = 3000;
    // Not complete before this long after the connect either: when zebra
    // restarted (with bgpd, as watchfrr does), its first replay holds only
    // connected routes and BGP routes come back as the sessions re-form;
    // routes learned before stay in the FIB meanwhile, as a graceful-restart
    // helper keeps a restarting speaker's routes as stale (RFC 4724 §4.2),
    // instead of leaving a gap until they are re-learned.
    // 0: the quiet period alone decides.
    uint64_t replay_min_ms = 0;
    uint64_t replay_max_ms = 300000;
    // With zebra gone, learned routes stay (like the kernel keeps zebra's
    // routes) until the next replay replaces them; > 0 flushes them after
    // that long instead.
    uint64_t disconnected_flush_ms = 0;
};

struct FpmKey {
    uint32_t table = 0;
    Prefix prefix;
    auto operator<=>(const FpmKey&) const = default;
    bool operator==(const FpmKey&) const = default;
};

struct FibChange {
    enum class Kind : uint8_t { Upsert, Remove };
    Kind kind = Kind::Upsert;
    fpm::RouteEvent route;  // Upsert: the new route; Remove: the route as last learned
};

enum class FpmPhase : uint8_t { Disconnected, Replaying, Synced };
const char* fpm_phase_name(FpmPhase p);

struct FpmCounters {
    uint64_t connects = 0;
    uint64_t disconnects = 0;
    uint64_t adds = 0;             // RTM_NEWROUTE accepted
    uint64_t dels = 0;             // RTM_DELROUTE accepted
    uint64_t filtered = 0;         // dropped by protocol (our own routes)
    uint64_t unchanged = 0;        // replayed identical to what we hold
    uint64_t upserts = 0;          // FIB changes out
    uint64_t removes = 0;          // FIB changes out (deletes + sweeps + flushes)
    uint64_t swept = 0;            // removed because a replay did not refresh them
    uint64_t replays = 0;          // replays completed
    uint64_t replays_forced = 0;   // completed by replay_max_ms rather than quiet
    uint64_t dels_coalesced = 0;   // DEL+NEW of one prefix in one frame applied as a replace
    uint64_t dels_unknown = 0;     // DEL for a route we do not hold
    uint64_t nhg_ignored = 0;      // routes by next-hop-group id only (wrong zebra config)
    uint64_t no_nexthop = 0;       // unicast routes without a next hop
    uint64_t flushed = 0;          // removed by disconnected_flush_ms
    uint64_t malformed = 0;        // framing faults + malformed netlink messages
};

class FpmServer {
public:
    explicit FpmServer(FpmServerConfig cfg = {});

    void on_connected(uint64_t now_ms);
    void on_bytes(std::span<const uint8_t> data, uint64_t now_ms);
    void on_disconnected(uint64_t now_ms);
    // Timers: declares the replay complete (and sweeps) when due; returns true
    // if it did so in this call.
    bool on_tick(uint64_t now_ms);
    // When on_tick next has something to do (0: nothing pending).
    uint64_t next_deadline_ms() const;
    // The stream lost its framing: close it; zebra reconnects and replays.
    bool want_disconnect() const { return want_disconnect_; }

    std::vector<FibChange> take_changes();
    size_t pending_changes() const { return changes_.size(); }

    FpmPhase phase() const { return phase_; }
    uint64_t generation() const { return generation_; }
    const FpmCounters& counters() const { return counters_; }
    const fpm::DecodeStats& decoder_stats() const { return decoder_.stats(); }
    const std::string& last_error() const { return last_error_; }
    size_t route_count() const { return routes_.size(); }
    const fpm::RouteEvent* route(uint32_t table, const Prefix& p) const;
    bool filtered(const fpm::RouteEvent& ev) const;

    template <class F>
    void for_each_route(F&& fn) const {
        for (const auto& [k, l] : routes_) fn(l.route);
    }

private:
    struct Learned {
        fpm::RouteEvent route;
        uint64_t generation = 0;
    };

    void apply_frame(const std::vector<fpm::RouteEvent>& evs);
    void apply_add(const fpm::RouteEvent& ev);
    void apply_del(const fpm::RouteEvent& ev);
    bool usable(const fpm::RouteEvent& ev);
    void sweep();
    void remove_all(uint64_t* counter);

    FpmServerConfig cfg_;
    FpmPhase phase_ = FpmPhase::Disconnected;
    uint64_t generation_ = 0;
    uint64_t replay_start_ms_ = 0;
    uint64_t last_rx_ms_ = 0;
    uint64_t disconnected_at_ms_ = 0;
    bool flushed_ = true;
    bool want_disconnect_ = false;
    uint64_t malformed_seen_ = 0;
    FpmCounters counters_;
    std::string last_error_;
    std::map<FpmKey, Learned> routes_;
    std::vector<FibChange> changes_;
    fpm::StreamDecoder decoder_;
};

}  // namespace nimbus::routing
