// The daemon's side of HA: lends the HA engine (control/ha/ha_daemon.h) the
// dataplane, the host interfaces, the RIB and the loop's timers. Member
// functions of Daemon, built with it; daemon.cpp calls them from a few hooks.
#include "control/daemon/daemon.h"
#include "control/ha/ha_cli.h"
#include <algorithm>

#include <fmt/format.h>

#include "src/common/clock.h"

namespace nimbus {

bool Daemon::ha_start(std::string* err) {
    if (!ha_registered_) {  // once: an apply may start HA again
        ha::register_commands(reg_, [this]() -> const ha::HaDaemon* { return ha_.get(); });
        metrics_.add([this](mgmt::MetricsWriter& w) {
            if (ha_) ha::write_metrics(*ha_, w);
        });
        ha_registered_ = true;
    }
    if (!cfg_.ha) return true;
    std::vector<ha::PortView> ports;
    for (size_t i = 0; i < cfg_.ports.size(); i++)
        ports.push_back(ha::PortView{cfg_.ports[i].name, dp::port_info(int(i)).mac, cfg_.ports[i].addresses});
    ha::Env env;
    env.send = [](int port, std::span<const uint8_t> f) { return dp::inject(port, f.data(), uint32_t(f.size())); };
    env.host_addr = [this](int port, const IfAddr& a, bool add, std::string* e) {
        return add ? nl_.addr_add(tap_ifindex(port), a, e) : nl_.addr_del(tap_ifindex(port), a, e);
    };
    env.local_routes = [this](int port, const std::vector<IpAddr>& addrs, bool add, std::string* e) {
        int vrf = cfg_.vrf_index(cfg_.ports[size_t(port)].vrf);
        routing::NextHop local{routing::NextHop::Kind::Local, -1, {}};
        for (auto& a : addrs) {
            Prefix p(a, a.bits());
            if (add) rib_.add(vrf, routing::Route{p, routing::Source::Local, 0, local, 0});
            else rib_.remove(vrf, p, routing::Source::Local, local);
        }
        return rib_.commit(e);
    };
    env.accept_macs = [](int port, const std::vector<MacAddr>& macs, std::string* e) {
        return dp::port_set_macs(port, macs, e);
    };
    env.schedule = [this](std::optional<ha::Time> t) {
        if (ha_timer_) loop_.cancel(ha_timer_);
        ha_timer_ = 0;
        if (t)
            ha_timer_ = loop_.at(*t, [this] {
                ha_timer_ = 0;
                if (ha_) ha_->on_timer(mono_ns());
            });
    };
    ha_ = ha::HaDaemon::create(*cfg_.ha, std::move(ports), std::move(env), err);
    if (!ha_) return false;
    ha_->start(mono_ns());
    ha_track_frr();
    ha_bind_ike();
    return true;
}

// The IKE engine answers on the virtual IPs only while the box is master
// (issue 6): sockets of their own when `ike.listen` names their interface,
// and on giving them up, the IKE SAs and tunnels bound to them go.
void Daemon::ha_bind_ike() {
    if (!ike_) return;
    auto addrs = [](const std::vector<IfAddr>& v) {
        std::vector<IpAddr> out;
        for (auto& a : v) out.push_back(a.addr);
        return out;
    };
    ike_->set_virtual_ips(addrs(ha_->virtual_ips()), ha_->role() == ha::Role::Master, "HA start");
    ha_->subscribe([this, addrs](const ha::RoleEvent& e) {
        if (ike_)
            ike_->set_virtual_ips(addrs(e.vips), e.role == ha::Role::Master,
                                  fmt::format("HA role {}: {}", ha::role_name(e.role), e.reason));
    });
}

// `track: [{frr: zebra}]`: the ZAPI session is up from zebra's CAPABILITIES
// (replaying or synced) until it closes; a version mismatch counts as down.
// Read every 100 ms: the socket's EOF is seen at once, so a takeover starts
// within a poll period (plus the VRRP timers) of zebra going away.
void Daemon::ha_track_frr() {
    bool tracked = std::any_of(cfg_.ha->track.begin(), cfg_.ha->track.end(),
                               [](const config::HaTrack& t) { return t.frr == "zebra"; });
    if (!tracked) return;
    auto poll = [this] {
        if (!ha_) return;
        const routing::ZapiSession* z = frr_ ? frr_->zapi() : nullptr;
        bool up = z && (z->phase() == routing::ZapiPhase::Replaying || z->phase() == routing::ZapiPhase::Synced);
        ha_->set_track(mono_ns(), "frr:zebra", up);
    };
    poll();
    ha_track_timer_ = loop_.every_ms(100, poll);
}

// Graceful: a master resigns (priority 0) and removes its VIPs while the
// dataplane still runs (dp::shutdown lets injected frames leave).
void Daemon::ha_stop() {
    if (ha_track_timer_) loop_.cancel(ha_track_timer_);
    ha_track_timer_ = 0;
    if (!ha_) return;
    ha_->shutdown(mono_ns());
    if (ha_timer_) loop_.cancel(ha_timer_);
    ha_timer_ = 0;
    ha_.reset();
}

bool Daemon::ha_punt(dp::HostPkt& p) {
    if (!ha_ || p.from_host || !p.len) return false;
    // The control thread owns a punted packet until release(): it may edit it.
    std::span<uint8_t> f(const_cast<uint8_t*>(p.data), p.len);
    if (p.cls == dp::PuntClass::Vrrp && ha_->take_advert(mono_ns(), p.port, f)) {
        dp::release(p);
        return true;
    }
    ha_->fix_to_host(p.port, f);
    return false;
}

void Daemon::ha_from_host(int port, uint8_t* frame, uint32_t len) {
    if (ha_) ha_->fix_from_host(port, {frame, len});
}

void Daemon::ha_link(int port, bool up) {
    if (ha_) ha_->set_link(mono_ns(), port, up);
}

}  // namespace nimbus
