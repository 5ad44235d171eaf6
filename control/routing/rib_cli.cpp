#include "control/routing/rib_cli.h"

#include <fmt/format.h>

namespace nimbus::routing {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

// One listed route, copied on the control thread (the tunnel's name too);
// the text or JSON is built from these by the reply's writer: a VRF may
// hold 100,000 site prefixes.
struct Line {
    int vrf;
    RouteView rv;
    std::string tunnel;
};

std::string port_of(const Line& l, const std::vector<std::string>& ports) {
    int p = l.rv.port;
    return p >= 0 && size_t(p) < ports.size() ? ports[size_t(p)] : "";
}

std::string nh_text(const Line& l, const std::vector<std::string>& ports) {
    const NextHop& n = l.rv.route.nh;
    std::string port = port_of(l, ports), nh;
    switch (n.kind) {
        case NextHop::Kind::Local: nh = "is local"; break;
        case NextHop::Kind::Drop: nh = "blackhole"; break;
        case NextHop::Kind::Glean: nh = "is directly connected, " + port; break;
        case NextHop::Kind::Tunnel: nh = "via tunnel " + l.tunnel; break;
        case NextHop::Kind::Gateway: nh = "via " + n.gateway.str() + (port.empty() ? "" : ", " + port); break;
    }
    if (!l.rv.active) nh += " (inactive: " + l.rv.reason + ")";
    return nh;
}

json nh_json(const Line& l, const std::vector<std::string>& ports) {
    const NextHop& n = l.rv.route.nh;
    switch (n.kind) {
        case NextHop::Kind::Local: return {{"type", "local"}};
        case NextHop::Kind::Drop: return {{"type", "blackhole"}};
        case NextHop::Kind::Glean: return {{"type", "connected"}, {"port", port_of(l, ports)}};
        case NextHop::Kind::Tunnel: return {{"type", "tunnel"}, {"tunnel", l.tunnel}};
        case NextHop::Kind::Gateway:
            return {{"type", "gateway"}, {"via", n.gateway.str()}, {"port", port_of(l, ports)}};
    }
    return nullptr;
}

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
    auto lines = std::make_shared<std::vector<Line>>();
    for (int v : vrfs)
        for (auto& rv : c.rib->view(v, fam, all)) {
            std::string tn;
            if (rv.route.nh.kind == NextHop::Kind::Tunnel)
                tn = c.tunnel_name ? c.tunnel_name(rv.route.nh.tunnel) : std::to_string(rv.route.nh.tunnel);
            lines->push_back(Line{v, std::move(rv), std::move(tn)});
        }
    Result res{0, "", nullptr};
    if (a.json) {
        res.make_data = [lines, names = c.vrf_names, ports = c.port_names] {
            json out = json::array();
            for (auto& l : *lines) {
                const Route& r = l.rv.route;
                out.push_back({{"vrf", names[size_t(l.vrf)]},
                               {"prefix", r.prefix.str()},
                               {"source", source_name(r.source)},
                               {"distance", r.distance},
                               {"selected", l.rv.selected},
                               {"active", l.rv.active},
                               {"nexthop", nh_json(l, ports)}});
            }
            return out;
        };
        return res;
    }
    res.make_text = [lines, vrfs, names = c.vrf_names, ports = c.port_names] {
        std::string text =
            "Codes: C - connected, L - local, S - static, T - tunnel, F - learned from FRR (FPM), N - neighbour\n"
            "       > - selected (in the FIB), * - usable\n";
        size_t i = 0;
        for (int v : vrfs) {
            text += fmt::format("\nVRF {}:\n", names[size_t(v)]);
            for (; i < lines->size() && (*lines)[i].vrf == v; i++) {
                const Line& l = (*lines)[i];
                const Route& r = l.rv.route;
                text += fmt::format("{}{}{} {} [{}] {}\n", source_code(r.source), l.rv.selected ? '>' : ' ',
                                    l.rv.active ? '*' : ' ', r.prefix.str(), r.distance, nh_text(l, ports));
            }
        }
        return text;
    };
    return res;
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
