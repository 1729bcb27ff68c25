# Top-level entry points. Each target installs missing Debian packages first, so a fresh
# Debian 12 machine needs nothing but this repository.
#   make          build build/braid (RelWithDebInfo)
#   make demo     publish the example estate, run the order intake with --drain, print its tree
#   make test     unit + black-box tests (CLI and HTTP API), then the same under ASan + UBSan,
#                 then under ThreadSanitizer
#   make bench    the benchmarks (optimised build), report in bench/report.md

JOBS   ?= $(shell nproc)
PYTEST ?= /usr/bin/python3 -m pytest

.PHONY: all deps build build-asan build-tsan demo test test-unit test-e2e test-outbound test-asan test-tsan \
	bench bench-peers clean format

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS) >/dev/null || cmake --build build

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBRAID_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS) >/dev/null || cmake --build build-asan

build-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DBRAID_TSAN=ON >/dev/null
	@cmake --build build-tsan -j $(JOBS) >/dev/null || cmake --build build-tsan

demo: build
	@bash examples/demo.sh

test-unit: build
	cd build && ctest --output-on-failure -j $(JOBS)

# The black-box suites run as separate pytest processes: each has its own conftest.
test-e2e: build test-outbound
	BRAID_BIN=$(CURDIR)/build/braid $(PYTEST) -q tests/e2e
	BRAID_BIN=$(CURDIR)/build/braid $(PYTEST) -q tests/api

# Outbound calls run in a network namespace of their own where only loopback exists, so no
# test can ever send a packet off the machine (the suite refuses to run anywhere else).
OUTBOUND = unshare -n sh -c 'ip link set lo up && $(PYTEST) -q tests/outbound'

test-outbound: build
	BRAID_BIN=$(CURDIR)/build/braid $(OUTBOUND)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)
	BRAID_BIN=$(CURDIR)/build-asan/braid ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PYTEST) -q tests/e2e
	BRAID_BIN=$(CURDIR)/build-asan/braid ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PYTEST) -q tests/api
	BRAID_BIN=$(CURDIR)/build-asan/braid ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(OUTBOUND)

# A ThreadSanitizer report makes the process exit 66: the unit test, the server's clean exit
# after SIGTERM, or a CLI's exit status then fails. Address randomisation is off for these
# runs (setarch -R, inherited by every process started below): GCC 12's ThreadSanitizer
# cannot map its shadow memory on kernels that randomise with more than 28 bits.
TSAN = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	setarch $(shell uname -m) -R
test-tsan: build-tsan
	cd build-tsan && $(TSAN) ctest --output-on-failure -j $(JOBS)
	BRAID_BIN=$(CURDIR)/build-tsan/braid $(TSAN) $(PYTEST) -q tests/e2e
	BRAID_BIN=$(CURDIR)/build-tsan/braid $(TSAN) $(PYTEST) -q tests/api
	BRAID_BIN=$(CURDIR)/build-tsan/braid $(TSAN) $(OUTBOUND)

test: test-unit test-e2e test-asan test-tsan

bench: deps
	@bash scripts/deps-bench.sh
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j $(JOBS) >/dev/null
	@bash bench/run.sh

# braid, Node-RED and n8n side by side (S0/S1/S10, same wrk settings, same session). Installs the
# peers from the npm registry into ${XDG_CACHE_HOME:-~/.cache}/braid-bench-peers (BENCH_PEERS_CACHE)
# on first use; report in bench/peers/report.md.
bench-peers: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j $(JOBS) >/dev/null
	@bash bench/peers/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c')

clean:
	rm -rf build build-asan build-tsan build-release
