#include <catch2/catch.hpp>

#include "control/ike/tunnel_events.h"

using namespace nimbus::ike;

TEST_CASE("down reasons: the engine's texts map to reasons") {
    struct Case {
        const char* why;
        const char* reason;
    };
    const Case cases[] = {
        {"dead peer", "dpd"},
        {"peer not responding", "timeout"},
        {"half-open timeout", "timeout"},
        {"deleted by peer", "peer_delete"},
        {"rekeyed and deleted", "peer_delete"},
        {"deleted by us", "local_delete"},
        {"cleared by operator", "clear"},
        {"authentication failed", "auth"},
        {"cannot sign with our key", "auth"},
        {"replaced (INITIAL_CONTACT)", "replaced"},
        {"shutdown", "shutdown"},
        {"NO_PROPOSAL_CHOSEN", "negotiation"},
        {"unsupported group", "negotiation"},
        {"something new", "other"},
    };
    for (auto& c : cases) {
        INFO(c.why);
        CHECK(std::string(down_reason_name(classify_down(c.why))) == c.reason);
    }
    for (int r = 1; r < kDownReasonCount; r++) CHECK(std::string(down_reason_help(DownReason(r))) != "");
}

TEST_CASE("tunnel history: bounded ring keeps the newest events in order; flaps and RTT statistics") {
    TunnelHistory h;
    CHECK(h.events().empty());
    // 3 cycles of up/down, then enough rekeys to wrap the ring twice.
    uint64_t t = 1;
    for (int i = 0; i < 3; i++) {
        h.event(t++, EventKind::Up);
        h.event(t++, EventKind::Down, i == 2 ? DownReason::dpd : DownReason::peer_delete);
    }
    CHECK(h.flaps == 3);
    CHECK(h.last_down == DownReason::dpd);
    CHECK(h.last_down_ns == 6);
    CHECK(h.events().size() == 6);
    for (size_t i = 0; i < 2 * kEventRing + 5; i++) h.event(t++, EventKind::RekeyChild);
    auto ev = h.events();
    REQUIRE(ev.size() == kEventRing);
    CHECK(h.events_total == 6 + 2 * kEventRing + 5);
    for (size_t i = 1; i < ev.size(); i++) CHECK(ev[i].at_ns == ev[i - 1].at_ns + 1);
    CHECK(ev.back().at_ns == t - 1);
    CHECK(h.flaps == 3);  // rekeys are no flaps
    h.event(t++, EventKind::Replaced, DownReason::replaced);
    CHECK(h.flaps == 4);
    CHECK(h.events().back().kind == EventKind::Replaced);
    CHECK(h.events().size() == kEventRing);

    // RTT: last/min/max/avg against a naive reference.
    TunnelHistory r;
    const uint64_t samples[] = {500, 200, 900, 400};
    uint64_t sum = 0;
    for (uint64_t s : samples) {
        r.rtt(s);
        sum += s;
    }
    CHECK(r.rtt_last_ns == 400);
    CHECK(r.rtt_min_ns == 200);
    CHECK(r.rtt_max_ns == 900);
    CHECK(r.rtt_samples == 4);
    CHECK(r.rtt_sum_ns == sum);
}
