// `show ike sa`, `show ike counters`, `show tunnels`, `clear tunnel ID` and
// the test hooks (`test ike rekey child|ike ID`, `test ike liveness ID`),
// next to the engine they read. Every command answers in text and JSON from
// the same data.
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <limits>

#include <fmt/format.h>

#include "control/ike/service.h"
#include "control/loop/bridge.h"
#include "src/common/table.h"

namespace nimbus::ike {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

bool tunnel_arg(const Args& a, TunnelId* id, std::string* err) {
    const std::string& s = a.get("ID");
    if (s.size() > 1 && s[0] == 's' && std::isdigit(static_cast<unsigned char>(s[1]))) {
        *err = fmt::format("% Tunnel {} is a static tunnel (manual_sas): it has no IKE SA to clear and no "
                           "event history (see 'show tunnels NAME')", s);
        return false;
    }
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end || v == 0) {
        *err = "% Tunnel ID must be a number (see 'show tunnels')";
        return false;
    }
    *id = v;
    return true;
}

json sa_json(const SaInfo& s) {
    json children = json::array();
    for (auto& c : s.children)
        children.push_back({{"spi_in", fmt::format("{:08x}", c.spi_in)},
                            {"spi_out", fmt::format("{:08x}", c.spi_out)},
                            {"proposal", c.proposal},
                            {"state", c.state},
                            {"outbound_active", c.outbound_active},
                            {"local_ts", c.ts_local},
                            {"remote_ts", c.ts_remote},
                            {"age_s", c.age_s}});
    return {{"tunnel", s.tunnel},
            {"cloud", s.cloud},
            {"spi_i", fmt::format("{:016x}", s.spi_i)},
            {"spi_r", fmt::format("{:016x}", s.spi_r)},
            {"role", s.initiator ? "initiator" : "responder"},
            {"state", s.state},
            {"peer_id", s.peer_id},
            {"local_id", s.local_id},
            {"local", s.local.str()},
            {"remote", s.remote.str()},
            {"natt", s.natt},
            {"nat_local", s.nat_local},
            {"nat_remote", s.nat_remote},
            {"mobike", s.mobike},
            {"fragmentation", s.fragmentation},
            {"proposal", s.proposal},
            {"auth", s.auth},
            {"age_s", s.age_s},
            {"established_s", s.established_s},
            {"children", children}};
}

std::string sa_text(const SaInfo& s) {
    std::string text = fmt::format("IKE SA {:016x}_i {:016x}_r  tunnel {}  cloud {}  {} ({})\n", s.spi_i, s.spi_r,
                                   s.tunnel, s.cloud.empty() ? "-" : s.cloud, s.state,
                                   s.initiator ? "initiator" : "responder");
    text += fmt::format("  peer '{}' at {}, local '{}' at {}{}{}\n", s.peer_id, s.remote.str(), s.local_id,
                        s.local.str(), s.nat_remote ? ", peer behind NAT" : "", s.nat_local ? ", we are behind NAT" : "");
    text += fmt::format("  {}  auth {}  up {}{}{}\n", s.proposal.empty() ? "-" : s.proposal,
                        s.auth.empty() ? "-" : s.auth, duration(s.established_s), s.mobike ? "  MOBIKE" : "",
                        s.fragmentation ? "  fragmentation" : "");
    for (auto& c : s.children)
        text += fmt::format("  child {:08x}_i {:08x}_o  {}  {}{}  age {}\n    {} === {}\n", c.spi_in, c.spi_out,
                            c.proposal, c.state, c.outbound_active ? " (outbound)" : "", duration(c.age_s), c.ts_local,
                            c.ts_remote);
    return text;
}

// `show ike sa` from copies, built by the reply's writer.
Result sas_result(std::shared_ptr<std::vector<SaInfo>> sas, bool json_out) {
    Result r{0, "", nullptr, json_out};
    if (json_out) {
        r.make_data = [sas] {
            json out = json::array();
            for (auto& s : *sas) out.push_back(sa_json(s));
            return out;
        };
    } else {
        r.make_text = [sas] {
            std::string text;
            for (auto& s : *sas) text += sa_text(s);
            return text.empty() ? std::string("No IKE SAs.\n") : text;
        };
    }
    return r;
}

// `show ike sa [tunnel ID]`. Copies of the SAs (of that tunnel only), text
// or JSON built by the reply's writer, off the control thread.
Result show_sa(Engine* e, const Args& a) {
    if (!e) return Result{0, "IKE is not configured (no clouds).\n", json::array()};
    TunnelId only = 0;
    if (a.has("ID")) {
        std::string err;
        if (!tunnel_arg(a, &only, &err)) return Result::error(err);
    }
    auto sas = std::make_shared<std::vector<SaInfo>>(only ? e->sas(only - 1, only) : e->sas());
    if (only) {
        // (The range after tunnel 0 also holds the half-open SAs.)
        std::erase_if(*sas, [only](const SaInfo& s) { return s.tunnel != only; });
        if (sas->empty()) return Result::error(fmt::format("% No IKE SA for tunnel {}", only));
    }
    return sas_result(sas, a.json);
}

// `show ike tunnels` from copies, built by the reply's writer (see show_sa).
Result tunnels_result(std::shared_ptr<std::vector<TunnelInfo>> tuns, bool json_out) {
    auto rtt = [](const TunnelInfo& tn) {
        return tn.rtt_ms < 0 ? json(nullptr) : json(double(int64_t(tn.rtt_ms * 1000)) / 1000);
    };
    Result r{0, "", nullptr, json_out};
    if (json_out) {
        r.make_data = [tuns, rtt] {
            json out = json::array();
            for (auto& tn : *tuns)
                out.push_back({{"id", tn.id},
                               {"cloud", tn.cloud},
                               {"name", tn.name},
                               {"state", tn.state},
                               {"uptime_s", tn.uptime_s},
                               {"rtt_ms", rtt(tn)},
                               {"child_rekeys", tn.child_rekeys},
                               {"ike_rekeys", tn.ike_rekeys},
                               {"children", tn.children},
                               {"paths", tn.paths},
                               {"prefixes", tn.prefixes},
                               {"ike_sa", fmt::format("{:016x}", tn.ike_spi)}});
            return out;
        };
        return r;
    }
    r.make_text = [tuns, rtt] {
        Table t({{"ID", "id", true},
                 {"Cloud", "cloud"},
                 {"Site", "name"},
                 {"State", "state"},
                 {"Uptime", "uptime"},
                 {"RTT ms", "rtt_ms", true},
                 {"Rekeys child/IKE", "rekeys"},
                 {"Paths", "paths"},
                 {"Prefixes", "prefixes"}});
        for (auto& tn : *tuns)
            t.row({tn.id, tn.cloud, tn.name, tn.state, tn.state == "up" ? duration(tn.uptime_s) : "-", rtt(tn),
                   fmt::format("{}/{}", tn.child_rekeys, tn.ike_rekeys), tn.paths, tn.prefixes});
        return t.size() ? t.text() : std::string("No tunnels.\n");
    };
    return r;
}

Result show_tunnels(Engine* e, const Args& a) {
    auto tuns = std::make_shared<std::vector<TunnelInfo>>();
    if (e) *tuns = e->tunnels();
    return tunnels_result(tuns, a.json);
}

Result show_counters(Engine* e, const Args&) {
    Table t({{"Counter", "name"}, {"Value", "value", true}, {"Meaning", "help"}});
    json out = json::object();
    for (int i = 0; i < kCounterCount; i++) {
        uint64_t v = e ? e->counters()[i] : 0;
        t.row({counter_name(i), v, counter_help(i)});
        out[counter_name(i)] = v;
    }
    if (e) {
        out["half_open"] = e->half_open();
        out["work_queue"] = e->queued();
    }
    return Result{0,
                  t.text() + fmt::format("Half-open IKE SAs: {}\nHandshake messages queued: {}\n", e ? e->half_open() : 0,
                                         e ? e->queued() : 0),
                  out};
}

// "2024-05-01T12:00:03.250Z" for an event `age_ns` ago.
std::string stamp(uint64_t age_ns) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    int64_t at_ms = now_ms - int64_t(age_ns / 1000000);
    time_t secs = time_t(at_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, at_ms % 1000);
}

Result show_events(Engine* e, const Args& a) {
    TunnelId id;
    std::string err;
    if (!tunnel_arg(a, &id, &err)) return Result::error(err);
    TunnelInfo ti;
    std::vector<Engine::Event> ev;
    if (!e || !e->history(id, &ti, &ev)) return Result::error(fmt::format("% No such tunnel: {}", id));
    Table t({{"Time (UTC)", "time"}, {"Ago", "ago"}, {"Event", "event"}, {"Reason", "reason"}});
    json events = json::array();
    for (auto it = ev.rbegin(); it != ev.rend(); ++it) {  // newest first
        std::string when = stamp(it->age_ns);
        const char* reason = it->reason == DownReason::none ? "" : down_reason_name(it->reason);
        t.row({when, duration(it->age_ns / 1000000000ull), event_kind_name(it->kind), reason[0] ? reason : "-"});
        events.push_back({{"time", when},
                          {"age_s", double(it->age_ns / 1000000) / 1000},
                          {"event", event_kind_name(it->kind)},
                          {"reason", reason[0] ? json(reason) : json(nullptr)}});
    }
    std::string text = fmt::format("Tunnel {} ({} / {}): {}, flaps {}, last down {}{}\n", id, ti.cloud, ti.name,
                                   ti.state, ti.flaps, ti.last_down.empty() ? "never" : ti.last_down,
                                   ti.last_down.empty() ? "" : fmt::format(" ({}, {} ago)", ti.last_down_detail,
                                                                            duration(uint64_t(ti.last_down_age_s))));
    text += ev.empty() ? "No events.\n" : t.text();
    json j = {{"id", id},
              {"cloud", ti.cloud},
              {"name", ti.name},
              {"state", ti.state},
              {"flaps", ti.flaps},
              {"last_down", ti.last_down.empty() ? json(nullptr) : json(ti.last_down)},
              {"last_down_detail", ti.last_down_detail.empty() ? json(nullptr) : json(ti.last_down_detail)},
              {"events", events},
              {"events_kept", kEventRing}};
    return Result{0, text, j};
}

}  // namespace

void Service::write_metrics(mgmt::MetricsWriter& w) const {
    Engine* e = engine_.get();
    if (!e) return;
    w.family("nimbus_ike_handshakes_total", "counter", "IKE SAs established (handshakes completed)");
    w.sample("nimbus_ike_handshakes_total", double(e->counter(Counter::ike_established)));
    w.family("nimbus_ike_handshakes_per_second", "gauge", "IKE SAs established per second over the last 10 s");
    w.sample("nimbus_ike_handshakes_per_second", handshake_rate(10));
    w.family("nimbus_ike_events_total", "counter", "IKE engine counters by name (see `show ike counters`)");
    for (int i = 0; i < kCounterCount; i++)
        w.sample("nimbus_ike_events_total", {{"event", counter_name(i)}}, double(e->counters()[i]));
    w.family("nimbus_ike_half_open", "gauge", "Half-open IKE SAs");
    w.sample("nimbus_ike_half_open", double(e->half_open()));
    w.family("nimbus_ike_work_queue", "gauge", "Handshake messages waiting for public-key work (reconnect storms)");
    w.sample("nimbus_ike_work_queue", double(e->queued()));
    w.family("nimbus_ike_sas", "gauge", "IKE SAs in the table");
    w.sample("nimbus_ike_sas", double(e->sa_count()));
    w.family("nimbus_tunnel_downs_total", "counter", "IKE tunnels that went down, by reason");
    for (int r = 1; r < kDownReasonCount; r++)
        w.sample("nimbus_tunnel_downs_total", {{"reason", down_reason_name(DownReason(r))}}, double(e->downs()[r]));
}

// nth_tunnel_after() when fewer tunnels remain: the slice holds the rest.
constexpr TunnelId kAllTheRest = std::numeric_limits<TunnelId>::max();

void Service::register_commands(mgmt::Registry& reg) {
    reg.add("show ike sa [tunnel ID]", "IKE SAs and their child SAs",
            [this](const Args& a) {
                if (!bridge_ || a.has("ID") || !engine_) return show_sa(engine_.get(), a);
                // All of them: the SAs of kSliceTunnels tunnels (by id) a
                // control-thread callback, from the reply's writer thread.
                Result r{0, "", nullptr, a.json};
                r.make = [this, json_out = a.json] {
                    auto all = std::make_shared<std::vector<SaInfo>>();
                    using Part = std::pair<TunnelId, std::vector<SaInfo>>;  // the last tunnel id it covers, its SAs
                    for (TunnelId after = 0;;) {
                        auto part = bridge_->call<Part>([this, after] {
                            if (!engine_) return Part{kAllTheRest, {}};
                            TunnelId last = engine_->nth_tunnel_after(after, kSliceTunnels);
                            return Part{last, engine_->sas(after, last)};
                        });
                        if (!part) return Result::error("% nimbusd did not answer (stopping?)");
                        std::move(part->second.begin(), part->second.end(), std::back_inserter(*all));
                        if (part->first == kAllTheRest) break;
                        after = part->first;
                    }
                    return sas_result(all, json_out);
                };
                return r;
            });
    reg.add("show ike counters", "IKE engine counters (malformed, cookies, rekeys, DPD, ...)",
            [this](const Args& a) { return show_counters(engine_.get(), a); });
    // `show tunnels` (control/esp) lists these with the dataplane's counters;
    // this is the IKE view alone.
    reg.add("show ike tunnels", "IKE tunnels: state, uptime, last RTT, rekeys, paths, prefixes",
            [this](const Args& a) {
                if (!bridge_) return show_tunnels(engine_.get(), a);
                // From the reply's writer thread, kSliceTunnels tunnels (by id)
                // a control-thread callback: at 100,000 tunnels one callback
                // for all held that thread ~0.2 s.
                Result r{0, "", nullptr, a.json};
                r.make = [this, json_out = a.json] {
                    auto all = std::make_shared<std::vector<TunnelInfo>>();
                    for (TunnelId after = 0;;) {
                        auto part = bridge_->call<std::vector<TunnelInfo>>([this, after] {
                            return engine_ ? engine_->tunnels(after, kSliceTunnels) : std::vector<TunnelInfo>{};
                        });
                        if (!part) return Result::error("% nimbusd did not answer (stopping?)");
                        std::move(part->begin(), part->end(), std::back_inserter(*all));
                        if (part->size() < kSliceTunnels) break;
                        after = part->back().id;
                    }
                    return tunnels_result(all, json_out);
                };
                return r;
            });
    reg.add("show tunnel ID events", "a tunnel's event history (newest first, last 32): up, down with reason, "
            "rekeys, path changes; flap count and last down reason",
            [this](const Args& a) { return show_events(engine_.get(), a); });
    reg.add("clear tunnel ID", "close a tunnel's IKE SA (DELETE to the peer); an edge reconnects",
            [this](const Args& a) {
                TunnelId id;
                std::string err;
                if (!tunnel_arg(a, &id, &err)) return Result::error(err);
                if (!engine_) return Result::error("% IKE is not configured");
                if (!engine_->clear_tunnel(id, &err)) return Result::error(err);
                rearm();
                return Result{0, fmt::format("Tunnel {} cleared.\n", id), json{{"cleared", id}}};
            });
    auto hook = [this](const char* what, bool (Engine::*fn)(TunnelId, std::string*)) {
        return [this, what, fn](const Args& a) {
            TunnelId id;
            std::string err;
            if (!engine_) return Result::error("% IKE is not configured");
            if (!tunnel_arg(a, &id, &err) || !(engine_.get()->*fn)(id, &err)) return Result::error(err);
            rearm();
            return Result{0, fmt::format("{} started on tunnel {}.\n", what, id), json{{"tunnel", id}}};
        };
    };
    reg.add("test ike rekey child ID", "test hook: rekey the tunnel's child SA now",
            hook("Child SA rekey", &Engine::rekey_child_for_test));
    reg.add("test ike rekey ike ID", "test hook: rekey the tunnel's IKE SA now",
            hook("IKE SA rekey", &Engine::rekey_ike_for_test));
    reg.add("test ike liveness ID", "test hook: run a liveness check now", hook("Liveness check", &Engine::liveness_for_test));
}

}  // namespace nimbus::ike
