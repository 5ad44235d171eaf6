"""FRR 8.4 daemons (Debian's frr package) started by hand in a test
namespace, the way shared/reference/frr-lab.sh does it: zebra and bgpd with
their own config, pid files, zserv socket and vty directory under the lab
folder, so several FRR instances (and test runs) never share a path.

-N (pathspace) only changes default paths; it does not enter a namespace
(`ip netns exec` does). It creates /etc/frr/<name> and /var/run/frr/<name>
as a side effect: the lab removes those again at cleanup. vtysh gets
--vty_socket alone (with -N it would look in <dir>/<name>/).
"""
import os
import pwd
import shutil
import signal
import subprocess
import time

from nimbuslab import run, wait_until

FRR_BIN = "/usr/lib/frr"
CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "conf", "frr")


def available():
    return os.path.exists(os.path.join(FRR_BIN, "zebra")) and shutil.which("vtysh") is not None


def shipped(fn, replace=()):
    """A file of conf/frr/ as shipped, with lab-only changes (each must apply)."""
    with open(os.path.join(CONF, fn)) as f:
        text = f.read()
    for a, b in replace:
        assert a in text, f"{a!r} not in conf/frr/{fn}"
        text = text.replace(a, b)
    return text


class Frr:
    """zebra (+ bgpd) of one node."""

    def __init__(self, lab, ns, name, zebra_conf, bgpd_conf, fpm=False):
        self.lab = lab
        self.ns = ns
        self.name = name
        self.pathspace = f"{lab.prefix}-{name}"
        self.dir = os.path.join(lab.dir, f"frr-{name}")
        self.run_dir = os.path.join(self.dir, "run")
        self.zserv = os.path.join(self.run_dir, "zserv.api")
        self.fpm = fpm
        # The daemons drop privileges to frr:frr: the lab folder must be
        # traversable, ours owned by frr.
        os.chmod(lab.dir, 0o755)
        pw = pwd.getpwnam("frr")
        for d in (self.dir, self.run_dir):
            os.makedirs(d, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        self.write("zebra.conf", zebra_conf)
        self.write("bgpd.conf", bgpd_conf)
        lab.cleanups.append(self.cleanup)

    def write(self, fn, text):
        path = os.path.join(self.dir, fn)
        with open(path, "w") as f:
            f.write(text)
        pw = pwd.getpwnam("frr")
        os.chown(path, pw.pw_uid, pw.pw_gid)

    def pid(self, daemon):
        try:
            with open(os.path.join(self.run_dir, f"{daemon}.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start_daemon(self, daemon, timeout=20):
        extra = []
        if daemon == "zebra":
            extra = ["-s", "90000000"] + (["-M", "dplane_fpm_nl"] if self.fpm else [])
        cmd = [os.path.join(FRR_BIN, daemon), "-d", "-F", "traditional", "-N", self.pathspace,
               "-f", os.path.join(self.dir, f"{daemon}.conf"), "-i", os.path.join(self.run_dir, f"{daemon}.pid"),
               "-z", self.zserv, "--vty_socket", self.run_dir, "-P", "0",
               "--log", f"file:{os.path.join(self.dir, daemon + '.log')}", "--log-level", "debug"] + extra
        self.ns.run(cmd, timeout=timeout)
        vty = os.path.join(self.run_dir, f"{daemon}.vty")
        wait_until(lambda: self.pid(daemon) and os.path.exists(vty), timeout, f"{self.name} {daemon} to start")
        if daemon == "zebra":
            wait_until(lambda: os.path.exists(self.zserv), timeout, f"{self.name} zserv.api")

    def start(self):
        self.start_daemon("zebra")
        self.start_daemon("bgpd")
        return self

    def kill(self, daemon, sig=signal.SIGKILL, timeout=10):
        pid = self.pid(daemon)
        if pid is None:
            return
        os.kill(pid, sig)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout, f"{self.name} {daemon} to exit")
        # A killed daemon leaves its pid file and sockets behind.
        for fn in (f"{daemon}.pid", f"{daemon}.vty"):
            try:
                os.unlink(os.path.join(self.run_dir, fn))
            except FileNotFoundError:
                pass
        if daemon == "zebra":
            try:
                os.unlink(self.zserv)
            except FileNotFoundError:
                pass

    def vtysh(self, *cmds, check=True):
        args = ["vtysh", "--vty_socket", self.run_dir]
        for c in cmds:
            args += ["-c", c]
        return run(args, check=check, timeout=20).stdout

    def vtysh_json(self, cmd):
        import json
        return json.loads(self.vtysh(cmd))

    def bgp_established(self):
        try:
            s = self.vtysh_json("show bgp ipv4 unicast summary json")
        except Exception:
            return False
        peers = s.get("peers", {})
        return bool(peers) and all(p.get("state") == "Established" for p in peers.values())

    def bgp_prefixes(self):
        """Prefixes in the IPv4 BGP table."""
        try:
            j = self.vtysh_json("show bgp ipv4 unicast json")
        except Exception:
            return {}
        return j.get("routes", {})

    def kernel_routes(self, table="main"):
        out = self.ns.run(["ip", "-j", "route", "show", "table", str(table)], check=False).stdout
        import json
        try:
            return json.loads(out or "[]")
        except ValueError:
            return []

    def log(self, daemon):
        try:
            with open(os.path.join(self.dir, f"{daemon}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cleanup(self):
        for d in ("bgpd", "zebra"):
            pid = self.pid(d)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for d in ("bgpd", "zebra"):
            pid = self.pid(d)
            while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid and os.path.exists(f"/proc/{pid}"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for base in ("/var/run/frr", "/etc/frr"):
            p = os.path.join(base, self.pathspace)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)


def zapi_leave_stale_route(zserv, prefix, stale_time=60):
    """Plays an earlier nimbus that crashed: a ZAPI session of type NHRP with
    graceful restart adds a blackhole route and goes away, so zebra keeps it
    as stale for `stale_time` seconds. Byte layouts: frr-zapi.md §4.5-4.11
    (FRR 8.4, ZSERV_VERSION 6, big-endian)."""
    import ipaddress
    import socket
    import struct

    def frame(cmd, body):
        return struct.pack(">HBBIH", 10 + len(body), 0xFE, 6, 0, cmd) + body

    net = ipaddress.ip_network(prefix)
    family = 2 if net.version == 4 else 10
    psize = (net.prefixlen + 7) // 8
    hello = frame(18, struct.pack(">BHIBB", 12, 0, 0, 0, 0))
    gr = frame(119, struct.pack(">III", 1, stale_time, 0))
    route = frame(8, struct.pack(">BHIIBBB", 12, 0, 0, 0x01, 1, family, net.prefixlen) +
                  net.network_address.packed[:psize] + struct.pack(">HIBBB", 1, 0, 6, 0, 1))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(zserv)
    s.sendall(hello + gr + route)
    return s  # the caller closes it once zebra has the route
