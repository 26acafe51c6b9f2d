# fuzz.mk -- build the libFuzzer targets with clang (GNU make; run by
# `make fuzz` in the build directory, which passes every variable below)
#
# baton's sources are compiled again by FUZZ_CC with the sanitizers into
# fuzz/obj/, never mixed with the gcc-built libbaton.a; each target links
# its harness against them, and the linker takes only what it uses.

top_srcdir ?= .
FUZZ_CC ?= clang
FUZZ_TARGETS ?= config channel proxyproto endpoint api clienthello
FUZZ_SRCS ?=
FUZZ_CPPFLAGS ?=
FUZZ_CFLAGS ?=
FUZZ_LIBS ?=
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OPT = -g -O1

lib_objs = $(patsubst src/%.c,fuzz/obj/%.o,$(filter %.c,$(FUZZ_SRCS)))
programs = $(FUZZ_TARGETS:%=fuzz/fuzz_%)

all: $(programs)

fuzz/obj/%.o: $(top_srcdir)/src/%.c
	@mkdir -p fuzz/obj
	@echo "  FUZZCC   $<"
	@$(FUZZ_CC) $(FUZZ_OPT) $(FUZZ_SAN) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) \
	    -MMD -MP -c -o $@ $<

fuzz/libbaton-fuzz.a: $(lib_objs)
	@rm -f $@
	@ar cr $@ $(lib_objs)

fuzz/fuzz_%: $(top_srcdir)/tests/fuzz/fuzz_%.c fuzz/libbaton-fuzz.a
	@echo "  FUZZLD   $@"
	@$(FUZZ_CC) $(FUZZ_OPT) $(FUZZ_SAN) -fsanitize=fuzzer \
	    $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -o $@ $< \
	    fuzz/libbaton-fuzz.a $(FUZZ_LIBS)

-include $(lib_objs:.o=.d) $(programs:=.d)

.PHONY: all
.SECONDARY:
