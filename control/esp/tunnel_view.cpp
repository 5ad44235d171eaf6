#include "control/esp/tunnel_view.h"

#include <fmt/format.h>

#include "src/common/table.h"

namespace nimbus::esp {

using nlohmann::json;

bool valid_state(const std::string& s) { return s == "up" || s == "down" || s == "connecting"; }

bool site_has_prefix(const std::string& site, const std::string& prefix) {
    if (site.compare(0, prefix.size(), prefix) == 0) return true;
    // "C=XX, O=lab, CN=store-0001": the CN is what operators call the site.
    size_t cn = site.rfind("CN=");
    if (cn == std::string::npos) return false;
    std::string v = site.substr(cn + 3);
    size_t end = v.find_first_of(",/");
    if (end != std::string::npos) v.resize(end);
    return v.compare(0, prefix.size(), prefix) == 0;
}

bool TunnelFilter::match(const TunnelRow& r) const {
    if (!cloud.empty() && r.cloud != cloud) return false;
    if (!state.empty() && r.state != state) return false;
    if (!site_prefix.empty() && !site_has_prefix(r.site, site_prefix)) return false;
    return true;
}

namespace {

// "0.412" or "0.412/0.380/1.204" (last/avg/max): a fixed shape per column.
std::string rtt_cell(const TunnelRow& r) {
    if (r.rtt_last_ms < 0) return "-";
    return fmt::format("{:.2f}/{:.2f}/{:.2f}", r.rtt_last_ms, r.rtt_avg_ms < 0 ? r.rtt_last_ms : r.rtt_avg_ms,
                       r.rtt_max_ms < 0 ? r.rtt_last_ms : r.rtt_max_ms);
}

}  // namespace

// IKE tunnels and static ones number independently: the table tells them
// apart ("s4" is static tunnel 4), so `clear tunnel 4` cannot be read as
// acting on the static one.
nlohmann::json static_id(const TunnelRow& r) {
    if (r.kind == "static") return fmt::format("s{}", r.id);
    return r.id;
}

std::string render_list(const std::vector<const TunnelRow*>& rows) {
    Table t({{"ID", "id", true},
             {"Kind", "kind"},
             {"Cloud", "cloud"},
             {"Site", "site"},
             {"State", "state"},
             {"Uptime", "uptime"},
             {"Peer", "peer"},
             {"RTT ms last/avg/max", "rtt"},
             {"Rx pkts", "rx_packets", true},
             {"Tx pkts", "tx_packets", true},
             {"Drops", "drops", true},
             {"Rekeys", "rekeys", true},
             {"Flaps", "flaps", true},
             {"Last down", "last_down"}});
    for (auto* r : rows)
        t.row({static_id(*r), r->kind, r->cloud.empty() ? "-" : r->cloud, r->site, r->state,
               r->state == "up" ? duration(r->uptime_s) : "-", r->peer.empty() ? "-" : r->peer, rtt_cell(*r),
               r->rx_packets, r->tx_packets, r->drops, fmt::format("{}/{}", r->child_rekeys, r->ike_rekeys), r->flaps,
               r->last_down.empty() ? "-" : r->last_down});
    return t.text() + fmt::format("{} tunnel{}\n", rows.size(), rows.size() == 1 ? "" : "s");
}

Summary summarize(const std::vector<const TunnelRow*>& rows) {
    Summary s;
    for (auto* r : rows) s.add(r->cloud, r->state);
    return s;
}

std::string render_summary(const Summary& s, const SummaryExtra& x, json* out) {
    const char* states[] = {"up", "connecting", "down"};
    Table t({{"Cloud", "cloud"}, {"Tunnels", "tunnels", true}, {"Up", "up", true},
             {"Connecting", "connecting", true}, {"Down", "down", true}});
    json clouds = json::object();
    for (auto& [cloud, m] : s.per_cloud) {
        uint64_t n = 0;
        json jc = json::object();
        for (const char* st : states) {
            auto it = m.find(st);
            uint64_t v = it == m.end() ? 0 : it->second;
            jc[st] = v;
            n += v;
        }
        t.row({cloud, n, jc["up"], jc["connecting"], jc["down"]});
        clouds[cloud] = jc;
    }
    auto get = [&](const char* st) {
        auto it = s.total.find(st);
        return it == s.total.end() ? uint64_t(0) : it->second;
    };
    t.row({"total", s.tunnels, get("up"), get("connecting"), get("down")});
    std::string text = t.text();
    text += fmt::format("\nHandshakes: {:.1f}/s over 10 s, {:.1f}/s over 60 s; {} since start, {} auth failures\n",
                        x.handshakes_per_s_10s, x.handshakes_per_s_60s, x.handshakes_total, x.auth_failures_total);
    std::string downs;
    for (auto& [k, v] : x.downs)
        if (v) downs += fmt::format("  {:<22} {:>12}\n", k, v);
    text += downs.empty() ? "Tunnel downs: none\n" : "Tunnel downs by reason:\n" + downs;
    std::string drops;
    for (auto& [k, v] : x.dp_drops)
        if (v) drops += fmt::format("  {:<22} {:>12}\n", k, v);
    text += drops.empty() ? "Dataplane drops: none\n" : "Dataplane drops by reason:\n" + drops;
    if (out)
        *out = {{"tunnels", s.tunnels},
                {"states", {{"up", get("up")}, {"connecting", get("connecting")}, {"down", get("down")}}},
                {"clouds", clouds},
                {"handshakes_per_s", {{"10s", x.handshakes_per_s_10s}, {"60s", x.handshakes_per_s_60s}}},
                {"handshakes_total", x.handshakes_total},
                {"auth_failures_total", x.auth_failures_total},
                {"downs", x.downs},
                {"dataplane_drops", x.dp_drops}};
    return text;
}

}  // namespace nimbus::esp
