#!/bin/sh
# The process-level suites (daemons over loopback, across network
# namespaces, under crashes and hostile traffic, the simulator) run again
# with a cojp built with AddressSanitizer + UBSan:
#
#   scripts/asan-daemons.sh path/to/asan/cojp
#
# Every sanitizer report of every process the suites start (JRC, Join
# Proxy, pledges, demo, bench generator) is written to a file of a
# temporary directory; the run fails when a suite fails or when any such
# file exists, so a report cannot hide in a daemon's log that a test
# never reads.  LeakSanitizer is on: a daemon that exits normally must
# have freed what it allocated.
set -u
COJP=${1:?usage: scripts/asan-daemons.sh path/to/asan/cojp}
cd "$(dirname "$0")/.."
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan"
UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS
fail=0
for suite in cli netns crash sim; do
    log=$reports/$suite.log
    if tests/integration/$suite.sh "$COJP" >"$log" 2>&1; then
        tail -1 "$log"
    else
        tail -40 "$log"
        echo "asan-daemons: suite $suite FAILED"
        fail=1
    fi
    rm -f "$log"
done
found=$(ls "$reports")
if [ -n "$found" ]; then
    for f in $found; do
        echo "=== sanitizer report $f"
        head -60 "$reports/$f"
    done
    echo "asan-daemons: $(echo "$found" | wc -l) sanitizer report(s)"
    fail=1
else
    echo "asan-daemons: no sanitizer report"
fi
exit $fail
