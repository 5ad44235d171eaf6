// INFORMATIONAL (RFC 7296 §1.4): liveness checks and their round-trip time,
// DELETE of child and IKE SAs (§1.4.1), and MOBIKE (RFC 4555):
// UPDATE_SA_ADDRESSES, COOKIE2 return-routability checks and the peer's
// additional addresses.
#include <openssl/rand.h>

#include <fmt/format.h>

#include "control/ike/engine.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

constexpr uint64_t kNs = 1'000'000'000ull;
constexpr uint64_t kDeleteWaitNs = 10 * kNs;

Bytes hash_bytes(const std::array<uint8_t, 20>& h) { return Bytes(h.begin(), h.end()); }

std::vector<Bytes> natd_sources(const Message& m) {
    std::vector<Bytes> v;
    for (auto* n : m.notifies())
        if (n->type == N_NAT_DETECTION_SOURCE_IP) v.push_back(n->data);
    return v;
}

// RFC 4555 §3.6: the peer's list of additional addresses, replaced as a
// whole; NO_ADDITIONAL_ADDRESSES empties it. Addresses already validated
// stay validated.
bool update_addresses(IkeSa& sa, const Message& m) {
    bool listed = m.notify(N_NO_ADDITIONAL_ADDRESSES) != nullptr;
    std::vector<PeerAddress> v;
    for (auto* n : m.notifies()) {
        std::optional<IpAddr> a;
        if (n->type == N_ADDITIONAL_IP4_ADDRESS && n->data.size() == 4) a = IpAddr::v4_net(n->data.data());
        if (n->type == N_ADDITIONAL_IP6_ADDRESS && n->data.size() == 16) a = IpAddr::v6_net(n->data.data());
        if (!a) continue;
        listed = true;
        bool was = false;
        for (auto& o : sa.peer_addresses)
            if (o.addr == *a) was = o.validated;
        v.push_back({*a, was});
    }
    if (listed) sa.peer_addresses = std::move(v);
    return listed;
}

}  // namespace

// RFC 3948 §4: keepalives while a NAT is in front of us, also when MOBIKE
// finds one (or finds it gone) after the SA came up.
static void keepalives_follow_nat(IkeSa& sa, uint64_t now, uint64_t every) {
    if (!sa.nat.local_behind_nat) sa.keepalive_at_ns = 0;
    else if (!sa.keepalive_at_ns) sa.keepalive_at_ns = now + every;
}

void Engine::start_informational(IkeSa& sa, const Task& t) {
    auto req = std::make_unique<Request>();
    req->kind = t.kind;
    std::vector<Payload> out;
    uint64_t now = now_();
    switch (t.kind) {
    case TaskKind::Liveness:
        // §1.4: an empty INFORMATIONAL request is a liveness check.
        sa.last_probe_ns = now;
        break;
    case TaskKind::DeleteChild: {
        std::vector<uint32_t> spis;
        for (uint32_t s : t.spis)
            if (t.unused) {
                spis.push_back(s);
            } else if (ChildSa* c = sa.child_by_in(s)) {
                spis.push_back(s);
                if (c->state == ChildState::Installed) c->state = ChildState::Deleting;
            }
        if (spis.empty()) return;
        req->spis = spis;
        out.push_back(make_delete(PROTO_ESP, spis));
        break;
    }
    case TaskKind::DeleteIke:
        if (sa.state == IkeState::Established) sa.state = IkeState::Deleting;
        sa.expire_at_ns = now + kDeleteWaitNs;
        out.push_back(make_delete(PROTO_IKE));
        break;
    case TaskKind::ProbeAddress:
        // RFC 4555 §3.5: a return-routability check of one address.
        req->to = Endpoint{t.addr, sa.remote.port};
        req->nonce.resize(16);
        if (RAND_bytes(req->nonce.data(), 16) != 1) crypto_fatal("RAND_bytes (COOKIE2)");
        out.push_back(make_notify(N_COOKIE2, req->nonce));
        break;
    case TaskKind::MobikeUpdate:
        // RFC 4555 §3.5: announce the new path with fresh NAT-D hashes.
        out.push_back(make_notify(N_UPDATE_SA_ADDRESSES));
        out.push_back(make_notify(N_NAT_DETECTION_SOURCE_IP, hash_bytes(natd_hash(sa.spi_i, sa.spi_r, sa.local))));
        out.push_back(
            make_notify(N_NAT_DETECTION_DESTINATION_IP, hash_bytes(natd_hash(sa.spi_i, sa.spi_r, sa.remote))));
        out.push_back(make_notify(N_NO_ADDITIONAL_ADDRESSES));
        break;
    default: return;
    }
    send_request(sa, std::move(req), INFORMATIONAL, std::move(out));
}

void Engine::informational_response(IkeSa& sa, Rx& rx) {
    std::unique_ptr<Request> req = std::move(sa.out);
    uint64_t now = now_();
    switch (req->kind) {
    case TaskKind::Liveness:
        // Karn's rule: a retransmitted probe says nothing about the RTT.
        if (req->tries == 1) {
            if (Tunnel* t = tunnel_of(sa); t && t->ike == sa.local_spi()) {
                t->rtt_ns = now - req->first_sent_ns;
                t->rtt_at_ns = now;
                t->hist.rtt(t->rtt_ns);
            }
        }
        break;
    case TaskKind::DeleteChild:
        for (uint32_t s : req->spis) {
            ChildSa* c = sa.child_by_in(s);
            if (!c) continue;
            if (c->replaced_by) {
                // Old SA of a rekey: inbound stays a moment for packets in flight.
                c->state = ChildState::Rekeyed;
                c->remove_at_ns = now + policy_.settings.old_inbound_linger_ns;
            } else {
                remove_child(sa, s, "deleted");
            }
        }
        break;
    case TaskKind::DeleteIke: destroy(sa, "deleted by us"); return;
    case TaskKind::ProbeAddress:
        // The answer must echo our COOKIE2 (RFC 4555 §3.8); note_rx has
        // validated the address it came from.
        if (auto* c2 = rx.msg.notify(N_COOKIE2); !c2 || c2->data != req->nonce)
            for (auto& a : sa.peer_addresses)
                if (a.addr == rx.remote.addr) a.validated = false;
        tunnel_refresh(sa);
        break;
    case TaskKind::MobikeUpdate: {
        auto srcs = natd_sources(rx.msg);
        auto* d = rx.msg.notify(N_NAT_DETECTION_DESTINATION_IP);
        if (!srcs.empty() && d) sa.nat = nat_detect(sa.spi_i, sa.spi_r, srcs, d->data, rx.remote, rx.local);
        keepalives_follow_nat(sa, now, policy_.settings.keepalive_ns);
        count(Counter::mobike_updates);
        LOG_INFO("ike", "event=mobike_moved tunnel={} local={} remote={}", sa.tunnel, sa.local.str(), sa.remote.str());
        tunnel_refresh(sa);
        break;
    }
    default: break;
    }
    (void)rx;
}

void Engine::peer_moved(IkeSa& sa, const Rx& rx) {
    Endpoint from = sa.remote;
    sa.remote = rx.remote;
    sa.local = rx.local;
    sa.natt = rx.local.port == policy_.settings.port_natt;
    auto srcs = natd_sources(rx.msg);
    auto* d = rx.msg.notify(N_NAT_DETECTION_DESTINATION_IP);
    if (!srcs.empty() && d) sa.nat = nat_detect(sa.spi_i, sa.spi_r, srcs, d->data, rx.remote, rx.local);
    keepalives_follow_nat(sa, now_(), policy_.settings.keepalive_ns);
    // The new address has just proven itself.
    bool known = false;
    for (auto& a : sa.peer_addresses)
        if (a.addr == rx.remote.addr) a.validated = known = true;
    (void)known;
    count(Counter::mobike_updates);
    LOG_INFO("ike", "event=mobike_update tunnel={} peer=\"{}\" from={} to={} nat_peer={} nat_local={}", sa.tunnel,
             sa.peer_id.str(), from.str(), sa.remote.str(), sa.nat.peer_behind_nat, sa.nat.local_behind_nat);
}

void Engine::informational_request(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    std::vector<Payload> out;
    std::vector<uint32_t> ours, remove_now;
    bool delete_ike = false;
    uint64_t now = now_();
    for (auto* p : m.all(PT_DELETE)) {
        auto* d = p->as<DeletePayload>();
        if (!d) continue;
        if (d->protocol == PROTO_IKE) {
            delete_ike = true;
            continue;
        }
        if (d->protocol != PROTO_ESP) continue;
        for (uint32_t spi : d->spis) {
            ChildSa* c = sa.child_by_out(spi);
            if (!c) continue;
            // §1.4.1: crossing deletes are not answered with a Delete.
            if (c->state != ChildState::Deleting) ours.push_back(c->spi_in);
            if (c->replaced_by) {
                if (ChildSa* succ = sa.child_by_in(c->replaced_by); succ && !succ->outbound_active) {
                    sink_.child_outbound(sa.tunnel, succ->spi_in);
                    for (auto& x : sa.children) x.outbound_active = false;
                    succ->outbound_active = true;
                }
                c->state = ChildState::Rekeyed;
                c->remove_at_ns = now + policy_.settings.old_inbound_linger_ns;
            } else {
                remove_now.push_back(c->spi_in);
            }
        }
    }
    if (delete_ike) {
        // §1.4.1: the answer is empty; the SA and its children go.
        LOG_INFO("ike", "event=peer_deleted_ike_sa tunnel={} sa={:016x} peer=\"{}\"", sa.tunnel, sa.local_spi(),
                 sa.peer_id.str());
        send_response(sa, rx, INFORMATIONAL, {});
        destroy(sa, sa.state == IkeState::Rekeyed ? "rekeyed and deleted" : "deleted by peer");
        return;
    }
    if (!ours.empty()) out.push_back(make_delete(PROTO_ESP, ours));
    if (sa.peer_mobike && m.notify(N_UPDATE_SA_ADDRESSES)) {
        peer_moved(sa, rx);
    }
    if (sa.peer_mobike && update_addresses(sa, m)) probe_addresses(sa);
    if (m.notify(N_NAT_DETECTION_SOURCE_IP) && sa.peer_mobike) {
        // RFC 4555 §3.8: answer NAT-D with NAT-D for the path it came on.
        out.push_back(make_notify(N_NAT_DETECTION_SOURCE_IP, hash_bytes(natd_hash(sa.spi_i, sa.spi_r, rx.local))));
        out.push_back(make_notify(N_NAT_DETECTION_DESTINATION_IP, hash_bytes(natd_hash(sa.spi_i, sa.spi_r, rx.remote))));
    }
    if (auto* c2 = m.notify(N_COOKIE2)) out.push_back(make_notify(N_COOKIE2, c2->data));
    send_response(sa, rx, INFORMATIONAL, std::move(out));
    for (uint32_t s : remove_now) {
        // The successor of a rekey deleted before anything was sent on it
        // (the initiator could not install it): its predecessor stays the
        // child, with its own rekey timer again.
        for (auto& x : sa.children)
            if (x.replaced_by == s && x.state == ChildState::Rekeyed && x.outbound_active) {
                x.state = ChildState::Installed;
                x.replaced_by = 0;
                x.remove_at_ns = 0;
                LOG_INFO("ike", "event=child_rekey_undone tunnel={} child={:08x}", sa.tunnel, x.spi_in);
            }
        remove_child(sa, s, "deleted by peer");
    }
    tunnel_refresh(sa);
}

}  // namespace nimbus::ike
