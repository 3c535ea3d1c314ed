// The vector layer of the 16-bit statistics (weibull16.hpp, half_stats.hpp): four doubles per
// GCC/Clang vector (the same operations and order whether the compiler emits SSE2 or AVX2, so the
// numbers do not depend on the instruction set), their horizontal sum in a fixed order, and exp
// of a span of doubles, four lanes at a time (exp_k) with its scalar form (exp_of_scaled).
//
// GCC or Clang only: the vector extensions (vector_size, __builtin_convertvector) and the
// attributes (always_inline, target_clones) have no portable spelling, and a scalar copy of each
// loop would be code that no build of ours compiles or tests.
#pragma once
#if !defined(__GNUC__)  // Clang defines it too
#error "neuromfa-native's core needs GCC or Clang: its 16-bit statistics use their vector extensions and attributes (see README, Install)"
#endif
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "neuromfa/clones_begin.hpp"

namespace neuromfa {

// q = exp(r) for |r| <= ln 2 / 2 by its Taylor polynomial to degree 13 (truncation below 1e-17
// relative), Horner from 1/13!; r a double or a GCC vector of doubles (the same operations in
// each lane; by reference, as a returned vector would change the ABI of a baseline build).
template <class V>
inline void exp_taylor13(const V& r, V& q) {
    q = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    q = q * r + 1.0;
}

// p[f] = exp(k * l[f]) for f in [f0, f1): x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two
// parts, so r is exact to a few ulp), exp(r) by its Taylor polynomial to degree 13 (truncation
// below 1e-17 relative), times 2^n from the exponent bits; within an ulp or so of std::exp, which
// takes over where |x| > 700 (over- or underflow).  The scalar form of half_detail::exp_k, which
// runs it four lanes at a time and hands it the remainder.
inline void exp_of_scaled(double k, const double* l, double* p, std::uint32_t f0, std::uint32_t f1) {
    constexpr double inv_ln2 = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    bool wide = false;
    for (std::uint32_t f = f0; f < f1; ++f) {
        const double x = k * l[f];
        wide |= !(std::fabs(x) <= 700.0);
        const double t = std::min(std::max(x * inv_ln2, -1020.0), 1020.0);  // |x| <= 700 (|t| <= 1010) is not clamped
        const std::int32_t ni = static_cast<std::int32_t>(t + std::copysign(0.5, t));  // rounded
        const double n = static_cast<double>(ni);
        const double r = (x - n * ln2_hi) - n * ln2_lo;
        double q;
        exp_taylor13(r, q);
        const std::uint64_t bits = static_cast<std::uint64_t>(ni + 1023) << 52;  // 2^n (garbage where |x| > 700)
        double two_n;
        std::memcpy(&two_n, &bits, sizeof two_n);
        p[f] = q * two_n;
    }
    if (wide)
        for (std::uint32_t f = f0; f < f1; ++f) p[f] = std::exp(k * l[f]);
}

namespace half_detail {

typedef double v4d __attribute__((vector_size(32)));
typedef std::int32_t v4i __attribute__((vector_size(16)));
typedef std::int64_t v4l __attribute__((vector_size(32)));
typedef std::uint64_t v4u __attribute__((vector_size(32)));  // 8 cells of 32 bits or 4 of 64

// (x0 + x1) + (x2 + x3): the one order in which four partial sums are added.
[[gnu::always_inline]] inline double hsum(const v4d& x) { return (x[0] + x[1]) + (x[2] + x[3]); }

// exp(k x[i]) into out[i] for i in [i0, i1): the method of exp_of_scaled (x = n ln 2 + r, ln 2 in
// two parts, Taylor to degree 13, 2^n from the exponent bits; within an ulp or so of std::exp,
// which takes over where |k x| > 700), written four lanes at a time: n is rounded by the
// 1.5 * 2^52 trick and read back from the sum's low bits, so no step leaves the vector registers.
[[gnu::always_inline]] inline void exp_k_impl(double k, const double* x, double* out, std::uint32_t i0,
                                              std::uint32_t i1) {
    constexpr double inv_ln2 = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52
    bool wide = false;
    std::uint32_t i = i0;
    const v4d lo = {-1020.0, -1020.0, -1020.0, -1020.0}, hi = {1020.0, 1020.0, 1020.0, 1020.0};  // |x| <= 700: unclamped
    v4l big = {0, 0, 0, 0};
    for (; i + 4 <= i1; i += 4) {
        v4d xv;
        std::memcpy(&xv, x + i, sizeof xv);
        xv *= k;
        const v4d ax = xv < 0 ? -xv : xv;  // |x| (NaN compares false: flagged below)
        big |= ~(ax <= 700.0);
        v4d t = xv * inv_ln2;
        t = t < lo ? lo : t;
        t = t > hi ? hi : t;
        const v4d sum = t + magic;
        const v4d nf = sum - magic;  // t rounded to an integer
        const v4d r = (xv - nf * ln2_hi) - nf * ln2_lo;
        v4d q;
        exp_taylor13(r, q);
        v4l sb, mb;
        const v4d mv = {magic, magic, magic, magic};
        std::memcpy(&sb, &sum, sizeof sb), std::memcpy(&mb, &mv, sizeof mb);
        const v4l bits = ((sb - mb) + 1023) << 52;  // 2^n (garbage where |x| > 700)
        v4d two_n;
        std::memcpy(&two_n, &bits, sizeof two_n);
        const v4d e = q * two_n;
        std::memcpy(out + i, &e, sizeof e);
    }
    wide = (big[0] | big[1] | big[2] | big[3]) != 0;
    if (i < i1) exp_of_scaled(k, x, out, i, i1);
    if (wide)
        for (std::uint32_t j = i0; j < i1; ++j) out[j] = std::exp(k * x[j]);
}

NEUROMFA_CLONES static void exp_k(double k, const double* x, double* out, std::uint32_t i0, std::uint32_t i1) {
    exp_k_impl(k, x, out, i0, i1);
}

}  // namespace half_detail

}  // namespace neuromfa

#include "neuromfa/clones_end.hpp"
