#include "control/ha/ha_daemon.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "src/common/log.h"
#include "src/common/table.h"

namespace nimbus::ha {

namespace {

constexpr size_t kEthLen = 14;
constexpr uint8_t kIcmpv6 = 58;
constexpr uint8_t kNdNeighborSolicit = 135;   // RFC 4861 §4.3
constexpr uint8_t kNdNeighborAdvert = 136;    // RFC 4861 §4.4
constexpr uint8_t kNdOptSourceLinkAddr = 1;   // RFC 4861 §4.6.1
constexpr uint8_t kNdOptTargetLinkAddr = 2;

uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

bool has_addr(const std::vector<IfAddr>& v, const IpAddr& a) {
    return std::any_of(v.begin(), v.end(), [&](const IfAddr& x) { return x.addr == a; });
}

void put_mac(uint8_t* p, const MacAddr& m) { std::copy(m.b.begin(), m.b.end(), p); }

std::string ago(Time now, Time then) {
    if (then == 0 || then > now) return "never";
    return fmt::format("{:.1f}s ago", double(now - then) / 1e9);
}

}  // namespace

const char* role_name(Role r) {
    switch (r) {
        case Role::Init: return "init";
        case Role::Backup: return "backup";
        case Role::Master: return "master";
    }
    return "?";
}

IpAddr eui64_link_local(const MacAddr& mac) {
    IpAddr a;
    a.family = Family::V6;
    a.b[0] = 0xfe;
    a.b[1] = 0x80;
    a.b[8] = mac.b[0] ^ 0x02;   // universal/local bit inverted
    a.b[9] = mac.b[1];
    a.b[10] = mac.b[2];
    a.b[11] = 0xff;
    a.b[12] = 0xfe;
    a.b[13] = mac.b[3];
    a.b[14] = mac.b[4];
    a.b[15] = mac.b[5];
    return a;
}

std::unique_ptr<HaDaemon> HaDaemon::create(const config::Ha& cfg, std::vector<PortView> ports, Env env,
                                           std::string* err) {
    std::unique_ptr<HaDaemon> d(new HaDaemon());
    d->cfg_ = cfg;
    d->ports_ = std::move(ports);
    d->env_ = std::move(env);
    d->vips_ = cfg.virtual_ips;

    auto port_id = [&](const std::string& name) {
        for (size_t i = 0; i < d->ports_.size(); i++)
            if (d->ports_[i].name == name) return int(i);
        return -1;
    };

    // Tracks: explicit ones, then every listed interface not given a weight
    // (its link down forces backup, as keepalived puts an instance whose
    // interface fails into FAULT). Every member carries every track: the
    // group moves as one anyway.
    std::vector<Track> tracks;
    for (auto& t : cfg.track)
        tracks.push_back(Track{t.frr.empty() ? "port:" + t.port : "frr:" + t.frr, uint8_t(t.fault ? 0 : t.weight)});
    for (auto& i : cfg.interfaces)
        if (std::none_of(cfg.track.begin(), cfg.track.end(), [&](const config::HaTrack& t) { return t.port == i; }))
            tracks.push_back(Track{"port:" + i, 0});

    std::vector<Instance*> insts;
    for (auto& iface : cfg.interfaces) {
        int port = port_id(iface);
        if (port < 0) {
            *err = fmt::format("ha: port '{}' is not a dataplane port", iface);
            return nullptr;
        }
        const PortView& pv = d->ports_[size_t(port)];
        for (Family f : {Family::V4, Family::V6}) {
            std::vector<IfAddr> mine;
            for (auto& v : cfg.virtual_ips) {
                if (v.addr.family != f) continue;
                bool in = std::any_of(pv.addresses.begin(), pv.addresses.end(), [&](const IfAddr& a) {
                    return a.addr.family == f && a.subnet().contains(v.addr);
                });
                if (in) mine.push_back(v);
            }
            if (mine.empty()) continue;
            auto m = std::make_unique<Member>();
            m->port = port;
            m->family = f;
            m->vmac = virtual_mac(uint8_t(cfg.vrid), f);
            m->vips = mine;
            if (f == Family::V4) {
                for (auto& a : pv.addresses)
                    if (a.addr.is_v4()) {
                        m->primary = a.addr;   // the first IPv4 address: the TAP's primary (§7.2)
                        break;
                    }
            } else {
                m->primary = eui64_link_local(pv.mac);
            }
            InstanceConfig ic;
            ic.name = fmt::format("{}.{}", iface, f == Family::V4 ? "v4" : "v6");
            ic.vrid = uint8_t(cfg.vrid);
            ic.priority = uint8_t(cfg.priority);
            ic.adver_int_cs = uint16_t(cfg.advert_interval_ms / 10);
            ic.preempt = cfg.preempt;
            ic.preempt_delay = Duration(cfg.preempt_delay_ms) * 1'000'000;
            ic.primary = m->primary;
            for (auto& v : mine) ic.vips.push_back(v.addr);
            ic.tracks = tracks;
            ic.garp_repeat = uint8_t(cfg.garp.repeat);
            ic.garp_delay = Duration(cfg.garp.delay_ms) * 1'000'000;
            ic.garp_refresh = Duration(cfg.garp.refresh_s) * kNsPerSec;
            if (auto e = validate_config(ic); !e.empty()) {
                *err = fmt::format("ha: instance {}: {}", ic.name, e);
                return nullptr;
            }
            m->inst = std::make_unique<Instance>(std::move(ic));
            insts.push_back(m->inst.get());
            d->members_.push_back(std::move(m));
        }
    }
    if (d->members_.empty()) {
        *err = "ha: no virtual IP lies on a listed interface";
        return nullptr;
    }
    d->group_ = std::make_unique<SyncGroup>(fmt::format("vrid{}", cfg.vrid), std::move(insts));
    return d;
}

HaDaemon::~HaDaemon() = default;

HaDaemon::Member* HaDaemon::member_for(int port, Family f) {
    for (auto& m : members_)
        if (m->port == port && m->family == f) return m.get();
    return nullptr;
}

const HaDaemon::Member* HaDaemon::master_member_for(int port, Family f) const {
    for (auto& m : members_)
        if (m->port == port && m->family == f && m->installed) return m.get();
    return nullptr;
}

void HaDaemon::start(Time now) {
    if (started_) return;
    started_ = true;
    // The IPv6 instances advertise from the EUI-64 link-local address; make
    // sure the host interface has it whatever its addr_gen_mode.
    for (auto& m : members_) {
        if (m->family != Family::V6) continue;
        std::string e;
        if (!env_.host_addr(m->port, IfAddr{m->primary, 64}, true, &e)) {
            ctr_.install_errors++;
            LOG_WARN("ha", "event=link_local_failed port={} addr={} error=\"{}\"", ports_[size_t(m->port)].name,
                     m->primary.str(), e);
        }
    }
    LOG_INFO("ha", "event=start group=vrid{} priority={} preempt={} advert_interval_ms={} instances={}", cfg_.vrid,
             cfg_.priority, cfg_.preempt, cfg_.advert_interval_ms, members_.size());
    apply(now, group_->startup(now));
}

void HaDaemon::shutdown(Time now) {
    if (!started_) return;
    auto acts = group_->shutdown(now);
    started_ = false;
    apply(now, acts);
    // Whatever an action could not undo (an error) is undone here.
    for (auto& m : members_)
        if (m->installed) remove(*m);
    env_.schedule(std::nullopt);
}

void HaDaemon::on_timer(Time now) {
    if (!started_) return;
    apply(now, group_->on_timer(now));
}

void HaDaemon::apply(Time now, const GroupActions& acts) {
    std::string reason;
    for (auto& ma : acts) {
        Member& m = *members_.at(ma.member);
        const Action& a = ma.action;
        switch (a.kind) {
            case ActionKind::InstallVips: install(now, m); break;
            case ActionKind::RemoveVips: remove(m); break;
            case ActionKind::SendAdvert: send_advert(m, a.priority); break;
            case ActionKind::Announce: announce(m, a.count); break;
            case ActionKind::BecomeMaster:
            case ActionKind::BecomeBackup:
            case ActionKind::BecomeInit:
                if (reason.empty()) reason = a.reason;
                break;
        }
    }
    check_role(now, reason);
    env_.schedule(started_ ? group_->next_deadline() : std::nullopt);
}

void HaDaemon::check_role(Time now, const std::string& action_reason) {
    Role r = !started_ ? Role::Init : group_->master() ? Role::Master : Role::Backup;
    if (r == role_) return;
    RoleEvent ev;
    ev.previous = role_;
    ev.role = r;
    ev.at = now;
    ev.vips = vips_;
    auto gs = group_->status();
    // A member's reason names the cause (an advert, a silent master, a
    // track); the group's ("member lan0.v4 is backup (...)") says which one.
    ev.reason = r == Role::Init ? "shutdown" : r == Role::Backup && !gs.last_reason.empty() ? gs.last_reason
                                                                                          : action_reason;
    if (ev.reason.empty()) ev.reason = gs.last_reason;
    role_ = r;
    role_reason_ = ev.reason;
    role_since_ = now;
    ctr_.role_changes++;
    LOG_INFO("ha", "event=role_change group={} role={} previous={} reason=\"{}\"", gs.name, role_name(r),
             role_name(ev.previous), ev.reason);
    // A copy: a handler may subscribe or unsubscribe.
    auto hs = handlers_;
    for (auto& [id, h] : hs) h(ev);
}

void HaDaemon::update_macs(int port) {
    std::vector<MacAddr> macs;
    for (auto& m : members_)
        if (m->port == port && m->installed && std::find(macs.begin(), macs.end(), m->vmac) == macs.end())
            macs.push_back(m->vmac);
    std::string e;
    if (!env_.accept_macs(port, macs, &e)) {
        ctr_.install_errors++;
        LOG_ERROR("ha", "event=vmac_failed port={} error=\"{}\"", ports_[size_t(port)].name, e);
    }
}

// RFC 9568 §8.1.2/§8.2.2: the addresses and the virtual MAC are in place
// before the first advert and announcement go out (the actions that follow).
void HaDaemon::install(Time, Member& m) {
    if (m.installed) return;
    m.installed = true;
    update_macs(m.port);
    std::vector<IpAddr> addrs;
    for (auto& v : m.vips) addrs.push_back(v.addr);
    std::string e;
    if (!env_.local_routes(m.port, addrs, true, &e)) {
        ctr_.install_errors++;
        LOG_ERROR("ha", "event=vip_route_failed instance={} error=\"{}\"", m.inst->config().name, e);
    }
    for (auto& v : m.vips) {
        e.clear();
        if (!env_.host_addr(m.port, v, true, &e)) {
            ctr_.install_errors++;
            LOG_ERROR("ha", "event=vip_add_failed instance={} vip={} error=\"{}\"", m.inst->config().name, v.str(),
                      e);
        }
    }
    LOG_INFO("ha", "event=vips_installed instance={} port={} vmac={} vips={}", m.inst->config().name,
             ports_[size_t(m.port)].name, m.vmac.str(), m.vips.size());
}

void HaDaemon::remove(Member& m) {
    if (!m.installed) return;
    m.installed = false;
    std::string e;
    for (auto& v : m.vips) {
        e.clear();
        if (!env_.host_addr(m.port, v, false, &e)) {
            ctr_.install_errors++;
            LOG_WARN("ha", "event=vip_del_failed instance={} vip={} error=\"{}\"", m.inst->config().name, v.str(), e);
        }
    }
    std::vector<IpAddr> addrs;
    for (auto& v : m.vips) addrs.push_back(v.addr);
    e.clear();
    if (!env_.local_routes(m.port, addrs, false, &e)) {
        ctr_.install_errors++;
        LOG_ERROR("ha", "event=vip_route_del_failed instance={} error=\"{}\"", m.inst->config().name, e);
    }
    update_macs(m.port);
    LOG_INFO("ha", "event=vips_removed instance={} port={}", m.inst->config().name, ports_[size_t(m.port)].name);
}

void HaDaemon::send(int port, const std::vector<uint8_t>& frame) {
    if (frame.empty()) return;
    if (env_.send(port, frame)) ctr_.frames_sent++;
    else ctr_.send_failures++;
}

void HaDaemon::send_advert(Member& m, uint8_t priority) {
    IpOptions o;
    o.ipv4_id = ip_id_[m.port]++;
    send(m.port, build_advert_frame(m.inst->advert(priority), m.primary, m.vmac, o));
}

void HaDaemon::announce(Member& m, uint8_t count) {
    for (uint8_t i = 0; i < count; i++)
        for (auto& v : m.vips)
            send(m.port, m.family == Family::V4 ? build_garp(v.addr, m.vmac)
                                                : build_unsolicited_na(v.addr, m.primary, m.vmac));
}

bool HaDaemon::take_advert(Time now, int port, std::span<const uint8_t> frame) {
    bool ha_port = std::any_of(members_.begin(), members_.end(), [&](auto& m) { return m->port == port; });
    if (!ha_port) return false;   // a VRRP router of someone else's on another port: the kernel's business
    if (frame.size() < kEthLen + 1) {
        ctr_.rx_not_ip++;
        return true;
    }
    uint16_t et = rd16(frame.data() + 12);
    auto ip = frame.subspan(kEthLen);
    int ver = ip[0] >> 4;
    if (!((et == 0x0800 && ver == 4) || (et == 0x86dd && ver == 6))) {
        ctr_.rx_not_ip++;
        return true;
    }
    Member* m = member_for(port, ver == 4 ? Family::V4 : Family::V6);
    if (!m) {
        ctr_.rx_no_instance++;
        return true;
    }
    if (!started_) return true;
    size_t idx = 0;
    while (members_[idx].get() != m) idx++;
    apply(now, group_->on_packet(now, idx, ip));
    return true;
}

void HaDaemon::fix_to_host(int port, std::span<uint8_t> frame) {
    if (frame.size() < kEthLen || (frame[0] & 1)) return;
    for (auto& m : members_) {
        if (m->port != port || !m->installed) continue;
        if (std::equal(m->vmac.b.begin(), m->vmac.b.end(), frame.begin())) {
            put_mac(frame.data(), ports_[size_t(port)].mac);
            ctr_.to_host_rewritten++;
            return;
        }
    }
}

void HaDaemon::fix_from_host(int port, std::span<uint8_t> frame) {
    if (frame.size() < kEthLen) return;
    uint8_t* f = frame.data();
    uint16_t et = rd16(f + 12);
    if (et == 0x0806) {
        // ARP (RFC 826): Ethernet/IPv4 only.
        const Member* m = master_member_for(port, Family::V4);
        if (!m || frame.size() < kEthLen + 28 || rd16(f + 14) != 1 || rd16(f + 16) != 0x0800 || f[18] != 6 ||
            f[19] != 4)
            return;
        if (!has_addr(m->vips, IpAddr::v4_net(f + 28))) return;
        put_mac(f + 6, m->vmac);
        put_mac(f + 22, m->vmac);   // sender hardware address
        ctr_.from_host_rewritten++;
        return;
    }
    if (et == 0x0800) {
        const Member* m = master_member_for(port, Family::V4);
        if (!m || frame.size() < kEthLen + 20 || (f[14] >> 4) != 4) return;
        if (!has_addr(m->vips, IpAddr::v4_net(f + 26))) return;
        put_mac(f + 6, m->vmac);
        ctr_.from_host_rewritten++;
        return;
    }
    if (et != 0x86dd) return;
    const Member* m = master_member_for(port, Family::V6);
    if (!m || frame.size() < kEthLen + 40 || (f[14] >> 4) != 6) return;
    uint8_t* ip = f + kEthLen;
    IpAddr src = IpAddr::v6_net(ip + 8), dst = IpAddr::v6_net(ip + 24);
    size_t plen = std::min<size_t>(rd16(ip + 4), frame.size() - kEthLen - 40);
    uint8_t* icmp = ip + 40;
    bool from_vip = has_addr(m->vips, src);
    bool nd = ip[6] == kIcmpv6 && plen >= 24 && (icmp[0] == kNdNeighborAdvert || icmp[0] == kNdNeighborSolicit);
    // NA for a VIP (whatever its source), NS from a VIP: the link-layer option
    // names the virtual MAC (RFC 4861 §7.2.4, §7.2.6).
    bool fix_nd = nd && (icmp[0] == kNdNeighborAdvert ? has_addr(m->vips, IpAddr::v6_net(icmp + 8)) : from_vip);
    if (!from_vip && !fix_nd) return;
    put_mac(f + 6, m->vmac);
    ctr_.from_host_rewritten++;
    if (!fix_nd) return;
    uint8_t want = icmp[0] == kNdNeighborAdvert ? kNdOptTargetLinkAddr : kNdOptSourceLinkAddr;
    bool changed = false;
    for (size_t off = 24; off + 8 <= plen;) {
        size_t olen = size_t(icmp[off + 1]) * 8;
        if (olen == 0 || off + olen > plen) break;
        if (icmp[off] == want && olen == 8) {
            put_mac(icmp + off + 2, m->vmac);
            changed = true;
        }
        off += olen;
    }
    if (!changed) return;
    icmp[2] = icmp[3] = 0;
    uint16_t ck = pseudo_checksum(src, dst, kIcmpv6, {icmp, plen});
    icmp[2] = uint8_t(ck >> 8);
    icmp[3] = uint8_t(ck);
}

void HaDaemon::set_link(Time now, int port, bool up) {
    if (port < 0 || size_t(port) >= ports_.size()) return;
    set_track(now, "port:" + ports_[size_t(port)].name, up);
}

void HaDaemon::set_track(Time now, const std::string& object, bool up) {
    if (!started_) return;
    apply(now, group_->set_track(now, object, up));
}

int HaDaemon::subscribe(RoleHandler h) {
    int id = next_handler_++;
    handlers_[id] = std::move(h);
    return id;
}

void HaDaemon::unsubscribe(int id) { handlers_.erase(id); }

bool HaDaemon::owns(const IpAddr& a) const {
    for (auto& m : members_)
        if (m->installed && has_addr(m->vips, a)) return true;
    return false;
}

nlohmann::json HaDaemon::status_json(Time now) const {
    using nlohmann::json;
    json j;
    auto gs = group_->status();
    j["group"] = to_json(gs);
    j["role"] = role_name(role_);
    j["role_reason"] = role_reason_;
    j["role_since_s"] = role_since_ ? double(now - role_since_) / 1e9 : 0.0;
    j["vrid"] = cfg_.vrid;
    json vips = json::array();
    for (auto& v : vips_) vips.push_back(v.str());
    j["virtual_ips"] = vips;
    j["instances"] = json::array();
    for (auto& m : members_) {
        auto s = m->inst->status();
        json i = to_json(s);
        i["port"] = ports_[size_t(m->port)].name;
        i["virtual_mac"] = m->vmac.str();
        i["source"] = m->primary.str();
        i["installed"] = m->installed;
        i["last_transition_s_ago"] = s.last_transition && s.last_transition <= now
                                         ? double(now - s.last_transition) / 1e9
                                         : -1.0;
        uint64_t errors = 0;
        for (size_t k = 1; k < kRxReasonCount; k++) errors += s.counters.rx_drops[k];
        i["rx_errors"] = errors;
        j["instances"].push_back(i);
    }
    j["counters"] = {{"frames_sent", ctr_.frames_sent},
                     {"send_failures", ctr_.send_failures},
                     {"install_errors", ctr_.install_errors},
                     {"rx_no_instance", ctr_.rx_no_instance},
                     {"rx_not_ip", ctr_.rx_not_ip},
                     {"from_host_rewritten", ctr_.from_host_rewritten},
                     {"to_host_rewritten", ctr_.to_host_rewritten},
                     {"role_changes", ctr_.role_changes}};
    return j;
}

std::string HaDaemon::status_text(Time now) const {
    auto gs = group_->status();
    std::string vips;
    for (auto& v : vips_) vips += (vips.empty() ? "" : ", ") + v.str();
    std::string s = fmt::format("HA sync group {}: {} (since {}: {}), {} transitions, inconsistent priorities {}\n"
                                "Virtual IPs: {}\n\n",
                                gs.name, role_name(role_), ago(now, role_since_), role_reason_, gs.transitions,
                                gs.inconsistent_priorities, vips);
    Table t({{"Instance", "name"},
             {"Port", "port"},
             {"VRID", "vrid", true},
             {"State", "state"},
             {"Prio", "priority", true},
             {"Eff", "effective_priority", true},
             {"Preempt", "preempt"},
             {"Master", "master"},
             {"M.prio", "master_priority", true},
             {"Adv sent", "adverts_sent", true},
             {"Adv rcvd", "adverts_rcvd", true},
             {"Errors", "rx_errors", true},
             {"Fault", "fault"}});
    std::string trans;
    for (auto& m : members_) {
        auto st = m->inst->status();
        uint64_t errors = 0;
        for (size_t k = 1; k < kRxReasonCount; k++) errors += st.counters.rx_drops[k];
        std::string master = st.master ? st.master->str() : "-";
        if (st.master && *st.master == m->primary) master += " (us)";
        t.row({st.name, ports_[size_t(m->port)].name, st.vrid, state_name(st.state), st.priority_configured,
               st.priority_effective, st.preempt ? "yes" : "no", master, st.master_priority,
               st.counters.adverts_sent, st.counters.adverts_rcvd, errors, st.fault ? "yes" : "no"});
        std::string down;
        for (auto& d : st.tracks_down) down += (down.empty() ? "" : ",") + d;
        trans += fmt::format("  {}: {} {}: {}{}\n", st.name, state_name(st.state), ago(now, st.last_transition),
                             st.last_reason, down.empty() ? "" : " [tracked down: " + down + "]");
    }
    s += t.text();
    s += "\nLast transitions:\n" + trans;
    // Every error counter, one row per reason, one column per instance.
    std::vector<Table::Col> cols{{"Counter", "counter"}};
    for (auto& m : members_) cols.push_back({m->inst->config().name, m->inst->config().name, true});
    Table e(cols);
    for (size_t k = 1; k < kRxReasonCount; k++) {
        std::vector<nlohmann::json> row{rx_reason_name(RxReason(k))};
        for (auto& m : members_) row.push_back(m->inst->counters().rx_drops[k]);
        e.row(row);
    }
    for (auto [name, get] : std::initializer_list<std::pair<const char*, uint64_t Counters::*>>{
             {"interval_mismatch", &Counters::interval_mismatch},
             {"own_adverts", &Counters::own_adverts},
             {"adverts_discarded", &Counters::adverts_discarded},
             {"pri_zero_rcvd", &Counters::pri_zero_rcvd},
             {"pri_zero_sent", &Counters::pri_zero_sent},
             {"master_down_expired", &Counters::master_down_expired}}) {
        std::vector<nlohmann::json> row{name};
        for (auto& m : members_) row.push_back(m->inst->counters().*get);
        e.row(row);
    }
    s += "\n" + e.text();
    s += fmt::format("\nFrames sent {} (failed {}), install errors {}, VRRP without an instance {}, not IP {}, "
                     "kernel frames sent from the virtual MAC {}, frames to the virtual MAC to the kernel {}\n",
                     ctr_.frames_sent, ctr_.send_failures, ctr_.install_errors, ctr_.rx_no_instance, ctr_.rx_not_ip,
                     ctr_.from_host_rewritten, ctr_.to_host_rewritten);
    return s;
}

}  // namespace nimbus::ha
