#!/bin/bash
# The nimbus demo: installs what is missing (apt), builds, and runs nimbusd
# as a router between two hosts in network namespaces on its embedded default
# config; shows its interfaces, routes, counters and traffic passing through
# it, then cleans everything up. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (namespaces, DPDK)"; exit 1; }
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
NIMBUSD=$PWD/$BUILD_DIR/src/nimbusd
NIMBUS=$PWD/$BUILD_DIR/src/nimbus

P=nbdemo$$
A=$P-host-a R=$P-nimbus B=$P-host-b
WORK=$(mktemp -d /tmp/$P.XXXX)
PID=
cleanup() {
    set +e
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    for n in $A $R $B; do ip netns pids $n 2>/dev/null | xargs -r kill -9; ip netns del $n 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "lab: host-a (10.1.0.2) -- [lan0] nimbusd [lan1] -- host-b (10.2.0.2), IPv4 and IPv6"
for n in $A $R $B; do ip netns add $n; ip -n $n link set lo up; done
ip link add a0 netns $A type veth peer name pa netns $R
ip link add b0 netns $B type veth peer name pb netns $R
ip -n $A addr add 10.1.0.2/24 dev a0; ip -n $A addr add 2001:db8:1::2/64 dev a0 nodad
ip -n $B addr add 10.2.0.2/24 dev b0; ip -n $B addr add 2001:db8:2::2/64 dev b0 nodad
for x in "$A a0 1" "$B b0 2"; do
    set -- $x
    ip -n $1 link set $2 up
    ip -n $1 route add default via 10.$3.0.1
    ip -n $1 -6 route add default via 2001:db8:$3::1
    ip netns exec $1 ethtool -K $2 tx off tso off gso off >/dev/null
done

cat > "$WORK/nimbus.yaml" <<YAML
# The embedded default: a router with two ports on af_packet vdevs.
node: { name: $P }
dataplane:
  workers: 1
  idle_sleep_us: 50
  eal: [--no-huge, -m, "512"]
mgmt: { socket: $WORK/nimbus.sock }
ports:
  - { name: lan0, device: "net_af_packet0,iface=pa,framecnt=4096", addresses: [10.1.0.1/24, "2001:db8:1::1/64"] }
  - { name: lan1, device: "net_af_packet1,iface=pb,framecnt=4096", addresses: [10.2.0.1/24, "2001:db8:2::1/64"] }
routes:
  - { prefix: 198.51.100.0/24, blackhole: true }
YAML
say "config ($WORK/nimbus.yaml)"
cat "$WORK/nimbus.yaml"
run "$NIMBUSD" --check -c "$WORK/nimbus.yaml"

say "starting nimbusd in namespace $R"
ip netns exec $R "$NIMBUSD" -c "$WORK/nimbus.yaml" > "$WORK/nimbusd.log" 2>&1 &
PID=$!
for i in $(seq 100); do
    "$NIMBUS" -s "$WORK/nimbus.sock" show version >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || { cat "$WORK/nimbusd.log"; exit 1; }
    sleep 0.1
done
N() { printf '$ nimbus %s\n' "$*"; "$NIMBUS" -s "$WORK/nimbus.sock" "$@"; }
N show version
N show interfaces

say "traffic through the dataplane"
run ip netns exec $A ping -c 3 -i 0.2 10.2.0.2
run ip netns exec $A ping -6 -c 3 -i 0.2 2001:db8:2::2
say "the box itself answers through its host interfaces (exception path)"
run ip netns exec $A ping -c 2 -i 0.2 10.1.0.1
run ip netns exec $R ip -br addr show lan0
say "TCP through nimbusd (iperf3, 3 s)"
ip netns exec $B iperf3 -s -1 -B 10.2.0.2 >/dev/null 2>&1 &
for i in $(seq 50); do ip netns exec $B ss -ltn | grep -q ':5201' && break; sleep 0.1; done
run ip netns exec $A iperf3 -c 10.2.0.2 -t 3 -f m | grep -E 'sender|receiver'
N show ip route
N show ipv6 route
N show counters
say "done: stopping nimbusd (host interfaces and runtime files go with it)"
kill $PID; wait $PID; PID=
tail -1 "$WORK/nimbusd.log"
