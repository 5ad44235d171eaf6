#include "control/routing/rib_cli.h"

#include <fmt/format.h>

namespace nimbus::routing {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

Result show_routes(const RibCliContext& c, const Args& a, Family fam) {
    std::vector<int> vrfs;
    if (a.has("VRF")) {
        for (size_t i = 0; i < c.vrf_names.size(); i++)
            if (c.vrf_names[i] == a.get("VRF")) vrfs.push_back(int(i));
        if (vrfs.empty()) return Result::error("% No such VRF: " + a.get("VRF"));
    } else {
        vrfs.push_back(0);
    }
    bool all = a.words.size() > 0 && a.words.back() == "all";
    std::string text =
        "Codes: C - connected, L - local, S - static, T - tunnel, F - learned from FRR (FPM), N - neighbour\n"
        "       > - selected (in the FIB), * - usable\n";
    json out = json::array();
    for (int v : vrfs) {
        text += fmt::format("\nVRF {}:\n", c.vrf_names[size_t(v)]);
        for (auto& rv : c.rib->view(v, fam, all)) {
            const Route& r = rv.route;
            std::string port = rv.port >= 0 && size_t(rv.port) < c.port_names.size() ? c.port_names[size_t(rv.port)] : "";
            std::string nh;
            json jnh;
            switch (r.nh.kind) {
                case NextHop::Kind::Local: nh = "is local"; jnh = {{"type", "local"}}; break;
                case NextHop::Kind::Drop: nh = "blackhole"; jnh = {{"type", "blackhole"}}; break;
                case NextHop::Kind::Glean:
                    nh = "is directly connected, " + port;
                    jnh = {{"type", "connected"}, {"port", port}};
                    break;
                case NextHop::Kind::Tunnel: {
                    std::string tn = c.tunnel_name ? c.tunnel_name(r.nh.tunnel) : std::to_string(r.nh.tunnel);
                    nh = "via tunnel " + tn;
                    jnh = {{"type", "tunnel"}, {"tunnel", tn}};
                    break;
                }
                case NextHop::Kind::Gateway:
                    nh = "via " + r.nh.gateway.str() + (port.empty() ? "" : ", " + port);
                    jnh = {{"type", "gateway"}, {"via", r.nh.gateway.str()}, {"port", port}};
                    break;
            }
            if (!rv.active) nh += " (inactive: " + rv.reason + ")";
            text += fmt::format("{}{}{} {} [{}] {}\n", source_code(r.source), rv.selected ? '>' : ' ',
                                rv.active ? '*' : ' ', r.prefix.str(), r.distance, nh);
            out.push_back({{"vrf", c.vrf_names[size_t(v)]},
                           {"prefix", r.prefix.str()},
                           {"source", source_name(r.source)},
                           {"distance", r.distance},
                           {"selected", rv.selected},
                           {"active", rv.active},
                           {"nexthop", jnh}});
        }
    }
    return Result{0, text, out};
}

}  // namespace

void register_commands(mgmt::Registry& reg, RibCliContext ctx) {
    reg.add("show ip route [vrf VRF]", "IPv4 routes (add 'all' for neighbour host routes)",
            [ctx](const Args& a) { return show_routes(ctx, a, Family::V4); });
    reg.add("show ip route [vrf VRF] all", "IPv4 routes including neighbour host routes",
            [ctx](const Args& a) { return show_routes(ctx, a, Family::V4); });
    reg.add("show ipv6 route [vrf VRF]", "IPv6 routes",
            [ctx](const Args& a) { return show_routes(ctx, a, Family::V6); });
    reg.add("show ipv6 route [vrf VRF] all", "IPv6 routes including neighbour host routes",
            [ctx](const Args& a) { return show_routes(ctx, a, Family::V6); });
}

}  // namespace nimbus::routing
