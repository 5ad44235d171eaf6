// The IKE engine, initiator against responder, in process: full handshakes
// with PSK and certificates, fragmentation over 1280-octet paths, COOKIEs,
// INVALID_KE_PAYLOAD, traffic-selector policy, rekeys of both kinds from
// both sides, simultaneous rekeys, liveness and DPD, DELETE, INITIAL_CONTACT,
// NAT traversal, MOBIKE, retransmission and the message-ID window, and
// malformed input. Time is simulated; nothing waits.
#include <catch2/catch.hpp>

#include <openssl/rand.h>

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

const SaInfo* established(const Node& n) {
    static std::vector<SaInfo> keep;
    keep = n.eng->sas();
    for (auto& s : keep)
        if (s.state == "established") return &s;
    return nullptr;
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
    auto* c = established(*p.conc);
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
    auto* c = established(*p.conc);
    REQUIRE(c);
    CHECK(c->peer_id == "C=XX, O=nimbus-test, CN=store-0001");
    CHECK(c->local_id == "C=XX, O=nimbus-test, CN=conc.test");
    CHECK(c->auth == "digital-signature");
    auto* e = established(*p.edge);
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
    auto* c = established(*p.conc);
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
        auto* c = established(*p.conc);
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
        auto* c = established(*p.conc);
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
