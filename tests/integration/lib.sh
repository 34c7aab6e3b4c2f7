# shellcheck shell=bash disable=SC2034
# Helpers shared by the process-level tests (cli.sh, netns.sh, crash.sh);
# sourced, not run.  The including script sets NAME (its summary prefix), COJP
# (absolute path of the binary) and T (its temporary folder) first, and
# calls `lib_init` once.
#
# Everything a test starts is undone by one EXIT trap whatever happened:
# its background processes (killed, then waited for),
# the network namespaces in lib_netns (deleting one deletes the veths
# inside), veths in lib_links, PostgreSQL servers in lib_pgdirs
# (tests/pg-server.sh stop), file systems mounted on lib_mounts and the
# temporary folder.  Every wait is
# bounded.  COJP_TEST_KEEP=1 keeps the temporary folder (logs, captures).

passed=0 failed=0
lib_netns=() lib_links=() lib_pgdirs=() lib_mounts=()

# Processes: exactly this shell's background jobs still running (a
# recorded PID of a job that ended long ago may belong to someone else
# by now).
lib_cleanup() {
    local p pids
    pids=$(jobs -pr)
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    # give them a moment to exit on their own, then insist
    local end=$((SECONDS + 5))
    while [ -n "$(jobs -pr)" ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
    for p in $(jobs -pr); do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    for p in "${lib_pgdirs[@]}"; do
        timeout 60 "$LIB_DIR/../pg-server.sh" stop "$p" >/dev/null 2>&1
        rm -rf "$p"
    done
    for p in "${lib_netns[@]}"; do ip netns del "$p" 2>/dev/null; done
    for p in "${lib_links[@]}"; do ip link del "$p" 2>/dev/null; done
    for p in "${lib_mounts[@]}"; do umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null; done
    if [ "${COJP_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $T"
    elif [ -n "${T:-}" ] && [ -d "$T" ]; then
        rm -rf "$T"
    fi
}

lib_init() {
    LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    WIRE="$LIB_DIR/wire.py"
    trap lib_cleanup EXIT
    trap 'exit 130' INT TERM
}

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
summary() {
    echo "$NAME: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
# abort DESCRIPTION [LOG]: a failure the rest cannot survive
abort() {
    bad "$1"
    [ -n "${2:-}" ] && [ -f "$2" ] && tail -20 "$2"
    summary
    exit 1
}

# wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_for() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt "$end" ]; do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait_exit PID SECONDS: until PID is gone; its status in $exit_status.
wait_exit() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt "$end" ]; do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1" 2>/dev/null; exit_status=$?
            return 0
        fi
        sleep 0.05
    done
    exit_status=124
    return 1
}

# stop_daemon PID: SIGTERM, bounded wait; 0 when it exited 0.
stop_daemon() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" 10 || { kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 1; }
    [ "$exit_status" -eq 0 ]
}

# key_fp HEX: the fingerprint a daemon logs for a link-layer key (the
# first 8 bytes of HKDF-SHA256, salt "cojp key fingerprint", no info).
key_fp() {
    python3 -c "
import hashlib, hmac, sys
prk = hmac.new(b'cojp key fingerprint', bytes.fromhex(sys.argv[1]), hashlib.sha256).digest()
print(hmac.new(prk, b'\x01', hashlib.sha256).digest()[:8].hex())" "$1"
}

# psk_of ID: the PSK a test provisions for pledge ID (hex), 32 hex digits
# derived from the identifier: every pledge has one of its own, as the
# registry requires (RFC 9031 section 3), and every script and process
# of a test agrees on it without passing it around.
psk_of() { printf 'cojp test PSK %s' "$1" | sha256sum | cut -c1-32; }

# json FILE PYTHON-EXPR: the expression over d = the parsed file.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }

# free_udp_port: a random high UDP port nobody listens on right now.
free_udp_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return 0
        fi
    done
    echo $((20000 + RANDOM % 40000))
}

# start_daemon LOG READY_REGEX [PREFIX...] -- ARGS: run `$COJP ARGS`
# (optionally behind a prefix such as `ip netns exec NS`) in the
# background until LOG shows READY_REGEX (10 s).  Sets daemon_pid.
start_daemon() {
    local log=$1 ready=$2 prefix=()
    shift 2
    while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
    shift
    "${prefix[@]}" "$COJP" "$@" 2>"$log" &
    daemon_pid=$!
    local end=$((SECONDS + 10))
    while [ $SECONDS -lt $end ]; do
        grep -qE "$ready" "$log" 2>/dev/null && return 0
        kill -0 "$daemon_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# campaign_order LOG_A LOG_B [SKEW_S]: the campaign_start / campaign_done
# records of two daemons' logs in time order, as "start N" / "done N"
# words; LOG_B's timestamps are taken back SKEW_S seconds (a daemon whose
# clock runs that far ahead).
campaign_order() {
    python3 - "$@" <<'PY'
import datetime, json, sys
back = int(sys.argv[3]) if len(sys.argv) > 3 else 0
ev = []
for k, f in enumerate(sys.argv[1:3]):
    for line in open(f):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("event") in ("campaign_start", "campaign_done"):
            t = datetime.datetime.fromisoformat(d["ts"].rstrip("Z"))
            if k == 1:
                t -= datetime.timedelta(seconds=back)
            ev.append((t, d["event"][9:], d["campaign"]))
print(" ".join("%s %d" % (e, c) for _, e, c in sorted(ev)))
PY
}

# start_capture FILE IFACE FILTER [PREFIX...]: dumpcap writing a classic
# pcap, until it reports capturing (10 s).  Sets capture_pid.
start_capture() {
    local file=$1 ifc=$2 filter=$3
    shift 3
    "$@" dumpcap -i "$ifc" -f "$filter" -P -q -B 16 -w "$file" 2>"$file.log" &
    capture_pid=$!
    local end=$((SECONDS + 10))
    while [ $SECONDS -lt $end ]; do
        grep -q "^Capturing on" "$file.log" 2>/dev/null && return 0
        kill -0 "$capture_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_capture: let the kernel hand over the last packets, then stop
# dumpcap (it flushes the file on SIGINT).
stop_capture() {
    sleep 0.3
    kill -INT "$capture_pid" 2>/dev/null
    wait_exit "$capture_pid" 10
}

have_capture() { command -v dumpcap >/dev/null 2>&1; }
