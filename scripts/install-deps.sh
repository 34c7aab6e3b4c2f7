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
  qemu-system-arm
  tshark
  iproute2
  python3
"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
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
