// One VRRPv3 virtual router instance: the state machine of RFC 5798 §6.4
// (RFC 9568 §6.4 calls Master "Active"; the transitions are the same, plus
// the Active's immediate advert on hearing a lower priority, RFC 9568 §6.4.3).
//
// Pure: no sockets, no clocks. Every call takes `now` (monotonic ns) and
// returns the actions the caller performs, in order; next_deadline() says when
// to call on_timer(). The caller owns the sockets/dataplane, builds frames
// with control/ha/advert.h (advert() gives the message to send) and reports
// received packets through on_packet() (validates and counts) or on_advert().
//
// Beyond the RFC, as keepalived does: preempt delay, tracked objects that
// lower the priority or force Backup, repeated gratuitous ARP / unsolicited NA
// bursts on takeover, and sync groups (control/ha/sync_group.h) through the
// hold()/release() hooks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "control/ha/advert.h"
#include "src/common/addr.h"

namespace nimbus::ha {

using Time = uint64_t;       // monotonic nanoseconds (nimbus::mono_ns())
using Duration = uint64_t;   // nanoseconds

inline constexpr Duration kNsPerCs = 10'000'000;
inline constexpr Duration kNsPerSec = 1'000'000'000;
constexpr Duration cs_to_ns(uint32_t cs) { return Duration(cs) * kNsPerCs; }

// RFC 5798 §6.1, computed in nanoseconds (the RFC's unit is centiseconds;
// keepalived computes in microseconds): Skew_Time = ((256 - Priority) *
// Master_Adver_Interval) / 256, Master_Down_Interval = 3 * Master_Adver_Interval
// + Skew_Time. Priority 100, 100 cs: skew 0.609375 s, down 3.609375 s.
constexpr Duration skew_time(uint8_t priority, uint16_t master_adver_int_cs) {
    return (Duration(256 - priority) * cs_to_ns(master_adver_int_cs)) / 256;
}
constexpr Duration master_down_interval(uint8_t priority, uint16_t master_adver_int_cs) {
    return 3 * cs_to_ns(master_adver_int_cs) + skew_time(priority, master_adver_int_cs);
}

enum class State : uint8_t { Initialize, Backup, Master };
const char* state_name(State s);   // "init", "backup", "master"

// A tracked object (a port, a path...). While it is down the priority drops by
// `weight`; weight 0 means "down forces Backup" (keepalived's FAULT).
struct Track {
    std::string name;
    uint8_t weight = 0;
};

struct InstanceConfig {
    std::string name;                 // "lan0-51": for logs and status
    uint8_t vrid = 1;                 // 1..255
    uint8_t priority = 100;           // 1..254, 255 = address owner (§5.2.4)
    uint16_t adver_int_cs = 100;      // Advertisement_Interval, 1..4095 cs (§5.2.7)
    bool preempt = true;              // Preempt_Mode (§6.1); the owner always preempts
    Duration preempt_delay = 0;       // keepalived preempt_delay: see on_advert()
    IpAddr primary;                   // our primary IPv4 / link-local IPv6 (§7.2): advert source, tie-break
    std::vector<IpAddr> vips;         // the virtual addresses, one family (same as primary)
    std::vector<Track> tracks;
    // Takeover announcements (keepalived vrrp_garp_master_repeat / _delay /
    // _refresh / _refresh_repeat): `garp_repeat` GARPs or NAs per address at
    // once, as many again `garp_delay` later (0: no second burst), then every
    // `garp_refresh` (0: never) `garp_refresh_repeat` each.
    uint8_t garp_repeat = 3;
    Duration garp_delay = kNsPerSec;
    Duration garp_refresh = 0;
    uint8_t garp_refresh_repeat = 1;
    bool accept_mode = false;         // §6.1 Accept_Mode, for the dataplane; reported only
};

// Empty when the config is usable, else a message naming the field.
std::string validate_config(const InstanceConfig& c);

enum class ActionKind : uint8_t {
    BecomeMaster,   // reason set; the caller notifies, the dataplane starts owning the VMAC
    BecomeBackup,   // reason set
    BecomeInit,     // after shutdown
    InstallVips,    // start answering ARP/ND for and accepting the VIPs / VMAC
    RemoveVips,
    SendAdvert,     // priority set: build with advert(priority)
    Announce,       // count set: that many GARPs (IPv4) / unsolicited NAs (IPv6) per VIP
};
const char* action_name(ActionKind k);

struct Action {
    ActionKind kind;
    uint8_t priority = 0;   // SendAdvert
    uint8_t count = 0;      // Announce
    std::string reason;     // BecomeMaster / BecomeBackup / BecomeInit
};
using Actions = std::vector<Action>;

// A received advertisement, already validated (§7.1).
struct RxAdvert {
    IpAddr src;                       // IP source: the sender's primary address
    uint8_t priority = 0;
    uint16_t max_adver_int_cs = 100;
};

struct Counters {
    uint64_t adverts_sent = 0;
    uint64_t adverts_rcvd = 0;          // accepted by the validator
    uint64_t pri_zero_sent = 0;
    uint64_t pri_zero_rcvd = 0;
    uint64_t adverts_discarded = 0;     // lower priority while preempting (§6.4.2) or as Master (§6.4.3)
    uint64_t own_adverts = 0;           // our own advert looped back (source = our primary)
    uint64_t interval_mismatch = 0;     // accepted, but not our interval (RFC 9568 §7.1)
    uint64_t owner_addr_mismatch = 0;   // accepted from an owner with other addresses
    uint64_t v4_message_only_checksum = 0;
    uint64_t announces_sent = 0;        // GARP/NA bursts asked for
    uint64_t became_master = 0;
    uint64_t became_backup = 0;
    uint64_t master_down_expired = 0;
    std::array<uint64_t, kRxReasonCount> rx_drops{};   // by RxReason (index 0 unused)
};

struct Status {
    std::string name;
    uint8_t vrid = 0;
    Family family = Family::V4;
    State state = State::Initialize;
    uint8_t priority_configured = 0;
    uint8_t priority_effective = 0;
    bool preempt = true;
    Duration preempt_delay = 0;
    bool fault = false;                 // a weight-0 track is down
    bool held = false;                  // held in Backup by its sync group
    bool wants_master = false;          // would be Master on its own (sync group view)
    std::vector<std::string> tracks_down;
    uint16_t adver_int_cs = 0;
    uint16_t master_adver_int_cs = 0;   // learned from the Master while Backup
    Duration skew_time = 0;
    Duration master_down_interval = 0;
    std::optional<IpAddr> master;       // the current Master's address (ourselves when Master)
    uint8_t master_priority = 0;
    Time last_transition = 0;
    std::string last_reason;
    std::optional<Time> next_deadline;
    Counters counters;
};
nlohmann::json to_json(const Status& s);

class Instance {
public:
    explicit Instance(InstanceConfig c);

    const InstanceConfig& config() const { return cfg_; }
    State state() const { return state_; }
    uint8_t effective_priority() const { return eff_prio_; }
    std::optional<Time> next_deadline() const;
    Status status() const;
    const Counters& counters() const { return ctr_; }

    // The advertisement to send for a SendAdvert action (§7.2).
    Advert advert(uint8_t priority) const;
    MacAddr vmac() const { return virtual_mac(cfg_.vrid, cfg_.primary.family); }
    RxExpect rx_expect() const;

    // ---- events (RFC 5798 §6.4) ----
    Actions startup(Time now);                        // Initialize → Backup, or Master for the owner
    Actions shutdown(Time now);                       // → Initialize; a Master sends priority 0
    Actions on_advert(Time now, const RxAdvert& a);   // a validated advertisement
    Actions on_packet(Time now, std::span<const uint8_t> ip_packet);   // validate, count, on_advert
    Actions on_timer(Time now);                       // Master_Down_Timer, Adver_Timer, GARP timers
    // Operator / tracking changes.
    Actions set_priority(Time now, uint8_t configured);
    Actions set_preempt(Time now, bool on, Duration delay);
    Actions set_track(Time now, std::string_view name, bool up);   // unknown name: no-op

    // ---- sync group hooks (control/ha/sync_group.h) ----
    // ready_for_master: Master, or Backup whose own machine would now be Master
    // (owner, or Master_Down_Timer expired with no better Master heard).
    bool ready_for_master() const;
    // Keep the instance out of Master; a Master steps down (priority-0 advert
    // so the peer takes over after Skew_Time) but remembers it wants Master.
    Actions hold(Time now, const std::string& reason);
    // Lift the hold; an instance that wants Master becomes Master now.
    Actions release(Time now, const std::string& reason);
    bool held() const { return held_; }
    // A lower-priority advert was discarded within the last Master_Down_Interval:
    // the peer is worse than us on this link (sync-group consistency check).
    bool peer_is_lower(Time now) const;
    // We are Backup under a Master whose priority is at least ours.
    bool peer_is_higher() const;

private:
    Actions become_master(Time now, std::string reason);
    Actions leave_master(Time now, std::string reason);   // Master → Backup (held or fault): priority 0 first
    void to_backup(Time now, std::string reason, Actions& out);
    void arm_master_down(Time now);
    void recompute_priority(Time now, Actions& out);
    bool preempting() const { return cfg_.preempt || eff_prio_ == kPriorityOwner; }
    bool down_timer_running() const;
    void send_advert(uint8_t prio, Actions& out);
    void announce(uint8_t count, Actions& out);

    InstanceConfig cfg_;
    State state_ = State::Initialize;
    uint8_t eff_prio_;
    std::vector<bool> track_down_;
    bool fault_ = false;
    bool held_ = false;
    bool want_master_ = false;          // Backup only: our own machine would be Master
    std::string wish_reason_;           // why want_master_ became true (for the release reason)
    uint16_t master_adver_int_cs_;
    Time master_down_at_ = 0;
    Time adver_at_ = 0;
    Time garp_at_ = 0;                  // 0 = none pending
    bool garp_second_burst_ = false;    // next garp_at_ is the garp_delay burst (else refresh)
    Time preempt_at_ = 0;               // 0 = not started
    std::string down_cause_;            // reason to give if the Master_Down_Timer fires
    Time lower_seen_at_ = 0;
    bool lower_seen_ = false;
    std::optional<IpAddr> master_;
    uint8_t master_prio_ = 0;
    Time last_transition_ = 0;
    std::string last_reason_;
    Counters ctr_;
};

std::string format_duration(Duration d);   // "3.609375s"

}  // namespace nimbus::ha
