"""Operating the box: config check/diff/apply through the CLI and the HTTPS
API (mutual TLS, roles, audit log), secrets redacted, Prometheus metrics that
parse and move with traffic."""
import http.client
import json
import os
import ssl
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nimbuslab import NIMBUS, run, wait_until

BASE = """node: {{ name: "@NODE@" }}
dataplane: {{ eal: [--no-huge, -m, "512"] }}
mgmt:
  socket: "@SOCK@"
  state_dir: "{state}"
{api}
ports:
  - {{ name: lan0, device: "net_af_packet0,iface=pa", addresses: [10.1.0.1/24] }}
  - {{ name: lan1, device: "net_af_packet1,iface=pb", addresses: [10.2.0.1/24] }}
routes:
{routes}
"""


def cfg(lab, routes=("10.50.0.0/16",), api=""):
    r = "\n".join(f"  - {{ prefix: {p}, via: 10.2.0.2 }}" for p in routes) or "  []"
    if not routes:
        r = ""
    text = BASE.format(state=os.path.join(lab.dir, "state"), api=api, routes=r)
    return text if routes else text.replace("routes:\n", "")


def topology(lab):
    a, r, b = lab.ns("a"), lab.ns("r"), lab.ns("b")
    lab.veth(a, "a0", r, "pa")
    lab.veth(b, "b0", r, "pb")
    a.addr("a0", "10.1.0.2/24")
    b.addr("b0", "10.2.0.2/24")
    a.route("default", "via", "10.1.0.1")
    b.route("default", "via", "10.2.0.1")
    a.no_offload("a0")
    b.no_offload("b0")
    return a, r, b


def nimbus(d, *words, check=True):
    return run([NIMBUS, "-s", d.sock] + list(words), check=check)


def test_config_apply_diff_and_audit(lab):
    a, r, b = topology(lab)
    d = lab.nimbusd(r, "r", cfg(lab)).start()
    new = os.path.join(lab.dir, "new.yaml")
    with open(new, "w") as f:
        f.write(cfg(lab, routes=("10.50.0.0/16", "10.60.0.0/16")).replace("@NODE@", d.node).replace("@SOCK@", d.sock))
    out = nimbus(d, "config", "diff", new).stdout
    assert "+ routes[10.60.0.0/16]: {prefix: 10.60.0.0/16, via: 10.2.0.2}" in out
    assert not any(x["prefix"] == "10.60.0.0/16" for x in d.cli("show", "ip", "route")), "diff must not apply"
    out = nimbus(d, "config", "apply", new).stdout
    assert "applied, version" in out
    assert any(x["prefix"] == "10.60.0.0/16" for x in d.cli("show", "ip", "route"))
    # The -c file follows, so a restart comes up with what was applied.
    assert "10.60.0.0/16" in open(d.cfg).read()
    # An invalid config: errors with positions, nothing changes.
    with open(new, "w") as f:
        f.write(open(d.cfg).read().replace("10.60.0.0/16", "10.60.0.1/16"))
    p = nimbus(d, "config", "apply", new, check=False)
    assert p.returncode == 1 and f"{new}:" in p.stderr and "has host bits set" in p.stderr
    assert any(x["prefix"] == "10.60.0.0/16" for x in d.cli("show", "ip", "route"))
    # A change that needs a restart is refused, not half-applied.
    with open(new, "w") as f:
        f.write(open(d.cfg).read().replace("10.2.0.1/24", "10.2.0.9/24").replace("10.60.0.0/16", "10.70.0.0/16"))
    p = nimbus(d, "config", "apply", new, check=False)
    assert p.returncode == 1 and "changes to ports need a restart" in p.stderr
    assert not any(x["prefix"] == "10.70.0.0/16" for x in d.cli("show", "ip", "route"))
    audit = [json.loads(l) for l in open(os.path.join(lab.dir, "state", "audit.log"))]
    assert [x["result"] for x in audit] == ["applied", "rejected", "refused"]
    assert audit[0]["who"] == "cli" and len(audit[0]["version"]) == 64
    assert "+ routes[10.60.0.0/16]: {prefix: 10.60.0.0/16, via: 10.2.0.2}" in audit[0]["diff"]
    running = nimbus(d, "config", "show", "running").stdout
    assert "10.60.0.0/16" in running and "10.70.0.0/16" not in running


def make_pki(lab):
    """A management CA, a server cert for 10.1.0.1, an admin, a reader and a
    client of another CA."""
    pki = os.path.join(lab.dir, "pki")
    os.makedirs(pki)

    def sh(cmd):
        subprocess.run(["bash", "-c", cmd], cwd=pki, check=True, capture_output=True)

    ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    for ca in ("ca", "rogue"):
        sh(f"openssl req -x509 {ec} -keyout {ca}.key -out {ca}.pem -subj /CN={ca}-mgmt -days 2")
    for name, ca, cn, ext in (("server", "ca", "box", "subjectAltName=IP:10.1.0.1"),
                              ("admin", "ca", "ops-admin", "extendedKeyUsage=clientAuth"),
                              ("reader", "ca", "ops-reader", "extendedKeyUsage=clientAuth"),
                              ("nobody", "ca", "ops-nobody", "extendedKeyUsage=clientAuth"),
                              ("intruder", "rogue", "ops-admin", "extendedKeyUsage=clientAuth")):
        sh(f"openssl req {ec} -keyout {name}.key -out {name}.csr -subj /CN={cn}")
        sh(f"printf '{ext}' > {name}.ext && openssl x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key "
           f"-CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext")
    os.chmod(os.path.join(pki, "server.key"), 0o600)
    return pki


CLIENT = r"""
import http.client, json, ssl, sys
pki, who, method, path = sys.argv[1:5]
body = sys.stdin.read() if method == "PUT" or method == "POST" else None
ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
if who != "none":
    ctx.load_cert_chain(f"{pki}/{who}.pem", f"{pki}/{who}.key")
try:
    c = http.client.HTTPSConnection("10.1.0.1", 8443, context=ctx, timeout=10)
    c.request(method, path, body=body)
    r = c.getresponse()
    print(json.dumps({"status": r.status, "body": r.read().decode()}))
except (ssl.SSLError, ConnectionError, OSError) as e:
    print(json.dumps({"status": 0, "error": repr(e)}))
"""


def test_https_api_mutual_tls_roles_and_metrics(lab):
    a, r, b = topology(lab)
    pki = make_pki(lab)
    api = f"""  api:
    listen: "10.1.0.1:8443"
    cert: {pki}/server.pem
    key: {pki}/server.key
    client_ca: {pki}/ca.pem
    admins: [ops-admin]
    readers: [ops-reader]
  metrics: {{ listen: "127.0.0.1:9108" }}"""
    d = lab.nimbusd(r, "r", cfg(lab, api=api)).start()
    client = os.path.join(lab.dir, "client.py")
    with open(client, "w") as f:
        f.write(CLIENT)

    def call(who, method, path, body=""):
        # From host-a, across the dataplane to the box's own address.
        p = a.run(["/usr/bin/python3", client, pki, who, method, path], input=body, timeout=30)
        return json.loads(p.stdout)

    st = wait_until(lambda: call("reader", "GET", "/v1/status"), 15, "the API to answer")
    assert st["status"] == 200 and json.loads(st["body"])["version"]["node"] == d.node
    # No certificate, or one from another CA: refused at the handshake, and logged.
    assert call("none", "GET", "/v1/status")["status"] == 0
    assert call("intruder", "GET", "/v1/status")["status"] == 0
    wait_until(lambda: "event=tls_refused" in d.log() and "event=client_cert_rejected" in d.log(), 10,
               "the refusals to be logged")
    # Authenticated but without a role.
    assert call("nobody", "GET", "/v1/config")["status"] == 403
    # The reader reads, the admin writes.
    cfg_now = call("reader", "GET", "/v1/config")
    assert cfg_now["status"] == 200 and "10.50.0.0/16" in cfg_now["body"]
    new = open(d.cfg).read().replace("10.50.0.0/16", "10.51.0.0/16")
    assert call("reader", "PUT", "/v1/config", new)["status"] == 403
    res = call("admin", "PUT", "/v1/config", new)
    assert res["status"] == 200, res
    body = json.loads(res["body"])
    assert body["applied"] and "- routes[10.50.0.0/16]: {prefix: 10.50.0.0/16, via: 10.2.0.2}" in body["diff"]
    assert any(x["prefix"] == "10.51.0.0/16" for x in d.cli("show", "ip", "route"))
    bad = call("admin", "PUT", "/v1/config", new.replace("10.51.0.0/16", "10.51.0.0/33"))
    assert bad["status"] == 422
    errs = json.loads(bad["body"])["errors"]
    assert any(e.startswith("api:PUT /v1/config:") and "routes[0].prefix" in e for e in errs), errs
    audit = [json.loads(l) for l in open(os.path.join(lab.dir, "state", "audit.log"))]
    assert [(x["who"], x["result"]) for x in audit] == [("api:ops-admin", "applied"), ("api:ops-admin", "rejected")]
    # CLI over the API: show for readers, anything else for admins.
    assert call("reader", "POST", "/v1/cli", json.dumps({"argv": ["show", "interfaces"]}))["status"] == 200
    assert call("reader", "POST", "/v1/cli", json.dumps({"argv": ["config", "show"]}))["status"] == 403

    # Metrics: parse with the Prometheus client's parser; counters move with traffic.
    def scrape():
        txt = r.run(["/usr/bin/python3", "-c",
                     "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9108/metrics',timeout=5)"
                     ".read().decode())"]).stdout
        fams = {f.name: f for f in text_string_to_metric_families(txt)}
        return fams

    def rx(fams, port):
        return next(s.value for s in fams["nimbus_port_rx_packets"].samples if s.labels["port"] == port)

    m1 = scrape()
    assert {"nimbus_info", "nimbus_port_up", "nimbus_dataplane_drops", "nimbus_punt_packets"} <= set(m1)
    assert a.ping_ok("10.2.0.2", 5)
    m2 = scrape()
    assert rx(m2, "lan0") >= rx(m1, "lan0") + 5
    tls = call("reader", "GET", "/metrics")
    assert tls["status"] == 200 and "nimbus_port_rx_packets_total" in tls["body"]


def test_systemd_notify_and_watchdog(lab):
    """Under systemd nimbusd reports READY=1, pings the watchdog while its
    workers make progress, and says STOPPING=1 on the way out."""
    import socket
    a, r, b = topology(lab)
    path = os.path.join(lab.dir, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    d = lab.nimbusd(r, "r", cfg(lab))
    d.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    got = []

    def saw(msg):
        while msg not in got:
            got.append(s.recv(256).decode())
        return True

    wait_until(lambda: saw("READY=1"), 15, "READY=1")
    def pings():
        got.append(s.recv(256).decode())
        return got.count("WATCHDOG=1") >= 3

    wait_until(pings, 15, "three watchdog pings")
    assert d.stop() == 0
    wait_until(lambda: saw("STOPPING=1"), 10, "STOPPING=1")
    s.close()


def test_dpdk_telemetry_available(lab):
    """DPDK's own telemetry socket answers next to nimbus's CLI."""
    import shutil
    tool = shutil.which("dpdk-telemetry.py")
    if not tool:
        pytest.skip("dpdk-telemetry.py (package dpdk-dev) is not installed")
    a, r, b = topology(lab)
    d = lab.nimbusd(r, "r", cfg(lab)).start()
    assert a.ping_ok("10.2.0.2", 2, wait=5)
    p = run(["/usr/bin/python3", tool, "-f", f"nimbus-{d.node}"], input="/ethdev/list\n/ethdev/stats,0\n", timeout=20)
    replies = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    by_cmd = {k: v for r_ in replies for k, v in r_.items()}
    assert by_cmd["/ethdev/list"] == [0, 1]
    assert by_cmd["/ethdev/stats"]["ipackets"] >= 2
