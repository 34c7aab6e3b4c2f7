#!/bin/sh
# cojp bench as a smoke test: the figures are printed, never asserted
# (they belong to `make bench` on a quiet machine); what is checked is
# that every request of a phase was answered and verified, in every
# round, and that the medians of the rounds are printed, with SQLite
# and, when PostgreSQL is installed, in three rounds on one server (a
# run of two, then a run of one): 2 x 34 000 first admissions need more
# short ids than one network has, so the later rounds pass only if each
# round keeps to a schema of its own, and no such schema may be left
# afterwards.
#   tests/integration/bench.sh [path/to/cojp]
set -u
COJP=${1:-build/cojp}
cd "$(dirname "$0")/../.."
if [ "${2:-}" = "--pg-runs" ]; then
    # inside tests/pg-server.sh run: two runs, then the leftover check
    rc=0
    # two rounds, then one: each round in a schema of its own
    for i in 2 1; do
        out=$("$COJP" bench --pg --duration 8 --pledges 34000 --rounds $i 2>&1)
        echo "$out" | grep -E '^bench jrc-postgresql: [0-9]+ joins/s'
        test "$(echo "$out" | grep -cE '^bench jrc-postgresql: 34000 requests, 34000 responses \(34000 verified\), [0-9]+ joins/s, .* lost 0;')" -eq $i || {
            echo "FAIL run of $i round(s): not every request answered and verified"
            echo "$out" | tail -5
            rc=1
        }
    done
    left=$(psql "$COJP_PG_URI" -Atc "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'cojp_bench_%'")
    [ "$left" = 0 ] || { echo "FAIL $left bench schema(s) left behind"; rc=1; }
    exit $rc
fi
fail=0
out=$("$COJP" bench --duration 1 --pledges 3000 --rounds 3 2>&1)
echo "$out" | grep -E '^bench jrc-sqlite: ([0-9]+ joins/s|median)'
test "$(echo "$out" | grep -cE '^bench jrc-sqlite: 3000 requests, 3000 responses \(3000 verified\), [0-9]+ joins/s, .* lost 0;')" -eq 3 || {
    echo "FAIL sqlite: not every request of the 3 rounds answered and verified"
    echo "$out" | tail -5
    fail=1
}
echo "$out" | grep -qE '^bench jrc-sqlite: median of 3 rounds: [0-9]+ joins/s; udp-echo: [0-9]+/s; ratio [0-9.]+ \(rounds: [0-9.]+ [0-9.]+ [0-9.]+\)' || {
    echo "FAIL sqlite: no median of the 3 rounds"
    echo "$out" | tail -3
    fail=1
}
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then
    tests/pg-server.sh run "$0" "$COJP" --pg-runs || fail=1
else
    echo "bench: PostgreSQL runs skipped (no server binaries)"
fi
[ $fail -eq 0 ] && echo "bench smoke: passed" || echo "bench smoke: FAILED"
exit $fail
