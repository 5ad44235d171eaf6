#!/bin/bash
# CLI at scale: how long `show` commands hold nimbusd's control thread (VRRP
# adverts, IKE and ZAPI wait meanwhile) with TUNNELS static tunnels (default
# 100,000), in a network namespace. One JSON line per command:
#   wall_s                  what the client waited (the reply is built and
#                           written by a helper thread)
#   max_callback_ms_after   the longest control-thread callback so far
#   slow_callbacks          callbacks over 50 ms while the command ran
#   commit_ms               config apply only: how long its commit held the
#                           control thread (parse, diff and plan run on the
#                           client's thread before)
#   rss_mib, peak_rss_mib   nimbusd's resident memory after the command, and
#                           the most it has held (also on the "start" line)
# and, at the end, one line per time nimbusd gave freed memory back to the
# system (memory_returned_after: startup, apply or reply; mib; ms).
# Config changes run first (one tunnel removed, then added back), then
# `config show running`, then the listings.
#   TUNNELS=100000 scripts/bench/cli.sh
# Needs root and a built tree (BUILD_DIR, default build).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=$(realpath "${BUILD_DIR:-build}")
[ -x "$BUILD_DIR/src/nimbusd" ] || { echo "cli.sh: build first ($BUILD_DIR/src/nimbusd missing)" >&2; exit 2; }
cd test/integration
NIMBUS_BUILD=$BUILD_DIR /usr/bin/python3 -m pytest -p no:cacheprovider -q -s bench_cli_scale.py \
    | grep '^{' 
