"""A short smoke run of nimbus-bench (benchmarks themselves stay out of CI):
it runs, prints well-formed results, and forwards every packet it feeds."""
import json
import os

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
