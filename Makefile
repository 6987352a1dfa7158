# The front door. Each target installs what is missing, configures a Release
# build in build/, builds what its job needs, and then does its one job.
#   make test    build everything and run the test suite (what CI runs)
#   make train   build the convnet program only (no GoogleTest or Google Benchmark needed) and train
#                AlexNet on CIFAR-10 (TRAIN_ARGS="..." passes flags, CIFAR10_DIR=... says
#                where the data is; TRAIN_ARGS=--download fetches it)
#   make train-fast   the same, for the fast CIFAR network and its recipe (convnet train --recipe fast,
#                docs/fast.md) into runs/fast
#   make train-mpi NP=2   the same, data-parallel over NP local MPI ranks of THREADS_PER_RANK
#                threads each (Open MPI; for several machines, run mpirun yourself: see README)
#   make bench   build and run the benchmarks, then the side-by-side comparison with
#                PyTorch when it is installed (BENCH_ARGS / COMPARE_ARGS pass flags)
#   make fuzz    build the libFuzzer targets with clang and run each for FUZZ_SECONDS (default 600)
#   make loss-comparison   train once per row of the study's loss comparison (15 epochs each after
#                a learning-rate sweep, hours: finished rows are kept, committed, in
#                benchmarks/results/loss_comparison and it continues where it stopped) and write
#                a Markdown table beside the study's figures (LOSS_ARGS passes flags)
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TRAIN_ARGS ?=
BENCH_ARGS ?=
COMPARE_ARGS ?=
LOSS_ARGS ?=
FUZZ_SECONDS ?= 600
NP ?= 2
THREADS_PER_RANK ?= 1
# Open MPI refuses to start as root unless told; containers and CI often are root.
MPIRUN_FLAGS ?= --oversubscribe $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
FUZZ_TARGETS := cifar10 cifar100 idx image checkpoint config trainer_checkpoint transforms command_line onnx \
  saved_network resume_checks
FUZZ_CXX ?= clang++
FUZZ_FLAGS := -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -fsanitize-ignorelist=tests/fuzz/ubsan_ignore.txt -Iinclude -I/usr/include/eigen3 -DCONVNET_WITH_ZLIB
# Debian's python3-torch lives in the system interpreter, which a pyenv or venv may shadow.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
# CIFAR-10 for make train: $CIFAR10_DIR, else data/ or the shared copy beside the checkout.
CIFAR10_DIR ?= $(firstword $(wildcard data/cifar-10-batches-bin ../shared/data/cifar-10-batches-bin) data/cifar-10-batches-bin)

.PHONY: all deps configure build test train train-fast train-build train-mpi bench loss-comparison fuzz fuzz-build fuzz-corpus check-sanitize check-tsan clean

# What each job configures: the test suite builds everything; training needs
# neither GoogleTest nor Google Benchmark; the benchmarks need no GoogleTest.
# Switching between them reconfigures the same build folder (a second or two);
# nothing already compiled is compiled again.
CONFIGURE = cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

all: build

deps:
	@bash tools/install-deps.sh test

# CONVNET_REQUIRE_ALL_TESTS: a test group whose dependencies tools/install-deps.sh installs (zlib,
# MPI, the examples, the program and its process tests, the docs check) fails the configuration
# when it would be left out, instead of passing a smaller suite.
configure: deps
	@$(CONFIGURE) -DCONVNET_BUILD_TESTS=ON -DCONVNET_BUILD_APPS=ON -DCONVNET_BUILD_EXAMPLES=ON -DCONVNET_BUILD_BENCHMARKS=ON \
	  -DCONVNET_REQUIRE_ALL_TESTS=ON

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# --timeout: a default for any test without its own TIMEOUT (every test has one): a hang fails.
test: build
	@cd $(BUILD_DIR) && status=0 && ctest --output-on-failure --timeout 1800 -j $(JOBS) || status=$$?; \
	  bash $(CURDIR)/tools/print-skipped.sh $(CURDIR)/$(BUILD_DIR); exit $$status

train-build:
	@bash tools/install-deps.sh
	@$(CONFIGURE) -DCONVNET_BUILD_TESTS=OFF -DCONVNET_BUILD_APPS=ON -DCONVNET_BUILD_BENCHMARKS=OFF
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target convnet_app

train: train-build
	@$(BUILD_DIR)/bin/convnet train --data $(CIFAR10_DIR) $(TRAIN_ARGS)

# The fast CIFAR network and its recipe (docs/fast.md): not AlexNet, the best a CPU trains in minutes.
train-fast: train-build
	@$(BUILD_DIR)/bin/convnet train --recipe fast --data $(CIFAR10_DIR) --out runs/fast $(TRAIN_ARGS)

train-mpi:
	@bash tools/install-deps.sh mpi
	@$(CONFIGURE) -DCONVNET_BUILD_TESTS=OFF -DCONVNET_BUILD_APPS=ON -DCONVNET_BUILD_BENCHMARKS=OFF
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target convnet_app
	@mpirun $(MPIRUN_FLAGS) -np $(NP) -x OMP_NUM_THREADS=$(THREADS_PER_RANK) \
	  $(BUILD_DIR)/bin/convnet train --threads $(THREADS_PER_RANK) --data $(CIFAR10_DIR) $(TRAIN_ARGS)

bench:
	@bash tools/install-deps.sh bench
	@$(CONFIGURE) -DCONVNET_BUILD_TESTS=OFF -DCONVNET_BUILD_APPS=OFF -DCONVNET_BUILD_EXAMPLES=OFF -DCONVNET_BUILD_BENCHMARKS=ON
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target convnet_bench convnet_step
	@$(BUILD_DIR)/benchmarks/convnet_bench $(BENCH_ARGS)
	@$(PYTHON) benchmarks/compare_pytorch.py --ours $(BUILD_DIR)/benchmarks/convnet_step $(COMPARE_ARGS)

loss-comparison: train-build
	@$(PYTHON) benchmarks/loss_comparison.py --trainer $(BUILD_DIR)/bin/convnet --data $(CIFAR10_DIR) $(LOSS_ARGS)

# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer (with float-cast-overflow:
# a NaN or huge double cast to an integer is undefined too), in its own build folder. No -DNDEBUG:
# Eigen's bounds assertions stay on. (-g1: line tables are all a sanitizer report needs, and full
# debug info doubles compile time.) Without MPI: LeakSanitizer reports what Open MPI itself keeps
# at exit; the MPI-free parts of data-parallel training (buckets, shards) are still tested here.
check-sanitize: deps
	@cmake -S . -B $(BUILD_DIR)-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" \
	  -DCONVNET_BUILD_BENCHMARKS=OFF -DCONVNET_ALLOC_TESTS=OFF -DCONVNET_WITH_MPI=OFF \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow"
	@cmake --build $(BUILD_DIR)-sanitize -j $(JOBS)
	@cd $(BUILD_DIR)-sanitize && status=0 && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 3600 -j $(JOBS) \
	  -E "consumer_|headers_compile_alone" || status=$$?; bash $(CURDIR)/tools/print-skipped.sh $(CURDIR)/$(BUILD_DIR)-sanitize; exit $$status

# Coverage-guided fuzzing (clang's libFuzzer, without OpenMP: the loaders are single-threaded).
# New inputs go to build-fuzz/corpus-<target>; crashes to build-fuzz/crash-*.
fuzz-build:
	@bash tools/install-deps.sh clang
	@mkdir -p build-fuzz
	@$(FUZZ_CXX) $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_FLAGS)) -c tests/fuzz/fuzz_targets.cpp \
	  -o build-fuzz/fuzz_targets.o
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CXX) $(FUZZ_FLAGS) -DCONVNET_FUZZ_TARGET=$$t tests/fuzz/fuzz_main.cpp build-fuzz/fuzz_targets.o -lz \
	    -o build-fuzz/fuzz_$$t || exit 1; done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ \
	    -print_final_stats=1 build-fuzz/corpus-$$t tests/fuzz/corpus/$$t > build-fuzz/fuzz_$$t.log 2>&1; rc=$$?; \
	  tail -n 14 build-fuzz/fuzz_$$t.log; [ $$rc -eq 0 ] || exit $$rc; done

# Rewrites the seed corpus in tests/fuzz/corpus (committed).
fuzz-corpus:
	@bash tools/install-deps.sh
	@mkdir -p build-fuzz
	@$(CXX) -std=c++17 -O1 -Iinclude -I/usr/include/eigen3 -DCONVNET_WITH_ZLIB tests/fuzz/make_corpus.cpp tests/fuzz/fuzz_targets.cpp -lz \
	  -o build-fuzz/make_corpus && build-fuzz/make_corpus tests/fuzz/corpus

# The tests that run several threads (data loader workers, OpenMP layers, whole
# training steps, the image-folder scan, the trainer with its loaders, a loader
# restarted and destroyed while its workers fill batches) under ThreadSanitizer.
# Built with clang and LLVM's OpenMP, whose Archer tool tells TSan about OpenMP's own synchronisation (GCC's
# libgomp is not instrumented and would only produce false reports).
TSAN_TESTS ?= Loader.*:Threads.*:Conv2d*:DropoutForward.*:Training*:Objective.*:Checkpoint.ResumeContinuesBitForBit:PytorchParity.CifarNetwork:ImageFolder.*:Trainer.*:Classifier.*
ARCHER ?= $(firstword $(wildcard /usr/lib/llvm-*/lib/libarcher.so))
check-tsan:
	@bash tools/install-deps.sh clang
	@cmake -S . -B $(BUILD_DIR)-tsan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCONVNET_BUILD_BENCHMARKS=OFF -DCONVNET_BUILD_APPS=OFF -DCONVNET_BUILD_EXAMPLES=OFF -DCONVNET_ALLOC_TESTS=OFF \
	  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
	@cmake --build $(BUILD_DIR)-tsan -j $(JOBS) --target convnet_tests
	@OMP_TOOL_LIBRARIES=$(ARCHER) TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" OMP_NUM_THREADS=2 \
	  $(BUILD_DIR)-tsan/tests/convnet_tests --gtest_filter='$(TSAN_TESTS)'

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-sanitize $(BUILD_DIR)-tsan build-fuzz
