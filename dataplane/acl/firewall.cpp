// The worker side of the firewall (acl.h) and its control API (api.h).
#include <rte_cycles.h>

#include <fmt/format.h>

#include "dataplane/dp.h"

namespace nimbus::dp {

const char* fw_action_name(FwAction a) {
    switch (a) {
        case FwAction::Allow: return "allow";
        case FwAction::Deny: return "deny";
        case FwAction::AllowStateful: return "allow-stateful";
    }
    return "?";
}

bool fw_pass(WorkerCtx& w, const acl::Policy& p, bool egress, int vrf, const uint8_t* l3, uint32_t len,
             uint64_t& now) {
    acl::Key k;
    // A packet whose L4 header cannot be read is matched on what could be
    // (rules with ports never match it).
    (void)acl::extract(l3, len, &k);
    acl::Key q;
    bool related = p.stateful && k.icmp_error && acl::extract_quoted(l3, len, k, &q);
    if ((p.stateful || k.frag) && !now) now = rte_rdtsc();
    return acl::decide(p, egress ? p.out : p.in, k, len, uint16_t(vrf), w.flows, *w.fwc, now, related ? &q : nullptr);
}

namespace {

bool build_dir(const FwDirSpec& s, acl::Direction* d, std::string* err) {
    auto slot_ok = [&](uint32_t slot) {
        if (slot < kFwSlots) return true;
        *err = fmt::format("firewall counter slot {} out of range (0..{})", slot, kFwSlots - 1);
        return false;
    };
    if (!slot_ok(s.default_slot) || !slot_ok(s.state_slot)) return false;
    d->dflt = acl::Action(s.dflt);
    d->default_slot = s.default_slot;
    d->state_slot = s.state_slot;
    for (auto& r : s.rules) {
        if (!slot_ok(r.slot)) return false;
        acl::Rule x;
        x.slot = r.slot;
        x.action = acl::Action(r.action);
        x.family = uint8_t(r.family);
        x.proto = int16_t(r.proto);
        x.port_match = r.ports;
        x.sport_lo = r.sport_lo;
        x.sport_hi = r.sport_hi;
        x.dport_lo = r.dport_lo;
        x.dport_hi = r.dport_hi;
        x.dscp = r.dscp;
        for (auto& p : r.src) x.src.push_back(acl::make_prefix(p.addr.b.data(), !p.addr.is_v4(), p.len));
        for (auto& p : r.dst) x.dst.push_back(acl::make_prefix(p.addr.b.data(), !p.addr.is_v4(), p.len));
        d->rules.push_back(std::move(x));
    }
    return true;
}

}  // namespace

bool fw_set(int vrf, const FwPolicySpec* spec, std::string* err) {
    if (!g) {
        *err = "dataplane not initialised";
        return false;
    }
    if (vrf < 0 || vrf >= kMaxVrfs) {
        *err = fmt::format("VRF {} out of range", vrf);
        return false;
    }
    acl::Policy* next = nullptr;
    if (spec) {
        next = new acl::Policy();
        if (!build_dir(spec->in, &next->in, err) || !build_dir(spec->out, &next->out, err)) {
            delete next;
            return false;
        }
        next->state_ttl = uint64_t(spec->state_timeout_s) * g->tsc_hz;
        next->frag_ttl = 5 * g->tsc_hz;  // a packet's fragments arrive within seconds of each other
        for (const acl::Direction* d : {&next->in, &next->out})
            for (auto& r : d->rules) next->stateful |= r.action == acl::Action::AllowStateful;
    }
    const acl::Policy* old = g->fw[vrf].exchange(next, std::memory_order_acq_rel);
    if (old) {
        synchronize();  // no worker still reads the old rules
        delete old;
    }
    return true;
}

FwCounter fw_counter(uint32_t slot) {
    FwCounter c;
    if (!g || slot >= kFwSlots) return c;
    for (int w = 0; w < g->nworkers; w++) {
        const acl::Counters* x = g->workers[w].fwc;
        if (!x) continue;
        c.packets += x->packets[slot];
        c.bytes += x->bytes[slot];
    }
    return c;
}

FwFlowStats fw_flow_stats() {
    FwFlowStats s;
    if (!g) return s;
    uint64_t now = rte_rdtsc();
    for (int w = 0; w < g->nworkers; w++) {
        const acl::FlowTable* t = g->workers[w].flows;
        if (!t) continue;
        s.live += t->live(now);
        s.capacity += t->capacity();
        s.created += t->stats().created;
        s.refreshed += t->stats().refreshed;
        s.evicted += t->stats().evicted;
    }
    return s;
}

}  // namespace nimbus::dp
