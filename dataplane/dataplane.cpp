// EAL, ports, workers: bring-up and tear-down of the dataplane.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dataplane/dp.h"
#include "dataplane/esp/sa.h"

namespace nimbus::dp {

Dataplane* g = nullptr;

namespace {

const char* const kDropNames[] = {
#define NIMBUS_X(n, d) #n,
    NIMBUS_DP_DROPS(NIMBUS_X)
#undef NIMBUS_X
};
const char* const kDropHelp[] = {
#define NIMBUS_X(n, d) d,
    NIMBUS_DP_DROPS(NIMBUS_X)
#undef NIMBUS_X
};
const char* const kPuntNames[] = {"vrrp", "bgp", "arp_nd", "ike", "icmp", "other"};
static_assert(sizeof(kPuntNames) / sizeof(kPuntNames[0]) == kPuntClassCount);

bool has_arg(const std::vector<std::string>& a, std::initializer_list<const char*> names) {
    for (auto& s : a)
        for (auto* n : names)
            if (s == n || s.rfind(std::string(n) + "=", 0) == 0) return true;
    return false;
}

std::string eal_prefix(const std::vector<std::string>& a, const std::string& dflt) {
    for (size_t i = 0; i < a.size(); i++) {
        if (a[i].rfind("--file-prefix=", 0) == 0) return a[i].substr(14);
        if (a[i] == "--file-prefix" && i + 1 < a.size()) return a[i + 1];
    }
    return dflt;
}

bool setup_port(PortState& p, int nworkers, std::string* err) {
    uint16_t pid;
    std::string dev = p.spec.device.substr(0, p.spec.device.find(','));
    if (rte_eth_dev_get_port_by_name(dev.c_str(), &pid) != 0) {
        *err = fmt::format("port {}: device '{}' was not found by DPDK", p.spec.name, dev);
        return false;
    }
    p.id = pid;
    rte_eth_dev_info info;
    int r = rte_eth_dev_info_get(pid, &info);
    if (r != 0) {
        *err = fmt::format("port {}: cannot read device info: {}", p.spec.name, strerror(-r));
        return false;
    }
    p.driver = info.driver_name ? info.driver_name : "?";
    p.nrxq = uint16_t(std::max(1, std::min<int>(nworkers, info.max_rx_queues)));
    p.ntxq = uint16_t(std::max(1, std::min<int>(nworkers, info.max_tx_queues)));
    p.tx_shared = p.ntxq < nworkers;
    for (auto& l : p.txlock) rte_spinlock_init(&l);

    rte_eth_conf conf;
    std::memset(&conf, 0, sizeof conf);
    if (p.nrxq > 1 && info.flow_type_rss_offloads) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
    }
    if ((r = rte_eth_dev_configure(pid, p.nrxq, p.ntxq, &conf)) != 0) {
        *err = fmt::format("port {}: configure {} rx / {} tx queues: {}", p.spec.name, p.nrxq, p.ntxq,
                           strerror(-r));
        return false;
    }
    uint16_t nrxd = 1024, ntxd = 1024;
    rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrxd, &ntxd);
    int sock = rte_eth_dev_socket_id(pid);
    if (sock < 0) sock = int(rte_socket_id());
    for (uint16_t q = 0; q < p.nrxq; q++)
        if ((r = rte_eth_rx_queue_setup(pid, q, nrxd, unsigned(sock), nullptr, g->pool)) != 0) {
            *err = fmt::format("port {}: rx queue {}: {}", p.spec.name, q, strerror(-r));
            return false;
        }
    for (uint16_t q = 0; q < p.ntxq; q++)
        if ((r = rte_eth_tx_queue_setup(pid, q, ntxd, unsigned(sock), nullptr)) != 0) {
            *err = fmt::format("port {}: tx queue {}: {}", p.spec.name, q, strerror(-r));
            return false;
        }
    r = rte_eth_dev_set_mtu(pid, uint16_t(p.spec.mtu));
    (void)r;  // virtual devices may refuse; the port then keeps its own MTU
    rte_eth_macaddr_get(pid, &p.mac);
    return true;
}

}  // namespace

const char* drop_name(int i) { return i >= 0 && i < kDropCount ? kDropNames[i] : "?"; }
const char* drop_help(int i) { return i >= 0 && i < kDropCount ? kDropHelp[i] : "?"; }
const char* punt_class_name(int c) { return c >= 0 && c < kPuntClassCount ? kPuntNames[c] : "?"; }

void PortCounters::add(const PortCounters& o) {
    rx_packets += o.rx_packets;
    rx_bytes += o.rx_bytes;
    tx_packets += o.tx_packets;
    tx_bytes += o.tx_bytes;
    punted += o.punted;
    injected += o.injected;
    reassembled += o.reassembled;
    for (int i = 0; i < kDropCount; i++) drops[i] += o.drops[i];
}

bool init(const InitSpec& spec, std::string* err) {
    if (g) {
        *err = "dataplane already initialised";
        return false;
    }
    if (int(spec.ports.size()) > kMaxPorts || spec.nvrfs > kMaxVrfs || spec.workers > kMaxWorkers) {
        *err = "too many ports, VRFs or workers";
        return false;
    }
    g = new Dataplane();
    g->spec = spec;

    // ---- EAL arguments: the config's, then what we add unless it said so.
    std::vector<std::string> args{spec.prog};
    args.insert(args.end(), spec.eal_args.begin(), spec.eal_args.end());
    if (!has_arg(spec.eal_args, {"-l", "-c", "--lcores"})) {
        // Worker lcores float over all CPUs we may run on: several instances
        // share a small box (each sleeps when idle).
        unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
        args.push_back(fmt::format("--lcores=(0-{})@(0-{})", spec.workers, ncpu - 1));
    }
    if (!has_arg(spec.eal_args, {"--file-prefix", "--in-memory"}) && !spec.file_prefix.empty())
        args.push_back("--file-prefix=" + spec.file_prefix);
    bool any_pci = false;
    for (auto& p : spec.ports) {
        bool vdev = p.device.rfind("net_", 0) == 0;
        if (vdev) args.push_back("--vdev=" + p.device);
        else {
            args.push_back("-a");
            args.push_back(p.device);
            any_pci = true;
        }
    }
    if (!any_pci && !has_arg(spec.eal_args, {"--no-pci", "-a", "-b", "--allow", "--block"}))
        args.push_back("--no-pci");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(int(args.size()), argv.data()) < 0) {
        *err = fmt::format("EAL initialisation failed: {}", rte_strerror(rte_errno));
        delete g;
        g = nullptr;
        return false;
    }
    g->tsc_hz = rte_get_tsc_hz();
    unsigned avail = rte_lcore_count();
    if (avail < unsigned(spec.workers) + 1) {
        *err = fmt::format("{} worker(s) need {} lcores, EAL has {}", spec.workers, spec.workers + 1, avail);
        shutdown();
        return false;
    }

    auto fail = [&](const std::string& m) {
        *err = m;
        shutdown();
        return false;
    };

    // ---- buffers: big enough for the largest MTU in one segment.
    int max_mtu = 1500;
    for (auto& p : spec.ports) max_mtu = std::max(max_mtu, p.mtu);
    uint32_t room = uint32_t(RTE_PKTMBUF_HEADROOM + std::max(2048, max_mtu + 64));
    g->pool = rte_pktmbuf_pool_create("nimbus_pkt", unsigned(spec.mbufs), 256, kMbufPrivSize,
                                      uint16_t(room), int(rte_socket_id()));
    if (!g->pool) return fail(fmt::format("mbuf pool of {} buffers: {}", spec.mbufs, rte_strerror(rte_errno)));

    // ---- RCU: one thread id per worker.
    size_t qsz = rte_rcu_qsbr_get_memsize(uint32_t(spec.workers));
    g->qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("nimbus_qsbr", qsz, RTE_CACHE_LINE_SIZE));
    if (!g->qsbr || rte_rcu_qsbr_init(g->qsbr, uint32_t(spec.workers)) != 0)
        return fail("RCU state allocation failed");

    if (!fib_init(err)) {
        shutdown();
        return false;
    }

    // ---- workers
    g->nworkers = spec.workers;
    g->workers = static_cast<WorkerCtx*>(
        rte_zmalloc("nimbus_workers", sizeof(WorkerCtx) * size_t(spec.workers), RTE_CACHE_LINE_SIZE));
    if (!g->workers) return fail("worker context allocation failed");
    unsigned lc = rte_get_next_lcore(-1, 1, 0);
    for (int w = 0; w < spec.workers; w++, lc = rte_get_next_lcore(lc, 1, 0)) {
        WorkerCtx& c = *new (&g->workers[w]) WorkerCtx();
        c.index = w;
        c.lcore = lc;
        c.info.lcore = int(lc);
        auto ring = [&](const char* what, unsigned size, unsigned flags) {
            return rte_ring_create(fmt::format("nb_{}_{}", what, w).c_str(), size, int(rte_socket_id()), flags);
        };
        c.punt_hi = ring("punthi", 1024, RING_F_SP_ENQ | RING_F_SC_DEQ);
        c.punt_lo = ring("puntlo", 2048, RING_F_SP_ENQ | RING_F_SC_DEQ);
        c.inject = ring("inject", 2048, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (!c.punt_hi || !c.punt_lo || !c.inject) return fail("ring allocation failed");
        policers_init(c);
        c.flows = new acl::FlowTable(uint32_t(std::max(spec.fw_flows, 64)));
        c.fwc = new acl::Counters();
        rte_rcu_qsbr_thread_register(g->qsbr, unsigned(w));
    }

    // ---- ESP: SA tables, one crypto engine per worker (self-tested)
    if (!esp::init(err)) {
        shutdown();
        return false;
    }

    // ---- ports
    for (auto& ps : spec.ports) {
        PortState& p = g->ports[g->nports++];
        p.spec = ps;
        if (!setup_port(p, spec.workers, err)) {
            shutdown();
            return false;
        }
    }
    // Queue assignment: rx queue q of each port goes to worker q % workers;
    // worker w transmits on queue w % ntxq (locked when shared).
    for (int i = 0; i < g->nports; i++) {
        PortState& p = g->ports[i];
        for (uint16_t q = 0; q < p.nrxq; q++) {
            WorkerCtx& c = g->workers[q % g->nworkers];
            c.rxq[c.nrxq++] = RxQueue{uint16_t(i), q};
        }
        for (int w = 0; w < g->nworkers; w++) g->workers[w].txq[i] = uint16_t(w % p.ntxq);
    }

    g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->efd < 0) return fail("eventfd failed");
    return true;
}

bool start(std::string* err) {
    for (int i = 0; i < g->nports; i++) {
        int r = rte_eth_dev_start(g->ports[i].id);
        if (r != 0) {
            *err = fmt::format("port {}: start failed: {}", g->ports[i].spec.name, strerror(-r));
            return false;
        }
        rte_eth_promiscuous_enable(g->ports[i].id);  // HA adds virtual MACs; we filter in software
    }
    g->stop.store(false);
    for (int w = 0; w < g->nworkers; w++) {
        int r = rte_eal_remote_launch(worker_main, &g->workers[w], g->workers[w].lcore);
        if (r != 0) {
            *err = fmt::format("worker {} launch on lcore {} failed", w, g->workers[w].lcore);
            g->stop.store(true);
            rte_eal_mp_wait_lcore();
            return false;
        }
    }
    g->started = true;
    return true;
}

bool running() { return g && g->started; }

void shutdown() {
    if (!g) return;
    std::string prefix = eal_prefix(g->spec.eal_args, g->spec.file_prefix);
    bool eal_up = g->tsc_hz != 0;
    if (g->started) {
        // Frames handed to inject() just before (an HA priority-0 advert on
        // the way out) still leave: a worker that dequeued them transmits
        // them in the same loop iteration, before it looks at `stop`.
        uint64_t until = rte_get_timer_cycles() + rte_get_timer_hz() / 10;
        for (int w = 0; w < g->nworkers; w++)
            while (!rte_ring_empty(g->workers[w].inject) && rte_get_timer_cycles() < until) rte_delay_us_sleep(100);
        g->stop.store(true);
        rte_eal_mp_wait_lcore();
        g->started = false;
    }
    if (eal_up) {
        for (int i = 0; i < g->nports; i++) {
            rte_eth_dev_stop(g->ports[i].id);
            rte_eth_dev_close(g->ports[i].id);
        }
        // Packets still in rings go back to the pool before it goes.
        for (int w = 0; w < g->nworkers && g->workers; w++) {
            WorkerCtx& c = g->workers[w];
            for (rte_ring* r : {c.punt_hi, c.punt_lo, c.inject}) {
                if (!r) continue;
                void* m;
                while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
                rte_ring_free(r);
            }
            for (int p = 0; p < kMaxPorts; p++)
                for (int k = 0; k < c.txn[p]; k++) rte_pktmbuf_free(c.txb[p][k]);
        }
        esp::fini();
        fib_fini();
        for (int i = 0; i < g->nports; i++) delete g->ports[i].extra_macs.exchange(nullptr);
        for (auto& f : g->fw) delete f.exchange(nullptr);
        for (int w = 0; w < g->nworkers && g->workers; w++) {
            delete g->workers[w].flows;
            delete g->workers[w].fwc;
        }
        rte_free(g->workers);
        rte_free(g->qsbr);
        if (g->cap_ring) {
            g->cap_on.store(false);
            void* c;
            while (rte_ring_dequeue(g->cap_ring, &c) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(c));
            rte_ring_free(g->cap_ring);
        }
        rte_mempool_free(g->cap_pool);
        rte_mempool_free(g->pool);
        rte_eal_cleanup();
        // EAL leaves its runtime folder behind; we are the only process
        // using this prefix, so nothing stale stays (telemetry socket, config).
        if (!prefix.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(std::filesystem::path("/var/run/dpdk") / prefix, ec);
        }
    }
    if (g->efd >= 0) close(g->efd);
    delete g;
    g = nullptr;
}

int port_count() { return g ? g->nports : 0; }

PortInfo port_info(int port) {
    PortInfo i;
    if (!g || port < 0 || port >= g->nports) return i;
    PortState& p = g->ports[port];
    i.name = p.spec.name;
    i.device = p.spec.device;
    i.driver = p.driver;
    std::memcpy(i.mac.b.data(), p.mac.addr_bytes, 6);
    rte_eth_link link;
    if (rte_eth_link_get_nowait(p.id, &link) == 0) {
        i.link_up = link.link_status == RTE_ETH_LINK_UP;
        i.speed_mbps = link.link_speed;
    }
    uint16_t mtu = 0;
    i.mtu = rte_eth_dev_get_mtu(p.id, &mtu) == 0 ? mtu : p.spec.mtu;
    i.vrf = p.spec.vrf;
    i.rxq = p.nrxq;
    i.txq = p.ntxq;
    rte_eth_stats st;
    if (rte_eth_stats_get(p.id, &st) == 0) {
        i.hw_rx_missed = st.imissed;
        i.hw_rx_errors = st.ierrors;
        i.hw_tx_errors = st.oerrors;
        i.rx_nombuf = st.rx_nombuf;
    }
    return i;
}

bool port_set_macs(int port, const std::vector<MacAddr>& macs, std::string* err) {
    if (!g || port < 0 || port >= g->nports) {
        *err = fmt::format("no port {}", port);
        return false;
    }
    if (macs.size() > size_t(kMaxPortMacs)) {
        *err = fmt::format("port {}: at most {} extra MAC addresses", g->ports[port].spec.name, kMaxPortMacs);
        return false;
    }
    MacList* next = nullptr;
    if (!macs.empty()) {
        next = new MacList();
        for (auto& m : macs) std::memcpy(next->mac[next->n++].addr_bytes, m.b.data(), 6);
    }
    const MacList* old = g->ports[port].extra_macs.exchange(next, std::memory_order_acq_rel);
    if (old) {
        synchronize();  // no worker still reads the old list
        delete old;
    }
    return true;
}

std::vector<MacAddr> port_macs(int port) {
    std::vector<MacAddr> out;
    if (!g || port < 0 || port >= g->nports) return out;
    const MacList* x = g->ports[port].extra_macs.load(std::memory_order_acquire);
    for (uint32_t i = 0; x && i < x->n; i++) {
        MacAddr m;
        std::memcpy(m.b.data(), x->mac[i].addr_bytes, 6);
        out.push_back(m);
    }
    return out;
}

int worker_count() { return g ? g->nworkers : 0; }

WorkerInfo worker_info(int w) {
    if (!g || w < 0 || w >= g->nworkers) return {};
    return g->workers[w].info;
}

PortCounters port_counters(int port, int worker) {
    PortCounters c;
    if (!g || port < 0 || port >= kMaxPorts) return c;
    for (int w = 0; w < g->nworkers; w++)
        if (worker < 0 || worker == w) c.add(g->workers[w].pc[port]);
    return c;
}

PuntCounters punt_counters(int worker) {
    PuntCounters c;
    if (!g) return c;
    for (int w = 0; w < g->nworkers; w++) {
        if (worker >= 0 && worker != w) continue;
        auto& s = g->workers[w].punt;
        for (int k = 0; k < kPuntClassCount; k++) {
            c.punted[k] += s.punted[k];
            c.policed[k] += s.policed[k];
            c.ring_full[k] += s.ring_full[k];
        }
    }
    return c;
}

}  // namespace nimbus::dp
