// IKE_AUTH (RFC 7296 §1.2, §2.15) in both roles: identities matched to the
// configured sites, PSK or certificate authentication (RFC 7427 method 14
// and RFC 4754 methods 9/10/11) with chain and CRL validation, and the
// first child SA.
#include <algorithm>

#include <fmt/format.h>

#include "control/ike/auth.h"
#include "control/ike/engine.h"
#include "control/ike/proposal.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

const uint16_t kOurHashes[] = {HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512};
constexpr uint64_t kNs = 1'000'000'000ull;

pki::Identity identity_of(const IdPayload& p) { return pki::Identity{p.id_type, p.data}; }
IdPayload id_payload(const pki::Identity& id) { return IdPayload{id.type, id.data}; }

pki::Identity address_identity(const IpAddr& a) {
    pki::Identity id;
    id.type = a.is_v4() ? ID_IPV4_ADDR : ID_IPV6_ADDR;
    id.data.assign(a.b.begin(), a.b.begin() + (a.is_v4() ? 4 : 16));
    return id;
}

bool is_signature(uint8_t m) {
    return m == AUTH_ECDSA_SHA256_P256 || m == AUTH_ECDSA_SHA384_P384 || m == AUTH_ECDSA_SHA512_P521 ||
           m == AUTH_DIGITAL_SIGNATURE;
}

// RFC 7427 when the peer announced hashes we can use, RFC 4754 otherwise.
void pick_signature(const pki::Credential& cred, const std::vector<uint16_t>& peer_hashes, uint8_t* method,
                    uint16_t* hash) {
    *hash = 0;
    uint16_t pref = cred.preferred_hash();
    if (std::find(peer_hashes.begin(), peer_hashes.end(), pref) != peer_hashes.end()) *hash = pref;
    else
        for (uint16_t h : peer_hashes)
            if (h == HASH_SHA2_256 || h == HASH_SHA2_384 || h == HASH_SHA2_512) {
                *hash = h;
                break;
            }
    *method = *hash ? uint8_t(AUTH_DIGITAL_SIGNATURE) : cred.rfc4754_method();
}

std::vector<Proposal> without_dh(const std::vector<Proposal>& ps, uint32_t spi) {
    std::vector<Proposal> out;
    uint8_t n = 1;
    for (auto p : ps) {
        p.transforms.erase(std::remove_if(p.transforms.begin(), p.transforms.end(),
                                          [](const Transform& t) { return t.type == TT_DH; }),
                           p.transforms.end());
        p.number = n++;
        p.spi = {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)};
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
    return out;
}

std::vector<Prefix> any_prefixes() { return {*Prefix::parse("0.0.0.0/0"), *Prefix::parse("::/0")}; }

Bytes spi_bytes(uint32_t spi) { return {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)}; }

std::vector<PeerAddress> additional_addresses(const Message& m) {
    std::vector<PeerAddress> v;
    for (auto* n : m.notifies()) {
        if (n->type == N_ADDITIONAL_IP4_ADDRESS && n->data.size() == 4)
            v.push_back({IpAddr::v4_net(n->data.data()), false});
        if (n->type == N_ADDITIONAL_IP6_ADDRESS && n->data.size() == 16)
            v.push_back({IpAddr::v6_net(n->data.data()), false});
    }
    return v;
}

// Validates the peer's certificate payloads against the cloud's CA and
// returns its end-entity certificate's key and names.
std::optional<pki::PeerCert> peer_certificate(const Message& m, const pki::TrustStore& trust,
                                              const pki::Identity& peer, pki::PeerRefusal* no) {
    std::vector<std::span<const uint8_t>> ders;
    for (auto* p : m.all(PT_CERT)) {
        auto* c = p->as<CertPayload>();
        if (c && c->encoding == CERT_X509_SIGNATURE) ders.emplace_back(c->data);
    }
    if (ders.empty()) {
        no->why = "no X.509 certificate in the message";
        return std::nullopt;
    }
    return trust.check_peer(ders, peer, no);
}

}  // namespace

void Engine::auth_fail(IkeSa& sa, Rx& rx, uint16_t notify, const std::string& why) {
    if (notify == N_AUTHENTICATION_FAILED) count(Counter::auth_failed);
    LOG_WARN("ike", "event=auth_failed sa={:016x} from={} peer=\"{}\" notify={} reason=\"{}\"", sa.local_spi(),
             rx.remote.str(), sa.peer_id.empty() ? "?" : sa.peer_id.str(), notify_name(notify), why);
    send_response(sa, rx, IKE_AUTH, {make_notify(notify)});
    destroy(sa, "authentication failed");
}

// ---- responder

void Engine::auth_request(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    auto* idi = m.get<IdPayload>(PT_IDI);
    auto* auth = m.get<AuthPayload>(PT_AUTH);
    // The IKE_AUTH request may come from a new address or port (the
    // initiator floats to 4500 behind a NAT, §2.23).
    sa.remote = rx.remote;
    sa.local = rx.local;
    sa.natt = rx.local.port == policy_.settings.port_natt;
    if (!idi || !auth) {
        auth_fail(sa, rx, N_AUTHENTICATION_FAILED, "IKE_AUTH without IDi or AUTH (EAP is not supported)");
        return;
    }
    pki::Identity peer = identity_of(*idi);
    sa.peer_id = peer;
    // Which site is this?
    std::shared_ptr<const CloudPolicy> cloud;
    int site = -1;
    for (auto& c : policy_.clouds) {
        site = find_site(*c, peer);
        if (site >= 0) {
            cloud = c;
            break;
        }
    }
    if (!cloud) {
        auth_fail(sa, rx, N_AUTHENTICATION_FAILED, fmt::format("no site has identity '{}'", peer.str()));
        return;
    }
    sa.cloud = cloud;
    sa.site = site;
    const SitePolicy& sp = cloud->sites[size_t(site)];
    Proposal ike = sa.proposal;
    ike.number = 1;
    if (!select_proposal(cloud->ike, std::span<const Proposal>(&ike, 1)).ok()) {
        auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                  fmt::format("IKE proposal {} is not allowed in cloud '{}'", proposal_to_string(sa.proposal),
                              cloud->name));
        return;
    }
    // Our identity: what the cloud says, or our certificate's subject (or
    // the subjectAltName the peer asked for), or our address.
    pki::Identity mine = cloud->local_id;
    auto* idr = m.get<IdPayload>(PT_IDR);
    if (mine.empty()) {
        if (cloud->cred) {
            mine = cloud->cred->cert().subject();
            if (idr && cloud->cred->cert().has_identity(identity_of(*idr))) mine = identity_of(*idr);
        } else {
            mine = address_identity(rx.local.addr);
        }
    }
    // The peer may name us by part of our DN ("CN=conc"), by the whole of it,
    // or by a subjectAltName of our certificate.
    if (idr && !pki::identity_matches(identity_of(*idr), mine) && !pki::identity_matches(mine, identity_of(*idr)) &&
        !(cloud->cred && cloud->cred->cert().has_identity(identity_of(*idr)))) {
        auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                  fmt::format("peer asks for responder identity '{}', ours is '{}'", identity_of(*idr).str(), mine.str()));
        return;
    }
    // Authenticate the peer (§2.15).
    auto octets = signed_octets(sa.init_request, sa.nr, sa.prf, sa.sk_pi, *idi);
    const Secret& psk = !sp.psk.empty() ? sp.psk : cloud->psk;
    if (auth->method == AUTH_PSK) {
        if (psk.empty()) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED, "PSK authentication is not configured for this site");
            return;
        }
        if (!psk_verify(sa.prf, psk, octets, auth->data)) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED, "pre-shared key does not match");
            return;
        }
    } else if (is_signature(auth->method)) {
        if (!cloud->trust) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                      fmt::format("certificate authentication is not configured for cloud '{}'", cloud->name));
            return;
        }
        pki::PeerRefusal no;
        auto cert = peer_certificate(m, *cloud->trust, peer, &no);
        if (!cert) {
            if (no.revoked) {
                count(Counter::auth_revoked);
                LOG_WARN("ike", "event=certificate_revoked peer=\"{}\" serial={} from={}", peer.str(), no.serial,
                         rx.remote.str());
            }
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED, no.why);
            return;
        }
        AuthStatus st = auth_verify(auth->method, cert->public_key(), auth->data, octets, kOurHashes);
        if (st != AuthStatus::Ok) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                      fmt::format("{} signature does not verify: {}", auth_method_name(auth->method),
                                  auth_status_name(st)));
            return;
        }
        sa.peer_cert_subject = cert->subject;
        count(cert->direct ? Counter::cert_direct : Counter::cert_openssl);
    } else {
        auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                  fmt::format("authentication method {} is not supported", auth_method_name(auth->method)));
        return;
    }
    sa.auth_method = auth->method;
    sa.local_id = mine;

    // Our AUTH.
    std::vector<Payload> out;
    IdPayload our_id = id_payload(mine);
    out.push_back(make_id(false, our_id.id_type, our_id.data));
    auto octets_r = signed_octets(sa.init_response, sa.ni, sa.prf, sa.sk_pr, our_id);
    if (auth->method == AUTH_PSK) {
        Secret mac = psk_auth(sa.prf, psk, octets_r);
        out.push_back(make_auth(AUTH_PSK, Bytes(mac.span().begin(), mac.span().end())));
    } else {
        if (!cloud->cred) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED,
                      fmt::format("cloud '{}' has no certificate of our own", cloud->name));
            return;
        }
        uint8_t method;
        uint16_t hash;
        pick_signature(*cloud->cred, sa.peer_hashes, &method, &hash);
        auto sig = auth_sign(method, cloud->cred->key(), hash, octets_r);
        if (!sig) {
            auth_fail(sa, rx, N_AUTHENTICATION_FAILED, "cannot sign with our key");
            return;
        }
        out.push_back(make_cert(CERT_X509_SIGNATURE, cloud->cred->cert().der()));
        for (auto& c : cloud->cred->chain()) out.push_back(make_cert(CERT_X509_SIGNATURE, c.der()));
        out.push_back(make_auth(method, std::move(*sig)));
    }

    // Established.
    uint64_t now = now_();
    half_open_.remove(sa.init_remote.addr);
    init_index_.erase({sa.spi_i, sa.init_remote});
    sa.state = IkeState::Established;
    sa.established_ns = now;
    sa.last_rx_ns = now;
    sa.last_probe_ns = now;
    sa.rekey_at_ns = now + uint64_t(cloud->rekey_ike_s) * kNs;
    sa.expire_at_ns = 0;
    sa.init_request.clear();
    sa.init_response.clear();
    sa.peer_mobike = m.notify(N_MOBIKE_SUPPORTED) != nullptr;
    sa.peer_addresses = additional_addresses(m);
    if (sa.nat.local_behind_nat) sa.keepalive_at_ns = now + policy_.settings.keepalive_ns;
    sa.tunnel = tunnel_id_for(cloud->name, sp.name, -1);
    Tunnel* t = tunnel_of(sa);
    t->connects++;
    replace_stale(sa, m.notify(N_INITIAL_CONTACT) != nullptr);
    count(Counter::auth_ok);
    count(Counter::ike_established);
    LOG_INFO("ike",
             "event=ike_sa_up sa={:016x} tunnel={} cloud={} peer=\"{}\" remote={} local={} auth={} proposal={} "
             "nat_peer={} nat_local={} mobike={} frag={}",
             sa.local_spi(), sa.tunnel, cloud->name, peer.str(), sa.remote.str(), sa.local.str(),
             auth_method_name(sa.auth_method), proposal_to_string(sa.proposal), sa.nat.peer_behind_nat,
             sa.nat.local_behind_nat, sa.peer_mobike, sa.peer_frag);

    // The first child SA (no KE: §1.2).
    ChildResult cr = negotiate_child(sa, m.get<SaPayload>(PT_SA), m.get<TsPayload>(PT_TSI), m.get<TsPayload>(PT_TSR),
                                     true, std::nullopt);
    bool refused = false;
    if (cr.ok) {
        cr.child.spi_in = new_child_spi();
        ChildSaSpec spec;
        key_child(sa, cr.child, {}, sa.ni, sa.nr, false, &spec);
        spec.outbound = true;
        Proposal reply = cr.child.proposal;
        reply.spi = spi_bytes(cr.child.spi_in);
        // Installed before it is answered, so the answer never offers what
        // the dataplane could not take.
        if (install_child(sa, cr.child, std::move(spec))) {
            out.push_back(make_sa(SaPayload{{reply}}));
            out.push_back(make_ts(true, cr.child.ts_remote));
            out.push_back(make_ts(false, cr.child.ts_local));
        } else {
            // §1.2: the IKE SA stands, the child is refused with an error
            // notify; NO_ADDITIONAL_SAS (§3.10.1) says we take no child SA
            // now. The IKE SA is then deleted so that the site retries
            // later rather than sit without a tunnel.
            out.push_back(make_notify(N_NO_ADDITIONAL_SAS));
            refused = true;
        }
    } else {
        LOG_WARN("ike", "event=child_sa_refused tunnel={} peer=\"{}\" notify={} reason=\"{}\"", sa.tunnel, peer.str(),
                 notify_name(cr.notify), cr.why);
        Bytes data;
        if (cr.notify == N_INVALID_KE_PAYLOAD) data = {uint8_t(cr.group >> 8), uint8_t(cr.group)};
        out.push_back(make_notify(cr.notify, data));
    }
    if (sa.peer_mobike) out.push_back(make_notify(N_MOBIKE_SUPPORTED));
    send_response(sa, rx, IKE_AUTH, std::move(out));
    if (refused) {
        queue(sa, Task{TaskKind::DeleteIke});
        return;
    }
    tunnel_refresh(sa);
    if (sa.peer_mobike) probe_addresses(sa);
}

// ---- initiator

void Engine::send_auth_request(IkeSa& sa) {
    const CloudPolicy& cloud = *sa.cloud;
    const InitiatePolicy& in = policy_.initiate[size_t(sa.initiate)];
    const pki::Credential* cred = in.cred ? in.cred.get() : cloud.cred.get();
    pki::Identity mine = !in.local_id.empty()      ? in.local_id
                         : !cloud.local_id.empty() ? cloud.local_id
                         : cred                    ? cred->cert().subject()
                                                   : address_identity(sa.local.addr);
    sa.local_id = mine;
    IdPayload idi = id_payload(mine);
    std::vector<Payload> out;
    out.push_back(make_id(true, idi.id_type, idi.data));
    auto octets = signed_octets(sa.init_request, sa.nr, sa.prf, sa.sk_pi, idi);
    Payload auth;
    if (cred) {
        uint8_t method;
        uint16_t hash;
        pick_signature(*cred, sa.peer_hashes, &method, &hash);
        auto sig = auth_sign(method, cred->key(), hash, octets);
        if (!sig) {
            destroy(sa, "cannot sign with our key");
            return;
        }
        out.push_back(make_cert(CERT_X509_SIGNATURE, cred->cert().der()));
        for (auto& c : cred->chain()) out.push_back(make_cert(CERT_X509_SIGNATURE, c.der()));
        auth = make_auth(method, std::move(*sig));
    } else {
        Secret mac = psk_auth(sa.prf, cloud.psk, octets);
        auth = make_auth(AUTH_PSK, Bytes(mac.span().begin(), mac.span().end()));
    }
    if (sa.sent_initial_contact) out.push_back(make_notify(N_INITIAL_CONTACT));
    if (cloud.trust) out.push_back(make_certreq(CERT_X509_SIGNATURE, cloud.trust->certreq()));
    if (!in.remote_id.empty()) {
        IdPayload idr = id_payload(in.remote_id);
        out.push_back(make_id(false, idr.id_type, idr.data));
    }
    out.push_back(std::move(auth));
    auto req = std::make_unique<Request>();
    req->auth = true;
    req->new_spi_in = new_child_spi();
    req->offered = without_dh(cloud.esp, req->new_spi_in);
    req->tsi = selectors_for(in.local_prefixes);
    auto rp = in.remote_prefixes.empty() ? any_prefixes() : in.remote_prefixes;
    req->tsr = selectors_for(rp);
    out.push_back(make_sa(SaPayload{req->offered}));
    out.push_back(make_ts(true, req->tsi));
    out.push_back(make_ts(false, req->tsr));
    out.push_back(make_notify(N_MOBIKE_SUPPORTED));
    sa.state = IkeState::AuthSent;
    send_request(sa, std::move(req), IKE_AUTH, std::move(out));
}

void Engine::auth_response(IkeSa& sa, Rx& rx) {
    const Message& m = rx.msg;
    std::unique_ptr<Request> req = std::move(sa.out);
    const InitiatePolicy& in = policy_.initiate[size_t(sa.initiate)];
    const CloudPolicy& cloud = *sa.cloud;
    auto fail = [&](const std::string& why) {
        count(Counter::auth_failed);
        LOG_WARN("ike", "event=auth_failed sa={:016x} peer={} role=initiator reason=\"{}\"", sa.local_spi(),
                 sa.remote.str(), why);
        destroy(sa, "authentication failed");
    };
    if (auto* n = m.notify(N_AUTHENTICATION_FAILED)) {
        (void)n;
        fail("the responder refused our authentication (AUTHENTICATION_FAILED)");
        return;
    }
    auto* idr = m.get<IdPayload>(PT_IDR);
    auto* auth = m.get<AuthPayload>(PT_AUTH);
    if (!idr || !auth) {
        std::string ns;
        for (auto* n : m.notifies()) ns += std::string(ns.empty() ? "" : ",") + notify_name(n->type);
        fail(fmt::format("IKE_AUTH response without IDr or AUTH (notifies: {})", ns.empty() ? "none" : ns));
        return;
    }
    pki::Identity peer = identity_of(*idr);
    sa.peer_id = peer;
    if (!in.remote_id.empty() && !pki::identity_matches(in.remote_id, peer)) {
        fail(fmt::format("responder is '{}', we expect '{}'", peer.str(), in.remote_id.str()));
        return;
    }
    auto octets = signed_octets(sa.init_response, sa.ni, sa.prf, sa.sk_pr, *idr);
    if (auth->method == AUTH_PSK) {
        if (cloud.psk.empty() || !psk_verify(sa.prf, cloud.psk, octets, auth->data)) {
            fail("responder's PSK authentication does not verify");
            return;
        }
    } else if (is_signature(auth->method)) {
        if (!cloud.trust) {
            fail("responder uses a certificate and the cloud has no CA");
            return;
        }
        pki::PeerRefusal no;
        auto cert = peer_certificate(m, *cloud.trust, peer, &no);
        if (!cert) {
            if (no.revoked) {
                count(Counter::auth_revoked);
                LOG_WARN("ike", "event=certificate_revoked peer=\"{}\" serial={} from={}", peer.str(), no.serial,
                         rx.remote.str());
            }
            fail(no.why);
            return;
        }
        AuthStatus st = auth_verify(auth->method, cert->public_key(), auth->data, octets, kOurHashes);
        if (st != AuthStatus::Ok) {
            fail(fmt::format("responder's signature does not verify: {}", auth_status_name(st)));
            return;
        }
        sa.peer_cert_subject = cert->subject;
        count(cert->direct ? Counter::cert_direct : Counter::cert_openssl);
    } else {
        fail(fmt::format("responder uses unsupported method {}", auth_method_name(auth->method)));
        return;
    }
    sa.auth_method = auth->method;
    uint64_t now = now_();
    sa.state = IkeState::Established;
    sa.established_ns = now;
    sa.last_rx_ns = now;
    sa.last_probe_ns = now;
    sa.rekey_at_ns = now + uint64_t(cloud.rekey_ike_s) * kNs;
    sa.init_request.clear();
    sa.init_response.clear();
    sa.peer_mobike = m.notify(N_MOBIKE_SUPPORTED) != nullptr;
    sa.peer_addresses = additional_addresses(m);
    if (sa.nat.local_behind_nat) sa.keepalive_at_ns = now + policy_.settings.keepalive_ns;
    Tunnel* t = tunnel_of(sa);
    if (t) t->reconnect_backoff_ns = 0;
    replace_stale(sa, false);
    count(Counter::auth_ok);
    count(Counter::ike_established);
    LOG_INFO("ike",
             "event=ike_sa_up sa={:016x} tunnel={} cloud={} peer=\"{}\" remote={} local={} auth={} proposal={} "
             "role=initiator nat_peer={} nat_local={} mobike={}",
             sa.local_spi(), sa.tunnel, cloud.name, peer.str(), sa.remote.str(), sa.local.str(),
             auth_method_name(sa.auth_method), proposal_to_string(sa.proposal), sa.nat.peer_behind_nat,
             sa.nat.local_behind_nat, sa.peer_mobike);

    // The child SA in the answer.
    auto* sap = m.get<SaPayload>(PT_SA);
    auto* tsi = m.get<TsPayload>(PT_TSI);
    auto* tsr = m.get<TsPayload>(PT_TSR);
    if (!sap || !tsi || !tsr || sap->proposals.size() != 1) {
        std::string ns;
        for (auto* n : m.notifies()) ns += std::string(ns.empty() ? "" : ",") + notify_name(n->type);
        LOG_WARN("ike", "event=child_sa_refused tunnel={} role=initiator notifies={}", sa.tunnel, ns);
        if (m.notify(N_TS_UNACCEPTABLE)) count(Counter::ts_unacceptable);
        queue(sa, Task{TaskKind::DeleteIke});
        return;
    }
    SelectOptions o;
    o.ignore_dh = true;
    Selection sel = select_proposal(req->offered, sap->proposals, o);
    if (!sel.ok() || sel.chosen.spi.size() != 4 || !ts_within(tsi->selectors, req->tsi) ||
        !ts_within(tsr->selectors, req->tsr)) {
        LOG_WARN("ike", "event=child_sa_refused tunnel={} role=initiator reason=\"answer outside our proposal\"",
                 sa.tunnel);
        queue(sa, Task{TaskKind::DeleteIke});
        return;
    }
    ChildSa c;
    c.proposal = sel.chosen;
    c.spi_in = req->new_spi_in;
    c.spi_out = uint32_t(sel.chosen.spi[0]) << 24 | uint32_t(sel.chosen.spi[1]) << 16 |
                uint32_t(sel.chosen.spi[2]) << 8 | sel.chosen.spi[3];
    c.encr_id = sel.chosen.first(TT_ENCR)->id;
    c.key_bits = sel.chosen.first(TT_ENCR)->key_bits;
    const Transform* esn = sel.chosen.first(TT_ESN);
    c.esn = esn && esn->id == ESN_YES;
    for (auto& p : cloud.esp)
        if (auto* d = p.first(TT_DH)) {
            c.pfs_group = d->id;
            break;
        }
    c.ts_local = tsi->selectors;
    c.ts_remote = tsr->selectors;
    c.created_by_us = true;
    ChildSaSpec spec;
    key_child(sa, c, {}, sa.ni, sa.nr, true, &spec);
    spec.outbound = true;
    if (!install_child(sa, c, std::move(spec))) {
        // The peer has the child; we cannot carry it: delete the IKE SA
        // (and with it the child), and connect again later.
        queue(sa, Task{TaskKind::DeleteIke});
        return;
    }
    tunnel_refresh(sa);
    if (sa.peer_mobike) probe_addresses(sa);
}

}  // namespace nimbus::ike
