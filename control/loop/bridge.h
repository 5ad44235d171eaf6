// Runs work from other threads (the HTTPS server's pool) on the control
// thread and waits for the result: the control plane stays single-threaded.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>

#include "control/loop/loop.h"

namespace nimbus::control {

class Bridge {
public:
    explicit Bridge(Loop& loop);
    ~Bridge();
    // From any thread: runs f on the control thread; nullopt on timeout or
    // when the bridge is closing. On the control thread itself f runs at
    // once (waiting for the loop there would wait forever).
    template <class R>
    std::optional<R> call(std::function<R()> f, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        if (loop_.in_loop_thread()) return f();
        auto p = std::make_shared<std::promise<R>>();
        auto fut = p->get_future();
        if (!post([p, f = std::move(f)] { p->set_value(f()); })) return std::nullopt;
        if (fut.wait_for(timeout) != std::future_status::ready) return std::nullopt;
        try {
            return fut.get();
        } catch (const std::future_error&) {  // dropped by close()
            return std::nullopt;
        }
    }
    bool post(std::function<void()> f);
    void close();  // control thread: refuse new work, drop queued work

private:
    void drain();
    Loop& loop_;
    int efd_ = -1;
    std::mutex mu_;
    std::deque<std::function<void()>> q_;
    bool closed_ = false;
};

}  // namespace nimbus::control
