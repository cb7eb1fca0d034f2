# nextframe - top-level build.
#
#   make          build everything into build/
#   make run      install what is missing, build, start the server (CPU)
#   make test     install what is missing, build, run every test
#   make lint     clang-format check and cppcheck
#   make bench    benchmarks (bench/run.sh, bench/RESULTS.md)
#   make models   regenerate the shipped models
#   make clean
#
# SAN=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer.

CC      ?= cc
BUILD   ?= build
HOST    ?= 127.0.0.1
PORT    ?= 8080
# make run serves these styles (the first is the default); MODEL=FILE
# serves that one model instead.
STYLES  ?= models/toon.safetensors models/sketch.safetensors models/oil.safetensors
MODEL   ?=

PKGS    := libuv libwebsockets libturbojpeg jansson
CPPFLAGS += -D_GNU_SOURCE -Icommon -Iprotocol -Ikernels -Iserver -Iclients/common
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror=implicit-function-declaration -pthread -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD   := build-san
endif

# The OBS filter plugin (clients/obs/): never sanitized, since OBS cannot
# load an ASan-instrumented library.
OBS_SRC := clients/obs/nextframe-filter.c clients/obs/exchange.c \
           clients/common/ws-client.c clients/common/mono-clock.c \
           common/jpeg.c common/error.c common/token.c protocol/wire.c \
           protocol/control.c
OBS_OBJ := $(OBS_SRC:%.c=$(BUILD)/obs/obj/%.o)
OBS_PLUGIN := $(BUILD)/obs/nextframe-filter.so
OBS_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) \
              -fPIC -fvisibility=hidden
OBS_LDFLAGS := $(filter-out -fsanitize=%,$(LDFLAGS))

LIB_SRC := $(wildcard common/*.c) $(wildcard protocol/*.c) \
           $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c) \
           $(wildcard clients/common/*.c)
SERVER_SRC := $(wildcard server/*.c)
TEST_SRC := $(wildcard tests/test-*.c)

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_LIB_OBJ := $(filter-out $(BUILD)/obj/server/main.o,$(SERVER_OBJ))
TESTS      := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

PROGRAMS := $(BUILD)/nextframe $(BUILD)/nf-client $(BUILD)/nf-probe \
            $(BUILD)/nf-eval $(BUILD)/nf-bench

# The oneDNN backend (kernels/dnnl/, backend "dnnl") is built when Debian's
# libdnnl-dev is installed (tools/install-deps.sh installs it); DNNL=0 leaves
# it out, and the server then runs the reference backend.
DNNL ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
CPPFLAGS += -DNF_HAVE_DNNL
LIB_OBJ  += $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard kernels/dnnl/*.c))
LDLIBS   += -ldnnl -fopenmp
$(BUILD)/obj/kernels/dnnl/%.o: CFLAGS += -fopenmp
$(BUILD)/obj/bench/%.o: CFLAGS += -fopenmp
# Per-pixel drift-correction loops: -O3 lets GCC vectorize them.
$(BUILD)/obj/kernels/dnnl/correct.o: CFLAGS += -O3
PROGRAMS += $(BUILD)/nf-kernel-bench
endif

# The drift correction's per-pixel passes (stabilize.c, temporal.c) and the
# grid means (quality.c) run on every frame: -O3 vectorizes them (at 640x480
# the work before and after the forward pass fell from 4.3 to 2.7 ms).
$(BUILD)/obj/kernels/temporal.o $(BUILD)/obj/kernels/quality.o \
$(BUILD)/obj/kernels/stabilize.o: CFLAGS += -O3

.PHONY: all deps run test unit lint models clean obs-plugin bench
all: $(PROGRAMS) $(TESTS)

# Installs missing system packages once (tools/install-deps.sh).
deps: $(BUILD)/.deps-ok
$(BUILD)/.deps-ok: tools/install-deps.sh
	@sh tools/install-deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libnf.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/nextframe: $(SERVER_OBJ) $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/nf-client: $(BUILD)/obj/clients/nf-client.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/nf-eval: $(BUILD)/obj/tools/nf-eval.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/nf-bench: $(BUILD)/obj/bench/nf-bench.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/nf-probe: $(BUILD)/obj/tests/nf-probe.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/nf-kernel-bench: $(BUILD)/obj/bench/nf-kernel-bench.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

obs-plugin: $(OBS_PLUGIN)
$(BUILD)/obs/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iclients/obs $(shell pkg-config --cflags libobs) $(OBS_CFLAGS) -c $< -o $@
$(OBS_PLUGIN): $(OBS_OBJ)
	$(CC) -shared $(OBS_LDFLAGS) -Wl,-z,defs $^ $(shell pkg-config --libs libobs libwebsockets libturbojpeg jansson) -pthread -o $@

$(BUILD)/obj/tests/test-obs-exchange.o: CPPFLAGS += -Iclients/obs
$(BUILD)/tests/test-obs-exchange: $(BUILD)/obj/tests/test-obs-exchange.o \
		$(BUILD)/obj/clients/obs/exchange.o $(BUILD)/libnf.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Unit tests link the server's modules too (all but main.o).
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SERVER_LIB_OBJ) $(BUILD)/libnf.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/nextframe
	$(BUILD)/nextframe --host $(HOST) --port $(PORT) \
		$(foreach m,$(or $(MODEL),$(STYLES)),--model $(m)) --backend cpu

test: deps
	@$(MAKE) --no-print-directory all
	@if pkg-config --exists libobs; then $(MAKE) --no-print-directory obs-plugin; fi
	@BUILD=$(BUILD) sh tests/run.sh

lint: deps
	@sh tools/lint.sh

# Benchmarks (bench/run.sh): kernels, the server under load against the
# Python baseline, memory per session; results in build/bench/, recorded
# in bench/RESULTS.md. BENCH_ARGS=--long adds the 10-minute memory run.
bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh $(BENCH_ARGS)

# Retrains and exports the three style models (tools/train/make-models.sh,
# deterministic for its fixed seeds), and rewrites the hand-made default.
models:
	python3 tools/make-default-model.py --out models/default.safetensors
	sh tools/train/make-models.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj $(BUILD)/obs/obj -name '*.d' 2>/dev/null)

# ---- Fuzzing (tests/fuzz/README.md) ----------------------------------------
# make fuzz        builds the libFuzzer harnesses with clang into
#                  $(BUILD)/fuzz/ and runs each for FUZZ_SECONDS (default 60);
#                  FUZZ_TARGETS picks some, FUZZ_FORK=N keeps going after a
#                  finding, FUZZ_ARGS adds libFuzzer flags.
# make fuzz-build  only builds them (tests/it/fuzz-corpus.sh replays the
#                  committed seeds with them in make test).
# The harnesses compile the project's sources themselves, with clang's
# -fsanitize=fuzzer,address,undefined, not the gcc-built libnf.a.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= wire control model jpeg
FUZZ_FORK    ?= 0
FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_CFLAGS  := -g -O1 -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter \
                -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SRC_wire     := protocol/wire.c common/error.c
FUZZ_SRC_control  := protocol/control.c common/error.c
FUZZ_SRC_model    := kernels/model.c kernels/graph.c common/error.c
FUZZ_SRC_jpeg     := common/jpeg.c common/error.c
FUZZ_LIBS_control := -ljansson
FUZZ_LIBS_model   := -ljansson -lm
FUZZ_LIBS_jpeg    := -lturbojpeg

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define NF_FUZZ_LINK
$(FUZZ_BUILD)/fuzz-$(1): $(FUZZ_BUILD)/obj/tests/fuzz/fuzz-$(1).o \
		$(FUZZ_SRC_$(1):%.c=$(FUZZ_BUILD)/obj/%.o)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $$^ $(FUZZ_LIBS_$(1)) -o $$@
endef
$(foreach t,wire control model jpeg,$(eval $(call NF_FUZZ_LINK,$(t))))

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) \
		FUZZ_FORK=$(FUZZ_FORK) sh tests/fuzz/run.sh $(FUZZ_TARGETS)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

# The soak benchmark (bench/soak.sh): 8 streams against one server for
# SOAK_MINUTES (default 30); checks memory growth, crashes and that every
# dropped frame is accounted for by reason. Results in build/soak/.
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory $(BUILD)/nextframe $(BUILD)/nf-bench
	@BUILD=$(BUILD) sh bench/soak.sh

# ---- CUDA backend (kernels/cuda/README.md) ----------------------------------
# Built whenever nvcc is found (on PATH or in /usr/local/cuda/bin); CUDA=0
# leaves it out. It is a shared library of its own, $(BUILD)/libnf-cuda.so,
# that kernels/backend-load.c dlopen()s at run time from beside the
# executable (or $NF_CUDA_LIB): nothing else links CUDA, so every binary
# starts on machines without a CUDA runtime. Device code for sm_80 and
# sm_90 (plus sm_90 PTX), warnings as errors; the CUDA runtime is linked
# statically, cuDNN 9 dynamically (found through the rpath or ld.so.conf).
# -fmad=false: our kernels round exactly as the reference (README.md).
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA ?= $(if $(NVCC),1,0)
ifeq ($(CUDA),1)
CUDA_LIBDIR := $(abspath $(dir $(NVCC))../lib64)
CUDA_LIB    := $(BUILD)/libnf-cuda.so
CUDA_OBJ    := $(patsubst %.cu,$(BUILD)/obj/%.o,$(wildcard kernels/cuda/*.cu))
CUDA_ARCH   := -gencode arch=compute_80,code=sm_80 \
               -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS   ?= -O2 -g -lineinfo
NVCCFLAGS   += -std=c++20 $(CUDA_ARCH) -fmad=false -Werror all-warnings \
               -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
               -Xcompiler -Wno-unused-parameter -MMD -MP

all: $(CUDA_LIB)

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -Icommon -Ikernels $(NVCCFLAGS) -c $< -o $@

$(CUDA_LIB): $(CUDA_OBJ)
	$(NVCC) -shared -cudart static $(CUDA_ARCH) $^ -L$(CUDA_LIBDIR) -lcudnn \
		-Xlinker -z,defs -Xlinker -rpath,'$$ORIGIN:$(CUDA_LIBDIR)' -o $@
endif

# The GPU benchmark (bench/nf-cuda-bench.c): plain C on the public backend
# API, so built with or without nvcc; it prints SKIP where "cuda" cannot run.
all: $(BUILD)/nf-cuda-bench
$(BUILD)/nf-cuda-bench: $(BUILD)/obj/bench/nf-cuda-bench.o $(BUILD)/libnf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
