# Cortex-M3 firmware build and on-target tests (included by the top-level
# Makefile).  Everything goes to build/cortex-m whatever BUILD is.
#
#   make firmware        build/cortex-m/fw_tests.elf: the pledge-side library
#                        (codecs, pledge and Join Proxy engines), the crypto
#                        port over mbedTLS built for the target, the board
#                        support of ports/cortex-m and the test program
#   make firmware-test   run it on QEMU's mps2-an385; fails on any failure
#
# `make firmware` also links build/cortex-m/example.elf, the porting
# guide's main loop (ports/cortex-m/example_main.c) with the real crypto
# port and no test code, and `make firmware-test` (which CI runs) links
# it too, so the example cannot drift from the API.  It is built, never
# run.
#
# mbedTLS comes from Debian's source package, fetched into build/ by
# ports/cortex-m/fetch-mbedtls.sh (needs scripts/install-deps.sh).

FW := build/cortex-m
FW_CC ?= arm-none-eabi-gcc
FW_QEMU ?= qemu-system-arm
FW_TIMEOUT ?= 120
FW_ARCH := -mcpu=cortex-m3 -mthumb
FW_OPT := -Os -ffunction-sections -fdata-sections
FW_MBEDTLS := build/mbedtls-src/current
FW_MBEDTLS_STAMP := build/mbedtls-src/.fetched
FW_MBEDTLS_DEFS := -I$(FW_MBEDTLS)/include -Iports/cortex-m \
    '-DMBEDTLS_CONFIG_FILE="mbedtls_config.h"'
FW_CFLAGS := -std=c11 -g $(FW_ARCH) $(FW_OPT) -ffreestanding $(WARN) -Iinclude

# The closure of what src/port/crypto_mbedtls.c calls in mbedTLS 2.28 with
# ports/cortex-m/mbedtls_config.h.  platform.c is empty in this
# configuration and kept only so that the list stays complete.
FW_MBEDTLS_MODULES := aes ccm cipher cipher_wrap md sha256 hkdf \
    platform platform_util
FW_LIB_SRC := src/err.c $(wildcard src/codec/*.c) \
    $(wildcard src/engine/pledge.c src/engine/proxy.c)
# Test image only: the JRC engine and its in-memory store answer the
# pledge in the on-target join test; they are not pledge-side code.
FW_TEST_SRC := ports/cortex-m/tests/fw_tests.c \
    $(wildcard src/engine/jrc.c src/engine/jrc_memstore.c)
FW_BOARD_SRC := ports/cortex-m/startup.c ports/cortex-m/semihost.c
FW_PORT_SRC := src/port/crypto_mbedtls.c ports/cortex-m/mbedtls_pool.c \
    ports/cortex-m/random_test.c

FW_LIB_OBJ := $(FW_LIB_SRC:%.c=$(FW)/%.o)
FW_TEST_OBJ := $(FW_TEST_SRC:%.c=$(FW)/%.o)
FW_BOARD_OBJ := $(FW_BOARD_SRC:%.c=$(FW)/%.o)
FW_PORT_OBJ := $(FW_PORT_SRC:%.c=$(FW)/%.o)
FW_MBEDTLS_OBJ := $(FW_MBEDTLS_MODULES:%=$(FW)/mbedtls/%.o)

.PHONY: firmware firmware-test fetch-mbedtls

firmware: $(FW)/fw_tests.elf $(FW)/example.elf

fetch-mbedtls: $(FW_MBEDTLS_STAMP)

$(FW_MBEDTLS_STAMP): ports/cortex-m/fetch-mbedtls.sh
	ports/cortex-m/fetch-mbedtls.sh
	@touch $@

# Library, board and test code: our warnings, freestanding.
$(FW)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -MMD -MP -c $< -o $@

# The port files that include mbedTLS headers.
$(FW)/src/port/crypto_mbedtls.o $(FW)/ports/cortex-m/mbedtls_pool.o: \
    $(FW_MBEDTLS_STAMP)
$(FW)/src/port/crypto_mbedtls.o $(FW)/ports/cortex-m/mbedtls_pool.o: \
    FW_CFLAGS += $(FW_MBEDTLS_DEFS)
# The test image only: the deterministic generator (see random_test.c).
$(FW)/ports/cortex-m/random_test.o: FW_CFLAGS += -DCJ_FW_TEST_RANDOM

# mbedTLS itself: its own code, compiled without our -Werror.
$(FW)/mbedtls/%.o: $(FW_MBEDTLS_STAMP) ports/cortex-m/mbedtls_config.h
	@mkdir -p $(dir $@)
	$(FW_CC) -std=c99 $(FW_ARCH) $(FW_OPT) $(FW_MBEDTLS_DEFS) \
	    -c $(FW_MBEDTLS)/library/$*.c -o $@

$(FW)/libcojp.a: $(FW_LIB_OBJ)
	@rm -f $@
	arm-none-eabi-ar rcs $@ $^

$(FW)/libmbedcrypto.a: $(FW_MBEDTLS_OBJ)
	@rm -f $@
	arm-none-eabi-ar rcs $@ $^

# No newlib crt0 and no heap: libc supplies memcpy/memset/memcmp only, and
# any reference to sbrk, write or another system call fails the link.
$(FW)/fw_tests.elf: $(FW_TEST_OBJ) $(FW_BOARD_OBJ) \
    $(FW_PORT_OBJ) $(FW)/libcojp.a $(FW)/libmbedcrypto.a \
    ports/cortex-m/mps2-an385.ld
	$(FW_CC) $(FW_ARCH) -nostartfiles --specs=nano.specs \
	    -Wl,--gc-sections -Wl,-T,ports/cortex-m/mps2-an385.ld \
	    -Wl,-Map,$(FW)/fw_tests.map -o $@ \
	    $(FW_TEST_OBJ) $(FW_BOARD_OBJ) \
	    $(FW_PORT_OBJ) $(FW)/libcojp.a $(FW)/libmbedcrypto.a -lc -lgcc
	arm-none-eabi-size $@

# The porting guide's example: its own cj_crypto_random (a TRNG
# placeholder that fails closed), so not random_test.o.
FW_EXAMPLE_OBJ := $(FW)/ports/cortex-m/example_main.o
$(FW)/example.elf: $(FW_EXAMPLE_OBJ) $(FW_BOARD_OBJ) \
    $(FW)/src/port/crypto_mbedtls.o $(FW)/ports/cortex-m/mbedtls_pool.o \
    $(FW)/libcojp.a $(FW)/libmbedcrypto.a ports/cortex-m/mps2-an385.ld
	$(FW_CC) $(FW_ARCH) -nostartfiles --specs=nano.specs \
	    -Wl,--gc-sections -Wl,-T,ports/cortex-m/mps2-an385.ld \
	    -Wl,-Map,$(FW)/example.map -o $@ \
	    $(FW_EXAMPLE_OBJ) $(FW_BOARD_OBJ) $(FW)/src/port/crypto_mbedtls.o \
	    $(FW)/ports/cortex-m/mbedtls_pool.o $(FW)/libcojp.a \
	    $(FW)/libmbedcrypto.a -lc -lgcc
	arm-none-eabi-size $@

# The same example in the lightweight profile (RFC 9031 Appendix B:
# LIGHT_CFLAGS of the top-level Makefile): the library and the example
# rebuilt without key derivation, so the link leaves HKDF and SHA-256
# out; `make firmware` prints both sizes.
FW_LIGHT := $(FW)/light
FW_LIGHT_OBJ := $(FW_LIB_SRC:%.c=$(FW_LIGHT)/%.o) \
    $(FW_LIGHT)/ports/cortex-m/example_main.o
$(FW_LIGHT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) $(LIGHT_CFLAGS) -MMD -MP -c $< -o $@
$(FW)/example-light.elf: $(FW_LIGHT_OBJ) $(FW_BOARD_OBJ) \
    $(FW)/src/port/crypto_mbedtls.o $(FW)/ports/cortex-m/mbedtls_pool.o \
    $(FW)/libmbedcrypto.a ports/cortex-m/mps2-an385.ld
	$(FW_CC) $(FW_ARCH) -nostartfiles --specs=nano.specs \
	    -Wl,--gc-sections -Wl,-T,ports/cortex-m/mps2-an385.ld \
	    -Wl,-Map,$(FW)/example-light.map -o $@ \
	    $(FW_LIGHT_OBJ) $(FW_BOARD_OBJ) $(FW)/src/port/crypto_mbedtls.o \
	    $(FW)/ports/cortex-m/mbedtls_pool.o $(FW)/libmbedcrypto.a -lc -lgcc
	arm-none-eabi-size $@
firmware: $(FW)/example-light.elf

# Header dependencies of the firmware objects (-MMD above); without them a
# changed header leaves stale objects linked against a new layout.
-include $(shell find $(FW) -name '*.d' 2>/dev/null)

# The examples are linked first, so that CI, which runs firmware-test,
# notices when they no longer build against the API.
firmware-test: $(FW)/fw_tests.elf $(FW)/example.elf $(FW)/example-light.elf
	timeout $(FW_TIMEOUT) $(FW_QEMU) -M mps2-an385 -nographic \
	    -monitor none -serial none \
	    -semihosting-config enable=on,target=native -kernel $<
