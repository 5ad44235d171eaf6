// The VRRP state machine (RFC 5798 §6.4): a table of (state, event) →
// (new state, actions, next deadline), exact timings, and scenarios between
// simulated routers (preempt delay, tie-break, tracking, takeover bursts).
#include <catch2/catch.hpp>

#include <functional>

#include <nlohmann/json.hpp>

#include "control/ha/vrrp.h"
#include "src/common/log.h"
#include "test/unit/ha/sim.h"

using namespace nimbus;
using namespace nimbus::ha;
using nimbus::ha::test::Sim;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
constexpr Duration S = kNsPerSec;
constexpr Duration MS = 1'000'000;

InstanceConfig cfg(uint8_t prio = 100, const char* primary = "10.0.0.2") {
    InstanceConfig c;
    c.name = "lan0";
    c.vrid = 51;
    c.priority = prio;
    c.adver_int_cs = 100;
    c.primary = ip(primary);
    c.vips = {ip("10.0.0.100")};
    c.tracks = {{"wan0", 0}, {"uplink", 60}};
    return c;
}

std::string show(const Actions& a) {
    std::string s;
    for (const auto& x : a) {
        if (!s.empty()) s += " ";
        s += action_name(x.kind);
        if (x.kind == ActionKind::SendAdvert) s += fmt::format("({})", x.priority);
        if (x.kind == ActionKind::Announce) s += fmt::format("({})", x.count);
    }
    return s;
}

struct Quiet {
    Quiet() { log::set_level(log::Level::Error); }
} quiet;

}  // namespace

TEST_CASE("ha: skew time and master down interval, exactly (RFC 5798 §6.1)") {
    struct Row {
        uint8_t prio;
        uint16_t cs;
        Duration skew, down;
    } rows[] = {
        {100, 100, 609'375'000, 3'609'375'000},     // the RFC default: 3.609375 s, "3.61 s"
        {200, 100, 218'750'000, 3'218'750'000},
        {255, 100, 3'906'250, 3'003'906'250},
        {1, 100, 996'093'750, 3'996'093'750},
        {100, 10, 60'937'500, 360'937'500},         // lab-kit §1: keepalived took over 364 ms after the last advert
        {254, 1, 78'125, 30'078'125},
        {100, 4095, 24'953'906'250, 147'803'906'250},
    };
    for (auto& r : rows) {
        INFO(int(r.prio) << " " << r.cs);
        CHECK(skew_time(r.prio, r.cs) == r.skew);
        CHECK(master_down_interval(r.prio, r.cs) == r.down);
    }
    CHECK(format_duration(3'609'375'000) == "3.609375s");
    CHECK(format_duration(2 * S) == "2s");
}

// ---- the transition table ----

namespace {

enum class Start { Init, Backup, Master };
enum class Ev { Startup, Shutdown, Advert, Timer, TrackDown, TrackUp, SetPriority };

constexpr int64_t kNone = -1;   // no deadline
constexpr int64_t kSame = -2;   // deadline unchanged by the event
constexpr Time T0 = 100 * S;

struct Row {
    const char* name;
    Start start;
    std::function<void(InstanceConfig&)> mod;
    Ev ev;
    uint8_t prio = 0;             // Advert priority / SetPriority value
    const char* src = "10.0.0.9";  // Advert source (10.0.0.9 > ours 10.0.0.2)
    uint16_t cs = 100;            // Advert interval
    const char* track = "";
    State want;
    const char* actions;
    int64_t deadline;             // relative to the event time, or kNone / kSame
    uint8_t eff = 0;              // expected effective priority after (0: don't check)
};

void none(InstanceConfig&) {}

// Brings an instance to `start`; returns the time of the event to apply.
Time prepare(Instance& i, Start start) {
    if (start == Start::Init) return T0;
    i.startup(T0);
    if (start == Start::Backup) {
        if (i.state() == State::Master)   // the owner: push it back with another owner's advert
            i.on_advert(T0, {ip("10.0.0.9"), 255, 100});
        REQUIRE(i.state() == State::Backup);
        return T0 + S;
    }
    if (i.state() == State::Backup) i.on_timer(*i.next_deadline());
    REQUIRE(i.state() == State::Master);
    return *i.next_deadline() - S / 2;   // half way to the next advert
}

}  // namespace

TEST_CASE("ha: state machine transition table (RFC 5798 §6.4, RFC 9568 §6.4)") {
    auto owner = [](InstanceConfig& c) { c.priority = 255; };
    auto nopreempt = [](InstanceConfig& c) { c.preempt = false; };
    auto owner_nopreempt = [](InstanceConfig& c) { c.priority = 255; c.preempt = false; };
    auto delay = [](InstanceConfig& c) { c.preempt_delay = 10 * S; };
    const Row rows[] = {
        // §6.4.1 Initialize
        {"init: startup -> backup, Master_Down_Timer", Start::Init, none, Ev::Startup, 0, "", 100, "",
         State::Backup, "become-backup", 3'609'375'000},
        {"init: startup as owner -> master at once", Start::Init, owner, Ev::Startup, 0, "", 100, "",
         State::Master, "become-master install-vips send-advert(255) announce(3)", 1 * S},
        {"init: advert ignored", Start::Init, none, Ev::Advert, 150, "10.0.0.9", 100, "", State::Initialize, "", kNone},
        {"init: shutdown ignored", Start::Init, none, Ev::Shutdown, 0, "", 100, "", State::Initialize, "", kNone},
        {"init: timer ignored", Start::Init, none, Ev::Timer, 0, "", 100, "", State::Initialize, "", kNone},
        // §6.4.2 Backup
        {"backup: shutdown -> init", Start::Backup, none, Ev::Shutdown, 0, "", 100, "", State::Initialize,
         "become-init", kNone},
        {"backup: Master_Down_Timer fires -> master", Start::Backup, none, Ev::Timer, 0, "", 100, "", State::Master,
         "become-master install-vips send-advert(100) announce(3)", 1 * S},
        {"backup: priority 0 -> timer = Skew_Time", Start::Backup, none, Ev::Advert, 0, "10.0.0.9", 100, "",
         State::Backup, "", 609'375'000},
        {"backup: higher priority, learns 50 cs", Start::Backup, none, Ev::Advert, 150, "10.0.0.9", 50, "",
         State::Backup, "", 1'804'687'500},
        {"backup: higher priority, learns 10 cs", Start::Backup, none, Ev::Advert, 150, "10.0.0.1", 10, "",
         State::Backup, "", 360'937'500},
        {"backup: equal priority, higher address: accepted (no tie-break in backup)", Start::Backup, none,
         Ev::Advert, 100, "10.0.0.9", 100, "", State::Backup, "", 3'609'375'000},
        {"backup: equal priority, lower address: accepted", Start::Backup, none, Ev::Advert, 100, "10.0.0.1", 100,
         "", State::Backup, "", 3'609'375'000},
        {"backup: lower priority, preempt: discarded", Start::Backup, none, Ev::Advert, 50, "10.0.0.9", 100, "",
         State::Backup, "", kSame},
        {"backup: lower priority, no preempt: accepted", Start::Backup, nopreempt, Ev::Advert, 50, "10.0.0.9", 100,
         "", State::Backup, "", 3'609'375'000},
        {"backup: lower priority within preempt_delay: accepted", Start::Backup, delay, Ev::Advert, 50, "10.0.0.9",
         100, "", State::Backup, "", 3'609'375'000},
        {"backup owner: lower priority, no preempt: owner preempts anyway", Start::Backup, owner_nopreempt,
         Ev::Advert, 100, "10.0.0.9", 100, "", State::Backup, "", kSame},
        {"backup: own advert looped back: ignored", Start::Backup, none, Ev::Advert, 200, "10.0.0.2", 100, "",
         State::Backup, "", kSame},
        {"backup: tracked wan0 (weight 0) down: no timer", Start::Backup, none, Ev::TrackDown, 0, "", 100, "wan0",
         State::Backup, "", kNone, 100},
        {"backup: tracked uplink (weight 60) down: priority 40", Start::Backup, none, Ev::TrackDown, 0, "", 100,
         "uplink", State::Backup, "", kSame, 40},
        {"backup: priority changed", Start::Backup, none, Ev::SetPriority, 150, "", 100, "", State::Backup, "",
         kSame, 150},
        // §6.4.3 Master
        {"master: shutdown -> priority 0, init", Start::Master, none, Ev::Shutdown, 0, "", 100, "",
         State::Initialize, "send-advert(0) become-init remove-vips", kNone},
        {"master: Adver_Timer fires", Start::Master, none, Ev::Timer, 0, "", 100, "", State::Master,
         "send-advert(100)", 1 * S},
        {"master: priority 0 -> advert now, timer reset", Start::Master, none, Ev::Advert, 0, "10.0.0.9", 100, "",
         State::Master, "send-advert(100)", 1 * S},
        {"master: higher priority -> backup", Start::Master, none, Ev::Advert, 150, "10.0.0.1", 100, "",
         State::Backup, "become-backup remove-vips", 3'609'375'000},
        {"master: higher priority, its interval learnt", Start::Master, none, Ev::Advert, 101, "10.0.0.1", 10, "",
         State::Backup, "become-backup remove-vips", 360'937'500},
        {"master: equal priority, higher address -> backup", Start::Master, none, Ev::Advert, 100, "10.0.0.9", 100,
         "", State::Backup, "become-backup remove-vips", 3'609'375'000},
        {"master: equal priority, lower address -> stays, asserts (RFC 9568)", Start::Master, none, Ev::Advert, 100,
         "10.0.0.1", 100, "", State::Master, "send-advert(100)", kSame},
        {"master: lower priority -> stays, asserts (RFC 9568)", Start::Master, none, Ev::Advert, 50, "10.0.0.9", 100,
         "", State::Master, "send-advert(100)", kSame},
        {"master: own advert looped back: ignored", Start::Master, none, Ev::Advert, 100, "10.0.0.2", 100, "",
         State::Master, "", kSame},
        {"master owner: another owner with a higher address -> backup", Start::Master, owner, Ev::Advert, 255,
         "10.0.0.9", 100, "", State::Backup, "become-backup remove-vips", 3'003'906'250},
        {"master owner: priority 254 -> stays", Start::Master, owner, Ev::Advert, 254, "10.0.0.9", 100, "",
         State::Master, "send-advert(255)", kSame},
        {"master: tracked wan0 (weight 0) down -> resign, backup", Start::Master, none, Ev::TrackDown, 0, "", 100,
         "wan0", State::Backup, "send-advert(0) become-backup remove-vips", kNone, 100},
        {"master: tracked uplink (weight 60) down -> stays at 40", Start::Master, none, Ev::TrackDown, 0, "", 100,
         "uplink", State::Master, "", kSame, 40},
        {"master: tracked uplink up again (no change)", Start::Master, none, Ev::TrackUp, 0, "", 100, "uplink",
         State::Master, "", kSame, 100},
        {"master owner: uplink down -> 195, no longer owner", Start::Master, owner, Ev::TrackDown, 0, "", 100,
         "uplink", State::Master, "", kSame, 195},
    };
    for (const auto& r : rows) {
        INFO(r.name);
        auto c = cfg();
        c.garp_delay = 0;   // keep the second GARP burst out of the Adver_Timer rows
        r.mod(c);
        Instance i(c);
        Time t = prepare(i, r.start);
        auto before = i.next_deadline();
        Actions out;
        switch (r.ev) {
        case Ev::Startup: out = i.startup(t); break;
        case Ev::Shutdown: out = i.shutdown(t); break;
        case Ev::Advert: out = i.on_advert(t, {ip(r.src), r.prio, r.cs}); break;
        case Ev::Timer:
            if (auto d = i.next_deadline()) t = *d;
            out = i.on_timer(t);
            break;
        case Ev::TrackDown: out = i.set_track(t, r.track, false); break;
        case Ev::TrackUp: out = i.set_track(t, r.track, true); break;
        case Ev::SetPriority: out = i.set_priority(t, r.prio); break;
        }
        CHECK(state_name(i.state()) == std::string(state_name(r.want)));
        CHECK(show(out) == r.actions);
        auto d = i.next_deadline();
        if (r.deadline == kNone) {
            CHECK_FALSE(d.has_value());
        } else if (r.deadline == kSame) {
            CHECK(d == before);
        } else {
            REQUIRE(d.has_value());
            CHECK(*d - t == Duration(r.deadline));
        }
        if (r.eff) CHECK(int(i.effective_priority()) == int(r.eff));
        // Actions with reasons carry one.
        for (const auto& a : out)
            if (a.kind == ActionKind::BecomeMaster || a.kind == ActionKind::BecomeBackup) CHECK_FALSE(a.reason.empty());
    }
}

TEST_CASE("ha: the advert carries the effective priority, interval and addresses") {
    auto c = cfg();
    c.garp_delay = 0;
    Instance i(c);
    i.startup(T0);
    i.on_timer(*i.next_deadline());
    REQUIRE(i.state() == State::Master);
    i.set_track(T0, "uplink", false);
    auto out = i.on_timer(*i.next_deadline());
    CHECK(show(out) == "send-advert(40)");
    Advert a = i.advert(out[0].priority);
    CHECK(a.vrid == 51);
    CHECK(a.priority == 40);
    CHECK(a.max_adver_int_cs == 100);
    CHECK(a.addrs == c.vips);
    CHECK(i.vmac().str() == "00:00:5e:00:01:33");
}

TEST_CASE("ha: takeover announcements: repeat now, again after the delay, then refresh") {
    auto c = cfg();
    c.garp_repeat = 3;
    c.garp_delay = 1 * S;
    c.garp_refresh = 0;
    c.adver_int_cs = 300;   // keep adverts out of the way
    Instance i(c);
    i.startup(T0);
    Time tm = *i.next_deadline();
    CHECK(show(i.on_timer(tm)) == "become-master install-vips send-advert(100) announce(3)");
    CHECK(*i.next_deadline() == tm + 1 * S);
    CHECK(show(i.on_timer(tm + 1 * S)) == "announce(3)");
    CHECK(*i.next_deadline() == tm + 3 * S);   // only the advert timer is left
    CHECK(show(i.on_timer(tm + 3 * S)) == "send-advert(100)");

    c.garp_refresh = 5 * S;
    c.garp_refresh_repeat = 2;
    Instance j(c);
    j.startup(T0);
    tm = *j.next_deadline();
    j.on_timer(tm);
    CHECK(show(j.on_timer(tm + 1 * S)) == "announce(3)");
    CHECK(show(j.on_timer(tm + 3 * S)) == "send-advert(100)");
    CHECK(show(j.on_timer(tm + 6 * S)) == "send-advert(100) announce(2)");
    CHECK(j.counters().announces_sent == 3);

    c.garp_delay = 0;
    c.garp_refresh = 0;
    Instance k(c);
    k.startup(T0);
    tm = *k.next_deadline();
    k.on_timer(tm);
    CHECK(*k.next_deadline() == tm + 3 * S);   // no second burst
}

TEST_CASE("ha: keepalived lab timings: crash and graceful stop (lab-kit §1)") {
    auto ca = cfg(200, "10.99.0.1");
    auto cb = cfg(100, "10.99.0.2");
    ca.adver_int_cs = cb.adver_int_cs = 10;
    ca.vips = cb.vips = {ip("10.99.0.100")};
    SECTION("crash: the backup takes over Master_Down_Interval after the last advert") {
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "ka1");
        auto ub = sim.add(b, 1, "ka2");
        sim.startup(ub);
        sim.run_until(1 * S);   // ka2 alone becomes master after 0.3609375 s
        CHECK(sim.first("ka2", ActionKind::BecomeMaster) == std::optional<Time>(360'937'500));
        sim.startup(ua);        // ka1 (200) preempts ka2
        sim.run_until(2 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"ka1"});
        Time crash = 2 * S + 55 * MS;
        sim.run_until(crash);
        sim.kill(ua);
        Time last = sim.last_advert(ua, 0, crash);
        sim.run_until(4 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"ka2"});
        CHECK(sim.first("ka2", ActionKind::BecomeMaster, crash) == std::optional<Time>(last + 360'937'500));
    }
    SECTION("graceful stop: priority 0, takeover after Skew_Time") {
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "ka1");
        auto ub = sim.add(b, 1, "ka2");
        sim.startup(ua);
        sim.startup(ub);
        sim.run_until(2 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"ka1"});
        sim.shutdown(ua);
        Time stop = sim.now;
        sim.kill(ua);
        sim.run_until(3 * S);
        CHECK(sim.first("ka2", ActionKind::BecomeMaster, stop) == std::optional<Time>(stop + 60'937'500));
        CHECK(b.counters().pri_zero_rcvd == 1);
        CHECK(a.counters().pri_zero_sent == 1);
    }
}

TEST_CASE("ha: a backup learns the master's interval") {
    auto ca = cfg(200, "10.0.0.1");
    auto cb = cfg(100, "10.0.0.2");
    ca.adver_int_cs = 25;   // the master says 0.25 s, we are configured for 1 s
    Instance a(ca), b(cb);
    Sim sim;
    auto ua = sim.add(a, 1, "a");
    auto ub = sim.add(b, 1, "b");
    sim.startup(ua);
    sim.startup(ub);
    sim.run_until(5 * S);
    auto st = b.status();
    CHECK(st.state == State::Backup);
    CHECK(st.master_adver_int_cs == 25);
    CHECK(st.master_down_interval == master_down_interval(100, 25));
    CHECK(st.master == std::optional<IpAddr>(ip("10.0.0.1")));
    CHECK(st.master_priority == 200);
    CHECK(b.counters().interval_mismatch > 0);   // logged, not dropped
    CHECK(b.counters().adverts_rcvd > 10);
    // Master dies: takeover after 3 * 0.25 + skew(100, 0.25 s), not after 3.6 s.
    Time t = sim.now;
    sim.kill(ua);
    Time last = sim.last_advert(ua, 0, t);
    sim.run_until(10 * S);
    CHECK(sim.first("b", ActionKind::BecomeMaster, t) == std::optional<Time>(last + master_down_interval(100, 25)));
}

TEST_CASE("ha: preempt and preempt_delay") {
    auto ca = cfg(100, "10.0.0.1");   // the running master
    auto cb = cfg(200, "10.0.0.2");   // comes up later with a higher priority
    SECTION("preempt, no delay: B takes over when its own Master_Down_Timer runs out") {
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "a");
        auto ub = sim.add(b, 1, "b");
        sim.startup(ua);
        sim.run_until(5 * S);   // A master at 3.609375, adverts at 4.609375, 5.609375, ...
        sim.startup(ub);
        sim.run_until(30 * S);
        CHECK(sim.first("b", ActionKind::BecomeMaster) == std::optional<Time>(5 * S + 3'218'750'000));
        CHECK(sim.masters(1) == std::vector<std::string>{"b"});
        CHECK(b.counters().adverts_discarded >= 2);
    }
    SECTION("preempt_delay 10 s: A's adverts count as valid for 10 s after B first hears one") {
        cb.preempt_delay = 10 * S;
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "a");
        auto ub = sim.add(b, 1, "b");
        sim.startup(ua);
        sim.run_until(5 * S);
        sim.startup(ub);
        sim.run_until(40 * S);
        // First heard 5.609375 -> delay ends 15.609375; the advert at 14.609375 is
        // the last accepted; takeover Master_Down_Interval(200) later.
        CHECK(sim.first("b", ActionKind::BecomeMaster) == std::optional<Time>(14'609'375'000 + 3'218'750'000));
        CHECK(sim.masters(1) == std::vector<std::string>{"b"});
        CHECK(a.state() == State::Backup);
    }
    SECTION("no preempt: B stays backup under a lower master") {
        cb.preempt = false;
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "a");
        auto ub = sim.add(b, 1, "b");
        sim.startup(ua);
        sim.run_until(5 * S);
        sim.startup(ub);
        sim.run_until(60 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"a"});
        // ...until A resigns: B after its Skew_Time.
        sim.shutdown(ua);
        Time t = sim.now;
        sim.kill(ua);
        sim.run_until(70 * S);
        CHECK(sim.first("b", ActionKind::BecomeMaster, t) == std::optional<Time>(t + skew_time(200, 100)));
    }
    SECTION("set_preempt at run time") {
        cb.preempt = false;
        Instance a(ca), b(cb);
        Sim sim;
        auto ua = sim.add(a, 1, "a");
        auto ub = sim.add(b, 1, "b");
        sim.startup(ua);
        sim.startup(ub);
        sim.run_until(10 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"b"});   // B's timer was the shorter one
        sim.shutdown(ub);
        sim.run_until(20 * S);
        sim.startup(ub);                   // back, no preempt: A stays
        sim.run_until(40 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"a"});
        b.set_preempt(sim.now, true, 0);   // now B preempts within one Master_Down_Interval
        sim.run_until(40 * S + master_down_interval(200, 100) + S);
        CHECK(sim.masters(1) == std::vector<std::string>{"b"});
    }
}

TEST_CASE("ha: equal priorities: the higher primary address wins (§6.4.3)") {
    // In Backup an equal priority is simply accepted (§6.4.2 (445)); the
    // tie-break decides when two Masters meet, e.g. when a split LAN heals.
    for (bool a_first : {true, false}) {
        INFO("a's adverts come first: " << a_first);
        Instance a(cfg(100, "10.0.0.1")), b(cfg(100, "10.0.0.2"));
        Sim sim;
        auto ua = sim.add(a, 1, "a");
        auto ub = sim.add(b, 2, "b");   // partitioned
        sim.startup(a_first ? ua : ub);
        sim.run_until(S / 3);
        sim.startup(a_first ? ub : ua);
        sim.run_until(10 * S);
        REQUIRE(a.state() == State::Master);
        REQUIRE(b.state() == State::Master);
        sim.move(ub, 0, 1);             // heal
        sim.run_until(20 * S);
        CHECK(sim.masters(1) == std::vector<std::string>{"b"});
        CHECK(sim.transitions_since(12 * S) == 0);   // settled
    }
    // IPv6: compared as unsigned 128-bit numbers in network order.
    auto c6 = [](const char* p) {
        InstanceConfig c = cfg(100, "10.0.0.1");
        c.primary = ip(p);
        c.vips = {ip("fe80::100"), ip("2001:db8::100")};
        return c;
    };
    Instance a(c6("fe80::1:0")), b(c6("fe80::ff"));
    Sim sim;
    auto ua = sim.add(a, 1, "a");
    auto ub = sim.add(b, 2, "b");
    sim.startup(ua);
    sim.startup(ub);
    sim.run_until(10 * S);
    sim.move(ub, 0, 1);
    sim.run_until(20 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
}

TEST_CASE("ha: tracking lowers priority and the peer preempts; weight 0 forces backup") {
    auto ca = cfg(200, "10.0.0.1");
    auto cb = cfg(100, "10.0.0.2");
    ca.tracks = {{"uplink", 150}, {"wan0", 0}};
    Instance a(ca), b(cb);
    Sim sim;
    auto ua = sim.add(a, 1, "a");
    auto ub = sim.add(b, 1, "b");
    sim.startup(ua);
    sim.startup(ub);
    sim.run_until(10 * S);
    REQUIRE(sim.masters(1) == std::vector<std::string>{"a"});

    sim.track(ua, "uplink", false);   // 200 - 150 = 50 < 100: B preempts
    Time t = sim.now;
    CHECK(a.effective_priority() == 50);
    sim.run_until(20 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"b"});
    // B discards A's first 50 advert; its timer was set by A's last 200 advert.
    CHECK(sim.first("b", ActionKind::BecomeMaster, t) ==
          std::optional<Time>(sim.last_advert(ua, 0, t) + master_down_interval(100, 100)));

    sim.track(ua, "uplink", true);    // back to 200: A preempts again
    sim.run_until(30 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});

    sim.track(ua, "wan0", false);     // forced backup: resigns with priority 0
    t = sim.now;
    sim.run_until(40 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"b"});
    CHECK(sim.first("b", ActionKind::BecomeMaster, t) == std::optional<Time>(t + skew_time(100, 100)));
    auto st = a.status();
    CHECK(st.fault);
    CHECK(st.tracks_down == std::vector<std::string>{"wan0"});
    CHECK_FALSE(a.next_deadline().has_value());   // never takes over while in fault

    sim.track(ua, "wan0", true);
    sim.run_until(50 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
}

TEST_CASE("ha: owner (priority 255) takes over at startup and always preempts") {
    auto ca = cfg(255, "10.0.0.1");
    ca.preempt = false;   // ignored for the owner (§6.1)
    auto cb = cfg(254, "10.0.0.2");
    Instance a(ca), b(cb);
    Sim sim;
    auto ua = sim.add(a, 1, "a");
    auto ub = sim.add(b, 1, "b");
    sim.startup(ub);
    sim.run_until(10 * S);
    REQUIRE(sim.masters(1) == std::vector<std::string>{"b"});
    sim.startup(ua);   // Master at once, B sees 255 > 254 and steps down
    CHECK(sim.first("a", ActionKind::BecomeMaster) == std::optional<Time>(10 * S));
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
    CHECK(b.state() == State::Backup);
}

TEST_CASE("ha: status snapshot") {
    auto ca = cfg(200, "10.0.0.1");
    auto cb = cfg(100, "10.0.0.2");
    Instance a(ca), b(cb);
    Sim sim;
    auto ua = sim.add(a, 1, "a");
    auto ub = sim.add(b, 1, "b");
    sim.startup(ua);
    sim.startup(ub);
    sim.run_until(10 * S);
    auto sa = a.status();
    CHECK(sa.state == State::Master);
    CHECK(sa.priority_configured == 200);
    CHECK(sa.priority_effective == 200);
    CHECK(sa.master == std::optional<IpAddr>(ip("10.0.0.1")));
    CHECK(sa.last_transition == master_down_interval(200, 100));
    CHECK(sa.last_reason.find("no advertisement within 3.21875s of startup") != std::string::npos);
    CHECK(sa.counters.became_master == 1);
    CHECK(sa.counters.adverts_sent == 7);   // at 3.21875 and each second to 9.21875
    auto sb = b.status();
    CHECK(sb.state == State::Backup);
    CHECK(sb.counters.adverts_rcvd == 7);
    CHECK(sb.master == std::optional<IpAddr>(ip("10.0.0.1")));
    CHECK(sb.next_deadline == std::optional<Time>(sim.last_advert(ua, 0, 10 * S) + master_down_interval(100, 100)));
    auto j = to_json(sb);
    CHECK(j["state"] == "backup");
    CHECK(j["master"] == "10.0.0.1");
    CHECK(j["counters"]["adverts_rcvd"] == 7);
    CHECK(j["counters"]["rx_ttl_error"] == 0);
    CHECK(j["master_down_interval_ns"] == 3'609'375'000ull);
}

TEST_CASE("ha: config validation") {
    struct Row {
        const char* what;
        std::function<void(InstanceConfig&)> mod;
        const char* want;   // substring of the error, "" = valid
    } rows[] = {
        {"defaults", none, ""},
        {"vrid 0", [](InstanceConfig& c) { c.vrid = 0; }, "vrid"},
        {"priority 0", [](InstanceConfig& c) { c.priority = 0; }, "priority"},
        {"interval 0", [](InstanceConfig& c) { c.adver_int_cs = 0; }, "advert interval"},
        {"interval 4096", [](InstanceConfig& c) { c.adver_int_cs = 4096; }, "advert interval"},
        {"interval 4095", [](InstanceConfig& c) { c.adver_int_cs = 4095; }, ""},
        {"no primary", [](InstanceConfig& c) { c.primary = IpAddr(); }, "primary"},
        {"global IPv6 primary", [](InstanceConfig& c) {
             c.primary = ip("2001:db8::1");
             c.vips = {ip("2001:db8::100")};
         }, "link-local"},
        {"IPv6 ok", [](InstanceConfig& c) {
             c.primary = ip("fe80::1");
             c.vips = {ip("fe80::100"), ip("2001:db8::100")};
         }, ""},
        {"no VIPs", [](InstanceConfig& c) { c.vips.clear(); }, "virtual addresses"},
        {"mixed families", [](InstanceConfig& c) { c.vips.push_back(ip("2001:db8::1")); }, "family"},
        {"track twice", [](InstanceConfig& c) { c.tracks.push_back({"wan0", 5}); }, "twice"},
    };
    for (auto& r : rows) {
        INFO(r.what);
        auto c = cfg();
        r.mod(c);
        auto err = validate_config(c);
        if (std::string(r.want).empty())
            CHECK(err.empty());
        else
            CHECK(err.find(r.want) != std::string::npos);
    }
}
