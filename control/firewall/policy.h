// The firewall's control side (ARCHITECTURE feature 11): the `firewall:`
// config turned into the dataplane's per-VRF rule sets (dataplane/acl), with
// counter slots that stay with a rule across applies, so adding a rule
// neither resets the others' counters nor touches any tunnel. Pure: the
// daemon publishes what plan() returns (firewall.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "dataplane/api.h"

namespace nimbus::firewall {

// What one direction of one VRF shows: a row per rule, then the flow and
// default rows, each with its counter slot.
struct Row {
    std::string name, action, match;
    uint32_t slot = 0;
    bool pseudo = false;  // the flows or the default row
};

class Slots {
public:
    // The specs for `cfg` (VRF index -> rules). Rules whose identity (name,
    // action, match) is unchanged keep their slots; the others get free ones.
    // Nothing changes (and *err says why) when the slots run out.
    struct Next {
        std::map<int, dp::FwPolicySpec> specs;   // every VRF with a firewall
        std::map<std::string, uint32_t> keys;    // slot of each rule key
    };
    std::optional<Next> plan(const config::Config& cfg, std::string* err) const;
    // Slots `n` uses that the current rules do not (their counters start here).
    std::vector<uint32_t> fresh(const Next& n) const;
    // Makes `n` current; returns the slots no longer used (free once the
    // dataplane no longer counts into them: after its fw_set calls).
    std::vector<uint32_t> commit(Next n);
    void release(const std::vector<uint32_t>& slots);
    // Counters are monotonic per slot: what a rule counted is the slot's
    // count minus its count when the rule got it (the metrics), what `show`
    // says minus its count when last cleared.
    void set_base(uint32_t slot, dp::FwCounter c) { base_[slot] = cleared_[slot] = c; }
    void set_cleared(uint32_t slot, dp::FwCounter c) { cleared_[slot] = c; }
    dp::FwCounter base(uint32_t slot, bool since_clear = false) const {
        auto& m = since_clear ? cleared_ : base_;
        auto it = m.find(slot);
        return it == m.end() ? dp::FwCounter{} : it->second;
    }
    const std::map<int, dp::FwPolicySpec>& current() const { return cur_.specs; }
    // Every slot of a VRF's firewall (empty vrf: of all).
    std::vector<uint32_t> slots_of(const std::string& vrf) const {
        std::vector<uint32_t> out;
        for (auto& [k, s] : cur_.keys)
            if (vrf.empty() || k.rfind(vrf + "|", 0) == 0) out.push_back(s);
        return out;
    }
    std::optional<uint32_t> slot_of(const std::string& key) const {
        auto it = cur_.keys.find(key);
        if (it == cur_.keys.end()) return std::nullopt;
        return it->second;
    }
    size_t used() const { return cur_.keys.size(); }

    static std::string key(const std::string& vrf, const char* dir, const std::string& what, int occurrence);

private:
    Next cur_;
    std::vector<uint32_t> free_;  // released slots, reused first
    uint32_t next_ = 0;           // never handed out yet: next_..kFwSlots-1
    std::map<uint32_t, dp::FwCounter> base_, cleared_;
};

// Rows of one direction for `show firewall` (the config's rules with the
// slots `s` gave them).
std::vector<Row> rows(const config::Firewall& f, bool ingress, const Slots& s);

}  // namespace nimbus::firewall
