#include "src/common/addr.h"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace nimbus {

IpAddr IpAddr::v4(uint32_t h) {
    IpAddr a;
    a.family = Family::V4;
    a.b[0] = h >> 24;
    a.b[1] = h >> 16;
    a.b[2] = h >> 8;
    a.b[3] = h;
    return a;
}

IpAddr IpAddr::v4_net(const uint8_t* p) {
    IpAddr a;
    a.family = Family::V4;
    std::memcpy(a.b.data(), p, 4);
    return a;
}

IpAddr IpAddr::v6_net(const uint8_t* p) {
    IpAddr a;
    a.family = Family::V6;
    std::memcpy(a.b.data(), p, 16);
    return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
    if (s.empty() || s.size() > INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN + 1];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = 0;
    IpAddr a;
    if (s.find(':') == std::string_view::npos) {
        // inet_pton(AF_INET) is strict: four decimal octets, no leading junk.
        if (inet_pton(AF_INET, buf, a.b.data()) != 1) return std::nullopt;
        a.family = Family::V4;
    } else {
        if (inet_pton(AF_INET6, buf, a.b.data()) != 1) return std::nullopt;
        a.family = Family::V6;
    }
    return a;
}

uint32_t IpAddr::v4_host() const {
    return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
}

bool IpAddr::is_zero() const {
    for (auto x : b)
        if (x) return false;
    return true;
}

bool IpAddr::is_multicast() const {
    return is_v4() ? (b[0] & 0xf0) == 0xe0 : b[0] == 0xff;
}

bool IpAddr::is_link_local() const {
    return is_v4() ? (b[0] == 169 && b[1] == 254) : (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, b.data(), buf, sizeof buf);
    return buf;
}

Prefix::Prefix(const IpAddr& a, int l) : addr(a), len(uint8_t(l)) {
    int nbytes = a.is_v4() ? 4 : 16;
    for (int i = 0; i < nbytes; i++) {
        int keep = l - i * 8;
        if (keep >= 8) continue;
        addr.b[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
    }
}

std::optional<Prefix> Prefix::parse(std::string_view s, bool allow_host_bits) {
    auto slash = s.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto a = IpAddr::parse(s.substr(0, slash));
    if (!a) return std::nullopt;
    auto ls = s.substr(slash + 1);
    if (ls.empty() || ls.size() > 3) return std::nullopt;
    int l = 0;
    for (char c : ls) {
        if (c < '0' || c > '9') return std::nullopt;
        l = l * 10 + (c - '0');
    }
    if (l > a->bits()) return std::nullopt;
    Prefix p(*a, l);
    if (!allow_host_bits && p.addr != *a) return std::nullopt;
    return p;
}

bool Prefix::contains(const IpAddr& a) const {
    if (a.family != addr.family) return false;
    return Prefix(a, len).addr == addr;
}

bool Prefix::contains(const Prefix& p) const {
    return p.family() == family() && p.len >= len && contains(p.addr);
}

std::pair<unsigned __int128, unsigned __int128> Prefix::range() const {
    using U128 = unsigned __int128;
    U128 lo = 0;
    int bits = addr.bits();
    for (int i = 0; i < bits / 8; i++) lo = (lo << 8) | addr.b[size_t(i)];
    U128 span = len == 0 ? (bits == 32 ? U128(0xffffffffu) : ~U128(0)) : ((U128(1) << (bits - len)) - 1);
    return {lo, lo | span};
}

std::string Prefix::str() const { return fmt::format("{}/{}", addr.str(), len); }

std::string IfAddr::str() const { return fmt::format("{}/{}", addr.str(), len); }

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
    MacAddr m;
    if (s.size() != 17) return std::nullopt;
    for (int i = 0; i < 6; i++) {
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int hi = hex(s[i * 3]), lo = hex(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':')) return std::nullopt;
        m.b[i] = uint8_t(hi << 4 | lo);
    }
    return m;
}

bool MacAddr::is_zero() const {
    for (auto x : b)
        if (x) return false;
    return true;
}

std::string MacAddr::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4],
                       b[5]);
}

}  // namespace nimbus
