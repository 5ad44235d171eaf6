#include "control/routing/zebra_client.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "src/common/clock.h"
#include "src/common/log.h"

namespace nimbus::routing {

uint64_t now_ms() { return mono_ns() / 1000000ull; }

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 16;  // then yield to the rest of the loop
}  // namespace

ZebraClient::ZebraClient(control::Loop& loop, ZapiSession& session, std::string path)
    : loop_(loop), s_(session), path_(std::move(path)) {}

ZebraClient::~ZebraClient() { stop(); }

void ZebraClient::start() {
    stopped_ = false;
    watch_path();
    tick_timer_ = loop_.every_ms(500, [this] {
        s_.on_tick(now_ms());
        if (s_.want_disconnect()) drop(s_.last_error());
    });
    attempt();
}

void ZebraClient::stop() {
    stopped_ = true;
    for (auto* t : {&reconnect_timer_, &tick_timer_, &service_timer_})
        if (*t) loop_.cancel(*t), *t = 0;
    service_scheduled_ = false;
    if (ino_ >= 0) {
        loop_.del_fd(ino_);
        ::close(ino_);
        ino_ = -1;
    }
    if (fd_ >= 0) {
        loop_.del_fd(fd_);
        ::close(fd_);
        fd_ = -1;
        s_.on_disconnected(now_ms());
    }
}

uint64_t ZebraClient::next_attempt_in_ms() const {
    if (fd_ >= 0 || !reconnect_timer_) return 0;
    uint64_t now = control::Loop::now();
    return reconnect_at_ns_ > now ? (reconnect_at_ns_ - now) / 1000000ull : 0;
}

void ZebraClient::attempt() {
    reconnect_timer_ = 0;
    if (stopped_ || fd_ >= 0) return;
    stats_.connect_attempts++;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        last_error_ = fmt::format("socket: {}", strerror(errno));
        stats_.connect_failures++;
        return schedule_reconnect();
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_.c_str());
    // A unix stream connect completes at once or fails at once (EAGAIN when
    // zebra's backlog is full: try again later like any other failure).
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        ::close(fd);
        stats_.connect_failures++;
        std::string msg = fmt::format("connect {}: {}", path_, strerror(e));
        if (msg != last_error_)
            LOG_INFO("zapi", "event=connect_failed path={} error=\"{}\" (zebra not running yet?)", path_,
                     strerror(e));
        last_error_ = msg;
        return schedule_reconnect();
    }
    fd_ = fd;
    quick_retries_ = 0;
    last_error_.clear();
    want_out_ = false;
    ready_ = false;
    loop_.add_fd(fd_, EPOLLIN, [this](uint32_t ev) { on_event(ev); });
    LOG_INFO("zapi", "event=connected path={}", path_);
    s_.on_connected(now_ms());
    service();
}

void ZebraClient::watch_path() {
    auto slash = path_.rfind('/');
    if (slash == std::string::npos) return;
    std::string dir = slash == 0 ? "/" : path_.substr(0, slash);
    ino_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino_ < 0) return;
    if (inotify_add_watch(ino_, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0) {
        // The folder may not exist yet (zebra creates its run dir): backoff only.
        LOG_DEBUG("zapi", "event=no_inotify dir={} error=\"{}\"", dir, strerror(errno));
        ::close(ino_);
        ino_ = -1;
        return;
    }
    loop_.add_fd(ino_, EPOLLIN, [this](uint32_t) { on_inotify(); });
}

void ZebraClient::on_inotify() {
    alignas(inotify_event) char buf[4096];
    std::string base = path_.substr(path_.rfind('/') + 1);
    bool ours = false;
    for (;;) {
        ssize_t n = ::read(ino_, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t off = 0; off + ssize_t(sizeof(inotify_event)) <= n;) {
            auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
            if (ev->len && base == ev->name) ours = true;
            off += ssize_t(sizeof(inotify_event)) + ev->len;
        }
    }
    if (!ours || fd_ >= 0 || stopped_ || !reconnect_timer_) return;
    stats_.socket_appeared++;
    loop_.cancel(reconnect_timer_);
    quick_retries_ = 10;
    attempt();
}

void ZebraClient::schedule_reconnect() {
    if (stopped_ || reconnect_timer_) return;
    uint64_t d = quick_retries_ > 0 ? (quick_retries_--, 50) : s_.next_reconnect_delay_ms();
    reconnect_at_ns_ = control::Loop::now() + d * 1000000ull;
    reconnect_timer_ = loop_.after_ms(d, [this] { attempt(); });
}

void ZebraClient::drop(const std::string& why) {
    if (fd_ < 0) return;
    LOG_WARN("zapi", "event=disconnected path={} reason=\"{}\"", path_, why);
    last_error_ = why;
    loop_.del_fd(fd_);
    ::close(fd_);
    fd_ = -1;
    want_out_ = false;
    ready_ = false;
    s_.on_disconnected(now_ms());
    schedule_reconnect();
}

void ZebraClient::on_event(uint32_t events) {
    if (fd_ < 0) return;
    if (events & EPOLLIN) {
        uint8_t buf[kReadChunk];
        for (int i = 0; i < kReadsPerEvent; i++) {
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n > 0) {
                stats_.bytes_rx += uint64_t(n);
                s_.on_bytes(std::span<const uint8_t>(buf, size_t(n)), now_ms());
                if (s_.want_disconnect()) return drop(s_.last_error());
                continue;
            }
            if (n == 0) return drop("zebra closed the connection");
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return drop(fmt::format("read: {}", strerror(errno)));
        }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        return drop("socket hung up");
    }
    if (events & EPOLLOUT) flush();
    if (!ready_ && (s_.phase() == ZapiPhase::Replaying || s_.phase() == ZapiPhase::Synced)) {
        ready_ = true;
        if (on_ready_) on_ready_();
    }
    service();
}

void ZebraClient::kick() {
    if (fd_ < 0 || service_scheduled_ || stopped_) return;
    service_scheduled_ = true;
    service_timer_ = loop_.after_ms(0, [this] {
        service_timer_ = 0;
        service_scheduled_ = false;
        service();
    });
}

// One batch of route messages per loop turn, then flush; another turn is
// scheduled while the session has more and the socket keeps up.
void ZebraClient::service() {
    if (fd_ < 0) return;
    s_.pump();
    flush();
    if (fd_ >= 0 && !want_out_ && s_.has_work()) kick();
}

void ZebraClient::flush() {
    while (fd_ >= 0) {
        auto out = s_.pending_output();
        if (out.empty()) break;
        ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            stats_.bytes_tx += uint64_t(n);
            s_.consume_output(size_t(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0 && errno == EINTR) continue;
        stats_.write_errors++;
        return drop(fmt::format("write: {}", strerror(errno)));
    }
    update_interest();
}

void ZebraClient::update_interest() {
    if (fd_ < 0) return;
    bool want = !s_.pending_output().empty();
    if (want == want_out_) return;
    want_out_ = want;
    loop_.mod_fd(fd_, uint32_t(EPOLLIN) | (want ? uint32_t(EPOLLOUT) : 0u));
}

}  // namespace nimbus::routing
