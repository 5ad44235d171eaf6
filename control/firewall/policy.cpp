#include "control/firewall/policy.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace nimbus::firewall {

namespace {

dp::FwAction action_of(const std::string& a) {
    if (a == "deny") return dp::FwAction::Deny;
    if (a == "allow-stateful") return dp::FwAction::AllowStateful;
    return dp::FwAction::Allow;
}

dp::FwRuleSpec rule_spec(const config::FwRule& r, uint32_t slot) {
    dp::FwRuleSpec x;
    x.slot = slot;
    x.action = action_of(r.action);
    x.family = r.family;
    x.proto = r.proto;
    x.src = r.src;
    x.dst = r.dst;
    x.ports = r.ports;
    x.sport_lo = uint16_t(r.sport_lo);
    x.sport_hi = uint16_t(r.sport_hi);
    x.dport_lo = uint16_t(r.dport_lo);
    x.dport_hi = uint16_t(r.dport_hi);
    x.dscp = r.dscp;
    return x;
}

// Calls f(key, rule or nullptr for the flow/default rows) for every slot a
// firewall entry needs, in show order.
template <class F>
void each_key(const config::Firewall& f, bool ingress, F&& fn) {
    const char* dir = ingress ? "in" : "out";
    std::map<std::string, int> seen;
    for (auto& r : ingress ? f.ingress : f.egress) {
        std::string id = r.identity();
        fn(Slots::key(f.vrf, dir, id, seen[id]++), &r);
    }
    fn(Slots::key(f.vrf, dir, "(flows)", 0), nullptr);
    fn(Slots::key(f.vrf, dir, "(default)", 0), nullptr);
}

}  // namespace

std::string Slots::key(const std::string& vrf, const char* dir, const std::string& what, int occurrence) {
    return fmt::format("{}|{}|{}#{}", vrf, dir, what, occurrence);
}

std::optional<Slots::Next> Slots::plan(const config::Config& cfg, std::string* err) const {
    Next n;
    std::vector<uint32_t> pool = free_;
    uint32_t next = next_;
    auto slot_for = [&](const std::string& k) -> std::optional<uint32_t> {
        if (auto it = cur_.keys.find(k); it != cur_.keys.end()) return it->second;
        if (!pool.empty()) {
            uint32_t s = pool.back();
            pool.pop_back();
            return s;
        }
        if (next < dp::kFwSlots) return next++;
        return std::nullopt;
    };
    for (auto& f : cfg.firewall) {
        int vrf = cfg.vrf_index(f.vrf);
        if (vrf < 0) {
            *err = fmt::format("firewall: unknown VRF '{}'", f.vrf);
            return std::nullopt;
        }
        dp::FwPolicySpec spec;
        spec.state_timeout_s = uint32_t(f.state_timeout);
        for (bool ingress : {true, false}) {
            dp::FwDirSpec& d = ingress ? spec.in : spec.out;
            d.dflt = action_of(ingress ? f.ingress_default : f.egress_default);
            bool ok = true;
            each_key(f, ingress, [&](const std::string& k, const config::FwRule* r) {
                auto s = slot_for(k);
                if (!s) {
                    ok = false;
                    return;
                }
                n.keys[k] = *s;
                if (r) d.rules.push_back(rule_spec(*r, *s));
                else if (k.find("|(flows)#") != std::string::npos) d.state_slot = *s;
                else d.default_slot = *s;
            });
            if (!ok) {
                *err = fmt::format("firewall: more than {} rules and counters in all", dp::kFwSlots);
                return std::nullopt;
            }
        }
        n.specs[vrf] = std::move(spec);
    }
    return n;
}

std::vector<uint32_t> Slots::fresh(const Next& n) const {
    std::set<uint32_t> had;
    for (auto& [k, s] : cur_.keys) had.insert(s);
    std::set<uint32_t> out;
    for (auto& [k, s] : n.keys)
        if (!had.count(s)) out.insert(s);
    return {out.begin(), out.end()};
}

std::vector<uint32_t> Slots::commit(Next n) {
    std::set<uint32_t> kept;
    for (auto& [k, s] : n.keys) kept.insert(s);
    std::vector<uint32_t> gone;
    for (auto& [k, s] : cur_.keys)
        if (!kept.count(s)) gone.push_back(s);
    for (uint32_t s : fresh(n)) {
        // Taken from the pool, or never used before.
        auto it = std::find(free_.begin(), free_.end(), s);
        if (it != free_.end()) free_.erase(it);
        if (s >= next_) next_ = s + 1;
    }
    cur_ = std::move(n);
    return gone;
}

void Slots::release(const std::vector<uint32_t>& slots) {
    for (uint32_t s : slots) {
        free_.push_back(s);
        base_.erase(s);
        cleared_.erase(s);
    }
}

std::vector<Row> rows(const config::Firewall& f, bool ingress, const Slots& s) {
    std::vector<Row> out;
    each_key(f, ingress, [&](const std::string& k, const config::FwRule* r) {
        Row row;
        row.slot = s.slot_of(k).value_or(dp::kFwSlots);
        if (r) {
            row.name = r->name;
            row.action = r->action;
            row.match = r->match_str();
        } else if (k.find("|(flows)#") != std::string::npos) {
            row.pseudo = true;
            row.name = "(flows)";
            row.action = "allow";
            row.match = "packets of allow-stateful flows, both ways";
        } else {
            row.pseudo = true;
            row.name = "(default)";
            row.action = ingress ? f.ingress_default : f.egress_default;
            row.match = "no rule matched";
        }
        out.push_back(std::move(row));
    });
    return out;
}

}  // namespace nimbus::firewall
