// ICMP error construction: types, quoting limits and the cases where
// RFC 1812 §4.3.2.7 / RFC 4443 §2.4 forbid an error.
#include <catch2/catch.hpp>

#include "control/hostif/icmp.h"
#include "src/common/bytes.h"

using namespace nimbus;
using hostif::build_icmp_error;
using hostif::IcmpError;

namespace {

std::vector<uint8_t> v4_packet(uint8_t proto, const char* src, const char* dst, size_t len, uint16_t frag = 0,
                               uint8_t first_payload_byte = 8) {
    std::vector<uint8_t> p(len, 0xab);
    p[0] = 0x45;
    p[2] = uint8_t(len >> 8), p[3] = uint8_t(len);
    p[6] = uint8_t(frag >> 8), p[7] = uint8_t(frag);
    p[8] = 1;
    p[9] = proto;
    auto s = *IpAddr::parse(src), d = *IpAddr::parse(dst);
    std::copy(s.b.begin(), s.b.begin() + 4, p.begin() + 12);
    std::copy(d.b.begin(), d.b.begin() + 4, p.begin() + 16);
    p[20] = first_payload_byte;
    return p;
}

uint16_t fold(const uint8_t* p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i] << 8 | p[i + 1]);
    if (n & 1) s += uint32_t(p[n - 1] << 8);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return uint16_t(s);
}

}  // namespace

TEST_CASE("IPv4 errors: header, type/code, MTU, quote of at most 576 bytes, valid checksums") {
    auto src = *IpAddr::parse("10.1.0.1");
    auto orig = v4_packet(17, "10.1.0.2", "10.2.0.2", 1400);
    struct Case {
        IcmpError t;
        uint8_t type, code;
    };
    for (auto c : {Case{IcmpError::TimeExceeded, 11, 0}, Case{IcmpError::NetUnreachable, 3, 0},
                   Case{IcmpError::HostUnreachable, 3, 1}, Case{IcmpError::TooBig, 3, 4}}) {
        auto e = build_icmp_error(c.t, orig, src, 1400);
        REQUIRE(e);
        auto& p = *e;
        CHECK(p.size() == 576);
        CHECK(p[9] == 1);
        CHECK(IpAddr::v4_net(&p[12]).str() == "10.1.0.1");
        CHECK(IpAddr::v4_net(&p[16]).str() == "10.1.0.2");
        CHECK(fold(p.data(), 20) == 0xffff);
        CHECK(p[20] == c.type);
        CHECK(p[21] == c.code);
        CHECK(fold(p.data() + 20, p.size() - 20) == 0xffff);
        CHECK(std::equal(p.begin() + 28, p.end(), orig.begin()));
        if (c.t == IcmpError::TooBig) CHECK((p[26] << 8 | p[27]) == 1400);
    }
    auto small = build_icmp_error(IcmpError::TimeExceeded, v4_packet(17, "10.1.0.2", "10.2.0.2", 60), src, 0);
    REQUIRE(small);
    CHECK(small->size() == 20 + 8 + 60);
}

TEST_CASE("no ICMP errors where the RFCs forbid them") {
    auto src4 = *IpAddr::parse("10.1.0.1");
    CHECK_FALSE(build_icmp_error(IcmpError::TimeExceeded, v4_packet(1, "10.1.0.2", "10.2.0.2", 60, 0, 3), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::TimeExceeded, v4_packet(1, "10.1.0.2", "10.2.0.2", 60, 0, 11), src4, 0));
    CHECK(build_icmp_error(IcmpError::TimeExceeded, v4_packet(1, "10.1.0.2", "10.2.0.2", 60, 0, 8), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "224.0.0.5", 60), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "255.255.255.255", 60), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "0.0.0.0", "10.2.0.2", 60), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "127.0.0.1", "10.2.0.2", 60), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "10.2.0.2", 60, 0x00b9), src4, 0));
    CHECK(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "10.2.0.2", 60, 0x2000), src4, 0));
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "10.2.0.2", 10), src4, 0));
    // Wrong family of source address: nothing.
    CHECK_FALSE(build_icmp_error(IcmpError::NetUnreachable, v4_packet(17, "10.1.0.2", "10.2.0.2", 60),
                                 *IpAddr::parse("2001:db8::1"), 0));
}

TEST_CASE("IPv6 errors: message only, quote up to the minimum MTU, PTB even to multicast") {
    std::vector<uint8_t> o(1500, 0);
    o[0] = 0x60;
    o[6] = 17;
    o[7] = 64;
    auto s = *IpAddr::parse("2001:db8:1::2"), d = *IpAddr::parse("2001:db8:2::2");
    std::copy(s.b.begin(), s.b.end(), o.begin() + 8);
    std::copy(d.b.begin(), d.b.end(), o.begin() + 24);
    auto src = *IpAddr::parse("2001:db8:1::1");
    auto e = build_icmp_error(IcmpError::TooBig, o, src, 1280);
    REQUIRE(e);
    CHECK(e->size() == 1232 + 8);
    CHECK((*e)[0] == 2);
    CHECK(((*e)[6] << 8 | (*e)[7]) == 1280);
    CHECK((*build_icmp_error(IcmpError::TimeExceeded, o, src, 0))[0] == 3);
    CHECK((*build_icmp_error(IcmpError::NetUnreachable, o, src, 0))[0] == 1);
    auto mc = *IpAddr::parse("ff02::1");
    std::copy(mc.b.begin(), mc.b.end(), o.begin() + 24);
    CHECK_FALSE(build_icmp_error(IcmpError::TimeExceeded, o, src, 0));
    CHECK(build_icmp_error(IcmpError::TooBig, o, src, 1280));
    o[6] = 58;
    o[40] = 1;  // about an ICMPv6 error
    std::copy(d.b.begin(), d.b.end(), o.begin() + 24);
    CHECK_FALSE(build_icmp_error(IcmpError::TimeExceeded, o, src, 0));
}
