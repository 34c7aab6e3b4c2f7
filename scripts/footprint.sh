#!/bin/sh
# Cross-compile the library modules freestanding for Cortex-M3 and print
# .text/.data/.bss per module and in total.  Crypto primitives are behind
# the port and not counted here.
set -eu
CC=${ARM_CC:-arm-none-eabi-gcc}
SIZE=${ARM_SIZE:-arm-none-eabi-size}
FLAGS="-std=c11 -Os -mcpu=cortex-m3 -mthumb -ffunction-sections -fdata-sections \
 -ffreestanding -Wall -Wextra -Werror -Iinclude"
out=build/footprint
mkdir -p "$out"
printf '%-22s %8s %8s %8s\n' module .text .data .bss
tt=0 td=0 tb=0
for src in src/err.c src/codec/*.c src/engine/*.c; do
    [ -f "$src" ] || continue
    obj="$out/$(basename "$src" .c).o"
    $CC $FLAGS -c "$src" -o "$obj"
    set -- $($SIZE "$obj" | awk 'NR==2 {print $1, $2, $3}')
    printf '%-22s %8d %8d %8d\n' "$(basename "$src" .c)" "$1" "$2" "$3"
    tt=$((tt + $1)) td=$((td + $2)) tb=$((tb + $3))
done
printf '%-22s %8d %8d %8d\n' total "$tt" "$td" "$tb"
