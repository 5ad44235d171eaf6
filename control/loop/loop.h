// The control thread's event loop: epoll over file descriptors plus timers
// (one timerfd armed for the nearest deadline). Single-threaded: every
// callback runs on the control thread, one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>

namespace nimbus::control {

class Loop {
public:
    using FdCb = std::function<void(uint32_t events)>;
    using TimerCb = std::function<void()>;
    using TimerId = uint64_t;

    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    void add_fd(int fd, uint32_t events, FdCb cb);
    void mod_fd(int fd, uint32_t events);
    void del_fd(int fd);

    // Monotonic nanoseconds.
    static uint64_t now();
    TimerId at(uint64_t deadline_ns, TimerCb cb);
    TimerId after_ms(uint64_t ms, TimerCb cb) { return at(now() + ms * 1000000ull, std::move(cb)); }
    // A timer that re-arms itself every period until cancelled.
    TimerId every_ms(uint64_t ms, TimerCb cb);
    void cancel(TimerId id);

    // Called before each sleep; return true when there is work already
    // pending (the loop then polls without sleeping and calls `on_idle_work`).
    void set_pre_sleep(std::function<bool()> f, std::function<void()> work) {
        pre_sleep_ = std::move(f);
        idle_work_ = std::move(work);
    }

    void run();
    void stop() { stop_ = true; }
    // True on the thread that runs (or will run) the loop: the one that
    // created it, or the last to call run().
    bool in_loop_thread() const { return std::this_thread::get_id() == owner_.load(std::memory_order_relaxed); }
    bool stopping() const { return stop_; }

    // How long callbacks hold the thread. Everything on it (VRRP adverts,
    // IKE, ZAPI, the CLI) waits while one runs: an HA peer declares this box
    // dead after ~3 advert intervals without one.
    static constexpr uint64_t kSlowNs = 50'000'000;  // 50 ms
    struct Stats {
        uint64_t callbacks = 0;
        uint64_t slow = 0;     // callbacks that ran longer than kSlowNs
        uint64_t max_ns = 0;   // the longest one
    };
    const Stats& stats() const { return stats_; }

private:
    template <class F>
    void timed(F&& f) {
        uint64_t t0 = now();
        f();
        uint64_t dt = now() - t0;
        stats_.callbacks++;
        if (dt > kSlowNs) stats_.slow++;
        if (dt > stats_.max_ns) stats_.max_ns = dt;
    }

    void arm_timerfd();
    void run_timers();

    int ep_ = -1;
    int tfd_ = -1;
    std::atomic<std::thread::id> owner_{std::this_thread::get_id()};
    bool stop_ = false;
    std::unordered_map<int, FdCb> fds_;
    struct Timer {
        uint64_t deadline;
        uint64_t period;  // 0: one-shot
        TimerCb cb;
    };
    std::multimap<uint64_t, TimerId> by_deadline_;
    std::unordered_map<TimerId, Timer> timers_;
    TimerId next_id_ = 1;
    uint64_t armed_for_ = 0;
    std::function<bool()> pre_sleep_;
    std::function<void()> idle_work_;
    Stats stats_;
};

}  // namespace nimbus::control
