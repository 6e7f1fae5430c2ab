# swax — build, test, bench.
#   make            library, CLI (build/swax)
#   make test       the whole suite: normal build, then ASan+UBSan build
#   make test-fast  the suite once, normal build only
#   make bench      benchmarks, each figure next to its baseline
#   make fuzz       bounded libFuzzer runs of every reader (clang)
#   make test-cuda  on a CUDA machine: GPU tests and benchmarks (scripts/test_cuda.sh)
# BUILD=asan selects the sanitizer build (folder build-asan/).
# CUDA=auto (default) builds the CUDA backend when nvcc is found (CUDA=0: never;
# the sanitizer build is always CPU-only); CUDA_ARCH picks the GPU target.

CC      ?= cc
BUILD   ?= release
ARCH    ?= -march=native
# ARCH=portable: x86-64-v3 code (AVX2, FMA) for binaries that travel to another
# machine (build-portable/); the default tunes for this CPU.
ifeq ($(ARCH),portable)
  override ARCH := -march=x86-64-v3 -mtune=generic
  PORTABLE := 1
endif
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE
INCS    := -Iinclude -Isrc
# OpenBLAS built on OpenMP shares our thread pool (the pthread build's threads
# would compete with OpenMP's spinning workers); fall back to the default one.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BLASDIR   := /usr/lib/$(MULTIARCH)/openblas-openmp
ifneq ($(wildcard $(BLASDIR)/libopenblas.so),)
  BLASLIB := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas
else
  BLASLIB := -lopenblas
endif
LIBS    := $(BLASLIB) -lpcre2-8 -lcjson -lm -lpthread -ldl

NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA      ?= auto
CUDA_ARCH ?= -gencode=arch=compute_90a,code=sm_90a
ifeq ($(BUILD),asan)
  CUDA := 0
endif
ifeq ($(CUDA),auto)
  CUDA := $(if $(NVCC),1,0)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))

ifeq ($(BUILD),asan)
  OUT     := build-asan
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDEXTRA := -fsanitize=address,undefined
else
  OUT     := $(if $(PORTABLE),build-portable,build)
  # -fno-trapping-math: the clamps and selects in fastmath.h's exp/tanh then vectorise at AVX2
  # (x86-64-v3 could not if-convert a compare that might trap: ARCH=portable's loss was ~15x slower);
  # it drops only floating-point exception semantics, which nothing here uses: no value changes
  OPT     := -O3 -g $(ARCH) -fno-trapping-math
  LDEXTRA :=
endif

CFLAGS  := $(CSTD) $(WARN) $(OPT) -fopenmp $(INCS) -MMD -MP
LDFLAGS := -fopenmp $(LDEXTRA)

# CUDA: kernels in src/**/*.cu, compiled by nvcc with warnings as errors;
# cudart linked statically (a binary travels with only cuBLASLt beside it).
ifeq ($(CUDA),1)
  CU_SRC  := $(shell find src -name '*.cu' | sort)
  CU_OBJ  := $(CU_SRC:%.cu=$(OUT)/%.o)
  NVFLAGS := -std=c++17 -O3 -g -lineinfo $(CUDA_ARCH) -Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-Werror,-Wshadow,-Wno-unused-parameter $(INCS) -MMD -MP
  EXCLUDE += src/ops/ops_nocuda.c src/dist/dist_nocuda.c
  LIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcudart_static -ldl -lrt -lstdc++
else
  CU_OBJ  :=
endif

EXCLUDE  ?=
LIB_SRC  := $(filter-out $(EXCLUDE),$(shell find src -name '*.c' -not -path 'src/cli/*' | sort))
CLI_SRC  := $(filter-out $(EXCLUDE),$(shell find src/cli -name '*.c' | sort))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(OUT)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(OUT)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(OUT)/tests/%)

.PHONY: all test test-fast test-asan test-cuda bench fuzz clean deps demo check-deps
all: check-deps $(OUT)/swax

# A missing library is one clear line (scripts/check_deps.sh), not a compiler error; nothing compiles before it.
$(LIB_OBJ) $(CLI_OBJ) $(CU_OBJ): | check-deps
check-deps:
	@CC="$(CC)" scripts/check_deps.sh

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(OUT)/libswax.a: $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/swax: $(CLI_OBJ) $(OUT)/libswax.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(OUT)/libswax.a $(LIBS)

$(OUT)/tests/%: tests/%.c tests/test.h $(OUT)/libswax.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(OUT)/libswax.a $(LDFLAGS) $(LIBS)

tests-built: $(TEST_BIN) $(OUT)/swax

# The whole suite, normal then sanitizer build. Prints "N passed, N failed".
test:
	@scripts/install_deps.sh
	$(MAKE) test-fast
	$(MAKE) test-asan
	@scripts/summarize_tests.sh build/test-results.txt build-asan/test-results.txt

test-fast: $(TEST_BIN) $(OUT)/swax
	@SWAX_BUILD=$(OUT) scripts/run_tests.sh $(OUT)

test-asan:
	$(MAKE) BUILD=asan test-fast

# On a CUDA machine: builds, runs the GPU tests and benchmarks, prints a table.
test-cuda:
	@scripts/test_cuda.sh

bench: $(OUT)/swax
	@scripts/bench.sh $(OUT)

# Reliability (docs/reliability.md): libFuzzer runs of every reader (FUZZ_SECONDS
# per harness, default 60; fuzz-smoke: 5), the CLI's I/O under valgrind, and the
# kill test with 50 kills (STRESS_KILLS; `make test` runs 8).
fuzz:
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) scripts/fuzz.sh run

fuzz-smoke:
	@FUZZ_SECONDS=$(or $(FUZZ_SMOKE_SECONDS),5) scripts/fuzz.sh run

valgrind:
	@scripts/valgrind_io.sh

stress: $(OUT)/swax $(OUT)/tests/test_kill
	SWAX_BIN=$(OUT)/swax SWAX_KILL_N=$(or $(STRESS_KILLS),50) $(OUT)/tests/test_kill

.PHONY: fuzz-smoke valgrind stress

deps:
	@scripts/install_deps.sh

demo:
	@scripts/install_deps.sh
	$(MAKE) all
	@scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(CU_OBJ:.o=.d)
