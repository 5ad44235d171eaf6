// Host routes: which tunnel prefixes get a kernel route (default VRF only,
// never a default route or one overlapping the box's own subnets), reference
// counting across sites, batching, and failures.
#include <catch2/catch.hpp>

#include "control/routing/host_routes.h"
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

struct Kernel {
    std::set<Prefix> table;
    std::vector<std::string> ops;
    bool fail = false;
    HostRoutes::Apply fn() {
        return [this](const Prefix& p, bool add, std::string* err) {
            ops.push_back((add ? "+" : "-") + p.str());
            if (fail) {
                *err = "File exists";
                return false;
            }
            if (add) table.insert(p);
            else table.erase(p);
            return true;
        };
    }
};

}  // namespace

TEST_CASE("tunnel prefixes of the default VRF get kernel routes, batched and reference counted") {
    Kernel k;
    HostRoutes h({P("192.0.2.0/24"), P("10.0.0.0/24"), P("2001:db8:1::/64")}, k.fn());
    h.on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    h.on_rib(0, tunnel("10.16.1.0/24", "s2"), true);  // a second holder
    h.on_rib(0, tunnel("2001:db8:16::/48", "s1"), true);
    h.on_rib(1, tunnel("10.32.0.0/24", "s3"), true);  // another VRF: no kernel there
    h.on_rib(0, Route{P("10.48.0.0/24"), Source::Static, 1, NextHop{}, 0, ""}, true);  // not a tunnel
    CHECK(k.ops.empty());  // nothing until pumped
    CHECK(h.has_work());
    CHECK(h.pump(1) == 1);
    CHECK(h.pump(10) == 1);
    CHECK_FALSE(h.has_work());
    CHECK(k.table == std::set<Prefix>{P("10.16.1.0/24"), P("2001:db8:16::/48")});
    CHECK(h.installed() == 2);

    h.on_rib(0, tunnel("10.16.1.0/24", "s1"), false);
    h.pump(10);
    CHECK(k.table.count(P("10.16.1.0/24")));  // s2 still holds it
    h.on_rib(0, tunnel("10.16.1.0/24", "s2"), false);
    h.pump(10);
    CHECK_FALSE(k.table.count(P("10.16.1.0/24")));

    // Up and down again before a pump: nothing reaches the kernel.
    k.ops.clear();
    h.on_rib(0, tunnel("10.16.9.0/24", "s9"), true);
    h.on_rib(0, tunnel("10.16.9.0/24", "s9"), false);
    CHECK(h.pump(10) == 0);
    CHECK(k.ops.empty());
}

TEST_CASE("no kernel route for a default route or one overlapping the box's own subnets") {
    Kernel k;
    HostRoutes h({P("192.0.2.0/24"), P("10.0.0.0/24")}, k.fn());
    for (const char* p : {"0.0.0.0/0", "::/0", "10.0.0.0/8", "10.0.0.128/25", "192.0.2.0/24"})
        h.on_rib(0, tunnel(p, "evil"), true);
    h.pump(100);
    CHECK(k.ops.empty());
    CHECK(h.refused() == 5);
    CHECK(h.last_error() == "192.0.2.0/24 overlaps the box's own subnet 192.0.2.0/24: no kernel route");
    // Removing what was refused is harmless.
    h.on_rib(0, tunnel("10.0.0.0/8", "evil"), false);
    CHECK_FALSE(h.has_work());
}

TEST_CASE("a kernel failure is counted and reported, and does not stick") {
    Kernel k;
    k.fail = true;
    HostRoutes h({}, k.fn());
    h.on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    h.pump(10);
    CHECK(h.failures() == 1);
    CHECK(h.installed() == 0);
    CHECK(h.last_error() == "kernel route add 10.16.1.0/24: File exists");
    k.fail = false;
    h.on_rib(0, tunnel("10.16.1.0/24", "s1"), false);
    h.on_rib(0, tunnel("10.16.1.0/24", "s1"), true);
    h.pump(10);
    CHECK(h.installed() == 1);
}
