// hostif::Netlink against the real kernel, each case in a network namespace
// of its own (a forked child: the test process keeps its namespace). Needs
// root; otherwise the cases are reported as skipped.
#include <catch2/catch.hpp>

#include <linux/neighbour.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "control/hostif/netlink.h"

using nimbus::IpAddr;
using nimbus::hostif::Netlink;

namespace {

// Runs `body` in a child inside a fresh network namespace with a veth d0
// (192.0.2.1/24, up; its peer d1 up, with no address; this kernel has no
// dummy driver). Returns the child's exit code: 0 when body returned true,
// 1 when false, 2 when the set-up failed (the reason on stderr).
int in_netns(const std::function<bool(Netlink&, int)>& body) {
    pid_t pid = fork();
    if (pid == 0) {
        auto fail = [](const char* what) {
            std::fprintf(stderr, "netlink_test: set-up failed: %s\n", what);
            _exit(2);
        };
        if (unshare(CLONE_NEWNET) != 0) fail("unshare(CLONE_NEWNET)");
        if (std::system("ip link add d0 type veth peer name d1 && ip link set d1 up && ip link set d0 up && ip addr add 192.0.2.1/24 dev d0") != 0)
            fail("ip link add d0 type veth");
        Netlink nl;
        std::string err;
        if (!nl.open(&err)) fail(err.c_str());
        int ifindex = int(if_nametoindex("d0"));
        _exit(body(nl, ifindex) ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

bool permanent(Netlink& nl, int ifindex, const IpAddr& a) {
    auto st = nl.neigh_state(ifindex, a);
    return st && (*st & NUD_PERMANENT);
}

}  // namespace

TEST_CASE("neigh_resolve leaves a permanent neighbour permanent", "[netlink]") {
    if (geteuid() != 0) {
        WARN("skip: needs root for a network namespace");
        return;
    }
    // The kernel clears NUD_PERMANENT on an NTF_USE request (the call this
    // guards); before the guard, a lab's or an operator's static entry became
    // an ordinary one, failed its probes and took its next hop down.
    int rc = in_netns([](Netlink& nl, int ifindex) {
        IpAddr peer = *IpAddr::parse("192.0.2.9");
        if (std::system("ip neigh replace 192.0.2.9 lladdr 02:00:00:00:00:09 dev d0 nud permanent") != 0) return false;
        if (!permanent(nl, ifindex, peer)) return false;
        std::string err;
        if (!nl.neigh_resolve(ifindex, peer, &err)) return false;
        return permanent(nl, ifindex, peer);
    });
    REQUIRE(rc == 0);
}

TEST_CASE("neigh_resolve starts resolution of an unknown neighbour", "[netlink]") {
    if (geteuid() != 0) {
        WARN("skip: needs root for a network namespace");
        return;
    }
    int rc = in_netns([](Netlink& nl, int ifindex) {
        IpAddr peer = *IpAddr::parse("192.0.2.10");
        if (nl.neigh_state(ifindex, peer)) return false;  // no entry yet
        std::string err;
        if (!nl.neigh_resolve(ifindex, peer, &err)) return false;
        auto st = nl.neigh_state(ifindex, peer);
        // Nobody answers behind d0: the kernel is probing (or has
        // already given up), and the entry is not permanent.
        return st && (*st & (NUD_INCOMPLETE | NUD_FAILED)) && !(*st & NUD_PERMANENT);
    });
    REQUIRE(rc == 0);
}
