// Site prefixes into FRR: a RIB observer that turns tunnel routes
// (Source::Tunnel, added by whoever brings tunnels up: static SAs, IKE) into
// zebra's desired route set (ZapiSession), so bgpd can advertise them with
// `redistribute nhrp route-map ...`.
//
// Each prefix goes into FRR's default VRF (this kernel has no VRF devices;
// per-cloud FRR VRFs come with the multi-cloud work) as a blackhole, tagged
// for its cloud (the nimbus VRF) or its site, with a metric and distance, so
// an operator's route-map can set communities, MED or AS-path prepends from
// the tag (conf/frr/bgpd.conf).
//
// The safety net, whatever the tunnel code lets through: nimbus never injects
//  - a route without an owner (the site it belongs to),
//  - a default route (0.0.0.0/0, ::/0),
//  - a prefix outside the site's allowed set (AllowedLookup),
//  - more than the site's maximum number of prefixes; a refused prefix is
//    admitted later when one of the site's prefixes goes.
// A prefix two sites (or two clouds) hold is injected once, with the
// attributes of the first holder in (vrf, site) order.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/routing/rib.h"
#include "src/common/addr.h"

namespace nimbus::routing {

class ZapiSession;

struct InjectAttrs {
    uint32_t tag = 0, metric = 0;
    uint8_t distance = 0;  // 0: zebra's default for the route type
    bool operator==(const InjectAttrs&) const = default;
};

struct InjectPolicy {
    struct Override {
        std::optional<uint32_t> tag, metric;
        std::optional<uint8_t> distance;
    };
    struct Cloud : Override {
        std::string name;
    };
    struct Site : Override {
        std::optional<uint32_t> max_prefixes;
    };
    InjectAttrs defaults;
    uint32_t max_prefixes_per_site = 1000;
    std::map<int, Cloud> clouds;        // by nimbus VRF
    std::map<std::string, Site> sites;  // by site (tunnel) name

    // Site overrides cloud overrides the defaults, field by field.
    InjectAttrs attrs_for(int vrf, const std::string& site) const;
    uint32_t max_for(const std::string& site) const;
    std::string cloud_name(int vrf) const;  // "" when the VRF has no cloud
};

// The prefixes a site may hold in a VRF, from whoever owns the tunnels;
// nullopt for a site it does not know.
using AllowedLookup = std::function<std::optional<std::vector<Prefix>>(int vrf, const std::string& site)>;

enum class Verdict : uint8_t { Injected, NoOwner, DefaultRoute, UnknownSite, NotAllowed, OverLimit };
const char* verdict_name(Verdict v);

struct InjectCounters {
    uint64_t accepted = 0;     // tunnel routes admitted (incl. later admissions)
    uint64_t withdrawn = 0;    // admitted routes that went away
    uint64_t refused_no_owner = 0;
    uint64_t refused_default = 0;
    uint64_t refused_unknown_site = 0;
    uint64_t refused_not_allowed = 0;
    uint64_t refused_over_limit = 0;
    uint64_t admitted_later = 0;  // over-limit routes admitted when room appeared
    uint64_t shared = 0;          // admitted for a prefix another site already holds
};

class Injector {
public:
    // `zapi` may be null (no zebra configured): verdicts are still kept.
    Injector(InjectPolicy policy, AllowedLookup allowed, ZapiSession* zapi);

    // The RIB observer: Source::Tunnel routes only, everything else is ignored.
    void on_rib(int vrf, const Route& r, bool added);

    // Inactive (the backup of an HA pair): nothing goes to zebra and what
    // was there is deleted; verdicts are still kept, so becoming active
    // again announces exactly the admitted prefixes.
    void set_active(bool active);
    bool active() const { return active_; }

    struct Entry {
        int vrf = 0;
        std::string site;
        Prefix prefix;
        Verdict verdict = Verdict::Injected;
    };
    std::vector<Entry> entries() const;
    size_t injected_prefixes() const { return by_prefix_.size(); }
    size_t site_count(int vrf, const std::string& site) const;
    const InjectCounters& counters() const { return counters_; }
    const std::string& last_refusal() const { return last_refusal_; }
    const InjectPolicy& policy() const { return policy_; }

private:
    struct Key {
        int vrf = 0;
        std::string site;
        Prefix prefix;
        auto operator<=>(const Key&) const = default;
        bool operator==(const Key&) const = default;
    };
    using SiteKey = std::pair<int, std::string>;

    Verdict judge(const Key& k) const;
    void admit(const Key& k);
    void refuse(const Key& k, Verdict v);
    void retire(const Key& k);
    void sync(const Prefix& p);
    void retry_over_limit(const SiteKey& s);

    InjectPolicy policy_;
    AllowedLookup allowed_;
    ZapiSession* zapi_;
    std::map<Key, Verdict> held_;                  // every tunnel route in the RIB
    std::map<SiteKey, size_t> per_site_;           // admitted prefixes per site
    std::map<Prefix, std::set<SiteKey>> by_prefix_;  // admitted holders per prefix
    InjectCounters counters_;
    std::string last_refusal_;
    bool active_ = true;
};

}  // namespace nimbus::routing
