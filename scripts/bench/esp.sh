#!/bin/bash
# ESP benchmark: nimbus against DPDK's ipsec-secgw and the raw AEAD ceiling
# (dpdk-test-crypto-perf), all in one run on this machine, plus nimbus-bench
# esp in memory (all ciphers, 1 and 100,000 tunnels, SA table memory).
#   scripts/bench/esp.sh [--quick] [--reps 5] [--seconds 10] [--sizes 64,512,1420,imix]
#                        [--ciphers aes256gcm] [--dirs encrypt,decrypt] [--tunnels 100000] [--keep]
# Prints JSON lines; the last one is the summary with the medians and the
# ratios nimbus/secgw and nimbus/ceiling per size and direction.
# Needs root (DPDK, a network namespace for nimbusd), a built tree
# (BUILD_DIR, default build) and, from Debian: dpdk-doc (the ipsec-secgw
# source, built in a temporary directory, never kept), dpdk-dev
# (dpdk-test-crypto-perf), libpcap-dev (net_pcap), make, python3-scapy and
# python3-cryptography (the ESP pcaps). Missing ones are installed with apt;
# if that fails the script exits 77.
# --quick: one 1 s run of each for AES-256-GCM at 64 B (the CI smoke test).
# The machine is shared and noisy: compare only numbers of the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PKGS=(dpdk-doc dpdk-dev libpcap-dev make python3-scapy python3-cryptography)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "esp.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2 || {
            echo "esp.sh: skip: cannot install ${missing[*]}" >&2
            exit 77
        }
    fi
fi
[ -d /usr/share/dpdk/examples/ipsec-secgw ] || { echo "esp.sh: skip: no ipsec-secgw source in dpdk-doc" >&2; exit 77; }
BUILD_DIR=${BUILD_DIR:-build}
for b in nimbusd nimbus nimbus-bench; do
    [ -x "$BUILD_DIR/src/$b" ] || { echo "esp.sh: build first ($BUILD_DIR/src/$b missing)" >&2; exit 2; }
done
export BUILD_DIR
exec /usr/bin/python3 scripts/bench/esp_bench.py "$@"
