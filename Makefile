# Portico — GNU make, non-recursive. Outputs go to $(B) (default build/).
# Targets: all modules test unit e2e run sanitize fuzz bench install clean format
B ?= build
CONFIG := $(B)/config.mk

# Parallel by default (one job per core); `make -jN` on the command line wins.
# Only the top-level make: sub-makes share its jobserver.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

# configure arguments for a build directory whose config is missing; once
# written, config.mk records its own CONFIGURE_ARGS (rerun if configure changes)
CONFIGURE_ARGS_build-asan := --with-sanitizers --with-debug
CONFIGURE_ARGS_build-fuzz := --with-fuzz

.DEFAULT_GOAL := all
# no half-written outputs after a failed command; objects chained through
# pattern rules (mobj/*.o) are kept, not deleted as intermediates
.DELETE_ON_ERROR:
.SECONDARY:
# Goals that need no config of $(B): sanitize and fuzz run a sub-make with
# their own B. Any other goal (or none) includes it; a fresh checkout has
# none, so make installs what is missing and configures, then restarts.
NOCONFIG_GOALS := deps clean distclean sanitize fuzz format
ifneq ($(MAKECMDGOALS),)
ifeq ($(filter-out $(NOCONFIG_GOALS),$(MAKECMDGOALS)),)
SKIP_CONFIG := 1
endif
endif
ifndef SKIP_CONFIG
include $(CONFIG)
endif
CONFIGURE_ARGS ?= $(CONFIGURE_ARGS_$(B))
$(CONFIG): configure
	scripts/deps --check >/dev/null 2>&1 || scripts/deps
	./configure --builddir=$(B) $(CONFIGURE_ARGS)

WARN      := -Wall -Wextra -Werror
CXXSTD    := -std=c++20
CPPFLAGS  := -Icore/include -Icore -I$(B) -MMD -MP
LIB_CFLAGS = $(EVENT_CFLAGS) $(PCRE2_CFLAGS) $(SSL_CFLAGS) $(ZLIB_CFLAGS)
CORE_LIBS  = $(EVENT_LIBS) $(PCRE2_LIBS) $(SSL_LIBS) $(ZLIB_LIBS) -ldl -lpthread
ALLCXX     = $(CXX) $(CXXSTD) $(WARN) $(OPT) $(SAN) $(FUZZFLAGS) $(CPPFLAGS) $(LIB_CFLAGS)

# Everything compiled depends on $(B)/flags, rewritten only when the compilers
# or flags change: `./configure --with-debug` rebuilds, a no-op rerun does not.
FLAGS_STAMP := $(B)/flags
ifndef SKIP_CONFIG
ifneq ($(wildcard $(CONFIG)),)
BUILD_FLAGS := $(strip $(CXX) $(CC) $(OPT) $(SAN) $(FUZZFLAGS) $(LIB_CFLAGS))
ifneq ($(file <$(FLAGS_STAMP)),$(BUILD_FLAGS))
$(file >$(FLAGS_STAMP),$(BUILD_FLAGS))
endif
endif
endif
$(FLAGS_STAMP):
	@mkdir -p $(dir $@); touch $@

CORE_SRC  := $(shell find core -name '*.cc' ! -name main.cc | sort)
CORE_OBJ  := $(CORE_SRC:%.cc=$(B)/obj/%.o)
MAIN_OBJ  := $(B)/obj/core/main.o
CORE_LIB  := $(B)/libportico.a
BIN       := $(B)/portico

MODULE_DIRS := $(sort $(dir $(wildcard modules/*/module.cc modules/*/*.c)))
MODULE_NAMES := $(notdir $(patsubst %/,%,$(MODULE_DIRS)))
MODULE_SOS := $(MODULE_NAMES:%=$(B)/modules/%.so)
# a module may add link flags in modules/<name>/module.mk as LIBS_<name> = ...
-include $(wildcard modules/*/module.mk)

UNIT_SRC  := $(shell find t/unit -name 'test_*.cc' -o -name 'test_*.c' 2>/dev/null | sort)
UNIT_BIN  := $(patsubst %.c,%,$(patsubst %.cc,%,$(UNIT_SRC:%=$(B)/%)))
UNIT_SUPPORT := $(shell find t/unit/support -name '*.cc' 2>/dev/null)
FUZZ_SRC  := $(wildcard t/fuzz/*.cc)
FUZZ_BIN  := $(FUZZ_SRC:t/fuzz/%.cc=$(B)/fuzz/%)
PEER_SRC  := $(wildcard t/peers/*.c)
PEER_BIN  := $(PEER_SRC:t/peers/%.c=$(B)/peers/%)

.PHONY: all modules test unit unit-only e2e bench-smoke run sanitize fuzz fuzz-targets bench install clean distclean format deps

all: $(BIN) modules $(PEER_BIN)
modules: $(MODULE_SOS)

$(B)/obj/%.o: %.cc $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(ALLCXX) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(CORE_LIB)
	$(CXX) $(SAN) $(FUZZFLAGS) $(MAIN_OBJ) $(CORE_LIB) $(CORE_LIBS) -o $@

# Modules: PIC objects, only the ABI header, no undefined symbols left.
$(B)/mobj/%.o: %.cc $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) $(OPT) $(SAN) -fPIC -fvisibility=hidden -Icore/include $(LIB_CFLAGS) -MMD -MP -c $< -o $@
$(B)/mobj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) $(OPT) $(SAN) -fPIC -fvisibility=hidden -Icore/include -MMD -MP -c $< -o $@

mod_objs = $(patsubst %.c,$(B)/mobj/%.o,$(patsubst %.cc,$(B)/mobj/%.o,$(wildcard modules/$(1)/*.cc modules/$(1)/*.c)))
mod_test_srcs = $(filter-out %/module.cc,$(wildcard modules/$(firstword $(subst /, ,$(1)))/*.cc))

.SECONDEXPANSION:
$(B)/modules/%.so: $$(call mod_objs,$$*)
	@mkdir -p $(dir $@)
	$(CXX) -shared $(SAN) -Wl,--no-undefined $^ $(LIBS_$*) -o $@

# unit tests of a module's pure parts link that module's sources but module.cc
$(B)/t/unit/modules/%: t/unit/modules/%.cc $(CORE_LIB) $$(call mod_test_srcs,$$*) $(UNIT_SUPPORT)
	@mkdir -p $(dir $@)
	$(ALLCXX) $(CMOCKA_CFLAGS) -It/unit -Imodules $< $(call mod_test_srcs,$*) $(UNIT_SUPPORT) $(CORE_LIB) $(CMOCKA_LIBS) $(CORE_LIBS) -o $@
$(B)/t/unit/%: t/unit/%.cc $(CORE_LIB) $(UNIT_SUPPORT)
	@mkdir -p $(dir $@)
	$(ALLCXX) $(CMOCKA_CFLAGS) -It/unit $< $(UNIT_SUPPORT) $(CORE_LIB) $(CMOCKA_LIBS) $(CORE_LIBS) -o $@
$(B)/t/unit/%: t/unit/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(SAN) -Icore/include $(CMOCKA_CFLAGS) $< $(CMOCKA_LIBS) -o $@

$(B)/peers/%: t/peers/%.c $(wildcard t/peers/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(WARN) -O2 $< -o $@

# A fuzz target may name module sources it needs on a line
# "// fuzz-sources: a.cc b.cc"; they are prerequisites and linked in.
fuzz_sources = $(shell sed -n 's|^// fuzz-sources:||p' t/fuzz/$(1).cc)
$(B)/fuzz/%: t/fuzz/%.cc $(CORE_LIB) $$(call fuzz_sources,$$*)
	@mkdir -p $(dir $@)
	$(ALLCXX) -Imodules -fsanitize=fuzzer $< $(call fuzz_sources,$*) $(CORE_LIB) $(CORE_LIBS) -o $@

# ---- running tests
# In a sanitizer build ($(SAN) set) every process the tests start runs with
# these options. Unit tests report on their own stderr (the runner shows it);
# the server's stderr goes to a test's temp dir, which is deleted, so the
# servers (and everything else) write reports to $(SAN_DIR) instead: after
# e2e and the bench smoke, any file there fails the run and is printed.
# Workers leave with _exit(), which skips LSan's own check at exit: in these
# builds (PT_WITH_LSAN) a worker runs it before leaving (core/process/worker.cc).
SAN_DIR := $(abspath $(B))/sanitizer-reports
SAN_COMMON := abort_on_error=1:disable_coredump=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1
ifneq ($(strip $(SAN)),)
SAN_ENV_UNIT = ASAN_OPTIONS=$(SAN_COMMON) UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_ENV_E2E  = ASAN_OPTIONS=$(SAN_COMMON):log_path=$(SAN_DIR)/asan \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SAN_DIR)/ubsan \
               PORTICO_SANITIZER_DIR=$(SAN_DIR)
endif
san_reset = rm -rf $(SAN_DIR); mkdir -p $(SAN_DIR)
# fails (after printing them) if any sanitizer report was written
san_check = if [ -n "$$(ls -A $(SAN_DIR) 2>/dev/null)" ]; then \
	  echo "sanitizer reports in $(SAN_DIR):"; \
	  for f in $(SAN_DIR)/*; do echo "=== $$f"; head -60 "$$f"; done; false; fi

# Every unit binary runs (bounded) even after a failure; one line each, the
# output of the failing ones, and one summary line at the end.
UNIT_TIMEOUT ?= 300
define run_unit
pass=0; failed=""; \
for t in $(UNIT_BIN); do \
  name=$${t#$(B)/t/unit/}; log=$$t.log; \
  $(SAN_ENV_UNIT) timeout -k 5 $(UNIT_TIMEOUT) $$t >$$log 2>&1; rc=$$?; \
  n=$$(sed -n 's/^\[==========\] \([0-9]*\) test(s) run\./\1/p' $$log | tail -1); \
  if [ $$rc = 0 ]; then pass=$$((pass+1)); printf 'unit ok    %-45s %s tests\n' $$name "$${n:-?}"; \
  else failed="$$failed $$name"; \
    what="exit $$rc"; [ $$rc = 124 ] && what="timed out after $(UNIT_TIMEOUT)s"; \
    printf 'unit FAIL  %-45s %s (%s tests) -- output:\n' $$name "$$what" "$${n:-?}"; \
    sed 's/^/    | /' $$log | tail -200; fi; \
done; \
nfail=$$(echo $$failed | wc -w); \
echo "unit: $$pass passed, $$nfail failed$${failed:+:$$failed}"; \
[ $$nfail = 0 ]
endef
define run_e2e
$(san_reset); \
$(SAN_ENV_E2E) PORTICO_BIN=$(abspath $(BIN)) PORTICO_BUILD=$(abspath $(B)) prove -j2 -It/lib t/; rc=$$?; \
$(san_check) || rc=1; [ $$rc = 0 ]
endef
define run_bench_smoke
$(san_reset); \
$(SAN_ENV_E2E) PORTICO_BUILD=$(abspath $(B)) scripts/bench --smoke; rc=$$?; \
$(san_check) || rc=1; [ $$rc = 0 ]
endef

unit: all $(UNIT_BIN)
	@$(run_unit)
# the unit binaries only (what test runs again under sanitizers)
unit-only: $(UNIT_BIN)
	@$(run_unit)

e2e: all
	@$(run_e2e)

bench-smoke: all
	@$(run_bench_smoke)

# The steps run one after another (never in parallel with each other,
# whatever -j says) and all of them run: the summary names every failure.
#
# Sanitizers in `make test` (the command CI runs, .ci/run; 2 cores, 90 min):
# besides the normal build, the unit tests run a second time built with
# ASan + UBSan + LSan in build-asan/ (unit-only: no server, no e2e). That
# costs one more compile of the core (~2-3 min on CI's 2 cores) and seconds
# of running, and it catches memory errors in every parser and builder on
# every push. The full `make sanitize` (e2e and bench smoke too, under ASan)
# is not part of it: ~13 min from scratch on 2 busy cores (measured with the
# robustness tests in: ASan build ~6.5 min, then unit + e2e 206 s + bench
# smoke 14 s = 6.8 min with a warm build-asan/), which would fit CI's 90 min
# next to `make test` but doubles its length. Run it before a merge that
# touches core/ or modules/ (issue 8: it must pass with zero reports, workers'
# leak checks included).
# TEST_SANITIZE=no skips the sanitized unit pass (e.g. a quick local loop).
TEST_SANITIZE ?= yes
ifneq ($(strip $(SAN)),)
TEST_SANITIZE := no
endif
test: all $(UNIT_BIN)
	@st=""; \
	{ $(run_unit); } || st="$$st unit"; \
	{ $(run_e2e); } || st="$$st e2e"; \
	{ $(run_bench_smoke); } || st="$$st bench-smoke"; \
	if [ "$(TEST_SANITIZE)" = yes ]; then \
	  echo "== unit tests again with ASan + UBSan + LSan (build-asan/)"; \
	  $(MAKE) --no-print-directory B=build-asan unit-only || st="$$st unit(asan)"; fi; \
	if [ -n "$$st" ]; then echo "make test ($(B)): FAILED:$$st"; exit 1; fi; \
	echo "make test ($(B)): all passed"

run: all
	scripts/run-demo $(B)

# The whole `make test` again with ASan + UBSan + LSan, in build-asan/
# (configured on first use with --with-sanitizers --with-debug).
sanitize:
	$(MAKE) B=build-asan test

# Every t/fuzz/*.cc as a libFuzzer binary (clang, ASan + UBSan) in
# build-fuzz/fuzz/; scripts/fuzz TARGET SECONDS runs one.
fuzz:
	$(MAKE) B=build-fuzz fuzz-targets
fuzz-targets: $(FUZZ_BIN)

# the peers (nginx, HAProxy, lighttpd, Caddy, wrk, Go, PHP-FPM) are installed
# first when missing, so a fresh machine runs the whole table
bench: all
	scripts/deps --bench
	scripts/bench

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/portico/modules $(DESTDIR)$(PREFIX)/etc/portico
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/portico
	install -m 644 $(MODULE_SOS) $(DESTDIR)$(PREFIX)/lib/portico/modules/
	install -m 644 conf/mime.types conf/fastcgi_params conf/fastcgi.conf $(DESTDIR)$(PREFIX)/etc/portico/ 2>/dev/null || true

format:
	clang-format -i $$(find core modules t/unit t/fuzz -name '*.cc' -o -name '*.h' -o -name '*.c')

deps:
	scripts/deps

clean:
	rm -rf $(B)/obj $(B)/mobj $(B)/modules $(B)/t $(B)/fuzz $(B)/peers $(B)/portico $(B)/libportico.a $(B)/sanitizer-reports
distclean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B)/obj $(B)/mobj $(B)/t $(B)/fuzz -name '*.d' 2>/dev/null)

# --- test modules (core tests) ---
# Shared objects the loader must refuse (t/core_load_module.t): built like a
# module, from t/modules/*.c, into $(B)/t/modules/. Part of `all` so the
# end-to-end tests find them.
TEST_MODULE_SRC := $(wildcard t/modules/*.c)
TEST_MODULE_SOS := $(TEST_MODULE_SRC:t/modules/%.c=$(B)/t/modules/%.so)
all: $(TEST_MODULE_SOS)
$(B)/t/modules/%.so: t/modules/%.c core/include/portico/module.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) $(OPT) $(SAN) -shared -fPIC -fvisibility=hidden -Icore/include $< -o $@
# --- end test modules ---
