#include "control/daemon/sdnotify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace nimbus {

bool sd_notify_msg(const std::string& msg) {
    const char* path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) return false;
    std::memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;  // abstract namespace
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t r = sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                       socklen_t(offsetof(sockaddr_un, sun_path) + n));
    close(fd);
    return r == ssize_t(msg.size());
}

uint64_t sd_watchdog_usec() {
    const char* us = getenv("WATCHDOG_USEC");
    const char* pid = getenv("WATCHDOG_PID");
    if (!us) return 0;
    if (pid && std::strtoul(pid, nullptr, 10) != unsigned(getpid())) return 0;
    return std::strtoull(us, nullptr, 10);
}

}  // namespace nimbus
