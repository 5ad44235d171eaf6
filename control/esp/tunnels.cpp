#include "control/esp/tunnels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <iterator>
#include <map>

#include "control/esp/tunnel_view.h"
#include "control/loop/bridge.h"
#include "src/common/bytes.h"
#include "src/common/clock.h"
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

// A static tunnel's cloud: the cloud whose VRF it is in, else the VRF's name.
std::string cloud_of(const config::Config& cfg, int vrf) {
    const std::string& name = cfg.vrfs[size_t(vrf)].name;
    for (auto& c : cfg.clouds)
        if (c.vrf == name) return c.name;
    return name;
}

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
        TunnelState ts{t.name, id, s.vrf, t.allowed, wall_s()};
        for (auto& p : t.allowed)
            rib.add(s.vrf, routing::Route{p, routing::Source::Tunnel, routing::default_distance(routing::Source::Tunnel),
                                          routing::NextHop{routing::NextHop::Kind::Tunnel, -1, {}, id}, 0, t.name});
        LOG_INFO("esp", "event=tunnel_up name={} id={} vrf={} cipher={} esn={} encap={} paths={} mtu={} out_spi={:#010x}",
                 t.name, id, t.vrf, t.cipher, t.esn, t.udp ? "udp" : "esp", t.paths.size(), dp::tunnel_mtu(id),
                 t.out.spi);
        names_[id] = t.name;
        tunnels_.push_back(ts);
        gen_++;
    }
    return true;
}

// The tunnels named, in one pass over the table (removing 10,000 of 20,000
// one by one scanned it 10,000 times).
void Tunnels::remove(const std::vector<std::string>& names, routing::Rib& rib) {
    if (names.empty()) return;
    std::unordered_set<std::string_view> gone(names.begin(), names.end());
    bool any = false;
    for (auto& t : tunnels_)
        if (gone.count(t.name)) {
            for (auto& p : t.allowed) rib.remove(t.vrf, p, routing::Source::Tunnel);
            any = true;
        }
    if (!any) return;
    std::string e;
    rib.commit(&e);  // no route points at these tunnels any more: the dataplane can let them go
    auto keep = std::remove_if(tunnels_.begin(), tunnels_.end(), [&](const TunnelState& t) {
        if (!gone.count(t.name)) return false;
        dp::tunnel_remove(t.id);
        LOG_INFO("esp", "event=tunnel_removed name={} id={}", t.name, t.id);
        names_.erase(t.id);
        return true;
    });
    tunnels_.erase(keep, tunnels_.end());
    gen_++;
}

namespace {
// The tunnels of c named in `names`, in one pass (no index of all of c: at
// 100,000 tunnels building one held the control thread 60 ms).
std::unordered_map<std::string_view, const config::ManualTunnel*> find_named(const config::Config& c,
                                                                            const std::vector<std::string>& names) {
    std::unordered_map<std::string_view, const config::ManualTunnel*> m;
    if (names.empty()) return m;
    for (auto& n : names) m.emplace(n, nullptr);
    for (auto& t : c.manual_sas)
        if (auto it = m.find(t.name); it != m.end()) it->second = &t;
    return m;
}
}  // namespace

// Only the tunnels named: the others keep their SAs, counters and uptime.
// On failure the tunnels already changed are put back as they were.
bool Tunnels::apply(const config::Config& from, const config::Config& to, const std::vector<std::string>& del,
                    const std::vector<std::string>& add, routing::Rib& rib, std::string* err) {
    remove(del, rib);
    std::vector<std::string> done;
    bool ok = true;
    auto in_to = find_named(to, add);
    for (auto& n : add) {
        const config::ManualTunnel* t = in_to[n];
        if (t && install_one(to, *t, rib, err)) {
            done.push_back(n);
            continue;
        }
        if (!t) *err = fmt::format("manual_sas: no tunnel '{}'", n);
        ok = false;
        break;
    }
    if (ok && rib.commit(err)) return true;
    remove(done, rib);
    std::string e2;
    auto in_from = find_named(from, del);
    for (auto& d : del)
        if (const config::ManualTunnel* o = in_from[d]) install_one(from, *o, rib, &e2);
    rib.commit(&e2);
    return false;
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
    names_.clear();
    gen_++;
}

void Tunnels::poll_events() {
    dp::SaEvent ev[64];
    int n = dp::sa_event_poll(ev, 64);
    for (int i = 0; i < n; i++) {
        const char* k = ev[i].kind == dp::SaEventKind::Soft   ? "soft_lifetime"
                        : ev[i].kind == dp::SaEventKind::Hard ? "hard_lifetime"
                                                              : "sequence_exhausted";
        std::string tn = name(ev[i].tunnel);
        if (ev[i].kind == dp::SaEventKind::Soft)
            LOG_INFO("esp", "event={} spi={:#010x} dir={} tunnel={} action=\"rekey needed (IKE)\"", k, ev[i].spi,
                     ev[i].inbound ? "in" : "out", tn);
        else
            LOG_WARN("esp", "event={} spi={:#010x} dir={} tunnel={} action=\"SA no longer used\"", k, ev[i].spi,
                     ev[i].inbound ? "in" : "out", tn);
    }
}

std::string Tunnels::name(dp::TunnelId id) const {
    auto it = names_.find(id);
    return it != names_.end() ? it->second : fmt::format("#{}", id);
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

json ms(double v) { return v < 0 ? json(nullptr) : json(double(int64_t(v * 1000 + 0.5)) / 1000); }

json in_spis(const dp::TunnelInfo& ti) {
    json in = json::array();
    for (uint32_t x : ti.in_spis) in.push_back(spi_str(x));
    return in;
}

json path_json(const dp::TunnelInfo& ti) {
    json jp = json::array();
    for (auto& p : ti.paths)
        jp.push_back({{"local", p.spec.local.str()},
                      {"remote", p.spec.remote.str()},
                      {"remote_port", p.spec.remote_port},
                      {"up", p.spec.up},
                      {"rx", p.rx},
                      {"first", p.first},
                      {"tx", p.tx}});
    return jp;
}

// Drops of a tunnel by reason: the drop counters of its current SAs (the
// counters of SAs already replaced by a rekey are gone with them).
constexpr dp::SaCounter kDropKinds[] = {dp::SaCounter::auth_fail,       dp::SaCounter::duplicate,
                                        dp::SaCounter::replay_too_old,  dp::SaCounter::bad_padding,
                                        dp::SaCounter::bad_next_header, dp::SaCounter::inner_src_not_allowed,
                                        dp::SaCounter::expired,         dp::SaCounter::seq_exhausted};
using DropSums = std::array<uint64_t, std::size(kDropKinds)>;
static_assert(std::is_same_v<DropSums, decltype(RowSource::drops)>);

uint64_t sa_drops(const dp::TunnelInfo& ti, DropSums* sum) {
    sum->fill(0);
    auto add = [&](const dp::SaInfo& s) {
        for (size_t k = 0; k < std::size(kDropKinds); k++) (*sum)[k] += s.counters[int(kDropKinds[k])];
    };
    dp::SaInfo s;
    if (ti.out_spi && dp::sa_out_info(ti.id, &s)) add(s);
    for (uint32_t spi : ti.in_spis)
        if (dp::sa_in_info(spi, &s)) add(s);
    uint64_t total = 0;
    for (uint64_t v : *sum) total += v;
    return total;
}

json drops_json(const DropSums& sum) {
    json j = json::object();
    for (size_t k = 0; k < std::size(kDropKinds); k++) j[dp::sa_counter_name(int(kDropKinds[k]))] = sum[k];
    return j;
}

void fill_counters(TunnelRow& r, const dp::TunnelInfo& ti) {
    r.rx_packets = ti.rx_packets;
    r.rx_bytes = ti.rx_bytes;
    r.tx_packets = ti.tx_packets;
    r.tx_bytes = ti.tx_bytes;
}

std::string detail_text(const TunnelRow& r) {
    const json& j = r.data;
    std::string s = fmt::format("Tunnel {} ({} {}), cloud {}, {}", r.site, r.kind, r.id, r.cloud.empty() ? "-" : r.cloud,
                                r.state);
    if (r.state == "up") s += fmt::format(" for {}", duration(r.uptime_s));
    s += fmt::format(", peer {}\n", r.peer.empty() ? "-" : r.peer);
    if (j.contains("out_spi")) {
        s += fmt::format("  {} encap, MTU {}, out SPI {}, in SPIs", j.value("encap", ""), j.value("mtu", 0),
                         j.value("out_spi", ""));
        for (auto& x : j["in_spis"]) s += " " + x.get<std::string>();
        s += '\n';
    }
    s += fmt::format("  rx {} packets {} bytes, tx {} packets {} bytes\n", r.rx_packets, r.rx_bytes, r.tx_packets,
                     r.tx_bytes);
    if (r.kind == "ike") {
        const json& rt = j["rtt"];
        s += rt["last_ms"].is_null()
                 ? std::string("  RTT: no liveness sample yet\n")
                 : fmt::format("  RTT ms: last {} min {} avg {} max {} ({} samples)\n", rt["last_ms"].dump(),
                               rt["min_ms"].dump(), rt["avg_ms"].dump(), rt["max_ms"].dump(), rt["samples"].dump());
        s += fmt::format("  rekeys: child {} IKE {}; flaps {}", r.child_rekeys, r.ike_rekeys, r.flaps);
        if (!r.last_down.empty())
            s += fmt::format("; last down: {} ({}) {} s ago", r.last_down, j.value("last_down_detail", ""),
                             j["last_down_age_s"].dump());
        s += '\n';
        for (auto& p : j["paths"]) s += "  path " + p.get<std::string>() + "\n";
        if (!j["prefixes"].empty()) s += "  prefixes " + json_cell_text(j["prefixes"]) + "\n";
    }
    if (j.contains("critical_copies"))
        s += fmt::format("  worker {}, critical copies {}, from other addresses {}\n", j.value("worker", 0),
                         j.value("critical_copies", 0), j.value("rx_other_path", 0));
    const json& pc = j.contains("path_counters") ? j["path_counters"] : (r.kind == "static" ? j["paths"] : json());
    if (pc.is_array())
        for (size_t i = 0; i < pc.size(); i++)
            s += fmt::format("  path {}{} {} -> {}:{}  rx {}  first copies {}  tx {}\n", i, i == 0 ? " (primary)" : "",
                             pc[i]["local"].get<std::string>(), pc[i]["remote"].get<std::string>(),
                             pc[i]["remote_port"].dump(), pc[i]["rx"].dump(), pc[i]["first"].dump(),
                             pc[i]["tx"].dump());
    std::string drops;
    for (auto& [k, v] : j["drops"].items())
        if (v.get<uint64_t>()) drops += fmt::format(" {} {}", k, v.get<uint64_t>());
    s += "  drops:" + (drops.empty() ? std::string(" none") : drops) + "\n";
    return s;
}

// The SAs of dataplane tunnel `id` (all, or those with SPI `spi`).
void add_sas(dp::TunnelId id, const std::string& name, std::optional<uint32_t> spi, std::vector<SaRow>& out) {
    dp::TunnelInfo ti;
    if (!dp::tunnel_info(id, &ti)) return;
    dp::SaInfo s;
    if (dp::sa_out_info(id, &s) && (!spi || s.spi == *spi)) out.emplace_back(s, name);
    for (uint32_t x : ti.in_spis)
        if ((!spi || x == *spi) && dp::sa_in_info(x, &s)) out.emplace_back(s, name);
}

std::string sa_table(const std::vector<SaRow>& v) {
    Table tb({{"SPI", "spi"}, {"Dir", "direction"}, {"Tunnel", "tunnel"}, {"Cipher", "cipher"}, {"ESN", "esn"},
              {"Seq / window", "position"}, {"Packets", "packets", true}, {"Bytes", "bytes", true},
              {"Auth fail", "auth_fail", true}, {"Duplicate", "duplicate", true},
              {"Too old", "replay_too_old", true}, {"State", "state"}});
    for (auto& [s, tn] : v) {
        auto c = [&](dp::SaCounter k) { return s.counters[int(k)]; };
        std::string pos = s.inbound ? fmt::format("top {} / {}", s.window_top, s.window_size) : fmt::format("{}", s.seq);
        std::string state = s.hard_expired ? "expired" : s.soft_expired ? "soft-expired" : "active";
        tb.row({spi_str(s.spi), s.inbound ? "in" : "out", tn, dp::cipher_name(s.cipher), s.esn ? "yes" : "no", pos,
                c(dp::SaCounter::packets), c(dp::SaCounter::bytes), c(dp::SaCounter::auth_fail),
                c(dp::SaCounter::duplicate), c(dp::SaCounter::replay_too_old), state});
    }
    return tb.text();
}

// `show ipsec sa [SPI]` from the SAs gathered (only those with the SPI when
// one was named): the table and JSON of all, or the detail of one SPI.
mgmt::Result sa_result(std::vector<SaRow> list, std::optional<uint32_t> want, const std::string& word, bool json_out) {
    if (want) {
        if (list.empty()) return mgmt::Result::error("% No such SA: " + word);
        // (An outbound SPI is the peer's choice: several tunnels may share it.)
        std::string detail;
        for (auto& [s, tn] : list) {
            detail += fmt::format("\nSA {} ({}, tunnel {}, worker {}), key <redacted>\n", spi_str(s.spi),
                                  s.inbound ? "inbound" : "outbound", tn, s.worker);
            for (int k = 0; k < dp::kSaCounterCount; k++)
                detail += fmt::format("  {:<22} {:>14}\n", dp::sa_counter_name(k), s.counters[k]);
        }
        return mgmt::Result{0, sa_table(list) + detail, sa_json(list[0].first, list[0].second)};
    }
    // Built by whoever sends the reply (the writer thread), from this copy.
    auto snap = std::make_shared<std::vector<SaRow>>(std::move(list));
    mgmt::Result r{0, "", nullptr, json_out};
    if (json_out)
        r.make_data = [snap] {
            json out = json::array();
            for (auto& [s, tn] : *snap) out.push_back(sa_json(s, tn));
            return out;
        };
    else
        r.make_text = [snap] { return sa_table(*snap); };
    return r;
}

}  // namespace

template <class S, class F>
S Tunnels::on_control(F f) const {
    // Shared with the callback: it may still run after a timeout here.
    auto st = std::make_shared<S>();
    auto ok = bridge_->call<bool>([st, f = std::move(f)] {
        *st = f();
        return true;
    });
    return ok ? std::move(*st) : S{};
}

// `show tunnels [filters]` from the reply's writer thread: the rows are
// gathered in slices of kSliceTunnels tunnels, one control-thread callback
// each, and the JSON or the table is built here, slice by slice.
mgmt::Result Tunnels::sliced_listing(const config::Config& cfg, const TunnelFilter& f, bool json_out) const {
    mgmt::Result r{0, "", nullptr, json_out};
    r.make = [this, &cfg, f, json_out]() -> mgmt::Result {
        json out = json::array();
        std::vector<TunnelRow> all;
        size_t total = 0;
        auto slice = [&](const SliceCursor& from) {
            return on_control<RowSlice>([this, &cfg, from, json_out] {
                return this->slice(cfg, from, kSliceTunnels, json_out);
            });
        };
        auto sink = [&](RowSlice& s) {
            total += s.rows.size();
            for (size_t i = 0; i < s.rows.size(); i++) {
                if (!f.match(s.rows[i])) continue;
                if (json_out) out.push_back(row_json(s.rows[i], *s.src[i]));
                else all.push_back(std::move(s.rows[i]));
            }
        };
        auto reset = [&] {
            out = json::array();
            all.clear();
            total = 0;
        };
        std::string err = collect_slices(slice, sink, reset);
        if (!err.empty()) return mgmt::Result::error(err);
        if (json_out) return mgmt::Result{0, "", std::move(out), true};
        if (!total) return mgmt::Result{0, "No tunnels.\n", json::array()};
        std::vector<const TunnelRow*> sel;
        sel.reserve(all.size());
        for (auto& x : all) sel.push_back(&x);
        return mgmt::Result{0, render_list(sel), nullptr};
    };
    return r;
}

void Tunnels::register_commands(mgmt::Registry& reg, const config::Config& cfg, control::Bridge& bridge) {
    bridge_ = &bridge;
    auto sas = [this](const Args& a) {
        std::optional<uint32_t> want;
        if (a.has("SPI")) {
            try {
                want = uint32_t(std::stoul(a.get("SPI"), nullptr, 16));
            } catch (...) {
                return Result::error("% SPI is hexadecimal, e.g. 00001001");
            }
        }
        std::string word = a.get("SPI");
        // 100,000 tunnels are 200,000 SAs: gathered slice by slice from the
        // reply's writer thread (one callback held the control thread 40-60
        // ms), and the table or the JSON built there.
        Result r{0, "", nullptr, a.json};
        r.make = [this, want, word, json_out = a.json] {
            std::vector<SaRow> all;
            std::string err = collect_slices(
                [&](const SliceCursor& from) {
                    return on_control<SaSlice>([this, from, want] { return sa_slice(from, kSliceTunnels, want); });
                },
                [&](SaSlice& s) { std::move(s.sas.begin(), s.sas.end(), std::back_inserter(all)); },
                [&] { all.clear(); });
            return err.empty() ? sa_result(std::move(all), want, word, json_out) : Result::error(err);
        };
        return r;
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
    reg.add("show tunnels [cloud CLOUD] [state STATE] [site PREFIX]",
            "tunnels, one line each (static and IKE): state, uptime, peer, RTT last/avg/max, packets, drops, "
            "rekeys, flaps, last down reason; filters by cloud, state (up|connecting|down), site-name prefix",
            [this, &cfg](const Args& a) {
                TunnelFilter f{a.get("CLOUD"), a.get("STATE"), a.get("PREFIX")};
                if (a.has("STATE") && !valid_state(f.state))
                    return Result::error("% state is one of: up, connecting, down");
                return sliced_listing(cfg, f, a.json);
            });
    reg.add("show tunnels summary [cloud CLOUD]",
            "tunnel counts per cloud and state, handshakes per second, tunnel downs and dataplane drops by reason",
            [this, &cfg](const Args& a) {
                // Counts only: no row per tunnel (at 100,000 tunnels building
                // them held the control thread over 50 ms). Static tunnels
                // are up while installed.
                Summary sum;
                auto count = [&](const std::string& cloud, const std::string& state, uint64_t n) {
                    if (!a.has("CLOUD") || cloud == a.get("CLOUD")) sum.add(cloud, state, n);
                };
                std::vector<uint64_t> per_vrf(cfg.vrfs.size() + 1);
                for (auto& t : tunnels_) per_vrf[size_t(t.vrf) < cfg.vrfs.size() ? size_t(t.vrf) : cfg.vrfs.size()]++;
                for (size_t v = 0; v < cfg.vrfs.size(); v++) count(cloud_of(cfg, int(v)), "up", per_vrf[v]);
                count("", "up", per_vrf.back());
                SummaryExtra x;
                if (ike_) {
                    for (auto& [cloud, n] : ike_->counts()) {
                        count(cloud, "up", n[0]);
                        count(cloud, "connecting", n[1]);
                        count(cloud, "down", n[2]);
                    }
                    x = ike_->summary_extra();
                }
                for (int i = 0; i < dp::port_count(); i++) {
                    dp::PortCounters c = dp::port_counters(i, -1);
                    for (int k = 0; k < dp::kDropCount; k++)
                        if (c.drops[k]) x.dp_drops[dp::drop_name(k)] += c.drops[k];
                }
                json j;
                std::string text = render_summary(sum, x, &j);
                return Result{0, text, j};
            });
    reg.add("show tunnels NAME",
            "one tunnel (by name or ID) in detail: SAs, paths with their counters, drops by reason, RTT statistics",
            [this, &cfg](const Args& a) {
                const std::string& want = a.get("NAME");
                std::vector<RowSource> src;
                std::vector<TunnelRow> all = named_rows(cfg, want, &src);
                json out = json::array();
                std::string text;
                for (size_t i = 0; i < all.size(); i++) {
                    TunnelRow& r = all[i];
                    r.data = row_json(r, src[i]);
                    out.push_back(r.data);
                    text += detail_text(r);
                }
                if (out.empty()) return Result::error("% No such tunnel: " + want);
                return Result{0, text, out};
            });
    reg.values("CLOUD", [&cfg] {
        std::vector<std::string> v;
        for (auto& c : cfg.clouds) v.push_back(c.name);
        return v;
    });
}

// Per cloud always (tunnels by state, packets, bytes, RTT), per tunnel only
// when mgmt.metrics.per_tunnel says so: at 100k tunnels a scrape stays a
// few hundred series unless the operator asks for more.
void Tunnels::register_metrics(mgmt::Metrics& m, const config::Config& cfg) {
    m.add([this, &cfg](mgmt::MetricsWriter& w) {
        struct Cloud {
            std::map<std::string, uint64_t> states{{"up", 0}, {"connecting", 0}, {"down", 0}};
            uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0, drops = 0;
            double rtt_sum = 0, rtt_max = 0;
            uint64_t rtt_n = 0;
        };
        struct One {
            std::string cloud, site;
            bool up;
            double rtt_ms;
            uint64_t rx_b, tx_b, flaps;
        };
        std::map<std::string, Cloud> clouds;
        for (auto& c : cfg.clouds) clouds[c.name];
        // IKE tunnels without a row each (IkeTunnels::each): at 100,000 of
        // them building the rows would hold the control thread ~0.3 s a scrape.
        size_t n_dynamic = 0;
        if (ike_)
            for (auto& [cl, n] : ike_->counts()) n_dynamic += n[0] + n[1] + n[2];
        // Decided before gathering: with per-tunnel series off, a scrape at
        // 100k tunnels builds nothing per tunnel beyond the cloud sums.
        const std::string& mode = cfg.mgmt.metrics_per_tunnel;
        size_t n_tunnels = tunnels_.size() + n_dynamic;
        bool per = mode == "on" || (mode == "auto" && n_tunnels <= size_t(cfg.mgmt.metrics_per_tunnel_limit));
        std::vector<One> ones;
        if (per) ones.reserve(n_tunnels);
        auto add_dp = [&](Cloud& c, dp::TunnelId id, uint64_t* rxb, uint64_t* txb) {
            dp::TunnelInfo ti;
            if (id == dp::kNoTunnel || !dp::tunnel_info(id, &ti)) return;
            c.rx_p += ti.rx_packets;
            c.rx_b += ti.rx_bytes;
            c.tx_p += ti.tx_packets;
            c.tx_b += ti.tx_bytes;
            DropSums ignored;
            c.drops += sa_drops(ti, &ignored);
            *rxb = ti.rx_bytes;
            *txb = ti.tx_bytes;
        };
        for (auto& t : tunnels_) {
            std::string cl = cloud_of(cfg, t.vrf);
            Cloud& c = clouds[cl];
            c.states["up"]++;
            One o{cl, t.name, true, -1, 0, 0, 0};
            add_dp(c, t.id, &o.rx_b, &o.tx_b);
            if (per) ones.push_back(std::move(o));
        }
        if (ike_) ike_->each([&](const IkeTunnels::Brief& d) {
            Cloud& c = clouds[d.cloud];
            c.states[d.state]++;
            bool up = std::strcmp(d.state, "up") == 0;
            uint64_t rxb = 0, txb = 0;
            if (up) add_dp(c, d.dp, &rxb, &txb);
            if (up && d.rtt_ms >= 0) {
                c.rtt_sum += d.rtt_ms / 1e3;
                c.rtt_max = std::max(c.rtt_max, d.rtt_ms / 1e3);
                c.rtt_n++;
            }
            if (per) ones.push_back(One{d.cloud, d.name, up, d.rtt_ms, rxb, txb, d.flaps});
        });
        w.family("nimbus_cloud_tunnels", "gauge", "Tunnels per cloud and state");
        for (auto& [name, c] : clouds)
            for (auto& [st, n] : c.states) w.sample("nimbus_cloud_tunnels", {{"cloud", name}, {"state", st}}, double(n));
        struct F {
            const char* name;
            const char* help;
            uint64_t Cloud::*field;
            const char* dir;
        };
        const F fams[] = {{"nimbus_cloud_packets_total", "Packets through the cloud's tunnels (current SAs' tunnels)",
                           &Cloud::rx_p, "rx"},
                          {"nimbus_cloud_packets_total", nullptr, &Cloud::tx_p, "tx"},
                          {"nimbus_cloud_bytes_total", "Inner bytes through the cloud's tunnels", &Cloud::rx_b, "rx"},
                          {"nimbus_cloud_bytes_total", nullptr, &Cloud::tx_b, "tx"}};
        for (auto& f : fams) {
            if (f.help) w.family(f.name, "counter", f.help);
            for (auto& [name, c] : clouds)
                w.sample(f.name, {{"cloud", name}, {"direction", f.dir}}, double(c.*f.field));
        }
        w.family("nimbus_cloud_tunnel_drops_total", "counter",
                 "ESP packets dropped by the SAs of the cloud's tunnels (auth, replay, padding, source, lifetime)");
        for (auto& [name, c] : clouds) w.sample("nimbus_cloud_tunnel_drops_total", {{"cloud", name}}, double(c.drops));
        w.family("nimbus_cloud_rtt_seconds", "gauge", "Last liveness round trip of the cloud's up tunnels: avg and max");
        for (auto& [name, c] : clouds) {
            w.sample("nimbus_cloud_rtt_seconds", {{"cloud", name}, {"stat", "avg"}},
                     c.rtt_n ? c.rtt_sum / double(c.rtt_n) : 0);
            w.sample("nimbus_cloud_rtt_seconds", {{"cloud", name}, {"stat", "max"}}, c.rtt_max);
        }
        w.family("nimbus_tunnel_series_enabled", "gauge",
                 "1 if per-tunnel series are exported (mgmt.metrics.per_tunnel, per_tunnel_limit)");
        w.sample("nimbus_tunnel_series_enabled", per ? 1 : 0);
        if (!per) return;
        w.family("nimbus_tunnel_up", "gauge", "1 if the tunnel is up");
        for (auto& o : ones) w.sample("nimbus_tunnel_up", {{"cloud", o.cloud}, {"site", o.site}}, o.up ? 1 : 0);
        w.family("nimbus_tunnel_rtt_seconds", "gauge", "Last liveness round trip of the tunnel (IKE tunnels)");
        for (auto& o : ones)
            if (o.rtt_ms >= 0) w.sample("nimbus_tunnel_rtt_seconds", {{"cloud", o.cloud}, {"site", o.site}}, o.rtt_ms / 1e3);
        w.family("nimbus_tunnel_bytes_total", "counter", "Inner bytes through the tunnel's current SAs");
        for (auto& o : ones) {
            w.sample("nimbus_tunnel_bytes_total", {{"cloud", o.cloud}, {"site", o.site}, {"direction", "rx"}},
                     double(o.rx_b));
            w.sample("nimbus_tunnel_bytes_total", {{"cloud", o.cloud}, {"site", o.site}, {"direction", "tx"}},
                     double(o.tx_b));
        }
        w.family("nimbus_tunnel_flaps_total", "counter", "Times the tunnel went down");
        for (auto& o : ones) w.sample("nimbus_tunnel_flaps_total", {{"cloud", o.cloud}, {"site", o.site}}, double(o.flaps));
    });
}

namespace {
bool number(const std::string& s, uint64_t* v) {
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    *v = std::stoull(s);
    return true;
}
}  // namespace

dp::TunnelId Tunnels::resolve(const std::string& word) const {
    for (auto& t : tunnels_)
        if (t.name == word || ("s" + std::to_string(t.id)) == word) return t.id;
    auto d = dynamic_named(word);
    return d.empty() ? dp::kNoTunnel : d[0].dp;
}

std::vector<DynamicTunnel> Tunnels::dynamic_named(const std::string& word) const {
    if (!ike_) return {};
    // One tunnel asked for: by id, then by name, each tunnel fetched alone
    // (at 100,000 IKE tunnels listing them all took ~0.2 s).
    std::vector<uint64_t> ids;
    uint64_t n = 0;
    if (number(word, &n) && n > 0) ids.push_back(n);
    for (uint64_t id : ike_->named(word))
        if (id != n) ids.push_back(id);
    std::vector<DynamicTunnel> out;
    for (uint64_t id : ids) {
        auto d = ike_->list(id - 1, 1);
        if (!d.empty() && d[0].id == id) out.push_back(std::move(d[0]));
    }
    return out;
}

bool Tunnels::static_row(const config::Config& cfg, const TunnelState& t, TunnelRow* row, RowSource* src) const {
    RowSource s;
    if (!dp::tunnel_info(t.id, &s.ti)) return false;
    const dp::TunnelInfo& ti = s.ti;
    TunnelRow& r = *row;
    r.kind = "static";
    r.id = ti.id;
    r.site = t.name;
    r.state = "up";
    r.cloud = cloud_of(cfg, ti.vrf);
    r.peer = ti.paths.empty() ? "" : ti.paths[0].spec.remote.str();
    uint64_t since = std::max(t.since_s, started_at_), now = wall_s();
    r.uptime_s = now > since ? now - since : 0;
    r.drops = sa_drops(ti, &s.drops);
    fill_counters(r, ti);
    if (!src) return true;
    s.live = true;
    s.vrf = cfg.vrfs[size_t(ti.vrf)].name;
    s.underlay_vrf = cfg.vrfs[size_t(ti.underlay_vrf)].name;
    *src = std::move(s);
    return true;
}

void Tunnels::dynamic_rows(const config::Config& cfg, std::vector<DynamicTunnel>&& dyn, std::vector<TunnelRow>& v,
                           const std::function<void(RowSource&&)>& src) const {
    for (auto& d : dyn) {
        TunnelRow r;
        r.kind = "ike";
        r.id = d.id;
        r.cloud = d.cloud;
        r.site = d.name;
        r.state = d.state;
        r.peer = d.peer;
        r.uptime_s = d.uptime_s;
        r.rtt_last_ms = d.rtt_ms;
        r.rtt_min_ms = d.rtt_min_ms;
        r.rtt_avg_ms = d.rtt_avg_ms;
        r.rtt_max_ms = d.rtt_max_ms;
        r.child_rekeys = d.child_rekeys;
        r.ike_rekeys = d.ike_rekeys;
        r.flaps = d.flaps;
        r.last_down = d.last_down;
        RowSource s;
        s.live = d.dp != dp::kNoTunnel && dp::tunnel_info(d.dp, &s.ti);
        if (s.live) {
            r.drops = sa_drops(s.ti, &s.drops);
            fill_counters(r, s.ti);
            s.vrf = cfg.vrfs[size_t(s.ti.vrf)].name;
        }
        v.push_back(std::move(r));
        if (!src) continue;
        s.ike = std::make_shared<const DynamicTunnel>(std::move(d));
        src(std::move(s));
    }
}

// The tunnels a word names: static ones by name or id, IKE ones the same way.
std::vector<TunnelRow> Tunnels::named_rows(const config::Config& cfg, const std::string& word,
                                           std::vector<RowSource>* src) const {
    std::vector<TunnelRow> v;
    for (auto& t : tunnels_) {
        if (t.name != word && std::to_string(t.id) != word) continue;
        TunnelRow r;
        RowSource s;
        if (!static_row(cfg, t, &r, &s)) continue;
        v.push_back(std::move(r));
        src->push_back(std::move(s));
    }
    dynamic_rows(cfg, dynamic_named(word), v, [src](RowSource&& s) { src->push_back(std::move(s)); });
    return v;
}

// What both listings' slices share: up to n static tunnels from `from`
// (each through on_static), then the IKE tunnels n at a time, by id
// (on_ike with them).
template <class Slice, class OnStatic, class OnIke>
Slice Tunnels::cut(const SliceCursor& from, size_t n, OnStatic on_static, OnIke on_ike) const {
    Slice out;
    out.ran = true;
    out.gen = gen_;
    if (!from.ike) {
        size_t end = from.pos + std::min(n, tunnels_.size() - std::min(from.pos, tunnels_.size()));
        for (size_t i = from.pos; i < end; i++) on_static(out, tunnels_[i]);
        // The IKE tunnels come in slices of their own, after these.
        out.next = end < tunnels_.size() ? SliceCursor{end} : SliceCursor{end, true, 0};
        out.last = end == tunnels_.size() && !ike_;
        return out;
    }
    std::vector<DynamicTunnel> dyn = ike_ ? ike_->list(from.after, n) : std::vector<DynamicTunnel>{};
    out.last = dyn.size() < n;
    out.next = dyn.empty() ? from : SliceCursor{from.pos, true, dyn.back().id};
    on_ike(out, std::move(dyn));
    return out;
}

RowSlice Tunnels::slice(const config::Config& cfg, const SliceCursor& from, size_t n, bool with_src) const {
    return cut<RowSlice>(
        from, n,
        [&](RowSlice& out, const TunnelState& t) {
            TunnelRow r;
            auto s = with_src ? std::make_shared<RowSource>() : nullptr;
            if (!static_row(cfg, t, &r, s.get())) return;
            out.rows.push_back(std::move(r));
            if (s) out.src.push_back(std::move(s));
        },
        [&](RowSlice& out, std::vector<DynamicTunnel>&& dyn) {
            std::function<void(RowSource&&)> keep;
            if (with_src)
                keep = [&out](RowSource&& s) { out.src.push_back(std::make_shared<RowSource>(std::move(s))); };
            dynamic_rows(cfg, std::move(dyn), out.rows, keep);
        });
}

SaSlice Tunnels::sa_slice(const SliceCursor& from, size_t n, std::optional<uint32_t> spi) const {
    return cut<SaSlice>(
        from, n, [&](SaSlice& out, const TunnelState& t) { add_sas(t.id, t.name, spi, out.sas); },
        [&](SaSlice& out, std::vector<DynamicTunnel>&& dyn) {
            for (auto& d : dyn)
                if (d.dp != dp::kNoTunnel) add_sas(d.dp, d.name, spi, out.sas);
        });
}

// A row's full JSON object (`show tunnels | json`, `show tunnels NAME`):
// from copies only, so it may run on the reply's writer thread.
json row_json(const TunnelRow& r, const RowSource& s) {
    const dp::TunnelInfo& ti = s.ti;
    if (r.kind == "static")
        return {{"name", r.site},
                {"kind", "static"},
                {"id", ti.id},
                {"cloud", r.cloud},
                {"state", "up"},
                {"uptime_s", r.uptime_s},
                {"vrf", s.vrf},
                {"underlay_vrf", s.underlay_vrf},
                {"peer", r.peer},
                {"encap", ti.udp ? "udp" : "esp"},
                {"mtu", ti.mtu},
                {"worker", ti.worker},
                {"out_spi", spi_str(ti.out_spi)},
                {"in_spis", in_spis(ti)},
                {"rx_packets", ti.rx_packets},
                {"rx_bytes", ti.rx_bytes},
                {"tx_packets", ti.tx_packets},
                {"tx_bytes", ti.tx_bytes},
                {"rx_other_path", ti.rx_other_path},
                {"critical_copies", ti.critical_copies},
                {"drops", drops_json(s.drops)},
                {"drops_total", r.drops},
                {"paths", path_json(ti)}};
    static const DynamicTunnel none;
    const DynamicTunnel& d = s.ike ? *s.ike : none;
    json j = {{"id", d.id},
              {"kind", "ike"},
              {"cloud", d.cloud},
              {"name", d.name},
              {"state", d.state},
              {"peer", d.peer},
              {"uptime_s", d.uptime_s},
              {"rtt_ms", ms(d.rtt_ms)},
              {"rtt", {{"last_ms", ms(d.rtt_ms)},
                       {"min_ms", ms(d.rtt_min_ms)},
                       {"avg_ms", ms(d.rtt_avg_ms)},
                       {"max_ms", ms(d.rtt_max_ms)},
                       {"samples", d.rtt_samples}}},
              {"child_rekeys", d.child_rekeys},
              {"ike_rekeys", d.ike_rekeys},
              {"flaps", d.flaps},
              {"last_down", d.last_down.empty() ? json(nullptr) : json(d.last_down)},
              {"last_down_detail", d.last_down_detail.empty() ? json(nullptr) : json(d.last_down_detail)},
              {"last_down_age_s", d.last_down_age_s < 0 ? json(nullptr) : json(d.last_down_age_s)},
              {"paths", d.paths},
              {"prefixes", d.prefixes},
              {"rx_packets", r.rx_packets},
              {"rx_bytes", r.rx_bytes},
              {"tx_packets", r.tx_packets},
              {"tx_bytes", r.tx_bytes},
              {"drops", s.live ? drops_json(s.drops) : json::object()},
              {"drops_total", r.drops},
              {"dp_id", s.live ? json(d.dp) : json(nullptr)}};
    if (s.live) {
        j["vrf"] = s.vrf;
        j["encap"] = ti.udp ? "udp" : "esp";
        j["out_spi"] = spi_str(ti.out_spi);
        j["in_spis"] = in_spis(ti);
        j["mtu"] = ti.mtu;
        j["path_counters"] = path_json(ti);
    }
    return j;
}

}  // namespace nimbus::esp
