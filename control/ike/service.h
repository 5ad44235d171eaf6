// nimbusd's IKE service: builds the engine's Policy from the validated
// config (loading certificates, keys and CRLs), opens the UDP sockets,
// drives the engine from the control loop, applies reloads without
// dropping tunnels, and registers the `show ike`, `show tunnels`,
// `clear tunnel` and test commands.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/ike/engine.h"
#include "control/ike/sink.h"
#include "control/ike/udp.h"
#include "control/loop/loop.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"

namespace nimbus::control {
class Bridge;
}

namespace nimbus::ike {

// Config → Policy. Loads PKI files; errors are "file:line:col: clouds[i].pki: ..."
// lines. Pure apart from reading files (unit-testable).
bool build_policy(const config::Config& c, Policy* out, std::vector<std::string>* errors);

class Service {
public:
    // `sink` is the dataplane binding (or a LoggingSink); it must outlive us.
    Service(control::Loop& loop, ChildSaSink& sink);
    ~Service();

    // Nothing to do when the config has no clouds. On failure *err names
    // the problem and nothing is left open.
    bool start(const config::Config& c, std::string* err);
    // SIGHUP: new clouds, sites, proposals, PKI material (files are read
    // again even if their names did not change). Established SAs stay.
    // `policy`: built beforehand by build_policy() (any thread: it reads only
    // c and the files it names), taken; without it, built here.
    bool reload(const config::Config& c, std::vector<std::string>* errors, Policy* policy = nullptr);
    void stop();
    // Graceful stop (SIGTERM): DELETE for every established IKE SA except
    // those on HA virtual IPs we hold (Engine::close_all), then `done` once
    // every DELETE is answered or `wait_ms` has passed, whichever is first.
    // Returns false (and never calls `done`) when there is nothing to wait
    // for: no engine, or no SA to delete.
    bool close(uint64_t wait_ms, std::function<void()> done);

    // HA (control/ha): the sync group's virtual IPs are the box's only while
    // it is master. held=true (Master, after the VIPs went onto the host
    // interfaces): with `ike.listen` naming addresses or ports, sockets are
    // bound to the VIPs in their subnets (the wildcard sockets of an empty
    // `listen` answer on them as soon as the kernel has them). held=false
    // (Backup, Init; after the VIPs left): those sockets close and every
    // IKE SA bound to a VIP goes with its tunnel, without a DELETE; the
    // sites reconnect to the new master when their liveness check fails.
    void set_virtual_ips(const std::vector<IpAddr>& vips, bool held, const std::string& why);
    // The VIPs that have sockets of their own right now (for tests, `show`).
    const std::vector<IpAddr>& bound_virtual_ips() const { return vip_bound_; }

    void register_commands(mgmt::Registry& reg);
    // With a bridge, `show ike tunnels` gathers its rows kSliceTunnels at a
    // time from the reply's writer thread.
    void set_bridge(control::Bridge* b) { bridge_ = b; }
    static constexpr size_t kSliceTunnels = 1000;
    // nimbus_ike_* and nimbus_tunnel_downs_total{reason}.
    void write_metrics(mgmt::MetricsWriter& w) const;
    Engine* engine() { return engine_.get(); }
    // IKE SAs established per second over the last `window_s` seconds
    // (sampled once a second; up to 60 s).
    double handshake_rate(int window_s) const;
    // Passed on to the engine (now and whenever it is created).
    void set_offered(Engine::Offered f);

private:
    void rearm();
    void watch(int fd);
    std::vector<IpAddr> listen_addresses(const config::Config& c) const;
    std::vector<Prefix> listen_subnets(const config::Config& c) const;

    control::Loop& loop_;
    control::Bridge* bridge_ = nullptr;
    ChildSaSink& sink_;
    UdpTransport udp_;
    std::unique_ptr<Engine> engine_;
    control::Loop::TimerId timer_ = 0;
    control::Loop::TimerId sampler_ = 0;
    std::deque<std::pair<uint64_t, uint64_t>> samples_;  // (mono ns, ike_established)
    uint64_t timer_at_ = 0;
    config::Ike ike_cfg_;
    Engine::Offered offered_;
    std::vector<Prefix> listen_subnets_;   // where a VIP gets sockets of its own (empty: wildcard)
    std::vector<IpAddr> vip_bound_;
    std::vector<IpAddr> vips_held_;        // HA virtual IPs that are ours now (with or without own sockets)
    control::Loop::TimerId closer_ = 0;    // close(): checks for answered DELETEs
    size_t close_deleted_ = 0;             // close(): DELETEs started
};

}  // namespace nimbus::ike
