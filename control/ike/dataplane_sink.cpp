#include "control/ike/dataplane_sink.h"

#include <algorithm>

#include <fmt/format.h>

#include "control/ike/messages.h"
#include "src/common/bytes.h"
#include "src/common/clock.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

dp::Cipher cipher_of(uint16_t encr_id, uint16_t key_bits) {
    if (encr_id == ENCR_CHACHA20_POLY1305) return dp::Cipher::Chacha20Poly1305;
    return key_bits == 128 ? dp::Cipher::AesGcm128 : dp::Cipher::AesGcm256;
}

dp::SaSpec sa_spec(const ChildSaSpec& s, bool inbound) {
    dp::SaSpec d;
    d.spi = inbound ? s.spi_in : s.spi_out;
    d.cipher = cipher_of(s.encr_id, s.key_bits);
    d.esn = s.esn;
    d.replay_window = s.replay_window;
    const Secret& k = inbound ? s.key_in : s.key_out;
    d.keymat.assign(k.data(), k.data() + k.size());
    return d;
}

void wipe_sa(dp::SaSpec& s) {
    if (!s.keymat.empty()) wipe(s.keymat.data(), s.keymat.size());
    s.keymat.clear();
}

uint64_t dscp_mask(const std::vector<int>& d) {
    uint64_t m = 0;
    for (int x : d)
        if (x >= 0 && x < 64) m |= 1ull << x;
    return m;
}

}  // namespace

DataplaneSink::DataplaneSink(routing::Rib& rib, std::function<int(const IpAddr&)> underlay_vrf)
    : rib_(rib), underlay_vrf_(std::move(underlay_vrf)) {}

DataplaneSink::~DataplaneSink() {
    for (auto& [id, t] : tuns_) drop(t);
    tuns_.clear();
}

dp::TunnelId DataplaneSink::dp_id(TunnelId id) const {
    auto it = tuns_.find(id);
    return it == tuns_.end() ? dp::kNoTunnel : it->second.dp;
}

std::vector<dp::PathSpec> DataplaneSink::paths(const TunnelSpec& s) const {
    std::vector<dp::PathSpec> v;
    v.push_back(dp::PathSpec{s.paths.local.addr, s.paths.remote.addr, s.paths.local.port, s.paths.remote.port, true});
    for (auto& e : s.paths.extra) {
        if (v.size() >= size_t(dp::kMaxPaths)) break;
        if (e.addr.family != s.paths.local.addr.family) continue;
        v.push_back(dp::PathSpec{s.paths.local.addr, e.addr, s.paths.local.port, e.port, true});
    }
    return v;
}

// The tunnel's routes in its VRF: exactly `want`.
void DataplaneSink::routes(Tun& t, const std::vector<Prefix>& want) {
    bool changed = false;
    for (auto& p : t.routed)
        if (std::find(want.begin(), want.end(), p) == want.end()) {
            rib_.remove(t.spec.vrf, p, routing::Source::Tunnel,
                        routing::NextHop{routing::NextHop::Kind::Tunnel, -1, {}, t.dp});
            changed = true;
        }
    for (auto& p : want)
        if (std::find(t.routed.begin(), t.routed.end(), p) == t.routed.end()) {
            rib_.add(t.spec.vrf,
                     routing::Route{p, routing::Source::Tunnel, routing::default_distance(routing::Source::Tunnel),
                                    routing::NextHop{routing::NextHop::Kind::Tunnel, -1, {}, t.dp}, 0,
                                    t.spec.name});  // the owner: FRR injection checks it against the site
            changed = true;
        }
    t.routed = want;
    if (changed) {
        std::string err;
        if (!rib_.commit(&err)) LOG_ERROR("ike-dp", "event=route_commit_failed tunnel={} error=\"{}\"", t.spec.id, err);
    }
}

void DataplaneSink::drop(Tun& t) {
    if (t.dp == dp::kNoTunnel) return;
    routes(t, {});
    dp::tunnel_remove(t.dp);
    for (auto& [spi, p] : t.pending) wipe_sa(p.out);
    t.pending.clear();
    LOG_INFO("ike-dp", "event=tunnel_removed tunnel={} dp={}", t.spec.id, t.dp);
    t.dp = dp::kNoTunnel;
}

void DataplaneSink::tunnel_up(const TunnelSpec& spec) {
    Tun& t = tuns_[spec.id];
    t.spec = spec;
}

void DataplaneSink::tunnel_update(const TunnelSpec& spec) {
    auto it = tuns_.find(spec.id);
    if (it == tuns_.end()) return;
    Tun& t = it->second;
    bool paths_changed = !(spec.paths == t.spec.paths);
    bool encap_changed = spec.paths.udp_encap != t.spec.paths.udp_encap;
    t.spec = spec;
    if (t.dp == dp::kNoTunnel) return;
    if (encap_changed)
        // ESP-in-UDP versus plain ESP is fixed per dataplane tunnel; the
        // peers rekey after a NAT appears (libipsec does at once).
        LOG_WARN("ike-dp", "event=encapsulation_change_ignored tunnel={} udp={}", spec.id, spec.paths.udp_encap);
    if (paths_changed) {
        std::string err;
        if (!dp::tunnel_update_paths(t.dp, paths(spec), &err)) {
            errors_++;
            LOG_ERROR("ike-dp", "event=path_update_failed tunnel={} error=\"{}\"", spec.id, err);
        } else {
            LOG_INFO("ike-dp", "event=paths_updated tunnel={} remote={} paths={}", spec.id, spec.paths.remote.str(),
                     1 + spec.paths.extra.size());
        }
    }
    routes(t, spec.remote_prefixes);
}

void DataplaneSink::tunnel_down(TunnelId id) {
    auto it = tuns_.find(id);
    if (it == tuns_.end()) return;
    drop(it->second);
    tuns_.erase(it);
}

bool DataplaneSink::child_install(const ChildSaSpec& s) {
    Tun& t = tuns_[s.tunnel];
    std::string err;
    dp::SaSpec in = sa_spec(s, true);
    if (t.dp == dp::kNoTunnel) {
        dp::TunnelSpec ds;
        ds.name = t.spec.name.empty() ? fmt::format("ike-{}", s.tunnel) : t.spec.name;
        ds.vrf = t.spec.vrf;
        ds.underlay_vrf = underlay_vrf_ ? underlay_vrf_(t.spec.paths.local.addr) : 0;
        ds.udp = t.spec.paths.udp_encap;
        ds.critical_dscp = dscp_mask(t.spec.critical_dscp);
        ds.paths = paths(t.spec);
        ds.out = sa_spec(s, false);
        ds.in = {in};
        t.dp = dp::tunnel_install(ds, &err);
        wipe_sa(ds.out);
        wipe_sa(ds.in[0]);
        wipe_sa(in);
        if (t.dp == dp::kNoTunnel) {
            errors_++;
            LOG_ERROR("ike-dp", "event=tunnel_install_failed tunnel={} error=\"{}\"", s.tunnel, err);
            return false;
        }
        LOG_INFO("ike-dp", "event=tunnel_installed tunnel={} dp={} vrf={} udp={} in={:08x} out={:08x} remote={}",
                 s.tunnel, t.dp, ds.vrf, ds.udp, s.spi_in, s.spi_out, t.spec.paths.remote.str());
        routes(t, t.spec.remote_prefixes);
        return true;
    }
    // A rekey: the new inbound SA now; the outbound one now or when the
    // engine says the peer can receive on it.
    if (!dp::tunnel_add_in_sa(t.dp, in, &err)) {
        errors_++;
        LOG_ERROR("ike-dp", "event=add_in_sa_failed tunnel={} spi={:08x} error=\"{}\"", s.tunnel, s.spi_in, err);
        wipe_sa(in);
        return false;
    }
    wipe_sa(in);
    dp::SaSpec out = sa_spec(s, false);
    if (s.outbound) {
        if (!dp::tunnel_set_out_sa(t.dp, out, &err)) {
            errors_++;
            LOG_ERROR("ike-dp", "event=set_out_sa_failed tunnel={} spi={:08x} error=\"{}\"", s.tunnel, s.spi_out, err);
        }
        wipe_sa(out);
    } else {
        t.pending[s.spi_in].out = std::move(out);
    }
    routes(t, t.spec.remote_prefixes);
    return true;
}

void DataplaneSink::child_outbound(TunnelId id, uint32_t spi_in) {
    auto it = tuns_.find(id);
    if (it == tuns_.end()) return;
    Tun& t = it->second;
    auto p = t.pending.find(spi_in);
    if (p == t.pending.end() || t.dp == dp::kNoTunnel) return;
    std::string err;
    if (!dp::tunnel_set_out_sa(t.dp, p->second.out, &err)) {
        errors_++;
        LOG_ERROR("ike-dp", "event=set_out_sa_failed tunnel={} spi={:08x} error=\"{}\"", id, p->second.out.spi, err);
    }
    wipe_sa(p->second.out);
    t.pending.erase(p);
}

void DataplaneSink::child_remove(TunnelId id, uint32_t spi_in) {
    seen_.erase(spi_in);
    auto it = tuns_.find(id);
    if (it == tuns_.end()) return;
    Tun& t = it->second;
    if (auto p = t.pending.find(spi_in); p != t.pending.end()) {
        wipe_sa(p->second.out);
        t.pending.erase(p);
    }
    if (t.dp == dp::kNoTunnel) return;
    dp::TunnelInfo ti;
    if (!dp::tunnel_info(t.dp, &ti)) return;
    if (std::find(ti.in_spis.begin(), ti.in_spis.end(), spi_in) == ti.in_spis.end()) return;
    if (ti.in_spis.size() == 1) {
        // The last child: the tunnel goes (the engine sends tunnel_down next).
        drop(t);
        return;
    }
    std::string err;
    if (!dp::tunnel_remove_in_sa(t.dp, spi_in, &err)) {
        errors_++;
        LOG_ERROR("ike-dp", "event=remove_in_sa_failed tunnel={} spi={:08x} error=\"{}\"", id, spi_in, err);
    }
}

ChildStats DataplaneSink::child_stats(TunnelId, uint32_t spi_in) const {
    ChildStats st;
    dp::SaInfo si;
    if (!dp::sa_in_info(spi_in, &si)) return st;
    st.in_packets = si.counters[int(dp::SaCounter::packets)];
    st.in_bytes = si.counters[int(dp::SaCounter::bytes)];
    // The dataplane counts; when its count moved since we last looked,
    // authenticated ESP arrived in between: that is life (DPD, RFC 7296 §2.4).
    // We only know it came after the previous look, so that is the time we
    // report: never later than the truth, so a dead peer is still found
    // within interval x retries of its last packet.
    Seen& s = seen_[spi_in];
    uint64_t now = mono_ns();
    // The first look at an SA proves nothing about when its packets came.
    if (st.in_packets != s.packets) {
        s.packets = st.in_packets;
        s.at_ns = s.looked_ns;
    }
    s.looked_ns = now;
    st.last_in_ns = s.at_ns;
    return st;
}

}  // namespace nimbus::ike
