// Traffic selector policy (RFC 7296 §2.9): what a site may claim and what we
// offer it. The responder narrows the peer's proposal to the prefixes the
// configuration allows; a claim on a default route or on another site's
// prefix is refused outright (TS_UNACCEPTABLE) rather than narrowed, because
// it shows a misconfigured or hostile site. The agreed selectors become the
// tunnel's allowed prefixes (cryptokey routing, ARCHITECTURE.md §1 #13).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "control/ike/payloads.h"
#include "src/common/addr.h"

namespace nimbus::ike {

// Prefixes indexed for overlap queries: per family, sorted by first
// address with the running maximum of last addresses, so that a query
// visits O(log n + matches) entries when the prefixes are mostly disjoint
// (sites' LANs). A cloud's every-site list is one: checking a site's claim
// against 100,000 other sites must not scan them all per handshake.
class PrefixIndex {
public:
    PrefixIndex() = default;
    explicit PrefixIndex(const std::vector<Prefix>& v);
    // The prefixes of [first, last] (of one family) that overlap it, each
    // once, in ascending order of first address.
    std::vector<const Prefix*> overlapping(const IpAddr& first, const IpAddr& last) const;
    size_t size() const { return v4_.size() + v6_.size(); }

private:
    struct Entry {
        unsigned __int128 lo, hi, max_hi;   // max_hi: the largest hi of this and every earlier entry
        Prefix p;
    };
    std::vector<Entry> v4_, v6_;
};

struct TsPolicy {
    std::vector<Prefix> allowed;     // what this side may hold
    std::vector<Prefix> forbidden;   // other sites' prefixes: overlapping them is refused
    // The same, shared (every site's prefixes of a cloud, this one's
    // included: what lies inside `allowed` is not held against it).
    const PrefixIndex* forbidden_shared = nullptr;
    bool refuse_default = false;     // 0.0.0.0/0 or ::/0 claimed → refused
};

struct TsResult {
    bool ok = false;
    std::vector<TrafficSelector> selectors;  // the narrowed selectors to answer with
    std::vector<Prefix> prefixes;            // the same as CIDR prefixes
    std::string reason;                      // why not, for the log
};

// §2.9 narrowing of one side's selectors. Selectors restricted to a
// protocol or port range are not usable (the dataplane enforces prefixes
// only); they are skipped, so a trigger-packet selector first in the list
// (§2.9) does no harm, but a proposal made only of them is refused.
TsResult narrow_ts(std::span<const TrafficSelector> proposed, const TsPolicy& policy);

// Whether the responder's answer is acceptable to the initiator: every
// returned selector lies inside what we proposed (§2.9: narrowing only).
bool ts_within(std::span<const TrafficSelector> answer, std::span<const TrafficSelector> proposed);

// The smallest list of prefixes that covers exactly [start, end].
std::vector<Prefix> range_to_prefixes(const IpAddr& start, const IpAddr& end);

// Selectors for a list of prefixes (all protocols, all ports).
std::vector<TrafficSelector> selectors_for(std::span<const Prefix> prefixes);

std::string ts_str(std::span<const TrafficSelector> ts);

}  // namespace nimbus::ike
