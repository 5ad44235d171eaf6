#include "control/ike/ts.h"

#include <algorithm>

#include <fmt/format.h>

namespace nimbus::ike {

namespace {

using U128 = unsigned __int128;

U128 to_u(const IpAddr& a) {
    U128 v = 0;
    int n = a.is_v4() ? 4 : 16;
    for (int i = 0; i < n; i++) v = (v << 8) | a.b[size_t(i)];
    return v;
}

IpAddr from_u(U128 v, Family f) {
    IpAddr a;
    a.family = f;
    int n = f == Family::V4 ? 4 : 16;
    for (int i = n - 1; i >= 0; i--) {
        a.b[size_t(i)] = uint8_t(v & 0xff);
        v >>= 8;
    }
    return a;
}

U128 max_of(Family f) { return f == Family::V4 ? U128(0xffffffffu) : ~U128(0); }

struct Range {
    Family f;
    U128 lo, hi;
};

Range range_of(const Prefix& p) {
    auto [lo, hi] = p.range();
    return {p.family(), lo, hi};
}

bool full_ports(const TrafficSelector& s) { return s.ip_proto == 0 && s.start_port == 0 && s.end_port == 0xffff; }

Family ts_family(const TrafficSelector& s) { return s.type == TS_IPV6_ADDR_RANGE ? Family::V6 : Family::V4; }

}  // namespace

PrefixIndex::PrefixIndex(const std::vector<Prefix>& v) {
    for (const Prefix& p : v) {
        Range r = range_of(p);
        (p.family() == Family::V4 ? v4_ : v6_).push_back(Entry{r.lo, r.hi, r.hi, p});
    }
    for (auto* t : {&v4_, &v6_}) {
        std::sort(t->begin(), t->end(), [](const Entry& a, const Entry& b) { return a.lo < b.lo || (a.lo == b.lo && a.hi < b.hi); });
        for (size_t i = 1; i < t->size(); i++) (*t)[i].max_hi = std::max((*t)[i].hi, (*t)[i - 1].max_hi);
    }
}

std::vector<const Prefix*> PrefixIndex::overlapping(const IpAddr& first, const IpAddr& last) const {
    std::vector<const Prefix*> out;
    if (first.family != last.family) return out;
    const auto& t = first.is_v4() ? v4_ : v6_;
    U128 lo = to_u(first), hi = to_u(last);
    // Entries starting after `hi` cannot overlap; walking back from the last
    // one that starts at or before it, stop once nothing earlier reaches `lo`.
    auto end = std::upper_bound(t.begin(), t.end(), hi, [](U128 x, const Entry& e) { return x < e.lo; });
    for (auto it = end; it != t.begin();) {
        --it;
        if (it->max_hi < lo) break;
        if (it->hi >= lo) out.push_back(&it->p);
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<Prefix> range_to_prefixes(const IpAddr& start, const IpAddr& end) {
    std::vector<Prefix> out;
    if (start.family != end.family) return out;
    Family f = start.family;
    int bits = start.bits();
    U128 lo = to_u(start), hi = to_u(end);
    if (lo > hi) return out;
    while (true) {
        // The largest aligned block starting at lo that does not pass hi.
        int k = 0;
        while (k < bits) {
            if (k + 1 == bits) {  // the whole family: 1 << 128 does not fit
                if (lo == 0 && hi == max_of(f)) k++;
                break;
            }
            U128 size = U128(1) << (k + 1);
            if ((lo & (size - 1)) != 0) break;
            if (lo + (size - 1) > hi) break;
            k++;
        }
        out.push_back(Prefix(from_u(lo, f), bits - k));
        U128 last = k == bits ? max_of(f) : lo + ((U128(1) << k) - 1);
        if (last >= hi) break;
        lo = last + 1;
    }
    return out;
}

std::vector<TrafficSelector> selectors_for(std::span<const Prefix> prefixes) {
    std::vector<TrafficSelector> v;
    for (const auto& p : prefixes) v.push_back(TrafficSelector::from_prefix(p));
    return v;
}

TsResult narrow_ts(std::span<const TrafficSelector> proposed, const TsPolicy& policy) {
    TsResult r;
    bool any_usable = false;
    for (const auto& s : proposed) {
        if (s.type != TS_IPV4_ADDR_RANGE && s.type != TS_IPV6_ADDR_RANGE) continue;
        if (!full_ports(s)) continue;
        Family f = ts_family(s);
        if (s.start.family != f || s.end.family != f) continue;
        U128 lo = to_u(s.start), hi = to_u(s.end);
        if (lo > hi) continue;
        any_usable = true;
        if (policy.refuse_default && lo == 0 && hi == max_of(f)) {
            r.reason = fmt::format("selector {}-{} claims the whole address family", s.start.str(), s.end.str());
            r.selectors.clear();
            r.prefixes.clear();
            return r;
        }
        std::vector<const Prefix*> forb;
        for (const auto& p : policy.forbidden) forb.push_back(&p);
        if (policy.forbidden_shared)
            for (const Prefix* p : policy.forbidden_shared->overlapping(s.start, s.end)) forb.push_back(p);
        for (const Prefix* pp : forb) {
            const Prefix& p = *pp;
            if (p.family() != f) continue;
            Range fr = range_of(p);
            if (lo <= fr.hi && fr.lo <= hi) {
                // Overlapping a forbidden prefix that is also ours (a site
                // allowed inside another's wider prefix) is not a claim on
                // someone else's space.
                bool inside_own = false;
                for (const auto& a : policy.allowed) {
                    if (a.family() != f) continue;
                    Range ar = range_of(a);
                    if (ar.lo <= std::max(lo, fr.lo) && std::min(hi, fr.hi) <= ar.hi) inside_own = true;
                }
                if (inside_own) continue;
                r.reason = fmt::format("selector {}-{} overlaps {}, which belongs to another site", s.start.str(),
                                       s.end.str(), p.str());
                r.selectors.clear();
                r.prefixes.clear();
                return r;
            }
        }
        for (const auto& a : policy.allowed) {
            if (a.family() != f) continue;
            Range ar = range_of(a);
            U128 ilo = std::max(lo, ar.lo), ihi = std::min(hi, ar.hi);
            if (ilo > ihi) continue;
            TrafficSelector n;
            n.type = s.type;
            n.start = from_u(ilo, f);
            n.end = from_u(ihi, f);
            if (std::find(r.selectors.begin(), r.selectors.end(), n) != r.selectors.end()) continue;
            r.selectors.push_back(n);
            for (auto& p : range_to_prefixes(n.start, n.end))
                if (std::find(r.prefixes.begin(), r.prefixes.end(), p) == r.prefixes.end()) r.prefixes.push_back(p);
        }
    }
    if (!any_usable) {
        r.reason = "no selector covers all protocols and ports";
        return r;
    }
    if (r.selectors.empty()) {
        r.reason = "no proposed selector intersects the allowed prefixes";
        return r;
    }
    r.ok = true;
    return r;
}

bool ts_within(std::span<const TrafficSelector> answer, std::span<const TrafficSelector> proposed) {
    for (const auto& a : answer) {
        bool inside = false;
        for (const auto& p : proposed) {
            if (a.type != p.type) continue;
            if (p.ip_proto != 0 && a.ip_proto != p.ip_proto) continue;
            if (a.start_port < p.start_port || a.end_port > p.end_port) continue;
            if (to_u(a.start) >= to_u(p.start) && to_u(a.end) <= to_u(p.end)) inside = true;
        }
        if (!inside) return false;
    }
    return !answer.empty();
}

std::string ts_str(std::span<const TrafficSelector> ts) {
    std::string s;
    for (const auto& t : ts) {
        if (!s.empty()) s += ",";
        auto ps = range_to_prefixes(t.start, t.end);
        if (ps.size() == 1) s += ps[0].str();
        else s += t.start.str() + "-" + t.end.str();
        if (t.ip_proto || t.start_port != 0 || t.end_port != 0xffff)
            s += fmt::format("[{}/{}-{}]", t.ip_proto, t.start_port, t.end_port);
    }
    return s;
}

}  // namespace nimbus::ike
