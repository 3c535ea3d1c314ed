// Rival statistics of weight matrices (SPEC 10): moments, kept fraction, row strengths, the
// exact |w| histogram of 16-bit weights, and the Weibull maximum-likelihood fit of |w|.
//
// The moment kernel runs over the row block a network has just read (no second read): per-row
// partial sums in fixed row order, so 1 and N threads give the same bits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

// Sums over a (rows x cols) block: n, zeros, kept (1/T <= |w| < 1), sum of w^p for p = 1..4,
// sum |w|, sum ln|w| over the nonzero weights, max |w|; and the sum of |w| along each row.
struct WeightMoments {
    std::int64_t n = 0;
    std::int64_t n_zero = 0;
    std::int64_t n_kept = 0;
    std::int64_t n_nonfinite = 0;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, s_abs = 0;
    std::vector<double> row_abs;
};

// `value(i)` returns element i of the block (row-major) as a double.
template <class Value>
WeightMoments weight_moments(Value&& value, std::int64_t rows, std::int64_t cols, double threshold, int n_threads) {
    if (rows < 0 || cols < 0) throw std::invalid_argument("weight_moments: negative shape");
    if (!(threshold > 1.0)) throw std::invalid_argument("weight_moments: threshold must be > 1");
    const double lo = 1.0 / threshold;
    constexpr int K = 8;  // n_zero, n_kept, n_nonfinite, s1, s2, s3, s4, s_abs per row
    std::vector<double> part(static_cast<std::size_t>(rows) * K, 0.0);
    parallel_for(rows, n_threads, [&](std::int64_t r) {
        double z = 0, kept = 0, bad = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, ab = 0;
        const std::int64_t base = r * cols;
        for (std::int64_t c = 0; c < cols; ++c) {
            const double w = value(base + c);
            if (!std::isfinite(w)) {
                bad += 1;
                continue;
            }
            const double a = std::fabs(w), w2 = w * w;
            z += (w == 0.0);
            kept += (a >= lo && a < 1.0);
            a1 += w;
            a2 += w2;
            a3 += w2 * w;
            a4 += w2 * w2;
            ab += a;
        }
        double* p = &part[static_cast<std::size_t>(r) * K];
        p[0] = z, p[1] = kept, p[2] = bad, p[3] = a1, p[4] = a2, p[5] = a3, p[6] = a4, p[7] = ab;
    }, 64);
    WeightMoments m;
    m.n = rows * cols;
    m.row_abs.resize(static_cast<std::size_t>(rows));
    double z = 0, kept = 0, bad = 0;
    for (std::int64_t r = 0; r < rows; ++r) {  // ordered reduction
        const double* p = &part[static_cast<std::size_t>(r) * K];
        z += p[0], kept += p[1], bad += p[2];
        m.s1 += p[3], m.s2 += p[4], m.s3 += p[5], m.s4 += p[6], m.s_abs += p[7];
        m.row_abs[static_cast<std::size_t>(r)] = p[7];
    }
    m.n_zero = static_cast<std::int64_t>(z);
    m.n_kept = static_cast<std::int64_t>(kept);
    m.n_nonfinite = static_cast<std::int64_t>(bad);
    return m;
}

// The moments of a (rows x cols) block of any weight kind (16-bit patterns widened exactly, by a
// table of the 2^16 values).
inline WeightMoments weight_moments(const WeightView& w, std::int64_t rows, std::int64_t cols, double threshold,
                                    int n_threads) {
    std::vector<double> table;
    if (w.is_half()) {
        table.resize(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) table[h] = w.widen(static_cast<std::uint16_t>(h));
    }
    const double* t = table.data();
    return w.visit([&](auto p) {
        if constexpr (std::is_same_v<decltype(p), const std::uint16_t*>)
            return weight_moments([p, t](std::int64_t i) { return t[p[i]]; }, rows, cols, threshold, n_threads);
        else
            return weight_moments([p](std::int64_t i) { return static_cast<double>(p[i]); }, rows, cols, threshold,
                                  n_threads);
    });
}

// Adds 16-bit weights (float16 or bfloat16 bit patterns) to a histogram of the 2^16 patterns:
// an exact, poolable summary from which every moment and the |w| distribution follow (one
// counting pass, integer sums, so the result does not depend on the thread count).
inline void histogram16(const std::uint16_t* bits, std::int64_t n, std::int64_t* counts, int n_threads) {
    const std::int64_t block = std::int64_t(1) << 20;  // smaller inputs count on the calling thread
    const std::int64_t nb = n_blocks(n, block);
    const std::int64_t groups = std::min<std::int64_t>(nb, std::max(1, resolve_threads(n_threads)));
    if (groups <= 1) {
        for (std::int64_t i = 0; i < n; ++i) ++counts[bits[i]];
        return;
    }
    std::vector<std::vector<std::int64_t>> hist(static_cast<std::size_t>(groups), std::vector<std::int64_t>(1 << 16, 0));
    parallel_for(groups, n_threads, [&](std::int64_t g) {
        auto& h = hist[static_cast<std::size_t>(g)];
        for (std::int64_t b = g; b < nb; b += groups) {
            const std::int64_t end = std::min(n, (b + 1) * block);
            for (std::int64_t i = b * block; i < end; ++i) ++h[bits[i]];
        }
    });
    for (const auto& h : hist)
        for (std::size_t k = 0; k < h.size(); ++k) counts[k] += h[k];
}

// The value of every 16-bit pattern of a kind (f16 or bf16), widened exactly; built once.
inline const std::vector<double>& half_values(WeightKind kind) {
    static const auto make = [](WeightKind k) {
        std::vector<double> v(65536);
        const WeightView w{nullptr, k};
        for (std::uint32_t h = 0; h < 65536; ++h) v[h] = w.widen(static_cast<std::uint16_t>(h));
        return v;
    };
    static const std::vector<double> f16 = make(WeightKind::f16), bf16 = make(WeightKind::bf16);
    return kind == WeightKind::bf16 ? bf16 : f16;
}

// Moments of 16-bit weights from the histogram of their 2^16 bit patterns (kind: f16 or bf16):
// every weight widened exactly; the sign folded (w^p of a negative pattern is -+ that of its
// magnitude), the sums taken over the magnitude patterns in order, even and odd patterns in two
// partial sums (deterministic, no thread count).  Only the span of magnitudes that hold
// weights is visited: it is found inward from both ends, eight patterns of each sign at a time.
// mean_strength needs only s_abs, so no per-row sums here (row_abs stays empty).  With `range`,
// also the smallest and largest magnitude pattern (sign bit cleared) of the nonzero finite
// weights, {0, 0} when there is none: where weibull_fit16 has to look.
inline WeightMoments histogram16_moments(const std::int64_t* counts, WeightKind kind, double threshold,
                                         std::uint32_t* range = nullptr) {
    if (!(threshold > 1.0)) throw std::invalid_argument("histogram16_moments: threshold must be > 1");
    const WeightView w{nullptr, kind};
    if (!w.is_half()) throw std::invalid_argument("histogram16_moments: the kind must be f16 or bf16");
    const double lo = 1.0 / threshold;
    const std::vector<double>& values = half_values(kind);
    const std::uint32_t top = 32768u - (1u << (kind == WeightKind::f16 ? 10 : 7));  // magnitudes >= top: inf/NaN
    auto both = [counts](std::uint32_t h) { return counts[h] + counts[h | 0x8000u]; };
    auto block_empty = [counts](std::uint32_t b) {  // magnitudes b .. b+7 of both signs
        const std::int64_t* p = counts + b;
        const std::int64_t* q = p + 0x8000u;
        return ((p[0] | p[1] | p[2] | p[3] | p[4] | p[5] | p[6] | p[7]) |
                (q[0] | q[1] | q[2] | q[3] | q[4] | q[5] | q[6] | q[7])) == 0;
    };
    WeightMoments m;
    m.n_zero = both(0);
    for (std::uint32_t h = top; h < 32768u; ++h) m.n_nonfinite += both(h);
    std::uint32_t hmin = 1;
    while (hmin < 8 && both(hmin) == 0) ++hmin;
    if (hmin == 8) {
        while (hmin < top && block_empty(hmin)) hmin += 8;
        while (hmin < top && both(hmin) == 0) ++hmin;
    }
    std::uint32_t hmax = 0;
    if (hmin < top) {
        std::uint32_t b = top - 8;
        while (b > hmin && block_empty(b)) b -= 8;
        hmax = b + 7;
        while (both(hmax) == 0) --hmax;
    }
    m.n = m.n_zero + m.n_nonfinite;
    if (hmax) {
        // the kept magnitudes, lo <= |w| < 1, are a span (values increase with the pattern)
        const double* v = values.data();
        const std::uint32_t klo = static_cast<std::uint32_t>(std::lower_bound(v + hmin, v + hmax + 1, lo) - v);
        const std::uint32_t khi = static_cast<std::uint32_t>(std::lower_bound(v + klo, v + hmax + 1, 1.0) - v);
        for (std::uint32_t h = klo; h < khi; ++h) m.n_kept += both(h);
        double u[5] = {0, 0, 0, 0, 0}, x[5] = {0, 0, 0, 0, 0};  // s1, s2, s3, s4, s_abs of even / odd magnitudes
        std::uint32_t h = hmin;
#if defined(__GNUC__)
        {  // the same sums, the two lanes of one vector; counts (< 2^51) to double by the exponent trick
            typedef double v2d __attribute__((vector_size(16)));
            typedef long long v2i __attribute__((vector_size(16)));
            const v2i magic = {0x4330000000000000ll, 0x4330000000000000ll}, shift = {1ll << 51, 1ll << 51};
            v2d a1 = {0, 0}, a2 = {0, 0}, a3 = {0, 0}, a4 = {0, 0}, ab = {0, 0};
            v2i total = {0, 0};
            for (; h + 1 <= hmax; h += 2) {
                v2i p, n;
                v2d vv;
                std::memcpy(&p, counts + h, sizeof p), std::memcpy(&n, counts + h + 0x8000u, sizeof n);
                std::memcpy(&vv, v + h, sizeof vv);
                const v2i si = p + n, di = p - n + shift;
                total += si;
                const v2i sb = si | magic, db = di | magic;
                v2d sd, dd;
                std::memcpy(&sd, &sb, sizeof sd), std::memcpy(&dd, &db, sizeof dd);
                sd -= 4503599627370496.0, dd -= 6755399441055744.0;  // 2^52, 2^52 + 2^51
                const v2d q = vv * vv;
                a1 += dd * vv, a2 += sd * q, a3 += dd * q * vv, a4 += sd * q * q, ab += sd * vv;
            }
            m.n += total[0] + total[1];
            u[0] = a1[0], x[0] = a1[1], u[1] = a2[0], x[1] = a2[1], u[2] = a3[0], x[2] = a3[1];
            u[3] = a4[0], x[3] = a4[1], u[4] = ab[0], x[4] = ab[1];
        }
#endif
        for (; h + 1 <= hmax; h += 2) {
            const std::int64_t p0 = counts[h], n0 = counts[h | 0x8000u], p1 = counts[h + 1], n1 = counts[(h + 1) | 0x8000u];
            m.n += p0 + n0 + p1 + n1;
            const double v0 = values[h], v1 = values[h + 1];
            const double s0 = static_cast<double>(p0 + n0), d0 = static_cast<double>(p0 - n0);
            const double s1 = static_cast<double>(p1 + n1), d1 = static_cast<double>(p1 - n1);
            const double q0 = v0 * v0, q1 = v1 * v1;
            u[0] += d0 * v0, x[0] += d1 * v1;
            u[1] += s0 * q0, x[1] += s1 * q1;
            u[2] += d0 * q0 * v0, x[2] += d1 * q1 * v1;
            u[3] += s0 * q0 * q0, x[3] += s1 * q1 * q1;
            u[4] += s0 * v0, x[4] += s1 * v1;
        }
        if (h == hmax) {  // an odd count of magnitudes: the last one
            const std::int64_t p0 = counts[h], n0 = counts[h | 0x8000u];
            m.n += p0 + n0;
            const double v0 = values[h], s0 = static_cast<double>(p0 + n0), d0 = static_cast<double>(p0 - n0);
            const double q0 = v0 * v0;
            u[0] += d0 * v0, u[1] += s0 * q0, u[2] += d0 * q0 * v0, u[3] += s0 * q0 * q0, u[4] += s0 * v0;
        }
        m.s1 = u[0] + x[0], m.s2 = u[1] + x[1], m.s3 = u[2] + x[2], m.s4 = u[3] + x[3], m.s_abs = u[4] + x[4];
    }
    if (range) range[0] = hmax ? hmin : 0, range[1] = hmax;
    return m;
}

// Adds a 16-bit pattern histogram into `pooled` (when not null) and sets it to zero, visiting
// only where weights can be: the zero patterns and the magnitude range `range` (as
// histogram16_moments gives it) of both signs; everything when `whole` (non-finite weights).
inline void histogram16_drain(std::int64_t* counts, std::int64_t* pooled, const std::uint32_t* range, bool whole) {
    auto span = [&](std::uint32_t a, std::uint32_t b) {  // [a, b)
        if (pooled)
            for (std::uint32_t h = a; h < b; ++h) pooled[h] += counts[h];
        std::fill(counts + a, counts + b, std::int64_t(0));
    };
    if (whole) return span(0, 1u << 16);
    span(0, 1), span(0x8000u, 0x8001u);
    if (range[1]) span(range[0], range[1] + 1), span(range[0] | 0x8000u, (range[1] | 0x8000u) + 1);
}

struct WeibullFit {
    double shape = std::numeric_limits<double>::quiet_NaN();
    double scale = std::numeric_limits<double>::quiet_NaN();
    std::int64_t iterations = 0;
    bool converged = false;
};

// Newton (kept inside a bisection bracket) on the increasing shape equation g(k) = 0, from the
// Gumbel moment estimate; eval(k, g, g', S0, m1) with S0 = sum c (x / xmax)^k and m1 = S1 / S0
// (S1 = sum c y (x / xmax)^k, y = ln(x / xmax)); then the scale.  It stops
//  - at a k whose step is below rtol * k: that k, with the S0 evaluated there, or
//  - after a Newton step below sqrt_rtol * k (1e-8): the step's end, whose distance to the root
//    is of the order of the step squared (about 1e-16 relative: Newton converges quadratically
//    on this smooth, increasing g), with ln S0 carried there by its Taylor expansion to second
//    order (d ln S0 / dk = m1, d^2 ln S0 / dk^2 = g' - 1/k^2; the error is the step cubed).
// so a fit takes one evaluation fewer than checking the last step.  `k_start` > 0 replaces the
// Gumbel estimate as the first k.
template <class Eval>
WeibullFit newton_weibull(Eval&& eval, double var_y, double xmax, double total, WeibullFit fit, double rtol = 1e-13,
                          int max_iter = 200, double sqrt_rtol = 1e-8, double k_start = 0) {
    double k = k_start > 0 ? k_start : 3.141592653589793 / std::sqrt(6.0 * var_y);  // or the Gumbel moment estimate
    double lo = 0, hi = std::numeric_limits<double>::infinity();
    double g, dg, s0 = 0, m1 = 0, log_s0 = std::numeric_limits<double>::quiet_NaN();
    for (int it = 0; it < max_iter; ++it) {
        eval(k, g, dg, s0, m1);
        fit.iterations = it + 1;
        if (g == 0) {  // the root itself (the step test below would see k outside (lo, hi) and bisect)
            fit.converged = true;
            break;
        }
        if (g < 0) lo = k; else hi = k;
        double next = k - g / dg;
        const bool newton = next > lo && next < hi && std::isfinite(next);
        if (!newton) next = std::isfinite(hi) ? 0.5 * (lo + hi) : 2.0 * k;
        const double step = next - k;
        if (std::fabs(step) <= rtol * k) {  // k is the root to rtol: keep it and its S0 (no extra evaluation)
            fit.converged = true;
            break;
        }
        if (newton && std::fabs(step) <= sqrt_rtol * k) {  // the step's end is the root to ~step^2
            log_s0 = std::log(s0) + step * m1 + 0.5 * step * step * (dg - 1.0 / (k * k));
            k = next;
            fit.converged = true;
            break;
        }
        k = next;
    }
    if (!fit.converged) eval(k, g, dg, s0, m1);
    if (std::isnan(log_s0)) log_s0 = std::log(s0);
    fit.shape = k;
    fit.scale = xmax * std::exp((log_s0 - std::log(total)) / k);
    return fit;
}

// Maximum-likelihood Weibull fit (location 0) of positive values x with integer or real
// weights c: Newton (kept inside a bisection bracket) on the shape equation
//   g(k) = sum c x^k ln x / sum c x^k - 1/k - mean(ln x) = 0,
// which is increasing in k; then scale = (sum c x^k / sum c)^(1/k).  Powers are taken of
// x / max(x) so no x^k overflows.  Sums run in input order (deterministic).
inline WeibullFit weibull_fit(const double* x, const double* c, std::int64_t n, double rtol = 1e-13,
                              int max_iter = 200) {
    WeibullFit fit;
    double total = 0, xmax = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        if (!(x[i] > 0) || !std::isfinite(x[i])) throw std::invalid_argument("weibull_fit: values must be positive and finite");
        if (!(c[i] >= 0) || !std::isfinite(c[i])) throw std::invalid_argument("weibull_fit: weights must be >= 0 and finite");
        if (c[i] > 0) total += c[i], xmax = std::max(xmax, x[i]);
    }
    if (total <= 0) return fit;
    const double lmax = std::log(xmax);
    double mean_y = 0, var_y = 0;  // y = ln x - ln max
    std::vector<double> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        y[static_cast<std::size_t>(i)] = std::log(x[i]) - lmax;
        mean_y += c[i] * y[static_cast<std::size_t>(i)];
    }
    mean_y /= total;
    for (std::int64_t i = 0; i < n; ++i) {
        const double d = y[static_cast<std::size_t>(i)] - mean_y;
        var_y += c[i] * d * d;
    }
    var_y /= total;
    if (!(var_y > 0)) return fit;  // all values equal: no finite shape
    // g(k) and g'(k) from S0 = sum c e^{ky}, S1 = sum c y e^{ky}, S2 = sum c y^2 e^{ky}
    auto eval = [&](double k, double& g, double& dg, double& s0, double& m1) {
        double a0 = 0, a1 = 0, a2 = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double yi = y[static_cast<std::size_t>(i)];
            const double e = c[i] * std::exp(k * yi);
            a0 += e, a1 += e * yi, a2 += e * yi * yi;
        }
        m1 = a1 / a0;
        g = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    return newton_weibull(eval, var_y, xmax, total, fit, rtol, max_iter);
}

}  // namespace neuromfa

namespace neuromfa {

// ln(1 + f/F) of the 2^mbits normal mantissas and its square; built once per mantissa width.
struct MantissaLogs {
    std::vector<double> lm, lm2;
};
inline const MantissaLogs& mantissa_logs(int mbits) {
    static const auto make = [](int b) {
        const std::uint32_t F = 1u << b;
        MantissaLogs t;
        t.lm.resize(F), t.lm2.resize(F);
        for (std::uint32_t f = 0; f < F; ++f) {
            t.lm[f] = std::log1p(static_cast<double>(f) / F);
            t.lm2[f] = t.lm[f] * t.lm[f];
        }
        return t;
    };
    static const MantissaLogs f16 = make(10), bf16 = make(7);
    return mbits == 10 ? f16 : bf16;
}

// p[f] = exp(k * l[f]) for f in [f0, f1): x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two
// parts, so r is exact to a few ulp), exp(r) by its Taylor polynomial to degree 13 (truncation
// below 1e-17 relative), times 2^n from the exponent bits; within an ulp or so of std::exp, which
// takes over where |x| > 700 (over- or underflow).  A loop the compiler can run two lanes at a
// time: the libm call was most of a Newton evaluation's cost.
inline void exp_of_scaled(double k, const double* l, double* p, std::uint32_t f0, std::uint32_t f1) {
    constexpr double inv_ln2 = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    bool wide = false;
    for (std::uint32_t f = f0; f < f1; ++f) {
        const double x = k * l[f];
        wide |= !(std::fabs(x) <= 700.0);
        const double t = std::min(std::max(x * inv_ln2, -1000.0), 1000.0);  // |x| <= 700 is not clamped
        const std::int32_t ni = static_cast<std::int32_t>(t + std::copysign(0.5, t));  // rounded
        const double n = static_cast<double>(ni);
        const double r = (x - n * ln2_hi) - n * ln2_lo;
        double q = 1.0 / 6227020800.0;  // 1/13!
        q = q * r + 1.0 / 479001600.0;
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
        const std::uint64_t bits = static_cast<std::uint64_t>(ni + 1023) << 52;  // 2^n (garbage where |x| > 700)
        double two_n;
        std::memcpy(&two_n, &bits, sizeof two_n);
        p[f] = q * two_n;
    }
    if (wide)
        for (std::uint32_t f = f0; f < f1; ++f) p[f] = std::exp(k * l[f]);
}

// Sums over f in [f0, f1) (f0, f1 even) of c_f p_f l_f^j, j = 0, 1, 2: even and odd f in two
// partial sums added at the end; with GCC/Clang as the two lanes of one vector (the same
// operations in the same order, so the same bits as the plain loop).
inline void mantissa_sums(const double* c, const double* p, const double* l, const double* l2, std::uint32_t f0,
                          std::uint32_t f1, double& s0, double& s1, double& s2) {
#if defined(__GNUC__)
    typedef double v2d __attribute__((vector_size(16)));
    v2d a0 = {0, 0}, a1 = {0, 0}, a2 = {0, 0};
    for (std::uint32_t f = f0; f < f1; f += 2) {
        v2d cv, pv, lv, l2v;
        std::memcpy(&cv, c + f, sizeof cv), std::memcpy(&pv, p + f, sizeof pv);
        std::memcpy(&lv, l + f, sizeof lv), std::memcpy(&l2v, l2 + f, sizeof l2v);
        const v2d t = cv * pv;
        a0 += t, a1 += t * lv, a2 += t * l2v;
    }
    s0 = a0[0] + a0[1], s1 = a1[0] + a1[1], s2 = a2[0] + a2[1];
#else
    double u0 = 0, v0 = 0, u1 = 0, v1 = 0, u2 = 0, v2 = 0;
    for (std::uint32_t f = f0; f < f1; f += 2) {
        const double t = c[f] * p[f], s = c[f + 1] * p[f + 1];
        u0 += t, v0 += s, u1 += t * l[f], v1 += s * l[f + 1], u2 += t * l2[f], v2 += s * l2[f + 1];
    }
    s0 = u0 + v0, s1 = u1 + v1, s2 = u2 + v2;
#endif
}

// Sums over f in [f0, f1) (f0, f1 even) of c_f and c_f l_f, even and odd f apart (as mantissa_sums).
inline void run_sums(const double* c, const double* l, std::uint32_t f0, std::uint32_t f1, double& s0, double& s1) {
#if defined(__GNUC__)
    typedef double v2d __attribute__((vector_size(16)));
    v2d a0 = {0, 0}, a1 = {0, 0};
    for (std::uint32_t f = f0; f < f1; f += 2) {
        v2d cv, lv;
        std::memcpy(&cv, c + f, sizeof cv), std::memcpy(&lv, l + f, sizeof lv);
        a0 += cv, a1 += cv * lv;
    }
    s0 = a0[0] + a0[1], s1 = a1[0] + a1[1];
#else
    double u0 = 0, v0 = 0, u1 = 0, v1 = 0;
    for (std::uint32_t f = f0; f < f1; f += 2) u0 += c[f], v0 += c[f + 1], u1 += c[f] * l[f], v1 += c[f + 1] * l[f + 1];
    s0 = u0 + v0, s1 = u1 + v1;
#endif
}

// The Weibull fit of the nonzero |w| of 16-bit weights from their pattern histogram: the sign is
// folded, each positive finite magnitude pattern is one value with its count.  The same Newton
// iteration as weibull_fit, but each evaluation factorises x^k = 2^(kE) * m^k over the
// exponent E and mantissa m of the pattern: one exp per mantissa and per exponent instead of
// one per distinct value (subnormal patterns, few, take their own exp).  Only what holds
// weights is visited: the exponents present and, in each, the span of mantissas present; the
// counts go once into a per-thread buffer (no allocation per call once warm), and each
// exponent's mantissa sums run in two interleaved partial sums, in a fixed order (the same bits
// every run).  `hmin`, `hmax`: the magnitude-pattern range of the nonzero finite weights (as
// histogram16_moments gives it), 0 to find it here.
inline WeibullFit weibull_fit16(const std::int64_t* counts, WeightKind kind, std::uint32_t hmin = 0,
                                std::uint32_t hmax = 0) {
    const WeightView w{nullptr, kind};
    if (!w.is_half()) throw std::invalid_argument("weibull_fit16: the kind must be f16 or bf16");
    const int mbits = kind == WeightKind::f16 ? 10 : 7;
    const std::uint32_t F = 1u << mbits, top = 32768u - F;  // magnitude patterns >= top: inf/NaN
    const std::vector<double>& values = half_values(kind);
    const MantissaLogs& ml = mantissa_logs(mbits);
    const double* lm = ml.lm.data();
    const double* lm2 = ml.lm2.data();
    auto count = [counts](std::uint32_t h) { return counts[h] + counts[h | 0x8000u]; };
    WeibullFit fit;
    if (hmin == 0) {  // magnitude order is pattern order
        hmin = 1;
        while (hmin < top && count(hmin) == 0) ++hmin;
        if (hmin == top) return fit;
        hmax = top - 1;
        while (count(hmax) == 0) --hmax;
    }
    if (!(hmin >= 1 && hmin <= hmax && hmax < top)) throw std::invalid_argument("weibull_fit16: bad pattern range");
    struct Row {  // one exponent: the span [f0, f1) of its mantissas (multiples of 2) and ln 2^E - ln max
        std::uint32_t ex, f0, f1;
        double ze;
    };
    thread_local std::vector<double> cbuf, pmbuf, suby, subc, sube;  // counts, mantissa powers, subnormal y, c, e^{ky}
    thread_local std::vector<Row> rows;
    const std::uint32_t ex0 = hmin >> mbits, ex1 = hmax >> mbits, base = ex0 << mbits;
    cbuf.resize(static_cast<std::size_t>(ex1 - ex0 + 1) << mbits);
    pmbuf.resize(F);
    double* c = cbuf.data();  // c[h - base]
    double* pm = pmbuf.data();
    const double lmax = std::log(values[hmax]);
    rows.clear(), suby.clear(), subc.clear();
    const std::size_t end = cbuf.size();
    std::fill(c, c + (hmin - base), 0.0), std::fill(c + (hmax - base + 1), c + end, 0.0);
    for (std::uint32_t h = hmin; h <= hmax; ++h) {  // count -> double by the 2^52 trick (counts < 2^52): vectorises
        const std::uint64_t bits = static_cast<std::uint64_t>(counts[h] + counts[h + 0x8000u]) | 0x4330000000000000ull;
        double d;
        std::memcpy(&d, &bits, sizeof d);
        c[h - base] = d - 4503599627370496.0;
    }
    std::int64_t distinct = 0;  // 0, 1 or "2": more than one
    for (std::uint32_t h = hmin; h < F && h <= hmax; ++h) {  // subnormals (ex0 = 0, base = 0): each its own y
        if (c[h] > 0) suby.push_back(std::log(values[h]) - lmax), subc.push_back(c[h]), ++distinct;
    }
    const std::uint32_t n_sub = static_cast<std::uint32_t>(suby.size());
    sube.resize(n_sub);
    std::uint32_t fmin = F, fmax = 0;
    for (std::uint32_t ex = std::max<std::uint32_t>(ex0, 1); ex <= ex1; ++ex) {  // normal rows: their mantissa span
        const double* cr = c + ((ex << mbits) - base);
        std::uint32_t first = 0, last = F - 1;
        while (first < F && cr[first] == 0) ++first;
        if (first == F) continue;  // an exponent without weights
        while (cr[last] == 0) --last;
        distinct += first == last ? 1 : 2;
        rows.push_back(Row{ex, first & ~1u, (last + 2) & ~1u, std::log(values[ex << mbits]) - lmax});
        fmin = std::min(fmin, rows.back().f0), fmax = std::max(fmax, rows.back().f1);
    }
    if (distinct < 2) return fit;  // all values equal: no finite shape
    // a_j = sum c y^j e^{k y}, j = 0, 1, 2 (y = ln x - ln max): subnormals one by one, then each
    // exponent's mantissa sums times e^{k ze}
    auto sums = [&](double k, double& a0, double& a1, double& a2) {
        a0 = a1 = a2 = 0;
        exp_of_scaled(k, suby.data(), sube.data(), 0, n_sub);
        for (std::uint32_t i = 0; i < n_sub; ++i) {
            const double y = suby[i], e = subc[i] * sube[i];
            a0 += e, a1 += e * y, a2 += e * y * y;
        }
        exp_of_scaled(k, lm, pm, fmin, fmax);
        for (const Row& r : rows) {
            const double* cf = c + ((r.ex << mbits) - base);
            double s0e, s1e, s2e;
            mantissa_sums(cf, pm, lm, lm2, r.f0, r.f1, s0e, s1e, s2e);
            const double ze = r.ze, q = std::exp(k * ze);
            a0 += q * s0e, a1 += q * (s1e + ze * s0e), a2 += q * (s2e + 2 * ze * s1e + ze * ze * s0e);
        }
    };
    // The starting point: Newton on a coarse copy of the data, the subnormals as they are and each
    // run of F/32 mantissas of an exponent as one point at its weighted mean y (the sums then err by
    // about k^2 var(y in the run) / 2, ~1e-5 relative), which is cheap (a few hundred points); the
    // exact iteration from there needs about two evaluations.  mean(y) is exact from the same sums.
    thread_local std::vector<double> py, pc, pe;
    py.assign(suby.begin(), suby.end()), pc.assign(subc.begin(), subc.end());
    double total = 0, mean_y = 0;
    for (std::uint32_t i = 0; i < n_sub; ++i) total += subc[i], mean_y += subc[i] * suby[i];
    const std::uint32_t W = F / 32;
    for (const Row& r : rows) {
        const double* cf = c + ((r.ex << mbits) - base);
        double row0 = 0, row1 = 0;
        for (std::uint32_t a = r.f0 - r.f0 % W; a < r.f1; a += W) {  // whole runs: the row is 0 outside its span
            double c0, c1;
            run_sums(cf, lm, a, a + W, c0, c1);
            if (c0 > 0) py.push_back(r.ze + c1 / c0), pc.push_back(c0);
            row0 += c0, row1 += c1;
        }
        total += row0, mean_y += r.ze * row0 + row1;
    }
    mean_y /= total;
    const std::uint32_t n_pts = static_cast<std::uint32_t>(py.size());
    pe.resize(n_pts);
    double var_y = 0;  // of the coarse points: for the Gumbel estimate of the coarse iteration
    for (std::uint32_t i = 0; i < n_pts; ++i) var_y += pc[i] * (py[i] - mean_y) * (py[i] - mean_y);
    var_y /= total;
    auto coarse = [&](double k, double& g, double& dg, double& s0, double& m1) {
        exp_of_scaled(k, py.data(), pe.data(), 0, n_pts);
        double a0 = 0, a1 = 0, a2 = 0;
        for (std::uint32_t i = 0; i < n_pts; ++i) {
            const double y = py[i], e = pc[i] * pe[i];
            a0 += e, a1 += e * y, a2 += e * y * y;
        }
        m1 = a1 / a0;
        g = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    double k_start = 0;
    if (var_y > 0 && n_pts > 1) {
        const WeibullFit start = newton_weibull(coarse, var_y, values[hmax], total, WeibullFit{}, 1e-10);
        if (start.converged && std::isfinite(start.shape) && start.shape > 0) k_start = start.shape;
    }
    if (k_start == 0) {  // no usable coarse fit (all weights in one run): the exact variance for the Gumbel start
        double a0, a1, a2;
        sums(0.0, a0, a1, a2);
        var_y = a2 / a0 - (a1 / a0) * (a1 / a0);
        if (!(var_y > 0)) return fit;
    }
    auto eval = [&](double k, double& g, double& dg, double& s0, double& m1) {
        double a0, a1, a2;
        sums(k, a0, a1, a2);
        m1 = a1 / a0;
        g = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    return newton_weibull(eval, var_y, values[hmax], total, fit, 1e-13, 200, 1e-8, k_start);
}

}  // namespace neuromfa
