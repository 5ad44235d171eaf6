// The firewall per VRF (ARCHITECTURE feature 11): ordered rules on
// prefixes, protocol, ports and DSCP, for traffic leaving a tunnel
// (ingress: after decryption and the cryptokey check) and entering one
// (egress: before encryption), a default action per direction, a counter
// per rule, and a stateful "allow" whose flows let the replies through
// whatever the other direction's rules say.
//
// DPDK-free (unit-tested on its own): the worker side (dataplane/acl/
// firewall.cpp) feeds it packet bytes and a time in its own ticks.
//
// - Policy: immutable once published (RCU, replaced by pointer swap), one
//   per VRF. First matching rule wins; no match: the direction's default.
// - FlowTable: one per worker, written by that worker only. A tunnel's
//   packets in both directions are handled by the worker that owns its SAs
//   (esp_out runs after the handoff), so a flow and its replies meet in
//   one table without locks. 4-way set-associative, fixed size: an insert
//   into a full set replaces its entry closest to expiry (counted).
//   Entries are keyed by the VRF and the 5-tuple in canonical order (the
//   lower endpoint first), so either direction finds them.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace nimbus::dp::acl {

enum class Action : uint8_t { Allow, Deny, AllowStateful };

// A packet as the rules see it. Addresses as two big-endian 64-bit halves
// in host order (IPv4: the address in the top 32 bits of hi, lo = 0).
struct Key {
    uint64_t src[2] = {0, 0}, dst[2] = {0, 0};
    uint16_t sport = 0, dport = 0;  // TCP/UDP/SCTP ports; ICMP echo: the identifier in both
    uint8_t proto = 0;              // IPv6: after the extension headers we walk
    uint8_t v6 = 0;
    uint8_t dscp = 0;
    uint8_t ports = 0;  // 1: sport/dport are known (not a later fragment, header complete)
    uint8_t icmp_error = 0;  // ICMP(v6) error: carries the header of the packet it is about
    uint16_t l4_off = 0;     // offset of the L4 header (when known)
    uint8_t frag = 0;        // a fragment: 1 the first (offset 0, ports known), 2 a later one
    uint32_t frag_id = 0;    // IPv4 identification or IPv6 fragment header identification
};

// Parses an IPv4 or IPv6 packet (no link header) of `len` bytes into `k`.
// False when the header is malformed or truncated (callers have validated
// the IP header already; this guards the L4 part).
bool extract(const uint8_t* l3, uint32_t len, Key* k);
// For an ICMP(v6) error (k.icmp_error), the key of the packet it quotes
// (RFC 792, RFC 4443 §2.4: its IP header and at least 8 bytes after it).
// A packet too big or unreachable for a recorded flow is part of that flow
// (path MTU discovery keeps working through a default-deny direction).
bool extract_quoted(const uint8_t* l3, uint32_t len, const Key& k, Key* quoted);

struct PrefixMatch {
    uint64_t addr[2] = {0, 0};  // masked
    uint64_t mask[2] = {0, 0};
    uint8_t v6 = 0;
    bool matches(const uint64_t a[2], uint8_t kv6) const {
        return kv6 == v6 && (a[0] & mask[0]) == addr[0] && (a[1] & mask[1]) == addr[1];
    }
};
// addr: 4 or 16 bytes, network order.
PrefixMatch make_prefix(const uint8_t* addr, bool v6, int len);

struct Rule {
    uint32_t slot = 0;  // counter slot (see Counters)
    Action action = Action::Allow;
    uint8_t family = 0;  // 0: any, 4, 6
    int16_t proto = -1;  // -1: any
    uint16_t sport_lo = 0, sport_hi = 65535, dport_lo = 0, dport_hi = 65535;
    bool port_match = false;  // a port range is set: packets without known ports never match
    uint64_t dscp = 0;        // bit d: DSCP d matches; 0: any
    std::vector<PrefixMatch> src, dst;  // empty: any

    bool matches(const Key& k) const {
        if (family && family != (k.v6 ? 6 : 4)) return false;
        if (proto >= 0 && proto != k.proto) return false;
        if (port_match) {
            if (!k.ports) return false;
            if (k.sport < sport_lo || k.sport > sport_hi || k.dport < dport_lo || k.dport > dport_hi) return false;
        }
        if (dscp && !((dscp >> k.dscp) & 1)) return false;
        if (!any_of(src, k.src, k.v6) || !any_of(dst, k.dst, k.v6)) return false;
        return true;
    }

private:
    static bool any_of(const std::vector<PrefixMatch>& ps, const uint64_t a[2], uint8_t v6) {
        if (ps.empty()) return true;
        for (auto& p : ps)
            if (p.matches(a, v6)) return true;
        return false;
    }
};

struct Direction {
    std::vector<Rule> rules;
    Action dflt = Action::Allow;
    uint32_t default_slot = 0;  // counts packets the default decided
    uint32_t state_slot = 0;    // counts packets let through by a flow entry
    // Index of the first matching rule, or -1 (the default applies).
    int match(const Key& k) const {
        for (size_t i = 0; i < rules.size(); i++)
            if (rules[i].matches(k)) return int(i);
        return -1;
    }
};

struct Policy {
    Direction in, out;        // in: from tunnels; out: into tunnels
    uint64_t state_ttl = 0;   // idle lifetime of a flow entry, in the caller's ticks
    uint64_t frag_ttl = 0;    // how long a first fragment's verdict waits for the others
    bool stateful = false;    // some rule is AllowStateful: look flows up
};

// Counters per slot, one array per worker (written by that worker only).
inline constexpr uint32_t kSlots = 8192;
struct Counters {
    uint64_t packets[kSlots] = {};
    uint64_t bytes[kSlots] = {};
};

struct FlowStats {
    uint64_t created = 0, refreshed = 0, evicted = 0;
};

class FlowTable {
public:
    static constexpr int kWays = 4;
    // Capacity rounded up to a power of two, at least kWays.
    explicit FlowTable(uint32_t capacity);

    // A flow entry for k's 5-tuple in `vrf` exists and is alive at `now`:
    // its lifetime is extended to now + ttl.
    bool hit(const Key& k, uint16_t vrf, uint64_t now, uint64_t ttl) {
        Entry e = canon(k, vrf);
        Entry* set = &e_[(hash(e) & mask_) * kWays];
        for (int i = 0; i < kWays; i++)
            if (set[i].expires > now && same(set[i], e)) {
                set[i].expires = now + ttl;
                st_.refreshed++;
                return true;
            }
        return false;
    }
    // Records k's flow (after hit() said it is not there).
    void add(const Key& k, uint16_t vrf, uint64_t now, uint64_t ttl) {
        Entry e = canon(k, vrf);
        e.expires = now + ttl;
        Entry* set = &e_[(hash(e) & mask_) * kWays];
        Entry* victim = &set[0];
        for (int i = 0; i < kWays; i++) {
            if (set[i].expires <= now) {
                victim = &set[i];
                break;
            }
            if (set[i].expires < victim->expires) victim = &set[i];
        }
        if (victim->expires > now) st_.evicted++;
        *victim = e;
        st_.created++;
    }
    // Fragments: the verdict on a packet's first fragment (the one with the
    // ports) is kept briefly by (VRF, addresses, protocol, identification),
    // so its later fragments, which carry no ports, get the same verdict and
    // count in the same slot. A later fragment seen first gets the rules
    // (only rules without ports can match it).
    struct FragVerdict {
        bool allow = false;
        uint32_t slot = 0;
    };
    bool frag_find(const Key& k, uint16_t vrf, uint64_t now, FragVerdict* v) const {
        const FragEntry* set = &f_[(frag_hash(k, vrf) & fmask_) * kWays];
        for (int i = 0; i < kWays; i++)
            if (set[i].expires > now && frag_same(set[i], k, vrf)) {
                *v = {set[i].allow != 0, set[i].slot};
                return true;
            }
        return false;
    }
    void frag_add(const Key& k, uint16_t vrf, uint64_t now, uint64_t ttl, FragVerdict v) {
        FragEntry* set = &f_[(frag_hash(k, vrf) & fmask_) * kWays];
        FragEntry* victim = &set[0];
        for (int i = 0; i < kWays; i++) {
            if (set[i].expires <= now || frag_same(set[i], k, vrf)) {
                victim = &set[i];
                break;
            }
            if (set[i].expires < victim->expires) victim = &set[i];
        }
        *victim = FragEntry{{k.src[0], k.src[1]}, {k.dst[0], k.dst[1]}, now + ttl, k.frag_id, v.slot, vrf,
                            k.proto, uint8_t(v.allow)};
    }
    uint32_t capacity() const { return uint32_t(e_.size()); }
    // Entries alive at `now` (a scan: for `show`, from any thread; racy
    // against the owner, which is fine for a count).
    uint64_t live(uint64_t now) const;
    const FlowStats& stats() const { return st_; }

private:
    struct Entry {
        uint64_t a[2], b[2];
        uint64_t expires;
        uint16_t pa, pb;
        uint16_t vrf;
        uint8_t proto, v6;
    };
    static_assert(sizeof(Entry) == 48);
    static Entry canon(const Key& k, uint16_t vrf) {
        Entry e;
        bool swap = k.src[0] > k.dst[0] || (k.src[0] == k.dst[0] && (k.src[1] > k.dst[1] ||
                                                                      (k.src[1] == k.dst[1] && k.sport > k.dport)));
        const uint64_t* a = swap ? k.dst : k.src;
        const uint64_t* b = swap ? k.src : k.dst;
        e.a[0] = a[0];
        e.a[1] = a[1];
        e.b[0] = b[0];
        e.b[1] = b[1];
        e.pa = swap ? k.dport : k.sport;
        e.pb = swap ? k.sport : k.dport;
        e.vrf = vrf;
        e.proto = k.proto;
        e.v6 = k.v6;
        e.expires = 0;
        return e;
    }
    static bool same(const Entry& x, const Entry& y) {
        return x.a[0] == y.a[0] && x.a[1] == y.a[1] && x.b[0] == y.b[0] && x.b[1] == y.b[1] && x.pa == y.pa &&
               x.pb == y.pb && x.vrf == y.vrf && x.proto == y.proto && x.v6 == y.v6;
    }
    static uint64_t hash(const Entry& e) {
        uint64_t h = e.a[0] * 0x9e3779b97f4a7c15ull;
        h ^= (e.a[1] + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
        h ^= (e.b[0] ^ (h >> 29)) * 0x94d049bb133111ebull;
        h ^= (e.b[1] ^ (h >> 31)) * 0x9e3779b97f4a7c15ull;
        h ^= (uint64_t(e.pa) << 32 | uint64_t(e.pb) << 16 | uint64_t(e.vrf) << 8 | e.proto) * 0xd6e8feb86659fd93ull;
        return h ^ (h >> 32);
    }
    struct FragEntry {
        uint64_t a[2], b[2];
        uint64_t expires;
        uint32_t id, slot;
        uint16_t vrf;
        uint8_t proto, allow;
    };
    static bool frag_same(const FragEntry& e, const Key& k, uint16_t vrf) {
        return e.id == k.frag_id && e.proto == k.proto && e.vrf == vrf && e.a[0] == k.src[0] && e.a[1] == k.src[1] &&
               e.b[0] == k.dst[0] && e.b[1] == k.dst[1];
    }
    static uint64_t frag_hash(const Key& k, uint16_t vrf) {
        uint64_t h = (k.src[0] ^ k.src[1] ^ (k.dst[0] >> 7) ^ (k.dst[1] << 3)) + (uint64_t(k.frag_id) << 16 | vrf);
        h *= 0x9e3779b97f4a7c15ull;
        return h ^ (h >> 31);
    }
    std::vector<Entry> e_;
    uint64_t mask_ = 0;  // sets - 1
    std::vector<FragEntry> f_;
    uint64_t fmask_ = 0;
    FlowStats st_;
};

// The verdict for one packet: let it through or not, counting it in the
// rule's (or the default's, or the state's) slot. `k` extracted already.
// `quoted`: for an ICMP error, the packet it quotes (else nullptr).
inline bool decide(const Policy& p, const Direction& d, const Key& k, uint32_t bytes, uint16_t vrf,
                   FlowTable* flows, Counters& c, uint64_t now, const Key* quoted = nullptr) {
    auto count = [&](uint32_t slot) {
        c.packets[slot]++;
        c.bytes[slot] += bytes;
    };
    FlowTable::FragVerdict fv;
    if (k.frag == 2 && flows && flows->frag_find(k, vrf, now, &fv)) {  // a later fragment: its first's verdict
        count(fv.slot);
        return fv.allow;
    }
    bool allow;
    uint32_t slot;
    if (p.stateful && flows &&
        (flows->hit(k, vrf, now, p.state_ttl) || (quoted && flows->hit(*quoted, vrf, now, p.state_ttl)))) {
        allow = true;
        slot = d.state_slot;
    } else {
        int i = d.match(k);
        Action a = i < 0 ? d.dflt : d.rules[size_t(i)].action;
        slot = i < 0 ? d.default_slot : d.rules[size_t(i)].slot;
        allow = a != Action::Deny;
        if (a == Action::AllowStateful && flows) flows->add(k, vrf, now, p.state_ttl);
    }
    count(slot);
    if (k.frag == 1 && flows) flows->frag_add(k, vrf, now, p.frag_ttl, {allow, slot});
    return allow;
}

}  // namespace nimbus::dp::acl
