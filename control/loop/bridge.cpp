#include "control/loop/bridge.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace nimbus::control {

Bridge::Bridge(Loop& loop) : loop_(loop) {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop_.add_fd(efd_, EPOLLIN, [this](uint32_t) { drain(); });
}

Bridge::~Bridge() {
    close();
    loop_.del_fd(efd_);
    ::close(efd_);
}

bool Bridge::post(std::function<void()> f) {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (closed_) return false;
        q_.push_back(std::move(f));
    }
    uint64_t one = 1;
    ssize_t r = write(efd_, &one, sizeof one);
    (void)r;
    return true;
}

void Bridge::close() {
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    q_.clear();  // promises break: waiting callers get broken_promise / time out
}

void Bridge::drain() {
    uint64_t v;
    ssize_t r = read(efd_, &v, sizeof v);
    (void)r;
    for (;;) {
        std::function<void()> f;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (q_.empty()) return;
            f = std::move(q_.front());
            q_.pop_front();
        }
        f();
    }
}

}  // namespace nimbus::control
