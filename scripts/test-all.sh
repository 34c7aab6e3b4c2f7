#!/bin/sh
# The whole test suite, as CI runs it.  Each stage prints its own output;
# the last line sums up: unit tests of the main build plus one per stage.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-30}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

stage() {
    name=$1
    shift
    echo "=== $name"
    start=$(date +%s)
    if "$@" >"$log" 2>&1; then
        ok=1
    else
        ok=0
    fi
    # keep the interesting lines; everything on failure
    if [ $ok -eq 1 ]; then
        grep -E 'passed|FAIL|fuzz |replay |layers|module|total|budget|stack|^bench |^[a-z_ ]+ +[0-9]' "$log" | grep -v '^\s*$' || true
        echo "--- $name ok ($(( $(date +%s) - start )) s)"
        passed=$((passed + 1))
    else
        tail -80 "$log"
        echo "--- $name FAILED"
        failed=$((failed + 1))
    fi
}

unit_count() {
    sed -nE 's/^unit: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -1
}

stage "build+unit (gcc)" make -j"$JOBS" all check
set -- $(unit_count) 0 0
upass=$1 ufail=$2
stage "build+unit (clang)" make -j"$JOBS" check CC=clang BUILD=build-clang
stage "unit under ASan+UBSan" make -j"$JOBS" check-asan
stage "integration (daemons over loopback)" make check-integration
stage "daemons across network namespaces" make check-netns
stage "daemons under crashes and hostile traffic" make check-crash
stage "daemons, namespaces, crashes and simulator under ASan+UBSan" make -j"$JOBS" check-daemons-asan
stage "layering and no-malloc" scripts/check-layers.sh build/libcojp.a
stage "fuzz smoke (${FUZZ_SMOKE_SECONDS} s per harness)" make -j"$JOBS" fuzz-smoke FUZZ_SECONDS="$FUZZ_SMOKE_SECONDS"
stage "footprint (Cortex-M3)" make footprint
stage "firmware on QEMU (mps2-an385)" make firmware-test
stage "PostgreSQL store (throwaway server)" make check-pg
stage "PostgreSQL store under ASan+UBSan" make -j"$JOBS" check-pg-asan
stage "simulator (cojp sim)" make check-sim
stage "unit, minimal profile (no recovery, no Observe, read-ahead of 8, UBSan)" make -j"$JOBS" check-minimal
stage "pledge tests, lightweight profile (RFC 9031 Appendix B, no key derivation)" make -j"$JOBS" check-light
stage "benchmark smoke (cojp bench with SQLite and PostgreSQL, figures not asserted)" tests/integration/bench.sh build/cojp

echo "stages: $passed passed, $failed failed; unit tests: $upass passed, $ufail failed"
echo "$((passed + upass)) passed, $((failed + ufail)) failed"
[ $failed -eq 0 ] && [ "$ufail" -eq 0 ]
