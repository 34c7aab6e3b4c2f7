#!/bin/sh
# Integration tests of `cojp sim` (the 6TiSCH simulator): small networks
# in which every mote runs the real engines over the simulated TSCH MAC.
#   tests/integration/sim.sh [path/to/cojp]
# Checks: all motes join (25-mote grid, 10-mote line); same seed gives
# byte-identical JSON; the pcap parses with tshark without "Malformed"
# and shows the CoAP/OSCORE join exchange; no K2 frame is accepted by a
# mote that has not joined; a rekey started on the root's JRC reaches
# every mote through parameter updates; bad arguments exit 2.
set -u
COJP=${1:-build/cojp}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
# jget FILE EXPR: a value from the JSON summary (python3)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# 1. 25-mote grid with autonomous cells, rekey at 1200 s
"$COJP" sim --nodes 25 --topology grid --seed 3 --duration 1800 --autonomous \
    --rekey-at 1200 --json >"$tmp/grid.json" 2>/dev/null || ko "grid run exit status"
[ "$(jget "$tmp/grid.json" "d['joined']")" = 24 ] && ok "grid 25: all 24 pledges joined" ||
    ko "grid 25: joined $(jget "$tmp/grid.json" "d['joined']") of 24"
[ "$(jget "$tmp/grid.json" "d['k2_accepted_unjoined']")" = 0 ] &&
    [ "$(jget "$tmp/grid.json" "d['k2_rejected_unjoined'] > 0")" = True ] &&
    ok "grid 25: K2 frames heard by non-joined motes were all refused" ||
    ko "grid 25: K2 frame accepted by a non-joined mote"
[ "$(jget "$tmp/grid.json" "d['rekey']['done'] and d['rekey']['failed'] == 0 and d['rekey']['motes_updated'] == 25 and d['rekey']['motes_with_new_k2'] == 25")" = True ] &&
    ok "grid 25: rekey reached all 25 motes by parameter update" ||
    ko "grid 25: rekey $(jget "$tmp/grid.json" "d['rekey']")"
[ "$(jget "$tmp/grid.json" "d['mic']['failed'] == 0 and d['mic']['shared'] > 0")" = True ] &&
    ok "grid 25: every MIC verified, checks shared among receivers" ||
    ko "grid 25: MIC $(jget "$tmp/grid.json" "d['mic']")"

# 2. determinism
"$COJP" sim --nodes 25 --topology grid --seed 3 --duration 1800 --autonomous \
    --rekey-at 1200 --json >"$tmp/grid2.json" 2>/dev/null
cmp -s "$tmp/grid.json" "$tmp/grid2.json" && ok "same seed: byte-identical JSON" ||
    ko "same seed: JSON differs"
"$COJP" sim --nodes 25 --seed 8 --duration 600 --json >"$tmp/other.json" 2>/dev/null
cmp -s "$tmp/grid.json" "$tmp/other.json" && ko "another seed gives the same JSON" ||
    ok "another seed: another run"

# 3. 10-mote line (one JP per hop: short EB period so it fits the run)
"$COJP" sim --nodes 10 --topology line --seed 1 --duration 1800 --eb-period 2 \
    --autonomous --json >"$tmp/line.json" 2>/dev/null
[ "$(jget "$tmp/line.json" "d['joined']")" = 9 ] && ok "line 10: all 9 pledges joined" ||
    ko "line 10: joined $(jget "$tmp/line.json" "d['joined']") of 9"

# 4. minimal cell only, pcap and plot
"$COJP" sim --nodes 25 --seed 3 --duration 900 --pcap "$tmp/s.pcap" \
    --plot "$tmp/s.svg" --json >"$tmp/min.json" 2>/dev/null || ko "pcap run exit status"
[ "$(jget "$tmp/min.json" "d['joined'] > 0 and d['k2_accepted_unjoined'] == 0")" = True ] &&
    ok "minimal cell only: pledges join" || ko "minimal cell only: nobody joined"
if command -v tshark >/dev/null 2>&1; then
    tshark -r "$tmp/s.pcap" -V >"$tmp/s.txt" 2>"$tmp/s.err"
    n=$(grep -c "Frame [0-9]*:" "$tmp/s.txt")
    [ "$n" -gt 100 ] && ! grep -qi malformed "$tmp/s.txt" &&
        ok "pcap: $n frames, no Malformed" || ko "pcap: Malformed or empty ($n frames)"
    c=$(tshark -r "$tmp/s.pcap" -Y "coap && oscore" 2>/dev/null | wc -l)
    [ "$c" -gt 0 ] && ok "pcap: $c CoAP/OSCORE join messages visible" ||
        ko "pcap: no CoAP/OSCORE visible"
else
    echo "skip pcap checks (no tshark)"
fi
grep -q "</svg>" "$tmp/s.svg" && ok "plot: SVG written" || ko "plot: no SVG"

# 5. argument errors
for a in "--nodes 1" "--nodes x" "--topology ring" "--bogus" "--duration" "--loss-model 2,1"; do
    # shellcheck disable=SC2086
    "$COJP" sim $a >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && ok "bad argument '$a': exit 2, one line" ||
        ko "bad argument '$a': exit $rc"
done
"$COJP" sim --help >/dev/null && ok "--help" || ko "--help"

echo "sim: $pass passed, $fail failed"
[ $fail -eq 0 ]
