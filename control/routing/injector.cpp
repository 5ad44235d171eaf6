#include "control/routing/injector.h"

#include <fmt/format.h>

#include "control/routing/zapi_session.h"
#include "src/common/log.h"

namespace nimbus::routing {

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::Injected: return "injected";
        case Verdict::NoOwner: return "refused: no owning site";
        case Verdict::DefaultRoute: return "refused: default route";
        case Verdict::UnknownSite: return "refused: unknown site";
        case Verdict::NotAllowed: return "refused: outside the site's allowed prefixes";
        case Verdict::OverLimit: return "refused: site over its prefix limit";
    }
    return "?";
}

InjectAttrs InjectPolicy::attrs_for(int vrf, const std::string& site) const {
    InjectAttrs a = defaults;
    auto apply = [&](const Override& o) {
        if (o.tag) a.tag = *o.tag;
        if (o.metric) a.metric = *o.metric;
        if (o.distance) a.distance = *o.distance;
    };
    if (auto c = clouds.find(vrf); c != clouds.end()) apply(c->second);
    if (auto s = sites.find(site); s != sites.end()) apply(s->second);
    return a;
}

uint32_t InjectPolicy::max_for(const std::string& site) const {
    auto s = sites.find(site);
    if (s != sites.end() && s->second.max_prefixes) return *s->second.max_prefixes;
    return max_prefixes_per_site;
}

std::string InjectPolicy::cloud_name(int vrf) const {
    auto c = clouds.find(vrf);
    return c == clouds.end() ? "" : c->second.name;
}

Injector::Injector(InjectPolicy policy, AllowedLookup allowed, ZapiSession* zapi)
    : policy_(std::move(policy)), allowed_(std::move(allowed)), zapi_(zapi) {}

void Injector::on_rib(int vrf, const Route& r, bool added) {
    if (r.source != Source::Tunnel) return;
    Key k{vrf, r.owner, r.prefix};
    auto it = held_.find(k);
    if (!added) {
        if (it != held_.end()) retire(k);
        return;
    }
    if (it != held_.end()) {
        if (it->second == Verdict::Injected) return;  // same route again
        held_.erase(it);                              // judge it afresh
    }
    Verdict v = judge(k);
    if (v == Verdict::Injected) admit(k);
    else refuse(k, v);
}

Verdict Injector::judge(const Key& k) const {
    if (k.site.empty()) return Verdict::NoOwner;
    if (k.prefix.is_default()) return Verdict::DefaultRoute;
    auto allowed = allowed_ ? allowed_(k.vrf, k.site) : std::nullopt;
    if (!allowed) return Verdict::UnknownSite;
    bool inside = false;
    for (auto& a : *allowed)
        if (a.family() == k.prefix.family() && a.contains(k.prefix)) inside = true;
    if (!inside) return Verdict::NotAllowed;
    auto n = per_site_.find({k.vrf, k.site});
    if (n != per_site_.end() && n->second >= policy_.max_for(k.site)) return Verdict::OverLimit;
    return Verdict::Injected;
}

void Injector::admit(const Key& k) {
    held_[k] = Verdict::Injected;
    per_site_[{k.vrf, k.site}]++;
    auto& holders = by_prefix_[k.prefix];
    if (!holders.empty()) counters_.shared++;
    holders.insert({k.vrf, k.site});
    counters_.accepted++;
    sync(k.prefix);
}

void Injector::refuse(const Key& k, Verdict v) {
    held_[k] = v;
    switch (v) {
        case Verdict::NoOwner: counters_.refused_no_owner++; break;
        case Verdict::DefaultRoute: counters_.refused_default++; break;
        case Verdict::UnknownSite: counters_.refused_unknown_site++; break;
        case Verdict::NotAllowed: counters_.refused_not_allowed++; break;
        case Verdict::OverLimit: counters_.refused_over_limit++; break;
        case Verdict::Injected: break;
    }
    std::string cloud = policy_.cloud_name(k.vrf);
    last_refusal_ = fmt::format("{} of site '{}'{}: {}", k.prefix.str(), k.site,
                                cloud.empty() ? "" : " (cloud " + cloud + ")", verdict_name(v));
    LOG_WARN("inject", "event=refused prefix={} site=\"{}\" vrf={} reason=\"{}\"", k.prefix.str(), k.site, k.vrf,
             verdict_name(v));
}

void Injector::retire(const Key& k) {
    auto it = held_.find(k);
    Verdict v = it->second;
    held_.erase(it);
    if (v != Verdict::Injected) return;
    counters_.withdrawn++;
    SiteKey s{k.vrf, k.site};
    if (--per_site_[s] == 0) per_site_.erase(s);
    auto& holders = by_prefix_[k.prefix];
    holders.erase(s);
    if (holders.empty()) by_prefix_.erase(k.prefix);
    sync(k.prefix);
    retry_over_limit(s);
}

void Injector::retry_over_limit(const SiteKey& s) {
    for (auto it = held_.lower_bound(Key{s.first, s.second, Prefix()});
         it != held_.end() && it->first.vrf == s.first && it->first.site == s.second; ++it) {
        if (it->second != Verdict::OverLimit) continue;
        auto n = per_site_.find(s);
        if (n != per_site_.end() && n->second >= policy_.max_for(s.second)) return;
        Key k = it->first;
        if (judge(k) != Verdict::Injected) continue;
        counters_.admitted_later++;
        admit(k);  // only changes the value of `it`: the iteration stays valid
    }
}

void Injector::set_active(bool active) {
    if (active == active_) return;
    active_ = active;
    LOG_INFO("inject", "event={} prefixes={}", active ? "active" : "suspended", by_prefix_.size());
    if (!zapi_) return;
    for (auto& [p, holders] : by_prefix_) {
        if (active) sync(p);
        else zapi_->del_route(0, p);
    }
}

// Makes zebra's desired set agree with the holders of one prefix.
void Injector::sync(const Prefix& p) {
    if (!zapi_) return;
    auto it = by_prefix_.find(p);
    if (!active_) {
        zapi_->del_route(0, p);  // nothing of ours in zebra while inactive
        return;
    }
    if (it == by_prefix_.end()) {
        zapi_->del_route(0, p);
        return;
    }
    const SiteKey& first = *it->second.begin();
    InjectAttrs a = policy_.attrs_for(first.first, first.second);
    zapi_->add_route(0, p, a.tag, a.metric, a.distance);
}

std::vector<Injector::Entry> Injector::entries() const {
    std::vector<Entry> out;
    out.reserve(held_.size());
    for (auto& [k, v] : held_) out.push_back(Entry{k.vrf, k.site, k.prefix, v});
    return out;
}

size_t Injector::site_count(int vrf, const std::string& site) const {
    auto it = per_site_.find({vrf, site});
    return it == per_site_.end() ? 0 : it->second;
}

}  // namespace nimbus::routing
