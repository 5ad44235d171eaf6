"""Benchmark (not collected as a test; run through scripts/bench/cli.sh):
how long `show` commands hold nimbusd's control thread at N static tunnels.

Everything on that thread (VRRP adverts, IKE, ZAPI, the CLI) waits while a
callback runs. For each command this prints one JSON line with the wall time
the client saw and the longest control-thread callback while it ran (from
`show version`: control_loop.max_callback_ms, the maximum since start, so
the commands run from the cheapest to the most expensive; config changes
first)."""
import json
import re
import os
import time

from nimbuslab import wait_until

KEY = "11" * 36


def config(n, skip=()):
    # 10.64.0.0/30 ... : a /30 per tunnel, room for 2^20 tunnels.
    sas = "\n".join(
        f"  - {{ name: s-{i:06}, vrf: {'corp' if i % 2 == 0 else 'retail'}, cipher: aes256gcm16, "
        f"allowed: [10.{64 + (i >> 14)}.{(i >> 6) & 255}.{(i & 63) << 2}/30], "
        f"paths: [ {{ local: 203.0.113.1, remote: 203.0.113.2 }} ], "
        f'out: {{ spi: {0x100000 + i:#x}, key: "{KEY}" }}, in: [ {{ spi: {0x400000 + i:#x}, key: "{KEY}" }} ] }}'
        for i in range(n) if i not in skip)
    return f"""
node: {{ name: "@NODE@" }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "3072"] }}
mgmt:
  socket: "@SOCK@"
  metrics: {{ listen: "127.0.0.1:9131" }}
vrfs: [ {{ name: corp }}, {{ name: retail }} ]
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=wan", addresses: [203.0.113.1/24] }}
manual_sas:
{sas}
"""


def test_cli_scale(lab):
    n = int(os.environ.get("TUNNELS", "100000"))
    c, p = lab.ns("c"), lab.ns("p")
    lab.veth(p, "eth0", c, "wan")
    p.addr("eth0", "203.0.113.2/24")
    d = lab.nimbusd(c, "conc", config(n))
    t0 = time.monotonic()
    d.start(timeout=600)
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 600, f"{n} tunnels up")

    def memory():
        # What nimbusd holds (RSS, with the dataplane's --no-huge memory as
        # far as it is touched) and the most it held (peak).
        with open(f"/proc/{d.pid()}/status") as f:
            kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("VmRSS", "VmHWM")}
        return {"rss_mib": kb["VmRSS"] // 1024, "peak_rss_mib": kb["VmHWM"] // 1024}

    print(json.dumps({"bench": "cli", "tunnels": n, "phase": "start", "seconds": round(time.monotonic() - t0, 2),
                      **memory()}))
    # Config changes first (the longest callback is a maximum since start):
    # remove one tunnel, add it back, and show the running config.
    path = os.path.join(lab.dir, "next.yaml")
    extra = {}

    def apply(text):
        with open(path, "w") as f:
            f.write(text.replace("@NODE@", d.node).replace("@SOCK@", d.sock))
        res = json.loads(d.cli_raw(["config", "apply", path], json_out=True, timeout=600).stdout)
        extra["commit_ms"] = res.get("control_thread_ms")  # what the apply says it held the control thread
        return res.get("applied") is True

    half = n // 2
    cases = [
        ("config apply (one tunnel removed)", lambda: apply(config(n, skip={half + 1}))
         and d.cli("show", "tunnels", "summary")["tunnels"] == n - 1),
        ("config apply (one tunnel added)", lambda: apply(config(n))
         and d.cli("show", "tunnels", "summary")["tunnels"] == n),
        ("config show running",
         lambda: d.cli_raw(["config", "show", "running"], timeout=600).stdout.count("name: s-") == n),
        ("show tunnels summary", lambda: d.cli("show", "tunnels", "summary")["tunnels"] == n),
        ("/metrics", lambda: "nimbus_cloud_tunnels" in c.run(
            ["curl", "-s", "--max-time", "60", "http://127.0.0.1:9131/metrics"], timeout=90).stdout),
        ("show ip route vrf corp", lambda: d.text("show", "ip", "route", "vrf", "corp").count(" via tunnel ") == half),
        ("show tunnels", lambda: d.text("show", "tunnels").rstrip().endswith(f"{n} tunnels")),
        ("show ipsec sa", lambda: d.text("show", "ipsec", "sa").count("\n") >= 2 * n),
        ("show ip route vrf corp | json", lambda: len(d.cli("show", "ip", "route", "vrf", "corp")) >= half),
        ("show tunnels | json", lambda: len(d.cli("show", "tunnels")) == n),
        ("show ipsec sa | json", lambda: len(d.cli("show", "ipsec", "sa")) == 2 * n),
    ]
    for name, run in cases:
        extra.clear()
        v0 = d.cli("show", "version")["control_loop"]
        t0 = time.monotonic()
        ok = run()
        took = time.monotonic() - t0
        v1 = d.cli("show", "version")["control_loop"]
        assert ok, name  # the whole listing arrived
        print(json.dumps({"bench": "cli", "tunnels": n, "command": name, "wall_s": round(took, 3),
                          "max_callback_ms_before": v0["max_callback_ms"],
                          "max_callback_ms_after": v1["max_callback_ms"],
                          "slow_callbacks": v1["slow_callbacks"] - v0["slow_callbacks"], **extra, **memory()}))
    # What each give-back (after an apply, after a big reply) returned and took.
    for m in re.finditer(r"event=memory_returned after=(\S+) mib=(\d+) ms=([\d.]+)", d.log()):
        print(json.dumps({"bench": "cli", "tunnels": n, "memory_returned_after": m.group(1),
                          "mib": int(m.group(2)), "ms": float(m.group(3))}))
