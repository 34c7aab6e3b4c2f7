#!/usr/bin/env bash
# Crash and fault tests of the daemons over loopback.
#
#   (a) 200 pledges (`cojp pledge --json --state`) join through a JP while
#       the JRC (SQLite) is killed with SIGKILL after about a third of
#       them joined and restarted on the same registry; pledges that
#       give up are restarted, as a device would.  Every datagram the JRC
#       sends is captured: no OSCORE nonce of a pledge context protects
#       two different ciphertexts (RFC 8613 section 7.2.1, RFC 9031
#       section 7.3.1); every pledge that printed "joined" is joined in
#       the registry with the short id it printed; no short id twice.
#   (d) hostile datagrams to the JRC and to the JP of (a): garbage,
#       truncated and bit-flipped copies of a genuine request, oversize
#       datagrams, CoAP with bogus OSCORE, forged and replayed responses
#       to the JP from the JRC's own address.  Nothing is answered, both
#       daemons live on, the pledges table is byte-identical, a fresh
#       pledge still joins.
#   (b) (a) again with a PostgreSQL registry (tests/pg-server.sh).
#   (e) two JRC instances on that PostgreSQL registry, each behind its
#       own JP; 100 pledges join through both; once 20 joined JRC A is
#       stopped, the other 80 start, and when B answered its half A is
#       killed (SIGKILL, not restarted): the pledges that were waiting on
#       it start again through the other JP: every
#       pledge joins, no short id twice, the registry agrees, no nonce
#       of a pledge context protects two ciphertexts across both JRCs.
#   (f) the registry's file system runs full (a 2 MB tmpfs, root only)
#       while pledges join: the JRC logs each failed commit, answers
#       nobody whose admission is not on disk, stays up, and once space
#       is back the same pledges join on their own retransmissions; the
#       registry then holds exactly what the pledges printed.
#   (h) two JRC instances on a PostgreSQL registry, one on a clock a
#       minute ahead (libfaketime; left out for sanitizer builds): a
#       campaign of one still runs when the other finds the next
#       operation queued; the campaign lock, stamped and judged by the
#       server's clock, keeps the campaigns one after the other.
#   (g) the PostgreSQL server of (b) restarts (fast shutdown) while a JRC
#       serves it and pledges are joining: they all join, the registry
#       holds what they printed, the JRC never stopped.
#   (c) `jrc rekey` with 50 `cojp pledge --serve` nodes: every node ends
#       on the new K2 that the registry holds, and every node is
#       recorded as acknowledged.  Then a second rekey with 5 nodes
#       stopped (SIGSTOP) and the JRC killed mid-campaign: after the
#       restart and a third rekey every node is on the newest K2; no
#       nonce reuse over join responses and updates.
#
#   tests/integration/crash.sh [path/to/cojp]
#
# Environment: COJP_CRASH_PLEDGES (200), COJP_CRASH_NODES (50),
# COJP_CRASH_PG=0 to leave (b), (e), (h) and (g) out.  Needs dumpcap for the wire checks
# and raw sockets (root) for the spoofed responses.  Every wait is
# bounded.  Last line: crash: N passed, N failed
set -u
NAME=crash
COJP=${1:-${COJP:-build/cojp}}
COJP=$(cd "$(dirname "$COJP")" && pwd)/$(basename "$COJP")
T=$(mktemp -d /tmp/cojp-crash-XXXXXX)
# shellcheck source=tests/integration/lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
lib_init
NP=${COJP_CRASH_PLEDGES:-200}
NN=${COJP_CRASH_NODES:-50}
PLEDGE_TIMEOUT=25 # s: a pledge that got nothing by then gives up and is restarted
JOIN_DEADLINE=110 # s: for all NP pledges of one run
t0=$SECONDS

[ -x "$COJP" ] || abort "no binary at $COJP"
have_capture || echo "note: no dumpcap: the wire checks are left out"

# pledge identifiers PREFIX + 14 hex digits (their PSKs: psk_of, lib.sh)
ids_of() { for i in $(seq "$2"); do printf '%s%014x\n' "$1" "$i"; done; }

# printed DIR ID...: what each pledge printed (DIR/ID.json, one JSON
# object a line) as one JSON object {id: [objects]}
printed() {
    python3 - "$@" <<'EOF'
import json, sys
d, ids = sys.argv[1], sys.argv[2:]
out = {}
for i in ids:
    try:
        lines = [l for l in open("%s/%s.json" % (d, i)).read().splitlines() if l]
    except OSError:
        lines = []
    out[i] = [json.loads(l) for l in lines]
json.dump(out, sys.stdout)
EOF
}

# ---- (a)/(b): joins across a JRC crash ---------------------------------

# join_crash LABEL DB: sets jrc_pid jport pport for the (d) phase and
# leaves the JRC and JP running.
join_crash() {
    local L=$1 db=$2 D=$T/$1
    mkdir -p "$D"
    echo "=== ($L) $NP pledges join while the JRC is killed (SIGKILL) and restarted"
    ids_of 04 "$NP" | while read -r id; do echo "$id,$(psk_of "$id")"; done >"$D/pledges.csv"
    check "($L) jrc import of $NP pledges" sh -c "'$COJP' jrc import --db '$db' '$D/pledges.csv' >/dev/null"
    jport=$(free_udp_port)
    pport=$(free_udp_port)
    local cap=0
    if have_capture; then
        if start_capture "$D/jrc.pcap" lo "udp port $jport"; then cap=1; else bad "($L) capture on lo"; fi
    fi
    start_jrc_jp "$L" "$db" "$jport" "$pport" jrc1 jp --lease-hours 24
    jrc_pid=$started_jrc jp_pid=$started_jp

    local ids=() pid=() done_=() tries=() i n_done=0 launched=0 restarts=0
    local killed=0 joined_at_kill=0 launched_at_kill=0 jrc_up=1 start=$SECONDS
    mapfile -t ids < <(ids_of 04 "$NP")
    launch() {
        local id=${ids[$1]}
        "$COJP" pledge --id "$id" --psk "$(psk_of "$id")" --proxy "[::1]:$pport" \
            --json --state "$D/$id.state" --timeout "$PLEDGE_TIMEOUT" \
            >>"$D/$id.json" 2>>"$D/$id.err" &
        pid[$1]=$!
        tries[$1]=$((${tries[$1]:-0} + 1))
    }
    while [ $n_done -lt "$NP" ] && [ $((SECONDS - start)) -lt $JOIN_DEADLINE ]; do
        # start them in batches of 20; the second half only once the
        # JRC was killed, so the crash always hits joins in progress
        for _ in $(seq 20); do
            [ $launched -lt "$NP" ] || break
            [ $killed -eq 1 ] || [ $launched -lt $((NP / 2)) ] || break
            launch $launched
            launched=$((launched + 1))
        done
        # collect the ones that ended (as this shell knows: no stale PID
        # is ever probed); a pledge that gave up starts again
        local running
        running=" $(jobs -pr | tr '\n' ' ') "
        for ((i = 0; i < launched; i++)); do
            [ "${done_[$i]:-0}" -eq 1 ] && continue
            [[ $running == *" ${pid[$i]} "* ]] && continue
            if wait "${pid[$i]}"; then
                done_[i]=1
                n_done=$((n_done + 1))
            elif [ $jrc_up -eq 1 ]; then
                restarts=$((restarts + 1))
                launch "$i"
            fi
        done
        if [ $killed -eq 0 ] && [ $n_done -ge $((NP / 3)) ]; then
            kill -KILL "$jrc_pid"
            wait "$jrc_pid" 2>/dev/null
            killed=1 jrc_up=0 joined_at_kill=$n_done launched_at_kill=$launched
            echo "     SIGKILL to the JRC after $n_done joined ($launched started, $((launched - n_done)) in flight, $((SECONDS - start)) s)"
            sleep 0.5
            start_daemon "$D/jrc2.log" '"event":"start"' -- jrc serve --db "$db" \
                --listen "[::1]:$jport" --lease-hours 24 || abort "($L) jrc serve restart" "$D/jrc2.log"
            jrc_pid=$daemon_pid jrc_up=1
        fi
        sleep 0.1
    done
    echo "     $n_done of $NP joined in $((SECONDS - start)) s; $restarts pledge restarts"
    check "($L) the JRC was killed while pledges were joining ($joined_at_kill joined, $launched_at_kill started)" \
        test $killed -eq 1 -a "$joined_at_kill" -lt "$NP"
    check "($L) every pledge joined" test $n_done -eq "$NP"

    # what the pledges printed
    printed "$D" "${ids[@]}" >"$D/printed.json"
    check "($L) each pledge printed exactly one join result" json "$D/printed.json" \
        "all(len(v)==1 and v[0]['joined'] is True for v in d.values())"
    check "($L) all pledges got the same key set across the crash" json "$D/printed.json" \
        "len({json.dumps(v[0]['keys']) for v in d.values() if v})==1"
    timeout 30 "$COJP" jrc list --db "$db" --json >"$D/list.json" || bad "($L) jrc list"
    python3 - "$D/printed.json" "$D/list.json" >"$D/cmp.txt" <<'EOF'
import json, sys
printed = json.load(open(sys.argv[1]))
listed = {p["pledge"]: p for p in json.load(open(sys.argv[2]))["pledges"]}
bad = []
for pid, res in printed.items():
    for r in res:
        p = listed.get(pid)
        if p is None or not p["joined"]:
            bad.append("%s printed joined, registry says not joined" % pid)
        elif p["short_id"] != r["short_id"]:
            bad.append("%s printed short id %s, registry has %s" % (pid, r["short_id"], p["short_id"]))
sids = [p["short_id"] for p in listed.values() if p["joined"]]
if len(sids) != len(set(sids)):
    bad.append("a short id appears twice")
print("\n".join(bad) if bad else "consistent")
sys.exit(1 if bad else 0)
EOF
    local rc=$?
    check "($L) the registry agrees with every pledge (joined, short id)" test $rc -eq 0
    [ $rc -eq 0 ] || head -5 "$D/cmp.txt"
    check "($L) no short id twice in jrc list" json "$D/list.json" \
        "len([p['short_id'] for p in d['pledges'] if p['joined']])==len({p['short_id'] for p in d['pledges'] if p['joined']})"

    # the restart
    check "($L) the restarted JRC loaded the stored network" \
        sh -c "! grep -q network_created '$D/jrc2.log'"
    local k1 k2
    k1=$(grep -o '"k1_id":[0-9]*,"k2_id":[0-9]*' "$D/jrc1.log" | tail -1)
    k2=$(grep -o '"k1_id":[0-9]*,"k2_id":[0-9]*' "$D/jrc2.log" | tail -1)
    check "($L) the restarted JRC serves the same key ids ($k2)" test -n "$k1" -a "$k1" = "$k2"
    check "($L) the restarted JRC logged no error" \
        sh -c "! grep -E '\"level\":\"error\"|commit_failed|store_error' '$D/jrc2.log'"
    case $db in
    postgres*) ;;
    *) check "($L) SQLite integrity check after the crash" \
        sh -c "[ \"\$(sqlite3 '$db' 'PRAGMA integrity_check')\" = ok ]" ;;
    esac

    if [ $cap -eq 1 ]; then
        stop_capture
        python3 "$WIRE" nonces "$D/jrc.pcap" "$jport" >"$D/nonces.json"
        rc=$?
        echo "     wire: $(cat "$D/nonces.json")"
        check "($L) no JRC nonce protects two different ciphertexts; every response matched" test $rc -eq 0
        check "($L) the capture holds a response for every pledge" json "$D/nonces.json" \
            "d['pledges'] >= $NP"
    fi
}

# start_jrc_jp LABEL DB JRC_PORT JP_PORT JRC_LOG JP_LOG [JRC_OPTION...]: a
# JRC on DB (with the options given) and a Join Proxy relaying to it, on
# [::1], logging to $D/<name>.log; their pids in started_jrc and
# started_jp.
start_jrc_jp() {
    local l=$1 db=$2 jport=$3 pport=$4 jlog=$5 plog=$6
    shift 6
    start_daemon "$D/$jlog.log" '"event":"start"' -- jrc serve --db "$db" \
        --listen "[::1]:$jport" "$@" || abort "($l) jrc serve ($jlog)" "$D/$jlog.log"
    started_jrc=$daemon_pid
    start_daemon "$D/$plog.log" '"event":"start"' -- proxy --listen "[::1]:$pport" \
        --jrc "[::1]:$jport" || abort "($l) proxy ($plog)" "$D/$plog.log"
    started_jp=$daemon_pid
}

# finish LABEL: SIGTERM to the JRC and JP of a run; clean exits.
finish() {
    check "($1) proxy exits 0 on SIGTERM" stop_daemon "$jp_pid"
    check "($1) jrc serve exits 0 on SIGTERM" stop_daemon "$jrc_pid"
}

# ---- (e): two JRC instances, one PostgreSQL registry ----------------------

two_jrcs() {
    local L=e db=$1 D=$T/e n=100
    mkdir -p "$D"
    echo "=== ($L) $n pledges join through two JRC instances sharing one registry"
    ids_of 05 $n | while read -r id; do echo "$id,$(psk_of "$id")"; done >"$D/pledges.csv"
    check "($L) jrc import of $n pledges" sh -c "'$COJP' jrc import --db '$db' '$D/pledges.csv' >/dev/null"
    local ja jb pa pb a_pid b_pid pa_pid pb_pid cap=0
    ja=$(free_udp_port) jb=$(free_udp_port) pa=$(free_udp_port) pb=$(free_udp_port)
    if have_capture; then
        if start_capture "$D/jrc.pcap" lo "udp port $ja or udp port $jb"; then cap=1; else bad "($L) capture on lo"; fi
    fi
    start_jrc_jp "$L" "$db" "$ja" "$pa" jrcA jpA --lease-hours 24
    a_pid=$started_jrc pa_pid=$started_jp
    start_jrc_jp "$L" "$db" "$jb" "$pb" jrcB jpB --lease-hours 24
    b_pid=$started_jrc pb_pid=$started_jp

    local ids=() pid=() done_=() via=() i n_done=0 moved=0 killed=0 start=$SECONDS
    mapfile -t ids < <(ids_of 05 $n)
    launch() { # launch INDEX PORT
        local id=${ids[$1]}
        "$COJP" pledge --id "$id" --psk "$(psk_of "$id")" --proxy "[::1]:$2" \
            --json --state "$D/$id.state" --timeout "$PLEDGE_TIMEOUT" \
            >>"$D/$id.json" 2>>"$D/$id.err" &
        pid[$1]=$!
        via[$1]=$2
    }
    # wave 1: 20 pledges through both; once they joined, JRC A stops
    # (SIGSTOP) and wave 2 starts, so that half of it waits on A when A
    # is killed (SIGKILL) after B answered its half
    local wave=1 first=20 stopped_at=0
    for ((i = 0; i < first; i++)); do
        if [ $((i % 2)) -eq 0 ]; then launch $i "$pa"; else launch $i "$pb"; fi
    done
    while [ $n_done -lt $n ] && [ $((SECONDS - start)) -lt $JOIN_DEADLINE ]; do
        local running
        running=" $(jobs -pr | tr '\n' ' ') "
        for ((i = 0; i < n; i++)); do
            [ -n "${pid[$i]:-}" ] || continue
            [ "${done_[$i]:-0}" -eq 1 ] && continue
            [[ $running == *" ${pid[$i]} "* ]] && continue
            if wait "${pid[$i]}"; then
                done_[i]=1
                n_done=$((n_done + 1))
            else
                launch "$i" "$pb" # gave up: try again through B's JP
            fi
        done
        if [ $wave -eq 1 ] && [ $n_done -ge $first ]; then
            kill -STOP "$a_pid"
            for ((i = first; i < n; i++)); do
                if [ $((i % 2)) -eq 0 ]; then launch $i "$pa"; else launch $i "$pb"; fi
            done
            wave=2 stopped_at=$SECONDS
        elif [ $wave -eq 2 ] && { [ $n_done -ge $((first + (n - first) / 2)) ] ||
            [ $((SECONDS - stopped_at)) -ge 15 ]; }; then
            kill -KILL "$a_pid"
            wait "$a_pid" 2>/dev/null
            killed=1 wave=3
            # the pledges still waiting on A start again through B's JP
            # (their state files keep their sequence numbers)
            for ((i = 0; i < n; i++)); do
                [ "${done_[$i]:-0}" -eq 1 ] && continue
                [ "${via[$i]}" = "$pa" ] || continue
                [[ " $(jobs -pr | tr '\n' ' ') " == *" ${pid[$i]} "* ]] || continue
                kill -TERM "${pid[$i]}" 2>/dev/null
                wait "${pid[$i]}" 2>/dev/null
                if grep -q '"joined": *true' "$D/${ids[$i]}.json" 2>/dev/null; then
                    done_[i]=1
                    n_done=$((n_done + 1))
                    continue
                fi
                moved=$((moved + 1))
                launch "$i" "$pb"
            done
            echo "     SIGKILL to JRC A (stopped) after $n_done joined; $moved pledges moved to B's JP"
        fi
        sleep 0.1
    done
    echo "     $n_done of $n joined in $((SECONDS - start)) s"
    check "($L) JRC A was killed with pledges still waiting on it ($moved moved)" \
        test $killed -eq 1 -a $moved -gt 0
    check "($L) every pledge joined" test $n_done -eq $n
    printed "$D" "${ids[@]}" >"$D/printed.json"
    check "($L) each pledge printed one join result" json "$D/printed.json" \
        "all(len([r for r in v if r.get('joined')])==1 for v in d.values())"
    check "($L) both instances handed out distinct short ids" json "$D/printed.json" \
        "len({r['short_id'] for v in d.values() for r in v if r.get('joined')})==$n"
    check "($L) one key set for all" json "$D/printed.json" \
        "len({json.dumps(r['keys']) for v in d.values() for r in v if r.get('joined')})==1"
    timeout 30 "$COJP" jrc list --db "$db" --json >"$D/list.json" || bad "($L) jrc list"
    check "($L) the registry agrees with every pledge" python3 -c "
import json, sys
p = json.load(open('$D/printed.json'))
l = {x['pledge']: x for x in json.load(open('$D/list.json'))['pledges']}
sys.exit(0 if all(l[i]['joined'] and l[i]['short_id'] == r['short_id']
                  for i, v in p.items() for r in v if r.get('joined')) else 1)"
    check "($L) JRC A admitted some before it was killed" grep -q '"event":"joined"' "$D/jrcA.log"
    check "($L) JRC B admitted some" grep -q '"event":"joined"' "$D/jrcB.log"
    check "($L) JRC B logged no error" \
        sh -c "! grep -E '\"level\":\"error\"|store_error' '$D/jrcB.log'"
    if [ $cap -eq 1 ]; then
        stop_capture
        python3 "$WIRE" nonces "$D/jrc.pcap" "$ja,$jb" >"$D/nonces.json"
        local rc=$?
        echo "     wire: $(cat "$D/nonces.json")"
        check "($L) no nonce protects two ciphertexts across both JRCs" test $rc -eq 0
    fi
    check "($L) proxy A exits 0 on SIGTERM" stop_daemon "$pa_pid"
    check "($L) proxy B exits 0 on SIGTERM" stop_daemon "$pb_pid"
    check "($L) jrc serve B exits 0 on SIGTERM" stop_daemon "$b_pid"
}

# ---- (d): hostile datagrams --------------------------------------------

# hostile RUN DB: on the daemons that run RUN left running
hostile() {
    local L=d db=$2 D=$T/$1
    echo "=== ($L) hostile datagrams to the JRC and the JP"
    local ref=04ffffffffff0001 fresh=04ffffffffff0002
    for id in $ref $fresh; do
        "$COJP" jrc add --db "$db" --pledge "$id" --psk "$(psk_of "$id")" || bad "jrc add $id"
    done
    if ! have_capture; then
        echo "note: no dumpcap: hostile datagrams left out"
        finish "$L"
        return
    fi
    start_capture "$D/ref.pcap" lo "udp port $jport or udp port $pport" || bad "($L) capture"
    timeout 40 "$COJP" pledge --id $ref --psk "$(psk_of $ref)" --proxy "[::1]:$pport" \
        --state "$D/$ref.state" --timeout 30 >/dev/null 2>&1
    check "($L) a reference pledge joins (the genuine exchange)" test $? -eq 0
    stop_capture
    check "($L) the genuine exchange was captured" \
        sh -c "python3 '$WIRE' extract '$D/ref.pcap' '$pport' '$jport' '$D/ref.json' >/dev/null"

    sqlite3 "$db" ".dump pledges" >"$D/before.sql"
    start_capture "$D/hostile.pcap" lo "udp port $jport or udp port $pport" || bad "($L) capture"
    local some_ids
    some_ids=$(ids_of 04 8 | paste -sd,)
    timeout 60 python3 "$WIRE" hostile "$D/ref.json" "[::1]:$jport" "[::1]:$pport" "$jport" \
        "$some_ids" "$D/spoofed.txt" >"$D/hostile.json"
    local rc=$?
    stop_capture
    echo "     sent: $(cat "$D/hostile.json")"
    check "($L) no hostile datagram was answered (the Reset of a CON aside)" test $rc -eq 0
    python3 "$WIRE" quiet "$D/hostile.pcap" "$jport" "$pport" "$D/spoofed.txt" >"$D/quiet.json"
    rc=$?
    echo "     wire: $(cat "$D/quiet.json")"
    check "($L) on the wire: the JRC sent only Resets of CONs, the JP only forwarded to the JRC and sent Resets of CONs" test $rc -eq 0
    check "($L) the JP rejected the malformed CONs sent to it with their Resets (RFC 7252 4.2)" \
        json "$D/hostile.json" "d['jp_resets'] > 0"
    check "($L) jrc serve still runs" kill -0 "$jrc_pid"
    check "($L) proxy still runs" kill -0 "$jp_pid"
    sqlite3 "$db" ".dump pledges" >"$D/after.sql"
    check "($L) the pledges table is byte-identical" cmp -s "$D/before.sql" "$D/after.sql"
    python3 "$WIRE" replay "$D/ref.json" "[::1]:$jport" >"$D/replay.json"
    rc=$?
    echo "     replay: $(cat "$D/replay.json")"
    check "($L) an exact replay of a genuine request gets at most the cached response" test $rc -eq 0
    timeout 40 "$COJP" pledge --id $fresh --psk "$(psk_of $fresh)" --proxy "[::1]:$pport" \
        --state "$D/$fresh.state" --json --timeout 30 >"$D/fresh.json" 2>"$D/fresh.err"
    check "($L) a fresh pledge still joins" json "$D/fresh.json" "d['joined'] is True"

    finish "$L"
    local jps
    jps=$(tail -1 "$D/jp.log")
    check "($L) the JP dropped the forged responses as bad tokens" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['dropped_token']>=100 and d['dropped_replay']>=1 and d['dropped_malformed']>0 else 1)" "$jps"
    echo "     proxy: $jps"
    echo "     jrc:   $(tail -1 "$D/jrc2.log")"
}

# ---- (c): rekey with serving nodes -------------------------------------

# key_ids DB: the registry's key ids, comma-separated
key_ids() {
    "$COJP" jrc list --db "$1" --json |
        python3 -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['network']['key_ids'])))"
}
# next_key_id IDS: the key id a rekey gives K2 (the highest in use + 1)
next_key_id() { echo $(($(echo "$1" | tr ',' '\n' | sort -n | tail -1) + 1)); }
# registry_key DB ID: the 16 key bytes of key id ID, in hex
registry_key() {
    sqlite3 "$1" "SELECT hex(keys) FROM network" | python3 -c "
import sys
b = bytes.fromhex(sys.stdin.read().strip())
for i in range(0, len(b), 18):
    if b[i] == $2:
        print(b[i + 2:i + 18].hex())"
}

# nodes_on KEY_ID CAMPAIGN SECONDS: wait until every node switched to
# KEY_ID, then check that each holds the registry's key and that jrc
# list records every node as acknowledged in CAMPAIGN.
nodes_on() {
    local kid=$1 camp=$2 n=0 end=$((SECONDS + $3)) k
    while [ $SECONDS -lt $end ]; do
        n=$(grep -l "\"event\":\"keys_switched\".*\"key_${kid}_fp\"" "$D"/06*.log 2>/dev/null | wc -l)
        [ "$n" -ge "$NN" ] && break
        sleep 0.2
    done
    check "(c) every node switched to key id $kid ($n)" test "$n" -eq "$NN"
    k=$(registry_key "$db" "$kid")
    [ -n "$k" ] && k=$(key_fp "$k")
    n=$(for ((i = 0; i < NN; i++)); do
        grep "\"event\":\"keys_switched\".*\"key_${kid}_fp\"" "$D/${ids[$i]}.log" | tail -1 |
            sed -E "s/.*\"key_${kid}_fp\":\"([0-9a-f]+)\".*/\1/"
    done | grep -c -x -F "${k:-none}")
    check "(c) every node holds the registry's key $kid ($n)" test "$n" -eq "$NN"
    "$COJP" jrc list --db "$db" --json >"$D/list$camp.json"
    check "(c) jrc list: every node acknowledged campaign $camp" json "$D/list$camp.json" \
        "len([p for p in d['pledges'] if p['last_outcome']=='acknowledged' and p['last_campaign']==$camp])==$NN and $kid in d['network']['key_ids']"
}

rekey_nodes() {
    local D=$T/c db=$T/c/jrc.db
    mkdir -p "$D"
    echo "=== (c) jrc rekey with $NN pledge --serve nodes"
    local ids=() ports=() pids=() i base cap=0
    mapfile -t ids < <(ids_of 06 "$NN")
    base=$((20000 + RANDOM % 39000))
    for ((i = 0; i < NN; i++)); do
        ports[i]=$((base + i))
        "$COJP" jrc add --db "$db" --pledge "${ids[$i]}" --psk "$(psk_of "${ids[$i]}")" \
            --address "[::1]:${ports[$i]}" || bad "jrc add ${ids[$i]}"
    done
    jport=$(free_udp_port)
    pport=$(free_udp_port)
    if have_capture; then
        if start_capture "$D/jrc.pcap" lo "udp port $jport"; then cap=1; else bad "(c) capture on lo"; fi
    fi
    start_jrc_jp c "$db" "$jport" "$pport" jrc jp --ack-timeout 500
    jrc_pid=$started_jrc jp_pid=$started_jp
    for ((i = 0; i < NN; i++)); do
        local id=${ids[$i]}
        for _ in 1 2 3; do
            "$COJP" pledge --id "$id" --psk "$(psk_of "$id")" --proxy "[::1]:$pport" \
                --state "$D/$id.state" --serve "[::1]:${ports[$i]}" --timeout 60 \
                2>"$D/$id.log" &
            pids[i]=$!
            wait_for "$D/$id.log" '"event":"start"' 5 && break
            # the port was taken meanwhile: another one, and tell the JRC
            wait "${pids[$i]}" 2>/dev/null
            ports[i]=$(free_udp_port)
            "$COJP" jrc address --db "$db" --pledge "$id" --address "[::1]:${ports[$i]}"
        done
    done
    for ((i = 0; i < NN; i++)); do echo "\"${ports[$i]}\":\"${ids[$i]}\""; done |
        paste -sd, | sed 's/.*/{&}/' >"$D/ports.json"
    local n=0 end=$((SECONDS + 60))
    while [ $SECONDS -lt $end ]; do
        n=$(grep -l '"event":"joined"' "$D"/06*.log 2>/dev/null | wc -l)
        [ "$n" -ge "$NN" ] && break
        sleep 0.2
    done
    check "(c) all $NN serving nodes joined ($n)" test "$n" -eq "$NN"

    local kid t1=$SECONDS
    kid=$(next_key_id "$(key_ids "$db")")
    check "(c) jrc rekey queues" sh -c "'$COJP' jrc rekey --db '$db' >/dev/null"
    check "(c) the JRC finished the campaign" wait_for "$D/jrc.log" '"event":"campaign_done","campaign":1' 60
    echo "     campaign over $NN nodes took $((SECONDS - t1)) s"
    nodes_on "$kid" 1 20

    echo "=== (c) a second rekey: 5 nodes stopped, the JRC killed (SIGKILL) mid-campaign"
    for ((i = 0; i < 5; i++)); do kill -STOP "${pids[$i]}"; done
    kid=$(next_key_id "$(key_ids "$db")")
    check "(c) jrc rekey queues" sh -c "'$COJP' jrc rekey --db '$db' >/dev/null"
    end=$((SECONDS + 30))
    n=0
    while [ $SECONDS -lt $end ]; do
        n=$(grep -c '"event":"update_outcome".*"campaign":2,"outcome":"acknowledged"' "$D/jrc.log")
        [ "$n" -ge $((NN - 5)) ] && break
        sleep 0.05
    done
    check "(c) campaign 2 still runs with $n nodes acknowledged" \
        sh -c "! grep -q '\"event\":\"campaign_done\",\"campaign\":2' '$D/jrc.log'"
    kill -KILL "$jrc_pid"
    wait "$jrc_pid" 2>/dev/null
    for ((i = 0; i < 5; i++)); do kill -CONT "${pids[$i]}"; done
    check "(c) the registry kept campaign 2's key set" test "$(key_ids "$db" | tr ',' '\n' | grep -c -x "$kid")" -eq 1
    start_daemon "$D/jrc2.log" '"event":"start"' -- jrc serve --db "$db" \
        --listen "[::1]:$jport" --ack-timeout 500 || abort "(c) jrc serve restart" "$D/jrc2.log"
    jrc_pid=$daemon_pid
    check "(c) the restarted JRC numbers the next campaign 3" grep -q '"next_campaign":3' "$D/jrc2.log"
    kid=$(next_key_id "$(key_ids "$db")")
    check "(c) jrc rekey queues again" sh -c "'$COJP' jrc rekey --db '$db' >/dev/null"
    check "(c) the restarted JRC finished campaign 3" \
        wait_for "$D/jrc2.log" '"event":"campaign_done","campaign":3' 60
    nodes_on "$kid" 3 20

    if [ $cap -eq 1 ]; then
        stop_capture
        python3 "$WIRE" nonces "$D/jrc.pcap" "$jport" "$D/ports.json" >"$D/nonces.json"
        local rc=$?
        echo "     wire: $(cat "$D/nonces.json")"
        check "(c) no JRC nonce (join responses and updates) protects two ciphertexts" test $rc -eq 0
    fi
    local stopped=0
    for ((i = 0; i < NN; i++)); do
        stop_daemon "${pids[$i]}" && stopped=$((stopped + 1))
    done
    check "(c) the $NN nodes exit 0 on SIGTERM ($stopped)" test $stopped -eq "$NN"
    finish c
}

# join_direct ID TIMEOUT: a pledge straight to the JRC at [::1]:$jport,
# its state file and what it printed (--json) in $D.
join_direct() {
    timeout $(($2 + 10)) "$COJP" pledge --id "$1" --psk "$(psk_of "$1")" \
        --proxy "[::1]:$jport" --state "$D/$1.state" --json --timeout "$2" \
        >"$D/$1.json" 2>"$D/$1.err"
}

# direct_jrc LABEL DB PREFIX N: N pledges (ids_of PREFIX N, into the
# caller's ids) provisioned into DB, and jrc serve on [::1]:jport (the
# caller's jport) with its log in $D/jrc.log; sets daemon_pid.
direct_jrc() {
    local id
    mapfile -t ids < <(ids_of "$3" "$4")
    for id in "${ids[@]}"; do echo "$id,$(psk_of "$id")"; done >"$D/pledges.csv"
    check "($1) jrc import of $4 pledges" sh -c "'$COJP' jrc import --db '$2' '$D/pledges.csv' >/dev/null"
    jport=$(free_udp_port)
    start_daemon "$D/jrc.log" '"event":"start"' -- jrc serve --db "$2" \
        --listen "[::1]:$jport" || abort "($1) jrc serve" "$D/jrc.log"
}

# same_as_printed LIST.json PRINTED.json: every pledge that printed a
# join is joined in the registry with the short id it printed, none twice.
same_as_printed() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
reg = {p["pledge"]: p for p in json.load(open(sys.argv[1]))["pledges"]}
got = json.load(open(sys.argv[2]))
sids = [reg[i]["short_id"] for i in got]
ok = all(len(v) == 1 and v[0]["joined"] and reg[i]["joined"] and reg[i]["short_id"] == v[0]["short_id"]
         for i, v in got.items()) and len(set(sids)) == len(sids)
sys.exit(0 if ok else 1)
EOF
}

# ---- (f): the registry's file system runs full ---------------------------

disk_full() {
    local L=f D=$T/f n=6 jport pids=() k rc
    mkdir -p "$D/fs"
    echo "=== ($L) the registry's file system runs full while pledges join"
    if ! mount -t tmpfs -o size=2m cojp-test "$D/fs" 2>"$D/mount.err"; then
        echo "note: ($L) left out: cannot mount a small file system here: $(head -1 "$D/mount.err")"
        return
    fi
    lib_mounts+=("$D/fs")
    local db=$D/fs/jrc.db ids
    direct_jrc "$L" "$db" 06 $n
    local fjrc=$daemon_pid
    for k in 0 1; do
        join_direct "${ids[$k]}" 20
        check "($L) pledge ${ids[$k]} joins while there is room" test $? -eq 0
    done
    dd if=/dev/zero of="$D/fs/filler" bs=4k >/dev/null 2>&1
    check "($L) the file system is full" test "$(df --output=avail "$D/fs" | tail -1)" -eq 0
    for k in 2 3 4; do
        join_direct "${ids[$k]}" 45 &
        pids+=($!)
    done
    check "($L) the JRC logs the failed commit" \
        wait_for "$D/jrc.log" '"event":"commit_failed".*disk is full' 10
    # The pledges retransmit after ACK_TIMEOUT (10 to 15 s, RFC 9031
    # section 7.2): until then every first request has been processed.
    sleep 2
    check "($L) the JRC is still running" kill -0 "$fjrc"
    check "($L) none of the three has been answered" \
        sh -c "! grep -q . '$D/${ids[2]}.json' '$D/${ids[3]}.json' '$D/${ids[4]}.json'"
    # a pledge whose own state file is on the full disk sends nothing
    # (no sequence number that is not durable, RFC 8613 Appendix B.1.1)
    # and says why it did not join
    timeout 20 "$COJP" pledge --id 06000000000000ff --psk "$(psk_of 06000000000000ff)" \
        --proxy "[::1]:$jport" --state "$D/fs/own.state" --timeout 3 >/dev/null 2>"$D/own.err"
    rc=$?
    check "($L) a pledge whose state file cannot be written exits 1 naming the file and the reason" \
        sh -c "[ $rc -eq 1 ] && tail -1 '$D/own.err' | grep -q 'cannot write the state file $D/fs/own.state (No space left on device)'"
    "$COJP" jrc list --db "$db" --json >"$D/list-full.json" 2>"$D/list-full.err"
    check "($L) the registry, read while full, has only the first two joined" json "$D/list-full.json" \
        "sorted(p['pledge'] for p in d['pledges'] if p['joined'])==sorted(['${ids[0]}','${ids[1]}'])"
    rm -f "$D/fs/filler"
    for k in 0 1 2; do
        wait "${pids[$k]}"; rc=$?
        check "($L) pledge ${ids[$((k + 2))]} joins on its retransmission once space is back" test $rc -eq 0
    done
    join_direct "${ids[5]}" 20
    check "($L) a new pledge joins at once" test $? -eq 0
    "$COJP" jrc list --db "$db" --json >"$D/list.json"
    printed "$D" "${ids[@]}" >"$D/printed.json"
    check "($L) the registry holds every pledge with the short id it printed, none twice" \
        same_as_printed "$D/list.json" "$D/printed.json"
    check "($L) the engine was reloaded after each failed commit" \
        test "$(grep -c '"event":"engine_reloaded","ok":true' "$D/jrc.log")" -eq "$(grep -c '"event":"commit_failed"' "$D/jrc.log")"
    check "($L) jrc serve exits 0 on SIGTERM" stop_daemon "$fjrc"
    check "($L) its last line counts the $n joins and the failed commits" \
        sh -c "tail -1 '$D/jrc.log' | grep -qE '\"joins\":$n,.*\"commit_failures\":[1-9]'"
}

# ---- (g): the PostgreSQL server restarts under a serving JRC --------------

pg_restart() {
    local L=g uri=$1 dir=$2 D=$T/g n=4 jport k rc ids pids=()
    mkdir -p "$D"
    echo "=== ($L) the PostgreSQL server restarts under a serving JRC"
    direct_jrc "$L" "$uri" 07 $n
    local gjrc=$daemon_pid
    join_direct "${ids[0]}" 20
    check "($L) pledge ${ids[0]} joins before the restart" test $? -eq 0
    # two pledges ask while the server goes down and comes back: their
    # retransmissions (or first requests) reach the reconnected JRC
    for k in 1 2; do
        join_direct "${ids[$k]}" 45 &
        pids+=($!)
    done
    check "($L) the server restarts (fast shutdown: sessions cut)" \
        timeout 60 "$(dirname "$0")/../pg-server.sh" restart "$dir"
    for k in 0 1; do
        wait "${pids[$k]}"; rc=$?
        check "($L) pledge ${ids[$((k + 1))]} joins across the restart" test $rc -eq 0
    done
    join_direct "${ids[3]}" 20
    check "($L) a new pledge joins after it" test $? -eq 0
    check "($L) the JRC is still running" kill -0 "$gjrc"
    "$COJP" jrc list --db "$uri" --json >"$D/list.json"
    printed "$D" "${ids[@]}" >"$D/printed.json"
    check "($L) the registry holds every pledge with the short id it printed, none twice" \
        same_as_printed "$D/list.json" "$D/printed.json"
    check "($L) jrc serve exits 0 on SIGTERM" stop_daemon "$gjrc"
}

# ---- (h): two instances whose hosts' clocks disagree ----------------------

# Instance B runs a minute ahead (faketime).  A runs a campaign (a node
# that never answers keeps it going a few seconds); B, idle, finds the
# next operation queued.  The campaign lock is stamped and judged by the
# server's clock: with each instance's own, B would take A's lock for a
# minute old and start its campaign beside A's.
skewed_clocks() {
    local L=h base=$1 D=$T/h db skew=60 a_pid b_pid bport pport p_pid
    mkdir -p "$D"
    echo "=== ($L) two JRC instances on hosts whose clocks are ${skew} s apart run one campaign at a time"
    # libfaketime (Debian faketime), preloaded straight into the daemon;
    # its thread-safe variant, as the daemon runs a sync thread.  A
    # sanitized daemon hangs in libfaketime's start (the sanitizer reads
    # the clock before libfaketime is set up): this case runs in the
    # plain build's pass of this suite only.
    if nm "$COJP" 2>/dev/null | grep -q ' __asan_init$'; then
        echo "note: ($L) left out: libfaketime cannot be preloaded into an AddressSanitizer build (runs in the plain build's pass)"
        return
    fi
    local ft
    ft=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
    if [ -z "$ft" ]; then
        bad "($L) libfaketime is not installed (scripts/install-deps.sh)"
        return
    fi
    # a database of its own: the pledges of (b) and (e) are not nodes
    psql "$base" -qc "CREATE DATABASE cojp_skew" >/dev/null || { bad "($L) CREATE DATABASE"; return; }
    db=$(echo "$base" | sed "s|:///postgres?|:///cojp_skew?|")
    "$COJP" jrc add --db "$db" --pledge 0c00000000000001 --psk "$(psk_of 0c00000000000001)" \
        --address "[::1]:$(free_udp_port)" || { bad "($L) jrc add of a silent node"; return; }
    psql "$db" -qc "UPDATE pledges SET joined = true" >/dev/null || bad "($L) mark the node joined"
    start_daemon "$D/A.log" '"event":"start"' -- jrc serve --db "$db" \
        --listen "[::1]:$(free_udp_port)" --ack-timeout 200 || abort "($L) jrc serve A" "$D/A.log"
    a_pid=$daemon_pid
    "$COJP" jrc rekey --db "$db" >/dev/null || bad "($L) jrc rekey"
    check "($L) A starts the first campaign" wait_for "$D/A.log" '"event":"campaign_start"' 10
    start_daemon "$D/B.log" '"event":"start"' env LD_PRELOAD="$ft" FAKETIME="+${skew}s" \
        -- jrc serve --db "$db" \
        --listen "[::1]:${bport:=$(free_udp_port)}" --ack-timeout 200 || abort "($L) jrc serve B" "$D/B.log"
    b_pid=$daemon_pid
    "$COJP" jrc rekey --db "$db" >/dev/null || bad "($L) jrc rekey"
    # B's timestamps taken back by the skew (lib.sh)
    order() { campaign_order "$D/A.log" "$D/B.log" "$skew"; }
    local end=$((SECONDS + 60))
    while [ $SECONDS -lt $end ] && [ "$(order | wc -w)" -lt 8 ]; do sleep 0.2; done
    echo "     campaigns: $(order)"
    check "($L) B's campaign starts only after A's is done" test "$(order)" = "start 1 done 1 start 2 done 2"
    check "($L) B's clock is the skewed one" python3 - "$D/B.log" "$skew" <<'PY'
import datetime, json, sys
d = json.loads(open(sys.argv[1]).readline())
t = datetime.datetime.fromisoformat(d["ts"].rstrip("Z"))
sys.exit(0 if t - datetime.datetime.utcnow() > datetime.timedelta(seconds=int(sys.argv[2]) // 2) else 1)
PY
    check "($L) B logs how far behind the server's clock its own is" python3 - "$D/B.log" "$skew" <<'PY'
import json, sys
skew = [json.loads(l)["registry_ahead_ms"] for l in open(sys.argv[1])
        if '"clock_skew"' in l]
sys.exit(0 if skew and abs(skew[0] + int(sys.argv[2]) * 1000) < 2000 else 1)
PY
    check "($L) A, on the server's clock, logs none" sh -c "! grep -q clock_skew '$D/A.log'"
    check "($L) no instance lost its lock to the other" \
        sh -c "! grep -h campaign_lock_lost '$D/A.log' '$D/B.log'"
    # Leases on the server's clock too: the node's lease on short id 7
    # ends 30 s from now by the server's clock, the cursor is put on 7,
    # and a pledge joins through B, for which that lease ended 30 s ago:
    # B must leave the id to the node (by its own clock it would take it).
    psql "$db" -qc "UPDATE pledges SET short_id = 7, lease_until =
        (extract(epoch FROM clock_timestamp()) * 1000)::int8 + 30000
        WHERE id = '\\x0c00000000000001'; UPDATE registry_state SET next_short = 7" \
        >/dev/null || bad "($L) a lease ending in 30 s"
    "$COJP" jrc add --db "$db" --pledge 0c00000000000002 --psk "$(psk_of 0c00000000000002)" ||
        bad "($L) jrc add"
    pport=$(free_udp_port)
    start_daemon "$D/P.log" '"event":"start"' -- proxy --listen "[::1]:$pport" \
        --jrc "[::1]:$bport" || abort "($L) proxy to B" "$D/P.log"
    p_pid=$daemon_pid
    timeout 40 "$COJP" pledge --id 0c00000000000002 --psk "$(psk_of 0c00000000000002)" \
        --proxy "[::1]:$pport" --json --timeout 30 >"$D/q.json" 2>"$D/q.err"
    echo "     admitted by B: $(cat "$D/q.json")"
    check "($L) B admits a pledge with another short id than the node's" \
        json "$D/q.json" "d['joined'] is True and d['short_id'] != '0007'"
    check "($L) the node's lease stands" test "$(psql "$db" -tAc \
        "SELECT short_id, lease_until IS NOT NULL FROM pledges WHERE id = '\\x0c00000000000001'")" = "7|t"
    check "($L) B stamps the admission on the server's clock, as its lease" test "$(psql "$db" -tAc \
        "SELECT abs(joined_at - (extract(epoch FROM clock_timestamp()) * 1000)::int8) < 20000
         FROM pledges WHERE id = '\\x0c00000000000002'")" = t
    check "($L) proxy exits 0 on SIGTERM" stop_daemon "$p_pid"
    check "($L) jrc serve A exits 0 on SIGTERM" stop_daemon "$a_pid"
    check "($L) jrc serve B exits 0 on SIGTERM" stop_daemon "$b_pid"
}

# ---- run ----------------------------------------------------------------

join_crash a "$T/a.db"
hostile a "$T/a.db"
disk_full
if [ "${COJP_CRASH_PG:-1}" != 0 ]; then
    PGDIR=$(mktemp -d /tmp/cojp-crash-pg-XXXXXX)
    lib_pgdirs+=("$PGDIR")
    if uri=$(timeout 60 "$(dirname "$0")/../pg-server.sh" start "$PGDIR" 2>"$T/pg.err"); then
        join_crash b "$uri"
        finish b
        two_jrcs "$uri"
        skewed_clocks "$uri"
        pg_restart "$uri" "$PGDIR"
    elif grep -q "binaries not found" "$T/pg.err"; then
        echo "note: (b) left out: no PostgreSQL server binaries"
    else
        bad "(b) throwaway PostgreSQL server"; cat "$T/pg.err"
    fi
fi
rekey_nodes
echo "     total $((SECONDS - t0)) s"
summary
