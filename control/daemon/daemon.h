// nimbusd's control thread: brings the dataplane and the host interfaces
// up from a validated config, runs the event loop, and takes it all down
// again on SIGTERM/SIGINT.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/config/plan.h"
#include "control/esp/tunnels.h"
#include "control/firewall/firewall.h"
#include "control/ha/ha_daemon.h"
#include "control/hostif/icmp.h"
#include "control/hostif/netlink.h"
#include "control/hostif/tap.h"
#include "control/ike/dataplane_sink.h"
#include "control/ike/service.h"
#include "control/loop/bridge.h"
#include "control/loop/loop.h"
#include "control/mgmt/cli_server.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/http_api.h"
#include "control/mgmt/metrics.h"
#include "control/routing/frr.h"
#include "control/routing/rib.h"
#include "dataplane/api.h"

namespace nimbus {

struct HostIfStats {
    uint64_t to_kernel = 0, to_kernel_dropped = 0;  // punted frames written to the TAP
    uint64_t from_kernel = 0, from_kernel_dropped = 0;
    uint64_t held = 0, held_resolved = 0, held_expired = 0, held_overflow = 0;
    uint64_t icmp_sent = 0;
};

class Daemon {
public:
    // `tree`: the document the config was read from (config::Result::tree), if at hand.
    explicit Daemon(config::Config cfg, std::shared_ptr<const config::Tree> tree = nullptr);
    ~Daemon();
    // Brings everything up and runs until a signal. Returns the exit code.
    int run();

    // For the command handlers.
    const config::Config& config() const { return cfg_; }
    routing::Rib& rib() { return rib_; }
    const esp::Tunnels& tunnels() const { return tunnels_; }
    const HostIfStats& hostif_stats() const { return hstats_; }
    int port_index(const std::string& name) const;
    const std::string& port_name(int i) const { return cfg_.ports[size_t(i)].name; }
    int tap_ifindex(int port) const;
    // The port's link as the box sees it: the PMD's link and, for
    // af_packet/af_xdp ports, the carrier of the kernel interface beneath.
    bool port_link_up(int port) const {
        return port >= 0 && size_t(port) < link_up_.size() ? link_up_[size_t(port)] : false;
    }
    uint64_t started_at() const { return started_; }
    // The HA engine (nullptr without `ha:`): subscribe() to its role changes.
    ha::HaDaemon* ha() { return ha_.get(); }
    routing::Frr* frr() { return frr_.get(); }
    // Validate and apply a config text (SIGHUP, CLI, API); {"http": code, ...}.
    // Any thread; off the control thread it waits for the control thread to
    // run the steps (see daemon.cpp). On the control thread it refuses (409)
    // while another change is in progress.
    nlohmann::json apply_text(const std::string& text, const std::string& name, const std::string& who,
                              bool dry_run);
    // Control thread: the running config's text with secrets redacted, and
    // its version (hash of the text as applied).
    const std::string& running_redacted() const { return running_redacted_; }
    const std::string& running_version() const { return running_version_; }
    // `config rollback N`, control thread: the text applied N changes ago
    // (nullopt and *err if there is none); then rollback() applies it (any thread).
    std::optional<std::string> history_text(int n, std::string* err) const;
    nlohmann::json rollback(const std::string& text, int n, const std::string& who);
    // Work on another thread that uses the daemon (a deferred config apply)
    // holds this while it runs: stopping waits for it. nullptr when
    // nimbusd is already stopping.
    std::shared_ptr<void> hold_open();
    struct Applied {
        std::string text, version, who, when;
    };
    const std::deque<Applied>& history() const { return history_; }
    std::string state_dir() const;
    mgmt::Metrics& metrics() { return metrics_; }
    control::Loop& loop() { return loop_; }

private:
    struct Held {
        std::deque<dp::HostPkt> pkts;
        uint64_t since = 0;
    };

    bool bring_up(std::string* err);
    void tear_down();
    void stop_gracefully();
    bool prepare_underlay(std::string* err);
    std::string guard_table() const;
    bool create_host_interfaces(std::string* err);
    void install_routes();
    void reload();
    void audit(const std::string& who, const std::string& result, const std::string& version,
               const std::vector<std::string>& changes);
    void static_route(const config::Route& r, bool add);
    routing::NextHop route_nexthop(const config::Route& r) const;
    void register_commands();

    void on_tap(int port);
    void drain_punts();
    void handle_punt(dp::HostPkt& p);
    void hold(dp::HostPkt& p);
    void release_held(int port, const IpAddr& a, bool resolved);
    void sweep_held();
    void on_netlink();
    void poll_links();
    bool underlay_carrier(size_t port) const;
    std::optional<IpAddr> source_for(int port, Family f) const;

    // HA hooks (control/ha/ha_hooks.cpp).
    bool ha_start(std::string* err);
    void ha_stop();
    bool ha_punt(dp::HostPkt& p);  // true: taken (a VRRP advert)
    void ha_from_host(int port, uint8_t* frame, uint32_t len);
    void ha_link(int port, bool up);
    void ha_wire();
    bool start_frr(std::string* err);
    bool ha_registered_ = false;
    void ha_bind_ike();    // IKE on the virtual IPs only while master
    void ha_track_frr();   // `track: [{frr: zebra}]` fed from the ZAPI session

    config::Config cfg_;
    control::Loop loop_;
    mgmt::Registry reg_;
    std::unique_ptr<mgmt::CliServer> cli_;
    hostif::Netlink nl_;
    hostif::IcmpSender icmp_;
    std::vector<std::unique_ptr<hostif::Tap>> taps_;
    std::map<int, int> ifindex_port_;  // TAP ifindex -> port
    std::vector<bool> link_up_;
    std::vector<std::string> underlay_;  // per port: the kernel interface of an af_packet/af_xdp vdev
    routing::Rib rib_;
    esp::Tunnels tunnels_;
    firewall::Firewall firewall_;
    std::unique_ptr<routing::Frr> frr_;  // the `routing:` section (FRR), when configured
    std::map<std::pair<int, IpAddr>, Held> held_;
    size_t held_total_ = 0;
    std::map<std::pair<int, IpAddr>, uint64_t> resolving_;  // last NTF_USE per neighbour
    HostIfStats hstats_;
    // IKE: the engine's dataplane binding and the service that owns the
    // engine and its sockets.
    std::unique_ptr<ike::ChildSaSink> ike_sink_;
    std::unique_ptr<ike::Service> ike_;
    std::unique_ptr<esp::IkeTunnels> ike_view_;  // IKE's tunnels as tunnels_ lists them
    std::vector<std::pair<Prefix, std::optional<IpAddr>>> kernel_blackholes_;
    // Config changes (apply_text). cfg_, running_*_ and history_ change only
    // in commit(), on the control thread while apply_mu_ is held.
    struct Txn {
        std::string text, who, version, redacted;
        std::string for_running, for_history;  // copies of redacted and text the commit takes
        std::vector<Applied> dropped;          // history entries the commit let go (freed off the control thread)
        std::shared_ptr<const config::Tree> tree;  // the new config's; the old one's after the commit
        config::Config next, old;
        std::vector<std::string> changes;
        config::Plan plan;
        nlohmann::json ops;
        bool ike_step = false;
        bool nothing = false;  // no operation: only the text is new
        ike::Policy policy;    // built while preparing, installed by the IKE step
    };
    nlohmann::json commit(Txn& tx);
    std::mutex apply_mu_;
    std::unique_ptr<control::Bridge> bridge_;  // commits to the control thread
    bool has_ike_ = false;
    std::mutex inflight_mu_;
    std::condition_variable inflight_cv_;
    int inflight_ = 0;      // hold_open() holders
    bool closing_ = false;  // tear_down() started: no new holders
    std::string running_text_;  // the applied config, as text
    std::string running_redacted_, running_version_;
    std::shared_ptr<const config::Tree> running_tree_;  // apply_mu_ only: the running text's document
    std::deque<Applied> history_;  // newest last; the running config is the last
    void remember(std::string text, const std::string& version, const std::string& who,
                  std::vector<Applied>* dropped = nullptr);
    void save_history(const std::string& redacted, const std::string& version) const;
    mgmt::Metrics metrics_;
    std::unique_ptr<mgmt::HttpApi> api_;
    std::vector<uint64_t> worker_loops_;  // watchdog: progress since the last ping
    int sigfd_ = -1;
    bool stopping_ = false;  // SIGTERM seen: telling the IKE peers before the loop ends
    bool guarded_ = false;
    uint64_t started_ = 0;
    std::unique_ptr<ha::HaDaemon> ha_;
    control::Loop::TimerId ha_timer_ = 0;
    control::Loop::TimerId ha_track_timer_ = 0;
};

}  // namespace nimbus
