// A sync group: VRRP instances that move together (keepalived
// vrrp_sync_group), e.g. the LAN and WAN instances of one HA pair, so that one
// box never owns the LAN VIP while the other owns the WAN VIP.
//
// The rule (the same as keepalived's "only sync to master if everyone wants
// to, i.e. prefer backup state to avoid thrashing"):
//
//   Each member runs its own RFC 5798 machine and so has a wish: Master
//   (address owner, or its Master_Down_Timer ran out with no better Master
//   heard) or Backup (it hears a better Master, or a tracked object forces it).
//   The group is Master exactly when EVERY member wishes Master; otherwise every
//   member is held in Backup. A member held in Backup stays silent (a Backup
//   never advertises) but keeps listening and keeps its wish. A Master that is
//   pulled down by the group resigns with a priority-0 advert (§6.4.3 style)
//   so the peer takes over after Skew_Time.
//
// Why it cannot flap by itself: the group state is a pure function (AND) of
// the members' wishes, and holding or releasing a member never changes any
// wish (hold() keeps "wants Master", release() only acts on it). So reconcile
// is idempotent, and the group changes state only when a wish changes, which
// only an outside event does: an advert arriving, a Master_Down_Timer running
// out after a full silent Master_Down_Interval, a tracked object, startup or
// shutdown. Each wish is itself the RFC's stable election. With priorities
// that rank the two boxes the same way on every link (as one sync group per
// box with one priority per box does), the same box wins every member
// election, so the group outcome equals every member's outcome and the pair
// settles after one Master_Down_Interval. If the peer ranks the boxes
// differently per link (better on LAN, worse on WAN), no local rule can be
// both stable and live; this one prefers Backup like keepalived, and each such
// disagreement is counted as `inconsistent_priorities` and logged so the
// operator can fix the configuration.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "control/ha/vrrp.h"

namespace nimbus::ha {

struct MemberAction {
    size_t member;   // index into the group's members
    Action action;
};
using GroupActions = std::vector<MemberAction>;

class SyncGroup {
public:
    // Members are not owned and must outlive the group; they must be in
    // Initialize (the group holds them before they start).
    SyncGroup(std::string name, std::vector<Instance*> members);

    const std::string& name() const { return name_; }
    size_t size() const { return members_.size(); }
    Instance& member(size_t i) { return *members_.at(i); }
    const Instance& member(size_t i) const { return *members_.at(i); }
    bool master() const { return master_; }

    GroupActions startup(Time now);
    GroupActions shutdown(Time now);
    GroupActions on_advert(Time now, size_t member, const RxAdvert& a);
    GroupActions on_packet(Time now, size_t member, std::span<const uint8_t> ip_packet);
    GroupActions on_timer(Time now);
    // To every member that tracks `name` (a group-wide track, keepalived style).
    GroupActions set_track(Time now, std::string_view name, bool up);
    GroupActions set_priority(Time now, size_t member, uint8_t configured);
    std::optional<Time> next_deadline() const;

    struct Status {
        std::string name;
        bool master = false;
        Time last_transition = 0;
        std::string last_reason;
        uint64_t transitions = 0;
        uint64_t inconsistent_priorities = 0;
        std::vector<std::string> members;
    };
    Status status() const;

private:
    void add(size_t i, const Actions& a, GroupActions& out) const;
    GroupActions reconcile(Time now, GroupActions out);

    std::string name_;
    std::vector<Instance*> members_;
    bool master_ = false;
    bool conflict_ = false;
    Time last_transition_ = 0;
    std::string last_reason_;
    uint64_t transitions_ = 0;
    uint64_t inconsistent_ = 0;
};

nlohmann::json to_json(const SyncGroup::Status& s);

}  // namespace nimbus::ha
