#!/bin/bash
# Forwarding benchmark: nimbus-bench fwd, REPS runs (default 5), each result
# printed as a JSON line, then one JSON line per case with the median.
#   scripts/bench/fwd.sh [--seconds S] [--sizes 64,1500] [--routes N]
# The machine is shared and noisy: compare runs made in the same invocation.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
REPS=${REPS:-5}
BENCH=${BUILD_DIR:-build}/src/nimbus-bench
out=$(mktemp)
trap 'rm -f $out' EXIT
for i in $(seq "$REPS"); do "$BENCH" fwd "$@" | tee -a "$out"; done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
cases = {}
for r in rows:
    cases.setdefault((r["family"], r["size"]), []).append(r)
for (fam, size), rs in sorted(cases.items()):
    print(json.dumps({"bench": "fwd", "summary": "median", "family": fam, "size": size, "runs": len(rs),
                      "mpps": round(statistics.median(r["mpps"] for r in rs), 3),
                      "cycles_per_packet": round(statistics.median(r["cycles_per_packet"] for r in rs), 1),
                      "loop_mpps": round(statistics.median(r["loop_mpps"] for r in rs), 3),
                      "harness_ratio": round(statistics.median(r["loop_mpps"] / r["mpps"] for r in rs), 3)}))
PY
