#!/usr/bin/python3
"""ESP benchmark driver (run it through scripts/bench/esp.sh).

In one run, on this machine, interleaved so that host noise hits all alike:
  ceiling  dpdk-test-crypto-perf, IPsec-MB crypto PMD, AEAD only, one lcore
  secgw    DPDK's ipsec-secgw example (built from dpdk-doc in a temp dir),
           librte_ipsec path, cpu-crypto, one lcore
  nimbus   encrypt: nimbusd itself (one worker), counted from its own
           counters (`nimbus -j show counters`, wan0 tx_packets);
           decrypt: nimbus-bench esp --pcap (the worker's functions on the
           same vdevs; see src/bench/esp.cpp for why not nimbusd)
  aead     nimbus-bench aead: the AEAD alone through nimbus's own engine
           (IPsec-MB called directly) on the ceiling's workload (same sizes,
           burst 32, AAD 8), CPU 1
  harness  dpdk-testpmd io forwarding of the same pcap on the same vdevs and
           CPU, no packet work: with the aead anchor it bounds what any
           forwarder that calls the cipher that way can reach on this harness
           (bound = 1 / (1/aead + 1/harness): the cipher and the harness's
           own per-packet cost, and nothing else)
  bench    nimbus-bench esp in memory (all ciphers, 1 and N tunnels, memory)

secgw and nimbus get the identical pcap and vdevs:
  --vdev net_pcap0,rx_pcap=FILE,infinite_rx=1 --vdev net_null0,no-rx=1
Packets: Ether/IPv4/UDP, size = inner IPv4 total length (64, 512, 1420, imix
= 64/576/1420 at 7:4:1). Plain ESP tunnel mode, outer 198.51.100.1 <->
198.51.100.2, SPI 0x1001 out / 0x2001 in, the same keys everywhere. The ESP
pcaps for decryption are made with scapy (python3-cryptography), seq 1..N.

Prints one JSON line per measurement and, last, a summary object with the
medians and the ratios nimbus/secgw and nimbus/ceiling.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PCAP_MAC = "02:70:63:61:70:00"  # net_pcap0's MAC in DPDK 22.11
PEER_MAC = "02:00:00:00:00:b1"
US, PEER = "198.51.100.1", "198.51.100.2"
SPI_OUT, SPI_IN = 0x1001, 0x2001
IMIX = [64, 576, 64, 64, 1420, 64, 576, 64, 576, 64, 64, 576]  # 7:4:1
CIPHERS = {
    # name: (key bytes incl. 4-byte salt, scapy, secgw aead_algo, crypto-perf algo, key size, ceiling PMD, secgw PMD)
    "aes128gcm": (20, "AES-GCM", "aes-128-gcm", "aes-gcm", 16, "crypto_aesni_gcm", "crypto_aesni_gcm"),
    "aes256gcm": (36, "AES-GCM", "aes-256-gcm", "aes-gcm", 32, "crypto_aesni_gcm", "crypto_aesni_gcm"),
    "chacha20poly1305": (36, "CHACHA20-POLY1305", "chacha20-poly1305", "chacha20-poly1305", 32,
                         "crypto_chacha20_poly1305", "crypto_aesni_mb"),
}
TARGETS = {"64": 1.2, "imix": 1.2, "512": None, "1420": 1.0}
CEILING_TARGET_1420 = 0.85


def log(msg):
    print(f"esp-bench: {msg}", file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


def keys(cipher):
    n = CIPHERS[cipher][0]
    k_out = bytes((0x11 + 7 * i) & 0xff for i in range(n))
    k_in = bytes((0xa3 + 13 * i) & 0xff for i in range(n))
    return k_out, k_in


def size_key(s):
    return "imix" if s == "imix" else str(s)


def sizes_of(s):
    return IMIX if s == "imix" else [int(s)]


# ---------------------------------------------------------------- packets

def make_pcaps(work, ciphers, sizes, dirs):
    from scapy.all import Ether, IP, UDP, Raw, wrpcap  # noqa: E402
    from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402
    out = {}
    for s in sizes:
        pat = sizes_of(s)
        n = 384 if s == "imix" else 256  # a multiple of 32 (nimbus-bench pcap mode)
        plain, inner_rev = [], []
        for k in range(n):
            l3 = pat[k % len(pat)]
            payload = bytes((k + i) & 0xff for i in range(l3 - 28))
            f = k % 16
            plain.append(Ether(dst=PCAP_MAC, src="02:00:00:00:00:a1") /
                         IP(src="10.1.0.10", dst=f"10.2.0.{1 + f}", ttl=64) /
                         UDP(sport=1024 + f, dport=5001) / Raw(payload))
            inner_rev.append(IP(src=f"10.2.0.{1 + f}", dst="10.1.0.10", ttl=64) /
                             UDP(sport=5001, dport=1024 + f) / Raw(payload))
        p = os.path.join(work, f"plain_{size_key(s)}.pcap")
        wrpcap(p, plain)
        out[("plain", s)] = p
        if "decrypt" not in dirs:
            continue
        for c in ciphers:
            _, k_in = keys(c)
            sa = SecurityAssociation(ESP, spi=SPI_IN, crypt_algo=CIPHERS[c][1], crypt_key=k_in,
                                     tunnel_header=IP(src=PEER, dst=US))
            esp = [Ether(dst=PCAP_MAC, src=PEER_MAC) / sa.encrypt(ip, seq_num=k + 1)
                   for k, ip in enumerate(inner_rev)]
            p = os.path.join(work, f"esp_{c}_{size_key(s)}.pcap")
            wrpcap(p, esp)
            out[("esp", c, s)] = p
    return out


# ---------------------------------------------------------------- load

def cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_quiet(max_wait, limit=0.25):
    """Waits (bounded) until the machine is mostly idle for one second."""
    end = time.monotonic() + max_wait
    while time.monotonic() < end:
        b0, t0 = cpu_busy()
        time.sleep(1)
        b1, t1 = cpu_busy()
        if t1 > t0 and (b1 - b0) / (t1 - t0) < limit:
            return True
    return False


# ---------------------------------------------------------------- ceiling

def run_ceiling(cipher, op, sizes, total_ops):
    kb, _, _, algo, ksz, pmd, _ = CIPHERS[cipher]
    res = {}
    for group in (["64", "512", "1420"], ["imix"]):
        want = [s for s in sizes if size_key(s) in group]
        if not want:
            continue
        if group == ["imix"]:
            bufs, extra = "64,576,1420", ["--imix", "7,4,1"]
        else:
            bufs, extra = ",".join(size_key(s) for s in want), []
        cmd = ["dpdk-test-crypto-perf", "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
               f"--file-prefix=nbcp{os.getpid()}", "--log-level=*:warning", "--vdev", f"{pmd}0", "--",
               "--ptest", "throughput", "--devtype", pmd, "--optype", "aead", "--aead-algo", algo,
               "--aead-op", op, "--aead-key-sz", str(ksz), "--aead-iv-sz", "12", "--aead-aad-sz", "8",
               "--digest-sz", "16", "--total-ops", str(total_ops), "--burst-sz", "32", "--buffer-sz", bufs] + extra
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        rows = []
        for line in p.stdout.splitlines():
            w = line.split()
            if len(w) == 10 and w[0].isdigit() and w[1].isdigit():
                rows.append((int(w[1]), float(w[7]), float(w[8]), float(w[9])))
        if p.returncode != 0 or not rows:
            raise RuntimeError(f"crypto-perf failed ({p.returncode}): {p.stdout[-2000:]}{p.stderr[-2000:]}")
        for s in want:
            if size_key(s) == "imix":
                r = rows[0]
            else:
                r = next(x for x in rows if x[0] == int(s))
            res[size_key(s)] = {"mops": r[1], "gbps": r[2], "cycles_per_op": r[3]}
    return res, pmd


def run_aead(cipher, op, sizes, seconds):
    """nimbus-bench aead on CPU 1: the cipher alone through nimbus's engine."""
    cmd = ["taskset", "-c", "1", os.path.join(BUILD, "src", "nimbus-bench"), "aead", "--cipher", cipher, "--dir", op,
           "--sizes", ",".join(size_key(s) for s in sizes), "--seconds", str(seconds)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 4 * seconds * len(sizes))
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or len(rows) != len(sizes):
        raise RuntimeError(f"nimbus-bench aead failed ({p.returncode}): {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return {r["size"]: r for r in rows}


# ---------------------------------------------------------------- ipsec-secgw

def build_secgw(work):
    src = "/usr/share/dpdk/examples/ipsec-secgw"
    d = os.path.join(work, "secgw")
    shutil.copytree(src, os.path.join(d, "ipsec-secgw"))
    shutil.copytree("/usr/share/dpdk/examples/common", os.path.join(d, "common"))
    # net_pcap / net_null cannot do RX checksum offload, which the example
    # always requests; it never reads the RX checksum flags, so dropping the
    # request when the port lacks it leaves its data path unchanged.
    c = os.path.join(d, "ipsec-secgw", "ipsec-secgw.c")
    text = open(c).read()
    anchor = "\tlocal_port_conf.txmode.offloads |= req_tx_offloads;\n"
    if anchor not in text:
        raise RuntimeError("ipsec-secgw.c: cannot find where to drop the RX checksum request")
    text = text.replace(anchor, anchor + "\tlocal_port_conf.rxmode.offloads &=\n"
                        "\t\t~(RTE_ETH_RX_OFFLOAD_CHECKSUM & ~dev_info.rx_offload_capa);\n", 1)
    open(c, "w").write(text)
    # ESP_BENCH_SECGW_CACHE=DIR (the CI smoke test): reuse a binary built
    # from the same dpdk-doc and the same patch; the source is never kept.
    cache = os.environ.get("ESP_BENCH_SECGW_CACHE")
    stamp = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "dpdk-doc"], capture_output=True,
                           text=True).stdout + "\n" + text
    if cache and os.path.exists(os.path.join(cache, "stamp")) and open(os.path.join(cache, "stamp")).read() == stamp:
        return os.path.join(cache, "ipsec-secgw")
    p = subprocess.run(["make", "-j2", "-C", os.path.join(d, "ipsec-secgw")], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("ipsec-secgw build failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
    binary = os.path.join(d, "ipsec-secgw", "build", "ipsec-secgw")
    if cache:
        os.makedirs(cache, exist_ok=True)
        shutil.copy(binary, os.path.join(cache, "ipsec-secgw"))
        open(os.path.join(cache, "stamp"), "w").write(stamp)
    return binary


def colon(b):
    return ":".join(f"{x:02x}" for x in b)


def secgw_cfg(work, cipher, direction):
    k_out, k_in = keys(cipher)
    algo = CIPHERS[cipher][2]
    out_sa = (f"sa out {SPI_OUT} aead_algo {algo} aead_key {colon(k_out)} mode ipv4-tunnel "
              f"src {US} dst {PEER} type cpu-crypto")
    in_sa = (f"sa in {SPI_IN} aead_algo {algo} aead_key {colon(k_in)} mode ipv4-tunnel "
             f"src {PEER} dst {US} type cpu-crypto")
    if direction == "encrypt":  # port 0 (pcap) protected LAN, port 1 (null) unprotected WAN
        lines = [f"sp ipv4 out esp protect {SPI_OUT} pri 1 dst 10.2.0.0/16 sport 0:65535 dport 0:65535", out_sa,
                 f"rt ipv4 dst {PEER}/32 port 1", f"neigh port 1 {PEER_MAC}",
                 # the example refuses a port pair without an inbound SA; no traffic uses it
                 f"sp ipv4 in esp protect {SPI_IN} pri 1 dst 10.1.0.0/16 sport 0:65535 dport 0:65535", in_sa,
                 "rt ipv4 dst 10.1.0.0/16 port 0"]
    else:  # port 0 (pcap) unprotected WAN, port 1 (null) protected LAN
        lines = [f"sp ipv4 in esp protect {SPI_IN} pri 1 dst 10.1.0.0/16 sport 0:65535 dport 0:65535", in_sa,
                 "rt ipv4 dst 10.1.0.0/16 port 1", "neigh port 1 02:00:00:00:00:b2",
                 f"sp ipv4 out esp protect {SPI_OUT} pri 1 dst 10.2.0.0/16 sport 0:65535 dport 0:65535", out_sa,
                 f"rt ipv4 dst {PEER}/32 port 0"]
    p = os.path.join(work, f"secgw_{cipher}_{direction}.cfg")
    open(p, "w").write("\n".join(lines) + "\n")
    return p


class LineReader(threading.Thread):
    """Collects (monotonic time, line) from a process's stdout."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self):
        for line in iter(self.stream.readline, ""):
            self.lines.append((time.monotonic(), line.rstrip("\n")))


def stop(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_secgw(binary, cfg, pcap, cipher, direction, seconds):
    pmd = CIPHERS[cipher][6]
    cmd = ["stdbuf", "-oL", binary, "-l", "1", "--no-huge", "-m", "1024", "--no-pci", f"--file-prefix=nbsg{os.getpid()}",
           "--log-level=*:warning", "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
           "--vdev", "net_null0,no-rx=1", "--vdev", f"{pmd}0", "--",
           "-p", "0x3", "-P", "-u", "0x2" if direction == "encrypt" else "0x1",
           "--config", "(0,0,1),(1,0,1)", "-l", "-f", cfg, "-t", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    rd = LineReader(proc.stdout)
    rd.start()
    deadline = time.monotonic() + seconds + 20
    samples = []  # (time, total sent, total dropped)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            samples = []
            sent = None
            for t, line in list(rd.lines):
                if line.startswith("Total packets sent:"):
                    sent = int(line.split()[-1])
                elif line.startswith("Total packets dropped:") and sent is not None:
                    samples.append((t, sent, int(line.split()[-1])))
                    sent = None
            # the first two prints cover start-up; then `seconds` of steady state
            if len(samples) >= 3 and samples[-1][0] - samples[1][0] >= seconds:
                break
    finally:
        stop(proc)
        rd.join(timeout=5)
    if len(samples) < 3:
        raise RuntimeError("ipsec-secgw gave no statistics:\n" + "\n".join(l for _, l in rd.lines[-40:]))
    (t0, s0, d0), (t1, s1, d1) = samples[1], samples[-1]
    return {"packets": s1 - s0, "dropped": d1 - d0, "seconds": round(t1 - t0, 3), "mpps": (s1 - s0) / (t1 - t0) / 1e6}


# ---------------------------------------------------------------- harness

def run_harness(pcap, seconds):
    """The harness alone: dpdk-testpmd io-forwarding the same pcap from the
    same vdevs (net_pcap0 infinite_rx -> net_null0) on the same CPU, with no
    packet work at all. Every forwarder measured here pays at least this per
    packet on top of its crypto (see `bound` in the summary)."""
    cmd = ["stdbuf", "-oL", "dpdk-testpmd", "--lcores=0@0,1@1", "--no-huge", "-m", "1024", "--no-pci",
           f"--file-prefix=nbtp{os.getpid()}", "--log-level=*:warning",
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1", "--",
           "-i", "--forward-mode=io", "--nb-cores=1", "--burst=32", "--rxq=1", "--txq=1",
           "--total-num-mbufs=16384"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    rd = LineReader(proc.stdout)
    rd.start()

    def tx_packets():
        n = len(rd.lines)
        proc.stdin.write("show port stats 1\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for _, line in rd.lines[n:]:
                if "TX-packets:" in line:
                    return time.monotonic(), int(line.split("TX-packets:")[1].split()[0])
            time.sleep(0.02)
        raise RuntimeError("dpdk-testpmd gave no port statistics:\n" + "\n".join(l for _, l in rd.lines[-40:]))

    try:
        proc.stdin.write("start\n")
        proc.stdin.flush()
        t, n = tx_packets()
        deadline = time.monotonic() + 20
        while n < 100000:  # warm: forwarding runs
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("dpdk-testpmd forwards nothing:\n" + "\n".join(l for _, l in rd.lines[-40:]))
            time.sleep(0.1)
            t, n = tx_packets()
        t0, n0 = tx_packets()
        time.sleep(seconds)
        t1, n1 = tx_packets()
        proc.stdin.write("stop\nquit\n")
        proc.stdin.flush()
        proc.wait(timeout=15)
    finally:
        stop(proc)
        rd.join(timeout=5)
    return {"packets": n1 - n0, "seconds": round(t1 - t0, 3), "mpps": (n1 - n0) / (t1 - t0) / 1e6}


# ---------------------------------------------------------------- nimbusd

def nimbusd_cfg(work, node, sock, cipher, pcap):
    k_out, k_in = keys(cipher)
    cname = {"aes128gcm": "aes128gcm16", "aes256gcm": "aes256gcm16", "chacha20poly1305": "chacha20poly1305"}[cipher]
    text = f"""node:
  name: {node}
dataplane:
  workers: 1
  idle_sleep_us: 50
  eal: [--no-huge, -m, "1024", "--lcores=0@0,1@1"]  # worker on CPU 1, like ipsec-secgw -l 1
mgmt:
  socket: {sock}
  log_level: warn
ports:
  - name: lan0
    device: "net_pcap0,rx_pcap={pcap},infinite_rx=1"
    addresses: [10.1.0.1/16]
  - name: wan0
    device: "net_null0,no-rx=1"
    addresses: [{US}/24]
manual_sas:
  - name: bench
    cipher: {cname}
    encap: esp
    mss_clamp: false
    allowed: [10.2.0.0/16]
    paths: [ {{ local: {US}, remote: {PEER} }} ]
    out: {{ spi: {SPI_OUT:#x}, key: "{k_out.hex()}" }}
    in: [ {{ spi: {SPI_IN:#x}, key: "{k_in.hex()}" }} ]
"""
    p = os.path.join(work, f"{node}.yaml")
    open(p, "w").write(text)
    return p


def nimbus_cli(sock, *words):
    p = subprocess.run([os.path.join(BUILD, "src", "nimbus"), "-s", sock, "-j"] + list(words),
                       capture_output=True, text=True, timeout=15)
    if p.returncode != 0:
        raise RuntimeError(f"nimbus {' '.join(words)}: {p.stderr}")
    return json.loads(p.stdout)


def port_ctr(sock, name):
    for p in nimbus_cli(sock, "show", "counters")["ports"]:
        if p["name"] == name:
            return p
    raise KeyError(name)


def run_nimbusd(work, ns, cipher, pcap, seconds, tag):
    node = f"nbesp{os.getpid()}{tag}"
    sock = os.path.join(work, f"{node}.sock")
    cfg = nimbusd_cfg(work, node, sock, cipher, pcap)
    logf = open(os.path.join(work, f"{node}.log"), "w")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, os.path.join(BUILD, "src", "nimbusd"), "-c", cfg],
                            stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nimbusd exited {proc.returncode}:\n" + open(logf.name).read()[-3000:])
            if os.path.exists(sock):
                try:
                    nimbus_cli(sock, "show", "version")
                    break
                except (RuntimeError, json.JSONDecodeError):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("nimbusd did not answer:\n" + open(logf.name).read()[-3000:])
            time.sleep(0.1)
        # The peer never answers ARP on net_null: a permanent neighbour on the
        # host interface, which nimbusd learns over netlink. Only once nimbusd
        # has finished setting wan0 up (MAC, UP, address): a MAC change
        # flushes every neighbour of the interface, permanent ones included,
        # and the run then measured the kernel re-resolving (punted, policed).
        while f"{US}/24" not in subprocess.run(["ip", "-n", ns, "-4", "addr", "show", "dev", "wan0", "up"],
                                               capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("nimbusd did not bring wan0 up with its address")
            time.sleep(0.05)
        subprocess.run(["ip", "-n", ns, "neigh", "replace", PEER, "lladdr", PEER_MAC, "dev", "wan0",
                        "nud", "permanent"], check=True)
        deadline = time.monotonic() + 20
        while port_ctr(sock, "wan0")["tx_packets"] < 100000:  # warm: the neighbour is in use
            if time.monotonic() > deadline:
                raise RuntimeError("nimbusd sends nothing on wan0:\n" + json.dumps(port_ctr(sock, "wan0"))[:3000])
            time.sleep(0.1)
        # Until the neighbour is resolved, packets to the peer are held and
        # punted (policed): measure only once no drop counter moves for 0.3 s.
        def drop_total():
            return sum(sum(port_ctr(sock, n)["drops"].values()) for n in ("wan0", "lan0"))
        last = drop_total()
        while True:
            time.sleep(0.3)
            now = drop_total()
            if now == last:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nimbusd still drops packets after warm-up ({now - last} in 0.3 s)")
            last = now
        def snap():
            sa = {x["spi"]: x for x in nimbus_cli(sock, "show", "ipsec", "sa")}
            return (time.monotonic(), port_ctr(sock, "wan0"), port_ctr(sock, "lan0"),
                    sa[f"{SPI_OUT:08x}"]["counters"]["packets"])
        t0, w0, l0, s0 = snap()
        time.sleep(seconds)
        t1, w1, l1, s1 = snap()
        neigh = subprocess.run(["ip", "-n", ns, "neigh", "show", PEER, "dev", "wan0"], capture_output=True,
                               text=True).stdout
        if "PERMANENT" not in neigh:
            raise RuntimeError(f"the peer's permanent neighbour went away during the run: {neigh.strip()!r}")
        tx = w1["tx_packets"] - w0["tx_packets"]
        drops = {}  # during the measured interval only
        for a, b in ((w0, w1), (l0, l1)):
            for k, v in b["drops"].items():
                if v - a["drops"][k]:
                    drops[k] = drops.get(k, 0) + v - a["drops"][k]
        return {"packets": tx, "sa_packets": s1 - s0, "seconds": round(t1 - t0, 3), "mpps": tx / (t1 - t0) / 1e6,
                "drops": drops}
    finally:
        stop(proc, timeout=15)
        logf.close()


def run_bench_pcap(cipher, pcap, direction, seconds):
    k_out, k_in = keys(cipher)
    cmd = [os.path.join(BUILD, "src", "nimbus-bench"), "esp", "--pcap", pcap, "--dir", direction, "--cipher", cipher,
           "--key-out", k_out.hex(), "--key-in", k_in.hex(), "--spi-out", hex(SPI_OUT), "--spi-in", hex(SPI_IN),
           "--seconds", str(seconds)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not rows:
        raise RuntimeError(f"nimbus-bench pcap failed ({p.returncode}): {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return rows[0]


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one short run of each (CI smoke)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sizes", default="64,512,1420,imix")
    ap.add_argument("--ciphers", default="aes256gcm", help="compared with ipsec-secgw (and ceiling)")
    ap.add_argument("--dirs", default="encrypt,decrypt")
    ap.add_argument("--tunnels", type=int, default=100000, help="nimbus-bench esp --tunnels")
    ap.add_argument("--bench-seconds", type=float, default=2)
    ap.add_argument("--bench-ciphers", default="aes128gcm,aes256gcm,chacha20poly1305")
    ap.add_argument("--no-inmemory", action="store_true", help="skip nimbus-bench esp in memory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.seconds, a.sizes, a.tunnels, a.bench_seconds = 1, 1.0, "64", 1000, 0.2
        a.bench_ciphers = a.ciphers
    sizes = [s if s == "imix" else int(s) for s in a.sizes.split(",")]
    ciphers = a.ciphers.split(",")
    dirs = a.dirs.split(",")
    for c in ciphers + a.bench_ciphers.split(","):
        if c not in CIPHERS:
            sys.exit(f"unknown cipher {c}")
    work = tempfile.mkdtemp(prefix="nimbus-bench-esp-", dir="/tmp")
    ns = f"nbesp{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    summary = {"bench": "esp", "summary": True, "quick": a.quick, "reps": a.reps, "seconds": a.seconds,
               "harness": "net_pcap0 infinite_rx -> one lcore -> net_null0; sizes are inner IPv4 lengths",
               "results": []}
    try:
        log(f"work dir {work}; pcaps")
        pcaps = make_pcaps(work, ciphers, sizes, dirs)
        log("building ipsec-secgw from /usr/share/dpdk/examples")
        secgw = build_secgw(work)
        total_ops = 200000 if a.quick else 3000000
        ceiling = {}  # (cipher, dir, size) -> [mops...]
        aead = {}     # (cipher, dir, size) -> [mops...]
        raw = {}      # (who, cipher, dir, size) -> [mpps...]
        for rep in range(a.reps):
            for c in ciphers:
                for d in dirs:
                    if not a.quick:
                        wait_quiet(5)
                    res, pmd = run_ceiling(c, d, sizes, total_ops if c != "chacha20poly1305" else total_ops // 3)
                    for s, r in res.items():
                        emit({"bench": "esp", "who": "ceiling", "tool": "dpdk-test-crypto-perf", "pmd": pmd, "cipher": c,
                              "dir": d, "size": s, "rep": rep, **r})
                        ceiling.setdefault((c, d, s), []).append(r["mops"])
                    for s, r in run_aead(c, d, sizes, 0.2 if a.quick else 1).items():
                        emit({"who": "aead", "tool": "nimbus-bench aead", "rep": rep, **r})
                        aead.setdefault((c, d, s), []).append(r["mops"])
                    for s in sizes:
                        sk = size_key(s)
                        order = ["secgw", "nimbus", "harness"] if rep % 2 == 0 else ["harness", "nimbus", "secgw"]
                        for who in order:
                            if not a.quick:
                                wait_quiet(5)
                            pcap = pcaps[("plain", s)] if d == "encrypt" else pcaps[("esp", c, s)]
                            if who == "harness":
                                r = run_harness(pcap, a.seconds)
                                r["tool"] = "dpdk-testpmd --forward-mode=io (no packet work)"
                            elif who == "secgw":
                                r = run_secgw(secgw, secgw_cfg(work, c, d), pcap, c, d, a.seconds)
                                r["tool"] = "ipsec-secgw -l (librte_ipsec), cpu-crypto, " + CIPHERS[c][6]
                            elif d == "encrypt":
                                r = run_nimbusd(work, ns, c, pcap, a.seconds, f"r{rep}")
                                r["tool"] = "nimbusd (1 worker), wan0 tx_packets from `nimbus show counters`"
                            else:
                                r = run_bench_pcap(c, pcap, d, a.seconds)
                                r["tool"] = "nimbus-bench esp --pcap (worker functions, window reset per pass)"
                            emit({"bench": "esp", "who": who, "cipher": c, "dir": d, "size": sk, "rep": rep, **r})
                            raw.setdefault((who, c, d, sk), []).append(r["mpps"])
        for c in ciphers:
            for d in dirs:
                for s in sizes:
                    sk = size_key(s)
                    avg = statistics.mean(sizes_of(s))
                    nim = statistics.median(raw[("nimbus", c, d, sk)])
                    sg = statistics.median(raw[("secgw", c, d, sk)])
                    ce = statistics.median(ceiling[(c, d, sk)])
                    h = statistics.median(raw[("harness", c, d, sk)])
                    ae = statistics.median(aead[(c, d, sk)])
                    # The best a forwarder calling the cipher as nimbus does
                    # could do on this harness: the cipher alone plus the
                    # harness's own per-packet cost, no forwarding work.
                    bound = 1 / (1 / ae + 1 / h) if ae and h else None
                    row = {"cipher": c, "dir": d, "size": sk, "runs": len(raw[("nimbus", c, d, sk)]),
                           "nimbus_mpps": round(nim, 3), "nimbus_gbps": round(nim * avg * 8 / 1e3, 2),
                           "secgw_mpps": round(sg, 3), "secgw_gbps": round(sg * avg * 8 / 1e3, 2),
                           "ceiling_mops": round(ce, 3), "ceiling_gbps": round(ce * avg * 8 / 1e3, 2),
                           "ratio_nimbus_secgw": round(nim / sg, 3) if sg else None,
                           "ratio_nimbus_ceiling": round(nim / ce, 3) if ce else None,
                           "harness_mpps": round(h, 3),
                           "aead_mops": round(ae, 3),
                           "ratio_aead_ceiling": round(ae / ce, 3) if ce else None,
                           "bound_mpps": round(bound, 3) if bound else None,
                           "ratio_bound_ceiling": round(bound / ce, 3) if bound and ce else None,
                           "ratio_nimbus_bound": round(nim / bound, 3) if bound else None,
                           "nimbus_source": "nimbusd" if d == "encrypt" else "nimbus-bench --pcap"}
                    t = TARGETS.get(sk)
                    if t is not None:
                        row["target_ratio_secgw"] = t
                        row["meets_secgw_target"] = bool(sg and nim / sg >= t)
                    if sk == "1420":
                        row["target_ratio_ceiling"] = CEILING_TARGET_1420
                        row["meets_ceiling_target"] = bool(ce and nim / ce >= CEILING_TARGET_1420)
                    summary["results"].append(row)
        if not a.no_inmemory:
            log("nimbus-bench esp (in memory)")
            cmd = [os.path.join(BUILD, "src", "nimbus-bench"), "esp", "--seconds", str(a.bench_seconds),
                   "--tunnels", str(a.tunnels), "--ciphers", a.bench_ciphers, "--sizes", a.sizes]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
            for r in rows:
                emit(r)
            if p.returncode != 0:
                raise RuntimeError(f"nimbus-bench esp failed ({p.returncode}): {p.stderr[-2000:]}")
            summary["inmemory"] = [{k: r[k] for k in ("mode", "tunnels", "cipher", "dir", "size", "mpps", "gbps",
                                                      "cycles_per_packet")} for r in rows if r["mode"] != "memory"]
            summary["memory"] = [r for r in rows if r["mode"] == "memory"]
        emit(summary)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


BUILD = os.path.abspath(os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))

if __name__ == "__main__":
    main()
