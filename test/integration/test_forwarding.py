"""nimbusd as a router between two hosts, on af_packet and af_xdp vdevs:
forwarding both ways (IPv4, IPv6), the exception path to the box's own
addresses, TCP throughput, routes changing under traffic, ICMP errors, punt
policing and a clean shutdown."""
import json
import os
import re
import time

import pytest

from nimbuslab import run, wait_until

PMDS = ["af_packet", "af_xdp"]


def config(pmd, routes="", extra_port="", punt=""):
    dev = {"af_packet": "net_af_packet{n},iface={ifc},framecnt=4096", "af_xdp": "net_af_xdp{n},iface={ifc}"}[pmd]
    return f"""
node:
  name: "@NODE@"
dataplane:
  workers: 1
  idle_sleep_us: 50
  eal: [--no-huge, -m, "512"]
{punt}
mgmt:
  socket: "@SOCK@"
ports:
  - name: lan0
    device: "{dev.format(n=0, ifc='pa')}"
    addresses: [10.1.0.1/24, "2001:db8:1::1/64"]
  - name: lan1
    device: "{dev.format(n=1, ifc='pb')}"
    addresses: [10.2.0.1/24, "2001:db8:2::1/64"]
{extra_port.replace('DEV', dev.format(n=2, ifc='pc'))}
{routes}
"""


def topology(lab, with_c=False):
    """A — R — B (and C when asked). Hosts route everything through R."""
    a, r, b = lab.ns("a"), lab.ns("r"), lab.ns("b")
    lab.veth(a, "a0", r, "pa")
    lab.veth(b, "b0", r, "pb")
    hosts = [(a, "a0", 1), (b, "b0", 2)]
    c = None
    if with_c:
        c = lab.ns("c")
        lab.veth(c, "c0", r, "pc")
        hosts.append((c, "c0", 3))
    for h, ifc, n in hosts:
        h.addr(ifc, f"10.{n}.0.2/24")
        h.addr(ifc, f"2001:db8:{n}::2/64")
        h.route("default", "via", f"10.{n}.0.1")
        h.route("default", "via", f"2001:db8:{n}::1")
        h.no_offload(ifc)
    return a, r, b, c


@pytest.mark.parametrize("pmd", PMDS)
def test_ping_both_ways(lab, pmd):
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config(pmd)).start()
    # The first packet to each host waits while the kernel resolves the
    # neighbour and is then re-injected: no loss even on the first ping
    # (each reply may take a while on a loaded machine: -W 5).
    assert a.ping_ok("10.2.0.2", 3, wait=5), "IPv4 A->B"
    assert b.ping_ok("10.1.0.2", 3, wait=5), "IPv4 B->A"
    assert a.ping_ok("2001:db8:2::2", 3, wait=5), "IPv6 A->B"
    assert b.ping_ok("2001:db8:1::2", 3, wait=5), "IPv6 B->A"
    c0 = d.port_counters("lan0")
    c1 = d.port_counters("lan1")
    # 12 echo requests and 12 replies crossed the dataplane each way.
    assert c0["rx_packets"] >= 12 and c1["tx_packets"] >= 12
    assert c1["rx_packets"] >= 12 and c0["tx_packets"] >= 12
    assert d.counters()["host"]["held_resolved"] >= 1
    routes = d.cli("show", "ip", "route")
    assert {x["prefix"] for x in routes} >= {"10.1.0.0/24", "10.2.0.0/24", "10.1.0.1/32"}
    ifs = {i["name"]: i for i in d.cli("show", "interfaces")}
    assert ifs["lan0"]["link"] == "up" and ifs["lan0"]["driver"] == f"net_{pmd}"


@pytest.mark.parametrize("pmd", PMDS)
def test_exception_path(lab, pmd):
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config(pmd)).start()
    # tcpdump on the host interface sees what is punted to the box.
    cap = r.popen(["tcpdump", "-l", "-n", "-i", "lan0", "-c", "2", "icmp"], "tcpdump.log")
    wait_until(lambda: "listening on" in open(os.path.join(lab.dir, "tcpdump.log")).read(), 10, "tcpdump to start")
    assert a.ping_ok("10.1.0.1", 3), "ping the box's near address"
    cap.wait(timeout=10)
    assert "ICMP echo request" in open(os.path.join(lab.dir, "tcpdump.log")).read()
    assert a.ping_ok("2001:db8:1::1", 3), "ping the box's near IPv6 address"
    assert a.ping_ok("10.2.0.1", 3), "ping the box's far address (routed to local)"
    # An ordinary TCP socket on the box.
    srv = r.popen(["/usr/bin/python3", "-c",
                   "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                   "s.bind(('10.1.0.1',7007));s.listen();c,_=s.accept();c.sendall(b'hello from the box');c.close()"],
                  "tcpserver.log")
    def connect():
        out = a.run(["/usr/bin/python3", "-c",
                     "import socket;s=socket.create_connection(('10.1.0.1',7007),timeout=2);print(s.recv(100).decode())"],
                    check=False)
        return "hello from the box" in out.stdout
    wait_until(connect, 15, "a TCP connection to a socket on the box")
    srv.wait(timeout=5)
    # The box's own traffic leaves through the dataplane.
    before = d.port_counters("lan1")["tx_packets"]
    assert r.ping_ok("10.2.0.2", 3), "the box pings a host"
    assert r.ping_ok("2001:db8:2::2", 3), "the box pings a host over IPv6"
    assert d.port_counters("lan1")["tx_packets"] >= before + 6
    punt = {p["class"]: p for p in d.counters()["punt"]}
    assert punt["icmp"]["punted"] >= 9 and punt["arp_nd"]["punted"] >= 1


@pytest.mark.parametrize("pmd", PMDS)
def test_iperf3_tcp(lab, pmd):
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config(pmd)).start()
    b.popen(["iperf3", "-s", "-1", "-B", "10.2.0.2"], "iperf3-server.log")
    wait_until(lambda: b.run("ss -ltn | grep -q ':5201'", check=False).returncode == 0, 10, "iperf3 server")
    out = a.run(["iperf3", "-c", "10.2.0.2", "-t", "3", "-J"], timeout=30)
    res = json.loads(out.stdout)
    bps = res["end"]["sum_received"]["bits_per_second"]
    # A sanity floor, not a benchmark: TCP really flows through the dataplane.
    assert bps > 20e6, f"only {bps / 1e6:.1f} Mbit/s"
    assert d.port_counters("lan1")["tx_bytes"] >= res["end"]["sum_received"]["bytes"]


def test_routes_change_under_traffic(lab):
    a, r, b, c = topology(lab, with_c=True)
    for h in (b, c):
        h.addr("lo", "10.99.0.1/32")  # the same service address behind both
    port_c = """  - name: lan2
    device: "DEV"
    addresses: [10.3.0.1/24, "2001:db8:3::1/64"]"""
    via = lambda gw: f"routes:\n  - {{ prefix: 10.99.0.0/24, via: {gw} }}\n" if gw else ""
    d = lab.nimbusd(r, "r", config("af_packet", via("10.2.0.2"), port_c)).start()
    ping = a.popen(["ping", "-D", "-i", "0.02", "-W", "1", "10.99.0.1"], "ping.log")

    def tx(port):
        return d.port_counters(port)["tx_packets"]

    def flowing(port, n=20):
        t0 = tx(port)
        return wait_until(lambda: tx(port) >= t0 + n, 10, f"traffic out of {port}")

    flowing("lan1")
    d.reload(config("af_packet", via("10.3.0.2"), port_c))
    wait_until(lambda: any(x["prefix"] == "10.99.0.0/24" and x["nexthop"].get("via") == "10.3.0.2"
                           for x in d.cli("show", "ip", "route")), 10, "the new route")
    flowing("lan2")
    t1 = tx("lan1")
    flowing("lan2")  # a while later ...
    assert tx("lan1") - t1 < 20, "traffic still goes to the old next hop"
    # Route gone: the box answers with ICMP net unreachable.
    d.reload(config("af_packet", "", port_c))
    wait_until(lambda: not any(x["prefix"] == "10.99.0.0/24" for x in d.cli("show", "ip", "route")), 10,
               "the route to go")
    t2 = tx("lan2")
    wait_until(lambda: d.counters()["host"]["icmp_errors_sent"] >= 5, 10, "ICMP unreachable errors")
    assert tx("lan2") - t2 < 5
    d.reload(config("af_packet", via("10.2.0.2"), port_c))
    flowing("lan1")
    ping.terminate()
    ping.wait(timeout=5)
    assert d.proc.poll() is None, "nimbusd must survive route churn"
    log = open(os.path.join(lab.dir, "ping.log")).read()
    assert "Destination Net Unreachable" in log


def test_icmp_errors(lab):
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config("af_packet")).start()
    wait_until(lambda: a.ping_ok("10.2.0.2", 1), 15, "IPv4 A->B")
    wait_until(lambda: a.ping_ok("2001:db8:2::2", 1), 15, "IPv6 A->B")
    out = a.ping("10.2.0.2", 1, extra=["-t", "1"]).stdout
    assert re.search(r"From 10\.1\.0\.1 .*Time to live exceeded", out), out
    out = a.ping("10.77.0.1", 1).stdout
    assert re.search(r"From 10\.1\.0\.1 .*Destination Net Unreachable", out), out
    out = a.ping("2001:db8:2::2", 1, extra=["-t", "1"]).stdout
    assert re.search(r"From 2001:db8:1::1 .*Time exceeded: Hop limit", out), out
    out = a.ping("2001:db8:77::1", 1).stdout
    assert re.search(r"From 2001:db8:1::1 .*Destination unreachable: No route", out), out
    drops = d.port_counters("lan0")["drops"]
    assert drops["ttl_exceeded"] >= 2 and drops["no_route"] >= 2


def test_punt_policing_protects_other_classes(lab):
    a, r, b, _ = topology(lab)
    punt = "  punt:\n    ike: { pps: 500, burst: 50 }\n"
    d = lab.nimbusd(r, "r", config("af_packet", punt=punt)).start()
    assert a.ping_ok("10.1.0.1", 2)
    flood = a.popen(["/usr/bin/python3", "-c",
                     "import socket,time\n"
                     "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                     "t=time.time()\n"
                     "while time.time()-t<4:\n"
                     "  for _ in range(200): s.sendto(b'\\x00'*64,('10.1.0.1',500))\n"],
                    "flood.log")
    wait_until(lambda: {p["class"]: p for p in d.counters()["punt"]}["ike"]["policed"] > 100, 10,
               "the IKE flood to be policed")
    # While IKE is flooding, ICMP to the box still gets through untouched.
    p = a.ping("10.1.0.1", 40, interval=0.05, wait=1)
    flood.wait(timeout=10)
    m = re.search(r"(\d+) received", p.stdout)
    assert m and int(m.group(1)) >= 39, p.stdout
    punt = {x["class"]: x for x in d.counters()["punt"]}
    assert punt["icmp"]["policed"] == 0
    assert d.port_counters("lan0")["drops"]["punt_policed"] >= punt["ike"]["policed"]


def test_clean_shutdown(lab):
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config("af_packet")).start()
    assert a.ping_ok("10.2.0.2", 1)
    links = r.run(["ip", "-o", "link"]).stdout
    assert "lan0" in links and "lan1" in links
    assert d.stop() == 0
    links = r.run(["ip", "-o", "link"]).stdout
    assert "lan0" not in links and "lan1" not in links, "host interfaces must be removed"
    assert not os.path.exists(d.sock), "CLI socket must be removed"
    assert not os.path.exists(f"/var/run/dpdk/nimbus-{d.node}"), "DPDK runtime files must be removed"
    assert "nimbus_" not in r.run(["nft", "list", "tables"]).stdout, "the nft guard must be removed"


def test_link_state_follows_the_wire(lab):
    """A port whose cable (the veth peer) goes down shows down in show
    interfaces and in metrics' source of truth, and comes back."""
    a, r, b, _ = topology(lab)
    d = lab.nimbusd(r, "r", config("af_packet")).start()

    def link(port):
        return {i["name"]: i for i in d.cli("show", "interfaces")}[port]["link"]

    assert link("lan0") == "up"
    a.run(["ip", "link", "set", "a0", "down"])
    wait_until(lambda: link("lan0") == "down", 10, "lan0 to show down")
    assert link("lan1") == "up"
    # The host interface's carrier follows, so the kernel sees it too.
    wait_until(lambda: "NO-CARRIER" in r.run(["ip", "link", "show", "lan0"]).stdout, 10, "the TAP to lose carrier")
    a.run(["ip", "link", "set", "a0", "up"])
    wait_until(lambda: link("lan0") == "up", 10, "lan0 to come back")
