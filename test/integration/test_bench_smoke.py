"""A short smoke run of nimbus-bench (benchmarks themselves stay out of CI):
it runs, prints well-formed results, and forwards every packet it feeds."""
import json
import os
import subprocess

import pytest

from nimbuslab import BUILD, run


def test_bench_fwd_smoke():
    if os.geteuid() != 0:
        pytest.skip("nimbus-bench needs root (DPDK EAL)")
    p = run([os.path.join(BUILD, "src", "nimbus-bench"), "fwd", "--seconds", "0.2", "--routes", "100"], timeout=60)
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert {(r["family"], r["size"]) for r in rows} == {("ipv4", 64), ("ipv4", 1500), ("ipv6", 64), ("ipv6", 1500)}
    for r in rows:
        assert r["packets"] > 1000, r
        assert r["forwarded"] == r["packets"] and r["drops"] == 0, r
        assert r["cycles_per_packet"] > 0 and r["mpps"] > 0, r


def test_bench_esp_smoke():
    """scripts/bench/esp.sh --quick: nimbus, ipsec-secgw (built from dpdk-doc
    in a temporary directory) and dpdk-test-crypto-perf each run once,
    briefly; the summary is well-formed and every rate is positive."""
    if os.geteuid() != 0:
        pytest.skip("the ESP bench needs root (DPDK EAL, a network namespace)")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bench", "esp.sh")
    p = subprocess.run([script, "--quick"], capture_output=True, text=True, timeout=180,
                       env={**os.environ, "BUILD_DIR": BUILD,
                            "ESP_BENCH_SECGW_CACHE": "/var/tmp/nimbus-esp-bench-secgw"})
    if p.returncode == 77:
        pytest.skip(f"ESP bench prerequisites unavailable: {p.stderr.strip().splitlines()[-1]}")
    assert p.returncode == 0, p.stderr[-4000:]
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    summary = rows[-1]
    assert summary.get("summary") is True, rows[-1]
    res = {(r["dir"], r["size"]): r for r in summary["results"]}
    assert set(res) == {("encrypt", "64"), ("decrypt", "64")}, res
    for r in res.values():
        for k in ("nimbus_mpps", "secgw_mpps", "ceiling_mops", "ratio_nimbus_secgw", "ratio_nimbus_ceiling",
                  "harness_mpps", "aead_mops", "ratio_aead_ceiling", "bound_mpps", "ratio_bound_ceiling",
                  "ratio_nimbus_bound"):
            assert r[k] > 0, (k, r)
        # the cipher and the harness together are slower than either alone
        assert r["bound_mpps"] < min(r["aead_mops"], r["harness_mpps"]), r
    aead = [r for r in rows if r.get("who") == "aead"]
    assert {(r["dir"], r["size"]) for r in aead} == {("encrypt", "64"), ("decrypt", "64")}, aead
    for r in aead:
        assert r["ops"] > 10000 and r["tsc_cycles_per_op"] > 0, r
        # every encryption succeeds; decryption alternates (see src/bench/aead.cpp)
        if r["dir"] == "encrypt":
            assert r["encrypted"] == r["ops"], r
        else:
            assert abs(2 * r["authenticated"] - r["ops"]) <= 32, r
    measured = [r for r in rows if r.get("who") in ("nimbus", "secgw")]
    assert len(measured) == 4
    harness = [r for r in rows if r.get("who") == "harness"]
    assert len(harness) == 2 and all(r["packets"] > 10000 for r in harness), harness
    for r in measured:
        assert r["packets"] > 10000 and not r.get("dropped") and not r.get("drops"), r
    enc = next(r for r in measured if r["who"] == "nimbus" and r["dir"] == "encrypt")
    # what left wan0 was encrypted by the SA (two CLI reads a moment apart)
    assert abs(enc["sa_packets"] - enc["packets"]) <= 0.05 * enc["packets"], enc
    dec = next(r for r in measured if r["who"] == "nimbus" and r["dir"] == "decrypt")
    assert dec["forwarded"] == dec["packets"], dec  # every ESP packet authenticated and decrypted
    mem = summary["memory"][0]
    assert mem["sa_table_bytes"] > 0 and mem["under_target"], mem
    assert all(r["mpps"] > 0 for r in summary["inmemory"])


def test_bench_ike_smoke():
    """nimbus-bench ike, small: 300 sites with certificates, a 1 s rate
    phase and a 300-site storm. Not a performance check: it runs, every
    site comes up, the concentrator survives, and the output is complete."""
    p = run([os.path.join(BUILD, "src", "nimbus-bench"), "ike", "--seconds", "1", "--rounds", "1", "--sites", "300"],
            timeout=240)
    rows = {r["phase"]: r for r in (json.loads(line) for line in p.stdout.splitlines() if line.startswith("{"))}
    assert set(rows) == {"openssl", "cert_parse", "pk_path", "rate_round", "rate", "storm", "summary"}, p.stdout[-3000:]
    assert rows["openssl"]["bound_hs_per_s"] > 0
    # a certificate seen before is not parsed again (OpenSSL 3.0's d2i_X509 is slow)
    cp = rows["cert_parse"]
    assert cp["d2i_x509_us"] > 0 and 0 <= cp["cached_us"] < cp["d2i_x509_us"] / 10, cp
    pk = rows["pk_path"]
    assert pk["p384_sign_us"] > 0 and pk["p384_verify_us"] > 0 and pk["chain_p521_verify_us"] > 0, pk
    assert rows["rate"]["handshakes"] > 0 and rows["rate"]["conc_auth_ok"] >= rows["rate"]["handshakes"]
    rr = rows["rate_round"]
    assert rr["round"] == 1 and rr["handshakes"] == rows["rate"]["handshakes"] and rr["bound_after"] > 0, rr
    # every site certificate of this PKI is root-issued: checked without OpenSSL's X.509 parser
    assert cp["direct_used"] and rows["rate"]["conc_cert_direct"] >= rows["rate"]["handshakes"], rows["rate"]
    assert rows["rate"]["conc_cert_full"] == 0, rows["rate"]
    storm = rows["storm"]
    assert storm["all_up"] and storm["up"] == 300 and not storm["crashed"], storm
    s = rows["summary"]
    assert s["bound_strict"] >= max(s["bound_before"], s["bound_after"]) > 0, s
    assert s["storm_all_up"] and s["storm_seconds"] > 0, s
