#!/bin/sh
# Fetch Debian's own mbedTLS source package into build/ for the Cortex-M
# build (never committed).  Needs deb-src enabled and dpkg-dev installed,
# both done by scripts/install-deps.sh.  Prints the source directory.
# Skips the download when a tree is already there.  Leaves a symlink
# <dest>/current pointing at the tree, which the Makefile uses.
set -eu
cd "$(dirname "$0")/../.."
dest=${MBEDTLS_FETCH_DIR:-build/mbedtls-src}
mkdir -p "$dest"
dir=$(find "$dest" -maxdepth 1 -type d -name 'mbedtls-2.*' | sort | tail -1)
if [ -n "$dir" ] && [ -f "$dir/library/ccm.c" ]; then
    ln -sfn "$(basename "$dir")" "$dest/current"
    echo "$dir"
    exit 0
fi
(cd "$dest" && apt-get source -qq mbedtls >&2) || {
    echo "fetch-mbedtls: 'apt-get source mbedtls' failed;" \
         "run scripts/install-deps.sh as root (enables deb-src, installs dpkg-dev)" >&2
    exit 1
}
dir=$(find "$dest" -maxdepth 1 -type d -name 'mbedtls-2.*' | sort | tail -1)
if [ -z "$dir" ] || [ ! -f "$dir/library/ccm.c" ]; then
    echo "fetch-mbedtls: no mbedtls-2.x tree under $dest" >&2
    exit 1
fi
ln -sfn "$(basename "$dir")" "$dest/current"
echo "$dir"
