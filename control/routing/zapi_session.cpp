#include "control/routing/zapi_session.h"

#include <algorithm>

#include "src/common/log.h"

namespace nimbus::routing {

using zapi::Cmd;

const char* route_state_name(RouteState s) {
    switch (s) {
        case RouteState::Queued: return "queued";
        case RouteState::Pending: return "pending";
        case RouteState::Installed: return "installed";
        case RouteState::Failed: return "failed";
    }
    return "?";
}

const char* zapi_phase_name(ZapiPhase p) {
    switch (p) {
        case ZapiPhase::Disconnected: return "disconnected";
        case ZapiPhase::AwaitCapabilities: return "await-capabilities";
        case ZapiPhase::Replaying: return "replaying";
        case ZapiPhase::Synced: return "synced";
        case ZapiPhase::VersionMismatch: return "version-mismatch";
    }
    return "?";
}

ZapiSession::ZapiSession(ZapiSessionConfig cfg)
    : cfg_(std::move(cfg)), backoff_ms_(cfg_.backoff_initial_ms) {
    if (cfg_.routes_per_pump == 0) cfg_.routes_per_pump = 1;
    if (!cfg_.frr_version.empty()) {
        auto v = zapi::check_frr_version(cfg_.frr_version);
        if (v.verdict == zapi::VersionVerdict::Incompatible) {
            version_blocked_ = true;
            last_error_ = fmt::format("version mismatch: {}; route injection disabled", v.detail);
            LOG_ERROR("zapi", "frr_version='{}' {}; route injection disabled", cfg_.frr_version,
                      v.detail);
        } else if (v.verdict == zapi::VersionVerdict::WireCompatible) {
            LOG_WARN("zapi", "frr_version='{}' {}", cfg_.frr_version, v.detail);
        }
    }
}

// ---- the desired set ------------------------------------------------------------

bool ZapiSession::add_route(uint32_t vrf, const Prefix& p, uint32_t tag, uint32_t metric,
                            uint8_t distance) {
    if (p.len > p.addr.bits()) return false;
    RouteKey k{vrf, Prefix(p.addr, p.len)};
    auto [it, inserted] = routes_.try_emplace(k);
    Entry& e = it->second;
    if (!inserted && e.status.tag == tag && e.status.metric == metric &&
        e.status.distance == distance)
        return true;
    e.status.tag = tag;
    e.status.metric = metric;
    e.status.distance = distance;
    e.status.state = RouteState::Queued;
    e.status.last_note.reset();
    e.dirty = true;
    need_delete_.erase(k);  // the ADD replaces whatever zebra holds
    tombstones_.erase(k);
    if (active()) enqueue(k);
    return true;
}

bool ZapiSession::del_route(uint32_t vrf, const Prefix& p) {
    RouteKey k{vrf, Prefix(p.addr, p.len)};
    auto it = routes_.find(k);
    if (it == routes_.end()) return false;
    // Only a route that went out on this connection can be in zebra now;
    // anything older was flushed by zebra at the disconnect, or (with GR) is
    // stale and goes with ROUTE_UPDATE_COMPLETE.
    bool in_zebra = active() && it->second.sent_epoch == epoch_;
    bool maybe_stale = !in_zebra && it->second.sent_epoch != 0 && cfg_.gr_stale_time_s;
    routes_.erase(it);
    if (in_zebra) {
        need_delete_.insert(k);
        enqueue(k);
    } else if (maybe_stale) {
        // Sent on an earlier connection and kept by zebra under GR. The
        // ROUTE_UPDATE_COMPLETE purge should take it, but zebra 8.4.4 compares
        // whole seconds (re->uptime < restart_time) and misses a route added
        // in the same second as the disconnect: delete it explicitly after
        // the replay.
        tombstones_.insert(k);
    }
    return true;
}

std::optional<RouteStatus> ZapiSession::route(uint32_t vrf, const Prefix& p) const {
    auto it = routes_.find(RouteKey{vrf, Prefix(p.addr, p.len)});
    if (it == routes_.end()) return std::nullopt;
    return it->second.status;
}

std::array<size_t, kRouteStates> ZapiSession::state_counts() const {
    std::array<size_t, kRouteStates> c{};
    for (const auto& [k, e] : routes_) c[size_t(e.status.state)]++;
    return c;
}

// ---- connection events ----------------------------------------------------------------

void ZapiSession::clear_connection_state() {
    decoder_.reset();
    out_.data().clear();
    out_head_ = 0;
    changes_.clear();
    queued_.clear();
    need_delete_.clear();
    deletes_in_flight_.clear();
    replay_active_ = false;
    cursor_started_ = false;
    gr_sent_.clear();
    want_disconnect_ = false;
    caps_.reset();
    vrfs_.clear();
    for (auto& [k, e] : routes_) {
        e.status.state = RouteState::Queued;
        e.status.last_note.reset();
    }
}

void ZapiSession::on_connected(uint64_t now_ms) {
    clear_connection_state();
    epoch_++;
    counters_.connects++;
    if (counters_.connects > 1) counters_.reconnects++;
    if (version_blocked_) {
        phase_ = ZapiPhase::VersionMismatch;
        return;  // send nothing, not even HELLO
    }
    phase_ = ZapiPhase::AwaitCapabilities;
    handshake_deadline_ = now_ms + cfg_.handshake_timeout_ms;
    zapi::encode_hello(out_, cfg_.hello);
    counters_.frames_tx++;
    LOG_INFO("zapi", "connected; HELLO type={} instance={} notify={} (connection {})",
             zapi::route_type_name(uint8_t(cfg_.hello.proto)), cfg_.hello.instance,
             cfg_.hello.receive_notify, epoch_);
}

void ZapiSession::on_disconnected(uint64_t) {
    if (phase_ != ZapiPhase::Disconnected) counters_.disconnects++;
    clear_connection_state();
    phase_ = ZapiPhase::Disconnected;
}

void ZapiSession::on_tick(uint64_t now_ms) {
    if (phase_ == ZapiPhase::AwaitCapabilities && !want_disconnect_ &&
        now_ms >= handshake_deadline_) {
        counters_.handshake_timeouts++;
        want_disconnect_ = true;
        last_error_ = fmt::format("no CAPABILITIES within {} ms of HELLO; reconnecting",
                                  cfg_.handshake_timeout_ms);
        LOG_WARN("zapi", "{}", last_error_);
    }
}

uint64_t ZapiSession::next_reconnect_delay_ms() {
    uint64_t d = backoff_ms_;
    backoff_ms_ = std::min(cfg_.backoff_max_ms, std::max<uint64_t>(1, backoff_ms_) * 2);
    return d;
}

void ZapiSession::on_bytes(std::span<const uint8_t> data, uint64_t) {
    if (phase_ == ZapiPhase::Disconnected) return;
    decoder_.feed(data, [this](const zapi::Header& h, std::span<const uint8_t> body) {
        handle_frame(h, body);
    });
    if (decoder_.failed() && !want_disconnect_) {
        counters_.malformed++;
        want_disconnect_ = true;
        last_error_ = fmt::format("malformed ZAPI frame from zebra ({}); reconnecting",
                                  zapi::FrameDecoder::fault_name(decoder_.fault()));
        LOG_WARN("zapi", "{}", last_error_);
    }
}

// ---- incoming messages ---------------------------------------------------------------------

void ZapiSession::handle_frame(const zapi::Header& h, std::span<const uint8_t> body) {
    counters_.frames_rx++;
    switch (phase_) {
        case ZapiPhase::AwaitCapabilities: return handle_handshake(h, body);
        case ZapiPhase::Replaying:
        case ZapiPhase::Synced: break;
        default: return;
    }
    switch (Cmd(h.command)) {
        case Cmd::RouteNotifyOwner: {
            auto n = zapi::decode_notify_owner(h.vrf_id, body);
            if (!n) {
                counters_.malformed++;
                return;
            }
            return handle_notify(*n);
        }
        case Cmd::Error: {
            uint32_t raw = 0;
            auto e = zapi::decode_error(body, &raw);
            counters_.zebra_errors++;
            if (!e) {
                counters_.malformed++;
                return;
            }
            const char* what = *e == zapi::ZebraError::NoVrf            ? "NO_VRF"
                               : *e == zapi::ZebraError::InvalidMsgType ? "INVALID_MSG_TYPE"
                                                                        : "UNKNOWN";
            last_error_ = fmt::format("zebra ERROR {} ({}) for vrf {}", what, raw, h.vrf_id);
            LOG_WARN("zapi", "{}", last_error_);
            if (*e == zapi::ZebraError::NoVrf) {
                // Every route we sent into that VRF was refused.
                for (auto it = routes_.lower_bound(RouteKey{h.vrf_id, Prefix()});
                     it != routes_.end() && it->first.vrf == h.vrf_id; ++it)
                    if (it->second.status.state == RouteState::Pending)
                        it->second.status.state = RouteState::Failed;
            }
            return;
        }
        case Cmd::VrfAdd: {
            if (auto v = zapi::decode_vrf_add(h.vrf_id, body)) vrfs_[h.vrf_id] = *v;
            else counters_.malformed++;
            return;
        }
        case Cmd::VrfDelete: vrfs_.erase(h.vrf_id); return;
        case Cmd::RedistributeRouteAdd: return handle_redistributed(h.vrf_id, body);
        case Cmd::InterfaceAdd:
        case Cmd::InterfaceUp: return interface_seen(body);
        default: return;  // other interface updates, close notifies: not ours to act on
    }
}

void ZapiSession::handle_handshake(const zapi::Header& h, std::span<const uint8_t> body) {
    switch (Cmd(h.command)) {
        case Cmd::Capabilities: {
            auto c = zapi::decode_capabilities(body);
            if (!c) {
                return version_mismatch(fmt::format(
                    "CAPABILITIES (cmd {}) has a {}-byte body where FRR {} sends {} (looks like "
                    "{})",
                    h.command, body.size(), zapi::kPin.frr, zapi::kPin.capabilities_body,
                    zapi::guess_peer(h.command, body.size())));
            }
            caps_ = *c;
            backoff_ms_ = cfg_.backoff_initial_ms;
            if (on_interface_) on_interface_("");
            LOG_INFO("zapi",
                     "zebra CAPABILITIES ok: vrf_backend={} mpls={} multipath={} mlag_role={}; "
                     "replaying {} routes",
                     c->vrf_backend, c->mpls_enabled, c->multipath_num, c->mlag_role,
                     routes_.size());
            return start_replay();
        }
        case Cmd::Error: {
            uint32_t raw = 0;
            zapi::decode_error(body, &raw);
            counters_.zebra_errors++;
            return version_mismatch(fmt::format(
                "zebra answered HELLO (cmd {}) with ERROR code {} instead of CAPABILITIES (looks "
                "like {})",
                uint16_t(Cmd::Hello), raw, zapi::guess_peer(h.command, body.size())));
        }
        // What FRR 8.4 may push to any client unasked, even before our HELLO
        // is processed: harmless (interfaces zebra learns: see the hook).
        case Cmd::InterfaceAdd:
        case Cmd::InterfaceUp: return interface_seen(body);
        case Cmd::InterfaceDelete:
        case Cmd::InterfaceAddressAdd:
        case Cmd::InterfaceAddressDelete:
        case Cmd::InterfaceDown:
        case Cmd::InterfaceSetMaster:
        case Cmd::RouterIdUpdate:
        case Cmd::InterfaceNbrAddressAdd:
        case Cmd::InterfaceNbrAddressDelete:
        case Cmd::VrfAdd:
        case Cmd::VrfDelete:
        case Cmd::InterfaceVrfUpdate:
        case Cmd::InterfaceLinkParams:
        case Cmd::ClientCloseNotify: return;
        default:
            return version_mismatch(fmt::format(
                "unexpected command {} ({} in FRR {}) with a {}-byte body before CAPABILITIES "
                "(looks like {})",
                h.command, zapi::command_name(h.command), zapi::kPin.frr, body.size(),
                zapi::guess_peer(h.command, body.size())));
    }
}

// zserv_encode_interface(): the body starts with the interface name in a
// fixed, zero-padded field (INTERFACE_NAMSIZ); Linux names are shorter
// than any value that constant had, so the name ends at the first NUL.
void ZapiSession::interface_seen(std::span<const uint8_t> body) {
    if (!on_interface_) return;
    size_t n = std::min<size_t>(body.size(), 20);
    size_t len = 0;
    while (len < n && body[len]) len++;
    if (len == 0 || len == n) {
        counters_.malformed++;
        return;
    }
    on_interface_(std::string(reinterpret_cast<const char*>(body.data()), len));
}

void ZapiSession::version_mismatch(const std::string& why) {
    phase_ = ZapiPhase::VersionMismatch;
    counters_.version_mismatches++;
    out_.data().clear();
    out_head_ = 0;
    last_error_ = fmt::format("version mismatch: {}; nimbus expects {}; route injection disabled",
                              why, zapi::expected_version());
    LOG_ERROR("zapi", "{}", last_error_);
}

void ZapiSession::handle_notify(const zapi::NotifyOwner& n) {
    RouteKey k{n.vrf_id, n.prefix};
    auto it = routes_.find(k);
    switch (n.note) {
        case zapi::Note::Installed:
        case zapi::Note::FailInstall:
        case zapi::Note::BetterAdminWon: {
            bool ok = n.note == zapi::Note::Installed;
            if (ok) counters_.installed++;
            else counters_.failed++;
            if (it == routes_.end() || it->second.sent_epoch != epoch_) {
                counters_.notify_unknown++;
                return;
            }
            if (it->second.dirty) return;  // about an older version; a new ADD is queued
            it->second.status.state = ok ? RouteState::Installed : RouteState::Failed;
            it->second.status.last_note = n.note;
            if (!ok) {
                last_error_ = fmt::format("{} vrf {}: zebra says {}", k.prefix.str(), k.vrf,
                                          zapi::note_name(n.note));
                LOG_WARN("zapi", "route {} vrf={} note={}", k.prefix.str(), k.vrf,
                         zapi::note_name(n.note));
            }
            return;
        }
        case zapi::Note::Removed:
        case zapi::Note::RemoveFail: {
            auto d = deletes_in_flight_.find(k);
            if (d != deletes_in_flight_.end()) {
                if (n.note == zapi::Note::Removed) counters_.removed++;
                else counters_.remove_failed++;
                if (--d->second == 0) deletes_in_flight_.erase(d);
                return;
            }
            counters_.removed_unsolicited++;
            if (it != routes_.end() && it->second.sent_epoch == epoch_ && !it->second.dirty) {
                it->second.status.state = RouteState::Failed;
                it->second.status.last_note = n.note;
                last_error_ = fmt::format("{} vrf {}: removed by zebra", k.prefix.str(), k.vrf);
            }
            return;
        }
    }
}

// A route of our own type that zebra selected (REDISTRIBUTE_ROUTE_ADD, the
// answer to our subscription): not desired means stale, so delete it.
void ZapiSession::handle_redistributed(uint32_t vrf, std::span<const uint8_t> body) {
    if (!cfg_.purge_unknown) return;
    auto r = zapi::decode_route(body);
    if (!r) {
        counters_.malformed++;
        return;
    }
    if (r->type != cfg_.hello.proto || r->instance != cfg_.hello.instance) return;
    RouteKey k{vrf, r->prefix};
    if (routes_.count(k) || need_delete_.count(k)) return;
    counters_.purged++;
    LOG_INFO("zapi", "event=purge_stale prefix={} vrf={} reason=\"zebra holds a route of ours nimbus does not want\"",
             k.prefix.str(), vrf);
    need_delete_.insert(k);
    enqueue(k);
}

// ---- outgoing --------------------------------------------------------------------------------------

void ZapiSession::start_replay() {
    phase_ = ZapiPhase::Replaying;
    replay_active_ = true;
    cursor_started_ = false;
    if (cfg_.purge_unknown) {
        // zebra answers with every selected route of our type, then follows
        // changes (frr-zapi.md §4.9).
        for (uint8_t afi : {zapi::kAfiIp, zapi::kAfiIp6}) {
            zapi::encode_redistribute(out_, true, afi, cfg_.hello.proto, cfg_.hello.instance);
            counters_.frames_tx++;
        }
    }
    if (cfg_.gr_stale_time_s) {
        register_gr(zapi::kDefaultVrf);
        for (uint32_t v : std::set<uint32_t>(gr_vrfs_)) register_gr(v);
    }
}

void ZapiSession::register_gr(uint32_t vrf) {
    if (!cfg_.gr_stale_time_s || gr_sent_.count(vrf)) return;
    zapi::encode_gr_capabilities(out_, cfg_.gr_stale_time_s, vrf);
    counters_.frames_tx++;
    gr_sent_.insert(vrf);
    gr_vrfs_.insert(vrf);
}

void ZapiSession::finish_replay() {
    if (cfg_.gr_stale_time_s) {
        // zebra purges the routes of ours it holds from before the disconnect
        // and that were not re-sent (zebra_gr_process_client_stale_routes).
        for (uint32_t v : gr_vrfs_) {
            for (uint8_t afi : {zapi::kAfiIp, zapi::kAfiIp6}) {
                zapi::encode_route_update(out_, true, afi, zapi::kSafiUnicast, v);
                counters_.frames_tx++;
                counters_.update_complete_sent++;
            }
        }
    }
    // Explicit deletes for routes removed while we were away (see del_route).
    for (const auto& k : tombstones_) {
        need_delete_.insert(k);
        enqueue(k);
    }
    tombstones_.clear();
    phase_ = ZapiPhase::Synced;
    counters_.replays++;
    LOG_INFO("zapi", "replay complete: {} routes (connection {})", routes_.size(), epoch_);
}

void ZapiSession::enqueue(const RouteKey& k) {
    if (queued_.insert(k).second) changes_.push_back(k);
}

bool ZapiSession::emit(const RouteKey& k) {
    auto it = routes_.find(k);
    if (it != routes_.end()) {
        need_delete_.erase(k);
        return needs_send(it->second) && send_add(k, it->second);
    }
    if (need_delete_.erase(k)) {
        send_delete(k);
        return true;
    }
    return false;
}

bool ZapiSession::send_add(const RouteKey& k, Entry& e) {
    register_gr(k.vrf);
    auto r = zapi::blackhole_route(cfg_.hello.proto, cfg_.hello.instance, k.prefix, e.status.tag,
                                   e.status.metric, e.status.distance);
    e.dirty = false;
    e.sent_epoch = epoch_;
    if (!zapi::encode_route_add(out_, k.vrf, r)) {
        counters_.encode_failures++;
        e.status.state = RouteState::Failed;
        last_error_ = fmt::format("cannot encode ROUTE_ADD for {} vrf {}", k.prefix.str(), k.vrf);
        return false;
    }
    e.status.state = RouteState::Pending;
    counters_.adds_sent++;
    counters_.frames_tx++;
    return true;
}

void ZapiSession::send_delete(const RouteKey& k) {
    auto r = zapi::blackhole_route(cfg_.hello.proto, cfg_.hello.instance, k.prefix);
    if (!zapi::encode_route_delete(out_, k.vrf, r)) {
        counters_.encode_failures++;
        return;
    }
    deletes_in_flight_[k]++;
    counters_.deletes_sent++;
    counters_.frames_tx++;
}

size_t ZapiSession::pump() {
    if (!active()) return 0;
    size_t sent = 0;
    // Skipping entries that need nothing is cheap, but bounded too.
    size_t looked = 0, look_limit = cfg_.routes_per_pump * 16;
    while (sent < cfg_.routes_per_pump && out_pending() < cfg_.max_pending_output &&
           looked < look_limit) {
        looked++;
        if (!changes_.empty()) {
            RouteKey k = changes_.front();
            changes_.pop_front();
            queued_.erase(k);
            if (emit(k)) sent++;
            continue;
        }
        if (!replay_active_) break;
        auto it = cursor_started_ ? routes_.upper_bound(cursor_) : routes_.begin();
        if (it == routes_.end()) {
            replay_active_ = false;
            break;
        }
        cursor_ = it->first;
        cursor_started_ = true;
        if (needs_send(it->second) && send_add(it->first, it->second)) sent++;
        if (std::next(it) == routes_.end()) replay_active_ = false;
    }
    if (phase_ == ZapiPhase::Replaying && !replay_active_ && changes_.empty()) finish_replay();
    return sent;
}

bool ZapiSession::has_work() const {
    if (!active()) return false;
    return !changes_.empty() || replay_active_ || phase_ == ZapiPhase::Replaying;
}

std::span<const uint8_t> ZapiSession::pending_output() const {
    return std::span<const uint8_t>(out_.data().data() + out_head_, out_pending());
}

void ZapiSession::consume_output(size_t n) {
    out_head_ += std::min(n, out_pending());
    if (out_head_ == out_.size()) {
        out_.data().clear();
        out_head_ = 0;
    } else if (out_head_ >= 64 * 1024 && out_head_ * 2 >= out_.size()) {
        auto& v = out_.data();
        v.erase(v.begin(), v.begin() + ptrdiff_t(out_head_));
        out_head_ = 0;
    }
}

}  // namespace nimbus::routing
