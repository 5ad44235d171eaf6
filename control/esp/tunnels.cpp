#include "control/esp/tunnels.h"

#include <algorithm>

#include <fmt/format.h>

#include "src/common/bytes.h"
#include "src/common/log.h"
#include "src/common/table.h"

namespace nimbus::esp {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

dp::Cipher cipher_of(const std::string& n) {
    if (n == "aes128gcm16") return dp::Cipher::AesGcm128;
    if (n == "chacha20poly1305") return dp::Cipher::Chacha20Poly1305;
    return dp::Cipher::AesGcm256;
}

namespace {

dp::SaSpec sa_spec(const config::ManualTunnel& t, const config::ManualSaKey& k) {
    dp::SaSpec s;
    s.spi = k.spi;
    s.cipher = cipher_of(t.cipher);
    s.esn = t.esn;
    s.replay_window = uint32_t(t.replay_window);
    s.keymat = k.key.bytes;
    s.lifetime = dp::Lifetime{t.soft_bytes, t.hard_bytes, t.soft_packets, t.hard_packets};
    return s;
}

void wipe_spec(dp::TunnelSpec& s) {
    if (!s.out.keymat.empty()) wipe(s.out.keymat.data(), s.out.keymat.size());
    for (auto& i : s.in)
        if (!i.keymat.empty()) wipe(i.keymat.data(), i.keymat.size());
}

std::string spi_str(uint32_t spi) { return fmt::format("{:08x}", spi); }

}  // namespace

bool Tunnels::install(const config::Config& cfg, routing::Rib& rib, std::string* err) {
    for (auto& t : cfg.manual_sas)
        if (!install_one(cfg, t, rib, err)) return false;
    return true;
}

bool Tunnels::install_one(const config::Config& cfg, const config::ManualTunnel& t, routing::Rib& rib,
                          std::string* err) {
    {
        dp::TunnelSpec s;
        s.name = t.name;
        s.vrf = cfg.vrf_index(t.vrf);
        s.underlay_vrf = cfg.vrf_index(t.underlay_vrf);
        s.udp = t.udp;
        s.mtu = t.mtu;
        s.mss_clamp = t.mss_clamp;
        s.critical_dscp = t.critical_dscp;
        for (auto& p : t.paths)
            s.paths.push_back(dp::PathSpec{p.local, p.remote, 4500, uint16_t(p.port), true});
        s.out = sa_spec(t, t.out);
        for (auto& k : t.in) s.in.push_back(sa_spec(t, k));
        std::string e;
        dp::TunnelId id = dp::tunnel_install(s, &e);
        wipe_spec(s);
        if (id == dp::kNoTunnel) {
            *err = fmt::format("{}:{}:{}: manual_sas: tunnel '{}': {}", cfg.file, t.where.line, t.where.col, t.name, e);
            return false;
        }
        TunnelState ts{t.name, id, s.vrf, t.allowed, &t};
        for (auto& p : t.allowed)
            rib.add(s.vrf, routing::Route{p, routing::Source::Tunnel, routing::default_distance(routing::Source::Tunnel),
                                          routing::NextHop{routing::NextHop::Kind::Tunnel, -1, {}, id}, 0, t.name});
        LOG_INFO("esp", "event=tunnel_up name={} id={} vrf={} cipher={} esn={} encap={} paths={} mtu={} out_spi={:#010x}",
                 t.name, id, t.vrf, t.cipher, t.esn, t.udp ? "udp" : "esp", t.paths.size(), dp::tunnel_mtu(id),
                 t.out.spi);
        tunnels_.push_back(ts);
    }
    return true;
}

void Tunnels::remove_one(const std::string& tname, routing::Rib& rib) {
    auto it = std::find_if(tunnels_.begin(), tunnels_.end(), [&](const TunnelState& t) { return t.name == tname; });
    if (it == tunnels_.end()) return;
    for (auto& p : it->allowed) rib.remove(it->vrf, p, routing::Source::Tunnel);
    std::string e;
    rib.commit(&e);  // no route points at the tunnel any more: the dataplane can let it go
    dp::tunnel_remove(it->id);
    LOG_INFO("esp", "event=tunnel_removed name={} id={}", it->name, it->id);
    tunnels_.erase(it);
}

// Only the tunnels named: the others keep their SAs, counters and uptime.
// On failure the tunnels already changed are put back as they were.
bool Tunnels::apply(const config::Config& from, const config::Config& to, const std::vector<std::string>& del,
                    const std::vector<std::string>& add, routing::Rib& rib, std::string* err) {
    auto find = [](const config::Config& c, const std::string& n) -> const config::ManualTunnel* {
        for (auto& t : c.manual_sas)
            if (t.name == n) return &t;
        return nullptr;
    };
    for (auto& n : del) remove_one(n, rib);
    std::vector<std::string> done;
    bool ok = true;
    for (auto& n : add) {
        const config::ManualTunnel* t = find(to, n);
        if (t && install_one(to, *t, rib, err)) {
            done.push_back(n);
            continue;
        }
        if (!t) *err = fmt::format("manual_sas: no tunnel '{}'", n);
        ok = false;
        break;
    }
    if (ok && rib.commit(err)) {
        rebind(to);
        return true;
    }
    for (auto& d : done) remove_one(d, rib);
    std::string e2;
    for (auto& d : del)
        if (const config::ManualTunnel* o = find(from, d)) install_one(from, *o, rib, &e2);
    rib.commit(&e2);
    rebind(from);
    return false;
}

// TunnelState::cfg points into the daemon's config: after it is replaced.
void Tunnels::rebind(const config::Config& cfg) {
    for (auto& s : tunnels_) {
        s.cfg = nullptr;
        for (auto& t : cfg.manual_sas)
            if (t.name == s.name) s.cfg = &t;
    }
}

void Tunnels::remove_all(routing::Rib& rib) {
    for (auto& t : tunnels_) {
        for (auto& p : t.allowed)
            rib.remove(t.vrf, p, routing::Source::Tunnel);
    }
    std::string e;
    rib.commit(&e);
    for (auto& t : tunnels_) dp::tunnel_remove(t.id);
    tunnels_.clear();
}

void Tunnels::poll_events() {
    dp::SaEvent ev[64];
    int n = dp::sa_event_poll(ev, 64);
    for (int i = 0; i < n; i++) {
        const char* k = ev[i].kind == dp::SaEventKind::Soft   ? "soft_lifetime"
                        : ev[i].kind == dp::SaEventKind::Hard ? "hard_lifetime"
                                                              : "sequence_exhausted";
        dp::SaInfo si;
        std::string tn = dp::sa_info(ev[i].spi, ev[i].inbound, &si) ? name(si.tunnel) : "?";
        if (ev[i].kind == dp::SaEventKind::Soft)
            LOG_INFO("esp", "event={} spi={:#010x} dir={} tunnel={} action=\"rekey needed (IKE)\"", k, ev[i].spi,
                     ev[i].inbound ? "in" : "out", tn);
        else
            LOG_WARN("esp", "event={} spi={:#010x} dir={} tunnel={} action=\"SA no longer used\"", k, ev[i].spi,
                     ev[i].inbound ? "in" : "out", tn);
    }
}

std::string Tunnels::name(dp::TunnelId id) const {
    for (auto& t : tunnels_)
        if (t.id == id) return t.name;
    return fmt::format("#{}", id);
}

namespace {

json sa_json(const dp::SaInfo& s, const std::string& tunnel) {
    json c = json::object();
    for (int k = 0; k < dp::kSaCounterCount; k++) c[dp::sa_counter_name(k)] = s.counters[k];
    json j = {{"spi", spi_str(s.spi)},
              {"direction", s.inbound ? "in" : "out"},
              {"tunnel", tunnel},
              {"cipher", dp::cipher_name(s.cipher)},
              {"esn", s.esn},
              {"worker", s.worker},
              {"soft_expired", s.soft_expired},
              {"hard_expired", s.hard_expired},
              {"lifetime",
               {{"soft_bytes", s.lifetime.soft_bytes},
                {"hard_bytes", s.lifetime.hard_bytes},
                {"soft_packets", s.lifetime.soft_packets},
                {"hard_packets", s.lifetime.hard_packets}}},
              {"key", "<redacted>"},
              {"counters", c}};
    if (s.inbound) {
        j["window_top"] = s.window_top;
        j["window_size"] = s.window_size;
    } else {
        j["seq"] = s.seq;
    }
    return j;
}

}  // namespace

void Tunnels::register_commands(mgmt::Registry& reg, const config::Config& cfg) {
    auto sas = [this](const Args& a) {
        std::vector<std::pair<dp::SaInfo, std::string>> list;
        std::vector<std::pair<dp::TunnelId, std::string>> ids;
        for (auto& t : tunnels_) ids.emplace_back(t.id, t.name);
        if (dynamic_)
            for (auto& d : dynamic_())
                if (d.dp != dp::kNoTunnel) ids.emplace_back(d.dp, d.name);
        for (auto& [id, name] : ids) {
            dp::TunnelInfo ti;
            if (!dp::tunnel_info(id, &ti)) continue;
            dp::SaInfo s;
            if (dp::sa_info(ti.out_spi, false, &s)) list.emplace_back(s, name);
            for (uint32_t spi : ti.in_spis)
                if (dp::sa_info(spi, true, &s)) list.emplace_back(s, name);
        }
        bool one = a.has("SPI");
        uint32_t want = 0;
        if (one) {
            try {
                want = uint32_t(std::stoul(a.get("SPI"), nullptr, 16));
            } catch (...) {
                return Result::error("% SPI is hexadecimal, e.g. 00001001");
            }
        }
        Table tb({{"SPI", "spi"}, {"Dir", "direction"}, {"Tunnel", "tunnel"}, {"Cipher", "cipher"},
                  {"ESN", "esn"}, {"Seq / window", "position"}, {"Packets", "packets", true},
                  {"Bytes", "bytes", true}, {"Auth fail", "auth_fail", true}, {"Duplicate", "duplicate", true},
                  {"Too old", "replay_too_old", true}, {"State", "state"}});
        json out = json::array();
        std::string detail;
        for (auto& [s, tn] : list) {
            if (one && s.spi != want) continue;
            auto c = [&](dp::SaCounter k) { return s.counters[int(k)]; };
            std::string pos = s.inbound ? fmt::format("top {} / {}", s.window_top, s.window_size)
                                        : fmt::format("{}", s.seq);
            std::string state = s.hard_expired ? "expired" : s.soft_expired ? "soft-expired" : "active";
            tb.row({spi_str(s.spi), s.inbound ? "in" : "out", tn, dp::cipher_name(s.cipher), s.esn ? "yes" : "no",
                    pos, c(dp::SaCounter::packets), c(dp::SaCounter::bytes), c(dp::SaCounter::auth_fail),
                    c(dp::SaCounter::duplicate), c(dp::SaCounter::replay_too_old), state});
            out.push_back(sa_json(s, tn));
            if (one) {
                detail += fmt::format("\nSA {} ({}, tunnel {}, worker {}), key <redacted>\n", spi_str(s.spi),
                                      s.inbound ? "inbound" : "outbound", tn, s.worker);
                for (int k = 0; k < dp::kSaCounterCount; k++)
                    detail += fmt::format("  {:<22} {:>14}\n", dp::sa_counter_name(k), s.counters[k]);
            }
        }
        if (one && out.empty()) return Result::error("% No such SA: " + a.get("SPI"));
        return Result{0, tb.text() + detail, one ? out[0] : out};
    };
    reg.add("show ipsec sa [SPI]", "ESP SAs: cipher, sequence number, window, counters (keys redacted)", sas);
    // The one way to see keys: name the SA and ask for them.
    reg.add("show ipsec sa SPI keys", "an SA including its key material (manual SAs; handle with care)",
            [this, &cfg](const Args& a) {
                uint32_t want = 0;
                try {
                    want = uint32_t(std::stoul(a.get("SPI"), nullptr, 16));
                } catch (...) {
                    return Result::error("% SPI is hexadecimal, e.g. 00001001");
                }
                for (auto& t : cfg.manual_sas) {
                    const config::ManualSaKey* k = t.out.spi == want ? &t.out : nullptr;
                    for (auto& i : t.in)
                        if (i.spi == want) k = &i;
                    if (!k) continue;
                    json j = {{"spi", spi_str(want)},
                              {"tunnel", t.name},
                              {"cipher", t.cipher},
                              {"direction", k == &t.out ? "out" : "in"},
                              {"key", to_hex(k->key.bytes)}};
                    LOG_WARN("esp", "event=key_shown spi={:#010x} tunnel={}", want, t.name);
                    return Result{0, fmt::format("SA {} tunnel {} {} key||salt {}\n", spi_str(want), t.name, t.cipher,
                                                 to_hex(k->key.bytes)),
                                  j};
                }
                return Result::error("% No such manual SA: " + a.get("SPI"));
            });
    reg.add("show tunnels [NAME]",
            "tunnels: static ones (peer, paths, counters) and IKE ones (state, uptime, last RTT, rekeys, paths)",
            [this, &cfg](const Args& a) {
                Table tb({{"Tunnel", "name"}, {"VRF", "vrf"}, {"Peer", "peer"}, {"Encap", "encap"},
                          {"MTU", "mtu", true}, {"Out SPI", "out_spi"}, {"Rx packets", "rx_packets", true},
                          {"Rx bytes", "rx_bytes", true}, {"Tx packets", "tx_packets", true},
                          {"Tx bytes", "tx_bytes", true}});
                json out = json::array();
                std::string paths;
                for (auto& t : tunnels_) {
                    if (a.has("NAME") && t.name != a.get("NAME")) continue;
                    dp::TunnelInfo ti;
                    if (!dp::tunnel_info(t.id, &ti)) continue;
                    std::string peer = ti.paths.empty() ? "" : ti.paths[0].spec.remote.str();
                    std::string vrf = cfg.vrfs[size_t(ti.vrf)].name;
                    tb.row({t.name, vrf, peer, ti.udp ? "udp" : "esp", ti.mtu, spi_str(ti.out_spi), ti.rx_packets,
                            ti.rx_bytes, ti.tx_packets, ti.tx_bytes});
                    json jp = json::array();
                    paths += fmt::format("\n{}: worker {}, inbound SPIs", t.name, ti.worker);
                    json in = json::array();
                    for (uint32_t s : ti.in_spis) {
                        paths += ' ';
                        paths += spi_str(s);
                        in.push_back(spi_str(s));
                    }
                    paths += fmt::format(", critical copies {}, from other addresses {}\n", ti.critical_copies,
                                         ti.rx_other_path);
                    for (size_t i = 0; i < ti.paths.size(); i++) {
                        auto& p = ti.paths[i];
                        paths += fmt::format("  path {}{} {} -> {}:{}  rx {}  first copies {}  tx {}\n", i,
                                             i == 0 ? " (primary)" : "", p.spec.local.str(), p.spec.remote.str(),
                                             p.spec.remote_port, p.rx, p.first, p.tx);
                        jp.push_back({{"local", p.spec.local.str()},
                                      {"remote", p.spec.remote.str()},
                                      {"remote_port", p.spec.remote_port},
                                      {"up", p.spec.up},
                                      {"rx", p.rx},
                                      {"first", p.first},
                                      {"tx", p.tx}});
                    }
                    out.push_back({{"name", t.name},
                                   {"id", ti.id},
                                   {"vrf", vrf},
                                   {"underlay_vrf", cfg.vrfs[size_t(ti.underlay_vrf)].name},
                                   {"peer", peer},
                                   {"encap", ti.udp ? "udp" : "esp"},
                                   {"mtu", ti.mtu},
                                   {"worker", ti.worker},
                                   {"out_spi", spi_str(ti.out_spi)},
                                   {"in_spis", in},
                                   {"rx_packets", ti.rx_packets},
                                   {"rx_bytes", ti.rx_bytes},
                                   {"tx_packets", ti.tx_packets},
                                   {"tx_bytes", ti.tx_bytes},
                                   {"rx_other_path", ti.rx_other_path},
                                   {"critical_copies", ti.critical_copies},
                                   {"paths", jp}});
                }
                // Tunnels IKE negotiates: their state, uptime, last RTT,
                // rekeys and paths, and the dataplane's counters while up.
                Table dt({{"ID", "id", true}, {"Cloud", "cloud"}, {"Site", "name"}, {"State", "state"},
                          {"Uptime s", "uptime_s", true}, {"RTT ms", "rtt_ms", true}, {"Rekeys child/IKE", "rekeys"},
                          {"Paths", "paths"}, {"Prefixes", "prefixes"}, {"Rx packets", "rx_packets", true},
                          {"Tx packets", "tx_packets", true}});
                if (dynamic_)
                    for (auto& d : dynamic_()) {
                        if (a.has("NAME") && d.name != a.get("NAME") && std::to_string(d.id) != a.get("NAME")) continue;
                        dp::TunnelInfo ti;
                        bool live = d.dp != dp::kNoTunnel && dp::tunnel_info(d.dp, &ti);
                        json rtt = d.rtt_ms < 0 ? json(nullptr) : json(double(int64_t(d.rtt_ms * 1000)) / 1000);
                        dt.row({d.id, d.cloud, d.name, d.state, d.uptime_s, rtt,
                                fmt::format("{}/{}", d.child_rekeys, d.ike_rekeys), d.paths, d.prefixes,
                                live ? ti.rx_packets : 0, live ? ti.tx_packets : 0});
                        json j = {{"id", d.id},
                                  {"cloud", d.cloud},
                                  {"name", d.name},
                                  {"state", d.state},
                                  {"uptime_s", d.uptime_s},
                                  {"rtt_ms", rtt},
                                  {"child_rekeys", d.child_rekeys},
                                  {"ike_rekeys", d.ike_rekeys},
                                  {"paths", d.paths},
                                  {"prefixes", d.prefixes},
                                  {"dp_id", live ? json(d.dp) : json(nullptr)}};
                        if (live) {
                            j["vrf"] = cfg.vrfs[size_t(ti.vrf)].name;
                            j["encap"] = ti.udp ? "udp" : "esp";
                            j["out_spi"] = spi_str(ti.out_spi);
                            json in = json::array();
                            for (uint32_t x : ti.in_spis) in.push_back(spi_str(x));
                            j["in_spis"] = in;
                            j["rx_packets"] = ti.rx_packets;
                            j["rx_bytes"] = ti.rx_bytes;
                            j["tx_packets"] = ti.tx_packets;
                            j["tx_bytes"] = ti.tx_bytes;
                            j["mtu"] = ti.mtu;
                        }
                        out.push_back(j);
                    }
                if (a.has("NAME") && out.empty()) return Result::error("% No such tunnel: " + a.get("NAME"));
                std::string text;
                if (!tunnels_.empty()) text += tb.text() + paths;
                if (dt.size()) text += (text.empty() ? "" : "\n") + dt.text();
                if (text.empty()) text = "No tunnels.\n";
                return Result{0, text, out};
            });
}

}  // namespace nimbus::esp
