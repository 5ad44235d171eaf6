#include "control/firewall/firewall.h"

#include <fmt/format.h>

#include "src/common/log.h"
#include "src/common/table.h"

namespace nimbus::firewall {

bool Firewall::apply(const config::Config& cfg, std::string* err) {
    auto next = slots_.plan(cfg, err);
    if (!next) return false;
    // Counters of new slots start now: read before any worker counts into
    // them (a released slot is quiet: no published rule set refers to it).
    for (uint32_t s : slots_.fresh(*next)) slots_.set_base(s, dp::fw_counter(s));
    const auto old = slots_.current();
    std::vector<int> changed;
    for (auto& [vrf, spec] : next->specs) {
        auto it = old.find(vrf);
        if (it == old.end() || !(it->second == spec)) changed.push_back(vrf);
    }
    for (auto& [vrf, spec] : old)
        if (!next->specs.count(vrf)) changed.push_back(vrf);
    size_t done = 0;
    for (; done < changed.size(); done++) {
        int vrf = changed[done];
        auto it = next->specs.find(vrf);
        if (!dp::fw_set(vrf, it == next->specs.end() ? nullptr : &it->second, err)) break;
    }
    if (done < changed.size()) {
        for (size_t i = 0; i < done; i++) {
            auto it = old.find(changed[i]);
            std::string e2;
            dp::fw_set(changed[i], it == old.end() ? nullptr : &it->second, &e2);
        }
        return false;
    }
    slots_.release(slots_.commit(std::move(*next)));
    if (!changed.empty())
        LOG_INFO("firewall", "event=applied vrfs_changed={} rule_sets={} slots={}", changed.size(),
                 slots_.current().size(), slots_.used());
    return true;
}

dp::FwCounter Firewall::counter(uint32_t slot, bool since_clear) const {
    dp::FwCounter c = dp::fw_counter(slot), b = slots_.base(slot, since_clear);
    return {c.packets - b.packets, c.bytes - b.bytes};
}

void Firewall::register_commands(mgmt::Registry& reg, const config::Config& cfg) {
    reg.add("show firewall [vrf VRF]",
            "Firewall per VRF: rules in order with packets and bytes matched, flows and defaults; flow table use",
            [this, &cfg](const mgmt::Args& a) {
                std::string only = a.get("VRF");
                if (!only.empty() && !cfg.vrf(only)) return mgmt::Result::error(fmt::format("% no VRF '{}'", only));
                std::string text;
                nlohmann::json fws = nlohmann::json::array();
                for (auto& f : cfg.firewall) {
                    if (!only.empty() && f.vrf != only) continue;
                    nlohmann::json j = {{"vrf", f.vrf}, {"state_timeout", f.state_timeout}};
                    if (!f.cloud.empty()) j["cloud"] = f.cloud;
                    text += fmt::format("VRF {}{}: flows idle out after {} s\n", f.vrf,
                                        f.cloud.empty() ? "" : fmt::format(" (cloud {})", f.cloud), f.state_timeout);
                    for (bool in : {true, false}) {
                        Table t({{"#", "index", true},
                                 {"Name", "name"},
                                 {"Action", "action"},
                                 {"Match", "match"},
                                 {"Packets", "packets", true},
                                 {"Bytes", "bytes", true}});
                        int i = 0;
                        for (auto& r : rows(f, in, slots_)) {
                            dp::FwCounter c = counter(r.slot, true);
                            nlohmann::json idx = r.pseudo ? nlohmann::json("-") : nlohmann::json(++i);
                            t.row({idx, r.name, r.action, r.match, c.packets, c.bytes});
                        }
                        text += fmt::format("  {} ({}), default {}\n", in ? "ingress" : "egress",
                                            in ? "leaving tunnels, after decryption" : "entering tunnels, before encryption",
                                            in ? f.ingress_default : f.egress_default);
                        std::string body = t.text();
                        for (size_t p = 0; p < body.size();) {
                            size_t e = body.find('\n', p);
                            if (e == std::string::npos) e = body.size();
                            text += "    " + body.substr(p, e - p) + "\n";
                            p = e + 1;
                        }
                        j[in ? "ingress" : "egress"] = {{"default", in ? f.ingress_default : f.egress_default},
                                                        {"rules", t.json()}};
                    }
                    fws.push_back(j);
                }
                dp::FwFlowStats st = dp::fw_flow_stats();
                nlohmann::json flows = {{"live", st.live},       {"capacity", st.capacity}, {"created", st.created},
                                        {"refreshed", st.refreshed}, {"evicted", st.evicted}};
                if (fws.empty()) text += only.empty() ? "No firewall configured (every VRF lets all traffic through).\n"
                                                      : fmt::format("VRF {} has no firewall (all traffic passes).\n", only);
                text += fmt::format("Flow entries: {} live of {} (created {}, evicted while live {})\n", st.live,
                                    st.capacity, st.created, st.evicted);
                return mgmt::Result{0, text, {{"firewalls", fws}, {"flows", flows}}};
            });
    register_clear(reg, cfg);
}

void Firewall::register_clear(mgmt::Registry& reg, const config::Config& cfg) {
    reg.add("clear firewall counters [vrf VRF]", "Start the firewall's rule, flow and default counters from zero",
            [this, &cfg](const mgmt::Args& a) {
                std::string vrf = a.get("VRF");
                if (!vrf.empty() && !cfg.vrf(vrf)) return mgmt::Result::error(fmt::format("% no VRF '{}'", vrf));
                auto slots = slots_.slots_of(vrf);
                for (uint32_t s : slots) slots_.set_cleared(s, dp::fw_counter(s));
                LOG_INFO("firewall", "event=counters_cleared vrf={} counters={}", vrf.empty() ? "all" : vrf,
                         slots.size());
                return mgmt::Result{0, fmt::format("{} counters cleared\n", slots.size()),
                                    {{"cleared", slots.size()}}};
            });
}

void Firewall::register_metrics(mgmt::Metrics& m, const config::Config& cfg) {
    m.add([this, &cfg](mgmt::MetricsWriter& w) {
        w.family("nimbus_firewall_packets_total", "counter",
                 "Packets decided by a firewall rule, its flows or its default, per VRF and direction");
        std::vector<std::tuple<mgmt::MetricsWriter::Labels, dp::FwCounter>> samples;
        for (auto& f : cfg.firewall)
            for (bool in : {true, false}) {
                int i = 0;
                for (auto& r : rows(f, in, slots_)) {
                    if (!r.pseudo) i++;
                    std::string rule = r.pseudo || !r.name.empty() ? r.name : fmt::format("#{}", i);
                    samples.push_back({{{"vrf", f.vrf}, {"direction", in ? "ingress" : "egress"}, {"rule", rule},
                                        {"action", r.action}},
                                       counter(r.slot)});
                }
            }
        for (auto& [l, c] : samples) w.sample("nimbus_firewall_packets_total", l, double(c.packets));
        w.family("nimbus_firewall_bytes_total", "counter", "Bytes (inner IP) decided by a firewall rule");
        for (auto& [l, c] : samples) w.sample("nimbus_firewall_bytes_total", l, double(c.bytes));
        dp::FwFlowStats st = dp::fw_flow_stats();
        w.family("nimbus_firewall_flows", "gauge", "Live firewall flow entries (allow-stateful)");
        w.sample("nimbus_firewall_flows", double(st.live));
        w.family("nimbus_firewall_flows_evicted_total", "counter", "Live flow entries replaced because their set was full");
        w.sample("nimbus_firewall_flows_evicted_total", double(st.evicted));
    });
}

}  // namespace nimbus::firewall
