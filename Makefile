# cojp - build, test, fuzz and measure.
#
#   make                 library, port and the cojp binary (gcc by default)
#   make check           unit tests and fuzz-corpus replay
#   make check-asan      the same under AddressSanitizer + UBSan
#   make check-minimal   unit tests with the optional features off
#   make check-light     pledge tests, minimal profile + CJ_OSCORE_DERIVE=0
#   make check-integration  daemons and clients over loopback (tests/integration)
#   make check-netns     daemons across network namespaces (root)
#   make check-crash     daemons under SIGKILL and hostile datagrams
#   make check-pg        PostgreSQL store tests on a throwaway local server
#   make check-pg-asan   the same under AddressSanitizer + UBSan
#   make test            everything CI runs (scripts/test-all.sh)
#   make fuzz            long libFuzzer campaigns (FUZZ_SECONDS per harness)
#   make fuzz-smoke      a short bounded pass per harness
#   make footprint       Cortex-M3 sizes of the library modules
#   make bench           micro-benchmarks, then JRC joins/s vs a UDP echo (cojp bench)
#   make coverage        line/branch coverage by the unit tests (gcov);
#                        scripts/coverage.sh --all adds the process suites
#
# Variables: CC, BUILD (output folder), SAN (sanitizer flags), OPT.

CC ?= cc
BUILD ?= build
OPT ?= -O2 -g
SAN ?=

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2
CFLAGS := -std=c11 $(OPT) $(WARN) -Iinclude $(SAN) $(EXTRA_CFLAGS)
HOSTDEFS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc
LDLIBS := -lmbedcrypto $(EXTRA_LDLIBS)

LIB_SRC := src/err.c $(wildcard src/codec/*.c) $(wildcard src/engine/*.c)
PORT_SRC := $(wildcard src/port/*.c)
HOST_SRC := $(wildcard src/host/*.c)
STORE_SRC := $(wildcard src/store/*.c)
TEST_SRC := tests/test_main.c $(wildcard tests/unit/*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
PORT_OBJ := $(PORT_SRC:%.c=$(BUILD)/%.o)
HOST_OBJ := $(HOST_SRC:%.c=$(BUILD)/%.o) $(STORE_SRC:%.c=$(BUILD)/%.o)
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
# The JRC registry (src/store/) is SQLite or PostgreSQL (libpq).
PG_INCLUDE := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
HOSTDEFS += -I$(PG_INCLUDE)
STORE_LDLIBS := -lsqlite3 -lpq
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all check check-asan check-integration test fuzz fuzz-smoke footprint bench clean

all: $(BUILD)/libcojp.a $(BUILD)/cojp

# The library is freestanding-clean: no host feature macros.
$(BUILD)/src/codec/%.o $(BUILD)/src/engine/%.o $(BUILD)/src/err.o: HOSTDEFS :=

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(HOSTDEFS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(HOSTDEFS) -Itests -Isrc -MMD -MP -c $< -o $@

$(BUILD)/libcojp.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cojp: $(HOST_OBJ) $(BUILD)/libcojp.a $(PORT_OBJ)
	$(CC) $(CFLAGS) -o $@ $(HOST_OBJ) $(PORT_OBJ) $(BUILD)/libcojp.a $(LDLIBS) $(STORE_LDLIBS) $(HOST_LDLIBS)

$(BUILD)/unit_tests: $(TEST_OBJ) $(STORE_OBJ) $(BUILD)/libcojp.a $(PORT_OBJ)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(STORE_OBJ) $(PORT_OBJ) $(BUILD)/libcojp.a $(LDLIBS) $(STORE_LDLIBS)

# Each fuzz harness also builds as a plain program that replays its seed
# corpus and past crashers, so the normal test run exercises them.
$(BUILD)/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/libcojp.a $(PORT_OBJ)
	$(CC) $(CFLAGS) $(HOSTDEFS) -Itests -Isrc -o $@ $< tests/fuzz/replay_main.c $(FUZZ_HOST_$*:%.c=$(BUILD)/%.o) $(PORT_OBJ) $(BUILD)/libcojp.a $(LDLIBS)
# Harnesses of host-side parsers also link the host file they test.
FUZZ_HOST_addr := src/host/net.c
FUZZ_HOST_store := src/store/common.c
$(BUILD)/replay_addr: $(BUILD)/src/host/net.o
$(BUILD)/replay_store: $(BUILD)/src/store/common.o

REPLAYS := $(FUZZ_NAMES:%=$(BUILD)/replay_%)

check: $(BUILD)/unit_tests $(REPLAYS)
	$(BUILD)/unit_tests
	@for f in $(FUZZ_NAMES); do \
	    $(BUILD)/replay_$$f tests/fuzz/corpus/$$f tests/fuzz/crashers/$$f || exit 1; \
	done

# The daemons and clients as real processes over loopback UDP.
check-integration: $(BUILD)/cojp
	tests/integration/cli.sh $(BUILD)/cojp

# The daemons on three network namespaces (link-local pledge side, ULA
# towards the JRC; needs root, else skipped) and under crashes and
# hostile traffic (SIGKILLed JRC with SQLite and PostgreSQL, rekey of 50
# serving nodes, forged/garbage datagrams, a full disk under the SQLite
# registry, a PostgreSQL restart; dumpcap for the wire checks).
.PHONY: check-netns check-crash
check-netns: $(BUILD)/cojp
	tests/integration/netns.sh $(BUILD)/cojp
check-crash: $(BUILD)/cojp
	tests/integration/crash.sh $(BUILD)/cojp

ASAN_VARS = BUILD=build-asan CC=clang OPT="-O1 -g" \
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
check-asan:
	$(MAKE) check $(ASAN_VARS)
# the process-level suites again with daemons built the same way
.PHONY: check-daemons-asan
check-daemons-asan:
	$(MAKE) build-asan/cojp $(ASAN_VARS)
	scripts/asan-daemons.sh build-asan/cojp

# The minimal firmware profile: the optional features of cojp/config.h
# switched off, so code and tests behind them cannot rot.  Tests of a
# feature are compiled only with it; the build without it runs the test
# of the behaviour it has instead.
# check-minimal also takes the smallest read-ahead of the SQLite store,
# under UBSan's checks.
MINIMAL_CFLAGS := -DCJ_PLEDGE_RECOVERY=0 -DCJ_OSCORE_OBSERVE=0
.PHONY: check-minimal
check-minimal:
	$(MAKE) build-minimal/unit_tests BUILD=build-minimal \
	    EXTRA_CFLAGS="$(MINIMAL_CFLAGS) -DCJ_SQLITE_PREFETCH=8" \
	    SAN="-fsanitize=bounds,undefined -fno-sanitize-recover=all"
	build-minimal/unit_tests

# The lightweight pledge (RFC 9031 Appendix B): the minimal profile with
# the OSCORE context given at provisioning instead of derived from the
# PSK (no HKDF/SHA-256 on the device).  The pledge engine's tests only:
# the host tools always derive.
LIGHT_CFLAGS := $(MINIMAL_CFLAGS) -DCJ_OSCORE_DERIVE=0
.PHONY: check-light
check-light:
	$(MAKE) build-light/pledge_tests BUILD=build-light \
	    EXTRA_CFLAGS="$(LIGHT_CFLAGS)"
	build-light/pledge_tests
build-light/pledge_tests: build-light/tests/test_main.o \
    build-light/tests/unit/test_pledge.o build-light/libcojp.a $(PORT_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# PostgreSQL store tests against a throwaway server that the script
# starts in a temporary directory and stops whatever the outcome.
.PHONY: check-pg
check-pg: $(BUILD)/unit_tests
	tests/pg-server.sh run $(BUILD)/unit_tests pg_
# the same under AddressSanitizer + UBSan
.PHONY: check-pg-asan
check-pg-asan:
	$(MAKE) check-pg $(ASAN_VARS)

# libFuzzer binaries: clang, coverage, ASan + UBSan, whole library inside.
FUZZ_CFLAGS := -std=c11 -O1 -g $(WARN) -Iinclude -Itests -Isrc $(HOSTDEFS) \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(PORT_SRC) $(wildcard include/cojp/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(PORT_SRC) $(FUZZ_HOST_$*) $(LDLIBS)
$(BUILD)/fuzz/addr: $(FUZZ_HOST_addr)
$(BUILD)/fuzz/store: $(FUZZ_HOST_store)

FUZZ_SECONDS ?= 600
fuzz-smoke: FUZZ_SECONDS = 30
fuzz fuzz-smoke: $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
	@for f in $(FUZZ_NAMES); do \
	    scripts/fuzz-one.sh $(BUILD)/fuzz/$$f $$f $(FUZZ_SECONDS) || exit 1; \
	done

footprint:
	scripts/footprint.sh

.PHONY: coverage
coverage:
	scripts/coverage.sh

bench: $(BUILD)/libcojp.a $(PORT_OBJ) $(STORE_OBJ) $(BUILD)/cojp
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) $(HOSTDEFS) -O2 -o $(BUILD)/bench/bench tests/bench/*.c $(STORE_OBJ) $(PORT_OBJ) $(BUILD)/libcojp.a $(LDLIBS) $(STORE_LDLIBS)
	$(BUILD)/bench/bench
	@# JRC join exchanges/s over loopback against a UDP echo server (cojp
	@# bench): SQLite, then PostgreSQL on a throwaway server if installed
	$(BUILD)/cojp bench
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then \
	    tests/pg-server.sh run $(BUILD)/cojp bench --pg; \
	else echo "bench jrc-postgresql: skipped (no PostgreSQL server binaries)"; fi

test:
	scripts/test-all.sh

clean:
	rm -rf build build-*

-include $(shell find $(BUILD)/src $(BUILD)/tests -type f -name '*.d' 2>/dev/null)

# ---- Cortex-M3 firmware build and on-target tests (QEMU mps2-an385) ----
# make firmware / make firmware-test; rules in ports/cortex-m/cortex-m.mk.
include ports/cortex-m/cortex-m.mk
# ---- end of Cortex-M block ----

# ---- simulator: cojp sim (src/sim/) ----
SIM_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/sim/*.c))
HOST_OBJ += $(SIM_OBJ)
$(BUILD)/cojp: $(SIM_OBJ)
HOST_LDLIBS += -lm
# tests/unit/test_sim.c tests the model on the simulator's internals: the
# unit tests (and the benchmarks, which share that object list) link the
# simulator without its command line.  The prerequisite lines are needed
# because those rules' prerequisites were expanded before this block.
SIM_CORE_OBJ := $(filter-out %/sim_cmd.o,$(SIM_OBJ))
STORE_OBJ += $(SIM_CORE_OBJ)
STORE_LDLIBS += -lm
$(BUILD)/unit_tests bench: $(SIM_CORE_OBJ)
.PHONY: check-sim bench-sim
check-sim: $(BUILD)/cojp
	tests/integration/sim.sh $(BUILD)/cojp
bench-sim: $(BUILD)/cojp
	@# default settings (minimal cell + autonomous cells, slotframe 101,
	@# EBs every 16 s): 100-mote grid x 50 min, 10 000-mote grid x 1 h
	$(BUILD)/cojp sim --bench --no-progress --nodes 100 --duration 3000 | grep '^  joined'
	$(BUILD)/cojp sim --bench --no-progress --nodes 10000 --duration 3600 | grep '^  joined'
	@# denser load: 4 s EBs on the 10 000-mote grid, and a 1 000-mote
	@# random network (figures only, nothing is asserted)
	$(BUILD)/cojp sim --bench --no-progress --nodes 10000 --duration 3600 --eb-period 4 | grep '^  joined'
	$(BUILD)/cojp sim --bench --no-progress --nodes 1000 --topology random --duration 3600 | grep '^  joined'
# ---- end of simulator block ----
