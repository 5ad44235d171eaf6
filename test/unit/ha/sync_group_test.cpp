// Sync groups: the AND rule (Master only when every member wants Master, any
// member that must be Backup holds all in Backup), scripted step by step and
// between two simulated boxes with a LAN and a WAN instance each.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "control/ha/sync_group.h"
#include "src/common/log.h"
#include "test/unit/ha/sim.h"

using namespace nimbus;
using namespace nimbus::ha;
using nimbus::ha::test::Sim;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
constexpr Duration S = kNsPerSec;

InstanceConfig member(std::string name, uint8_t vrid, uint8_t prio, const char* primary, const char* vip) {
    InstanceConfig c;
    c.name = std::move(name);
    c.vrid = vrid;
    c.priority = prio;
    c.primary = ip(primary);
    c.vips = {ip(vip)};
    if (vrid == 52) c.tracks = {{"wan0", 0}};   // the WAN instance tracks the uplink
    c.garp_delay = 0;
    return c;
}

// One box: LAN instance (VRID 51 on link 1) and WAN instance (VRID 52 on link 2).
struct Box {
    Instance lan, wan;
    SyncGroup group;
    Box(const char* n, uint8_t lan_prio, uint8_t wan_prio, int host)
        : lan(member(fmt::format("{}-lan", n), 51, lan_prio, fmt::format("10.0.0.{}", host).c_str(), "10.0.0.100")),
          wan(member(fmt::format("{}-wan", n), 52, wan_prio, fmt::format("192.0.2.{}", host).c_str(), "192.0.2.100")),
          group(fmt::format("{}-pair", n), {&lan, &wan}) {}
};

std::string show(const GroupActions& g) {
    static const char* names[] = {"lan", "wan"};
    std::string s;
    for (const auto& ma : g) {
        if (!s.empty()) s += " ";
        s += fmt::format("{}:{}", names[ma.member], action_name(ma.action.kind));
        if (ma.action.kind == ActionKind::SendAdvert) s += fmt::format("({})", ma.action.priority);
    }
    return s;
}

struct Quiet {
    Quiet() { log::set_level(log::Level::Error); }
} quiet;

}  // namespace

TEST_CASE("ha sync: the AND rule, step by step") {
    Box b("a", 100, 100, 1);
    const Time t0 = 100 * S;
    const Duration mdi = master_down_interval(100, 100);
    CHECK(show(b.group.startup(t0)) == "lan:become-backup wan:become-backup");
    CHECK_FALSE(b.group.master());
    CHECK(b.lan.held());
    CHECK(*b.group.next_deadline() == t0 + mdi);

    // The WAN hears a better master; the LAN does not.
    CHECK(show(b.group.on_advert(t0 + S, 1, {ip("192.0.2.9"), 200, 100})) == "");
    // LAN's timer runs out: it wants Master, but the WAN does not -> nothing happens.
    CHECK(show(b.group.on_timer(t0 + mdi)) == "");
    CHECK(b.lan.ready_for_master());
    CHECK_FALSE(b.wan.ready_for_master());
    CHECK(b.lan.state() == State::Backup);
    CHECK(*b.group.next_deadline() == t0 + S + mdi);   // only the WAN's timer is left
    // Idempotent: nothing is due, nothing happens.
    CHECK(show(b.group.on_timer(t0 + mdi + 1)) == "");

    // WAN's master goes quiet: every member wants Master -> all go together.
    Time t1 = t0 + S + mdi;
    CHECK(show(b.group.on_timer(t1)) ==
          "lan:become-master lan:install-vips lan:send-advert(100) lan:announce "
          "wan:become-master wan:install-vips wan:send-advert(100) wan:announce");
    CHECK(b.group.master());
    CHECK(b.lan.state() == State::Master);
    CHECK(b.wan.state() == State::Master);

    // A better master appears on the LAN: LAN backs off (RFC), the WAN resigns
    // with priority 0 so its peer takes over after Skew_Time.
    CHECK(show(b.group.on_advert(t1 + S / 2, 0, {ip("10.0.0.9"), 150, 100})) ==
          "lan:become-backup lan:remove-vips wan:send-advert(0) wan:become-backup wan:remove-vips");
    CHECK_FALSE(b.group.master());
    CHECK(b.wan.ready_for_master());   // the WAN still wants Master, held
    CHECK_FALSE(b.wan.next_deadline().has_value());
    auto st = b.wan.status();
    CHECK(st.held);
    CHECK(st.last_reason.find("member a-lan is backup") != std::string::npos);

    // A lower priority on the WAN while held: discarded, still wants Master.
    CHECK(show(b.group.on_advert(t1 + S, 1, {ip("192.0.2.9"), 50, 100})) == "");
    CHECK(b.wan.ready_for_master());
    // The LAN master resigns: after Skew_Time both want Master again.
    CHECK(show(b.group.on_advert(t1 + 2 * S, 0, {ip("10.0.0.9"), 0, 100})) == "");
    Time t2 = t1 + 2 * S + skew_time(100, 100);
    CHECK(*b.group.next_deadline() == t2);
    CHECK(show(b.group.on_timer(t2)).find("lan:become-master") == 0);
    CHECK(b.group.master());
    auto gs = b.group.status();
    CHECK(gs.transitions == 3);
    CHECK(to_json(gs)["state"] == "master");

    // Shutdown: both resign.
    CHECK(show(b.group.shutdown(t2 + S)) ==
          "lan:send-advert(0) lan:become-init lan:remove-vips wan:send-advert(0) wan:become-init wan:remove-vips");
    CHECK_FALSE(b.group.master());
    CHECK(b.lan.held());   // ready for a clean restart
}

TEST_CASE("ha sync: an owner member waits for the others") {
    InstanceConfig lan = member("x", 51, 255, "10.0.0.1", "10.0.0.1");
    InstanceConfig wan = member("x", 52, 100, "192.0.2.1", "192.0.2.100");
    Instance l(lan), w(wan);
    SyncGroup g("x-pair", {&l, &w});
    CHECK(show(g.startup(0)) == "lan:become-backup wan:become-backup");
    CHECK(l.ready_for_master());
    CHECK_FALSE(g.master());
    auto out = g.on_timer(*g.next_deadline());
    CHECK(g.master());
    CHECK(show(out).find("lan:become-master") == 0);
}

TEST_CASE("ha sync: a member in fault keeps the group in backup") {
    Box b("a", 200, 200, 1);
    b.group.set_track(0, "wan0", false);
    b.group.startup(0);
    CHECK(b.wan.status().fault);
    CHECK_FALSE(b.lan.status().fault);
    b.group.on_timer(*b.group.next_deadline());   // the LAN's timer: it wants Master
    CHECK(b.lan.ready_for_master());
    CHECK_FALSE(b.group.master());
    CHECK_FALSE(b.group.next_deadline().has_value());   // nothing to wait for, nobody can take over
    auto out = b.group.set_track(20 * S, "wan0", true);
    CHECK(out.empty());
    b.group.on_timer(*b.group.next_deadline());
    CHECK(b.group.master());
}

TEST_CASE("ha sync: two boxes move together on LAN and WAN") {
    Box a("a", 200, 200, 1), b("b", 100, 100, 2);
    Sim sim;
    auto ua = sim.add_group(a.group, {1, 2}, "a");
    auto ub = sim.add_group(b.group, {1, 2}, "b");
    sim.startup(ua);
    sim.startup(ub);
    sim.run_until(60 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
    CHECK(sim.masters(2) == std::vector<std::string>{"a"});
    CHECK(sim.first("a", ActionKind::BecomeMaster) == std::optional<Time>(master_down_interval(200, 100)));
    CHECK(sim.transitions_since(5 * S) == 0);

    // A's WAN uplink fails (weight 0): A's WAN resigns, its group pulls the LAN
    // down too; B takes both after its Skew_Time.
    sim.track(ua, "wan0", false);
    sim.run_until(80 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"b"});
    CHECK(sim.masters(2) == std::vector<std::string>{"b"});
    for (auto& x : sim.log)
        if (x.box == "b" && x.kind == ActionKind::BecomeMaster && x.t >= 60 * S)
            CHECK(x.t == 60 * S + skew_time(100, 100));
    CHECK(sim.transitions_since(61 * S) == 0);

    // Repaired: A's WAN waits a Master_Down_Interval, its LAN already wants
    // Master (it only ever heard B's lower priority) -> A takes both back.
    sim.track(ua, "wan0", true);
    sim.run_until(100 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
    CHECK(sim.masters(2) == std::vector<std::string>{"a"});
    CHECK(sim.first("a", ActionKind::BecomeMaster, 80 * S) ==
          std::optional<Time>(80 * S + master_down_interval(200, 100)));
    CHECK(sim.transitions_since(85 * S) == 0);
    CHECK(a.group.status().inconsistent_priorities == 0);
    CHECK(b.group.status().inconsistent_priorities == 0);

    // A crashes: B takes both after its Master_Down_Interval.
    sim.kill(ua);
    Time last = sim.last_advert(ua, 0, sim.now);
    sim.run_until(120 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"b"});
    CHECK(sim.masters(2) == std::vector<std::string>{"b"});
    CHECK(sim.first("b", ActionKind::BecomeMaster, 100 * S) ==
          std::optional<Time>(last + master_down_interval(100, 100)));
}

TEST_CASE("ha sync: peer priorities that disagree per link are stable and counted") {
    // A is better on the LAN, B on the WAN: a configuration error. Whichever box
    // is ready first takes both links and the other box's better member is held
    // silent, so it is never heard: stable. B notices and counts it.
    Box a("a", 200, 100, 1), b("b", 100, 200, 2);
    Sim sim;
    auto ua = sim.add_group(a.group, {1, 2}, "a");
    auto ub = sim.add_group(b.group, {1, 2}, "b");
    sim.startup(ua);
    sim.run_until(S / 2);
    sim.startup(ub);
    sim.run_until(120 * S);
    CHECK(sim.masters(1) == std::vector<std::string>{"a"});
    CHECK(sim.masters(2) == std::vector<std::string>{"a"});
    CHECK(sim.transitions_since(10 * S) == 0);
    CHECK(b.group.status().inconsistent_priorities == 1);
    CHECK(b.wan.ready_for_master());   // B's WAN would win its own election, held by the group

    // Split and heal: both boxes become master on their side, then meet. Both
    // orders of who speaks first converge to one master on both links.
    for (int who : {0, 1}) {
        INFO("first advert after healing from " << (who == 0 ? "a" : "b"));
        Box c("c", 200, 100, 1), d("d", 100, 200, 2);
        Sim s2;
        auto uc = s2.add_group(c.group, {1, 2}, "c");
        auto ud = s2.add_group(d.group, {3, 4}, "d");   // partitioned
        s2.startup(who == 0 ? uc : ud);
        s2.run_until(S / 4);
        s2.startup(who == 0 ? ud : uc);
        s2.run_until(10 * S);
        REQUIRE(s2.masters(1) == std::vector<std::string>{"c"});
        REQUIRE(s2.masters(3) == std::vector<std::string>{"d"});
        s2.move(ud, 0, 1);
        s2.move(ud, 1, 2);
        s2.run_until(60 * S);
        auto m1 = s2.masters(1), m2 = s2.masters(2);
        REQUIRE(m1.size() == 1);
        CHECK(m1 == m2);   // the same box on both links
        CHECK(s2.transitions_since(20 * S) == 0);
    }
}
