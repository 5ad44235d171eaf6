// The engine core: datagram intake, SA tables, the message-ID window
// (§2.3), retransmission with exponential backoff (§2.1), fragments
// (RFC 7383), timers, and the tunnel registry.
#include "control/ike/engine.h"

#include <openssl/rand.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::ike {

namespace {

const char* const kCounterNames[] = {
#define NIMBUS_X(n, d) #n,
    NIMBUS_IKE_COUNTERS(NIMBUS_X)
#undef NIMBUS_X
};
const char* const kCounterHelp[] = {
#define NIMBUS_X(n, d) d,
    NIMBUS_IKE_COUNTERS(NIMBUS_X)
#undef NIMBUS_X
};

constexpr uint64_t kNs = 1'000'000'000ull;
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
constexpr int kProbeTries = 2;
constexpr int kSpiTries = 1 << 20;   // random picks for a free SPI slot before giving up
constexpr int kMaxProbes = 4;

// An address inside the tunnel's own selectors (strongSwan lists its LAN
// addresses) can only be reached through the tunnel: never a path.
bool inside_tunnel(const IkeSa& sa, const IpAddr& a) {
    for (auto& c : sa.children)
        for (auto& t : c.ts_remote)
            for (auto& p : range_to_prefixes(t.start, t.end))
                if (p.contains(a)) return true;
    return false;
}

}  // namespace

const char* counter_name(int i) { return i >= 0 && i < kCounterCount ? kCounterNames[i] : "?"; }
const char* counter_help(int i) { return i >= 0 && i < kCounterCount ? kCounterHelp[i] : "?"; }

const char* ike_state_name(IkeState s) {
    switch (s) {
    case IkeState::InitSent: return "init-sent";
    case IkeState::AuthSent: return "auth-sent";
    case IkeState::HalfOpen: return "half-open";
    case IkeState::Established: return "established";
    case IkeState::Rekeyed: return "rekeyed";
    case IkeState::Deleting: return "deleting";
    case IkeState::Dead: return "dead";
    }
    return "?";
}

const char* child_state_name(ChildState s) {
    switch (s) {
    case ChildState::Installed: return "installed";
    case ChildState::Rekeyed: return "rekeyed";
    case ChildState::Deleting: return "deleting";
    }
    return "?";
}

const char* task_name(TaskKind k) {
    switch (k) {
    case TaskKind::Liveness: return "liveness";
    case TaskKind::RekeyChild: return "rekey-child";
    case TaskKind::RekeyIke: return "rekey-ike";
    case TaskKind::DeleteChild: return "delete-child";
    case TaskKind::DeleteIke: return "delete-ike";
    case TaskKind::MobikeUpdate: return "mobike-update";
    case TaskKind::ProbeAddress: return "probe-address";
    }
    return "?";
}

Engine::Engine(Policy policy, Transport& net, ChildSaSink& sink, Clock now)
    : policy_(std::move(policy)), net_(net), sink_(sink), now_(std::move(now)) {}

Engine::~Engine() {
    // Take everything out of the dataplane; no DELETEs (the daemon is going
    // away, peers find out by DPD or by our INITIAL_CONTACT next time).
    for (auto& [spi, sa] : sas_)
        if (sa->state != IkeState::Dead) destroy(*sa, "shutdown");
    reap();
}

uint64_t Engine::new_spi() {
    for (;;) {
        uint64_t v = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) crypto_fatal("RAND_bytes (SPI)");
        if (v != 0 && !sas_.count(v)) return v;
    }
}

uint32_t Engine::new_child_spi() {
    const uint32_t mask = sink_.spi_slot_mask();
    for (int tries = 0;; tries++) {
        uint32_t v = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) crypto_fatal("RAND_bytes (SPI)");
        // RFC 4303 §2.1: 1..255 are reserved. Unique among our children in
        // the dataplane's slot, not only as a whole (random 32-bit SPIs
        // collide in 18 bits: ~2 of 1,000 tunnels failed to install), in a
        // slot no static tunnel holds, and reserved from here on (a request
        // in flight holds it).
        if (v < 256) continue;
        bool free = !child_slots_.count(v & mask) && sink_.spi_slot_free(v);
        if (!free && tries < kSpiTries) continue;
        if (!free) LOG_ERROR("ike", "event=spi_table_full spi={:08x} (the install will fail)", v);
        child_slots_.insert(v & mask);
        return v;
    }
}

IkeSa* Engine::find(uint64_t local_spi) {
    auto it = sas_.find(local_spi);
    return it == sas_.end() || it->second->state == IkeState::Dead ? nullptr : it->second.get();
}

const IkeSa* Engine::sa_for_test(uint64_t local_spi) const {
    auto it = sas_.find(local_spi);
    return it == sas_.end() ? nullptr : it->second.get();
}

const Tunnel* Engine::tunnel_for_test(TunnelId id) const {
    auto it = tunnels_.find(id);
    return it == tunnels_.end() ? nullptr : &it->second;
}

IkeSa& Engine::add_sa(std::unique_ptr<IkeSa> sa) {
    IkeSa& r = *sa;
    sas_[sa->local_spi()] = std::move(sa);
    return r;
}

size_t Engine::max_message(const IkeSa& sa) const {
    size_t ip = sa.remote.addr.is_v4() ? 20 : 40;
    size_t over = ip + 8 + (sa.natt ? kNonEspMarkerLen : 0);
    return policy_.settings.fragment_size > over + 64 ? policy_.settings.fragment_size - over : 64;
}

// ---- intake

void Engine::receive(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> data) {
    count(Counter::rx_datagrams);
    std::span<const uint8_t> d = data;
    if (local.port == policy_.settings.port_natt) {
        switch (classify_natt(d)) {
        case NattKind::Keepalive: count(Counter::rx_keepalives); return;
        case NattKind::Esp: count(Counter::rx_esp_on_ike_port); return;
        case NattKind::Runt: count(Counter::rx_malformed); return;
        case NattKind::Ike: d = d.subspan(kNonEspMarkerLen); break;
        }
    }
    Rx rx;
    rx.local = local;
    rx.remote = remote;
    rx.raw = d;
    if (auto e = parse_message(d, rx.msg); !e.ok()) {
        count(Counter::rx_malformed);
        LOG_DEBUG("ike", "event=malformed from={} error=\"{}\"", remote.str(), e.str());
        return;
    }
    dispatch(rx);
    reap();
}

// The IKE header's fields, read without a full parse (RFC 7296 §3.1).
bool Engine::deferred(const Datagram& d, IkeSa** owner) {
    *owner = nullptr;
    std::span<const uint8_t> m = d.data;
    if (d.local.port == policy_.settings.port_natt) {
        if (m.size() < kNonEspMarkerLen || !std::all_of(m.begin(), m.begin() + kNonEspMarkerLen,
                                                        [](uint8_t b) { return b == 0; }))
            return false;   // a keepalive, ESP or a runt: receive() counts it
        m = m.subspan(kNonEspMarkerLen);
    }
    if (m.size() < kHeaderLen) return false;
    uint8_t exchange = m[18], flags = m[19];
    bool response = flags & kFlagResponse;
    if (exchange != IKE_AUTH && !(exchange == IKE_SA_INIT && response)) return false;
    // The I flag names the original initiator: our SPI is the other one.
    auto spi = [&m](size_t at) {
        uint64_t v = 0;
        for (size_t i = 0; i < 8; i++) v = v << 8 | m[at + i];
        return v;
    };
    *owner = find((flags & kFlagInitiator) ? spi(8) : spi(0));
    return true;
}

void Engine::receive_batch(std::span<const Datagram> batch) {
    auto is_new = [this](const Datagram& d) {
        std::span<const uint8_t> m = d.data;
        if (d.local.port == policy_.settings.port_natt) {
            if (m.size() < kNonEspMarkerLen) return false;
            m = m.subspan(kNonEspMarkerLen);
        }
        if (m.size() < kHeaderLen) return false;
        for (size_t i = 8; i < 16; i++)
            if (m[i]) return false;                 // SPIr set: an SA we know (or should)
        return m[18] == IKE_SA_INIT && !(m[19] & kFlagResponse);
    };
    for (auto& d : batch) {
        if (is_new(d)) continue;
        IkeSa* owner = nullptr;
        if (!deferred(d, &owner)) {
            receive(d.local, d.remote, d.data);
            continue;
        }
        if (queued() >= policy_.settings.max_queued ||
            work_bytes_ + d.data.size() > policy_.settings.max_queued_bytes) {
            count(Counter::rx_datagrams);
            count(Counter::rx_queue_full);
            continue;
        }
        // A request sent again while its first copy waits here is
        // answered when that copy is (a fragment may repeat its message ID:
        // only whole SK messages are matched).
        std::span<const uint8_t> m = d.data.subspan(d.local.port == policy_.settings.port_natt ? kNonEspMarkerLen : 0);
        uint32_t mid = uint32_t(m[20]) << 24 | uint32_t(m[21]) << 16 | uint32_t(m[22]) << 8 | m[23];
        bool whole_request = !(m[19] & kFlagResponse) && m[16] == PT_SK;
        if (owner && whole_request && owner->queued && owner->queued_request == mid) {
            count(Counter::rx_datagrams);
            count(Counter::rx_queued_repeats);
            continue;
        }
        count(Counter::rx_queued);
        if (owner) {
            owner->queued++;
            if (whole_request) owner->queued_request = mid;
        }
        work_[m[18] == IKE_AUTH ? 0 : 1].push_back(Work{d.local, d.remote, Bytes(d.data.begin(), d.data.end())});
        work_bytes_ += d.data.size();
    }
    // New IKE_SA_INITs last: the half-open count they are admitted against
    // (cookies, limits) includes the handshakes queued above.
    for (auto& d : batch)
        if (is_new(d)) receive(d.local, d.remote, d.data);
}

void Engine::run_queued(uint64_t budget_ns) {
    uint64_t until = now_() + budget_ns;
    do {
        auto& q = work_[work_[0].empty() ? 1 : 0];
        Work w = std::move(q.front());
        q.pop_front();
        work_bytes_ -= w.data.size();
        IkeSa* owner = nullptr;
        deferred(Datagram{w.local, w.remote, w.data}, &owner);
        if (owner && owner->queued) owner->queued--;
        receive(w.local, w.remote, w.data);
    } while (queued() && now_() < until);
}

void Engine::dispatch(Rx& rx) {
    const Header& h = rx.msg.header;
    if (h.exchange == IKE_SA_INIT && !h.response()) {
        init_request(rx);
        return;
    }
    // The I flag says the sender is the original initiator, which makes us
    // the responder and our SPI the responder's (§3.1).
    uint64_t mine = h.initiator() ? h.spi_r : h.spi_i;
    IkeSa* sa = find(mine);
    if (!sa) {
        count(Counter::rx_unknown_spi);
        LOG_DEBUG("ike", "event=unknown_spi from={} spi_i={:016x} spi_r={:016x} exchange={}", rx.remote.str(), h.spi_i,
                  h.spi_r, exchange_name(h.exchange));
        return;
    }
    uint64_t theirs = h.initiator() ? h.spi_i : h.spi_r;
    uint64_t expect = sa->initiator ? sa->spi_r : sa->spi_i;
    bool init_resp = h.exchange == IKE_SA_INIT && h.response() && sa->state == IkeState::InitSent;
    if (sa->initiator == h.initiator() || (!init_resp && theirs != expect)) {
        count(Counter::rx_unexpected);
        return;
    }
    if (h.response()) handle_response(*sa, rx);
    else handle_request(*sa, rx);
}

bool Engine::open(IkeSa& sa, Rx& rx, bool* complete) {
    *complete = false;
    if (!sa.cin) {
        count(Counter::rx_unexpected);
        return false;
    }
    if (rx.msg.sk()) {
        auto e = open_message(rx.raw, rx.msg, *sa.cin);
        if (!e.ok()) {
            count(e.code == ParseCode::Decrypt ? Counter::rx_decrypt_failed : Counter::rx_malformed);
            LOG_DEBUG("ike", "event=open_failed sa={:016x} from={} error=\"{}\"", sa.local_spi(), rx.remote.str(),
                      e.str());
            return false;
        }
        *complete = true;
        return true;
    }
    if (const SkfPayload* f = rx.msg.skf()) {
        count(Counter::rx_fragments);
        std::vector<uint8_t> chunk;
        auto e = open_fragment(rx.raw, rx.msg, *sa.cin, chunk);
        if (!e.ok()) {
            count(Counter::rx_decrypt_failed);
            return false;
        }
        // RFC 7383 §2.6.1: each fragment is authenticated before it is kept.
        uint32_t id = rx.msg.header.message_id;
        bool resp = rx.msg.header.response();
        if (sa.reasm_msgid != id || sa.reasm_response != resp) {
            sa.reasm.reset();
            sa.reasm_msgid = id;
            sa.reasm_response = resp;
        }
        auto r = sa.reasm.add(*f, std::move(chunk));
        if (r == FragmentReassembly::Result::Refused) {
            count(Counter::rx_malformed);
            return false;
        }
        if (r != FragmentReassembly::Result::Complete) return true;
        uint8_t first = PT_NONE;
        auto pt = sa.reasm.take(&first);
        if (auto pe = parse_inner(pt, first, rx.msg); !pe.ok()) {
            count(Counter::rx_malformed);
            return false;
        }
        *complete = true;
        return true;
    }
    // Everything after IKE_SA_INIT is protected (§3.14).
    count(Counter::rx_unexpected);
    return false;
}

// An authenticated message from the peer: liveness, and the address rules
// of §2.23 (NAT) and RFC 4555 (MOBIKE: only UPDATE_SA_ADDRESSES moves the
// SA, but a known additional address is validated by traffic from it).
void Engine::note_rx(IkeSa& sa, const Rx& rx) {
    sa.last_rx_ns = now_();
    for (auto& a : sa.peer_addresses)
        if (a.addr == rx.remote.addr && !a.validated && !inside_tunnel(sa, a.addr)) {
            a.validated = true;
            LOG_INFO("ike", "event=path_validated tunnel={} addr={}", sa.tunnel, a.addr.str());
            tunnel_refresh(sa);
        }
    if (sa.state != IkeState::Established || rx.remote == sa.remote) return;
    if (!sa.peer_mobike && sa.nat.peer_behind_nat) {
        // §2.23: a peer behind a NAT may have a new mapping; follow it.
        LOG_INFO("ike", "event=peer_address_changed sa={:016x} peer=\"{}\" from={} to={}", sa.local_spi(),
                 sa.peer_id.str(), sa.remote.str(), rx.remote.str());
        count(Counter::nat_mapping_changes);
        sa.remote = rx.remote;
        sa.local = rx.local;
        tunnel_refresh(sa);
    }
}

void Engine::handle_request(IkeSa& sa, Rx& rx) {
    uint32_t id = rx.msg.header.message_id;
    if (sa.have_cached && id == sa.cached_msgid && id + 1 == sa.peer_msgid) {
        // §2.1: a repeated request gets the same response. For a fragmented
        // request, answer fragment 1 only (RFC 7383 §2.6.1); and only an
        // authentic copy, so a replay from elsewhere cannot aim it at a
        // third party.
        if (const SkfPayload* f = rx.msg.skf()) {
            if (f->number != 1) return;
            std::vector<uint8_t> chunk;
            if (!sa.cin || !open_fragment(rx.raw, rx.msg, *sa.cin, chunk).ok()) {
                count(Counter::rx_decrypt_failed);
                return;
            }
        } else if (rx.remote != sa.cached_to) {
            Message copy = rx.msg;
            if (!sa.cin || !open_message(rx.raw, copy, *sa.cin).ok()) {
                count(Counter::rx_decrypt_failed);
                return;
            }
        }
        count(Counter::rx_retransmits);
        for (auto& d : sa.cached_response) send_raw(rx.local, rx.remote, d);
        return;
    }
    if (id != sa.peer_msgid) {
        count(Counter::rx_bad_msgid);
        return;
    }
    switch (sa.state) {
    case IkeState::HalfOpen:
        if (rx.msg.header.exchange != IKE_AUTH) {
            count(Counter::rx_unexpected);
            return;
        }
        break;
    case IkeState::Established:
    case IkeState::Rekeyed:
    case IkeState::Deleting:
        if (rx.msg.header.exchange == IKE_AUTH) {
            count(Counter::rx_unexpected);
            return;
        }
        break;
    default:
        count(Counter::rx_unexpected);
        return;
    }
    bool complete = false;
    if (!open(sa, rx, &complete) || !complete) return;
    note_rx(sa, rx);
    switch (rx.msg.header.exchange) {
    case IKE_AUTH: auth_request(sa, rx); break;
    case CREATE_CHILD_SA: create_child_request(sa, rx); break;
    case INFORMATIONAL: informational_request(sa, rx); break;
    default:
        count(Counter::rx_unexpected);
        // §1.5: an authenticated request we cannot handle still gets an answer.
        send_response(sa, rx, rx.msg.header.exchange, {make_notify(N_INVALID_SYNTAX)});
        break;
    }
    schedule(sa);
}

void Engine::handle_response(IkeSa& sa, Rx& rx) {
    if (!sa.out || rx.msg.header.message_id != sa.out->msgid) {
        count(Counter::rx_bad_msgid);
        return;
    }
    uint8_t ex = rx.msg.header.exchange;
    if (sa.out->init != (ex == IKE_SA_INIT)) {
        count(Counter::rx_unexpected);
        return;
    }
    if (ex == IKE_SA_INIT) {
        init_response(sa, rx);
    } else {
        bool complete = false;
        if (!open(sa, rx, &complete) || !complete) return;
        note_rx(sa, rx);
        // An inbound SPI reserved for the request but not used by its
        // outcome goes back to the pool.
        uint32_t reserved = sa.out->new_spi_in;
        switch (ex) {
        case IKE_AUTH:
            if (sa.out->auth) auth_response(sa, rx);
            else count(Counter::rx_unexpected);
            break;
        case CREATE_CHILD_SA: create_child_response(sa, rx); break;
        case INFORMATIONAL: informational_response(sa, rx); break;
        default: count(Counter::rx_unexpected); break;
        }
        if (reserved && !sa.out && !sa.child_by_in(reserved)) free_child_spi(reserved);
    }
    if (sa.state != IkeState::Dead && !sa.out) next_task(sa);
    if (sa.state != IkeState::Dead) schedule(sa);
}

// ---- output

void Engine::send_raw(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> msg) {
    bool ok;
    if (local.port == policy_.settings.port_natt) {
        std::vector<uint8_t> buf(kNonEspMarkerLen + msg.size(), 0);
        std::copy(msg.begin(), msg.end(), buf.begin() + kNonEspMarkerLen);
        ok = net_.send(local, remote, buf);
    } else {
        ok = net_.send(local, remote, msg);
    }
    if (!ok) count(Counter::tx_errors);
}

void Engine::transmit(IkeSa& sa, const std::vector<Bytes>& dgrams, const Endpoint& to) {
    for (auto& d : dgrams) send_raw(sa.local, to, d);
    count(Counter::tx_messages);
    if (dgrams.size() > 1) count(Counter::tx_fragments, dgrams.size());
}

std::vector<Bytes> Engine::seal(IkeSa& sa, const Header& h, const std::vector<Payload>& payloads) {
    MessageBuilder b(h);
    for (auto& p : payloads) b.add_protected(p);
    std::vector<Bytes> out;
    auto inner = b.inner_octets();
    if (!inner) {
        LOG_ERROR("ike", "event=build_failed sa={:016x} exchange={}", sa.local_spi(), exchange_name(h.exchange));
        return out;
    }
    size_t whole = kHeaderLen + kGenericHeaderLen + sk_sealed_len(inner->size());
    if (sa.peer_frag && whole > max_message(sa)) {
        if (auto f = b.build_fragments(*sa.cout, max_message(sa))) out = std::move(*f);
    } else if (auto m = b.build(*sa.cout)) {
        out.push_back(std::move(*m));
    }
    return out;
}

void Engine::send_response(IkeSa& sa, Rx& rx, uint8_t exchange, std::vector<Payload> payloads) {
    Header h;
    h.spi_i = sa.spi_i;
    h.spi_r = sa.spi_r;
    h.exchange = exchange;
    h.flags = uint8_t(kFlagResponse | (sa.initiator ? kFlagInitiator : 0));
    h.message_id = rx.msg.header.message_id;
    sa.cached_response = seal(sa, h, payloads);
    sa.cached_msgid = h.message_id;
    sa.cached_to = rx.remote;
    sa.have_cached = true;
    sa.peer_msgid = h.message_id + 1;
    for (auto& d : sa.cached_response) send_raw(rx.local, rx.remote, d);
    count(Counter::tx_messages);
    if (sa.cached_response.size() > 1) count(Counter::tx_fragments, sa.cached_response.size());
}

bool Engine::send_request(IkeSa& sa, std::unique_ptr<Request> req, uint8_t exchange, std::vector<Payload> payloads) {
    Header h;
    h.spi_i = sa.spi_i;
    h.spi_r = sa.spi_r;
    h.exchange = exchange;
    h.flags = sa.initiator ? kFlagInitiator : 0;
    h.message_id = sa.next_msgid++;
    req->msgid = h.message_id;
    req->datagrams = seal(sa, h, payloads);
    if (req->datagrams.empty()) return false;
    uint64_t now = now_();
    req->first_sent_ns = now;
    req->tries = 1;
    req->next_retx_ns = now + policy_.settings.retransmit_timeout_ns;
    transmit(sa, req->datagrams, req->to ? *req->to : sa.remote);
    sa.out = std::move(req);
    schedule(sa);
    return true;
}

// ---- tasks and timers

// RFC 4555 §3.5: check the peer's additional addresses with a liveness
// exchange sent to each; an answer from there makes it a path.
void Engine::probe_addresses(IkeSa& sa) {
    int n = 0;
    for (auto& a : sa.peer_addresses) {
        if (a.validated || a.addr == sa.remote.addr || a.addr.family != sa.local.addr.family) continue;
        if (inside_tunnel(sa, a.addr)) continue;
        if (++n > kMaxProbes) break;
        Task t{TaskKind::ProbeAddress};
        t.addr = a.addr;
        queue(sa, t);
    }
}

void Engine::queue(IkeSa& sa, Task t) {
    for (auto& q : sa.tasks)
        if (q.kind == t.kind && q.spi == t.spi && q.addr == t.addr && t.kind != TaskKind::DeleteChild) return;
    sa.tasks.push_back(std::move(t));
    if (!sa.out) next_task(sa);
    schedule(sa);
}

void Engine::next_task(IkeSa& sa) {
    while (!sa.out && !sa.tasks.empty() && sa.state != IkeState::Dead) {
        Task t = std::move(sa.tasks.front());
        sa.tasks.pop_front();
        bool deleting = sa.state == IkeState::Deleting || sa.state == IkeState::Rekeyed;
        if (sa.state != IkeState::Established && !(deleting && t.kind == TaskKind::DeleteIke)) continue;
        switch (t.kind) {
        case TaskKind::RekeyChild: start_rekey_child(sa, t.spi); break;
        case TaskKind::RekeyIke: start_rekey_ike(sa); break;
        default: start_informational(sa, t); break;
        }
    }
}

// How many times a request's retransmission waits for an answer queued
// for public-key work (each wait: one retransmission timeout).
constexpr int kMaxHeld = 30;

// The wait before an SA's next liveness check: the interval less up to a
// fifth of it, different for each SA and each check (a hash of the SA's
// SPI and its last check). SAs that came up together (a reconnect storm,
// one edge standing in for many sites) would otherwise probe in lockstep
// forever: every interval a burst of one request per site at once, which
// the dataplane's punt policer and the peers' sockets must take in one go.
// With this their checks drift apart within a few intervals.
uint64_t Engine::probe_interval(const IkeSa& sa, uint64_t iv) {
    uint64_t x = sa.local_spi() ^ (sa.last_probe_ns * 0x9e3779b97f4a7c15ull);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return iv - (iv / 5 ? x % (iv / 5) : 0);
}

void Engine::schedule(IkeSa& sa) {
    if (sa.wake_ns) timers_.erase({sa.wake_ns, sa.local_spi()});
    sa.wake_ns = 0;
    if (sa.state == IkeState::Dead) return;
    uint64_t w = kNever;
    auto at = [&w](uint64_t t) {
        if (t && t < w) w = t;
    };
    if (sa.out) at(sa.out->next_retx_ns);
    switch (sa.state) {
    case IkeState::HalfOpen:
    case IkeState::Rekeyed:
    case IkeState::Deleting: at(sa.expire_at_ns); break;
    case IkeState::Established: {
        uint64_t iv = uint64_t(sa.cloud->dpd_interval_s) * kNs;
        at(sa.last_rx_ns + iv * sa.cloud->dpd_retries);
        if (!sa.out) at(sa.last_probe_ns + probe_interval(sa, iv));
        at(sa.rekey_at_ns);
        // (sa_timer sends keepalives only while a NAT is in front of us; a
        // deadline it would not move must not wake it: MOBIKE can take the
        // NAT away after keepalives started.)
        if (sa.nat.local_behind_nat) at(sa.keepalive_at_ns);
        for (auto& c : sa.children) {
            if (c.state == ChildState::Installed) at(c.rekey_at_ns);
            at(c.remove_at_ns);
        }
        break;
    }
    default: break;
    }
    for (auto& c : sa.children) at(c.remove_at_ns);
    if (w == kNever) return;
    sa.wake_ns = w;
    timers_.insert({w, sa.local_spi()});
}

uint64_t Engine::next_timer() const {
    if (queued()) return 0;   // now
    uint64_t w = timers_.empty() ? kNever : timers_.begin()->first;
    if (!reconnects_.empty() && reconnects_.begin()->first < w) w = reconnects_.begin()->first;
    return w;
}

void Engine::set_reconnect(Tunnel& t, uint64_t at) {
    if (t.reconnect_at_ns) reconnects_.erase({t.reconnect_at_ns, t.id});
    t.reconnect_at_ns = at;
    if (at) reconnects_.insert({at, t.id});
}

void Engine::on_timer() {
    if (queued()) run_queued(policy_.settings.work_slice_ns);
    uint64_t now = now_();
    while (!timers_.empty() && timers_.begin()->first <= now) {
        auto [t, spi] = *timers_.begin();
        timers_.erase(timers_.begin());
        IkeSa* sa = find(spi);
        if (!sa) continue;
        sa->wake_ns = 0;
        sa_timer(*sa, now);
        if (sa->state == IkeState::Dead) continue;
        schedule(*sa);
        if (sa->wake_ns && sa->wake_ns <= now) {
            // Every deadline schedule() wakes an SA for must be moved by
            // sa_timer once due; one that was not would bring the SA back
            // here at once, for ever (the control thread stuck: VRRP, ZAPI,
            // the CLI). Should that happen, try again a millisecond later
            // and count it.
            count(Counter::timers_overdue);
            LOG_WARN("ike", "event=timer_overdue sa={:016x} state={}", sa->local_spi(), ike_state_name(sa->state));
            timers_.erase({sa->wake_ns, sa->local_spi()});
            sa->wake_ns = std::max(now_(), now) + kNs / 1000;
            timers_.insert({sa->wake_ns, sa->local_spi()});
        }
    }
    while (!reconnects_.empty() && reconnects_.begin()->first <= now) {
        TunnelId id = reconnects_.begin()->second;
        reconnects_.erase(reconnects_.begin());
        auto it = tunnels_.find(id);
        if (it == tunnels_.end()) continue;
        it->second.reconnect_at_ns = 0;
        if (it->second.initiate >= 0 && !it->second.ike) initiate(it->second.initiate);
    }
    reap();
}

void Engine::sa_timer(IkeSa& sa, uint64_t now) {
    if (sa.out && now >= sa.out->next_retx_ns && sa.out->kind == TaskKind::ProbeAddress && !sa.out->init &&
        !sa.out->auth && sa.out->tries >= kProbeTries) {
        // An additional address that does not answer stays unvalidated;
        // the SA itself is fine (RFC 4555 §3.5: a failed path check).
        LOG_DEBUG("ike", "event=address_unreachable sa={:016x} addr={}", sa.local_spi(), sa.out->to->addr.str());
        sa.out.reset();
        next_task(sa);
    }
    if (sa.out && now >= sa.out->next_retx_ns && sa.queued && sa.out->held < kMaxHeld) {
        // The answer has arrived and waits in the work queue. Bounded: what
        // sits there may be forged (SPIs are on the wire), and a stream of it
        // must not keep a request from ever timing out.
        sa.out->held++;
        sa.out->next_retx_ns = now + policy_.settings.retransmit_timeout_ns;
    } else if (sa.out && now >= sa.out->next_retx_ns) {
        if (sa.out->tries >= policy_.settings.retransmit_tries) {
            count(Counter::request_timeouts);
            LOG_WARN("ike", "event=peer_not_responding sa={:016x} peer={} request={} tries={}", sa.local_spi(),
                     sa.remote.str(),
                     sa.out->init ? "IKE_SA_INIT" : sa.out->auth ? "IKE_AUTH" : task_name(sa.out->kind),
                     sa.out->tries);
            destroy(sa, "peer not responding");
            return;
        }
        count(Counter::tx_retransmits);
        transmit(sa, sa.out->datagrams, sa.out->to ? *sa.out->to : sa.remote);
        sa.out->next_retx_ns = now + (policy_.settings.retransmit_timeout_ns << std::min(sa.out->tries, 16));
        sa.out->tries++;
    }
    // Old inbound children lingering after a rekey go when their time is up,
    // in whatever state the IKE SA is (schedule() wakes it for them in all).
    std::vector<uint32_t> gone;
    for (auto& c : sa.children)
        if (c.remove_at_ns && now >= c.remove_at_ns) gone.push_back(c.spi_in);
    for (uint32_t s : gone) remove_child(sa, s, "old SA after rekey");
    switch (sa.state) {
    case IkeState::HalfOpen:
        if (now >= sa.expire_at_ns && sa.queued && now < sa.created_ns + 2 * policy_.settings.half_open_timeout_ns) {
            // Its IKE_AUTH is queued; at most one more timeout's worth, the
            // queued message may be forged.
            sa.expire_at_ns = now + policy_.settings.retransmit_timeout_ns;
        } else if (now >= sa.expire_at_ns) {
            count(Counter::half_open_expired);
            destroy(sa, "half-open timeout");
        }
        return;
    case IkeState::Rekeyed:
    case IkeState::Deleting:
        if (now >= sa.expire_at_ns) destroy(sa, sa.state == IkeState::Rekeyed ? "rekeyed" : "deleted");
        return;
    case IkeState::Established: break;
    default: return;
    }
    uint64_t iv = uint64_t(sa.cloud->dpd_interval_s) * kNs;
    // ESP that arrived counts as life too (the dataplane knows).
    for (auto& c : sa.children) {
        auto st = sink_.child_stats(sa.tunnel, c.spi_in);
        if (st.last_in_ns > sa.last_rx_ns && st.last_in_ns <= now) sa.last_rx_ns = st.last_in_ns;
    }
    if (now >= sa.last_rx_ns + iv * sa.cloud->dpd_retries) {
        count(Counter::dpd_dead);
        LOG_WARN("ike", "event=dead_peer sa={:016x} peer=\"{}\" remote={} silent_s={:.1f}", sa.local_spi(),
                 sa.peer_id.str(), sa.remote.str(), double(now - sa.last_rx_ns) / 1e9);
        destroy(sa, "dead peer");
        return;
    }
    if (!sa.out && now >= sa.last_probe_ns + probe_interval(sa, iv)) queue(sa, Task{TaskKind::Liveness});
    if (sa.rekey_at_ns && now >= sa.rekey_at_ns) {
        sa.rekey_at_ns = 0;
        queue(sa, Task{TaskKind::RekeyIke});
    }
    for (auto& c : sa.children) {
        if (c.state == ChildState::Installed && c.rekey_at_ns && now >= c.rekey_at_ns) {
            c.rekey_at_ns = 0;
            queue(sa, Task{TaskKind::RekeyChild, c.spi_in});
        }
    }
    if (sa.nat.local_behind_nat && sa.keepalive_at_ns && now >= sa.keepalive_at_ns) {
        // RFC 3948 §4: keep the NAT mapping in front of us open.
        Endpoint l = sa.local;
        l.port = policy_.settings.port_natt;
        uint8_t ka = kNattKeepalive;
        if (!net_.send(l, sa.remote, std::span<const uint8_t>(&ka, 1))) count(Counter::tx_errors);
        count(Counter::tx_keepalives);
        sa.keepalive_at_ns = now + policy_.settings.keepalive_ns;
    }
}

void Engine::destroy(IkeSa& sa, const char* why) {
    if (sa.state == IkeState::Dead) return;
    bool was_established = sa.state == IkeState::Established || sa.state == IkeState::Deleting ||
                           sa.state == IkeState::Rekeyed;
    LOG_INFO("ike", "event=ike_sa_down sa={:016x} peer=\"{}\" remote={} state={} reason=\"{}\"", sa.local_spi(),
             sa.peer_id.str(), sa.remote.str(), ike_state_name(sa.state), why);
    if (sa.state == IkeState::HalfOpen) half_open_.remove(sa.init_remote.addr);
    init_index_.erase({sa.spi_i, sa.init_remote});
    if (was_established) count(Counter::ike_deleted);
    if (sa.out && sa.out->new_spi_in) free_child_spi(sa.out->new_spi_in);
    tunnel_detach(sa, why);
    sa.state = IkeState::Dead;
    if (sa.wake_ns) timers_.erase({sa.wake_ns, sa.local_spi()});
    sa.wake_ns = 0;
    sa.out.reset();
    sa.tasks.clear();
    closing_spis_.erase(sa.local_spi());
    doomed_.push_back(sa.local_spi());
}

void Engine::reap() {
    for (uint64_t spi : doomed_) {
        auto it = sas_.find(spi);
        if (it != sas_.end() && it->second->state == IkeState::Dead) sas_.erase(it);
    }
    doomed_.clear();
}

// ---- tunnels

TunnelId Engine::tunnel_id_for(const std::string& cloud, const std::string& name, int initiate) {
    auto key = std::make_pair(cloud, name);
    auto it = tunnel_ids_.find(key);
    if (it != tunnel_ids_.end()) {
        tunnels_[it->second].initiate = initiate;
        return it->second;
    }
    TunnelId id = next_tunnel_++;
    tunnel_ids_[key] = id;
    Tunnel& t = tunnels_[id];
    t.id = id;
    t.cloud = cloud;
    t.name = name;
    t.initiate = initiate;
    return id;
}

Tunnel* Engine::tunnel_of(const IkeSa& sa) {
    auto it = tunnels_.find(sa.tunnel);
    return it == tunnels_.end() ? nullptr : &it->second;
}

TunnelSpec Engine::tunnel_spec(const IkeSa& sa) const {
    TunnelSpec s;
    s.id = sa.tunnel;
    s.cloud = sa.cloud ? sa.cloud->name : "";
    s.vrf = sa.cloud ? sa.cloud->vrf : 0;
    auto it = tunnels_.find(sa.tunnel);
    if (it != tunnels_.end()) s.name = it->second.name;
    if (sa.cloud && sa.site >= 0) s.critical_dscp = sa.cloud->sites[size_t(sa.site)].critical_dscp;
    for (auto& c : sa.children) {
        if (c.state == ChildState::Deleting) continue;
        for (auto& t : c.ts_remote)
            for (auto& p : range_to_prefixes(t.start, t.end))
                if (std::find(s.remote_prefixes.begin(), s.remote_prefixes.end(), p) == s.remote_prefixes.end())
                    s.remote_prefixes.push_back(p);
        for (auto& t : c.ts_local)
            for (auto& p : range_to_prefixes(t.start, t.end))
                if (std::find(s.local_prefixes.begin(), s.local_prefixes.end(), p) == s.local_prefixes.end())
                    s.local_prefixes.push_back(p);
    }
    s.paths.local = sa.local;
    s.paths.remote = sa.remote;
    s.paths.udp_encap = sa.nat.any();
    if (s.paths.udp_encap) {
        s.paths.local.port = policy_.settings.port_natt;
    }
    for (auto& a : sa.peer_addresses)
        if (a.validated && a.addr != sa.remote.addr) s.paths.extra.push_back(Endpoint{a.addr, sa.remote.port});
    return s;
}

// Makes `sa` the carrier of its tunnel; the tunnel goes up with its first child.
void Engine::tunnel_attach(IkeSa& sa) {
    Tunnel* t = tunnel_of(sa);
    if (!t) return;
    t->ike = sa.local_spi();
}

void Engine::tunnel_refresh(IkeSa& sa) {
    Tunnel* t = tunnel_of(sa);
    if (!t || t->ike != sa.local_spi()) return;
    bool has_child = false;
    for (auto& c : sa.children)
        if (c.state != ChildState::Deleting) has_child = true;
    TunnelSpec s = tunnel_spec(sa);
    if (!t->up && has_child) {
        sink_.tunnel_up(s);
        t->up = true;
        t->up_since_ns = now_();
        t->spec = s;
        tunnel_event(*t, EventKind::Up);
    } else if (t->up && !has_child) {
        sink_.tunnel_down(t->id);
        t->up = false;
        t->hist.last_down_detail = "no child SA";
        tunnel_event(*t, EventKind::Down, DownReason::no_child);
    } else if (t->up && !(s.paths == t->spec.paths && s.remote_prefixes == t->spec.remote_prefixes &&
                          s.local_prefixes == t->spec.local_prefixes)) {
        bool moved = !(s.paths == t->spec.paths);
        sink_.tunnel_update(s);
        t->spec = s;
        if (moved) tunnel_event(*t, EventKind::PathChange);
    }
}

void Engine::tunnel_event(Tunnel& t, EventKind k, DownReason r) {
    t.hist.event(now_(), k, r);
    if (k == EventKind::Down || k == EventKind::Replaced) downs_[int(r)]++;
}

void Engine::tunnel_detach(IkeSa& sa, const char* why) {
    for (auto& c : sa.children) {
        free_child_spi(c.spi_in);
        sink_.child_remove(sa.tunnel, c.spi_in);
        count(Counter::child_removed);
    }
    sa.children.clear();
    Tunnel* t = tunnel_of(sa);
    if (!t || t->ike != sa.local_spi()) return;
    DownReason r = t->pending_down != DownReason::none ? t->pending_down : classify_down(why);
    t->pending_down = DownReason::none;
    if (t->up) {
        sink_.tunnel_down(t->id);
        t->up = false;
        t->hist.last_down_detail = why;
        tunnel_event(*t, EventKind::Down, r);
    } else if (r != DownReason::shutdown) {
        tunnel_event(*t, EventKind::ConnectFailed, r);
    }
    t->ike = 0;
    if (t->initiate >= 0 && started_ && !closing_) {
        // Edge role: keep trying, with a growing pause.
        uint64_t b = t->reconnect_backoff_ns ? std::min(t->reconnect_backoff_ns * 2, policy_.settings.reconnect_max_ns)
                                             : kNs;
        t->reconnect_backoff_ns = b;
        set_reconnect(*t, now_() + b);
    }
}

// ---- introspection

std::vector<SaInfo> Engine::sas() const { return sas(0, std::numeric_limits<TunnelId>::max()); }

TunnelId Engine::nth_tunnel_after(TunnelId after, size_t n) const {
    auto it = tunnels_.upper_bound(after);
    for (size_t k = 1; k < n && it != tunnels_.end(); k++) ++it;
    return it == tunnels_.end() ? std::numeric_limits<TunnelId>::max() : it->first;
}

std::vector<SaInfo> Engine::sas(TunnelId after, TunnelId last) const {
    std::vector<SaInfo> v;
    uint64_t now = now_();
    for (auto& [spi, sp] : sas_) {
        const IkeSa& sa = *sp;
        if (sa.state == IkeState::Dead) continue;
        if (sa.tunnel ? sa.tunnel <= after || sa.tunnel > last : after != 0) continue;
        SaInfo i;
        i.spi_i = sa.spi_i;
        i.spi_r = sa.spi_r;
        i.initiator = sa.initiator;
        i.state = ike_state_name(sa.state);
        i.tunnel = sa.tunnel;
        i.cloud = sa.cloud ? sa.cloud->name : "";
        i.peer_id = sa.peer_id.empty() ? "" : sa.peer_id.str();
        i.local_id = sa.local_id.empty() ? "" : sa.local_id.str();
        i.local = sa.local;
        i.remote = sa.remote;
        i.natt = sa.natt;
        i.nat_local = sa.nat.local_behind_nat;
        i.nat_remote = sa.nat.peer_behind_nat;
        i.mobike = sa.peer_mobike;
        i.fragmentation = sa.peer_frag;
        i.proposal = sa.proposal.transforms.empty() ? "" : proposal_to_string(sa.proposal);
        i.auth = sa.auth_method ? auth_method_name(sa.auth_method) : "";
        i.age_s = (now - sa.created_ns) / kNs;
        i.established_s = sa.established_ns ? (now - sa.established_ns) / kNs : 0;
        for (auto& c : sa.children) {
            ChildInfo ci;
            ci.spi_in = c.spi_in;
            ci.spi_out = c.spi_out;
            ci.proposal = proposal_to_string(c.proposal);
            ci.state = child_state_name(c.state);
            ci.outbound_active = c.outbound_active;
            ci.ts_local = ts_str(c.ts_local);
            ci.ts_remote = ts_str(c.ts_remote);
            ci.age_s = (now - c.created_ns) / kNs;
            i.children.push_back(ci);
        }
        v.push_back(std::move(i));
    }
    std::sort(v.begin(), v.end(), [](const SaInfo& a, const SaInfo& b) {
        return a.tunnel != b.tunnel ? a.tunnel < b.tunnel : a.age_s > b.age_s;
    });
    return v;
}

std::vector<TunnelInfo> Engine::tunnels() const { return tunnels(0, tunnels_.size()); }

std::vector<TunnelInfo> Engine::tunnels(TunnelId after, size_t n) const {
    std::vector<TunnelInfo> v;
    v.reserve(std::min(n, tunnels_.size()));
    uint64_t now = now_();
    for (auto it = tunnels_.upper_bound(after); it != tunnels_.end() && v.size() < n; ++it)
        v.push_back(tunnel_info(it->second, now));
    return v;
}

std::map<std::string, std::array<uint64_t, 3>> Engine::tunnel_counts() const {
    std::map<std::string, std::array<uint64_t, 3>> out;
    std::array<uint64_t, 3>* cur = nullptr;
    const std::string* cur_cloud = nullptr;
    for (auto& [id, t] : tunnels_) {
        if (!cur_cloud || *cur_cloud != t.cloud) {  // runs of one cloud: one lookup each
            cur = &out[t.cloud];
            cur_cloud = &t.cloud;
        }
        (*cur)[size_t(tunnel_state(t))]++;
    }
    return out;
}

void Engine::each_tunnel(const std::function<void(const TunnelBrief&)>& fn) const {
    for (auto& [id, t] : tunnels_)
        fn(TunnelBrief{id, t.cloud, t.name, tunnel_state(t), t.rtt_at_ns ? double(t.rtt_ns) / 1e6 : -1, t.hist.flaps});
}

std::vector<TunnelId> Engine::tunnel_ids_named(const std::string& name) const {
    std::vector<TunnelId> v;
    for (auto& [id, t] : tunnels_)
        if (t.name == name) v.push_back(id);
    return v;
}

int Engine::tunnel_state(const Tunnel& t) const { return t.up ? 0 : (t.ike && sa_for_test(t.ike)) ? 1 : 2; }

TunnelInfo Engine::tunnel_info(const Tunnel& t, uint64_t now) const {
    {
        TunnelInfo i;
        i.id = t.id;
        i.cloud = t.cloud;
        i.name = t.name;
        i.ike_spi = t.ike;
        const IkeSa* sa = t.ike ? sa_for_test(t.ike) : nullptr;
        static constexpr const char* kStates[] = {"up", "connecting", "down"};
        i.state = kStates[tunnel_state(t)];
        i.uptime_s = t.up ? (now - t.up_since_ns) / kNs : 0;
        i.rtt_ms = t.rtt_at_ns ? double(t.rtt_ns) / 1e6 : -1;
        if (t.hist.rtt_samples) {
            i.rtt_min_ms = double(t.hist.rtt_min_ns) / 1e6;
            i.rtt_max_ms = double(t.hist.rtt_max_ns) / 1e6;
            i.rtt_avg_ms = double(t.hist.rtt_sum_ns) / double(t.hist.rtt_samples) / 1e6;
        }
        i.rtt_samples = t.hist.rtt_samples;
        i.child_rekeys = t.child_rekeys;
        i.ike_rekeys = t.ike_rekeys;
        i.flaps = t.hist.flaps;
        if (t.hist.last_down != DownReason::none) {
            i.last_down = down_reason_name(t.hist.last_down);
            i.last_down_detail = t.hist.last_down_detail;
            i.last_down_age_s = int64_t((now - t.hist.last_down_ns) / kNs);
        }
        if (t.up) {
            i.remote = t.spec.paths.remote.str();
            i.paths.push_back(fmt::format("{} -> {}{}", t.spec.paths.local.str(), t.spec.paths.remote.str(),
                                          t.spec.paths.udp_encap ? " udp" : ""));
            for (auto& e : t.spec.paths.extra) i.paths.push_back(fmt::format("{} -> {}", t.spec.paths.local.str(), e.str()));
            for (auto& p : t.spec.remote_prefixes) i.prefixes.push_back(p.str());
        }
        if (sa)
            for (auto& c : sa->children)
                if (c.state == ChildState::Installed) i.children++;
        return i;
    }
}

bool Engine::history(TunnelId id, TunnelInfo* info, std::vector<Event>* events) const {
    auto it = tunnels_.find(id);
    if (it == tunnels_.end()) return false;
    uint64_t now = now_();
    if (info) *info = tunnel_info(it->second, now);
    if (events) {
        events->clear();
        for (auto& e : it->second.hist.events())
            events->push_back(Event{now >= e.at_ns ? now - e.at_ns : 0, e.kind, e.reason});
    }
    return true;
}

// ---- policy and operator actions

void Engine::set_policy(Policy p) {
    policy_ = std::move(p);
    // Tunnels whose site or initiate entry is gone are closed.
    for (auto& [id, t] : tunnels_) {
        const CloudPolicy* c = policy_.cloud(t.cloud);
        bool keep = false;
        if (c && t.initiate < 0)
            for (auto& s : c->sites)
                if (s.name == t.name) keep = true;
        if (t.initiate >= 0) {
            keep = false;
            for (size_t i = 0; i < policy_.initiate.size(); i++)
                if (policy_.initiate[i].cloud == t.cloud && initiate_name(policy_.initiate[i]) == t.name) {
                    t.initiate = int(i);
                    keep = true;
                }
            if (!keep) t.initiate = -1;
        }
        if (!keep && t.ike) {
            if (IkeSa* sa = find(t.ike)) {
                LOG_INFO("ike", "event=tunnel_removed_by_config tunnel={} cloud={} name=\"{}\"", id, t.cloud, t.name);
                t.pending_down = DownReason::config;
                queue(*sa, Task{TaskKind::DeleteIke});
            }
        }
        if (!keep) set_reconnect(t, 0);
    }
    if (started_)
        for (size_t i = 0; i < policy_.initiate.size(); i++) {
            auto& in = policy_.initiate[i];
            TunnelId id = tunnel_id_for(in.cloud, initiate_name(in), int(i));
            Tunnel& t = tunnels_[id];
            if (!t.ike && !t.reconnect_at_ns) initiate(int(i));
        }
    reap();
}

void Engine::start() {
    started_ = true;
    for (size_t i = 0; i < policy_.initiate.size(); i++) initiate(int(i));
    reap();
}

size_t Engine::close_all(const std::function<bool(const IpAddr&)>& silent, size_t burst) {
    if (!closing_) {
        closing_ = true;
        // Edge entries stay down; handshakes waiting for public-key work
        // are not finished (their peers find a new instance or give up).
        for (auto& [when, id] : reconnects_) tunnels_[id].reconnect_at_ns = 0;
        reconnects_.clear();
        for (auto& q : work_) q.clear();
        work_bytes_ = 0;
        for (auto& [spi, sa] : sas_) sa->queued = 0;
    }
    size_t n = 0;
    for (auto& [spi, sp] : sas_) {
        IkeSa& sa = *sp;
        if (n >= burst) break;
        if (sa.state != IkeState::Established || closing_spis_.count(spi)) continue;
        if (silent && silent(sa.local.addr)) continue;
        if (Tunnel* t = tunnel_of(sa); t && t->ike == spi) t->pending_down = DownReason::shutdown;
        // The DELETE goes first (after a request already out: one at a time,
        // §2.3); rekeys and liveness checks queued behind it are dropped
        // by next_task once the SA is Deleting.
        sa.tasks.clear();
        closing_spis_.insert(spi);
        count(Counter::closing_deletes);
        n++;
        queue(sa, Task{TaskKind::DeleteIke});
    }
    if (n) LOG_INFO("ike", "event=closing ike_sas={} waiting={}", n, closing_spis_.size());
    reap();
    return n;
}

bool Engine::clear_tunnel(TunnelId id, std::string* err) {
    auto it = tunnels_.find(id);
    if (it == tunnels_.end()) {
        *err = fmt::format("% No such tunnel: {}", id);
        return false;
    }
    IkeSa* sa = it->second.ike ? find(it->second.ike) : nullptr;
    if (!sa) {
        *err = fmt::format("% Tunnel {} is not connected", id);
        return false;
    }
    LOG_INFO("ike", "event=clear_tunnel tunnel={} sa={:016x}", id, sa->local_spi());
    // An edge reconnects at once after an operator's clear.
    it->second.reconnect_backoff_ns = 0;
    it->second.pending_down = DownReason::clear;
    if (sa->state == IkeState::Established) queue(*sa, Task{TaskKind::DeleteIke});
    else destroy(*sa, "cleared by operator");
    reap();
    return true;
}

size_t Engine::drop_local(const IpAddr& addr, const char* why) {
    std::vector<IkeSa*> gone;
    for (auto& [spi, sp] : sas_)
        if (sp->state != IkeState::Dead && sp->local.addr == addr) gone.push_back(sp.get());
    for (IkeSa* sa : gone) {
        destroy(*sa, why);
        count(Counter::local_address_lost);
    }
    if (!gone.empty())
        LOG_INFO("ike", "event=local_address_lost addr={} ike_sas={} reason=\"{}\"", addr.str(), gone.size(), why);
    reap();
    return gone.size();
}

namespace {
IkeSa* established_sa(Engine&, IkeSa* sa, std::string* err, TunnelId id) {
    if (!sa || sa->state != IkeState::Established) {
        *err = fmt::format("% Tunnel {} has no established IKE SA", id);
        return nullptr;
    }
    return sa;
}
}  // namespace

bool Engine::rekey_child_for_test(TunnelId id, std::string* err) {
    auto it = tunnels_.find(id);
    IkeSa* sa = established_sa(*this, it == tunnels_.end() ? nullptr : find(it->second.ike), err, id);
    if (!sa) return false;
    for (auto& c : sa->children)
        if (c.state == ChildState::Installed) {
            c.rekey_at_ns = 0;
            queue(*sa, Task{TaskKind::RekeyChild, c.spi_in});
            return true;
        }
    *err = fmt::format("% Tunnel {} has no child SA", id);
    return false;
}

bool Engine::rekey_ike_for_test(TunnelId id, std::string* err) {
    auto it = tunnels_.find(id);
    IkeSa* sa = established_sa(*this, it == tunnels_.end() ? nullptr : find(it->second.ike), err, id);
    if (!sa) return false;
    sa->rekey_at_ns = 0;
    queue(*sa, Task{TaskKind::RekeyIke});
    return true;
}

bool Engine::liveness_for_test(TunnelId id, std::string* err) {
    auto it = tunnels_.find(id);
    IkeSa* sa = established_sa(*this, it == tunnels_.end() ? nullptr : find(it->second.ike), err, id);
    if (!sa) return false;
    queue(*sa, Task{TaskKind::Liveness});
    return true;
}

bool Engine::mobike_move_for_test(TunnelId id, const IpAddr& new_local, std::string* err) {
    auto it = tunnels_.find(id);
    IkeSa* sa = established_sa(*this, it == tunnels_.end() ? nullptr : find(it->second.ike), err, id);
    if (!sa) return false;
    if (!sa->initiator || !sa->peer_mobike) {
        *err = "% MOBIKE moves are made by the initiator of a MOBIKE-enabled IKE SA";
        return false;
    }
    sa->local.addr = new_local;
    // RFC 4555 §3.5: NAT-T port from now on.
    sa->local.port = policy_.settings.port_natt;
    sa->remote.port = policy_.settings.port_natt;
    sa->natt = true;
    queue(*sa, Task{TaskKind::MobikeUpdate});
    return true;
}

}  // namespace nimbus::ike
