#!/usr/bin/env bash
# The builds of the C++ core that the main CTest run (.ci/run) does not make: the serial core,
# configured with -DNEUROMFA_OPENMP=OFF (what a compiler without OpenMP builds), compiled with
# warnings as errors, and its CTest suite run.  The other build the loader may pick, the
# baseline (non-AVX2) clone of every target_clones loop, is held bit for bit to the AVX2 one by
# tests/cpp/test_clones.cpp in every CTest run, this one included (skipped, and said so, only on
# a processor without AVX2).  About 15 seconds on 2 cores.
#
#   ci/cpp-variants.sh             # from anywhere; needs cmake and GCC or Clang
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(mktemp -d "${TMPDIR:-/tmp}/neuromfa-variants.XXXXXX")"
trap 'rm -rf "$build"' EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNEUROMFA_OPENMP=OFF -DCMAKE_CXX_FLAGS=-Werror \
    >/dev/null 2>&1
cmake --build "$build" -j "${NEUROMFA_JOBS:-2}" >/dev/null
ctest --test-dir "$build" --output-on-failure --timeout 300
# test_fuzz prints openmp_enabled(): the suite must have run on the serial core
grep -q "openmp=0" "$build/Testing/Temporary/LastTest.log" ||
    { echo "cpp-variants: the tests did not run on the serial core" >&2; exit 1; }
