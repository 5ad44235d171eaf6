"""ESP between two nimbusd with static SAs, in namespaces:

    ha -- A (nimbusd) --[aw]-- net (bridge br0) --[bw]-- B (nimbusd) -- hb
          10.1.0.0/24      192.0.2.0/24 and 198.51.100.0/24        10.2.0.0/24

A and B each have two WAN addresses (two outer paths). Ping and iperf3 go
through for each cipher; a capture on the wire shows only ESP in UDP 4500;
an injector on the wire (scapy) replays each ESP packet of a numbered UDP
stream over both paths with random delay: the receiver sees each datagram
once and B counts every injected copy as `duplicate`; tampered copies are
`auth_fail`; a source outside the allowed prefixes is
`inner_src_not_allowed`. Also IPv6 outer with ESN, and plain ESP (proto 50).
"""
import json
import os
import secrets

import pytest

from nimbuslab import run, wait_until

KEYLEN = {"aes128gcm16": 20, "aes256gcm16": 36, "chacha20poly1305": 36}


def side(me, peer, cipher, keys, esn=False, encap="udp", outer6=False, critical="", workers=1):
    n, o = (1, 2) if me == "a" else (2, 1)
    paths = (f'[ {{ local: "2001:db8:ff::{n}", remote: "2001:db8:ff::{o}" }} ]' if outer6 else
             f"[ {{ local: 192.0.2.{n}, remote: 192.0.2.{o} }}, {{ local: 198.51.100.{n}, remote: 198.51.100.{o} }} ]")
    k_out, k_in = (keys[0], keys[1]) if me == "a" else (keys[1], keys[0])
    s_out, s_in = ("0x1001", "0x2001") if me == "a" else ("0x2001", "0x1001")
    return f"""
node:
  name: "@NODE@"
dataplane:
  workers: {workers}
  idle_sleep_us: 50
  eal: [--no-huge, -m, "512"]
mgmt:
  socket: "@SOCK@"
ports:
  - name: wan0
    device: "net_af_packet0,iface={me}wan,framecnt=4096"
    addresses: [192.0.2.{n}/24, 198.51.100.{n}/24, "2001:db8:ff::{n}/64"]
  - name: lan0
    device: "net_af_packet1,iface={me}lan,framecnt=4096"
    addresses: [10.{n}.0.1/24, "fd00:{n}::1/64"]
manual_sas:
  - name: to-{peer}
    cipher: {cipher}
    esn: {str(esn).lower()}
    encap: {encap}
    {critical}
    allowed: [10.{o}.0.0/24, "fd00:{o}::/64"]
    paths: {paths}
    out: {{ spi: {s_out}, key: "{k_out}" }}
    in: [ {{ spi: {s_in}, key: "{k_in}" }} ]
"""


def topology(lab):
    ha, a, net, b, hb = lab.ns("ha"), lab.ns("a"), lab.ns("net"), lab.ns("b"), lab.ns("hb")
    lab.veth(ha, "h0", a, "alan")
    lab.veth(hb, "h0", b, "blan")
    lab.veth(a, "awan", net, "na")
    lab.veth(b, "bwan", net, "nb")
    net.run("ip link add br0 type bridge && ip link set na master br0 && ip link set nb master br0 && "
            "ip link set br0 up && sysctl -qw net.ipv6.conf.br0.disable_ipv6=1")
    for h, n in ((ha, 1), (hb, 2)):
        h.addr("h0", f"10.{n}.0.2/24")
        h.addr("h0", f"fd00:{n}::2/64")
        h.route("default", "via", f"10.{n}.0.1")
        h.route("default", "via", f"fd00:{n}::1")
        h.no_offload("h0")
    return ha, a, net, b, hb


def start_pair(lab, cipher, **kw):
    ha, a, net, b, hb = topology(lab)
    keys = [secrets.token_hex(KEYLEN[cipher]) for _ in range(2)]
    da = lab.nimbusd(a, "a", side("a", "b", cipher, keys, **kw)).start()
    db = lab.nimbusd(b, "b", side("b", "a", cipher, keys, **kw)).start()
    return ha, net, hb, da, db, keys


def drops(d, name):
    return sum(p["drops"][name] for p in d.counters()["ports"])


def sa(d, spi):
    return {x["spi"]: x for x in d.cli("show", "ipsec", "sa")}[spi]


@pytest.mark.parametrize("cipher", ["aes128gcm16", "aes256gcm16", "chacha20poly1305"])
def test_ping_iperf_through_tunnel_and_only_esp_on_the_wire(lab, cipher):
    ha, net, hb, da, db, keys = start_pair(lab, cipher)
    cap = os.path.join(lab.dir, "wire.txt")
    # IPv4 on the wire, less IGMP: the bridge itself sends membership reports
    # from 0.0.0.0 when it comes up (a clean-clone run caught one).
    tcpd = net.popen(["tcpdump", "-l", "-n", "-X", "-i", "br0", "-c", "12", "ip and not igmp"], "tcpdump.log")
    wait_until(lambda: "listening on" in open(os.path.join(lab.dir, "tcpdump.log")).read(), 10, "tcpdump")
    # The first packets wait for ARP on the underlay (held, re-injected).
    assert ha.ping_ok("10.2.0.2", 6, extra=["-p", "c0ffee00c0ffee00"]), "ping A-side host -> B-side host"
    tcpd.wait(timeout=10)
    out = open(os.path.join(lab.dir, "tcpdump.log")).read()
    lines = [l for l in out.splitlines() if " > " in l and not l.startswith("\t")]
    assert len(lines) >= 10, out
    for l in lines:
        assert "UDP-encap" in l and ".4500 > " in l, f"not ESP in UDP 4500: {l}"
        assert "ICMP" not in l
    assert "c0ff ee00" not in out and "c0ffee00" not in out, "inner plaintext on the wire"
    assert hb.ping_ok("fd00:1::2", 3), "IPv6 inner, B -> A"
    hb.popen(["iperf3", "-s", "-1", "-B", "10.2.0.2"], "iperf3-server.log")
    wait_until(lambda: hb.run("ss -ltn | grep -q ':5201'", check=False).returncode == 0, 10, "iperf3 server")
    res = json.loads(ha.run(["iperf3", "-c", "10.2.0.2", "-t", "2", "-J"], timeout=30).stdout)
    bps = res["end"]["sum_received"]["bits_per_second"]
    assert bps > 5e6, f"only {bps / 1e6:.1f} Mbit/s through the tunnel"
    t = da.cli("show", "tunnels")[0]
    assert t["name"] == "to-b" and t["tx_packets"] > 100 and t["rx_packets"] > 100
    assert t["paths"][0]["tx"] >= t["tx_packets"] and t["paths"][1]["tx"] == 0
    s = sa(db, "00001001")
    assert s["cipher"] == cipher and s["key"] == "<redacted>"
    assert s["counters"]["packets"] > 100 and s["counters"]["auth_fail"] == 0
    assert keys[0] not in db.text("show", "ipsec", "sa") + db.log()
    routes = {r["prefix"]: r for r in da.cli("show", "ip", "route")}
    assert routes["10.2.0.0/24"]["source"] == "tunnel" and routes["10.2.0.0/24"]["selected"]


INJECTOR = r"""
import random, sys, threading, time
from scapy.all import sniff, conf, Ether, IP, UDP, Raw
mode, n_expect, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = conf.L2socket(iface="nb")
lock = threading.Lock()
sent = [0]
timers = []
def emit(frame):
    with lock:
        sock.send(frame)
        sent[0] += 1
def on(p):
    if UDP not in p or p[UDP].dport != 4500 or len(p[UDP].payload) < 20:
        return
    raw = bytes(p[UDP].payload)
    if mode == "dup":
        alt = p.copy()
        alt[IP].src, alt[IP].dst = "198.51.100.1", "198.51.100.2"
        del alt[IP].chksum
        alt[UDP].chksum = 0
        for f in (alt, p):
            t = threading.Timer(random.uniform(0, 0.03), emit, (f,))
            timers.append(t)
            t.start()
    else:
        # A copy whose ciphertext has one bit flipped. Its sequence number is
        # moved ahead: a copy of an accepted number would stop at the replay
        # check (duplicate) before ever being authenticated.
        bad = bytearray(raw)
        seq = int.from_bytes(bad[4:8], "big") + 100000
        bad[4:8] = seq.to_bytes(4, "big")
        bad[len(bad) // 2] ^= 0x10
        f = p.copy()
        f[UDP].remove_payload()
        f = f / Raw(bytes(bad))
        f[UDP].len = None
        f[UDP].chksum = 0
        del f[IP].len, f[IP].chksum
        emit(f)
sniff(iface="na", filter="udp dst port 4500 and src host 192.0.2.1", prn=on, count=n_expect, timeout=20,
      started_callback=lambda: open(out + ".ready", "w").close())
for t in timers:
    t.join()
open(out, "w").write(str(sent[0]))
"""

STREAM_RX = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.2.0.2", 9999))
s.settimeout(3)
seen = []
open(sys.argv[1] + ".ready", "w").close()
try:
    while True:
        d, _ = s.recvfrom(2000)
        seen.append(int(d.split(b":")[0]))
except socket.timeout:
    pass
open(sys.argv[1], "w").write(" ".join(map(str, seen)))
"""

STREAM_TX = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"%d:" % i + b"x" * 200, ("10.2.0.2", 9999))
    time.sleep(0.005)
"""


def run_stream(lab, ha, net, hb, mode, n):
    for name, body in (("inj.py", INJECTOR), ("rx.py", STREAM_RX), ("tx.py", STREAM_TX)):
        with open(os.path.join(lab.dir, name), "w") as f:
            f.write(body)
    res_inj = os.path.join(lab.dir, "inj.out")
    res_rx = os.path.join(lab.dir, "rx.out")
    inj = net.popen(["/usr/bin/python3", os.path.join(lab.dir, "inj.py"), mode, str(n), res_inj], "injector.log")
    rx = hb.popen(["/usr/bin/python3", os.path.join(lab.dir, "rx.py"), res_rx], "rx.log")
    wait_until(lambda: os.path.exists(res_inj + ".ready") and os.path.exists(res_rx + ".ready"), 20,
               "injector and receiver")
    ha.run(["/usr/bin/python3", os.path.join(lab.dir, "tx.py"), str(n)], timeout=30)
    inj.wait(timeout=40)
    rx.wait(timeout=40)
    injected = int(open(res_inj).read())
    seen = [int(x) for x in open(res_rx).read().split()]
    return injected, seen


def test_duplicates_over_two_paths_are_dropped_and_counted(lab):
    ha, net, hb, da, db, _ = start_pair(lab, "aes256gcm16")
    assert ha.ping_ok("10.2.0.2", 2)  # neighbours resolved on both sides
    d0 = sa(db, "00001001")["counters"]["duplicate"]
    n = 100
    injected, seen = run_stream(lab, ha, net, hb, "dup", n)
    assert injected == 2 * n, open(os.path.join(lab.dir, "injector.log")).read()
    assert sorted(seen) == list(range(n)), f"each datagram exactly once, got {len(seen)}"
    wait_until(lambda: sa(db, "00001001")["counters"]["duplicate"] - d0 == injected, 10,
               "B to count every injected copy as duplicate")
    assert drops(db, "duplicate") >= injected
    t = db.cli("show", "tunnels")[0]
    assert t["paths"][1]["rx"] >= n, "copies on the second path are counted on it"
    assert t["paths"][0]["first"] + t["paths"][1]["first"] >= n


def test_critical_packets_sent_on_both_paths_and_deduplicated(lab):
    """nimbus's own duplication: EF packets of a two-path tunnel leave A
    once per path (encrypted once); B keeps the first copy."""
    ha, net, hb, da, db, _ = start_pair(lab, "aes256gcm16", critical="critical: { dscp: [ef] }")
    assert ha.ping_ok("10.2.0.2", 2)  # best effort: one copy
    d0 = sa(db, "00001001")["counters"]["duplicate"]
    n = 10
    p = ha.ping("10.2.0.2", n, interval=0.05, extra=["-Q", "0xb8"])
    assert f"{n} received" in p.stdout and "DUP!" not in p.stdout, p.stdout
    ta, tb = da.cli("show", "tunnels")[0], db.cli("show", "tunnels")[0]
    assert ta["critical_copies"] >= n
    assert ta["paths"][1]["tx"] >= n, "the second path carried the copies"
    wait_until(lambda: sa(db, "00001001")["counters"]["duplicate"] - d0 >= n, 10, "B to drop the second copies")
    tb = db.cli("show", "tunnels")[0]
    assert tb["paths"][0]["rx"] >= n and tb["paths"][1]["rx"] >= n
    assert tb["paths"][0]["first"] + tb["paths"][1]["first"] >= n + 2


def test_tampered_packets_fail_authentication(lab):
    ha, net, hb, da, db, _ = start_pair(lab, "chacha20poly1305")
    assert ha.ping_ok("10.2.0.2", 2)
    a0 = sa(db, "00001001")["counters"]["auth_fail"]
    n = 40
    injected, seen = run_stream(lab, ha, net, hb, "tamper", n)
    assert injected == n
    assert sorted(seen) == list(range(n)), "tampered copies must never be delivered"
    wait_until(lambda: sa(db, "00001001")["counters"]["auth_fail"] - a0 == n, 10, "auth_fail")
    assert drops(db, "auth_fail") >= n


def test_inner_source_outside_allowed_prefixes_is_dropped(lab):
    ha, net, hb, da, db, _ = start_pair(lab, "aes128gcm16")
    ha.run(["ip", "addr", "add", "10.1.9.9/32", "dev", "lo"])
    assert ha.ping_ok("10.2.0.2", 1)
    before = drops(db, "inner_src_not_allowed")
    p = ha.ping("10.2.0.2", 3, extra=["-I", "10.1.9.9"])
    assert " 0 received" in p.stdout
    wait_until(lambda: drops(db, "inner_src_not_allowed") - before >= 3, 10, "inner_src_not_allowed")
    assert sa(db, "00001001")["counters"]["inner_src_not_allowed"] >= 3


@pytest.mark.parametrize("encap,outer6,esn", [("udp", True, True), ("esp", False, True), ("esp", True, False)])
def test_ipv6_outer_esn_and_plain_esp(lab, encap, outer6, esn):
    ha, net, hb, da, db, _ = start_pair(lab, "chacha20poly1305", esn=esn, encap=encap, outer6=outer6)
    assert ha.ping_ok("10.2.0.2", 3), "IPv4 inner"
    assert ha.ping_ok("fd00:2::2", 3), "IPv6 inner"
    s = sa(db, "00001001")
    assert s["esn"] == esn and s["counters"]["packets"] >= 6 and s["window_top"] >= 6
    assert da.cli("show", "tunnels")[0]["encap"] == encap


SCAPY_CHECK = r"""
import json, sys
from scapy.all import sniff, sendp, Ether, IP, UDP, Raw
from scapy.layers.ipsec import SecurityAssociation, ESP
algo, key, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
res = {"decrypted": 0, "pattern": 0, "inner": []}
pkts = sniff(iface="na", filter="udp dst port 4500 and src host 192.0.2.1", count=3, timeout=20,
             started_callback=lambda: open(out + ".ready", "w").close())
sa_in = SecurityAssociation(ESP, spi=0x1001, crypt_algo=algo, crypt_key=key,
                            tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"))
for p in pkts:
    esp = IP(src=p[IP].src, dst=p[IP].dst, proto=50) / ESP(bytes(p[UDP].payload))
    inner = sa_in.decrypt(esp)   # raises on a bad ICV
    res["decrypted"] += 1
    res["inner"].append(inner[IP].src + ">" + inner[IP].dst)
    res["pattern"] += bytes(inner).count(bytes.fromhex("c0ffee00c0ffee00")) > 0
# And the reverse: scapy encrypts, nimbus B must decrypt and deliver.
sa_out = SecurityAssociation(ESP, spi=0x1001, crypt_algo=algo, crypt_key=key,
                             tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"),
                             nat_t_header=UDP(sport=4500, dport=4500))
e = sa_out.encrypt(IP(src="10.1.0.2", dst="10.2.0.2") / UDP(sport=1234, dport=9999) / Raw(b"777:from-scapy"),
                   seq_num=1000)
# scapy 2.5 writes the NAT-T UDP length before the ESP payload exists (8):
# rebuild the outer headers around its ESP bytes.
esp_bytes = bytes(e)[28:]
f = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500, chksum=0) / Raw(esp_bytes)
sendp(Ether(src=pkts[0][Ether].src, dst=pkts[0][Ether].dst) / f, iface="nb", verbose=False)
open(out, "w").write(json.dumps(res))
"""

SCAPY_ALGO = {"aes128gcm16": "AES-GCM", "aes256gcm16": "AES-GCM", "chacha20poly1305": "CHACHA20-POLY1305"}


@pytest.mark.parametrize("cipher", ["aes128gcm16", "aes256gcm16", "chacha20poly1305"])
def test_scapy_esp_interoperates(lab, cipher):
    """An independent ESP implementation (scapy + python3-cryptography)
    decrypts what nimbus sends, and nimbus decrypts what it builds."""
    ha, net, hb, da, db, keys = start_pair(lab, cipher)
    assert ha.ping_ok("10.2.0.2", 1)
    for name, body in (("scapy_check.py", SCAPY_CHECK), ("rx.py", STREAM_RX)):
        with open(os.path.join(lab.dir, name), "w") as f:
            f.write(body)
    res, res_rx = os.path.join(lab.dir, "scapy.out"), os.path.join(lab.dir, "rx.out")
    chk = net.popen(["/usr/bin/python3", os.path.join(lab.dir, "scapy_check.py"), SCAPY_ALGO[cipher], keys[0], res],
                    "scapy.log")
    rx = hb.popen(["/usr/bin/python3", os.path.join(lab.dir, "rx.py"), res_rx], "rx.log")
    wait_until(lambda: os.path.exists(res + ".ready") and os.path.exists(res_rx + ".ready"), 20, "scapy and receiver")
    assert ha.ping_ok("10.2.0.2", 3, extra=["-p", "c0ffee00c0ffee00"])
    chk.wait(timeout=30)
    rx.wait(timeout=30)
    assert os.path.exists(res), open(os.path.join(lab.dir, "scapy.log")).read()
    r = json.loads(open(res).read())
    assert r["decrypted"] == 3 and r["pattern"] == 3, r
    assert all(x == "10.1.0.2>10.2.0.2" for x in r["inner"]), r
    nz = {k: v for p in db.counters()["ports"] for k, v in p["drops"].items() if v}
    assert open(res_rx).read().split() == ["777"], f"the scapy-built ESP packet must reach the application; B drops {nz}"


def test_refuses_to_start_when_the_crypto_self_test_fails(lab):
    """Known answers run on the selected IPsec-MB path at start-up; a
    mismatch (forced here through a test-only hook) stops nimbusd."""
    _, a, _, _, _ = topology(lab)
    d = lab.nimbusd(a, "a", side("a", "b", "aes256gcm16", ["00" * 36, "11" * 36]))
    from nimbuslab import NIMBUSD
    p = a.run(["env", "NIMBUS_TEST_CORRUPT_SELF_TEST=2", NIMBUSD, "-c", d.cfg], check=False, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "crypto self-test failed" in p.stderr and "refusing to start" in p.stderr, p.stderr
    assert "00000000" not in p.stderr
    assert not os.path.exists(d.sock)
    # The same config starts without the hook.
    d.start()
    assert d.cli("show", "tunnels")[0]["name"] == "to-b"


def test_debug_capture_tunnel_before_and_after_encryption(lab):
    """`nimbus debug capture tunnel` writes a pcap with the inner packets
    (before encryption / after decryption) and the ESP packets on the wire;
    a port capture sees both directions of the fast path."""
    from scapy.all import ICMP, UDP, rdpcap
    ha, net, hb, da, db, keys = start_pair(lab, "aes256gcm16")
    assert ha.ping_ok("10.2.0.2", 2, wait=5)
    tfile = os.path.join(lab.dir, "tunnel.pcap")
    out = da.text("debug", "capture", "tunnel", "to-b", "count", "8", "file", tfile)
    assert "capturing 8 packets of tunnel-to-b" in out
    assert ha.ping_ok("10.2.0.2", 2, wait=5)
    wait_until(lambda: da.cli("show", "capture")["written"] == 8 and not da.cli("show", "capture")["running"],
               10, "the capture to finish")
    st = da.cli("show", "capture")
    assert st["by_direction"] == {"tunnel-out-plain": 2, "tunnel-out-esp": 2, "tunnel-in-esp": 2,
                                  "tunnel-in-plain": 2}
    pk = rdpcap(tfile)
    assert len(pk) == 8
    plain = [p for p in pk if ICMP in p]
    esp = [p for p in pk if UDP in p and p[UDP].dport == 4500]
    assert len(plain) == 4 and len(esp) == 4, [p.summary() for p in pk]
    assert {p[ICMP].type for p in plain} == {0, 8}  # requests out, replies in
    # A port capture: rx and tx of the LAN port, count-limited. The host may
    # send ARP/ND of its own on the LAN at any time: count the pings.
    pfile = os.path.join(lab.dir, "lan.pcap")
    da.text("debug", "capture", "lan0", "count", "4", "file", pfile)
    wait_until(lambda: ha.ping_ok("10.2.0.2", 1, wait=5) and da.cli("show", "capture")["written"] == 4, 20,
               "the port capture to fill")
    st = da.cli("show", "capture")
    assert st["by_direction"]["rx"] >= 1 and st["by_direction"]["tx"] >= 1, st
    pk = rdpcap(pfile)
    assert len(pk) == 4
    icmp = [p[ICMP].type for p in pk if ICMP in p]
    assert 8 in icmp and 0 in icmp, [p.summary() for p in pk]  # a request in, a reply out
    # One at a time, and stop works.
    da.text("debug", "capture", "lan0", "count", "1000", "file", pfile)
    p = da.cli_raw(["debug", "capture", "lan0"], check=False)
    assert p.returncode == 1 and "a capture is running" in p.stderr
    assert "stopped" in da.text("debug", "capture", "stop")
    assert not da.cli("show", "capture")["running"]
    # The tunnel by the ID `show tunnels` shows for it (sN: a static tunnel).
    [t] = da.cli("show", "tunnels")
    sid = [l for l in da.text("show", "tunnels").splitlines() if " to-b " in l][0].split()[0]
    assert sid == f"s{t['id']}", sid
    assert "capturing 2 packets of tunnel-to-b" in da.text("debug", "capture", "tunnel", sid, "count", "2", "file", tfile)
    assert "stopped" in da.text("debug", "capture", "stop")
    p = da.cli_raw(["debug", "capture", "tunnel", "s999"], check=False)
    assert p.returncode == 1 and "No such tunnel" in p.stderr


def test_two_workers_hand_off_to_the_owning_worker(lab):
    """With two workers, one port queue lands on worker 0 while the tunnel
    belongs to worker 1 (tunnel id 1 % 2, the second tunnel): packets cross
    through the handoff ring in both directions and nothing is lost."""
    ha, a, net, b, hb = topology(lab)
    keys = [secrets.token_hex(KEYLEN["aes256gcm16"]) for _ in range(2)]
    cfgs = {}
    for me, peer in (("a", "b"), ("b", "a")):
        c = side(me, peer, "aes256gcm16", keys, workers=2)
        # A first tunnel (id 0, worker 0) that carries nothing, so the real
        # one gets id 1 and lives on worker 1.
        k = secrets.token_hex(36)
        spi_o, spi_i = ("0x3001", "0x4001") if me == "a" else ("0x4001", "0x3001")
        c = c.replace("manual_sas:\n", f"""manual_sas:
  - name: idle
    cipher: aes256gcm16
    allowed: [10.77.0.0/24]
    paths: [ {{ local: 192.0.2.{1 if me == 'a' else 2}, remote: 192.0.2.{2 if me == 'a' else 1} }} ]
    out: {{ spi: {spi_o}, key: "{k}" }}
    in: [ {{ spi: {spi_i}, key: "{k}" }} ]
""")
        cfgs[me] = c
    da = lab.nimbusd(a, "a", cfgs["a"]).start()
    db = lab.nimbusd(b, "b", cfgs["b"]).start()
    tunnels = {t["name"]: t for t in da.cli("show", "tunnels")}
    assert tunnels["to-b"]["worker"] == 1 and tunnels["idle"]["worker"] == 0
    assert ha.ping_ok("10.2.0.2", 5, wait=5)
    hb.popen(["iperf3", "-s", "-1", "-B", "10.2.0.2"], "iperf3.log")
    wait_until(lambda: hb.run("ss -ltn | grep -q ':5201'", check=False).returncode == 0, 10, "iperf3 server")
    res = json.loads(ha.run(["iperf3", "-c", "10.2.0.2", "-t", "2", "-J"], timeout=30).stdout)
    assert res["end"]["sum_received"]["bytes"] > 1e6
    # B receives on worker 0 (its only rx queue) and hands over to worker 1.
    assert sa(db, "00001001")["counters"]["handoff"] > 100
    assert drops(da, "handoff_full") == 0 and drops(db, "handoff_full") == 0


def test_static_tunnels_added_changed_and_removed_live(lab):
    """`config apply` with a new, then a changed, then no second static
    tunnel: the first tunnel keeps its id, SAs and counters throughout and
    carries traffic; the second one's routes come and go with it."""
    from nimbuslab import NIMBUS
    ha, net, hb, da, db, keys = start_pair(lab, "aes256gcm16")
    assert ha.ping_ok("10.2.0.2", 5)
    before = {t["name"]: t for t in da.cli("show", "tunnels")}["to-b"]
    base = open(da.cfg).read()
    extra = """  - name: to-c
    cipher: aes256gcm16
    allowed: [10.3.0.0/24]
    paths: [ { local: 192.0.2.1, remote: 192.0.2.3 } ]
    out: { spi: 0x3001, key: "KEY" }
    in: [ { spi: 0x4001, key: "KEY" } ]
"""
    new = os.path.join(lab.dir, "new.yaml")

    def apply(text):
        with open(new, "w") as f:
            f.write(text)
        return run([NIMBUS, "-s", da.sock, "config", "apply", new]).stdout

    k1, k2 = secrets.token_hex(36), secrets.token_hex(36)
    out = apply(base + extra.replace("KEY", k1))
    assert "tunnel + to-c" in out and "tunnel - to-b" not in out, out
    tun = {t["name"]: t for t in da.cli("show", "tunnels")}
    assert set(tun) == {"to-b", "to-c"}
    routes = {r["prefix"]: r for r in da.cli("show", "ip", "route")}
    assert routes["10.3.0.0/24"]["source"] == "tunnel"
    assert ha.ping_ok("10.2.0.2", 5)
    mid = {t["name"]: t for t in da.cli("show", "tunnels")}["to-b"]
    assert mid["id"] == before["id"] and mid["tx_packets"] >= before["tx_packets"] + 5, (before, mid)
    assert sa(da, "00001001")["counters"]["packets"] >= mid["tx_packets"]
    # A new key for to-c: only to-c is replaced.
    out = apply(base + extra.replace("KEY", k2))
    assert "tunnel - to-c" in out and "tunnel + to-c" in out and "to-b" not in out, out
    assert k1 not in out and k2 not in out and k2 not in da.text("show", "ipsec", "sa")
    # Removed again: its route goes, to-b carries on.
    out = apply(base)
    assert "tunnel - to-c" in out, out
    assert [t["name"] for t in da.cli("show", "tunnels")] == ["to-b"]
    assert "10.3.0.0/24" not in {r["prefix"] for r in da.cli("show", "ip", "route")}
    assert ha.ping_ok("10.2.0.2", 5)
    after = {t["name"]: t for t in da.cli("show", "tunnels")}["to-b"]
    assert after["id"] == before["id"] and after["tx_packets"] >= mid["tx_packets"] + 5


def test_first_packet_to_an_unresolved_host_in_the_tunnel_vrf_is_not_lost(lab):
    """The tunnel and the LAN are in VRF corp, the WAN in default. B has never
    heard from hb when the first decrypted packet for it arrives: the packet is
    held while B's kernel resolves hb and must then be routed in corp, the
    VRF it was decrypted into, not in the WAN port's VRF it arrived on."""
    ha, a, net, b, hb = topology(lab)
    keys = [secrets.token_hex(KEYLEN["aes256gcm16"]) for _ in range(2)]
    cfgs = []
    for me, peer in (("a", "b"), ("b", "a")):
        c = side(me, peer, "aes256gcm16", keys)
        c = c.replace("ports:\n", "vrfs:\n  - name: corp\nports:\n", 1)
        c = c.replace(f'    device: "net_af_packet1,iface={me}lan,framecnt=4096"\n',
                      f'    device: "net_af_packet1,iface={me}lan,framecnt=4096"\n    vrf: corp\n', 1)
        c = c.replace(f"  - name: to-{peer}\n", f"  - name: to-{peer}\n    vrf: corp\n", 1)
        assert c.count("corp") == 3, c
        cfgs.append(c.replace('-m, "512"', '-m, "1024"'))  # a second VRF's FIB tables
    da = lab.nimbusd(a, "a", cfgs[0]).start()
    db = lab.nimbusd(b, "b", cfgs[1]).start()
    held = db.counters()["host"]["held"]
    # One echo request, nothing sent before it: it is the first packet B
    # routes to hb.
    assert ha.ping_ok("10.2.0.2", 1, wait=5), "the first ping through the tunnel was lost"
    assert db.counters()["host"]["held"] == held + 1, db.counters()["host"]
    assert db.counters()["host"]["held_resolved"] >= 1
