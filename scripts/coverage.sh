#!/bin/sh
# Line and branch coverage of the sources by the tests, with gcc's
# --coverage and gcov (no other tool needed).
#
#   scripts/coverage.sh            unit tests only (a few seconds)
#   scripts/coverage.sh --all      also the PostgreSQL store tests and the
#                                  process-level suites (integration,
#                                  namespaces, crashes, simulator) run with
#                                  the instrumented cojp binary (minutes)
#
# Prints one line per source file (lines run, branches taken at least
# once), then totals per layer.  COV_BUILD names the build folder
# (build-cov); the annotated sources (FILE.c.gcov, '#####' marks a line
# never run) are left in $COV_BUILD/gcov.  The figures are printed, not
# enforced.
set -eu
cd "$(dirname "$0")/.."
B=${COV_BUILD:-build-cov}
all=0
case "${1:-}" in
    --all) all=1 ;;
    "") ;;
    *) echo "usage: scripts/coverage.sh [--all]" >&2; exit 2 ;;
esac

make -s -j"${JOBS:-2}" BUILD="$B" OPT="-O0 -g" SAN="--coverage" \
    "$B/unit_tests" "$B/cojp" >/dev/null
find "$B" -name '*.gcda' -delete
"$B/unit_tests" >/dev/null 2>&1
if [ $all -eq 1 ]; then
    tests/pg-server.sh run "$B/unit_tests" pg_ >/dev/null
    tests/integration/cli.sh "$B/cojp" >/dev/null
    tests/integration/netns.sh "$B/cojp" >/dev/null
    tests/integration/crash.sh "$B/cojp" >/dev/null
    tests/integration/sim.sh "$B/cojp" >/dev/null
fi

out="$B/gcov"
rm -rf "$out"
mkdir -p "$out"
printf '%-28s %16s %18s\n' file lines branches
for src in src/err.c src/codec/*.c src/engine/*.c src/port/*.c src/store/*.c \
           src/host/*.c src/sim/*.c; do
    # gcov writes its .gcov files into the current folder: moved after
    gcov -b -o "$B/$(dirname "$src")" "$src" 2>/dev/null |
        awk -v f="$src" -v want="File '$src'" '
            $0 == want { on = 1; next }
            on && /^Lines executed:/ { split($2, a, ":"); l = a[2]; ln = $4 }
            on && /^Taken at least once:/ { split($4, a, ":"); b = a[2]; bn = $6 }
            on && /^$/ { on = 0 }
            END {
                if (ln == "") { printf "%-28s %16s %18s\n", f, "not run", "-"; exit }
                printf "%-28s %7s of %5d %8s of %6d\n", f, l, ln, b, bn
            }'
done | tee "$out/summary.txt"
mv ./*.gcov "$out/" 2>/dev/null || true
# per layer: lines and branches weighted by their counts
awk '
    $2 != "not" {
        split($1, p, "/"); layer = p[2]; if (layer ~ /[.]c$/) layer = "err"
        l = $2; sub(/%/, "", l); b = $5; sub(/%/, "", b)
        lr[layer] += l * $4 / 100; lt[layer] += $4
        br[layer] += b * $7 / 100; bt[layer] += $7
    }
    END {
        for (k in lt)
            printf "layer %-8s lines %6.2f%% of %5d  branches %6.2f%% of %5d\n", k,
                100 * lr[k] / lt[k], lt[k], bt[k] ? 100 * br[k] / bt[k] : 0, bt[k]
    }' "$out/summary.txt" | sort
