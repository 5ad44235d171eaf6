#include "control/daemon/daemon.h"

#include <net/if.h>  // before linux/if_tun.h (libc-compat)
#include <linux/if_tun.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include <fmt/format.h>

#include "control/config/diff.h"
#include "control/config/plan.h"
#include "control/daemon/sdnotify.h"
#include "control/daemon/show.h"
#include "src/common/files.h"
#include "control/hostif/guard.h"
#include "src/common/clock.h"
#include "src/common/log.h"
#include "src/common/memory.h"

namespace nimbus {

namespace {
constexpr size_t kHeldPerNeighbor = 4;
constexpr size_t kHeldTotal = 1024;
constexpr uint64_t kHeldTimeoutNs = 3'000'000'000ull;
constexpr uint64_t kResolveRetryNs = 1'000'000'000ull;
constexpr int kApplyNice = 10;  // a config change being prepared (apply_text)
}  // namespace

Daemon::Daemon(config::Config cfg, std::shared_ptr<const config::Tree> tree)
    : cfg_(std::move(cfg)), running_tree_(std::move(tree)) {}

Daemon::~Daemon() { tear_down(); }

int Daemon::port_index(const std::string& name) const {
    for (size_t i = 0; i < cfg_.ports.size(); i++)
        if (cfg_.ports[i].name == name) return int(i);
    return -1;
}

int Daemon::tap_ifindex(int port) const {
    return port >= 0 && size_t(port) < taps_.size() && taps_[size_t(port)] ? taps_[size_t(port)]->ifindex() : 0;
}

// The veths (or other kernel interfaces) that af_packet/af_xdp ports sit on
// must be up, and the kernel must not speak on them itself (no IPv6
// autoconfiguration): the box's addresses live on the host interfaces.
bool Daemon::prepare_underlay(std::string* err) {
    std::vector<std::string> guarded;
    for (auto& p : cfg_.ports) {
        std::string iface = p.device_arg("iface");
        underlay_.push_back(iface);
        if (iface.empty()) continue;
        int idx = hostif::ifindex_of(iface);
        if (!idx) {
            *err = fmt::format("{}:{}:{}: ports.{}: interface '{}' does not exist", cfg_.file, p.where.line,
                               p.where.col, p.name, iface);
            return false;
        }
        hostif::sysctl_set(fmt::format("net/ipv6/conf/{}/disable_ipv6", iface), "1");
        if (p.device.rfind("net_af_packet", 0) == 0) guarded.push_back(iface);
        std::string e;
        if (!nl_.link_set(idx, true, std::nullopt, std::nullopt, &e)) {
            *err = fmt::format("bringing up {} for port {}: {}", iface, p.name, e);
            return false;
        }
    }
    if (!hostif::guard_underlay(guard_table(), guarded, err)) return false;
    guarded_ = !guarded.empty();
    return true;
}

std::string Daemon::guard_table() const {
    std::string t = "nimbus_";
    for (char c : cfg_.node.name) t += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return t;
}

bool Daemon::create_host_interfaces(std::string* err) {
    for (size_t i = 0; i < cfg_.ports.size(); i++) {
        auto& p = cfg_.ports[i];
        auto tap = std::make_unique<hostif::Tap>();
        if (!tap->open(p.name, err)) return false;
        dp::PortInfo pi = dp::port_info(int(i));
        std::string e;
        // linux-cp style: the kernel interface carries the port's MAC, so
        // what the kernel answers (ARP, ND) names the port.
        if (!nl_.link_set(tap->ifindex(), std::nullopt, p.mtu, pi.mac, &e)) {
            *err = fmt::format("host interface {}: {}", p.name, e);
            return false;
        }
        // Transit traffic must never bypass the dataplane through the kernel.
        hostif::sysctl_set(fmt::format("net/ipv4/conf/{}/forwarding", p.name), "0");
        hostif::sysctl_set(fmt::format("net/ipv6/conf/{}/forwarding", p.name), "0");
        hostif::sysctl_set(fmt::format("net/ipv6/conf/{}/accept_ra", p.name), "0");
        // The host interface mirrors a port whose addresses the config owns:
        // no duplicate address detection, so neighbour discovery (from the
        // link-local address too) works the moment the port is up.
        hostif::sysctl_set(fmt::format("net/ipv6/conf/{}/accept_dad", p.name), "0");
        if (!nl_.link_set(tap->ifindex(), true, std::nullopt, std::nullopt, &e)) {
            *err = fmt::format("host interface {} up: {}", p.name, e);
            return false;
        }
        for (auto& a : p.addresses)
            if (!nl_.addr_add(tap->ifindex(), a, &e)) {
                *err = fmt::format("host interface {}: address {}: {}", p.name, a.str(), e);
                return false;
            }
        ifindex_port_[tap->ifindex()] = int(i);
        int fd = tap->fd();
        loop_.add_fd(fd, EPOLLIN, [this, i](uint32_t) { on_tap(int(i)); });
        taps_.push_back(std::move(tap));
        link_up_.push_back(true);
    }
    return true;
}

void Daemon::install_routes() {
    std::vector<int> pv;
    std::vector<std::string> pn;
    for (auto& p : cfg_.ports) {
        pv.push_back(cfg_.vrf_index(p.vrf));
        pn.push_back(p.name);
    }
    rib_.set_ports(pv, pn);
    using routing::NextHop;
    using routing::Route;
    using routing::Source;
    for (size_t i = 0; i < cfg_.ports.size(); i++) {
        int vrf = pv[i];
        for (auto& a : cfg_.ports[i].addresses) {
            rib_.add(vrf, Route{a.subnet(), Source::Connected, 0, NextHop{NextHop::Kind::Glean, int(i), {}}, 0});
            rib_.add(vrf, Route{Prefix(a.addr, a.addr.bits()), Source::Local, 0,
                                NextHop{NextHop::Kind::Local, -1, {}}, 0});
            if (a.addr.is_v4() && a.len <= 30) {
                // The subnet's broadcast address is for the box too.
                uint32_t bc = a.subnet().addr.v4_host() | (0xffffffffu >> a.len);
                rib_.add(vrf, Route{Prefix(IpAddr::v4(bc), 32), Source::Local, 0,
                                    NextHop{NextHop::Kind::Local, -1, {}}, 0});
            }
        }
    }
    for (auto& r : cfg_.routes) static_route(r, true);
    std::string err;
    if (!rib_.commit(&err)) LOG_ERROR("rib", "event=commit_failed error=\"{}\"", err);
    // What the kernel already knows about neighbours on our interfaces.
    std::vector<hostif::NeighEvent> ns;
    if (nl_.neigh_dump(&ns, &err))
        for (auto& n : ns) {
            auto it = ifindex_port_.find(n.ifindex);
            if (it != ifindex_port_.end() && n.usable()) rib_.neighbor(it->second, n.addr, n.mac);
        }
    if (!rib_.commit(&err)) LOG_ERROR("rib", "event=commit_failed error=\"{}\"", err);
}

bool Daemon::bring_up(std::string* err) {
    // The running config's redacted text (`config show running`, the
    // history) is emitted from its document on a thread of its own while the
    // dataplane and the tunnels come up: 1-2 s at 100,000 tunnels.
    std::future<std::string> redacted;
    if (running_tree_)
        redacted = std::async(std::launch::async, [doc = running_tree_] { return config::redact(*doc); });
    if (!nl_.open(err)) return false;
    if (!prepare_underlay(err)) return false;

    dp::InitSpec s;
    s.eal_args = cfg_.dataplane.eal;
    s.file_prefix = "nimbus-" + cfg_.node.name;
    s.workers = cfg_.dataplane.workers;
    s.idle_sleep_us = cfg_.dataplane.idle_sleep_us;
    s.mbufs = cfg_.dataplane.mbufs;
    s.rx_burst = cfg_.dataplane.rx_burst;
    s.nvrfs = int(cfg_.vrfs.size());
    s.ipv4_tbl8 = cfg_.dataplane.ipv4_tbl8;
    s.ipv6_routes = cfg_.dataplane.ipv6_routes;
    s.ipv6_tbl8 = cfg_.dataplane.ipv6_tbl8;
    s.frag_flows = cfg_.dataplane.reassembly_flows;
    s.frag_timeout_ms = cfg_.dataplane.reassembly_timeout_ms;
    s.fw_flows = cfg_.dataplane.firewall_flows;
    for (int c = 0; c < dp::kPuntClassCount; c++)
        s.punt[c] = dp::PuntRate{cfg_.dataplane.punt[c].pps, cfg_.dataplane.punt[c].burst};
    for (auto& p : cfg_.ports) s.ports.push_back(dp::PortSpec{p.name, p.device, cfg_.vrf_index(p.vrf), p.mtu});
    if (!dp::init(s, err)) return false;

    LOG_INFO("daemon", "event=crypto path=\"{}\" self_test=passed", dp::crypto_describe());
    if (!create_host_interfaces(err)) return false;
    install_routes();
    // The firewall before any tunnel can carry traffic.
    if (!firewall_.apply(cfg_, err)) return false;
    if (!tunnels_.install(cfg_, rib_, err)) return false;
    if (!rib_.commit(err)) return false;
    if (!icmp_.open()) LOG_WARN("hostif", "event=icmp_socket_failed error=\"{}\"", strerror(errno));

    if (cfg_.routing && !start_frr(err)) return false;

    // IKE drives the ESP dataplane: tunnels, SAs and their routes.
    ike_sink_ = std::make_unique<ike::DataplaneSink>(rib_, [this](const IpAddr& a) {
        for (auto& p : cfg_.ports)
            for (auto& pa : p.addresses)
                if (pa.addr == a) return cfg_.vrf_index(p.vrf);
        // An HA virtual IP: the port whose subnet holds it.
        for (auto& p : cfg_.ports)
            for (auto& pa : p.addresses)
                if (cfg_.ha && pa.addr.family == a.family && pa.subnet().contains(a)) return cfg_.vrf_index(p.vrf);
        return 0;
    });
    ike_ = std::make_unique<ike::Service>(loop_, *ike_sink_);
    ike_->set_offered([this](int vrf) { return frr_ ? frr_->offered(vrf) : std::vector<Prefix>{}; });
    if (!ike_->start(cfg_, err)) return false;

    if (!read_file(cfg_.file, &running_text_)) running_text_.clear();
    running_version_ = config::hash(running_text_);
    // The document is main()'s parse of that file (the next apply diffs against it).
    running_redacted_ = redacted.valid() ? redacted.get() : config::redact(running_text_);
    remember(running_text_, running_version_, "boot");
    save_history(running_redacted_, running_version_);
    bridge_ = std::make_unique<control::Bridge>(loop_);
    has_ike_ = ike_ != nullptr;
    register_commands();
    cli_ = std::make_unique<mgmt::CliServer>(loop_, reg_);
    if (!cli_->listen(cfg_.mgmt.socket, err)) return false;
    if (!cfg_.mgmt.api.listen.empty() || !cfg_.mgmt.metrics_listen.empty()) {
        mgmt::ApiHooks hooks;
        hooks.status = [this] { return show::status_json(*this, reg_); };
        hooks.running_config = [this] { return running_redacted_; };
        hooks.apply = [this](const std::string& text, const std::string& who) {
            return apply_text(text, "api:PUT /v1/config", "api:" + who, false);
        };
        api_ = std::make_unique<mgmt::HttpApi>(loop_, reg_, metrics_, hooks);
        mgmt::ApiConfig ac{cfg_.mgmt.api.listen,    cfg_.mgmt.api.cert,   cfg_.mgmt.api.key,
                           cfg_.mgmt.api.client_ca, cfg_.mgmt.api.admins, cfg_.mgmt.api.readers,
                           cfg_.mgmt.metrics_listen};
        if (!api_->start(ac, err)) return false;
    }

    // Events: netlink, punted packets, signals, housekeeping.
    loop_.add_fd(nl_.event_fd(), EPOLLIN, [this](uint32_t) { on_netlink(); });
    loop_.add_fd(dp::punt_eventfd(), EPOLLIN, [this](uint32_t) { drain_punts(); });
    loop_.set_pre_sleep([] { return dp::punt_arm(); }, [this] { drain_punts(); });
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigfd_ = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    loop_.add_fd(sigfd_, EPOLLIN, [this](uint32_t) {
        signalfd_siginfo si;
        while (read(sigfd_, &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGHUP) {
                reload();
                continue;
            }
            LOG_INFO("daemon", "event=signal signal={} action=shutdown", strsignal(int(si.ssi_signo)));
            stop_gracefully();
        }
    });
    loop_.every_ms(100, [] { dp::maintenance(); });
    loop_.every_ms(200, [this] { tunnels_.poll_events(); });
    loop_.every_ms(500, [this] { sweep_held(); });
    loop_.every_ms(1000, [this] { poll_links(); });

    if (!dp::start(err)) return false;
    if (!ha_start(err)) return false;
    ha_wire();
    started_ = wall_s();
    // Under systemd: ready now, and a watchdog ping only while every worker
    // is still making progress, so a wedged dataplane gets restarted too.
    if (uint64_t wd = sd_watchdog_usec()) {
        loop_.every_ms(std::max<uint64_t>(wd / 2000, 100), [this] {
            bool alive = true;
            for (int w = 0; w < dp::worker_count(); w++) {
                uint64_t loops = dp::worker_info(w).loops;
                if (size_t(w) >= worker_loops_.size()) worker_loops_.push_back(0);
                alive = alive && loops != worker_loops_[size_t(w)];
                worker_loops_[size_t(w)] = loops;
            }
            if (alive) sd_notify_msg("WATCHDOG=1");
            else LOG_ERROR("daemon", "event=watchdog_withheld reason=\"a worker made no progress\"");
        });
    }
    sd_notify_msg("READY=1");
    return true;
}

// SIGHUP: re-read the config file, with the same rules as an apply, on a
// helper thread (the parse and the plan take seconds at 20,000 tunnels).
void Daemon::reload() {
    std::string text;
    if (!read_file(cfg_.file, &text)) {
        LOG_ERROR("config", "event=reload_rejected error=\"cannot read {}\"", cfg_.file);
        return;
    }
    auto open = hold_open();
    if (!open) return;
    std::string file = cfg_.file;
    std::thread([this, open, text = std::move(text), file] { apply_text(text, file, "sighup", false); }).detach();
}

// Validates a config text and applies what changed, as one transaction
// (SIGHUP, `nimbus config apply|rollback`, PUT /v1/config). The plan
// (control/config/plan.h) lists the operations; they run section by section
// (routes, static tunnels, IKE, HA, routing) and touch only what changed:
// other tunnels keep their SAs, counters and uptime. If a step fails, the
// steps done so far are undone in reverse order and the running config
// stays what it was. Invalid configs never replace the running one.
//
// Threads: everything that only reads - parsing, the diff, the plan, the IKE
// policy with its certificates and CRLs, the redacted copy - runs on the
// caller's thread (the CLI's writer, the HTTP thread, the SIGHUP helper);
// the control thread, where VRRP adverts, IKE and ZAPI wait meanwhile, runs
// only the steps (commit()). One change at a time (apply_mu_); the running
// config, its text and the history change only in a commit, on the control
// thread and under apply_mu_, so holding apply_mu_ is enough to read them
// from another thread.
nlohmann::json Daemon::apply_text(const std::string& text, const std::string& name, const std::string& who,
                                  bool dry_run) {
    std::unique_lock<std::mutex> lk(apply_mu_, std::defer_lock);
    if (loop_.in_loop_thread()) {
        // The control thread cannot wait for an apply that waits for it.
        if (!lk.try_lock())
            return {{"http", 409}, {"applied", false}, {"error", "another config change is in progress; try again"}};
    } else {
        lk.lock();
    }
    auto open = hold_open();
    if (!open) return {{"http", 503}, {"applied", false}, {"error", "nimbusd is stopping; nothing applied"}};
    // However the apply ends, what preparing it freed goes back to the
    // system (src/common/memory.h), after everything below is gone: its
    // transient memory (yaml-cpp's tree of 100,000 tunnels alone is 1.4 GB)
    // stayed resident, ~1.6 GB more after each of the first applies. On a
    // thread of its own: a trim took up to 0.5 s, which the client need not
    // wait for. (An applied change has its own thread, below, that does it.)
    struct GiveBack {
        bool on = true;
        ~GiveBack() {
            if (on) std::thread([] { give_back_memory("apply"); }).detach();
        }
    } give_back;
    // Preparing is background work: at a lower priority than the control
    // thread it runs beside (the CPUs are shared with the workers too).
    struct Nice {
        int tid = -1, was = 0;
        Nice(bool on) {
            if (!on) return;
            tid = int(gettid());
            errno = 0;
            was = getpriority(PRIO_PROCESS, id_t(tid));
            if (errno != 0 || setpriority(PRIO_PROCESS, id_t(tid), std::max(was, kApplyNice)) != 0) tid = -1;
        }
        ~Nice() {
            if (tid >= 0) setpriority(PRIO_PROCESS, id_t(tid), was);
        }
    } nice(!loop_.in_loop_thread());

    auto tx = std::make_shared<Txn>();
    tx->text = text;
    tx->who = who;
    tx->version = config::hash(text);
    auto res = config::parse(text, name);
    if (!res.ok()) {
        for (auto& e : res.errors) LOG_ERROR("config", "event=apply_rejected source={} error=\"{}\"", who, e);
        audit(who, "rejected", tx->version, {});
        return {{"http", 422}, {"applied", false}, {"errors", res.errors}};
    }
    tx->next = std::move(*res.config);
    tx->next.file = cfg_.file;
    tx->tree = res.tree;
    tx->changes = running_tree_ ? config::diff(*running_tree_, *tx->tree) : config::diff(running_text_, text);
    tx->plan = config::plan(cfg_, tx->next);
    // Certificates, keys and CRLs are files: an apply reads them again even
    // when their names did not change (a new CRL is pushed, then SIGHUP).
    bool pki_files = std::any_of(tx->next.clouds.begin(), tx->next.clouds.end(),
                                 [](const config::Cloud& c) { return c.pki; });
    tx->ike_step = has_ike_ && (tx->plan.ike || pki_files);
    if (!tx->plan.restart.empty()) {
        std::string why = fmt::format("changes to {} need a restart; firewall, routes, manual_sas, clouds, ike, "
                                      "initiate, ha and routing apply live",
                                      fmt::join(tx->plan.restart, ", "));
        LOG_WARN("config", "event=apply_refused source={} reason=\"{}\"", who, why);
        audit(who, "refused", tx->version, tx->changes);
        return {{"http", 409}, {"applied", false}, {"error", why}, {"diff", tx->changes}};
    }
    // IKE: the new clouds must load (certificates, keys and CRLs are read
    // again even when their file names did not change) before anything is
    // applied; the policy built here is the one the step installs.
    std::vector<std::string> ike_errors;
    if (tx->ike_step && !ike::build_policy(tx->next, &tx->policy, &ike_errors)) {
        for (auto& e : ike_errors) LOG_ERROR("config", "event=apply_rejected source={} error=\"{}\"", who, e);
        audit(who, "rejected", tx->version, tx->changes);
        return {{"http", 422}, {"applied", false}, {"errors", ike_errors}};
    }
    tx->ops = tx->plan.ops();
    if (tx->ike_step && !tx->plan.ike) tx->ops.push_back("ike: certificates, keys and CRLs read again");
    nlohmann::json unchanged = {
        {"http", 200}, {"applied", false}, {"diff", tx->changes}, {"plan", tx->ops}, {"version", tx->version}};
    if (dry_run) return unchanged;
    tx->redacted = config::redact(*tx->tree);
    // The copies the commit keeps, made here: at 100,000 tunnels the texts
    // are 35 MB each, and copying them there cost the control thread up to
    // 100 ms of page faults.
    tx->for_running = tx->redacted;
    tx->for_history = text;
    tx->nothing = tx->plan.empty() && !tx->ike_step;  // same config (comments or layout may differ)
    if (!tx->nothing) tx->old = cfg_;  // the copy for the undo steps, made here rather than there

    // The control thread's part. A commit still queued when nimbusd stops
    // is dropped (close()), and nothing was applied.
    // (Weakly: what the transaction holds - the old config and its
    // document after the swap - is freed here, never on the control thread.)
    auto r = bridge_->call<nlohmann::json>(
        [this, w = std::weak_ptr<Txn>(tx)] {
            auto t = w.lock();
            return t ? commit(*t) : nlohmann::json{{"http", 503}, {"applied", false}, {"error", "abandoned"}};
        },
        std::chrono::hours(1));
    if (!r) return {{"http", 503}, {"applied", false}, {"error", "nimbusd is stopping; nothing applied"}};
    if (tx->nothing) return unchanged;
    if (!r->value("applied", false)) {
        audit(who, "failed", tx->version, tx->changes);
        return *r;
    }
    // Files, back on this thread: the history's redacted copy, the -c file
    // (so a restart comes up with what was applied; written atomically;
    // SIGHUP read it from there already), the audit log.
    save_history(tx->redacted, tx->version);
    std::string e;
    if (who != "sighup" && !write_file_atomic(cfg_.file, text, &e))
        LOG_ERROR("config", "event=save_failed file={} error=\"{}\"", cfg_.file, e);
    LOG_INFO("config", "event=applied source={} version={} steps={} ops={} control_thread_ms={:.1f}", who,
             tx->version.substr(0, 12), r->value("steps", 0), tx->ops.size(),
             r->value("control_thread_ms", 0.0));
    audit(who, "applied", tx->version, tx->changes);
    r->erase("steps");
    (*r)["diff"] = std::move(tx->changes);
    (*r)["plan"] = std::move(tx->ops);
    // What the transaction now holds is the old config and its document:
    // freeing them took ~2 s at 100,000 tunnels (when the document was a
    // yaml-cpp tree), which the client need not wait for. (The thread uses
    // nothing of the daemon.)
    give_back.on = false;
    std::thread([tx = std::move(tx)]() mutable {
        setpriority(PRIO_PROCESS, id_t(gettid()), kApplyNice);
        tx.reset();
        give_back_memory("apply");
    }).detach();
    return *r;
}

// On the control thread, apply_mu_ held by the thread that prepared tx: the
// steps, each with its undo (a step that fails leaves its own section as it
// was), then the new running config. Returns {"http", "applied", ...}.
nlohmann::json Daemon::commit(Txn& tx) {
    uint64_t t0 = mono_ns();
    auto held_ms = [t0] { return double(mono_ns() - t0) / 1e6; };
    if (tx.nothing) {
        std::swap(running_tree_, tx.tree);
        std::swap(running_text_, tx.text);  // the old ones are freed by the preparing thread
        std::swap(running_redacted_, tx.for_running);
        running_version_ = tx.version;
        return {{"http", 200}, {"applied", false}};
    }
    const config::Config& old = tx.old;
    config::Config& next = tx.next;
    const config::Plan& plan = tx.plan;
    struct Step {
        const char* name;
        std::function<bool(std::string*)> run, undo;
    };
    std::vector<Step> steps;
    auto routes = [this](const std::vector<config::Route>& del, const std::vector<config::Route>& add,
                         std::string* err) {
        for (auto& r : del) static_route(r, false);
        for (auto& r : add) static_route(r, true);
        if (rib_.commit(err)) return true;
        for (auto& r : add) static_route(r, false);
        for (auto& r : del) static_route(r, true);
        std::string e2;
        rib_.commit(&e2);
        return false;
    };
    if (!plan.firewall.empty())
        steps.push_back({"firewall", [&](std::string* e) { return firewall_.apply(next, e); },
                         [&](std::string* e) { return firewall_.apply(old, e); }});
    if (!plan.routes_del.empty() || !plan.routes_add.empty())
        steps.push_back({"routes", [&](std::string* e) { return routes(plan.routes_del, plan.routes_add, e); },
                         [&](std::string* e) { return routes(plan.routes_add, plan.routes_del, e); }});
    if (!plan.tunnels_del.empty() || !plan.tunnels_add.empty())
        steps.push_back({"manual_sas",
                         [&](std::string* e) {
                             return tunnels_.apply(old, next, plan.tunnels_del, plan.tunnels_add, rib_, e);
                         },
                         [&](std::string* e) {
                             return tunnels_.apply(next, old, plan.tunnels_add, plan.tunnels_del, rib_, e);
                         }});
    if (tx.ike_step) {
        auto reload = [this](const config::Config& c, ike::Policy* p, std::string* e) {
            std::vector<std::string> errs;
            if (ike_->reload(c, &errs, p)) return true;
            *e = errs.empty() ? "IKE reload failed" : fmt::format("{}", fmt::join(errs, "; "));
            return false;
        };
        steps.push_back({"ike", [&, reload](std::string* e) { return reload(next, &tx.policy, e); },
                         [&, reload](std::string* e) { return reload(old, nullptr, e); }});
    }
    if (plan.ha) {
        auto ha_to = [this](const std::optional<config::Ha>& h, std::string* e) {
            ha_stop();
            cfg_.ha = h;
            if (!ha_start(e)) return false;
            ha_wire();
            return true;
        };
        steps.push_back({"ha", [&, ha_to](std::string* e) { return ha_to(next.ha, e); },
                         [&, ha_to](std::string* e) { return ha_to(old.ha, e); }});
    }
    if (plan.routing) {
        auto routing_to = [this](const std::optional<config::Routing>& r, std::string* e) {
            frr_.reset();  // closes its sessions and sockets
            cfg_.routing = r;
            return !cfg_.routing || start_frr(e);
        };
        steps.push_back({"routing", [&, routing_to](std::string* e) { return routing_to(next.routing, e); },
                         [&, routing_to](std::string* e) { return routing_to(old.routing, e); }});
    }
    size_t done = 0;
    std::string err;
    for (; done < steps.size(); done++)
        if (!steps[done].run(&err)) break;
    if (done < steps.size()) {
        const char* failed = steps[done].name;
        for (size_t i = done; i-- > 0;) {
            std::string e2;
            if (!steps[i].undo(&e2))
                LOG_ERROR("config", "event=rollback_step_failed source={} step={} error=\"{}\"", tx.who,
                          steps[i].name, e2);
        }
        cfg_.ha = old.ha;
        cfg_.routing = old.routing;
        LOG_ERROR("config", "event=apply_failed source={} step={} error=\"{}\" action=rolled_back", tx.who, failed,
                  err);
        return {{"http", 500},
                {"applied", false},
                {"error", fmt::format("{}: {}", failed, err)},
                {"failed_step", failed},
                {"rolled_back", true},
                {"plan", tx.ops}};
    }
    // The old config goes back to the preparing thread to be freed there.
    std::swap(cfg_, next);
    std::swap(running_tree_, tx.tree);
    std::swap(running_text_, tx.text);
    std::swap(running_redacted_, tx.for_running);
    running_version_ = tx.version;
    remember(std::move(tx.for_history), tx.version, tx.who, &tx.dropped);
    return {{"http", 200},
            {"applied", true},
            {"version", tx.version},
            {"steps", steps.size()},
            {"control_thread_ms", held_ms()}};
}

// The last configs applied (newest last), for `config history|rollback`, in
// memory with their secrets (control thread).
void Daemon::remember(std::string text, const std::string& version, const std::string& who,
                      std::vector<Applied>* dropped) {
    if (!history_.empty() && history_.back().version == version) return;  // e.g. SIGHUP for new CRLs
    history_.push_back(Applied{std::move(text), version, who, iso_time()});
    size_t keep = size_t(std::max(cfg_.mgmt.history, 2));
    while (history_.size() > keep) {
        if (dropped) dropped->push_back(std::move(history_.front()));
        history_.pop_front();
    }
}

// On disk (state_dir/history), redacted.
void Daemon::save_history(const std::string& redacted, const std::string& version) const {
    std::error_code ec;
    std::string dir = state_dir() + "/history", e;
    std::filesystem::create_directories(dir, ec);
    if (!write_file_atomic(fmt::format("{}/{}.yaml", dir, version.substr(0, 12)), redacted, &e))
        LOG_WARN("config", "event=history_write_failed error=\"{}\"", e);
}

std::shared_ptr<void> Daemon::hold_open() {
    std::lock_guard<std::mutex> g(inflight_mu_);
    if (closing_) return nullptr;
    inflight_++;
    return std::shared_ptr<void>(static_cast<void*>(this), [this](void*) {  // never deletes
        std::lock_guard<std::mutex> g2(inflight_mu_);
        inflight_--;
        inflight_cv_.notify_all();
    });
}

std::optional<std::string> Daemon::history_text(int n, std::string* err) const {
    if (n < 1 || size_t(n) >= history_.size()) {
        *err = fmt::format("no config {} back: {} kept (see 'config history')", n, history_.size());
        return std::nullopt;
    }
    return history_[history_.size() - 1 - size_t(n)].text;
}

nlohmann::json Daemon::rollback(const std::string& text, int n, const std::string& who) {
    std::string version = config::hash(text);
    LOG_INFO("config", "event=rollback source={} back={} version={}", who, n, version.substr(0, 12));
    return apply_text(text, fmt::format("rollback {} ({})", n, version.substr(0, 12)), who, false);
}

// One JSON line per attempted change: who, when, what, the outcome.
void Daemon::audit(const std::string& who, const std::string& result, const std::string& version,
                   const std::vector<std::string>& changes) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir(), ec);
    std::string path = state_dir() + "/audit.log";
    nlohmann::json j = {{"time", iso_time()}, {"who", who},         {"result", result},
                        {"version", version}, {"diff", changes}};
    std::string line = j.dump() + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, line.data(), line.size()) != ssize_t(line.size()))
        LOG_ERROR("config", "event=audit_write_failed file={} error=\"{}\"", path, strerror(errno));
    if (fd >= 0) ::close(fd);
}

std::string Daemon::state_dir() const {
    return cfg_.mgmt.state_dir.empty() ? "/var/lib/nimbus/" + cfg_.node.name : cfg_.mgmt.state_dir;
}

routing::NextHop Daemon::route_nexthop(const config::Route& r) const {
    using routing::NextHop;
    int port = r.port.empty() ? -1 : port_index(r.port);
    if (r.blackhole) return NextHop{NextHop::Kind::Drop, -1, {}};
    if (r.via) return NextHop{NextHop::Kind::Gateway, port, *r.via};
    return NextHop{NextHop::Kind::Glean, port, {}};
}

// Adds or removes one static route: in the RIB (the caller commits) and,
// for the default VRF, in the kernel so the box's own traffic follows it.
void Daemon::static_route(const config::Route& r, bool add) {
    int vrf = cfg_.vrf_index(r.vrf);
    if (add) rib_.add(vrf, routing::Route{r.prefix, routing::Source::Static, r.distance, route_nexthop(r), 0});
    else rib_.remove(vrf, r.prefix, routing::Source::Static, route_nexthop(r));
    if (r.vrf != "default") return;
    int port = r.port.empty() ? -1 : port_index(r.port);
    if (!r.blackhole && port < 0 && r.via) port = rib_.connected_port(0, *r.via);
    std::string e;
    bool ok = add ? nl_.route_add(r.prefix, r.via, tap_ifindex(port), r.blackhole, &e)
                  : nl_.route_del(r.prefix, r.via, tap_ifindex(port), r.blackhole, &e);
    if (!ok) LOG_WARN("hostif", "event=kernel_route_failed op={} prefix={} error=\"{}\"", add ? "add" : "del",
                      r.prefix.str(), e);
    if (r.blackhole) {
        auto key = std::make_pair(r.prefix, std::optional<IpAddr>());
        auto it = std::find(kernel_blackholes_.begin(), kernel_blackholes_.end(), key);
        if (add && ok && it == kernel_blackholes_.end()) kernel_blackholes_.push_back(key);
        if (!add && it != kernel_blackholes_.end()) kernel_blackholes_.erase(it);
    }
}

// SIGTERM/SIGINT: the IKE peers hear of it first (DELETEs, answered or
// not within ike.delete_on_stop_ms), while the dataplane and the host
// interfaces still carry them; then the loop ends and tear_down() runs. A
// second signal ends the loop at once.
void Daemon::stop_gracefully() {
    if (stopping_ || !ike_ || cfg_.ike.delete_on_stop_ms == 0) {
        loop_.stop();
        return;
    }
    stopping_ = true;
    sd_notify_msg("STOPPING=1");
    if (!ike_->close(uint64_t(cfg_.ike.delete_on_stop_ms), [this] { loop_.stop(); })) loop_.stop();
}

void Daemon::tear_down() {
    // Config changes first: one still being prepared finds the bridge closed
    // and applies nothing; wait for those threads (the HTTP server's among
    // them) before anything they read goes.
    {
        std::unique_lock<std::mutex> g(inflight_mu_);
        closing_ = true;
        if (bridge_) bridge_->close();
        if (inflight_ > 0) LOG_INFO("config", "event=stop_waiting in_flight={}", inflight_);
        inflight_cv_.wait(g, [this] { return inflight_ == 0; });
    }
    ha_stop();
    if (api_) api_->stop();
    api_.reset();
    if (cli_) cli_->close();
    cli_.reset();
    // The engine first (it takes its SAs out of the sink), then the sink
    // (dataplane tunnels and their routes), while the dataplane still runs.
    ike_.reset();
    ike_sink_.reset();
    frr_.reset();  // zebra flushes our routes when the session closes
    for (auto& [k, h] : held_)
        for (auto& p : h.pkts) dp::release(p);
    held_.clear();
    // Kernel routes through a TAP go with it; blackholes have no device.
    for (auto& [p, via] : kernel_blackholes_) {
        std::string e;
        nl_.route_del(p, via, 0, true, &e);
    }
    kernel_blackholes_.clear();
    for (auto& t : taps_) {
        if (t && t->fd() >= 0) loop_.del_fd(t->fd());
        if (t) t->close();
    }
    taps_.clear();
    dp::shutdown();
    if (guarded_) hostif::unguard_underlay(guard_table());
    guarded_ = false;
    if (sigfd_ >= 0) close(sigfd_);
    sigfd_ = -1;
}

int Daemon::run() {
    // Signals arrive through signalfd, never as asynchronous handlers; block
    // them before EAL starts worker threads so those inherit the mask.
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &ss, nullptr);
    signal(SIGPIPE, SIG_IGN);

    log::Level lvl;
    if (log::parse_level(cfg_.mgmt.log_level, &lvl)) log::set_level(lvl);
    std::string err;
    if (!bring_up(&err)) {
        LOG_ERROR("daemon", "event=startup_failed error=\"{}\"", err);
        fmt::print(stderr, "nimbusd: {}\n", err);
        tear_down();
        return 1;
    }
    LOG_INFO("daemon", "event=started node={} ports={} workers={} socket={}", cfg_.node.name, cfg_.ports.size(),
             cfg_.dataplane.workers, cfg_.mgmt.socket);
    loop_.run();
    sd_notify_msg("STOPPING=1");
    tear_down();
    LOG_INFO("daemon", "event=stopped node={}", cfg_.node.name);
    return 0;
}

// ---- exception path

void Daemon::on_tap(int port) {
    uint8_t buf[9216 + 64];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(taps_[size_t(port)]->fd(), buf, sizeof buf);
        if (n <= 0) return;
        ha_from_host(port, buf, uint32_t(n));
        if (dp::inject(port, buf, uint32_t(n))) hstats_.from_kernel++;
        else hstats_.from_kernel_dropped++;
    }
}

void Daemon::drain_punts() {
    dp::HostPkt pk[64];
    for (int round = 0; round < 16; round++) {
        int n = dp::punt_poll(pk, 64);
        for (int i = 0; i < n; i++) handle_punt(pk[i]);
        if (n < 64) return;
    }
}

std::optional<IpAddr> Daemon::source_for(int port, Family f) const {
    if (port >= 0 && size_t(port) < cfg_.ports.size())
        for (auto& a : cfg_.ports[size_t(port)].addresses)
            if (a.addr.family == f && !a.addr.is_link_local()) return a.addr;
    for (auto& p : cfg_.ports)
        for (auto& a : p.addresses)
            if (a.addr.family == f && !a.addr.is_link_local()) return a.addr;
    return std::nullopt;
}

void Daemon::handle_punt(dp::HostPkt& p) {
    switch (p.reason) {
        case dp::PuntReason::Host: {
            if (ha_punt(p)) return;
            if (p.port < taps_.size() && p.len) {
                ssize_t r = write(taps_[p.port]->fd(), p.data, p.len);
                if (r == ssize_t(p.len)) hstats_.to_kernel++;
                else hstats_.to_kernel_dropped++;
            }
            dp::release(p);
            return;
        }
        case dp::PuntReason::NeighMiss: hold(p); return;
        case dp::PuntReason::TtlExceeded:
        case dp::PuntReason::NoRoute:
        case dp::PuntReason::TooBig: {
            if (p.len > 14) {
                std::span<const uint8_t> ip(p.data + 14, p.len - 14);
                Family f = (ip[0] >> 4) == 4 ? Family::V4 : Family::V6;
                auto src = source_for(p.port, f);
                hostif::IcmpError t = p.reason == dp::PuntReason::TtlExceeded ? hostif::IcmpError::TimeExceeded
                                      : p.reason == dp::PuntReason::TooBig    ? hostif::IcmpError::TooBig
                                                                              : hostif::IcmpError::NetUnreachable;
                if (src && icmp_.send(t, ip, *src, p.mtu)) hstats_.icmp_sent++;
            }
            dp::release(p);
            return;
        }
    }
    dp::release(p);
}

// A packet whose next hop the kernel has not resolved: keep a few per
// neighbour, ask the kernel to resolve (it sends ARP/ND through the host
// interface), and re-inject them when the neighbour appears.
void Daemon::hold(dp::HostPkt& p) {
    int vrf = p.vrf >= 0 ? p.vrf : p.port < cfg_.ports.size() ? cfg_.vrf_index(cfg_.ports[p.port].vrf) : 0;
    int egress = rib_.connected_port(vrf, p.aux);
    // A decrypted packet arrives on a WAN port but is routed in its tunnel's
    // VRF, which the worker reports (p.vrf) and where the re-injection routes
    // it again. Without it, look for the neighbour's subnet in every VRF.
    for (int v = 0; egress < 0 && v < int(cfg_.vrfs.size()); v++) egress = rib_.connected_port(v, p.aux);
    if (egress < 0) {
        dp::release(p);
        hstats_.held_overflow++;
        return;
    }
    auto key = std::make_pair(egress, p.aux);
    if (rib_.has_neighbor(egress, p.aux) && !held_.count(key)) {
        // Resolved while the packet was on its way here (the worker punted it
        // before the next hop was published): send it on, and do not ask the
        // kernel again.
        dp::reinject(p);
        hstats_.held_resolved++;
        return;
    }
    Held& h = held_[key];
    if (h.pkts.size() >= kHeldPerNeighbor || held_total_ >= kHeldTotal) {
        dp::release(p);
        hstats_.held_overflow++;
        return;
    }
    if (h.pkts.empty()) h.since = mono_ns();
    h.pkts.push_back(p);
    held_total_++;
    hstats_.held++;
    uint64_t now = mono_ns();
    auto& last = resolving_[key];
    if (now - last >= kResolveRetryNs) {
        last = now;
        std::string e;
        if (!nl_.neigh_resolve(tap_ifindex(egress), p.aux, &e))
            LOG_DEBUG("hostif", "event=resolve_failed addr={} error=\"{}\"", p.aux.str(), e);
    }
}

void Daemon::release_held(int port, const IpAddr& a, bool resolved) {
    auto it = held_.find({port, a});
    if (it == held_.end()) return;
    for (auto& p : it->second.pkts) {
        if (resolved) {
            dp::reinject(p);
            hstats_.held_resolved++;
        } else {
            dp::release(p);
            hstats_.held_expired++;
        }
    }
    held_total_ -= it->second.pkts.size();
    held_.erase(it);
    resolving_.erase({port, a});
}

void Daemon::sweep_held() {
    uint64_t now = mono_ns();
    std::vector<std::pair<int, IpAddr>> expired;
    for (auto& [k, h] : held_)
        if (now - h.since > kHeldTimeoutNs) expired.push_back(k);
    for (auto& k : expired) release_held(k.first, k.second, false);
    for (auto it = resolving_.begin(); it != resolving_.end();)
        it = now - it->second > kHeldTimeoutNs && !held_.count(it->first) ? resolving_.erase(it) : std::next(it);
}

void Daemon::on_netlink() {
    bool changed = false, link_changed = false;
    std::vector<std::pair<int, IpAddr>> resolved;
    nl_.read_events(
        [&](const hostif::NeighEvent& n) {
            auto it = ifindex_port_.find(n.ifindex);
            if (it == ifindex_port_.end()) return;
            if (n.usable()) {
                rib_.neighbor(it->second, n.addr, n.mac);
                resolved.emplace_back(it->second, n.addr);
            } else if (n.deleted || (n.state & 0x20 /* NUD_FAILED */)) {
                rib_.neighbor(it->second, n.addr, std::nullopt);
            }
            changed = true;
        },
        [&](const hostif::LinkEvent& l) {
            // An underlay veth/NIC changed: vdev PMDs do not report it.
            if (std::find(underlay_.begin(), underlay_.end(), l.name) != underlay_.end()) link_changed = true;
        });
    if (link_changed) poll_links();
    if (changed) {
        std::string err;
        if (!rib_.commit(&err)) LOG_ERROR("rib", "event=commit_failed error=\"{}\"", err);
    }
    // Next hops are published (RCU) by now: held packets can go.
    for (auto& [port, a] : resolved) release_held(port, a, true);
    if (nl_.events_lost()) {
        // The kernel dropped notifications: read the neighbour table again.
        std::vector<hostif::NeighEvent> ns;
        std::string err;
        if (nl_.neigh_dump(&ns, &err)) {
            for (auto& n : ns) {
                auto it = ifindex_port_.find(n.ifindex);
                if (it != ifindex_port_.end() && n.usable()) rib_.neighbor(it->second, n.addr, n.mac);
            }
            rib_.commit(&err);
        }
    }
}

// af_packet/af_xdp ports report their link up whatever the kernel interface
// under them does: ask the kernel for that interface's carrier.
bool Daemon::underlay_carrier(size_t port) const {
    if (port >= underlay_.size() || underlay_[port].empty()) return true;
    std::ifstream f("/sys/class/net/" + underlay_[port] + "/carrier");
    char c = '0';
    return f.get(c) && c == '1';  // unreadable while administratively down
}

// Port link state goes onto the TAP's carrier, so the kernel (and FRR,
// keepalived, ...) see a port go down.
void Daemon::poll_links() {
    for (size_t i = 0; i < taps_.size(); i++) {
        bool up = dp::port_info(int(i)).link_up && underlay_carrier(i);
        if (up == link_up_[i]) continue;
        link_up_[i] = up;
        int carrier = up ? 1 : 0;
        ioctl(taps_[i]->fd(), TUNSETCARRIER, &carrier);
        LOG_INFO("hostif", "event=link port={} state={}", cfg_.ports[i].name, up ? "up" : "down");
        ha_link(int(i), up);
    }
}

namespace {

// IKE's tunnels for `show tunnels`, its summary and the metrics.
class IkeView : public esp::IkeTunnels {
public:
    IkeView(const std::unique_ptr<ike::Service>& ike, const std::unique_ptr<ike::ChildSaSink>& sink)
        : ike_(ike), sink_(sink) {}

    std::vector<esp::DynamicTunnel> list(uint64_t after, size_t n) const override {
        std::vector<esp::DynamicTunnel> v;
        ike::Engine* e = engine();
        if (!e) return v;
        for (auto& t : e->tunnels(after, n)) {
            esp::DynamicTunnel d{t.id, t.cloud, t.name, t.state, t.uptime_s, t.rtt_ms, t.child_rekeys,
                                 t.ike_rekeys, t.paths, t.prefixes};
            d.dp = dp_id(t.id);
            d.peer = t.remote;
            d.rtt_min_ms = t.rtt_min_ms;
            d.rtt_avg_ms = t.rtt_avg_ms;
            d.rtt_max_ms = t.rtt_max_ms;
            d.rtt_samples = t.rtt_samples;
            d.flaps = t.flaps;
            d.last_down = t.last_down;
            d.last_down_detail = t.last_down_detail;
            d.last_down_age_s = t.last_down_age_s;
            v.push_back(std::move(d));
        }
        return v;
    }
    std::map<std::string, std::array<uint64_t, 3>> counts() const override {
        ike::Engine* e = engine();
        return e ? e->tunnel_counts() : std::map<std::string, std::array<uint64_t, 3>>{};
    }
    void each(const std::function<void(const Brief&)>& fn) const override {
        ike::Engine* e = engine();
        if (!e) return;
        static constexpr const char* kStates[] = {"up", "connecting", "down"};
        e->each_tunnel([&](const ike::Engine::TunnelBrief& b) {
            fn(Brief{b.cloud, b.name, kStates[b.state], b.rtt_ms, b.flaps, dp_id(b.id)});
        });
    }
    std::vector<uint64_t> named(const std::string& name) const override {
        ike::Engine* e = engine();
        return e ? e->tunnel_ids_named(name) : std::vector<uint64_t>{};
    }
    esp::SummaryExtra summary_extra() const override {
        esp::SummaryExtra x;
        ike::Engine* e = engine();
        if (!e) return x;
        x.handshakes_per_s_10s = ike_->handshake_rate(10);
        x.handshakes_per_s_60s = ike_->handshake_rate(60);
        x.handshakes_total = e->counter(ike::Counter::ike_established);
        x.auth_failures_total = e->counter(ike::Counter::auth_failed) + e->counter(ike::Counter::auth_revoked);
        for (int r = 1; r < ike::kDownReasonCount; r++)
            x.downs[ike::down_reason_name(ike::DownReason(r))] = e->downs()[r];
        return x;
    }

private:
    ike::Engine* engine() const { return ike_ ? ike_->engine() : nullptr; }
    dp::TunnelId dp_id(uint64_t id) const { return static_cast<ike::DataplaneSink*>(sink_.get())->dp_id(id); }

    const std::unique_ptr<ike::Service>& ike_;
    const std::unique_ptr<ike::ChildSaSink>& sink_;
};

}  // namespace

void Daemon::register_commands() {
    show::register_all(reg_, *this);
    tunnels_.register_commands(reg_, cfg_, *bridge_);
    tunnels_.register_metrics(metrics_, cfg_);
    firewall_.register_commands(reg_, cfg_);
    firewall_.register_metrics(metrics_, cfg_);
    tunnels_.set_started(started_ ? started_ : wall_s());
    if (ike_) {
        ike_->set_bridge(bridge_.get());
        ike_->register_commands(reg_);
        metrics_.add([this](mgmt::MetricsWriter& w) {
            if (ike_) ike_->write_metrics(w);
        });
        ike_view_ = std::make_unique<IkeView>(ike_, ike_sink_);
        tunnels_.set_ike(ike_view_.get());
    }
    routing::Frr::register_commands(reg_, [this] { return frr_.get(); });
    metrics_.add([this](mgmt::MetricsWriter& w) {
        if (frr_) frr_->write_metrics(w);
    });
}

// The `routing:` section as it is in cfg_: FRR's sessions, injection and
// learning (at start-up and when an apply changes the section).
bool Daemon::start_frr(std::string* err) {
    frr_ = std::make_unique<routing::Frr>(cfg_, loop_, rib_,
                                          routing::FrrPorts{[this](int port) { return tap_ifindex(port); },
                                                            [](int port) { return dp::port_info(port).mac; }});
    // A site may announce only its own prefixes: a static tunnel's allowed
    // prefixes, or an IKE site's configured ones (route owner = the site's
    // id as written in its cloud).
    frr_->set_allowed_lookup([this](int vrf, const std::string& site) -> std::optional<std::vector<Prefix>> {
        for (auto& t : tunnels_.tunnels())
            if (t.name == site && t.vrf == vrf) return t.allowed;
        for (auto& c : cfg_.clouds) {
            if (cfg_.vrf_index(c.vrf) != vrf) continue;
            for (auto& st : c.sites)
                if (st.id == site) return st.prefixes;
        }
        return std::nullopt;
    });
    // zebra 8.4 may miss the addresses of a host interface created while it
    // runs (its RTM_NEWADDR read before the RTM_NEWLINK, FRRouting/frr#13288),
    // and bgpd then cannot use them. When zebra reports the interface (or
    // accepts our HELLO: all of them), announce the addresses again:
    // RTM_NEWADDR with NLM_F_REPLACE changes nothing but is reported anew.
    frr_->set_interface_hook([this](const std::string& name) {
        for (size_t i = 0; i < cfg_.ports.size() && i < taps_.size(); i++) {
            if (!name.empty() && cfg_.ports[i].name != name) continue;
            std::string e;
            for (auto& a : cfg_.ports[i].addresses)
                if (!nl_.addr_add(taps_[i]->ifindex(), a, &e))
                    LOG_WARN("hostif", "event=address_refresh_failed port={} addr={} error=\"{}\"", cfg_.ports[i].name,
                             a.str(), e);
            LOG_INFO("hostif", "event=address_refresh port={} reason={}", cfg_.ports[i].name,
                      name.empty() ? "zebra session" : "zebra reported the interface");
        }
    });
    // An HA pair announces its sites from the master only.
    if (ha_) frr_->set_inject_active(ha_->role() == ha::Role::Master, "HA role is not master");
    if (!frr_->start(err)) {
        frr_.reset();
        return false;
    }
    return true;
}

// What follows the HA role besides HA itself (after each ha_start).
void Daemon::ha_wire() {
    if (!ha_) return;
    if (frr_) frr_->set_inject_active(ha_->role() == ha::Role::Master, "HA role is not master");
    ha_->subscribe([this](const ha::RoleEvent& e) {
        if (frr_) frr_->set_inject_active(e.role == ha::Role::Master, fmt::format("HA role {}", ha::role_name(e.role)));
    });
}

}  // namespace nimbus
