// Opens a stretch of loops built twice (no include guard on purpose: every header whose kernels
// are cloned includes it after its own includes, and clones_end.hpp at its end, so the macro
// below never leaks to whoever includes that header).
//
// NEUROMFA_CLONES builds a function twice where GCC can dispatch at load time (x86-64 Linux):
// for AVX2 and for the baseline.  Both run the same operations in the same order (FMA is not
// enabled, and CMakeLists.txt builds with -ffp-contract=off, so nothing is contracted even under
// a packager's -march), so they give the same bits (tests/cpp/test_clones.cpp holds them to it);
// AVX2 runs four lanes per instruction instead of two.  (std::exp / std::log come from the C
// library, which may pick its own variant by processor: the claim is for one C library build.)
// A cloned function is a thin wrapper of an always-inline `*_impl`, so that a test can build the
// same body for each target by name.
#if defined(NEUROMFA_CLONES)
#error "neuromfa/clones_begin.hpp: NEUROMFA_CLONES is already defined (a clones_end.hpp is missing)"
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NEUROMFA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NEUROMFA_CLONES
#endif
