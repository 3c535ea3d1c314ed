// Rival statistics of weight matrices (SPEC 10): moments, kept fraction, row strengths, the
// exact |w| histogram of 16-bit weights, and the Weibull maximum-likelihood fit of |w|.
//
// The moment kernel runs over the row block a network has just read (no second read): per-row
// partial sums in fixed row order, so 1 and N threads give the same bits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
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
// every weight widened exactly, the sums taken in pattern order (deterministic, no thread count).
// mean_strength needs only s_abs, so no per-row sums here (row_abs stays empty).
inline WeightMoments histogram16_moments(const std::int64_t* counts, WeightKind kind, double threshold) {
    if (!(threshold > 1.0)) throw std::invalid_argument("histogram16_moments: threshold must be > 1");
    const WeightView w{nullptr, kind};
    if (!w.is_half()) throw std::invalid_argument("histogram16_moments: the kind must be f16 or bf16");
    const double lo = 1.0 / threshold;
    const std::vector<double>& values = half_values(kind);
    WeightMoments m;
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const std::int64_t c = counts[h];
        if (c == 0) continue;
        m.n += c;
        const double v = values[h];
        if (!std::isfinite(v)) {
            m.n_nonfinite += c;
            continue;
        }
        const double a = std::fabs(v), v2 = v * v, cd = static_cast<double>(c);
        if (v == 0.0) m.n_zero += c;
        if (a >= lo && a < 1.0) m.n_kept += c;
        m.s1 += cd * v, m.s2 += cd * v2, m.s3 += cd * v2 * v, m.s4 += cd * v2 * v2, m.s_abs += cd * a;
    }
    return m;
}

struct WeibullFit {
    double shape = std::numeric_limits<double>::quiet_NaN();
    double scale = std::numeric_limits<double>::quiet_NaN();
    std::int64_t iterations = 0;
    bool converged = false;
};

// Newton (kept inside a bisection bracket) on the increasing shape equation g(k) = 0, from the
// Gumbel moment estimate; eval(k, g, g', S0) with S0 = sum c (x / xmax)^k; then the scale.
template <class Eval>
WeibullFit newton_weibull(Eval&& eval, double var_y, double xmax, double total, WeibullFit fit, double rtol = 1e-13,
                          int max_iter = 200) {
    double k = 3.141592653589793 / std::sqrt(6.0 * var_y);  // Gumbel moment estimate of the shape
    double lo = 0, hi = std::numeric_limits<double>::infinity();
    double g, dg, s0 = 0;
    for (int it = 0; it < max_iter; ++it) {
        eval(k, g, dg, s0);
        fit.iterations = it + 1;
        if (g < 0) lo = k; else hi = k;
        double next = k - g / dg;
        if (!(next > lo && next < hi) || !std::isfinite(next)) next = std::isfinite(hi) ? 0.5 * (lo + hi) : 2.0 * k;
        if (std::fabs(next - k) <= rtol * k) {
            k = next;
            fit.converged = true;
            break;
        }
        k = next;
    }
    eval(k, g, dg, s0);
    fit.shape = k;
    fit.scale = xmax * std::pow(s0 / total, 1.0 / k);
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
    auto eval = [&](double k, double& g, double& dg, double& s0) {
        double a0 = 0, a1 = 0, a2 = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double yi = y[static_cast<std::size_t>(i)];
            const double e = c[i] * std::exp(k * yi);
            a0 += e, a1 += e * yi, a2 += e * yi * yi;
        }
        const double m1 = a1 / a0;
        g = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    return newton_weibull(eval, var_y, xmax, total, fit, rtol, max_iter);
}

}  // namespace neuromfa

namespace neuromfa {

// The Weibull fit of the nonzero |w| of 16-bit weights from their pattern histogram: the sign is
// folded, each positive finite magnitude pattern is one value with its count.  The same Newton
// iteration as weibull_fit, but each evaluation factorises x^k = 2^(kE) * m^k over the
// exponent E and mantissa m of the pattern: one exp per mantissa and per exponent instead of
// one per distinct value (subnormal patterns, few, take their own exp).
inline WeibullFit weibull_fit16(const std::int64_t* counts, WeightKind kind) {
    const WeightView w{nullptr, kind};
    if (!w.is_half()) throw std::invalid_argument("weibull_fit16: the kind must be f16 or bf16");
    const int mbits = kind == WeightKind::f16 ? 10 : 7;
    const std::uint32_t F = 1u << mbits, n_exp = 32768u >> mbits;  // exponent field all ones: inf/NaN
    const std::vector<double>& values = half_values(kind);
    std::vector<double> c(32768, 0.0);
    double total = 0;
    std::uint32_t hmax = 0;
    for (std::uint32_t h = 1; h < 32768 - F; ++h) {  // magnitude order is pattern order
        c[h] = static_cast<double>(counts[h] + counts[h | 0x8000u]);
        if (c[h] > 0) total += c[h], hmax = h;
    }
    WeibullFit fit;
    if (total <= 0) return fit;
    const double lmax = std::log(values[hmax]);
    std::vector<double> lm(F), pm(F);  // ln of the normal mantissas 1 + f/F, and their k-th powers
    for (std::uint32_t f = 0; f < F; ++f) lm[f] = std::log1p(static_cast<double>(f) / F);
    std::vector<double> zexp(n_exp, 0.0);  // y = ln x - ln max of mantissa 1 in each exponent
    for (std::uint32_t ex = 1; ex < n_exp; ++ex) zexp[ex] = std::log(values[ex << mbits]) - lmax;
    std::vector<double> L(32768, 0.0);  // y of each pattern
    std::uint32_t hmin = 0;
    double mean_y = 0, var_y = 0;
    for (std::uint32_t h = 1; h <= hmax; ++h) {
        L[h] = h < F ? (c[h] > 0 ? std::log(values[h]) - lmax : 0.0) : zexp[h >> mbits] + lm[h & (F - 1)];
        if (c[h] > 0) mean_y += c[h] * L[h], hmin = hmin ? hmin : h;
    }
    mean_y /= total;
    for (std::uint32_t h = hmin; h <= hmax; ++h) var_y += c[h] * (L[h] - mean_y) * (L[h] - mean_y);
    var_y /= total;
    if (!(var_y > 0)) return fit;
    const std::uint32_t ex0 = std::max<std::uint32_t>(1, hmin >> mbits), ex1 = hmax >> mbits;
    auto eval = [&](double k, double& g, double& dg, double& s0) {
        double a0 = 0, a1 = 0, a2 = 0;
        for (std::uint32_t h = hmin; h < F && h <= hmax; ++h) {  // subnormals
            const double e = c[h] * std::exp(k * L[h]);
            a0 += e, a1 += e * L[h], a2 += e * L[h] * L[h];
        }
        for (std::uint32_t f = 0; f < F; ++f) pm[f] = std::exp(k * lm[f]);
        for (std::uint32_t ex = ex0; ex <= ex1; ++ex) {
            const double* cf = &c[ex << mbits];
            double b0 = 0, b1 = 0, b2 = 0;
            for (std::uint32_t f = 0; f < F; ++f) {
                const double t = cf[f] * pm[f];
                b0 += t, b1 += t * lm[f], b2 += t * lm[f] * lm[f];
            }
            const double ze = zexp[ex], q = std::exp(k * ze);
            a0 += q * b0, a1 += q * (b1 + ze * b0), a2 += q * (b2 + 2 * ze * b1 + ze * ze * b0);
        }
        const double m1 = a1 / a0;
        g = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    return newton_weibull(eval, var_y, values[hmax], total, fit);
}

}  // namespace neuromfa
