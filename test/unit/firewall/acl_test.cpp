// The firewall's matching (dataplane/acl/acl.h): packet keys from real
// header bytes, rules as a table of (rule, packet) -> match, first match
// wins, the flow table in both directions, expiry and eviction, and the
// counters decide() keeps.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "dataplane/acl/acl.h"

using namespace nimbus::dp::acl;

namespace {

// IPv4 header (20 bytes) + L4 bytes.
std::vector<uint8_t> v4(const char* src, const char* dst, uint8_t proto, std::vector<uint8_t> l4,
                        uint8_t tos = 0, uint16_t frag = 0) {
    std::vector<uint8_t> p(20);
    p[0] = 0x45;
    p[1] = tos;
    uint16_t tot = uint16_t(20 + l4.size());
    p[2] = uint8_t(tot >> 8);
    p[3] = uint8_t(tot);
    p[6] = uint8_t(frag >> 8);
    p[7] = uint8_t(frag);
    p[8] = 64;
    p[9] = proto;
    inet_pton(AF_INET, src, &p[12]);
    inet_pton(AF_INET, dst, &p[16]);
    p.insert(p.end(), l4.begin(), l4.end());
    return p;
}

std::vector<uint8_t> v6(const char* src, const char* dst, uint8_t nh, std::vector<uint8_t> rest, uint8_t tc = 0) {
    std::vector<uint8_t> p(40);
    p[0] = uint8_t(0x60 | tc >> 4);
    p[1] = uint8_t(tc << 4);
    p[4] = uint8_t(rest.size() >> 8);
    p[5] = uint8_t(rest.size());
    p[6] = nh;
    p[7] = 64;
    inet_pton(AF_INET6, src, &p[8]);
    inet_pton(AF_INET6, dst, &p[24]);
    p.insert(p.end(), rest.begin(), rest.end());
    return p;
}

std::vector<uint8_t> ports(uint16_t s, uint16_t d) {
    return {uint8_t(s >> 8), uint8_t(s), uint8_t(d >> 8), uint8_t(d), 0, 0, 0, 0};
}

std::vector<uint8_t> echo(uint8_t type, uint16_t id) { return {type, 0, 0, 0, uint8_t(id >> 8), uint8_t(id), 0, 1}; }

Key key(const std::vector<uint8_t>& p) {
    Key k;
    REQUIRE(extract(p.data(), uint32_t(p.size()), &k));
    return k;
}

PrefixMatch pfx(const char* s) {
    std::string t(s);
    auto slash = t.find('/');
    int len = std::stoi(t.substr(slash + 1));
    std::string a = t.substr(0, slash);
    uint8_t b[16] = {};
    bool six = a.find(':') != std::string::npos;
    REQUIRE(inet_pton(six ? AF_INET6 : AF_INET, a.c_str(), b) == 1);
    return make_prefix(b, six, len);
}

}  // namespace

TEST_CASE("packet keys come from the IP and L4 headers") {
    Key k = key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 22), 46 << 2));
    CHECK(k.v6 == 0);
    CHECK(k.proto == 6);
    CHECK(k.sport == 40000);
    CHECK(k.dport == 22);
    CHECK(k.ports == 1);
    CHECK(k.dscp == 46);
    CHECK(k.src[0] == uint64_t(0x0a010002) << 32);

    // ICMP echo: the identifier in both ports, so request and reply meet.
    Key req = key(v4("10.1.0.2", "10.2.0.2", 1, echo(8, 0x1234)));
    Key rep = key(v4("10.2.0.2", "10.1.0.2", 1, echo(0, 0x1234)));
    CHECK(req.sport == 0x1234);
    CHECK(req.dport == 0x1234);
    CHECK(rep.sport == 0x1234);
    // Other ICMP: no identifier.
    Key unreach = key(v4("10.2.0.2", "10.1.0.2", 1, echo(3, 0x1234)));
    CHECK(unreach.sport == 0);
    CHECK(unreach.ports == 1);

    // A later fragment has no L4 header: ports unknown.
    Key frag = key(v4("10.1.0.2", "10.2.0.2", 17, ports(1, 2), 0, 0x00b9));
    CHECK(frag.ports == 0);
    // A first fragment (MF set, offset 0) has one.
    Key first = key(v4("10.1.0.2", "10.2.0.2", 17, ports(1, 2), 0, 0x2000));
    CHECK(first.ports == 1);
    CHECK(first.dport == 2);
    // Truncated L4 header: ports unknown, the packet is still keyed.
    Key shortl4 = key(v4("10.1.0.2", "10.2.0.2", 6, {0x9c}));
    CHECK(shortl4.ports == 0);

    // IPv6 with a hop-by-hop and a destination options header before TCP.
    std::vector<uint8_t> ext = {60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0};
    auto t = ports(5000, 443);
    ext.insert(ext.end(), t.begin(), t.end());
    Key k6 = key(v6("fd00:1::2", "fd00:2::2", 0, ext, 10 << 2));
    CHECK(k6.v6 == 1);
    CHECK(k6.proto == 6);
    CHECK(k6.dport == 443);
    CHECK(k6.dscp == 10);
    // IPv6 later fragment: protocol known, ports not.
    std::vector<uint8_t> fh = {17, 0, 0x05, 0x00, 0, 0, 0, 7};
    Key f6 = key(v6("fd00:1::2", "fd00:2::2", 44, fh));
    CHECK(f6.proto == 17);
    CHECK(f6.ports == 0);
    // Malformed input is refused, not read past.
    Key bad;
    uint8_t junk[3] = {0x45, 0, 0};
    CHECK_FALSE(extract(junk, 3, &bad));
    std::vector<uint8_t> cut = {0, 4, 0, 0};  // hop-by-hop claiming 40 bytes, 4 present
    Key kc;
    auto pc = v6("fd00:1::2", "fd00:2::2", 0, cut);
    CHECK_FALSE(extract(pc.data(), uint32_t(pc.size()), &kc));
}

TEST_CASE("rules match on family, protocol, prefixes, ports and DSCP") {
    Rule any;
    Rule tcp22;
    tcp22.proto = 6;
    tcp22.port_match = true;
    tcp22.dport_lo = tcp22.dport_hi = 22;
    Rule lan;
    lan.src = {pfx("10.1.0.0/24"), pfx("fd00:1::/64")};
    Rule to_core;
    to_core.dst = {pfx("10.0.0.0/8")};
    to_core.family = 4;
    Rule ef;
    ef.dscp = uint64_t(1) << 46;
    Rule high;
    high.proto = 17;
    high.port_match = true;
    high.sport_lo = 1024;
    high.dport_lo = 5000;
    high.dport_hi = 5010;

    struct Case {
        const char* what;
        const Rule& rule;
        std::vector<uint8_t> pkt;
        bool match;
    };
    const Case cases[] = {
        {"any matches TCP", any, v4("192.0.2.1", "10.1.0.2", 6, ports(1, 2)), true},
        {"any matches IPv6", any, v6("fd00:9::1", "fd00:1::2", 17, ports(1, 2)), true},
        {"tcp dport 22", tcp22, v4("10.2.0.2", "10.1.0.2", 6, ports(50000, 22)), true},
        {"tcp dport 23 is not 22", tcp22, v4("10.2.0.2", "10.1.0.2", 6, ports(50000, 23)), false},
        {"udp dport 22 is not tcp", tcp22, v4("10.2.0.2", "10.1.0.2", 17, ports(50000, 22)), false},
        {"tcp later fragment: ports unknown", tcp22, v4("10.2.0.2", "10.1.0.2", 6, ports(50000, 22), 0, 0x0010),
         false},
        {"src in the IPv4 LAN", lan, v4("10.1.0.77", "10.9.9.9", 6, ports(1, 2)), true},
        {"src in the IPv6 LAN", lan, v6("fd00:1::77", "fd00:9::9", 6, ports(1, 2)), true},
        {"src outside both", lan, v4("10.1.1.1", "10.9.9.9", 6, ports(1, 2)), false},
        {"IPv6 src with the IPv4 LAN's bits is not in it", lan, v6("a01:0::", "fd00:9::9", 6, ports(1, 2)), false},
        {"dst in 10/8", to_core, v4("192.0.2.1", "10.200.1.1", 1, echo(8, 1)), true},
        {"dst outside 10/8", to_core, v4("192.0.2.1", "11.0.0.1", 1, echo(8, 1)), false},
        {"family 4 never matches IPv6", to_core, v6("fd00::1", "fd00::2", 1, echo(128, 1)), false},
        {"DSCP EF", ef, v4("10.1.0.2", "10.2.0.2", 17, ports(1, 2), 46 << 2), true},
        {"DSCP EF, ECN bits set", ef, v4("10.1.0.2", "10.2.0.2", 17, ports(1, 2), (46 << 2) | 3), true},
        {"DSCP AF41 is not EF", ef, v4("10.1.0.2", "10.2.0.2", 17, ports(1, 2), 34 << 2), false},
        {"DSCP EF over IPv6", ef, v6("fd00:1::2", "fd00:2::2", 17, ports(1, 2), 46 << 2), true},
        {"udp range, low edge", high, v4("10.1.0.2", "10.2.0.2", 17, ports(1024, 5000)), true},
        {"udp range, high edge", high, v4("10.1.0.2", "10.2.0.2", 17, ports(65535, 5010)), true},
        {"udp range, above", high, v4("10.1.0.2", "10.2.0.2", 17, ports(1024, 5011)), false},
        {"udp sport below 1024", high, v4("10.1.0.2", "10.2.0.2", 17, ports(1023, 5005)), false},
    };
    for (auto& c : cases) {
        INFO(c.what);
        CHECK(c.rule.matches(key(c.pkt)) == c.match);
    }
}

TEST_CASE("first match wins; no match falls to the default") {
    Direction d;
    Rule deny_telnet;
    deny_telnet.slot = 1;
    deny_telnet.action = Action::Deny;
    deny_telnet.proto = 6;
    deny_telnet.port_match = true;
    deny_telnet.dport_lo = deny_telnet.dport_hi = 23;
    Rule allow_lan;
    allow_lan.slot = 2;
    allow_lan.src = {pfx("10.1.0.0/24")};
    d.rules = {deny_telnet, allow_lan};
    d.dflt = Action::Deny;
    d.default_slot = 3;
    CHECK(d.match(key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 23)))) == 0);
    CHECK(d.match(key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 80)))) == 1);
    CHECK(d.match(key(v4("10.3.0.2", "10.2.0.2", 6, ports(40000, 80)))) == -1);

    Policy p;
    p.in = d;
    Counters c;
    CHECK_FALSE(decide(p, p.in, key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 23))), 60, 0, nullptr, c, 0));
    CHECK(decide(p, p.in, key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 80))), 60, 0, nullptr, c, 0));
    CHECK_FALSE(decide(p, p.in, key(v4("10.3.0.2", "10.2.0.2", 6, ports(40000, 80))), 100, 0, nullptr, c, 0));
    CHECK(c.packets[1] == 1);
    CHECK(c.packets[2] == 1);
    CHECK(c.packets[3] == 1);
    CHECK(c.bytes[3] == 100);
}

TEST_CASE("a stateful allow lets the replies through, in either direction, until the flow idles out") {
    Policy p;
    p.stateful = true;
    p.state_ttl = 100;
    Rule out;
    out.slot = 1;
    out.action = Action::AllowStateful;
    out.src = {pfx("10.1.0.0/24")};
    p.out.rules = {out};
    p.out.state_slot = 2;
    p.in.dflt = Action::Deny;
    p.in.default_slot = 3;
    p.in.state_slot = 4;
    FlowTable ft(1024);
    Counters c;
    auto req = key(v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 443)));
    auto rep = key(v4("10.2.0.2", "10.1.0.2", 6, ports(443, 40000)));
    auto other_port = key(v4("10.2.0.2", "10.1.0.2", 6, ports(443, 40001)));

    CHECK_FALSE(decide(p, p.in, rep, 40, 7, &ft, c, 10));  // no flow yet
    CHECK(decide(p, p.out, req, 40, 7, &ft, c, 10));       // creates it
    CHECK(c.packets[1] == 1);
    CHECK(decide(p, p.in, rep, 40, 7, &ft, c, 20));  // the reply
    CHECK(c.packets[4] == 1);
    CHECK(decide(p, p.out, req, 40, 7, &ft, c, 30));  // the flow's next packet, not the rule
    CHECK(c.packets[2] == 1);
    CHECK(c.packets[1] == 1);
    CHECK_FALSE(decide(p, p.in, other_port, 40, 7, &ft, c, 30));  // another flow
    CHECK_FALSE(decide(p, p.in, rep, 40, 8, &ft, c, 30));         // same tuple, another VRF
    // Each hit extends the lifetime: alive at 30 + 100 - 1, gone after.
    CHECK(decide(p, p.in, rep, 40, 7, &ft, c, 129));
    CHECK_FALSE(ft.hit(rep, 7, 229, 100));
    CHECK(ft.live(228) == 1);
    CHECK(ft.live(230) == 0);
    CHECK(ft.stats().created == 1);
    CHECK(ft.stats().evicted == 0);
}

TEST_CASE("the flow table is bounded: a full set replaces the entry closest to expiry") {
    FlowTable ft(4);  // one set of four ways
    REQUIRE(ft.capacity() == 4);
    std::vector<Key> ks;
    for (int i = 0; i < 5; i++) ks.push_back(key(v4("10.1.0.2", "10.2.0.2", 17, ports(uint16_t(1000 + i), 53))));
    for (int i = 0; i < 4; i++) ft.add(ks[size_t(i)], 0, uint64_t(i), 100);  // expire at 100..103
    for (int i = 0; i < 4; i++) CHECK(ft.hit(ks[size_t(i)], 0, 50, 100 + uint64_t(i)));  // now 150..153
    ft.add(ks[4], 0, 60, 100);  // full: the one expiring first (ks[0], 150) goes
    CHECK(ft.stats().evicted == 1);
    CHECK_FALSE(ft.hit(ks[0], 0, 61, 100));
    CHECK(ft.hit(ks[4], 0, 61, 100));
    CHECK(ft.hit(ks[3], 0, 61, 100));
    // An expired entry is reused without counting an eviction.
    FlowTable f2(4);
    f2.add(ks[0], 0, 0, 10);
    for (int i = 1; i < 4; i++) f2.add(ks[size_t(i)], 0, 0, 1000);
    f2.add(ks[4], 0, 20, 1000);
    CHECK(f2.stats().evicted == 0);
    CHECK(f2.live(21) == 4);
}

TEST_CASE("an ICMP error about a recorded flow belongs to it (path MTU discovery through a default deny)") {
    Policy p;
    p.stateful = true;
    p.state_ttl = 100;
    Rule out;
    out.slot = 1;
    out.action = Action::AllowStateful;
    p.out.rules = {out};
    p.in.dflt = Action::Deny;
    p.in.default_slot = 3;
    p.in.state_slot = 4;
    FlowTable ft(64);
    Counters c;

    // Our TCP segment out, then the far side's "fragmentation needed"
    // (type 3 code 4) quoting its IPv4 header and first 8 bytes.
    auto seg = v4("10.1.0.2", "10.2.0.2", 6, ports(40000, 443));
    CHECK(decide(p, p.out, key(seg), 60, 0, &ft, c, 1));
    // (Built by index: GCC 12 at -O3 warns falsely on vector::insert here.)
    auto icmp_error = [](uint8_t type, uint8_t code, const std::vector<uint8_t>& quoted, size_t n) {
        std::vector<uint8_t> icmp(8 + n, 0);
        icmp[0] = type;
        icmp[1] = code;
        icmp[6] = 0x05;  // next-hop MTU 1280
        for (size_t i = 0; i < n; i++) icmp[8 + i] = quoted[i];
        return icmp;
    };
    auto error_about = [&](const std::vector<uint8_t>& quoted, uint8_t type, uint8_t code) {
        return icmp_error(type, code, quoted, 28);
    };
    auto err = v4("198.51.100.7", "10.1.0.2", 1, error_about(seg, 3, 4));
    Key k = key(err);
    CHECK(k.icmp_error == 1);
    Key q;
    REQUIRE(extract_quoted(err.data(), uint32_t(err.size()), k, &q));
    CHECK(q.proto == 6);
    CHECK(q.sport == 40000);
    CHECK(q.dport == 443);
    CHECK(decide(p, p.in, k, uint32_t(err.size()), 0, &ft, c, 2, &q));
    CHECK(c.packets[4] == 1);
    // About a segment of no recorded flow: the default.
    auto other = v4("10.1.0.2", "10.2.0.2", 6, ports(40001, 443));
    auto err2 = v4("198.51.100.7", "10.1.0.2", 1, error_about(other, 3, 4));
    Key k2 = key(err2), q2;
    REQUIRE(extract_quoted(err2.data(), uint32_t(err2.size()), k2, &q2));
    CHECK_FALSE(decide(p, p.in, k2, 56, 0, &ft, c, 3, &q2));
    CHECK(c.packets[3] == 1);

    // IPv6: packet too big (type 2) about our UDP datagram.
    auto dgram = v6("fd00:1::2", "fd00:2::2", 17, ports(5000, 53));
    CHECK(decide(p, p.out, key(dgram), 60, 0, &ft, c, 4));
    auto err6 = v6("2001:db8::1", "fd00:1::2", 58, icmp_error(2, 0, dgram, 48));
    Key k6 = key(err6), q6;
    CHECK(k6.icmp_error == 1);
    REQUIRE(extract_quoted(err6.data(), uint32_t(err6.size()), k6, &q6));
    CHECK(q6.dport == 53);
    CHECK(decide(p, p.in, k6, uint32_t(err6.size()), 0, &ft, c, 5, &q6));

    // Not errors, or nothing usable quoted: no quoted key.
    Key echo_k = key(v4("10.2.0.2", "10.1.0.2", 1, echo(8, 7)));
    CHECK(echo_k.icmp_error == 0);
    CHECK_FALSE(extract_quoted(nullptr, 0, echo_k, &q));
    auto cut = v4("198.51.100.7", "10.1.0.2", 1, {3, 4, 0, 0, 0, 0, 0, 0, 0x45, 0});
    Key kc = key(cut);
    CHECK_FALSE(extract_quoted(cut.data(), uint32_t(cut.size()), kc, &q));
    auto about_error = v4("198.51.100.7", "10.1.0.2", 1, error_about(err, 3, 1));
    Key ke = key(about_error);
    CHECK_FALSE(extract_quoted(about_error.data(), uint32_t(about_error.size()), ke, &q));
    auto wrong_family = v4("198.51.100.7", "10.1.0.2", 1, error_about(std::vector<uint8_t>(dgram.begin(), dgram.end()), 3, 4));
    Key kw = key(wrong_family);
    CHECK_FALSE(extract_quoted(wrong_family.data(), uint32_t(wrong_family.size()), kw, &q));
}

TEST_CASE("a packet's later fragments get the verdict of its first (they carry no ports)") {
    Policy p;
    p.frag_ttl = 50;
    Rule dns;
    dns.slot = 1;
    dns.proto = 17;
    dns.port_match = true;
    dns.dport_lo = dns.dport_hi = 53;
    Rule telnet;
    telnet.slot = 2;
    telnet.action = Action::Deny;
    telnet.proto = 17;
    telnet.port_match = true;
    telnet.dport_lo = telnet.dport_hi = 23;
    Rule any_udp;  // without ports: a later fragment alone can match it
    any_udp.slot = 5;
    any_udp.proto = 17;
    any_udp.src = {pfx("192.0.2.0/24")};
    p.in.rules = {dns, telnet, any_udp};
    p.in.dflt = Action::Deny;
    p.in.default_slot = 3;
    FlowTable ft(1024);
    Counters c;
    // IPv4: id in the header, MF on the first, offsets on the others.
    auto frag4 = [](const char* src, uint16_t id, uint16_t frag, std::vector<uint8_t> l4) {
        auto pk = v4(src, "10.1.0.2", 17, std::move(l4), 0, frag);
        pk[4] = uint8_t(id >> 8);
        pk[5] = uint8_t(id);
        return pk;
    };
    auto first = frag4("10.2.0.2", 0x1111, 0x2000, ports(40000, 53));
    auto middle = frag4("10.2.0.2", 0x1111, 0x2000 | 185, std::vector<uint8_t>(8, 0xab));
    auto last = frag4("10.2.0.2", 0x1111, 370, std::vector<uint8_t>(8, 0xab));
    Key kf = key(first), km = key(middle), kl = key(last);
    CHECK(kf.frag == 1);
    CHECK(km.frag == 2);
    CHECK(kl.frag == 2);
    CHECK(km.frag_id == 0x1111);
    CHECK(key(v4("10.2.0.2", "10.1.0.2", 17, ports(1, 53))).frag == 0);
    CHECK(decide(p, p.in, kf, 100, 0, &ft, c, 10));
    CHECK(decide(p, p.in, km, 100, 0, &ft, c, 11));
    CHECK(decide(p, p.in, kl, 100, 0, &ft, c, 12));
    CHECK(c.packets[1] == 3);  // all three counted by the DNS rule
    CHECK(c.packets[3] == 0);
    // Without the first (another id, or the first's verdict expired): the
    // rules, where only a rule without ports can match.
    auto stray = frag4("10.2.0.2", 0x2222, 185, std::vector<uint8_t>(8, 0));
    CHECK_FALSE(decide(p, p.in, key(stray), 100, 0, &ft, c, 12));
    CHECK(c.packets[3] == 1);
    CHECK_FALSE(decide(p, p.in, kl, 100, 0, &ft, c, 61));  // 10 + 50 passed
    CHECK(c.packets[3] == 2);
    auto stray_net = frag4("192.0.2.9", 0x3333, 185, std::vector<uint8_t>(8, 0));
    CHECK(decide(p, p.in, key(stray_net), 100, 0, &ft, c, 12));
    CHECK(c.packets[5] == 1);
    // A denied first: its later fragments are denied by the same rule.
    auto tf = frag4("10.2.0.2", 0x4444, 0x2000, ports(40000, 23));
    auto tl = frag4("10.2.0.2", 0x4444, 185, std::vector<uint8_t>(8, 0));
    CHECK_FALSE(decide(p, p.in, key(tf), 100, 0, &ft, c, 20));
    CHECK_FALSE(decide(p, p.in, key(tl), 100, 0, &ft, c, 21));
    CHECK(c.packets[2] == 2);
    // Same id in another VRF is another packet.
    CHECK_FALSE(decide(p, p.in, km, 100, 9, &ft, c, 11));

    // IPv6: the fragment header's 32-bit identification.
    auto frag6 = [](uint16_t offset_flags, uint32_t id, std::vector<uint8_t> rest) {
        std::vector<uint8_t> fh = {17, 0, uint8_t(offset_flags >> 8), uint8_t(offset_flags), uint8_t(id >> 24),
                                   uint8_t(id >> 16), uint8_t(id >> 8), uint8_t(id)};
        fh.insert(fh.end(), rest.begin(), rest.end());
        return v6("fd00:2::2", "fd00:1::2", 44, fh);
    };
    auto f6 = frag6(0x0001, 0xdeadbeef, ports(5000, 53));  // offset 0, M set
    auto l6 = frag6(0x00b8, 0xdeadbeef, std::vector<uint8_t>(8, 0));  // offset 23 (x8), last
    Key k6f = key(f6), k6l = key(l6);
    CHECK(k6f.frag == 1);
    CHECK(k6f.dport == 53);
    CHECK(k6l.frag == 2);
    CHECK(k6l.frag_id == 0xdeadbeef);
    CHECK(decide(p, p.in, k6f, 100, 0, &ft, c, 30));
    CHECK(decide(p, p.in, k6l, 100, 0, &ft, c, 31));
    CHECK(c.packets[1] == 5);
}
