"""The HA pair (control/ha): two nimbusd concentrators sharing virtual IPs and
virtual MACs on a LAN and a WAN (two Linux bridges in a namespace of their
own), a LAN client and a WAN host.

  client 10.0.0.10 ── brlan ── a: lan0 10.0.0.2   b: lan0 10.0.0.3   VIP 10.0.0.1, 2001:db8::1
  wanhost 192.0.2.100 ─ brwan ─ a: wan0 192.0.2.2  b: wan0 192.0.2.3  VIP 192.0.2.1

One sync group (VRID 51, adverts every 100 ms) with an instance per interface
and family. Failover is measured from the client's `ping -D -i 0.01` to the LAN
VIP (and through the VIP as its gateway to the WAN host): replies lost and
the longest gap between replies, median over several runs. RFC 5798 §6.1 at
100 ms: Master_Down_Interval of the priority-100 backup 0.3 + 156/256 x 0.1 =
0.361 s, Skew_Time 0.061 s. The issue's bounds: a crash costs at most 5
intervals (0.5 s = 50 replies at 100 pps), a graceful stop at most 2 (0.2 s =
20 replies). keepalived 2.2.7 takes part as a peer in both roles.

Both daemons run with the default idle sleep, so the two DPDK processes share
the box's two cores without spinning.

With a site tunnel: a strongSwan site at 192.0.2.50 keeps its IKE SA to the
WAN VIP; the master binds IKE to the VIPs (ike.listen: [wan0]) and the
backup does not; on takeover the site's DPD fails, it restarts its IKE SA
and reaches the new master; the outage of site LAN -> concentrator LAN
traffic is recorded. Tracking of nimbus's ZAPI session to zebra: zebra
stopped on the master hands over.

With FRR: each box has its own zebra + bgpd and an eBGP session to a core
router (FRR) over a link of its own; a static tunnel's prefix is injected by
the master only, so the core's route to the site follows a crash and the
preemption back (see the section before test_injected_routes_follow_the_master).
"""
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import time

import pytest

from nimbuslab import run, wait_until
import frrlab
import swan

LAN_VIP, LAN_VIP6, WAN_VIP = "10.0.0.1", "2001:db8::1", "192.0.2.1"
VMAC4, VMAC6 = "00:00:5e:00:01:33", "00:00:5e:00:02:33"
RUNS = int(os.environ.get("NIMBUS_HA_RUNS", "5"))


def nimbus_config(host, prio, interfaces=("lan0", "wan0"), preempt=True, extra_ha="", punt="", metrics=False,
                  extra_top="", extra_ports=""):
    vips = ["10.0.0.1/24", '"2001:db8::1/64"']
    if "wan0" in interfaces:
        vips.append("192.0.2.1/24")
    return f"""
node: {{ name: "@NODE@" }}
dataplane:
  workers: 1
  eal: [--no-huge, -m, "512"]
{punt}
mgmt: {{ socket: "@SOCK@"{', metrics: { listen: "127.0.0.1:9108" }' if metrics else ''} }}
ports:
  - {{ name: lan0, device: "net_af_packet0,iface=vlan,framecnt=4096", addresses: [10.0.0.{host}/24, "2001:db8::{host}/64"] }}
  - {{ name: wan0, device: "net_af_packet1,iface=vwan,framecnt=4096", addresses: [192.0.2.{host}/24] }}
{extra_ports}
routes:
  - {{ prefix: 198.51.100.0/24, via: 192.0.2.100 }}
ha:
  vrid: 51
  priority: {prio}
  preempt: {str(preempt).lower()}
  advert_interval_ms: 100
  interfaces: [{", ".join(interfaces)}]
  virtual_ips: [{", ".join(vips)}]
{extra_ha}
{extra_top}
"""


class HaLab:
    """The bridges, the client, the WAN host and the HA nodes."""

    def __init__(self, lab):
        self.lab = lab
        self.br = lab.ns("br")
        for b in ("brlan", "brwan"):
            self.br.run(["ip", "link", "add", b, "type", "bridge", "mcast_snooping", "0"])
            self.br.run(["ip", "link", "set", b, "up"])
        self.client = self.host("cl", "c0", "brlan", ["10.0.0.10/24", "2001:db8::10/64"])
        self.client.route("default", "via", LAN_VIP)
        self.wanhost = self.host("wh", "w0", "brwan", ["192.0.2.100/24"])
        self.wanhost.addr("lo", "198.51.100.1/32")
        self.wanhost.route("10.0.0.0/24", "via", WAN_VIP)

    def host(self, short, ifname, bridge, addrs):
        ns = self.lab.ns(short)
        self.plug(ns, ifname, bridge, f"p{short}")
        for a in addrs:
            ns.addr(ifname, a)
        ns.no_offload(ifname)
        return ns

    def plug(self, ns, ifname, bridge, port):
        self.lab.veth(ns, ifname, self.br, port)
        self.br.run(["ip", "link", "set", port, "master", bridge])

    def node(self, short, host, prio, config=None, **kw):
        ns = self.lab.ns(short)
        self.plug(ns, "vlan", "brlan", f"p{short}l")
        self.plug(ns, "vwan", "brwan", f"p{short}w")
        return self.lab.nimbusd(ns, short, config or nimbus_config(host, prio, **kw))


def ha(d):
    return d.cli("show", "ha")


def role(d):
    return ha(d)["role"]


def wait_role(d, want, timeout=10):
    wait_until(lambda: role(d) == want, timeout, f"{d.name} to become {want}")


def inst(d, name):
    for i in ha(d)["instances"]:
        if i["name"] == name:
            return i
    raise KeyError(name)


def crash(d, links=("vlan", "vwan")):
    """kill -9 and take the node's links down: nothing of it answers any more."""
    os.kill(d.pid(), signal.SIGKILL)
    for link in links:
        d.ns.run(["ip", "link", "set", link, "down"])
    d.proc.wait(timeout=10)
    # What nimbusd removes on a clean exit: its DPDK runtime folder.
    shutil.rmtree(f"/var/run/dpdk/nimbus-{d.node}", ignore_errors=True)


def revive(d, links=("vlan", "vwan")):
    for link in links:
        d.ns.run(["ip", "link", "set", link, "up"])
    d.start()


class Ping:
    """ping -D at 100 pps in the background; replies read from its log."""

    def __init__(self, ns, dst, count, name, extra=()):
        self.path = os.path.join(ns.lab.dir, name)
        self.p = ns.popen(["stdbuf", "-oL", "ping", "-D", "-n", "-i", "0.01", "-W", "1", "-c", str(count)] +
                          list(extra) + [dst], name)

    def text(self):
        with open(self.path, errors="replace") as f:
            return f.read()

    def replies(self):
        return [float(m.group(1)) for m in
                re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=\d+(?!.*DUP)", self.text(), re.M)]

    def wait_replies(self, n, timeout=20):
        wait_until(lambda: len(self.replies()) >= n, timeout, f"{n} ping replies ({self.path})")

    def finish(self, timeout=30):
        self.p.wait(timeout=timeout)
        text = self.text()
        m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        assert m, text[-2000:]
        ts = self.replies()
        gaps = [b - a for a, b in zip(ts, ts[1:])] or [0.0]
        return {"lost": int(m.group(1)) - int(m.group(2)), "gap_ms": round(max(gaps) * 1000, 1),
                "sent": int(m.group(1))}


def note(line):
    """A measurement: printed (pytest -s) and appended to $NIMBUS_HA_REPORT."""
    print("\n" + line)
    out = os.environ.get("NIMBUS_HA_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def log_time(d, needle):
    """The time stamp of the last line of d's log that holds `needle`."""
    line = [x for x in d.log().splitlines() if needle in x][-1]
    return datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def report(what, runs, key="lost"):
    med = statistics.median(r[key] for r in runs)
    note(f"{what}: median {key} {med} over {len(runs)} runs: " +
         ", ".join(f"{r['lost']} lost/{r['gap_ms']} ms" for r in runs))
    return med


def pair(lab, prio_a=200, prio_b=100, **kw):
    h = HaLab(lab)
    a = h.node("a", 2, prio_a, **kw)
    b = h.node("b", 3, prio_b, **kw)
    a.start()
    wait_role(a, "master")
    b.start()
    wait_role(b, "backup")
    # The backup has heard the master on every instance.
    wait_until(lambda: all(i["master"] and i["counters"]["adverts_rcvd"] > 0 for i in ha(b)["instances"]), 10,
               "the backup to hear the master on every link")
    return h, a, b


# ---------------------------------------------------------------------------


def test_election_vips_and_virtual_mac(lab):
    h, a, b = pair(lab, metrics=True)
    sa, sb = ha(a), ha(b)
    assert [i["name"] for i in sa["instances"]] == ["lan0.v4", "lan0.v6", "wan0.v4"]
    for i in sa["instances"]:
        assert i["state"] == "master" and i["priority"] == 200 and i["effective_priority"] == 200
    # The two implementations agree on the wire: nothing dropped for a format
    # reason. (Address-list mismatches can appear once at start: the
    # af_packet PMD opens its socket for every interface before binding it to
    # one, so a port may see a frame of the other segment in that window.)
    wire = ("rx_checksum_error", "rx_version_error", "rx_ttl_error", "rx_type_error", "rx_length_error",
            "rx_vrid_mismatch", "rx_too_short", "rx_ip_header_error", "rx_interval_zero", "rx_addr_count_zero")
    for i in sb["instances"]:
        assert i["state"] == "backup" and i["master_priority"] == 200
        assert all(i["counters"][k] == 0 for k in wire), i["counters"]
    assert inst(b, "lan0.v4")["master"] == "10.0.0.2"
    assert inst(b, "wan0.v4")["master"] == "192.0.2.2"
    assert inst(b, "lan0.v6")["master"].startswith("fe80::")
    # The VIPs live on the master's host interfaces only, and are Local routes.
    assert "10.0.0.1/24" in a.ns.run(["ip", "-o", "addr", "show", "dev", "lan0"]).stdout
    assert "2001:db8::1/64" in a.ns.run(["ip", "-o", "addr", "show", "dev", "lan0"]).stdout
    assert "192.0.2.1/24" in a.ns.run(["ip", "-o", "addr", "show", "dev", "wan0"]).stdout
    assert "10.0.0.1/24" not in b.ns.run(["ip", "-o", "addr", "show", "dev", "lan0"]).stdout
    routes = {r["prefix"]: r for r in a.cli("show", "ip", "route")}
    assert routes["10.0.0.1/32"]["nexthop"]["type"] == "local"
    assert "10.0.0.1/32" not in {r["prefix"] for r in b.cli("show", "ip", "route")}
    # The client reaches the VIPs; its neighbour entry is the virtual MAC
    # (GARP / ARP reply from the virtual MAC), never a box's own MAC.
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    assert h.client.ping_ok(LAN_VIP6, 3, interval=0.05)
    assert h.wanhost.ping_ok(WAN_VIP, 3, interval=0.05)
    neigh = h.client.run(["ip", "neigh", "show", LAN_VIP]).stdout
    assert VMAC4 in neigh, neigh
    neigh6 = h.client.run(["ip", "-6", "neigh", "show", LAN_VIP6]).stdout
    assert VMAC6 in neigh6, neigh6
    # Through the VIP as the client's gateway to the WAN and back.
    assert h.client.ping_ok("198.51.100.1", 3, interval=0.05)
    # On the wire: adverts from the virtual MAC, TTL 255, priority 200, 10 cs.
    cap = h.client.run(["timeout", "5", "tcpdump", "-c", "3", "-e", "-n", "-v", "-i", "c0", "ip proto 112"],
                       check=False, timeout=15).stdout
    assert cap.count(f"{VMAC4} > 01:00:5e:00:00:12") == 3, cap
    assert "ttl 255" in cap and "vrid 51, prio 200" in cap and "intvl 10cs" in cap, cap
    # `show ha` text: every error counter, transitions; logged transitions.
    text = a.text("show", "ha")
    for c in ("rx_ttl_error", "rx_checksum_error", "rx_version_error", "rx_vrid_mismatch", "Last transitions"):
        assert c in text
    assert "event=role_change" in a.log() and "role=master" in a.log()
    # Prometheus: the same state as series.
    scrape = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9108/metrics',timeout=5).read().decode())"
    ma = a.ns.run(["/usr/bin/python3", "-c", scrape]).stdout
    mb = b.ns.run(["/usr/bin/python3", "-c", scrape]).stdout
    assert "nimbus_ha_master 1" in ma and "nimbus_ha_master 0" in mb
    assert 'nimbus_ha_instance_state{instance="lan0.v4"} 2' in ma
    assert re.search(r'nimbus_ha_adverts_received_total\{instance="wan0.v4"\} [1-9]', mb), mb


def test_two_masters_equal_priority_higher_address_stays(lab):
    h = HaLab(lab)
    a = h.node("a", 2, 150)
    b = h.node("b", 3, 150)
    # b's links are cut at the bridges (carrier stays up): both become master.
    for port in ("pbl", "pbw"):
        h.br.run(["ip", "link", "set", port, "nomaster"])
    a.start()
    b.start()
    wait_role(a, "master")
    wait_role(b, "master")
    for port, bridge in (("pbl", "brlan"), ("pbw", "brwan")):
        h.br.run(["ip", "link", "set", port, "master", bridge])
    # RFC 5798 §6.4.3: equal priority, the higher primary address stays Master.
    wait_role(a, "backup")
    wait_until(lambda: inst(a, "lan0.v4")["counters"]["adverts_rcvd"] >= 20, 10, "a to hear 20 adverts")
    assert role(b) == "master" and role(a) == "backup"
    assert inst(a, "lan0.v4")["master"] == "10.0.0.3"
    assert "equal priority 150 and higher address" in ha(a)["role_reason"]
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)


def failover_series(h, a, b, stop, runs):
    """`runs` times: ping the LAN VIP and a WAN host through it, take `a`
    down with `stop`, wait for `b`, then bring `a` back (it preempts)."""
    out, through = [], []
    for n in range(runs):
        p = Ping(h.client, LAN_VIP, 300, f"ping-vip-{n}.log")
        q = Ping(h.client, "198.51.100.1", 300, f"ping-through-{n}.log")
        p.wait_replies(50)
        q.wait_replies(50)
        stop(a)
        wait_role(b, "master", timeout=5)
        r, t = p.finish(), q.finish()
        out.append(r)
        through.append(t)
        assert r["sent"] == 300
        # Back to the start: a returns and preempts, b backs off.
        revive(a)
        wait_role(a, "master")
        wait_role(b, "backup")
    return out, through


def test_failover_crash(lab):
    h, a, b = pair(lab)
    runs, through = failover_series(h, a, b, crash, RUNS)
    med = report("crash (kill -9 + links down) -> LAN VIP", runs)
    report("crash -> client to WAN host through the VIP gateway", through)
    # At most 5 advertisement intervals (0.5 s) of replies at 100 pps.
    assert med <= 50, runs
    assert statistics.median(r["gap_ms"] for r in runs) <= 500 + 20, runs
    # The WAN VIP moved too.
    assert h.wanhost.ping_ok(WAN_VIP, 3, interval=0.05)


def test_failover_graceful(lab):
    h, a, b = pair(lab)

    def graceful(d):
        assert d.stop() == 0

    runs, through = failover_series(h, a, b, graceful, RUNS)
    med = report("graceful stop (SIGTERM, priority 0) -> LAN VIP", runs)
    report("graceful stop -> client to WAN host through the VIP gateway", through)
    # At most 2 advertisement intervals (0.2 s).
    assert med <= 20, runs
    assert statistics.median(r["gap_ms"] for r in runs) <= 200 + 20, runs
    # Every hand-over was the priority-0 kind (RFC 5798 §6.4.3 (655)).
    assert inst(b, "lan0.v4")["counters"]["pri_zero_rcvd"] >= RUNS


def test_preempt_back_without_flap(lab):
    h, a, b = pair(lab)
    crash(a)
    wait_role(b, "master", timeout=5)
    changes_b = ha(b)["counters"]["role_changes"]
    p = Ping(h.client, LAN_VIP, 400, "ping-return.log")
    p.wait_replies(30)
    revive(a)
    wait_role(a, "master")
    wait_role(b, "backup")
    r = p.finish()
    report("master returns with preempt -> LAN VIP", [r])
    # One hand-over: b went master -> backup once, a backup -> master once,
    # and nothing moved again while 400 pings ran.
    assert ha(b)["counters"]["role_changes"] == changes_b + 1
    assert ha(a)["counters"]["role_changes"] == 2
    assert all(i["counters"]["became_master"] == 1 for i in ha(a)["instances"])
    assert r["lost"] <= 20, r
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)


def test_link_tracking(lab):
    h, a, b = pair(lab)
    # a's WAN link goes down: its instances fault, it resigns, b takes over.
    a.ns.run(["ip", "link", "set", "vwan", "down"])
    wait_role(b, "master", timeout=5)
    wait_until(lambda: all(i["fault"] for i in ha(a)["instances"]), 5, "a to report the fault")
    assert "port:wan0" in inst(a, "lan0.v4")["tracks_down"]
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    a.ns.run(["ip", "link", "set", "vwan", "up"])
    wait_role(a, "master")
    wait_role(b, "backup")
    assert not any(i["fault"] for i in ha(a)["instances"])


def test_ike_flood_does_not_move_the_master(lab):
    h, a, b = pair(lab)
    before_a, before_b = ha(a), ha(b)
    rcvd0 = inst(b, "wan0.v4")["counters"]["adverts_rcvd"]
    # IKE_SA_INIT-like datagrams (IKEv2 header: SPIi, SPIr 0, next payload SA,
    # version 2.0, exchange 34, Initiator flag) to the master's WAN VIP.
    flood = h.wanhost.popen(["/usr/bin/python3", "-c", f"""
import os, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
body = os.urandom(280)
n, t0 = 0, time.time()
while time.time() - t0 < 3:
    for _ in range(256):
        hdr = os.urandom(8) + bytes(8) + struct.pack('!BBBBII', 33, 0x20, 34, 0x08, 0, 28 + len(body))
        s.sendto(hdr + body, ('{WAN_VIP}', 500))
        n += 1
print('sent', n, 'pps', int(n / (time.time() - t0)))
"""], "ike-flood.log")
    wait_until(lambda: {p["class"]: p for p in a.counters()["punt"]}["ike"]["policed"] > 1000, 10,
               "the IKE flood to be policed on the master")
    flood.wait(timeout=20)
    punt_a = {p["class"]: p for p in a.counters()["punt"]}
    punt_b = {p["class"]: p for p in b.counters()["punt"]}
    sent = open(os.path.join(lab.dir, "ike-flood.log")).read().strip()
    rcvd = inst(b, "wan0.v4")["counters"]["adverts_rcvd"] - rcvd0
    line = (f"IKE flood at the master's VIP: {sent}; ike punted {punt_a['ike']['punted']} policed "
            f"{punt_a['ike']['policed']}; vrrp policed a={punt_a['vrrp']['policed']} b={punt_b['vrrp']['policed']}; "
            f"backup heard {rcvd} WAN adverts meanwhile")
    note(line)
    # No transition anywhere, and no VRRP advert policed or queued out.
    assert ha(a)["counters"]["role_changes"] == before_a["counters"]["role_changes"]
    assert ha(b)["counters"]["role_changes"] == before_b["counters"]["role_changes"]
    assert all(i["counters"]["master_down_expired"] == j["counters"]["master_down_expired"]
               for i, j in zip(ha(b)["instances"], before_b["instances"]))
    for p in (punt_a, punt_b):
        assert p["vrrp"]["policed"] == 0 and p["vrrp"]["ring_full"] == 0
    assert role(a) == "master" and role(b) == "backup"
    assert rcvd >= 25, "adverts kept flowing during the flood"


def static_tunnels(host, n):
    """n static tunnels from this node's own WAN address (not the VIP)."""
    key = "22" * 36
    sas = "\n".join(
        f"  - {{ name: s-{i:05}, vrf: corp, cipher: aes256gcm16, allowed: [10.{64 + i // 256}.{i % 256}.0/24], "
        f"paths: [ {{ local: 192.0.2.{host}, remote: 192.0.2.100 }} ], "
        f'out: {{ spi: {0x10000 + i:#x}, key: "{key}" }}, in: [ {{ spi: {0x40000 + i:#x}, key: "{key}" }} ] }}'
        for i in range(n))
    return f"vrfs: [ {{ name: corp }} ]\nmanual_sas:\n{sas}\n"


def test_config_apply_at_scale_does_not_move_the_master(lab):
    """Adding a tunnel to 3,000 on the master: the parse, diff and plan run
    off the control thread, so adverts keep going out every 100 ms and the
    backup never declares the master dead (before, that apply held the
    control thread ~1.5 s, five times the backup's master-down interval)."""
    n = 3000
    h = HaLab(lab)
    a = h.node("a", 2, 200, config=nimbus_config(2, 200, extra_top=static_tunnels(2, n)).replace('"512"', '"1024"'))
    b = h.node("b", 3, 100, config=nimbus_config(3, 100, extra_top=static_tunnels(3, n)).replace('"512"', '"1024"'))
    a.start(timeout=60)
    wait_role(a, "master", timeout=30)
    b.start(timeout=60)
    wait_role(b, "backup", timeout=30)
    wait_until(lambda: all(i["master"] and i["counters"]["adverts_rcvd"] > 0 for i in ha(b)["instances"]), 10,
               "the backup to hear the master on every link")
    assert a.cli("show", "tunnels", "summary")["tunnels"] == n
    before_a, before_b = ha(a), ha(b)
    rcvd0 = inst(b, "wan0.v4")["counters"]["adverts_rcvd"]
    path = os.path.join(lab.dir, "a-next.yaml")
    with open(path, "w") as f:
        f.write(nimbus_config(2, 200, extra_top=static_tunnels(2, n + 1)).replace('"512"', '"1024"')
                .replace("@NODE@", a.node).replace("@SOCK@", a.sock))
    t0 = time.monotonic()
    res = json.loads(a.cli_raw(["config", "apply", path], json_out=True, timeout=120).stdout)
    took = time.monotonic() - t0
    rcvd = inst(b, "wan0.v4")["counters"]["adverts_rcvd"] - rcvd0
    note(f"config apply adding a tunnel to {n} on the master: {took:.2f} s for the client, "
         f"{res.get('control_thread_ms')} ms on the control thread; the backup heard {rcvd} WAN adverts meanwhile")
    assert res["applied"] is True, res
    assert a.cli("show", "tunnels", "summary")["tunnels"] == n + 1
    assert res["control_thread_ms"] < 300, res
    assert ha(a)["counters"]["role_changes"] == before_a["counters"]["role_changes"]
    assert ha(b)["counters"]["role_changes"] == before_b["counters"]["role_changes"]
    assert all(i["counters"]["master_down_expired"] == j["counters"]["master_down_expired"]
               for i, j in zip(ha(b)["instances"], before_b["instances"]))
    assert role(a) == "master" and role(b) == "backup"
    # Adverts every 100 ms while the apply ran (a few may fall just outside).
    assert rcvd >= int(took / 0.1) - 3, (rcvd, took)


def test_bad_adverts_are_dropped_and_counted(lab):
    h, a, b = pair(lab)
    changes = (ha(a)["counters"]["role_changes"], ha(b)["counters"]["role_changes"])
    # Priority 254 each: were any accepted, the master (200) would step down.
    script = r"""
import struct, sys
from scapy.all import Ether, IP, IPv6, Raw, sendp, in4_chksum, in6_chksum, conf
conf.verb = 0
def vrrp(vrid, prio, addrs, ver=3, csum_fix=0, src='10.0.0.10', v6=False):
    import socket
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    body = struct.pack('!BBBBHH', ver << 4 | 1, vrid, prio, len(addrs), 10, 0)
    body += b''.join(socket.inet_pton(fam, a) for a in addrs)
    return body
def csum(src, dst, body, v6=False):
    import socket
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    ps = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst)
    ps += (struct.pack('!I', len(body)) + b'\0\0\0' + bytes([112])) if v6 else (b'\0' + bytes([112]) + struct.pack('!H', len(body)))
    data = ps + body + (b'\0' if len(body) % 2 else b'')
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def fill(body, c):
    return body[:6] + struct.pack('!H', c) + body[8:]
def v4(body, ttl=255, bad=False):
    c = csum('10.0.0.10', '224.0.0.18', body) ^ (0x5555 if bad else 0)
    return Ether(dst='01:00:5e:00:00:12') / IP(src='10.0.0.10', dst='224.0.0.18', ttl=ttl, proto=112, tos=0xc0) / Raw(fill(body, c))
def v6(body, hlim=255):
    src = 'fe80::10'
    c = csum(src, 'ff02::12', body, True)
    return Ether(dst='33:33:00:00:00:12') / IPv6(src=src, dst='ff02::12', hlim=hlim, nh=112) / Raw(fill(body, c))
pk = []
pk += [v4(vrrp(52, 254, ['10.0.0.1']))] * 5                 # wrong VRID
pk += [v4(vrrp(51, 254, ['10.0.0.1']), ttl=254)] * 5        # TTL != 255
pk += [v4(vrrp(51, 254, ['10.0.0.1']), bad=True)] * 5       # bad checksum
pk += [v4(vrrp(51, 254, ['10.0.0.1'], ver=2))] * 5          # version 2
pk += [v6(vrrp(51, 254, ['2001:db8::1'], v6=True), hlim=64)] * 5   # IPv6 hop limit != 255
sendp(pk, iface='c0', inter=0.01)
print('sent', len(pk))
"""
    h.client.run(["/usr/bin/python3", "-c", script], timeout=60)
    want = {"rx_vrid_mismatch": 5, "rx_ttl_error": 5, "rx_checksum_error": 5, "rx_version_error": 5}
    for d in (a, b):
        wait_until(lambda: all(inst(d, "lan0.v4")["counters"][k] >= v for k, v in want.items()), 10,
                   f"{d.name} to count the bad adverts")
        wait_until(lambda: inst(d, "lan0.v6")["counters"]["rx_ttl_error"] >= 5, 10, f"{d.name}: IPv6 TTL errors")
        c = inst(d, "lan0.v4")["counters"]
        assert {k: c[k] for k in want} == want, c
    assert (ha(a)["counters"]["role_changes"], ha(b)["counters"]["role_changes"]) == changes
    assert role(a) == "master" and role(b) == "backup"
    text = b.text("show", "ha")
    assert re.search(r"rx_checksum_error\s+5\s", text), text


# ---- keepalived interop -----------------------------------------------------


class Keepalived:
    def __init__(self, lab, ns, name, prio, extra=""):
        self.lab, self.ns, self.name, self.prio = lab, ns, name, prio
        self.conf = os.path.join(lab.dir, f"{name}.conf")
        self.pidf = os.path.join(lab.dir, f"{name}.pid")
        self.vpidf = os.path.join(lab.dir, f"{name}-vrrp.pid")
        self.logf = f"keepalived-{name}.log"
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"""
global_defs {{
    router_id {name}
    vrrp_version 3
    vrrp_garp_master_delay 1
    vrrp_garp_master_repeat 3
    vrrp_garp_master_refresh 0
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 0.1
    {extra}
    virtual_ipaddress {{
        10.0.0.1/24 dev eth0
    }}
}}
""")
        run(["keepalived", "-t", "-f", self.conf])

    def start(self):
        self.proc = self.ns.popen(["keepalived", "-n", "-l", "-D", "-G", "-P", "-f", self.conf, "-p", self.pidf,
                                   "-r", self.vpidf], self.logf)
        return self

    def log(self):
        with open(os.path.join(self.lab.dir, self.logf), errors="replace") as f:
            return f.read()

    def states(self):
        return re.findall(r"\(VI_1\) Entering (MASTER|BACKUP|FAULT) STATE", self.log())

    def state(self):
        s = self.states()
        return s[-1] if s else None

    def wait_state(self, want, timeout=10, count=1):
        wait_until(lambda: self.states().count(want) >= count and self.state() == want, timeout,
                   f"keepalived {self.name} to enter {want} (x{count})")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)


def keepalived_lab(lab):
    h = HaLab(lab)
    kns = h.lab.ns("k")
    h.plug(kns, "eth0", "brlan", "pk")
    kns.addr("eth0", "10.0.0.4/24")
    kns.no_offload("eth0")
    return h, kns


def test_keepalived_backup_nimbus_master(lab):
    h, kns = keepalived_lab(lab)
    a = h.node("a", 2, 200, interfaces=("lan0",))
    a.start()
    wait_role(a, "master")
    k = Keepalived(lab, kns, "ka", 100).start()
    k.wait_state("BACKUP")
    sent0 = inst(a, "lan0.v4")["counters"]["adverts_sent"]
    # keepalived stays backup while nimbus (200 > 100) advertises: over 2 s,
    # many times its Master_Down_Interval (0.36 s).
    wait_until(lambda: inst(a, "lan0.v4")["counters"]["adverts_sent"] >= sent0 + 20, 10, "20 more adverts")
    assert "MASTER" not in k.states(), k.log()[-3000:]
    assert role(a) == "master"
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    # nimbus -> keepalived: graceful (priority 0) ...
    p = Ping(h.client, LAN_VIP, 300, "ping-ka-graceful.log")
    p.wait_replies(50)
    assert a.stop() == 0
    k.wait_state("MASTER", timeout=5)
    r1 = p.finish()
    assert "(VI_1) Backup received priority 0 advertisement" in k.log(), k.log()[-3000:]
    # ... keepalived -> nimbus: nimbus returns and preempts ...
    a.start()
    wait_role(a, "master")
    k.wait_state("BACKUP", count=2)
    assert "received advert from 10.0.0.2 with higher priority 200, ours 100" in k.log(), k.log()[-3000:]
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    # ... and nimbus -> keepalived again on a crash.
    p = Ping(h.client, LAN_VIP, 300, "ping-ka-crash.log")
    p.wait_replies(50)
    crash(a)
    k.wait_state("MASTER", timeout=5, count=2)
    r2 = p.finish()
    report("nimbus master -> keepalived backup, graceful / crash", [r1, r2])
    assert r1["lost"] <= 20 and r2["lost"] <= 50, (r1, r2)


def test_keepalived_master_nimbus_backup(lab):
    h, kns = keepalived_lab(lab)
    k = Keepalived(lab, kns, "ka", 200).start()
    k.wait_state("MASTER")
    a = h.node("a", 2, 100, interfaces=("lan0",))
    a.start()
    wait_role(a, "backup")
    wait_until(lambda: inst(a, "lan0.v4")["counters"]["adverts_rcvd"] >= 20, 10, "nimbus to hear keepalived")
    i = inst(a, "lan0.v4")
    # Agreement: nimbus sees keepalived's address and priority, accepts its
    # checksum (RFC 5798 form, with the IPv4 pseudo-header) and interval.
    assert i["master"] == "10.0.0.4" and i["master_priority"] == 200, i
    assert i["rx_errors"] == 0 and i["counters"]["interval_mismatch"] == 0, i
    assert i["counters"]["became_master"] == 0
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    # keepalived -> nimbus: keepalived stops (priority 0).
    p = Ping(h.client, LAN_VIP, 300, "ping-nimbus-takes.log")
    p.wait_replies(50)
    k.stop()
    wait_role(a, "master", timeout=5)
    r = p.finish()
    report("keepalived master -> nimbus backup, graceful", [r])
    assert inst(a, "lan0.v4")["counters"]["pri_zero_rcvd"] >= 1
    assert r["lost"] <= 20, r
    # nimbus -> keepalived: keepalived returns with 200 and preempts nimbus (100).
    k2 = Keepalived(lab, kns, "ka2", 200).start()
    k2.wait_state("MASTER")
    wait_role(a, "backup")
    assert "higher priority" in inst(a, "lan0.v4")["last_reason"]
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)


def test_keepalived_preemption_agreement(lab):
    h, kns = keepalived_lab(lab)
    # keepalived master at 150; nimbus at 250 with preempt off stays backup.
    k = Keepalived(lab, kns, "ka", 150).start()
    k.wait_state("MASTER")
    a = h.node("a", 2, 250, interfaces=("lan0",), preempt=False)
    a.start()
    wait_role(a, "backup")
    wait_until(lambda: inst(a, "lan0.v4")["counters"]["adverts_rcvd"] >= 30, 10, "nimbus to hear 30 adverts")
    assert role(a) == "backup" and k.state() == "MASTER"
    assert inst(a, "lan0.v4")["counters"]["became_master"] == 0
    # Swap: nimbus master at 100; keepalived at 250 with nopreempt stays backup.
    k.stop()
    wait_role(a, "master", timeout=5)
    k2 = Keepalived(lab, kns, "ka2", 250, extra="nopreempt").start()
    k2.wait_state("BACKUP")
    sent0 = inst(a, "lan0.v4")["counters"]["adverts_sent"]
    wait_until(lambda: inst(a, "lan0.v4")["counters"]["adverts_sent"] >= sent0 + 30, 10, "30 more adverts")
    assert k2.states() == ["BACKUP"], k2.log()[-3000:]
    assert role(a) == "master"



# ---- IKE on the virtual IPs: a strongSwan site reconnects to the new master --

PSK = "lab-psk-0123456789abcdef"
SITE_WAN, SITE_LAN = "192.0.2.50", "10.16.1.1"


def ike_config(host, prio, extra_ha=""):
    """lan0 in the cloud's VRF, the WAN VIP where sites connect; IKE listens
    on wan0 only, so the VIP needs sockets of its own while master."""
    return f"""
node: {{ name: "@NODE@" }}
dataplane: {{ workers: 1, eal: [--no-huge, -m, "512"] }}
mgmt: {{ socket: "@SOCK@" }}
vrfs: [ {{ name: corp }} ]
ports:
  - {{ name: lan0, device: "net_af_packet0,iface=vlan,framecnt=4096", vrf: corp, addresses: [10.0.0.{host}/24] }}
  - {{ name: wan0, device: "net_af_packet1,iface=vwan,framecnt=4096", addresses: [192.0.2.{host}/24] }}
clouds:
  - name: corp
    vrf: corp
    psk: "{PSK}"
    id: conc.lab
    proposals: {{ ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16-x25519] }}
    advertise: [10.0.0.0/24]
    dpd: {{ interval: 30, retries: 3 }}
    sites:
      - {{ id: store-0001.lab, prefixes: [10.16.1.0/24] }}
ike: {{ listen: [wan0] }}
ha:
  vrid: 51
  priority: {prio}
  advert_interval_ms: 100
  interfaces: [lan0, wan0]
  virtual_ips: [10.0.0.1/24, 192.0.2.1/24]
{extra_ha}
"""


def site(h):
    """strongSwan at 192.0.2.50 on the WAN bridge, LAN 10.16.1.0/24, to the
    WAN VIP. Its DPD (1 s without inbound traffic, then 2 retransmits over
    about 2.2 s) notices a dead master; dpd_action restart starts a new IKE
    SA to the same VIP, i.e. to whoever holds it then."""
    s = h.lab.ns("s")
    s.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
    h.plug(s, "eth0", "brwan", "ps")
    s.addr("eth0", SITE_WAN + "/24")
    s.no_offload("eth0")
    s.run(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"])
    s.addr("lan0", SITE_LAN + "/24")
    s.run(["ip", "link", "set", "lan0", "up"])
    s.run(["ip", "link", "set", "lan0p", "up"])
    sw = swan.Swan(h.lab, s)
    with open(sw.conf) as f:
        conf = f.read()
    conf = (conf.replace("retransmit_tries = 3", "retransmit_tries = 2")
            .replace("retransmit_timeout = 1.0", "retransmit_timeout = 0.5")
            .replace("retransmit_base = 1.5", "retransmit_base = 1.4"))
    with open(sw.conf, "w") as f:
        f.write(conf)
    sw.configure(WAN_VIP, "10.16.1.0/24", remote_ts="10.0.0.0/24", auth="psk", local_id="store-0001.lab",
                 remote_id="conc.lab", psk=PSK, mobike=False, dpd_delay="1s", extra_child="dpd_action = restart")
    path = os.path.join(sw.swanctl_dir, "swanctl.conf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:   # keep trying after a restart (the first initiate has its own timeout)
        f.write(text.replace("keyingtries = 1", "keyingtries = 0"))
    return s, sw


def ike_sa_on_vip(d):
    try:
        return [x for x in d.cli("show", "ike", "sa") if x["state"] == "established" and
                x["local"].split("[")[0] == WAN_VIP and x["peer_id"] == "store-0001.lab"]
    except Exception:   # a dead daemon's CLI
        return []


def udp_bound(d, addr):
    out = d.ns.run(["ss", "-Hnlu"]).stdout
    return sorted(int(p) for p in re.findall(rf"\s{re.escape(addr)}:(\d+)\s", out))


def site_ping(s, name, count=6000):
    return Ping(s, "10.0.0.10", count, name, extra=("-I", SITE_LAN))


def outage(p, t_event, what, resume=100):
    """Waits for `resume` replies after the event, stops the ping, and
    returns the longest gap around the event."""
    base = len(p.replies())
    wait_until(lambda: len([t for t in p.replies() if t > t_event]) >= resume, 60,
               f"site traffic to resume after {what} ({p.path})")
    p.p.send_signal(signal.SIGINT)
    r = p.finish()
    ts = p.replies()
    gaps = [(b - a) for a, b in zip(ts, ts[1:]) if b > t_event]
    r["outage_s"] = round(max(gaps), 2)
    assert base > 0
    return r


def test_site_tunnel_reconnects_to_the_new_master(lab):
    why = swan.available()
    if why:
        pytest.skip(f"strongSwan not usable here: {why}")
    h = HaLab(lab)
    a = h.node("a", 2, 200, config=ike_config(2, 200))
    b = h.node("b", 3, 100, config=ike_config(3, 100))
    s, sw = site(h)
    a.start()
    wait_role(a, "master")
    b.start()
    wait_role(b, "backup")
    wait_until(lambda: all(i["master"] for i in ha(b)["instances"]), 10, "the backup to hear the master")
    # IKE on the VIP only where it is master; both have their own address.
    wait_until(lambda: udp_bound(a, WAN_VIP) == [500, 4500], 10, "a's IKE sockets on the WAN VIP")
    assert udp_bound(b, WAN_VIP) == []
    assert udp_bound(a, "192.0.2.2") == [500, 4500] and udp_bound(b, "192.0.2.3") == [500, 4500]
    sw.start()
    sw.load()
    sw.initiate()
    wait_until(lambda: ike_sa_on_vip(a), 10, "the site's IKE SA on a, at the VIP")
    # Neither box has heard from the LAN host: the first decrypted packet
    # starts the neighbour resolution (and is lost, see test_ike.py).
    wait_until(lambda: s.ping_ok("10.0.0.10", 1, extra=("-I", SITE_LAN)), 10, "site LAN -> LAN host")
    assert s.ping_ok("10.0.0.10", 3, interval=0.05, extra=("-I", SITE_LAN))
    assert b.cli("show", "ike", "sa") == []
    results = []

    # 1. The master crashes: b takes the VIPs, binds IKE to the WAN VIP and
    #    accepts the site's new IKE SA.
    p = site_ping(s, "ping-site-crash.log")
    p.wait_replies(100)
    t0 = time.time()
    crash(a)
    wait_role(b, "master", timeout=5)
    wait_until(lambda: udp_bound(b, WAN_VIP) == [500, 4500], 5, "b's IKE sockets on the WAN VIP")
    wait_until(lambda: ike_sa_on_vip(b), 30, "the site's new IKE SA on b")
    r = outage(p, t0, "the crash")
    r["what"] = "crash"
    results.append(r)
    t = [x for x in b.cli("show", "tunnels") if x["state"] == "up"]
    assert len(t) == 1 and t[0]["rx_packets"] > 0, t
    assert "DPD" in sw.log() or "retransmit" in sw.log()

    # 2. a comes back and preempts: b gives the VIPs up, closes its VIP
    #    sockets and drops the site's SA and tunnel (no DELETE: the VIP is
    #    not its own any more); the site reconnects to a.
    p = site_ping(s, "ping-site-preempt.log")
    p.wait_replies(100)
    t0 = time.time()
    a.ns.run(["ip", "link", "set", "vlan", "up"])
    a.ns.run(["ip", "link", "set", "vwan", "up"])
    a.start()
    wait_role(a, "master")
    wait_role(b, "backup")
    wait_until(lambda: udp_bound(b, WAN_VIP) == [] and b.cli("show", "ike", "sa") == [], 5,
               "b to close its VIP sockets and drop the SA")
    assert [x for x in b.cli("show", "tunnels") if x["state"] == "up"] == []
    assert "event=vip_released vip=192.0.2.1" in b.log() and "ike_sas_dropped=1" in b.log()
    assert "10.16.1.0/24" not in {x["prefix"] for x in b.cli("show", "ip", "route", "vrf", "corp")}
    wait_until(lambda: ike_sa_on_vip(a), 30, "the site's new IKE SA on a")
    r = outage(p, t0, "the preemption")
    r["what"] = "preempt back"
    results.append(r)

    # 3. Graceful stop of the master (priority 0): b takes over at once, the
    #    site's DPD finds it.
    p = site_ping(s, "ping-site-graceful.log")
    p.wait_replies(100)
    t0 = time.time()
    assert a.stop() == 0
    wait_role(b, "master", timeout=5)
    wait_until(lambda: ike_sa_on_vip(b), 30, "the site's new IKE SA on b after the graceful stop")
    r = outage(p, t0, "the graceful stop")
    r["what"] = "graceful stop"
    results.append(r)

    for r in results:
        note(f"MEASURE ha_site_tunnel {r['what'].replace(' ', '_')}: outage_s={r['outage_s']} lost={r['lost']} "
             f"sent={r['sent']} (site DPD 1 s + 2 retransmits ~2.2 s, then a new IKE SA)")
    # Generous: DPD delay + retransmits + handshake on a shared 2-core box.
    for r in results:
        assert r["outage_s"] <= 20, results


def test_track_frr_zebra_session(lab):
    if not frrlab.available():
        pytest.skip("FRR (zebra, vtysh) not installed")
    h = HaLab(lab)
    zebra = {}
    nodes = {}
    for short, host, prio in (("a", 2, 200), ("b", 3, 100)):
        zserv = os.path.join(lab.dir, f"frr-{short}z", "run", "zserv.api")
        extra_ha = "  track: [{frr: zebra, weight: 150}]" if short == "a" else ""
        d = h.node(short, host, prio, extra_ha=extra_ha, extra_top=f"routing: {{ zebra: {zserv} }}")
        z = frrlab.Frr(lab, d.ns, f"{short}z", "hostname z\nlog commands\n", "")
        assert z.zserv == zserv
        z.start_daemon("zebra")
        zebra[short], nodes[short] = z, d
    a, b = nodes["a"], nodes["b"]
    a.start()
    wait_role(a, "master")
    b.start()
    wait_role(b, "backup")
    wait_until(lambda: all(i["effective_priority"] == 200 and not i["tracks_down"] for i in ha(a)["instances"]), 10,
               "a's zebra session to be up (full priority)")
    # zebra goes away on the master: 200 - 150 = 50 < 100, b takes over.
    t0 = time.time()
    zebra["a"].kill("zebra")
    wait_role(b, "master", timeout=10)
    took = time.time() - t0
    wait_role(a, "backup")

    seen = log_time(a, "track=frr:zebra state=down") - t0
    master = log_time(b, "role=master") - t0
    i = inst(a, "wan0.v4")
    assert i["tracks_down"] == ["frr:zebra"] and i["effective_priority"] == 50, i
    assert "frr:zebra" in a.text("show", "ha")
    note(f"MEASURE ha_track_zebra: zebra killed on the master (SIGKILL) -> track down on the master after "
         f"{seen:.2f} s, backup master after {master:.2f} s (seen by the test after {took:.2f} s)")
    assert h.client.ping_ok(LAN_VIP, 3, interval=0.05)
    # zebra back: a's priority returns and it preempts.
    zebra["a"].start_daemon("zebra")
    wait_role(a, "master", timeout=20)
    wait_role(b, "backup")
    assert all(not i["tracks_down"] and i["effective_priority"] == 200 for i in ha(a)["instances"])


# ---- Injected routes follow the master: the core's route to a site moves ---
#
#   core (FRR AS 65000) ── ca 10.1.2.1 ═ vcore 10.1.2.2 core0 ── a: nimbusd + zebra + bgpd (AS 65001)
#                       ── cb 10.1.3.1 ═ vcore 10.1.3.2 core0 ── b: nimbusd + zebra + bgpd (AS 65001)
#
# Each concentrator peers eBGP with the core over a point-to-point link of its
# own (a third port, core0), as DC cores usually are wired; a and b are the
# HA pair of the lab above on the shared LAN and WAN. Both have the static
# tunnel site1 (the owner of 10.16.1.0/24), so both *could* announce it; only
# the master's injector sends it to its zebra. A crash takes the core link
# down with the others: the core's interface loses carrier and bgpd drops the
# session at once (fast-external-failover, on by default for directly
# connected eBGP), so the test does not depend on the 3 s hold time.

SITE_PREFIX = "10.16.1.0/24"
CORE_NET = "10.200.0.1/32"      # what the core announces (learned back over FPM)
CORE_LINKS = ("vlan", "vwan", "vcore")

CORE_BGPD = """hostname core
router bgp 65000
 bgp router-id 10.200.0.1
 no bgp ebgp-requires-policy
""" + "".join(f""" neighbor 10.1.{h}.2 remote-as 65001
 neighbor 10.1.{h}.2 timers 1 3
 neighbor 10.1.{h}.2 timers connect 1
""" for h in (2, 3)) + f""" address-family ipv4 unicast
  network {CORE_NET}
 exit-address-family
"""


def conc_bgpd(host):
    """conf/frr/bgpd.conf as shipped, peering with the core on core0."""
    return frrlab.shipped("bgpd.conf", [
        ("hostname conc-dc1-a", f"hostname conc-{host}"),
        ("bgp router-id 192.0.2.1", f"bgp router-id 10.1.{host}.2"),
        (" neighbor 192.0.2.2 timers connect 5\n", " neighbor 192.0.2.2 timers 1 3\n neighbor 192.0.2.2 timers connect 1\n"),
        ("192.0.2.2", f"10.1.{host}.1")])


def frr_node_config(host, prio, zserv):
    keys = ("5a" * 36, "a5" * 36)   # aes256gcm16 key || salt; nothing is encrypted here
    top = f"""manual_sas:
  - name: site1
    cipher: aes256gcm16
    allowed: [{SITE_PREFIX}]
    paths: [ {{ local: 192.0.2.{host}, remote: 192.0.2.50 }} ]
    out: {{ spi: 0x1001, key: "{keys[0]}" }}
    in: [ {{ spi: 0x2001, key: "{keys[1]}" }} ]
routing:
  zebra: {zserv}
  fpm: 127.0.0.1:2620
  sites:
    - {{ name: site1, tag: 142, metric: 50 }}
"""
    port = (f'  - {{ name: core0, device: "net_af_packet2,iface=vcore,framecnt=4096", '
            f'addresses: [10.1.{host}.2/24] }}')
    return nimbus_config(host, prio, extra_ports=port, extra_top=top)


def core_via(core, prefix):
    """The gateways of the core's kernel route to `prefix` (empty: none)."""
    import json
    out = core.run(["ip", "-j", "route", "show", prefix], check=False).stdout
    gws = set()
    for r in json.loads(out or "[]"):
        if r.get("dst") != prefix:
            continue
        if "gateway" in r:
            gws.add(r["gateway"])
        for nh in r.get("nexthops", []):
            gws.add(nh.get("gateway"))
    return gws


def core_bgp_peers(core_frr, prefix):
    """Who the core's BGP table has `prefix` from."""
    try:
        paths = core_frr.vtysh_json(f"show bgp ipv4 unicast {prefix} json").get("paths", [])
    except Exception:
        return set()
    return {p["peer"]["peerId"] for p in paths}


def zebra_has(f, prefix):
    return prefix in f.vtysh("show ip route nhrp")


class Trace:
    """Samples the core's kernel route to the site until `done(gateways)`;
    keeps (time, gateways) of every change."""

    def __init__(self, core, prefix):
        self.core, self.prefix = core, prefix
        self.changes = []

    def until(self, done, timeout, what):
        def pred():
            via = core_via(self.core, self.prefix)
            if not self.changes or self.changes[-1][1] != via:
                self.changes.append((time.time(), via))
            return done(via)
        wait_until(pred, timeout, what, interval=0.005)

    def first(self, t0, cond):
        return next((t - t0 for t, via in self.changes if t >= t0 and cond(via)), None)


def test_injected_routes_follow_the_master(lab):
    if not frrlab.available():
        pytest.skip("FRR (zebra, bgpd, vtysh) not installed")
    h = HaLab(lab)
    core = lab.ns("co")
    core.addr("lo", CORE_NET)
    core_frr = frrlab.Frr(lab, core, "fcore", "hostname core\n", CORE_BGPD)
    nodes, frr = {}, {}
    for short, host, prio in (("a", 2, 200), ("b", 3, 100)):
        zserv = os.path.join(lab.dir, f"frr-f{short}", "run", "zserv.api")
        d = h.node(short, host, prio, config=frr_node_config(host, prio, zserv))
        lab.veth(core, f"c{short}", d.ns, "vcore")
        core.addr(f"c{short}", f"10.1.{host}.1/24")
        core.no_offload(f"c{short}")
        f = frrlab.Frr(lab, d.ns, f"f{short}", frrlab.shipped("zebra.conf"), conc_bgpd(host), fpm=True)
        assert f.zserv == zserv
        nodes[short], frr[short] = d, f
    a, b = nodes["a"], nodes["b"]
    fa, fb = frr["a"], frr["b"]
    A, B = "10.1.2.2", "10.1.3.2"
    core_frr.start()
    fa.start()
    fb.start()
    a.start()
    wait_role(a, "master")
    b.start()
    wait_role(b, "backup")
    wait_until(lambda: all(i["master"] for i in ha(b)["instances"]), 10, "the backup to hear the master")
    # Both sessions to the core are up: b's silence below is its choice.
    wait_until(core_frr.bgp_established, 30, "the core's eBGP sessions with a and b")
    wait_until(lambda: core_via(core, SITE_PREFIX) == {A}, 20, "the core's route to the site via a")
    # zebra knows the addresses of nimbusd's host interfaces, which it saw
    # appear while running (FRR #13288, see Daemon::start_frr).
    for f, addr in ((fa, A), (fb, B)):
        assert f"{addr}/24" in f.vtysh("show interface core0"), f.vtysh("show interface core0")

    # While a is master: the core has the site from a only; b holds the same
    # tunnel, judges its prefix, and announces nothing.
    assert core_bgp_peers(core_frr, SITE_PREFIX) == {A}
    assert zebra_has(fa, SITE_PREFIX) and not zebra_has(fb, SITE_PREFIX)
    rb = b.cli("show", "routing")
    assert rb["inject"]["active"] is False and "not master" in rb["inject"]["inactive_reason"], rb["inject"]
    assert rb["zapi"]["state"] == "synced", rb["zapi"]
    assert "SUSPENDED" in b.text("show", "routing")
    assert a.cli("show", "routing")["inject"]["active"] is True
    assert [(e["site"], e["prefix"], e["verdict"]) for e in b.cli("show", "routing", "injected")] == \
        [("site1", SITE_PREFIX, "injected")]
    # Both learn the core's routes over FPM whatever their role.
    for d in (a, b):
        wait_until(lambda: any(r["prefix"] == CORE_NET and r["source"] == "fpm" for r in d.cli("show", "ip", "route")),
                   20, f"{d.name} to learn {CORE_NET} over FPM")

    # a crashes (kill -9, every link down): the core's session to a drops
    # with its link, b becomes master and announces; the core follows.
    tr = Trace(core, SITE_PREFIX)
    tr.changes.append((time.time(), {A}))
    t0 = time.time()
    crash(a, links=CORE_LINKS)
    t_down = time.time() - t0
    tr.until(lambda via: via == {B}, 15, "the core's route to the site via b")
    t_b = time.time() - t0
    t_a_gone = tr.first(t0, lambda via: A not in via)
    b_master = log_time(b, "role=master") - t0
    assert role(b) == "master"
    assert b.cli("show", "routing")["inject"]["active"] is True
    wait_until(lambda: core_bgp_peers(core_frr, SITE_PREFIX) == {B}, 5, "the core's BGP table to have b's path only")
    assert zebra_has(fb, SITE_PREFIX)
    note(f"MEASURE ha_frr_core_follows: crash of the master (kill -9 + links down, done after {t_down:.2f} s) -> "
         f"core's route via a gone after {t_a_gone:.2f} s, b master after {b_master:.2f} s, core's kernel route via b after {t_b:.2f} s")
    # VRRP takeover (~0.4 s) plus two FRR hops (~0.12 s, frr-zapi.md §8.1),
    # with room for a loaded 2-core box.
    assert t_b < 5, tr.changes

    # a comes back and preempts: b withdraws, the core's route returns to a.
    tr = Trace(core, SITE_PREFIX)
    tr.changes.append((time.time(), {B}))
    t1 = time.time()
    revive(a, links=CORE_LINKS)
    wait_role(a, "master", timeout=20)
    wait_role(b, "backup")
    tr.until(lambda via: via == {A}, 30, "the core's route to the site via a again")
    t_back = time.time() - t1
    a_master = log_time(a, "role=master") - t1
    wait_until(lambda: not zebra_has(fb, SITE_PREFIX), 5, "b's zebra to drop the site")
    wait_until(lambda: core_bgp_peers(core_frr, SITE_PREFIX) == {A}, 5, "the core's BGP table to have a's path only")
    assert b.cli("show", "routing")["inject"]["active"] is False
    assert f"{A}/24" in fa.vtysh("show interface core0")
    b_gone = tr.first(t1, lambda via: B not in via)
    a_there = tr.first(t1, lambda via: A in via)
    no_route = sum(t2 - t for (t, via), (t2, _) in zip(tr.changes, tr.changes[1:]) if not via)
    note(f"MEASURE ha_frr_core_returns: master back with preempt -> a master after {a_master:.2f} s, core's route "
         f"via b gone after {b_gone:.2f} s, via a after {a_there:.2f} s (seen {t_back:.2f} s); core without a "
         f"route for {no_route:.2f} s; changes {[(round(t - t1, 2), sorted(v)) for t, v in tr.changes]}")
    # a preempts as soon as it is up, before its eBGP session is: b's
    # withdrawal leaves the core without a route until a's session is
    # established and announces (preempt_delay_ms is the operator's knob).
    assert no_route < 10, tr.changes
