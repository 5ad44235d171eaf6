// Operating the box: config commands (show, check, diff, apply), the HTTPS
// API hooks and the Prometheus collectors of the core (ports, drops, punt
// path, workers, routes). Features register their own next to their code.
#include <fmt/format.h>

#include "control/config/diff.h"
#include "control/daemon/daemon.h"
#include "control/daemon/show.h"
#include "src/common/clock.h"
#include "src/common/files.h"
#include "src/common/table.h"

namespace nimbus::show {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

// What apply_text() answered, as the CLI shows it.
Result apply_result(json j, const std::string& op) {
    int code = j.value("http", 500);
    std::string s;
    if (j.contains("errors"))
        for (auto& e : j["errors"]) s += e.get<std::string>() + "\n";
    if (j.contains("diff"))
        for (auto& l : j["diff"]) s += l.get<std::string>() + "\n";
    if (j.contains("plan") && !j["plan"].empty()) {
        s += "operations:\n";
        for (auto& l : j["plan"]) s += "  " + l.get<std::string>() + "\n";
    }
    if (j.contains("error")) s += "% " + j["error"].get<std::string>() + "\n";
    if (op == "apply" && code == 200)
        s += j.value("applied", false) ? fmt::format("applied, version {}\n", j.value("version", "").substr(0, 12))
                                       : "no change\n";
    if (op == "rollback" && code == 200)
        s += fmt::format("rolled back to version {}\n", j.value("version", "").substr(0, 12));
    j.erase("http");
    return Result{code == 200 ? 0 : 1, s, j};
}

// config check|diff|apply FILE. Deferred: the file is read, parsed and
// planned on the thread that sends the reply, and an apply has the control
// thread run only its steps (at 20,000 tunnels the parse alone takes
// seconds that VRRP adverts, IKE and ZAPI cannot wait).
Result config_file_op(Daemon& d, const Args& a, const std::string& op) {
    auto open = d.hold_open();
    if (!open) return Result::error("% nimbusd is stopping");
    Result r;
    r.make = [&d, open, path = a.get("FILE"), op]() -> Result {
        std::string text;
        if (!read_file(path, &text)) return Result::error(fmt::format("% cannot read {}", path));
        if (op == "check") {
            auto res = config::parse(text, path);
            if (!res.ok()) {
                std::string s;
                for (auto& e : res.errors) s += e + "\n";
                return Result{1, s + fmt::format("% {} error{}", res.errors.size(), res.errors.size() == 1 ? "" : "s"),
                              json{{"valid", false}, {"errors", res.errors}}};
            }
            return Result{0, fmt::format("{}: configuration is valid\n", path), json{{"valid", true}}};
        }
        return apply_result(d.apply_text(text, path, "cli", op == "diff"), op);
    };
    return r;
}

}  // namespace

void register_ops(mgmt::Registry& reg, Daemon& d) {
    reg.add("config show [running]", "the running config (secrets redacted)", [&d](const Args&) {
        Result r;
        r.make = [text = d.running_redacted(), version = d.running_version()] {
            return Result{0, text, json{{"version", version}, {"text", text}}};
        };
        return r;
    });
    reg.add("config show candidate", "the config file as it is now on disk (secrets redacted)", [&d](const Args&) {
        Result r;
        r.make = [file = d.config().file] {
            std::string t;
            if (!read_file(file, &t)) return Result::error("% cannot read " + file);
            std::string red = config::redact(t);
            return Result{0, red, json{{"version", config::hash(t)}, {"text", red}}};
        };
        return r;
    });
    reg.add("config check FILE", "validate a config file", [&d](const Args& a) { return config_file_op(d, a, "check"); });
    reg.add("config diff FILE", "what applying a config file would change",
            [&d](const Args& a) { return config_file_op(d, a, "diff"); });
    reg.add("config apply FILE", "validate a config file and apply what changed",
            [&d](const Args& a) { return config_file_op(d, a, "apply"); });
    reg.add("config history", "the configs kept for rollback, newest first", [&d](const Args&) {
        Table t({{"Back", "back", true}, {"Version", "version"}, {"Applied", "applied"}, {"By", "by"}});
        auto& h = d.history();
        for (size_t i = h.size(); i-- > 0;)
            t.row({h.size() - 1 - i, h[i].version.substr(0, 12), h[i].when, h[i].who});
        return Result{0, t.text(), t.json()};
    });
    reg.add("config rollback N", "apply the config applied N changes ago (see config history)", [&d](const Args& a) {
        int n = 0;
        try {
            n = std::stoi(a.get("N"));
        } catch (...) {
            return Result::error("% N must be a number (1 = the config before the running one)");
        }
        std::string err;
        auto text = d.history_text(n, &err);
        if (!text) return Result::error("% " + err);
        auto open = d.hold_open();
        if (!open) return Result::error("% nimbusd is stopping");
        Result r;
        r.make = [&d, open, text = std::move(*text), n] {
            return apply_result(d.rollback(text, n, "cli:rollback"), "rollback");
        };
        return r;
    });

    // ---- Prometheus collectors of the core
    d.metrics().add([&d](mgmt::MetricsWriter& w) {
        const auto& c = d.config();
        w.family("nimbus_info", "gauge", "Build and node information");
        w.sample("nimbus_info", {{"version", NIMBUS_VERSION}, {"node", c.node.name},
                                 {"role", c.node.role == config::Role::Edge ? "edge" : "concentrator"},
                                 {"config_version", d.running_version().substr(0, 12)}}, 1);
        w.family("nimbus_uptime_seconds", "gauge", "Seconds since nimbusd started");
        w.sample("nimbus_uptime_seconds", double(wall_s() - d.started_at()));
        const control::Loop::Stats& ls = d.loop().stats();
        w.family("nimbus_control_loop_callbacks_total", "counter", "Callbacks run by the control thread's event loop");
        w.sample("nimbus_control_loop_callbacks_total", double(ls.callbacks));
        w.family("nimbus_control_loop_slow_callbacks_total", "counter",
                 "Control-thread callbacks that held it longer than 50 ms (VRRP, IKE and ZAPI waited)");
        w.sample("nimbus_control_loop_slow_callbacks_total", double(ls.slow));
        w.family("nimbus_control_loop_max_callback_seconds", "gauge",
                 "The longest control-thread callback since nimbusd started");
        w.sample("nimbus_control_loop_max_callback_seconds", double(ls.max_ns) / 1e9);
        w.family("nimbus_port_up", "gauge", "Link state of each port (1 up)");
        for (int i = 0; i < dp::port_count(); i++)
            w.sample("nimbus_port_up", {{"port", d.port_name(i)}}, d.port_link_up(i) ? 1 : 0);
        struct F {
            const char* name;
            const char* help;
            uint64_t dp::PortCounters::*field;
        };
        const F fields[] = {{"nimbus_port_rx_packets_total", "Packets received", &dp::PortCounters::rx_packets},
                            {"nimbus_port_rx_bytes_total", "Bytes received", &dp::PortCounters::rx_bytes},
                            {"nimbus_port_tx_packets_total", "Packets sent", &dp::PortCounters::tx_packets},
                            {"nimbus_port_tx_bytes_total", "Bytes sent", &dp::PortCounters::tx_bytes},
                            {"nimbus_port_punted_total", "Packets handed to the control plane",
                             &dp::PortCounters::punted},
                            {"nimbus_port_injected_total", "Frames from the host interface",
                             &dp::PortCounters::injected}};
        std::vector<dp::PortCounters> pcs;
        for (int i = 0; i < dp::port_count(); i++) pcs.push_back(dp::port_counters(i, -1));
        for (auto& f : fields) {
            w.family(f.name, "counter", f.help);
            for (int i = 0; i < dp::port_count(); i++)
                w.sample(f.name, {{"port", d.port_name(i)}}, double(pcs[size_t(i)].*f.field));
        }
        w.family("nimbus_dataplane_drops_total", "counter", "Packets dropped by the dataplane, by reason");
        for (int i = 0; i < dp::port_count(); i++)
            for (int k = 0; k < dp::kDropCount; k++)
                w.sample("nimbus_dataplane_drops_total", {{"port", d.port_name(i)}, {"reason", dp::drop_name(k)}},
                         double(pcs[size_t(i)].drops[k]));
        w.family("nimbus_port_rx_missed_total", "counter", "Packets the device could not deliver (PMD imissed)");
        for (int i = 0; i < dp::port_count(); i++)
            w.sample("nimbus_port_rx_missed_total", {{"port", d.port_name(i)}}, double(dp::port_info(i).hw_rx_missed));
        dp::PuntCounters pc = dp::punt_counters(-1);
        w.family("nimbus_punt_packets_total", "counter", "Exception-path packets by class and outcome");
        for (int k = 0; k < dp::kPuntClassCount; k++) {
            w.sample("nimbus_punt_packets_total", {{"class", dp::punt_class_name(k)}, {"result", "punted"}},
                     double(pc.punted[k]));
            w.sample("nimbus_punt_packets_total", {{"class", dp::punt_class_name(k)}, {"result", "policed"}},
                     double(pc.policed[k]));
            w.sample("nimbus_punt_packets_total", {{"class", dp::punt_class_name(k)}, {"result", "queue_full"}},
                     double(pc.ring_full[k]));
        }
        w.family("nimbus_worker_loops_total", "counter", "Poll loop iterations per worker, by kind");
        for (int i = 0; i < dp::worker_count(); i++) {
            auto wi = dp::worker_info(i);
            std::string id = std::to_string(i);
            w.sample("nimbus_worker_loops_total", {{"worker", id}, {"kind", "busy"}}, double(wi.busy_loops));
            w.sample("nimbus_worker_loops_total", {{"worker", id}, {"kind", "idle"}},
                     double(wi.loops - wi.busy_loops));
            w.sample("nimbus_worker_loops_total", {{"worker", id}, {"kind", "slept"}}, double(wi.sleeps));
        }
        w.family("nimbus_routes", "gauge", "Prefixes in the RIB per VRF");
        for (size_t v = 0; v < c.vrfs.size(); v++)
            w.sample("nimbus_routes", {{"vrf", c.vrfs[v].name}}, double(d.rib().size(int(v))));
        const HostIfStats& h = d.hostif_stats();
        w.family("nimbus_host_frames_total", "counter", "Frames between the dataplane and the host interfaces");
        w.sample("nimbus_host_frames_total", {{"direction", "to_kernel"}}, double(h.to_kernel));
        w.sample("nimbus_host_frames_total", {{"direction", "from_kernel"}}, double(h.from_kernel));
        w.family("nimbus_icmp_errors_sent_total", "counter", "ICMP errors the box originated");
        w.sample("nimbus_icmp_errors_sent_total", double(h.icmp_sent));
    });
}

json status_json(Daemon& d, const mgmt::Registry& reg) {
    json j;
    j["version"] = reg.run({"show", "version"}, true).built_data();
    j["interfaces"] = reg.run({"show", "interfaces"}, true).built_data();
    j["config_version"] = d.running_version();
    return j;
}

}  // namespace nimbus::show
