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

struct TsPolicy {
    std::vector<Prefix> allowed;     // what this side may hold
    std::vector<Prefix> forbidden;   // other sites' prefixes: overlapping them is refused
    // The same, shared (every site's prefixes of a cloud, this one's
    // included: what lies inside `allowed` is not held against it).
    const std::vector<Prefix>* forbidden_shared = nullptr;
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
