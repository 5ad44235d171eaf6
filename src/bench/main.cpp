// nimbus-bench: measures dataplane pipelines on one worker, in memory.
//
//   nimbus-bench fwd [--seconds S] [--sizes 64,1500] [--routes N]
//
// fwd: the forwarding pipeline (classify, FIB lookup, TTL, L2 rewrite, tx)
// of one worker between two net_ring ports, IPv4 and IPv6. The packets that
// come out of the second port are refreshed (TTL, MACs) and fed in again, so
// no packet is built per iteration. Prints one JSON object per result:
//   {"bench":"fwd","family":"ipv4","size":64,"mpps":...,"cycles_per_packet":...}
// "cycles" are TSC cycles spent in the pipeline (process_rx + flush_tx);
// "loop_mpps" includes the refresh and the ring I/O of the harness.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/dp.h"
#include "src/bench/esp.h"

using namespace nimbus;

namespace {

struct Opts {
    double seconds = 3;
    std::vector<int> sizes{64, 1500};
    int routes = 10000;
};

constexpr uint16_t kBurst = 32;
constexpr int kInFlight = 992;  // packets cycling through the pipeline (< the ring size)

void build_packet(rte_mbuf* m, bool v6, int size, const rte_ether_addr& dst_mac, uint32_t flow) {
    rte_pktmbuf_reset(m);
    int l3 = size - int(sizeof(rte_ether_hdr));
    char* d = rte_pktmbuf_append(m, uint16_t(size));
    std::memset(d, 0, size_t(size));
    auto* eth = reinterpret_cast<rte_ether_hdr*>(d);
    eth->dst_addr = dst_mac;
    eth->src_addr = rte_ether_addr{{0x02, 0, 0, 0, 0, 0x01}};
    if (!v6) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        ip->version_ihl = 0x45;
        ip->total_length = rte_cpu_to_be_16(uint16_t(l3));
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(0x0a010002);                          // 10.1.0.2
        ip->dst_addr = rte_cpu_to_be_32(0x0a800000 | (flow & 0x7fffff));      // 10.128.0.0/9
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        udp->src_port = rte_cpu_to_be_16(1024);
        udp->dst_port = rte_cpu_to_be_16(9);
        udp->dgram_len = rte_cpu_to_be_16(uint16_t(l3 - 20));
    } else {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->payload_len = rte_cpu_to_be_16(uint16_t(l3 - 40));
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
        uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        dst[5] = uint8_t(flow >> 8), dst[6] = uint8_t(flow);                  // 2001:db8:8000::/33
        std::memcpy(ip->src_addr, src, 16);
        std::memcpy(ip->dst_addr, dst, 16);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        udp->src_port = rte_cpu_to_be_16(1024);
        udp->dst_port = rte_cpu_to_be_16(9);
        udp->dgram_len = ip->payload_len;
    }
}

// Puts a forwarded packet back into its "just received" state.
inline void refresh(rte_mbuf* m, bool v6, const rte_ether_addr& dst_mac) {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = dst_mac;
    if (!v6) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        ip->time_to_live = 64;
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    } else {
        reinterpret_cast<rte_ipv6_hdr*>(eth + 1)->hop_limits = 64;
    }
}

bool install_routes(int nroutes, std::string* err) {
    // One resolved next hop out of port 1; many prefixes pointing at it, so
    // lookups touch a realistic table rather than one cache line.
    dp::NhId nh = dp::nh_alloc();
    dp::NhSpec s;
    s.type = dp::NhType::Adjacency;
    s.port = 1;
    s.resolved = true;
    s.dst_mac = *MacAddr::parse("02:00:00:00:00:02");
    dp::nh_set(nh, s);
    std::vector<dp::FibOp> ops;
    ops.push_back({true, 0, *Prefix::parse("10.128.0.0/9"), nh});
    ops.push_back({true, 0, *Prefix::parse("2001:db8:8000::/33"), nh});
    std::mt19937 rng(1);
    for (int i = 0; i < nroutes; i++) {
        // More-specifics inside both ranges (/24 and /48), same next hop.
        ops.push_back({true, 0, Prefix(IpAddr::v4(0x0a800000u | (rng() & 0x7fff00u)), 24), nh});
        IpAddr a = *IpAddr::parse("2001:db8:8000::");
        a.b[4] = uint8_t(0x80 | (rng() & 0x7f));
        a.b[5] = uint8_t(rng());
        ops.push_back({true, 0, Prefix(a, 48), nh});
    }
    return dp::fib_apply(ops, err);
}

void run_fwd(const Opts& o) {
    dp::WorkerCtx& w = dp::g->workers[0];
    rte_ether_addr mac0 = dp::g->ports[0].mac;
    for (bool v6 : {false, true}) {
        for (int size : o.sizes) {
            std::vector<rte_mbuf*> pkts(kInFlight);
            if (rte_pktmbuf_alloc_bulk(dp::g->pool, pkts.data(), kInFlight) != 0) {
                fmt::print(stderr, "nimbus-bench: out of mbufs\n");
                return;
            }
            std::mt19937 rng(7);
            for (int i = 0; i < kInFlight; i++) build_packet(pkts[size_t(i)], v6, size, mac0, rng());
            std::vector<rte_mbuf*> ready(pkts);  // packets waiting to be fed in
            uint64_t done = 0, pipe_cycles = 0;
            uint64_t hz = rte_get_tsc_hz();
            uint64_t start = rte_rdtsc(), end = start + uint64_t(o.seconds * double(hz));
            dp::PortCounters before = w.pc[1], before0 = w.pc[0];
            rte_mbuf* back[kBurst];
            while (rte_rdtsc() < end) {
                for (int k = 0; k < 64 && ready.size() >= kBurst; k++) {
                    rte_mbuf** b = ready.data() + ready.size() - kBurst;
                    uint64_t t0 = rte_rdtsc();
                    dp::process_rx(w, 0, b, kBurst);
                    dp::flush_tx(w);
                    pipe_cycles += rte_rdtsc() - t0;
                    ready.resize(ready.size() - kBurst);
                    done += kBurst;
                }
                uint16_t n;
                while ((n = rte_eth_rx_burst(dp::g->ports[1].id, 0, back, kBurst)) > 0)
                    for (uint16_t i = 0; i < n; i++) {
                        refresh(back[i], v6, mac0);
                        ready.push_back(back[i]);
                    }
            }
            uint64_t elapsed = rte_rdtsc() - start;
            uint64_t fwd = w.pc[1].tx_packets - before.tx_packets;
            uint64_t drops = 0;
            for (int k = 0; k < dp::kDropCount; k++) {
                uint64_t d = w.pc[0].drops[k] + w.pc[1].drops[k] - before0.drops[k] - before.drops[k];
                if (d) fmt::print(stderr, "drop {} {}\n", dp::drop_name(k), d);
                drops += d;
            }
            double secs = double(elapsed) / double(hz);
            fmt::print(
                "{{\"bench\":\"fwd\",\"family\":\"{}\",\"size\":{},\"routes\":{},\"packets\":{},\"forwarded\":{},"
                "\"drops\":{},\"mpps\":{:.3f},\"loop_mpps\":{:.3f},\"cycles_per_packet\":{:.1f},\"tsc_hz\":{}}}\n",
                v6 ? "ipv6" : "ipv4", size, o.routes * 2 + 2, done, fwd, drops,
                double(done) / (double(pipe_cycles) / double(hz)) / 1e6, double(done) / secs / 1e6,
                double(pipe_cycles) / double(done), hz);
            std::fflush(stdout);
            // Drain and free everything of this round.
            uint16_t n;
            while ((n = rte_eth_rx_burst(dp::g->ports[1].id, 0, back, kBurst)) > 0) ready.insert(ready.end(), back, back + n);
            for (auto* m : ready) rte_pktmbuf_free(m);
        }
    }
}

void usage() {
    fmt::print(stderr,
               "usage: nimbus-bench fwd [--seconds S] [--sizes 64,1500] [--routes N]\n"
               "       nimbus-bench ike [--seconds S] [--concurrency C] [--sites N] [--no-storm]\n"
               "       nimbus-bench esp ...   (src/bench/esp.cpp)\n"
               "       nimbus-bench aead ...  (src/bench/aead.cpp)\n"
               "Prints one JSON line per measurement.\n");
}

}  // namespace

int ike_bench(int argc, char** argv);  // ike.cpp

int main(int argc, char** argv) {
    if (argc >= 2 && std::string(argv[1]) == "ike") return ike_bench(argc - 1, argv + 1);
    if (argc >= 2 && std::string(argv[1]) == "esp") return nimbus::bench::esp_main(argc - 1, argv + 1);
    if (argc >= 2 && std::string(argv[1]) == "aead") return nimbus::bench::aead_main(argc - 1, argv + 1);
    if (argc < 2 || std::string(argv[1]) != "fwd") {
        usage();
        return 2;
    }
    Opts o;
    static const option opts[] = {{"seconds", required_argument, nullptr, 's'},
                                  {"sizes", required_argument, nullptr, 'z'},
                                  {"routes", required_argument, nullptr, 'r'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
        switch (c) {
            case 's': o.seconds = std::stod(optarg); break;
            case 'z': {
                o.sizes.clear();
                std::string s = optarg;
                size_t i = 0;
                while (i < s.size()) {
                    size_t j = s.find(',', i);
                    if (j == std::string::npos) j = s.size();
                    int v = std::stoi(s.substr(i, j - i));
                    if (v < 64 || v > 1514) {
                        fmt::print(stderr, "nimbus-bench: sizes are frame sizes 64..1514\n");
                        return 2;
                    }
                    o.sizes.push_back(v);
                    i = j + 1;
                }
                break;
            }
            case 'r': o.routes = std::stoi(optarg); break;
            default: usage(); return 2;
        }
    }
    dp::InitSpec s;
    s.prog = "nimbus-bench";
    s.eal_args = {"--no-huge", "-m", "1024", "--log-level=error", "--no-telemetry", "--lcores=(0-1)@(0-1)"};
    s.file_prefix = fmt::format("nimbus-bench-{}", getpid());
    s.workers = 1;
    s.mbufs = 8191;
    s.ports = {dp::PortSpec{"in", "net_ring0", 0, 1500}, dp::PortSpec{"out", "net_ring1", 0, 1500}};
    std::string err;
    if (!dp::init(s, &err)) {
        fmt::print(stderr, "nimbus-bench: {}\n", err);
        return 1;
    }
    for (int i = 0; i < dp::g->nports; i++) rte_eth_dev_start(dp::g->ports[i].id);
    if (!install_routes(o.routes, &err)) {
        fmt::print(stderr, "nimbus-bench: routes: {}\n", err);
        dp::shutdown();
        return 1;
    }
    run_fwd(o);
    dp::shutdown();
    return 0;
}
