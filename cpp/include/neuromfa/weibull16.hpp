// The Weibull fit of 16-bit magnitudes from their counts (fit_counts): the fit that HalfStats
// (half_stats.hpp) runs on each tensor and on the pooled tensors.  It iterates on ~32 points per
// binade (a Gaussian model of each run of mantissas, accurate to ~1e-8) and takes one exact
// Newton step over every pattern to finish (docs: "Controls and rival statistics").  Every sum
// runs in a fixed order, in four interleaved partial sums (simd.hpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "neuromfa/half_tables.hpp"
#include "neuromfa/simd.hpp"
#include "neuromfa/weight_stats.hpp"
#include "neuromfa/weights.hpp"

#include "neuromfa/clones_begin.hpp"

namespace neuromfa {

namespace half_detail {

// Sums of the Gaussian points (count c, mean m, variance v) at k: a0 = sum c e^{k m + k^2 v / 2},
// a1, a2 its first and second derivatives in k; x, e: scratch of n doubles.
[[gnu::always_inline]] inline void gauss_sums_impl(double k, const double* m, const double* c, const double* v,
                                                   std::uint32_t n, double* x, double* e, double& a0, double& a1,
                                                   double& a2) {
    for (std::uint32_t i = 0; i < n; ++i) x[i] = m[i] + 0.5 * k * v[i];
    exp_k_impl(k, x, e, 0, n);
    double b0[4] = {0, 0, 0, 0}, b1[4] = {0, 0, 0, 0}, b2[4] = {0, 0, 0, 0};
    std::uint32_t i = 0;
    {
        v4d u0 = {0, 0, 0, 0}, u1 = u0, u2 = u0;
        for (; i + 4 <= n; i += 4) {
            v4d cv, ev, mv, vv;
            std::memcpy(&cv, c + i, sizeof cv), std::memcpy(&ev, e + i, sizeof ev);
            std::memcpy(&mv, m + i, sizeof mv), std::memcpy(&vv, v + i, sizeof vv);
            const v4d w = cv * ev, mu = mv + k * vv;
            u0 += w, u1 += w * mu, u2 += w * (mu * mu + vv);
        }
        for (int j = 0; j < 4; ++j) b0[j] = u0[j], b1[j] = u1[j], b2[j] = u2[j];
    }
    for (std::uint32_t j = 0; i < n; ++i, ++j) {
        const double w = c[i] * e[i], mu = m[i] + k * v[i];
        b0[j] += w, b1[j] += w * mu, b2[j] += w * (mu * mu + v[i]);
    }
    a0 += (b0[0] + b0[1]) + (b0[2] + b0[3]);
    a1 += (b1[0] + b1[1]) + (b1[2] + b1[3]);
    a2 += (b2[0] + b2[1]) + (b2[2] + b2[3]);
}

NEUROMFA_CLONES static void gauss_sums(double k, const double* m, const double* c, const double* v, std::uint32_t n,
                                       double* x, double* e, double& a0, double& a1, double& a2) {
    gauss_sums_impl(k, m, c, v, n, x, e, a0, a1, a2);
}

// Sums over f in [f0, f1) (multiples of 4) of c_f p_f l_f^j, j = 0, 1, 2, in four interleaved
// partial sums.
[[gnu::always_inline]] inline void row_sums_impl(const double* c, const double* p, const double* l, const double* l2,
                                                 std::uint32_t f0, std::uint32_t f1, double& s0, double& s1,
                                                 double& s2) {
    v4d b0 = {0, 0, 0, 0}, b1 = b0, b2 = b0;
    for (std::uint32_t f = f0; f < f1; f += 4) {
        v4d cv, pv, lv, l2v;
        std::memcpy(&cv, c + f, sizeof cv), std::memcpy(&pv, p + f, sizeof pv);
        std::memcpy(&lv, l + f, sizeof lv), std::memcpy(&l2v, l2 + f, sizeof l2v);
        const v4d t = cv * pv;
        b0 += t, b1 += t * lv, b2 += t * l2v;
    }
    s0 = hsum(b0), s1 = hsum(b1), s2 = hsum(b2);
}

NEUROMFA_CLONES static void row_sums(const double* c, const double* p, const double* l, const double* l2,
                                     std::uint32_t f0, std::uint32_t f1, double& s0, double& s1, double& s2) {
    row_sums_impl(c, p, l, l2, f0, f1, s0, s1, s2);
}

// The counts the fit needs of one tensor (or of the pooled tensors), over magnitudes [hmin, hmax]
// (both > 0, below top): c[h - base] the count of magnitude h as a double (exact); per run of W
// mantissas (run index h / W) the sums of c, c l and c l^2 with l = ln(1 + f / F) the log of the
// mantissa, so a run's mean and variance of ln|w| follow.
struct FitCounts {
    const double* c = nullptr;
    std::uint32_t base = 0, hmin = 0, hmax = 0;
    const double* r0 = nullptr;  // indexed by run - base / W
    const double* r1 = nullptr;
    const double* r2 = nullptr;
};

// A scratch vector at least n long (never shrunk: resizing up again would zero it each time).
inline void grow(std::vector<double>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

// Scratch of fit_counts, kept by its caller so a fit allocates nothing once warm.  The points
// (py, pc, pv: mean, count and variance of y = ln x - ln max): the subnormals (variance 0), then
// per binade its runs; ry, rc, rv: one point per binade; sx, se, pm: the models' exp scratch.
struct FitScratch {
    struct Row {
        std::uint32_t ex, f0, f1;  // exponent; mantissa span [f0, f1) holding weights (multiples of 4)
        double ze;                 // ln 2^E - ln max of the row's first pattern
    };
    std::vector<double> py, pc, pv, ry, rc, rv, sx, se, pm;
    std::vector<Row> rows;
};

// What fit_points found: n_pts points of which the first n_subs are subnormals, n_binade points
// of one per binade, and the total count and sum of y.
struct FitPoints {
    std::uint32_t n_pts = 0, n_subs = 0, n_binade = 0;
    double total = 0, sum_y = 0;
};

// The n_subs subnormal magnitudes from fc.hmin on, each its own point (variance 0), in both lists.
inline void subnormal_points(const FitCounts& fc, std::uint32_t n_subs, const double* logs, double lmax, FitScratch& s,
                             FitPoints& p) {
    for (std::uint32_t h = fc.hmin; h < fc.hmin + n_subs; ++h) {
        const double ch = fc.c[h - fc.base];
        if (ch > 0) {
            const double y = logs[h] - lmax;
            s.py[p.n_pts] = s.ry[p.n_binade] = y, s.pc[p.n_pts] = s.rc[p.n_binade] = ch;
            s.pv[p.n_pts] = s.rv[p.n_binade] = 0.0, ++p.n_pts, ++p.n_binade;
            p.total += ch, p.sum_y += ch * y;
        }
    }
    p.n_subs = p.n_pts;  // the subnormal points lead
}

// Binade ex of fc: a point per run of W mantissas holding weights (its count, mean and variance of
// y from the run sums), one point for the binade, and its row (the span of mantissas read by the
// exact iteration).
inline void binade_points(const FitCounts& fc, const Geometry& g, std::uint32_t ex, double ze, FitScratch& s,
                          FitPoints& p) {
    const std::uint32_t run_base = fc.base / g.W;
    std::uint32_t first = g.F, last = 0;
    double C_row = 0, m_row = 0, q_row = 0;
    const std::uint32_t run0 = (ex << g.mbits) / g.W;
    for (std::uint32_t q = 0; q < 32; ++q) {
        const std::uint32_t run = run0 + q;
        if (run < run_base || run * g.W > fc.hmax) continue;
        const double C = fc.r0[run - run_base];
        if (!(C > 0)) continue;
        const double inv = 1.0 / C, m = fc.r1[run - run_base] * inv;
        const double v = std::max(fc.r2[run - run_base] * inv - m * m, 0.0), y = ze + m;
        s.py[p.n_pts] = y, s.pc[p.n_pts] = C, s.pv[p.n_pts] = v, ++p.n_pts;
        p.total += C, p.sum_y += C * y;
        C_row += C, m_row += C * y, q_row += C * (v + y * y);
        first = std::min(first, q * g.W), last = std::max(last, (q + 1) * g.W);
    }
    if (first < last) {
        s.rows.push_back(FitScratch::Row{ex, first, last, ze});
        m_row /= C_row;
        s.ry[p.n_binade] = m_row, s.rc[p.n_binade] = C_row;
        s.rv[p.n_binade] = std::max(q_row / C_row - m_row * m_row, 0.0), ++p.n_binade;
    }
}

// The points of the Gaussian models of fc (scratch grown to hold them) and the rows.
inline FitPoints fit_points(const FitCounts& fc, const Geometry& g, const double* logs, double lmax, FitScratch& s) {
    const std::uint32_t ex0 = std::max<std::uint32_t>(fc.hmin >> g.mbits, 1), ex1 = fc.hmax >> g.mbits;
    const std::uint32_t n_subs = fc.hmin < g.F ? std::min(fc.hmax, g.F - 1) - fc.hmin + 1 : 0;
    const std::size_t cap = n_subs + 32 * static_cast<std::size_t>(ex1 >= ex0 ? ex1 - ex0 + 1 : 0);
    for (auto* vec : {&s.py, &s.pc, &s.pv, &s.ry, &s.rc, &s.rv, &s.sx, &s.se}) grow(*vec, cap);  // filled by index
    s.rows.clear();
    FitPoints p;
    subnormal_points(fc, n_subs, logs, lmax, s, p);
    for (std::uint32_t ex = ex0; ex <= ex1; ++ex) binade_points(fc, g, ex, logs[ex << g.mbits] - lmax, s, p);
    return p;
}

// g(k) = m1 - 1/k - mean_y and g'(k) from a0 = S0, a1 = S1, a2 = S2 (newton_weibull's eval).
[[gnu::always_inline]] inline void shape_equation(double k, double a0, double a1, double a2, double mean_y, double& gk,
                                                  double& dg, double& s0, double& m1) {
    m1 = a1 / a0;
    gk = m1 - 1.0 / k - mean_y;
    dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
    s0 = a0;
}

// newton_weibull's eval on n Gaussian points (mean m, count c, variance v); x, e: scratch.
struct GaussModel {
    const double *m, *c, *v;
    std::uint32_t n;
    double mean_y;
    double *x, *e;
    void operator()(double k, double& gk, double& dg, double& s0, double& m1) const {
        double a0 = 0, a1 = 0, a2 = 0;
        gauss_sums(k, m, c, v, n, x, e, a0, a1, a2);
        shape_equation(k, a0, a1, a2, mean_y, gk, dg, s0, m1);
    }
};

// The models, each converged to about its own accuracy (a step below sqrt_rtol ends a stage, its
// error ~ step^2): one Gaussian per binade (~1e-4 off) from the Gumbel estimate, then one per run
// (~1e-8) from there.  Returns the shape to start the exact iteration from (0: the Gumbel estimate).
inline double model_shape(FitScratch& s, const FitPoints& p, double mean_y, double var_y, double xmax) {
    const GaussModel per_binade{s.ry.data(), s.rc.data(), s.rv.data(), p.n_binade, mean_y, s.sx.data(), s.se.data()};
    const GaussModel per_run{s.py.data(), s.pc.data(), s.pv.data(), p.n_pts, mean_y, s.sx.data(), s.se.data()};
    const WeibullFit rough = newton_weibull(per_binade, var_y, xmax, p.total, WeibullFit{}, 1e-6, 200, 1e-3);
    const double k0 = rough.converged && std::isfinite(rough.shape) && rough.shape > 0 ? rough.shape : 0;
    const WeibullFit start = newton_weibull(per_run, var_y, xmax, p.total, WeibullFit{}, 1e-10, 200, 3e-5, k0);
    return start.converged && std::isfinite(start.shape) && start.shape > 0 ? start.shape : 0;
}

// newton_weibull's eval over every magnitude: a_j = sum c y^j e^{k y}, the subnormals one by one,
// then each binade's mantissa sums (one exp per mantissa, shared by the binades) times e^{k ze}.
struct ExactModel {
    const double* c;  // the counts, c[h - base]
    std::uint32_t base;
    int mbits;
    const double *lm, *lm2;  // mantissa_logs
    const std::vector<FitScratch::Row>* rows;
    const double *py, *pc;  // the subnormal points [0, n_subs)
    std::uint32_t n_subs;
    double *se, *pm;          // scratch of n_subs and F doubles
    std::uint32_t fmin, fmax;  // the mantissas any row holds
    double mean_y;

    ExactModel(const FitCounts& fc, const Geometry& g, FitScratch& s, const FitPoints& p, double mean_y_)
        : c(fc.c), base(fc.base), mbits(g.mbits), rows(&s.rows), py(s.py.data()), pc(s.pc.data()), n_subs(p.n_subs),
          mean_y(mean_y_) {
        const MantissaLogs& ml = mantissa_logs(g.mbits);
        lm = ml.lm.data(), lm2 = ml.lm2.data();
        grow(s.pm, g.F);
        se = s.se.data(), pm = s.pm.data();
        fmin = g.F, fmax = 0;
        for (const FitScratch::Row& r : s.rows) fmin = std::min(fmin, r.f0), fmax = std::max(fmax, r.f1);
    }

    // a binade's first pattern may lie before base: only its mantissas from f0 on are read, and
    // the pointers are formed there
    const double* row_at(const FitScratch::Row& r) const {
        return c + (static_cast<std::ptrdiff_t>(r.ex << mbits) - static_cast<std::ptrdiff_t>(base) + r.f0);
    }

    void operator()(double k, double& gk, double& dg, double& s0, double& m1) const {
        double a0 = 0, a1 = 0, a2 = 0;
        exp_k(k, py, se, 0, n_subs);
        for (std::uint32_t i = 0; i < n_subs; ++i) {
            const double y = py[i], e = pc[i] * se[i];
            a0 += e, a1 += e * y, a2 += e * y * y;
        }
        if (fmin < fmax && k * lm[fmax - 1] > 700.0) {
            // e^{k lm} would overflow (a very narrow |w|, k over ~1000): e^{k y} (y <= 0) per pattern
            for (const FitScratch::Row& r : *rows) {
                const double* row = row_at(r);
                for (std::uint32_t f = r.f0; f < r.f1; ++f)
                    if (row[f - r.f0] > 0) {
                        const double y = r.ze + lm[f], e = row[f - r.f0] * std::exp(k * y);
                        a0 += e, a1 += e * y, a2 += e * y * y;
                    }
            }
        } else {
            if (fmin < fmax) exp_k(k, lm, pm, fmin, fmax);
            for (const FitScratch::Row& r : *rows) {
                double s0e, s1e, s2e;
                row_sums(row_at(r), pm + r.f0, lm + r.f0, lm2 + r.f0, 0, r.f1 - r.f0, s0e, s1e, s2e);
                const double ze = r.ze, q = std::exp(k * ze);
                a0 += q * s0e, a1 += q * (s1e + ze * s0e), a2 += q * (s2e + 2 * ze * s1e + ze * ze * s0e);
            }
        }
        shape_equation(k, a0, a1, a2, mean_y, gk, dg, s0, m1);
    }
};

// Maximum-likelihood Weibull fit (location 0) of the magnitudes `fc` describes.  1. Newton on a
// model of the data: the subnormal magnitudes as they are, each run of normal mantissas as a
// Gaussian in y = ln x - ln max with the run's count, mean and variance (S0 = sum C e^{k m +
// k^2 v / 2}; its error, the third cumulant's k^3 term, is ~1e-8 relative for the shapes of
// trained weights).  2. From there the exact iteration over every magnitude (newton_weibull, as
// weibull_fit), whose first step is then below 1e-8 relative and ends the fit (error ~ step^2):
// one exact evaluation, unless the model was off, when it simply takes more (at most max_iter:
// then the fit comes back with converged = false).
inline WeibullFit fit_counts(const FitCounts& fc, WeightKind kind, FitScratch& scratch, int max_iter = 200) {
    const Geometry g(kind);
    WeibullFit fit;
    if (!(fc.hmin >= 1 && fc.hmin < fc.hmax && fc.hmax < g.top)) return fit;  // fewer than two distinct values
    const std::vector<double>& logs = half_logs(kind);
    const double lmax = logs[fc.hmax];
    const double xmax = half_values(kind)[fc.hmax];
    const FitPoints p = fit_points(fc, g, logs.data(), lmax, scratch);
    if (!(p.total > 0)) return fit;
    const double mean_y = p.sum_y / p.total;
    double var_y = 0;
    const double *py = scratch.py.data(), *pc = scratch.pc.data(), *pv = scratch.pv.data();
    for (std::uint32_t i = 0; i < p.n_pts; ++i) var_y += pc[i] * (pv[i] + (py[i] - mean_y) * (py[i] - mean_y));
    var_y /= p.total;
    if (!(var_y > 0)) return fit;
    const double k_start = model_shape(scratch, p, mean_y, var_y, xmax);
    return newton_weibull(ExactModel(fc, g, scratch, p, mean_y), var_y, xmax, p.total, fit, 1e-13, max_iter, 1e-8,
                          k_start);
}

}  // namespace half_detail

}  // namespace neuromfa

#include "neuromfa/clones_end.hpp"
