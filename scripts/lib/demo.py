#!/usr/bin/env python3
"""The nimbus demo: a small VPN cloud in network namespaces, on the embedded
default lab below. Run through scripts/demo.sh (root, Debian 12), which
installs what is missing and builds first.

  srv ---- core ===eBGP=== conc: nimbusd + zebra/bgpd ---- inet (bridge) ---- site1: strongSwan ---- host1
                AS 65000      AS 65001                                   |               (certificate)
                                                                         +--- site2: nimbusd edge ---- host2

  srv    198.51.100.10       core  c1 198.51.100.1, c0 192.0.2.2 (FRR: announces 198.51.100.0/24)
  conc   core0 192.0.2.1     wan0 203.0.113.1 (IKE responder, cloud "corp" in the default VRF,
                             the only VRF FRR has here; FRR's zebra/bgpd from conf/frr/)
  site1  eth0 203.0.113.11   lan 10.16.1.1/24, host1 10.16.1.10   (strongSwan 5.9.8, kernel-libipsec)
  site2  wan0 203.0.113.12   lan0 10.16.2.1/24, host2 10.16.2.10  (nimbusd, role edge, `initiate:`)

Certificates (P-521 CA, P-384 leaves) are made with openssl in the lab's
temporary folder at start. The sites' prefixes reach the core over ZAPI and
BGP while their tunnels are up; the core's prefix comes back over FPM and is
offered to the sites as a traffic selector (advertise_bgp). site1 and site2
reach each other through the concentrator (hub and spoke). The cloud's
firewall lets the sites reach the core and ping each other, lets back in
what the core opened (allow-stateful) and denies the rest.

Everything (namespaces, charon, FRR daemons, nimbusd, the temporary folder)
is removed at the end, on failure and on Ctrl-C. Each step checks what it
shows; the first check that fails stops the demo with a message naming it
and the exit code is 1. Waits poll a condition with a bound, never a bare
sleep. The namespace, lab and process helpers are the integration tests'
(test/integration/lib: nimbuslab, swan, frrlab)."""
import os
import re
import signal
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "test", "integration", "lib"))

import frrlab  # noqa: E402
import nimbuslab  # noqa: E402
import swan  # noqa: E402
from nimbuslab import wait_until  # noqa: E402

BOLD = "\033[1m" if sys.stdout.isatty() else ""
PLAIN = "\033[0m" if sys.stdout.isatty() else ""

CONC_WAN = "203.0.113.1"
CORE_NET = "198.51.100.0/24"
SRV = "198.51.100.10"
SITES = {  # name: (WAN address, LAN prefix, LAN gateway, LAN host)
    "site1": ("203.0.113.11", "10.16.1.0/24", "10.16.1.1", "10.16.1.10"),
    "site2": ("203.0.113.12", "10.16.2.0/24", "10.16.2.1", "10.16.2.10"),
}
PROPOSALS = "{ ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16-x25519] }"


class Failed(Exception):
    pass


def emit(*args):
    """print() that never stops the demo: when the terminal or pipe is gone
    (Ctrl-C also kills a `| tee`), output goes nowhere and the cleanup still
    runs."""
    try:
        print(*args)
    except OSError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass


class Demo:
    def __init__(self):
        self.step = "start"
        self.checks = 0
        self.t0 = time.monotonic()
        self.lab = None

    # ---- output

    def say(self, title):
        self.step = title
        emit(f"\n{BOLD}== {title}{PLAIN}")

    def show(self, where, cmd, text):
        emit(f"{where}# {cmd}")
        emit(text.rstrip("\n"))

    def ok(self, cond, what):
        if not cond:
            raise Failed(what)
        self.checks += 1
        emit(f"   ok: {what}")

    def wait(self, pred, timeout, what):
        try:
            v = wait_until(pred, timeout, what, interval=0.1)
        except nimbuslab.Timeout as e:
            raise Failed(str(e)) from None
        self.checks += 1
        emit(f"   ok: {what}")
        return v

    # ---- configs (the embedded default lab)

    def conc_config(self, pki, zserv):
        return f"""# The concentrator: WAN port towards the sites, core port towards the core router.
node: {{ name: "@NODE@" }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "512"] }}
mgmt:
  socket: "@SOCK@"
  metrics: {{ listen: "127.0.0.1:9108" }}
ports:
  - {{ name: core0, device: "net_af_packet0,iface=pc,framecnt=4096", addresses: [192.0.2.1/24] }}
  - {{ name: wan0, device: "net_af_packet1,iface=pw,framecnt=4096", addresses: [{CONC_WAN}/24] }}
clouds:
  - name: corp                  # in the default VRF: the one FRR has here
    pki: {{ ca: {pki}/ca.crt, crl: {pki}/ca.crl, cert: {pki}/conc.crt, key: {pki}/conc.key }}
    proposals: {PROPOSALS}
    advertise: [10.16.0.0/16]   # sites may reach each other through the hub
    dpd: {{ interval: 10, retries: 3 }}
    sites:
      - {{ id: "CN=store-0001", prefixes: [{SITES['site1'][1]}] }}   # site1: strongSwan
      - {{ id: "CN=edge-0001", prefixes: [{SITES['site2'][1]}] }}    # site2: a nimbus edge
ike: {{ listen: [wan0] }}
routing:
  zebra: {zserv}
  fpm: 127.0.0.1:2620
  host_routes: {{ port: core0 }}
  clouds:
    - {{ name: corp, tag: 100, advertise_bgp: true }}   # BGP routes from the core offered to the sites
firewall:
  - cloud: corp                 # what the sites send is let in only by a rule
    ingress_default: deny
    ingress:
      - {{ name: sites-to-core, action: allow, src: 10.16.0.0/16, dst: {CORE_NET} }}
      - {{ name: site-to-site-ping, action: allow, proto: icmp, src: 10.16.0.0/16, dst: 10.16.0.0/16 }}
    egress:
      - {{ name: core-to-sites, action: allow-stateful, src: {CORE_NET} }}   # and the replies back in
"""

    def edge_config(self, pki):
        wan, lan, gw, _ = SITES["site2"]
        return f"""# site2: nimbusd as a small-site edge that connects to the concentrator.
node: {{ name: "@NODE@", role: edge }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "512"] }}
mgmt: {{ socket: "@SOCK@" }}
vrfs: [ {{ name: corp }} ]
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=ew,framecnt=4096", addresses: [{wan}/24] }}
  - {{ name: lan0, device: "net_af_packet1,iface=el,framecnt=4096", vrf: corp, addresses: [{gw}/24] }}
clouds:
  - name: corp
    vrf: corp
    pki: {{ ca: {pki}/ca.crt, crl: {pki}/ca.crl, cert: {pki}/edge1.crt, key: {pki}/edge1.key }}
    proposals: {PROPOSALS}
    dpd: {{ interval: 10, retries: 3 }}
initiate:
  - {{ peer: {CONC_WAN}, cloud: corp, remote_id: "CN=conc.lab", local_prefixes: [{lan}],
      remote_prefixes: [{CORE_NET}, {SITES['site1'][1]}] }}
"""

    @staticmethod
    def shipped(fn, replace=()):
        """A file of conf/frr/ as shipped, with lab-only changes."""
        with open(os.path.join(REPO, "conf", "frr", fn)) as f:
            text = f.read()
        for a, b in replace:
            if a not in text:
                raise Failed(f"{a!r} is no longer in conf/frr/{fn}: update scripts/lib/demo.py")
            text = text.replace(a, b)
        return text

    CORE_BGPD = f"""hostname core
router bgp 65000
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 65001
 neighbor 192.0.2.1 timers 3 9
 neighbor 192.0.2.1 timers connect 1
 address-family ipv4 unicast
  network {CORE_NET}
 exit-address-family
"""

    # ---- the lab

    def build(self):
        self.say("lab: core router (FRR) + server, concentrator (nimbusd + FRR), an internet bridge, "
                 "site1 (strongSwan) and site2 (nimbus edge), each with a LAN host")
        lab = self.lab = nimbuslab.Lab("demo")
        self.core, self.srv, self.conc, self.inet = lab.ns("core"), lab.ns("srv"), lab.ns("conc"), lab.ns("inet")
        self.site1, self.host1 = lab.ns("site1"), lab.ns("host1")
        self.site2, self.host2 = lab.ns("site2"), lab.ns("host2")
        # core side
        lab.veth(self.core, "c0", self.conc, "pc")
        lab.veth(self.srv, "v0", self.core, "c1")
        self.core.addr("c0", "192.0.2.2/24")
        self.core.addr("c1", "198.51.100.1/24")
        self.core.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.srv.addr("v0", f"{SRV}/24")
        self.srv.route("default", "via", "198.51.100.1")
        # the internet: one bridge joining the concentrator's WAN and the sites
        for ns in (self.inet, self.site1):
            ns.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        self.inet.run(["ip", "link", "add", "br0", "type", "bridge"])
        lab.veth(self.conc, "pw", self.inet, "i0")
        lab.veth(self.site1, "eth0", self.inet, "i1")
        lab.veth(self.site2, "ew", self.inet, "i2")
        for i in ("i0", "i1", "i2"):
            self.inet.run(["ip", "link", "set", i, "master", "br0"])
        self.inet.run(["ip", "link", "set", "br0", "up"])
        # site1: strongSwan's namespace routes for its LAN
        wan, _, gw, host = SITES["site1"]
        self.site1.addr("eth0", f"{wan}/24")
        lab.veth(self.site1, "el", self.host1, "h0")
        self.site1.addr("el", f"{gw}/24")
        self.site1.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.host1.addr("h0", f"{host}/24")
        self.host1.route("default", "via", gw)
        # site2: the nimbus edge's ports (ew, el) are DPDK af_packet ports
        _, _, gw2, host2 = SITES["site2"]
        lab.veth(self.site2, "el", self.host2, "h0")
        self.host2.addr("h0", f"{host2}/24")
        self.host2.route("default", "via", gw2)
        # Endpoints next to a DPDK af_packet port must not leave checksums
        # or segmentation to offload.
        for ns, ifc in ((self.core, "c0"), (self.core, "c1"), (self.srv, "v0"), (self.site1, "eth0"),
                        (self.site1, "el"), (self.host1, "h0"), (self.host2, "h0")):
            ns.no_offload(ifc)
        for n in lab.namespaces:
            emit(f"   netns {n.name}")

        self.say(f"certificates: a P-521 CA and P-384 leaves (openssl, in {lab.dir}/pki)")
        self.pki = swan.make_pki(os.path.join(lab.dir, "pki"))
        for leaf in ("conc", "site1", "edge1"):
            subj = nimbuslab.run(["openssl", "x509", "-in", f"{self.pki}/{leaf}.crt", "-noout", "-subject"]).stdout
            emit(f"   {leaf}.crt: {subj.strip()}")
        self.ok(os.path.exists(f"{self.pki}/ca.crl"), "CA, leaves and CRL made")

    def start_core(self):
        self.say("core: FRR (AS 65000) announces 198.51.100.0/24; concentrator: nimbusd + zebra/bgpd (AS 65001)")
        lab = self.lab
        conc_zebra = self.shipped("zebra.conf")
        conc_bgpd = self.shipped("bgpd.conf", [(" neighbor 192.0.2.2 timers connect 5\n",
                                                " neighbor 192.0.2.2 timers 3 9\n neighbor 192.0.2.2 timers connect 1\n")])
        self.core_frr = frrlab.Frr(lab, self.core, "core", "hostname core\n", self.CORE_BGPD)
        self.conc_frr = frrlab.Frr(lab, self.conc, "conc", conc_zebra, conc_bgpd, fpm=True)
        self.nimbus = lab.nimbusd(self.conc, "conc", self.conc_config(self.pki, self.conc_frr.zserv))
        emit(f"   concentrator config: {self.nimbus.cfg}")
        emit("   FRR on the concentrator: conf/frr/zebra.conf and bgpd.conf as shipped (BGP timers shortened)")
        nimbuslab.run([nimbuslab.NIMBUSD, "--check", "-c", self.nimbus.cfg])
        self.ok(True, "nimbusd --check accepts the concentrator config")
        self.core_frr.start()
        self.nimbus.start(timeout=60)
        self.ok(True, "nimbusd answers on its CLI socket")
        self.conc_frr.start()
        self.wait(self.conc_frr.bgp_established, 40, "eBGP session concentrator <-> core established")
        self.wait(lambda: self.nimbus.cli("show", "routing")["zapi"]["state"] == "synced", 20,
                  "nimbusd's ZAPI session to zebra synced")
        self.wait(lambda: any(r["prefix"] == CORE_NET and r["source"] == "fpm"
                              for r in self.nimbus.cli("show", "ip", "route", "vrf", "default")), 30,
                  f"{CORE_NET} learned from the core over FPM into nimbus's FIB")

    def start_sites(self):
        self.say("site1: strongSwan 5.9.8 (kernel-libipsec), certificate CN=store-0001")
        _, lan, _, _ = SITES["site1"]
        sw = self.sw = swan.Swan(self.lab, self.site1, "site1")
        sw.install_cert(self.pki, "site1.crt", "site1.key")
        sw.configure(CONC_WAN, lan, remote_ts=f"{CORE_NET},{SITES['site2'][1]}", auth="cert", cert="site1.crt",
                     remote_id="C=XX, O=nimbus-lab, CN=conc.lab", dpd_delay="10s")
        sw.start()
        sw.load()
        r = sw.initiate(timeout=30, check=False)
        self.show("site1", "swanctl --initiate --child net", "\n".join(r.stdout.splitlines()[-3:]))
        self.ok(r.returncode == 0, "strongSwan's IKE SA and CHILD_SA established")

        self.say("site2: nimbusd as an edge (initiate:), certificate CN=edge-0001")
        self.edge = self.lab.nimbusd(self.site2, "site2", self.edge_config(self.pki))
        emit(f"   edge config: {self.edge.cfg}")
        self.edge.start(timeout=60)
        self.wait(lambda: self.edge.cli("show", "tunnels") and self.edge.cli("show", "tunnels")[0]["state"] == "up",
                  30, "the edge's tunnel to the concentrator is up")

        def both_up():
            ts = self.nimbus.cli("show", "tunnels")
            return len(ts) == 2 and all(t["state"] == "up" for t in ts)
        self.wait(both_up, 20, "both sites' tunnels up on the concentrator")

    def show_state(self):
        self.say("the concentrator's view")
        text = self.nimbus.text("show", "tunnels")
        self.show("conc", "nimbus show tunnels", text)
        tuns = {t["name"]: t for t in self.nimbus.cli("show", "tunnels")}
        for site, (_, lan, _, _) in SITES.items():
            t = [x for x in tuns.values() if lan in x["prefixes"]]
            self.ok(t and t[0]["state"] == "up", f"tunnel {site} up ({t[0]['name'] if t else '?'}, {lan})")
        self.show("conc", "nimbus show ip route vrf default", self.nimbus.text("show", "ip", "route", "vrf", "default"))
        routes = self.nimbus.cli("show", "ip", "route", "vrf", "default")
        for lan in (SITES["site1"][1], SITES["site2"][1]):
            self.ok(any(r["prefix"] == lan and r["source"] == "tunnel" and r["selected"] for r in routes),
                    f"{lan} routed into its tunnel")
        self.show("conc", "nimbus show routing", self.nimbus.text("show", "routing"))
        self.wait(lambda: self.nimbus.cli("show", "routing")["inject"]["prefixes"] == 2, 10,
                  "both site prefixes injected into zebra")

        self.say("the sites' view")
        sas = self.sw.list_sas()
        self.show("site1", "swanctl --list-sas", sas)
        self.ok("ESTABLISHED" in sas and "INSTALLED" in sas and CORE_NET in sas,
                f"strongSwan's child SA is installed with {CORE_NET} as the concentrator's selector")
        self.show("site2", "nimbus show tunnels", self.edge.text("show", "tunnels"))

        self.say("the core's BGP table: the sites' prefixes, from AS 65001")
        for lan in (SITES["site1"][1], SITES["site2"][1]):
            self.wait(lambda lan=lan: lan in self.core_frr.bgp_prefixes(), 15, f"{lan} in the core's BGP table")
        self.show("core", 'vtysh -c "show bgp ipv4 unicast"', self.core_frr.vtysh("show bgp ipv4 unicast"))
        for lan in (SITES["site1"][1], SITES["site2"][1]):
            self.wait(lambda lan=lan: any(r.get("dst") == lan for r in self.core_frr.kernel_routes()), 10,
                      f"{lan} in the core's kernel, via the concentrator")

    def ping(self, label, ns, dst, count=3):
        # The first packets towards a neighbour not yet resolved may be held
        # or lost: wait (bounded) until one gets through, then count.
        tries = []

        def first():
            tries.append(1)
            return ns.ping_ok(dst, 1, wait=1)
        try:
            wait_until(first, 20, f"a first ping {label}", interval=0.1)
        except nimbuslab.Timeout as e:
            raise Failed(str(e)) from None
        p = ns.ping(dst, count)
        self.show(label.split()[0], f"ping -c {count} {dst}", "\n".join(
            line for line in p.stdout.splitlines() if "bytes from" in line or "transmitted" in line))
        if count > 1:
            emit(f"   (before it, a single ping was answered at try {len(tries)})")
        m = re.search(r"(\d+) received", p.stdout)
        self.ok(p.returncode == 0 and m and int(m.group(1)) == count, f"ping {label}: {count}/{count}")

    def traffic(self):
        self.say("traffic: LANs make themselves known to their gateways")
        self.ping("host2 -> its gateway (the edge)", self.host2, SITES["site2"][2], 1)
        self.ping("host1 -> its gateway (site1)", self.host1, SITES["site1"][2], 1)
        self.say("traffic: site -> core, through the tunnels and the concentrator")
        self.ping("host1 (site1, strongSwan) -> server behind the core", self.host1, SRV)
        self.ping("host2 (site2, nimbus edge) -> server behind the core", self.host2, SRV)
        self.say("traffic: core -> sites")
        self.ping("srv -> host1 (site1)", self.srv, SITES["site1"][3])
        self.ping("srv -> host2 (site2)", self.srv, SITES["site2"][3])
        self.say("traffic: site -> site, hub and spoke through the concentrator")
        self.ping("host1 -> host2 (site1 -> conc -> site2)", self.host1, SITES["site2"][3])
        self.ping("host2 -> host1 (site2 -> conc -> site1)", self.host2, SITES["site1"][3])
        text = self.nimbus.text("show", "tunnels")
        self.show("conc", "nimbus show tunnels", text)
        ts = self.nimbus.cli("show", "tunnels")
        self.ok(all(t.get("rx_packets", 0) >= 6 and t.get("tx_packets", 0) >= 6 for t in ts),
                "both tunnels counted the traffic on the concentrator")

    def firewall(self):
        self.say("firewall: the cloud lets in what its rules allow (and the replies to what the core opened)")
        before = self.fw_rows()
        # UDP from site1 to site2: no rule admits it, the default denies it.
        self.host1.run(["/usr/bin/python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                        f"for i in range(3): s.sendto(b'x', ('{SITES['site2'][3]}', 9))"])
        self.wait(lambda: self.fw_rows()["ingress"]["(default)"]["packets"] >= before["ingress"]["(default)"]["packets"] + 3,
                  10, "3 UDP datagrams site1 -> site2 denied by the default")
        self.show("conc", "nimbus show firewall", self.nimbus.text("show", "firewall"))
        rows = self.fw_rows()
        # A ping to the core opens with sites-to-core; the core's reply goes out
        # through core-to-sites (allow-stateful), so the ping's later packets
        # are the flow's. Site to site, every request and reply meets its rule.
        self.ok(rows["ingress"]["sites-to-core"]["packets"] >= 2 and rows["ingress"]["site-to-site-ping"]["packets"] >= 16,
                "the sites' pings to the core and to each other were let in by their rules")
        self.ok(rows["egress"]["core-to-sites"]["packets"] >= 2 and rows["ingress"]["(flows)"]["packets"] >= 6,
                "what the core sent went out statefully and the packets of those flows came back in")

    def fw_rows(self):
        f = self.nimbus.cli("show", "firewall")["firewalls"][0]
        return {d: {r["name"]: r for r in f[d]["rules"]} for d in ("ingress", "egress")}

    def metrics(self):
        self.say("metrics: Prometheus text on the concentrator's management listener")
        r = self.conc.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:9108/metrics"], check=False)
        if r.returncode != 0:
            raise Failed(f"curl http://127.0.0.1:9108/metrics exited with {r.returncode}: {r.stderr.strip()}")
        self.ok(True, "curl http://127.0.0.1:9108/metrics")
        want = re.compile(r"^nimbus_(info|uptime_seconds|tunnel|routes|routing_(zapi_synced|injected_prefixes|"
                          r"fpm_connected|fpm_routes)|port_(rx|tx)_packets_total)")
        # Every matching line: the test looks for the routing ones at the end,
        # and a cut-off would hide them whenever a new series is added.
        lines = [ln for ln in r.stdout.splitlines() if want.match(ln)]
        self.show("conc", "curl -s http://127.0.0.1:9108/metrics | grep -E '^nimbus_(info|uptime|tunnel|routes|"
                  "routing_...|port_.x_packets)'", "\n".join(lines))
        self.ok("nimbus_routing_zapi_synced 1" in r.stdout and "nimbus_routing_injected_prefixes 2" in r.stdout,
                "metrics: ZAPI synced, 2 site prefixes injected")

    def main(self):
        self.build()
        self.start_core()
        self.start_sites()
        self.show_state()
        self.traffic()
        self.firewall()
        self.metrics()


def hold_signals():
    """From here on nothing may interrupt the cleanup (a second Ctrl-C)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def main():
    if os.geteuid() != 0:
        emit("demo: run as root (namespaces, DPDK)")
        return 1
    for what, why in (("strongSwan", swan.available()),
                      ("FRR", None if frrlab.available() else "/usr/lib/frr/zebra or vtysh missing")):
        if why:
            emit(f"demo: {what} is not usable: {why} (scripts/setup.sh installs it)")
            return 1
    if not os.path.exists(nimbuslab.NIMBUSD):
        emit(f"demo: {nimbuslab.NIMBUSD} is not built")
        return 1

    def stop(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    nimbuslab.sweep_stale()  # leftovers of demo or test runs whose process died
    d = Demo()
    rc = 0
    try:
        d.main()
        emit(f"\n{BOLD}demo: OK, {d.checks} checks passed in {time.monotonic() - d.t0:.0f} s{PLAIN}")
    except KeyboardInterrupt as e:
        hold_signals()
        emit(f"\ndemo: interrupted ({str(e) or 'SIGINT'}) during '{d.step}'")
        rc = 130
    except Exception as e:  # Failed: a check; AssertionError: a command failed; others: unexpected output
        hold_signals()
        emit(f"\ndemo: FAILED during '{d.step}': {type(e).__name__ + ': ' if not isinstance(e, Failed) else ''}{e}")
        if d.lab and os.environ.get("NIMBUS_DEMO_LOGS", "1") != "0":
            emit(f"----- logs (last lines of each) -----\n{tail_logs(d.lab)}")
        rc = 1
    finally:
        hold_signals()
        if d.lab:
            emit(f"\n{BOLD}== cleaning up: nimbusd, charon, FRR daemons, namespaces, {d.lab.dir}{PLAIN}")
            d.lab.cleanup()
            left = [n.name for n in d.lab.namespaces
                    if n.name in nimbuslab.run(["ip", "netns", "list"], check=False).stdout]
            if left:
                emit(f"demo: cleanup left namespaces behind: {left}")
                rc = rc or 1
    return rc


def tail_logs(lab, lines=25):
    out = []
    for root, _dirs, files in os.walk(lab.dir):
        for fn in sorted(files):
            if fn.endswith(".log") and fn != "make.log":
                with open(os.path.join(root, fn), errors="replace") as f:
                    text = f.read().splitlines()[-lines:]
                out.append(f"--- {os.path.relpath(os.path.join(root, fn), lab.dir)}\n" + "\n".join(text))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
