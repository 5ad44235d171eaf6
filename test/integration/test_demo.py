"""scripts/demo.sh end to end, so it keeps working as features land: the VPN
cloud comes up (tunnels from a strongSwan site and a nimbus edge, BGP to the
core), every ping of the demo passes, the metrics endpoint answers, and
everything it made is gone afterwards; also when it is interrupted (Ctrl-C)
in the middle."""
import os
import re
import signal
import subprocess
import time

import pytest

import frrlab
import nimbuslab
import swan

REPO = nimbuslab.REPO
DEMO = os.path.join(REPO, "scripts", "demo.sh")

WHY = swan.available() or (None if frrlab.available() else "FRR (Debian package frr) is not installed")
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the demo needs root (namespaces, DPDK)"),
              pytest.mark.skipif(WHY is not None, reason=f"the demo cannot run here: {WHY}")]


def demo_env():
    # The build is the one under test; no apt, no rebuild from inside meson test.
    return dict(os.environ, NIMBUS_DEMO_SETUP="0", BUILD_DIR=nimbuslab.BUILD, NIMBUS_DEMO_LOGS="1")


def lab_namespaces(out):
    return re.findall(r"^   netns (\S+)$", out, re.M)


def processes_of(prefix):
    """Processes whose command line or environment names the lab (nimbusd,
    FRR daemons and charon all get paths under the lab's folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if prefix.encode() + b"-" in cmd or prefix.encode() + b"-" in env:
            found.append(f"{pid}: {cmd.replace(bytes(1), b' ').decode(errors='replace')}")
    return found


def assert_cleaned_up(out):
    names = lab_namespaces(out)
    assert len(names) == 8, out
    prefix = names[0].rsplit("-", 1)[0]
    assert not processes_of(prefix), processes_of(prefix)
    listed = nimbuslab.run(["ip", "netns", "list"]).stdout
    left = [n for n in names if n in listed]
    assert not left, f"namespaces left behind: {left}"
    # frrlab's pathspace folders, the lab's temporary folder
    for base in ("/etc/frr", "/var/run/frr"):
        assert not [d for d in os.listdir(base) if d.startswith(prefix)] if os.path.isdir(base) else True
    assert not [d for d in os.listdir("/tmp") if d.startswith(prefix + "-")]


def test_demo_runs_end_to_end_and_cleans_up():
    t0 = time.monotonic()
    p = subprocess.run([DEMO], capture_output=True, text=True, timeout=280, env=demo_env())
    took = time.monotonic() - t0
    out = p.stdout + p.stderr
    print(out)
    assert p.returncode == 0, out
    for line in ("ok: eBGP session concentrator <-> core established",
                 "ok: 198.51.100.0/24 learned from the core over FPM into nimbus's FIB",
                 "ok: strongSwan's IKE SA and CHILD_SA established",
                 "ok: the edge's tunnel to the concentrator is up",
                 "ok: both sites' tunnels up on the concentrator",
                 "ok: 10.16.1.0/24 in the core's BGP table",
                 "ok: 10.16.2.0/24 in the core's BGP table",
                 "ok: ping host1 (site1, strongSwan) -> server behind the core: 3/3",
                 "ok: ping host2 (site2, nimbus edge) -> server behind the core: 3/3",
                 "ok: ping srv -> host1 (site1): 3/3",
                 "ok: ping srv -> host2 (site2): 3/3",
                 "ok: ping host1 -> host2 (site1 -> conc -> site2): 3/3",
                 "ok: ping host2 -> host1 (site2 -> conc -> site1): 3/3",
                 "ok: metrics: ZAPI synced, 2 site prefixes injected"):
        assert line in out, f"missing: {line}"
    assert re.search(r"^   ok: tunnel site1 up \(.*10\.16\.1\.0/24\)$", out, re.M), out
    assert re.search(r"^   ok: tunnel site2 up \(.*10\.16\.2\.0/24\)$", out, re.M), out
    # What it shows: the commands and their output.
    for shown in ("conc# nimbus show tunnels", "conc# nimbus show ip route vrf default", "conc# nimbus show routing",
                  'core# vtysh -c "show bgp ipv4 unicast"', "site1# swanctl --list-sas", "conc# curl -s"):
        assert shown in out, shown
    assert re.search(r"^nimbus_routing_injected_prefixes 2$", out, re.M), out
    m = re.search(r"^demo: OK, (\d+) checks passed in (\d+) s$", out, re.M)
    assert m and int(m.group(1)) >= 25, out
    print(f"\nMEASURE demo_seconds={took:.1f} checks={m.group(1)}")
    assert_cleaned_up(out)


@pytest.mark.parametrize("how", ["sigint", "ctrl-c-pipe-gone"])
def test_demo_interrupted_cleans_up(how):
    """Interrupted once everything runs (two nimbusd, charon, two FRRs): with
    SIGINT to the demo it says where it stopped; as a terminal's Ctrl-C (the
    whole process group) while whatever read its output is gone too (`demo.sh
    | tee`: tee dies of the same Ctrl-C). Either way: exit 130 and nothing
    left behind."""
    p = subprocess.Popen([DEMO], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=demo_env(),
                         start_new_session=True)
    out = []
    deadline = time.monotonic() + 200
    rest = ""
    try:
        for line in p.stdout:
            out.append(line)
            if "== the concentrator's view" in line:
                break
            assert time.monotonic() < deadline, "".join(out)
        assert p.poll() is None, "".join(out)
        # What must go: two nimbusd, charon, zebra and bgpd twice.
        running = processes_of(lab_namespaces("".join(out))[0].rsplit("-", 1)[0])
        assert len(running) >= 7, running
        if how == "sigint":
            # demo.sh execs the driver: its pid is the one to signal.
            os.kill(p.pid, signal.SIGINT)
            rest, _ = p.communicate(timeout=60)
        else:
            p.stdout.close()
            os.killpg(p.pid, signal.SIGINT)
            p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    text = "".join(out) + rest
    print(text)
    assert p.returncode == 130, text
    if how == "sigint":
        assert "demo: interrupted (SIGINT) during 'the concentrator's view'" in text, text
        assert "== cleaning up" in text
    assert_cleaned_up(text)


def test_demo_failing_step_says_which_and_cleans_up(tmp_path):
    """A step that fails (here the metrics scrape: a `curl` that fails is put
    first in PATH) stops the demo with a message naming the step, the logs,
    exit code 1, and nothing left behind."""
    fake = tmp_path / "curl"
    fake.write_text("#!/bin/sh\necho 'curl: (7) Failed to connect (fake curl of test_demo)' >&2\nexit 7\n")
    fake.chmod(0o755)
    env = dict(demo_env(), PATH=f"{tmp_path}:{os.environ['PATH']}")
    p = subprocess.run([DEMO], capture_output=True, text=True, timeout=280, env=env)
    out = p.stdout + p.stderr
    print(out)
    assert p.returncode == 1, out
    assert "ok: ping host2 -> host1 (site2 -> conc -> site1): 3/3" in out   # everything before it ran
    assert re.search(r"^demo: FAILED during 'metrics: .*': curl http://127.0.0.1:9108/metrics exited with 7: "
                     r"curl: \(7\) Failed to connect \(fake curl of test_demo\)$", out, re.M), out
    assert "----- logs (last lines of each) -----" in out and "--- nimbusd-conc.log" in out
    assert "demo: OK" not in out
    assert_cleaned_up(out)
