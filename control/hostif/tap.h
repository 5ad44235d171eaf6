// A kernel TAP device: the host interface paired with a dataplane port
// (linux-cp style). The kernel owns the port's addresses through it.
#pragma once

#include <string>

namespace nimbus::hostif {

class Tap {
public:
    Tap() = default;
    ~Tap() { close(); }
    Tap(const Tap&) = delete;
    Tap& operator=(const Tap&) = delete;

    // Creates (non-persistent) TAP `name`; it disappears when closed.
    bool open(const std::string& name, std::string* err);
    void close();
    int fd() const { return fd_; }
    int ifindex() const { return ifindex_; }
    const std::string& name() const { return name_; }

private:
    int fd_ = -1;
    int ifindex_ = 0;
    std::string name_;
};

}  // namespace nimbus::hostif
