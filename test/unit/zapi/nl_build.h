// A small rtnetlink writer for hand-made FPM test messages (host byte order,
// RTA_ALIGN padding), shared by the FPM tests.
#pragma once

#include <cstring>
#include <vector>

#include "control/routing/fpm.h"
#include "src/common/addr.h"
#include "src/common/bytes.h"

namespace nimbus::test {

struct Nl {
    ByteWriter w;
    size_t msg_start = 0;
    void begin(uint16_t type, uint8_t family, uint8_t dst_len, uint8_t proto = 186,
               uint8_t rtype = 1, uint8_t table = 254) {
        msg_start = w.size();
        w.u32_host(0);  // nlmsg_len, patched by end()
        w.u16_host(type);
        w.u16_host(0x0501);
        w.u32_host(1);
        w.u32_host(0);
        w.u8(family);
        w.u8(dst_len);
        w.u8(0);
        w.u8(0);
        w.u8(table);
        w.u8(proto);
        w.u8(0);
        w.u8(rtype);
        w.u32_host(0);
    }
    void attr(uint16_t type, std::vector<uint8_t> data) {
        w.u16_host(uint16_t(4 + data.size()));
        w.u16_host(type);
        w.bytes(data.data(), data.size());
        while (w.size() % 4) w.u8(0);
    }
    void attr_u32(uint16_t type, uint32_t v) {
        std::vector<uint8_t> d(4);
        std::memcpy(d.data(), &v, 4);
        attr(type, d);
    }
    static std::vector<uint8_t> addr(const char* s) {
        auto a = *IpAddr::parse(s);
        return std::vector<uint8_t>(a.b.begin(), a.b.begin() + (a.is_v4() ? 4 : 16));
    }
    void end() {
        uint32_t len = uint32_t(w.size() - msg_start);
        std::memcpy(w.data().data() + msg_start, &len, 4);
    }
    std::vector<uint8_t> frame() const {
        // Sized up front (GCC 12 at -O3 warns falsely about insert() into a
        // 4-element vector).
        std::vector<uint8_t> f(4 + w.size());
        f[0] = 1, f[1] = 1;
        std::copy(w.data().begin(), w.data().end(), f.begin() + 4);
        f[2] = uint8_t(f.size() >> 8);
        f[3] = uint8_t(f.size());
        return f;
    }
};

inline std::vector<uint8_t> rtnexthop(uint8_t hops, uint32_t ifindex, const char* gw) {
    std::vector<uint8_t> a = Nl::addr(gw);
    std::vector<uint8_t> v;
    uint16_t len = uint16_t(8 + 4 + a.size());
    v.push_back(uint8_t(len));
    v.push_back(uint8_t(len >> 8));
    v.push_back(0);
    v.push_back(hops);
    for (int i = 0; i < 4; i++) v.push_back(uint8_t(ifindex >> (8 * i)));
    uint16_t alen = uint16_t(4 + a.size());
    v.push_back(uint8_t(alen));
    v.push_back(uint8_t(alen >> 8));
    v.push_back(routing::fpm::nl::RTA_GATEWAY);
    v.push_back(0);
    v.insert(v.end(), a.begin(), a.end());
    return v;
}


// Whole FPM frame with one route message.
inline std::vector<uint8_t> route_frame(bool add, const char* prefix, uint8_t proto,
                                        const char* gw = nullptr, uint32_t oif = 0,
                                        uint8_t rtype = 1, uint32_t table = 254) {
    auto p = *Prefix::parse(prefix);
    Nl n;
    n.begin(add ? routing::fpm::nl::RTM_NEWROUTE : routing::fpm::nl::RTM_DELROUTE,
            p.is_v4() ? 2 : 10, p.len, proto, add ? rtype : 0, table < 256 ? uint8_t(table) : 0);
    n.attr(routing::fpm::nl::RTA_DST,
           std::vector<uint8_t>(p.addr.b.begin(), p.addr.b.begin() + (p.is_v4() ? 4 : 16)));
    if (table >= 256) n.attr_u32(routing::fpm::nl::RTA_TABLE, table);
    n.attr_u32(routing::fpm::nl::RTA_PRIORITY, 20);
    if (add && gw) n.attr(routing::fpm::nl::RTA_GATEWAY, Nl::addr(gw));
    if (add && oif) n.attr_u32(routing::fpm::nl::RTA_OIF, oif);
    n.end();
    return n.frame();
}

}  // namespace nimbus::test
