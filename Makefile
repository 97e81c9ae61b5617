# sluice — the two set-up commands are `make run` and `make test`.
# Both install what is missing (scripts/bootstrap), then build.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
CONFIG ?=

.PHONY: all bootstrap build build-asan build-tsan run test test-release test-asan test-tsan bench bench-load format clean

all: build

bootstrap:
	@bash scripts/bootstrap

$(BUILD)/CMakeCache.txt: | bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt: | bootstrap
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=ON -DSLUICE_BUILD_BENCH=OFF

build-asan: bootstrap $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

$(TSAN_BUILD)/CMakeCache.txt: | bootstrap
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TSAN=ON -DSLUICE_BUILD_BENCH=OFF -DSLUICE_BUILD_EXAMPLES=OFF

build-tsan: bootstrap $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j $(JOBS)

# Starts the gateway on the embedded default config (127.0.0.1:8080, admin on 127.0.0.1:9901),
# or on CONFIG=path/to/sluice.yaml.
run: build
	$(BUILD)/sluice run $(if $(CONFIG),-c $(CONFIG),)

# The whole suite: unit + integration (real binary, real redis-server, real upstreams), first
# in the release build, then again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-release test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ctest --output-on-failure

# The suite under ThreadSanitizer: a separate target, not part of `make test` (a third full build
# would take a fresh CI machine past its time budget); the embedding test needs an unsanitized
# build and is skipped here. tests/tsan.supp lists the reports judged benign, each with its reason.
test-tsan: build-tsan
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -E embedding

bench: build
	$(BUILD)/sluice_micro_bench --benchmark_min_time=0.2

bench-load: build
	bash bench/load/run.sh

format:
	find include src apps tests bench examples -name '*.hpp' -o -name '*.cpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
