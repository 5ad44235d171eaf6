// The dataplane FIB (rte_lpm for IPv4, double-buffered rte_fib6 for IPv6)
// checked against a deliberately naive reference: one hash map per prefix
// length, searched from /32 (/128) down. 100,000 random prefixes per family,
// random lookups, then deletes and replacements, in batches as the RIB
// sends them. Runs the real dataplane code on a real EAL (no ports).
#include <unistd.h>

#include <array>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "control/routing/rib.h"
#include "dataplane/api.h"

using namespace nimbus;

namespace {

struct Key {
    std::array<uint8_t, 16> b;
    bool operator==(const Key&) const = default;
};
struct KeyHash {
    size_t operator()(const Key& k) const {
        uint64_t x, y;
        std::memcpy(&x, k.b.data(), 8);
        std::memcpy(&y, k.b.data() + 8, 8);
        return std::hash<uint64_t>()(x * 0x9e3779b97f4a7c15ull ^ y);
    }
};

// The "horrible" reference: exact-match maps per length.
class NaiveFib {
public:
    explicit NaiveFib(int bits) : bits_(bits), maps_(size_t(bits) + 1) {}
    void add(const Prefix& p, dp::NhId nh) { maps_[p.len][Key{p.addr.b}] = nh; }
    void del(const Prefix& p) { maps_[p.len].erase(Key{p.addr.b}); }
    dp::NhId lookup(const IpAddr& a) const {
        for (int l = bits_; l >= 0; l--) {
            Prefix p(a, l);
            auto it = maps_[size_t(l)].find(Key{p.addr.b});
            if (it != maps_[size_t(l)].end()) return it->second;
        }
        return dp::kNhNoRoute;
    }

private:
    int bits_;
    std::vector<std::unordered_map<Key, dp::NhId, KeyHash>> maps_;
};

IpAddr random_v4(std::mt19937_64& rng) { return IpAddr::v4(uint32_t(rng())); }

IpAddr random_v6(std::mt19937_64& rng) {
    // Inside 2001:db8::/36, as a provider's table would be: shared upper
    // levels keep the trie's memory realistic.
    IpAddr a;
    a.family = Family::V6;
    uint64_t hi = rng(), lo = rng();
    for (int i = 0; i < 8; i++) a.b[size_t(i)] = uint8_t(hi >> (56 - 8 * i));
    for (int i = 0; i < 8; i++) a.b[size_t(8 + i)] = uint8_t(lo >> (56 - 8 * i));
    a.b[0] = 0x20, a.b[1] = 0x01, a.b[2] = 0x0d, a.b[3] = 0xb8;
    a.b[4] = uint8_t(a.b[4] & 0x0f);
    return a;
}

int random_len_v4(std::mt19937_64& rng) {
    static const int lens[] = {8, 12, 16, 19, 20, 21, 22, 23, 24, 24, 24, 24, 25, 26, 27, 28, 29, 30, 31, 32, 32};
    return lens[rng() % (sizeof lens / sizeof lens[0])];
}

int random_len_v6(std::mt19937_64& rng) {
    static const int lens[] = {36, 40, 44, 48, 48, 48, 52, 56, 56, 60, 64, 64, 64, 64, 80, 128};
    return lens[rng() % (sizeof lens / sizeof lens[0])];
}

void apply(std::vector<dp::FibOp>& ops) {
    std::string err;
    bool ok = dp::fib_apply(ops, &err);
    INFO(err);
    REQUIRE(ok);
    ops.clear();
}

void run_family(bool v6) {
    std::mt19937_64 rng(v6 ? 6 : 4);
    const int bits = v6 ? 128 : 32;
    const size_t n = 100000;
    const int vrf = v6 ? 2 : 1;
    NaiveFib ref(bits);
    std::vector<Prefix> added;
    std::vector<dp::FibOp> ops;
    auto rnd = [&] { return v6 ? random_v6(rng) : random_v4(rng); };
    while (added.size() < n) {
        Prefix p(rnd(), v6 ? random_len_v6(rng) : random_len_v4(rng));
        dp::NhId nh = dp::kNhFirstDynamic + dp::NhId(rng() % 100000);
        ref.add(p, nh);
        added.push_back(p);
        ops.push_back(dp::FibOp{true, vrf, p, nh});
        if (ops.size() == 1000) apply(ops);
    }
    apply(ops);

    auto check = [&](int lookups) {
        int mismatches = 0;
        for (int i = 0; i < lookups; i++) {
            // Half random addresses, half inside a prefix we added.
            IpAddr a = rnd();
            if (i & 1) {
                const Prefix& p = added[rng() % added.size()];
                for (int bit = 0; bit < p.len; bit++) {
                    uint8_t m = uint8_t(0x80 >> (bit % 8));
                    a.b[size_t(bit / 8)] = uint8_t((a.b[size_t(bit / 8)] & ~m) | (p.addr.b[size_t(bit / 8)] & m));
                }
            }
            if (dp::fib_lookup(vrf, a) != ref.lookup(a)) mismatches++;
        }
        return mismatches;
    };
    CHECK(check(200000) == 0);

    // Delete half, replace a quarter of what remains, in batches.
    std::shuffle(added.begin(), added.end(), rng);
    for (size_t i = 0; i < n / 2; i++) {
        ref.del(added[i]);
        ops.push_back(dp::FibOp{false, vrf, added[i], 0});
        if (ops.size() == 997) apply(ops);
    }
    apply(ops);
    for (size_t i = n / 2; i < n / 2 + n / 4; i++) {
        dp::NhId nh = dp::kNhFirstDynamic + dp::NhId(rng() % 100000);
        ref.add(added[i], nh);
        ops.push_back(dp::FibOp{true, vrf, added[i], nh});
        if (ops.size() == 500) apply(ops);
    }
    apply(ops);
    CHECK(check(200000) == 0);
    // Another VRF is untouched by all of this.
    CHECK(dp::fib_lookup(vrf + 10, added.back().addr) == dp::kNhNoRoute);
}

}  // namespace

TEST_CASE("IPv4 FIB matches a naive reference over 100,000 random prefixes") { run_family(false); }

TEST_CASE("IPv6 FIB (double buffered) matches a naive reference over 100,000 random prefixes") { run_family(true); }

TEST_CASE("a failed batch leaves the FIB as it was") {
    // A batch whose last op is bad: nothing of it may stay.
    Prefix p1 = *Prefix::parse("198.51.100.0/24"), p2 = *Prefix::parse("2001:db8:ffff::/48");
    std::vector<dp::FibOp> ops{{true, 5, p1, 7}, {true, 5, p2, 8}, {true, dp::kMaxVrfs + 1, p1, 9}};
    std::string err;
    CHECK_FALSE(dp::fib_apply(ops, &err));
    CHECK(err == "bad VRF or next hop in a FIB operation");
    CHECK(dp::fib_lookup(5, *IpAddr::parse("198.51.100.7")) == dp::kNhNoRoute);
    CHECK(dp::fib_lookup(5, *IpAddr::parse("2001:db8:ffff::1")) == dp::kNhNoRoute);
}

TEST_CASE("RIB: best route by distance, gateways resolved through connected subnets, neighbours") {
    using namespace routing;
    Rib rib;
    rib.set_ports({7, 7}, {"p0", "p1"});
    const int vrf = 7;
    auto pfx = [](const char* s) { return *Prefix::parse(s); };
    rib.add(vrf, Route{pfx("192.0.2.0/24"), Source::Connected, 0, NextHop{NextHop::Kind::Glean, 0, {}}, 0});
    rib.add(vrf, Route{pfx("192.0.2.1/32"), Source::Local, 0, NextHop{NextHop::Kind::Local, -1, {}}, 0});
    NextHop gw{NextHop::Kind::Gateway, -1, *IpAddr::parse("192.0.2.9")};
    rib.add(vrf, Route{pfx("10.0.0.0/8"), Source::Static, 1, gw, 0});
    rib.add(vrf, Route{pfx("10.0.0.0/8"), Source::Fpm, 200, NextHop{NextHop::Kind::Drop, -1, {}}, 0});
    NextHop far{NextHop::Kind::Gateway, -1, *IpAddr::parse("203.0.113.1")};
    rib.add(vrf, Route{pfx("172.16.0.0/12"), Source::Static, 1, far, 0});
    std::string err;
    REQUIRE(rib.commit(&err));
    auto at = [&](const char* a) { return dp::fib_lookup(vrf, *IpAddr::parse(a)); };
    CHECK(at("192.0.2.1") == dp::kNhLocal);
    dp::NhId glean = at("192.0.2.77");
    CHECK(glean >= dp::kNhFirstDynamic);
    dp::NhId via = at("10.1.2.3");
    CHECK(via >= dp::kNhFirstDynamic);
    CHECK(via != glean);
    CHECK(at("172.16.1.1") == dp::kNhNoRoute);  // gateway not on a connected subnet: inactive
    auto views = rib.view(vrf, Family::V4);
    bool saw_inactive = false;
    for (auto& v : views)
        if (v.route.prefix == pfx("172.16.0.0/12")) {
            saw_inactive = true;
            CHECK_FALSE(v.active);
            CHECK(v.reason == "gateway 203.0.113.1 is not on a connected subnet");
        }
    CHECK(saw_inactive);
    // The neighbour appears: a host route to it shares the gateway's next hop.
    rib.neighbor(0, *IpAddr::parse("192.0.2.9"), MacAddr::parse("02:00:00:00:00:09"));
    REQUIRE(rib.commit(&err));
    CHECK(at("192.0.2.9") == via);
    // Static withdrawn: the FPM route (blackhole) takes over.
    rib.remove(vrf, pfx("10.0.0.0/8"), Source::Static);
    REQUIRE(rib.commit(&err));
    CHECK(at("10.1.2.3") == dp::kNhDrop);
    // The neighbour's next hop stays while its host route uses it.
    CHECK(at("192.0.2.9") == via);
    rib.neighbor(0, *IpAddr::parse("192.0.2.9"), std::nullopt);
    REQUIRE(rib.commit(&err));
    CHECK(at("192.0.2.9") == glean);
    // Connected subnet gone: everything through it goes with it.
    rib.remove(vrf, pfx("192.0.2.0/24"), Source::Connected);
    REQUIRE(rib.commit(&err));
    CHECK(at("192.0.2.77") == dp::kNhNoRoute);
}

int main(int argc, char** argv) {
    dp::InitSpec s;
    s.prog = "nimbus-unit-fib";
    s.eal_args = {"--no-huge", "-m", "2048", "--log-level=error", "--no-telemetry"};
    s.file_prefix = "nimbus-unit-fib-" + std::to_string(getpid());
    s.workers = 1;
    s.nvrfs = dp::kMaxVrfs;
    s.ipv4_tbl8 = 65536;
    s.ipv6_routes = 131072;
    s.ipv6_tbl8 = 262144;
    s.mbufs = 1023;
    std::string err;
    if (!dp::init(s, &err)) {
        fprintf(stderr, "dataplane init failed: %s\n", err.c_str());
        return 1;
    }
    int rc = Catch::Session().run(argc, argv);
    dp::shutdown();
    return rc;
}
