// The ZAPI session's socket on the control loop: a non-blocking unix-socket
// connection to zebra's zserv.api, reconnected with exponential backoff when
// zebra is not there yet, restarts, or breaks the stream. The socket's folder
// is also watched (inotify): when zebra creates zserv.api, the next attempt
// is made at once instead of at the end of a long backoff. Route messages are
// pumped in batches (ZapiSession::pump) one batch per loop turn, and written
// only as fast as the socket takes them (EPOLLOUT), so thousands of prefixes
// never block the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "control/loop/loop.h"
#include "control/routing/zapi_session.h"

namespace nimbus::routing {

struct ZebraClientStats {
    uint64_t connect_attempts = 0;
    uint64_t connect_failures = 0;
    uint64_t socket_appeared = 0;  // inotify saw zserv.api created: attempted at once
    uint64_t write_errors = 0;
    uint64_t bytes_tx = 0, bytes_rx = 0;
};

class ZebraClient {
public:
    ZebraClient(control::Loop& loop, ZapiSession& session, std::string path);
    ~ZebraClient();
    ZebraClient(const ZebraClient&) = delete;
    ZebraClient& operator=(const ZebraClient&) = delete;

    void start();  // first attempt now
    void stop();   // closes the socket, cancels timers
    // There is work to send (routes were added or removed): service soon.
    void kick();

    bool connected() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    const ZebraClientStats& stats() const { return stats_; }
    const std::string& last_socket_error() const { return last_error_; }
    uint64_t next_attempt_in_ms() const;
    // Called once per connection, when zebra has answered the HELLO
    // (CAPABILITIES: replaying or synced).
    void set_on_ready(std::function<void()> f) { on_ready_ = std::move(f); }

private:
    void attempt();
    void on_event(uint32_t events);
    void service();
    void flush();
    void drop(const std::string& why);
    void schedule_reconnect();
    void update_interest();
    void watch_path();
    void on_inotify();

    control::Loop& loop_;
    ZapiSession& s_;
    std::string path_;
    int fd_ = -1;
    int ino_ = -1;  // inotify on the socket's folder
    int quick_retries_ = 0;  // after the socket appeared: zebra may not listen() yet
    bool want_out_ = false;
    bool stopped_ = true;
    bool service_scheduled_ = false;
    bool ready_ = false;  // on_ready_ called on this connection
    std::function<void()> on_ready_;
    control::Loop::TimerId reconnect_timer_ = 0, tick_timer_ = 0, service_timer_ = 0;
    uint64_t reconnect_at_ns_ = 0;
    ZebraClientStats stats_;
    std::string last_error_;
};

uint64_t now_ms();

}  // namespace nimbus::routing
