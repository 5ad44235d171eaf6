"""Monitoring: `show tunnels` filters, summary and JSON at 5,000 tunnels;
per-tunnel events (down reasons, flaps) against strongSwan; certificate and
CRL expiry alarms; Prometheus series per cloud and per tunnel; the restart
time of nimbusd with 1,000 tunnels."""
import collections
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nimbuslab import NIMBUS, run, wait_until
import swan
from test_ike import CONC, cert_site, conc_config, pki_cloud, site_ns, start_conc

KEY = secrets.token_hex(36)  # aes256gcm16: key || salt


def static_config(n, metrics_port=None, per_tunnel=None, lan=None, skip=()):
    """n static tunnels s-00000.. in VRFs corp (even) and retail (odd),
    but those numbered in `skip`; with `lan` (an address), a LAN port lan0
    in VRF retail."""
    m = ""
    if metrics_port:
        pt = f", per_tunnel: {per_tunnel}" if per_tunnel else ""
        m = f'\n  metrics: {{ listen: "127.0.0.1:{metrics_port}"{pt} }}'
    sas = "\n".join(
        f"  - {{ name: s-{i:05}, vrf: {'corp' if i % 2 == 0 else 'retail'}, cipher: aes256gcm16, "
        f"allowed: [10.{64 + i // 256}.{i % 256}.0/24], "
        f"paths: [ {{ local: 203.0.113.1, remote: 203.0.113.2 }} ], "
        f'out: {{ spi: {0x10000 + i:#x}, key: "{KEY}" }}, in: [ {{ spi: {0x40000 + i:#x}, key: "{KEY}" }} ] }}'
        for i in range(n) if i not in skip)
    lan_port = (f'\n  - {{ name: lan0, device: "net_af_packet1,iface=lan", vrf: retail, addresses: [{lan}] }}'
                if lan else "")
    return f"""
node: {{ name: "@NODE@" }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "1024"] }}
mgmt:
  socket: "@SOCK@"{m}
vrfs: [ {{ name: corp }}, {{ name: retail }} ]
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=wan", addresses: [203.0.113.1/24] }}{lan_port}
manual_sas:
{sas}
"""


def static_box(lab, n, **kw):
    c, p = lab.ns("c"), lab.ns("p")
    lab.veth(p, "eth0", c, "wan")
    p.addr("eth0", "203.0.113.2/24")
    return c, lab.nimbusd(c, "conc", static_config(n, **kw))


def scrape(ns, port):
    txt = ns.run(["/usr/bin/python3", "-c",
                  f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics',timeout=10)"
                  ".read().decode())"], timeout=30).stdout
    return {f.name: f for f in text_string_to_metric_families(txt)}, txt


def sample(fams, family, **labels):
    # prometheus_client names a counter's family without its _total suffix.
    fam = fams.get(family) or fams.get(family[:-len("_total")] if family.endswith("_total") else None)
    if fam is None:
        raise KeyError(family)
    for s in fam.samples:
        if s.name == family and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(f"{family}{labels}")


def check_aligned(text, n):
    """Every row of the table has its columns where the header puts them."""
    lines = text.splitlines()
    assert len(lines) == n + 2 and lines[-1] == f"{n} tunnels", lines[-3:]
    h = lines[0]
    starts = [h.index(c) for c in ("Kind", "Cloud", "Site", "State", "Uptime", "Peer", "RTT ms", "Last down")]
    ends = [h.index(c) + len(c) for c in ("ID", "Rx pkts", "Tx pkts", "Drops", "Rekeys", "Flaps")]
    for l in lines[1:-1]:
        for s in starts:
            assert l[s - 1] == " " and l[s] != " ", (s, l)
        for e in ends:
            assert l[e - 1] != " " and (e == len(l) or l[e] == " "), (e, l)


def test_show_tunnels_5000_filters_summary_json_metrics(lab):
    n = 5000
    c, d = static_box(lab, n, metrics_port=9109)
    t0 = time.monotonic()
    d.start(timeout=120)
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 120, "5,000 tunnels installed")
    print(f"MEASURE start with {n} static tunnels to CLI answering with all up: {time.monotonic() - t0:.2f} s")
    t0 = time.monotonic()
    text = d.text("show", "tunnels")
    took = time.monotonic() - t0
    print(f"MEASURE show tunnels text at {n} tunnels: {took:.2f} s, {len(text)} bytes")
    assert took < 10
    check_aligned(text, n)
    # Static tunnels are numbered apart from IKE ones ("s" IDs), and the
    # IKE-only commands say so instead of acting on an IKE tunnel.
    sid = [l for l in text.splitlines() if " s-00000 " in l][0].split()[0]
    assert sid[0] == "s" and sid[1:].isdigit(), sid
    for cmd in (["clear", "tunnel", sid], ["show", "tunnel", sid, "events"]):
        r = d.cli_raw(cmd, check=False)
        assert r.returncode != 0 and "is a static tunnel" in r.stdout + r.stderr, (cmd, r.stdout, r.stderr)
    t0 = time.monotonic()
    all_ = d.cli("show", "tunnels")
    print(f"MEASURE show tunnels | json at {n} tunnels: {time.monotonic() - t0:.2f} s")
    assert len(all_) == n and {t["kind"] for t in all_} == {"static"}
    assert all_[0]["name"] == "s-00000" and all_[0]["cloud"] == "corp" and all_[0]["state"] == "up"
    assert set(all_[0]["drops"]) >= {"auth_fail", "replay_too_old", "duplicate"}
    # Filters: cloud (here the VRF, no IKE cloud), state, site-name prefix, combined.
    corp = d.cli("show", "tunnels", "cloud", "corp")
    assert len(corp) == n // 2 and all(t["cloud"] == "corp" for t in corp)
    assert d.cli("show", "tunnels", "state", "down") == []
    assert len(d.cli("show", "tunnels", "state", "up")) == n
    pre = d.cli("show", "tunnels", "site", "s-012")
    assert sorted(t["name"] for t in pre) == [f"s-{i:05}" for i in range(1200, 1300)]
    both = d.cli("show", "tunnels", "cloud", "retail", "state", "up", "site", "s-012")
    assert len(both) == 50 and all(int(t["name"][2:]) % 2 == 1 for t in both)
    check_aligned(d.text("show", "tunnels", "cloud", "retail", "state", "up", "site", "s-012"), 50)
    bad = d.cli_raw(["show", "tunnels", "state", "sideways"], check=False)
    assert bad.returncode != 0 and "up, connecting, down" in bad.stdout + bad.stderr
    # Summary: per cloud and state.
    s = d.cli("show", "tunnels", "summary")
    assert s["tunnels"] == n and s["clouds"]["corp"]["up"] == n // 2 and s["clouds"]["retail"]["up"] == n // 2
    st = d.text("show", "tunnels", "summary")
    assert "retail" in st and "Handshakes:" in st
    # One tunnel in detail.
    [one] = d.cli("show", "tunnels", "s-04321")
    assert one["out_spi"] == f"{0x10000 + 4321:08x}" and one["vrf"] == "retail"
    assert "path 0 (primary) 203.0.113.1 -> 203.0.113.2" in d.text("show", "tunnels", "s-04321")
    # SAs, gathered in slices of 1,000 tunnels: every SA once.
    sas = d.cli("show", "ipsec", "sa")
    want = {(f"{0x10000 + i:08x}", "out", f"s-{i:05}") for i in range(n)} | \
        {(f"{0x40000 + i:08x}", "in", f"s-{i:05}") for i in range(n)}
    assert len(sas) == 2 * n and {(x["spi"], x["direction"], x["tunnel"]) for x in sas} == want
    sa_text = d.text("show", "ipsec", "sa")
    assert sa_text.count(" s-0") == 2 * n and KEY not in sa_text
    last = d.cli("show", "ipsec", "sa", f"{0x40000 + n - 1:08x}")  # in the last slice
    assert last["tunnel"] == f"s-{n - 1:05}" and last["direction"] == "in" and last["key"] == "<redacted>"
    assert f"SA {0x40000 + n - 1:08x} (inbound, tunnel s-{n - 1:05}" in \
        d.text("show", "ipsec", "sa", f"{0x40000 + n - 1:08x}")
    bad = d.cli_raw(["show", "ipsec", "sa", "0badbad0"], check=False)
    assert bad.returncode != 0 and "No such SA: 0badbad0" in bad.stdout + bad.stderr
    # The listings above were built and written off the control thread; it
    # reports how long its callbacks held it (VRRP, IKE and ZAPI wait).
    cl = d.cli("show", "version")["control_loop"]
    assert cl["callbacks"] > 0 and 0 < cl["max_callback_ms"], cl
    print(f"MEASURE longest control-thread callback with {n} tunnels: {cl['max_callback_ms']} ms "
          f"({cl['slow_callbacks']} over 50 ms)")
    assert "control thread:" in d.text("show", "version")
    # Metrics: per cloud always; per-tunnel series off above the auto limit.
    fams, txt = scrape(c, 9109)
    assert sample(fams, "nimbus_control_loop_callbacks_total") >= cl["callbacks"]
    assert sample(fams, "nimbus_control_loop_max_callback_seconds") * 1000 >= cl["max_callback_ms"]
    assert sample(fams, "nimbus_cloud_tunnels", cloud="corp", state="up") == n // 2
    assert sample(fams, "nimbus_cloud_tunnels", cloud="retail", state="down") == 0
    assert sample(fams, "nimbus_tunnel_series_enabled") == 0
    assert "nimbus_tunnel_up" not in fams
    lines = [l for l in txt.splitlines() if l and not l.startswith("#")]
    print(f"MEASURE /metrics at {n} tunnels, per-tunnel off: {len(lines)} samples")
    assert len(lines) < 1000


def test_config_apply_at_5000_tunnels_leaves_the_control_thread_free(lab):
    """An apply parses, diffs and plans off the control thread: VRRP adverts,
    IKE, ZAPI and the CLI keep being served while it runs (before, adding
    one tunnel to 5,000 held that thread 2.5 s, longer than an HA partner
    with 100 ms adverts waits before taking over)."""
    n = 5000
    c, d = static_box(lab, n)
    d.start(timeout=120)
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 120, "5,000 tunnels installed")
    kept = d.cli("show", "tunnels", "s-00042")[0]
    path = os.path.join(lab.dir, "next.yaml")
    with open(path, "w") as f:  # s-00007 goes, s-05000 comes
        f.write(static_config(n + 1, skip={7}).replace("@NODE@", d.node).replace("@SOCK@", d.sock))
    before = d.cli("show", "version")["control_loop"]
    t0 = time.monotonic()
    apply = subprocess.Popen([NIMBUS, "-s", d.sock, "-j", "config", "apply", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        answered, slowest = 0, 0.0
        while apply.poll() is None and time.monotonic() - t0 < 60:
            t1 = time.monotonic()
            d.cli("show", "version")
            slowest = max(slowest, time.monotonic() - t1)
            answered += 1 if apply.poll() is None else 0
        out, err = apply.communicate(timeout=60)
    finally:
        if apply.poll() is None:
            apply.kill()
    took = time.monotonic() - t0
    res = json.loads(out)
    print(f"MEASURE config apply (+1 -1 tunnel) at {n} tunnels: {took:.2f} s for the client, "
          f"{res.get('control_thread_ms')} ms on the control thread; `show version` answered {answered} times "
          f"meanwhile, slowest {slowest * 1000:.0f} ms")
    assert apply.returncode == 0 and res["applied"] is True, (out, err)
    assert "+ manual_sas[s-05000]" in "\n".join(res["diff"]) and "- manual_sas[s-00007]" in "\n".join(res["diff"])
    assert answered >= 1, "the CLI was not answered while the apply ran"
    assert slowest < 1.0
    assert 0 < res["control_thread_ms"] < 300, res
    after = d.cli("show", "version")["control_loop"]
    assert after["max_callback_ms"] < 300, (before, after)
    # The change itself, and a tunnel it did not name untouched.
    s = d.cli("show", "tunnels", "summary")
    assert s["tunnels"] == n and s["states"]["up"] == n
    assert d.cli("show", "tunnels", "s-05000")[0]["state"] == "up"
    assert d.cli_raw(["show", "tunnels", "s-00007"], check=False).returncode != 0
    again = d.cli("show", "tunnels", "s-00042")[0]
    assert again["id"] == kept["id"] and again["uptime_s"] >= kept["uptime_s"], (kept, again)
    # The running config shown is the one applied (redacted).
    shown = d.cli("config", "show", "running")
    assert "s-05000" in shown["text"] and "s-00007" not in shown["text"] and KEY not in shown["text"]


def test_config_applies_at_once_and_a_stop_during_one(lab):
    """Two applies at once are done one after the other, each whole; SIGTERM
    while an apply is being prepared stops nimbusd cleanly, with the -c file
    the old or the new config, never anything else."""
    n = 5000
    c, d = static_box(lab, n)
    d.start(timeout=120)
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 120, "5,000 tunnels installed")
    texts = {}
    for k, m in (("a", n + 1), ("b", n + 2), ("c", n)):
        texts[k] = static_config(m).replace("@NODE@", d.node).replace("@SOCK@", d.sock)
        with open(os.path.join(lab.dir, f"{k}.yaml"), "w") as f:
            f.write(texts[k])

    def apply(k):
        return subprocess.Popen([NIMBUS, "-s", d.sock, "-j", "config", "apply", os.path.join(lab.dir, f"{k}.yaml")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    pa, pb = apply("a"), apply("b")
    ra, rb = (json.loads(p.communicate(timeout=120)[0]) for p in (pa, pb))
    assert pa.returncode == 0 and pb.returncode == 0 and ra["applied"] and rb["applied"], (ra, rb)
    # Whichever went second saw the first's config as the running one.
    last = texts["a"] if d.text("config", "show", "running").count("name: s-") == n + 1 else texts["b"]
    got = d.cli("show", "tunnels", "summary")["tunnels"]
    assert got == (n + 1 if last is texts["a"] else n + 2)
    assert len(d.cli("config", "history")) == 3  # boot and both
    with open(d.cfg) as f:
        assert f.read() == last

    # A stop while the next apply is being prepared (its thread exists).
    tasks = lambda: len(os.listdir(f"/proc/{d.pid()}/task"))
    base = tasks()
    pc = apply("c")
    wait_until(lambda: tasks() > base or pc.poll() is not None, 10, "the apply's thread")
    d.signal(signal.SIGTERM)
    assert d.proc.wait(timeout=60) == 0, d.log()[-3000:]
    out, err = pc.communicate(timeout=30)
    with open(d.cfg) as f:
        assert f.read() in (last, texts["c"])
    print(f"MEASURE stop during an apply at {n} tunnels: client rc {pc.returncode}: {(out + err).strip()[:200]}")
    assert "event=stopped" in d.log()


def test_per_tunnel_metrics_switch_and_counters_move(lab):
    c, d = static_box(lab, 20, metrics_port=9110)
    d.start()
    fams, _ = scrape(c, 9110)
    assert sample(fams, "nimbus_tunnel_series_enabled") == 1
    assert sample(fams, "nimbus_tunnel_up", cloud="corp", site="s-00000") == 1
    assert sample(fams, "nimbus_tunnel_up", cloud="retail", site="s-00019") == 1
    d.stop()
    d2 = lab.nimbusd(c, "conc2", static_config(20, metrics_port=9110, per_tunnel="off")).start()
    fams, _ = scrape(c, 9110)
    assert sample(fams, "nimbus_tunnel_series_enabled") == 0 and "nimbus_tunnel_up" not in fams
    d2.stop()


WHY = swan.available()


@pytest.fixture
def pki(lab):
    return swan.make_pki(os.path.join(lab.dir, "pki"))


@pytest.mark.skipif(WHY is not None, reason=f"strongSwan not usable here: {WHY}")
def test_events_flaps_down_reasons_rtt_and_metrics_with_strongswan(lab, pki):
    c = lab.ns("c")
    s, sw = cert_site(lab, c, pki)
    clouds = pki_cloud(pki)
    d = lab.nimbusd(c, "conc", conc_config(clouds).replace('socket: "@SOCK@" }',
                                                             'socket: "@SOCK@", metrics: { listen: "127.0.0.1:9111" } }'))
    d.start()
    sw.start()
    sw.load()
    sw.initiate()

    def t():
        return [x for x in d.cli("show", "tunnels") if x["kind"] == "ike"][0]

    wait_until(lambda: t()["state"] == "up", 10, "tunnel up")
    tid = t()["id"]
    assert t()["flaps"] == 0 and t()["last_down"] is None
    fams0, _ = scrape(c, 9111)
    # Liveness: RTT last/min/avg/max.
    for _ in range(2):
        n0 = t()["rtt"]["samples"]
        d.cli("test", "ike", "liveness", str(tid))
        wait_until(lambda: t()["rtt"]["samples"] > n0, 10, "an RTT sample")
    r = t()["rtt"]
    assert r["samples"] >= 2 and 0 <= r["min_ms"] <= r["avg_ms"] <= r["max_ms"] < 1000
    # 1. The site terminates: DELETE from the peer.
    sw.sw("--terminate", "--ike", "lab")
    wait_until(lambda: t()["state"] == "down", 10, "down after the peer's DELETE")
    assert t()["flaps"] == 1 and t()["last_down"] == "peer_delete"
    sw.initiate()
    wait_until(lambda: t()["state"] == "up", 10, "up again")
    ev = d.cli("show", "tunnel", str(tid), "events")
    assert ev["flaps"] == 1 and ev["last_down"] == "peer_delete"
    kinds = [(e["event"], e["reason"]) for e in reversed(ev["events"])]  # oldest first
    assert kinds == [("up", None), ("down", "peer_delete"), ("up", None)], kinds
    assert all(e["time"].endswith("Z") for e in ev["events"])
    # 2. The operator clears it; the site connects again.
    d.cli("clear", "tunnel", str(tid))
    wait_until(lambda: t()["state"] == "down", 10, "down after clear")
    assert t()["last_down"] == "clear" and t()["flaps"] == 2
    sw.initiate()
    wait_until(lambda: t()["state"] == "up", 10, "up after clear")
    ev = d.cli("show", "tunnel", str(tid), "events")
    kinds = [(e["event"], e["reason"]) for e in reversed(ev["events"])]
    assert kinds[-2:] == [("down", "clear"), ("up", None)] and ev["flaps"] == 2
    text = d.text("show", "tunnel", str(tid), "events")
    assert "peer_delete" in text and "clear" in text and "flaps 2" in text
    line = [l for l in d.text("show", "tunnels").splitlines() if "store-0001" in l][0]
    assert " clear" in line and " up " in line
    # Metrics moved.
    fams, _ = scrape(c, 9111)
    assert sample(fams, "nimbus_tunnel_downs_total", reason="peer_delete") == 1
    assert sample(fams, "nimbus_tunnel_downs_total", reason="clear") == 1
    assert sample(fams, "nimbus_ike_handshakes_total") >= sample(fams0, "nimbus_ike_handshakes_total") + 2
    # The handshake work queue ran (strongSwan's IKE_AUTH went through it) and is empty now.
    assert sample(fams, "nimbus_ike_events_total", event="rx_queued") >= 2
    assert sample(fams, "nimbus_ike_work_queue") == 0
    assert sample(fams, "nimbus_cloud_tunnels", cloud="corp", state="up") == 1
    site = t()["name"]
    assert sample(fams, "nimbus_tunnel_up", cloud="corp", site=site) == 1
    assert sample(fams, "nimbus_tunnel_flaps_total", cloud="corp", site=site) == 2
    s = d.cli("show", "tunnels", "summary")
    assert s["clouds"]["corp"]["up"] == 1 and s["downs"]["clear"] == 1 and s["handshakes_total"] >= 3
    assert d.cli("show", "tunnels", "state", "up", "site", "store-00")[0]["id"] == tid
    assert d.cli("show", "tunnels", "state", "down") == []
    bad = d.cli_raw(["show", "tunnel", "999", "events"], check=False)
    assert bad.returncode != 0


SHORT = r"""
set -e
openssl req -new -key conc.key -subj "/C=XX/O=nimbus-lab/CN=conc.lab" -out short.csr
openssl x509 -req -in short.csr -CA ca.crt -CAkey ca.key -set_serial 77 -sha256 -days 2 -extfile conc.ext -out conc-short.crt
openssl ca -batch -config ca.cnf -gencrl -keyfile ca.key -cert ca.crt -crlhours 5 -out ca.crl
"""


def test_alarms_certificate_and_crl_near_expiry(lab, pki):
    run(["sh", "-c", f"cd {pki} && {SHORT}"])
    c = lab.ns("c")
    site_ns(lab, c)   # the concentrator's port needs its link; no site connects
    cfg = conc_config(pki_cloud(pki, cert="conc-short.crt")).replace(
        'socket: "@SOCK@" }', 'socket: "@SOCK@", metrics: { listen: "127.0.0.1:9112" } }')
    d = lab.nimbusd(c, "conc", cfg).start()
    al = d.cli("show", "alarms")
    kinds = {(a["kind"], a["severity"]) for a in al}
    assert ("cert_expiry", "warning") in kinds and ("crl_expiry", "warning") in kinds, al
    cert = [a for a in al if a["kind"] == "cert_expiry"][0]
    assert "conc.lab" in cert["object"] and 86400 < cert["seconds_left"] <= 2 * 86400
    crl = [a for a in al if a["kind"] == "crl_expiry"][0]
    assert 4 * 3600 < crl["seconds_left"] <= 5 * 3600
    assert len(al) == 2  # the CA (10 years) raises nothing
    text = d.text("show", "alarms")
    assert "expires in" in text and "nextUpdate in" in text
    fams, _ = scrape(c, 9112)
    assert sample(fams, "nimbus_alarms", kind="cert_expiry", severity="warning") == 1
    assert sample(fams, "nimbus_alarms", kind="crl_expiry", severity="warning") == 1
    assert sample(fams, "nimbus_alarms", kind="cert_expiry", severity="critical") == 0
    left = sample(fams, "nimbus_cert_expiry_seconds", kind="certificate", owner="cloud corp")
    assert 86400 < left <= 2 * 86400
    assert sample(fams, "nimbus_cert_expiry_seconds", kind="ca", owner="cloud corp") > 365 * 86400
    d.stop()
    # A threshold below what is left: no alarm.
    cfg2 = cfg.replace('metrics: { listen: "127.0.0.1:9112" } }',
                       'metrics: { listen: "127.0.0.1:9112" }, alarms: { cert_expiry_days: 1, crl_expiry_hours: 2 } }')
    d2 = lab.nimbusd(c, "conc2", cfg2).start()
    assert d2.cli("show", "alarms") == []
    assert "No alarms." in d2.text("show", "alarms")


def edge_config(i):
    """The far end of the concentrator's static tunnel s-<i> (mirrored SPIs),
    with a LAN holding that tunnel's allowed prefix."""
    net = f"10.{64 + i // 256}.{i % 256}"
    return f"""
node: {{ name: "@NODE@", role: edge }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "512"] }}
mgmt: {{ socket: "@SOCK@" }}
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=pwan", addresses: [203.0.113.2/24] }}
  - {{ name: lan0, device: "net_af_packet1,iface=plan", addresses: [{net}.1/24] }}
manual_sas:
  - {{ name: to-conc, cipher: aes256gcm16, allowed: [10.0.0.0/24],
      paths: [ {{ local: 203.0.113.2, remote: 203.0.113.1 }} ],
      out: {{ spi: {0x40000 + i:#x}, key: "{KEY}" }}, in: [ {{ spi: {0x10000 + i:#x}, key: "{KEY}" }} ] }}
""", f"{net}.2"


def test_restart_time_with_1000_tunnels(lab):
    """nimbusd with 1,000 static tunnels is stopped (SIGTERM) and started
    again, as systemd would; measured until all 1,000 are listed up and the
    last one installed forwards (a ping from the concentrator's LAN through
    tunnel s-00999 to a nimbusd edge at its other end). No packet crosses the
    tunnel before the restart: static SAs restart their sequence numbers
    with the process, which the edge's replay window would rightly drop."""
    n, last = 1000, 999
    c, p, hc, hp = lab.ns("c"), lab.ns("p"), lab.ns("hc"), lab.ns("hp")
    lab.veth(p, "pwan", c, "wan")
    lab.veth(hc, "h0", c, "lan")
    ecfg, far = edge_config(last)
    lab.veth(hp, "h0", p, "plan")
    for h, a, gw in ((hc, "10.0.0.2/24", "10.0.0.1"), (hp, far + "/24", far[:-1] + "1")):
        h.addr("h0", a)
        h.route("default", "via", gw)
        h.no_offload("h0")
    lab.nimbusd(p, "edge", ecfg).start()
    d = lab.nimbusd(c, "conc", static_config(n, lan="10.0.0.1/24"))
    d.start(timeout=120)
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 60, "first start")

    def forwards():
        return hc.run(["ping", "-n", "-q", "-c", "1", "-W", "0.5", far], check=False).returncode == 0

    t0 = time.monotonic()
    assert d.stop() == 0
    t_stop = time.monotonic() - t0
    d.start(timeout=120)
    t_ready = time.monotonic() - t0
    wait_until(lambda: d.cli("show", "tunnels", "summary")["states"]["up"] == n, 60, "all tunnels listed up",
               interval=0.02)
    t_listed = time.monotonic() - t0
    wait_until(forwards, 60, f"a ping through tunnel s-{last:05} after the restart", interval=0.02)
    t_fwd = time.monotonic() - t0
    [t] = d.cli("show", "tunnels", f"s-{last:05}")
    assert t["rx_packets"] >= 1 and t["tx_packets"] >= 1, t
    print(f"MEASURE restart_1000_tunnels: seconds={t_fwd:.2f} (stop {t_stop:.2f}, CLI answering {t_ready:.2f}, "
          f"all {n} listed up {t_listed:.2f}, forwarding through the last one {t_fwd:.2f})")
    assert t_fwd < 60


def ike_site_prefix(i):
    return f"10.{32 + i // 256}.{i % 256}.0/24"


def ike_conc_prefix(i):
    return f"10.{128 + i // 256}.{i % 256}.0/24"


def test_restart_time_with_1000_ike_sites(lab):
    """A concentrator with 1,000 IKE sites (PSK, DPD 1 s x 3), all from one
    nimbusd edge (1,000 `initiate:` entries, one identity and one site
    prefix each, every tunnel with a concentrator prefix of its own so the
    replies take the same tunnel), is restarted twice, each time measured
    until all 1,000 are up again on the concentrator and a ping crosses the
    last site's tunnel:

    1. gracefully (SIGTERM, as systemd stops it): the concentrator deletes
       every IKE SA before it goes (RFC 7296 §1.4.1, waiting at most
       ike.delete_on_stop_ms for the answers), so the edge knows at once
       and reconnects after its 1 s back-off, to whatever answers by then;
    2. after a crash (SIGKILL): nothing tells the edge, its liveness checks
       find the SAs dead (DPD, 3 s at most) and it reconnects.

    The restarted concentrator knows none of the old SAs either way."""
    n, last = 1000, 999
    psk = secrets.token_hex(16)
    c, e, hc, he = lab.ns("c"), lab.ns("e"), lab.ns("hc"), lab.ns("he")
    lab.veth(e, "wan", c, "wan")
    lab.veth(hc, "h0", c, "lan")
    lab.veth(he, "h0", e, "lan")
    conc_lan, edge_lan = ike_conc_prefix(last), ike_site_prefix(last)
    cgw, egw = conc_lan.replace(".0/24", ".1"), edge_lan.replace(".0/24", ".1")
    for h, net, gw in ((hc, conc_lan, cgw), (he, edge_lan, egw)):
        h.addr("h0", net.replace(".0/24", ".2/24"))
        h.route("default", "via", gw)
        h.no_offload("h0")
    sites = "\n".join(f"      - {{ id: site-{i:04}.lab, prefixes: [{ike_site_prefix(i)}] }}" for i in range(n))
    conc = f"""
node: {{ name: "@NODE@" }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "1024"] }}
mgmt: {{ socket: "@SOCK@" }}
vrfs: [ {{ name: corp }} ]
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=wan,framecnt=4096", addresses: [192.0.2.10/24] }}
  - {{ name: lan0, device: "net_af_packet1,iface=lan,framecnt=4096", vrf: corp, addresses: [{cgw}/24] }}
clouds:
  - name: corp
    vrf: corp
    psk: "{psk}"
    id: conc.lab
    proposals: {{ ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16-x25519] }}
    advertise: [10.128.0.0/9]
    dpd: {{ interval: 1, retries: 3 }}
    sites:
{sites}
ike: {{ half_open_per_source: 2000 }}   # every site comes from the one edge's address here
"""
    inits = "\n".join(f"  - {{ peer: 192.0.2.10, cloud: corp, local_id: site-{i:04}.lab, remote_id: conc.lab, "
                       f"local_prefixes: [{ike_site_prefix(i)}], remote_prefixes: [{ike_conc_prefix(i)}] }}"
                       for i in range(n))
    edge = f"""
node: {{ name: "@NODE@", role: edge }}
dataplane: {{ workers: 1, idle_sleep_us: 50, eal: [--no-huge, -m, "1024"] }}
mgmt: {{ socket: "@SOCK@" }}
vrfs: [ {{ name: corp }} ]
ports:
  - {{ name: wan0, device: "net_af_packet0,iface=wan,framecnt=4096", addresses: [192.0.2.21/24] }}
  - {{ name: lan0, device: "net_af_packet1,iface=lan,framecnt=4096", vrf: corp, addresses: [{egw}/24] }}
clouds:
  - name: corp
    vrf: corp
    psk: "{psk}"
    proposals: {{ ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16-x25519] }}
    dpd: {{ interval: 1, retries: 3 }}
initiate:
{inits}
"""
    d = lab.nimbusd(c, "conc", conc)
    d.start(timeout=120)
    de = lab.nimbusd(e, "edge", edge).start(timeout=120)

    def up(box=d):
        return box.cli("show", "tunnels", "summary")["states"].get("up", 0)

    def forwards():
        return he.run(["ping", "-n", "-q", "-c", "1", "-W", "0.5", conc_lan.replace(".0/24", ".2")],
                      check=False).returncode == 0

    def edge_downs():
        return de.cli("show", "tunnels", "summary")["downs"]

    def in_dataplane():
        """Every tunnel listed up is in the ESP dataplane on both sides (a
        child SA whose inbound SPI shares the SA table's slot with another
        is refused there: random SPIs did so for ~2 in 1,000)."""
        for box in (d, de):
            assert box.counters()["esp"]["tunnels"] == n, box.name
            assert "event=tunnel_install_failed" not in box.log(), box.name

    try:
        wait_until(lambda: up() == n, 120, "1,000 IKE sites up the first time", interval=0.1)
    except AssertionError:
        for name, box in (("concentrator", d), ("edge", de)):
            print(name, box.cli("show", "tunnels", "summary"), box.cli("show", "ike", "counters"))
        raise
    wait_until(lambda: up(de) == n, 20, "all 1,000 up on the edge too")
    in_dataplane()
    # The listings take IKE tunnels 1,000 at a time, by id: one full slice
    # here, then an empty one. Every tunnel once, with its two SAs.
    rows = d.cli("show", "tunnels")
    assert sorted(r["name"] for r in rows) == [f"site-{i:04}.lab" for i in range(n)]
    assert all(r["kind"] == "ike" and r["state"] == "up" for r in rows)
    sas = d.cli("show", "ipsec", "sa")
    per_tunnel = collections.Counter((s["tunnel"], s["direction"]) for s in sas)
    assert len(sas) == 2 * n and set(per_tunnel.values()) == {1} and len(per_tunnel) == 2 * n, per_tunnel.most_common(3)
    ike_rows = d.cli("show", "ike", "tunnels")
    assert sorted(t["id"] for t in ike_rows) == sorted(r["id"] for r in rows) and len(ike_rows) == n
    assert d.text("show", "ike", "tunnels").count(" up ") == n
    ike_sas = d.cli("show", "ike", "sa")
    assert sorted(x["tunnel"] for x in ike_sas) == sorted(r["id"] for r in rows)  # one IKE SA each
    one = d.cli("show", "ike", "sa", "tunnel", str(rows[-1]["id"]))
    assert len(one) == 1 and one[0]["tunnel"] == rows[-1]["id"]
    # One tunnel in detail, by site name and by id (found without listing all).
    by_name = d.cli("show", "tunnels", rows[-1]["name"])
    assert [(t["kind"], t["id"]) for t in by_name] == [("ike", rows[-1]["id"])]
    by_id = d.cli("show", "tunnels", str(rows[-1]["id"]))
    assert [(t["kind"], t["id"], t["name"]) for t in by_id] == [("ike", rows[-1]["id"], rows[-1]["name"])]
    wait_until(forwards, 20, "a ping through the last site's tunnel")

    def back_up(t0, stop_s, what):
        """From t0 (the signal): CLI answering, all 1,000 up, a ping through."""
        d.start(timeout=120)
        t_ready = time.monotonic() - t0
        wait_until(lambda: up() == n, 120, f"all 1,000 sites up again after the {what}", interval=0.05)
        t_up = time.monotonic() - t0
        wait_until(lambda: up(de) == n, 30, f"all 1,000 up on the edge again after the {what}", interval=0.02)
        t_edge = time.monotonic() - t0
        in_dataplane()
        wait_until(forwards, 30, f"a ping through the last site's tunnel after the {what}", interval=0.02)
        t_fwd = time.monotonic() - t0
        ike = d.cli("show", "ike", "counters")
        return dict(stop=stop_s, ready=t_ready, up=t_up, edge=t_edge, fwd=t_fwd, cookies=ike["cookies_sent"],
                    unknown=ike["rx_unknown_spi"])

    # 1. Graceful: SIGTERM, wait for the exit, start again.
    downs0 = edge_downs()
    t0 = time.monotonic()
    assert d.stop() == 0
    t_stop = time.monotonic() - t0
    closed = [l for l in d.log().splitlines() if "sub=ike event=closed" in l]
    assert closed, "the concentrator's IKE goodbye"
    # Every site was told: all 1,000 DELETEs answered within the bound.
    assert " deleted=1000 unanswered=0 " in closed[-1], closed[-1]
    # What brought the edge's tunnels down: the DELETEs, not its DPD.
    downs1 = wait_until(lambda: (lambda x: x if x.get("peer_delete", 0) - downs0.get("peer_delete", 0) >= n else None)(
        edge_downs()), 5, "the edge to count 1,000 peer deletes")
    assert downs1.get("dpd", 0) == downs0.get("dpd", 0), downs1
    g = back_up(t0, t_stop, "graceful restart")
    g["goodbye"] = closed[-1].split("elapsed_ms=")[1].split()[0]
    print(f"MEASURE restart_1000_ike_sites: seconds={g['fwd']:.2f} (SIGTERM; stop {g['stop']:.2f} with "
          f"1,000 DELETEs answered in {g['goodbye']} ms, CLI answering {g['ready']:.2f}, all {n} up {g['up']:.2f} "
          f"(on the edge {g['edge']:.2f}), forwarding through the last one {g['fwd']:.2f}; edge back-off 1 s; cookies {g['cookies']}, "
          f"unknown-SPI {g['unknown']})")

    # 2. Crash: SIGKILL, start again at once (as systemd's Restart= would).
    wait_until(lambda: up(de) == n, 20, "all 1,000 up on the edge before the crash")
    downs2 = edge_downs()
    t0 = time.monotonic()
    d.signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    t_stop = time.monotonic() - t0
    shutil.rmtree(f"/var/run/dpdk/nimbus-{d.node}", ignore_errors=True)   # what a clean exit removes
    k = back_up(t0, t_stop, "crash")
    downs3 = edge_downs()
    dpd = downs3.get("dpd", 0) - downs2.get("dpd", 0)
    print(f"MEASURE restart_1000_ike_sites_crash: seconds={k['fwd']:.2f} (SIGKILL; CLI answering {k['ready']:.2f}, "
          f"all {n} up {k['up']:.2f} (on the edge {k['edge']:.2f}), forwarding through the last one {k['fwd']:.2f}; the edge's DPD 1 s x 3 found "
          f"{dpd} dead; cookies {k['cookies']}, unknown-SPI {k['unknown']})")
    assert dpd == n, (downs2, downs3)
    # Ceilings, generous for a shared 2-core CI box: graceful = the stop (the
    # goodbye, at most ike.delete_on_stop_ms = 1 s, and the teardown) + the
    # start + the edge's 1 s back-off and perhaps one IKE_SA_INIT
    # retransmission (1 s) + 1,000 handshakes; the crash has the edge's DPD
    # (3 s) in place of the stop and the back-off.
    assert g["stop"] < 5
    assert g["fwd"] < 30 and k["fwd"] < 40
