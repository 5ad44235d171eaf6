#include "control/daemon/show.h"

#include <fmt/format.h>

#include "control/daemon/daemon.h"
#include "control/routing/rib_cli.h"
#include "src/common/clock.h"
#include "src/common/table.h"

namespace nimbus::show {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

Result interfaces(Daemon& d, const Args& a) {
    Table t({{"Interface", "name"},
             {"Device", "device"},
             {"Driver", "driver"},
             {"MAC", "mac"},
             {"Link", "link"},
             {"MTU", "mtu", true},
             {"VRF", "vrf"},
             {"Addresses", "addresses"},
             {"Rx packets", "rx_packets", true},
             {"Tx packets", "tx_packets", true},
             {"Punted", "punted", true},
             {"Drops", "drops", true}});
    for (int i = 0; i < dp::port_count(); i++) {
        if (a.has("PORT") && d.port_name(i) != a.get("PORT")) continue;
        dp::PortInfo pi = dp::port_info(i);
        dp::PortCounters c = dp::port_counters(i, -1);
        uint64_t drops = 0;
        for (auto x : c.drops) drops += x;
        json addrs = json::array();
        for (auto& ad : d.config().ports[size_t(i)].addresses) addrs.push_back(ad.str());
        t.row({pi.name, pi.device.substr(0, pi.device.find(',')), pi.driver, pi.mac.str(),
               d.port_link_up(i) ? "up" : "down", pi.mtu, d.config().vrfs[size_t(pi.vrf)].name, addrs, c.rx_packets,
               c.tx_packets, c.punted, drops});
    }
    if (a.has("PORT") && t.size() == 0) return Result::error("% No such interface: " + a.get("PORT"));
    return Result{0, t.text(), t.json()};
}

json port_json(const dp::PortCounters& c) {
    json drops = json::object();
    for (int k = 0; k < dp::kDropCount; k++) drops[dp::drop_name(k)] = c.drops[k];
    return {{"rx_packets", c.rx_packets}, {"rx_bytes", c.rx_bytes}, {"tx_packets", c.tx_packets},
            {"tx_bytes", c.tx_bytes},     {"punted", c.punted},     {"injected", c.injected},
            {"reassembled", c.reassembled},
            {"drops", drops}};
}

std::string port_text(const std::string& title, const dp::PortCounters& c) {
    std::string s = fmt::format("{}\n  rx {} packets {} bytes, tx {} packets {} bytes, punted {}, injected {}\n",
                                title, c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.punted, c.injected);
    for (int k = 0; k < dp::kDropCount; k++)
        if (c.drops[k]) s += fmt::format("  drop {:<20} {:>12}  {}\n", dp::drop_name(k), c.drops[k], dp::drop_help(k));
    return s;
}

Result counters(Daemon& d, const Args&) {
    json j;
    std::string text;
    j["ports"] = json::array();
    for (int i = 0; i < dp::port_count(); i++) {
        dp::PortInfo pi = dp::port_info(i);
        json pj = port_json(dp::port_counters(i, -1));
        pj["name"] = pi.name;
        pj["hw_rx_missed"] = pi.hw_rx_missed;
        pj["hw_rx_errors"] = pi.hw_rx_errors;
        pj["hw_tx_errors"] = pi.hw_tx_errors;
        pj["rx_nombuf"] = pi.rx_nombuf;
        pj["workers"] = json::array();
        text += port_text(fmt::format("Port {}:", pi.name), dp::port_counters(i, -1));
        text += fmt::format("  device: rx missed {}, rx errors {}, tx errors {}, rx no buffer {}\n",
                            pi.hw_rx_missed, pi.hw_rx_errors, pi.hw_tx_errors, pi.rx_nombuf);
        for (int w = 0; w < dp::worker_count(); w++) {
            json wj = port_json(dp::port_counters(i, w));
            wj["worker"] = w;
            pj["workers"].push_back(wj);
            if (dp::worker_count() > 1) text += port_text(fmt::format("  worker {}:", w), dp::port_counters(i, w));
        }
        j["ports"].push_back(pj);
    }
    Table pt({{"Punt class", "class"}, {"Punted", "punted", true}, {"Policed", "policed", true},
              {"Queue full", "ring_full", true}});
    dp::PuntCounters pc = dp::punt_counters(-1);
    for (int k = 0; k < dp::kPuntClassCount; k++)
        pt.row({dp::punt_class_name(k), pc.punted[k], pc.policed[k], pc.ring_full[k]});
    j["punt"] = pt.json();
    text += '\n';
    text += pt.text();
    Table wt({{"Worker", "worker", true}, {"Lcore", "lcore", true}, {"Loops", "loops", true},
              {"Busy loops", "busy_loops", true}, {"Sleeps", "sleeps", true}});
    for (int w = 0; w < dp::worker_count(); w++) {
        dp::WorkerInfo wi = dp::worker_info(w);
        wt.row({w, wi.lcore, wi.loops, wi.busy_loops, wi.sleeps});
    }
    j["workers"] = wt.json();
    text += '\n';
    text += wt.text();
    j["esp"] = {{"crypto", dp::crypto_describe()}, {"tunnels", dp::tunnel_ids().size()}};
    text += fmt::format("\nESP: {} tunnel(s), crypto {} (per-SA counters: show ipsec sa)\n", dp::tunnel_ids().size(),
                        dp::crypto_describe());
    const HostIfStats& h = d.hostif_stats();
    j["host"] = {{"to_kernel", h.to_kernel},         {"to_kernel_dropped", h.to_kernel_dropped},
                 {"from_kernel", h.from_kernel},     {"from_kernel_dropped", h.from_kernel_dropped},
                 {"held", h.held},                   {"held_resolved", h.held_resolved},
                 {"held_expired", h.held_expired},   {"held_overflow", h.held_overflow},
                 {"icmp_errors_sent", h.icmp_sent}};
    text += fmt::format(
        "\nHost interfaces: to kernel {} (dropped {}), from kernel {} (dropped {})\n"
        "Unresolved next hops: held {}, resolved {}, expired {}, overflow {}; ICMP errors sent {}\n",
        h.to_kernel, h.to_kernel_dropped, h.from_kernel, h.from_kernel_dropped, h.held, h.held_resolved,
        h.held_expired, h.held_overflow, h.icmp_sent);
    return Result{0, text, j};
}

Result version(Daemon& d, const Args&) {
    json j = {{"nimbus", NIMBUS_VERSION},
              {"dpdk", dp::dpdk_version()},
              {"node", d.config().node.name},
              {"role", d.config().node.role == config::Role::Edge ? "edge" : "concentrator"},
              {"uptime_s", wall_s() - d.started_at()}};
    const control::Loop::Stats& ls = d.loop().stats();
    j["control_loop"] = {{"callbacks", ls.callbacks},
                         {"slow_callbacks", ls.slow},
                         {"max_callback_ms", double(ls.max_ns / 1000) / 1000}};
    std::string text = fmt::format("nimbus {} ({})\nnode {} ({}), up {} s\n", NIMBUS_VERSION, dp::dpdk_version(),
                                   d.config().node.name, j["role"].get<std::string>(), j["uptime_s"].get<uint64_t>());
    text += fmt::format("control thread: {} callbacks, {} held it over 50 ms, longest {:.1f} ms\n", ls.callbacks,
                        ls.slow, double(ls.max_ns) / 1e6);
    return Result{0, text, j};
}

}  // namespace

void register_all(mgmt::Registry& reg, Daemon& d) {
    reg.add("show interfaces [PORT]", "ports and their host interfaces",
            [&d](const Args& a) { return interfaces(d, a); });
    reg.add("show counters", "packet counters per port and worker, drops by reason, punt path",
            [&d](const Args& a) { return counters(d, a); });
    reg.add("show version", "software versions and uptime", [&d](const Args& a) { return version(d, a); });
    reg.add("help", "list commands", [&reg](const Args&) {
        Table t({{"Command", "command"}, {"Description", "help"}});
        for (auto& [p, h] : reg.list()) t.row({p, h});
        return Result{0, t.text(), t.json()};
    });
    reg.values("PORT", [&d] {
        std::vector<std::string> v;
        for (auto& p : d.config().ports) v.push_back(p.name);
        return v;
    });
    reg.values("VRF", [&d] {
        std::vector<std::string> v;
        for (auto& x : d.config().vrfs) v.push_back(x.name);
        return v;
    });
    routing::RibCliContext ctx;
    ctx.rib = &d.rib();
    for (auto& v : d.config().vrfs) ctx.vrf_names.push_back(v.name);
    for (auto& p : d.config().ports) ctx.port_names.push_back(p.name);
    ctx.tunnel_name = [&d](uint32_t id) { return d.tunnels().name(id); };
    routing::register_commands(reg, ctx);
    register_ops(reg, d);
    register_capture(reg, d);
    register_alarms(reg, d);
}

}  // namespace nimbus::show
