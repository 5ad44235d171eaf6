// Keeps the kernel's own stack off the interfaces that af_packet ports sit
// on. The packet socket sees every frame before the kernel's IP stack does;
// without this guard the kernel would also answer ARP and pings arriving on
// the veth itself (Linux accepts packets for any local address on any
// interface), so the box would answer twice and transit traffic could leak
// around the dataplane. An nftables netdev ingress chain drops them after the
// packet socket has its copy. (af_xdp ports need no guard: XDP hands their
// frames to the socket before the stack.)
#pragma once

#include <string>
#include <vector>

namespace nimbus::hostif {

bool guard_underlay(const std::string& table, const std::vector<std::string>& ifaces, std::string* err);
void unguard_underlay(const std::string& table);
// Runs argv with `input` on stdin; returns the exit status (-1: not run).
int run_command(const std::vector<std::string>& argv, const std::string& input, std::string* output);

}  // namespace nimbus::hostif
