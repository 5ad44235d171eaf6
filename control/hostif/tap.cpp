#include "control/hostif/tap.h"

#include <fcntl.h>
#include <net/if.h>  // before the linux/ headers (libc-compat)
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::hostif {

bool Tap::open(const std::string& name, std::string* err) {
    if (name.size() >= IFNAMSIZ) {
        *err = fmt::format("host interface name '{}' is too long", name);
        return false;
    }
    if (if_nametoindex(name.c_str()) != 0) {
        *err = fmt::format("host interface '{}': an interface of that name already exists", name);
        return false;
    }
    fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) {
        *err = fmt::format("/dev/net/tun: {}", strerror(errno));
        return false;
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;  // whole Ethernet frames, no extra header
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, TUNSETIFF, &ifr) < 0) {
        *err = fmt::format("creating host interface '{}': {}", name, strerror(errno));
        close();
        return false;
    }
    name_ = ifr.ifr_name;
    ifindex_ = int(if_nametoindex(name_.c_str()));
    return true;
}

void Tap::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ifindex_ = 0;
}

}  // namespace nimbus::hostif
