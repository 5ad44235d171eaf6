// The injector: tunnel routes in the RIB -> zebra's desired set, with the
// safety net (owner, default route, allowed set, per-site limit), per-cloud
// and per-site attributes, and prefixes shared by two sites.
#include <catch2/catch.hpp>

#include "control/config/routing.h"
#include "control/routing/injector.h"
#include "control/routing/rib.h"
#include "control/routing/zapi_session.h"
#include "src/common/log.h"

using namespace nimbus;
using namespace nimbus::routing;

namespace {

const bool quiet = [] {
    log::set_level(log::Level::Error);
    return true;
}();

Prefix P(const char* s) { return *Prefix::parse(s); }

Route tunnel(const char* prefix, const std::string& site) {
    return Route{P(prefix), Source::Tunnel, 10, NextHop{NextHop::Kind::Drop, -1, {}}, 0, site};
}

struct Fixture {
    ZapiSession zapi;
    std::map<std::pair<int, std::string>, std::vector<Prefix>> allowed;
    InjectPolicy policy;
    std::unique_ptr<Injector> inj;

    Fixture() {
        policy.defaults = InjectAttrs{7, 100, 0};
        policy.max_prefixes_per_site = 1000;
        InjectPolicy::Cloud corp;
        corp.name = "corp";
        corp.tag = 200;
        policy.clouds[1] = corp;
        InjectPolicy::Site gold;
        gold.tag = 142;
        gold.metric = 50;
        gold.distance = 15;
        gold.max_prefixes = 2;
        policy.sites["gold"] = gold;
        allowed[{0, "s1"}] = {P("10.16.1.0/24"), P("2001:db8:16::/48")};
        allowed[{1, "s2"}] = {P("10.32.0.0/16")};
        allowed[{0, "gold"}] = {P("10.64.0.0/16")};
        allowed[{0, "twin"}] = {P("10.16.1.0/24")};
        make();
    }
    void make() {
        inj = std::make_unique<Injector>(
            policy,
            [this](int vrf, const std::string& s) -> std::optional<std::vector<Prefix>> {
                auto it = allowed.find({vrf, s});
                if (it == allowed.end()) return std::nullopt;
                return it->second;
            },
            &zapi);
    }
    std::optional<RouteStatus> z(const char* p) { return zapi.route(0, P(p)); }
};

}  // namespace

TEST_CASE("tunnel routes inside the allowed set are injected with cloud and site attributes") {
    Fixture f;
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    f.inj->on_rib(0, tunnel("2001:db8:16:1::/64", "s1"), true);
    f.inj->on_rib(1, tunnel("10.32.5.0/24", "s2"), true);
    f.inj->on_rib(0, tunnel("10.64.1.0/24", "gold"), true);
    REQUIRE(f.z("10.16.1.0/24"));
    CHECK(f.z("10.16.1.0/24")->tag == 7);  // defaults: no cloud for VRF 0, no site entry
    CHECK(f.z("10.16.1.0/24")->metric == 100);
    CHECK(f.z("10.16.1.0/24")->distance == 0);
    REQUIRE(f.z("2001:db8:16:1::/64"));
    // Cloud corp (VRF 1) sets the tag, the metric stays the default; into
    // FRR's default VRF (0) whatever the nimbus VRF.
    REQUIRE(f.z("10.32.5.0/24"));
    CHECK(f.z("10.32.5.0/24")->tag == 200);
    CHECK(f.z("10.32.5.0/24")->metric == 100);
    // The site entry overrides everything it sets.
    REQUIRE(f.z("10.64.1.0/24"));
    CHECK(f.z("10.64.1.0/24")->tag == 142);
    CHECK(f.z("10.64.1.0/24")->metric == 50);
    CHECK(f.z("10.64.1.0/24")->distance == 15);
    CHECK(f.zapi.route_count() == 4);
    CHECK(f.inj->injected_prefixes() == 4);
    CHECK(f.inj->counters().accepted == 4);

    // Down: deleted from the desired set.
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), false);
    CHECK_FALSE(f.z("10.16.1.0/24"));
    CHECK(f.inj->counters().withdrawn == 1);
    CHECK(f.zapi.route_count() == 3);
}

TEST_CASE("the safety net refuses what a site must never announce") {
    Fixture f;
    struct Case {
        int vrf;
        const char* prefix;
        const char* site;
        Verdict v;
    };
    const Case cases[] = {
        {0, "0.0.0.0/0", "s1", Verdict::DefaultRoute},
        {0, "::/0", "s1", Verdict::DefaultRoute},
        {0, "10.16.0.0/16", "s1", Verdict::NotAllowed},      // wider than allowed
        {0, "10.17.1.0/24", "s1", Verdict::NotAllowed},      // beside it
        {0, "10.32.5.0/24", "s1", Verdict::NotAllowed},      // another site's prefix
        {1, "10.16.1.0/24", "s1", Verdict::UnknownSite},     // s1 is not known in VRF 1
        {0, "10.16.1.0/24", "nobody", Verdict::UnknownSite},
        {0, "10.16.1.0/24", "", Verdict::NoOwner},
        {0, "2001:db8:17::/48", "s1", Verdict::NotAllowed},  // v6 outside
        {0, "10.16.1.128/25", "s1", Verdict::Injected},      // more specific: fine
    };
    for (auto& c : cases) {
        INFO(c.prefix << " site " << c.site);
        f.inj->on_rib(c.vrf, tunnel(c.prefix, c.site), true);
        bool found = false;
        for (auto& e : f.inj->entries())
            if (e.vrf == c.vrf && e.site == c.site && e.prefix == P(c.prefix)) {
                found = true;
                CHECK(e.verdict == c.v);
            }
        CHECK(found);
        CHECK(f.zapi.route(0, P(c.prefix)).has_value() == (c.v == Verdict::Injected));
    }
    CHECK(f.zapi.route_count() == 1);
    auto& c = f.inj->counters();
    CHECK(c.refused_default == 2);
    CHECK(c.refused_not_allowed == 4);
    CHECK(c.refused_unknown_site == 2);
    CHECK(c.refused_no_owner == 1);
    CHECK(f.inj->last_refusal() == "2001:db8:17::/48 of site 's1': refused: outside the site's allowed prefixes");
    // A refused route going away changes nothing in zebra.
    f.inj->on_rib(0, tunnel("0.0.0.0/0", "s1"), false);
    CHECK(f.zapi.route_count() == 1);
    CHECK(c.withdrawn == 0);
}

TEST_CASE("a site over its prefix limit is refused, and admitted when room appears") {
    Fixture f;  // gold: max 2
    f.inj->on_rib(0, tunnel("10.64.1.0/24", "gold"), true);
    f.inj->on_rib(0, tunnel("10.64.2.0/24", "gold"), true);
    f.inj->on_rib(0, tunnel("10.64.3.0/24", "gold"), true);
    CHECK(f.z("10.64.1.0/24"));
    CHECK(f.z("10.64.2.0/24"));
    CHECK_FALSE(f.z("10.64.3.0/24"));
    CHECK(f.inj->counters().refused_over_limit == 1);
    CHECK(f.inj->site_count(0, "gold") == 2);
    f.inj->on_rib(0, tunnel("10.64.1.0/24", "gold"), false);
    CHECK_FALSE(f.z("10.64.1.0/24"));
    CHECK(f.z("10.64.3.0/24"));  // took the free place
    CHECK(f.inj->counters().admitted_later == 1);
    CHECK(f.inj->site_count(0, "gold") == 2);
    // The global limit applies to sites without an entry.
    f.policy.max_prefixes_per_site = 1;
    f.make();
    f.inj->on_rib(0, tunnel("10.16.1.0/25", "s1"), true);
    f.inj->on_rib(0, tunnel("10.16.1.128/25", "s1"), true);
    CHECK(f.inj->site_count(0, "s1") == 1);
    CHECK(f.inj->counters().refused_over_limit == 1);
}

TEST_CASE("a prefix held by two sites is injected once and withdrawn with the last holder") {
    Fixture f;
    f.policy.sites["twin"].tag = 99;
    f.make();
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "twin"), true);
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    CHECK(f.zapi.route_count() == 1);
    CHECK(f.inj->counters().shared == 1);
    // The first holder in (vrf, site) order gives the attributes: s1 < twin.
    CHECK(f.z("10.16.1.0/24")->tag == 7);
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), false);
    REQUIRE(f.z("10.16.1.0/24"));
    CHECK(f.z("10.16.1.0/24")->tag == 99);
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "twin"), false);
    CHECK_FALSE(f.z("10.16.1.0/24"));
}

TEST_CASE("the injector follows the RIB and ignores other sources") {
    Fixture f;
    Rib rib;
    rib.add_observer([&](int vrf, const Route& r, bool added) { f.inj->on_rib(vrf, r, added); });
    rib.add(0, tunnel("10.16.1.0/24", "s1"));
    rib.add(0, Route{P("10.16.2.0/24"), Source::Static, 1, NextHop{NextHop::Kind::Drop, -1, {}}, 0, ""});
    rib.add(0, Route{P("10.16.3.0/24"), Source::Fpm, 200, NextHop{NextHop::Kind::Drop, -1, {}}, 0, ""});
    CHECK(f.zapi.route_count() == 1);
    CHECK(f.z("10.16.1.0/24"));
    // The same route again (a rekey re-adding it) is no second holder.
    rib.add(0, tunnel("10.16.1.0/24", "s1"));
    CHECK(f.inj->counters().accepted == 1);
    rib.remove(0, P("10.16.1.0/24"), Source::Tunnel);
    CHECK(f.zapi.route_count() == 0);
    CHECK(f.inj->counters().withdrawn == 1);
}

TEST_CASE("injected routes reach zebra once it answers HELLO, and again after a reconnect") {
    Fixture f;
    // Desired while zebra is not there yet.
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    f.inj->on_rib(0, tunnel("10.64.1.0/24", "gold"), true);
    for (int round = 0; round < 2; round++) {
        f.zapi.on_connected(1000);
        // CAPABILITIES as FRR 8.4.4 sends it (frr-zapi.md §4.5).
        const uint8_t caps[] = {0x00, 0x14, 0xfe, 0x06, 0, 0, 0, 0, 0x00, 0x13,
                                0,    0,    0,    0,    0, 0, 0, 1, 0,    0};
        f.zapi.on_bytes(caps, 1001);
        while (f.zapi.has_work()) f.zapi.pump();
        CHECK(f.zapi.phase() == ZapiPhase::Synced);
        CHECK(f.zapi.counters().adds_sent == uint64_t(2 * (round + 1)));
        f.zapi.consume_output(f.zapi.pending_output().size());
        f.zapi.on_disconnected(2000);
    }
}

TEST_CASE("every route type the config accepts is one the pinned codec knows and zebra owns in HELLO") {
    for (const char* name : nimbus::config::kInjectRouteTypes) {
        INFO(name);
        auto t = zapi::parse_route_type(name);
        REQUIRE(t);
        // zebra records the HELLO's type only if CONNECT < type < ROUTE_MAX
        // (frr-zapi.md §4.5), and BGP's own types are never ours.
        CHECK(uint8_t(*t) > uint8_t(zapi::RouteType::Connect));
        CHECK(uint8_t(*t) < zapi::kRouteTypeMax - 1);
        CHECK(*t != zapi::RouteType::Bgp);
    }
    CHECK(zapi::rtprot_for(*zapi::parse_route_type("nhrp")) == 191);
}

TEST_CASE("an inactive injector (HA backup) announces nothing and catches up when active") {
    Fixture f;
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    f.inj->on_rib(0, tunnel("10.64.1.0/24", "gold"), true);
    CHECK(f.zapi.route_count() == 2);
    f.inj->set_active(false);
    CHECK(f.zapi.route_count() == 0);
    // Changes while inactive are judged and remembered, not announced.
    f.inj->on_rib(0, tunnel("10.64.2.0/24", "gold"), true);
    f.inj->on_rib(0, tunnel("10.16.1.0/24", "s1"), false);
    f.inj->on_rib(0, tunnel("0.0.0.0/0", "s1"), true);
    CHECK(f.zapi.route_count() == 0);
    CHECK(f.inj->injected_prefixes() == 2);
    f.inj->set_active(true);
    CHECK(f.zapi.route_count() == 2);
    REQUIRE(f.z("10.64.2.0/24"));
    CHECK(f.z("10.64.2.0/24")->tag == 142);
    CHECK_FALSE(f.z("10.16.1.0/24"));
    CHECK_FALSE(f.z("0.0.0.0/0"));
}
