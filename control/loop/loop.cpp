#include "control/loop/loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "src/common/clock.h"

namespace nimbus::control {

Loop::Loop() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep_ < 0 || tfd_ < 0) {
        perror("nimbusd: epoll/timerfd");
        abort();
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = tfd_;
    epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &ev);
}

Loop::~Loop() {
    close(tfd_);
    close(ep_);
}

uint64_t Loop::now() { return mono_ns(); }

void Loop::add_fd(int fd, uint32_t events, FdCb cb) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("nimbusd: epoll_ctl add");
        abort();  // a broken invariant: we never add a bad or duplicate fd
    }
    fds_[fd] = std::move(cb);
}

void Loop::mod_fd(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

void Loop::del_fd(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    fds_.erase(fd);
}

Loop::TimerId Loop::at(uint64_t deadline, TimerCb cb) {
    TimerId id = next_id_++;
    timers_[id] = Timer{deadline, 0, std::move(cb)};
    by_deadline_.emplace(deadline, id);
    arm_timerfd();
    return id;
}

Loop::TimerId Loop::every_ms(uint64_t ms, TimerCb cb) {
    uint64_t period = ms * 1000000ull;
    TimerId id = next_id_++;
    timers_[id] = Timer{now() + period, period, std::move(cb)};
    by_deadline_.emplace(timers_[id].deadline, id);
    arm_timerfd();
    return id;
}

void Loop::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    auto range = by_deadline_.equal_range(it->second.deadline);
    for (auto d = range.first; d != range.second; ++d)
        if (d->second == id) {
            by_deadline_.erase(d);
            break;
        }
    timers_.erase(it);
}

void Loop::arm_timerfd() {
    uint64_t next = by_deadline_.empty() ? 0 : by_deadline_.begin()->first;
    if (next == armed_for_) return;
    armed_for_ = next;
    itimerspec its{};
    if (next) {
        its.it_value.tv_sec = time_t(next / 1000000000ull);
        its.it_value.tv_nsec = long(next % 1000000000ull);
    }
    timerfd_settime(tfd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

void Loop::run_timers() {
    uint64_t t = now();
    while (!by_deadline_.empty() && by_deadline_.begin()->first <= t) {
        TimerId id = by_deadline_.begin()->second;
        by_deadline_.erase(by_deadline_.begin());
        auto it = timers_.find(id);
        if (it == timers_.end()) continue;
        if (it->second.period) {
            it->second.deadline = std::max(it->second.deadline + it->second.period, t);
            by_deadline_.emplace(it->second.deadline, id);
            TimerCb cb = it->second.cb;  // copy: the callback may cancel itself
            timed(cb);
        } else {
            TimerCb cb = std::move(it->second.cb);
            timers_.erase(it);
            timed(cb);
        }
    }
    armed_for_ = 0;  // force re-arm
    arm_timerfd();
}

void Loop::run() {
    owner_ = std::this_thread::get_id();
    std::vector<epoll_event> evs(64);
    while (!stop_) {
        int timeout = -1;
        if (pre_sleep_ && pre_sleep_()) timeout = 0;
        int n = epoll_wait(ep_, evs.data(), int(evs.size()), timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("nimbusd: epoll_wait");
            abort();
        }
        for (int i = 0; i < n && !stop_; i++) {
            int fd = evs[i].data.fd;
            if (fd == tfd_) {
                uint64_t x;
                ssize_t r = read(tfd_, &x, sizeof x);
                (void)r;
                run_timers();
                continue;
            }
            auto it = fds_.find(fd);
            if (it == fds_.end()) continue;  // removed by an earlier callback
            FdCb cb = it->second;            // copy: the callback may remove itself
            timed([&] { cb(evs[i].events); });
        }
        if (timeout == 0 && idle_work_) timed(idle_work_);
        // Timers that fell due while callbacks ran.
        if (!by_deadline_.empty() && by_deadline_.begin()->first <= now()) run_timers();
    }
}

}  // namespace nimbus::control
