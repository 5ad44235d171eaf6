#include "control/routing/fpm_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "control/routing/zebra_client.h"  // now_ms
#include "src/common/log.h"

namespace nimbus::routing {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 16;

std::string sockaddr_str(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
        auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        port = ntohs(s->sin_port);
        return fmt::format("{}:{}", host, port);
    }
    auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
    port = ntohs(s->sin6_port);
    return fmt::format("[{}]:{}", host, port);
}
}  // namespace

FpmListener::FpmListener(control::Loop& loop, FpmServer& server, Rib& rib, FpmRibMap map, IpAddr addr,
                         uint16_t port)
    : loop_(loop), srv_(server), rib_(rib), map_(std::move(map)), addr_(addr), port_(port) {}

FpmListener::~FpmListener() { stop(); }

std::string FpmListener::listen_str() const {
    return addr_.is_v4() ? fmt::format("{}:{}", addr_.str(), port_) : fmt::format("[{}]:{}", addr_.str(), port_);
}

bool FpmListener::start(std::string* err) {
    int fam = addr_.is_v4() ? AF_INET : AF_INET6;
    lfd_ = ::socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd_ < 0) {
        *err = fmt::format("FPM socket: {}", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (addr_.is_v4()) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port_);
        std::memcpy(&s->sin_addr, addr_.b.data(), 4);
        len = sizeof(sockaddr_in);
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port_);
        std::memcpy(&s->sin6_addr, addr_.b.data(), 16);
        len = sizeof(sockaddr_in6);
    }
    if (::bind(lfd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(lfd_, 4) != 0) {
        *err = fmt::format("FPM listen on {}: {}", listen_str(), strerror(errno));
        ::close(lfd_);
        lfd_ = -1;
        return false;
    }
    loop_.add_fd(lfd_, EPOLLIN, [this](uint32_t) { on_accept(); });
    // Replay completion (quiet period) and the optional disconnected flush.
    tick_ = loop_.every_ms(100, [this] {
        if (srv_.on_tick(now_ms()) || srv_.pending_changes()) apply();
    });
    LOG_INFO("fpm", "event=listening addr={}", listen_str());
    return true;
}

void FpmListener::stop() {
    if (tick_) loop_.cancel(tick_), tick_ = 0;
    if (conn_ >= 0) close_conn("shutting down");
    if (lfd_ >= 0) {
        loop_.del_fd(lfd_);
        ::close(lfd_);
        lfd_ = -1;
    }
}

void FpmListener::on_accept() {
    for (;;) {
        sockaddr_storage ss{};
        socklen_t sl = sizeof ss;
        int fd = ::accept4(lfd_, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;  // EAGAIN, or a connection that went away already
        stats_.accepts++;
        if (conn_ >= 0) {
            stats_.replaced++;
            close_conn("zebra opened a new connection");
        }
        conn_ = fd;
        peer_ = sockaddr_str(ss);
        int one = 1;
        setsockopt(conn_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        loop_.add_fd(conn_, EPOLLIN | EPOLLRDHUP, [this](uint32_t ev) { on_data(ev); });
        LOG_INFO("fpm", "event=zebra_connected peer={}", peer_);
        srv_.on_connected(now_ms());
    }
}

void FpmListener::close_conn(const char* why) {
    if (conn_ < 0) return;
    LOG_INFO("fpm", "event=zebra_disconnected peer={} reason=\"{}\"", peer_, why);
    loop_.del_fd(conn_);
    ::close(conn_);
    conn_ = -1;
    srv_.on_disconnected(now_ms());
    apply();
}

void FpmListener::on_data(uint32_t events) {
    uint8_t buf[kReadChunk];
    for (int i = 0; i < kReadsPerEvent && conn_ >= 0; i++) {
        ssize_t n = ::read(conn_, buf, sizeof buf);
        if (n > 0) {
            stats_.bytes_rx += uint64_t(n);
            srv_.on_bytes(std::span<const uint8_t>(buf, size_t(n)), now_ms());
            if (srv_.want_disconnect()) {
                apply();
                return close_conn("FPM stream lost its framing");
            }
            continue;
        }
        if (n == 0) {
            apply();
            return close_conn("zebra closed the connection");
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        apply();
        return close_conn(strerror(errno));
    }
    if (conn_ >= 0 && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) close_conn("connection hung up");
    apply();
}

void FpmListener::apply() {
    auto changes = srv_.take_changes();
    if (changes.empty()) return;
    apply_fpm_changes(rib_, map_, changes, rc_);
    std::string err;
    if (!rib_.commit(&err)) {
        stats_.commit_failures++;
        LOG_ERROR("fpm", "event=commit_failed error=\"{}\"", err);
    }
    if (on_change_) on_change_();
}

}  // namespace nimbus::routing
