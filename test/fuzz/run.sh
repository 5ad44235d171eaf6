#!/bin/bash
# Builds every libFuzzer target in test/fuzz/ with clang-14 (ASan + UBSan) in
# its own directory and runs each for a fixed time, seeded with its corpus.
# An input that runs over 25 s is a failure (a hang; libFuzzer's default would
# wait 20 minutes).
# With NIMBUS_RESULTS set, writes JUnit XML (fuzz-NAME.xml): one test case per
# target, failed if the fuzzer found anything or did not build.
#   test/fuzz/run.sh [OUT_DIR]     FUZZ_SECONDS (default 30)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${BUILD_DIR:-build}/fuzz}
SECS=${FUZZ_SECONDS:-30}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
[ -n "${NIMBUS_RESULTS:-}" ] && mkdir -p "$NIMBUS_RESULTS"
CXX=clang++-14
COMMON_SRC="src/common/bytes.cpp src/common/addr.cpp src/common/log.cpp"
IKE_CODEC="control/ike/messages.cpp control/ike/message.cpp control/ike/payloads.cpp control/ike/codec.cpp
  control/ike/fragments.cpp control/ike/secret.cpp control/ike/keymat.cpp control/ike/sk.cpp control/ike/dh.cpp
  control/ike/auth.cpp control/ike/proposal.cpp control/ike/selftest.cpp control/ike/natt.cpp
  control/ike/cookie.cpp control/ike/ts.cpp"
IKE_ENGINE="control/ike/engine.cpp control/ike/ike_sa_init.cpp control/ike/ike_auth.cpp control/ike/create_child.cpp
  control/ike/informational.cpp control/ike/child.cpp control/ike/policy.cpp control/ike/logging_sink.cpp
  control/ike/tunnel_events.cpp control/pki/*.cpp src/common/files.cpp"
declare -A SRCS=(
    [ike_message_fuzz]="$IKE_CODEC"
    [ike_engine_fuzz]="$IKE_CODEC $IKE_ENGINE"
    [leaf_fuzz]="control/pki/leaf.cpp"
)
rc_all=0
for target in "${!SRCS[@]}"; do
    log="$OUT/$target.log"
    status=pass msg=""
    # shellcheck disable=SC2086
    if ! $CXX -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=undefined -I. "test/fuzz/$target.cpp" ${SRCS[$target]} $COMMON_SRC \
            -lfmt -lssl -lcrypto -o "$OUT/$target" > "$log" 2>&1; then
        status=fail msg="did not build (see $log)"
    else
        corpus="$OUT/${target}_corpus"
        rm -rf "$corpus" && mkdir -p "$corpus"
        seeds="test/fuzz/${target%_fuzz}_corpus"
        [ -d "$seeds" ] && cp "$seeds"/* "$corpus"/
        (cd "$OUT" && "./$target" -max_total_time="$SECS" -max_len=4096 -timeout=25 -print_final_stats=1 \
            -artifact_prefix="$OUT/" "$(basename "$corpus")") >> "$log" 2>&1
        r=$?
        if [ $r -ne 0 ] || grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
            status=fail msg="fuzzer found a problem (exit $r, see $log)"
        else
            msg=$(grep -E "stat::number_of_executed_units" "$log" | tail -1)
        fi
    fi
    echo "fuzz $target: $status ${msg}"
    [ $status = fail ] && rc_all=1
    if [ -n "${NIMBUS_RESULTS:-}" ]; then
        {
            echo '<?xml version="1.0" encoding="utf-8"?>'
            echo "<testsuites><testsuite name=\"fuzz\" tests=\"1\">"
            echo "<testcase classname=\"fuzz\" name=\"$target (${SECS}s)\">"
            [ $status = fail ] && echo "<failure message=\"$msg\"/>"
            echo "</testcase></testsuite></testsuites>"
        } > "$NIMBUS_RESULTS/fuzz-$target.xml"
    fi
done
exit $rc_all
