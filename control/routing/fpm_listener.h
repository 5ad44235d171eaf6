// The FPM server's sockets on the control loop: nimbusd listens (TCP,
// default 127.0.0.1:2620 in zebra's namespace, which is ours) and zebra's
// dplane_fpm_nl module connects, replays its whole FIB and streams changes.
// Bytes go to FpmServer; the route changes it produces go into the RIB as
// Source::Fpm (fpm_rib.h) and are committed once per read batch.
//
// zebra keeps one connection. A new one means zebra restarted (the old one
// may not have seen its FIN yet): the old connection is dropped and the new
// one starts a replay generation; learned routes stay in the FIB meanwhile
// and are swept only after the new replay is complete.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "control/loop/loop.h"
#include "control/routing/fpm_rib.h"
#include "control/routing/fpm_server.h"
#include "control/routing/rib.h"
#include "src/common/addr.h"

namespace nimbus::routing {

struct FpmListenerStats {
    uint64_t accepts = 0;
    uint64_t replaced = 0;  // connections dropped because a newer one came
    uint64_t bytes_rx = 0;
    uint64_t commit_failures = 0;
};

class FpmListener {
public:
    FpmListener(control::Loop& loop, FpmServer& server, Rib& rib, FpmRibMap map, IpAddr addr, uint16_t port);
    ~FpmListener();
    FpmListener(const FpmListener&) = delete;
    FpmListener& operator=(const FpmListener&) = delete;

    bool start(std::string* err);
    void stop();

    bool connected() const { return conn_ >= 0; }
    std::string listen_str() const;
    const std::string& peer() const { return peer_; }
    const FpmListenerStats& stats() const { return stats_; }
    const FpmRibCounters& rib_counters() const { return rc_; }
    // Called after FPM changed the RIB (e.g. to refresh what is offered to sites).
    void on_change(std::function<void()> f) { on_change_ = std::move(f); }

private:
    void on_accept();
    void on_data(uint32_t events);
    void close_conn(const char* why);
    void apply();

    control::Loop& loop_;
    FpmServer& srv_;
    Rib& rib_;
    FpmRibMap map_;
    IpAddr addr_;
    uint16_t port_;
    int lfd_ = -1, conn_ = -1;
    std::string peer_;
    control::Loop::TimerId tick_ = 0;
    FpmListenerStats stats_;
    FpmRibCounters rc_;
    std::function<void()> on_change_;
};

}  // namespace nimbus::routing
