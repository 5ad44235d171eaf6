// IPv4/IPv6 addresses and prefixes: parsing, formatting, containment.
// Plain value types shared by the control plane, the tests and the benchmark.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace nimbus {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

// An IP address. IPv4 lives in the first four bytes of `b` (network order),
// the rest is zero, so that equality and ordering are plain byte compares.
struct IpAddr {
    std::array<uint8_t, 16> b{};
    Family family = Family::V4;

    static IpAddr v4(uint32_t host_order);
    static IpAddr v4_net(const uint8_t* p);         // 4 bytes, network order
    static IpAddr v6_net(const uint8_t* p);         // 16 bytes
    static std::optional<IpAddr> parse(std::string_view s);

    bool is_v4() const { return family == Family::V4; }
    bool is_v6() const { return family == Family::V6; }
    int bits() const { return is_v4() ? 32 : 128; }
    uint32_t v4_host() const;                       // host-order IPv4 value
    bool is_zero() const;
    bool is_multicast() const;
    bool is_link_local() const;                     // fe80::/10 or 169.254/16
    bool bit(int i) const { return (b[i / 8] >> (7 - i % 8)) & 1; }
    std::string str() const;

    auto operator<=>(const IpAddr&) const = default;
    bool operator==(const IpAddr&) const = default;
};

// A prefix in canonical form: host bits beyond `len` are always zero.
struct Prefix {
    IpAddr addr;
    uint8_t len = 0;

    Prefix() = default;
    Prefix(const IpAddr& a, int l);                 // masks host bits
    // Strict parse: "a.b.c.d/n" or "x::/n". With allow_host_bits, the host
    // part may be non-zero (an interface address such as 10.0.0.1/24).
    static std::optional<Prefix> parse(std::string_view s, bool allow_host_bits = false);

    Family family() const { return addr.family; }
    bool is_v4() const { return addr.is_v4(); }
    bool contains(const IpAddr& a) const;
    bool contains(const Prefix& p) const;           // p is equal or more specific
    // Its first and last address as numbers (IPv4 in the low 32 bits), for
    // interval indexes over many prefixes.
    std::pair<unsigned __int128, unsigned __int128> range() const;
    bool is_default() const { return len == 0; }
    std::string str() const;

    auto operator<=>(const Prefix&) const = default;
    bool operator==(const Prefix&) const = default;
};

// An interface address: the address itself and the length of its subnet.
struct IfAddr {
    IpAddr addr;
    uint8_t len = 0;
    Prefix subnet() const { return Prefix(addr, len); }
    std::string str() const;
    bool operator==(const IfAddr&) const = default;
};

struct MacAddr {
    std::array<uint8_t, 6> b{};
    static std::optional<MacAddr> parse(std::string_view s);
    bool is_zero() const;
    std::string str() const;
    bool operator==(const MacAddr&) const = default;
};

}  // namespace nimbus
