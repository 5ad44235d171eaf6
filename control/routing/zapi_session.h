// The ZAPI client session that injects VPN-site prefixes into zebra, driven by
// the control thread's event loop. It owns no socket and no timer: the loop
// tells it what happened (on_connected / on_bytes / on_disconnected / on_tick)
// and moves bytes (pending_output / consume_output), so every path is testable
// without zebra.
//
// What it does, for FRR 8.4 (see reference/frr-zapi.md §4.5–4.12, §9):
//  - keeps the desired set of routes (vrf, prefix) -> tag, metric, distance,
//    each injected as a blackhole next hop with the HELLO's route type
//    (NHRP instance 0 by default, matched by `redistribute nhrp` in bgpd);
//  - on every (re)connect: HELLO, wait for CAPABILITIES (the version guard),
//    then replay ALL desired routes, at most `routes_per_pump` per pump() call;
//  - tracks each route from ROUTE_NOTIFY_OWNER: queued -> pending -> installed
//    or failed;
//  - stale routes: without GR zebra deletes every route of our (type,
//    instance) when the session closes (zserv_client_free -> rib_score_proto),
//    so a replay never meets a stale route. With `gr_stale_time_s` > 0 the
//    session registers GR per VRF (CLIENT_CAPABILITIES GR), zebra keeps the
//    routes across a disconnect, and after the replay the session sends
//    ROUTE_UPDATE_COMPLETE, on which zebra 8.4.4 deletes every route of ours
//    that was not re-sent (zebra_gr.c: re->uptime < restart_time). That
//    compare has one-second granularity: a route added in the same second as
//    the disconnect survives the purge (seen live). Routes this process
//    deleted while disconnected are therefore also deleted explicitly after
//    the replay; after a restart of nimbus itself only the purge remains.
#pragma once


#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "control/routing/zapi.h"
#include "src/common/addr.h"
#include "src/common/bytes.h"

namespace nimbus::routing {

struct ZapiSessionConfig {
    zapi::Hello hello{};             // NHRP, instance 0, receive_notify (without it routes stay pending)
    uint32_t gr_stale_time_s = 0;    // 0: no GR (zebra flushes our routes when we go)
    size_t routes_per_pump = 256;    // route messages per pump() call
    size_t max_pending_output = 256 * 1024;  // pump() adds nothing while this much is unsent
    uint64_t backoff_initial_ms = 100;
    uint64_t backoff_max_ms = 30000;
    uint64_t handshake_timeout_ms = 10000;  // HELLO -> CAPABILITIES
    // Subscribe to our own route type (REDISTRIBUTE_ADD) after the handshake
    // and delete whatever zebra holds of it that is not in the desired set:
    // routes zebra 8.4 read back from the kernel at start-up and failed to
    // sweep (its start-up sweep compares whole seconds), or that a GR purge
    // missed (same-second rule above). Needs (type, instance) to be ours
    // alone, as the flush on disconnect already does.
    bool purge_unknown = false;
    // Optional version string from outside the protocol (`zebra --version`):
    // an incompatible one disables injection before anything is sent.
    std::string frr_version;
};

enum class RouteState : uint8_t {
    Queued,     // desired, not sent on this connection yet
    Pending,    // ROUTE_ADD sent, no answer yet
    Installed,  // ROUTE_NOTIFY_OWNER INSTALLED
    Failed,     // FAIL_INSTALL, BETTER_ADMIN_WON, removed by zebra, or not encodable
};
inline constexpr int kRouteStates = 4;
const char* route_state_name(RouteState s);

enum class ZapiPhase : uint8_t {
    Disconnected,
    AwaitCapabilities,  // HELLO sent; nothing else is sent until zebra proves its version
    Replaying,          // sending the desired set
    Synced,             // everything sent; incremental changes only
    VersionMismatch,    // injection disabled (see last_error)
};
const char* zapi_phase_name(ZapiPhase p);

struct RouteKey {
    uint32_t vrf = 0;
    Prefix prefix;
    auto operator<=>(const RouteKey&) const = default;
    bool operator==(const RouteKey&) const = default;
};

struct RouteStatus {
    uint32_t tag = 0;
    uint32_t metric = 0;
    uint8_t distance = 0;
    RouteState state = RouteState::Queued;
    std::optional<zapi::Note> last_note;
};

struct ZapiCounters {
    uint64_t connects = 0;
    uint64_t reconnects = 0;        // connects after the first
    uint64_t disconnects = 0;
    uint64_t frames_rx = 0;
    uint64_t frames_tx = 0;
    uint64_t adds_sent = 0;         // ROUTE_ADD
    uint64_t deletes_sent = 0;      // ROUTE_DELETE
    uint64_t installed = 0;         // notify INSTALLED (acks)
    uint64_t failed = 0;            // notify FAIL_INSTALL or BETTER_ADMIN_WON
    uint64_t removed = 0;           // notify REMOVED for a delete of ours
    uint64_t remove_failed = 0;     // notify REMOVE_FAIL
    uint64_t removed_unsolicited = 0;  // REMOVED nobody asked for (GR stale purge, zebra)
    uint64_t notify_unknown = 0;    // INSTALLED/FAIL for a route no longer desired
    uint64_t malformed = 0;         // framing faults + bodies that do not decode
    uint64_t zebra_errors = 0;      // ERROR messages
    uint64_t version_mismatches = 0;
    uint64_t handshake_timeouts = 0;
    uint64_t replays = 0;           // replays completed
    uint64_t update_complete_sent = 0;
    uint64_t encode_failures = 0;
    uint64_t purged = 0;            // routes of our type zebra had and we did not want: deleted
};

class ZapiSession {
public:
    explicit ZapiSession(ZapiSessionConfig cfg = {});

    // ---- the desired set (callable in any phase) ----
    // distance 0 leaves zebra's default for the route type. Returns false for
    // a prefix that cannot be injected (family/length).
    bool add_route(uint32_t vrf, const Prefix& p, uint32_t tag = 0, uint32_t metric = 0,
                   uint8_t distance = 0);
    // Returns false if the route was not in the desired set.
    bool del_route(uint32_t vrf, const Prefix& p);

    // ---- socket events, from the owner's loop (now_ms: monotonic ms) ----
    void on_connected(uint64_t now_ms);
    void on_bytes(std::span<const uint8_t> data, uint64_t now_ms);
    void on_disconnected(uint64_t now_ms);
    void on_tick(uint64_t now_ms);
    // Delay before the next connect attempt; doubles on every call up to the
    // cap and starts again from the initial value after a good handshake.
    uint64_t next_reconnect_delay_ms();

    // Queues up to routes_per_pump ROUTE_ADD/DELETE messages; returns how many.
    size_t pump();
    bool has_work() const;
    std::span<const uint8_t> pending_output() const;
    void consume_output(size_t n);
    // The connection is unusable (framing fault, handshake timeout): the owner
    // should close it, call on_disconnected() and reconnect after a delay.
    bool want_disconnect() const { return want_disconnect_; }

    // ---- state ----
    ZapiPhase phase() const { return phase_; }
    const ZapiCounters& counters() const { return counters_; }
    const std::string& last_error() const { return last_error_; }

    // Called with an interface's name when zebra reports it added or up
    // (INTERFACE_ADD / INTERFACE_UP, unsolicited in FRR 8.4), and with ""
    // once zebra accepted our HELLO. The daemon re-announces the addresses
    // of its host interfaces then: zebra 8.4 can drop an address whose
    // RTM_NEWADDR its dataplane thread reads before the main thread has
    // the RTM_NEWLINK (FRRouting/frr#13288), leaving bgpd unable to use it.
    void set_interface_hook(std::function<void(const std::string&)> f) { on_interface_ = std::move(f); }
    const std::optional<zapi::Capabilities>& capabilities() const { return caps_; }
    std::optional<RouteStatus> route(uint32_t vrf, const Prefix& p) const;
    size_t route_count() const { return routes_.size(); }
    std::array<size_t, kRouteStates> state_counts() const;
    const std::map<uint32_t, zapi::VrfAdd>& vrfs() const { return vrfs_; }
    const zapi::FrameDecoder::Stats& decoder_stats() const { return decoder_.stats(); }
    const ZapiSessionConfig& config() const { return cfg_; }

    template <class F>
    void for_each_route(F&& fn) const {
        for (const auto& [k, e] : routes_) fn(k, e.status);
    }

private:
    struct Entry {
        RouteStatus status;
        uint64_t sent_epoch = 0;  // connection on which the last ROUTE_ADD went out
        bool dirty = true;        // attributes changed since that ROUTE_ADD
    };

    void handle_frame(const zapi::Header& h, std::span<const uint8_t> body);
    void handle_handshake(const zapi::Header& h, std::span<const uint8_t> body);
    void handle_notify(const zapi::NotifyOwner& n);
    void handle_redistributed(uint32_t vrf, std::span<const uint8_t> body);
    void version_mismatch(const std::string& why);
    void interface_seen(std::span<const uint8_t> body);
    void start_replay();
    void finish_replay();
    void enqueue(const RouteKey& k);
    bool emit(const RouteKey& k);
    bool send_add(const RouteKey& k, Entry& e);
    void send_delete(const RouteKey& k);
    void register_gr(uint32_t vrf);
    bool needs_send(const Entry& e) const { return e.dirty || e.sent_epoch != epoch_; }
    bool active() const { return phase_ == ZapiPhase::Replaying || phase_ == ZapiPhase::Synced; }
    size_t out_pending() const { return out_.size() - out_head_; }
    void clear_connection_state();

    ZapiSessionConfig cfg_;
    ZapiPhase phase_ = ZapiPhase::Disconnected;
    ZapiCounters counters_;
    std::string last_error_;
    std::function<void(const std::string&)> on_interface_;
    bool version_blocked_ = false;  // by cfg_.frr_version
    bool want_disconnect_ = false;
    uint64_t handshake_deadline_ = 0;
    uint64_t backoff_ms_;
    uint64_t epoch_ = 0;  // connection number

    std::map<RouteKey, Entry> routes_;  // the desired set, ordered: replay walks it
    std::deque<RouteKey> changes_;      // keys touched since the replay started
    std::set<RouteKey> queued_;         // dedupe for changes_
    std::set<RouteKey> need_delete_;    // sent on this connection, since removed
    std::set<RouteKey> tombstones_;     // GR: sent earlier, removed while away
    std::map<RouteKey, uint32_t> deletes_in_flight_;
    bool replay_active_ = false;
    bool cursor_started_ = false;
    RouteKey cursor_;                   // last key the replay looked at
    std::set<uint32_t> gr_vrfs_;        // VRFs ever registered for GR (get COMPLETE)
    std::set<uint32_t> gr_sent_;        // VRFs registered on this connection

    std::optional<zapi::Capabilities> caps_;
    std::map<uint32_t, zapi::VrfAdd> vrfs_;
    zapi::FrameDecoder decoder_;
    ByteWriter out_;
    size_t out_head_ = 0;
};

}  // namespace nimbus::routing
