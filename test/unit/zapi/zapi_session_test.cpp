// ZapiSession: handshake and version guard, replay in batches after every
// (re)connect, per-route state from notifications, GR purge, and a random
// walk checked against a model of zebra 8.4.4's route ownership rules.
#include <catch2/catch.hpp>

#include <random>

#include <fmt/format.h>

#include "control/routing/zapi_session.h"
#include "src/common/log.h"

using namespace nimbus;
using namespace nimbus::routing;
using namespace nimbus::routing::zapi;

namespace {

// The session logs every handshake; keep the test output readable.
const bool quiet = [] {
    log::set_level(log::Level::Error);
    return true;
}();

Prefix P(const char* s) { return *Prefix::parse(s); }

struct Frame {
    Header h;
    std::vector<uint8_t> body;
};

// Takes everything the session wants to send and splits it into frames.
std::vector<Frame> drain(ZapiSession& s) {
    std::vector<Frame> out;
    FrameDecoder d;
    auto o = s.pending_output();
    d.feed(o, [&](const Header& h, std::span<const uint8_t> b) {
        out.push_back({h, {b.begin(), b.end()}});
    });
    REQUIRE_FALSE(d.failed());
    REQUIRE(d.buffered() == 0);
    s.consume_output(o.size());
    return out;
}

std::vector<uint8_t> frame(Cmd cmd, uint32_t vrf, std::vector<uint8_t> body) {
    ByteWriter w;
    w.u16(uint16_t(10 + body.size()));
    w.u8(0xfe);
    w.u8(6);
    w.u32(vrf);
    w.u16(uint16_t(cmd));
    w.bytes(body.data(), body.size());
    return w.take();
}

std::vector<uint8_t> caps_frame() {
    return frame(Cmd::Capabilities, 0, from_hex("00 00 00 00 00 00 00 01 00 00"));
}

std::vector<uint8_t> notify_frame(uint32_t vrf, const Prefix& p, Note note) {
    ByteWriter w;
    w.u32_host(uint32_t(note));
    w.u8(p.is_v4() ? 2 : 10);
    w.u8(p.len);
    w.bytes(p.addr.b.data(), p.is_v4() ? 4 : 16);
    w.u32(254);
    w.u8(p.is_v4() ? 1 : 2);
    w.u8(1);
    return frame(Cmd::RouteNotifyOwner, vrf, w.take());
}

void feed(ZapiSession& s, const std::vector<uint8_t>& bytes) { s.on_bytes(bytes, 0); }

// Connects and completes the handshake; returns the frames sent on the way.
std::vector<Frame> handshake(ZapiSession& s, uint64_t now = 0) {
    s.on_connected(now);
    auto f = drain(s);
    REQUIRE(f.size() == 1);
    REQUIRE(f[0].h.command == uint16_t(Cmd::Hello));
    feed(s, caps_frame());
    REQUIRE(s.phase() == ZapiPhase::Replaying);
    return f;
}

// Pumps until the session has nothing more to do.
std::vector<Frame> pump_all(ZapiSession& s, size_t* calls = nullptr) {
    std::vector<Frame> out;
    size_t n = 0;
    while (s.has_work()) {
        s.pump();
        n++;
        auto f = drain(s);
        out.insert(out.end(), f.begin(), f.end());
        REQUIRE(n < 100000);
    }
    if (calls) *calls = n;
    return out;
}

size_t count_cmd(const std::vector<Frame>& fs, Cmd c) {
    size_t n = 0;
    for (const auto& f : fs) n += f.h.command == uint16_t(c);
    return n;
}

}  // namespace

TEST_CASE("zapi session: HELLO first, nothing else before CAPABILITIES", "[zapi]") {
    ZapiSession s;
    s.add_route(0, P("10.77.0.0/24"), 42, 7, 150);
    CHECK(s.phase() == ZapiPhase::Disconnected);
    CHECK(s.pending_output().empty());
    CHECK(s.pump() == 0);
    s.on_connected(1000);
    CHECK(s.phase() == ZapiPhase::AwaitCapabilities);
    // Byte-for-byte the HELLO sent to zebra 8.4.4 (frr-zapi.md §4.5).
    CHECK(to_hex(s.pending_output()) ==
          to_hex(from_hex("00 13 fe 06 00 00 00 00 00 12 0c 00 00 00 00 00 00 01 00")));
    CHECK(s.pump() == 0);
    CHECK_FALSE(s.has_work());
    drain(s);
    // Unsolicited interface news before CAPABILITIES is fine.
    feed(s, frame(Cmd::InterfaceUp, 0, {1, 2, 3}));
    CHECK(s.phase() == ZapiPhase::AwaitCapabilities);
    feed(s, caps_frame());
    REQUIRE(s.capabilities());
    CHECK(s.capabilities()->multipath_num == 256);
    CHECK(s.phase() == ZapiPhase::Replaying);
    auto f = pump_all(s);
    REQUIRE(f.size() == 1);
    CHECK(f[0].h.command == uint16_t(Cmd::RouteAdd));
    auto r = decode_route(f[0].body);
    REQUIRE(r);
    CHECK(r->type == RouteType::Nhrp);
    CHECK(r->prefix == P("10.77.0.0/24"));
    CHECK(r->tag == 42);
    CHECK(r->metric == 7);
    CHECK(r->distance == 150);
    REQUIRE(r->nexthops.size() == 1);
    CHECK(r->nexthops[0].type == NexthopType::Blackhole);
    CHECK(s.phase() == ZapiPhase::Synced);
    CHECK(s.counters().replays == 1);
    CHECK(s.route(0, P("10.77.0.0/24"))->state == RouteState::Pending);
}

TEST_CASE("zapi session: replay of thousands in bounded batches", "[zapi]") {
    ZapiSessionConfig cfg;
    cfg.routes_per_pump = 100;
    ZapiSession s(cfg);
    std::set<std::pair<uint32_t, Prefix>> want;
    for (uint32_t i = 0; i < 3000; i++) {
        Prefix p(IpAddr::v4(0x0a000000u | i << 8), 24);
        uint32_t vrf = i % 3 == 0 ? 7 : 0;
        REQUIRE(s.add_route(vrf, p));
        want.insert({vrf, p});
    }
    for (uint32_t i = 0; i < 500; i++) {
        IpAddr a = *IpAddr::parse("2001:db8::");
        a.b[4] = uint8_t(i >> 8);
        a.b[5] = uint8_t(i);
        s.add_route(0, Prefix(a, 48));
        want.insert({0, Prefix(a, 48)});
    }
    handshake(s);
    std::set<std::pair<uint32_t, Prefix>> got;
    size_t calls = 0;
    while (s.has_work()) {
        size_t n = s.pump();
        calls++;
        CHECK(n <= 100);
        auto f = drain(s);
        CHECK(f.size() == n);  // no GR: only route messages
        for (const auto& fr : f) {
            REQUIRE(fr.h.command == uint16_t(Cmd::RouteAdd));
            auto r = decode_route(fr.body);
            REQUIRE(r);
            CHECK(got.insert({fr.h.vrf_id, r->prefix}).second);  // each exactly once
        }
    }
    CHECK(calls == 35);
    CHECK(got == want);
    CHECK(s.counters().adds_sent == 3500);
    CHECK(s.state_counts()[size_t(RouteState::Pending)] == 3500);

    SECTION("reconnect replays everything again, in batches") {
        s.on_disconnected(0);
        CHECK(s.state_counts()[size_t(RouteState::Queued)] == 3500);
        CHECK(s.next_reconnect_delay_ms() == 100);
        handshake(s);
        auto f = pump_all(s, &calls);
        CHECK(calls == 35);
        CHECK(count_cmd(f, Cmd::RouteAdd) == 3500);
        CHECK(count_cmd(f, Cmd::RouteDelete) == 0);
        CHECK(s.counters().reconnects == 1);
        CHECK(s.counters().replays == 2);
    }
}

TEST_CASE("zapi session: output back-pressure", "[zapi]") {
    ZapiSessionConfig cfg;
    cfg.routes_per_pump = 1000;
    cfg.max_pending_output = 360;  // ten 36-byte ROUTE_ADDs
    ZapiSession s(cfg);
    for (uint32_t i = 0; i < 50; i++) s.add_route(0, Prefix(IpAddr::v4(0x0a000000u | i << 8), 24));
    handshake(s);
    CHECK(s.pump() == 10);
    CHECK(s.pump() == 0);  // nothing consumed yet
    CHECK(s.pending_output().size() == 360);
    s.consume_output(108);  // the socket took three frames
    CHECK(s.pump() == 3);
    drain(s);
    auto rest = pump_all(s);
    CHECK(s.counters().adds_sent == 50);
}

TEST_CASE("zapi session: per-route state from ROUTE_NOTIFY_OWNER", "[zapi]") {
    ZapiSession s;
    handshake(s);
    pump_all(s);
    s.add_route(0, P("10.1.0.0/24"));
    s.add_route(0, P("10.2.0.0/24"));
    s.add_route(0, P("10.3.0.0/24"));
    s.add_route(5, P("2001:db8:5::/48"));
    auto f = pump_all(s);
    CHECK(count_cmd(f, Cmd::RouteAdd) == 4);
    CHECK(s.state_counts()[size_t(RouteState::Pending)] == 4);

    feed(s, notify_frame(0, P("10.1.0.0/24"), Note::Installed));
    feed(s, notify_frame(0, P("10.2.0.0/24"), Note::FailInstall));
    feed(s, notify_frame(0, P("10.3.0.0/24"), Note::BetterAdminWon));
    feed(s, notify_frame(5, P("2001:db8:5::/48"), Note::Installed));
    feed(s, notify_frame(0, P("2001:db8:5::/48"), Note::Installed));  // wrong VRF: not ours
    CHECK(s.route(0, P("10.1.0.0/24"))->state == RouteState::Installed);
    CHECK(s.route(0, P("10.2.0.0/24"))->state == RouteState::Failed);
    CHECK(s.route(0, P("10.3.0.0/24"))->state == RouteState::Failed);
    CHECK(s.route(0, P("10.3.0.0/24"))->last_note == Note::BetterAdminWon);
    CHECK(s.route(5, P("2001:db8:5::/48"))->state == RouteState::Installed);
    CHECK(s.counters().installed == 3);
    CHECK(s.counters().failed == 2);
    CHECK(s.counters().notify_unknown == 1);
    CHECK(s.last_error().find("10.3.0.0/24") != std::string::npos);
    // The better route goes away: zebra installs ours after all.
    feed(s, notify_frame(0, P("10.3.0.0/24"), Note::Installed));
    CHECK(s.route(0, P("10.3.0.0/24"))->state == RouteState::Installed);

    // Delete: ROUTE_DELETE out, REMOVED in.
    CHECK(s.del_route(0, P("10.1.0.0/24")));
    CHECK_FALSE(s.del_route(0, P("10.1.0.0/24")));
    f = pump_all(s);
    REQUIRE(f.size() == 1);
    CHECK(to_hex(std::span<const uint8_t>(f[0].body)) ==
          to_hex(from_hex("0c 00 00 00 00 00 00 00 00 00 00 01 02 18 0a 01 00")));
    feed(s, notify_frame(0, P("10.1.0.0/24"), Note::Removed));
    CHECK(s.counters().removed == 1);
    CHECK(s.counters().removed_unsolicited == 0);
    // A REMOVED nobody asked for marks a desired route failed.
    feed(s, notify_frame(5, P("2001:db8:5::/48"), Note::Removed));
    CHECK(s.counters().removed_unsolicited == 1);
    CHECK(s.route(5, P("2001:db8:5::/48"))->state == RouteState::Failed);
    // Garbage notify bodies are counted, not fatal.
    feed(s, frame(Cmd::RouteNotifyOwner, 0, {2, 0, 0}));
    CHECK(s.counters().malformed == 1);
    CHECK_FALSE(s.want_disconnect());
}

TEST_CASE("zapi session: zebra ERROR NO_VRF fails the routes of that VRF", "[zapi]") {
    ZapiSession s;
    s.add_route(77, P("10.99.0.0/24"));
    s.add_route(0, P("10.98.0.0/24"));
    handshake(s);
    pump_all(s);
    feed(s, frame(Cmd::Error, 77, from_hex("01 00 00 00")));  // as zebra 8.4.4 sent it live
    CHECK(s.counters().zebra_errors == 1);
    CHECK(s.route(77, P("10.99.0.0/24"))->state == RouteState::Failed);
    CHECK(s.route(0, P("10.98.0.0/24"))->state == RouteState::Pending);
    CHECK(s.last_error().find("NO_VRF") != std::string::npos);
    CHECK(s.phase() == ZapiPhase::Synced);  // after the handshake an ERROR is not a version issue
}

TEST_CASE("zapi session: changes coalesce before they are sent", "[zapi]") {
    ZapiSession s;
    handshake(s);
    pump_all(s);
    s.add_route(0, P("10.5.0.0/24"));
    s.del_route(0, P("10.5.0.0/24"));
    s.add_route(0, P("10.5.0.0/24"), 1);
    s.add_route(0, P("10.5.0.0/24"), 2);
    auto f = pump_all(s);
    REQUIRE(f.size() == 1);
    CHECK(decode_route(f[0].body)->tag == 2);
    // Same attributes again: nothing to send.
    s.add_route(0, P("10.5.0.0/24"), 2);
    CHECK(pump_all(s).empty());
    // Changed attributes: a new ADD replaces the route in zebra.
    s.add_route(0, P("10.5.0.0/24"), 3, 100);
    f = pump_all(s);
    REQUIRE(f.size() == 1);
    CHECK(decode_route(f[0].body)->metric == 100);
    // Delete then re-add before pumping: the ADD alone replaces it.
    s.del_route(0, P("10.5.0.0/24"));
    s.add_route(0, P("10.5.0.0/24"), 4);
    f = pump_all(s);
    REQUIRE(f.size() == 1);
    CHECK(f[0].h.command == uint16_t(Cmd::RouteAdd));
    // Added and removed before it ever went out: nothing at all.
    s.add_route(0, P("10.6.0.0/24"));
    s.del_route(0, P("10.6.0.0/24"));
    CHECK(pump_all(s).empty());
    // Host bits are masked, not rejected.
    CHECK(s.add_route(0, Prefix(*IpAddr::parse("10.7.0.9"), 24)));
    CHECK(s.route(0, P("10.7.0.0/24")));
}

TEST_CASE("zapi session: changes while disconnected, then reconnect without GR", "[zapi]") {
    ZapiSession s;
    s.add_route(0, P("10.1.0.0/24"));
    s.add_route(0, P("10.2.0.0/24"));
    handshake(s);
    pump_all(s);
    s.on_disconnected(0);
    CHECK(s.phase() == ZapiPhase::Disconnected);
    s.del_route(0, P("10.1.0.0/24"));
    s.add_route(0, P("10.3.0.0/24"));
    CHECK(s.pump() == 0);
    CHECK(s.pending_output().empty());
    handshake(s);
    auto f = pump_all(s);
    // zebra flushed our routes when the session closed: no deletes, just the set.
    REQUIRE(f.size() == 2);
    CHECK(count_cmd(f, Cmd::RouteAdd) == 2);
    CHECK(decode_route(f[0].body)->prefix == P("10.2.0.0/24"));
    CHECK(decode_route(f[1].body)->prefix == P("10.3.0.0/24"));
    // A notification about the old connection's route is not applied twice.
    CHECK(s.counters().update_complete_sent == 0);
}

TEST_CASE("zapi session: graceful restart registration and purge", "[zapi]") {
    ZapiSessionConfig cfg;
    cfg.gr_stale_time_s = 60;
    ZapiSession s(cfg);
    s.add_route(0, P("10.1.0.0/24"));
    s.add_route(0, P("10.2.0.0/24"));
    s.add_route(9, P("10.9.0.0/24"));
    handshake(s);
    auto f = pump_all(s);
    // GR for VRF 0 first, GR for VRF 9 before its first route, then the
    // routes, then ROUTE_UPDATE_COMPLETE for IPv4 and IPv6 of both VRFs.
    std::vector<std::string> seq;
    for (const auto& fr : f) {
        if (fr.h.command == uint16_t(Cmd::ClientCapabilities)) {
            ByteReader r(fr.body);
            uint32_t cap = r.u32();
            uint32_t a = r.u32(), b = r.u32();
            uint32_t c = r.remaining() ? r.u32() : 0;
            if (cap == 1) seq.push_back(fmt::format("GR {}s vrf {}", a, b));
            if (cap == 2) seq.push_back(fmt::format("COMPLETE afi {} safi {} vrf {}", a, b, c));
        } else {
            seq.push_back(fmt::format("{} {}", command_name(fr.h.command),
                                      decode_route(fr.body)->prefix.str()));
        }
    }
    std::vector<std::string> want = {
        "GR 60s vrf 0",       "ROUTE_ADD 10.1.0.0/24", "ROUTE_ADD 10.2.0.0/24",
        "GR 60s vrf 9",       "ROUTE_ADD 10.9.0.0/24", "COMPLETE afi 1 safi 1 vrf 0",
        "COMPLETE afi 2 safi 1 vrf 0", "COMPLETE afi 1 safi 1 vrf 9",
        "COMPLETE afi 2 safi 1 vrf 9",
    };
    CHECK(seq == want);

    SECTION("routes deleted while away get explicit deletes after the replay") {
        s.on_disconnected(0);
        s.del_route(0, P("10.2.0.0/24"));
        s.del_route(9, P("10.9.0.0/24"));
        handshake(s);
        f = pump_all(s);
        seq.clear();
        for (const auto& fr : f) seq.push_back(command_name(fr.h.command));
        // GR again for both VRFs (zebra keeps them; harmless), the one route
        // left, COMPLETE x4, then deletes for what zebra may still hold.
        std::vector<std::string> w2 = {"CLIENT_CAPABILITIES", "CLIENT_CAPABILITIES", "ROUTE_ADD",
                                       "CLIENT_CAPABILITIES", "CLIENT_CAPABILITIES",
                                       "CLIENT_CAPABILITIES", "CLIENT_CAPABILITIES", "ROUTE_DELETE",
                                       "ROUTE_DELETE"};
        CHECK(seq == w2);
        CHECK(f[7].h.vrf_id == 0);
        CHECK(f[8].h.vrf_id == 9);
        // zebra's purge and our delete both answer REMOVED: counted either way.
        feed(s, notify_frame(0, P("10.2.0.0/24"), Note::Removed));
        feed(s, notify_frame(9, P("10.9.0.0/24"), Note::Removed));
        CHECK(s.counters().removed == 2);
        // Next reconnect: nothing left to delete.
        s.on_disconnected(0);
        handshake(s);
        CHECK(count_cmd(pump_all(s), Cmd::RouteDelete) == 0);
    }
    SECTION("a route re-added while away is not deleted") {
        s.on_disconnected(0);
        s.del_route(0, P("10.2.0.0/24"));
        s.add_route(0, P("10.2.0.0/24"), 5);
        handshake(s);
        f = pump_all(s);
        CHECK(count_cmd(f, Cmd::RouteDelete) == 0);
        CHECK(count_cmd(f, Cmd::RouteAdd) == 3);
    }
}

TEST_CASE("zapi session: version guard", "[zapi]") {
    struct Case {
        const char* name;
        std::vector<uint8_t> reply;
        const char* expect_in_error;
    };
    Case cases[] = {
        {"FRR 9.1 CAPABILITIES (11-byte body)",
         frame(Cmd::Capabilities, 0, from_hex("00 00 00 00 00 00 00 01 00 00 01")), "FRR 9.1"},
        {"FRR 10.0 answers HELLO(18) with ERROR(118) INVALID_MSG_TYPE",
         frame(Cmd::Error, 0, from_hex("02 00 00 00")), "10.0"},
        {"FRR 10.2 answers with ERROR(120)",
         [] {
             auto f = frame(Cmd::Error, 0, from_hex("02 00 00 00"));
             f[9] = 120;
             return f;
         }(),
         "FRR 10.2"},
        {"CAPABILITIES cut short", frame(Cmd::Capabilities, 0, from_hex("00 00 00 00 00")),
         "5-byte body"},
        {"a redistributed route before CAPABILITIES",
         frame(Cmd::RedistributeRouteAdd, 0, from_hex("09 00 00")), "REDISTRIBUTE_ROUTE_ADD"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        ZapiSession s;
        s.add_route(0, P("10.1.0.0/24"));
        s.on_connected(0);
        drain(s);
        feed(s, c.reply);
        CHECK(s.phase() == ZapiPhase::VersionMismatch);
        CHECK(s.counters().version_mismatches == 1);
        CHECK(s.last_error().find(c.expect_in_error) != std::string::npos);
        CHECK(s.last_error().find("FRR 8.4.x (pinned to 8.4.4") != std::string::npos);
        CHECK(s.pump() == 0);
        CHECK_FALSE(s.has_work());
        CHECK(s.pending_output().empty());
        // A late CAPABILITIES does not re-enable the connection.
        feed(s, caps_frame());
        CHECK(s.phase() == ZapiPhase::VersionMismatch);
        s.add_route(0, P("10.2.0.0/24"));
        CHECK(s.pump() == 0);
        CHECK(s.pending_output().empty());
        CHECK_FALSE(s.want_disconnect());  // stay idle rather than hammer zebra
        // A new connection (zebra restarted, maybe at the right version) retries.
        s.on_disconnected(0);
        handshake(s);
        CHECK(count_cmd(pump_all(s), Cmd::RouteAdd) == 2);
    }
    SECTION("frr_version from outside") {
        ZapiSessionConfig cfg;
        cfg.frr_version = "FRRouting 10.2.1";
        ZapiSession bad(cfg);
        bad.add_route(0, P("10.1.0.0/24"));
        bad.on_connected(0);
        CHECK(bad.phase() == ZapiPhase::VersionMismatch);
        CHECK(bad.pending_output().empty());  // not even HELLO
        CHECK(bad.last_error().find("10.2.1") != std::string::npos);
        cfg.frr_version = "8.5.4-1";
        ZapiSession ok(cfg);
        ok.on_connected(0);
        CHECK(ok.phase() == ZapiPhase::AwaitCapabilities);
    }
}

TEST_CASE("zapi session: handshake timeout, framing faults, back-off", "[zapi]") {
    ZapiSessionConfig cfg;
    cfg.handshake_timeout_ms = 500;
    cfg.backoff_initial_ms = 100;
    cfg.backoff_max_ms = 1000;
    ZapiSession s(cfg);
    std::vector<uint64_t> d;
    for (int i = 0; i < 6; i++) d.push_back(s.next_reconnect_delay_ms());
    CHECK(d == std::vector<uint64_t>{100, 200, 400, 800, 1000, 1000});

    s.on_connected(10000);
    s.on_tick(10499);
    CHECK_FALSE(s.want_disconnect());
    s.on_tick(10500);
    CHECK(s.want_disconnect());
    CHECK(s.counters().handshake_timeouts == 1);
    CHECK(s.phase() == ZapiPhase::AwaitCapabilities);  // a timeout is not a version verdict
    s.on_disconnected(10500);
    CHECK_FALSE(s.want_disconnect());
    CHECK(s.next_reconnect_delay_ms() == 1000);
    handshake(s, 20000);
    CHECK(s.next_reconnect_delay_ms() == 100);  // a good handshake resets the back-off

    // Garbage from zebra: count, stop parsing, ask for a reconnect.
    pump_all(s);
    feed(s, from_hex("00 1a fe 07 00 00 00 00 00 0a"));
    CHECK(s.want_disconnect());
    CHECK(s.counters().malformed == 1);
    CHECK(s.last_error().find("bad version") != std::string::npos);
    feed(s, notify_frame(0, P("10.1.0.0/24"), Note::Installed));  // dropped
    CHECK(s.counters().installed == 0);
    s.on_disconnected(0);
    handshake(s);
    CHECK_FALSE(s.want_disconnect());
}

// ---- random walk against a model of zebra ----------------------------------------
//
// The model applies what the session sends the way zebra 8.4.4 does (ROUTE_ADD
// replaces, ROUTE_DELETE removes, a closed session without GR loses all its
// routes, with GR they go stale until ROUTE_UPDATE_COMPLETE purges the ones
// not refreshed). Whatever the sequence of adds, deletes, partial pumps and
// reconnects, once the session is connected and idle zebra must hold exactly
// the desired set.

namespace {

struct ZebraModel {
    struct R {
        uint32_t tag = 0, metric = 0;
        uint8_t distance = 0;
        bool stale = false;
        bool operator==(const R&) const = default;
    };
    std::map<std::pair<uint32_t, Prefix>, R> rib;
    bool gr = false;
    std::set<uint32_t> gr_vrfs;

    void apply(const std::vector<Frame>& fs) {
        for (const auto& f : fs) {
            if (f.h.command == uint16_t(Cmd::RouteAdd)) {
                auto r = decode_route(f.body);
                REQUIRE(r);
                rib[{f.h.vrf_id, r->prefix}] = R{r->tag, r->metric, r->distance, false};
            } else if (f.h.command == uint16_t(Cmd::RouteDelete)) {
                auto r = decode_route(f.body);
                REQUIRE(r);
                rib.erase({f.h.vrf_id, r->prefix});
            } else if (f.h.command == uint16_t(Cmd::ClientCapabilities)) {
                ByteReader rd(f.body);
                uint32_t cap = rd.u32();
                if (cap == 1) {
                    rd.u32();
                    gr_vrfs.insert(rd.u32());
                } else if (cap == 2) {
                    rd.u32();
                    rd.u32();
                    uint32_t vrf = rd.u32();
                    for (auto it = rib.begin(); it != rib.end();)
                        it = it->first.first == vrf && it->second.stale ? rib.erase(it) : ++it;
                }
            }
        }
    }
    void session_closed() {
        for (auto it = rib.begin(); it != rib.end();) {
            if (gr_vrfs.count(it->first.first)) {
                it->second.stale = true;
                ++it;
            } else {
                it = rib.erase(it);
            }
        }
    }
};

}  // namespace

TEST_CASE("zapi session: random walk ends with zebra holding the desired set", "[zapi]") {
    for (uint32_t gr : {0u, 30u}) {
        for (int seed = 1; seed <= 25; seed++) {
            INFO("gr " << gr << " seed " << seed);
            std::mt19937 rng(seed);
            ZapiSessionConfig cfg;
            cfg.gr_stale_time_s = gr;
            cfg.routes_per_pump = 1 + rng() % 7;
            ZapiSession s(cfg);
            ZebraModel z;
            std::map<std::pair<uint32_t, Prefix>, ZebraModel::R> desired;
            bool connected = false;
            auto send_some = [&](bool all) {
                // The socket may take only part of the output; bytes in
                // flight at a disconnect are lost.
                auto o = s.pending_output();
                size_t n = all ? o.size() : rng() % (o.size() + 1);
                FrameDecoder d;
                std::vector<Frame> fs;
                d.feed(o.first(n), [&](const Header& h, std::span<const uint8_t> b) {
                    fs.push_back({h, {b.begin(), b.end()}});
                });
                // A partial frame at the end never reaches zebra's handler;
                // only send whole frames' worth in this model.
                size_t whole = n - d.buffered();
                s.consume_output(whole);
                z.apply(fs);
            };
            for (int step = 0; step < 400; step++) {
                int op = int(rng() % 100);
                uint32_t vrf = rng() % 2 ? 0 : 3;
                Prefix p(IpAddr::v4(0x0a000000u | (rng() % 40) << 8), 24);
                if (op < 35) {
                    ZebraModel::R r{uint32_t(rng() % 3), uint32_t(rng() % 2), 0, false};
                    s.add_route(vrf, p, r.tag, r.metric);
                    desired[{vrf, p}] = r;
                } else if (op < 55) {
                    s.del_route(vrf, p);
                    desired.erase({vrf, p});
                } else if (op < 80) {
                    s.pump();
                    if (connected) send_some(false);
                } else if (op < 88) {
                    if (!connected) {
                        s.on_connected(0);
                        send_some(true);
                        s.on_bytes(caps_frame(), 0);
                        connected = true;
                    }
                } else if (op < 94) {
                    if (connected) {
                        s.on_disconnected(0);
                        z.session_closed();
                        connected = false;
                    }
                } else {
                    if (connected) send_some(true);
                }
            }
            if (!connected) {
                s.on_connected(0);
                send_some(true);
                s.on_bytes(caps_frame(), 0);
            }
            while (s.has_work() || !s.pending_output().empty()) {
                s.pump();
                send_some(true);
            }
            CHECK(s.phase() == ZapiPhase::Synced);
            CHECK(z.rib == desired);
        }
    }
}

TEST_CASE("zapi session: purge_unknown deletes routes of our type that zebra has and we do not want", "[zapi]") {
    ZapiSessionConfig cfg;
    cfg.purge_unknown = true;
    ZapiSession s(cfg);
    s.add_route(0, P("10.16.1.0/24"), 142);
    handshake(s);
    auto f = pump_all(s);
    // Subscribed to our own type for IPv4 and IPv6, right after CAPABILITIES.
    REQUIRE(count_cmd(f, Cmd::RedistributeAdd) == 2);
    for (const auto& fr : f)
        if (fr.h.command == uint16_t(Cmd::RedistributeAdd)) {
            CHECK(fr.body[1] == uint8_t(RouteType::Nhrp));
            CHECK((fr.body[2] << 8 | fr.body[3]) == 0);
        }
    CHECK(count_cmd(f, Cmd::RouteAdd) == 1);

    // zebra's dump: our desired route (echoed), a stale one of ours read back
    // from the kernel (metric 20), and a BGP route that is none of ours.
    auto redist = [&](RouteType t, const char* p, uint32_t metric) {
        Route r = blackhole_route(t, 0, P(p), 0, metric);
        r.message |= msg::Distance | msg::Metric;
        r.distance = 10;
        ByteWriter w;
        REQUIRE(encode_route_add(w, 0, r));
        auto b = w.take();
        b[9] = uint8_t(Cmd::RedistributeRouteAdd);  // same body, other command
        return b;
    };
    feed(s, redist(RouteType::Nhrp, "10.16.1.0/24", 0));
    feed(s, redist(RouteType::Nhrp, "10.16.2.0/24", 20));
    feed(s, redist(RouteType::Bgp, "198.51.100.0/24", 0));
    f = pump_all(s);
    REQUIRE(count_cmd(f, Cmd::RouteDelete) == 1);
    REQUIRE(count_cmd(f, Cmd::RouteAdd) == 0);
    auto del = std::find_if(f.begin(), f.end(), [](const Frame& x) { return x.h.command == uint16_t(Cmd::RouteDelete); });
    auto r = decode_route(del->body);
    REQUIRE(r);
    CHECK(r->prefix == P("10.16.2.0/24"));
    CHECK(r->type == RouteType::Nhrp);
    CHECK(s.counters().purged == 1);
    // The echo of a later add of ours is no reason to delete it.
    s.add_route(0, P("10.16.3.0/24"));
    pump_all(s);
    feed(s, redist(RouteType::Nhrp, "10.16.3.0/24", 0));
    CHECK(count_cmd(pump_all(s), Cmd::RouteDelete) == 0);
    CHECK(s.counters().purged == 1);
}

TEST_CASE("zapi session: interfaces zebra reports reach the interface hook (FRRouting/frr#13288 workaround)",
          "[zapi]") {
    ZapiSession s;
    std::vector<std::string> seen;
    s.set_interface_hook([&](const std::string& n) { seen.push_back(n); });
    // zserv_encode_interface(): name, zero-padded to INTERFACE_NAMSIZ, then
    // ifindex, status, flags ... (only the name is read).
    auto iface = [](const std::string& name, size_t field = 20) {
        std::vector<uint8_t> b(field + 32, 0);
        std::copy(name.begin(), name.end(), b.begin());
        b[field + 3] = 5;  // ifindex 5
        return b;
    };
    // Before CAPABILITIES (FRR 8.4 pushes interface updates unasked).
    s.on_connected(0);
    drain(s);
    feed(s, frame(Cmd::InterfaceAdd, 0, iface("wan0")));
    CHECK(seen == std::vector<std::string>{"wan0"});
    // CAPABILITIES: "" = every interface.
    feed(s, caps_frame());
    CHECK(seen == std::vector<std::string>{"wan0", ""});
    drain(s);
    // Synced: ADD and UP count, DOWN / address updates do not.
    feed(s, frame(Cmd::InterfaceUp, 0, iface("lan0")));
    feed(s, frame(Cmd::InterfaceDown, 0, iface("core0")));
    feed(s, frame(Cmd::InterfaceAddressAdd, 0, iface("x")));
    CHECK(seen == std::vector<std::string>{"wan0", "", "lan0"});
    // A 16-byte name field (INTERFACE_NAMSIZ = IFNAMSIZ builds) reads the same.
    feed(s, frame(Cmd::InterfaceAdd, 0, iface("pw", 16)));
    CHECK(seen.back() == "pw");
    // No NUL in the name field, or an empty name: counted, not reported.
    uint64_t m0 = s.counters().malformed;
    feed(s, frame(Cmd::InterfaceAdd, 0, std::vector<uint8_t>(20, 'a')));
    feed(s, frame(Cmd::InterfaceUp, 0, std::vector<uint8_t>(24, 0)));
    CHECK(s.counters().malformed - m0 == 2);
    CHECK(seen.size() == 4);
}
