// What happened to a tunnel, for operators: its liveness round trips
// (last, min, average, max), how often it went down and why, and a short
// history of events with timestamps (`show tunnel ID events`). Plain data
// the engine updates on the control thread; bounded per tunnel so 100k
// tunnels stay cheap (a ring of kEventRing compact entries, allocated on the
// first event).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nimbus::ike {

enum class EventKind : uint8_t { Up, Down, ConnectFailed, RekeyChild, RekeyIke, PathChange, Replaced };

// Why a tunnel went down (or a connection attempt ended).
#define NIMBUS_DOWN_REASONS(X)                                                    \
    X(none, "")                                                                   \
    X(dpd, "liveness checks unanswered (dead peer detection)")                    \
    X(timeout, "a request got no answer after all retransmissions")               \
    X(peer_delete, "the peer sent DELETE for the IKE SA")                         \
    X(local_delete, "we deleted the IKE SA")                                      \
    X(clear, "cleared by the operator (clear tunnel)")                            \
    X(config, "site or initiate entry removed from the configuration")            \
    X(auth, "authentication failed")                                              \
    X(negotiation, "no proposal, bad key exchange or another IKE_SA_INIT failure") \
    X(replaced, "the peer reconnected (INITIAL_CONTACT)")                         \
    X(no_child, "the last child SA was deleted")                                  \
    X(dataplane, "the dataplane could not take the tunnel's SAs (tables full, no memory)") \
    X(shutdown, "nimbusd stopped")                                                \
    X(other, "another reason (see the detail)")

enum class DownReason : uint8_t {
#define NIMBUS_X(n, d) n,
    NIMBUS_DOWN_REASONS(NIMBUS_X)
#undef NIMBUS_X
        Count
};
inline constexpr int kDownReasonCount = int(DownReason::Count);

// "dpd", "peer_delete", ... (the Prometheus label and JSON value).
const char* down_reason_name(DownReason r);
const char* down_reason_help(DownReason r);
const char* event_kind_name(EventKind k);
// Maps the engine's destroy() texts ("dead peer", "deleted by peer", ...)
// to a reason.
DownReason classify_down(const std::string& why);

struct TunnelEvent {
    uint64_t at_ns = 0;  // engine clock
    EventKind kind = EventKind::Up;
    DownReason reason = DownReason::none;
};

inline constexpr size_t kEventRing = 32;

struct TunnelHistory {
    // Liveness round trips (RFC 7296 §2.4 INFORMATIONAL exchanges; Karn's
    // rule applied by the caller: retransmitted probes give no sample).
    uint64_t rtt_last_ns = 0, rtt_min_ns = 0, rtt_max_ns = 0, rtt_sum_ns = 0;
    uint64_t rtt_samples = 0;
    uint32_t flaps = 0;                  // up -> down transitions
    DownReason last_down = DownReason::none;
    std::string last_down_detail;        // the engine's text for it
    uint64_t last_down_ns = 0;
    uint64_t events_total = 0;           // ever recorded (ring keeps the last kEventRing)
    std::vector<TunnelEvent> ring;       // circular once full

    void rtt(uint64_t ns);
    void event(uint64_t now_ns, EventKind k, DownReason r = DownReason::none);
    // Oldest first.
    std::vector<TunnelEvent> events() const;
};

}  // namespace nimbus::ike
