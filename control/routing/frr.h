// nimbusd and FRRouting: everything the `routing:` section switches on, put
// together on the control loop.
//
//   tunnel routes in the RIB --(Injector, a RIB observer)--> ZapiSession --(ZebraClient)--> zebra --> bgpd
//                            \--(HostRoutes)--> kernel table for the box's own traffic
//   zebra's FIB --(dplane_fpm_nl)--> FpmListener/FpmServer --(fpm_rib)--> RIB (Source::Fpm) --> FIB
//
// What is offered to sites (per cloud `advertise` and, with `advertise_bgp`,
// what FRR learned over BGP into the cloud's VRF) is read with offered();
// the IKE work uses it as the concentrator's traffic selectors.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/loop/loop.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"
#include "control/routing/fpm_listener.h"
#include "control/routing/fpm_server.h"
#include "control/routing/host_routes.h"
#include "control/routing/injector.h"
#include "control/routing/rib.h"
#include "control/routing/zapi_session.h"
#include "control/routing/zebra_client.h"

namespace nimbus::routing {

struct FrrPorts {
    std::function<int(int port)> tap_ifindex;  // host interface of a port
    std::function<MacAddr(int port)> mac;      // the port's (and its TAP's) MAC
    // zebra has accepted a ZAPI connection (each time): the daemon announces
    // its host interfaces' addresses again, see Daemon::start_frr.
    std::function<void()> zebra_ready;
};

class Frr {
public:
    Frr(const config::Config& cfg, control::Loop& loop, Rib& rib, FrrPorts ports);
    ~Frr();
    Frr(const Frr&) = delete;
    Frr& operator=(const Frr&) = delete;

    // Opens the kernel table, the FPM listener and the zebra client (which
    // keeps retrying until zebra is there). False with *err on a local
    // failure (e.g. the FPM port is taken).
    bool start(std::string* err);
    void stop();
    // Once per daemon: the commands reach `current()` (null: not configured),
    // so an Frr replaced by a config apply keeps its commands.
    static void register_commands(mgmt::Registry& reg, std::function<Frr*()> current);
    // Prometheus: session states, prefixes injected and learned, refusals.
    void write_metrics(mgmt::MetricsWriter& w) const;

    // Who owns tunnels tells which prefixes a site may hold (the safety net
    // of the injector). Sites created with the test hook are known too.
    void set_allowed_lookup(AllowedLookup f) { allowed_ = std::move(f); }
    // An HA pair announces its sites only from the master.
    void set_inject_active(bool active, const std::string& why);

    // What a cloud (VRF) offers to its sites: `advertise` plus, with
    // `advertise_bgp`, the BGP routes FRR selected in that VRF.
    std::vector<Prefix> offered(int vrf) const;

    const ZapiSession* zapi() const { return zapi_.get(); }
    const FpmServer* fpm() const { return fpm_.get(); }
    const Injector& injector() const { return *inj_; }

private:
    void on_rib(int vrf, const Route& r, bool added);
    void kick();
    void work();
    std::optional<std::vector<Prefix>> allowed(int vrf, const std::string& site) const;
    bool setup_host_routes(std::string* err);

    // ---- the test hook: tunnels without a tunnel (see register_commands)
    struct TestTunnel {
        int vrf = 0;
        std::vector<Prefix> prefixes, allowed;
        NextHop nh;
    };
    mgmt::Result test_up(const mgmt::Args& a);
    mgmt::Result test_down(const mgmt::Args& a);
    mgmt::Result test_withdraw(const mgmt::Args& a);
    mgmt::Result test_restore(const mgmt::Args& a);
    void test_remove(const std::string& name);

    mgmt::Result show(const mgmt::Args& a) const;
    mgmt::Result show_injected(const mgmt::Args& a) const;
    mgmt::Result show_learned(const mgmt::Args& a) const;
    mgmt::Result show_offered(const mgmt::Args& a) const;

    const config::Config& cfg_;
    const config::Routing& rc_;
    control::Loop& loop_;
    Rib& rib_;
    FrrPorts ports_;
    std::unique_ptr<ZapiSession> zapi_;
    std::unique_ptr<ZebraClient> zebra_;
    std::unique_ptr<Injector> inj_;
    std::unique_ptr<FpmServer> fpm_;
    std::unique_ptr<FpmListener> fpm_listener_;
    std::unique_ptr<HostRoutes> host_;
    std::unique_ptr<KernelTable> ktable_;
    std::string host_port_;
    std::map<uint32_t, int> table_vrf_;
    AllowedLookup allowed_;
    std::map<std::string, TestTunnel> test_tunnels_;
    std::map<std::string, std::vector<std::pair<int, Route>>> withdrawn_;  // real tunnels' routes taken out
    bool work_scheduled_ = false;
    control::Loop::TimerId work_timer_ = 0;
    bool started_ = false;
    std::string inactive_why_;
    std::shared_ptr<Frr*> self_ = std::make_shared<Frr*>(this);  // observers check it is still there
};

}  // namespace nimbus::routing
