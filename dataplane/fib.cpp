// FIB per VRF and the next-hop table, published to running workers.
//
// IPv4: rte_lpm, updated in place (each entry is written atomically; its RCU
// hook defers tbl8 reuse until workers are quiescent).
// IPv6: rte_fib6 has no RCU hook in DPDK 22.11, so each VRF keeps two copies.
// A batch goes into the copy workers do not use, the copies swap, we wait a
// grace period, then the same batch goes into the other copy.
// Next hops: immutable objects behind an array of atomic pointers; a change
// publishes a new object and retires the old one until the next grace period.
#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_rib6.h>
#include <rte_version.h>

#include "dataplane/dp.h"

namespace nimbus::dp {

namespace {

constexpr uint32_t kNhCapacity = 1u << 20;
constexpr uint32_t kLpmMaxRules = 1u << 20;

struct FibState {
    std::vector<NhId> free_ids;
    uint32_t next_id = kNhFirstDynamic;
    std::vector<Nh*> retired;
    std::vector<NhId> retired_ids;  // reusable after the next grace period
};
FibState* fs = nullptr;

Nh* make_nh(NhType t) {
    Nh* n = static_cast<Nh*>(rte_zmalloc("nimbus_nh", sizeof(Nh), RTE_CACHE_LINE_SIZE));
    if (n) n->type = t;
    return n;
}

void reclaim() {
    if (fs->retired.empty() && fs->retired_ids.empty()) return;
    synchronize();
    for (Nh* n : fs->retired) rte_free(n);
    fs->retired.clear();
    fs->free_ids.insert(fs->free_ids.end(), fs->retired_ids.begin(), fs->retired_ids.end());
    fs->retired_ids.clear();
}

void retire(Nh* n) {
    if (!n) return;
    fs->retired.push_back(n);
    if (fs->retired.size() >= 4096) reclaim();
}

rte_lpm* get_v4(int vrf, std::string* err) {
    rte_lpm* l = g->vrfs[vrf].v4.load(std::memory_order_relaxed);
    if (l) return l;
    rte_lpm_config c{};
    c.max_rules = kLpmMaxRules;
    c.number_tbl8s = uint32_t(g->spec.ipv4_tbl8);
    l = rte_lpm_create(fmt::format("nb_v4_{}", vrf).c_str(), int(rte_socket_id()), &c);
    if (!l) {
        *err = fmt::format("IPv4 FIB for VRF {}: {}", vrf, rte_strerror(rte_errno));
        return nullptr;
    }
    rte_lpm_rcu_config rc{};
    rc.v = g->qsbr;
    rc.mode = RTE_LPM_QSBR_MODE_DQ;
    if (rte_lpm_rcu_qsbr_add(l, &rc) != 0) {
        rte_lpm_free(l);
        *err = fmt::format("IPv4 FIB for VRF {}: RCU attach failed", vrf);
        return nullptr;
    }
    g->vrfs[vrf].v4.store(l, std::memory_order_release);
    return l;
}

bool get_v6(int vrf, std::string* err) {
    VrfTables& t = g->vrfs[vrf];
    if (t.v6[0]) return true;
    for (int i = 0; i < 2; i++) {
        rte_fib6_conf c{};
        c.type = RTE_FIB6_TRIE;
        c.default_nh = kNhNoRoute;
        c.max_routes = g->spec.ipv6_routes;
        c.trie.nh_sz = RTE_FIB6_TRIE_4B;
        c.trie.num_tbl8 = uint32_t(g->spec.ipv6_tbl8);
        t.v6[i] = rte_fib6_create(fmt::format("nb_v6_{}_{}", vrf, i).c_str(), int(rte_socket_id()), &c);
        if (!t.v6[i]) {
            *err = fmt::format("IPv6 FIB for VRF {}: {}", vrf, rte_strerror(rte_errno));
            if (i == 1) {
                rte_fib6_free(t.v6[0]);
                t.v6[0] = nullptr;
            }
            return false;
        }
    }
    t.v6_active.store(t.v6[0], std::memory_order_release);
    return true;
}

// What a route was before an op, to undo a half-applied batch.
struct Prior {
    bool present = false;
    uint64_t nh = 0;
};

Prior v6_prior(rte_fib6* f, const Prefix& p) {
    Prior pr;
    rte_rib6_node* n = rte_rib6_lookup_exact(rte_fib6_get_rib(f), p.addr.b.data(), p.len);
    if (n) {
        pr.present = true;
        rte_rib6_get_nh(n, &pr.nh);
    }
    return pr;
}

int v6_do(rte_fib6* f, const FibOp& op) {
    return op.add ? rte_fib6_add(f, op.prefix.addr.b.data(), op.prefix.len, op.nh)
                  : rte_fib6_delete(f, op.prefix.addr.b.data(), op.prefix.len);
}

void v6_undo(rte_fib6* f, const Prefix& p, const Prior& pr) {
    if (pr.present) rte_fib6_add(f, p.addr.b.data(), p.len, pr.nh);
    else rte_fib6_delete(f, p.addr.b.data(), p.len);
}

}  // namespace

bool fib_init(std::string* err) {
    fs = new FibState();
    g->nh_cap = kNhCapacity;
    g->nh = static_cast<std::atomic<Nh*>*>(
        rte_zmalloc("nimbus_nh_tbl", sizeof(std::atomic<Nh*>) * kNhCapacity, RTE_CACHE_LINE_SIZE));
    if (!g->nh) {
        *err = "next-hop table allocation failed";
        return false;
    }
    for (NhType t : {NhType::NoRoute, NhType::Local, NhType::Drop}) {
        Nh* n = make_nh(t);
        if (!n) {
            *err = "next-hop allocation failed";
            return false;
        }
        g->nh[uint32_t(t)].store(n);
    }
    return true;
}

void fib_fini() {
    if (!g || !fs) return;
    for (int v = 0; v < kMaxVrfs; v++) {
        if (auto* l = g->vrfs[v].v4.load()) rte_lpm_free(l);
        for (auto*& f : g->vrfs[v].v6)
            if (f) rte_fib6_free(f);
    }
    if (g->nh)
        for (uint32_t i = 0; i < fs->next_id; i++)
            if (Nh* n = g->nh[i].load()) rte_free(n);
    for (Nh* n : fs->retired) rte_free(n);
    rte_free(g->nh);
    g->nh = nullptr;
    delete fs;
    fs = nullptr;
}

size_t nh_capacity() { return g ? g->nh_cap : 0; }

NhId nh_alloc() {
    if (!fs->free_ids.empty()) {
        NhId id = fs->free_ids.back();
        fs->free_ids.pop_back();
        return id;
    }
    if (fs->next_id >= g->nh_cap) return 0;
    return fs->next_id++;
}

void nh_set(NhId id, const NhSpec& s) {
    if (id < kNhFirstDynamic || id >= g->nh_cap) return;
    Nh* n = make_nh(s.type);
    if (!n) return;  // keep the old one: better stale than gone
    n->resolved = s.resolved;
    if (s.port >= 0 && s.port < g->nports) {
        PortState& p = g->ports[s.port];
        n->port = uint16_t(s.port);
        n->mtu = uint16_t(p.spec.mtu);
        n->src = p.mac;
    }
    std::memcpy(n->dst.addr_bytes, s.dst_mac.b.data(), 6);
    n->gateway = s.gateway;
    n->tunnel = s.tunnel;
    retire(g->nh[id].exchange(n, std::memory_order_acq_rel));
}

void nh_free(NhId id) {
    if (id < kNhFirstDynamic || id >= g->nh_cap) return;
    // A worker may still hold this id from a lookup made before the route
    // went: the id is reused only after a grace period.
    fs->retired_ids.push_back(id);
    retire(g->nh[id].exchange(nullptr, std::memory_order_acq_rel));
}

bool fib_apply(const std::vector<FibOp>& ops, std::string* err) {
    if (!g) return false;
    // IPv4: in place, one op at a time; remember priors to undo on failure.
    std::vector<std::pair<const FibOp*, Prior>> done4;
    auto undo4 = [&]() {
        for (auto it = done4.rbegin(); it != done4.rend(); ++it) {
            rte_lpm* l = vrf_v4(it->first->vrf);
            uint32_t ip = it->first->prefix.addr.v4_host();
            if (it->second.present) rte_lpm_add(l, ip, it->first->prefix.len, uint32_t(it->second.nh));
            else rte_lpm_delete(l, ip, it->first->prefix.len);
        }
    };
    std::vector<const FibOp*> ops6;
    for (auto& op : ops) {
        if (op.vrf < 0 || op.vrf >= kMaxVrfs || op.nh >= g->nh_cap) {
            *err = "bad VRF or next hop in a FIB operation";
            undo4();
            return false;
        }
        if (!op.prefix.is_v4()) {
            ops6.push_back(&op);
            continue;
        }
        rte_lpm* l = get_v4(op.vrf, err);
        if (!l) {
            undo4();
            return false;
        }
        uint32_t ip = op.prefix.addr.v4_host();
        Prior pr;
        uint32_t old = 0;
        pr.present = rte_lpm_is_rule_present(l, ip, op.prefix.len, &old) == 1;
        pr.nh = old;
        int r = op.add ? rte_lpm_add(l, ip, op.prefix.len, op.nh) : rte_lpm_delete(l, ip, op.prefix.len);
        if (r != 0 && !(r == -EINVAL && !op.add && !pr.present)) {
            *err = fmt::format("{} {} in VRF {}: {}", op.add ? "adding" : "deleting", op.prefix.str(), op.vrf,
                               r == -ENOSPC ? "IPv4 FIB full (raise dataplane.ipv4_tbl8)" : strerror(-r));
            undo4();
            return false;
        }
        done4.emplace_back(&op, pr);
    }
    if (!ops6.empty()) {
        // Tables first, so a failure leaves nothing half-done.
        for (auto* op : ops6)
            if (!get_v6(op->vrf, err)) {
                undo4();
                return false;
            }
        // Pass 1: into the copies the workers are not reading.
        std::vector<std::pair<const FibOp*, Prior>> done6;
        for (auto* op : ops6) {
            VrfTables& t = g->vrfs[op->vrf];
            rte_fib6* idle = t.v6_active.load() == t.v6[0] ? t.v6[1] : t.v6[0];
            Prior pr = v6_prior(idle, op->prefix);
            int r = v6_do(idle, *op);
            if (r != 0 && !(!op->add && !pr.present)) {
                *err = fmt::format("{} {} in VRF {}: {}", op->add ? "adding" : "deleting", op->prefix.str(),
                                   op->vrf,
                                   r == -ENOSPC ? "IPv6 FIB full (raise dataplane.ipv6_tbl8 / ipv6_routes)"
                                                : strerror(-r));
                for (auto it = done6.rbegin(); it != done6.rend(); ++it) {
                    VrfTables& tt = g->vrfs[it->first->vrf];
                    rte_fib6* ii = tt.v6_active.load() == tt.v6[0] ? tt.v6[1] : tt.v6[0];
                    v6_undo(ii, it->first->prefix, it->second);
                }
                undo4();
                return false;
            }
            done6.emplace_back(op, pr);
        }
        // Swap every touched VRF, wait out readers of the old copies, then
        // bring the old copies level.
        std::vector<int> touched;
        for (auto* op : ops6)
            if (std::find(touched.begin(), touched.end(), op->vrf) == touched.end()) touched.push_back(op->vrf);
        for (int v : touched) {
            VrfTables& t = g->vrfs[v];
            t.v6_active.store(t.v6_active.load() == t.v6[0] ? t.v6[1] : t.v6[0], std::memory_order_release);
        }
        synchronize();
        for (auto* op : ops6) {
            VrfTables& t = g->vrfs[op->vrf];
            rte_fib6* idle = t.v6_active.load() == t.v6[0] ? t.v6[1] : t.v6[0];
            int r = v6_do(idle, *op);
            if (r != 0 && op->add)
                rte_panic("IPv6 FIB copies diverged applying %s: %d\n", op->prefix.str().c_str(), r);
        }
    }
    reclaim();
    return true;
}

NhId fib_lookup(int vrf, const IpAddr& dst) {
    if (!g || vrf < 0 || vrf >= kMaxVrfs) return kNhNoRoute;
    if (dst.is_v4()) {
        rte_lpm* l = vrf_v4(vrf);
        uint32_t nh;
        if (!l || rte_lpm_lookup(l, dst.v4_host(), &nh) != 0) return kNhNoRoute;
        return nh;
    }
    rte_fib6* f = g->vrfs[vrf].v6_active.load(std::memory_order_acquire);
    if (!f) return kNhNoRoute;
    uint8_t ip[1][RTE_FIB6_IPV6_ADDR_SIZE];
    std::memcpy(ip[0], dst.b.data(), 16);
    uint64_t nh = kNhNoRoute;
    rte_fib6_lookup_bulk(f, ip, &nh, 1);
    return NhId(nh);
}

void maintenance() {
    if (g && fs) reclaim();
}

std::string dpdk_version() { return rte_version(); }

void synchronize() {
    if (g && g->qsbr && g->started) rte_rcu_qsbr_synchronize(g->qsbr, RTE_QSBR_THRID_INVALID);
}

}  // namespace nimbus::dp
