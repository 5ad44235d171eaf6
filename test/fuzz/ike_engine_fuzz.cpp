// libFuzzer target for the IKE engine as a responder (control/ike/engine.*
// and the exchange handlers), on two surfaces:
//
//  - anyone on the network: the input is a datagram to port 500 or 4500
//    from one of a few addresses (IKE_SA_INIT handling, COOKIEs, half-open
//    limits, unknown SPIs, fragments without keys, the non-ESP marker);
//  - an authenticated but hostile peer: the input is the decrypted content
//    of an SK payload (first octet: exchange, second: first payload type),
//    sealed with the keys of a real established IKE SA and delivered with the
//    next Message ID, so the INFORMATIONAL and CREATE_CHILD_SA handlers see
//    arbitrary payload chains (deletes of unknown SPIs, rekeys of nothing,
//    MOBIKE updates, broken proposals and selectors...).
//
// A concentrator and an edge run over the in-memory network of the unit
// tests; when the hostile input kills the IKE SA the pair is built again.
// Invariants checked after every input: the engine's SA count stays bounded
// and the tunnel table of the sink matches the engine's view.
//
// Build and run: test/fuzz/run.sh (clang-14, ASan + UBSan).

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "control/ike/codec.h"
#include "src/common/log.h"
#include "test/unit/ike/sim.h"

using namespace sim;

namespace {

struct World {
    Net net;
    Node* conc = nullptr;
    Node* edge = nullptr;
    uint64_t iv = 1ull << 40;  // our own IV counter for sealing (distinct from the engine's)
};

std::unique_ptr<World> w;

void build() {
    w = std::make_unique<World>();
    EngineSettings st;
    st.cookie_threshold = 4;
    st.half_open_per_source = 3;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    w->conc = &w->net.add("conc", "192.0.2.10", concentrator(cloud({}, sites), st));
    w->edge = &w->net.add("edge", "192.0.2.21",
                          edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"}, {"10.0.0.0/8"}));
    w->edge->eng->start();
    w->net.pump();
}

const IkeSa* conc_sa() {
    for (auto& s : w->conc->eng->sas())
        if (s.state == "established") return w->conc->eng->sa_for_test(s.spi_r);
    return nullptr;
}

const IkeSa* edge_sa() {
    for (auto& s : w->edge->eng->sas())
        if (s.state == "established") return w->edge->eng->sa_for_test(s.spi_i);
    return nullptr;
}

void hostile_peer(std::span<const uint8_t> in) {
    const IkeSa* c = conc_sa();
    const IkeSa* e = edge_sa();
    if (!c || !e || !e->cout || in.size() < 2) return;
    Header h;
    h.spi_i = c->spi_i;
    h.spi_r = c->spi_r;
    h.exchange = (in[0] & 1) ? CREATE_CHILD_SA : INFORMATIONAL;
    h.flags = kFlagInitiator;
    h.message_id = c->peer_msgid;
    h.next_payload = PT_SK;
    ByteWriter wr;
    h.write(wr);
    auto inner = in.subspan(2);
    size_t sk_len = kGenericHeaderLen + sk_sealed_len(inner.size());
    if (sk_len > 0xffff) return;
    wr.u8(in[1]);
    wr.u8(0);
    wr.u16(uint16_t(sk_len));
    std::vector<uint8_t> msg = wr.take();
    size_t total = msg.size() + sk_sealed_len(inner.size());
    msg[24] = uint8_t(total >> 24);
    msg[25] = uint8_t(total >> 16);
    msg[26] = uint8_t(total >> 8);
    msg[27] = uint8_t(total);
    std::array<uint8_t, SkCipher::kIvLen> iv;
    uint64_t v = w->iv++;
    for (int i = 0; i < 8; i++) iv[size_t(i)] = uint8_t(v >> (56 - 8 * i));
    if (!sk_seal_with_iv(*e->cout, msg, inner, iv)) return;
    w->conc->eng->receive(Endpoint{*IpAddr::parse("192.0.2.10"), 500}, Endpoint{*IpAddr::parse("192.0.2.21"), 500},
                          msg);
    w->net.pump(64);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = [] {
        nimbus::log::set_level(nimbus::log::Level::Error);
        return true;
    }();
    (void)quiet;
    if (!w || !conc_sa()) build();
    if (size < 2) return 0;
    std::span<const uint8_t> in(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
    case 1: {
        // A datagram from the network.
        uint16_t port = data[0] & 4 ? 4500 : 500;
        IpAddr from = IpAddr::v4(0xc6336400u | (data[0] >> 4));  // 198.51.100.0..15
        Endpoint local{*IpAddr::parse("192.0.2.10"), port}, remote{from, 500};
        if (data[0] & 8) {
            // Read in a batch: handshakes go through the work queue.
            Engine::Datagram d{local, remote, in};
            w->conc->eng->receive_batch(std::span<const Engine::Datagram>(&d, 1));
            while (w->conc->eng->queued()) w->conc->eng->on_timer();
        } else {
            w->conc->eng->receive(local, remote, in);
        }
        w->net.q.clear();
        break;
    }
    case 2: hostile_peer(in); break;
    case 3:
        // Time passes: retransmissions, expiries, liveness checks.
        w->net.advance(uint64_t(data[1]) * 100'000'000ull);
        break;
    }
    w->net.log.clear();
    // Invariants: bounded state, sink and engine agree on up tunnels.
    if (w->conc->eng->sa_count() > 64) std::abort();
    // A timer due again right after it ran would have spun the control
    // thread (the engine now retries it 1 ms later and counts it).
    for (Node* n : {w->conc, w->edge})
        if (n->eng->counter(Counter::timers_overdue)) std::abort();
    size_t up = 0;
    for (auto& t : w->conc->eng->tunnels())
        if (t.state == "up") up++;
    if (up != w->conc->sink.tunnels().size()) std::abort();
    return 0;
}
