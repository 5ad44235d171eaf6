#!/bin/sh
# Runs one Catch2 unit-test executable. When NIMBUS_RESULTS names a folder
# (scripts/test.sh sets it), results go there as Catch2 XML so the summary can
# count one result per test case; otherwise the console reporter is used.
exe=$1; name=$2; shift 2
if [ -n "$NIMBUS_RESULTS" ]; then
    mkdir -p "$NIMBUS_RESULTS"
    "$exe" -r xml -o "$NIMBUS_RESULTS/unit-$name.xml" "$@"
    rc=$?
    [ $rc -ne 0 ] && "$exe" -r compact "$@" | tail -40
    exit $rc
fi
exec "$exe" "$@"
