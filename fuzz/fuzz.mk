# fuzz.mk — the libFuzzer build (clang), driven by scripts/fuzz.sh:
#   make -f fuzz/fuzz.mk -j2         every harness into build-fuzz/
# The library is compiled again with -fsanitize=fuzzer-no-link,address,undefined
# (coverage + ASan + UBSan); each harness is fuzz/harness.c built with
# -DSWAX_FUZZ_TARGET=<name>, linked with -fsanitize=fuzzer. The target bodies
# live in fuzz/targets.h, shared with tests/test_fuzz_regress.c.

FCC     ?= clang
FOUT    := build-fuzz
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FCFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(SAN) -fopenmp \
           -Iinclude -Isrc -MMD -MP -Wall -Wno-unused-parameter -Wno-unused-function -Wno-pass-failed
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
BLASDIR   := /usr/lib/$(MULTIARCH)/openblas-openmp
ifneq ($(wildcard $(BLASDIR)/libopenblas.so),)
  BLASLIB := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas
else
  BLASLIB := -lopenblas
endif
FLIBS   := $(BLASLIB) -lpcre2-8 -lcjson -lm -lpthread

# The library as the main Makefile sees it (sources that are not there yet are
# simply not built).
FLIB_SRC := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
FLIB_OBJ := $(FLIB_SRC:%.c=$(FOUT)/obj/%.o)
LP       := (
TARGETS  := $(shell sed -n 's/^ *FUZZ_TARGET$(LP)\([a-z_0-9]*\),.*/\1/p' fuzz/targets.h)
HARNESS  := $(TARGETS:%=$(FOUT)/fuzz_%)

.PHONY: all list
all: $(HARNESS) $(FOUT)/gen_corpus $(FOUT)/fuzz_all

list:
	@echo $(TARGETS)

$(FOUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FOUT)/libswax_fuzz.a: $(FLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FOUT)/fuzz_%: fuzz/harness.c fuzz/targets.h $(FOUT)/libswax_fuzz.a
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer -DSWAX_FUZZ_TARGET=$* -o $@ $< $(FOUT)/libswax_fuzz.a $(FLIBS)

# All targets in one binary (SWAX_FUZZ_TARGET=<name> picks one at run time):
# for running elsewhere with fewer files to carry.
$(FOUT)/fuzz_all: fuzz/harness.c fuzz/targets.h $(FOUT)/libswax_fuzz.a
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer -o $@ $< $(FOUT)/libswax_fuzz.a $(FLIBS)

# The seed writer: plain sanitizer build (no libFuzzer main).
$(FOUT)/gen_corpus: fuzz/gen_corpus.c fuzz/targets.h $(FOUT)/libswax_fuzz.a
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer-no-link -o $@ $< $(FOUT)/libswax_fuzz.a $(FLIBS)

-include $(FLIB_OBJ:.o=.d)
