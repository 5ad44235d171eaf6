// NAT detection hashes (RFC 7296 §2.23) against values computed elsewhere
// (Python hashlib) and with OpenSSL directly; NAT-T framing (RFC 3948);
// COOKIE logic (§2.6); half-open accounting; traffic-selector narrowing
// (§2.9) as a table of cases.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include <openssl/evp.h>

#include "control/ike/cookie.h"
#include "control/ike/natt.h"
#include "control/ike/ts.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

Endpoint ep(const char* a, uint16_t port) { return Endpoint{*IpAddr::parse(a), port}; }
Prefix P(const char* s) { return *Prefix::parse(s); }
TrafficSelector range(const char* a, const char* b) {
    TrafficSelector t;
    t.start = *IpAddr::parse(a);
    t.end = *IpAddr::parse(b);
    t.type = t.start.is_v4() ? TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE;
    return t;
}
TrafficSelector pfx(const char* s) { return TrafficSelector::from_prefix(P(s)); }

}  // namespace

TEST_CASE("NAT_DETECTION hashes match independently computed vectors") {
    // python3: hashlib.sha1(spi_i + spi_r + ip + port.to_bytes(2,'big')).hexdigest()
    auto h = natd_hash(0x0123456789abcdefull, 0xfedcba9876543210ull, ep("192.0.2.1", 4500));
    CHECK(to_hex(h) == "2f25c864a9aab40dbeffa893157a49c2e232b2f0");
    auto h6 = natd_hash(0x0123456789abcdefull, 0, ep("2001:db8::1", 500));
    CHECK(to_hex(h6) == "9bbdb9b85c4968af03a73f051323d6e067cf4027");
    // And with OpenSSL over the concatenation, for a few more inputs.
    for (uint16_t port : {500, 4500, 1, 65535}) {
        uint8_t buf[22] = {0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 203, 0, 113, 9};
        buf[20] = uint8_t(port >> 8);
        buf[21] = uint8_t(port);
        uint8_t md[20];
        unsigned len = 0;
        REQUIRE(EVP_Digest(buf, sizeof buf, md, &len, EVP_sha1(), nullptr) == 1);
        CHECK(to_hex(natd_hash(0xaabbccdd00000001ull, 2, ep("203.0.113.9", port))) ==
              to_hex(std::span<const uint8_t>(md, 20)));
    }
}

TEST_CASE("NAT detection tells who is behind the NAT") {
    uint64_t i = 0x1111, r = 0x2222;
    Endpoint peer_inside = ep("198.51.100.2", 500), peer_outside = ep("203.0.113.1", 61000);
    Endpoint us = ep("203.0.113.2", 500), us_public = ep("192.0.2.99", 500);
    auto bytes = [](const std::array<uint8_t, 20>& a) { return std::vector<uint8_t>(a.begin(), a.end()); };
    std::vector<std::vector<uint8_t>> src = {bytes(natd_hash(i, r, peer_inside))};
    // The peer hashed its inside address; we saw the NAT's.
    auto st = nat_detect(i, r, src, bytes(natd_hash(i, r, us)), peer_outside, us);
    CHECK(st.peer_behind_nat);
    CHECK_FALSE(st.local_behind_nat);
    // No NAT.
    st = nat_detect(i, r, src, bytes(natd_hash(i, r, us)), peer_inside, us);
    CHECK_FALSE(st.any());
    // We are behind a port-forward: the peer sent to our public address.
    st = nat_detect(i, r, src, bytes(natd_hash(i, r, us_public)), peer_inside, us);
    CHECK(st.local_behind_nat);
    CHECK_FALSE(st.peer_behind_nat);
    // A multi-homed peer may send several source hashes; one match is enough.
    src.insert(src.begin(), bytes(natd_hash(i, r, ep("10.9.9.9", 500))));
    CHECK_FALSE(nat_detect(i, r, src, bytes(natd_hash(i, r, us)), peer_inside, us).peer_behind_nat);
}

TEST_CASE("datagrams on the NAT-T port are told apart (RFC 3948)") {
    const uint8_t ike[] = {0, 0, 0, 0, 1, 2, 3};
    const uint8_t esp[] = {0, 0, 1, 0, 0, 0, 0, 1};
    const uint8_t ka[] = {0xff};
    const uint8_t runt[] = {0, 0};
    CHECK(classify_natt(ike) == NattKind::Ike);
    CHECK(classify_natt(esp) == NattKind::Esp);
    CHECK(classify_natt(ka) == NattKind::Keepalive);
    CHECK(classify_natt(runt) == NattKind::Runt);
}

TEST_CASE("COOKIEs are bound to nonce, address and SPI and survive one rotation") {
    CookieJar jar(10'000);
    std::vector<uint8_t> ni(32, 7);
    IpAddr a = *IpAddr::parse("198.51.100.7"), b = *IpAddr::parse("198.51.100.8");
    auto c = jar.make(ni, a, 42, 1000);
    CHECK(c.size() == CookieJar::kLen);
    CHECK(jar.check(c, ni, a, 42, 1001));
    CHECK_FALSE(jar.check(c, ni, b, 42, 1001));     // other address
    CHECK_FALSE(jar.check(c, ni, a, 43, 1001));     // other SPI
    std::vector<uint8_t> ni2 = ni;
    ni2[0] ^= 1;
    CHECK_FALSE(jar.check(c, ni2, a, 42, 1001));    // other nonce
    auto bad = c;
    bad[5] ^= 0x80;
    CHECK_FALSE(jar.check(bad, ni, a, 42, 1001));   // tampered
    CHECK_FALSE(jar.check(std::vector<uint8_t>(c.begin(), c.end() - 1), ni, a, 42, 1001));
    // One rotation: still good. Two: stale.
    CHECK(jar.check(c, ni, a, 42, 1000 + 10'000));
    CHECK_FALSE(jar.check(c, ni, a, 42, 1000 + 20'000));
}

TEST_CASE("half-open SAs are counted in total and per source") {
    HalfOpen h;
    IpAddr a = *IpAddr::parse("198.51.100.7"), b = *IpAddr::parse("2001:db8::7");
    h.add(a);
    h.add(a);
    h.add(b);
    CHECK(h.total() == 3);
    CHECK(h.from(a) == 2);
    h.remove(a);
    h.remove(a);
    h.remove(a);  // one too many: ignored
    CHECK(h.from(a) == 0);
    CHECK(h.total() == 1);
}

TEST_CASE("range_to_prefixes covers a range exactly") {
    auto s = [](const std::vector<Prefix>& v) {
        std::string o;
        for (auto& p : v) o += (o.empty() ? "" : " ") + p.str();
        return o;
    };
    CHECK(s(range_to_prefixes(*IpAddr::parse("10.0.0.0"), *IpAddr::parse("10.0.0.255"))) == "10.0.0.0/24");
    CHECK(s(range_to_prefixes(*IpAddr::parse("10.0.0.1"), *IpAddr::parse("10.0.0.6"))) ==
          "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32");
    CHECK(s(range_to_prefixes(*IpAddr::parse("0.0.0.0"), *IpAddr::parse("255.255.255.255"))) == "0.0.0.0/0");
    CHECK(s(range_to_prefixes(*IpAddr::parse("::"), *IpAddr::parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))) ==
          "::/0");
    CHECK(s(range_to_prefixes(*IpAddr::parse("2001:db8::"), *IpAddr::parse("2001:db8::ffff"))) == "2001:db8::/112");
    CHECK(s(range_to_prefixes(*IpAddr::parse("10.0.0.5"), *IpAddr::parse("10.0.0.4"))).empty());
}

TEST_CASE("traffic selectors are narrowed to what the site may hold") {
    TsPolicy site;
    site.allowed = {P("10.16.1.0/24"), P("2001:db8:16:1::/64")};
    site.forbidden = {P("10.16.2.0/24"), P("10.17.0.0/16")};
    site.refuse_default = true;
    struct Case {
        const char* name;
        std::vector<TrafficSelector> proposed;
        bool ok;
        const char* result;   // ts_str of the narrowed selectors, or the reason
    };
    TrafficSelector tcp = pfx("10.16.1.5/32");
    tcp.ip_proto = 6;
    tcp.start_port = tcp.end_port = 80;
    const Case cases[] = {
        {"exact", {pfx("10.16.1.0/24")}, true, "10.16.1.0/24"},
        {"narrower", {pfx("10.16.1.128/25")}, true, "10.16.1.128/25"},
        {"wider, narrowed", {pfx("10.16.0.0/23")}, true, "10.16.1.0/24"},
        {"both families", {pfx("10.16.1.0/24"), pfx("2001:db8:16::/48")}, true, "10.16.1.0/24,2001:db8:16:1::/64"},
        {"a range", {range("10.16.1.10", "10.16.1.20")}, true, "10.16.1.10-10.16.1.20"},
        {"trigger-packet selector first is skipped", {tcp, pfx("10.16.1.0/24")}, true, "10.16.1.0/24"},
        {"default route", {pfx("0.0.0.0/0")}, false, "selector 0.0.0.0-255.255.255.255 claims the whole address family"},
        {"IPv6 default route", {pfx("::/0")}, false,
         "selector ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff claims the whole address family"},
        {"another site's prefix", {pfx("10.16.2.0/24")}, false,
         "selector 10.16.2.0-10.16.2.255 overlaps 10.16.2.0/24, which belongs to another site"},
        {"wider and covering another site", {pfx("10.16.0.0/16")}, false,
         "selector 10.16.0.0-10.16.255.255 overlaps 10.16.2.0/24, which belongs to another site"},
        {"inside another site", {pfx("10.17.3.0/24")}, false,
         "selector 10.17.3.0-10.17.3.255 overlaps 10.17.0.0/16, which belongs to another site"},
        {"nothing in common", {pfx("172.16.0.0/24")}, false, "no proposed selector intersects the allowed prefixes"},
        {"only port-restricted selectors", {tcp}, false, "no selector covers all protocols and ports"},
    };
    // The same with the other sites in a cloud's shared index, which holds
    // this site's own prefixes too (as the engine uses it).
    TsPolicy shared = site;
    shared.forbidden.clear();
    PrefixIndex cloud({P("10.17.0.0/16"), P("10.16.1.0/24"), P("2001:db8:16:1::/64"), P("10.16.2.0/24")});
    shared.forbidden_shared = &cloud;
    for (const TsPolicy* pol : {&site, &shared}) {
        for (auto& c : cases) {
            INFO(c.name << (pol == &shared ? " (shared index)" : ""));
            TsResult r = narrow_ts(c.proposed, *pol);
            CHECK(r.ok == c.ok);
            CHECK((r.ok ? ts_str(r.selectors) : r.reason) == c.result);
            if (r.ok) CHECK(ts_within(r.selectors, c.proposed));
        }
    }
    // Our side: a site asking for everything gets what we advertise.
    TsPolicy ours;
    ours.allowed = {P("10.0.0.0/8"), P("172.16.0.0/12")};
    auto r = narrow_ts(std::vector<TrafficSelector>{pfx("0.0.0.0/0")}, ours);
    REQUIRE(r.ok);
    CHECK(ts_str(r.selectors) == "10.0.0.0/8,172.16.0.0/12");
    CHECK(r.prefixes.size() == 2);
}

TEST_CASE("PrefixIndex finds exactly the overlapping prefixes of random sets, as a scan does") {
    std::mt19937 rng(7);
    for (int round = 0; round < 50; round++) {
        std::vector<Prefix> v;
        int n = 1 + int(rng() % 300);
        for (int i = 0; i < n; i++) {
            int len = 8 + int(rng() % 25);   // nested and disjoint, /8 to /32
            uint32_t a = 0x0a000000u | (rng() & 0x00ffffffu);
            if (rng() % 8 == 0) {
                IpAddr x = *IpAddr::parse("2001:db8::");
                x.b[4] = uint8_t(rng());
                x.b[5] = uint8_t(rng());
                v.push_back(Prefix(x, 32 + int(rng() % 33)));
            } else {
                v.push_back(Prefix(IpAddr::v4(a), len));
            }
        }
        PrefixIndex idx(v);
        REQUIRE(idx.size() == v.size());
        for (int q = 0; q < 50; q++) {
            Prefix qp = rng() % 8 == 0 ? v[rng() % v.size()] : Prefix(IpAddr::v4(0x0a000000u | (rng() & 0x00ffffffu)), 8 + int(rng() % 25));
            IpAddr last = qp.addr;   // the prefix's last address: host bits set
            for (int bit = qp.len; bit < last.bits(); bit++) last.b[size_t(bit / 8)] |= uint8_t(0x80 >> (bit % 8));
            auto got = idx.overlapping(qp.addr, last);
            std::multiset<std::string> want, have;
            for (auto& p : v)
                if (p.family() == qp.family() && (p.contains(qp.addr) || qp.contains(p.addr))) want.insert(p.str());
            for (auto* p : got) have.insert(p->str());
            INFO(qp.str());
            CHECK(have == want);
        }
    }
}

TEST_CASE("ts_within accepts only narrowing") {
    std::vector<TrafficSelector> asked = {pfx("10.0.0.0/8")};
    CHECK(ts_within(std::vector<TrafficSelector>{pfx("10.1.0.0/16")}, asked));
    CHECK_FALSE(ts_within(std::vector<TrafficSelector>{pfx("11.0.0.0/8")}, asked));
    CHECK_FALSE(ts_within(std::vector<TrafficSelector>{pfx("0.0.0.0/0")}, asked));
    CHECK_FALSE(ts_within(std::vector<TrafficSelector>{}, asked));
}
