#include <catch2/catch.hpp>

#include "src/common/addr.h"

using namespace nimbus;

TEST_CASE("IPv4 and IPv6 addresses parse strictly and print canonically") {
    struct Case {
        const char* in;
        const char* out;  // nullptr: must be rejected
    };
    const Case cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"2001:db8::1", "2001:db8::1"},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
        {"::", "::"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"192.0.2", nullptr},
        {"192.0.2.256", nullptr},
        {"192.0.2.1 ", nullptr},
        {" 192.0.2.1", nullptr},
        {"1.2.3.4.5", nullptr},
        {"2001:db8:::1", nullptr},
        {"", nullptr},
        {"hello", nullptr},
        {"01.2.3.4", nullptr},
    };
    for (auto& c : cases) {
        INFO(c.in);
        auto a = IpAddr::parse(c.in);
        if (c.out) {
            REQUIRE(a);
            CHECK(a->str() == c.out);
        } else {
            CHECK(!a);
        }
    }
}

TEST_CASE("prefixes: canonical form, host bits, lengths") {
    CHECK(Prefix::parse("10.0.0.0/8")->str() == "10.0.0.0/8");
    CHECK(!Prefix::parse("10.0.0.1/8"));                       // host bits set
    CHECK(Prefix::parse("10.0.0.1/8", true)->str() == "10.0.0.0/8");
    CHECK(!Prefix::parse("10.0.0.0/33"));
    CHECK(!Prefix::parse("10.0.0.0/"));
    CHECK(!Prefix::parse("10.0.0.0"));
    CHECK(!Prefix::parse("10.0.0.0/-1"));
    CHECK(!Prefix::parse("10.0.0.0/1x"));
    CHECK(Prefix::parse("0.0.0.0/0")->is_default());
    CHECK(Prefix::parse("2001:db8::/32")->str() == "2001:db8::/32");
    CHECK(!Prefix::parse("2001:db8::1/64"));
    CHECK(!Prefix::parse("2001:db8::/129"));
    CHECK(Prefix::parse("2001:db8::/128")->len == 128);
    CHECK(Prefix(*IpAddr::parse("2001:db8:ffff::"), 33).str() == "2001:db8:8000::/33");
    CHECK(Prefix(*IpAddr::parse("10.255.255.255"), 13).str() == "10.248.0.0/13");
}

TEST_CASE("prefix containment follows the bits, per family") {
    auto p = *Prefix::parse("10.16.0.0/12");
    CHECK(p.contains(*IpAddr::parse("10.16.0.1")));
    CHECK(p.contains(*IpAddr::parse("10.31.255.255")));
    CHECK_FALSE(p.contains(*IpAddr::parse("10.32.0.0")));
    CHECK_FALSE(p.contains(*IpAddr::parse("::a10:1")));
    CHECK(p.contains(*Prefix::parse("10.20.0.0/16")));
    CHECK_FALSE(p.contains(*Prefix::parse("10.0.0.0/8")));
    CHECK(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("203.0.113.9")));
    CHECK_FALSE(Prefix::parse("::/0")->contains(*IpAddr::parse("203.0.113.9")));
}

TEST_CASE("address classes") {
    CHECK(IpAddr::parse("224.0.0.18")->is_multicast());
    CHECK(IpAddr::parse("ff02::12")->is_multicast());
    CHECK_FALSE(IpAddr::parse("192.0.2.1")->is_multicast());
    CHECK(IpAddr::parse("fe80::1")->is_link_local());
    CHECK(IpAddr::parse("169.254.3.4")->is_link_local());
    CHECK(IpAddr::v4(0xc0000201).str() == "192.0.2.1");
    CHECK(IpAddr::parse("192.0.2.1")->v4_host() == 0xc0000201u);
}

TEST_CASE("MAC addresses") {
    CHECK(MacAddr::parse("00:00:5e:00:01:33")->str() == "00:00:5e:00:01:33");
    CHECK(MacAddr::parse("AA:BB:CC:DD:EE:FF")->str() == "aa:bb:cc:dd:ee:ff");
    CHECK(!MacAddr::parse("00:00:5e:00:01"));
    CHECK(!MacAddr::parse("00-00-5e-00-01-33"));
    CHECK(!MacAddr::parse("00:00:5e:00:01:3g"));
}

TEST_CASE("a prefix's range is its first and last address as numbers") {
    using U128 = unsigned __int128;
    auto r = [](const char* s) { return Prefix::parse(s)->range(); };
    CHECK(r("10.16.1.0/24") == std::pair<U128, U128>{0x0a100100u, 0x0a1001ffu});
    CHECK(r("10.16.1.7/32") == std::pair<U128, U128>{0x0a100107u, 0x0a100107u});
    CHECK(r("0.0.0.0/0") == std::pair<U128, U128>{0, 0xffffffffu});
    CHECK(r("::/0") == std::pair<U128, U128>{0, ~U128(0)});
    auto [lo, hi] = r("2001:db8::/32");
    CHECK(lo == U128(0x20010db8u) << 96);
    CHECK(hi == ((U128(0x20010db8u) << 96) | ((U128(1) << 96) - 1)));
}
