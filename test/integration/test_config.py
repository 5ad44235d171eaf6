"""nimbusd refuses broken configs with file:line:column messages and starts
nothing; a broken config pushed with SIGHUP leaves the running one alone."""
import os

from nimbuslab import NIMBUSD, run, wait_until

GOOD = """node:
  name: "@NODE@"
dataplane:
  eal: [--no-huge, -m, "512"]
mgmt:
  socket: "@SOCK@"
ports:
  - name: lan0
    device: "net_af_packet0,iface=pa"
    addresses: [10.1.0.1/24]
routes:
  - { prefix: 10.50.0.0/16, via: 10.1.0.9 }
"""


def write(lab, name, text):
    path = os.path.join(lab.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_check_accepts_a_valid_config(lab):
    path = write(lab, "good.yaml", GOOD.replace("@NODE@", "x").replace("@SOCK@", "/tmp/x.sock"))
    p = run([NIMBUSD, "--check", "-c", path], check=False)
    assert p.returncode == 0, p.stderr
    assert "configuration is valid" in p.stdout


def test_broken_config_is_refused_with_positions(lab):
    r = lab.ns("r")
    a = lab.ns("a")
    lab.veth(a, "a0", r, "pa")
    bad = GOOD.replace("@NODE@", lab.prefix + "-bad").replace("@SOCK@", os.path.join(lab.dir, "bad.sock"))
    bad = bad.replace("    addresses: [10.1.0.1/24]", "    addresses: [10.1.0.1/33]\n    vrf: corp\n    speed: 10")
    path = write(lab, "bad.yaml", bad)
    for args in ([NIMBUSD, "-c", path], [NIMBUSD, "--check", "-c", path]):
        p = r.run(args, check=False)
        assert p.returncode == 2, p.stdout + p.stderr
        err = p.stderr
        assert f"{path}:10:17: ports[0].addresses[0]: '10.1.0.1/33' is not a valid interface address (ADDRESS/LENGTH)" in err
        assert f"{path}:11:10: ports[0].vrf: unknown VRF 'corp' (defined: default)" in err
        assert f"{path}:12:5: ports[0].speed: unknown key" in err
        assert "nothing started" in err
    # Nothing started: no host interface, no socket, no DPDK runtime files.
    assert "lan0" not in r.run(["ip", "-o", "link"]).stdout
    assert not os.path.exists(os.path.join(lab.dir, "bad.sock"))
    assert not os.path.exists(f"/var/run/dpdk/nimbus-{lab.prefix}-bad")


def test_broken_reload_keeps_running_config(lab):
    r = lab.ns("r")
    a = lab.ns("a")
    lab.veth(a, "a0", r, "pa")
    d = lab.nimbusd(r, "r", GOOD).start()
    before = d.cli("show", "ip", "route")
    assert any(x["prefix"] == "10.50.0.0/16" for x in before)
    d.reload(GOOD.replace("10.50.0.0/16", "10.50.0.1/16"))
    wait_until(lambda: "event=apply_rejected source=sighup" in d.log(), 10, "the reload to be rejected")
    assert "has host bits set (did you mean 10.50.0.0/16?)" in d.log()
    assert ":12:15: routes[0].prefix" in d.log()
    assert d.cli("show", "ip", "route") == before
    assert d.proc.poll() is None
    # A change outside 'routes' is refused, not half-applied.
    d.reload(GOOD.replace("10.1.0.1/24", "10.1.0.2/24").replace("10.50.0.0/16", "10.51.0.0/16"))
    wait_until(lambda: "event=apply_refused source=sighup" in d.log(), 10, "the reload to be refused")
    assert d.cli("show", "ip", "route") == before
    # A routes-only change applies.
    d.reload(GOOD.replace("10.50.0.0/16", "10.51.0.0/16"))
    wait_until(lambda: any(x["prefix"] == "10.51.0.0/16" for x in d.cli("show", "ip", "route")), 10,
               "the new route")
    assert not any(x["prefix"] == "10.50.0.0/16" for x in d.cli("show", "ip", "route"))


def test_shipped_configs_are_valid():
    conf = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "conf"))
    files = [f for f in os.listdir(conf) if f.endswith(".yaml")]
    assert files
    for f in files:
        p = run([NIMBUSD, "--check", "-c", os.path.join(conf, f)], check=False)
        assert p.returncode == 0, f"{f}: {p.stderr}"
