// CREATE_CHILD_SA (RFC 7296 §1.3): child SA rekey with optional PFS
// (§1.3.3, §2.17), IKE SA rekey (§1.3.2, §2.18), additional child SAs, and
// simultaneous rekeys (§2.8.1 for children, §2.8.2 for the IKE SA): the SA
// created by the exchange that holds the lowest of the four nonces is
// redundant; its creator deletes it, and the initiator of the surviving
// exchange deletes the old SA.
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "control/ike/engine.h"
#include "control/ike/proposal.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

constexpr size_t kNonceLen = 32;
constexpr uint64_t kNs = 1'000'000'000ull;
constexpr uint64_t kRekeyRetryNs = 10 * kNs;       // after TEMPORARY_FAILURE and similar
constexpr uint64_t kOldIkeSaWaitNs = 30 * kNs;     // a replaced IKE SA waits this long for its DELETE

Bytes random_bytes(size_t n) {
    Bytes b(n);
    if (RAND_bytes(b.data(), int(n)) != 1) crypto_fatal("RAND_bytes (nonce)");
    return b;
}

Bytes spi4(uint32_t spi) { return {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)}; }
Bytes spi8(uint64_t spi) {
    Bytes b(8);
    for (int i = 0; i < 8; i++) b[size_t(i)] = uint8_t(spi >> (56 - 8 * i));
    return b;
}
uint32_t get_spi4(const Bytes& b) {
    return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
}
uint64_t get_spi8(const Bytes& b) {
    uint64_t v = 0;
    for (auto x : b) v = v << 8 | x;
    return v;
}

// Nonces compared as unsigned numbers (§2.8.1 "the lowest of the four").
bool nonce_less(const Bytes& a, const Bytes& b) {
    size_t n = std::min(a.size(), b.size());
    int c = std::memcmp(a.data(), b.data(), n);
    return c != 0 ? c < 0 : a.size() < b.size();
}

// True when the exchange we initiated (our_ni, peer_nr) holds the lowest of
// the four nonces, i.e. the SA it made is the redundant one.
bool ours_is_redundant(const Bytes& our_ni, const Bytes& peer_nr, const Bytes& peer_ni, const Bytes& our_nr) {
    const Bytes* lowest = &our_ni;
    bool ours = true;
    for (auto [n, mine] : {std::pair{&peer_nr, true}, std::pair{&peer_ni, false}, std::pair{&our_nr, false}})
        if (nonce_less(*n, *lowest)) {
            lowest = n;
            ours = mine;
        }
    return ours;
}

std::vector<Proposal> numbered(std::vector<Proposal> ps, const Bytes& spi) {
    uint8_t n = 1;
    for (auto& p : ps) {
        p.number = n++;
        p.spi = spi;
    }
    return ps;
}

Payload error_payload(uint16_t notify, uint16_t group) {
    Bytes d;
    if (notify == N_INVALID_KE_PAYLOAD) d = {uint8_t(group >> 8), uint8_t(group)};
    return make_notify(notify, d);
}

// What a new IKE SA inherits from the one it replaces (§2.18).
void inherit(IkeSa& n, const IkeSa& o, uint64_t now) {
    n.state = IkeState::Established;
    n.tunnel = o.tunnel;
    n.local = o.local;
    n.remote = o.remote;
    n.init_remote = o.init_remote;
    n.nat = o.nat;
    n.natt = o.natt;
    n.peer_frag = o.peer_frag;
    n.peer_hashes = o.peer_hashes;
    n.peer_mobike = o.peer_mobike;
    n.cloud = o.cloud;
    n.site = o.site;
    n.initiate = o.initiate;
    n.peer_id = o.peer_id;
    n.local_id = o.local_id;
    n.peer_cert_subject = o.peer_cert_subject;
    n.auth_method = o.auth_method;
    n.peer_addresses = o.peer_addresses;
    n.created_ns = now;
    n.established_ns = now;
    n.last_rx_ns = now;
    n.last_probe_ns = now;
    n.rekey_at_ns = now + uint64_t(o.cloud->rekey_ike_s) * kNs;
    n.keepalive_at_ns = o.keepalive_at_ns;
}

}  // namespace

void Engine::move_children(IkeSa& from, IkeSa& to) {
    for (auto& c : from.children) to.children.push_back(std::move(c));
    from.children.clear();
    to.tunnel = from.tunnel;
    if (Tunnel* t = tunnel_of(to)) {
        if (t->ike == from.local_spi()) t->ike = to.local_spi();
    }
    from.rekeyed_to = to.local_spi();
    schedule(to);
}

// ---- responder

void Engine::create_child_request(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    if (sa.state != IkeState::Established) {
        // A replaced or closing IKE SA takes no new children (§2.25).
        send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_TEMPORARY_FAILURE)});
        return;
    }
    auto* sap = m.get<SaPayload>(PT_SA);
    auto* nonce = m.get<NoncePayload>(PT_NONCE);
    auto* ke = m.get<KePayload>(PT_KE);
    if (!sap || !nonce || sap->proposals.empty()) {
        send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_INVALID_SYNTAX)});
        return;
    }
    uint64_t now = now_();
    if (sap->proposals[0].protocol == PROTO_IKE) {
        // ---- IKE SA rekey (§1.3.2)
        if (!ke) {
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_INVALID_SYNTAX)});
            return;
        }
        if (sa.out && sa.out->kind == TaskKind::RekeyChild) {
            // §2.25.2: not while one of our child rekeys is in flight.
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_TEMPORARY_FAILURE)});
            return;
        }
        SelectOptions opt;
        opt.ke_group = ke->group;
        Selection sel = select_proposal(sa.cloud->ike, sap->proposals, opt);
        if (!sel.ok() || sel.chosen.spi.size() != 8) {
            count(sel.outcome == Selection::InvalidKe ? Counter::invalid_ke : Counter::no_proposal);
            send_response(sa, rx, CREATE_CHILD_SA, {sel.ok() ? make_notify(N_INVALID_SYNTAX) : sel.notify()});
            return;
        }
        auto n = std::make_unique<IkeSa>();
        n->initiator = false;
        n->spi_i = get_spi8(sel.chosen.spi);
        n->spi_r = new_spi();
        n->proposal = sel.chosen;
        n->proposal.spi.clear();
        n->prf = sel.chosen.first(TT_PRF)->id;
        n->encr = sel.chosen.first(TT_ENCR)->id;
        n->key_bits = sel.chosen.first(TT_ENCR)->key_bits;
        n->dh_group = sel.chosen.first(TT_DH)->id;
        n->ni = nonce->data;
        n->nr = random_bytes(kNonceLen);
        auto dh = DhKey::generate(n->dh_group);
        auto g_ir = dh ? dh->shared_secret(ke->data) : std::nullopt;
        if (!g_ir || !derive_ike_keys(*n, *g_ir, &sa)) {
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_INVALID_SYNTAX)});
            return;
        }
        inherit(*n, sa, now);
        Proposal reply = n->proposal;
        reply.number = sel.chosen.number;
        reply.spi = spi8(n->spi_r);
        std::vector<Payload> out;
        out.push_back(make_sa(SaPayload{{reply}}));
        out.push_back(make_nonce(n->nr));
        out.push_back(make_ke(n->dh_group, Bytes(dh->public_value().begin(), dh->public_value().end())));
        IkeSa& ns = add_sa(std::move(n));
        send_response(sa, rx, CREATE_CHILD_SA, std::move(out));
        if (sa.out && sa.out->kind == TaskKind::RekeyIke) {
            // §2.8.2: both sides rekey the IKE SA; decide when our answer comes.
            sa.ike_collision = IkeSa::Collision{true, ns.ni, ns.nr, 0, ns.local_spi()};
            ns.state = IkeState::Rekeyed;  // no work on it until the collision is resolved
            ns.expire_at_ns = now + kOldIkeSaWaitNs;
            schedule(ns);
            LOG_INFO("ike", "event=ike_rekey_collision tunnel={} sa={:016x}", sa.tunnel, sa.local_spi());
            return;
        }
        move_children(sa, ns);
        sa.state = IkeState::Rekeyed;
        sa.expire_at_ns = now + kOldIkeSaWaitNs;
        if (Tunnel* t = tunnel_of(ns)) {
            t->ike_rekeys++;
            tunnel_event(*t, EventKind::RekeyIke);
        }
        count(Counter::ike_rekeys);
        LOG_INFO("ike", "event=ike_sa_rekeyed tunnel={} old={:016x} new={:016x} role=responder", ns.tunnel,
                 sa.local_spi(), ns.local_spi());
        schedule(ns);
        return;
    }

    // ---- child SA: rekey (§1.3.3) or a new one (§1.3.1)
    ChildSa* old = nullptr;
    if (auto* rk = m.notify(N_REKEY_SA)) {
        if (rk->protocol != PROTO_ESP || rk->spi.size() != 4) {
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_INVALID_SYNTAX)});
            return;
        }
        old = sa.child_by_out(get_spi4(rk->spi));
        if (!old || old->state == ChildState::Deleting) {
            send_response(sa, rx, CREATE_CHILD_SA,
                          {make_notify(N_CHILD_SA_NOT_FOUND, {}, PROTO_ESP, rk->spi)});
            return;
        }
        if (old->state == ChildState::Rekeyed) {
            // We finished rekeying it ourselves already (§2.8.1, late crossing).
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_TEMPORARY_FAILURE)});
            return;
        }
    }
    std::optional<uint16_t> group;
    if (ke) group = ke->group;
    ChildResult cr = negotiate_child(sa, sap, m.get<TsPayload>(PT_TSI), m.get<TsPayload>(PT_TSR), false, group);
    if (!cr.ok) {
        LOG_WARN("ike", "event=child_sa_refused tunnel={} peer=\"{}\" notify={} reason=\"{}\"", sa.tunnel,
                 sa.peer_id.str(), notify_name(cr.notify), cr.why);
        send_response(sa, rx, CREATE_CHILD_SA, {error_payload(cr.notify, cr.group)});
        return;
    }
    ChildSa c = cr.child;
    std::unique_ptr<DhKey> dh;
    std::optional<Secret> g_ir;
    const Transform* dht = c.proposal.first(TT_DH);
    if (dht && dht->id != DH_NONE) {
        dh = DhKey::generate(dht->id);
        if (dh) g_ir = dh->shared_secret(ke->data);
        if (!g_ir) {
            send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_INVALID_SYNTAX)});
            return;
        }
    }
    c.spi_in = new_child_spi();
    Bytes nr = random_bytes(kNonceLen);
    ChildSaSpec spec;
    key_child(sa, c, g_ir ? std::span<const uint8_t>(*g_ir) : std::span<const uint8_t>(), nonce->data, nr, false,
              &spec);
    Proposal reply = c.proposal;
    reply.spi = spi4(c.spi_in);
    std::vector<Payload> out;
    out.push_back(make_sa(SaPayload{{reply}}));
    out.push_back(make_nonce(nr));
    if (dh) out.push_back(make_ke(dh->group(), Bytes(dh->public_value().begin(), dh->public_value().end())));
    out.push_back(make_ts(true, c.ts_remote));
    out.push_back(make_ts(false, c.ts_local));
    // Installed before it is answered. A rekey: the new inbound SA now; our
    // outbound moves to it when the initiator deletes the old SA (it
    // installs its inbound SA only after reading this answer).
    uint32_t old_in = old ? old->spi_in : 0;
    bool collision = old && sa.out && sa.out->kind == TaskKind::RekeyChild && sa.out->child_spi == old_in;
    spec.outbound = !old;
    if (!install_child(sa, c, std::move(spec))) {
        // §3.10.1: we take no further child SA now; a rekeyed child goes on.
        send_response(sa, rx, CREATE_CHILD_SA, {make_notify(N_NO_ADDITIONAL_SAS)});
        return;
    }
    send_response(sa, rx, CREATE_CHILD_SA, std::move(out));
    if (!old) return;
    old = sa.child_by_in(old_in);
    if (collision) {
        sa.child_collision = IkeSa::Collision{true, nonce->data, nr, c.spi_in, 0};
        LOG_INFO("ike", "event=child_rekey_collision tunnel={} child={:08x}", sa.tunnel, old_in);
        return;
    }
    old->state = ChildState::Rekeyed;
    old->replaced_by = c.spi_in;
    if (Tunnel* t = tunnel_of(sa)) {
        t->child_rekeys++;
        tunnel_event(*t, EventKind::RekeyChild);
    }
    count(Counter::child_rekeys);
}

// ---- initiator

void Engine::start_rekey_child(IkeSa& sa, uint32_t spi) {
    ChildSa* c = sa.child_by_in(spi);
    if (!c || c->state != ChildState::Installed) return;
    auto req = std::make_unique<Request>();
    req->kind = TaskKind::RekeyChild;
    req->child_spi = spi;
    req->new_spi_in = new_child_spi();
    req->nonce = random_bytes(kNonceLen);
    req->offered = numbered(sa.cloud->esp, spi4(req->new_spi_in));
    uint16_t group = c->pfs_group;
    if (!group)
        for (auto& p : sa.cloud->esp)
            if (auto* d = p.first(TT_DH); d && d->id != DH_NONE) {
                group = d->id;
                break;
            }
    std::vector<Payload> out;
    // §1.3.3: REKEY_SA names the SA by the SPI we receive on.
    out.push_back(make_notify(N_REKEY_SA, {}, PROTO_ESP, spi4(spi)));
    out.push_back(make_sa(SaPayload{req->offered}));
    out.push_back(make_nonce(req->nonce));
    if (group) {
        req->dh = DhKey::generate(group);
        if (req->dh) out.push_back(make_ke(group, Bytes(req->dh->public_value().begin(), req->dh->public_value().end())));
    }
    req->tsi = c->ts_local;
    req->tsr = c->ts_remote;
    out.push_back(make_ts(true, req->tsi));
    out.push_back(make_ts(false, req->tsr));
    LOG_DEBUG("ike", "event=child_rekey_start tunnel={} child={:08x} pfs={}", sa.tunnel, spi, group);
    send_request(sa, std::move(req), CREATE_CHILD_SA, std::move(out));
}

void Engine::start_rekey_ike(IkeSa& sa) {
    auto req = std::make_unique<Request>();
    req->kind = TaskKind::RekeyIke;
    req->new_ike_spi = new_spi();
    req->nonce = random_bytes(kNonceLen);
    req->offered = numbered(sa.cloud->ike, spi8(req->new_ike_spi));
    req->dh = DhKey::generate(sa.dh_group ? sa.dh_group : sa.proposal.first(TT_DH)->id);
    if (!req->dh) return;
    std::vector<Payload> out;
    out.push_back(make_sa(SaPayload{req->offered}));
    out.push_back(make_nonce(req->nonce));
    out.push_back(make_ke(req->dh->group(), Bytes(req->dh->public_value().begin(), req->dh->public_value().end())));
    LOG_DEBUG("ike", "event=ike_rekey_start tunnel={} sa={:016x}", sa.tunnel, sa.local_spi());
    send_request(sa, std::move(req), CREATE_CHILD_SA, std::move(out));
}

void Engine::create_child_response(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    std::unique_ptr<Request> req = std::move(sa.out);
    uint64_t now = now_();
    auto* sap = m.get<SaPayload>(PT_SA);
    auto* nonce = m.get<NoncePayload>(PT_NONCE);
    auto* ke = m.get<KePayload>(PT_KE);
    uint16_t err = 0;
    for (auto* n : m.notifies())
        if (notify_is_error(n->type)) err = n->type;

    if (req->kind == TaskKind::RekeyIke) {
        bool collision = sa.ike_collision.active;
        if (err || !sap || !nonce || !ke || sap->proposals.size() != 1 || sap->proposals[0].spi.size() != 8) {
            LOG_WARN("ike", "event=ike_rekey_failed tunnel={} notify={}", sa.tunnel, err ? notify_name(err) : "none");
            if (err == N_INVALID_KE_PAYLOAD) {
                if (auto* n = m.notify(N_INVALID_KE_PAYLOAD); n && n->data.size() == 2) {
                    sa.dh_group = uint16_t(n->data[0] << 8 | n->data[1]);
                    count(Counter::invalid_ke);
                }
                sa.rekey_at_ns = now + 1;
            } else {
                sa.rekey_at_ns = now + kRekeyRetryNs;
            }
            if (collision) {
                // Our exchange failed: the peer's new IKE SA survives.
                IkeSa* theirs = find(sa.ike_collision.their_ike);
                sa.ike_collision = {};
                if (theirs) {
                    theirs->state = IkeState::Established;
                    theirs->expire_at_ns = 0;
                    move_children(sa, *theirs);
                    sa.state = IkeState::Rekeyed;
                    sa.expire_at_ns = now + kOldIkeSaWaitNs;
                    if (Tunnel* t = tunnel_of(*theirs)) {
                        t->ike_rekeys++;
                        tunnel_event(*t, EventKind::RekeyIke);
                    }
                    count(Counter::ike_rekeys);
                    count(Counter::rekey_collisions);
                }
            }
            return;
        }
        SelectOptions opt;
        opt.ke_group = ke->group;
        Selection sel = select_proposal(sa.cloud->ike, sap->proposals, opt);
        auto g_ir = sel.ok() ? req->dh->shared_secret(ke->data) : std::nullopt;
        if (!g_ir || ke->group != req->dh->group()) {
            LOG_WARN("ike", "event=ike_rekey_failed tunnel={} reason=\"answer outside our proposal\"", sa.tunnel);
            sa.rekey_at_ns = now + kRekeyRetryNs;
            return;
        }
        auto n = std::make_unique<IkeSa>();
        n->initiator = true;
        n->spi_i = req->new_ike_spi;
        n->spi_r = get_spi8(sap->proposals[0].spi);
        n->proposal = sel.chosen;
        n->proposal.spi.clear();
        n->prf = sel.chosen.first(TT_PRF)->id;
        n->encr = sel.chosen.first(TT_ENCR)->id;
        n->key_bits = sel.chosen.first(TT_ENCR)->key_bits;
        n->dh_group = ke->group;
        n->ni = req->nonce;
        n->nr = nonce->data;
        if (!derive_ike_keys(*n, *g_ir, &sa)) {
            sa.rekey_at_ns = now + kRekeyRetryNs;
            return;
        }
        inherit(*n, sa, now);
        IkeSa& ns = add_sa(std::move(n));
        if (collision) {
            resolve_ike_collision(sa, ns.local_spi(), ns.ni, ns.nr);
            return;
        }
        move_children(sa, ns);
        if (Tunnel* t = tunnel_of(ns)) {
            t->ike_rekeys++;
            tunnel_event(*t, EventKind::RekeyIke);
        }
        count(Counter::ike_rekeys);
        LOG_INFO("ike", "event=ike_sa_rekeyed tunnel={} old={:016x} new={:016x} role=initiator", ns.tunnel,
                 sa.local_spi(), ns.local_spi());
        // §2.18: the rekey initiator deletes the old IKE SA.
        sa.state = IkeState::Rekeyed;
        sa.expire_at_ns = now + kOldIkeSaWaitNs;
        queue(sa, Task{TaskKind::DeleteIke});
        return;
    }

    if (req->kind != TaskKind::RekeyChild) return;
    ChildSa* old = sa.child_by_in(req->child_spi);
    bool collision = sa.child_collision.active;
    auto collision_lost_ours = [&]() {
        // Our exchange failed during a collision: the peer's child stands.
        IkeSa::Collision col = sa.child_collision;
        sa.child_collision = {};
        ChildSa* theirs = sa.child_by_in(col.their_child);
        ChildSa* o = sa.child_by_in(req->child_spi);
        if (theirs && o) {
            o->state = ChildState::Rekeyed;
            o->replaced_by = theirs->spi_in;
            if (Tunnel* t = tunnel_of(sa)) {
                t->child_rekeys++;
                tunnel_event(*t, EventKind::RekeyChild);
            }
            count(Counter::child_rekeys);
            count(Counter::rekey_collisions);
        }
    };
    if (err || !sap || !nonce || sap->proposals.size() != 1 || sap->proposals[0].spi.size() != 4) {
        LOG_WARN("ike", "event=child_rekey_failed tunnel={} child={:08x} notify={}", sa.tunnel, req->child_spi,
                 err ? notify_name(err) : "none");
        if (collision) {
            collision_lost_ours();
            return;
        }
        if (!old) return;
        if (err == N_CHILD_SA_NOT_FOUND) {
            remove_child(sa, req->child_spi, "peer does not know it (CHILD_SA_NOT_FOUND)");
        } else if (err == N_INVALID_KE_PAYLOAD) {
            if (auto* n = m.notify(N_INVALID_KE_PAYLOAD); n && n->data.size() == 2) {
                old->pfs_group = uint16_t(n->data[0] << 8 | n->data[1]);
                count(Counter::invalid_ke);
            }
            old->rekey_at_ns = now + 1;
        } else {
            old->rekey_at_ns = now + kRekeyRetryNs;
        }
        return;
    }
    SelectOptions opt;
    if (ke) opt.ke_group = ke->group;
    Selection sel = select_proposal(req->offered, sap->proposals, opt);
    auto* tsi = m.get<TsPayload>(PT_TSI);
    auto* tsr = m.get<TsPayload>(PT_TSR);
    const Transform* dht = sel.ok() ? sel.chosen.first(TT_DH) : nullptr;
    std::optional<Secret> g_ir;
    bool pfs = dht && dht->id != DH_NONE;
    if (pfs && ke && req->dh && ke->group == req->dh->group()) g_ir = req->dh->shared_secret(ke->data);
    if (!sel.ok() || !tsi || !tsr || !ts_within(tsi->selectors, req->tsi) || !ts_within(tsr->selectors, req->tsr) ||
        (pfs && !g_ir)) {
        LOG_WARN("ike", "event=child_rekey_failed tunnel={} reason=\"answer outside our proposal\"", sa.tunnel);
        delete_unused_child(sa, req->new_spi_in);
        if (collision) collision_lost_ours();
        else if (old) old->rekey_at_ns = now + kRekeyRetryNs;
        return;
    }
    ChildSa c;
    c.proposal = sel.chosen;
    c.spi_in = req->new_spi_in;
    c.spi_out = get_spi4(sel.chosen.spi);
    c.encr_id = sel.chosen.first(TT_ENCR)->id;
    c.key_bits = sel.chosen.first(TT_ENCR)->key_bits;
    const Transform* esn = sel.chosen.first(TT_ESN);
    c.esn = esn && esn->id == ESN_YES;
    c.pfs_group = pfs ? dht->id : (old ? old->pfs_group : 0);
    c.ts_local = tsi->selectors;
    c.ts_remote = tsr->selectors;
    c.created_by_us = true;
    ChildSaSpec spec;
    key_child(sa, c, g_ir ? std::span<const uint8_t>(*g_ir) : std::span<const uint8_t>(), req->nonce, nonce->data,
              true, &spec);
    spec.outbound = !collision;
    if (!install_child(sa, c, std::move(spec))) {
        // The dataplane refused the new SA: the old child carries on (the
        // responder switches to the new one only once we delete the old,
        // which we do not), and the rekey is tried again later; the peer's
        // half of the new one is deleted.
        delete_unused_child(sa, c.spi_in);
        if (ChildSa* o = sa.child_by_in(req->child_spi)) o->rekey_at_ns = now + kRekeyRetryNs;
        return;
    }
    if (collision) {
        resolve_child_collision(sa, req->child_spi, c.spi_in, req->nonce, nonce->data);
        return;
    }
    // The responder has both directions installed: send on the new SA now,
    // keep receiving on the old one until it is deleted.
    if (Tunnel* t = tunnel_of(sa)) {
        t->child_rekeys++;
        tunnel_event(*t, EventKind::RekeyChild);
    }
    count(Counter::child_rekeys);
    old = sa.child_by_in(req->child_spi);
    if (old) {
        old->state = ChildState::Rekeyed;
        old->replaced_by = c.spi_in;
        old->outbound_active = false;
        // §2.8: the rekey initiator deletes the old SA.
        queue(sa, Task{TaskKind::DeleteChild, 0, {old->spi_in}});
    }
}

// A child the peer created in answer to our CREATE_CHILD_SA that we cannot
// use (the dataplane refused it, or the answer was outside what we offered):
// without a DELETE the peer would keep it, unused, until its lifetime ends,
// and every retry would leave another. RFC 7296 §1.4.1: the DELETE names the
// SPI we would have received on. (That SPI went back to our pool; SPIs are
// random, so another child gets the same value before the peer has deleted
// this one with a chance of 1 in 2^32.)
void Engine::delete_unused_child(IkeSa& sa, uint32_t spi_in) {
    LOG_INFO("ike", "event=child_sa_unused tunnel={} spi={:08x} action=delete", sa.tunnel, spi_in);
    Task t{TaskKind::DeleteChild};
    t.spis = {spi_in};
    t.unused = true;
    queue(sa, std::move(t));
}

void Engine::resolve_child_collision(IkeSa& sa, uint32_t old_spi, uint32_t ours, const Bytes& our_ni,
                                     const Bytes& our_nr) {
    IkeSa::Collision col = sa.child_collision;
    sa.child_collision = {};
    count(Counter::rekey_collisions);
    bool ours_redundant = ours_is_redundant(our_ni, our_nr, col.peer_ni, col.our_nr);
    uint32_t winner = ours_redundant ? col.their_child : ours;
    uint32_t loser = ours_redundant ? ours : col.their_child;
    LOG_INFO("ike", "event=child_rekey_collision_resolved tunnel={} old={:08x} kept={:08x} redundant={:08x} we_won={}",
             sa.tunnel, old_spi, winner, loser, !ours_redundant);
    // Send on the winner only once the peer surely has its inbound SA: at
    // once if we made it (the peer answered our request, so it has it);
    // if the peer made it, when the peer deletes the old SA (it has read our
    // answer by then), as for any rekey we answer.
    ChildSa* w = sa.child_by_in(winner);
    if (w && !w->outbound_active && !ours_redundant) {
        sink_.child_outbound(sa.tunnel, winner);
        w->outbound_active = true;
        for (auto& c : sa.children)
            if (c.spi_in != winner) c.outbound_active = false;
    }
    ChildSa* l = sa.child_by_in(loser);
    if (l) l->rekey_at_ns = 0;
    ChildSa* o = sa.child_by_in(old_spi);
    if (o) {
        o->state = ChildState::Rekeyed;
        o->replaced_by = winner;
    }
    if (Tunnel* t = tunnel_of(sa)) {
        t->child_rekeys++;
        tunnel_event(*t, EventKind::RekeyChild);
    }
    count(Counter::child_rekeys);
    if (ours_redundant) {
        // We made the redundant SA: we delete it; the peer won and deletes the old one.
        if (l) {
            l->state = ChildState::Rekeyed;
            queue(sa, Task{TaskKind::DeleteChild, 0, {loser}});
        }
    } else {
        // The peer deletes its redundant SA; we delete the old one.
        if (l) l->state = ChildState::Rekeyed;
        if (o) queue(sa, Task{TaskKind::DeleteChild, 0, {old_spi}});
    }
}

void Engine::resolve_ike_collision(IkeSa& sa, uint64_t ours, const Bytes& our_ni, const Bytes& our_nr) {
    IkeSa::Collision col = sa.ike_collision;
    sa.ike_collision = {};
    count(Counter::rekey_collisions);
    uint64_t now = now_();
    bool ours_redundant = ours_is_redundant(our_ni, our_nr, col.peer_ni, col.our_nr);
    IkeSa* mine = find(ours);
    IkeSa* theirs = find(col.their_ike);
    IkeSa* winner = ours_redundant ? theirs : mine;
    IkeSa* loser = ours_redundant ? mine : theirs;
    LOG_INFO("ike", "event=ike_rekey_collision_resolved tunnel={} old={:016x} kept={:016x} we_won={}", sa.tunnel,
             sa.local_spi(), winner ? winner->local_spi() : 0, !ours_redundant);
    if (!winner) return;
    winner->state = IkeState::Established;
    winner->expire_at_ns = 0;
    move_children(sa, *winner);
    if (Tunnel* t = tunnel_of(*winner)) {
        t->ike_rekeys++;
        tunnel_event(*t, EventKind::RekeyIke);
    }
    count(Counter::ike_rekeys);
    sa.state = IkeState::Rekeyed;
    sa.expire_at_ns = now + kOldIkeSaWaitNs;
    if (ours_redundant) {
        // We delete the redundant SA we made; the peer deletes the old one.
        if (loser) {
            loser->state = IkeState::Established;
            queue(*loser, Task{TaskKind::DeleteIke});
        }
    } else {
        // The peer deletes its redundant SA; we delete the old one.
        if (loser) {
            loser->state = IkeState::Rekeyed;
            loser->expire_at_ns = now + kOldIkeSaWaitNs;
            schedule(*loser);
        }
        queue(sa, Task{TaskKind::DeleteIke});
    }
    schedule(*winner);
}

}  // namespace nimbus::ike
