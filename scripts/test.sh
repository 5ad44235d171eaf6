#!/bin/bash
# Installs what is missing, builds, runs every test suite (unit, integration,
# fuzz) and ends with one line: "N passed, M failed[, K skipped]". Exits
# non-zero on any failure. Benchmarks are not run here (scripts/bench/).
#   BUILD_DIR=... (default: build); extra args go to `meson test` (e.g. a test name)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR

if ! scripts/setup.sh --test; then
    echo "setup or build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

RES="$BUILD_DIR/test-results"
rm -rf "$RES"
mkdir -p "$RES"
NIMBUS_RESULTS=$(realpath "$RES")
export NIMBUS_RESULTS

meson test -C "$BUILD_DIR" --no-rebuild --print-errorlogs --no-suite bench "$@"
# Fuzzers (clang + libFuzzer) in their own build directory, fixed time each.
[ $# -eq 0 ] && test/fuzz/run.sh "$BUILD_DIR/fuzz"
/usr/bin/python3 scripts/lib/results.py "$RES" "$BUILD_DIR/meson-logs/testlog.json"
