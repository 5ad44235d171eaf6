#include "control/ike/tunnel_events.h"

namespace nimbus::ike {

namespace {

const char* const kReasonNames[] = {
#define NIMBUS_X(n, d) #n,
    NIMBUS_DOWN_REASONS(NIMBUS_X)
#undef NIMBUS_X
};
const char* const kReasonHelp[] = {
#define NIMBUS_X(n, d) d,
    NIMBUS_DOWN_REASONS(NIMBUS_X)
#undef NIMBUS_X
};

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

const char* down_reason_name(DownReason r) {
    return int(r) < kDownReasonCount ? kReasonNames[int(r)] : "other";
}

const char* down_reason_help(DownReason r) {
    return int(r) < kDownReasonCount ? kReasonHelp[int(r)] : "";
}

const char* event_kind_name(EventKind k) {
    switch (k) {
    case EventKind::Up: return "up";
    case EventKind::Down: return "down";
    case EventKind::ConnectFailed: return "connect_failed";
    case EventKind::RekeyChild: return "rekey_child";
    case EventKind::RekeyIke: return "rekey_ike";
    case EventKind::PathChange: return "path_change";
    case EventKind::Replaced: return "replaced";
    }
    return "?";
}

DownReason classify_down(const std::string& why) {
    if (why == "dead peer") return DownReason::dpd;
    if (why == "peer not responding" || why == "half-open timeout") return DownReason::timeout;
    if (starts(why, "deleted by peer") || why == "rekeyed and deleted") return DownReason::peer_delete;
    if (why == "deleted by us" || why == "deleted") return DownReason::local_delete;
    if (why == "cleared by operator") return DownReason::clear;
    if (starts(why, "authentication failed") || why == "cannot sign with our key") return DownReason::auth;
    if (starts(why, "replaced")) return DownReason::replaced;
    if (why == "shutdown") return DownReason::shutdown;
    if (why == "no child SA") return DownReason::no_child;
    if (why == "cookie loop" || why == "key derivation" || why == "bad KE payload" ||
        starts(why, "INVALID_KE_PAYLOAD") || why == "unsupported group" || starts(why, "responder chose") ||
        starts(why, "NO_PROPOSAL_CHOSEN"))
        return DownReason::negotiation;
    return DownReason::other;
}

void TunnelHistory::rtt(uint64_t ns) {
    rtt_last_ns = ns;
    if (!rtt_samples || ns < rtt_min_ns) rtt_min_ns = ns;
    if (ns > rtt_max_ns) rtt_max_ns = ns;
    rtt_sum_ns += ns;
    rtt_samples++;
}

void TunnelHistory::event(uint64_t now_ns, EventKind k, DownReason r) {
    TunnelEvent e{now_ns, k, r};
    if (ring.size() < kEventRing) ring.push_back(e);
    else ring[events_total % kEventRing] = e;
    events_total++;
    if (k == EventKind::Down || k == EventKind::Replaced) {
        flaps++;
        last_down = r;
        last_down_ns = now_ns;
    }
}

std::vector<TunnelEvent> TunnelHistory::events() const {
    if (ring.size() < kEventRing) return ring;
    std::vector<TunnelEvent> v;
    v.reserve(kEventRing);
    size_t start = events_total % kEventRing;
    for (size_t i = 0; i < kEventRing; i++) v.push_back(ring[(start + i) % kEventRing]);
    return v;
}

}  // namespace nimbus::ike
