#include "control/ha/vrrp.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "src/common/log.h"

namespace nimbus::ha {

const char* state_name(State s) {
    switch (s) {
    case State::Initialize: return "init";
    case State::Backup: return "backup";
    case State::Master: return "master";
    }
    return "?";
}

const char* action_name(ActionKind k) {
    switch (k) {
    case ActionKind::BecomeMaster: return "become-master";
    case ActionKind::BecomeBackup: return "become-backup";
    case ActionKind::BecomeInit: return "become-init";
    case ActionKind::InstallVips: return "install-vips";
    case ActionKind::RemoveVips: return "remove-vips";
    case ActionKind::SendAdvert: return "send-advert";
    case ActionKind::Announce: return "announce";
    }
    return "?";
}

std::string format_duration(Duration d) {
    std::string frac = fmt::format("{:09}", d % kNsPerSec);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    if (frac.empty()) return fmt::format("{}s", d / kNsPerSec);
    return fmt::format("{}.{}s", d / kNsPerSec, frac);
}

std::string validate_config(const InstanceConfig& c) {
    if (c.vrid == 0) return "vrid: must be 1..255";
    if (c.priority == 0) return "priority: must be 1..255 (0 is reserved for resigning, RFC 5798 §5.2.4)";
    if (c.adver_int_cs == 0 || c.adver_int_cs > kMaxAdverIntCs)
        return "advert interval: must be 1..4095 centiseconds (RFC 5798 §5.2.7)";
    if (c.primary.is_zero()) return "primary address: required (advert source, RFC 5798 §7.2)";
    if (c.primary.is_v6() && !c.primary.is_link_local())
        return "primary address: an IPv6 instance sends from its link-local address (RFC 5798 §7.2)";
    if (c.vips.empty()) return "virtual addresses: at least one";
    if (c.vips.size() > 255) return "virtual addresses: at most 255";
    for (const auto& v : c.vips)
        if (v.family != c.primary.family)
            return fmt::format("virtual address {}: family differs from the primary address (RFC 5798 §5.2.9)",
                               v.str());
    for (size_t i = 0; i < c.tracks.size(); i++) {
        if (c.tracks[i].name.empty()) return "track: empty name";
        for (size_t j = 0; j < i; j++)
            if (c.tracks[j].name == c.tracks[i].name) return fmt::format("track {}: listed twice", c.tracks[i].name);
    }
    return {};
}

Instance::Instance(InstanceConfig c)
    : cfg_(std::move(c)),
      eff_prio_(cfg_.priority),
      track_down_(cfg_.tracks.size(), false),
      master_adver_int_cs_(cfg_.adver_int_cs) {}

Advert Instance::advert(uint8_t priority) const {
    Advert a;
    a.vrid = cfg_.vrid;
    a.priority = priority;
    a.max_adver_int_cs = cfg_.adver_int_cs;   // §6.4.3: we advertise our Advertisement_Interval
    a.addrs = cfg_.vips;
    return a;
}

RxExpect Instance::rx_expect() const {
    RxExpect e;
    e.vrid = cfg_.vrid;
    e.family = cfg_.primary.family;
    e.vips = cfg_.vips;
    e.adver_int_cs = cfg_.adver_int_cs;
    return e;
}

bool Instance::down_timer_running() const { return state_ == State::Backup && !fault_ && !want_master_; }

bool Instance::ready_for_master() const {
    return state_ == State::Master || (state_ == State::Backup && want_master_ && !fault_);
}

bool Instance::peer_is_lower(Time now) const {
    return lower_seen_ && now - lower_seen_at_ <= master_down_interval(eff_prio_, master_adver_int_cs_);
}

bool Instance::peer_is_higher() const {
    return state_ == State::Backup && !want_master_ && !fault_ && master_.has_value() && master_prio_ >= eff_prio_;
}

std::optional<Time> Instance::next_deadline() const {
    if (state_ == State::Backup) {
        if (down_timer_running()) return master_down_at_;
        return std::nullopt;
    }
    if (state_ == State::Master) {
        Time t = adver_at_;
        if (garp_at_ != 0) t = std::min(t, garp_at_);
        return t;
    }
    return std::nullopt;
}

void Instance::send_advert(uint8_t prio, Actions& out) {
    out.push_back({ActionKind::SendAdvert, prio, 0, {}});
    ctr_.adverts_sent++;
    if (prio == kPriorityStop) ctr_.pri_zero_sent++;
}

void Instance::announce(uint8_t count, Actions& out) {
    if (count == 0) return;
    out.push_back({ActionKind::Announce, 0, count, {}});
    ctr_.announces_sent++;
}

void Instance::arm_master_down(Time now) {
    master_down_at_ = now + master_down_interval(eff_prio_, master_adver_int_cs_);
}

// §6.4.1 (110)-(145) / §6.4.2 (370)-(410).
Actions Instance::become_master(Time now, std::string reason) {
    Actions out;
    state_ = State::Master;
    want_master_ = false;
    preempt_at_ = 0;
    master_ = cfg_.primary;
    master_prio_ = eff_prio_;
    out.push_back({ActionKind::BecomeMaster, 0, 0, reason});
    // RFC 9568 §8.1.2/§8.2.2: announce only once the VIPs and VMAC are in place.
    out.push_back({ActionKind::InstallVips, 0, 0, {}});
    send_advert(eff_prio_, out);
    announce(cfg_.garp_repeat, out);
    adver_at_ = now + cs_to_ns(cfg_.adver_int_cs);
    if (cfg_.garp_delay > 0) {
        garp_at_ = now + cfg_.garp_delay;
        garp_second_burst_ = true;
    } else if (cfg_.garp_refresh > 0) {
        garp_at_ = now + cfg_.garp_refresh;
        garp_second_burst_ = false;
    } else {
        garp_at_ = 0;
    }
    ctr_.became_master++;
    last_transition_ = now;
    last_reason_ = std::move(reason);
    LOG_INFO("ha", "instance={} vrid={} state=master prio={} reason=\"{}\"", cfg_.name, cfg_.vrid, eff_prio_,
             last_reason_);
    return out;
}

void Instance::to_backup(Time now, std::string reason, Actions& out) {
    bool was_master = state_ == State::Master;
    state_ = State::Backup;
    adver_at_ = 0;
    garp_at_ = 0;
    out.push_back({ActionKind::BecomeBackup, 0, 0, reason});
    if (was_master) out.push_back({ActionKind::RemoveVips, 0, 0, {}});
    ctr_.became_backup++;
    last_transition_ = now;
    last_reason_ = std::move(reason);
    LOG_INFO("ha", "instance={} vrid={} state=backup prio={} reason=\"{}\"", cfg_.name, cfg_.vrid, eff_prio_,
             last_reason_);
}

// Not an RFC transition (fault, sync group): resign with priority 0 so the
// peer takes over after its Skew_Time rather than Master_Down_Interval.
Actions Instance::leave_master(Time now, std::string reason) {
    Actions out;
    send_advert(kPriorityStop, out);
    master_.reset();
    master_prio_ = 0;
    master_adver_int_cs_ = cfg_.adver_int_cs;
    to_backup(now, std::move(reason), out);
    return out;
}

Actions Instance::startup(Time now) {
    if (state_ != State::Initialize) return {};
    Actions out;
    master_adver_int_cs_ = cfg_.adver_int_cs;   // §6.4.1 (155)
    master_.reset();
    master_prio_ = 0;
    preempt_at_ = 0;
    lower_seen_ = false;
    if (fault_) {
        want_master_ = false;
        to_backup(now, "startup with a tracked object down", out);
        return out;
    }
    if (eff_prio_ == kPriorityOwner) {   // §6.4.1 (105)
        if (!held_) return become_master(now, "startup: address owner (priority 255)");
        want_master_ = true;
        wish_reason_ = "address owner (priority 255)";
        to_backup(now, "startup: address owner, held by its sync group", out);
        return out;
    }
    want_master_ = false;
    arm_master_down(now);   // §6.4.1 (160)
    down_cause_ = fmt::format("no advertisement within {} of startup",
                              format_duration(master_down_interval(eff_prio_, master_adver_int_cs_)));
    to_backup(now, "startup", out);
    return out;
}

Actions Instance::shutdown(Time now) {
    Actions out;
    if (state_ == State::Initialize) return out;
    if (state_ == State::Master) send_advert(kPriorityStop, out);   // §6.4.3 (655)
    bool was_master = state_ == State::Master;
    state_ = State::Initialize;
    adver_at_ = garp_at_ = master_down_at_ = 0;
    want_master_ = false;
    preempt_at_ = 0;
    master_.reset();
    master_prio_ = 0;
    out.push_back({ActionKind::BecomeInit, 0, 0, "shutdown"});
    if (was_master) out.push_back({ActionKind::RemoveVips, 0, 0, {}});
    last_transition_ = now;
    last_reason_ = "shutdown";
    LOG_INFO("ha", "instance={} vrid={} state=init reason=shutdown", cfg_.name, cfg_.vrid);
    return out;
}

Actions Instance::on_packet(Time now, std::span<const uint8_t> ip_packet) {
    auto r = validate_advert(ip_packet, rx_expect());
    if (!r.ok()) {
        ctr_.rx_drops[size_t(r.reason)]++;
        LOG_DEBUG("ha", "instance={} drop={} src={}", cfg_.name, rx_reason_name(r.reason), r.src.str());
        return {};
    }
    if (r.interval_mismatch) {
        if (ctr_.interval_mismatch++ == 0)
            LOG_WARN("ha", "instance={} src={} advert_interval={}cs ours={}cs (RFC 9568 §7.1: check the config)",
                     cfg_.name, r.src.str(), r.advert.max_adver_int_cs, cfg_.adver_int_cs);
    }
    if (r.owner_addr_mismatch) ctr_.owner_addr_mismatch++;
    if (r.v4_message_only_checksum) ctr_.v4_message_only_checksum++;
    return on_advert(now, RxAdvert{r.src, r.advert.priority, r.advert.max_adver_int_cs});
}

Actions Instance::on_advert(Time now, const RxAdvert& a) {
    Actions out;
    if (a.max_adver_int_cs == 0 || a.max_adver_int_cs > kMaxAdverIntCs) {
        ctr_.rx_drops[size_t(RxReason::IntervalZero)]++;
        return out;
    }
    if (a.src == cfg_.primary) {   // our own advert looped back: never a peer
        ctr_.own_adverts++;
        return out;
    }
    ctr_.adverts_rcvd++;
    if (a.priority == kPriorityStop) ctr_.pri_zero_rcvd++;

    if (state_ == State::Backup) {
        if (a.priority == kPriorityStop) {
            // §6.4.2 (425)-(430): the Master resigned; take over after Skew_Time.
            master_down_at_ = now + skew_time(eff_prio_, master_adver_int_cs_);
            down_cause_ = fmt::format("master {} resigned (priority 0)", a.src.str());
            return out;
        }
        master_ = a.src;
        master_prio_ = a.priority;
        bool accept = !preempting() || a.priority >= eff_prio_;   // §6.4.2 (445)
        if (!accept) {
            lower_seen_ = true;
            lower_seen_at_ = now;
            // preempt_delay (keepalived): hold our fire for `preempt_delay` after
            // first seeing a lower-priority Master, treating its adverts as if
            // preemption were off; then discard them as §6.4.2 (470) says. The
            // owner always preempts at once (§6.1 Preempt_Mode).
            if (cfg_.preempt_delay > 0 && eff_prio_ != kPriorityOwner) {
                if (preempt_at_ == 0) preempt_at_ = now + cfg_.preempt_delay;
                if (now < preempt_at_) accept = true;
            }
        } else if (a.priority >= eff_prio_) {
            preempt_at_ = 0;   // a better (or equal) Master: the delay starts over next time
        }
        if (accept) {
            // §6.4.2 (450)-(460)
            master_adver_int_cs_ = a.max_adver_int_cs;
            arm_master_down(now);
            want_master_ = false;
            down_cause_ = fmt::format("master {} silent for {}", a.src.str(),
                                      format_duration(master_down_interval(eff_prio_, master_adver_int_cs_)));
        } else {
            // §6.4.2 (470): discard; the Master_Down_Timer runs out and we preempt.
            ctr_.adverts_discarded++;
            down_cause_ = fmt::format("preempting master {} (priority {} < ours {})", a.src.str(), a.priority,
                                      eff_prio_);
        }
        return out;
    }

    if (state_ == State::Master) {
        if (a.priority == kPriorityStop) {
            // §6.4.3 (695)-(705)
            send_advert(eff_prio_, out);
            adver_at_ = now + cs_to_ns(cfg_.adver_int_cs);
            return out;
        }
        bool higher = a.priority > eff_prio_;
        bool tie_lost = a.priority == eff_prio_ && a.src.b > cfg_.primary.b;   // §6.4.3 (725): unsigned, network order
        if (higher || tie_lost) {
            // §6.4.3 (730)-(755)
            master_adver_int_cs_ = a.max_adver_int_cs;
            master_ = a.src;
            master_prio_ = a.priority;
            preempt_at_ = 0;
            arm_master_down(now);
            down_cause_ = fmt::format("master {} silent for {}", a.src.str(),
                                      format_duration(master_down_interval(eff_prio_, master_adver_int_cs_)));
            to_backup(now,
                      higher ? fmt::format("higher priority advert from {} ({} > {})", a.src.str(), a.priority,
                                           eff_prio_)
                             : fmt::format("equal priority {} and higher address {}", a.priority, a.src.str()),
                      out);
            return out;
        }
        // §6.4.3 (765) discard; RFC 9568 §6.4.3 adds: send an advert at once to
        // assert Master and fix learning bridges.
        ctr_.adverts_discarded++;
        lower_seen_ = true;
        lower_seen_at_ = now;
        send_advert(eff_prio_, out);
        return out;
    }
    return out;   // Initialize: not running
}

Actions Instance::on_timer(Time now) {
    Actions out;
    if (state_ == State::Backup) {
        if (down_timer_running() && now >= master_down_at_) {
            ctr_.master_down_expired++;
            if (held_) {
                want_master_ = true;   // the sync group decides
                wish_reason_ = down_cause_;
                return out;
            }
            return become_master(now, down_cause_);   // §6.4.2 (365)-(410)
        }
        return out;
    }
    if (state_ == State::Master) {
        if (now >= adver_at_) {   // §6.4.3 (670)-(680)
            send_advert(eff_prio_, out);
            adver_at_ = now + cs_to_ns(cfg_.adver_int_cs);
        }
        if (garp_at_ != 0 && now >= garp_at_) {
            if (garp_second_burst_) {
                announce(cfg_.garp_repeat, out);
                garp_second_burst_ = false;
            } else {
                announce(cfg_.garp_refresh_repeat, out);
            }
            garp_at_ = cfg_.garp_refresh > 0 ? now + cfg_.garp_refresh : 0;
        }
    }
    return out;
}

void Instance::recompute_priority(Time now, Actions& out) {
    unsigned penalty = 0;
    bool fault = false;
    std::string down;
    for (size_t i = 0; i < cfg_.tracks.size(); i++) {
        if (!track_down_[i]) continue;
        if (cfg_.tracks[i].weight == 0) fault = true;
        penalty += cfg_.tracks[i].weight;
        if (!down.empty()) down += ",";
        down += cfg_.tracks[i].name;
    }
    // The owner keeps 255 only while nothing is down; a lowered priority stays a
    // legal Backup priority, 1..254 (§5.2.4).
    if (penalty == 0)
        eff_prio_ = cfg_.priority;
    else
        eff_prio_ = uint8_t(std::clamp<int>(int(cfg_.priority) - int(penalty), 1, 254));

    if (fault == fault_) return;
    fault_ = fault;
    if (state_ == State::Initialize) return;
    if (fault_) {
        want_master_ = false;
        if (state_ == State::Master) {
            auto a = leave_master(now, fmt::format("tracked {} down: forced backup", down));
            out.insert(out.end(), a.begin(), a.end());
        } else {
            last_transition_ = now;
            last_reason_ = fmt::format("tracked {} down: forced backup", down);
        }
        return;
    }
    // Fault cleared: start over as at startup (§6.4.1).
    master_adver_int_cs_ = cfg_.adver_int_cs;
    if (eff_prio_ == kPriorityOwner) {
        if (!held_) {
            auto a = become_master(now, "tracked objects up again: address owner");
            out.insert(out.end(), a.begin(), a.end());
        } else {
            want_master_ = true;
            wish_reason_ = "tracked objects up again: address owner";
        }
        return;
    }
    arm_master_down(now);
    down_cause_ = "tracked objects up again, no advertisement within the master down interval";
}

Actions Instance::set_priority(Time now, uint8_t configured) {
    Actions out;
    if (configured == 0) return out;
    cfg_.priority = configured;
    recompute_priority(now, out);
    return out;
}

Actions Instance::set_preempt(Time, bool on, Duration delay) {
    cfg_.preempt = on;
    cfg_.preempt_delay = delay;
    preempt_at_ = 0;
    return {};
}

Actions Instance::set_track(Time now, std::string_view name, bool up) {
    Actions out;
    for (size_t i = 0; i < cfg_.tracks.size(); i++) {
        if (cfg_.tracks[i].name != name) continue;
        if (track_down_[i] == !up) return out;
        track_down_[i] = !up;
        LOG_INFO("ha", "instance={} track={} state={}", cfg_.name, cfg_.tracks[i].name, up ? "up" : "down");
        recompute_priority(now, out);
        return out;
    }
    return out;
}

Actions Instance::hold(Time now, const std::string& reason) {
    Actions out;
    if (held_) return out;
    held_ = true;
    if (state_ == State::Master) {
        out = leave_master(now, reason);
        want_master_ = true;   // our own machine still says Master
        wish_reason_ = "was master before the sync group held it";
    }
    return out;
}

Actions Instance::release(Time now, const std::string& reason) {
    if (!held_) return {};
    held_ = false;
    // Name what made this member want Master, then the group's word.
    if (state_ == State::Backup && want_master_ && !fault_)
        return become_master(now, wish_reason_.empty() ? reason : fmt::format("{} ({})", wish_reason_, reason));
    return {};
}

Status Instance::status() const {
    Status s;
    s.name = cfg_.name;
    s.vrid = cfg_.vrid;
    s.family = cfg_.primary.family;
    s.state = state_;
    s.priority_configured = cfg_.priority;
    s.priority_effective = eff_prio_;
    s.preempt = cfg_.preempt;
    s.preempt_delay = cfg_.preempt_delay;
    s.fault = fault_;
    s.held = held_;
    s.wants_master = ready_for_master();
    for (size_t i = 0; i < cfg_.tracks.size(); i++)
        if (track_down_[i]) s.tracks_down.push_back(cfg_.tracks[i].name);
    s.adver_int_cs = cfg_.adver_int_cs;
    s.master_adver_int_cs = master_adver_int_cs_;
    s.skew_time = skew_time(eff_prio_, master_adver_int_cs_);
    s.master_down_interval = master_down_interval(eff_prio_, master_adver_int_cs_);
    s.master = master_;
    s.master_priority = master_prio_;
    s.last_transition = last_transition_;
    s.last_reason = last_reason_;
    s.next_deadline = next_deadline();
    s.counters = ctr_;
    return s;
}

nlohmann::json to_json(const Status& s) {
    nlohmann::json j;
    j["name"] = s.name;
    j["vrid"] = s.vrid;
    j["family"] = s.family == Family::V4 ? "ipv4" : "ipv6";
    j["state"] = state_name(s.state);
    j["priority"] = s.priority_configured;
    j["effective_priority"] = s.priority_effective;
    j["preempt"] = s.preempt;
    j["preempt_delay_ms"] = s.preempt_delay / 1'000'000;
    j["fault"] = s.fault;
    j["held_by_sync_group"] = s.held;
    j["wants_master"] = s.wants_master;
    j["tracks_down"] = s.tracks_down;
    j["advert_interval_cs"] = s.adver_int_cs;
    j["master_advert_interval_cs"] = s.master_adver_int_cs;
    j["skew_time_ns"] = s.skew_time;
    j["master_down_interval_ns"] = s.master_down_interval;
    j["master"] = s.master ? s.master->str() : "";
    j["master_priority"] = s.master_priority;
    j["last_transition_ns"] = s.last_transition;
    j["last_reason"] = s.last_reason;
    const auto& c = s.counters;
    nlohmann::json k;
    k["adverts_sent"] = c.adverts_sent;
    k["adverts_rcvd"] = c.adverts_rcvd;
    k["pri_zero_sent"] = c.pri_zero_sent;
    k["pri_zero_rcvd"] = c.pri_zero_rcvd;
    k["adverts_discarded"] = c.adverts_discarded;
    k["own_adverts"] = c.own_adverts;
    k["interval_mismatch"] = c.interval_mismatch;
    k["owner_addr_mismatch"] = c.owner_addr_mismatch;
    k["v4_message_only_checksum"] = c.v4_message_only_checksum;
    k["announces_sent"] = c.announces_sent;
    k["became_master"] = c.became_master;
    k["became_backup"] = c.became_backup;
    k["master_down_expired"] = c.master_down_expired;
    for (size_t i = 1; i < kRxReasonCount; i++) k[rx_reason_name(RxReason(i))] = c.rx_drops[i];
    j["counters"] = k;
    return j;
}

}  // namespace nimbus::ha
