// nimbus-bench esp: ESP tunnel mode through the worker's own functions.
//
//   nimbus-bench esp [--seconds S] [--sizes 64,512,1420,imix]
//                    [--ciphers aes128gcm,aes256gcm,chacha20poly1305]
//                    [--tunnels N] [--encap esp|udp] [--window W] [--huge] [--firewall RULES]
//   nimbus-bench esp --pcap FILE --dir encrypt|decrypt --cipher C
//                    --key-out HEX --key-in HEX [--spi-out N] [--spi-in N] [--seconds S]
//
// In-memory mode: two boxes A and B live in one process as VRFs, wired by
// net_ring ports, one worker (no lcore launched; we call what its loop calls):
//
//   lanA(0, VRF 2) -A- wanA(1, VRF 0) ==ESP== wanB(2, VRF 1) -B- lanB(3, VRF 3)
//
// encrypt: plain frames are copied into fresh mbufs (not timed), then
//          process_rx(lanA) + flush_tx is timed: parse, FIB, tunnel next hop,
//          sequence number, AEAD (IPsec-MB burst), outer header, tx enqueue.
// decrypt: the ESP frames A just sent (off wanA's ring) go through
//          process_rx(wanB) + flush_tx, timed: SPI lookup, anti-replay check,
//          AEAD verify+decrypt, window update, cryptokey check, inner FIB, tx.
// Each cipher x size runs first with one tunnel, then (--tunnels N, default
// 100,000) with N tunnel pairs and a random tunnel per packet; before that it
// prints what the SA tables of A's N tunnels (one outbound + one inbound SA
// each, window W) take in memory.
//
// pcap mode: the harness of scripts/bench/esp.sh, identical to the one used
// for DPDK's ipsec-secgw: port 0 is net_pcap0,rx_pcap=FILE,infinite_rx=1
// (the PMD copies every packet into a new mbuf), port 1 net_null0,no-rx=1;
// one tunnel, plain ESP, 198.51.100.1 (us) <-> 198.51.100.2, our LAN
// 10.1.0.0/16, the peer's 10.2.0.0/16. The timed loop is the worker's:
// rx burst, process_rx, flush_tx. decrypt: a pcap replays the same sequence
// numbers over and over, which our (mandatory) anti-replay window would drop
// as duplicates on the second pass; since no worker runs, the bench resets
// the inbound SA's window after each full pass (not timed), so every packet
// is authenticated and decrypted. ipsec-secgw runs with its window disabled.
//
// --firewall N: every case runs again (mode "single+fw", "tunnels+fw") with
// a firewall of N rules on the tunnels' VRFs of both boxes, the last one an
// allow-stateful for everything (so egress and ingress each scan the list
// and find the flow): the firewall's cost against its own anchor.
//
// Memory comes from anonymous 4 KiB pages (--no-huge) unless --huge, which
// takes 2 MiB hugepages (they must be reserved: vm.nr_hugepages) as a
// production box does; with 100,000 tunnels the TLB makes the difference.
//
// One JSON object per line. "cycles" are TSC cycles inside the timed region;
// mpps = packets / timed seconds; gbps counts inner IP bytes (64 B = an inner
// IPv4 packet of total length 64). imix: inner sizes 64, 576, 1420 in the
// ratio 7:4:1 (average 347.7 B).
#include "src/bench/esp.h"

#include <getopt.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_udp.h>

#include "dataplane/dp.h"
#include "dataplane/esp/sa.h"

namespace nimbus::bench {

namespace {

using namespace nimbus::dp;

constexpr uint16_t kBurst = 32;
constexpr int kImix = 0;  // "size" of the IMIX mix
const int kImixPattern[12] = {64, 576, 64, 64, 1420, 64, 576, 64, 576, 64, 64, 576};

struct Opts {
    double seconds = 1;
    std::vector<int> sizes{64, 512, 1420, kImix};
    std::vector<Cipher> ciphers{Cipher::AesGcm128, Cipher::AesGcm256, Cipher::Chacha20Poly1305};
    int tunnels = 100000;
    bool udp = false;
    int window = 1024;
    bool huge = false;  // hugepages (--in-memory) instead of --no-huge
    int firewall = 0;   // in-memory: each case again with an N-rule firewall on both sides
    // pcap mode
    std::string pcap;
    bool decrypt = false;
    std::string key_out, key_in;
    uint32_t spi_out = 0x1001, spi_in = 0x2001;
};

const char* short_name(Cipher c) {
    switch (c) {
        case Cipher::AesGcm128: return "aes128gcm";
        case Cipher::AesGcm256: return "aes256gcm";
        case Cipher::Chacha20Poly1305: return "chacha20poly1305";
    }
    return "?";
}

bool parse_cipher(const std::string& s, Cipher* c) {
    for (Cipher x : {Cipher::AesGcm128, Cipher::AesGcm256, Cipher::Chacha20Poly1305})
        if (s == short_name(x) || s == cipher_name(x)) {
            *c = x;
            return true;
        }
    return false;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

bool parse_hex(const std::string& s, std::vector<uint8_t>* out) {
    out->clear();
    if (s.size() % 2) return false;
    for (size_t i = 0; i < s.size(); i += 2) {
        unsigned v;
        if (std::sscanf(s.c_str() + i, "%2x", &v) != 1) return false;
        out->push_back(uint8_t(v));
    }
    return true;
}

std::string size_label(int size) { return size == kImix ? "\"imix\"" : std::to_string(size); }

// ---- the in-memory lab

constexpr uint16_t kLanA = 0, kWanA = 1, kWanB = 2, kLanB = 3;
constexpr int kVrfUA = 0, kVrfUB = 1, kVrfA = 2, kVrfB = 3;
const MacAddr kHostA = *MacAddr::parse("02:00:00:00:0a:01");
const MacAddr kHostB = *MacAddr::parse("02:00:00:00:0b:01");
constexpr uint32_t kSrcBase = 0x0a400000;  // 10.64.0.0 + i: A's LAN host of tunnel i
constexpr uint32_t kDstBase = 0x0a800000;  // 10.128.0.0 + i: B's LAN host of tunnel i

MacAddr port_mac(uint16_t p) {
    MacAddr m;
    std::memcpy(m.b.data(), g->ports[p].mac.addr_bytes, 6);
    return m;
}

NhId adjacency(uint16_t port, const MacAddr& mac) {
    NhId id = nh_alloc();
    NhSpec s;
    s.type = NhType::Adjacency;
    s.port = port;
    s.resolved = true;
    s.dst_mac = mac;
    nh_set(id, s);
    return id;
}

NhId tunnel_nh(TunnelId t) {
    NhId id = nh_alloc();
    NhSpec s;
    s.type = NhType::Tunnel;
    s.tunnel = t;
    nh_set(id, s);
    return id;
}

bool lab_routes(std::string* err) {
    NhId a2b = adjacency(kWanA, port_mac(kWanB)), b2a = adjacency(kWanB, port_mac(kWanA));
    NhId la = adjacency(kLanA, kHostA), lb = adjacency(kLanB, kHostB);
    return fib_apply({FibOp{true, kVrfUA, *Prefix::parse("192.0.2.1/32"), kNhLocal},
                      FibOp{true, kVrfUB, *Prefix::parse("192.0.2.2/32"), kNhLocal},
                      FibOp{true, kVrfUA, *Prefix::parse("192.0.2.2/32"), a2b},
                      FibOp{true, kVrfUB, *Prefix::parse("192.0.2.1/32"), b2a},
                      FibOp{true, kVrfA, *Prefix::parse("10.64.0.0/10"), la},
                      FibOp{true, kVrfB, *Prefix::parse("10.128.0.0/9"), lb}},
                     err);
}

std::vector<uint8_t> keymat(Cipher c, uint32_t seed) {
    std::vector<uint8_t> k(cipher_keymat_len(c));
    std::mt19937 rng(seed);
    for (auto& b : k) b = uint8_t(rng());
    return k;
}

// What one side's tunnels take: rte heap (tunnels, SAs, windows, counters,
// expanded keys) and the control thread's C++ heap, measured around
// tunnel_install(); plus the two fixed slot tables (by SPI slot, by id).
struct MemUse {
    uint64_t dp_heap = 0, ctl_heap = 0, fixed = 0;
    double seconds = 0;
};

uint64_t rte_heap_used() {
    uint64_t s = 0;
    for (int sock = 0; sock < RTE_MAX_NUMA_NODES; sock++) {
        rte_malloc_socket_stats st{};
        if (rte_malloc_get_socket_stats(sock, &st) == 0) s += st.heap_allocsz_bytes;
    }
    return s;
}

struct Lab {
    Cipher cipher = Cipher::AesGcm256;
    std::vector<TunnelId> a, b;
    std::vector<NhId> nh;
    std::vector<FibOp> routes;
};

bool install_side(Lab& lab, bool side_a, int n, bool udp, int window, uint32_t seed_base,
                  const std::vector<uint32_t>& spi_ab, const std::vector<uint32_t>& spi_ba, std::string* err) {
    TunnelSpec t;
    t.vrf = side_a ? kVrfA : kVrfB;
    t.underlay_vrf = side_a ? kVrfUA : kVrfUB;
    t.udp = udp;
    t.mss_clamp = false;
    IpAddr ua = *IpAddr::parse("192.0.2.1"), ub = *IpAddr::parse("192.0.2.2");
    t.paths = {PathSpec{side_a ? ua : ub, side_a ? ub : ua}};
    for (int i = 0; i < n; i++) {
        t.name = fmt::format("{}{}", side_a ? "a" : "b", i);
        SaSpec ab{spi_ab[size_t(i)], lab.cipher, false, uint32_t(window), keymat(lab.cipher, seed_base + 2 * uint32_t(i)), {}};
        SaSpec ba{spi_ba[size_t(i)], lab.cipher, false, uint32_t(window), keymat(lab.cipher, seed_base + 2 * uint32_t(i) + 1), {}};
        t.out = side_a ? ab : ba;
        t.in = {side_a ? ba : ab};
        TunnelId id = tunnel_install(t, err);
        if (id == kNoTunnel) return false;
        (side_a ? lab.a : lab.b).push_back(id);
    }
    return true;
}

// n tunnel pairs; tunnel i carries 10.64.0.0+i <-> 10.128.0.0+i.
bool lab_install(Lab& lab, int n, bool udp, int window, MemUse* mem, std::string* err) {
    std::vector<uint32_t> spi_ab(static_cast<size_t>(n)), spi_ba(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) spi_ab[size_t(i)] = spi_alloc(), spi_ba[size_t(i)] = spi_alloc();
    uint64_t h0 = rte_heap_used();
    size_t c0 = mallinfo2().uordblks;
    uint64_t t0 = rte_rdtsc();
    if (!install_side(lab, true, n, udp, window, 1000, spi_ab, spi_ba, err)) return false;
    if (mem) {
        mem->seconds = double(rte_rdtsc() - t0) / double(rte_get_tsc_hz());
        mem->dp_heap = rte_heap_used() - h0;
        size_t c1 = mallinfo2().uordblks;
        mem->ctl_heap = c1 > c0 ? c1 - c0 : 0;
        mem->fixed = (sizeof(std::atomic<esp::SaIn*>) + sizeof(std::atomic<esp::Tunnel*>)) * (size_t(1) << kSpiSlotBits);
    }
    if (!install_side(lab, false, n, udp, window, 1000, spi_ab, spi_ba, err)) return false;
    for (int i = 0; i < n; i++) {
        NhId na = tunnel_nh(lab.a[size_t(i)]), nb = tunnel_nh(lab.b[size_t(i)]);
        lab.nh.push_back(na);
        lab.nh.push_back(nb);
        // A: the far host goes into tunnel i. B: the same table says which
        // inner sources tunnel i may carry (cryptokey routing).
        lab.routes.push_back(FibOp{true, kVrfA, Prefix(IpAddr::v4(kDstBase + uint32_t(i)), 32), na});
        lab.routes.push_back(FibOp{true, kVrfB, Prefix(IpAddr::v4(kSrcBase + uint32_t(i)), 32), nb});
    }
    return fib_apply(lab.routes, err);
}

void lab_remove(Lab& lab) {
    std::string err;
    for (auto& r : lab.routes) r.add = false;
    fib_apply(lab.routes, &err);
    for (NhId n : lab.nh) nh_free(n);
    for (TunnelId t : lab.a) tunnel_remove(t);
    for (TunnelId t : lab.b) tunnel_remove(t);
    maintenance();
    lab = Lab{};
}

// Plain frames into lanA: Ethernet + IPv4 (DF) + UDP, inner total length `l3`.
struct Templates {
    std::vector<std::vector<uint8_t>> frames;  // per pattern position
    std::vector<int> l3;
};

Templates make_templates(int size) {
    Templates t;
    std::vector<int> sizes = size == kImix ? std::vector<int>(kImixPattern, kImixPattern + 12) : std::vector<int>{size};
    MacAddr dmac = port_mac(kLanA);
    for (int l3 : sizes) {
        std::vector<uint8_t> f(size_t(14 + l3));
        std::memcpy(f.data(), dmac.b.data(), 6);
        std::memcpy(f.data() + 6, kHostA.b.data(), 6);
        f[12] = 0x08;
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f.data() + 14);
        ip->version_ihl = 0x45;
        ip->total_length = rte_cpu_to_be_16(uint16_t(l3));
        ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        udp->src_port = rte_cpu_to_be_16(1024);
        udp->dst_port = rte_cpu_to_be_16(5001);
        udp->dgram_len = rte_cpu_to_be_16(uint16_t(l3 - 20));
        for (int i = 28; i < l3; i++) f[size_t(14 + i)] = uint8_t(i * 7);
        t.frames.push_back(std::move(f));
        t.l3.push_back(l3);
    }
    return t;
}

struct Run {
    uint64_t packets = 0, bytes = 0, out = 0, drops = 0, cycles = 0;
    std::vector<uint32_t> bursts;  // cycles per timed burst
};

uint64_t all_drops() {
    uint64_t s = 0;
    for (int p = 0; p < g->nports; p++)
        for (int k = 0; k < kDropCount; k++) s += port_counters(p, -1).drops[k];
    return s;
}

void report_drops(uint64_t before[kMaxPorts][kDropCount]) {
    for (int p = 0; p < g->nports; p++) {
        PortCounters c = port_counters(p, -1);
        for (int k = 0; k < kDropCount; k++)
            if (c.drops[k] != before[p][k])
                fmt::print(stderr, "nimbus-bench: port {} drop {} {}\n", p, drop_name(k), c.drops[k] - before[p][k]);
    }
}

// One measurement: `decrypt` times B, otherwise A.
Run run_case(const Templates& tp, int ntunnels, bool decrypt, double seconds) {
    WorkerCtx& w = g->workers[0];
    Run r;
    r.bursts.reserve(1 << 20);
    std::mt19937 rng(11);
    size_t pos = 0;
    uint64_t hz = rte_get_tsc_hz();
    uint64_t end = rte_rdtsc() + uint64_t(seconds * double(hz));
    uint64_t drops0 = all_drops();
    rte_mbuf* ms[kBurst];
    rte_mbuf* back[kBurst * 2];
    while (rte_rdtsc() < end || r.packets < 64 * kBurst) {
        if (rte_pktmbuf_alloc_bulk(g->pool, ms, kBurst) != 0) break;
        uint64_t bytes = 0;
        for (auto* m : ms) {
            const auto& f = tp.frames[pos];
            bytes += uint64_t(tp.l3[pos]);
            pos = (pos + 1) % tp.frames.size();
            auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(f.size())));
            std::memcpy(d, f.data(), f.size());
            uint32_t i = ntunnels > 1 ? uint32_t(rng() % uint32_t(ntunnels)) : 0;
            auto* ip = reinterpret_cast<rte_ipv4_hdr*>(d + 14);
            ip->src_addr = rte_cpu_to_be_32(kSrcBase + i);
            ip->dst_addr = rte_cpu_to_be_32(kDstBase + i);
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        uint64_t t0 = rte_rdtsc();
        process_rx(w, kLanA, ms, kBurst);
        flush_tx(w);
        uint64_t t1 = rte_rdtsc();
        uint16_t n = 0, k;
        while (n < kBurst * 2 && (k = rte_eth_rx_burst(g->ports[kWanA].id, 0, back + n, uint16_t(kBurst * 2 - n))) > 0)
            n = uint16_t(n + k);
        if (!decrypt) {
            r.cycles += t1 - t0;
            r.bursts.push_back(uint32_t(t1 - t0));
            r.out += n;
            rte_pktmbuf_free_bulk(back, n);
        } else {
            t0 = rte_rdtsc();
            process_rx(w, kWanB, back, n);
            flush_tx(w);
            t1 = rte_rdtsc();
            r.cycles += t1 - t0;
            r.bursts.push_back(uint32_t(t1 - t0));
            while ((k = rte_eth_rx_burst(g->ports[kLanB].id, 0, back, kBurst * 2)) > 0) {
                r.out += k;
                rte_pktmbuf_free_bulk(back, k);
            }
        }
        r.packets += kBurst;
        r.bytes += bytes;
    }
    r.drops = all_drops() - drops0;
    return r;
}

void print_run(const char* mode, int ntunnels, Cipher c, bool decrypt, int size, bool udp, const Run& r) {
    uint64_t hz = rte_get_tsc_hz();
    std::vector<uint32_t> b = r.bursts;
    std::sort(b.begin(), b.end());
    double secs = double(r.cycles) / double(hz);
    double p50 = b.empty() ? 0 : double(b[b.size() / 2]) / kBurst;
    fmt::print(
        "{{\"bench\":\"esp\",\"mode\":\"{}\",\"tunnels\":{},\"cipher\":\"{}\",\"dir\":\"{}\",\"size\":{},"
        "\"encap\":\"{}\",\"packets\":{},\"forwarded\":{},\"drops\":{},\"mpps\":{:.3f},\"gbps\":{:.3f},"
        "\"cycles_per_packet\":{:.1f},\"cycles_per_packet_p50\":{:.1f},\"tsc_hz\":{}}}\n",
        mode, ntunnels, short_name(c), decrypt ? "decrypt" : "encrypt", size_label(size), udp ? "udp" : "esp",
        r.packets, r.out, r.drops, double(r.packets) / secs / 1e6, double(r.bytes) * 8 / secs / 1e9,
        double(r.cycles) / double(r.packets), p50, hz);
    std::fflush(stdout);
}

// A firewall of n rules on the tunnels' VRFs of both boxes (0: none): n-1
// that never match (TCP to ports 1.. from TEST-NET-1), then allow-stateful
// for everything, default deny. Each packet scans the list once per box,
// then finds its flow (the first packet of a flow creates it).
bool bench_firewall(int n, std::string* err) {
    FwPolicySpec spec;
    if (n > 0) {
        FwDirSpec d;
        d.dflt = FwAction::Deny;
        d.default_slot = 0;
        d.state_slot = 1;
        for (int i = 0; i < n - 1; i++) {
            FwRuleSpec r;
            r.slot = uint32_t(2 + i);
            r.action = FwAction::Deny;
            r.proto = 6;
            r.ports = true;
            r.dport_lo = r.dport_hi = uint16_t(1 + i);
            r.src = {*Prefix::parse("192.0.2.0/24")};
            d.rules.push_back(r);
        }
        FwRuleSpec all;
        all.slot = uint32_t(2 + n);
        all.action = FwAction::AllowStateful;
        d.rules.push_back(all);
        spec.in = spec.out = d;
    }
    for (int vrf : {kVrfA, kVrfB})
        if (!fw_set(vrf, n > 0 ? &spec : nullptr, err)) return false;
    return true;
}

int run_memory_lab(const Opts& o) {
    std::string err;
    if (!lab_routes(&err)) {
        fmt::print(stderr, "nimbus-bench: routes: {}\n", err);
        return 1;
    }
    int rc = 0;
    for (Cipher c : o.ciphers) {
        std::vector<int> counts{1};
        if (o.tunnels > 1) counts.push_back(o.tunnels);
        for (int ntun : counts) {
            Lab lab;
            lab.cipher = c;
            MemUse mem;
            if (!lab_install(lab, ntun, o.udp, o.window, &mem, &err)) {
                fmt::print(stderr, "nimbus-bench: installing {} tunnels: {}\n", ntun, err);
                lab_remove(lab);
                return 1;
            }
            if (ntun > 1) {
                uint64_t total = mem.dp_heap + mem.ctl_heap + mem.fixed;
                size_t per = sizeof(esp::Tunnel) + sizeof(esp::SaOut) + sizeof(esp::SaIn) + sizeof(esp::TunnelCtr);
                fmt::print(
                    "{{\"bench\":\"esp\",\"mode\":\"memory\",\"cipher\":\"{}\",\"tunnels\":{},\"sas_out\":1,\"sas_in\":1,"
                    "\"window\":{},\"dataplane_heap_bytes\":{},\"control_heap_bytes\":{},\"slot_table_bytes\":{},"
                    "\"sa_table_bytes\":{},\"sa_table_mib\":{:.1f},\"bytes_per_tunnel\":{:.0f},\"struct_bytes_per_tunnel\":{},"
                    "\"target_mib\":512,\"under_target\":{},\"install_seconds\":{:.2f}}}\n",
                    short_name(c), ntun, o.window, mem.dp_heap, mem.ctl_heap, mem.fixed, total,
                    double(total) / (1 << 20), double(mem.dp_heap + mem.ctl_heap) / ntun, per,
                    total < (512ull << 20) ? "true" : "false", mem.seconds);
                std::fflush(stdout);
            }
            for (int size : o.sizes) {
                Templates tp = make_templates(size);
                for (bool dec : {false, true})
                for (int fw : o.firewall ? std::vector<int>{0, o.firewall} : std::vector<int>{0}) {
                    if (o.firewall && !bench_firewall(fw, &err)) {
                        fmt::print(stderr, "nimbus-bench: firewall: {}\n", err);
                        return 1;
                    }
                    uint64_t before[kMaxPorts][kDropCount];
                    for (int p = 0; p < g->nports; p++) {
                        PortCounters pc = port_counters(p, -1);
                        std::memcpy(before[p], pc.drops, sizeof(pc.drops));
                    }
                    Run r = run_case(tp, ntun, dec, o.seconds);
                    if (r.drops) {
                        report_drops(before);
                        rc = 1;
                    }
                    std::string mode = std::string(ntun > 1 ? "tunnels" : "single") + (fw ? "+fw" : "");
                    print_run(mode.c_str(), ntun, c, dec, size, o.udp, r);
                }
            }
            lab_remove(lab);
        }
    }
    return rc;
}

// ---- pcap mode

int run_pcap(const Opts& o, Cipher c) {
    std::string err;
    std::vector<uint8_t> kout, kin;
    if (!parse_hex(o.key_out, &kout) || !parse_hex(o.key_in, &kin) || kout.size() != cipher_keymat_len(c) ||
        kin.size() != cipher_keymat_len(c)) {
        fmt::print(stderr, "nimbus-bench: --key-out/--key-in: {} hex bytes (key || salt) for {}\n",
                   cipher_keymat_len(c), short_name(c));
        return 2;
    }
    IpAddr us = *IpAddr::parse("198.51.100.1"), peer = *IpAddr::parse("198.51.100.2");
    NhId wan = adjacency(1, *MacAddr::parse("02:00:00:00:00:b1"));
    NhId lan = adjacency(1, *MacAddr::parse("02:00:00:00:00:b2"));
    TunnelSpec t;
    t.name = "bench";
    t.udp = false;
    t.mss_clamp = false;
    t.paths = {PathSpec{us, peer}};
    t.out = SaSpec{o.spi_out, c, false, uint32_t(o.window), kout, {}};
    t.in = {SaSpec{o.spi_in, c, false, uint32_t(o.window), kin, {}}};
    TunnelId id = tunnel_install(t, &err);
    if (id == kNoTunnel) {
        fmt::print(stderr, "nimbus-bench: tunnel: {}\n", err);
        return 1;
    }
    NhId tn = tunnel_nh(id);
    if (!fib_apply({FibOp{true, 0, Prefix(us, 32), kNhLocal}, FibOp{true, 0, Prefix(peer, 32), wan},
                    FibOp{true, 0, *Prefix::parse("10.1.0.0/16"), lan},
                    FibOp{true, 0, *Prefix::parse("10.2.0.0/16"), tn}},
                   &err)) {
        fmt::print(stderr, "nimbus-bench: routes: {}\n", err);
        return 1;
    }
    esp::SaIn* sa = esp::sa_in_get(o.spi_in);
    WorkerCtx& w = g->workers[0];
    uint16_t in = g->ports[0].id;
    rte_mbuf* ms[kBurst];
    // The PMD holds the whole pcap and hands it out in order, 32 packets a
    // burst; with a multiple of 32 packets in the file, a pass ends exactly
    // when the received count is a multiple of the file's packet count.
    uint64_t pass = 0;
    FILE* f = std::fopen(o.pcap.c_str(), "rb");
    if (!f) {
        fmt::print(stderr, "nimbus-bench: {}: cannot open\n", o.pcap);
        return 1;
    }
    uint8_t gh[24];
    if (std::fread(gh, 1, 24, f) != 24) {
        std::fclose(f);
        return 1;
    }
    uint8_t rh[16];
    while (std::fread(rh, 1, 16, f) == 16) {
        uint32_t caplen;
        std::memcpy(&caplen, rh + 8, 4);
        if (std::fseek(f, long(caplen), SEEK_CUR) != 0) break;
        pass++;
    }
    std::fclose(f);
    if (pass == 0 || pass % kBurst) {
        fmt::print(stderr, "nimbus-bench: the pcap must hold a multiple of {} packets (has {})\n", kBurst, pass);
        return 2;
    }
    PortCounters b0 = w.pc[0], b1 = w.pc[1];
    uint64_t hz = rte_get_tsc_hz(), cycles = 0, got = 0, resets = 0;
    uint64_t end = rte_rdtsc() + uint64_t(o.seconds * double(hz));
    std::vector<uint32_t> bursts;
    bursts.reserve(1 << 22);
    while (rte_rdtsc() < end) {
        uint64_t t0 = rte_rdtsc();
        uint16_t n = rte_eth_rx_burst(in, 0, ms, kBurst);
        process_rx(w, 0, ms, n);
        flush_tx(w);
        uint64_t dt = rte_rdtsc() - t0;
        cycles += dt;
        if (bursts.size() < bursts.capacity()) bursts.push_back(uint32_t(dt));
        got += n;
        if (o.decrypt && sa && got % pass == 0) {  // not timed: see the header
            sa->win.reset(sa->win.size(), sa->win.esn());
            resets++;
        }
    }
    PortCounters a0 = w.pc[0], a1 = w.pc[1];
    uint64_t fwd = a1.tx_packets - b1.tx_packets;
    uint64_t frame_bytes = o.decrypt ? a1.tx_bytes - b1.tx_bytes : a0.rx_bytes - b0.rx_bytes;
    uint64_t drops = 0;
    for (int k = 0; k < kDropCount; k++) {
        uint64_t d = a0.drops[k] + a1.drops[k] - b0.drops[k] - b1.drops[k];
        if (d) fmt::print(stderr, "nimbus-bench: drop {} {}\n", drop_name(k), d);
        drops += d;
    }
    uint64_t inner = o.decrypt ? frame_bytes - 14 * fwd : frame_bytes - 14 * got;
    std::sort(bursts.begin(), bursts.end());
    double secs = double(cycles) / double(hz);
    fmt::print(
        "{{\"bench\":\"esp\",\"mode\":\"pcap\",\"cipher\":\"{}\",\"dir\":\"{}\",\"pcap_packets\":{},\"packets\":{},"
        "\"forwarded\":{},\"drops\":{},\"window_resets\":{},\"mpps\":{:.3f},\"gbps\":{:.3f},\"cycles_per_packet\":{:.1f},"
        "\"cycles_per_burst_p50\":{},\"seconds\":{:.3f},\"tsc_hz\":{}}}\n",
        short_name(c), o.decrypt ? "decrypt" : "encrypt", pass, got, fwd, drops, resets, double(fwd) / secs / 1e6,
        double(inner) * 8 / secs / 1e9, got ? double(cycles) / double(got) : 0.0,
        bursts.empty() ? 0 : bursts[bursts.size() / 2], secs, hz);
    std::fflush(stdout);
    return drops ? 1 : 0;
}

void usage() {
    fmt::print(stderr,
               "usage: nimbus-bench esp [--seconds S] [--sizes 64,512,1420,imix] [--ciphers aes128gcm,aes256gcm,"
               "chacha20poly1305]\n"
               "                        [--tunnels N] [--encap esp|udp] [--window W] [--huge] [--firewall RULES]\n"
               "       nimbus-bench esp --pcap FILE --dir encrypt|decrypt --cipher C --key-out HEX --key-in HEX\n"
               "                        [--spi-out N] [--spi-in N] [--seconds S] [--window W]\n"
               "Prints one JSON line per measurement.\n");
}

}  // namespace

int esp_main(int argc, char** argv) {
    Opts o;
    Cipher pcap_cipher = Cipher::AesGcm256;
    static const option opts[] = {{"seconds", required_argument, nullptr, 's'},
                                  {"sizes", required_argument, nullptr, 'z'},
                                  {"ciphers", required_argument, nullptr, 'c'},
                                  {"cipher", required_argument, nullptr, 'C'},
                                  {"tunnels", required_argument, nullptr, 't'},
                                  {"encap", required_argument, nullptr, 'e'},
                                  {"window", required_argument, nullptr, 'w'},
                                  {"pcap", required_argument, nullptr, 'p'},
                                  {"dir", required_argument, nullptr, 'd'},
                                  {"key-out", required_argument, nullptr, 'K'},
                                  {"key-in", required_argument, nullptr, 'k'},
                                  {"spi-out", required_argument, nullptr, 'O'},
                                  {"spi-in", required_argument, nullptr, 'I'},
                                  {"huge", no_argument, nullptr, 'H'},
                                  {"firewall", required_argument, nullptr, 'F'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    optind = 1;
    try {
        while ((c = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
            switch (c) {
                case 's': o.seconds = std::stod(optarg); break;
                case 'z':
                    o.sizes.clear();
                    for (auto& s : split(optarg)) {
                        int v = s == "imix" ? kImix : std::stoi(s);
                        if (v != kImix && (v < 64 || v > 1420)) {
                            fmt::print(stderr, "nimbus-bench: sizes are inner IPv4 lengths 64..1420, or imix\n");
                            return 2;
                        }
                        o.sizes.push_back(v);
                    }
                    break;
                case 'c':
                    o.ciphers.clear();
                    for (auto& s : split(optarg)) {
                        Cipher x;
                        if (!parse_cipher(s, &x)) {
                            fmt::print(stderr, "nimbus-bench: unknown cipher {}\n", s);
                            return 2;
                        }
                        o.ciphers.push_back(x);
                    }
                    break;
                case 'C':
                    if (!parse_cipher(optarg, &pcap_cipher)) {
                        fmt::print(stderr, "nimbus-bench: unknown cipher {}\n", optarg);
                        return 2;
                    }
                    break;
                case 't': o.tunnels = std::stoi(optarg); break;
                case 'e': o.udp = std::string(optarg) == "udp"; break;
                case 'w': o.window = std::stoi(optarg); break;
                case 'p': o.pcap = optarg; break;
                case 'd': o.decrypt = std::string(optarg) == "decrypt"; break;
                case 'K': o.key_out = optarg; break;
                case 'k': o.key_in = optarg; break;
                case 'O': o.spi_out = uint32_t(std::stoul(optarg, nullptr, 0)); break;
                case 'I': o.spi_in = uint32_t(std::stoul(optarg, nullptr, 0)); break;
                case 'H': o.huge = true; break;
                case 'F': o.firewall = std::stoi(optarg); break;
                default: usage(); return 2;
            }
        }
    } catch (const std::exception&) {
        usage();
        return 2;
    }
    if (o.tunnels < 0 || o.tunnels > int(kMaxTunnels / 2) - 16) {
        fmt::print(stderr, "nimbus-bench: --tunnels 0..{}\n", kMaxTunnels / 2 - 16);
        return 2;
    }
    InitSpec s;
    s.prog = "nimbus-bench";
    s.file_prefix = fmt::format("nimbus-bench-esp-{}", getpid());
    s.workers = 1;
    for (auto& r : s.punt) r = PuntRate{100000, 1000};
    if (o.pcap.empty()) {
        // A and B: 2 x N tunnels, 2 x N next hops and routes.
        s.eal_args = {"--no-huge", "-m", o.tunnels > 1000 ? "3072" : "1024", "--log-level=error", "--no-telemetry",
                      "--lcores=(0-1)@(0-1)"};
        if (o.huge) s.eal_args[0] = "--in-memory";
        s.nvrfs = 4;
        s.mbufs = 8191;
        s.ipv4_tbl8 = 4096;
        for (int i = 0; i < 4; i++)
            s.ports.push_back(PortSpec{"p" + std::to_string(i), "net_ring" + std::to_string(i),
                                       i == 0 ? kVrfA : i == 1 ? kVrfUA : i == 2 ? kVrfUB : kVrfB, 1500});
    } else {
        // The timed loop runs on the main thread: pin it to CPU 1, where
        // ipsec-secgw -l 1 and nimbusd's worker run in scripts/bench/esp.sh.
        s.eal_args = {o.huge ? "--in-memory" : "--no-huge", "-m", "1024", "--log-level=error", "--no-telemetry",
                      "--lcores=0@1,1@0"};
        s.mbufs = 16383;
        s.ports = {PortSpec{"in", fmt::format("net_pcap0,rx_pcap={},infinite_rx=1", o.pcap), 0, 1500},
                   PortSpec{"out", "net_null0,no-rx=1", 0, 1500}};
    }
    std::string err;
    if (!init(s, &err)) {
        fmt::print(stderr, "nimbus-bench: {}\n", err);
        return 1;
    }
    for (int i = 0; i < g->nports; i++) rte_eth_dev_start(g->ports[i].id);
    int rc = o.pcap.empty() ? run_memory_lab(o) : run_pcap(o, pcap_cipher);
    shutdown();
    return rc;
}

}  // namespace nimbus::bench
