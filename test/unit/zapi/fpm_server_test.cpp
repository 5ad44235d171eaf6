// FpmServer: filtering of our own routes, replace semantics, and the
// mark-and-sweep that swaps the learned set on every zebra reconnect without
// a forwarding gap.
#include <catch2/catch.hpp>

#include <random>

#include "control/routing/fpm_server.h"
#include "src/common/log.h"
#include "test/unit/zapi/nl_build.h"

using namespace nimbus;
using namespace nimbus::routing;
using nimbus::test::Nl;
using nimbus::test::route_frame;

namespace {

const bool quiet = [] {
    log::set_level(log::Level::Error);
    return true;
}();

Prefix P(const char* s) { return *Prefix::parse(s); }

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// DEL + NEW of one prefix in one frame, the way zebra sends an update.
std::vector<uint8_t> update_frame(const char* prefix, uint8_t old_proto, uint8_t new_proto,
                                  const char* gw, uint32_t oif) {
    auto p = *Prefix::parse(prefix);
    auto dst = std::vector<uint8_t>(p.addr.b.begin(), p.addr.b.begin() + 4);
    Nl n;
    n.begin(fpm::nl::RTM_DELROUTE, 2, p.len, old_proto, 0);
    n.attr(fpm::nl::RTA_DST, dst);
    n.end();
    n.begin(fpm::nl::RTM_NEWROUTE, 2, p.len, new_proto, 1);
    n.attr(fpm::nl::RTA_DST, dst);
    n.attr(fpm::nl::RTA_GATEWAY, Nl::addr(gw));
    n.attr_u32(fpm::nl::RTA_OIF, oif);
    n.end();
    return n.frame();
}

std::string summary(const std::vector<FibChange>& cs) {
    std::string s;
    for (const auto& c : cs)
    {
        s += c.kind == FibChange::Kind::Upsert ? '+' : '-';
        s += c.route.prefix.str();
        s += ' ';
    }
    return s;
}

}  // namespace

TEST_CASE("fpm server: learns, replaces, withdraws; drops our own routes", "[zapi]") {
    FpmServer s;
    s.on_connected(0);
    CHECK(s.phase() == FpmPhase::Replaying);
    s.on_bytes(cat({route_frame(true, "198.51.100.0/24", 186, "192.0.2.2", 2),
                    route_frame(true, "10.77.0.0/24", 191, nullptr, 0, 6),  // our NHRP blackhole
                    route_frame(true, "192.0.2.0/24", 2, nullptr, 2)}),
               10);
    CHECK(summary(s.take_changes()) == "+198.51.100.0/24 +192.0.2.0/24 ");
    CHECK(s.counters().filtered == 1);
    CHECK(s.route(254, P("10.77.0.0/24")) == nullptr);
    REQUIRE(s.route(254, P("198.51.100.0/24")));
    CHECK(s.route(254, P("198.51.100.0/24"))->nexthops[0].ifindex == 2);

    // The same route again changes nothing; a new next hop replaces it.
    s.on_bytes(route_frame(true, "198.51.100.0/24", 186, "192.0.2.2", 2), 20);
    CHECK(s.take_changes().empty());
    CHECK(s.counters().unchanged == 1);
    s.on_bytes(route_frame(true, "198.51.100.0/24", 186, "192.0.2.3", 2), 30);
    auto c = s.take_changes();
    REQUIRE(c.size() == 1);
    CHECK(c[0].kind == FibChange::Kind::Upsert);
    CHECK(c[0].route.nexthops[0].gateway == *IpAddr::parse("192.0.2.3"));

    // Withdrawals: ours are filtered, unknown ones counted.
    s.on_bytes(route_frame(false, "10.77.0.0/24", 191), 40);
    s.on_bytes(route_frame(false, "203.0.113.0/24", 186), 40);
    s.on_bytes(route_frame(false, "198.51.100.0/24", 186), 40);
    c = s.take_changes();
    REQUIRE(c.size() == 1);
    CHECK(c[0].kind == FibChange::Kind::Remove);
    CHECK(c[0].route.prefix == P("198.51.100.0/24"));
    CHECK(c[0].route.nexthops[0].gateway == *IpAddr::parse("192.0.2.3"));  // as last learned
    CHECK(s.counters().filtered == 2);
    CHECK(s.counters().dels_unknown == 1);
    CHECK(s.route_count() == 1);

    // Tables are kept apart: same prefix, another VRF's table.
    s.on_bytes(route_frame(true, "192.0.2.0/24", 186, "10.0.0.1", 9, 1, 1001), 50);
    CHECK(s.route_count() == 2);
    CHECK(s.route(1001, P("192.0.2.0/24"))->protocol == 186);
    CHECK(s.route(254, P("192.0.2.0/24"))->protocol == 2);
}

TEST_CASE("fpm server: an update (DEL+NEW in one frame) never leaves a gap", "[zapi]") {
    FpmServer s;
    s.on_connected(0);
    s.on_bytes(route_frame(true, "198.51.100.0/24", 186, "192.0.2.2", 2), 0);
    s.take_changes();
    s.on_bytes(update_frame("198.51.100.0/24", 186, 186, "192.0.2.9", 2), 5);
    auto c = s.take_changes();
    REQUIRE(c.size() == 1);
    CHECK(c[0].kind == FibChange::Kind::Upsert);
    CHECK(s.counters().dels_coalesced == 1);
    // Our own route takes the prefix over: DEL(bgp)+NEW(nhrp). The NEW is
    // dropped, so the DEL must remove the learned BGP route.
    s.on_bytes(update_frame("198.51.100.0/24", 186, 191, "192.0.2.9", 2), 6);
    c = s.take_changes();
    REQUIRE(c.size() == 1);
    CHECK(c[0].kind == FibChange::Kind::Remove);
    CHECK(s.route_count() == 0);
    // ...and back: DEL(nhrp) is ours (dropped), NEW(bgp) comes in.
    s.on_bytes(update_frame("198.51.100.0/24", 191, 186, "192.0.2.9", 2), 7);
    c = s.take_changes();
    REQUIRE(c.size() == 1);
    CHECK(c[0].kind == FibChange::Kind::Upsert);
    // The DEL+NEW frame captured from zebra 8.4.4 (10.81.0.0/24, both nhrp): all ours.
    auto cap = from_hex(
        "01 01 00 5c 2c 00 00 00 19 00 01 04 00 00 00 00 08 eb 58 d7 02 18 00 00 fe bf 00 00 00 00 "
        "00 00 08 00 01 00 0a 51 00 00 08 00 06 00 14 00 00 00 2c 00 00 00 18 00 01 05 00 00 00 00 "
        "08 eb 58 d7 02 18 00 00 fe bf 00 06 00 00 00 00 08 00 01 00 0a 51 00 00 08 00 06 00 14 00 "
        "00 00");
    uint64_t f = s.counters().filtered;
    s.on_bytes(cap, 8);
    CHECK(s.counters().filtered == f + 2);
    CHECK(s.take_changes().empty());
}

TEST_CASE("fpm server: mark-and-sweep across a zebra reconnect", "[zapi]") {
    FpmServerConfig cfg;
    cfg.replay_quiet_ms = 3000;
    cfg.replay_max_ms = 60000;
    FpmServer s(cfg);
    s.on_connected(0);
    s.on_bytes(cat({route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2),
                    route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2),
                    route_frame(true, "10.3.0.0/16", 186, "192.0.2.2", 2)}),
               100);
    CHECK(s.on_tick(3099) == false);
    CHECK(s.next_deadline_ms() == 3100);
    CHECK(s.on_tick(3100) == true);  // quiet for 3 s: replay 1 complete
    CHECK(s.phase() == FpmPhase::Synced);
    CHECK(s.next_deadline_ms() == 0);
    CHECK(summary(s.take_changes()) == "+10.1.0.0/16 +10.2.0.0/16 +10.3.0.0/16 ");

    // zebra goes away: nothing is removed while it is gone.
    s.on_disconnected(5000);
    CHECK(s.on_tick(100000) == false);
    CHECK(s.take_changes().empty());
    CHECK(s.route_count() == 3);

    // zebra comes back and replays: 10.1 unchanged, 10.2 with a new next hop,
    // 10.4 new, 10.3 not replayed (withdrawn while we were apart).
    s.on_connected(200000);
    CHECK(s.generation() == 2);
    s.on_bytes(route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2), 200010);
    s.on_bytes(route_frame(true, "10.2.0.0/16", 186, "192.0.2.7", 2), 201000);
    // The RIB walk pauses for 1 s when zebra's buffer is full: not the end yet.
    s.on_tick(202500);
    CHECK(s.phase() == FpmPhase::Replaying);
    s.on_bytes(route_frame(true, "10.4.0.0/16", 186, "192.0.2.2", 2), 202600);
    // During the replay nothing is removed: 10.3 still forwards.
    CHECK(summary(s.take_changes()) == "+10.2.0.0/16 +10.4.0.0/16 ");
    CHECK(s.route(254, P("10.3.0.0/16")));
    CHECK(s.on_tick(205599) == false);
    CHECK(s.on_tick(205600) == true);
    CHECK(summary(s.take_changes()) == "-10.3.0.0/16 ");
    CHECK(s.counters().swept == 1);
    CHECK(s.counters().unchanged == 1);
    CHECK(s.route_count() == 3);
    CHECK(s.counters().replays == 2);
    CHECK(s.counters().replays_forced == 0);
}

TEST_CASE("fpm server: after a zebra restart, learned routes are held until replay_min_ms", "[zapi]") {
    FpmServerConfig cfg;
    cfg.replay_quiet_ms = 3000;
    cfg.replay_min_ms = 10000;
    FpmServer s(cfg);
    s.on_connected(0);
    s.on_bytes(cat({route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2),
                    route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2)}),
               100);
    CHECK(s.on_tick(3100) == false);  // quiet, but not 10 s since the connect
    CHECK(s.next_deadline_ms() == 10000);
    CHECK(s.on_tick(10000) == true);
    s.take_changes();
    // zebra and bgpd restart: the first replay has no BGP routes at all; they
    // come back 5 s later as the sessions re-form. Nothing leaves the FIB in
    // between, and what never comes back is swept after the hold.
    s.on_disconnected(20000);
    s.on_connected(30000);
    CHECK(s.on_tick(33000) == false);
    CHECK(s.take_changes().empty());
    s.on_bytes(route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2), 35000);
    CHECK(s.on_tick(38000) == false);  // quiet since 35000, hold until 40000
    CHECK(s.next_deadline_ms() == 40000);
    CHECK(s.on_tick(40000) == true);
    CHECK(summary(s.take_changes()) == "-10.2.0.0/16 ");
    // A frame after the hold: the quiet period decides again.
    s.on_disconnected(50000);
    s.on_connected(60000);
    s.on_bytes(route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2), 69000);
    CHECK(s.on_tick(71999) == false);
    CHECK(s.next_deadline_ms() == 72000);
    CHECK(s.on_tick(72000) == true);
}

TEST_CASE("fpm server: an interrupted replay, and a replay that never goes quiet", "[zapi]") {
    FpmServerConfig cfg;
    cfg.replay_quiet_ms = 1000;
    cfg.replay_max_ms = 10000;
    FpmServer s(cfg);
    s.on_connected(0);
    s.on_bytes(cat({route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2),
                    route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2)}),
               0);
    s.on_tick(1000);
    s.take_changes();
    // Generation 2 starts, refreshes 10.1 only, and drops before it is done.
    s.on_connected(5000);
    s.on_bytes(route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2), 5001);
    s.on_disconnected(5002);
    CHECK(s.on_tick(9000) == false);  // no sweep for an unfinished replay
    CHECK(s.route_count() == 2);
    // Generation 3 replays both: nothing is lost.
    s.on_connected(9000);
    s.on_bytes(cat({route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2),
                    route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2)}),
               9001);
    // Live updates keep the stream busy for ever: the sweep comes at replay_max_ms.
    uint64_t t = 9001;
    for (; t < 9000 + 10000; t += 500) {
        s.on_bytes(route_frame(true, "10.9.0.0/16", 186, t % 1000 ? "192.0.2.2" : "192.0.2.3", 2),
                   t);
        CHECK(s.on_tick(t) == false);
    }
    CHECK(s.on_tick(19000) == true);
    CHECK(s.counters().replays_forced == 1);
    CHECK(s.route_count() == 3);
    CHECK(s.counters().swept == 0);
}

TEST_CASE("fpm server: next-hop-group mode, flush while away, framing faults", "[zapi]") {
    SECTION("routes by NHG id only are refused with a hint") {
        FpmServer s;
        s.on_connected(0);
        Nl n;
        n.begin(fpm::nl::RTM_NEWROUTE, 2, 24, 186, 1);
        n.attr(fpm::nl::RTA_DST, Nl::addr("198.51.100.0"));
        n.attr_u32(fpm::nl::RTA_NH_ID, 57);
        n.end();
        s.on_bytes(n.frame(), 0);
        CHECK(s.route_count() == 0);
        CHECK(s.counters().nhg_ignored == 1);
        CHECK(s.last_error().find("no fpm use-next-hop-groups") != std::string::npos);
        // A unicast route with nothing at all.
        Nl m;
        m.begin(fpm::nl::RTM_NEWROUTE, 2, 24, 186, 1);
        m.attr(fpm::nl::RTA_DST, Nl::addr("198.51.100.0"));
        m.end();
        s.on_bytes(m.frame(), 0);
        CHECK(s.counters().no_nexthop == 1);
        // Other protocols' blackholes are kept (the FIB decides what to do).
        s.on_bytes(route_frame(true, "203.0.113.0/24", 196, nullptr, 0, 6), 0);
        REQUIRE(s.route(254, P("203.0.113.0/24")));
        CHECK(s.route(254, P("203.0.113.0/24"))->is_blackhole());
    }
    SECTION("disconnected_flush_ms") {
        FpmServerConfig cfg;
        cfg.disconnected_flush_ms = 30000;
        FpmServer s(cfg);
        s.on_connected(0);
        s.on_bytes(route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2), 0);
        s.take_changes();
        s.on_disconnected(1000);
        CHECK(s.next_deadline_ms() == 31000);
        s.on_tick(30999);
        CHECK(s.route_count() == 1);
        s.on_tick(31000);
        CHECK(s.route_count() == 0);
        CHECK(summary(s.take_changes()) == "-10.1.0.0/16 ");
        CHECK(s.counters().flushed == 1);
        s.on_tick(90000);  // once
        CHECK(s.take_changes().empty());
    }
    SECTION("framing lost: count, stop, ask for a reconnect") {
        FpmServer s;
        s.on_connected(0);
        s.on_bytes(cat({route_frame(true, "10.1.0.0/16", 186, "192.0.2.2", 2),
                        from_hex("07 01 00 08 00 00 00 00"),
                        route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2)}),
                   0);
        CHECK(s.route_count() == 1);
        CHECK(s.want_disconnect());
        CHECK(s.counters().malformed == 1);
        s.on_disconnected(1);
        CHECK_FALSE(s.want_disconnect());
        s.on_connected(2);
        s.on_bytes(route_frame(true, "10.2.0.0/16", 186, "192.0.2.2", 2), 3);
        CHECK(s.route_count() == 2);
    }
    SECTION("a malformed message is dropped alone") {
        FpmServer s;
        s.on_connected(0);
        Nl n;
        n.begin(fpm::nl::RTM_NEWROUTE, 2, 24, 186, 1);
        n.attr(fpm::nl::RTA_DST, {1, 2, 3});  // 3-byte address
        n.end();
        n.begin(fpm::nl::RTM_NEWROUTE, 2, 16, 186, 1);
        n.attr(fpm::nl::RTA_DST, Nl::addr("10.5.0.0"));
        n.attr_u32(fpm::nl::RTA_OIF, 3);
        n.end();
        s.on_bytes(n.frame(), 0);
        CHECK(s.route_count() == 1);
        CHECK(s.counters().malformed == 1);
        CHECK_FALSE(s.want_disconnect());
    }
}

TEST_CASE("fpm server: random replays against a naive model", "[zapi]") {
    // Model: after each completed replay the learned set is exactly what that
    // replay (plus live updates since it started) said; between replays it
    // follows the updates. Checked through the stream of FIB changes.
    std::mt19937 rng(77);
    for (int round = 0; round < 40; round++) {
        FpmServerConfig cfg;
        cfg.replay_quiet_ms = 100;
        FpmServer s(cfg);
        std::map<std::pair<uint32_t, Prefix>, std::string> fib;  // applied changes
        std::map<std::pair<uint32_t, Prefix>, std::string> zebra;  // zebra's FIB (non-nhrp)
        // During a replay zebra only adds; a Remove would be a forwarding gap.
        auto apply = [&](bool removes_allowed) {
            for (auto& c : s.take_changes()) {
                auto k = std::make_pair(c.route.table, c.route.prefix);
                if (c.kind == FibChange::Kind::Upsert) {
                    fib[k] = c.route.nexthops[0].gateway->str();
                } else {
                    CHECK(removes_allowed);
                    CHECK(fib.erase(k) == 1);
                }
            }
        };
        uint64_t now = 0;
        for (int gen = 0; gen < 6; gen++) {
            // zebra's FIB changes while we are apart.
            for (int i = 0; i < 20; i++) {
                char p[32], gw[32];
                snprintf(p, sizeof p, "10.%u.0.0/16", unsigned(rng() % 30));
                snprintf(gw, sizeof gw, "192.0.2.%u", unsigned(1 + rng() % 3));
                if (rng() % 3) zebra[{254, P(p)}] = gw;
                else zebra.erase({254, P(p)});
            }
            s.on_connected(now);
            std::vector<uint8_t> replay;
            for (const auto& [k, gw] : zebra) {
                auto f = route_frame(true, k.second.str().c_str(), 186, gw.c_str(), 2);
                replay.insert(replay.end(), f.begin(), f.end());
            }
            // Interleave our own routes, then feed in random chunks.
            auto own = route_frame(true, "10.200.0.0/24", 191, nullptr, 0, 6);
            replay.insert(replay.begin(), own.begin(), own.end());
            size_t off = 0;
            while (off < replay.size()) {
                size_t n = std::min<size_t>(replay.size() - off, 1 + rng() % 300);
                s.on_bytes(std::span<const uint8_t>(replay).subspan(off, n), ++now);
                CHECK(s.phase() == FpmPhase::Replaying);
                apply(false);
                off += n;
            }
            now += 100;
            REQUIRE(s.on_tick(now));
            apply(true);
            CHECK(fib == zebra);
            CHECK(s.route_count() == zebra.size());
            if (rng() % 2) s.on_disconnected(now);
            now += 1000;
        }
    }
}
