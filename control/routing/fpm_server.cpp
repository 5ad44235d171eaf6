#include "control/routing/fpm_server.h"

#include <algorithm>

#include "src/common/log.h"

namespace nimbus::routing {

using fpm::Op;
using fpm::RouteEvent;

const char* fpm_phase_name(FpmPhase p) {
    switch (p) {
        case FpmPhase::Disconnected: return "disconnected";
        case FpmPhase::Replaying: return "replaying";
        case FpmPhase::Synced: return "synced";
    }
    return "?";
}

namespace {

// Same forwarding content: everything but the message flags.
bool same_route(const RouteEvent& a, const RouteEvent& b) {
    return a.table == b.table && a.prefix == b.prefix && a.protocol == b.protocol &&
           a.type == b.type && a.priority == b.priority && a.nexthops == b.nexthops &&
           a.nh_id == b.nh_id && a.src_len == b.src_len && a.prefsrc == b.prefsrc;
}

FpmKey key_of(const RouteEvent& ev) { return FpmKey{ev.table, ev.prefix}; }

}  // namespace

FpmServer::FpmServer(FpmServerConfig cfg) : cfg_(std::move(cfg)) {}

bool FpmServer::filtered(const RouteEvent& ev) const {
    return std::find(cfg_.drop_protocols.begin(), cfg_.drop_protocols.end(), ev.protocol) !=
           cfg_.drop_protocols.end();
}

const RouteEvent* FpmServer::route(uint32_t table, const Prefix& p) const {
    auto it = routes_.find(FpmKey{table, Prefix(p.addr, p.len)});
    return it == routes_.end() ? nullptr : &it->second.route;
}

void FpmServer::on_connected(uint64_t now_ms) {
    decoder_.reset();
    want_disconnect_ = false;
    generation_++;
    counters_.connects++;
    phase_ = FpmPhase::Replaying;
    replay_start_ms_ = now_ms;
    last_rx_ms_ = now_ms;
    LOG_INFO("fpm", "zebra connected: replay generation {} starts ({} routes held)", generation_,
             routes_.size());
}

void FpmServer::on_disconnected(uint64_t now_ms) {
    if (phase_ == FpmPhase::Disconnected) return;
    counters_.disconnects++;
    decoder_.reset();
    want_disconnect_ = false;
    phase_ = FpmPhase::Disconnected;
    disconnected_at_ms_ = now_ms;
    flushed_ = false;
    LOG_INFO("fpm", "zebra disconnected; keeping {} learned routes until the next replay",
             routes_.size());
}

void FpmServer::on_bytes(std::span<const uint8_t> data, uint64_t now_ms) {
    if (phase_ == FpmPhase::Disconnected || data.empty()) return;
    last_rx_ms_ = now_ms;
    decoder_.feed(data, [this](const std::vector<RouteEvent>& evs) { apply_frame(evs); });
    const auto& st = decoder_.stats();
    uint64_t bad = st.malformed_frames + st.malformed_msgs;
    if (bad != malformed_seen_) {
        counters_.malformed += bad - malformed_seen_;
        malformed_seen_ = bad;
        last_error_ = "malformed FPM data from zebra (dropped)";
    }
    if (decoder_.failed() && !want_disconnect_) {
        want_disconnect_ = true;
        last_error_ = "FPM framing lost (bad header); reconnecting";
        LOG_WARN("fpm", "{}", last_error_);
    }
}

bool FpmServer::on_tick(uint64_t now_ms) {
    if (phase_ == FpmPhase::Replaying) {
        bool quiet = now_ms - last_rx_ms_ >= cfg_.replay_quiet_ms &&
                     now_ms - replay_start_ms_ >= cfg_.replay_min_ms;
        bool forced = now_ms - replay_start_ms_ >= cfg_.replay_max_ms;
        if (!quiet && !forced) return false;
        if (!quiet) counters_.replays_forced++;
        sweep();
        phase_ = FpmPhase::Synced;
        counters_.replays++;
        LOG_INFO("fpm", "replay {} complete{}: {} routes", generation_,
                 quiet ? "" : " (forced by replay_max_ms)", routes_.size());
        return true;
    }
    if (phase_ == FpmPhase::Disconnected && cfg_.disconnected_flush_ms && !flushed_ &&
        now_ms - disconnected_at_ms_ >= cfg_.disconnected_flush_ms) {
        flushed_ = true;
        remove_all(&counters_.flushed);
        LOG_WARN("fpm", "zebra away for {} ms: learned routes flushed", cfg_.disconnected_flush_ms);
    }
    return false;
}

uint64_t FpmServer::next_deadline_ms() const {
    if (phase_ == FpmPhase::Replaying)
        return std::min(std::max(last_rx_ms_ + cfg_.replay_quiet_ms, replay_start_ms_ + cfg_.replay_min_ms),
                        replay_start_ms_ + cfg_.replay_max_ms);
    if (phase_ == FpmPhase::Disconnected && cfg_.disconnected_flush_ms && !flushed_)
        return disconnected_at_ms_ + cfg_.disconnected_flush_ms;
    return 0;
}

std::vector<FibChange> FpmServer::take_changes() {
    std::vector<FibChange> out;
    out.swap(changes_);
    return out;
}

void FpmServer::apply_frame(const std::vector<RouteEvent>& evs) {
    for (size_t i = 0; i < evs.size(); i++) {
        const RouteEvent& ev = evs[i];
        if (ev.op == Op::Del) {
            // zebra sends an update as DEL + NEW in one frame: apply it as one
            // replace so the FIB never misses the prefix in between. Not when
            // the NEW is one we drop (e.g. our own route now wins the
            // prefix): then the DEL must take the learned route away.
            if (i + 1 < evs.size() && evs[i + 1].op == Op::Add &&
                key_of(evs[i + 1]) == key_of(ev) && !filtered(evs[i + 1])) {
                counters_.dels_coalesced++;
                continue;
            }
            apply_del(ev);
        } else {
            apply_add(ev);
        }
    }
}

bool FpmServer::usable(const RouteEvent& ev) {
    if (filtered(ev)) {
        counters_.filtered++;
        return false;
    }
    if (ev.op == Op::Add && ev.nexthops.empty() && !ev.is_blackhole()) {
        if (ev.nh_id) {
            counters_.nhg_ignored++;
            last_error_ = "zebra sends next-hop-group ids: set 'no fpm use-next-hop-groups'";
            LOG_WARN("fpm", "{} ({})", last_error_, ev.str());
        } else {
            counters_.no_nexthop++;
        }
        return false;
    }
    return true;
}

void FpmServer::apply_add(const RouteEvent& ev) {
    if (!usable(ev)) return;
    counters_.adds++;
    auto [it, inserted] = routes_.try_emplace(key_of(ev));
    Learned& l = it->second;
    l.generation = generation_;
    if (!inserted && same_route(l.route, ev)) {
        counters_.unchanged++;
        return;
    }
    l.route = ev;
    counters_.upserts++;
    changes_.push_back(FibChange{FibChange::Kind::Upsert, ev});
}

void FpmServer::apply_del(const RouteEvent& ev) {
    if (!usable(ev)) return;
    counters_.dels++;
    auto it = routes_.find(key_of(ev));
    if (it == routes_.end()) {
        counters_.dels_unknown++;
        return;
    }
    counters_.removes++;
    changes_.push_back(FibChange{FibChange::Kind::Remove, std::move(it->second.route)});
    routes_.erase(it);
}

void FpmServer::sweep() {
    for (auto it = routes_.begin(); it != routes_.end();) {
        if (it->second.generation == generation_) {
            ++it;
            continue;
        }
        counters_.swept++;
        counters_.removes++;
        changes_.push_back(FibChange{FibChange::Kind::Remove, std::move(it->second.route)});
        it = routes_.erase(it);
    }
}

void FpmServer::remove_all(uint64_t* counter) {
    for (auto& [k, l] : routes_) {
        (*counter)++;
        counters_.removes++;
        changes_.push_back(FibChange{FibChange::Kind::Remove, std::move(l.route)});
    }
    routes_.clear();
}

}  // namespace nimbus::routing
