"""Test harness for nimbus integration tests: network namespaces, veths,
nimbusd processes and the tools around them.

Every lab gets a prefix unique to this process ("nb<pid>x<n>"), so two test
runs cannot clash; everything a lab creates is removed when it is cleaned up,
pass or fail, and leftovers of dead runs are swept at session start. Every
wait is bounded and polls a condition (wait_until), never a bare sleep.
"""
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("NIMBUS_BUILD") or os.path.join(REPO, "build")
NIMBUSD = os.path.join(BUILD, "src", "nimbusd")
NIMBUS = os.path.join(BUILD, "src", "nimbus")

_counter = itertools.count()


class Timeout(AssertionError):
    pass


class Fatal(AssertionError):
    """Raised by a wait_until condition that can never become true (the
    process it waits for has exited): ends the wait at once."""


def run(cmd, check=True, timeout=30, input=None, ns=None):
    """Runs a command (list, or string for bash) and returns CompletedProcess."""
    if isinstance(cmd, str):
        cmd = ["bash", "-c", cmd]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {shlex.join(cmd)}\n{p.stdout}{p.stderr}")
    return p


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Fatal:
            raise
        except Exception as e:  # the condition may not be checkable yet
            last_exc = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise Timeout(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def sweep_stale():
    """Removes namespaces left by test runs whose process is gone."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^nb(\d+)x\d+-", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", name], check=False)


class Netns:
    def __init__(self, lab, name):
        self.lab = lab
        self.name = name

    def run(self, cmd, check=True, timeout=30, input=None):
        return run(cmd, check=check, timeout=timeout, input=input, ns=self.name)

    def popen(self, cmd, log_name, env=None):
        """Starts a background process in the namespace, logging to a file."""
        if isinstance(cmd, str):
            cmd = ["bash", "-c", cmd]
        log = open(os.path.join(self.lab.dir, log_name), "w")
        full_env = dict(os.environ, **env) if env else None
        p = subprocess.Popen(["ip", "netns", "exec", self.name] + cmd, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=full_env)
        self.lab.procs.append(p)
        return p

    def addr(self, ifname, cidr):
        extra = ["nodad"] if ":" in cidr else []
        self.run(["ip", "addr", "add", cidr, "dev", ifname] + extra)

    def route(self, *args):
        self.run(["ip"] + (["-6"] if any(":" in a for a in args) else []) + ["route", "add"] + list(args))

    def no_offload(self, ifname):
        # A DPDK af_packet/af_xdp forwarder hands partial-checksum/GSO frames on
        # as they are: endpoints must compute checksums and segment themselves.
        self.run(["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off"], check=False)

    def ping(self, dst, count=3, interval=0.2, wait=2, extra=()):
        six = ["-6"] if ":" in dst else []
        return self.run(["ping"] + six + ["-c", str(count), "-i", str(interval), "-W", str(wait)] + list(extra) +
                        [dst], check=False, timeout=count * (interval + wait) + 10)

    def ping_ok(self, dst, count=3, **kw):
        p = self.ping(dst, count, **kw)
        m = re.search(r"(\d+) received", p.stdout)
        return p.returncode == 0 and m and int(m.group(1)) == count


class Lab:
    """A set of namespaces, links and processes, removed together."""

    def __init__(self, tag=""):
        self.prefix = f"nb{os.getpid()}x{next(_counter)}"
        self.dir = tempfile.mkdtemp(prefix=f"{self.prefix}-{re.sub(r'[^A-Za-z0-9]', '', tag)[:20]}-")
        self.namespaces = []
        self.procs = []
        self.daemons = []
        self.cleanups = []  # callables run first at cleanup (e.g. FRR daemons)

    def ns(self, short):
        name = f"{self.prefix}-{short}"
        run(["ip", "netns", "add", name])
        n = Netns(self, name)
        self.namespaces.append(n)
        n.run(["ip", "link", "set", "lo", "up"])
        return n

    def veth(self, a, if_a, b, if_b, up=True):
        run(["ip", "link", "add", if_a, "netns", a.name, "type", "veth", "peer", "name", if_b, "netns", b.name])
        if up:
            a.run(["ip", "link", "set", if_a, "up"])
            b.run(["ip", "link", "set", if_b, "up"])

    def nimbusd(self, ns, name, config):
        d = Nimbusd(self, ns, name, config)
        self.daemons.append(d)
        return d

    def logs(self):
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), errors="replace") as f:
                    out.append(f"----- {fn} -----\n{f.read()[-6000:]}")
        return "\n".join(out)

    def cleanup(self):
        for c in self.cleanups:
            try:
                c()
            except Exception as e:  # cleanup goes on whatever one step does
                print(f"cleanup step failed: {e}")
        for d in self.daemons:
            d.kill()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        for n in self.namespaces:
            for pid in run(["ip", "netns", "pids", n.name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", n.name], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Nimbusd:
    """A nimbusd process in a namespace, with its own config, CLI socket and
    DPDK file prefix (the node name carries the lab prefix)."""

    def __init__(self, lab, ns, name, config):
        self.lab = lab
        self.ns = ns
        self.name = name
        self.node = f"{lab.prefix}-{name}"
        self.sock = os.path.join(lab.dir, f"{name}.sock")
        self.cfg = os.path.join(lab.dir, f"{name}.yaml")
        self.proc = None
        self.write_config(config)

    def write_config(self, config):
        text = config.replace("@NODE@", self.node).replace("@SOCK@", self.sock)
        with open(self.cfg, "w") as f:
            f.write(text)

    def start(self, timeout=30, env=None):
        self.proc = self.ns.popen([NIMBUSD, "-c", self.cfg], f"nimbusd-{self.name}.log", env=env)

        def ready():
            if self.proc.poll() is not None:
                raise Fatal(f"nimbusd {self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
            return os.path.exists(self.sock) and self.cli_raw(["show", "version"], check=False).returncode == 0

        wait_until(ready, timeout, f"nimbusd {self.name} to answer on its CLI socket")
        return self

    def log(self):
        path = os.path.join(self.lab.dir, f"nimbusd-{self.name}.log")
        with open(path, errors="replace") as f:
            return f.read()

    def cli_raw(self, words, json_out=False, check=True, timeout=15):
        cmd = [NIMBUS, "-s", self.sock] + (["-j"] if json_out else []) + list(words)
        return run(cmd, check=check, timeout=timeout)

    def cli(self, *words):
        """Runs a command and returns its JSON data."""
        return json.loads(self.cli_raw(words, json_out=True).stdout)

    def text(self, *words):
        return self.cli_raw(words).stdout

    def counters(self):
        return self.cli("show", "counters")

    def port_counters(self, port):
        for p in self.counters()["ports"]:
            if p["name"] == port:
                return p
        raise KeyError(port)

    def reload(self, config):
        """Writes a new config and sends SIGHUP."""
        self.write_config(config)
        self.signal(signal.SIGHUP)

    def pid(self):
        # `ip netns exec` execs the program: the Popen pid is nimbusd's.
        return self.proc.pid

    def signal(self, sig):
        os.kill(self.pid(), sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
