#!/bin/sh
# Architecture checks (STYLE.md habits 1 and 2):
#  - library sources (codecs, engines) and public headers include only
#    cojp headers and a few freestanding C headers;
#  - codecs include no engine header;
#  - the library archive references no allocator, stdio, socket or file API.
set -eu
fail=0
allowed='^(cojp/.*|stdint\.h|stddef\.h|stdbool\.h|string\.h|limits\.h|assert\.h)$'
for f in src/err.c src/codec/*.c src/engine/*.c include/cojp/*.h; do
    [ -f "$f" ] || continue
    for hdr in $(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/p' "$f"); do
        if ! echo "$hdr" | grep -qE "$allowed"; then
            echo "layers: $f includes $hdr"
            fail=1
        fi
    done
done
for f in src/codec/*.c; do
    [ -f "$f" ] || continue
    if grep -qE '#[[:space:]]*include[[:space:]]*"cojp/(pledge|proxy|jrc)\.h"' "$f"; then
        echo "layers: codec $f includes an engine header"
        fail=1
    fi
done
lib=${1:-build/libcojp.a}
if [ ! -f "$lib" ]; then
    echo "layers: $lib not built"
    exit 1
fi
bad=$(nm -u "$lib" | awk '{print $NF}' | grep -E \
  '^(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|printf|fprintf|sprintf|snprintf|puts|fopen|fwrite|fread|socket|sendto|recvfrom|open|read|write|time|clock_gettime|rand|random|exit)$' \
  | sort -u | tr '\n' ' ' || true)
if [ -n "$bad" ]; then
    echo "layers: $lib references forbidden symbols: $bad"
    fail=1
fi
[ $fail -eq 0 ] && echo "layers: ok (library includes and symbols clean)"
exit $fail
