#include "control/ha/sync_group.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "src/common/log.h"

namespace nimbus::ha {

SyncGroup::SyncGroup(std::string name, std::vector<Instance*> members)
    : name_(std::move(name)), members_(std::move(members)) {
    for (auto* m : members_) m->hold(0, "sync group " + name_);
}

void SyncGroup::add(size_t i, const Actions& a, GroupActions& out) const {
    for (const auto& x : a) out.push_back({i, x});
}

GroupActions SyncGroup::reconcile(Time now, GroupActions out) {
    bool all_ready = std::all_of(members_.begin(), members_.end(), [](const Instance* m) {
        return m->ready_for_master();
    });

    // Consistency check: one member hears a better Master while another hears
    // a worse one — the peer ranks the boxes differently per link.
    bool higher = false, lower = false;
    for (const auto* m : members_) {
        higher |= m->peer_is_higher();
        lower |= m->peer_is_lower(now);
    }
    bool conflict = higher && lower;
    if (conflict && !conflict_) {
        inconsistent_++;
        LOG_WARN("ha", "sync_group={} peer priorities disagree across members: one member hears a better master, "
                       "another a worse one; staying backup (fix the priorities)", name_);
    }
    conflict_ = conflict;

    if (all_ready && !master_) {
        master_ = true;
        transitions_++;
        last_transition_ = now;
        last_reason_ = "every member wants master";
        std::string why = fmt::format("sync group {}: every member wants master", name_);
        for (size_t i = 0; i < members_.size(); i++) add(i, members_[i]->release(now, why), out);
    } else if (!all_ready && master_) {
        master_ = false;
        transitions_++;
        last_transition_ = now;
        std::string blame;
        for (const auto* m : members_)
            if (!m->ready_for_master()) {
                auto st = m->status();
                blame = fmt::format("member {} is {}{}", st.name, st.fault ? "in fault" : state_name(st.state),
                                    st.last_reason.empty() ? "" : " (" + st.last_reason + ")");
                break;
            }
        last_reason_ = blame;
        std::string why = fmt::format("sync group {}: {}", name_, blame);
        for (size_t i = 0; i < members_.size(); i++) add(i, members_[i]->hold(now, why), out);
    }
    return out;
}

GroupActions SyncGroup::startup(Time now) {
    GroupActions out;
    for (size_t i = 0; i < members_.size(); i++) add(i, members_[i]->startup(now), out);
    return reconcile(now, std::move(out));
}

GroupActions SyncGroup::shutdown(Time now) {
    GroupActions out;
    for (size_t i = 0; i < members_.size(); i++) {
        add(i, members_[i]->shutdown(now), out);
        members_[i]->hold(now, "sync group " + name_);   // ready for the next startup
    }
    if (master_) {
        transitions_++;
        last_transition_ = now;
        last_reason_ = "shutdown";
    }
    master_ = false;
    return out;
}

GroupActions SyncGroup::on_advert(Time now, size_t member, const RxAdvert& a) {
    GroupActions out;
    add(member, members_.at(member)->on_advert(now, a), out);
    return reconcile(now, std::move(out));
}

GroupActions SyncGroup::on_packet(Time now, size_t member, std::span<const uint8_t> ip_packet) {
    GroupActions out;
    add(member, members_.at(member)->on_packet(now, ip_packet), out);
    return reconcile(now, std::move(out));
}

GroupActions SyncGroup::on_timer(Time now) {
    GroupActions out;
    for (size_t i = 0; i < members_.size(); i++) add(i, members_[i]->on_timer(now), out);
    return reconcile(now, std::move(out));
}

GroupActions SyncGroup::set_track(Time now, std::string_view name, bool up) {
    GroupActions out;
    for (size_t i = 0; i < members_.size(); i++) add(i, members_[i]->set_track(now, name, up), out);
    return reconcile(now, std::move(out));
}

GroupActions SyncGroup::set_priority(Time now, size_t member, uint8_t configured) {
    GroupActions out;
    add(member, members_.at(member)->set_priority(now, configured), out);
    return reconcile(now, std::move(out));
}

std::optional<Time> SyncGroup::next_deadline() const {
    std::optional<Time> t;
    for (const auto* m : members_) {
        auto d = m->next_deadline();
        if (d && (!t || *d < *t)) t = d;
    }
    return t;
}

SyncGroup::Status SyncGroup::status() const {
    Status s;
    s.name = name_;
    s.master = master_;
    s.last_transition = last_transition_;
    s.last_reason = last_reason_;
    s.transitions = transitions_;
    s.inconsistent_priorities = inconsistent_;
    for (const auto* m : members_) s.members.push_back(m->config().name);
    return s;
}

nlohmann::json to_json(const SyncGroup::Status& s) {
    nlohmann::json j;
    j["name"] = s.name;
    j["state"] = s.master ? "master" : "backup";
    j["last_transition_ns"] = s.last_transition;
    j["last_reason"] = s.last_reason;
    j["transitions"] = s.transitions;
    j["inconsistent_priorities"] = s.inconsistent_priorities;
    j["members"] = s.members;
    return j;
}

}  // namespace nimbus::ha
