#!/bin/sh
# Cross-compile the library modules freestanding for Cortex-M3 and print
# .text/.data/.bss per module and in total.  Crypto primitives are behind
# the port and not counted here.  Then link a reference program per role
# (pledge library: codecs + pledge engine; Join Proxy engine) with
# --gc-sections and print what a firmware really carries, the profiles
# and an -flto build of the pledge program, against the pledge library
# budget (printed; what is enforced is the ceiling at the end).
set -eu
CC=${ARM_CC:-arm-none-eabi-gcc}
SIZE=${ARM_SIZE:-arm-none-eabi-size}
FLAGS="-std=c11 -Os -mcpu=cortex-m3 -mthumb -ffunction-sections -fdata-sections \
 -ffreestanding -Wall -Wextra -Werror -Iinclude"
out=${FOOTPRINT_OUT:-build/footprint}
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

# ---- linked figures ------------------------------------------------------
# What a firmware really carries: a reference program that calls every
# public entry point of one role (ports/cortex-m/footprint/ref_*.c) is
# linked with --gc-sections against the objects above, with the crypto
# port stubbed out (ports/cortex-m/footprint/crypto_stub.c).  The linker
# map then tells, per input object, what survived; the library figure
# counts only cojp's own objects, not the reference program, the stubs or
# the libc/libgcc helpers (memcpy, 64-bit division), shown apart.
ref=$out/ref
mkdir -p "$ref"
for src in ports/cortex-m/footprint/*.c; do
    $CC $FLAGS -c "$src" -o "$ref/$(basename "$src" .c).o"
done
codecs=""
for src in src/err.c src/codec/*.c; do
    [ -f "$src" ] && codecs="$codecs $out/$(basename "$src" .c).o"
done

# Sum allocated input sections of a GNU ld map by owner: lib (an object
# of $out itself), libc (an archive member), other (reference program,
# stubs).  Prints "lib_text lib_data lib_bss libc_text libc_data
# libc_bss"; with a second argument, per-object lines of lib instead.
map_sizes() {
    awk -v dir="${mapdir:-$out}/" -v per="${2:-}" '
        function hex(s,   i, v) {
            v = 0; s = tolower(s); sub(/^0x/, "", s)
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        /^Linker script and memory map/ { inmap = 1; next }
        !inmap { next }
        /^[.][^ ]*/ { osec = $1; pend = 0; next }
        /^ [.][^ ]*$/ { pend = 1; next }
        {
            if ($0 ~ /^ [.]/ && $2 ~ /^0x/ && NF >= 4) { size = $3; file = $4 }
            else if (pend && $1 ~ /^0x/ && NF == 3) { size = $2; file = $3 }
            else { next }
            pend = 0
            if (osec == ".text" || osec == ".ARM.exidx" || osec == ".rodata") k = "text"
            else if (osec == ".data") k = "data"
            else if (osec == ".bss") k = "bss"
            else next
            n = hex(size)
            if (index(file, ".a(") > 0) owner = "libc"
            else if (substr(file, 1, length(dir)) == dir && index(substr(file, length(dir) + 1), "/") == 0) {
                owner = "lib"
                m = substr(file, length(dir) + 1); sub(/[.]o$/, "", m)
                mod[m, k] += n; mods[m] = 1
            } else owner = "other"
            sum[owner, k] += n
        }
        END {
            if (per != "") {
                for (m in mods)
                    printf "  %-20s %8d %8d %8d\n", m, mod[m, "text"], mod[m, "data"], mod[m, "bss"]
            } else
                printf "%d %d %d %d %d %d\n", sum["lib", "text"], sum["lib", "data"], sum["lib", "bss"], sum["libc", "text"], sum["libc", "data"], sum["libc", "bss"]
        }' "$1"
}

link_ref() {
    name=$1
    shift
    $CC -mcpu=cortex-m3 -mthumb -nostartfiles --specs=nano.specs \
        -Wl,--gc-sections -Wl,-e,main -Wl,-T,ports/cortex-m/mps2-an385.ld \
        -Wl,-Map,"$ref/$name.map" -o "$ref/$name.elf" \
        "$ref/ref_$name.o" "$ref/crypto_stub.o" "$@" -lc -lgcc
}

# Size of a static object of the reference program (the caller-allocated
# engine context).
sym_size() {
    v=$(arm-none-eabi-nm -S "$1" | awk -v s="$2" '$4 == s { print $2 }')
    echo $((0x${v:-0}))
}

report() {
    title=$1 map=$2
    set -- $(map_sizes "$map")
    printf '%-22s %8d %8d %8d\n' "$title" "$1" "$2" "$3"
    printf '%-22s %8d %8d %8d\n' "  + libc/libgcc" "$4" "$5" "$6"
    map_sizes "$map" per | sort
}

echo
echo "linked with --gc-sections, crypto excluded:"
printf '%-22s %8s %8s %8s\n' program .text .data .bss
link_ref pledge $codecs "$out/pledge.o"
report "pledge library" "$ref/pledge.map"
set -- $(map_sizes "$ref/pledge.map")
ptext=$1 pram=$(($2 + $3))
link_ref proxy $codecs "$out/proxy.o"
report "join proxy engine" "$ref/proxy.map"
echo "context structs (caller-allocated): cj_pledge_t $(sym_size "$ref/pledge.elf" pledge) bytes," \
     "cj_proxy_t $(sym_size "$ref/proxy.elf" proxy) bytes"
# profile NAME LABEL FLAGS: the pledge library rebuilt with FLAGS, linked
# like the one above; prints its line.
profile() {
    name=$1 label=$2 pflags=$3
    pdir=$out/$name
    mkdir -p "$pdir/ref"
    pobjs=""
    for src in src/err.c src/codec/*.c src/engine/pledge.c; do
        [ -f "$src" ] || continue
        obj="$pdir/$(basename "$src" .c).o"
        $CC $FLAGS $pflags -c "$src" -o "$obj"
        pobjs="$pobjs $obj"
    done
    $CC $FLAGS $pflags -c ports/cortex-m/footprint/ref_pledge.c \
        -o "$pdir/ref/ref_pledge.o"
    $CC -mcpu=cortex-m3 -mthumb -nostartfiles --specs=nano.specs \
        -Wl,--gc-sections -Wl,-e,main -Wl,-T,ports/cortex-m/mps2-an385.ld \
        -Wl,-Map,"$ref/pledge_$name.map" -o "$ref/pledge_$name.elf" \
        "$pdir/ref/ref_pledge.o" "$ref/crypto_stub.o" $pobjs -lc -lgcc
    set -- $(mapdir=$pdir map_sizes "$ref/pledge_$name.map")
    printf '%-22s %8d %8d %8d   (%s)\n' "$label" "$1" "$2" "$3" "$pflags"
}
# The minimal profile: the optional features of cojp/config.h switched
# off (the build `make check-minimal` tests).  The lightweight one (RFC
# 9031 Appendix B, `make check-light`): the minimal one with the OSCORE
# context given at provisioning, so no key derivation on the device (nor
# HKDF/SHA-256 in its crypto port: not counted here anyway).
MIN_FLAGS="-DCJ_PLEDGE_RECOVERY=0 -DCJ_OSCORE_OBSERVE=0"
profile minimal "pledge minimal profile" "$MIN_FLAGS"
profile light "pledge lightweight" "$MIN_FLAGS -DCJ_OSCORE_DERIVE=0"
# Link-time optimisation, which a firmware may use: the same reference
# program built with -flto.  LTO merges the objects, so the map no longer
# tells the library's share apart; compare whole programs (library,
# reference program, stubs and libc) instead.
ldir=$out/lto
mkdir -p "$ldir"
lobjs=""
for src in src/err.c src/codec/*.c src/engine/pledge.c \
           ports/cortex-m/footprint/ref_pledge.c \
           ports/cortex-m/footprint/crypto_stub.c; do
    [ -f "$src" ] || continue
    obj="$ldir/$(basename "$src" .c).o"
    $CC $FLAGS -flto -c "$src" -o "$obj"
    lobjs="$lobjs $obj"
done
$CC -mcpu=cortex-m3 -mthumb -nostartfiles --specs=nano.specs -Os -flto \
    -Wl,--gc-sections -Wl,-e,main -Wl,-T,ports/cortex-m/mps2-an385.ld \
    -o "$ldir/pledge.elf" $lobjs -lc -lgcc
whole=$($SIZE "$ref/pledge.elf" | awk 'NR==2 {print $1}')
lto=$($SIZE "$ldir/pledge.elf" | awk 'NR==2 {print $1}')
printf '%-22s %8d %8s %8s   (whole program, %d without -flto: %d less)\n' \
    "pledge program -flto" "$lto" - - "$whole" $((whole - lto))
# The budget: 5,120 bytes of .text and 512 bytes of .data+.bss.  The RAM
# part is met and enforced.  The .text part is not met yet (README,
# "Status and known gaps"); until it is, the library may not grow past
# where it stands (CEILING), so no change undoes the way made towards it.
verdict() { [ "$1" -le "$2" ] && echo within || echo OVER; }
ceiling=${PLEDGE_TEXT_CEILING:-9499}
echo "pledge library budget: .text $ptext of 5120 ($(verdict "$ptext" 5120))," \
     ".data+.bss $pram of 512 ($(verdict "$pram" 512));" \
     "enforced: .text <= $ceiling, .data+.bss <= 512"
if [ "$pram" -gt 512 ] || [ "$ptext" -gt "$ceiling" ]; then
    echo "footprint: the pledge library grew past what is enforced" >&2
    exit 1
fi
