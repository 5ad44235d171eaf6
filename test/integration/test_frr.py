"""nimbusd with real FRR 8.4 (Debian's package): site prefixes injected into
zebra over ZAPI and advertised by bgpd to a core router, the core's routes
learned back over FPM into the dataplane FIB, and what happens when FRR
restarts or is not there yet.

    srv ---- core (FRR AS 65000) ====eBGP==== conc: nimbusd + zebra + bgpd (AS 65001) ---- site
    198.51.100.10  192.0.2.2          core0 192.0.2.1 | lan0 10.9.0.1       10.9.0.2, hosts 10.16.x.10

The site stands behind a tunnel route (Source::Tunnel, owner "site1"); the
FRR work cares only that tunnel routes appear in and leave the RIB.
"""
import os
import threading
import time

import pytest

import frrlab
from nimbuslab import wait_until

pytestmark = pytest.mark.skipif(not frrlab.available(), reason="FRR (Debian package frr) is not installed")

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "frr")


def shipped(fn, replace=()):
    """A file of conf/frr/ as shipped, with lab-only changes."""
    with open(os.path.join(CONF, fn)) as f:
        text = f.read()
    for a, b in replace:
        assert a in text, f"{a!r} not in conf/frr/{fn}"
        text = text.replace(a, b)
    return text


# The shipped snippets, with faster BGP timers for the lab.
CONC_ZEBRA = shipped("zebra.conf")
CONC_BGPD = shipped("bgpd.conf", [(" neighbor 192.0.2.2 timers connect 5\n",
                                   " neighbor 192.0.2.2 timers 3 9\n neighbor 192.0.2.2 timers connect 1\n")])

CORE_BGPD = """hostname core
router bgp 65000
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 65001
 neighbor 192.0.2.1 timers 3 9
 neighbor 192.0.2.1 timers connect 1
 address-family ipv4 unicast
  network 198.51.100.0/24
 exit-address-family
"""


def nimbus_config(zserv, extra_routing=""):
    return f"""
node:
  name: "@NODE@"
dataplane:
  workers: 1
  idle_sleep_us: 50
  eal: [--no-huge, -m, "512"]
mgmt:
  socket: "@SOCK@"
  metrics: {{ listen: "127.0.0.1:9108" }}
ports:
  - {{ name: core0, device: "net_af_packet0,iface=pc,framecnt=4096", addresses: [192.0.2.1/24] }}
  - {{ name: lan0, device: "net_af_packet1,iface=pl,framecnt=4096", addresses: [10.9.0.1/24] }}
routing:
  zebra: {zserv}
  fpm: 127.0.0.1:2620
  host_routes: {{ port: core0 }}
  clouds:
    - {{ name: internet, tag: 100, advertise_bgp: true }}
  sites:
    - {{ name: site1, tag: 142, metric: 50 }}
    - {{ name: site2, tag: 143 }}
{extra_routing}
"""


class Net:
    """The namespaces, links and FRR instances of the lab above."""

    def __init__(self, lab):
        self.lab = lab
        self.conc, self.core, self.srv, self.site = lab.ns("conc"), lab.ns("core"), lab.ns("srv"), lab.ns("site")
        lab.veth(self.core, "c0", self.conc, "pc")
        lab.veth(self.site, "s0", self.conc, "pl")
        lab.veth(self.srv, "v0", self.core, "c1")
        self.core.addr("c0", "192.0.2.2/24")
        self.core.addr("c1", "198.51.100.1/24")
        self.core.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.srv.addr("v0", "198.51.100.10/24")
        self.srv.route("default", "via", "198.51.100.1")
        self.site.addr("s0", "10.9.0.2/24")
        self.site.route("default", "via", "10.9.0.1")
        for ns, ifc in ((self.core, "c0"), (self.site, "s0"), (self.srv, "v0"), (self.core, "c1")):
            ns.no_offload(ifc)
        self.conc_frr = frrlab.Frr(lab, self.conc, "conc", CONC_ZEBRA, CONC_BGPD, fpm=True)
        self.core_frr = frrlab.Frr(lab, self.core, "core", "hostname core\n", CORE_BGPD)
        self.nimbus = None

    def site_hosts(self, n):
        """Hosts 10.16.i.10 behind the site router for the first n sites."""
        for i in range(1, n + 1):
            self.site.run(["ip", "addr", "add", f"10.16.{i}.10/32", "dev", "lo"])

    def start_nimbus(self, extra_routing=""):
        self.nimbus = self.lab.nimbusd(self.conc, "conc", nimbus_config(self.conc_frr.zserv, extra_routing)).start()
        return self.nimbus

    def start_frr(self):
        self.core_frr.start()
        self.conc_frr.start()
        wait_until(self.conc_frr.bgp_established, 40, "the eBGP session conc-core")

    def routing(self):
        return self.nimbus.cli("show", "routing")

    def core_kernel_has(self, prefix):
        return any(r.get("dst") == prefix for r in self.core_frr.kernel_routes())

    def fib_route(self, prefix, source=None):
        for r in self.nimbus.cli("show", "ip", "route"):
            if r["prefix"] == prefix and (source is None or r["source"] == source):
                return r
        return None


@pytest.fixture
def net(lab):
    return Net(lab)


def tunnel_up(d, name, prefixes, via="10.9.0.2"):
    d.cli_raw(["debug", "tunnel-for-test", "up", name, prefixes, "via", via])


def tunnel_down(d, name):
    d.cli_raw(["debug", "tunnel-for-test", "down", name])


def timed(pred, timeout, what, interval=0.005):
    t0 = time.monotonic()
    wait_until(pred, timeout, what, interval=interval)
    return time.monotonic() - t0


def test_inject_learn_and_forward(net):
    net.site_hosts(1)
    d = net.start_nimbus()
    net.start_frr()
    wait_until(lambda: net.routing()["zapi"]["state"] == "synced", 15, "the ZAPI session to sync")

    # Learn: the core's 198.51.100.0/24 arrives over FPM into nimbus's FIB,
    # next hop the core on core0.
    r = wait_until(lambda: net.fib_route("198.51.100.0/24", "fpm"), 20, "198.51.100.0/24 from FPM in the FIB")
    assert r["selected"] and r["nexthop"] == {"type": "gateway", "via": "192.0.2.2", "port": "core0"}
    assert "F>* 198.51.100.0/24" in d.text("show", "ip", "route", "vrf", "default")

    # Inject: a tunnel comes up; measure until the core's kernel has the route.
    t_add = time.monotonic()
    tunnel_up(d, "site1", "10.16.1.0/24")
    wait_until(lambda: net.core_kernel_has("10.16.1.0/24"), 10, "10.16.1.0/24 in the core's kernel", interval=0.005)
    add_delay = time.monotonic() - t_add
    bgp = net.core_frr.bgp_prefixes()["10.16.1.0/24"][0]
    assert bgp["nexthops"][0]["ip"] == "192.0.2.1"
    core_route = net.core_frr.vtysh_json("show bgp ipv4 unicast 10.16.1.0/24 json")["paths"][0]
    # conf/frr/bgpd.conf's route-map: site1's tag 142 became community
    # 65001:142, its metric the MED.
    assert core_route["community"]["string"] == "65001:142"
    assert core_route["aspath"]["string"] == "65001"
    assert core_route["metric"] == 50
    print(f"\nMEASURE inject_to_core_kernel_ms={add_delay * 1000:.0f}")
    # FRR's own pipeline is ~120 ms here (frr-zapi.md §8.1); the CLI call,
    # polling and a loaded 2-core box add to it.
    assert add_delay < 1.5

    # nimbus's view: injected, installed by zebra; our own echo over FPM is
    # filtered, not learned.
    rt = net.routing()
    assert rt["zapi"]["routes"]["installed"] == 1
    assert rt["inject"]["prefixes"] == 1
    assert rt["fpm"]["filtered"] >= 1
    assert net.fib_route("10.16.1.0/24", "fpm") is None
    assert net.fib_route("10.16.1.0/24", "tunnel")["selected"]
    text = d.text("show", "routing")
    print(text)
    assert "ZAPI to zebra (" in text and "): synced" in text and "1 installed" in text
    metrics = net.conc.run(["/usr/bin/python3", "-c", "import urllib.request;print(urllib.request.urlopen("
                            "'http://127.0.0.1:9108/metrics',timeout=5).read().decode())"]).stdout
    for line in ("nimbus_routing_zapi_synced 1", "nimbus_routing_injected_prefixes 1", "nimbus_routing_fpm_connected 1",
                 'nimbus_routing_zapi_routes{state="installed"} 1', "nimbus_routing_host_routes 1"):
        assert line in metrics, line
    inj = d.cli("show", "routing", "injected")
    assert inj == [{"vrf": "default", "site": "site1", "prefix": "10.16.1.0/24", "verdict": "injected", "tag": 142,
                    "metric": 50, "zebra": "installed"}]

    # Traffic both ways through the concentrator.
    assert net.srv.ping_ok("10.16.1.10", 3), "a host behind the core reaches a host behind the site"
    assert net.site.ping_ok("198.51.100.10", 3, extra=("-I", "10.16.1.10")), "and back"

    # The box's own traffic: zebra's blackhole for the injected prefix is in
    # the kernel's main table, and still the concentrator's ping works.
    main = net.conc.run(["ip", "route", "show", "10.16.1.0/24"]).stdout
    assert "blackhole" in main and "proto nhrp" in main, main
    assert "10.16.1.0/24" in net.conc.run(["ip", "route", "show", "table", "250"]).stdout
    assert net.conc.ping_ok("10.16.1.10", 3), "the concentrator's kernel reaches a host behind the site"

    # A backup site (tag 143): prepended twice, MED raised by 100.
    tunnel_up(d, "site2", "10.16.2.0/24")
    wait_until(lambda: "10.16.2.0/24" in net.core_frr.bgp_prefixes(), 10, "site2 at the core")
    p2 = net.core_frr.vtysh_json("show bgp ipv4 unicast 10.16.2.0/24 json")["paths"][0]
    assert p2["community"]["string"] == "65001:143"
    assert p2["aspath"]["string"] == "65001 65001 65001"
    assert p2["metric"] == 100
    tunnel_down(d, "site2")

    # IPv6: a site's v6 prefix goes to zebra too (blackhole, proto nhrp),
    # with a host route in the same table.
    tunnel_up(d, "site1", "10.16.1.0/24,2001:db8:16::/48")
    wait_until(lambda: "2001:db8:16::/48" in net.conc_frr.vtysh("show ipv6 route nhrp"), 10, "the IPv6 prefix in zebra")
    assert "2001:db8:16::/48" in net.conc.run(["ip", "-6", "route", "show", "table", "250"]).stdout
    assert net.routing()["zapi"]["routes"]["desired"] == 2

    # What the cloud offers to its sites includes the BGP-learned route.
    assert {"cloud": "internet", "vrf": "default", "prefix": "198.51.100.0/24"} in d.cli("show", "routing", "offered")

    # Tunnel down: withdrawn from the core.
    t_del = time.monotonic()
    tunnel_down(d, "site1")
    wait_until(lambda: not net.core_kernel_has("10.16.1.0/24"), 10, "the withdrawal at the core", interval=0.005)
    del_delay = time.monotonic() - t_del
    print(f"MEASURE withdraw_to_core_kernel_ms={del_delay * 1000:.0f}")
    assert del_delay < 1.5
    assert "10.16.1.0/24" not in net.core_frr.bgp_prefixes()
    wait_until(lambda: "10.16.1.0/24" not in net.conc.run(["ip", "route", "show", "table", "250"]).stdout, 5,
               "the host route to go")
    assert d.proc.poll() is None


def test_frr_restart_replays_and_leaves_nothing_stale(net):
    """zebra and bgpd die together and come back (as watchfrr restarts all
    daemons when zebra dies): nimbus reconnects, replays its routes, learns
    the new FIB, and nothing that changed while FRR was away survives."""
    net.site_hosts(2)
    core_bgpd = CORE_BGPD.replace(" no bgp ebgp-requires-policy\n",
                                  " no bgp ebgp-requires-policy\n no bgp network import-check\n")
    core_bgpd = core_bgpd.replace("  network 198.51.100.0/24\n", "  network 198.51.100.0/24\n  network 203.0.113.0/24\n")
    net.core_frr.write("bgpd.conf", core_bgpd)
    d = net.start_nimbus()
    net.start_frr()
    tunnel_up(d, "site1", "10.16.1.0/24")
    tunnel_up(d, "site2", "10.16.2.0/24")
    wait_until(lambda: net.core_kernel_has("10.16.1.0/24") and net.core_kernel_has("10.16.2.0/24"), 15,
               "both site prefixes at the core")
    wait_until(lambda: net.fib_route("203.0.113.0/24", "fpm"), 15, "203.0.113.0/24 learned")
    assert net.srv.ping_ok("10.16.1.10", 2)

    # Watch the core's route in nimbus's FIB from the crash to the end.
    gaps = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                if not net.fib_route("198.51.100.0/24", "fpm"):
                    gaps.append(time.monotonic())
            except Exception:
                pass
            time.sleep(0.1)

    th = threading.Thread(target=watch)
    th.start()
    # zebra crashes first (killing bgpd first would make a live zebra
    # withdraw bgpd's routes over FPM, which is right but not this case).
    net.conc_frr.kill("zebra")
    net.conc_frr.kill("bgpd")
    wait_until(lambda: net.routing()["zapi"]["state"] == "disconnected" and not net.routing()["fpm"]["connected"], 10,
               "nimbus to notice")
    # While FRR is away: site2's tunnel goes, the core stops announcing
    # 203.0.113.0/24. Learned routes stay in the FIB meanwhile.
    tunnel_down(d, "site2")
    net.core_frr.vtysh("configure terminal", "router bgp 65000", "address-family ipv4 unicast",
                       "no network 203.0.113.0/24")
    assert net.fib_route("198.51.100.0/24", "fpm")["selected"]
    assert net.fib_route("203.0.113.0/24", "fpm")
    wait_until(lambda: not net.core_kernel_has("10.16.1.0/24"), 15, "the core to drop the dead session's routes")

    t0 = time.monotonic()
    net.conc_frr.start()
    t_zapi = timed(lambda: net.routing()["zapi"]["state"] == "synced", 40, "ZAPI to reconnect and replay")
    wait_until(net.conc_frr.bgp_established, 40, "eBGP again")
    wait_until(lambda: net.core_kernel_has("10.16.1.0/24"), 20, "site1's prefix at the core again")
    t_core = time.monotonic() - t0
    # No stale state: site2 never comes back; the FPM sweep removes what
    # zebra no longer has once the replay is complete.
    # (the replay is complete after fpm_replay_hold_ms, 10 s, since the connect)
    wait_until(lambda: net.routing()["fpm"]["state"] == "synced", 30, "the FPM replay to complete")
    wait_until(lambda: net.fib_route("203.0.113.0/24", "fpm") is None, 5, "203.0.113.0/24 to be swept")
    assert not net.core_kernel_has("10.16.2.0/24")
    assert "10.16.2.0/24" not in net.conc_frr.vtysh("show ip route nhrp")
    wait_until(lambda: net.fib_route("198.51.100.0/24", "fpm"), 20, "198.51.100.0/24 learned again")
    rt = net.routing()
    assert rt["zapi"]["reconnects"] >= 1 and rt["zapi"]["routes"]["desired"] == 1
    assert rt["fpm"]["swept"] >= 1
    stop.set()
    th.join()
    # The core's route never left the FIB: held while FRR was away and while
    # BGP re-formed, then refreshed by the replay.
    assert not gaps, f"198.51.100.0/24 missing from the FIB for {len(gaps)} samples"
    print(f"\nMEASURE frr_restart: zapi_synced_after_s={t_zapi:.2f} core_has_site_after_s={t_core:.2f} "
          f"fib_gap_samples={len(gaps)}")
    # Traffic resumes; nimbusd never went away.
    wait_until(lambda: net.srv.ping_ok("10.16.1.10", 1), 20, "traffic between the core and the site")
    assert net.site.ping_ok("198.51.100.10", 2, extra=("-I", "10.16.1.10"))
    assert d.proc.poll() is None


def test_frr_started_after_nimbusd(net):
    """FRR not there yet: nimbusd starts anyway, retries with backoff, and
    connects as soon as zebra creates its socket (inotify), then injects."""
    net.site_hosts(1)
    d = net.start_nimbus()
    tunnel_up(d, "site1", "10.16.1.0/24")
    # Five failed attempts: the backoff is at 1.6 s and growing.
    rt = wait_until(lambda: (lambda r: r if r["zapi"]["connect_attempts"] >= 5 else None)(net.routing()), 15,
                    "a few connection attempts")
    assert rt["zapi"]["state"] == "disconnected" and "No such file" in rt["zapi"]["last_error"]
    assert rt["zapi"]["routes"]["desired"] == 1
    net.core_frr.start()
    t0 = time.monotonic()
    net.conc_frr.start_daemon("zebra")
    t_sync = timed(lambda: net.routing()["zapi"]["state"] == "synced", 10, "ZAPI to connect")
    assert net.routing()["zapi"]["socket_appeared"] >= 1
    # Not a backoff step: the socket's appearance triggered the attempt.
    assert time.monotonic() - t0 < 1.5
    net.conc_frr.start_daemon("bgpd")
    wait_until(net.conc_frr.bgp_established, 40, "the eBGP session")
    wait_until(lambda: net.core_kernel_has("10.16.1.0/24"), 20, "the site prefix at the core")
    print(f"\nMEASURE late_frr: zapi_synced_after_zebra_s={t_sync:.2f} "
          f"core_has_site_after_zebra_s={time.monotonic() - t0:.2f}")
    wait_until(lambda: net.fib_route("198.51.100.0/24", "fpm"), 20, "the core's route learned over FPM")
    assert net.srv.ping_ok("10.16.1.10", 2)
    assert d.proc.poll() is None


def test_thousand_sites_at_once(net):
    d = net.start_nimbus()
    net.start_frr()
    wait_until(lambda: net.routing()["zapi"]["state"] == "synced", 15, "ZAPI")

    def core_count():
        out = net.core.run(["ip", "route", "show", "proto", "bgp"]).stdout
        return sum(1 for line in out.splitlines() if line.startswith("10.128.") or line.startswith("10.129.")
                   or line.startswith("10.130.") or line.startswith("10.131."))

    t0 = time.monotonic()
    d.cli_raw(["debug", "tunnel-for-test", "bulk", "1000", "10.128.0.0/24"])
    t_cli = time.monotonic() - t0
    wait_until(lambda: core_count() == 1000, 60, "1,000 prefixes at the core", interval=0.05)
    t_all = time.monotonic() - t0
    rt = net.routing()
    assert rt["inject"]["prefixes"] == 1000
    wait_until(lambda: net.routing()["zapi"]["routes"]["installed"] == 1000, 20, "zebra to confirm all")
    print(f"\nMEASURE bulk_1000: cli_s={t_cli:.3f} all_at_core_kernel_s={t_all:.2f}")
    # FRR alone took ~250 ms for 1,000 in the research lab (frr-zapi.md §8.2);
    # here ~1.2 s end to end on a loaded 2-core box.
    assert t_all < 10
    # And all withdrawn again.
    t0 = time.monotonic()
    d.cli_raw(["debug", "tunnel-for-test", "down", "all"])
    wait_until(lambda: core_count() == 0, 60, "the 1,000 prefixes withdrawn", interval=0.05)
    print(f"MEASURE bulk_1000_withdraw_s={time.monotonic() - t0:.2f}")
    assert d.proc.poll() is None


def test_version_guard_disables_injection(net):
    """frr_version names a release whose ZAPI numbers differ: nimbus sends
    nothing, says which FRR it expects, and keeps forwarding."""
    d = net.start_nimbus(extra_routing="  frr_version: 10.0.1\n")
    net.start_frr()
    tunnel_up(d, "site1", "10.16.1.0/24")
    rt = wait_until(lambda: (lambda r: r if r["zapi"]["connected"] else None)(net.routing()), 15, "the ZAPI socket")
    assert rt["zapi"]["state"] == "version-mismatch"
    assert rt["zapi"]["version"]["configured_verdict"] == "incompatible"
    assert "FRR 8.4.x" in rt["zapi"]["last_error"] and "10.0" in rt["zapi"]["last_error"]
    assert rt["zapi"]["adds_sent"] == 0
    assert "FRR 8.4.x" in d.log()
    # zebra never got a route from us; FPM learning is independent of it.
    assert "10.16.1.0/24" not in net.conc_frr.vtysh("show ip route")
    wait_until(lambda: net.fib_route("198.51.100.0/24", "fpm"), 20, "FPM learning still works")
