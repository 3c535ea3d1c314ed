// Rival statistics of weight matrices (SPEC 10): moments, kept fraction, row strengths, and the
// Weibull maximum-likelihood fit of |w| (16-bit weights: half_stats.hpp and weibull16.hpp, on
// their bit patterns).
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

#include "neuromfa/half_tables.hpp"
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

// The moments of a (rows x cols) block of any weight kind (16-bit patterns widened exactly, by the
// table of their 2^16 values, half_values).
inline WeightMoments weight_moments(const WeightView& w, std::int64_t rows, std::int64_t cols, double threshold,
                                    int n_threads) {
    const double* t = w.is_half() ? half_values(w.kind).data() : nullptr;
    return w.visit([&](auto p) {
        if constexpr (std::is_same_v<decltype(p), const std::uint16_t*>)
            return weight_moments([p, t](std::int64_t i) { return t[p[i]]; }, rows, cols, threshold, n_threads);
        else
            return weight_moments([p](std::int64_t i) { return static_cast<double>(p[i]); }, rows, cols, threshold,
                                  n_threads);
    });
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
// so a fit takes one evaluation fewer than checking the last step.  After max_iter steps without
// either, the last k comes back with converged = false (the bindings carry it; the Python layer
// makes such a fit NaN).  `k_start` > 0 replaces the Gumbel estimate as the first k.
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
    if (max_iter < 1) throw std::invalid_argument("weibull_fit: max_iter must be >= 1");
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
