# Portico — GNU make, non-recursive. Outputs go to $(B) (default build/).
# Targets: all modules test unit e2e run sanitize fuzz bench install clean format
B ?= build
CONFIG := $(B)/config.mk

.DEFAULT_GOAL := all
ifeq ($(filter deps clean distclean sanitize fuzz,$(MAKECMDGOALS)),)
# a fresh checkout has no config: make installs what is missing and configures
include $(CONFIG)
endif
$(CONFIG):
	scripts/deps --check >/dev/null 2>&1 || scripts/deps
	./configure --builddir=$(B)

WARN      := -Wall -Wextra -Werror
CXXSTD    := -std=c++20
CPPFLAGS  := -Icore/include -Icore -I$(B) -MMD -MP
LIB_CFLAGS = $(EVENT_CFLAGS) $(PCRE2_CFLAGS) $(SSL_CFLAGS) $(ZLIB_CFLAGS)
CORE_LIBS  = $(EVENT_LIBS) $(PCRE2_LIBS) $(SSL_LIBS) $(ZLIB_LIBS) -ldl -lpthread
ALLCXX     = $(CXX) $(CXXSTD) $(WARN) $(OPT) $(SAN) $(FUZZFLAGS) $(CPPFLAGS) $(LIB_CFLAGS)

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

.PHONY: all modules test unit e2e bench-smoke run sanitize fuzz fuzz-targets bench install clean distclean format deps

all: $(BIN) modules $(PEER_BIN)
modules: $(MODULE_SOS)

$(B)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(ALLCXX) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(CORE_LIB)
	$(CXX) $(SAN) $(FUZZFLAGS) $(MAIN_OBJ) $(CORE_LIB) $(CORE_LIBS) -o $@

# Modules: PIC objects, only the ABI header, no undefined symbols left.
$(B)/mobj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(WARN) $(OPT) $(SAN) -fPIC -fvisibility=hidden -Icore/include $(LIB_CFLAGS) -MMD -MP -c $< -o $@
$(B)/mobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) $(OPT) $(SAN) -fPIC -fvisibility=hidden -Icore/include -MMD -MP -c $< -o $@

mod_objs = $(patsubst %.c,$(B)/mobj/%.o,$(patsubst %.cc,$(B)/mobj/%.o,$(wildcard modules/$(1)/*.cc modules/$(1)/*.c)))
mod_test_srcs = $(filter-out %/module.cc,$(wildcard modules/$(firstword $(subst /, ,$(1)))/*.cc))

.SECONDEXPANSION:
$(B)/modules/%.so: $$(call mod_objs,$$*)
	@mkdir -p $(dir $@)
	$(CXX) -shared $(SAN) -Wl,--no-undefined $^ $(LIBS_$*) -o $@

# unit tests of a module's pure parts link that module's sources but module.cc
$(B)/t/unit/modules/%: t/unit/modules/%.cc $(CORE_LIB) $$(call mod_test_srcs,$$*)
	@mkdir -p $(dir $@)
	$(ALLCXX) $(CMOCKA_CFLAGS) -It/unit -Imodules $< $(call mod_test_srcs,$*) $(UNIT_SUPPORT) $(CORE_LIB) $(CMOCKA_LIBS) $(CORE_LIBS) -o $@
$(B)/t/unit/%: t/unit/%.cc $(CORE_LIB) $(UNIT_SUPPORT)
	@mkdir -p $(dir $@)
	$(ALLCXX) $(CMOCKA_CFLAGS) -It/unit $< $(UNIT_SUPPORT) $(CORE_LIB) $(CMOCKA_LIBS) $(CORE_LIBS) -o $@
$(B)/t/unit/%: t/unit/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(SAN) -Icore/include $(CMOCKA_CFLAGS) $< $(CMOCKA_LIBS) -o $@

$(B)/peers/%: t/peers/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(WARN) -O2 $< -o $@

# a fuzz target may name module sources it needs on a line "// fuzz-sources: a.cc b.cc"
$(B)/fuzz/%: t/fuzz/%.cc $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(ALLCXX) -Imodules -fsanitize=fuzzer $< $$(sed -n 's|^// fuzz-sources:||p' $<) $(CORE_LIB) $(CORE_LIBS) -o $@

unit: all $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

e2e: all
	PORTICO_BIN=$(abspath $(BIN)) PORTICO_BUILD=$(abspath $(B)) prove -j2 -It/lib t/

bench-smoke: all
	PORTICO_BUILD=$(abspath $(B)) scripts/bench --smoke

test: unit e2e bench-smoke
	@echo "make test: all passed"

run: all
	scripts/run-demo $(B)

sanitize:
	./configure --builddir=build-asan --with-sanitizers --with-debug >/dev/null
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) B=build-asan test

fuzz:
	./configure --builddir=build-fuzz --with-fuzz >/dev/null
	$(MAKE) B=build-fuzz fuzz-targets
fuzz-targets: $(FUZZ_BIN)

bench: all
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
	rm -rf $(B)/obj $(B)/mobj $(B)/modules $(B)/t $(B)/fuzz $(B)/peers $(B)/portico $(B)/libportico.a
distclean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B)/obj $(B)/mobj -name '*.d' 2>/dev/null)
