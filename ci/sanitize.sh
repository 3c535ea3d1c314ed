#!/usr/bin/env bash
# The C++ core under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): builds
# the CTest suite (tests/cpp: unit tests and the randomized stress test test_fuzz) with
# -DNEUROMFA_SANITIZE=ON in a temporary directory and runs it.  Any sanitizer report fails the
# run (halt_on_error, no recovery from UB).  About a minute on 2 cores.
#
#   ci/sanitize.sh                 # from anywhere; needs cmake and a C++17 compiler with OpenMP
#   NEUROMFA_FUZZ_ROUNDS=2000 ci/sanitize.sh   # a longer fuzz run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(mktemp -d "${TMPDIR:-/tmp}/neuromfa-sanitize.XXXXXX")"
trap 'rm -rf "$build"' EXIT

cmake -S "$root" -B "$build" -DNEUROMFA_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "${NEUROMFA_JOBS:-2}" >/dev/null

# LeakSanitizer needs ptrace-like access to stop threads; where the machine forbids it, it
# aborts with "LeakSanitizer has encountered a fatal error".  Probe once and say so, rather than
# fail or silently skip.  No suppressions: libgomp (GCC 12) reports no leak of its own here, and
# a "leak:libgomp" rule would also hide real leaks allocated inside parallel regions.
leaks=1
probe="$build/lsan-probe.cpp"
printf 'int main(){return 0;}\n' >"$probe"
if ! "${CXX:-c++}" -fsanitize=address "$probe" -o "$build/lsan-probe" 2>/dev/null ||
    ! ASAN_OPTIONS=detect_leaks=1 "$build/lsan-probe" >/dev/null 2>&1; then
    leaks=0
    echo "sanitize: LeakSanitizer does not work on this machine; running with detect_leaks=0"
fi

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=$leaks:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# 8-thread runs on a 2-core machine: let idle OpenMP threads sleep instead of spinning.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

ctest --test-dir "$build" --output-on-failure --timeout 600
