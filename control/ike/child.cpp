// Child SAs (RFC 7296 §2.17, §2.9): proposal and traffic-selector
// negotiation, keying, and their installation in the dataplane through the
// ChildSaSink, in an order that keeps rekeys hitless.
#include <openssl/rand.h>

#include <fmt/format.h>

#include "control/ike/engine.h"
#include "control/ike/keymat.h"
#include "control/ike/proposal.h"
#include "control/ike/ts.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

std::vector<Prefix> any_prefixes() { return {*Prefix::parse("0.0.0.0/0"), *Prefix::parse("::/0")}; }

// ±10% around `s` seconds, so two peers with the same lifetime rarely rekey
// at the same instant (collisions are handled, but cost an exchange).
uint64_t jittered(uint32_t s) {
    uint16_t r = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r);
    double f = 0.9 + 0.1 * (double(r) / 65535.0);
    return uint64_t(double(s) * f * 1e9);
}

}  // namespace

// The policy for the peer's side and ours of an SA: a site may hold its
// prefixes and nothing of another site's; an edge takes what it asked for.
static void ts_policies(const IkeSa& sa, const Policy& pol, const Engine::Offered& offered, TsPolicy* peer,
                        TsPolicy* mine) {
    const CloudPolicy& c = *sa.cloud;
    if (sa.site >= 0) {
        const SitePolicy& s = c.sites[size_t(sa.site)];
        peer->allowed = s.prefixes;
        if (c.indexed) {
            peer->forbidden_shared = &c.all_prefixes;
        } else {
            for (size_t i = 0; i < c.sites.size(); i++)
                if (int(i) != sa.site)
                    for (auto& p : c.sites[i].prefixes) peer->forbidden.push_back(p);
        }
        peer->refuse_default = true;
        mine->allowed = c.advertise;
        if (offered)
            for (auto& p : offered(c.vrf))
                if (std::find(mine->allowed.begin(), mine->allowed.end(), p) == mine->allowed.end())
                    mine->allowed.push_back(p);
        if (mine->allowed.empty()) mine->allowed = any_prefixes();
    } else if (sa.initiate >= 0 && size_t(sa.initiate) < pol.initiate.size()) {
        const InitiatePolicy& in = pol.initiate[size_t(sa.initiate)];
        peer->allowed = in.remote_prefixes.empty() ? any_prefixes() : in.remote_prefixes;
        mine->allowed = in.local_prefixes;
    }
}

Engine::ChildResult Engine::negotiate_child(IkeSa& sa, const SaPayload* sap, const TsPayload* tsi,
                                            const TsPayload* tsr, bool ignore_dh, std::optional<uint16_t> ke_group) {
    ChildResult r;
    if (!sap || !tsi || !tsr) {
        r.notify = N_NO_PROPOSAL_CHOSEN;
        r.why = "no SA, TSi or TSr payload";
        return r;
    }
    std::vector<Proposal> esp_props;
    for (auto& p : sap->proposals)
        if (p.protocol == PROTO_ESP) esp_props.push_back(p);
    SelectOptions opt;
    opt.ignore_dh = ignore_dh;
    opt.ke_group = ke_group;
    Selection sel = select_proposal(sa.cloud->esp, esp_props, opt);
    if (sel.outcome == Selection::InvalidKe) {
        count(Counter::invalid_ke);
        r.notify = N_INVALID_KE_PAYLOAD;
        r.group = sel.group;
        r.why = sel.reason;
        return r;
    }
    if (!sel.ok()) {
        count(Counter::no_proposal);
        r.notify = N_NO_PROPOSAL_CHOSEN;
        r.why = sel.reason;
        return r;
    }
    const Transform* dh = ignore_dh ? nullptr : sel.chosen.first(TT_DH);
    if (dh && dh->id != DH_NONE && !ke_group) {
        // The proposal we chose needs PFS and no KE came (§1.3.1).
        count(Counter::invalid_ke);
        r.notify = N_INVALID_KE_PAYLOAD;
        r.group = dh->id;
        r.why = "PFS group chosen but no KE payload";
        return r;
    }
    TsPolicy peer, mine;
    ts_policies(sa, policy_, offered_, &peer, &mine);
    r.tsi = narrow_ts(tsi->selectors, peer);
    r.tsr = narrow_ts(tsr->selectors, mine);
    if (!r.tsi.ok || !r.tsr.ok) {
        count(Counter::ts_unacceptable);
        r.notify = N_TS_UNACCEPTABLE;
        r.why = !r.tsi.ok ? "peer side: " + r.tsi.reason : "our side: " + r.tsr.reason;
        return r;
    }
    ChildSa& c = r.child;
    c.proposal = sel.chosen;
    if (sel.chosen.spi.size() != 4) {
        r.notify = N_INVALID_SYNTAX;
        r.why = "ESP SPI is not 4 octets";
        return r;
    }
    c.spi_out = uint32_t(sel.chosen.spi[0]) << 24 | uint32_t(sel.chosen.spi[1]) << 16 |
                uint32_t(sel.chosen.spi[2]) << 8 | sel.chosen.spi[3];
    c.encr_id = sel.chosen.first(TT_ENCR)->id;
    c.key_bits = sel.chosen.first(TT_ENCR)->key_bits;
    const Transform* esn = sel.chosen.first(TT_ESN);
    c.esn = esn && esn->id == ESN_YES;
    if (dh) {
        c.pfs_group = dh->id;
    } else {
        // Remember the PFS group we would use on rekey (the IKE_AUTH child
        // carries no KE, §1.2).
        SelectOptions o2;
        Selection s2 = select_proposal(sa.cloud->esp, esp_props, o2);
        if (auto* d2 = s2.chosen.first(TT_DH); d2 && s2.outcome != Selection::NoProposalChosen) c.pfs_group = d2->id;
    }
    c.ts_remote = r.tsi.selectors;
    c.ts_local = r.tsr.selectors;
    r.ok = true;
    return r;
}

bool Engine::key_child(IkeSa& sa, ChildSa& c, std::span<const uint8_t> g_ir, const Bytes& ni, const Bytes& nr,
                       bool we_initiated, ChildSaSpec* spec) {
    size_t elen = encr_keymat_len(c.encr_id, c.key_bits);
    if (!elen) return false;
    // §2.17: the exchange initiator's outbound keys come first.
    ChildSaKeys k = derive_child_sa_keys(sa.prf, sa.sk_d, g_ir, ni, nr, elen, 0);
    spec->tunnel = sa.tunnel;
    spec->spi_in = c.spi_in;
    spec->spi_out = c.spi_out;
    spec->encr_id = c.encr_id;
    spec->key_bits = c.key_bits;
    spec->key_in = we_initiated ? std::move(k.encr_r) : std::move(k.encr_i);
    spec->key_out = we_initiated ? std::move(k.encr_i) : std::move(k.encr_r);
    spec->esn = c.esn;
    spec->replay_window = policy_.settings.replay_window;
    return true;
}

bool Engine::install_child(IkeSa& sa, ChildSa c, ChildSaSpec spec) {
    uint64_t now = now_();
    c.created_ns = now;
    c.rekey_at_ns = now + jittered(sa.cloud->rekey_child_s);
    c.outbound_active = spec.outbound;
    c.state = ChildState::Installed;
    spec.tunnel = sa.tunnel;
    sa.children.push_back(c);
    Tunnel* t = tunnel_of(sa);
    if (t && t->ike == sa.local_spi()) tunnel_refresh(sa);  // tunnel_up before its first child
    uint32_t spi_in = c.spi_in, spi_out = c.spi_out;
    if (!sink_.child_install(spec)) {
        sa.children.pop_back();
        free_child_spi(spi_in);
        count(Counter::child_install_failed);
        LOG_ERROR("ike", "event=child_sa_install_failed tunnel={} spi_in={:08x} spi_out={:08x} reason=\"dataplane refused it\"",
                  sa.tunnel, spi_in, spi_out);
        // A tunnel whose first child this was is not up: say why.
        bool has_child = false;
        for (auto& k : sa.children) has_child |= k.state != ChildState::Deleting;
        if (t && t->ike == sa.local_spi() && t->up && !has_child) {
            sink_.tunnel_down(t->id);
            t->up = false;
            t->hist.last_down_detail = "dataplane refused the child SA";
            tunnel_event(*t, EventKind::Down, DownReason::dataplane);
        }
        return false;
    }
    count(Counter::child_installed);
    LOG_INFO("ike", "event=child_sa_up tunnel={} spi_in={:08x} spi_out={:08x} proposal={} local={} remote={} outbound={}",
             sa.tunnel, c.spi_in, c.spi_out, proposal_to_string(c.proposal), ts_str(c.ts_local), ts_str(c.ts_remote),
             spec.outbound);
    return true;
}

void Engine::remove_child(IkeSa& sa, uint32_t spi_in, const char* why) {
    for (size_t i = 0; i < sa.children.size(); i++) {
        if (sa.children[i].spi_in != spi_in) continue;
        LOG_INFO("ike", "event=child_sa_down tunnel={} spi_in={:08x} spi_out={:08x} reason=\"{}\"", sa.tunnel, spi_in,
                 sa.children[i].spi_out, why);
        sink_.child_remove(sa.tunnel, spi_in);
        free_child_spi(spi_in);
        count(Counter::child_removed);
        sa.children.erase(sa.children.begin() + long(i));
        tunnel_refresh(sa);
        return;
    }
}

// A site that authenticates again replaces its older IKE SA: with
// INITIAL_CONTACT at once (the peer says it has no other state, §2.4), and
// otherwise with a DELETE once the new one is in place.
void Engine::replace_stale(IkeSa& sa, bool initial_contact) {
    Tunnel* t = tunnel_of(sa);
    if (!t) return;
    uint64_t old = t->ike;
    t->ike = sa.local_spi();
    if (!old || old == sa.local_spi()) return;
    IkeSa* o = find(old);
    if (!o) return;
    count(Counter::initial_contact);
    tunnel_event(*t, EventKind::Replaced, DownReason::replaced);
    LOG_INFO("ike", "event=replace_stale_sa tunnel={} old={:016x} new={:016x} initial_contact={}", t->id, old,
             sa.local_spi(), initial_contact);
    if (initial_contact || o->state != IkeState::Established) destroy(*o, "replaced (INITIAL_CONTACT)");
    else queue(*o, Task{TaskKind::DeleteIke});
}

}  // namespace nimbus::ike
