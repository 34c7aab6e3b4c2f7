#!/bin/sh
# Run one libFuzzer harness for a bounded time on a scratch copy of its
# seed corpus.  Prints the execution count; a crash is copied to
# tests/fuzz/crashers/NAME/ (to be fixed and kept) and fails the run.
# usage: fuzz-one.sh BINARY NAME SECONDS
set -u
bin=$1 name=$2 secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp tests/fuzz/corpus/"$name"/* "$work/corpus/" 2>/dev/null || true
if [ -d tests/fuzz/crashers/"$name" ]; then
    cp tests/fuzz/crashers/"$name"/* "$work/corpus/" 2>/dev/null || true
fi
"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
if [ $rc -ne 0 ] || ls "$work/artifacts"/* >/dev/null 2>&1; then
    mkdir -p tests/fuzz/crashers/"$name"
    cp "$work/artifacts"/* tests/fuzz/crashers/"$name"/ 2>/dev/null || true
    tail -40 "$work/log"
    echo "fuzz $name: FAILED after ${execs:-?} execs (inputs saved in tests/fuzz/crashers/$name/)"
    exit 1
fi
echo "fuzz $name: ${execs:-?} execs in ${secs} s, no crash"
