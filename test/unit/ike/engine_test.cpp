// The IKE engine, initiator against responder, in process: full handshakes
// with PSK and certificates, fragmentation over 1280-octet paths, COOKIEs,
// INVALID_KE_PAYLOAD, traffic-selector policy, rekeys of both kinds from
// both sides, simultaneous rekeys, liveness and DPD, DELETE, INITIAL_CONTACT,
// NAT traversal, MOBIKE, retransmission and the message-ID window, and
// malformed input. Time is simulated; nothing waits.
#include <catch2/catch.hpp>

#include <openssl/rand.h>

#include <array>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>
#include <set>

#include "src/common/log.h"
#include "test/unit/ike/sim.h"
#include "test/unit/pki/testpki.h"

using namespace sim;

namespace {

constexpr uint64_t kS = 1'000'000'000ull;

// Engine logs only warnings and errors during tests (NIMBUS_TEST_LOG=1: all).
const bool kQuiet = [] {
    if (!getenv("NIMBUS_TEST_LOG")) nimbus::log::set_level(nimbus::log::Level::Warn);
    return true;
}();
const testpki::Pki& PKI() { return testpki::Pki::get(); }

std::vector<SiteOpts> two_sites() {
    return {{"CN=store-0001", {"10.16.1.0/24"}}, {"CN=store-0002", {"10.16.2.0/24"}}};
}

CloudOpts pki_opts(const char* cert, const char* key) {
    CloudOpts o;
    o.ca = PKI().path("ca.crt");
    o.crl = PKI().path("ca.crl");
    o.cert = PKI().path(cert);
    o.key = PKI().path(key);
    return o;
}

struct Pair {
    Net net;
    Node* conc = nullptr;
    Node* edge = nullptr;
};

// A concentrator at 192.0.2.10 and an edge at 192.0.2.21.
void psk_pair(Pair& p, CloudOpts co = {}, CloudOpts eo = {}, EngineSettings cs = {}, EngineSettings es = {},
              std::vector<const char*> edge_prefixes = {"10.16.1.0/24"}, const char* edge_id = "store-0001.test") {
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    p.conc = &p.net.add("conc", "192.0.2.10", concentrator(cloud(co, sites), cs));
    p.edge = &p.net.add("edge", "192.0.2.21", edge(cloud(eo), "192.0.2.10", edge_id, edge_prefixes, {"10.0.0.0/8"}, es));
}

void pki_pair(Pair& p, const char* edge_cert = "site1.crt", const char* edge_key = "site1.key",
              const char* conc_cert = "conc.crt", EngineSettings cs = {}, EngineSettings es = {}) {
    p.conc = &p.net.add("conc", "192.0.2.10", concentrator(cloud(pki_opts(conc_cert, "conc.key"), two_sites()), cs));
    std::string key = edge_key;
    p.edge = &p.net.add("edge", "192.0.2.21",
                        edge(cloud(pki_opts(edge_cert, key.c_str())), "192.0.2.10", nullptr, {"10.16.1.0/24"},
                             {"10.0.0.0/8"}, es));
}

std::optional<SaInfo> established(const Node& n) {
    for (auto& s : n.eng->sas())
        if (s.state == "established") return s;
    return std::nullopt;
}

// Both sinks agree on the child SA: SPIs crossed, keys crossed.
void check_child_agreement(const Node& a, const Node& b) {
    auto* ta = up_tunnel(a);
    auto* tb = up_tunnel(b);
    REQUIRE(ta);
    REQUIRE(tb);
    REQUIRE(ta->active_out);
    REQUIRE(tb->active_out);
    auto& ca = ta->children.at(ta->active_out);
    auto& cb = tb->children.at(tb->active_out);
    CHECK(ca.spi_out == cb.spi_in);
    CHECK(cb.spi_out == ca.spi_in);
    CHECK(ca.key_out_tag == cb.key_in_tag);
    CHECK(ca.key_in_tag == cb.key_out_tag);
    CHECK(ca.key_in_tag != ca.key_out_tag);
}

}  // namespace

TEST_CASE("PSK: edge and concentrator establish an IKE SA and a child SA") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    auto c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->peer_id == "store-0001.test");
    CHECK(c->cloud == "corp");
    CHECK(c->auth == "psk");
    CHECK(c->proposal == "aes256gcm16-prfsha256-x25519");
    REQUIRE(c->children.size() == 1);
    CHECK(c->children[0].proposal == "aes256gcm16-noesn");
    CHECK(c->children[0].ts_remote == "10.16.1.0/24");
    CHECK(c->children[0].ts_local == "10.0.0.0/8");
    REQUIRE(established(*p.edge));
    check_child_agreement(*p.conc, *p.edge);
    auto* t = up_tunnel(*p.conc);
    CHECK(t->spec.remote_prefixes == std::vector<Prefix>{*Prefix::parse("10.16.1.0/24")});
    CHECK(t->spec.vrf == 1);
    CHECK(t->spec.name == "store-0001.test");
    CHECK_FALSE(t->spec.paths.udp_encap);
    CHECK(p.conc->eng->counter(Counter::auth_ok) == 1);
    CHECK(p.conc->eng->half_open() == 0);
    // Four messages: IKE_SA_INIT and IKE_AUTH, each way.
    CHECK(p.net.delivered == 4);
    auto tun = p.conc->eng->tunnels();
    REQUIRE(tun.size() == 1);
    CHECK(tun[0].state == "up");
    CHECK(tun[0].prefixes == std::vector<std::string>{"10.16.1.0/24"});
}

TEST_CASE("certificates: P-384 devices under a P-521 CA, RFC 7427 signatures") {
    Pair p;
    pki_pair(p);
    p.edge->eng->start();
    p.net.pump();
    auto c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->peer_id == "C=XX, O=nimbus-test, CN=store-0001");
    CHECK(c->local_id == "C=XX, O=nimbus-test, CN=conc.test");
    CHECK(c->auth == "digital-signature");
    auto e = established(*p.edge);
    REQUIRE(e);
    CHECK(e->auth == "digital-signature");
    CHECK(e->peer_id == "C=XX, O=nimbus-test, CN=conc.test");
    check_child_agreement(*p.conc, *p.edge);
}

TEST_CASE("IKE_AUTH with a P-384 certificate and a P-521 chain is fragmented over a 1280-octet path") {
    Pair p;
    pki_pair(p, "site1.crt", "site1.key", "conc-chain.crt");
    p.net.mtu = 1280;
    p.edge->eng->start();
    p.net.pump();
    REQUIRE(established(*p.conc));
    REQUIRE(established(*p.edge));
    CHECK(p.net.too_big == 0);
    // The concentrator's answer (certificate + CA) needed fragments.
    CHECK(p.conc->eng->counter(Counter::tx_fragments) >= 2);
    CHECK(p.edge->eng->counter(Counter::rx_fragments) >= 2);
    for (auto& d : p.net.log) CHECK(d.data.size() + 28 <= 1280);
    check_child_agreement(*p.conc, *p.edge);
}

TEST_CASE("without fragmentation the same answer would not fit a 1280-octet path") {
    // The control: a larger fragment size makes the concentrator send one
    // datagram, which the path drops.
    EngineSettings big;
    big.fragment_size = 9000;
    big.retransmit_tries = 2;
    Pair p;
    pki_pair(p, "site1.crt", "site1.key", "conc-chain.crt", big);
    p.net.mtu = 1280;
    p.edge->eng->start();
    p.net.advance_s(2);
    CHECK(p.net.too_big >= 1);
    CHECK_FALSE(established(*p.edge));
}

TEST_CASE("COOKIEs are demanded past the half-open threshold, and the handshake still completes") {
    EngineSettings cs;
    cs.cookie_threshold = 0;
    Pair p;
    psk_pair(p, {}, {}, cs);
    p.edge->eng->start();
    p.net.pump();
    REQUIRE(established(*p.conc));
    CHECK(p.conc->eng->counter(Counter::cookies_sent) == 1);
    CHECK(p.conc->eng->counter(Counter::cookies_invalid) == 0);
    // IKE_SA_INIT twice (without and with the cookie), IKE_AUTH once.
    CHECK(p.net.delivered == 6);
}

TEST_CASE("a wrong COOKIE gets a fresh challenge and no state") {
    EngineSettings cs;
    cs.cookie_threshold = 0;
    cs.retransmit_tries = 3;
    Pair p;
    psk_pair(p, {}, {}, cs);
    // Corrupt the cookie on its way back to the responder.
    p.net.filter = [](Datagram& d) {
        if (d.to.addr == *IpAddr::parse("192.0.2.10") && d.data.size() > 40 && d.data[16] == PT_NOTIFY)
            d.data[28 + 8 + 10] ^= 0xff;
        return true;
    };
    p.edge->eng->start();
    p.net.pump(20);
    CHECK(p.conc->eng->counter(Counter::cookies_invalid) >= 1);
    CHECK(p.conc->eng->sa_count() == 0);
    CHECK(p.conc->eng->half_open() == 0);
}

TEST_CASE("per-source half-open limit") {
    EngineSettings cs;
    cs.half_open_per_source = 3;
    cs.cookie_threshold = 1000;
    Net net;
    Node& conc = net.add("conc", "192.0.2.10",
                         concentrator(cloud({}, {{"store-0001.test", {"10.16.1.0/24"}}}), cs));
    // Five initiators on one address that never finish.
    std::vector<Node*> eds;
    for (int i = 0; i < 5; i++) {
        Policy ep = edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"});
        Node& e = net.add("edge" + std::to_string(i), "192.0.2.21", std::move(ep));
        eds.push_back(&e);
    }
    net.filter = [](Datagram& d) { return !(d.to.addr == *IpAddr::parse("192.0.2.21")); };  // no answers get back
    for (auto* e : eds) e->eng->start();
    net.pump();
    CHECK(conc.eng->half_open() == 3);
    CHECK(conc.eng->counter(Counter::half_open_source_limit) == 2);
    // Half-open SAs expire.
    net.filter = [](Datagram&) { return false; };
    net.advance_s(31);
    CHECK(conc.eng->half_open() == 0);
    CHECK(conc.eng->counter(Counter::half_open_expired) == 3);
}

TEST_CASE("INVALID_KE_PAYLOAD: the initiator retries with the responder's group") {
    CloudOpts co;
    co.ike = {"aes256gcm16-prfsha384-ecp384"};
    CloudOpts eo;
    eo.ike = {"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384"};
    Pair p;
    psk_pair(p, co, eo);
    p.edge->eng->start();
    p.net.pump();
    auto c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->proposal == "aes256gcm16-prfsha384-ecp384");
    CHECK(p.conc->eng->counter(Counter::invalid_ke) == 1);
    CHECK(p.edge->eng->counter(Counter::invalid_ke) == 1);
    check_child_agreement(*p.conc, *p.edge);
}

TEST_CASE("every IKE and ESP suite: AES-GCM 128/256 and ChaCha20-Poly1305, PRF SHA-256/384, x25519 and ECP") {
    const char* suites[][2] = {
        {"aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519"},
        {"aes128gcm16-prfsha256-x25519", "aes128gcm16-x25519"},
        {"chacha20poly1305-prfsha256-x25519", "chacha20poly1305"},
        {"chacha20poly1305-prfsha384-ecp256", "chacha20poly1305-ecp256"},
        {"aes256gcm16-prfsha384-ecp384", "aes256gcm16-esn"},
    };
    for (auto& s : suites) {
        INFO(s[0] << " / " << s[1]);
        CloudOpts o;
        o.ike = {s[0]};
        o.esp = {s[1]};
        Pair p;
        psk_pair(p, o, o);
        p.edge->eng->start();
        p.net.pump();
        auto c = established(*p.conc);
        REQUIRE(c);
        CHECK(c->proposal == s[0]);
        check_child_agreement(*p.conc, *p.edge);
        // Rekey the child (with PFS when the suite has a group) and check again.
        std::string err;
        REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
        p.net.advance_s(3);
        check_child_agreement(*p.conc, *p.edge);
        CHECK(p.conc->eng->counter(Counter::child_rekeys) == 1);
    }
}

TEST_CASE("ESN is negotiated between nimbus peers") {
    CloudOpts o;
    o.esp = {"aes256gcm16-esn"};
    Pair p;
    psk_pair(p, o, o);
    p.edge->eng->start();
    p.net.pump();
    auto* t = up_tunnel(*p.conc);
    REQUIRE(t);
    CHECK(t->children.at(t->active_out).esn);
    CHECK(up_tunnel(*p.edge)->children.at(up_tunnel(*p.edge)->active_out).esn);
    // A peer that wants no ESN gets none.
    CloudOpts e2;
    e2.esp = {"aes256gcm16-noesn"};
    CloudOpts c2;
    c2.esp = {"aes256gcm16-esn", "aes256gcm16-noesn"};
    Pair q;
    psk_pair(q, c2, e2);
    q.edge->eng->start();
    q.net.pump();
    REQUIRE(up_tunnel(*q.conc));
    CHECK_FALSE(up_tunnel(*q.conc)->children.begin()->second.esn);
}

TEST_CASE("wrong PSK, unknown identity, wrong CA and revoked certificates are refused") {
    SECTION("wrong PSK") {
        CloudOpts eo;
        eo.psk = "not-the-right-psk-0123456789";
        Pair p;
        psk_pair(p, {}, eo);
        p.edge->eng->start();
        p.net.pump();
        CHECK_FALSE(established(*p.conc));
        CHECK(p.conc->eng->counter(Counter::auth_failed) == 1);
        CHECK(p.edge->eng->counter(Counter::auth_failed) == 1);
        CHECK(p.conc->sink.tunnels().empty());
        CHECK(p.conc->eng->sa_count() == 0);
    }
    SECTION("unknown identity") {
        Pair p;
        psk_pair(p, {}, {}, {}, {}, {"10.16.1.0/24"}, "intruder.test");
        p.edge->eng->start();
        p.net.pump();
        CHECK_FALSE(established(*p.conc));
        CHECK(p.conc->eng->counter(Counter::auth_failed) == 1);
    }
    SECTION("certificate from another CA with a site's name") {
        Pair p;
        p.conc = &p.net.add("conc", "192.0.2.10", concentrator(cloud(pki_opts("conc.crt", "conc.key"), two_sites())));
        CloudOpts eo = pki_opts("rogue.crt", "rogue.key");
        eo.ca = PKI().path("evil.crt");
        eo.crl = "";
        p.edge = &p.net.add("edge", "192.0.2.21", edge(cloud(eo), "192.0.2.10", nullptr, {"10.16.1.0/24"}));
        p.edge->eng->start();
        p.net.pump();
        CHECK_FALSE(established(*p.conc));
        CHECK(p.conc->eng->counter(Counter::auth_failed) == 1);
        CHECK(p.conc->eng->counter(Counter::auth_revoked) == 0);
        CHECK(p.conc->sink.tunnels().empty());
    }
    SECTION("revoked certificate") {
        Pair p;
        p.conc = &p.net.add("conc", "192.0.2.10",
                            concentrator(cloud(pki_opts("conc.crt", "conc.key"),
                                               {{"CN=store-0003", {"10.16.3.0/24"}}})));
        p.edge = &p.net.add("edge", "192.0.2.21",
                            edge(cloud(pki_opts("revoked.crt", "revoked.key")), "192.0.2.10", nullptr, {"10.16.3.0/24"}));
        p.edge->eng->start();
        p.net.pump();
        CHECK_FALSE(established(*p.conc));
        CHECK(p.conc->eng->counter(Counter::auth_revoked) == 1);
        CHECK(p.conc->eng->counter(Counter::auth_failed) == 1);
        CHECK(p.edge->eng->counter(Counter::auth_failed) == 1);
    }
    SECTION("a valid certificate whose identity is not the claimed site") {
        // site2's certificate, claiming to be store-0001 by IDi.
        Pair p;
        p.conc = &p.net.add("conc", "192.0.2.10", concentrator(cloud(pki_opts("conc.crt", "conc.key"), two_sites())));
        p.edge = &p.net.add("edge", "192.0.2.21",
                            edge(cloud(pki_opts("site2.crt", "site2.key")), "192.0.2.10",
                                 "C=XX, O=nimbus-test, CN=store-0001", {"10.16.1.0/24"}));
        p.edge->eng->start();
        p.net.pump();
        CHECK_FALSE(established(*p.conc));
        CHECK(p.conc->eng->counter(Counter::auth_failed) == 1);
    }
}

TEST_CASE("traffic selectors: narrowed to the site, refused for default routes and other sites") {
    SECTION("a wider proposal is narrowed") {
        Pair p;
        psk_pair(p, {}, {}, {}, {}, {"10.16.0.0/23"});
        p.edge->eng->start();
        p.net.pump();
        auto c = established(*p.conc);
        REQUIRE(c);
        REQUIRE(c->children.size() == 1);
        CHECK(c->children[0].ts_remote == "10.16.1.0/24");
        CHECK(up_tunnel(*p.conc)->spec.remote_prefixes == std::vector<Prefix>{*Prefix::parse("10.16.1.0/24")});
    }
    for (auto [name, prefix] : {std::pair{"default route", "0.0.0.0/0"}, std::pair{"IPv6 default", "::/0"},
                                std::pair{"another site's prefix", "10.16.2.0/24"},
                                std::pair{"a prefix covering another site", "10.16.0.0/16"}}) {
        SECTION(name) {
            Pair p;
            psk_pair(p, {}, {}, {}, {}, {prefix});
            p.edge->eng->start();
            p.net.pump();
            CHECK(p.conc->eng->counter(Counter::ts_unacceptable) == 1);
            CHECK(p.conc->sink.tunnels().empty());
            CHECK(p.edge->sink.tunnels().empty());
            // The edge gives the IKE SA up (DELETE) and tries again later.
            p.net.advance_s(0.5);
            CHECK(p.conc->eng->sa_count() == 0);
        }
    }
}

namespace {

// Checked after every datagram: whatever either side sends right now, the
// other side can decrypt. This is the hitless-rekey property, at the level
// of the SA tables the dataplane gets.
void watch_hitless(Pair& p, int* checks) {
    p.net.invariant = [&p, checks] {
        (*checks)++;
        REQUIRE(outbound_receivable(*p.conc, *p.edge));
        REQUIRE(outbound_receivable(*p.edge, *p.conc));
    };
}

std::pair<uint32_t, uint32_t> active_spis(const Node& n) {
    auto* t = up_tunnel(n);
    if (!t || !t->active_out) return {0, 0};
    auto& c = t->children.at(t->active_out);
    return {c.spi_in, c.spi_out};
}

// A masquerading NAT for Net::filter: `inside` goes out as `outside`, its
// ports moved up by 10000 (and back for the answers).
std::function<bool(Datagram&)> masquerade(IpAddr inside, IpAddr outside) {
    return [inside, outside](Datagram& d) {
        if (d.from.addr == inside) {
            d.from.addr = outside;
            d.from.port = uint16_t(d.from.port + 10000);
        } else if (d.to.addr == outside) {
            d.to.addr = inside;
            d.to.port = uint16_t(d.to.port - 10000);
        }
        return true;
    };
}

size_t child_count(const Node& n) {
    size_t k = 0;
    for (auto& [id, t] : n.sink.tunnels()) k += t.children.size();
    return k;
}

}  // namespace

TEST_CASE("child SA rekey, started by either side, is hitless and removes the old SA") {
    for (bool by_edge : {true, false}) {
        INFO((by_edge ? "edge" : "concentrator") << " starts the rekey");
        Pair p;
        psk_pair(p);
        p.edge->eng->start();
        p.net.pump();
        auto before = active_spis(*p.conc);
        int checks = 0;
        watch_hitless(p, &checks);
        std::string err;
        Node* by = by_edge ? p.edge : p.conc;
        REQUIRE(by->eng->rekey_child_for_test(1, &err));
        p.net.pump();
        auto after = active_spis(*p.conc);
        CHECK(after.first != before.first);
        CHECK(after.second != before.second);
        check_child_agreement(*p.conc, *p.edge);
        // The old inbound SA lingers briefly for packets in flight, then goes.
        p.net.advance_s(3);
        CHECK(child_count(*p.conc) == 1);
        CHECK(child_count(*p.edge) == 1);
        CHECK(checks >= 4);
        CHECK(p.conc->eng->counter(Counter::child_rekeys) == 1);
        CHECK(p.edge->eng->counter(Counter::child_rekeys) == 1);
        CHECK(p.conc->eng->tunnels()[0].child_rekeys == 1);
        // The new inbound SA was installed before the old one was removed,
        // and the tunnel never went down.
        auto& ev = p.conc->sink.events();
        CHECK(std::find(ev.begin(), ev.end(), "down 1") == ev.end());
        auto in_new = std::find(ev.begin(), ev.end(), fmt::format("in 1 {:08x}", after.first));
        auto rm_old = std::find(ev.begin(), ev.end(), fmt::format("rm 1 {:08x}", before.first));
        REQUIRE(in_new != ev.end());
        REQUIRE(rm_old != ev.end());
        CHECK(in_new < rm_old);
    }
}

TEST_CASE("an IKE SA waiting for its DELETE's answer still drops a rekeyed child on time") {
    // Found by the engine fuzzer: the timer woke an SA in the Deleting state
    // for its lingering old child, but sa_timer only removed such children
    // in the Established state, so the SA was due again at once and
    // on_timer never returned (the control thread stuck).
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    std::string err;
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));  // the edge deletes the old child: ours lingers
    p.net.pump();
    REQUIRE(child_count(*p.conc) == 2);
    // The edge falls silent, so the concentrator's DELETE stays unanswered.
    p.net.filter = [](Datagram&) { return false; };
    REQUIRE(p.conc->eng->clear_tunnel(p.conc->eng->tunnels()[0].id, &err));
    p.net.pump();
    auto sas = p.conc->eng->sas();
    REQUIRE(sas.size() == 1);
    REQUIRE(sas[0].state == "deleting");
    p.net.advance_s(3);  // past the 2 s linger, within the 10 s the DELETE waits
    CHECK(child_count(*p.conc) == 1);
    CHECK(p.conc->eng->sas()[0].state == "deleting");
    CHECK(p.conc->eng->counter(Counter::timers_overdue) == 0);
    p.net.advance_s(30);
    CHECK(p.conc->eng->sas().empty());
    CHECK(p.conc->eng->counter(Counter::timers_overdue) == 0);
}

TEST_CASE("a child SA the dataplane refuses: NO_ADDITIONAL_SAS, the tunnel is not left up, the site comes back") {
    Pair p;
    psk_pair(p);
    p.conc->sink.refuse_installs = 1;
    p.edge->eng->start();
    p.net.pump();
    // The concentrator answered IKE_AUTH without a child and deleted the
    // IKE SA: nothing is left on either side, and nothing claims to be up.
    CHECK(p.conc->eng->counter(Counter::child_install_failed) == 1);
    CHECK(p.conc->eng->counter(Counter::child_installed) == 0);
    CHECK(p.conc->sink.tunnels().empty());
    CHECK(p.edge->sink.tunnels().empty());
    CHECK(p.conc->eng->sa_count() == 0);
    auto tun = p.conc->eng->tunnels();
    REQUIRE(tun.size() == 1);
    CHECK(tun[0].state != "up");
    CHECK(tun[0].last_down == "dataplane");
    auto& ev = p.conc->sink.events();
    CHECK(std::find_if(ev.begin(), ev.end(), [](const std::string& e) { return e.rfind("refused 1 ", 0) == 0; }) !=
          ev.end());
    // The edge got its answer (an error notify, RFC 7296 §1.2, §3.10.1) and
    // the DELETE, and connects again after its back-off.
    CHECK(p.edge->eng->counter(Counter::child_installed) == 0);
    p.net.advance_s(2);
    REQUIRE(established(*p.conc));
    check_child_agreement(*p.conc, *p.edge);
    CHECK(p.conc->eng->tunnels()[0].state == "up");

    // A rekey the dataplane refuses: the answer is NO_ADDITIONAL_SAS and
    // the old child carries on; a later try succeeds.
    auto before = active_spis(*p.conc);
    int checks = 0;
    watch_hitless(p, &checks);
    p.conc->sink.refuse_installs = 1;
    std::string err;
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
    p.net.pump();
    CHECK(active_spis(*p.conc) == before);
    CHECK(child_count(*p.conc) == 1);
    CHECK(p.conc->eng->counter(Counter::child_install_failed) == 2);
    CHECK(p.conc->eng->tunnels()[0].state == "up");
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
    p.net.pump();
    CHECK(active_spis(*p.conc).first != before.first);
    check_child_agreement(*p.conc, *p.edge);
    CHECK(checks >= 2);

    // The initiator's own rekey refused by its dataplane: the old child
    // carries on, nothing goes down, and the child the responder made for
    // it is deleted (RFC 7296 §1.4.1) rather than left unused on the peer.
    auto mid = active_spis(*p.conc);
    size_t conc_children = child_count(*p.conc), edge_children = child_count(*p.edge);
    p.edge->sink.refuse_installs = 1;
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
    p.net.pump();
    CHECK(p.edge->eng->counter(Counter::child_install_failed) == 1);
    CHECK(p.edge->eng->tunnels()[0].state == "up");
    CHECK(active_spis(*p.edge) == std::make_pair(mid.second, mid.first));
    CHECK(active_spis(*p.conc) == mid);
    CHECK(child_count(*p.conc) == conc_children);
    CHECK(child_count(*p.edge) == edge_children);
    check_child_agreement(*p.conc, *p.edge);
    // And the next rekey goes through.
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
    p.net.pump();
    CHECK(active_spis(*p.conc).first != mid.first);
    check_child_agreement(*p.conc, *p.edge);
}

TEST_CASE("ten child rekeys and three IKE rekeys in a row stay hitless") {
    Pair p;
    CloudOpts o;
    o.esp = {"aes256gcm16-x25519"};
    psk_pair(p, o, o);
    p.edge->eng->start();
    p.net.pump();
    int checks = 0;
    watch_hitless(p, &checks);
    std::string err;
    for (int i = 0; i < 13; i++) {
        Node* by = i % 2 ? p.conc : p.edge;
        if (i % 4 == 3) REQUIRE(by->eng->rekey_ike_for_test(1, &err));
        else REQUIRE(by->eng->rekey_child_for_test(1, &err));
        p.net.advance_s(3);
        check_child_agreement(*p.conc, *p.edge);
    }
    auto t = p.conc->eng->tunnels()[0];
    CHECK(t.child_rekeys == 10);
    CHECK(t.ike_rekeys == 3);
    CHECK(p.conc->eng->sa_count() == 1);
    CHECK(p.edge->eng->sa_count() == 1);
    CHECK(child_count(*p.conc) == 1);
    // Liveness still works on the newest IKE SA.
    REQUIRE(p.edge->eng->liveness_for_test(1, &err));
    p.net.pump();
    CHECK(p.edge->eng->tunnels()[0].rtt_ms >= 0);
}

TEST_CASE("IKE SA rekey moves the children and deletes the old IKE SA") {
    for (bool by_edge : {true, false}) {
        INFO((by_edge ? "edge" : "concentrator") << " starts the rekey");
        Pair p;
        psk_pair(p);
        p.edge->eng->start();
        p.net.pump();
        auto old_sa = established(*p.conc)->spi_r;
        auto child = active_spis(*p.conc);
        std::string err;
        REQUIRE((by_edge ? p.edge : p.conc)->eng->rekey_ike_for_test(1, &err));
        p.net.pump();
        CHECK(p.conc->eng->sa_count() == 1);
        CHECK(p.edge->eng->sa_count() == 1);
        auto c = established(*p.conc);
        REQUIRE(c);
        CHECK(c->spi_r != old_sa);
        REQUIRE(c->children.size() == 1);
        CHECK(active_spis(*p.conc) == child);   // children are not rekeyed, just moved
        CHECK(p.conc->eng->counter(Counter::ike_rekeys) == 1);
        // The new IKE SA works: rekey the child over it.
        REQUIRE(p.conc->eng->rekey_child_for_test(1, &err));
        p.net.advance_s(3);
        check_child_agreement(*p.conc, *p.edge);
        CHECK(p.edge->eng->counter(Counter::child_rekeys) == 1);
    }
}

TEST_CASE("simultaneous child rekeys (RFC 7296 §2.8.1) leave exactly one new child SA") {
    for (int round = 0; round < 8; round++) {
        Pair p;
        psk_pair(p);
        p.edge->eng->start();
        p.net.pump();
        auto before = active_spis(*p.conc);
        int checks = 0;
        watch_hitless(p, &checks);
        std::string err;
        // Both requests are on the wire before either side sees the other's.
        REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
        REQUIRE(p.conc->eng->rekey_child_for_test(1, &err));
        p.net.advance_s(5);
        CHECK(p.conc->eng->counter(Counter::rekey_collisions) == 1);
        CHECK(p.edge->eng->counter(Counter::rekey_collisions) == 1);
        CHECK(child_count(*p.conc) == 1);
        CHECK(child_count(*p.edge) == 1);
        check_child_agreement(*p.conc, *p.edge);
        CHECK(active_spis(*p.conc).first != before.first);
        CHECK(p.conc->eng->tunnels()[0].child_rekeys == 1);
        CHECK(p.edge->eng->tunnels()[0].child_rekeys == 1);
    }
}

TEST_CASE("simultaneous IKE SA rekeys (RFC 7296 §2.8.2) leave exactly one new IKE SA") {
    for (int round = 0; round < 8; round++) {
        Pair p;
        psk_pair(p);
        p.edge->eng->start();
        p.net.pump();
        auto old_sa = established(*p.conc)->spi_r;
        std::string err;
        REQUIRE(p.edge->eng->rekey_ike_for_test(1, &err));
        REQUIRE(p.conc->eng->rekey_ike_for_test(1, &err));
        p.net.advance_s(5);
        CHECK(p.conc->eng->counter(Counter::rekey_collisions) == 1);
        CHECK(p.edge->eng->counter(Counter::rekey_collisions) == 1);
        CHECK(p.conc->eng->sa_count() == 1);
        CHECK(p.edge->eng->sa_count() == 1);
        auto c = established(*p.conc);
        REQUIRE(c);
        CHECK(c->spi_r != old_sa);
        auto e = established(*p.edge);
        REQUIRE(e);
        CHECK(e->spi_i == c->spi_i);
        CHECK(e->spi_r == c->spi_r);
        CHECK(c->children.size() == 1);
        // And it is usable.
        REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
        p.net.advance_s(3);
        check_child_agreement(*p.conc, *p.edge);
    }
}

TEST_CASE("liveness: RTT recorded; a dead peer is removed within interval x retries") {
    CloudOpts o;
    o.dpd_interval = 5;
    o.dpd_retries = 3;
    Pair p;
    psk_pair(p, o, o);
    p.edge->eng->start();
    p.net.pump();
    // Liveness checks run by themselves every interval.
    p.net.advance_s(5.5);
    CHECK(p.conc->eng->tunnels()[0].rtt_ms >= 0);
    CHECK(p.edge->eng->tunnels()[0].rtt_ms >= 0);
    // The edge dies: nothing more arrives from it.
    uint64_t died = p.net.now;
    p.net.filter = [](Datagram& d) { return !(d.from.addr == *IpAddr::parse("192.0.2.21")); };
    while (up_tunnel(*p.conc) && p.net.now - died < 60 * kS) p.net.advance(100'000'000);
    CHECK_FALSE(up_tunnel(*p.conc));
    CHECK(p.net.now - died <= 15 * kS);
    CHECK(p.conc->eng->counter(Counter::dpd_dead) == 1);
    CHECK(p.conc->eng->sa_count() == 0);
    auto& ev = p.conc->sink.events();
    CHECK(ev.back() == "down 1");
}

TEST_CASE("clear tunnel: DELETE to the peer; an edge connects again") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    std::string err;
    REQUIRE(p.conc->eng->clear_tunnel(1, &err));
    p.net.pump();
    CHECK(p.conc->sink.tunnels().empty());
    CHECK(p.edge->sink.tunnels().empty());
    CHECK(p.conc->eng->sa_count() == 0);
    CHECK(p.edge->eng->sa_count() == 0);
    // The edge reconnects after its back-off.
    p.net.advance_s(2);
    REQUIRE(established(*p.conc));
    check_child_agreement(*p.conc, *p.edge);
    CHECK_FALSE(p.conc->eng->clear_tunnel(7, &err));
    CHECK(err == "% No such tunnel: 7");
}

TEST_CASE("INITIAL_CONTACT from a restarted site removes its stale SAs") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    auto old_sa = established(*p.conc)->spi_r;
    // The edge restarts: a new engine, no memory of the old SA.
    p.net.remove(*p.edge);
    p.edge = &p.net.add("edge2", "192.0.2.21",
                        edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"}));
    p.edge->eng->start();
    p.net.pump();
    CHECK(p.conc->eng->counter(Counter::initial_contact) == 1);
    CHECK(p.conc->eng->sa_count() == 1);
    auto c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->spi_r != old_sa);
    CHECK(child_count(*p.conc) == 1);
    check_child_agreement(*p.conc, *p.edge);
    // The tunnel kept its identity and never went down for the dataplane.
    auto& ev = p.conc->sink.events();
    CHECK(std::count(ev.begin(), ev.end(), "up 1") == 1);
    CHECK(std::find(ev.begin(), ev.end(), "down 1") == ev.end());
}

TEST_CASE("an edge behind a masquerading NAT: float to 4500, UDP encapsulation, keepalives") {
    EngineSettings es;
    es.keepalive_ns = 20 * kS;
    Net net;
    Node& conc = net.add("conc", "203.0.113.2",
                         concentrator(cloud({}, {{"store-0001.test", {"10.16.1.0/24"}}})));
    Node& ed = net.add("edge", "198.51.100.2",
                       edge(cloud({}), "203.0.113.2", "store-0001.test", {"10.16.1.0/24"}, {"10.0.0.0/8"}, es));
    // The NAT: 198.51.100.2:port <-> 203.0.113.1:(port + 10000)
    IpAddr inside = *IpAddr::parse("198.51.100.2"), outside = *IpAddr::parse("203.0.113.1");
    net.filter = masquerade(inside, outside);
    ed.eng->start();
    net.pump();
    auto c = established(conc);
    REQUIRE(c);
    CHECK(c->nat_remote);
    CHECK_FALSE(c->nat_local);
    CHECK(c->natt);
    CHECK(c->remote.str() == "203.0.113.1[14500]");
    auto* t = up_tunnel(conc);
    REQUIRE(t);
    CHECK(t->spec.paths.udp_encap);
    CHECK(t->spec.paths.remote.str() == "203.0.113.1[14500]");
    CHECK(t->spec.paths.local.str() == "203.0.113.2[4500]");
    auto e = established(ed);
    REQUIRE(e);
    CHECK(e->nat_local);
    CHECK(up_tunnel(ed)->spec.paths.udp_encap);
    // The edge, behind the NAT, keeps the mapping open.
    net.advance_s(21);
    CHECK(ed.eng->counter(Counter::tx_keepalives) >= 1);
    CHECK(conc.eng->counter(Counter::rx_keepalives) >= 1);
    CHECK(conc.eng->counter(Counter::tx_keepalives) == 0);
}

TEST_CASE("a concentrator behind a port-forward detects it and sends keepalives") {
    Net net;
    Node& conc = net.add("conc", "10.99.0.2", concentrator(cloud({}, {{"store-0001.test", {"10.16.1.0/24"}}})));
    Node& ed = net.add("edge", "198.51.100.2", edge(cloud({}), "192.0.2.99", "store-0001.test", {"10.16.1.0/24"}));
    // 192.0.2.99:500/4500 is forwarded to 10.99.0.2 (destination NAT).
    IpAddr pub = *IpAddr::parse("192.0.2.99"), priv = *IpAddr::parse("10.99.0.2");
    net.filter = [&](Datagram& d) {
        if (d.to.addr == pub) d.to.addr = priv;
        if (d.from.addr == priv) d.from.addr = pub;
        return true;
    };
    ed.eng->start();
    net.pump();
    auto c = established(conc);
    REQUIRE(c);
    CHECK(c->nat_local);
    CHECK_FALSE(c->nat_remote);
    CHECK(c->natt);
    net.advance_s(21);
    CHECK(conc.eng->counter(Counter::tx_keepalives) >= 1);
}

TEST_CASE("MOBIKE: UPDATE_SA_ADDRESSES moves the IKE SA and its children") {
    Pair p;
    psk_pair(p);
    p.net.alias("192.0.2.31", *p.edge);
    p.edge->eng->start();
    p.net.pump();
    auto c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->mobike);
    auto child = active_spis(*p.conc);
    std::string err;
    REQUIRE(p.edge->eng->mobike_move_for_test(1, *IpAddr::parse("192.0.2.31"), &err));
    p.net.pump();
    c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->remote.str() == "192.0.2.31[4500]");
    CHECK(p.conc->eng->counter(Counter::mobike_updates) == 1);
    auto* t = up_tunnel(*p.conc);
    CHECK(t->spec.paths.remote.str() == "192.0.2.31[4500]");
    CHECK(active_spis(*p.conc) == child);
    // And the SA keeps working from the new address.
    REQUIRE(p.edge->eng->rekey_child_for_test(1, &err));
    p.net.advance_s(3);
    check_child_agreement(*p.conc, *p.edge);
}

TEST_CASE("MOBIKE out of a NAT and back: keepalives stop and start again") {
    // Found by reading after a fuzzer hang: keepalives were scheduled
    // whatever the NAT, but sent (and their deadline moved) only behind one,
    // so an edge that moved out of a NAT woke up at the same instant forever.
    EngineSettings es;
    es.keepalive_ns = 20 * kS;
    Net net;
    Node& conc = net.add("conc", "203.0.113.2", concentrator(cloud({}, {{"store-0001.test", {"10.16.1.0/24"}}})));
    Node& ed = net.add("edge", "198.51.100.2",
                       edge(cloud({}), "203.0.113.2", "store-0001.test", {"10.16.1.0/24"}, {"10.0.0.0/8"}, es));
    net.alias("198.51.100.3", ed);
    // Only 198.51.100.2 is behind the NAT (as 203.0.113.1); .3 is not.
    IpAddr inside = *IpAddr::parse("198.51.100.2"), outside = *IpAddr::parse("203.0.113.1");
    net.filter = masquerade(inside, outside);
    ed.eng->start();
    net.pump();
    REQUIRE(established(ed));
    REQUIRE(established(ed)->nat_local);
    net.advance_s(21);
    uint64_t sent = ed.eng->counter(Counter::tx_keepalives);
    CHECK(sent >= 1);
    std::string err;
    REQUIRE(ed.eng->mobike_move_for_test(1, *IpAddr::parse("198.51.100.3"), &err));
    net.pump();
    REQUIRE(established(ed));
    CHECK_FALSE(established(ed)->nat_local);
    net.advance_s(60);
    CHECK(ed.eng->counter(Counter::tx_keepalives) == sent);
    CHECK(ed.eng->counter(Counter::timers_overdue) == 0);
    REQUIRE(established(ed));
    REQUIRE(ed.eng->mobike_move_for_test(1, inside, &err));
    net.pump();
    REQUIRE(established(ed));
    CHECK(established(ed)->nat_local);
    net.advance_s(21);
    CHECK(ed.eng->counter(Counter::tx_keepalives) > sent);
    CHECK(ed.eng->counter(Counter::timers_overdue) == 0);
    CHECK(conc.eng->counter(Counter::timers_overdue) == 0);
}

TEST_CASE("retransmission with backoff; repeated requests answered from the cached response") {
    Pair p;
    psk_pair(p);
    // Lose the first IKE_AUTH response once.
    int lost = 0;
    p.net.filter = [&](Datagram& d) {
        if (d.from.addr == *IpAddr::parse("192.0.2.10") && d.data.size() > 17 && d.data[18] == IKE_AUTH && !lost) {
            lost++;
            return false;
        }
        return true;
    };
    p.edge->eng->start();
    p.net.pump();
    CHECK_FALSE(established(*p.edge));
    p.net.advance_s(1.1);
    REQUIRE(established(*p.edge));
    CHECK(p.edge->eng->counter(Counter::tx_retransmits) == 1);
    CHECK(p.conc->eng->counter(Counter::rx_retransmits) == 1);
    // Exactly one IKE SA and one child on the concentrator: the repeat did not create another.
    CHECK(p.conc->eng->counter(Counter::auth_ok) == 1);
    check_child_agreement(*p.conc, *p.edge);
    // A replayed old request from elsewhere gets nothing.
    Datagram auth_req;
    for (auto& d : p.net.log)
        if (d.to.addr == *IpAddr::parse("192.0.2.10") && d.data[18] == IKE_AUTH) auth_req = d;
    auto before = p.conc->eng->counter(Counter::rx_bad_msgid);
    p.conc->eng->receive(auth_req.to, Endpoint{*IpAddr::parse("198.51.100.66"), 500}, auth_req.data);
    CHECK(p.conc->eng->counter(Counter::rx_retransmits) == 2);  // same source rules: answered only if authentic
    CHECK(p.conc->eng->counter(Counter::rx_bad_msgid) == before);
}

TEST_CASE("an unanswered request is retransmitted with exponential backoff, then the SA is given up") {
    EngineSettings es;
    es.retransmit_timeout_ns = 1 * kS;
    es.retransmit_tries = 4;
    Pair p;
    psk_pair(p, {}, {}, {}, es);
    std::vector<uint64_t> sent;
    p.net.filter = [&](Datagram& d) {
        if (d.to.addr == *IpAddr::parse("192.0.2.10")) sent.push_back(p.net.now);
        return false;
    };
    auto start = p.net.now;
    p.edge->eng->start();
    while (p.edge->eng->counter(Counter::request_timeouts) == 0 && p.net.now - start < 60 * kS)
        p.net.advance(100'000'000);
    REQUIRE(sent.size() == 4);
    CHECK(sent[1] - sent[0] == 1 * kS);
    CHECK(sent[2] - sent[1] == 2 * kS);
    CHECK(sent[3] - sent[2] == 4 * kS);
    // Given up 8 s after the last try; the edge then starts over after a pause.
    CHECK(p.net.now - sent[3] <= 8 * kS + 100'000'000);
    CHECK(p.edge->eng->counter(Counter::tx_retransmits) == 3);
    CHECK(p.edge->eng->sa_count() == 0);
    p.net.advance_s(1.5);
    CHECK(sent.size() == 5);
}

TEST_CASE("malformed and stray datagrams are counted and dropped") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    Endpoint to{*IpAddr::parse("192.0.2.10"), 500}, from{*IpAddr::parse("198.51.100.9"), 500};
    Endpoint to_natt{*IpAddr::parse("192.0.2.10"), 4500};
    Engine& e = *p.conc->eng;
    std::vector<uint8_t> junk(100);
    RAND_bytes(junk.data(), int(junk.size()));
    e.receive(to, from, junk);
    e.receive(to, from, std::vector<uint8_t>(10, 0));
    CHECK(e.counter(Counter::rx_malformed) == 2);
    // ESP and keepalives on 4500.
    e.receive(to_natt, from, std::vector<uint8_t>{0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1});
    e.receive(to_natt, from, std::vector<uint8_t>{0xff});
    e.receive(to_natt, from, std::vector<uint8_t>{0, 0});
    CHECK(e.counter(Counter::rx_esp_on_ike_port) == 1);
    CHECK(e.counter(Counter::rx_keepalives) == 1);
    CHECK(e.counter(Counter::rx_malformed) == 3);
    // A well-formed message for an SA that does not exist.
    Header h;
    h.spi_i = 1;
    h.spi_r = 2;
    h.exchange = INFORMATIONAL;
    h.flags = kFlagInitiator;
    h.message_id = 5;
    auto m = MessageBuilder(h).add(make_notify(N_INITIAL_CONTACT)).build();
    e.receive(to, from, *m);
    CHECK(e.counter(Counter::rx_unknown_spi) == 1);
    // A message for the real SA with a broken SK payload.
    auto c = established(*p.conc);
    h.spi_i = c->spi_i;
    h.spi_r = c->spi_r;
    h.message_id = 2;
    MessageBuilder b(h);
    auto sk = MessageBuilder(h).add(make_notify(N_INITIAL_CONTACT)).build();
    std::vector<uint8_t> fake = *sk;
    fake[16] = PT_SK;  // claim an SK payload: the body is not a valid AEAD
    e.receive(to, from, fake);
    CHECK(e.counter(Counter::rx_decrypt_failed) + e.counter(Counter::rx_malformed) >= 4);
    // Many random mutations of a real message: never a crash, never an SA.
    std::vector<uint8_t> base = p.net.log.front().data;
    for (int i = 0; i < 3000; i++) {
        auto x = base;
        uint8_t r[3];
        RAND_bytes(r, 3);
        x[r[0] % x.size()] ^= uint8_t(1u << (r[1] % 8));
        if (r[2] & 1) x.resize(r[2] % x.size());
        e.receive(to, from, x);
    }
    CHECK(up_tunnel(*p.conc));
    CHECK(p.conc->sink.tunnels().size() == 1);
}

namespace {

// Sends an INFORMATIONAL request to the concentrator as if from the edge's
// IKE SA (sealed with its real keys), for messages our initiator never
// sends by itself.
void inject_from_edge(Pair& p, std::vector<Payload> payloads, const Endpoint& from) {
    auto c = established(*p.conc);
    auto e = established(*p.edge);
    REQUIRE(c);
    REQUIRE(e);
    const IkeSa* csa = p.conc->eng->sa_for_test(c->spi_r);
    const IkeSa* esa = p.edge->eng->sa_for_test(e->spi_i);
    Header h;
    h.spi_i = c->spi_i;
    h.spi_r = c->spi_r;
    h.exchange = INFORMATIONAL;
    h.flags = kFlagInitiator;
    h.message_id = csa->peer_msgid;
    MessageBuilder b(h);
    for (auto& x : payloads) b.add_protected(x);
    SkCipher ci = *esa->cout;
    ci.set_iv_counter_for_test(1ull << 40);
    auto m = b.build(ci);
    REQUIRE(m);
    std::vector<uint8_t> wire(4, 0);  // non-ESP marker: on the NAT-T port
    wire.insert(wire.end(), m->begin(), m->end());
    p.conc->eng->receive(Endpoint{*IpAddr::parse("192.0.2.10"), 4500}, from, wire);
    p.net.pump();
}

std::vector<uint8_t> v4(const char* a) {
    auto x = *IpAddr::parse(a);
    return {x.b[0], x.b[1], x.b[2], x.b[3]};
}

}  // namespace

TEST_CASE("MOBIKE additional addresses become paths only once checked (RFC 4555 §3.5)") {
    Pair p;
    psk_pair(p);
    p.net.alias("192.0.2.31", *p.edge);   // a second WAN address of the edge
    p.edge->eng->start();
    p.net.pump();
    auto e = established(*p.edge);
    REQUIRE(e);
    // The edge announces 192.0.2.31 (reachable), 192.0.2.99 (not) and its
    // own LAN address 10.16.1.1 (inside the tunnel: never a path).
    inject_from_edge(p,
                     {make_notify(N_ADDITIONAL_IP4_ADDRESS, v4("192.0.2.31")),
                      make_notify(N_ADDITIONAL_IP4_ADDRESS, v4("192.0.2.99")),
                      make_notify(N_ADDITIONAL_IP4_ADDRESS, v4("10.16.1.1"))},
                     Endpoint{*IpAddr::parse("192.0.2.21"), 4500});
    // Only the address that answered the check is a path.
    p.net.advance_s(5);
    auto* t = up_tunnel(*p.conc);
    REQUIRE(t);
    REQUIRE(t->spec.paths.extra.size() == 1);
    CHECK(t->spec.paths.extra[0].addr.str() == "192.0.2.31");
    // The probe to 192.0.2.99 went unanswered and did not hurt the SA.
    CHECK(established(*p.conc));
    CHECK(p.conc->eng->counter(Counter::request_timeouts) == 0);
    bool probed_lan = false;
    for (auto& d : p.net.log)
        if (d.to.addr == *IpAddr::parse("10.16.1.1")) probed_lan = true;
    CHECK_FALSE(probed_lan);
    auto tv = p.conc->eng->tunnels()[0];
    CHECK(tv.paths.size() == 2);
}

TEST_CASE("site lookup by identity scales: CN index, case-insensitive names, scan for DNs without CN") {
    CloudOpts o;
    std::vector<SiteOpts> sites;
    std::vector<std::string> names;
    for (int i = 0; i < 2000; i++) names.push_back(fmt::format("CN=store-{:04}", i));
    names.push_back("site.Example");
    names.push_back("O=no-cn-here, OU=x");
    names.push_back("192.0.2.77");
    for (auto& n : names) sites.push_back({n.c_str(), {}});
    auto c = cloud(o, sites);
    CHECK(c->indexed);
    CHECK(c->site_scan.size() == 1);
    CHECK(find_site(*c, ident("C=XX, O=corp, CN=store-1234")) == 1234);
    CHECK(find_site(*c, ident("C=XX, O=corp, CN=store-9999")) == -1);
    CHECK(find_site(*c, ident("SITE.example")) == 2000);
    CHECK(find_site(*c, ident("C=XX, O=no-cn-here, OU=x")) == 2001);
    CHECK(find_site(*c, ident("192.0.2.77")) == 2002);
    CHECK(find_site(*c, ident("192.0.2.78")) == -1);
    // Without the index the same answers come from a scan.
    c->indexed = false;
    CHECK(find_site(*c, ident("C=XX, O=corp, CN=store-1234")) == 1234);
    CHECK(find_site(*c, ident("SITE.example")) == 2000);
}

// A concentrator (settings cs) and two sites, store-0001 and store-0002,
// as edges of their own.
struct Trio {
    Node &conc, &a, &b;
};
Trio concentrator_and_two_sites(Net& net, const EngineSettings& cs) {
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites), cs));
    Node& a = net.add("a", "192.0.2.21", edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"}));
    Node& b = net.add("b", "192.0.2.22", edge(cloud({}), "192.0.2.10", "store-0002.test", {"10.16.2.0/24"}));
    return {conc, a, b};
}

TEST_CASE("tunnels(after, n): pages through the tunnels by id") {
    Net net;
    auto [conc, a, b] = concentrator_and_two_sites(net, EngineSettings{});
    a.eng->start();
    b.eng->start();
    net.pump();
    auto all = conc.eng->tunnels();
    REQUIRE(all.size() == 2);
    REQUIRE(all[0].id < all[1].id);
    auto first = conc.eng->tunnels(0, 1);
    REQUIRE(first.size() == 1);
    CHECK(first[0].id == all[0].id);
    CHECK(first[0].state == "up");
    auto second = conc.eng->tunnels(first[0].id, 1);
    REQUIRE(second.size() == 1);
    CHECK(second[0].id == all[1].id);
    CHECK(second[0].name == all[1].name);
    CHECK(conc.eng->tunnels(second[0].id, 1).empty());
    CHECK(conc.eng->tunnels(0, 5).size() == 2);
    CHECK(conc.eng->tunnels(0, 0).empty());
    // tunnel_counts() and each_tunnel() say what tunnels() says.
    auto agree = [&] {
        std::map<std::string, std::array<uint64_t, 3>> want;
        std::vector<std::tuple<TunnelId, std::string, std::string, int, double, uint32_t>> full, brief;
        for (auto& t : conc.eng->tunnels()) {
            int st = t.state == "up" ? 0 : t.state == "connecting" ? 1 : 2;
            want[t.cloud][size_t(st)]++;
            full.emplace_back(t.id, t.cloud, t.name, st, t.rtt_ms, t.flaps);
        }
        conc.eng->each_tunnel([&](const Engine::TunnelBrief& x) {
            brief.emplace_back(x.id, x.cloud, x.name, x.state, x.rtt_ms, x.flaps);
        });
        return conc.eng->tunnel_counts() == want && brief == full;
    };
    // SAs by tunnel range, for slices of `show ike sa`.
    constexpr TunnelId kRest = std::numeric_limits<TunnelId>::max();
    CHECK(conc.eng->nth_tunnel_after(0, 1) == all[0].id);
    CHECK(conc.eng->nth_tunnel_after(0, 2) == all[1].id);
    CHECK(conc.eng->nth_tunnel_after(0, 3) == kRest);
    CHECK(conc.eng->nth_tunnel_after(all[1].id, 1) == kRest);
    auto s1 = conc.eng->sas(0, all[0].id), s2 = conc.eng->sas(all[0].id, kRest), every = conc.eng->sas();
    REQUIRE(s1.size() == 1);
    REQUIRE(s2.size() == 1);
    CHECK(s1[0].tunnel == all[0].id);
    CHECK(s2[0].tunnel == all[1].id);
    REQUIRE(every.size() == 2);
    CHECK((every[0].spi_i == s1[0].spi_i && every[1].spi_i == s2[0].spi_i));
    CHECK(conc.eng->sas(all[1].id, kRest).empty());
    CHECK(conc.eng->tunnel_ids_named(all[1].name) == std::vector<TunnelId>{all[1].id});
    CHECK(conc.eng->tunnel_ids_named("no-such-site").empty());
    CHECK(conc.eng->tunnel_counts().begin()->second == std::array<uint64_t, 3>{2, 0, 0});
    CHECK(agree());
    std::string err;
    REQUIRE(conc.eng->clear_tunnel(all[0].id, &err));
    net.pump(2);  // the DELETE and its answer
    auto counts = conc.eng->tunnel_counts();
    REQUIRE(counts.size() == 1);
    CHECK(counts.begin()->second[0] == 1);
    CHECK(agree());
}

TEST_CASE("a batch queues public-key work, answers the rest at once, and counts queued handshakes as half-open") {
    EngineSettings cs;
    cs.cookie_threshold = 1;
    Net net;
    auto [conc, a, b] = concentrator_and_two_sites(net, cs);
    // A gets through IKE_SA_INIT; its IKE_AUTH request is held back.
    a.eng->start();
    net.pump(2);
    REQUIRE(net.q.size() == 1);
    Datagram a_auth = net.q.front();
    net.q.clear();
    REQUIRE(conc.eng->half_open() == 1);
    // B's first IKE_SA_INIT.
    b.eng->start();
    REQUIRE(net.q.size() == 1);
    Datagram b_init = net.q.front();
    net.q.clear();
    // A's IKE_AUTH arrives twice (A retransmitted it).
    std::vector<Engine::Datagram> batch = {{b_init.to, b_init.from, b_init.data},
                                           {a_auth.to, a_auth.from, a_auth.data},
                                           {a_auth.to, a_auth.from, a_auth.data}};
    conc.eng->receive_batch(batch);
    // A's IKE_AUTH waits for its slice, once; B was admitted against the
    // half-open count that includes A and asked for a cookie at once.
    CHECK(conc.eng->queued() == 1);
    CHECK(conc.eng->counter(Counter::rx_queued) == 1);
    CHECK(conc.eng->counter(Counter::rx_queued_repeats) == 1);
    CHECK(conc.eng->counter(Counter::auth_ok) == 0);
    CHECK(conc.eng->counter(Counter::cookies_sent) == 1);
    REQUIRE(net.q.size() == 1);
    CHECK(net.q.front().to.addr == b.addr);
    CHECK(conc.eng->next_timer() <= net.now);   // work to do now
    conc.eng->on_timer();
    CHECK(conc.eng->queued() == 0);
    CHECK(conc.eng->counter(Counter::auth_ok) == 1);
    net.pump();
    CHECK(conc.eng->counter(Counter::auth_ok) == 2);
    CHECK(a.eng->counter(Counter::ike_established) == 1);
    CHECK(b.eng->counter(Counter::ike_established) == 1);
}

TEST_CASE("queued handshakes hold off retransmission and half-open expiry, and run in bounded slices") {
    EngineSettings cs;
    cs.half_open_timeout_ns = 4'000'000'000ull;   // held while queued, up to twice that from creation
    cs.work_slice_ns = 5'000'000ull;
    EngineSettings es;   // the sites
    es.retransmit_timeout_ns = 1'000'000'000ull;
    Net net;
    std::vector<std::string> ids, prefixes;
    for (int i = 1; i <= 6; i++) {
        ids.push_back(fmt::format("store-{:04}.test", i));
        prefixes.push_back(fmt::format("10.16.{}.0/24", i));
    }
    std::vector<SiteOpts> sites;
    for (size_t i = 0; i < ids.size(); i++) sites.push_back({ids[i].c_str(), {prefixes[i].c_str()}});
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites), cs));
    std::vector<Node*> edges;
    std::vector<std::string> addrs;
    for (int i = 1; i <= 6; i++) addrs.push_back(fmt::format("192.0.2.{}", 20 + i));
    for (size_t i = 0; i < ids.size(); i++)
        edges.push_back(&net.add(fmt::format("e{}", i), addrs[i].c_str(),
                                 edge(cloud({}), "192.0.2.10", ids[i].c_str(), {prefixes[i].c_str()}, {"10.0.0.0/8"}, es)));
    for (Node* e : edges) e->eng->start();
    net.pump(6);   // the IKE_SA_INIT requests; their responses wait in net.q
    // Each host reads what arrived for it as one batch.
    auto deliver_batches = [&net] {
        std::map<IpAddr, std::vector<Datagram>> by_host;
        while (!net.q.empty()) {
            by_host[net.q.front().to.addr].push_back(std::move(net.q.front()));
            net.q.pop_front();
        }
        for (auto& [addr, ds] : by_host) {
            std::vector<Engine::Datagram> batch;
            for (auto& d : ds) batch.push_back({d.to, d.from, d.data});
            net.hosts.at(addr)->eng->receive_batch(batch);
        }
    };
    deliver_batches();
    for (Node* e : edges) REQUIRE(e->eng->queued() == 1);   // IKE_SA_INIT responses: DH and a signature
    // Long past their retransmission timeout the sites have not sent
    // IKE_SA_INIT again: the answer is in their queue.
    net.now += 5'000'000'000ull;
    for (Node* e : edges) {
        e->eng->on_timer();   // runs the queue: IKE_AUTH goes out
        CHECK(e->eng->counter(Counter::tx_retransmits) == 0);
        CHECK(e->eng->queued() == 0);
    }
    // Six IKE_AUTH requests reach the concentrator in one batch and wait
    // past the half-open timeout (4 s, now 7 s after the SAs were made):
    // none expires.
    deliver_batches();
    REQUIRE(conc.eng->queued() == 6);
    net.now += 2'000'000'000ull;
    // A slice is bounded in time: with every clock read taking 1 ms, one
    // call leaves work for the next, and says so.
    net.tick = 1'000'000ull;
    conc.eng->on_timer();
    net.tick = 0;
    CHECK(conc.eng->queued() > 0);
    CHECK(conc.eng->queued() < 6);
    CHECK(conc.eng->next_timer() <= net.now);
    while (conc.eng->queued()) conc.eng->on_timer();
    CHECK(conc.eng->counter(Counter::half_open_expired) == 0);
    CHECK(conc.eng->counter(Counter::auth_ok) == 6);
    deliver_batches();
    for (Node* e : edges) {
        e->eng->on_timer();
        CHECK(e->eng->counter(Counter::ike_established) == 1);
        CHECK(e->eng->counter(Counter::tx_retransmits) == 0);
    }
}

TEST_CASE("an initiator's queue finishes a handshake before it continues another") {
    EngineSettings es;
    es.work_slice_ns = 0;   // one message per slice
    Net net;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites)));
    Policy p = edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"}, {"10.0.0.0/8"}, es);
    InitiatePolicy second = p.initiate[0];
    second.local_id = ident("store-0002.test");
    second.local_prefixes = {*Prefix::parse("10.16.2.0/24")};
    second.local = *IpAddr::parse("192.0.2.31");   // a second address: a tunnel of its own
    p.initiate.push_back(second);
    Node& e = net.add("e", "192.0.2.21", std::move(p));
    net.alias("192.0.2.31", e);
    e.eng->start();
    REQUIRE(net.q.size() == 2);
    net.pump(2);                    // two IKE_SA_INITs; both responses wait in net.q
    REQUIRE(net.q.size() == 2);
    Datagram second_init = net.q.back();
    net.q.pop_back();
    net.pump(2);                    // the first response (read alone, at once) and its IKE_AUTH request
    REQUIRE(net.q.size() == 1);     // the IKE_AUTH response
    Datagram first_auth = net.q.front();
    net.q.clear();
    std::vector<Engine::Datagram> batch = {{second_init.to, second_init.from, second_init.data},
                                           {first_auth.to, first_auth.from, first_auth.data}};
    e.eng->receive_batch(batch);
    REQUIRE(e.eng->queued() == 2);
    e.eng->on_timer();
    CHECK(e.eng->queued() == 1);
    CHECK(e.eng->counter(Counter::ike_established) == 1);   // the IKE_AUTH response went first
    e.eng->on_timer();
    net.pump();
    CHECK(e.eng->counter(Counter::ike_established) == 2);
    CHECK(conc.eng->counter(Counter::auth_ok) == 2);
}

TEST_CASE("initiate entries to one peer that differ only in identity are tunnels of their own") {
    Net net;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites)));
    Policy p = edge(cloud({}), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"});
    InitiatePolicy second = p.initiate[0];
    second.local_id = ident("store-0002.test");
    second.local_prefixes = {*Prefix::parse("10.16.2.0/24")};
    p.initiate.push_back(second);
    REQUIRE(initiate_name(p.initiate[0]) == "store-0001.test->192.0.2.10");
    REQUIRE(initiate_name(p.initiate[1]) == "store-0002.test->192.0.2.10");
    Node& e = net.add("e", "192.0.2.21", std::move(p));
    e.eng->start();
    net.pump();
    CHECK(e.eng->counter(Counter::ike_established) == 2);
    CHECK(conc.eng->counter(Counter::auth_ok) == 2);
    auto tunnels = e.eng->tunnels();
    REQUIRE(tunnels.size() == 2);
    CHECK(tunnels[0].id != tunnels[1].id);
    CHECK(conc.sink.tunnels().size() == 2);
}

TEST_CASE("liveness checks of SAs that came up together drift apart instead of probing in lockstep") {
    Net net;
    CloudOpts dpd;
    dpd.dpd_interval = 10;
    std::vector<std::string> ids, prefixes;
    for (int i = 1; i <= 20; i++) {
        ids.push_back(fmt::format("store-{:04}.test", i));
        prefixes.push_back(fmt::format("10.16.{}.0/24", i));
    }
    std::vector<SiteOpts> sites;
    for (size_t i = 0; i < ids.size(); i++) sites.push_back({ids[i].c_str(), {prefixes[i].c_str()}});
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud(dpd, sites)));
    // One edge standing in for all 20 sites: every SA up at the same instant.
    Policy p = edge(cloud(dpd), "192.0.2.10", ids[0].c_str(), {prefixes[0].c_str()});
    for (size_t i = 1; i < ids.size(); i++) {
        InitiatePolicy in = p.initiate[0];
        in.local_id = ident(ids[i].c_str());
        in.local_prefixes = {*Prefix::parse(prefixes[i])};
        p.initiate.push_back(in);
    }
    net.add("e", "192.0.2.21", std::move(p)).eng->start();
    net.pump();
    REQUIRE(conc.eng->counter(Counter::auth_ok) == 20);
    // Record when the concentrator sends each liveness request.
    std::vector<uint64_t> sent;
    net.filter = [&](Datagram& d) {
        if (d.from.addr == conc.addr && d.data.size() > 20 && d.data[18] == INFORMATIONAL && !(d.data[19] & 0x20))
            sent.push_back(net.now);
        return true;
    };
    net.advance_s(60);   // six intervals
    REQUIRE(sent.size() >= 20 * 5);
    // In the last interval the 20 checks are spread out: no two at the
    // same instant, and they span more than a second.
    std::vector<uint64_t> tail(sent.end() - 20, sent.end());
    std::sort(tail.begin(), tail.end());
    CHECK(std::adjacent_find(tail.begin(), tail.end()) == tail.end());
    CHECK(tail.back() - tail.front() > 1'000'000'000ull);
    CHECK(conc.eng->counter(Counter::dpd_dead) == 0);
}

TEST_CASE("a full work queue drops and counts, and the peer's retransmission gets through later") {
    EngineSettings cs;
    cs.max_queued = 1;
    Net net;
    auto [conc, a, b] = concentrator_and_two_sites(net, cs);
    a.eng->start();
    b.eng->start();
    net.pump(4);   // both IKE_SA_INITs and their responses
    REQUIRE(net.q.size() == 2);   // both IKE_AUTH requests
    std::vector<Engine::Datagram> batch;
    for (auto& d : net.q) batch.push_back({d.to, d.from, d.data});
    conc.eng->receive_batch(batch);
    net.q.clear();
    CHECK(conc.eng->queued() == 1);
    CHECK(conc.eng->counter(Counter::rx_queue_full) == 1);
    conc.eng->on_timer();
    net.pump();
    CHECK(conc.eng->counter(Counter::auth_ok) == 1);
    net.advance_s(5);   // the dropped one is retransmitted and served
    CHECK(conc.eng->counter(Counter::auth_ok) == 2);
    CHECK(a.eng->counter(Counter::ike_established) == 1);
    CHECK(b.eng->counter(Counter::ike_established) == 1);
}

TEST_CASE("HA: a virtual IP given up takes its IKE SAs and tunnels at once, silently; the site finds the new master") {
    Net net;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    CloudOpts fast;
    fast.dpd_interval = 2;
    fast.dpd_retries = 3;
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud(fast, sites)));
    const IpAddr vip = *IpAddr::parse("192.0.2.1");
    net.alias("192.0.2.1", conc);   // the master holds the VIP
    // One site talks to the VIP, the other to the box's own address.
    Node& e1 = net.add("e1", "192.0.2.21", edge(cloud(fast), "192.0.2.1", "store-0001.test", {"10.16.1.0/24"}));
    Node& e2 = net.add("e2", "192.0.2.22", edge(cloud(fast), "192.0.2.10", "store-0002.test", {"10.16.2.0/24"}));
    e1.eng->start();
    e2.eng->start();
    net.pump();
    REQUIRE(conc.eng->sa_count() == 2);
    REQUIRE(conc.sink.tunnels().size() == 2);
    auto before = net.delivered;

    // Backup: the VIP left the box.
    CHECK(conc.eng->drop_local(vip, "virtual IP released (HA)") == 1);
    CHECK(net.q.empty());   // no DELETE: the address is not ours to send from
    CHECK(conc.eng->sa_count() == 1);
    REQUIRE(conc.sink.tunnels().size() == 1);
    CHECK(conc.sink.tunnels().begin()->second.spec.name == "store-0002.test");
    CHECK(conc.eng->counter(Counter::local_address_lost) == 1);
    CHECK(conc.eng->drop_local(vip, "again") == 0);
    CHECK(net.delivered == before);
    auto left = established(conc);
    REQUIRE(left);
    CHECK(left->peer_id == "store-0002.test");

    // The new master takes the VIP, with no state of the old SA: the site's
    // liveness check goes unanswered, it gives up and reconnects to it.
    Node& conc2 = net.add("conc2", "192.0.2.11", concentrator(cloud(fast, sites)));
    net.alias("192.0.2.1", conc2);
    std::string err;
    REQUIRE(e1.eng->liveness_for_test(1, &err));
    net.advance_s(60);
    auto c2 = established(conc2);
    REQUIRE(c2);
    CHECK(c2->peer_id == "store-0001.test");
    CHECK(c2->local.addr == vip);
    CHECK(conc2.eng->counter(Counter::rx_unknown_spi) >= 1);   // the DPD that found nobody
    check_child_agreement(conc2, e1);
}

// ---- inbound SPIs and the dataplane's SA table

TEST_CASE("inbound SPIs are unique in the dataplane's slot bits, and avoid slots held by others") {
    // 300 sites from one edge on a table of 1,024 slots: random SPIs would
    // collide in their low 10 bits ~40 times (the dataplane's 18 bits at
    // 1,000 tunnels: ~2); none may.
    constexpr int kSites = 300;
    Net net;
    std::vector<std::string> ids, nets;
    for (int i = 0; i < kSites; i++) {
        ids.push_back(fmt::format("site-{:04}.test", i));
        nets.push_back(fmt::format("10.{}.{}.0/24", 32 + i / 256, i % 256));
    }
    std::vector<SiteOpts> sites;
    for (int i = 0; i < kSites; i++) sites.push_back({ids[size_t(i)].c_str(), {nets[size_t(i)].c_str()}});
    EngineSettings cs;
    cs.half_open_per_source = 1000;
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites), cs));
    Policy ep = edge(cloud({}), "192.0.2.10", ids[0].c_str(), {nets[0].c_str()});
    for (int i = 1; i < kSites; i++) {
        InitiatePolicy in = ep.initiate[0];
        in.local_id = ident(ids[size_t(i)].c_str());
        in.local_prefixes = {*Prefix::parse(nets[size_t(i)])};
        ep.initiate.push_back(in);
    }
    Node& e = net.add("e", "192.0.2.21", std::move(ep));
    for (Node* n : {&conc, &e}) n->sink.slot_mask = 0x3ff;
    e.eng->start();
    net.pump();
    REQUIRE(conc.sink.tunnels().size() == size_t(kSites));
    REQUIRE(e.sink.tunnels().size() == size_t(kSites));
    auto distinct_slots = [](const Node& n) {
        std::set<uint32_t> slots;
        size_t spis = 0;
        for (auto& [id, t] : n.sink.tunnels())
            for (auto& [spi, c] : t.children) {
                slots.insert(spi & 0x3ff);
                spis++;
            }
        return slots.size() == spis;
    };
    CHECK(distinct_slots(conc));
    CHECK(distinct_slots(e));
    // A rekey of every child keeps old and new inbound SAs side by side a
    // moment: still one slot each.
    std::string err;
    for (auto& t : conc.eng->tunnels()) REQUIRE(conc.eng->rekey_child_for_test(t.id, &err));
    net.pump();
    CHECK(conc.eng->counter(Counter::child_rekeys) == uint64_t(kSites));
    CHECK(distinct_slots(conc));
    CHECK(distinct_slots(e));

    // Slots held by what the engine does not know (static tunnels): a
    // 256-slot table with two slots free, and two sites.
    Net net2;
    Node& c2 = net2.add("conc", "192.0.2.10", concentrator(cloud({}, {{ids[0].c_str(), {nets[0].c_str()}},
                                                                      {ids[1].c_str(), {nets[1].c_str()}}})));
    c2.sink.slot_mask = 0xff;
    c2.sink.slot_taken = [](uint32_t slot) { return slot != 0x42 && slot != 0x43; };
    for (int i = 0; i < 2; i++) {
        Node& ei = net2.add(fmt::format("e{}", i), i ? "192.0.2.22" : "192.0.2.21",
                            edge(cloud({}), "192.0.2.10", ids[size_t(i)].c_str(), {nets[size_t(i)].c_str()}));
        ei.eng->start();
    }
    net2.pump();
    std::set<uint32_t> got;
    for (auto& [id, t] : c2.sink.tunnels())
        for (auto& [spi, c] : t.children) got.insert(spi & 0xff);
    CHECK(got == std::set<uint32_t>{0x42, 0x43});
}

// ---- graceful stop (RFC 7296 §1.4.1)

TEST_CASE("graceful stop: the concentrator deletes every IKE SA at once; the edge reconnects to the restarted one") {
    Net net;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    CloudOpts o;
    o.dpd_interval = 30;   // far beyond the test: nothing below is dead-peer detection
    Node* conc = &net.add("conc", "192.0.2.10", concentrator(cloud(o, sites)));
    // One edge standing in for both sites (one source address, two identities).
    Policy ep = edge(cloud(o), "192.0.2.10", "store-0001.test", {"10.16.1.0/24"});
    InitiatePolicy second = ep.initiate[0];
    second.local_id = ident("store-0002.test");
    second.local_prefixes = {*Prefix::parse("10.16.2.0/24")};
    ep.initiate.push_back(second);
    Node& e = net.add("e", "192.0.2.21", std::move(ep));
    e.eng->start();
    net.pump();
    REQUIRE(conc->eng->sa_count() == 2);
    REQUIRE(e.sink.tunnels().size() == 2);

    // SIGTERM: one DELETE per IKE SA, a burst at a time.
    CHECK(conc->eng->close_all({}, 1) == 1);
    CHECK(conc->eng->is_closing());
    CHECK(conc->eng->closing() == 1);
    CHECK(net.q.size() == 1);
    CHECK(conc->eng->close_all({}, 1) == 1);
    CHECK(conc->eng->closing() == 2);
    CHECK(net.q.size() == 2);
    CHECK(conc->eng->close_all() == 0);   // again: nothing new to delete
    net.pump();
    CHECK(conc->eng->closing() == 0);   // both answered: nimbusd may go
    CHECK(conc->eng->sa_count() == 0);
    CHECK(conc->sink.tunnels().empty());
    CHECK(conc->eng->counter(Counter::closing_deletes) == 2);
    CHECK(conc->eng->downs()[int(DownReason::shutdown)] == 2);
    // The edge knows at once, not after its 90 s of dead-peer detection.
    CHECK(e.eng->sa_count() == 0);
    CHECK(e.sink.tunnels().empty());
    for (auto& t : e.eng->tunnels()) CHECK(t.last_down == "peer_delete");

    // It reconnects after its back-off (1 s); the stopping concentrator
    // starts nothing new.
    net.advance_s(1.5);
    CHECK(conc->eng->counter(Counter::closing_refused) == 2);
    CHECK(conc->eng->sa_count() == 0);
    CHECK(conc->sink.tunnels().empty());

    // The concentrator is back (a new process, no memory of the old SAs):
    // the edge's retransmitted IKE_SA_INITs reach it.
    uint64_t back = net.now;
    net.remove(*conc);
    conc = &net.add("conc2", "192.0.2.10", concentrator(cloud(o, sites)));
    while (conc->sink.tunnels().size() < 2 && net.now - back < 10 * kS) net.advance(10'000'000);
    CHECK(conc->sink.tunnels().size() == 2);
    CHECK(net.now - back <= 1'100'000'000ull);   // the edge's first retransmission (1 s)
    CHECK(e.sink.tunnels().size() == 2);
    CHECK(e.eng->counter(Counter::ike_established) == 4);
}

TEST_CASE("graceful stop: SAs on HA virtual IPs and SAs being set up are left alone; what comes up meanwhile is deleted") {
    Net net;
    std::vector<SiteOpts> sites = {{"store-0001.test", {"10.16.1.0/24"}}, {"store-0002.test", {"10.16.2.0/24"}}};
    Node& conc = net.add("conc", "192.0.2.10", concentrator(cloud({}, sites)));
    const IpAddr vip = *IpAddr::parse("192.0.2.1");
    net.alias("192.0.2.1", conc);
    Node& e1 = net.add("e1", "192.0.2.21", edge(cloud({}), "192.0.2.1", "store-0001.test", {"10.16.1.0/24"}));
    Node& e2 = net.add("e2", "192.0.2.22", edge(cloud({}), "192.0.2.10", "store-0002.test", {"10.16.2.0/24"}));
    e1.eng->start();
    net.pump();
    REQUIRE(established(conc));
    // e2's handshake is half-done: IKE_SA_INIT answered, IKE_AUTH on its way.
    e2.eng->start();
    net.pump(2);
    REQUIRE(conc.eng->sa_count() == 2);
    REQUIRE(net.q.size() == 1);

    auto on_vip = [&vip](const IpAddr& a) { return a == vip; };
    CHECK(conc.eng->close_all(on_vip) == 0);
    CHECK(conc.eng->closing() == 0);
    CHECK(conc.sink.tunnels().size() == 1);   // the VIP's tunnel carries on until the HA handover
    // The half-open SA completes (its IKE_AUTH was in flight) and is then
    // deleted like the others; the VIP's SA still is not.
    net.pump();
    REQUIRE(e2.eng->sa_count() == 1);
    CHECK(conc.eng->close_all(on_vip) == 1);
    CHECK(conc.eng->closing() == 1);
    net.pump();
    CHECK(conc.eng->closing() == 0);
    CHECK(e2.eng->sa_count() == 0);
    CHECK(e2.eng->tunnels().at(0).last_down == "peer_delete");
    CHECK(e1.eng->sa_count() == 1);
    REQUIRE(conc.eng->sa_count() == 1);
    CHECK(established(conc)->local.addr == vip);
}

TEST_CASE("graceful stop: a DELETE waits for the request already out (one at a time), and an edge that stops stays down") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    REQUIRE(established(*p.conc));
    std::string err;
    // A liveness check from the edge is out when the edge stops.
    REQUIRE(p.edge->eng->liveness_for_test(1, &err));
    REQUIRE(p.net.q.size() == 1);
    CHECK(p.edge->eng->close_all() == 1);
    CHECK(p.net.q.size() == 1);   // the DELETE waits for the answer
    p.net.pump();
    CHECK(p.edge->eng->closing() == 0);
    CHECK(p.edge->eng->sa_count() == 0);
    // The concentrator took the tunnel down at once (the peer said so) ...
    CHECK(p.conc->eng->sa_count() == 0);
    CHECK(p.conc->sink.tunnels().empty());
    CHECK(p.conc->eng->tunnels().at(0).last_down == "peer_delete");
    // ... and the stopping edge does not come back.
    p.net.advance_s(60);
    CHECK(p.edge->eng->sa_count() == 0);
    CHECK(p.conc->eng->sa_count() == 0);
    CHECK(p.edge->eng->counter(Counter::ike_established) == 1);
    p.edge->eng->initiate_entry(0);
    CHECK(p.edge->eng->sa_count() == 0);
}

TEST_CASE("graceful stop: an unanswered DELETE is given up after the retransmissions, and the SA goes") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    REQUIRE(established(*p.conc));
    p.net.filter = [](Datagram& d) { return !(d.from.addr == *IpAddr::parse("192.0.2.21")); };   // the edge is gone
    CHECK(p.conc->eng->close_all() == 1);
    p.net.advance_s(5);
    CHECK(p.conc->eng->closing() == 1);   // the caller's own bound (ike.delete_on_stop_ms) ends the wait
    p.net.advance_s(60);
    CHECK(p.conc->eng->closing() == 0);
    CHECK(p.conc->eng->sa_count() == 0);
    CHECK(p.conc->sink.tunnels().empty());
}

// ---- monitoring: events, flaps, down reasons, RTT statistics

namespace {
std::vector<std::string> event_names(Engine& e, TunnelId id) {
    std::vector<Engine::Event> ev;
    REQUIRE(e.history(id, nullptr, &ev));
    std::vector<std::string> v;
    for (auto& x : ev)
        v.push_back(std::string(event_kind_name(x.kind)) +
                    (x.reason == DownReason::none ? "" : std::string(":") + down_reason_name(x.reason)));
    return v;
}
}  // namespace

TEST_CASE("tunnel events: clear, peer DELETE and dead peer are told apart; flaps counted; RTT min/avg/max") {
    CloudOpts o;
    o.dpd_interval = 5;
    o.dpd_retries = 3;
    Pair p;
    psk_pair(p, o, o);
    p.edge->eng->start();
    p.net.pump();
    REQUIRE(established(*p.conc));
    TunnelInfo ti;
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.flaps == 0);
    CHECK(ti.last_down.empty());
    CHECK(ti.rtt_samples == 0);
    CHECK(ti.rtt_min_ms < 0);
    // Two liveness rounds: statistics from both samples.
    p.net.advance_s(5.5);
    p.net.advance_s(5.5);
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.rtt_samples >= 2);
    CHECK(ti.rtt_min_ms >= 0);
    CHECK(ti.rtt_min_ms <= ti.rtt_avg_ms);
    CHECK(ti.rtt_avg_ms <= ti.rtt_max_ms);
    // 1. The operator clears it on the concentrator; the edge comes back.
    std::string err;
    REQUIRE(p.conc->eng->clear_tunnel(1, &err));
    p.net.pump();
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.state == "down");
    CHECK(ti.flaps == 1);
    CHECK(ti.last_down == "clear");
    // The edge saw the peer's DELETE.
    auto edge_t = p.edge->eng->tunnels().at(0);
    CHECK(edge_t.last_down == "peer_delete");
    CHECK(edge_t.flaps == 1);
    p.net.advance_s(2);
    REQUIRE(established(*p.conc));
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.state == "up");
    CHECK(ti.flaps == 1);
    CHECK(event_names(*p.conc->eng, 1) == std::vector<std::string>{"up", "down:clear", "up"});
    // 2. The edge goes silent: dead peer detection.
    p.net.filter = [](Datagram& d) { return !(d.from.addr == *IpAddr::parse("192.0.2.21")); };
    uint64_t died = p.net.now;
    while (up_tunnel(*p.conc) && p.net.now - died < 60 * kS) p.net.advance(100'000'000);
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.flaps == 2);
    CHECK(ti.last_down == "dpd");
    CHECK(ti.last_down_detail == "dead peer");
    CHECK(p.conc->eng->downs()[int(DownReason::dpd)] == 1);
    CHECK(p.conc->eng->downs()[int(DownReason::clear)] == 1);
    CHECK(event_names(*p.conc->eng, 1).back() == "down:dpd");
    CHECK_FALSE(p.conc->eng->history(99, nullptr, nullptr));
}

TEST_CASE("tunnel events: a rekey is an event, not a flap") {
    Pair p;
    psk_pair(p);
    p.edge->eng->start();
    p.net.pump();
    std::string err;
    REQUIRE(p.conc->eng->rekey_child_for_test(1, &err));
    p.net.pump();
    REQUIRE(p.conc->eng->rekey_ike_for_test(1, &err));
    p.net.pump();
    TunnelInfo ti;
    REQUIRE(p.conc->eng->history(1, &ti, nullptr));
    CHECK(ti.flaps == 0);
    CHECK(ti.state == "up");
    CHECK(event_names(*p.conc->eng, 1) == std::vector<std::string>{"up", "rekey_child", "rekey_ike"});
}
