#!/bin/sh
# Runs one pytest file as a meson test. With NIMBUS_RESULTS set, writes JUnit
# XML there (SUITE-NAME.xml) so scripts/test.sh counts each test case.
suite=$1; name=$2; file=$3; shift 3
set -- -p no:cacheprovider -ra -v --timeout=300 "$file" "$@"
if [ -n "$NIMBUS_RESULTS" ]; then
    mkdir -p "$NIMBUS_RESULTS"
    set -- "$@" --junitxml="$NIMBUS_RESULTS/$suite-$name.xml" -o junit_family=xunit2
fi
exec /usr/bin/python3 -m pytest "$@"
