#include "control/routing/frr.h"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "src/common/log.h"
#include "src/common/table.h"

namespace nimbus::routing {

namespace {

constexpr size_t kHostRoutesPerTurn = 128;

InjectPolicy policy_from(const config::Config& c) {
    const config::Routing& r = *c.routing;
    InjectPolicy p;
    p.defaults = InjectAttrs{r.tag, r.metric, r.distance};
    p.max_prefixes_per_site = r.max_prefixes_per_site;
    for (auto& cl : r.clouds) {
        InjectPolicy::Cloud pc;
        pc.name = cl.name;
        pc.tag = cl.tag;
        pc.metric = cl.metric;
        pc.distance = cl.distance;
        p.clouds[c.vrf_index(cl.vrf)] = pc;
    }
    for (auto& s : r.sites) {
        InjectPolicy::Site ps;
        ps.tag = s.tag;
        ps.metric = s.metric;
        ps.distance = s.distance;
        ps.max_prefixes = s.max_prefixes;
        p.sites[s.name] = ps;
    }
    return p;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, sep))
        if (!part.empty()) out.push_back(part);
    return out;
}

std::optional<std::vector<Prefix>> parse_prefixes(const std::string& s, std::string* bad) {
    std::vector<Prefix> out;
    for (auto& w : split(s, ',')) {
        auto p = Prefix::parse(w);
        if (!p) {
            *bad = w;
            return std::nullopt;
        }
        out.push_back(*p);
    }
    return out;
}

}  // namespace

Frr::Frr(const config::Config& cfg, control::Loop& loop, Rib& rib, FrrPorts ports)
    : cfg_(cfg), rc_(*cfg.routing), loop_(loop), rib_(rib), ports_(std::move(ports)) {
    if (!rc_.zebra.empty()) {
        ZapiSessionConfig zc;
        zc.hello.proto = *zapi::parse_route_type(rc_.route_type);
        zc.hello.instance = rc_.instance;
        zc.hello.receive_notify = true;
        zc.gr_stale_time_s = rc_.graceful_restart;
        zc.routes_per_pump = rc_.zapi_batch;
        zc.frr_version = rc_.frr_version;
        zc.purge_unknown = true;  // stale routes of ours in zebra go, whatever left them
        zapi_ = std::make_unique<ZapiSession>(zc);
        zebra_ = std::make_unique<ZebraClient>(loop_, *zapi_, rc_.zebra);
    }
    inj_ = std::make_unique<Injector>(
        policy_from(cfg_), [this](int vrf, const std::string& site) { return allowed(vrf, site); }, zapi_.get());
    for (auto& [table, vrf] : rc_.fpm_tables()) table_vrf_[table] = cfg_.vrf_index(vrf);
    if (rc_.fpm_addr) {
        FpmServerConfig fc;
        // Our own injected routes (their route type's kernel protocol), our
        // own kernel routes, and zebra's connected/kernel routes: nimbus
        // knows its own subnets.
        uint8_t own = zapi::rtprot_for(*zapi::parse_route_type(rc_.route_type));
        fc.drop_protocols = {own, KernelTable::kProto, 2 /* RTPROT_KERNEL */};
        fc.replay_quiet_ms = rc_.fpm_replay_quiet_ms;
        fc.replay_min_ms = rc_.fpm_replay_hold_ms;
        fpm_ = std::make_unique<FpmServer>(fc);
        FpmRibMap map;
        map.table_vrf = table_vrf_;
        map.port_of = [this](uint32_t ifindex) {
            for (size_t i = 0; i < cfg_.ports.size(); i++)
                if (ports_.tap_ifindex(int(i)) == int(ifindex)) return int(i);
            return -1;
        };
        fpm_listener_ = std::make_unique<FpmListener>(loop_, *fpm_, rib_, map, *rc_.fpm_addr, rc_.fpm_port);
    }
}

Frr::~Frr() { stop(); }

bool Frr::setup_host_routes(std::string* err) {
    if (!rc_.host_routes.enabled) return true;
    int port = -1;
    for (size_t i = 0; i < cfg_.ports.size(); i++) {
        auto& p = cfg_.ports[i];
        if (!rc_.host_routes.port.empty() ? p.name == rc_.host_routes.port
                                          : (p.vrf == "default" && !p.addresses.empty())) {
            port = int(i);
            break;
        }
    }
    std::vector<Prefix> own;
    for (auto& p : cfg_.ports)
        if (p.vrf == "default")
            for (auto& a : p.addresses) own.push_back(a.subnet());
    if (port < 0) {
        LOG_WARN("hostroutes", "event=disabled reason=\"no port with an address in the default VRF\"");
        return true;
    }
    host_port_ = cfg_.ports[size_t(port)].name;
    std::optional<IpAddr> src4, src6;
    for (auto& a : cfg_.ports[size_t(port)].addresses) {
        if (a.addr.is_v4() && !src4) src4 = a.addr;
        if (!a.addr.is_v4() && !a.addr.is_link_local() && !src6) src6 = a.addr;
    }
    ktable_ = std::make_unique<KernelTable>();
    if (!ktable_->open(rc_.host_routes.table, rc_.host_routes.priority, err)) return false;
    if (!ktable_->set_port(ports_.tap_ifindex(port), ports_.mac(port), src4, src6, err)) return false;
    host_ = std::make_unique<HostRoutes>(
        own, [this](const Prefix& p, bool add, std::string* e) { return ktable_->apply(p, add, e); });
    return true;
}

bool Frr::start(std::string* err) {
    if (!setup_host_routes(err)) return false;
    // Tunnel routes already in the RIB (tunnels installed before us), then
    // every change from here on.
    for (size_t vrf = 0; vrf < cfg_.vrfs.size(); vrf++)
        for (auto& v : rib_.view(int(vrf), std::nullopt))
            if (v.route.source == Source::Tunnel) on_rib(int(vrf), v.route, true);
    rib_.add_observer([this, token = std::weak_ptr<Frr*>(self_)](int vrf, const Route& r, bool added) {
        if (!token.expired()) on_rib(vrf, r, added);
    });
    if (fpm_listener_ && !fpm_listener_->start(err)) return false;
    if (zebra_) {
        if (ports_.zebra_ready) zebra_->set_on_ready(ports_.zebra_ready);
        zebra_->start();
    }
    started_ = true;
    LOG_INFO("routing", "event=started zebra=\"{}\" fpm=\"{}\" route_type={} instance={} host_routes={}",
             rc_.zebra, fpm_listener_ ? fpm_listener_->listen_str() : "", rc_.route_type, rc_.instance,
             host_port_.empty() ? "off" : host_port_);
    return true;
}

void Frr::stop() {
    if (!started_) return;
    started_ = false;
    self_.reset();
    if (work_timer_) loop_.cancel(work_timer_), work_timer_ = 0;
    if (zebra_) zebra_->stop();
    if (fpm_listener_) fpm_listener_->stop();
    if (ktable_) ktable_->close();
}

void Frr::on_rib(int vrf, const Route& r, bool added) {
    if (r.source != Source::Tunnel) return;
    inj_->on_rib(vrf, r, added);
    if (host_) host_->on_rib(vrf, r, added);
    kick();
}

void Frr::kick() {
    if (zebra_) zebra_->kick();
    if (work_scheduled_ || !host_ || !host_->has_work()) return;
    work_scheduled_ = true;
    work_timer_ = loop_.after_ms(0, [this] {
        work_timer_ = 0;
        work_scheduled_ = false;
        work();
    });
}

void Frr::work() {
    if (host_) host_->pump(kHostRoutesPerTurn);
    kick();
}

void Frr::set_inject_active(bool active, const std::string& why) {
    inactive_why_ = active ? "" : why;
    inj_->set_active(active);
    kick();
}

std::optional<std::vector<Prefix>> Frr::allowed(int vrf, const std::string& site) const {
    auto t = test_tunnels_.find(site);
    if (t != test_tunnels_.end() && t->second.vrf == vrf) return t->second.allowed;
    if (allowed_) return allowed_(vrf, site);
    return std::nullopt;
}

std::vector<Prefix> Frr::offered(int vrf) const {
    std::vector<Prefix> out;
    if (vrf < 0 || size_t(vrf) >= cfg_.vrfs.size()) return out;
    const std::string& vname = cfg_.vrfs[size_t(vrf)].name;
    const config::RoutingCloud* cl = rc_.cloud_for_vrf(vname);
    if (!cl) return out;
    out = cl->advertise;
    if (cl->advertise_bgp && fpm_) {
        const uint8_t bgp = zapi::rtprot_for(zapi::RouteType::Bgp);
        fpm_->for_each_route([&](const fpm::RouteEvent& ev) {
            auto t = table_vrf_.find(ev.table);
            if (t != table_vrf_.end() && t->second == vrf && ev.protocol == bgp) out.push_back(ev.prefix);
        });
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// ---- the test hook ------------------------------------------------------------------
//
// `debug tunnel-for-test ...` puts tunnel routes into the RIB the way a
// tunnel coming up does (Source::Tunnel, owner = the site), with the allowed
// set given on the command line, so injection can be exercised before (or
// apart from) real tunnels. Named _for_test on purpose: never for operators.

mgmt::Result Frr::test_up(const mgmt::Args& a) {
    std::string name = a.get("NAME"), bad;
    auto prefixes = parse_prefixes(a.get("PREFIXES"), &bad);
    if (!prefixes) return mgmt::Result::error("% Bad prefix: " + bad);
    TestTunnel t;
    t.prefixes = *prefixes;
    t.allowed = t.prefixes;
    if (a.has("ALLOWED")) {
        auto al = parse_prefixes(a.get("ALLOWED"), &bad);
        if (!al) return mgmt::Result::error("% Bad prefix: " + bad);
        t.allowed = *al;
    }
    if (a.has("VRF")) {
        t.vrf = cfg_.vrf_index(a.get("VRF"));
        if (t.vrf < 0) return mgmt::Result::error("% No such VRF: " + a.get("VRF"));
    }
    t.nh = NextHop{NextHop::Kind::Drop, -1, {}};
    if (a.has("GW")) {
        auto gw = IpAddr::parse(a.get("GW"));
        if (!gw) return mgmt::Result::error("% Bad address: " + a.get("GW"));
        t.nh = NextHop{NextHop::Kind::Gateway, -1, *gw};
    }
    test_remove(name);
    test_tunnels_[name] = t;
    for (auto& p : t.prefixes) rib_.add(t.vrf, Route{p, Source::Tunnel, default_distance(Source::Tunnel), t.nh, 0, name});
    std::string err;
    rib_.commit(&err);
    return mgmt::Result{0, fmt::format("tunnel {} up with {} prefixes\n", name, t.prefixes.size()), nullptr};
}

void Frr::test_remove(const std::string& name) {
    auto it = test_tunnels_.find(name);
    if (it == test_tunnels_.end()) return;
    TestTunnel t = it->second;
    for (auto& p : t.prefixes) rib_.remove(t.vrf, p, Source::Tunnel, t.nh);
    test_tunnels_.erase(it);
}

mgmt::Result Frr::test_down(const mgmt::Args& a) {
    std::vector<std::string> names;
    if (a.get("NAME") == "all")
        for (auto& [n, t] : test_tunnels_) names.push_back(n);
    else if (test_tunnels_.count(a.get("NAME"))) names.push_back(a.get("NAME"));
    else return mgmt::Result::error("% No such test tunnel: " + a.get("NAME"));
    for (auto& n : names) test_remove(n);
    std::string err;
    rib_.commit(&err);
    return mgmt::Result{0, fmt::format("{} tunnels down\n", names.size()), nullptr};
}

// A real tunnel's routes out of the RIB and back, as its going down and
// coming up again would do (static tunnels have no runtime up/down before
// IKE; DELETE, DPD and `clear` will do exactly this to the RIB).
// NAME 'all': every tunnel's routes at once (test tunnels excepted).
mgmt::Result Frr::test_withdraw(const mgmt::Args& a) {
    std::string name = a.get("NAME");
    bool all = name == "all";
    if (withdrawn_.count(name)) return mgmt::Result::error("% Already withdrawn: " + name);
    std::map<std::string, std::vector<std::pair<int, Route>>> out;
    for (size_t vrf = 0; vrf < cfg_.vrfs.size(); vrf++)
        for (auto& v : rib_.view(int(vrf), std::nullopt))
            if (v.route.source == Source::Tunnel && (all ? !test_tunnels_.count(v.route.owner) : v.route.owner == name))
                out[v.route.owner].emplace_back(int(vrf), v.route);
    if (out.empty()) return mgmt::Result::error("% No tunnel routes of " + name);
    size_t n = 0;
    for (auto& [owner, routes] : out) {
        for (auto& [vrf, r] : routes) rib_.remove(vrf, r.prefix, Source::Tunnel, r.nh);
        n += routes.size();
        auto& w = withdrawn_[owner];
        w.insert(w.end(), routes.begin(), routes.end());
    }
    std::string err;
    rib_.commit(&err);
    return mgmt::Result{0, fmt::format("{} routes of {} tunnels withdrawn\n", n, out.size()), nullptr};
}

mgmt::Result Frr::test_restore(const mgmt::Args& a) {
    std::string name = a.get("NAME");
    std::vector<std::string> names;
    if (name == "all")
        for (auto& [n, r] : withdrawn_) names.push_back(n);
    else if (withdrawn_.count(name)) names.push_back(name);
    if (names.empty()) return mgmt::Result::error("% Nothing withdrawn for " + name);
    size_t n = 0;
    for (auto& nm : names) {
        for (auto& [vrf, r] : withdrawn_[nm]) rib_.add(vrf, r);
        n += withdrawn_[nm].size();
        withdrawn_.erase(nm);
    }
    std::string err;
    rib_.commit(&err);
    return mgmt::Result{0, fmt::format("{} routes of {} tunnels restored\n", n, names.size()), nullptr};
}

// ---- show ---------------------------------------------------------------------------------

mgmt::Result Frr::show(const mgmt::Args&) const {
    using nlohmann::json;
    json j;
    std::string t;
    if (zapi_) {
        const auto& c = zapi_->counters();
        auto st = zapi_->state_counts();
        std::string verdict = "not configured";
        if (!rc_.frr_version.empty()) {
            auto v = zapi::check_frr_version(rc_.frr_version);
            verdict = v.verdict == zapi::VersionVerdict::Pinned           ? "pinned"
                      : v.verdict == zapi::VersionVerdict::WireCompatible ? "wire-compatible"
                                                                          : "incompatible";
        }
        bool mismatch = zapi_->phase() == ZapiPhase::VersionMismatch;
        json caps = nullptr;
        if (zapi_->capabilities())
            caps = {{"multipath", zapi_->capabilities()->multipath_num},
                    {"vrf_backend", zapi_->capabilities()->vrf_backend}};
        std::string err = zapi_->last_error().empty() ? zebra_->last_socket_error() : zapi_->last_error();
        j["zapi"] = {{"socket", rc_.zebra},
                     {"state", zapi_phase_name(zapi_->phase())},
                     {"connected", zebra_->connected()},
                     {"route_type", rc_.route_type},
                     {"instance", rc_.instance},
                     {"connects", c.connects},
                     {"reconnects", c.reconnects},
                     {"disconnects", c.disconnects},
                     {"connect_attempts", zebra_->stats().connect_attempts},
                     {"socket_appeared", zebra_->stats().socket_appeared},
                     {"next_attempt_ms", zebra_->next_attempt_in_ms()},
                     {"routes",
                      {{"desired", zapi_->route_count()},
                       {"queued", st[size_t(RouteState::Queued)]},
                       {"pending", st[size_t(RouteState::Pending)]},
                       {"installed", st[size_t(RouteState::Installed)]},
                       {"failed", st[size_t(RouteState::Failed)]}}},
                     {"adds_sent", c.adds_sent},
                     {"deletes_sent", c.deletes_sent},
                     {"replays", c.replays},
                     {"purged", c.purged},
                     {"malformed", c.malformed},
                     {"zebra_errors", c.zebra_errors},
                     {"version",
                      {{"expected", zapi::expected_version()},
                       {"configured", rc_.frr_version},
                       {"configured_verdict", verdict},
                       {"mismatch", mismatch},
                       {"capabilities", caps}}},
                     {"last_error", err}};
        t += fmt::format("ZAPI to zebra ({}): {}{}, HELLO {} instance {}\n", rc_.zebra, zapi_phase_name(zapi_->phase()),
                         zebra_->connected() ? "" : fmt::format(", next attempt in {} ms", zebra_->next_attempt_in_ms()),
                         rc_.route_type, rc_.instance);
        t += fmt::format("  connects {} (reconnects {}), replays {}, adds sent {}, deletes sent {}\n", c.connects,
                         c.reconnects, c.replays, c.adds_sent, c.deletes_sent);
        t += fmt::format("  routes: {} desired: {} installed, {} pending, {} queued, {} failed\n",
                         zapi_->route_count(), st[size_t(RouteState::Installed)], st[size_t(RouteState::Pending)],
                         st[size_t(RouteState::Queued)], st[size_t(RouteState::Failed)]);
        t += fmt::format("  version guard: nimbus speaks {}; frr_version {}; {}\n", zapi::expected_version(),
                         rc_.frr_version.empty() ? "not set" : "'" + rc_.frr_version + "' (" + verdict + ")",
                         mismatch ? "MISMATCH: injection disabled"
                         : zapi_->capabilities()
                             ? fmt::format("zebra CAPABILITIES ok (multipath {})", zapi_->capabilities()->multipath_num)
                             : "no CAPABILITIES yet");
        t += fmt::format("  last error: {}\n", err.empty() ? "none" : err);
    } else {
        j["zapi"] = nullptr;
        t += "ZAPI: not configured (routing.zebra)\n";
    }
    if (fpm_) {
        const auto& c = fpm_->counters();
        const auto& rc = fpm_listener_->rib_counters();
        j["fpm"] = {{"listen", fpm_listener_->listen_str()},
                    {"state", fpm_phase_name(fpm_->phase())},
                    {"connected", fpm_listener_->connected()},
                    {"peer", fpm_listener_->connected() ? fpm_listener_->peer() : ""},
                    {"generation", fpm_->generation()},
                    {"learned", fpm_->route_count()},
                    {"connects", c.connects},
                    {"replays", c.replays},
                    {"filtered", c.filtered},
                    {"swept", c.swept},
                    {"malformed", c.malformed},
                    {"nhg_ignored", c.nhg_ignored},
                    {"rib_upserts", rc.upserts},
                    {"rib_removes", rc.removes},
                    {"unmapped_table", rc.unmapped_table},
                    {"foreign_interface", rc.foreign_interface},
                    {"multipath_trimmed", rc.multipath_trimmed},
                    {"last_error", fpm_->last_error()}};
        t += fmt::format("FPM from zebra (listening {}): {}{}, generation {}\n", fpm_listener_->listen_str(),
                         fpm_phase_name(fpm_->phase()),
                         fpm_listener_->connected() ? ", peer " + fpm_listener_->peer() : "", fpm_->generation());
        t += fmt::format("  learned {} routes; connects {}, replays {}, swept {}, filtered (ours, connected) {}, malformed {}\n",
                         fpm_->route_count(), c.connects, c.replays, c.swept, c.filtered, c.malformed);
        t += fmt::format("  into the RIB: {} upserts, {} removes; left out: unmapped table {}, foreign interface {}\n",
                         rc.upserts, rc.removes, rc.unmapped_table, rc.foreign_interface);
        t += fmt::format("  last error: {}\n", fpm_->last_error().empty() ? "none" : fpm_->last_error());
    } else {
        j["fpm"] = nullptr;
        t += "FPM: not configured (routing.fpm)\n";
    }
    const auto& ic = inj_->counters();
    j["inject"] = {{"prefixes", inj_->injected_prefixes()},
                   {"active", inj_->active()},
                   {"inactive_reason", inactive_why_},
                   {"accepted", ic.accepted},
                   {"withdrawn", ic.withdrawn},
                   {"refused_no_owner", ic.refused_no_owner},
                   {"refused_default", ic.refused_default},
                   {"refused_unknown_site", ic.refused_unknown_site},
                   {"refused_not_allowed", ic.refused_not_allowed},
                   {"refused_over_limit", ic.refused_over_limit},
                   {"admitted_later", ic.admitted_later},
                   {"shared", ic.shared},
                   {"max_prefixes_per_site", rc_.max_prefixes_per_site},
                   {"last_refusal", inj_->last_refusal()}};
    if (!inj_->active()) t += fmt::format("Injection: SUSPENDED ({}): nothing announced\n", inactive_why_);
    t += fmt::format("Injection: {} prefixes; refused: default {}, outside allowed {}, over limit {}, unknown site {}, "
                     "no owner {}\n",
                     inj_->injected_prefixes(), ic.refused_default, ic.refused_not_allowed, ic.refused_over_limit,
                     ic.refused_unknown_site, ic.refused_no_owner);
    t += fmt::format("  last refusal: {}\n", inj_->last_refusal().empty() ? "none" : inj_->last_refusal());
    if (host_) {
        j["host_routes"] = {{"table", rc_.host_routes.table},
                            {"priority", rc_.host_routes.priority},
                            {"port", host_port_},
                            {"wanted", host_->wanted()},
                            {"installed", host_->installed()},
                            {"failures", host_->failures()},
                            {"refused", host_->refused()},
                            {"last_error", host_->last_error()}};
        t += fmt::format("Host routes (kernel table {}, rule pref {}, via {}): {} installed, {} failures\n",
                         rc_.host_routes.table, rc_.host_routes.priority, host_port_, host_->installed(),
                         host_->failures());
    } else {
        j["host_routes"] = nullptr;
        t += "Host routes: off\n";
    }
    return mgmt::Result{0, t, j};
}

mgmt::Result Frr::show_injected(const mgmt::Args&) const {
    Table tb({{"VRF", "vrf"}, {"Site", "site"}, {"Prefix", "prefix"}, {"Verdict", "verdict"}, {"Tag", "tag", true},
              {"Metric", "metric", true}, {"Zebra", "zebra"}});
    for (auto& e : inj_->entries()) {
        InjectAttrs at = inj_->policy().attrs_for(e.vrf, e.site);
        std::string zs = "-";
        if (zapi_ && e.verdict == Verdict::Injected)
            if (auto s = zapi_->route(0, e.prefix)) {
                zs = route_state_name(s->state);
                at = InjectAttrs{s->tag, s->metric, s->distance};
            }
        tb.row({cfg_.vrfs[size_t(e.vrf)].name, e.site, e.prefix.str(), verdict_name(e.verdict), at.tag, at.metric,
                zs});
    }
    return mgmt::Result{0, tb.text(), tb.json()};
}

mgmt::Result Frr::show_learned(const mgmt::Args&) const {
    Table tb({{"Table", "table", true}, {"Prefix", "prefix"}, {"Protocol", "protocol", true}, {"Next hop", "nexthop"}});
    if (fpm_)
        fpm_->for_each_route([&](const fpm::RouteEvent& ev) {
            std::string nh = ev.is_blackhole() ? "blackhole" : "";
            for (auto& n : ev.nexthops)
                nh += (nh.empty() ? "" : ", ") + (n.gateway ? "via " + n.gateway->str() : std::string("direct")) +
                      fmt::format(" ifindex {}", n.ifindex);
            tb.row({ev.table, ev.prefix.str(), ev.protocol, nh});
        });
    return mgmt::Result{0, tb.text(), tb.json()};
}

mgmt::Result Frr::show_offered(const mgmt::Args&) const {
    Table tb({{"Cloud", "cloud"}, {"VRF", "vrf"}, {"Prefix", "prefix"}});
    for (auto& cl : rc_.clouds)
        for (auto& p : offered(cfg_.vrf_index(cl.vrf))) tb.row({cl.name, cl.vrf, p.str()});
    return mgmt::Result{0, tb.text(), tb.json()};
}

// The commands reach whichever Frr is current (a config apply may replace
// it); without one they say so.
void Frr::register_commands(mgmt::Registry& reg, std::function<Frr*()> current) {
    auto via = [current](mgmt::Result (Frr::*fn)(const mgmt::Args&)) {
        return [current, fn](const mgmt::Args& a) {
            Frr* f = current();
            return f ? (f->*fn)(a) : mgmt::Result::error("% routing (FRR) is not configured");
        };
    };
    auto via_c = [current](mgmt::Result (Frr::*fn)(const mgmt::Args&) const) {
        return [current, fn](const mgmt::Args& a) {
            Frr* f = current();
            return f ? (f->*fn)(a) : mgmt::Result::error("% routing (FRR) is not configured");
        };
    };
    reg.add("show routing", "FRR integration: ZAPI and FPM sessions, injection, host routes",
            via_c(&Frr::show));
    reg.add("show routing injected", "Tunnel prefixes and what injection made of them",
            via_c(&Frr::show_injected));
    reg.add("show routing learned", "Routes learned from zebra over FPM",
            via_c(&Frr::show_learned));
    reg.add("show routing offered", "What each cloud offers to its sites (advertise, advertise_bgp)",
            via_c(&Frr::show_offered));
    reg.add("debug tunnel-for-test up NAME PREFIXES [allowed ALLOWED] [vrf VRF] [via GW]",
            "TEST ONLY: tunnel routes for site NAME (comma-separated prefixes) as if a tunnel came up",
            via(&Frr::test_up));
    reg.add("debug tunnel-for-test down NAME", "TEST ONLY: remove a test tunnel's routes ('all' for every one)",
            via(&Frr::test_down));
    reg.add("debug tunnel-for-test withdraw NAME",
            "TEST ONLY: take a real tunnel's routes out of the RIB, as if it went down ('all': every one)",
            via(&Frr::test_withdraw));
    reg.add("debug tunnel-for-test restore NAME", "TEST ONLY: put withdrawn tunnel routes back, as if it came up",
            via(&Frr::test_restore));
}

void Frr::write_metrics(mgmt::MetricsWriter& w) const {
    {
        if (zapi_) {
            w.family("nimbus_routing_zapi_synced", "gauge", "1 when the ZAPI session to zebra is synced");
            w.sample("nimbus_routing_zapi_synced", zapi_->phase() == ZapiPhase::Synced ? 1 : 0);
            w.family("nimbus_routing_zapi_version_mismatch", "gauge", "1 when injection is off: zebra is not FRR 8.4");
            w.sample("nimbus_routing_zapi_version_mismatch", zapi_->phase() == ZapiPhase::VersionMismatch ? 1 : 0);
            w.family("nimbus_routing_zapi_connects_total", "counter", "ZAPI sessions to zebra established");
            w.sample("nimbus_routing_zapi_connects_total", double(zapi_->counters().connects));
            auto st = zapi_->state_counts();
            w.family("nimbus_routing_zapi_routes", "gauge", "Routes in zebra's desired set, by state");
            for (int i = 0; i < kRouteStates; i++)
                w.sample("nimbus_routing_zapi_routes", {{"state", route_state_name(RouteState(i))}}, double(st[size_t(i)]));
        }
        const auto& ic = inj_->counters();
        w.family("nimbus_routing_injected_prefixes", "gauge", "Site prefixes injected into FRR");
        w.sample("nimbus_routing_injected_prefixes", double(inj_->injected_prefixes()));
        w.family("nimbus_routing_injection_refused_total", "counter", "Tunnel prefixes the safety net refused");
        w.sample("nimbus_routing_injection_refused_total", {{"reason", "default_route"}}, double(ic.refused_default));
        w.sample("nimbus_routing_injection_refused_total", {{"reason", "not_allowed"}}, double(ic.refused_not_allowed));
        w.sample("nimbus_routing_injection_refused_total", {{"reason", "over_limit"}}, double(ic.refused_over_limit));
        w.sample("nimbus_routing_injection_refused_total", {{"reason", "unknown_site"}},
                 double(ic.refused_unknown_site));
        w.sample("nimbus_routing_injection_refused_total", {{"reason", "no_owner"}}, double(ic.refused_no_owner));
        if (fpm_) {
            w.family("nimbus_routing_fpm_connected", "gauge", "1 while zebra's FPM connection is up");
            w.sample("nimbus_routing_fpm_connected", fpm_listener_->connected() ? 1 : 0);
            w.family("nimbus_routing_fpm_routes", "gauge", "Routes learned from zebra over FPM");
            w.sample("nimbus_routing_fpm_routes", double(fpm_->route_count()));
            w.family("nimbus_routing_fpm_malformed_total", "counter", "Malformed FPM data from zebra (dropped)");
            w.sample("nimbus_routing_fpm_malformed_total", double(fpm_->counters().malformed));
            w.family("nimbus_routing_fpm_swept_total", "counter", "Learned routes removed because a replay lacked them");
            w.sample("nimbus_routing_fpm_swept_total", double(fpm_->counters().swept));
        }
        if (host_) {
            w.family("nimbus_routing_host_routes", "gauge", "Kernel routes for tunnel prefixes (the box's own traffic)");
            w.sample("nimbus_routing_host_routes", double(host_->installed()));
        }
    }
}

}  // namespace nimbus::routing
