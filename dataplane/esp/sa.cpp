// ESP tunnel and SA tables, control-thread side: crypto engines and their
// self-test, install / update / remove with RCU publication, SPI slots,
// lifetime events, and the read-only views for `show`.
#include "dataplane/esp/sa.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "src/common/bytes.h"

namespace nimbus::dp {

namespace {

const char* const kSaCounterNames[] = {
#define NIMBUS_X(n, d) #n,
    NIMBUS_SA_COUNTERS(NIMBUS_X)
#undef NIMBUS_X
};

crypto::Aead aead_of(Cipher c) {
    switch (c) {
        case Cipher::AesGcm128: return crypto::Aead::AesGcm128;
        case Cipher::AesGcm256: return crypto::Aead::AesGcm256;
        case Cipher::Chacha20Poly1305: return crypto::Aead::Chacha20Poly1305;
    }
    return crypto::Aead::AesGcm256;
}

}  // namespace

const char* cipher_name(Cipher c) {
    switch (c) {
        case Cipher::AesGcm128: return "aes128gcm16";
        case Cipher::AesGcm256: return "aes256gcm16";
        case Cipher::Chacha20Poly1305: return "chacha20poly1305";
    }
    return "?";
}
size_t cipher_keymat_len(Cipher c) { return crypto::keymat_len(aead_of(c)); }
const char* sa_counter_name(int i) { return i >= 0 && i < kSaCounterCount ? kSaCounterNames[i] : "?"; }

namespace esp {

// Defined in esp_out.cpp: the per-SA and per-path functions.
OutPrepFn choose_prep(bool esn, bool udp);
OuterFn choose_outer(bool v6, bool udp);

namespace {

template <class T>
T* zalloc(const char* what) {
    void* p = rte_zmalloc(what, sizeof(T), 64);
    return p ? new (p) T() : nullptr;
}
template <class T>
void zfree(T* p) {
    if (!p) return;
    p->~T();
    rte_free(p);
}

EspState* st() { return g->esp; }

// Bytes an ESP tunnel adds in front of and behind the inner packet, apart
// from padding: outer IP (+UDP), SPI + sequence, IV, ICV.
int outer_hdr_len(bool v6, bool udp) { return (v6 ? 40 : 20) + (udp ? 8 : 0); }

// The largest inner packet whose ESP packet fits `mtu`: the payload (inner,
// padding, pad length, next header) ends on a 4-byte boundary (RFC 4303 §2.4).
int inner_mtu(int mtu, bool v6, bool udp) {
    int room = mtu - outer_hdr_len(v6, udp) - kEspHdr - kEspIv - kIcv;
    return (room & ~3) - 2;
}

int min_port_mtu(int vrf) {
    int m = 0;
    for (int i = 0; i < g->nports; i++)
        if (g->ports[i].spec.vrf == vrf && (m == 0 || g->ports[i].spec.mtu < m)) m = g->ports[i].spec.mtu;
    return m ? m : 1500;
}

// Above this many tunnels (about 4 KiB of tables each, so some MiB: more
// than the L2 holds) the workers prefetch bursts level by level (dp.h).
constexpr uint32_t kGroupPrefetchTunnels = 256;

void update_prefetch_hint(const EspState* s) {
    uint32_t live = uint32_t(s->next_id - s->free_ids.size());
    g->group_prefetch.store(live > kGroupPrefetchTunnels, std::memory_order_relaxed);
}

void free_tunnel_objects(Tunnel* t, bool with_sas) {
    if (!t) return;
    if (with_sas) zfree(t->out);
    zfree(t);
}

}  // namespace

bool init(std::string* err) {
    auto* s = new EspState();
    g->esp = s;
    s->in = static_cast<std::atomic<SaIn*>*>(
        rte_zmalloc("nimbus_sa_in", sizeof(std::atomic<SaIn*>) * (size_t(kSpiSlotMask) + 1), 64));
    s->tunnels = static_cast<std::atomic<Tunnel*>*>(
        rte_zmalloc("nimbus_tunnels", sizeof(std::atomic<Tunnel*>) * kMaxTunnels, 64));
    s->events = rte_ring_create("nb_sa_events", 4096, int(rte_socket_id()), RING_F_SC_DEQ);
    if (!s->in || !s->tunnels || !s->events) {
        *err = "ESP table allocation failed";
        return false;
    }
    s->names.resize(kMaxTunnels);
    s->all_out.assign(kMaxTunnels, nullptr);
    s->spi_gen.assign(size_t(kSpiSlotMask) + 1, 1);
    s->tunnel_gen.assign(kMaxTunnels, 0);

    // One IPsec-MB manager per worker, all on the same arch path, and one for
    // the control thread to expand keys with. Each passes the known answers
    // on the path it actually selected, or nothing starts.
    if (const char* c = std::getenv("NIMBUS_TEST_CORRUPT_SELF_TEST")) crypto::corrupt_self_test_vector_for_test(std::atoi(c));
    crypto::Arch arch = crypto::Arch::Auto;
    for (int w = 0; w <= g->nworkers; w++) {
        auto* e = new crypto::Engine();
        std::string e2;
        if (!e->init(arch, &e2)) {
            delete e;
            *err = "crypto engine: " + e2;
            return false;
        }
        arch = e->arch();
        if (w < g->nworkers) g->workers[w].engine = e;
        else s->ctl = e;
        if (!crypto::self_test(*e, &e2)) {
            *err = e2 + "; refusing to start";
            return false;
        }
        if (w < g->nworkers) {
            g->workers[w].esp = new Batch();
            g->workers[w].handoff = rte_ring_create(fmt::format("nb_handoff_{}", w).c_str(),
                                                    unsigned(rte_align32pow2(uint32_t(g->spec.handoff_ring))),
                                                    int(rte_socket_id()), RING_F_SC_DEQ);
            if (!g->workers[w].handoff) {
                *err = "handoff ring allocation failed";
                return false;
            }
            if (!frag_init(g->workers[w], err)) return false;
        }
    }
    return true;
}

void fini() {
    EspState* s = g ? g->esp : nullptr;
    if (!s) return;
    if (s->tunnels)
        for (TunnelId i = 0; i < s->next_id; i++) {
            Tunnel* t = s->tunnels[i].load();
            if (!t) continue;
            for (int k = 0; k < t->nin; k++) {
                SaIn* sa = s->in[t->in_spi[k] & kSpiSlotMask].load();
                zfree(sa);
            }
            zfree(t->ctr);
            free_tunnel_objects(t, true);
        }
    for (int w = 0; w < g->nworkers && g->workers; w++) {
        frag_fini(g->workers[w]);
        delete g->workers[w].engine;
        g->workers[w].engine = nullptr;
        delete g->workers[w].esp;
        g->workers[w].esp = nullptr;
        if (rte_ring* r = g->workers[w].handoff) {
            void* m;
            while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            rte_ring_free(r);
            g->workers[w].handoff = nullptr;
        }
    }
    delete s->ctl;
    rte_free(s->in);
    rte_free(s->tunnels);
    rte_ring_free(s->events);
    delete s;
    g->esp = nullptr;
}

void raise_event(uint32_t spi, TunnelId tunnel, bool inbound, SaEventKind k) {
    // One pointer-sized ring entry: tunnel (bits 40..63), SPI, direction, kind.
    static_assert(kMaxTunnels <= (1u << 24) && sizeof(uintptr_t) == 8);
    uintptr_t v = uintptr_t(tunnel) << 40 | uintptr_t(spi) << 8 | uintptr_t(inbound ? 0x10 : 0) | uintptr_t(k);
    // A full ring loses the event; the SA state (rt.soft_sent / rt.hard) stays
    // visible in `show ipsec sa`.
    rte_ring_mp_enqueue(g->esp->events, reinterpret_cast<void*>(v));
}

}  // namespace esp

using namespace esp;

bool spi_slot_free(uint32_t spi) {
    return g && g->esp && g->esp->in[spi & kSpiSlotMask].load(std::memory_order_relaxed) == nullptr;
}

uint32_t spi_alloc() {
    if (!g || !g->esp) return 0;
    EspState* s = st();
    static uint32_t cursor = 1;
    for (uint32_t k = 0; k <= kSpiSlotMask; k++) {
        uint32_t slot = (cursor + k) & kSpiSlotMask;
        if (s->in[slot].load(std::memory_order_relaxed)) continue;
        uint16_t gen = s->spi_gen[slot];
        s->spi_gen[slot] = uint16_t(uint32_t(gen) + 1 >= (1u << (32 - kSpiSlotBits)) ? 1 : gen + 1);
        cursor = slot + 1;
        return uint32_t(gen) << kSpiSlotBits | slot;
    }
    return 0;
}

namespace {

bool build_paths(const std::vector<PathSpec>& ps, bool udp, Tunnel* t, std::string* err) {
    if (ps.empty() || ps.size() > size_t(kMaxPaths)) {
        *err = fmt::format("a tunnel has 1..{} paths", kMaxPaths);
        return false;
    }
    t->npaths = uint8_t(ps.size());
    for (size_t i = 0; i < ps.size(); i++) {
        const PathSpec& s = ps[i];
        if (s.local.family != s.remote.family) {
            *err = fmt::format("path {}: local {} and remote {} differ in family", i, s.local.str(), s.remote.str());
            return false;
        }
        Path& p = t->paths[i];
        p.local = s.local;
        p.remote = s.remote;
        p.sport = s.local_port;
        p.dport = s.remote_port;
        p.v6 = s.local.is_v6();
        p.up = s.up;
        p.hdr_len = uint16_t(outer_hdr_len(p.v6, udp));
        p.outer = choose_outer(p.v6, udp);
    }
    return true;
}

int tunnel_inner_mtu(const Tunnel* t, int configured) {
    int m = 0;
    for (int i = 0; i < t->npaths; i++) {
        int pm = inner_mtu(min_port_mtu(t->underlay_vrf), t->paths[i].v6, t->udp);
        if (m == 0 || pm < m) m = pm;
    }
    if (configured > 0 && configured < m) m = configured;
    return m;
}

}  // namespace

TunnelId tunnel_install(const TunnelSpec& spec, std::string* err) {
    if (!g || !g->esp) {
        *err = "dataplane not initialised";
        return kNoTunnel;
    }
    EspState* s = st();
    if (spec.vrf < 0 || spec.vrf >= kMaxVrfs || spec.underlay_vrf < 0 || spec.underlay_vrf >= kMaxVrfs) {
        *err = "VRF out of range";
        return kNoTunnel;
    }
    if (spec.in.empty() || spec.in.size() > size_t(kMaxInSas)) {
        *err = fmt::format("a tunnel has 1..{} inbound SAs", kMaxInSas);
        return kNoTunnel;
    }
    for (size_t i = 0; i < spec.in.size(); i++) {
        uint32_t spi = spec.in[i].spi;
        if (spi < 256) {
            *err = fmt::format("SPI {:#x}: SPIs 0..255 are reserved (RFC 4303 §2.1)", spi);
            return kNoTunnel;
        }
        if (!spi_slot_free(spi)) {
            SaIn* o = s->in[spi & kSpiSlotMask].load();
            *err = fmt::format("inbound SPI {:#010x} collides with SPI {:#010x} of tunnel '{}' (same slot: SPIs "
                               "must differ in their low {} bits)",
                               spi, o->spi, s->names[o->tunnel], kSpiSlotBits);
            return kNoTunnel;
        }
        for (size_t j = 0; j < i; j++)
            if ((spec.in[j].spi & kSpiSlotMask) == (spi & kSpiSlotMask)) {
                *err = fmt::format("inbound SPIs {:#010x} and {:#010x} share a slot (low {} bits)", spec.in[j].spi,
                                   spi, kSpiSlotBits);
                return kNoTunnel;
            }
    }
    if (spec.out.spi < 256) {
        *err = fmt::format("outbound SPI {:#x}: SPIs 0..255 are reserved (RFC 4303 §2.1)", spec.out.spi);
        return kNoTunnel;
    }
    TunnelId id;
    if (!s->free_ids.empty()) {
        id = s->free_ids.back();
        s->free_ids.pop_back();
    } else if (s->next_id < kMaxTunnels) {
        id = s->next_id++;
    } else {
        *err = fmt::format("tunnel table full ({} tunnels)", kMaxTunnels);
        return kNoTunnel;
    }
    update_prefetch_hint(s);
    uint16_t worker = uint16_t(id % uint32_t(g->nworkers));

    Tunnel* t = zalloc<Tunnel>("nimbus_tunnel");
    SaOut* out = zalloc<SaOut>("nimbus_sa_out");
    TunnelCtr* ctr = zalloc<TunnelCtr>("nimbus_tunnel_ctr");
    std::vector<SaIn*> ins;
    auto fail = [&](const std::string& m) {
        *err = m;
        zfree(t);
        zfree(out);
        zfree(ctr);
        for (auto* x : ins) zfree(x);
        s->free_ids.push_back(id);
        return kNoTunnel;
    };
    if (!t || !out || !ctr) return fail("out of memory for the tunnel's SAs (raise the EAL memory)");

    t->id = id;
    if (++s->tunnel_gen[id] == kGenUnresolved) ++s->tunnel_gen[id];  // 0 means "not resolved yet"
    t->gen = s->tunnel_gen[id];
    t->worker = worker;
    t->vrf = uint16_t(spec.vrf);
    t->underlay_vrf = uint16_t(spec.underlay_vrf);
    t->udp = spec.udp;
    t->mss_clamp = spec.mss_clamp;
    t->critical = spec.critical_dscp;
    t->ctr = ctr;
    if (!build_paths(spec.paths, spec.udp, t, err)) return fail(*err);
    t->mtu = uint16_t(tunnel_inner_mtu(t, spec.mtu));
    if (t->mtu < 576) return fail(fmt::format("inner MTU {} too small", t->mtu));

    std::string e;
    out->spi = spec.out.spi;
    out->tunnel = id;
    out->worker = worker;
    out->cipher = spec.out.cipher;
    out->esn = spec.out.esn;
    out->seq_max = spec.out.esn ? UINT64_MAX : UINT32_MAX;
    out->life = spec.out.lifetime;
    out->prep = choose_prep(spec.out.esn, spec.udp);
    if (!s->ctl->expand_key(out->key, aead_of(spec.out.cipher), spec.out.keymat, &e))
        return fail(fmt::format("outbound SA {:#010x}: {}", spec.out.spi, e));
    t->out = out;

    for (auto& is : spec.in) {
        SaIn* sa = zalloc<SaIn>("nimbus_sa_in");
        if (!sa) return fail("out of memory for the tunnel's SAs (raise the EAL memory)");
        ins.push_back(sa);
        sa->spi = is.spi;
        sa->tunnel = id;
        sa->worker = worker;
        sa->underlay_vrf = uint16_t(spec.underlay_vrf);
        sa->cipher = is.cipher;
        sa->esn = is.esn;
        sa->life = is.lifetime;
        sa->win.reset(is.replay_window, is.esn);
        if (!s->ctl->expand_key(sa->key, aead_of(is.cipher), is.keymat, &e))
            return fail(fmt::format("inbound SA {:#010x}: {}", is.spi, e));
        t->in_spi[t->nin++] = is.spi;
    }
    // Publish: inbound SAs first (their tunnel must exist before packets use
    // them, so the tunnel too before any SA is reachable ... both are checked
    // for null on the fast path), then the tunnel.
    s->names[id] = spec.name;
    s->all_out[id] = out;
    s->tunnels[id].store(t, std::memory_order_release);
    for (auto* sa : ins) s->in[sa->spi & kSpiSlotMask].store(sa, std::memory_order_release);
    return id;
}

void tunnel_remove(TunnelId id) {
    if (!g || !g->esp || id >= kMaxTunnels) return;
    EspState* s = st();
    Tunnel* t = s->tunnels[id].load();
    if (!t) return;
    std::vector<SaIn*> ins;
    for (int k = 0; k < t->nin; k++) {
        auto& slot = s->in[t->in_spi[k] & kSpiSlotMask];
        ins.push_back(slot.exchange(nullptr));
    }
    s->tunnels[id].store(nullptr, std::memory_order_release);
    synchronize();
    for (auto* sa : ins) zfree(sa);
    zfree(t->ctr);
    free_tunnel_objects(t, true);
    s->names[id].clear();
    s->all_out[id] = nullptr;
    s->free_ids.push_back(id);
    update_prefetch_hint(s);
}

bool tunnel_update_paths(TunnelId id, const std::vector<PathSpec>& paths, std::string* err) {
    if (!g || !g->esp || id >= kMaxTunnels) return false;
    EspState* s = st();
    Tunnel* old = s->tunnels[id].load();
    if (!old) {
        *err = "no such tunnel";
        return false;
    }
    Tunnel* t = zalloc<Tunnel>("nimbus_tunnel");
    if (!t) {
        *err = "out of memory";
        return false;
    }
    *t = *old;
    if (!build_paths(paths, old->udp, t, err)) {
        zfree(t);
        return false;
    }
    s->tunnels[id].store(t, std::memory_order_release);
    synchronize();
    free_tunnel_objects(old, false);  // SAs and counters carry over
    return true;
}

namespace {

// A new inbound SA object for tunnel t (not yet published).
SaIn* make_in_sa(const Tunnel* t, const SaSpec& is, std::string* err) {
    SaIn* sa = zalloc<SaIn>("nimbus_sa_in");
    if (!sa) {
        *err = "out of memory for the SA (raise the EAL memory)";
        return nullptr;
    }
    sa->spi = is.spi;
    sa->tunnel = t->id;
    sa->worker = t->worker;
    sa->underlay_vrf = t->underlay_vrf;
    sa->cipher = is.cipher;
    sa->esn = is.esn;
    sa->life = is.lifetime;
    sa->win.reset(is.replay_window, is.esn);
    std::string e;
    if (!st()->ctl->expand_key(sa->key, aead_of(is.cipher), is.keymat, &e)) {
        *err = fmt::format("inbound SA {:#010x}: {}", is.spi, e);
        zfree(sa);
        return nullptr;
    }
    return sa;
}

}  // namespace

bool tunnel_add_in_sa(TunnelId id, const SaSpec& is, std::string* err) {
    if (!g || !g->esp || id >= kMaxTunnels) return false;
    EspState* s = st();
    Tunnel* old = s->tunnels[id].load();
    if (!old) {
        *err = "no such tunnel";
        return false;
    }
    if (old->nin >= kMaxInSas) {
        *err = fmt::format("tunnel already has {} inbound SAs", kMaxInSas);
        return false;
    }
    if (is.spi < 256 || !spi_slot_free(is.spi)) {
        *err = fmt::format("inbound SPI {:#010x} is reserved or its slot is in use", is.spi);
        return false;
    }
    SaIn* sa = make_in_sa(old, is, err);
    if (!sa) return false;
    Tunnel* t = zalloc<Tunnel>("nimbus_tunnel");
    if (!t) {
        zfree(sa);
        *err = "out of memory";
        return false;
    }
    *t = *old;
    t->in_spi[t->nin++] = is.spi;
    // The SA names a tunnel that exists: publish it, then the new tunnel view.
    s->in[is.spi & kSpiSlotMask].store(sa, std::memory_order_release);
    s->tunnels[id].store(t, std::memory_order_release);
    synchronize();
    free_tunnel_objects(old, false);
    return true;
}

bool tunnel_set_out_sa(TunnelId id, const SaSpec& os, std::string* err) {
    if (!g || !g->esp || id >= kMaxTunnels) return false;
    EspState* s = st();
    Tunnel* old = s->tunnels[id].load();
    if (!old) {
        *err = "no such tunnel";
        return false;
    }
    if (os.spi < 256) {
        *err = fmt::format("outbound SPI {:#x}: SPIs 0..255 are reserved (RFC 4303 §2.1)", os.spi);
        return false;
    }
    SaOut* out = zalloc<SaOut>("nimbus_sa_out");
    Tunnel* t = zalloc<Tunnel>("nimbus_tunnel");
    if (!out || !t) {
        zfree(out);
        zfree(t);
        *err = "out of memory";
        return false;
    }
    out->spi = os.spi;
    out->tunnel = id;
    out->worker = old->worker;
    out->cipher = os.cipher;
    out->esn = os.esn;
    out->seq_max = os.esn ? UINT64_MAX : UINT32_MAX;
    out->life = os.lifetime;
    out->prep = choose_prep(os.esn, old->udp);
    std::string e;
    if (!s->ctl->expand_key(out->key, aead_of(os.cipher), os.keymat, &e)) {
        zfree(out);
        zfree(t);
        *err = fmt::format("outbound SA {:#010x}: {}", os.spi, e);
        return false;
    }
    *t = *old;
    t->out = out;
    SaOut* gone = old->out;
    s->tunnels[id].store(t, std::memory_order_release);
    s->all_out[id] = out;
    synchronize();
    free_tunnel_objects(old, false);
    zfree(gone);
    return true;
}

bool tunnel_remove_in_sa(TunnelId id, uint32_t spi, std::string* err) {
    if (!g || !g->esp || id >= kMaxTunnels) return false;
    EspState* s = st();
    Tunnel* old = s->tunnels[id].load();
    if (!old) {
        *err = "no such tunnel";
        return false;
    }
    int k = -1;
    for (int i = 0; i < old->nin; i++)
        if (old->in_spi[i] == spi) k = i;
    if (k < 0) {
        *err = fmt::format("tunnel has no inbound SA {:#010x}", spi);
        return false;
    }
    if (old->nin == 1) {
        *err = "a tunnel keeps one inbound SA: remove the tunnel instead";
        return false;
    }
    Tunnel* t = zalloc<Tunnel>("nimbus_tunnel");
    if (!t) {
        *err = "out of memory";
        return false;
    }
    *t = *old;
    for (int i = k; i + 1 < t->nin; i++) t->in_spi[i] = t->in_spi[i + 1];
    t->nin--;
    SaIn* sa = s->in[spi & kSpiSlotMask].exchange(nullptr);
    s->tunnels[id].store(t, std::memory_order_release);
    synchronize();
    free_tunnel_objects(old, false);
    zfree(sa);
    return true;
}

int tunnel_mtu(TunnelId id) {
    Tunnel* t = g && g->esp ? tunnel_get(id) : nullptr;
    return t ? t->mtu : 0;
}

std::vector<TunnelId> tunnel_ids() {
    std::vector<TunnelId> v;
    if (!g || !g->esp) return v;
    for (TunnelId i = 0; i < st()->next_id; i++)
        if (st()->tunnels[i].load()) v.push_back(i);
    return v;
}

bool tunnel_info(TunnelId id, TunnelInfo* o) {
    Tunnel* t = g && g->esp ? tunnel_get(id) : nullptr;
    if (!t) return false;
    const TunnelCtr& c = *t->ctr;
    o->id = id;
    o->name = st()->names[id];
    o->vrf = t->vrf;
    o->underlay_vrf = t->underlay_vrf;
    o->worker = t->worker;
    o->mtu = t->mtu;
    o->udp = t->udp;
    o->mss_clamp = t->mss_clamp;
    o->critical_dscp = t->critical;
    o->out_spi = t->out ? t->out->spi : 0;
    o->in_spis.assign(t->in_spi, t->in_spi + t->nin);
    o->paths.clear();
    for (int i = 0; i < t->npaths; i++) {
        const Path& p = t->paths[i];
        PathInfo pi;
        pi.spec = PathSpec{p.local, p.remote, p.sport, p.dport, p.up};
        pi.rx = c.path_rx[i];
        pi.first = c.path_first[i];
        pi.tx = c.path_tx[i];
        o->paths.push_back(pi);
    }
    o->rx_packets = c.rx_packets;
    o->rx_bytes = c.rx_bytes;
    o->tx_packets = c.tx_packets;
    o->tx_bytes = c.tx_bytes;
    o->rx_other_path = c.rx_other_path;
    o->critical_copies = c.critical_copies;
    return true;
}

namespace {

void sa_common(uint32_t spi, bool inbound, const SaRuntime& rt, SaInfo* o) {
    o->spi = spi;
    o->inbound = inbound;
    o->soft_expired = rt.soft_sent != 0;
    o->hard_expired = rt.hard != 0;
    for (int k = 0; k < kSaCounterCount; k++) o->counters[k] = rt.ctr[k];
}

}  // namespace

bool sa_in_info(uint32_t spi, SaInfo* o) {
    SaIn* sa = g && g->esp ? sa_in_get(spi) : nullptr;
    if (!sa) return false;
    o->tunnel = sa->tunnel;
    o->cipher = sa->cipher;
    o->esn = sa->esn;
    o->worker = sa->worker;
    o->window_top = sa->win.top();
    o->window_size = sa->win.size();
    o->lifetime = sa->life;
    sa_common(spi, true, sa->rt, o);
    return true;
}

bool sa_out_info(TunnelId tunnel, SaInfo* o) {
    if (!g || !g->esp || tunnel >= st()->next_id) return false;
    const SaOut* sa = st()->all_out[tunnel];
    if (!sa) return false;
    o->tunnel = sa->tunnel;
    o->cipher = sa->cipher;
    o->esn = sa->esn;
    o->worker = sa->worker;
    o->seq = sa->rt.seq;
    o->lifetime = sa->life;
    sa_common(sa->spi, false, sa->rt, o);
    return true;
}

int sa_event_poll(SaEvent* out, int max) {
    if (!g || !g->esp) return 0;
    int n = 0;
    void* v;
    while (n < max && rte_ring_sc_dequeue(st()->events, &v) == 0) {
        uintptr_t x = reinterpret_cast<uintptr_t>(v);
        out[n].tunnel = TunnelId(x >> 40);
        out[n].spi = uint32_t(x >> 8);
        out[n].inbound = (x & 0x10) != 0;
        out[n].kind = SaEventKind(x & 0x0f);
        n++;
    }
    return n;
}

std::string crypto_describe() {
    return g && g->esp && g->esp->ctl ? g->esp->ctl->describe() : "uninitialised";
}

bool set_seq_for_test(uint32_t out_spi, uint64_t seq) {
    if (!g || !g->esp) return false;
    for (TunnelId i = 0; i < st()->next_id; i++)
        if (SaOut* sa = st()->all_out[i]; sa && sa->spi == out_spi) {
            sa->rt.seq = seq;
            return true;
        }
    return false;
}

}  // namespace nimbus::dp
