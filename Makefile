# The two commands of the README, and a few conveniences. cmake is the build; this only wraps it.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all bootstrap build run test test-quick asan format clean

all: build

bootstrap:
	@deploy/local/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Runs the whole stack on its embedded defaults: PostgreSQL in ./var/pg, one of each worker.
run: build
	@deploy/local/run

# The whole suite: unit, isolation (and both again under valgrind memcheck), end to end with a real
# PostgreSQL, chaos, and a short fuzz run.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Without the end-to-end, chaos, fuzz and memcheck tests, for quick iterations.
test-quick: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE 'e2e|fuzz|chaos|memcheck'

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its own build tree.
asan: bootstrap
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCONVEYOR_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ctest --output-on-failure -j $(JOBS) -LE fuzz

# Lays out every C file as .clang-format says; the suite's format.check fails on any it would change.
format:
	@find bench cli common learn services tests -name '*.[ch]' -print0 | xargs -0 clang-format -i

clean:
	rm -rf $(BUILD) build-asan
