#!/bin/sh
# A throwaway PostgreSQL server for the store tests.
#
#   tests/pg-server.sh start DIR     initdb in DIR/data, start a server that
#                                    listens only on a unix socket in DIR,
#                                    wait until it accepts connections and
#                                    print its connection URI
#   tests/pg-server.sh stop DIR      stop it (fast) and delete DIR
#   tests/pg-server.sh restart DIR   stop it (fast: sessions are cut) and
#                                    start it again with the same settings
#   tests/pg-server.sh run CMD...    start one in a new temporary directory,
#                                    run CMD with COJP_PG_URI set, stop it
#                                    whatever happens; exit status of CMD
#
# initdb and postgres refuse to run as root: as root the server runs as
# the `postgres` user (runuser), which then owns DIR.  No TCP port is
# opened; fsync is off (the data is thrown away).
set -eu

PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && PGBIN=$d
    done
fi
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    if command -v initdb >/dev/null 2>&1; then
        PGBIN=$(dirname "$(command -v initdb)")
    else
        echo "pg-server: PostgreSQL server binaries not found (set PGBIN)" >&2
        exit 2
    fi
fi

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

uri_of() {
    echo "postgresql:///postgres?host=$1&user=postgres"
}

start() {
    dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    # unix socket in DIR only; small, quiet, fast
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses= -c unix_socket_directories=$dir -p 5432 \
            -c fsync=off -c full_page_writes=off -c max_connections=40 \
            -c shared_buffers=16MB -c deadlock_timeout=200ms" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        return 1
    }
    i=0
    until "$PGBIN/pg_isready" -q -h "$dir" -p 5432 -t 2; do
        i=$((i + 1))
        if [ $i -ge 30 ]; then
            echo "pg-server: not ready after 30 tries" >&2
            cat "$dir/server.log" >&2
            return 1
        fi
        sleep 0.2
    done
    uri_of "$dir"
}

stop() {
    dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop \
            >/dev/null 2>&1 || true
    fi
    # only ever delete what start created
    if [ -f "$dir/initdb.log" ]; then
        rm -rf "$dir"
    fi
}

restart() {
    dir=$1
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -m fast restart \
        >/dev/null || {
        cat "$dir/server.log" >&2
        return 1
    }
}

case ${1:-} in
start)
    [ $# -eq 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }
    # a half-started server is stopped again
    trap 'stop "$2"' EXIT
    start "$2"
    trap - EXIT
    ;;
stop)
    [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop "$2"
    ;;
restart)
    [ $# -eq 2 ] || { echo "usage: $0 restart DIR" >&2; exit 2; }
    restart "$2"
    ;;
run)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 run CMD..." >&2; exit 2; }
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cojp-pg.XXXXXX")
    trap 'stop "$tmp"; rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
    COJP_PG_URI=$(start "$tmp")
    export COJP_PG_URI
    echo "pg-server: $COJP_PG_URI"
    set +e
    "$@"
    rc=$?
    set -e
    exit $rc
    ;;
*)
    echo "usage: $0 start DIR | stop DIR | restart DIR | run CMD..." >&2
    exit 2
    ;;
esac
