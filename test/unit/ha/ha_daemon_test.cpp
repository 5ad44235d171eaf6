// The HA engine of nimbusd (control/ha/ha_daemon.h) on a simulated wire: two
// boxes with a LAN and a WAN port each, frames built by one delivered to the
// other's take_advert() as the dataplane would punt them, time jumping to the
// next requested deadline. Checks what the daemon does on the box (VIPs, Local
// routes, accepted virtual MACs), what it puts on the wire (adverts, GARPs,
// NAs from the virtual MAC, priority 0 at shutdown), the role-change event,
// tracking, the frame fix-ups towards and from the kernel, and `show ha`.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "control/ha/advert.h"
#include "control/ha/ha_cli.h"
#include "control/ha/ha_daemon.h"

using namespace nimbus;
using namespace nimbus::ha;

namespace {

constexpr Time MS = 1'000'000;
constexpr Time S = 1'000'000'000;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
IfAddr ifa(const char* s) {
    std::string x(s);
    auto slash = x.find('/');
    return IfAddr{ip(x.substr(0, slash).c_str()), uint8_t(std::stoi(x.substr(slash + 1)))};
}
MacAddr mac(const char* s) { return *MacAddr::parse(s); }

uint16_t ethertype(const std::vector<uint8_t>& f) { return uint16_t(f[12] << 8 | f[13]); }
bool is_vrrp(const std::vector<uint8_t>& f) {
    if (f.size() < 14 + 20) return false;
    if (ethertype(f) == 0x0800) return f[14 + 9] == kIpProtoVrrp;
    if (ethertype(f) == 0x86dd) return f[14 + 6] == kIpProtoVrrp;
    return false;
}
uint8_t vrrp_priority(const std::vector<uint8_t>& f) {
    return ethertype(f) == 0x0800 ? f[14 + 20 + 2] : f[14 + 40 + 2];
}
MacAddr src_mac(const std::vector<uint8_t>& f) {
    MacAddr m;
    std::copy(f.begin() + 6, f.begin() + 12, m.b.begin());
    return m;
}

config::Ha ha_config(int priority) {
    config::Ha h;
    h.vrid = 51;
    h.priority = priority;
    h.interfaces = {"lan0", "wan0"};
    h.virtual_ips = {ifa("10.0.0.1/24"), ifa("2001:db8::1/64"), ifa("192.0.2.1/24")};
    return h;
}

struct Box {
    std::string name;
    std::unique_ptr<HaDaemon> d;
    std::vector<std::pair<int, std::vector<uint8_t>>> sent;
    std::vector<std::pair<int, std::vector<uint8_t>>> outbox;
    std::optional<Time> deadline;
    std::map<int, std::vector<MacAddr>> macs;
    std::set<std::pair<int, std::string>> addrs;
    std::set<std::pair<int, std::string>> routes;
    std::vector<RoleEvent> roles;
    bool alive = true;
    std::vector<PortView> ports;

    Box(std::string n, int prio, int host, config::Ha cfg = {}) : name(std::move(n)) {
        if (cfg.vrid == 0) cfg = ha_config(prio);
        ports = {PortView{"lan0", mac(fmt::format("02:00:00:00:0a:{:02x}", host).c_str()),
                          {ifa(fmt::format("10.0.0.{}/24", host).c_str()),
                           ifa(fmt::format("2001:db8::{}/64", host).c_str())}},
                 PortView{"wan0", mac(fmt::format("02:00:00:00:0b:{:02x}", host).c_str()),
                          {ifa(fmt::format("192.0.2.{}/24", host).c_str())}},
                 PortView{"mgmt0", mac(fmt::format("02:00:00:00:0c:{:02x}", host).c_str()),
                          {ifa(fmt::format("198.51.100.{}/24", host).c_str())}}};
        Env env;
        env.send = [this](int port, std::span<const uint8_t> f) {
            std::vector<uint8_t> v(f.begin(), f.end());
            sent.emplace_back(port, v);
            outbox.emplace_back(port, v);
            return true;
        };
        env.host_addr = [this](int port, const IfAddr& a, bool add, std::string*) {
            if (add) addrs.insert({port, a.str()});
            else addrs.erase({port, a.str()});
            return true;
        };
        env.local_routes = [this](int port, const std::vector<IpAddr>& as, bool add, std::string*) {
            for (auto& a : as) {
                if (add) routes.insert({port, a.str()});
                else routes.erase({port, a.str()});
            }
            return true;
        };
        env.accept_macs = [this](int port, const std::vector<MacAddr>& m, std::string*) {
            macs[port] = m;
            return true;
        };
        env.schedule = [this](std::optional<Time> t) { deadline = t; };
        std::string err;
        d = HaDaemon::create(cfg, ports, std::move(env), &err);
        INFO(err);
        REQUIRE(d);
        d->subscribe([this](const RoleEvent& e) { roles.push_back(e); });
    }

    size_t count(int port, uint16_t et, std::function<bool(const std::vector<uint8_t>&)> pred = {}) const {
        size_t n = 0;
        for (auto& [p, f] : sent)
            if (p == port && ethertype(f) == et && (!pred || pred(f))) n++;
        return n;
    }
};

struct Wire {
    std::vector<Box*> boxes;
    Time now = 0;
    bool partitioned = false;   // frames are lost between boxes

    void deliver() {
        for (bool more = true; more;) {
            more = false;
            for (auto* b : boxes) {
                auto out = std::move(b->outbox);
                b->outbox.clear();
                if (!b->alive || partitioned) continue;
                for (auto& [port, f] : out) {
                    more = true;
                    for (auto* o : boxes)
                        if (o != b && o->alive && is_vrrp(f)) CHECK(o->d->take_advert(now, port, f));
                }
            }
        }
    }
    void run_until(Time t) {
        for (;;) {
            deliver();
            Box* next = nullptr;
            for (auto* b : boxes)
                if (b->alive && b->deadline && *b->deadline <= t && (!next || *b->deadline < *next->deadline)) next = b;
            if (!next) break;
            now = std::max(now, *next->deadline);
            next->d->on_timer(now);
        }
        now = std::max(now, t);
    }
    // Runs until `pred` holds (bounded by `limit`); returns the time it did.
    std::optional<Time> run_until_true(Time limit, const std::function<bool()>& pred) {
        for (;;) {
            deliver();
            if (pred()) return now;
            Box* next = nullptr;
            for (auto* b : boxes)
                if (b->alive && b->deadline && *b->deadline <= limit && (!next || *b->deadline < *next->deadline))
                    next = b;
            if (!next) return std::nullopt;
            now = std::max(now, *next->deadline);
            next->d->on_timer(now);
        }
    }
};

}  // namespace

TEST_CASE("ha daemon: instances per interface and family, EUI-64 link-local source") {
    Box a("a", 200, 2);
    REQUIRE(a.d->instance_count() == 3);
    CHECK(a.d->instance(0).config().name == "lan0.v4");
    CHECK(a.d->instance(1).config().name == "lan0.v6");
    CHECK(a.d->instance(2).config().name == "wan0.v4");
    CHECK(a.d->instance(0).config().primary == ip("10.0.0.2"));
    CHECK(a.d->instance(1).config().primary == ip("fe80::ff:fe00:a02"));
    CHECK(a.d->instance(1).config().vips == std::vector<IpAddr>{ip("2001:db8::1")});
    CHECK(a.d->instance(0).config().adver_int_cs == 10);
    // Every listed interface is tracked (down forces backup) unless weighted.
    auto& tr = a.d->instance(0).config().tracks;
    REQUIRE(tr.size() == 2);
    CHECK(tr[0].name == "port:lan0");
    CHECK(tr[0].weight == 0);
    CHECK(eui64_link_local(mac("00:00:5e:00:01:33")) == ip("fe80::200:5eff:fe00:133"));
}

TEST_CASE("ha daemon: election, takeover actions on the box and on the wire") {
    Box a("a", 200, 2), b("b", 100, 3);
    Wire w{{&a, &b}};
    a.d->start(0);
    b.d->start(0);
    CHECK(a.d->role() == Role::Backup);
    // The IPv6 instance's advert source is put on the host interface.
    CHECK(a.addrs.count({0, "fe80::ff:fe00:a02/64"}) == 1);
    auto t = w.run_until_true(2 * S, [&] { return a.d->role() == Role::Master; });
    REQUIRE(t);
    // Master_Down_Interval at priority 200, 10 cs: 0.3 s + 56/256 * 0.1 s.
    CHECK(*t == master_down_interval(200, 10));
    CHECK(b.d->role() == Role::Backup);
    // The box owns the VIPs: host addresses, Local routes, virtual MACs.
    CHECK(a.addrs.count({0, "10.0.0.1/24"}) == 1);
    CHECK(a.addrs.count({0, "2001:db8::1/64"}) == 1);
    CHECK(a.addrs.count({1, "192.0.2.1/24"}) == 1);
    CHECK(a.routes == std::set<std::pair<int, std::string>>{{0, "10.0.0.1"}, {0, "2001:db8::1"}, {1, "192.0.2.1"}});
    CHECK(a.macs[0] == std::vector<MacAddr>{mac("00:00:5e:00:01:33"), mac("00:00:5e:00:02:33")});
    CHECK(a.macs[1] == std::vector<MacAddr>{mac("00:00:5e:00:01:33")});
    CHECK(a.d->owns(ip("192.0.2.1")));
    CHECK_FALSE(b.d->owns(ip("192.0.2.1")));
    CHECK(b.addrs.count({0, "10.0.0.1/24"}) == 0);
    CHECK(b.macs.empty());
    // Role events: backup at start, then master with the VIPs.
    REQUIRE(a.roles.size() == 2);
    CHECK(a.roles[0].role == Role::Backup);
    CHECK(a.roles[1].role == Role::Master);
    CHECK(a.roles[1].previous == Role::Backup);
    CHECK(a.roles[1].vips.size() == 3);
    CHECK(a.roles[1].reason.find("no advertisement within") != std::string::npos);

    // On the wire: adverts from the virtual MAC to the group MAC, TTL 255;
    // 3 GARPs per IPv4 VIP and 3 NAs per IPv6 VIP at once, 3 more a second later.
    auto from_vmac4 = [](const std::vector<uint8_t>& f) { return src_mac(f) == mac("00:00:5e:00:01:33"); };
    auto from_vmac6 = [](const std::vector<uint8_t>& f) { return src_mac(f) == mac("00:00:5e:00:02:33"); };
    CHECK(a.count(0, 0x0806) == 3);
    CHECK(a.count(0, 0x0806, from_vmac4) == 3);
    CHECK(a.count(1, 0x0806, from_vmac4) == 3);
    auto na = [](const std::vector<uint8_t>& f) { return f[14 + 6] == 58 && f[14 + 40] == 136; };
    CHECK(a.count(0, 0x86dd, na) == 3);
    CHECK(a.count(0, 0x86dd, [&](auto& f) { return na(f) && from_vmac6(f); }) == 3);
    w.run_until(*t + 1100 * MS);
    CHECK(a.count(0, 0x0806) == 6);
    CHECK(a.count(1, 0x0806) == 6);
    CHECK(a.count(0, 0x86dd, na) == 6);
    size_t adverts = 0;
    for (auto& [p, f] : a.sent)
        if (p == 0 && ethertype(f) == 0x0800 && is_vrrp(f)) {
            adverts++;
            CHECK(from_vmac4(f));
            CHECK(f[0] == 0x01);
            CHECK(f[5] == 0x12);
            CHECK(f[14 + 8] == 255);
            CHECK(vrrp_priority(f) == 200);
        }
    CHECK(adverts >= 11);   // one at takeover and one per 100 ms
    // The backup never speaks.
    for (auto& [p, f] : b.sent) CHECK_FALSE(is_vrrp(f));
    // Prometheus: the role and per-instance series.
    mgmt::MetricsWriter mw;
    write_metrics(*a.d, mw);
    CHECK(mw.text().find("nimbus_ha_master 1\n") != std::string::npos);
    CHECK(mw.text().find("nimbus_ha_instance_state{instance=\"wan0.v4\"} 2\n") != std::string::npos);
    CHECK(mw.text().find("nimbus_ha_rx_drops_total{instance=\"lan0.v6\",reason=\"rx_ttl_error\"} 0\n") !=
          std::string::npos);
    auto j = b.d->status_json(w.now);
    CHECK(j["role"] == "backup");
    CHECK(j["instances"][0]["master"] == "10.0.0.2");
    CHECK(j["instances"][0]["master_priority"] == 200);
    CHECK(j["instances"][1]["master"] == "fe80::ff:fe00:a02");
    CHECK(j["instances"][0]["counters"]["adverts_rcvd"].get<uint64_t>() >= 11);
}

TEST_CASE("ha daemon: graceful shutdown hands over after Skew_Time, a crash after Master_Down_Interval") {
    bool graceful = GENERATE(true, false);
    Box a("a", 200, 2), b("b", 100, 3);
    Wire w{{&a, &b}};
    a.d->start(0);
    b.d->start(0);
    w.run_until(2 * S);
    REQUIRE(a.d->role() == Role::Master);
    w.run_until(w.now + 1);
    Time t0 = w.now;
    size_t before = a.sent.size();
    if (graceful) {
        a.d->shutdown(t0);
        // Priority 0 on every instance, then everything is undone.
        size_t zeros = 0;
        for (size_t i = before; i < a.sent.size(); i++)
            if (is_vrrp(a.sent[i].second) && vrrp_priority(a.sent[i].second) == 0) zeros++;
        CHECK(zeros == 3);
        CHECK(a.addrs.count({0, "10.0.0.1/24"}) == 0);
        CHECK(a.routes.empty());
        CHECK(a.macs[0].empty());
        CHECK(a.macs[1].empty());
        CHECK(a.d->role() == Role::Init);
        CHECK(a.roles.back().role == Role::Init);
        CHECK_FALSE(a.deadline);
        w.deliver();
        a.alive = false;
    } else {
        a.alive = false;   // kill -9: silent from now on
    }
    auto t = w.run_until_true(t0 + 2 * S, [&] { return b.d->role() == Role::Master; });
    REQUIRE(t);
    if (graceful) {
        // RFC 5798 §6.4.2: Master_Down_Timer = Skew_Time on a priority-0 advert.
        CHECK(*t - t0 == skew_time(100, 10));
        CHECK(b.d->instance(0).counters().pri_zero_rcvd == 1);
    } else {
        // The last advert went out at most one interval before t0.
        CHECK(*t - t0 <= master_down_interval(100, 10));
        CHECK(*t - t0 > master_down_interval(100, 10) - 100 * MS);
    }
    CHECK(b.addrs.count({1, "192.0.2.1/24"}) == 1);
    CHECK(b.routes.size() == 3);
    CHECK(b.roles.back().role == Role::Master);
}

TEST_CASE("ha daemon: the master returns with preempt, once") {
    Box a("a", 200, 2), b("b", 100, 3);
    Wire w{{&a, &b}};
    b.d->start(0);
    w.run_until(2 * S);
    REQUIRE(b.d->role() == Role::Master);
    a.d->start(w.now);
    auto t = w.run_until_true(w.now + 2 * S, [&] { return a.d->role() == Role::Master; });
    REQUIRE(t);
    w.run_until(*t + 3 * S);
    CHECK(a.d->role() == Role::Master);
    CHECK(b.d->role() == Role::Backup);
    CHECK(b.addrs.count({0, "10.0.0.1/24"}) == 0);
    // Exactly one hand-over each way: no flap.
    CHECK(b.d->counters().role_changes == 3);   // backup, master, backup
    CHECK(a.d->counters().role_changes == 2);   // backup, master
    CHECK(b.roles.back().reason.find("higher priority advert from") != std::string::npos);
}

TEST_CASE("ha daemon: two masters of equal priority, the higher primary address stays (RFC 5798 §6.4.3)") {
    Box a("a", 150, 2), b("b", 150, 3);
    Wire w{{&a, &b}};
    w.partitioned = true;   // both become Master on their own
    a.d->start(0);
    b.d->start(0);
    w.run_until(S);
    REQUIRE(a.d->role() == Role::Master);
    REQUIRE(b.d->role() == Role::Master);
    w.partitioned = false;
    w.run_until(3 * S);
    CHECK(b.d->role() == Role::Master);
    CHECK(a.d->role() == Role::Backup);
    CHECK(a.roles.back().reason.find("equal priority 150 and higher address") != std::string::npos);
    // A backup hearing an equal priority does not preempt (§6.4.2): who got
    // there first stays.
    Box c("c", 150, 4);
    w.boxes.push_back(&c);
    c.d->start(w.now);
    w.run_until(w.now + 3 * S);
    CHECK(b.d->role() == Role::Master);
    CHECK(c.d->role() == Role::Backup);
}

TEST_CASE("ha daemon: tracked links lower the priority or force backup") {
    config::Ha ca = ha_config(200);
    ca.track = {config::HaTrack{"mgmt0", 150, false, {}}};
    Box a("a", 200, 2, ca), b("b", 100, 3);
    Wire w{{&a, &b}};
    a.d->start(0);
    b.d->start(0);
    w.run_until(2 * S);
    REQUIRE(a.d->role() == Role::Master);
    // A weighted track: 200 - 150 = 50 < 100, B preempts.
    a.d->set_link(w.now, 2, false);
    CHECK(a.d->instance(0).effective_priority() == 50);
    auto t = w.run_until_true(w.now + 2 * S, [&] { return b.d->role() == Role::Master; });
    REQUIRE(t);
    w.run_until(w.now + S);
    CHECK(a.d->role() == Role::Backup);
    CHECK_FALSE(a.d->instance(0).status().fault);
    a.d->set_link(w.now, 2, true);
    t = w.run_until_true(w.now + 2 * S, [&] { return a.d->role() == Role::Master; });
    REQUIRE(t);
    // A listed interface down: fault, resign at once with priority 0.
    size_t before = a.sent.size();
    Time t0 = w.now;
    a.d->set_link(w.now, 1, false);
    CHECK(a.d->role() == Role::Backup);
    CHECK(a.d->instance(0).status().fault);
    size_t zeros = 0;
    for (size_t i = before; i < a.sent.size(); i++)
        if (is_vrrp(a.sent[i].second) && vrrp_priority(a.sent[i].second) == 0) zeros++;
    CHECK(zeros == 3);
    t = w.run_until_true(w.now + 2 * S, [&] { return b.d->role() == Role::Master; });
    REQUIRE(t);
    CHECK(*t - t0 == skew_time(100, 10));
    auto j = a.d->status_json(w.now);
    CHECK(j["instances"][0]["fault"] == true);
    CHECK(j["instances"][0]["tracks_down"][0] == "port:wan0");
    CHECK(a.d->status_text(w.now).find("tracked down: port:wan0") != std::string::npos);
    // An unknown tracked object (the FRR hook before FRR configures one) is a no-op.
    a.d->set_track(w.now, "frr:core1", false);
    CHECK(a.d->instance(0).status().tracks_down.size() == 1);
}

TEST_CASE("ha daemon: bad adverts are dropped and counted per reason") {
    Box a("a", 200, 2), b("b", 100, 3);
    Wire w{{&a, &b}};
    b.d->start(0);
    w.run_until(S);
    REQUIRE(b.d->role() == Role::Master);
    Advert good{51, 250, 10, {ip("10.0.0.1")}};
    auto frame = [&](Advert adv, auto mutate) {
        auto f = build_advert_frame(adv, ip("10.0.0.9"), mac("00:00:5e:00:01:33"));
        mutate(f);
        return f;
    };
    auto none = [](std::vector<uint8_t>&) {};
    auto ttl = [](std::vector<uint8_t>& f) {
        f[14 + 8] = 254;   // IPv4 header checksum left wrong is fine: VRRP looks at TTL first
    };
    auto csum = [](std::vector<uint8_t>& f) { f[14 + 20 + 6] ^= 0xff; };
    auto ver = [](std::vector<uint8_t>& f) { f[14 + 20] = 0x21; };
    Advert other = good;
    other.vrid = 52;
    CHECK(b.d->take_advert(w.now, 0, frame(other, none)));
    CHECK(b.d->take_advert(w.now, 0, frame(good, ttl)));
    CHECK(b.d->take_advert(w.now, 0, frame(good, csum)));
    CHECK(b.d->take_advert(w.now, 0, frame(good, ver)));
    auto c = b.d->instance(0).counters();
    CHECK(c.rx_drops[size_t(RxReason::VridMismatch)] == 1);
    CHECK(c.rx_drops[size_t(RxReason::TtlError)] == 1);
    CHECK(c.rx_drops[size_t(RxReason::ChecksumError)] == 1);
    CHECK(c.rx_drops[size_t(RxReason::VersionError)] == 1);
    CHECK(c.adverts_rcvd == 0);
    CHECK(b.d->role() == Role::Master);   // none of them counted as a better master
    auto j = b.d->status_json(w.now);
    CHECK(j["instances"][0]["rx_errors"] == 4);
    CHECK(j["instances"][0]["counters"]["rx_ttl_error"] == 1);
    std::string text = b.d->status_text(w.now);
    CHECK(text.find("rx_checksum_error") != std::string::npos);
    // A good one from a better router is obeyed.
    CHECK(b.d->take_advert(w.now, 0, frame(good, none)));
    CHECK(b.d->role() == Role::Backup);
    // VRRP on a port without an instance is the kernel's; junk on an HA port is ours.
    CHECK_FALSE(b.d->take_advert(w.now, 2, frame(good, none)));
    std::vector<uint8_t> junk(20, 0);
    CHECK(b.d->take_advert(w.now, 0, junk));
    CHECK(b.d->counters().rx_not_ip == 1);
}

TEST_CASE("ha daemon: kernel frames about a VIP leave from the virtual MAC; frames to it reach the kernel") {
    Box a("a", 200, 2);
    Wire w{{&a}};
    a.d->start(0);
    const MacAddr tap = a.ports[0].mac;
    // ARP reply "10.0.0.1 is-at <tap MAC>" as the kernel would send it.
    auto arp = [&](const char* spa) {
        std::vector<uint8_t> f(42, 0);
        std::copy(tap.b.begin(), tap.b.end(), f.begin() + 6);
        f[12] = 0x08, f[13] = 0x06, f[15] = 1, f[16] = 0x08, f[18] = 6, f[19] = 4, f[21] = 2;
        std::copy(tap.b.begin(), tap.b.end(), f.begin() + 22);
        auto a4 = ip(spa);
        std::copy(a4.b.begin(), a4.b.begin() + 4, f.begin() + 28);
        return f;
    };
    auto f = arp("10.0.0.1");
    a.d->fix_from_host(0, f);
    CHECK(src_mac(f) == tap);   // not master yet: untouched
    w.run_until(2 * S);
    REQUIRE(a.d->role() == Role::Master);
    a.d->fix_from_host(0, f);
    CHECK(src_mac(f) == mac("00:00:5e:00:01:33"));
    CHECK(std::equal(f.begin() + 22, f.begin() + 28, mac("00:00:5e:00:01:33").b.begin()));
    auto own = arp("10.0.0.2");
    a.d->fix_from_host(0, own);
    CHECK(src_mac(own) == tap);   // the box's own address keeps the port's MAC

    // A solicited NA for the IPv6 VIP: the Target Link-Layer Address option and
    // the checksum are redone.
    auto na = build_unsolicited_na(ip("2001:db8::1"), ip("2001:db8::1"), tap);
    na[14 + 40 + 4] = 0x60;   // S and O flags
    {
        std::span<const uint8_t> icmp(na.data() + 54, na.size() - 54);
        REQUIRE(pseudo_checksum(ip("2001:db8::1"), ip("ff02::1"), 58, icmp) != 0);   // flags changed
    }
    a.d->fix_from_host(0, na);
    CHECK(src_mac(na) == mac("00:00:5e:00:02:33"));
    CHECK(std::equal(na.end() - 6, na.end(), mac("00:00:5e:00:02:33").b.begin()));
    std::span<const uint8_t> icmp(na.data() + 54, na.size() - 54);
    CHECK(pseudo_checksum(ip("2001:db8::1"), ip("ff02::1"), 58, icmp) == 0);

    // Towards the kernel: to the virtual MAC becomes to the port's MAC.
    std::vector<uint8_t> in(60, 0);
    auto vm = mac("00:00:5e:00:01:33");
    std::copy(vm.b.begin(), vm.b.end(), in.begin());
    a.d->fix_to_host(0, in);
    CHECK(std::equal(in.begin(), in.begin() + 6, tap.b.begin()));
    CHECK(a.d->counters().to_host_rewritten == 1);
    std::copy(vm.b.begin(), vm.b.end(), in.begin());
    a.d->fix_to_host(2, in);   // not an HA port
    CHECK(std::equal(in.begin(), in.begin() + 6, vm.b.begin()));
}
