#!/usr/bin/env bash
# Integration test of the cojp daemons and clients: real processes over
# loopback UDP (IPv6), an SQLite registry in a temporary folder.
#
#   tests/integration/cli.sh [path/to/cojp]
#
# Provisions pledges, runs `jrc serve` and `proxy` (a JP that joins
# first) in the background, joins 5 one-shot pledges (--json), rekeys,
# evicts, readmits and evicts again with 3 `pledge --serve` nodes,
# restarts the JRC, runs `cojp demo` (10 and 1,000 pledges), relays
# through a JP for a JRC of another implementation that answers in CON
# messages (wire.py conjrc), checks every bad-argument case (exit 2,
# one line on stderr) and clean SIGTERM shutdowns.  Helpers come from
# lib.sh.  Every wait is bounded.  Last line:
#   integration: N passed, N failed
set -u
COJP=${1:-${COJP:-build/cojp}}
COJP=$(cd "$(dirname "$COJP")" && pwd)/$(basename "$COJP")
T=$(mktemp -d /tmp/cojp-it-XXXXXX)
DB=$T/jrc.db
# a well-formed PSK for the bad-argument cases; pledges get psk_of ID
PSK=000102030405060708090a0b0c0d0e0f
NAME=integration
pids=()
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init

# start_daemon LOG READY_REGEX -- ARGS (with PORT in ARGS replaced by a
# random high port, retried on EADDRINUSE).  Sets daemon_pid and port.
start_daemon() {
    local log=$1 ready=$2; shift 3
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        local args=("${@//PORT/$port}")
        "$COJP" "${args[@]}" 2>"$log" &
        daemon_pid=$!
        local end=$((SECONDS + 10))
        while [ $SECONDS -lt $end ]; do
            grep -qE "$ready" "$log" 2>/dev/null && { pids+=("$daemon_pid"); return 0; }
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        wait "$daemon_pid" 2>/dev/null
        grep -q "Address already in use" "$log" || return 1
    done
    return 1
}

echo "=== provisioning"
ids=()
for i in 1 2 3 4 5; do ids+=("020000000000000$i"); done
for id in "${ids[@]}"; do
    "$COJP" jrc add --db "$DB" --pledge "$id" --psk "$(psk_of "$id")" || bad "jrc add $id"
done
check "jrc add of 5 pledges" test "$("$COJP" jrc list --db "$DB" | grep -c '^0200')" -eq 5
"$COJP" jrc add --db "$DB" --pledge "${ids[0]}" --psk "$(psk_of "${ids[0]}")" 2>"$T/dup.err"
check "jrc add of a duplicate exits 1" test $? -eq 1
check "... saying it is already provisioned" grep -q "pledge ${ids[0]} is already provisioned" "$T/dup.err"
printf '# serving nodes\n0300000000000001,%s\n0300000000000002,%s,node\n0300000000000003,%s\n' \
    "$(psk_of 0300000000000001)" "$(psk_of 0300000000000002)" "$(psk_of 0300000000000003)" \
    >"$T/nodes.csv"
check "jrc import of 3 nodes" "$COJP" jrc import --db "$DB" "$T/nodes.csv"
"$COJP" jrc add --db "$DB" --pledge 0a00000000000001 --psk "$(psk_of 0a00000000000001)" ||
    bad "jrc add of the JP"

echo "=== a PSK of its own per pledge (RFC 9031 section 3)"
# pledges_of DB: every pledge row, PSKs included, to see that a refused
# command changed none
pledges_of() {
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print([tuple(r) for r in c.execute('SELECT * FROM pledges ORDER BY seq')])" "$1"
}
# one_line FILE REGEX: FILE is one line matching REGEX, without the PSK $held
one_line() {
    test "$(wc -l <"$1")" -eq 1 && grep -qE "$2" "$1" && ! grep -qi "$held" "$1"
}
before=$(pledges_of "$DB")
held=$(psk_of "${ids[1]}")
"$COJP" jrc add --db "$DB" --pledge 0200000000000009 --psk "$held" 2>"$T/reuse.err"
check "jrc add of a PSK another pledge holds exits 1" test $? -eq 1
check "... with one line naming the pledge and the problem, not the PSK" one_line "$T/reuse.err" \
    '^cojp jrc add: pledge 0200000000000009 not provisioned: its PSK is held by another pledge'
check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"
printf '0400000000000001,%s\n# the next pledge has the PSK of %s\n0400000000000002,%s\n' \
    "$(psk_of 0400000000000001)" "${ids[1]}" "$held" >"$T/reuse.csv"
"$COJP" jrc import --db "$DB" "$T/reuse.csv" >"$T/reuse.out" 2>"$T/reuse.err"
check "jrc import of a PSK held in the registry exits 1" test $? -eq 1
check "... with one line naming the line, not the PSK" one_line "$T/reuse.err" \
    "^cojp jrc import: $T/reuse.csv line 3: PSK already held by another pledge"
check "... importing none of the file" test "$(pledges_of "$DB")" = "$before"
check "... and printing nothing" test ! -s "$T/reuse.out"
held=$(psk_of 0400000000000001)
printf '0400000000000001,%s\n0400000000000002,%s\n' "$held" "$held" >"$T/twice.csv"
"$COJP" jrc import --db "$DB" - <"$T/twice.csv" >"$T/reuse.out" 2>"$T/reuse.err"
check "jrc import of one PSK on two lines exits 1" test $? -eq 1
check "... naming the second line" one_line "$T/reuse.err" '^cojp jrc import: - line 2: PSK already held by another pledge'
check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"

echo "=== a registry from before PSKs were unique"
# Schema 4 as an older cojp left it, where two pledges share a PSK: every
# command refuses it with the pledges named and leaves the file as it
# was; removed and provisioned again with a PSK of its own (the
# operator's fix in docs/operator.md), the registry is taken.
ODB=$T/old.db
for id in 0e00000000000001 0e00000000000002 0e00000000000003; do
    "$COJP" jrc add --db "$ODB" --pledge $id --psk "$(psk_of $id)" || bad "jrc add $id"
done
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript('DROP TRIGGER updates_retention; ALTER TABLE registry_state DROP COLUMN keep_outcomes; CREATE INDEX pledges_lease_until ON pledges(lease_until) WHERE lease_until IS NOT NULL; CREATE INDEX pledges_joined ON pledges(seq) WHERE joined = 1; DROP TABLE retired_psks; DROP INDEX pledges_psk; ALTER TABLE pledges DROP COLUMN must_recover; ALTER TABLE network DROP COLUMN campaign_owner; ALTER TABLE network DROP COLUMN campaign_alive; DELETE FROM schema_version WHERE version >= 5; UPDATE pledges SET psk = (SELECT psk FROM pledges WHERE seq = 1) WHERE seq = 3'); c.close()" "$ODB"
cp "$ODB" "$T/old.copy"
held=$(psk_of 0e00000000000001)
for c in list add; do
    if [ $c = list ]; then
        "$COJP" jrc list --db "$ODB" >/dev/null 2>"$T/old.err"
    else
        "$COJP" jrc add --db "$ODB" --pledge 0e00000000000004 --psk "$(psk_of 0e00000000000004)" 2>"$T/old.err"
    fi
    check "jrc $c of it exits 1" test $? -eq 1
    check "... with one line naming the pledges that share a PSK" one_line "$T/old.err" \
        "^cojp jrc $c: '$ODB' cannot be upgraded: pledges sharing a PSK: \\{0e00000000000001, 0e00000000000003\\}"
    check "... and the file as it was" cmp -s "$ODB" "$T/old.copy"
done
# jrc psk / jrc remove repair it, one change at a time (docs/operator.md)
held=$(psk_of 0e00000000000002)
"$COJP" jrc psk --db "$ODB" --pledge 0e00000000000003 --psk "$held" >"$T/old.out" 2>"$T/old.err"
check "jrc psk of it with a PSK held exits 1" test $? -eq 1
check "... with one line, not the PSK" one_line "$T/old.err" \
    '^cojp jrc psk: pledge 0e00000000000003 keeps its PSK: the new one is its own, another pledge'"'"'s or one used before'
check "... and the file as it was" cmp -s "$ODB" "$T/old.copy"
"$COJP" jrc remove --db "$ODB" --pledge 0e0000000000000f >/dev/null 2>"$T/old.err"
check "jrc remove of an unknown pledge of it exits 1" test $? -eq 1
check "... with one line naming the pledge" one_line "$T/old.err" \
    '^cojp jrc remove: pledge 0e0000000000000f is not provisioned$'
check "... and the file as it was" cmp -s "$ODB" "$T/old.copy"
"$COJP" jrc psk --db "$ODB" --pledge 0e00000000000003 --psk "$(psk_of new-0e00000000000003)" \
    >"$T/old.out" 2>"$T/old.err"
check "jrc psk giving a sharing pledge its own PSK exits 0" test $? -eq 0
check "... says the registry is upgraded" grep -q "^'$ODB' upgraded: no pledges share a PSK any more$" "$T/old.out"
check "... which opens again with its pledges" \
    sh -c "'$COJP' jrc list --db '$ODB' | grep -c '^0e00' | grep -qx 3"
check "... the pledge holding its new PSK" test "$("$COJP" jrc derive --pledge 0e00000000000003 --db "$ODB")" \
    = "$("$COJP" jrc derive --pledge 0e00000000000003 --psk "$(psk_of new-0e00000000000003)")"
# two groups: {11, 13} and {12, 14, 15}; each change is kept, the last
# one completes the upgrade
ODB=$T/old2.db
for n in 1 2 3 4 5; do
    "$COJP" jrc add --db "$ODB" --pledge 0e0000000000001$n --psk "$(psk_of 0e0000000000001$n)" || bad "jrc add 1$n"
done
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript('DROP TRIGGER updates_retention; ALTER TABLE registry_state DROP COLUMN keep_outcomes; CREATE INDEX pledges_lease_until ON pledges(lease_until) WHERE lease_until IS NOT NULL; CREATE INDEX pledges_joined ON pledges(seq) WHERE joined = 1; DROP TABLE retired_psks; DROP INDEX pledges_psk; ALTER TABLE pledges DROP COLUMN must_recover; ALTER TABLE network DROP COLUMN campaign_owner; ALTER TABLE network DROP COLUMN campaign_alive; DELETE FROM schema_version WHERE version >= 5; UPDATE pledges SET psk = (SELECT psk FROM pledges WHERE seq = 1) WHERE seq = 3; UPDATE pledges SET psk = (SELECT psk FROM pledges WHERE seq = 2) WHERE seq IN (4, 5)'); c.close()" "$ODB"
"$COJP" jrc remove --db "$ODB" --pledge 0e00000000000015 >"$T/old.out" 2>"$T/old.err"
check "jrc remove of a sharing pledge exits 0" test $? -eq 0
check "... naming the pledges that still share a PSK" grep -q \
    "^'$ODB' still cannot be upgraded: pledges sharing a PSK: {0e00000000000011, 0e00000000000013}, {0e00000000000012, 0e00000000000014}$" "$T/old.out"
"$COJP" jrc list --db "$ODB" >/dev/null 2>"$T/old.err"
check "... and the registry still refused, without the removed pledge" one_line "$T/old.err" \
    "cannot be upgraded: pledges sharing a PSK: \\{0e00000000000011, 0e00000000000013\\}, \\{0e00000000000012, 0e00000000000014\\} \\(give"
"$COJP" jrc psk --db "$ODB" --pledge 0e00000000000013 --psk "$(psk_of new-0e00000000000013)" >"$T/old.out" 2>&1
check "jrc psk of the next exits 0, one group left" \
    grep -q "still cannot be upgraded: pledges sharing a PSK: {0e00000000000012, 0e00000000000014}$" "$T/old.out"
"$COJP" jrc psk --db "$ODB" --pledge 0e00000000000014 --psk "$(psk_of new-0e00000000000014)" >"$T/old.out" 2>&1
check "jrc psk of the last exits 0 and upgrades" grep -q "upgraded: no pledges share a PSK any more$" "$T/old.out"
check "... the registry opens with 4 pledges" \
    sh -c "'$COJP' jrc list --db '$ODB' | grep -c '^0e00' | grep -qx 4"
"$COJP" jrc add --db "$ODB" --pledge 0e00000000000016 --psk "$(psk_of new-0e00000000000014)" 2>"$T/old.err"
check "... and refuses a PSK a repair gave" one_line "$T/old.err" \
    '^cojp jrc add: pledge 0e00000000000016 not provisioned: its PSK is held by another pledge or was retired'

echo "=== daemons"
if start_daemon "$T/jrc.log" '"event":"start"' -- jrc serve --db "$DB" --listen "[::1]:PORT" \
    --network-id cafe --lease-hours 24 --ack-timeout 300; then
    ok "jrc serve started"
else
    bad "jrc serve did not start"; cat "$T/jrc.log"; echo "integration: $passed passed, $((failed + 1)) failed"; exit 1
fi
jrc_pid=$daemon_pid jrc_port=$port
if start_daemon "$T/proxy.log" '"event":"start"' -- proxy --listen "[::1]:PORT" \
    --jrc "[::1]:$jrc_port" --id 0a00000000000001 --psk "$(psk_of 0a00000000000001)" --network-id cafe \
    --state "$T/jp.state" --log-level debug; then
    ok "proxy started"
else
    bad "proxy did not start"; cat "$T/proxy.log"
fi
proxy_pid=$daemon_pid proxy_port=$port
# coap_ping PORT: an empty CON to [::1]:PORT gets the Reset of its MID
coap_ping() {
    python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(bytes([0x40, 0, 0xbe, 0xef]), ('::1', $1))
d, _ = s.recvfrom(100)
sys.exit(0 if d == bytes([0x70, 0, 0xbe, 0xef]) else 1)"
}
check "jrc serve answers a CoAP ping (empty CON) with its Reset" coap_ping "$jrc_port"
# a second start on the address the JRC holds is refused before it
# touches the registry: the stored settings stay, no new file appears
network_of() { "$COJP" jrc list --db "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["network"])'; }
net_before=$(network_of "$DB")
timeout 10 "$COJP" jrc serve --db "$DB" --listen "[::1]:$jrc_port" --network-id beef --lease-hours 1 \
    --join-rate 5 2>"$T/inuse.err"
check "jrc serve on an address in use exits 1" test $? -eq 1
check "... with one line" sh -c "test \$(wc -l <'$T/inuse.err') -eq 1 && grep -q 'cannot bind' '$T/inuse.err'"
check "... leaving the stored network settings as they were" test "$(network_of "$DB")" = "$net_before"
timeout 10 "$COJP" jrc serve --db "$T/never.db" --listen "[::1]:$jrc_port" 2>/dev/null
check "jrc serve of a new registry on an address in use exits 1" test $? -eq 1
check "... creating no registry" test ! -e "$T/never.db"
"$COJP" jrc address --db "$DB" --pledge 0a00000000000001 --address "[::1]:$proxy_port"
check "the JP joined the JRC directly" wait_for "$T/proxy.log" '"event":"proxy_config"' 20

echo "=== 5 pledges join through the JP"
jp=()
for id in "${ids[@]}"; do
    timeout 60 "$COJP" pledge --id "$id" --psk "$(psk_of "$id")" --proxy "[::1]:$proxy_port" \
        --network-id cafe --state "$T/$id.state" --json --timeout 45 \
        >"$T/$id.json" 2>"$T/$id.err" &
    jp+=($!)
done
for k in 0 1 2 3 4; do
    wait "${jp[$k]}"; rc=$?
    id=${ids[$k]}
    check "pledge $id exits 0" test $rc -eq 0
    check "pledge $id prints one JSON object" test "$(wc -l <"$T/$id.json")" -eq 1
    check "pledge $id JSON is a join result" json "$T/$id.json" \
        "d['joined'] is True and len(d['short_id'])==4 and d['lease_hours']==24 and len(d['keys'])==2 and all(len(k['key'])==32 and isinstance(k['key_id'],int) and isinstance(k['key_usage'],int) for k in d['keys']) and d['jrc_address'] is None and d['join_rate'] is None and d['blacklist']==[] and list(d)==['joined','short_id','lease_hours','keys','jrc_address','join_rate','blacklist']"
done
check "proxy --log-level debug: a forwarded record per Join Request" \
    test "$(grep -c '"level":"debug","event":"forwarded"' "$T/proxy.log")" -ge 5
"$COJP" jrc list --db "$DB" --json >"$T/list1.json"
check "jrc list --json: the 5 pledges joined with unique short ids" json "$T/list1.json" \
    "len([p for p in d['pledges'] if p['pledge'].startswith('0200') and p['joined']])==5 and len(set(p['short_id'] for p in d['pledges'] if p['joined']))==len([p for p in d['pledges'] if p['joined']])"
sids=$(cat "$T"/0200*.json | python3 -c "import sys,json; print(len(set(json.loads(l)['short_id'] for l in sys.stdin)))")
check "the pledges' own short ids are unique" test "$sids" -eq 5

echo "=== recommissioning while the JRC serves (RFC 9031 section 3)"
# ids[4] joined above and its context is cached by the serving JRC.  It
# gets a new PSK: the old one is refused from then on, the new one joins
# with the short id the pledge leased.
rp=${ids[4]}
oldpsk=$(psk_of "$rp") newpsk=$(psk_of "new-$rp")
sid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['short_id'])" "$T/$rp.json")
before=$(pledges_of "$DB")
for bad_psk in "$oldpsk" "$(psk_of "${ids[3]}")"; do
    held=$bad_psk
    "$COJP" jrc psk --db "$DB" --pledge "$rp" --psk "$bad_psk" >"$T/psk.out" 2>"$T/psk.err"
    check "jrc psk with a PSK a pledge holds exits 1" test $? -eq 1
    check "... with one line naming the pledge, not the PSK" one_line "$T/psk.err" \
        "^cojp jrc psk: pledge $rp keeps its PSK: the new one is its own, another pledge's or one used before"
    check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"
done
held=$newpsk
"$COJP" jrc psk --db "$DB" --pledge 02000000000000ff --psk "$newpsk" >"$T/psk.out" 2>"$T/psk.err"
check "jrc psk of an unknown pledge exits 1" test $? -eq 1
check "... with one line naming it" one_line "$T/psk.err" '^cojp jrc psk: pledge 02000000000000ff is not provisioned$'
check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"
"$COJP" jrc psk --db "$T/none.db" --pledge "$rp" --psk "$newpsk" >"$T/psk.out" 2>"$T/psk.err"
check "jrc psk on a missing registry exits 1, one line, no file made" \
    sh -c "test \$(wc -l <'$T/psk.err') -eq 1 && test ! -e '$T/none.db'"
printf '%s\n' "$newpsk" >"$T/new.hex"
"$COJP" jrc psk --db "$DB" --pledge "$rp" --psk "@$T/new.hex" >"$T/psk.out" 2>"$T/psk.err"
check "jrc psk of a joined pledge while the JRC serves exits 0, silent" \
    sh -c "test \$? -eq 0 && test ! -s '$T/psk.out' && test ! -s '$T/psk.err'"
"$COJP" jrc list --db "$DB" --json >"$T/listpsk.json"
check "jrc list: no longer joined, its lease and short id kept" json "$T/listpsk.json" \
    "[(p['joined'],p['short_id'],p['lease_live']) for p in d['pledges'] if p['pledge']=='$rp']==[(False,'$sid',True)]"
timeout 30 "$COJP" pledge --id "$rp" --psk "$oldpsk" --proxy "[::1]:$proxy_port" --network-id cafe \
    --state "$T/$rp.state" --timeout 4 >"$T/old.json" 2>"$T/old.err"
check "the old PSK (with its state file) no longer joins" test $? -eq 1
timeout 60 "$COJP" pledge --id "$rp" --psk "$newpsk" --proxy "[::1]:$proxy_port" --network-id cafe \
    --state "$T/$rp.new.state" --json --timeout 45 >"$T/new.json" 2>"$T/new.err"
check "the new PSK joins" json "$T/new.json" "d['joined'] is True"
check "... with the short id the pledge leased" json "$T/new.json" "d['short_id']=='$sid'"
timeout 30 "$COJP" pledge --id "$rp" --psk "$oldpsk" --proxy "[::1]:$proxy_port" --network-id cafe \
    --state "$T/$rp.state" --timeout 4 >"$T/old.json" 2>"$T/old.err"
check "the old PSK still does not join" test $? -eq 1
check "the JRC admitted $rp once after the change" \
    test "$(grep -c "\"event\":\"joined\",\"pledge\":\"$rp\"" "$T/jrc.log")" -eq 2
check "no command or daemon printed the new PSK" \
    sh -c "! grep -rq '$newpsk' '$T/psk.out' '$T/psk.err' '$T/jrc.log' '$T/proxy.log' '$T/new.err' '$T/listpsk.json'"
# removal: refused while the lease lives (the device may use its id)
before=$(pledges_of "$DB")
"$COJP" jrc remove --db "$DB" --pledge "$rp" >"$T/rm.out" 2>"$T/rm.err"
check "jrc remove of a pledge with a live lease exits 1" test $? -eq 1
check "... with one line naming its short id and pointing to jrc evict" one_line "$T/rm.err" \
    "^cojp jrc remove: pledge $rp holds short id $sid until .*: evict it first \('cojp jrc evict'\)"
check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"
"$COJP" jrc remove --db "$DB" --pledge 0f0f >"$T/rm.out" 2>"$T/rm.err"
check "jrc remove of an unknown pledge exits 1" test $? -eq 1
check "... with one line naming it" one_line "$T/rm.err" '^cojp jrc remove: pledge 0f0f is not provisioned$'
check "... and the registry as it was" test "$(pledges_of "$DB")" = "$before"
# a pledge that never joined goes at once; its PSK never comes back
gone=0600000000000001
"$COJP" jrc add --db "$DB" --pledge $gone --psk "$(psk_of $gone)" || bad "jrc add $gone"
check "jrc remove of a pledge that never joined exits 0" "$COJP" jrc remove --db "$DB" --pledge $gone
check "... and it is gone" sh -c "! '$COJP' jrc list --db '$DB' | grep -q '^$gone'"
held=$(psk_of $gone)
"$COJP" jrc add --db "$DB" --pledge $gone --psk "$held" 2>"$T/rm.err"
check "... provisioned again with its old PSK: refused" one_line "$T/rm.err" \
    "^cojp jrc add: pledge $gone not provisioned: its PSK is held by another pledge or was retired"
check "... with a new PSK: taken" "$COJP" jrc add --db "$DB" --pledge $gone --psk "$(psk_of "new-$gone")"

echo "=== a pledge given its derived context instead of the PSK (RFC 9031 Appendix B)"
lw=0500000000000001
"$COJP" jrc add --db "$DB" --pledge $lw --psk "$(psk_of $lw)" || bad "jrc add $lw"
okm=$("$COJP" jrc derive --pledge $lw --psk "$(psk_of $lw)")
check "jrc derive prints 90 hex digits" sh -c "echo '$okm' | grep -qE '^[0-9a-f]{90}$'"
check "jrc derive --db reads the PSK from the registry" \
    test "$("$COJP" jrc derive --pledge $lw --db "$DB")" = "$okm"
check "jrc derive --db: an unknown pledge is an error" \
    sh -c "! '$COJP' jrc derive --pledge 05ffffffffffffff --db '$DB' 2>/dev/null"
"$COJP" jrc derive --pledge $lw --psk "$(psk_of $lw)" --json >"$T/derive.json"
check "jrc derive --json: keys and IV make up the same context" json "$T/derive.json" \
    "d['sender_key']+d['recipient_key']+d['common_iv']==d['okm']=='$okm' and d['pledge']=='$lw'"
timeout 60 "$COJP" pledge --id $lw --okm "$okm" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/$lw.state" --json --timeout 45 >"$T/$lw.json" 2>"$T/$lw.err"
check "the pledge joins with --okm" json "$T/$lw.json" "d['joined'] is True and len(d['keys'])==2"
"$COJP" jrc list --db "$DB" --json >"$T/listlw.json"
check "jrc list: it joined with the short id it printed" json "$T/listlw.json" \
    "[p['short_id'] for p in d['pledges'] if p['pledge']=='$lw' and p['joined']]==[json.load(open('$T/$lw.json'))['short_id']]"

echo "=== rekey with 3 serving nodes"
nodes=(0300000000000001 0300000000000002 0300000000000003)
node_pids=()
# start_node ID LOG: 'cojp pledge --serve' for pledge ID with its state
# file, on a random port (another one when that was taken), logging to
# LOG; sets npid and nport.
start_node() {
    for attempt in 1 2 3 4 5; do
        nport=$((20000 + RANDOM % 40000))
        "$COJP" pledge --id "$1" --psk "$(psk_of "$1")" --proxy "[::1]:$proxy_port" --network-id cafe \
            --state "$T/$1.state" --serve "[::1]:$nport" --timeout 45 2>"$2" &
        npid=$!
        sleep 0.2
        kill -0 $npid 2>/dev/null && break
        grep -q "Address already in use" "$2" || break
    done
}
for n in "${nodes[@]}"; do
    start_node "$n" "$T/$n.log"
    pids+=($npid); node_pids+=($npid)
    "$COJP" jrc address --db "$DB" --pledge "$n" --address "[::1]:$nport" || bad "jrc address $n"
done
for n in "${nodes[@]}"; do
    check "serving node $n joined" wait_for "$T/$n.log" '"event":"joined"' 30
done
check "the proxy answers a CoAP ping" coap_ping "$proxy_port"
check "a serving node answers a CoAP ping" coap_ping "$nport"
check "jrc rekey queues" "$COJP" jrc rekey --db "$DB"
newid=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(max(d['network']['key_ids'])+1)" "$T/list1.json")
for n in "${nodes[@]}"; do
    check "node $n switched to key $newid" wait_for "$T/$n.log" "\"event\":\"keys_switched\".*\"key_${newid}_fp\"" 20
done
keys=$(for n in "${nodes[@]}"; do grep '"keys_switched"' "$T/$n.log" | head -1 | sed -E "s/.*\"key_${newid}_fp\":\"([0-9a-f]{16})\".*/\1/"; done | sort -u | wc -l)
check "all 3 nodes report the same new key (fingerprint)" test "$keys" -eq 1
k2=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([k['key'] for k in d['keys'] if k['key_usage']==12][0])" "$T/${ids[0]}.json")
check "the log names keys by fingerprint, never by value" \
    sh -c "! grep -q '$k2' '$T/${nodes[0]}.log' '$T/${nodes[1]}.log' '$T/${nodes[2]}.log' '$T/proxy.log'"
check "the JRC finished the campaign" wait_for "$T/jrc.log" '"event":"campaign_done"' 20
"$COJP" jrc list --db "$DB" --json >"$T/list2.json"
check "jrc list shows the 3 nodes acknowledged" json "$T/list2.json" \
    "len([p for p in d['pledges'] if p['pledge'].startswith('0300') and p['last_outcome']=='acknowledged' and p['last_campaign']==1])==3 and $newid in d['network']['key_ids'] and d['network']['next_campaign']==2"
check "jrc list shows the address-less pledges not reached" json "$T/list2.json" \
    "len([p for p in d['pledges'] if p['pledge'].startswith('0200') and p['last_outcome']=='not reached'])==5"
check "the JP itself acknowledged the rekey" json "$T/list2.json" \
    "[p['last_outcome'] for p in d['pledges'] if p['pledge']=='0a00000000000001']==['acknowledged']"

echo "=== evict"
check "jrc evict queues" "$COJP" jrc evict --db "$DB" --pledge "${nodes[2]}"
"$COJP" jrc evict --db "$DB" --pledge 0f0f 2>"$T/ev.err"
check "jrc evict of an unknown pledge exits 1" test $? -eq 1
check "... naming it" grep -qx "cojp jrc evict: pledge 0f0f is not provisioned" "$T/ev.err"
check "the evicted node loses its lease" wait_for "$T/${nodes[2]}.log" '"event":"lease_expired"' 20
for n in "${nodes[0]}" "${nodes[1]}"; do
    check "node $n got the post-eviction keys" wait_for "$T/$n.log" '"event":"keys_switched".*' 20
    check "node $n applied a blacklist" wait_for "$T/$n.log" '"update_applied".*"blacklist":1' 20
done
check "the JP applied the blacklist" wait_for "$T/proxy.log" '"event":"proxy_config".*"blacklist":1' 20
check "the JRC finished the eviction campaign" wait_for "$T/jrc.log" '"event":"campaign_done","campaign":2' 20
"$COJP" jrc list --db "$DB" --json >"$T/list3.json"
check "jrc list shows the eviction" json "$T/list3.json" \
    "[(p['evicted'],p['joined']) for p in d['pledges'] if p['pledge']=='${nodes[2]}']==[(True,False)] and d['network']['next_campaign']==3"

echo "=== readmit"
# wait_after FILE LINE REGEX SECONDS: as wait_for, on the lines after LINE
wait_after() {
    local end=$((SECONDS + $4))
    while [ $SECONDS -lt "$end" ]; do
        tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -qE "$3" && return 0
        sleep 0.1
    done
    return 1
}
queued() {
    python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM pending_ops').fetchone()[0])" "$DB"
}
"$COJP" jrc readmit --db "$DB" --pledge "${nodes[0]}" 2>"$T/ra.err"
check "jrc readmit of a pledge not evicted exits 1" test $? -eq 1
check "... with one line saying so" one_line "$T/ra.err" "^cojp jrc readmit: pledge ${nodes[0]} is not evicted\$"
check "... queueing nothing" test "$(queued)" -eq 0
# one queued all the same (written straight into the registry): the JRC
# drops it, saying so
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO pending_ops (kind, pledge, queued_at) VALUES (3, ?, 1)', (bytes.fromhex(sys.argv[2]),)); c.commit()" \
    "$DB" "${nodes[0]}"
check "the JRC drops a readmit of a pledge it does not blacklist" \
    wait_for "$T/jrc.log" '"event":"readmit_failed","pledge":"'"${nodes[0]}"'","error":"not blacklisted"' 20
check "... and takes it off the queue" test "$(queued)" -eq 0
# The evicted node's process keeps retrying its rejoin, dropped while it
# is blacklisted: a new process joins once readmitted.
kill -TERM "${node_pids[2]}"
wait_exit "${node_pids[2]}" 10
n0=$(wc -l <"$T/${nodes[0]}.log") n1=$(wc -l <"$T/${nodes[1]}.log") np=$(wc -l <"$T/proxy.log")
check "jrc readmit queues" "$COJP" jrc readmit --db "$DB" --pledge "${nodes[2]}"
check "the JRC starts a readmit campaign" \
    wait_for "$T/jrc.log" '"event":"campaign_start","kind":"readmit","campaign":3,"pledge":"'"${nodes[2]}"'"' 20
check "node ${nodes[0]} cleared its blacklist" wait_after "$T/${nodes[0]}.log" "$n0" '"update_applied".*"blacklist":0' 20
check "node ${nodes[1]} cleared its blacklist" wait_after "$T/${nodes[1]}.log" "$n1" '"update_applied".*"blacklist":0' 20
check "the JP cleared its blacklist" wait_after "$T/proxy.log" "$np" '"event":"proxy_config".*"blacklist":0' 20
check "the JRC finished the readmit campaign" wait_for "$T/jrc.log" '"event":"campaign_done","campaign":3' 20
"$COJP" jrc list --db "$DB" --json >"$T/list4.json"
check "jrc list: no longer evicted, the keys kept, campaign 3 acknowledged" json "$T/list4.json" \
    "[p['evicted'] for p in d['pledges'] if p['pledge']=='${nodes[2]}']==[False] and d['network']['next_campaign']==4 and d['network']['key_ids']==json.load(open('$T/list3.json'))['network']['key_ids'] and len([p for p in d['pledges'] if p['pledge'] in ('${nodes[0]}','${nodes[1]}') and p['last_campaign']==3 and p['last_outcome']=='acknowledged'])==2"
start_node "${nodes[2]}" "$T/${nodes[2]}.re.log"
pids+=($npid); node_pids[2]=$npid
"$COJP" jrc address --db "$DB" --pledge "${nodes[2]}" --address "[::1]:$nport" || bad "jrc address ${nodes[2]}"
check "the readmitted node joins again, with its state file" wait_for "$T/${nodes[2]}.re.log" '"event":"joined"' 20
# evicted once more, as the rest expects it
check "it can be evicted again" "$COJP" jrc evict --db "$DB" --pledge "${nodes[2]}"
check "... losing its lease" wait_for "$T/${nodes[2]}.re.log" '"event":"lease_expired"' 20
check "the JRC finished the second eviction" wait_for "$T/jrc.log" '"event":"campaign_done","campaign":4' 20
# the log tells a campaign's outcomes before its end
outcomes_first() {
    python3 - "$1" <<'PY'
import json, sys
done = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "campaign_done":
        done.add(r["campaign"])
    elif r.get("event") == "update_outcome" and r["campaign"] in done:
        sys.exit(1)
sys.exit(0 if done else 1)
PY
}
check "no campaign's update_outcome is logged after its campaign_done" outcomes_first "$T/jrc.log"
"$COJP" jrc list --db "$DB" --json >"$T/list3.json"
check "jrc list shows it evicted again" json "$T/list3.json" \
    "[(p['evicted'],p['joined']) for p in d['pledges'] if p['pledge']=='${nodes[2]}']==[(True,False)] and d['network']['next_campaign']==5"

echo "=== outcome retention (jrc prune)"
# outcomes_of DB: the number of recorded campaign outcomes of each pledge
# that has any, sorted; keep_of DB: the registry's retention setting
outcomes_of() {
    python3 -c "import sqlite3,sys; print(sorted(n for (n,) in sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM updates GROUP BY pledge')))" "$1"
}
keep_of() {
    python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT keep_outcomes FROM registry_state').fetchone()[0])" "$1"
}
check "jrc serve logs the registry's retention (16 outcomes per pledge)" \
    grep -q '"next_campaign":1,"keep_outcomes":16' "$T/jrc.log"
counts=$(outcomes_of "$DB")
surplus=$(python3 -c "import sys; print(sum(n - 1 for n in $counts))")
check "the four campaigns left nodes several outcomes each" test "$surplus" -gt 0
# while the JRC serves the registry
"$COJP" jrc prune --db "$DB" --keep 1 >"$T/prune.out" 2>&1
check "jrc prune --keep 1 removes every outcome but each pledge's latest" \
    grep -qx "each pledge keeps its 1 latest campaign outcome: $surplus older ones removed" "$T/prune.out"
check "... leaving one outcome per pledge" \
    python3 -c "import sys; sys.exit(set($(outcomes_of "$DB")) != {1})"
"$COJP" jrc list --db "$DB" --json >"$T/list3p.json"
check "... what jrc list shows of the pledges unchanged, its retention now 1" python3 -c "
import json, sys
a, b = json.load(open('$T/list3.json')), json.load(open('$T/list3p.json'))
sys.exit(not (a['pledges'] == b['pledges'] and a['keep_outcomes'] == 16 and b['keep_outcomes'] == 1))"
usage_case_keep() { # the setting is left as it was
    timeout 10 "$COJP" jrc prune --db "$DB" --keep "$1" >/dev/null 2>"$T/err"
    local rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(keep_of "$DB")" = 1 ]; then
        ok "jrc prune --keep '$1' refused, the setting unchanged"
    else
        bad "jrc prune --keep '$1' (exit $rc, keep $(keep_of "$DB"))"; cat "$T/err"
    fi
}
for k in 0 -1 1000001 x ""; do usage_case_keep "$k"; done
check "jrc prune --keep all" sh -c "'$COJP' jrc prune --db '$DB' --keep all | grep -qx 'each pledge keeps every campaign outcome: none removed'"
check "... which jrc list shows" sh -c "'$COJP' jrc list --db '$DB' | grep -qx 'campaign outcomes kept per pledge: all' &&
    '$COJP' jrc list --db '$DB' --json | grep -q '\"keep_outcomes\":null,\"pledges\":'"
check "jrc prune --keep 16 (back to the default)" sh -c "'$COJP' jrc prune --db '$DB' --keep 16 | grep -qx 'each pledge keeps its 16 latest campaign outcomes: 0 older ones removed'"
"$COJP" jrc prune --db "$T/none.db" 2>"$T/err"
check "jrc prune of a missing registry exits 1 with one line" \
    sh -c "[ $? -eq 1 ] && [ \$(wc -l <'$T/err') -eq 1 ] && [ ! -e '$T/none.db' ]"

echo "=== shutdown and restart"
kill -TERM "$jrc_pid"
wait_exit "$jrc_pid" 10
check "jrc serve exits 0 on SIGTERM" test "$exit_status" -eq 0
check "jrc serve logs its counters last" sh -c "tail -1 '$T/jrc.log' | grep -q '\"event\":\"shutdown\".*\"joins\":'"
if start_daemon "$T/jrc2.log" '"event":"start"' -- jrc serve --db "$DB" --listen "[::1]:$jrc_port" \
    --ack-timeout 300; then
    ok "jrc serve restarted on the same port"
    jrc_pid=$daemon_pid
else
    bad "jrc serve restart"; cat "$T/jrc2.log"
fi
kids=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(','.join(map(str,d['network']['key_ids'])))" "$T/list3.json")
check "the restarted JRC keeps keys and campaign numbers" \
    grep -qE "\"k1_id\":${kids%,*},\"k2_id\":${kids#*,},\"blacklist\":1,\"next_campaign\":5" "$T/jrc2.log"
check "the evicted node, its lease ended, can be removed" "$COJP" jrc remove --db "$DB" --pledge "${nodes[2]}"
check "... and is gone from the registry" sh -c "! '$COJP' jrc list --db '$DB' | grep -q '^${nodes[2]}'"
timeout 60 "$COJP" pledge --id "${ids[0]}" --psk "$(psk_of "${ids[0]}")" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/${ids[0]}.state" --json --timeout 45 >"$T/rejoin.json" 2>"$T/rejoin.err"
check "a pledge rejoins after the restart with its state file" json "$T/rejoin.json" "d['joined'] is True"
check "the rejoined pledge gets the current key set" json "$T/rejoin.json" \
    "sorted(k['key_id'] for k in d['keys'])==[$kids]"
echo "=== restore from a backup (jrc recover)"
# A backup taken while the JRC serves, a pledge admitted after it, the
# backup restored: the restored OSCORE state is older than the pledges'.
# jrc recover marks every pledge; each one's next join re-establishes its
# context (a 4.01 with R2, RFC 9031 section 8.3.3) and takes a short id
# the restored file did not know to be free of.
late=0700000000000001 # provisioned before the backup, joins after it
"$COJP" jrc add --db "$DB" --pledge "$late" --psk "$(psk_of "$late")" || bad "jrc add $late"
python3 -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$DB" "$T/backup.db" || bad "backup of the registry"
timeout 60 "$COJP" pledge --id "$late" --psk "$(psk_of "$late")" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/$late.state" --json --timeout 45 >"$T/late.json" 2>"$T/late.err"
check "a pledge joins after the backup" json "$T/late.json" "d['joined'] is True"
late_short=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['short_id'])" "$T/late.json")
kill -TERM "$jrc_pid"
wait_exit "$jrc_pid" 10
rm -f "$DB-wal" "$DB-shm"
cp "$T/backup.db" "$DB"
"$COJP" jrc recover --db "$DB" --skip-short-ids 70000 2>"$T/rec.err"
check "jrc recover with too many ids to skip exits 2" test $? -eq 2
check "... with one line" one_line "$T/rec.err" '^cojp jrc recover: --skip-short-ids must be 0\.\.65533$'
check "... marking nothing" sh -c "! '$COJP' jrc list --db '$DB' | grep -q 'must recover'"
npl=$("$COJP" jrc list --db "$DB" | grep -c '^0[0-9a-f]')
"$COJP" jrc list --db "$DB" --json >"$T/restored.json"
"$COJP" jrc recover --db "$DB" >"$T/rec.out" 2>"$T/rec.err"
check "jrc recover exits 0" test $? -eq 0
check "... saying how many pledges it marked" grep -qE "^$npl pledges marked: each re-establishes its OSCORE context" "$T/rec.out"
"$COJP" jrc list --db "$DB" --json >"$T/rec.json"
check "jrc list shows every pledge marked" json "$T/rec.json" \
    "len(d['pledges'])==$npl and all(p['must_recover'] for p in d['pledges'])"
check "... and fresh network keys, their ids 16 further on" json "$T/rec.json" \
    "d['network']['key_ids']==[(k+15)%254+1 for k in json.load(open('$T/restored.json'))['network']['key_ids']]"
check "... which jrc recover printed" grep -qE "fresh network keys, key ids $(python3 -c "import json,sys; print(', '.join(map(str, json.load(open(sys.argv[1]))['network']['key_ids'])))" "$T/rec.json");" "$T/rec.out"
if start_daemon "$T/jrc3.log" '"event":"start"' -- jrc serve --db "$DB" --listen "[::1]:$jrc_port" \
    --ack-timeout 300; then
    jrc_pid=$daemon_pid
else
    bad "jrc serve on the restored registry"; cat "$T/jrc3.log"
fi
timeout 60 "$COJP" pledge --id "$late" --psk "$(psk_of "$late")" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/$late.state" --json --timeout 45 >"$T/late2.json" 2>"$T/late2.err"
check "the late pledge joins again" json "$T/late2.json" "d['joined'] is True"
check "... through a recovery (RFC 9031 section 8.3.3)" grep -q '"event":"join_recovery"' "$T/late2.err"
check "... which the JRC logs" grep -q '"event":"recovery","pledge":"'"$late"'"' "$T/jrc3.log"
check "... with a short id other than the one it got after the backup" \
    json "$T/late2.json" "d['short_id']!='$late_short'"
check "... and the fresh keys" json "$T/late2.json" \
    "sorted(k['key_id'] for k in d['keys'])==json.load(open('$T/rec.json'))['network']['key_ids']"
timeout 60 "$COJP" pledge --id "${ids[0]}" --psk "$(psk_of "${ids[0]}")" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/${ids[0]}.state" --json --timeout 45 >"$T/early.json" 2>"$T/early.err"
check "a pledge admitted before the backup recovers too" \
    sh -c "grep -q '\"joined\": *true' '$T/early.json' && grep -q '\"event\":\"join_recovery\"' '$T/early.err'"
nrec=$(grep -c '"event":"recovery"' "$T/jrc3.log")
timeout 60 "$COJP" pledge --id "$late" --psk "$(psk_of "$late")" --proxy "[::1]:$proxy_port" \
    --network-id cafe --state "$T/$late.state" --json --timeout 45 >"$T/late3.json" 2>"$T/late3.err"
check "once recovered, a pledge joins as before" \
    sh -c "grep -q '\"joined\": *true' '$T/late3.json' && ! grep -q join_recovery '$T/late3.err'"
check "... the JRC recovering nothing more" test "$(grep -c '"event":"recovery"' "$T/jrc3.log")" -eq "$nrec"
"$COJP" jrc list --db "$DB" --json >"$T/rec2.json"
check "jrc list: the two pledges unmarked, the others still marked" json "$T/rec2.json" \
    "sorted(p['pledge'] for p in d['pledges'] if not p['must_recover'])==sorted(['$late','${ids[0]}']) and sum(p['must_recover'] for p in d['pledges'])==$npl-2"

echo "=== counters on SIGUSR1 and every --stats-interval"
kill -USR1 "$jrc_pid" "$proxy_pid" "${node_pids[0]}"
check "jrc serve logs a stats record on SIGUSR1" \
    wait_for "$T/jrc3.log" '"event":"stats","role":"jrc","uptime_s":[0-9]+,"joins":[1-9]' 5
check "proxy logs a stats record on SIGUSR1" \
    wait_for "$T/proxy.log" '"event":"stats","role":"proxy","uptime_s":[0-9]+,"forwarded":[1-9]' 5
check "pledge --serve logs a stats record on SIGUSR1" \
    wait_for "$T/${nodes[0]}.log" '"event":"stats","role":"pledge","uptime_s":[0-9]+,"joined":true' 5
check "... and all three go on serving" kill -0 "$jrc_pid" "$proxy_pid" "${node_pids[0]}"
# stats_count LOG N: at least N stats records in LOG within 5 s
stats_count() {
    for _ in $(seq 50); do
        [ "$(grep -c '"event":"stats"' "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
if start_daemon "$T/proxy_st.log" '"event":"start"' -- proxy --listen "[::1]:PORT" \
    --jrc "[::1]:$jrc_port" --stats-interval 1; then
    check "proxy --stats-interval 1 logs its counters each second" stats_count "$T/proxy_st.log" 3
    check "... and ends with its shutdown record" stop_daemon "$daemon_pid"
    check "... the last line" sh -c "tail -1 '$T/proxy_st.log' | grep -q '\"event\":\"shutdown\",\"role\":\"proxy\",\"signal\":15,\"uptime_s\"'"
else
    bad "proxy --stats-interval 1"; cat "$T/proxy_st.log"
fi

for p in "$proxy_pid" "${node_pids[0]}"; do kill -TERM "$p"; done
wait_exit "$proxy_pid" 10
check "proxy exits 0 on SIGTERM" test "$exit_status" -eq 0
check "proxy logs its drop counters last" sh -c "tail -1 '$T/proxy.log' | grep -q '\"event\":\"shutdown\".*\"dropped_blacklist\":'"
wait_exit "${node_pids[0]}" 10
check "pledge --serve exits 0 on SIGTERM" test "$exit_status" -eq 0
check "pledge --serve logs shutdown last" sh -c "tail -1 '$T/${nodes[0]}.log' | grep -q '\"event\":\"shutdown\"'"

echo "=== bad arguments: exit 2, one line on stderr"
usage_case() { # usage_case DESCRIPTION ARGS...
    local d=$1; shift
    timeout 10 "$COJP" "$@" >/dev/null 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ]; then ok "$d"; else bad "$d (exit $rc, $lines lines)"; cat "$T/err"; fi
}
usage_case "no command" 
usage_case "unknown command" frobnicate
usage_case "unknown jrc command" jrc frobnicate
usage_case "jrc without command" jrc
usage_case "bad hex pledge id" jrc add --db "$T/x.db" --pledge 0g --psk "$PSK"
usage_case "pledge id too long" jrc add --db "$T/x.db" --pledge 000102030405060708 --psk "$PSK"
usage_case "wrong PSK length" jrc add --db "$T/x.db" --pledge 01 --psk 0011
usage_case "bad role" jrc add --db "$T/x.db" --pledge 01 --psk "$PSK" --role king
usage_case "bad provisioning address" jrc add --db "$T/x.db" --pledge 01 --psk "$PSK" --address nowhere
usage_case "jrc add without --db" jrc add --pledge 01 --psk "$PSK"
usage_case "jrc list without --db" jrc list
usage_case "jrc list unknown option" jrc list --db "$DB" --fancy
usage_case "jrc import without file" jrc import --db "$DB"
usage_case "jrc serve bad listen address" jrc serve --db "$T/x.db" --listen "[::1]"
usage_case "jrc serve bad K2" jrc serve --db "$T/x.db" --listen "[::1]:5683" --k2 abcd
usage_case "jrc serve bad key id" jrc serve --db "$T/x.db" --listen "[::1]:5683" --key-id 254
usage_case "jrc serve bad JRC address" jrc serve --db "$T/x.db" --listen "[::1]:5683" --jrc-address 10.0.0.1
usage_case "jrc serve bad join rate" jrc serve --db "$T/x.db" --listen "[::1]:5683" --join-rate -1
usage_case "jrc serve bad log format" jrc serve --db "$T/x.db" --listen "[::1]:5683" --log xml
usage_case "jrc serve --slots with a blank before the number" jrc serve --db "$T/x.db" --listen "[::1]:5683" --slots " 5"
usage_case "jrc serve bad log level" jrc serve --db "$T/x.db" --listen "[::1]:5683" --log-level loud
usage_case "jrc serve node prefix not a /64" jrc serve --db "$T/x.db" --listen "[::1]:5683" --node-prefix fd00:1::/48
usage_case "jrc serve node prefix with bits past 64" jrc serve --db "$T/x.db" --listen "[::1]:5683" --node-prefix fd00:1::1/64
usage_case "jrc serve --node-port without --node-prefix" jrc serve --db "$T/x.db" --listen "[::1]:5683" --node-port 6000
usage_case "jrc serve --node-port at its default, without --node-prefix" jrc serve --db "$T/x.db" --listen "[::1]:5683" --node-port 5683
usage_case "jrc serve node prefix not an address" jrc serve --db "$T/x.db" --listen "[::1]:5683" --node-prefix fd00:zz::/64
usage_case "jrc serve negative stats interval" jrc serve --db "$T/x.db" --listen "[::1]:5683" --stats-interval -1
usage_case "proxy stats interval over a week" proxy --listen "[::1]:5683" --jrc "[::1]:5684" --stats-interval 604801
usage_case "pledge stats interval not a number" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --stats-interval 1h
usage_case "proxy bad log level" proxy --listen "[::1]:5683" --jrc "[::1]:5684" --log-level 3
usage_case "pledge bad log level" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --log-level ""
usage_case "jrc rekey bad K2" jrc rekey --db "$DB" --k2 00
usage_case "jrc evict without pledge" jrc evict --db "$DB"
usage_case "jrc readmit without pledge" jrc readmit --db "$DB"
usage_case "jrc readmit without --db" jrc readmit --pledge "${ids[0]}"
usage_case "jrc recover without --db" jrc recover
usage_case "jrc recover with a bad --skip-short-ids" jrc recover --db "$DB" --skip-short-ids x
usage_case "jrc recover with --skip-key-ids 0" jrc recover --db "$DB" --skip-key-ids 0
before=$(pledges_of "$DB")
usage_case "jrc psk without --psk" jrc psk --db "$DB" --pledge "${ids[0]}"
usage_case "jrc psk without --pledge" jrc psk --db "$DB" --psk "$PSK"
usage_case "jrc psk wrong PSK length" jrc psk --db "$DB" --pledge "${ids[0]}" --psk 0011
usage_case "jrc psk bad hex pledge id" jrc psk --db "$DB" --pledge 0x01 --psk "$PSK"
usage_case "jrc psk stray argument" jrc psk --db "$DB" --pledge "${ids[0]}" --psk "$PSK" extra
usage_case "jrc remove without --pledge" jrc remove --db "$DB"
usage_case "jrc remove without --db" jrc remove --pledge "${ids[0]}"
usage_case "jrc remove unknown option" jrc remove --db "$DB" --pledge "${ids[0]}" --force
check "... none of the jrc psk / remove cases changed the registry" test "$(pledges_of "$DB")" = "$before"
usage_case "proxy bad address" proxy --listen "::1:5683" --jrc "[::1]:5683"
usage_case "proxy port out of range" proxy --listen "[::1]:70000" --jrc "[::1]:5683"
usage_case "proxy mixed families" proxy --listen "127.0.0.1:5683" --jrc "[::1]:5683"
usage_case "proxy bad blacklist" proxy --listen "[::1]:5683" --jrc "[::1]:5684" --blacklist 01,,02
usage_case "proxy --id without --psk" proxy --listen "[::1]:5683" --jrc "[::1]:5684" --id 01
usage_case "proxy bad join rate" proxy --listen "[::1]:5683" --jrc "[::1]:5684" --join-rate x
usage_case "pledge without --proxy" pledge --id 01 --psk "$PSK"
usage_case "pledge with --psk and --okm" pledge --id 01 --psk "$PSK" --okm "$(printf '%090d' 0)" --proxy "[::1]:5683"
usage_case "pledge without --psk or --okm" pledge --id 01 --proxy "[::1]:5683"
usage_case "pledge short okm" pledge --id 01 --okm 0011 --proxy "[::1]:5683"
usage_case "jrc derive without --psk" jrc derive --pledge 01
usage_case "jrc derive bad PSK" jrc derive --pledge 01 --psk 00
usage_case "jrc derive with --psk and --db" jrc derive --pledge 01 --psk "$PSK" --db "$DB"
usage_case "pledge bad hex id" pledge --id xyz --psk "$PSK" --proxy "[::1]:5683"
usage_case "pledge short PSK" pledge --id 01 --psk 00112233 --proxy "[::1]:5683"
usage_case "pledge bad proxy address" pledge --id 01 --psk "$PSK" --proxy "[fe80::1%nosuchif0]:5683"
check "... naming the interface this host does not have" grep -q "no interface 'nosuchif0'" "$T/err"
usage_case "proxy listen address on an interface this host does not have" \
    proxy --listen "[fe80::1%nosuchif0]:5683" --jrc "[::1]:5683"
check "... naming the interface" grep -q "no interface 'nosuchif0'" "$T/err"
usage_case "pledge --role 6lbr without --network-id" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --role 6lbr
usage_case "pledge bad network id" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --network-id 0
usage_case "pledge bad timeout" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --timeout 0
usage_case "pledge unknown option" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" --turbo
usage_case "pledge stray argument" pledge --id 01 --psk "$PSK" --proxy "[::1]:5683" extra

echo "=== runtime failures: exit 1, one line on stderr"
runtime_case() {
    local d=$1; shift
    timeout 20 "$COJP" "$@" >/dev/null 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ]; then ok "$d"; else bad "$d (exit $rc, $lines lines)"; cat "$T/err"; fi
}
runtime_case "jrc list of a missing registry" jrc list --db "$T/none.db"
runtime_case "jrc readmit of an unknown pledge" jrc readmit --db "$DB" --pledge 0f0f
runtime_case "jrc readmit of a missing registry" jrc readmit --db "$T/none.db" --pledge 0f0f
runtime_case "jrc recover of a missing registry" jrc recover --db "$T/none.db"
printf 'this is not a database, just text that is long enough to look odd\n%.0s' 1 2 3 4 5 6 7 8 >"$T/garbage.db"
runtime_case "jrc list of an unreadable registry" jrc list --db "$T/garbage.db"
runtime_case "jrc add into an unreachable folder" jrc add --db "$T/no/such/dir/x.db" --pledge 01 --psk "$PSK"
runtime_case "jrc import of a missing file" jrc import --db "$T/x.db" "$T/none.csv"
mkdir -p "$T/a-folder"
runtime_case "jrc import of a folder" jrc import --db "$DB" "$T/a-folder"
check "... saying it cannot be read" grep -q "cannot read '$T/a-folder'" "$T/err"
timeout 20 "$COJP" jrc import --db "$DB" - <"$T/a-folder" >/dev/null 2>"$T/err"
check "jrc import of stdin that is a folder exits 1" test $? -eq 1
runtime_case "jrc address of an unknown pledge" jrc address --db "$DB" --pledge 0f0f --address none
check "... naming the pledge" grep -q "pledge 0f0f is not provisioned" "$T/err"
runtime_case "pledge with nobody at the proxy address" pledge --id "${ids[1]}" --psk "$(psk_of "${ids[1]}")" \
    --proxy "[::1]:9" --state "$T/lonely.state" --timeout 2
runtime_case "unreachable PostgreSQL registry" jrc list --db postgresql://127.0.0.1:1/cojp
check "... saying why" grep -q 'cannot open the PostgreSQL registry: .*127.0.0.1.*Connection refused' "$T/err"
runtime_case "unreachable PostgreSQL registry, a password in the URI" \
    jrc list --db 'postgresql://jrc:s3cret@127.0.0.1:1/cojp'
check "... saying why without the password" sh -c "grep -q 'Connection refused' '$T/err' && ! grep -q s3cret '$T/err'"
runtime_case "PostgreSQL URI libpq cannot parse" jrc list --db 'postgresql://jrc:s3%zzcret@127.0.0.1:1/cojp'
check "... saying so without quoting it" sh -c "grep -q 'not a valid connection URI' '$T/err' && ! grep -q s3 '$T/err'"
printf '1 40\n1 41\n' >"$T/twice.state"
runtime_case "pledge with a state file holding one counter twice" pledge --id "${ids[1]}" \
    --psk "$(psk_of "${ids[1]}")" --proxy "[::1]:9" --state "$T/twice.state" --timeout 2
check "the refused state file is left as it was" test "$(cat "$T/twice.state")" = "$(printf '1 40\n1 41')"
runtime_case "pledge with a key file that is not there" pledge --id 01 --psk "@$T/no-such.hex" \
    --proxy "[::1]:9"
printf 'not hex\n' >"$T/bad.hex"
usage_case "pledge with a key file that holds no key" pledge --id 01 --psk "@$T/bad.hex" --proxy "[::1]:9"
printf '0011\n' >"$T/short.hex"
usage_case "jrc rekey with a key file of the wrong length" jrc rekey --db "$DB" --k2 "@$T/short.hex"
usage_case "proxy address with a signed port" pledge --id "${ids[1]}" --psk "$PSK" --proxy "[::1]:+9"
usage_case "proxy address with a zone past 32 bits" pledge --id "${ids[1]}" --psk "$PSK" \
    --proxy "[fe80::1%4294967297]:9"

echo "=== cojp demo (the README's main job)"
"$COJP" demo >"$T/demo.out" 2>"$T/demo.err"
check "demo exits 0" test $? -eq 0
check "demo: 10 of 10 pledges joined" grep -q '^10 of 10 pledges joined' "$T/demo.out"
check "demo: 10 rows, 10 distinct short ids" \
    test "$(awk 'NR > 1 && $2 ~ /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/ {print $2}' "$T/demo.out" | sort -u | wc -l)" -eq 10
"$COJP" demo --pledges 1000 --json >"$T/demo.json" 2>"$T/demo1k.err"
check "demo --pledges 1000 exits 0" test $? -eq 0
check "demo --pledges 1000: all joined, unique short ids" json "$T/demo.json" \
    "d['joined'] == 1000 and len({n['short_id'] for n in d['nodes'] if n['joined']}) == 1000"
"$COJP" demo --pledges 3 --db "$T/demo-kept.db" >/dev/null 2>&1
check "demo --db keeps a registry with its pledges" \
    test "$("$COJP" jrc list --db "$T/demo-kept.db" | awk 'NR > 1 && $2 == "yes"' | wc -l)" -eq 3
usage_case "demo --pledges 0" demo --pledges 0
usage_case "demo --pledges abc" demo --pledges abc
usage_case "demo stray argument" demo extra
usage_case "demo --timeout 0" demo --timeout 0
usage_case "demo --pledges without its number" demo --pledges
check "... one line of cojp demo, not the usage" grep -q "^cojp demo: unknown or incomplete option '--pledges'" "$T/err"
usage_case "demo unknown option" demo --bogus
usage_case "demo --pledges with a blank before the number" demo --pledges " 5"
runtime_case "demo --db of an existing file" demo --pledges 1 --db "$T/demo-kept.db"
"$COJP" demo --pledges 2 --timeout 30 >/dev/null 2>&1
check "demo --timeout 30 joins 2 pledges" test $? -eq 0

echo "=== network settings from the command line reach the pledge"
# A registry created by 'jrc serve' takes its first key set from --k2 and
# --key-id (K1 gets the id, K2 the next); --jrc-address and --join-rate
# go into every Configuration (RFC 9031 section 8.4.2); a pledge
# provisioned as 6LBR may ask for that role, one provisioned as a node
# may not (section 8.4.1: 4.00 naming the role as unsupported).
NDB=$T/net.db
K2=f0e1d2c3b4a5968778695a4b3c2d1e0f
# keys may come from files (@FILE), out of the process list
printf '%s\n' "$K2" >"$T/k2.hex"
printf '  %s  \n' "$(psk_of 0b00000000000001)" >"$T/psk.hex"
"$COJP" jrc add --db "$NDB" --pledge 0b00000000000001 --psk "@$T/psk.hex" --role 6lbr || bad "jrc add --role 6lbr"
"$COJP" jrc add --db "$NDB" --pledge 0b00000000000002 --psk "$(psk_of 0b00000000000002)" ||
    bad "jrc add of a node"
if start_daemon "$T/jrcnet.log" 'network_created' -- jrc serve --db "$NDB" --listen "[::1]:PORT" \
    --k2 "@$T/k2.hex" --key-id 7 --jrc-address fd00::1 --join-rate 250 --slots 64 --log text; then
    ok "jrc serve with network settings started"
else
    bad "jrc serve with network settings"; cat "$T/jrcnet.log"
fi
net_pid=$daemon_pid net_port=$port
check "the K2 given as @FILE is not in the daemon's command line" \
    sh -c "tr '\\0' ' ' </proc/$net_pid/cmdline | grep -q 'k2.hex' && ! grep -q '$K2' /proc/$net_pid/cmdline"
check "--log text: the start is one plain line, not JSON" \
    sh -c "grep -q 'network_created' '$T/jrcnet.log' && ! grep -q '^{' '$T/jrcnet.log'"
timeout 30 "$COJP" pledge --id 0b00000000000001 --psk "@$T/psk.hex" --proxy "[::1]:$net_port" --role 6lbr --network-id beef \
    --state "$T/lbr.state" --json --timeout 20 >"$T/lbr.json" 2>"$T/lbr.err"
check "a 6LBR pledge joins (PSK from a file on both sides)" test $? -eq 0
check "its Configuration has K1 id 7, K2 id 8 with the given K2, the JRC address and join rate" \
    json "$T/lbr.json" "sorted(k['key_id'] for k in d['keys'])==[7,8] and [k['key'] for k in d['keys'] if k['key_id']==8]==['$K2'] and d['jrc_address']=='fd000000000000000000000000000001' and d['join_rate']==250"
timeout 30 "$COJP" pledge --id 0b00000000000002 --psk "$(psk_of 0b00000000000002)" --proxy "[::1]:$net_port" --role 6lbr --network-id beef \
    --state "$T/node6.state" --timeout 5 >/dev/null 2>"$T/node6.err"
check "a pledge provisioned as a node asking for 6LBR does not join (exit 1)" test $? -eq 1
check "the JRC logs the refused join of that pledge" \
    grep -q 'join_rejected.*0b00000000000002' "$T/jrcnet.log"
"$COJP" jrc list --db "$NDB" >"$T/netlist.txt"
check "jrc list names the key ids in use" grep -q '^network: key ids 7 8, next campaign 1$' "$T/netlist.txt"
check "jrc list: the 6LBR is joined, the node is not" \
    sh -c "grep -qE '^0b00000000000001 +yes +6lbr' '$T/netlist.txt' && grep -qE '^0b00000000000002 +no ' '$T/netlist.txt'"
kill -TERM "$net_pid"; wait_exit "$net_pid" 10
if start_daemon "$T/jrcnet2.log" '"event":"start"' -- jrc serve --db "$NDB" --listen "[::1]:$net_port" \
    --k2 000102030405060708090a0b0c0d0e0f --key-id 20 --network-id beef --log-level warn; then
    ok "jrc serve restarted with other key options"
else
    bad "jrc serve restart with other key options"; cat "$T/jrcnet2.log"
fi
net_pid=$daemon_pid
check "key options on an existing registry are ignored with a warning" \
    grep -q '"event":"key_options_ignored"' "$T/jrcnet2.log"
# a network id given on a later start is kept: a JP asking for none
# is refused at every join attempt, and stops with exit 1 instead of
# relaying nothing for ever
"$COJP" jrc add --db "$NDB" --pledge 0b00000000000003 --psk "$(psk_of 0b00000000000003)" ||
    bad "jrc add of a JP without network id"
timeout 20 "$COJP" proxy --listen "[::1]:$(free_udp_port)" --jrc "[::1]:$net_port" --id 0b00000000000003 \
    --psk "$(psk_of 0b00000000000003)" --state "$T/jpnonet.state" >/dev/null 2>"$T/jpnonet.err"
check "a JP refused at every join attempt exits 1" test $? -eq 1
check "... saying so on one line after join_failed" \
    sh -c "grep -q '\"event\":\"join_failed\"' '$T/jpnonet.err' && test \$(grep -c '^cojp proxy: join failed after every attempt\$' '$T/jpnonet.err') -eq 1"
timeout 30 "$COJP" pledge --id 0b00000000000001 --psk "$(psk_of 0b00000000000001)" --proxy "[::1]:$net_port" --role 6lbr --network-id beef \
    --state "$T/lbr.state" --json --timeout 20 >"$T/lbr2.json" 2>/dev/null
check "the rejoined 6LBR still gets the key set of the registry" \
    json "$T/lbr2.json" "[k['key'] for k in d['keys'] if k['key_id']==8]==['$K2']"
kill -TERM "$net_pid"; wait_exit "$net_pid" 10
check "--log-level warn: no info record but start and shutdown" \
    sh -c "! grep -q '\"level\":\"info\",\"event\":\"joined\"' '$T/jrcnet2.log' && test \$(grep -c '\"event\":\"start\"\\|\"event\":\"shutdown\"' '$T/jrcnet2.log') -eq 2 && tail -1 '$T/jrcnet2.log' | grep -q '\"joins\":1,'"

echo "=== a JP takes the JRC address and join rate from its Configuration"
# RFC 9031 section 8.4.2: a JP joined with --id relays to the JRC address
# of its Configuration (the port stays that of --jrc; an IPv4-mapped
# address means IPv4).  JRC A answers on 127.0.0.1 and names 127.0.0.2 as
# the JRC address; JRC B, on the same registry, answers there.
VDB=$T/v4.db
"$COJP" jrc add --db "$VDB" --pledge 0d00000000000001 --psk "$(psk_of 0d00000000000001)" ||
    bad "jrc add of the v4 JP"
"$COJP" jrc add --db "$VDB" --pledge 0d00000000000002 --psk "$(psk_of 0d00000000000002)" ||
    bad "jrc add of a v4 pledge"
if start_daemon "$T/jrcA.log" '"event":"start"' -- jrc serve --db "$VDB" --listen "127.0.0.1:PORT" \
    --jrc-address ::ffff:127.0.0.2 --join-rate 100000 &&
    { va_pid=$daemon_pid vport=$port; start_daemon "$T/jrcB.log" '"event":"start"' -- jrc serve \
        --db "$VDB" --listen "127.0.0.2:$vport"; }; then
    ok "two JRCs on one registry, 127.0.0.1 and 127.0.0.2"
else
    bad "JRCs on 127.0.0.1 and 127.0.0.2"; cat "$T/jrcA.log" "$T/jrcB.log"
fi
vb_pid=$daemon_pid
if start_daemon "$T/jpv4.log" '"event":"start"' -- proxy --listen "127.0.0.1:PORT" \
    --jrc "127.0.0.1:$vport" --id 0d00000000000001 --psk "$(psk_of 0d00000000000001)" --state "$T/jpv4.state"; then
    ok "IPv4 JP started"
else
    bad "IPv4 JP"; cat "$T/jpv4.log"
fi
vjp_pid=$daemon_pid vjp_port=$port
check "the JP's configuration: JRC 127.0.0.2, join rate 100000" \
    wait_for "$T/jpv4.log" '"event":"proxy_config","jrc":"127.0.0.2:'"$vport"'","join_rate":100000' 20
timeout 30 "$COJP" pledge --id 0d00000000000002 --psk "$(psk_of 0d00000000000002)" --proxy "127.0.0.1:$vjp_port" \
    --state "$T/v4p.state" --json --timeout 20 >"$T/v4p.json" 2>"$T/v4p.err"
check "a pledge joins through that JP" test $? -eq 0
check "its Join Request went to the JRC of the Configuration" \
    sh -c "grep -q '\"event\":\"joined\",\"pledge\":\"0d00000000000002\"' '$T/jrcB.log' && ! grep -q '0d00000000000002' '$T/jrcA.log'"
# A campaign one instance runs changes what every instance hands out: the
# other one follows the key set (and blacklist) stored with it.
NEWK2=0f0e0d0c0b0a09080706050403020100
"$COJP" jrc rekey --db "$VDB" --k2 $NEWK2 >/dev/null || bad "jrc rekey on the shared registry"
followed=0
for _ in $(seq 100); do
    if { grep -q '"event":"campaign_start"' "$T/jrcA.log" && grep -q '"event":"network_followed".*"ok":true' "$T/jrcB.log"; } ||
        { grep -q '"event":"campaign_start"' "$T/jrcB.log" && grep -q '"event":"network_followed".*"ok":true' "$T/jrcA.log"; }; then
        followed=1
        break
    fi
    sleep 0.1
done
check "one JRC ran the rekey, the other took the new key set from the registry" test $followed -eq 1
for v in 3:1 4:2; do
    "$COJP" jrc add --db "$VDB" --pledge 0d0000000000000${v%:*} --psk "$(psk_of 0d0000000000000${v%:*})" ||
        bad "jrc add of 0d0000000000000${v%:*}"
    timeout 30 "$COJP" pledge --id 0d0000000000000${v%:*} --psk "$(psk_of 0d0000000000000${v%:*})" \
        --proxy "127.0.0.${v#*:}:$vport" --state "$T/v4p${v%:*}.state" --json --timeout 20 \
        >"$T/v4p${v%:*}.json" 2>/dev/null
    check "a pledge joining at JRC 127.0.0.${v#*:} gets the new K2" \
        json "$T/v4p${v%:*}.json" "'$NEWK2' in [k['key'] for k in d['keys']]"
done
for p in "$vjp_pid" "$va_pid" "$vb_pid"; do kill -TERM "$p" 2>/dev/null; done
for p in "$vjp_pid" "$va_pid" "$vb_pid"; do wait_exit "$p" 10; done

echo "=== a JP takes parameter updates from every JRC instance"
# Any instance serving the registry may run a campaign: a JP joined with
# --id through JRC A applies the rekey JRC B (another port) runs while A
# is down, and acknowledges it (RFC 9031 section 8.2).
IDB=$T/inst.db
jp_addr="[::1]:$(free_udp_port)"
"$COJP" jrc add --db "$IDB" --pledge 0e00000000000001 --psk "$(psk_of 0e00000000000001)" \
    --address "$jp_addr" || bad "jrc add of the JP of two instances"
ia_pid= ib_pid= ijp_pid=
if start_daemon "$T/instA.log" '"event":"start"' -- jrc serve --db "$IDB" --listen "[::1]:PORT"; then
    ia_pid=$daemon_pid ia_port=$port
    start_daemon "$T/instB.log" '"event":"start"' -- jrc serve --db "$IDB" --listen "[::1]:PORT" \
        --ack-timeout 300 && ib_pid=$daemon_pid
fi
"$COJP" proxy --listen "$jp_addr" --jrc "[::1]:$ia_port" --id 0e00000000000001 \
    --psk "$(psk_of 0e00000000000001)" --state "$T/instjp.state" 2>"$T/instjp.log" &
ijp_pid=$!
pids+=("$ijp_pid")
if [ -n "$ib_pid" ] && wait_for "$T/instjp.log" '"event":"joined"' 10; then
    ok "two JRC instances on one registry, a JP joined through the first"
else
    bad "two JRC instances and a JP"; cat "$T/instA.log" "$T/instB.log" "$T/instjp.log"
fi
kill -TERM "$ia_pid" 2>/dev/null; wait_exit "$ia_pid" 10
"$COJP" jrc rekey --db "$IDB" >/dev/null || bad "jrc rekey with two instances"
check "the second instance runs the rekey" wait_for "$T/instB.log" '"event":"campaign_start"' 10
check "the JP applies the update of the instance it did not join through" \
    wait_for "$T/instjp.log" '"event":"update_applied"' 10
check "... and acknowledges it" \
    wait_for "$T/instB.log" '"event":"update_outcome","pledge":"0e00000000000001","campaign":1,"outcome":"acknowledged"' 10
for p in "$ijp_pid" "$ib_pid"; do kill -TERM "$p" 2>/dev/null; done
for p in "$ijp_pid" "$ib_pid"; do wait_exit "$p" 10; done

echo "=== two JRCs on one registry run one campaign at a time"
# Two operations queued back to back with two serving instances: without
# the registry's campaign lock the idle one would take the second while
# the first runs, and the nodes would get two key sets in any order.  A
# node that never answers keeps each campaign going for a few seconds.
LDB=$T/lock.db
"$COJP" jrc add --db "$LDB" --pledge 0c00000000000001 --psk "$(psk_of 0c00000000000001)" \
    --address "[::1]:$(free_udp_port)" || bad "jrc add of a silent node"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE pledges SET joined = 1'); c.commit()" "$LDB"
if start_daemon "$T/lockA.log" '"event":"start"' -- jrc serve --db "$LDB" --listen "[::1]:PORT" \
    --ack-timeout 100 && { la_pid=$daemon_pid; start_daemon "$T/lockB.log" '"event":"start"' -- \
    jrc serve --db "$LDB" --listen "[::1]:PORT" --ack-timeout 100; }; then
    lb_pid=$daemon_pid
    "$COJP" jrc rekey --db "$LDB" >/dev/null || bad "jrc rekey"
    "$COJP" jrc rekey --db "$LDB" >/dev/null || bad "jrc rekey"
    end=$((SECONDS + 40))
    while [ $SECONDS -lt $end ] && [ "$(campaign_order "$T/lockA.log" "$T/lockB.log" | wc -w)" -lt 8 ]; do sleep 0.05; done
    # read as soon as the last campaign_done shows: the lock goes before it
    free=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM network WHERE campaign_owner IS NULL').fetchone()[0])" "$LDB")
    echo "     campaigns: $(campaign_order "$T/lockA.log" "$T/lockB.log")"
    check "the second campaign starts only after the first is done" \
        test "$(campaign_order "$T/lockA.log" "$T/lockB.log")" = "start 1 done 1 start 2 done 2"
    check "... and the queue is empty" test "$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM pending_ops').fetchone()[0])" "$LDB")" -eq 0
    check "... and the lock given up before the last campaign_done was logged" test "$free" -eq 1
else
    bad "two JRCs on one registry"; cat "$T/lockA.log" "$T/lockB.log"
fi
for p in "${la_pid:-}" "${lb_pid:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
for p in "${la_pid:-}" "${lb_pid:-}"; do [ -n "$p" ] && wait_exit "$p" 10; done

echo "=== a JRC of another implementation answers with separate CON responses"
# RFC 8974 section 3.3, RFC 7252 sections 4.2, 4.5 and 5.2.2: the JP
# acknowledges a CON response to the JRC and relays it to the pledge
# once; the JRC's retransmissions get the ACK again and are not relayed;
# a CON whose token does not open gets nothing (wire.py conjrc).
fport=$(free_udp_port)
if start_daemon "$T/jpcon.log" '"event":"start"' -- proxy --listen "[::1]:PORT" \
    --jrc "[::1]:$fport" --log-level debug; then
    ok "JP for a foreign JRC started"
else
    bad "JP for a foreign JRC"; cat "$T/jpcon.log"
fi
jpcon_pid=$daemon_pid jpcon_port=$port
timeout 60 python3 "$WIRE" conjrc "[::1]:$jpcon_port" "$fport" >"$T/conjrc.json" 2>&1
rc=$?
echo "     conjrc: $(cat "$T/conjrc.json")"
check "CON responses: one relay each, an empty ACK for every copy, nothing for a forged one" \
    test $rc -eq 0
check "the JP logs each ACK it sends (debug)" \
    test "$(grep -c '"level":"debug","event":"acked","mid":' "$T/jpcon.log")" -eq 6
check "JP for a foreign JRC exits 0 on SIGTERM" stop_daemon "$jpcon_pid"
check "its counters: 2 relayed, 6 ACKs, 4 spent tokens, 2 forged, no RST" \
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if (d['relayed'],d['acks'],d['resets'],d['dropped_replay'],d['dropped_token'])==(2,6,0,4,2) else 1)" \
    "$(tail -1 "$T/jpcon.log")"

echo "=== help and version"
for c in "jrc add" "jrc import" "jrc list" "jrc serve" "jrc rekey" "jrc evict" "jrc readmit" "jrc recover" \
    "jrc address" "jrc psk" "jrc remove" "jrc prune" "jrc derive" proxy pledge jrc demo bench sim; do
    # shellcheck disable=SC2086
    check "cojp $c --help" sh -c "'$COJP' $c --help | grep -q usage"
done
check "cojp --version" sh -c "'$COJP' --version | grep -qE '^cojp [0-9]'"

kill -TERM "$jrc_pid" 2>/dev/null
wait_exit "$jrc_pid" 10
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
