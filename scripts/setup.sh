#!/bin/bash
# Installs what nimbus needs from Debian 12's archive (apt only) and builds it.
#   scripts/setup.sh            build dependencies + what the demo needs, then build
#   scripts/setup.sh --test     also what the test suites need
#   BUILD_DIR=... (default: build), NIMBUS_WERROR=0 to allow warnings
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

BUILD_PKGS=(meson ninja-build pkg-config g++ libdpdk-dev libipsec-mb-dev libssl-dev
            libyaml-cpp-dev catch2 libfmt-dev libmnl-dev nlohmann-json3-dev libedit-dev libcpp-httplib-dev)
RUN_PKGS=(iproute2 nftables ethtool iputils-ping iperf3 procps)
# scripts/demo.sh's VPN cloud: FRR (concentrator and core), a strongSwan site,
# certificates made with openssl, the metrics endpoint read with curl.
DEMO_PKGS=(python3 openssl curl frr strongswan-charon strongswan-swanctl libcharon-extra-plugins
           libstrongswan-standard-plugins libstrongswan-extra-plugins)
TEST_PKGS=(python3-pytest python3-pytest-timeout python3-scapy python3-cryptography libpcap0.8
           python3-prometheus-client tcpdump tmux dpdk-dev clang-14 libclang-rt-14-dev keepalived conntrack
           dpdk-doc libpcap-dev make)

pkgs=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${DEMO_PKGS[@]}")
[ $want_test = 1 ] && pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

BUILD_DIR=${BUILD_DIR:-build}
werror=true
[ "${NIMBUS_WERROR:-1}" = 0 ] && werror=false
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" --buildtype=release -Dwerror=$werror
fi
meson compile -C "$BUILD_DIR"
