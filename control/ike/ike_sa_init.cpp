// IKE_SA_INIT (RFC 7296 §1.2) in both roles, with COOKIEs (§2.6), the
// INVALID_KE_PAYLOAD round trip (§1.2), NAT detection (§2.23) and the
// negotiation of fragmentation (RFC 7383 §2.3) and signature hashes
// (RFC 7427 §4).
#include <openssl/rand.h>

#include <fmt/format.h>

#include "control/ike/auth.h"
#include "control/ike/engine.h"
#include "control/ike/keymat.h"
#include "control/ike/proposal.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

constexpr size_t kNonceLen = 32;
const uint16_t kOurHashes[] = {HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512};

Bytes random_bytes(size_t n) {
    Bytes b(n);
    if (RAND_bytes(b.data(), int(n)) != 1) crypto_fatal("RAND_bytes (nonce)");
    return b;
}

Bytes hash_bytes(const std::array<uint8_t, 20>& h) { return Bytes(h.begin(), h.end()); }

// Unprotected IKE_SA_INIT answer carrying one notify (§1.2, §2.6).
Bytes init_notify(const Header& req, Payload n) {
    Header h;
    h.spi_i = req.spi_i;
    h.spi_r = 0;
    h.exchange = IKE_SA_INIT;
    h.flags = kFlagResponse;
    h.message_id = 0;
    return MessageBuilder(h).add(std::move(n)).build().value_or(Bytes{});
}

std::vector<Bytes> natd_sources(const Message& m) {
    std::vector<Bytes> v;
    for (auto* n : m.notifies())
        if (n->type == N_NAT_DETECTION_SOURCE_IP) v.push_back(n->data);
    return v;
}

std::vector<Proposal> numbered(std::vector<Proposal> ps, Bytes spi = {}) {
    uint8_t n = 1;
    for (auto& p : ps) {
        p.number = n++;
        p.spi = spi;
    }
    return ps;
}

uint16_t first_group(const std::vector<Proposal>& ps) {
    for (auto& p : ps)
        if (auto* t = p.first(TT_DH)) return t->id;
    return 0;
}

}  // namespace

bool Engine::derive_ike_keys(IkeSa& sa, std::span<const uint8_t> g_ir, const IkeSa* rekeyed) {
    // §2.14, and §2.18 for a rekey: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
    // with the old SA's PRF.
    Secret seed = rekeyed ? skeyseed_rekey(rekeyed->prf, rekeyed->sk_d, g_ir, sa.ni, sa.nr)
                          : skeyseed(sa.prf, sa.ni, sa.nr, g_ir);
    size_t elen = encr_keymat_len(sa.encr, sa.key_bits);
    if (!elen || !prf_supported(sa.prf)) return false;
    IkeSaKeys k = derive_ike_sa_keys(sa.prf, seed, sa.ni, sa.nr, sa.spi_i, sa.spi_r, 0, elen);
    sa.sk_d = std::move(k.sk_d);
    sa.sk_pi = std::move(k.sk_pi);
    sa.sk_pr = std::move(k.sk_pr);
    sa.cin = SkCipher::create(sa.encr, sa.key_bits, sa.initiator ? k.sk_er : k.sk_ei);
    sa.cout = SkCipher::create(sa.encr, sa.key_bits, sa.initiator ? k.sk_ei : k.sk_er);
    return sa.cin && sa.cout;
}

// ---- responder

void Engine::init_request(Rx& rx) {
    const Header& h = rx.msg.header;
    const Message& m = rx.msg;
    if (h.spi_r != 0 || h.message_id != 0 || !h.initiator() || h.spi_i == 0) {
        count(Counter::rx_unexpected);
        return;
    }
    if (closing_) {
        // Stopping: no new state. The initiator retransmits, to whatever
        // answers on this address next (a restarted nimbusd, an HA peer).
        count(Counter::closing_refused);
        return;
    }
    if (auto it = init_index_.find({h.spi_i, rx.remote}); it != init_index_.end()) {
        // §2.1: a retransmitted IKE_SA_INIT gets the same answer.
        IkeSa* sa = find(it->second);
        if (sa && sa->state == IkeState::HalfOpen && Bytes(rx.raw.begin(), rx.raw.end()) == sa->init_request) {
            count(Counter::rx_retransmits);
            send_raw(rx.local, rx.remote, sa->init_response);
        } else {
            count(Counter::rx_unexpected);
        }
        return;
    }
    auto* sap = m.get<SaPayload>(PT_SA);
    auto* ke = m.get<KePayload>(PT_KE);
    auto* nonce = m.get<NoncePayload>(PT_NONCE);
    if (!sap || !ke || !nonce) {
        count(Counter::rx_malformed);
        return;
    }
    uint64_t now = now_();
    auto& st = policy_.settings;
    if (half_open_.total() >= st.cookie_threshold) {
        // §2.6: under load, state is created only for initiators that can
        // return a cookie bound to their address; the COOKIE notify must be
        // the first payload.
        const NotifyPayload* ck = nullptr;
        if (!m.payloads.empty())
            if (auto* n = m.payloads.front().as<NotifyPayload>(); n && n->type == N_COOKIE) ck = n;
        if (!ck || !cookies_.check(ck->data, nonce->data, rx.remote.addr, h.spi_i, now)) {
            if (ck) count(Counter::cookies_invalid);
            count(Counter::cookies_sent);
            send_raw(rx.local, rx.remote,
                     init_notify(h, make_notify(N_COOKIE, cookies_.make(nonce->data, rx.remote.addr, h.spi_i, now))));
            return;
        }
    }
    if (half_open_.total() >= st.max_half_open) {
        // Work already accepted comes first; the initiator retransmits.
        count(Counter::half_open_full);
        return;
    }
    if (half_open_.from(rx.remote.addr) >= st.half_open_per_source) {
        count(Counter::half_open_source_limit);
        LOG_WARN("ike", "event=half_open_limit from={} half_open={}", rx.remote.addr.str(),
                 half_open_.from(rx.remote.addr));
        return;
    }
    // The cloud is not known before IKE_AUTH: select from every cloud's
    // proposals, and check the choice against the site's cloud later.
    std::vector<Proposal> ours;
    for (auto& c : policy_.clouds)
        for (auto& p : c->ike)
            if (std::find(ours.begin(), ours.end(), p) == ours.end()) ours.push_back(p);
    SelectOptions opt;
    opt.ke_group = ke->group;
    Selection sel = select_proposal(ours, sap->proposals, opt);
    if (sel.outcome == Selection::InvalidKe) {
        count(Counter::invalid_ke);
        LOG_DEBUG("ike", "event=invalid_ke from={} {}", rx.remote.str(), sel.reason);
        send_raw(rx.local, rx.remote, init_notify(h, sel.notify()));
        return;
    }
    if (!sel.ok()) {
        count(Counter::no_proposal);
        LOG_INFO("ike", "event=no_proposal_chosen from={} exchange=IKE_SA_INIT reason=\"{}\"", rx.remote.str(),
                 sel.reason);
        send_raw(rx.local, rx.remote, init_notify(h, sel.notify()));
        return;
    }
    auto sa = std::make_unique<IkeSa>();
    sa->spi_i = h.spi_i;
    sa->spi_r = new_spi();
    sa->initiator = false;
    sa->state = IkeState::HalfOpen;
    sa->local = rx.local;
    sa->remote = rx.remote;
    sa->init_remote = rx.remote;
    sa->natt = rx.local.port == st.port_natt;
    sa->proposal = sel.chosen;
    sa->proposal.spi.clear();
    sa->prf = sel.chosen.first(TT_PRF)->id;
    sa->encr = sel.chosen.first(TT_ENCR)->id;
    sa->key_bits = sel.chosen.first(TT_ENCR)->key_bits;
    sa->dh_group = sel.chosen.first(TT_DH)->id;
    sa->ni = nonce->data;
    sa->nr = random_bytes(kNonceLen);
    sa->created_ns = now;
    sa->dh = DhKey::generate(sa->dh_group);
    if (!sa->dh) {
        count(Counter::no_proposal);
        return;
    }
    auto g_ir = sa->dh->shared_secret(ke->data);
    if (!g_ir) {
        // Wrong length or not a point on the curve (RFC 6989).
        count(Counter::rx_malformed);
        send_raw(rx.local, rx.remote, init_notify(h, make_notify(N_INVALID_SYNTAX)));
        return;
    }
    if (!derive_ike_keys(*sa, *g_ir)) {
        count(Counter::no_proposal);
        return;
    }
    auto srcs = natd_sources(m);
    const NotifyPayload* natd_d = m.notify(N_NAT_DETECTION_DESTINATION_IP);
    bool natd = !srcs.empty() && natd_d;
    if (natd) sa->nat = nat_detect(h.spi_i, 0, srcs, natd_d->data, rx.remote, rx.local);
    sa->peer_frag = m.notify(N_IKEV2_FRAGMENTATION_SUPPORTED) != nullptr;
    bool peer_sig = false;
    if (auto* n = m.notify(N_SIGNATURE_HASH_ALGORITHMS)) {
        if (auto hs = parse_hash_algorithms(n->data)) {
            sa->peer_hashes = *hs;
            peer_sig = true;
        }
    }

    Header rh;
    rh.spi_i = sa->spi_i;
    rh.spi_r = sa->spi_r;
    rh.exchange = IKE_SA_INIT;
    rh.flags = kFlagResponse;
    rh.message_id = 0;
    MessageBuilder b(rh);
    Proposal chosen = sa->proposal;
    chosen.number = sel.chosen.number;
    b.add(make_sa(SaPayload{{chosen}}));
    b.add(make_ke(sa->dh_group, Bytes(sa->dh->public_value().begin(), sa->dh->public_value().end())));
    b.add(make_nonce(sa->nr));
    if (natd) {
        b.add(make_notify(N_NAT_DETECTION_SOURCE_IP, hash_bytes(natd_hash(sa->spi_i, sa->spi_r, rx.local))));
        b.add(make_notify(N_NAT_DETECTION_DESTINATION_IP, hash_bytes(natd_hash(sa->spi_i, sa->spi_r, rx.remote))));
    }
    Bytes certreq;
    for (auto& c : policy_.clouds)
        if (c->trust) certreq.insert(certreq.end(), c->trust->certreq().begin(), c->trust->certreq().end());
    if (!certreq.empty()) b.add(make_certreq(CERT_X509_SIGNATURE, certreq));
    if (sa->peer_frag) b.add(make_notify(N_IKEV2_FRAGMENTATION_SUPPORTED));
    if (peer_sig) b.add(make_notify(N_SIGNATURE_HASH_ALGORITHMS, encode_hash_algorithms(kOurHashes)));
    auto resp = b.build();
    if (!resp) return;
    sa->init_request.assign(rx.raw.begin(), rx.raw.end());
    sa->init_response = *resp;
    sa->peer_msgid = 1;
    sa->next_msgid = 0;
    sa->expire_at_ns = now + st.half_open_timeout_ns;
    sa->dh.reset();
    half_open_.add(rx.remote.addr);
    init_index_[{sa->spi_i, rx.remote}] = sa->spi_r;
    LOG_DEBUG("ike", "event=ike_sa_init sa={:016x} from={} proposal={} nat_peer={} nat_local={} frag={}", sa->spi_r,
              rx.remote.str(), proposal_to_string(sa->proposal), sa->nat.peer_behind_nat, sa->nat.local_behind_nat,
              sa->peer_frag);
    IkeSa& ref = add_sa(std::move(sa));
    send_raw(rx.local, rx.remote, ref.init_response);
    count(Counter::tx_messages);
    schedule(ref);
}

// ---- initiator

// Builds and sends (or sends again, after a COOKIE or INVALID_KE_PAYLOAD)
// our IKE_SA_INIT request; Message ID 0 each time (§2.6, §1.2).
void Engine::send_init(IkeSa& s) {
    Header h;
    h.spi_i = s.spi_i;
    h.exchange = IKE_SA_INIT;
    h.flags = kFlagInitiator;
    MessageBuilder b(h);
    if (!s.cookie.empty()) b.add(make_notify(N_COOKIE, s.cookie));
    b.add(make_sa(SaPayload{numbered(s.cloud->ike)}));
    b.add(make_ke(s.dh_group, Bytes(s.dh->public_value().begin(), s.dh->public_value().end())));
    b.add(make_nonce(s.ni));
    b.add(make_notify(N_NAT_DETECTION_SOURCE_IP, hash_bytes(natd_hash(s.spi_i, 0, s.local))));
    b.add(make_notify(N_NAT_DETECTION_DESTINATION_IP, hash_bytes(natd_hash(s.spi_i, 0, s.remote))));
    b.add(make_notify(N_IKEV2_FRAGMENTATION_SUPPORTED));
    b.add(make_notify(N_SIGNATURE_HASH_ALGORITHMS, encode_hash_algorithms(kOurHashes)));
    auto msg = b.build();
    if (!msg) return;
    s.init_request = *msg;
    if (!s.out) {
        s.out = std::make_unique<Request>();
        s.out->init = true;
        s.out->tries = 1;
    }
    s.out->msgid = 0;
    s.out->datagrams = {*msg};
    uint64_t now = now_();
    s.out->first_sent_ns = now;
    s.out->next_retx_ns = now + policy_.settings.retransmit_timeout_ns;
    s.next_msgid = 1;
    send_raw(s.local, s.remote, *msg);
    count(Counter::tx_messages);
}

void Engine::initiate(int index) {
    if (closing_ || index < 0 || size_t(index) >= policy_.initiate.size()) return;
    const InitiatePolicy& in = policy_.initiate[size_t(index)];
    std::shared_ptr<const CloudPolicy> cloud;
    for (auto& c : policy_.clouds)
        if (c->name == in.cloud) cloud = c;
    if (!cloud || cloud->ike.empty()) return;
    TunnelId tid = tunnel_id_for(in.cloud, initiate_name(in), index);
    Tunnel& t = tunnels_[tid];
    if (t.ike && find(t.ike)) return;
    set_reconnect(t, 0);
    auto src = in.local ? in.local : net_.source_for(in.peer);
    if (!src) {
        LOG_WARN("ike", "event=no_route_to_peer peer={} tunnel={}", in.peer.str(), tid);
        t.reconnect_backoff_ns = std::min(std::max<uint64_t>(t.reconnect_backoff_ns * 2, 1'000'000'000ull),
                                          policy_.settings.reconnect_max_ns);
        set_reconnect(t, now_() + t.reconnect_backoff_ns);
        return;
    }
    auto sa = std::make_unique<IkeSa>();
    sa->initiator = true;
    sa->spi_i = new_spi();
    sa->state = IkeState::InitSent;
    sa->local = Endpoint{*src, policy_.settings.port_ike};
    sa->remote = Endpoint{in.peer, in.peer_port ? in.peer_port : policy_.settings.port_ike};
    sa->init_remote = sa->remote;
    sa->cloud = cloud;
    sa->initiate = index;
    sa->tunnel = tid;
    sa->created_ns = now_();
    sa->ni = random_bytes(kNonceLen);
    sa->dh_group = first_group(cloud->ike);
    sa->dh = DhKey::generate(sa->dh_group);
    if (!sa->dh) return;
    sa->sent_initial_contact = !t.initiated_once;
    t.initiated_once = true;
    t.connects++;
    IkeSa& ref = add_sa(std::move(sa));
    t.ike = ref.local_spi();
    LOG_INFO("ike", "event=initiate tunnel={} peer={} cloud={} from={}", tid, in.peer.str(), in.cloud,
             ref.local.str());
    send_init(ref);
    schedule(ref);
}

void Engine::init_response(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    if (auto* ck = m.notify(N_COOKIE); ck && !m.get<SaPayload>(PT_SA)) {
        // §2.6: try again with the cookie, once per answer.
        if (sa.out->tries > policy_.settings.retransmit_tries || ck->data.empty() || ck->data.size() > 64) {
            destroy(sa, "cookie loop");
            return;
        }
        sa.cookie = ck->data;
        sa.out->tries++;
        send_init(sa);
        return;
    }
    if (auto* ik = m.notify(N_INVALID_KE_PAYLOAD)) {
        count(Counter::invalid_ke);
        ByteReader r(ik->data);
        uint16_t g = r.u16();
        bool ours = false;
        for (auto& p : sa.cloud->ike)
            for (auto& t : p.transforms)
                if (t.type == TT_DH && t.id == g) ours = true;
        if (!r.ok() || !ours || g == sa.dh_group || sa.out->tries > policy_.settings.retransmit_tries) {
            destroy(sa, "INVALID_KE_PAYLOAD for a group we do not offer");
            return;
        }
        sa.dh_group = g;
        sa.dh = DhKey::generate(g);
        if (!sa.dh) {
            destroy(sa, "unsupported group");
            return;
        }
        sa.out->tries++;
        send_init(sa);
        return;
    }
    for (auto* n : m.notifies())
        if (notify_is_error(n->type)) {
            if (n->type == N_NO_PROPOSAL_CHOSEN) count(Counter::no_proposal);
            LOG_WARN("ike", "event=ike_sa_init_refused peer={} notify={}", sa.remote.str(), notify_name(n->type));
            destroy(sa, notify_name(n->type));
            return;
        }
    auto* sap = m.get<SaPayload>(PT_SA);
    auto* ke = m.get<KePayload>(PT_KE);
    auto* nonce = m.get<NoncePayload>(PT_NONCE);
    if (!sap || !ke || !nonce || sap->proposals.size() != 1 || m.header.spi_r == 0) {
        count(Counter::rx_malformed);
        return;
    }
    // §3.3.6: the answer must be one of our proposals, with the KE group.
    SelectOptions opt;
    opt.ke_group = ke->group;
    Selection sel = select_proposal(sa.cloud->ike, sap->proposals, opt);
    if (!sel.ok() || ke->group != sa.dh_group || sel.chosen.transforms.size() != sap->proposals[0].transforms.size()) {
        count(Counter::no_proposal);
        destroy(sa, "responder chose a proposal we did not offer");
        return;
    }
    auto g_ir = sa.dh->shared_secret(ke->data);
    if (!g_ir) {
        count(Counter::rx_malformed);
        destroy(sa, "bad KE payload");
        return;
    }
    sa.spi_r = m.header.spi_r;
    sa.proposal = sel.chosen;
    sa.proposal.spi.clear();
    sa.prf = sel.chosen.first(TT_PRF)->id;
    sa.encr = sel.chosen.first(TT_ENCR)->id;
    sa.key_bits = sel.chosen.first(TT_ENCR)->key_bits;
    sa.nr = nonce->data;
    if (!derive_ike_keys(sa, *g_ir)) {
        destroy(sa, "key derivation");
        return;
    }
    sa.dh.reset();
    sa.init_response.assign(rx.raw.begin(), rx.raw.end());
    auto srcs = natd_sources(m);
    const NotifyPayload* natd_d = m.notify(N_NAT_DETECTION_DESTINATION_IP);
    if (!srcs.empty() && natd_d) sa.nat = nat_detect(sa.spi_i, sa.spi_r, srcs, natd_d->data, rx.remote, rx.local);
    sa.peer_frag = m.notify(N_IKEV2_FRAGMENTATION_SUPPORTED) != nullptr;
    if (auto* n = m.notify(N_SIGNATURE_HASH_ALGORITHMS))
        if (auto hs = parse_hash_algorithms(n->data)) sa.peer_hashes = *hs;
    if (sa.nat.any()) {
        // §2.23: with a NAT on the path, move to the NAT-T port now.
        sa.natt = true;
        sa.local.port = policy_.settings.port_natt;
        sa.remote.port = policy_.settings.port_natt;
    }
    sa.out.reset();
    send_auth_request(sa);
}

}  // namespace nimbus::ike
