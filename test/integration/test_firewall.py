"""The firewall per VRF (dataplane/acl) between two nimbusd with static SAs,
on test_esp's lab:

    ha -- A (nimbusd) --[aw]-- net (bridge) --[bw]-- B (nimbusd) -- hb
          10.1.0.0/24                                     10.2.0.0/24

A's firewall denies what leaves the tunnel unless a rule or a flow allows
it, and lets its LAN out statefully: A's hosts reach B's, B's hosts get only
replies and what a rule admits; each rule counts what it decided. Rules are
added and removed by `config apply` while traffic flows through the tunnel:
no packet is lost, the tunnel keeps its SAs and counters, kept rules keep
theirs; a broken firewall section is refused with its position and changes
nothing.
"""
import os
import re

import secrets

from nimbuslab import NIMBUS, run, wait_until
from test_esp import KEYLEN, drops, side, start_pair, topology

FIREWALL_A = """
firewall:
  - vrf: default
    ingress_default: deny
    state_timeout: 60
    ingress:
      - { name: b-to-dns, action: allow, proto: udp, src: 10.2.0.0/24, dport: 5353 }
    egress:
      - { name: no-telnet, action: deny, proto: tcp, dport: 23 }
      - { name: lan-out, action: allow-stateful, src: [10.1.0.0/24, "fd00:1::/64"] }
"""

UDP_SINK = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.1.0.2", 5353))
s.settimeout(20)
n = 0
try:
    while n < int(sys.argv[1]):
        s.recv(2048)
        n += 1
        print(n, flush=True)
except socket.timeout:
    pass
"""


def fw(d, vrf="default"):
    """{direction: {rule name: row}} from `show firewall -j`."""
    data = d.cli("show", "firewall")
    entry = [f for f in data["firewalls"] if f["vrf"] == vrf][0]
    return {dir_: {r["name"]: r for r in entry[dir_]["rules"]} for dir_ in ("ingress", "egress")}


def delta(after, before, dir_, name):
    return after[dir_][name]["packets"] - before[dir_][name]["packets"]


def metric(ns, port, name, **labels):
    txt = ns.run(["/usr/bin/python3", "-c", "import urllib.request;print(urllib.request.urlopen("
                  f"'http://127.0.0.1:{port}/metrics',timeout=10).read().decode())"], timeout=30).stdout
    for line in txt.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    raise KeyError(f"{name} {labels} not in:\n{txt}")


def test_stateful_allow_out_rules_and_defaults(lab):
    """A starts with its firewall (B has none)."""
    ha, a, net, b, hb = topology(lab)
    keys = [secrets.token_hex(KEYLEN["aes256gcm16"]) for _ in range(2)]
    ca = side("a", "b", "aes256gcm16", keys)
    assert 'mgmt:\n  socket: "@SOCK@"\n' in ca
    ca = ca.replace('mgmt:\n  socket: "@SOCK@"\n', 'mgmt:\n  socket: "@SOCK@"\n  metrics: { listen: 127.0.0.1:9108 }\n')
    da = lab.nimbusd(a, "a", ca + FIREWALL_A).start()
    db = lab.nimbusd(b, "b", side("b", "a", "aes256gcm16", keys)).start()
    # Warm up: the underlay neighbours are resolved, the first flow created.
    assert ha.ping_ok("10.2.0.2", 2), "A's LAN -> B's LAN, out through the stateful rule"
    f0 = fw(da)
    assert ha.ping_ok("10.2.0.2", 5)
    f1 = fw(da)
    # A new ping is a new flow (its own echo identifier): the first request
    # creates it, the other four and every reply pass as the flow's.
    assert delta(f1, f0, "egress", "lan-out") == 1, (f0, f1)
    assert delta(f1, f0, "egress", "(flows)") == 4 and delta(f1, f0, "ingress", "(flows)") == 5, (f0, f1)
    assert delta(f1, f0, "ingress", "(default)") == 0

    # B's side starts: denied by the default, counted as a firewall drop.
    denied = drops(da, "fw_denied")
    assert not hb.ping_ok("10.1.0.2", 3, wait=1), "ingress default deny let a new flow in"
    f2 = fw(da)
    assert delta(f2, f1, "ingress", "(default)") == 3, (f1, f2)
    assert drops(da, "fw_denied") == denied + 3
    text = da.text("show", "firewall")
    assert re.search(r"ingress .*default deny", text) and "b-to-dns" in text and "udp 10.2.0.0/24 -> any dport 5353" in text, text

    # ... except what a rule admits: UDP to port 5353.
    sink = ha.popen(["/usr/bin/python3", "-c", UDP_SINK, "4"], "udp-sink.log")
    wait_until(lambda: "10.1.0.2:5353" in ha.run(["ss", "-lun"]).stdout, 10, "the UDP sink")
    hb.run(["/usr/bin/python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "for i in range(4): s.sendto(b'x'*100, ('10.1.0.2', 5353))\n"
            "for i in range(2): s.sendto(b'y', ('10.1.0.2', 5354))"])
    sink.wait(timeout=30)
    assert open(os.path.join(lab.dir, "udp-sink.log")).read().split()[-1:] == ["4"]
    f3 = fw(da)
    assert delta(f3, f2, "ingress", "b-to-dns") == 4
    assert f3["ingress"]["b-to-dns"]["bytes"] - f2["ingress"]["b-to-dns"]["bytes"] == 4 * 128  # IP + UDP + 100
    wait_until(lambda: delta(fw(da), f2, "ingress", "(default)") == 2, 5, "the two datagrams to 5354 denied")

    # A datagram bigger than the tunnel's MTU (1438) without DF: B fragments
    # it before encryption, and A's later fragment, which carries no ports,
    # passes on the verdict of the first.
    big = ha.popen(["/usr/bin/python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    "s.bind(('10.1.0.2',5353))\ns.settimeout(20)\nprint(len(s.recv(65535)), flush=True)"], "udp-big.log")
    wait_until(lambda: "10.1.0.2:5353" in ha.run(["ss", "-lun"]).stdout, 10, "the UDP sink")
    hb.run(["/usr/bin/python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.IPPROTO_IP, 10, 0)\n"  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
            "s.sendto(b'z'*1450, ('10.1.0.2', 5353))"])
    big.wait(timeout=30)
    assert open(os.path.join(lab.dir, "udp-big.log")).read().split() == ["1450"], "the fragmented datagram"
    f3b = fw(da)
    assert delta(f3b, f3, "ingress", "b-to-dns") == 2, (f3, f3b)  # both fragments, one verdict
    assert delta(f3b, f3, "ingress", "(default)") == 0
    f3 = f3b

    # Egress: telnet is refused before the rule that would let it out.
    p = ha.run(["/usr/bin/python3", "-c", "import socket\ntry:\n socket.create_connection(('10.2.0.2', 23), "
                "timeout=1.5)\n print('connected')\nexcept OSError as e:\n print(type(e).__name__)"], timeout=20)
    assert p.stdout.strip() in ("timeout", "TimeoutError"), p.stdout
    f4 = fw(da)
    assert delta(f4, f3, "egress", "no-telnet") >= 1 and delta(f4, f3, "egress", "lan-out") == 0

    # IPv6: the same policy.
    assert ha.ping_ok("fd00:2::2", 3), "IPv6 out through lan-out"
    assert not hb.ping_ok("fd00:1::2", 2, wait=1), "IPv6 in, denied by the default"
    flows = da.cli("show", "firewall")["flows"]
    assert flows["live"] >= 2 and flows["created"] >= 2 and flows["evicted"] == 0, flows
    # The same counters as metrics.
    assert metric(a, 9108, "nimbus_firewall_packets_total", vrf="default", direction="ingress", rule="b-to-dns",
                  action="allow") == 6 == fw(da)["ingress"]["b-to-dns"]["packets"]  # 4 datagrams + 2 fragments
    assert metric(a, 9108, "nimbus_firewall_packets_total", vrf="default", direction="egress", rule="no-telnet",
                  action="deny") >= 1
    assert metric(a, 9108, "nimbus_firewall_flows") >= 2
    # B has no firewall: it says so.
    assert "No firewall configured" in db.text("show", "firewall")


def test_rules_change_live_under_traffic_and_a_bad_section_changes_nothing(lab):
    ha, net, hb, da, db, keys = start_pair(lab, "aes256gcm16")
    base = open(db.cfg).read()
    first = base + """
firewall:
  - vrf: default
    ingress:
      - { name: icmp-in, action: allow, proto: icmp }
"""
    new = os.path.join(lab.dir, "new.yaml")

    def apply(text, check=True):
        with open(new, "w") as f:
            f.write(text)
        return run([NIMBUS, "-s", db.sock, "config", "apply", new], check=check)

    def ops(out):
        return out.split("operations:", 1)[1].split("applied", 1)[0]

    out = ops(apply(first).stdout)
    assert out.split() == "firewall: vrf default: added (1 ingress, 0 egress rules)".split(), out
    assert ha.ping_ok("10.2.0.2", 3)
    t0 = {t["name"]: t for t in db.cli("show", "tunnels")}["to-a"]
    c0 = fw(db)["ingress"]["icmp-in"]["packets"]
    assert c0 >= 3

    log = os.path.join(lab.dir, "ping-fw.log")
    ping = ha.popen(["ping", "-i", "0.01", "-c", "400", "-W", "1", "10.2.0.2"], "ping-fw.log")
    wait_until(lambda: "icmp_seq=20 " in open(log).read(), 15, "traffic through the tunnel")
    second = first + """    egress:
      - { name: no-telnet, action: deny, proto: tcp, dport: 23 }
"""
    out = ops(apply(second).stdout)
    assert out.split() == "firewall: vrf default: egress + no-telnet".split(), out
    # A kept rule keeps counting from where it was.
    mid = fw(db)
    assert mid["ingress"]["icmp-in"]["packets"] >= c0 + 20 and mid["egress"]["no-telnet"]["packets"] == 0
    third = second.replace("{ name: icmp-in, action: allow, proto: icmp }",
                           "{ name: from-a, action: allow, src: 10.1.0.0/24 }\n"
                           "      - { name: icmp-in, action: allow, proto: icmp }")
    out = ops(apply(third).stdout)
    assert out.split() == "firewall: vrf default: ingress + from-a".split(), out
    ping.wait(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", open(log).read())
    assert m and int(m.group(1)) == 400 and int(m.group(2)) == 400, open(log).read()[-300:]
    after = fw(db)
    assert after["ingress"]["from-a"]["packets"] > 0, "the rule put first takes the matching packets"
    assert after["ingress"]["icmp-in"]["packets"] >= mid["ingress"]["icmp-in"]["packets"]
    t1 = {t["name"]: t for t in db.cli("show", "tunnels")}["to-a"]
    assert t1["id"] == t0["id"] and t1["rx_packets"] >= t0["rx_packets"] + 400, (t0, t1)

    # A broken section: refused with file:line:column, nothing changes.
    bad = third.replace("proto: tcp, dport: 23", "proto: icmp, dport: 23")
    p = apply(bad, check=False)
    line = next(i for i, l in enumerate(bad.splitlines(), 1) if "proto: icmp, dport: 23" in l)
    assert p.returncode != 0 and re.search(rf"new.yaml:{line}:\d+: firewall\[0\]\.egress\[0\]\.dport: ports need",
                                           p.stdout + p.stderr), (p.stdout, p.stderr)
    assert fw(db).keys() == after.keys() and "no-telnet" in fw(db)["egress"]
    assert open(db.cfg).read() == third
    # Counters cleared for `show` (not for the metrics, which stay monotonic).
    out = run([NIMBUS, "-s", db.sock, "clear", "firewall", "counters", "vrf", "default"]).stdout
    assert out.strip() == "7 counters cleared", out  # 2 + 1 rules, flows and default per direction
    assert all(r["packets"] == 0 for d in fw(db).values() for r in d.values()), fw(db)
    assert ha.ping_ok("10.2.0.2", 2)
    assert fw(db)["ingress"]["from-a"]["packets"] == 2
    # Removing the firewall lets everything through again.
    out = ops(apply(base).stdout)
    assert out.split() == "firewall: vrf default: removed".split(), out
    assert hb.ping_ok("10.1.0.2", 3)
    assert "No firewall configured" in db.text("show", "firewall")
