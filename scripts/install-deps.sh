#!/bin/sh
# Installs the Debian packages cojp needs to build, test, fuzz and measure.
# Idempotent and non-interactive; run as root on Debian 12 (bookworm).
set -eu

PKGS="
  make gcc clang lld
  libmbedtls-dev
  libsqlite3-dev sqlite3
  libpq-dev postgresql
  libclang-rt-14-dev
  gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
  qemu-system-arm dpkg-dev
  tshark faketime
  iproute2
  python3
"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# The Cortex-M build compiles mbedTLS from Debian's own source package
# (ports/cortex-m/fetch-mbedtls.sh runs `apt-get source mbedtls`), so the
# system's Debian sources must also offer deb-src.  Reuse whatever mirror
# the system already has; no host is named here.
need_update=0
if [ -f /etc/apt/sources.list.d/debian.sources ] &&
   grep -qE '^Types:[[:space:]]*deb[[:space:]]*$' /etc/apt/sources.list.d/debian.sources; then
    sed -i -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' \
        /etc/apt/sources.list.d/debian.sources
    need_update=1
fi
if [ -f /etc/apt/sources.list ] &&
   grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    tmp=$(mktemp)
    # Append a deb-src twin for every deb line that has none yet.
    awk '
        { line[NR] = $0 }
        /^[[:space:]]*deb-src[[:space:]]/ { s = $0; sub(/^[[:space:]]*deb-src/, "", s); have[s] = 1 }
        END {
            for (i = 1; i <= NR; i++) print line[i]
            for (i = 1; i <= NR; i++) if (line[i] ~ /^[[:space:]]*deb[[:space:]]/) {
                s = line[i]; sub(/^[[:space:]]*deb/, "", s)
                if (!(s in have)) { print "deb-src" s; have[s] = 1; added = 1 }
            }
            exit added ? 0 : 1
        }' /etc/apt/sources.list >"$tmp" && {
        cat "$tmp" >/etc/apt/sources.list
        need_update=1
    }
    rm -f "$tmp"
fi
if ! ls /var/lib/apt/lists/*_Sources* >/dev/null 2>&1; then
    need_update=1
fi
if [ $need_update -eq 1 ]; then
    echo "install-deps: deb-src enabled, updating package lists"
    apt-get update -qq
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

echo "install-deps: installing$missing"
# tshark asks whether non-root users may capture; answer "no" up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
