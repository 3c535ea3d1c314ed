// Thread-count handling and an exception-safe parallel loop.
#pragma once
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace neuromfa {

inline bool openmp_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

// Number of threads an `n_threads` argument means: <= 0 is "all cores", as OpenMP counts them
// (OMP_NUM_THREADS when set, as on Dask workers, else every core).
inline int resolve_threads(int n_threads) {
#ifdef _OPENMP
    if (n_threads <= 0) return omp_get_max_threads();
    return n_threads;
#else
    (void)n_threads;
    return 1;
#endif
}

// Runs f(i) for i in [0, n) on up to n_threads threads (dynamic schedule).  No exception
// escapes the parallel region: the first one caught is kept and rethrown after it, and the
// remaining iterations are skipped.  Callers that need a deterministic error (for example
// "the first bad edge") must find it deterministically themselves; this only guarantees
// that some exception surfaces instead of std::terminate.
//
// Loops of fewer than `min_parallel` iterations run on the calling thread: for small inputs a
// parallel region costs more than it saves (and under oversubscription, much more).
template <class F>
void parallel_for(std::int64_t n, int n_threads, F&& f, std::int64_t min_parallel = 2) {
    std::exception_ptr error;
    std::mutex error_mutex;
    bool failed = false;
    (void)n_threads, (void)min_parallel;  // read only by the OpenMP build
#ifdef _OPENMP
#pragma omp parallel for num_threads(resolve_threads(n_threads)) schedule(dynamic, 1) if (n >= min_parallel)
#endif
    for (std::int64_t i = 0; i < n; ++i) {
        bool skip;
#ifdef _OPENMP
#pragma omp atomic read
#endif
        skip = failed;
        if (skip) continue;
        try {
            f(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
#ifdef _OPENMP
#pragma omp atomic write
#endif
            failed = true;
        }
    }
    if (error) std::rethrow_exception(error);
}

// Splits [0, n) into fixed blocks of `block` items (independent of the thread count) so that
// per-block partial results can be reduced in block order: the basis of bitwise determinism.
inline std::int64_t n_blocks(std::int64_t n, std::int64_t block) {
    return n == 0 ? 0 : (n + block - 1) / block;
}

}  // namespace neuromfa
