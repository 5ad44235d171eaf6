#!/bin/bash
# The nimbus demo: installs what is missing (apt), builds, and runs a small
# VPN cloud in network namespaces on its embedded default lab: a concentrator
# (nimbusd + FRR) peering eBGP with a core router, a strongSwan site and a
# nimbus edge site, each with a LAN host. It shows the tunnels, routes, the
# core's BGP table, pings site -> core, core -> site and site -> site, the
# cloud's firewall at work, and the
# metrics endpoint, then cleans everything up (also on failure and Ctrl-C).
# Exits non-zero, naming the step, if any check fails. Run as root on Debian 12.
#   BUILD_DIR=...          build directory (default: build)
#   NIMBUS_DEMO_SETUP=0    skip scripts/setup.sh (packages and build already there)
# The lab itself is scripts/lib/demo.py (it reuses test/integration/lib).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (namespaces, DPDK)"; exit 1; }
BUILD_DIR=${BUILD_DIR:-build}
if [ "${NIMBUS_DEMO_SETUP:-1}" != 0 ]; then
    BUILD_DIR=$BUILD_DIR scripts/setup.sh
fi
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac
export NIMBUS_BUILD=$BUILD_DIR
exec /usr/bin/python3 -u scripts/lib/demo.py
