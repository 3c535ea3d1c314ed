// Rival statistics (SPEC 10) of 16-bit weights (float16, bfloat16), tensor by tensor: each row
// block is counted into a table of its 2^16 bit patterns; when the tensor is complete, one pass
// over the magnitudes that hold weights gives the moments, the kept count, the counts the
// Weibull fit needs and the pooled counts, and clears the table for the next tensor.
//
// Why this shape: a sampled network reads ~60 000 weights per tensor but they fall on ~10 000
// distinct patterns, so the per-weight work is one table increment and everything else runs
// over the (smaller) span of patterns, once.  The fit then iterates on ~32 points per binade
// (a Gaussian model of each run of mantissas, accurate to ~1e-8) and takes one exact Newton
// step over every pattern to finish (docs: "Controls and rival statistics").
//
// Every sum runs in a fixed order, in four interleaved partial sums written with GCC/Clang vector
// types (the same operations and order whether the compiler emits SSE2 or AVX2), so the numbers
// do not depend on the instruction set or the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "neuromfa/half_tables.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weight_stats.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

namespace half_detail {

#if defined(__GNUC__)
typedef double v4d __attribute__((vector_size(32)));
typedef std::int32_t v4i __attribute__((vector_size(16)));
#define NEUROMFA_V4 1
#endif

// The loops over patterns are built twice where GCC can dispatch at load time (x86-64 Linux):
// for AVX2 and for the baseline.  Both run the same operations in the same order (FMA is not
// enabled, and CMakeLists.txt builds with -ffp-contract=off, so nothing is contracted even
// under a packager's -march), so they give the same bits; AVX2 runs four lanes per instruction
// instead of two.  (std::exp / std::log come from the C library, which may pick its own
// variant by processor: the claim is for one C library build.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && defined(NEUROMFA_V4)
#define NEUROMFA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NEUROMFA_CLONES
#endif

// exp(k x[i]) into out[i] for i in [i0, i1): the method of exp_of_scaled (x = n ln 2 + r, ln 2 in
// two parts, Taylor to degree 13, 2^n from the exponent bits; within an ulp or so of std::exp,
// which takes over where |k x| > 700), written four lanes at a time: n is rounded by the
// 1.5 * 2^52 trick and read back from the sum's low bits, so no step leaves the vector registers.
NEUROMFA_CLONES static void exp_k(double k, const double* x, double* out, std::uint32_t i0, std::uint32_t i1) {
    constexpr double inv_ln2 = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52
    bool wide = false;
    std::uint32_t i = i0;
#ifdef NEUROMFA_V4
    typedef std::int64_t v4l __attribute__((vector_size(32)));
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
#endif
    if (i < i1) exp_of_scaled(k, x, out, i, i1);
    if (wide)
        for (std::uint32_t j = i0; j < i1; ++j) out[j] = std::exp(k * x[j]);
}

// Sums of the Gaussian points (count c, mean m, variance v) at k: a0 = sum c e^{k m + k^2 v / 2},
// a1, a2 its first and second derivatives in k; x, e: scratch of n doubles.
NEUROMFA_CLONES static void gauss_sums(double k, const double* m, const double* c, const double* v, std::uint32_t n,
                                       double* x, double* e, double& a0, double& a1, double& a2) {
    for (std::uint32_t i = 0; i < n; ++i) x[i] = m[i] + 0.5 * k * v[i];
    exp_k(k, x, e, 0, n);
    double b0[4] = {0, 0, 0, 0}, b1[4] = {0, 0, 0, 0}, b2[4] = {0, 0, 0, 0};
    std::uint32_t i = 0;
#ifdef NEUROMFA_V4
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
#else
    for (; i + 4 <= n; i += 4)
        for (std::uint32_t j = 0; j < 4; ++j) {
            const double w = c[i + j] * e[i + j], mu = m[i + j] + k * v[i + j];
            b0[j] += w, b1[j] += w * mu, b2[j] += w * (mu * mu + v[i + j]);
        }
#endif
    for (std::uint32_t j = 0; i < n; ++i, ++j) {
        const double w = c[i] * e[i], mu = m[i] + k * v[i];
        b0[j] += w, b1[j] += w * mu, b2[j] += w * (mu * mu + v[i]);
    }
    a0 += (b0[0] + b0[1]) + (b0[2] + b0[3]);
    a1 += (b1[0] + b1[1]) + (b1[2] + b1[3]);
    a2 += (b2[0] + b2[1]) + (b2[2] + b2[3]);
}

// Sums over f in [f0, f1) (multiples of 4) of c_f p_f l_f^j, j = 0, 1, 2, in four interleaved
// partial sums.
NEUROMFA_CLONES static void row_sums(const double* c, const double* p, const double* l, const double* l2,
                                     std::uint32_t f0, std::uint32_t f1, double& s0, double& s1, double& s2) {
#ifdef NEUROMFA_V4
    v4d b0 = {0, 0, 0, 0}, b1 = b0, b2 = b0;
    for (std::uint32_t f = f0; f < f1; f += 4) {
        v4d cv, pv, lv, l2v;
        std::memcpy(&cv, c + f, sizeof cv), std::memcpy(&pv, p + f, sizeof pv);
        std::memcpy(&lv, l + f, sizeof lv), std::memcpy(&l2v, l2 + f, sizeof l2v);
        const v4d t = cv * pv;
        b0 += t, b1 += t * lv, b2 += t * l2v;
    }
#else
    double b0[4] = {0, 0, 0, 0}, b1[4] = {0, 0, 0, 0}, b2[4] = {0, 0, 0, 0};
    for (std::uint32_t f = f0; f < f1; f += 4)
        for (std::uint32_t j = 0; j < 4; ++j) {
            const double t = c[f + j] * p[f + j];
            b0[j] += t, b1[j] += t * l[f + j], b2[j] += t * l2[f + j];
        }
#endif
    s0 = (b0[0] + b0[1]) + (b0[2] + b0[3]);
    s1 = (b1[0] + b1[1]) + (b1[2] + b1[3]);
    s2 = (b2[0] + b2[1]) + (b2[2] + b2[3]);
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

// Maximum-likelihood Weibull fit (location 0) of the magnitudes `fc` describes.  1. Newton on a
// model of the data: the subnormal magnitudes as they are, each run of normal mantissas as a
// Gaussian in y = ln x - ln max with the run's count, mean and variance (S0 = sum C e^{k m +
// k^2 v / 2}; its error, the third cumulant's k^3 term, is ~1e-8 relative for the shapes of
// trained weights).  2. From there the exact iteration over every magnitude (newton_weibull, as
// weibull_fit), whose first step is then below 1e-8 relative and ends the fit (error ~ step^2):
// one exact evaluation, unless the model was off, when it simply takes more.
// A scratch vector at least n long (never shrunk: resizing up again would zero it each time).
inline void grow(std::vector<double>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

// Scratch of fit_counts, kept by its caller so a fit allocates nothing once warm.
struct FitScratch {
    struct Row {
        std::uint32_t ex, f0, f1;  // exponent; mantissa span [f0, f1) holding weights (multiples of 4)
        double ze;                 // ln 2^E - ln max of the row's first pattern
    };
    std::vector<double> py, pc, pv, ry, rc, rv, sx, se, pm;
    std::vector<Row> rows;
};

inline WeibullFit fit_counts(const FitCounts& fc, WeightKind kind, FitScratch& scratch) {
    const Geometry g(kind);
    WeibullFit fit;
    if (!(fc.hmin >= 1 && fc.hmin < fc.hmax && fc.hmax < g.top)) return fit;  // fewer than two distinct values
    const std::vector<double>& logs = half_logs(kind);
    const MantissaLogs& ml = mantissa_logs(g.mbits);
    const double* lm = ml.lm.data();
    const double* lm2 = ml.lm2.data();
    const double lmax = logs[fc.hmax];
    const double xmax = half_values(kind)[fc.hmax];
    const double* c = fc.c;
    // points: the subnormals (variance 0), then per binade its runs; ry/rc/rv: one per binade
    std::vector<double>&py = scratch.py, &pc = scratch.pc, &pv = scratch.pv, &ry = scratch.ry, &rc = scratch.rc,
    &rv = scratch.rv, &sx = scratch.sx, &se = scratch.se, &pm = scratch.pm;
    using Row = FitScratch::Row;
    std::vector<Row>& rows = scratch.rows;
    const std::uint32_t ex0 = std::max<std::uint32_t>(fc.hmin >> g.mbits, 1), ex1 = fc.hmax >> g.mbits;
    const std::uint32_t n_subs = fc.hmin < g.F ? std::min(fc.hmax, g.F - 1) - fc.hmin + 1 : 0;
    const std::size_t cap = n_subs + 32 * static_cast<std::size_t>(ex1 >= ex0 ? ex1 - ex0 + 1 : 0);
    for (auto* vec : {&py, &pc, &pv, &ry, &rc, &rv, &sx, &se}) grow(*vec, cap);  // filled by index below
    rows.clear();
    std::uint32_t np = 0, nr = 0;  // points, binade points
    double total = 0, sum_y = 0;
    for (std::uint32_t h = fc.hmin; h < fc.hmin + n_subs; ++h) {  // subnormals: each its own point
        const double ch = c[h - fc.base];
        if (ch > 0) {
            const double y = logs[h] - lmax;
            py[np] = ry[nr] = y, pc[np] = rc[nr] = ch, pv[np] = rv[nr] = 0.0, ++np, ++nr;
            total += ch, sum_y += ch * y;
        }
    }
    const std::uint32_t ns = np;  // the subnormal points lead
    const std::uint32_t run_base = fc.base / g.W;
    for (std::uint32_t ex = ex0; ex <= ex1; ++ex) {
        const double ze = logs[ex << g.mbits] - lmax;
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
            py[np] = y, pc[np] = C, pv[np] = v, ++np;
            total += C, sum_y += C * y;
            C_row += C, m_row += C * y, q_row += C * (v + y * y);
            first = std::min(first, q * g.W), last = std::max(last, (q + 1) * g.W);
        }
        if (first < last) {
            rows.push_back(Row{ex, first, last, ze});
            m_row /= C_row;
            ry[nr] = m_row, rc[nr] = C_row, rv[nr] = std::max(q_row / C_row - m_row * m_row, 0.0), ++nr;
        }
    }
    if (!(total > 0)) return fit;
    const double mean_y = sum_y / total;
    const std::uint32_t n_pts = np;
    double var_y = 0;
    for (std::uint32_t i = 0; i < n_pts; ++i) var_y += pc[i] * (pv[i] + (py[i] - mean_y) * (py[i] - mean_y));
    var_y /= total;
    if (!(var_y > 0)) return fit;
    auto gauss = [&](const std::vector<double>& m, const std::vector<double>& cc, const std::vector<double>& v,
                     std::uint32_t n) {
        return [&, n](double k, double& gk, double& dg, double& s0, double& m1) {
            double a0 = 0, a1 = 0, a2 = 0;
            gauss_sums(k, m.data(), cc.data(), v.data(), n, sx.data(), se.data(), a0, a1, a2);
            m1 = a1 / a0;
            gk = m1 - 1.0 / k - mean_y;
            dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
            s0 = a0;
        };
    };
    // 1. the models, each converged to about its own accuracy (a step below sqrt_rtol ends a stage,
    // its error ~ step^2): one Gaussian per binade (~1e-4 off) from the Gumbel estimate, then one
    // per run (~1e-8) from there
    double k_start = 0;
    {
        const WeibullFit rough = newton_weibull(gauss(ry, rc, rv, nr), var_y, xmax, total, WeibullFit{}, 1e-6, 200, 1e-3);
        const double k0 = rough.converged && std::isfinite(rough.shape) && rough.shape > 0 ? rough.shape : 0;
        const WeibullFit start =
            newton_weibull(gauss(py, pc, pv, n_pts), var_y, xmax, total, WeibullFit{}, 1e-10, 200, 3e-5, k0);
        if (start.converged && std::isfinite(start.shape) && start.shape > 0) k_start = start.shape;
    }
    // 2. the exact iteration: a_j = sum c y^j e^{k y}, the subnormals one by one, then each binade's
    // mantissa sums (one exp per mantissa, shared by the binades) times e^{k ze}
    grow(pm, g.F);
    std::uint32_t fmin = g.F, fmax = 0;
    for (const Row& r : rows) fmin = std::min(fmin, r.f0), fmax = std::max(fmax, r.f1);
    auto exact = [&](double k, double& gk, double& dg, double& s0, double& m1) {
        double a0 = 0, a1 = 0, a2 = 0;
        exp_k(k, py.data(), se.data(), 0, ns);
        for (std::uint32_t i = 0; i < ns; ++i) {
            const double y = py[i], e = pc[i] * se[i];
            a0 += e, a1 += e * y, a2 += e * y * y;
        }
        // a binade's first pattern may lie before base: only its mantissas from f0 on are read, and
        // the pointers are formed there
        auto row_at = [&](const Row& r) {
            return c + (static_cast<std::ptrdiff_t>(r.ex << g.mbits) - static_cast<std::ptrdiff_t>(fc.base) + r.f0);
        };
        if (fmin < fmax && k * lm[fmax - 1] > 700.0) {
            // e^{k lm} would overflow (a very narrow |w|, k over ~1000): e^{k y} (y <= 0) per pattern
            for (const Row& r : rows) {
                const double* row = row_at(r);
                for (std::uint32_t f = r.f0; f < r.f1; ++f)
                    if (row[f - r.f0] > 0) {
                        const double y = r.ze + lm[f], e = row[f - r.f0] * std::exp(k * y);
                        a0 += e, a1 += e * y, a2 += e * y * y;
                    }
            }
        } else {
            if (fmin < fmax) exp_k(k, lm, pm.data(), fmin, fmax);
            for (const Row& r : rows) {
                double s0e, s1e, s2e;
                row_sums(row_at(r), pm.data() + r.f0, lm + r.f0, lm2 + r.f0, 0, r.f1 - r.f0, s0e, s1e, s2e);
                const double ze = r.ze, q = std::exp(k * ze);
                a0 += q * s0e, a1 += q * (s1e + ze * s0e), a2 += q * (s2e + 2 * ze * s1e + ze * ze * s0e);
            }
        }
        m1 = a1 / a0;
        gk = m1 - 1.0 / k - mean_y;
        dg = a2 / a0 - m1 * m1 + 1.0 / (k * k);
        s0 = a0;
    };
    return newton_weibull(exact, var_y, xmax, total, fit, 1e-13, 200, 1e-8, k_start);
}

// The kept weights (patterns in [klo, khi)) of the patterns [a, b) of one run: true when the run
// lies wholly inside (the caller adds its total), else the part inside is added to kept here.
template <class T>
__attribute__((always_inline)) inline bool kept_part(const T* c, std::uint32_t a, std::uint32_t b, std::uint32_t klo,
                                                     std::uint32_t khi, double& kept) {
    if (a >= klo && b <= khi) return true;
    for (std::uint32_t h = std::max(a, klo); h < std::min(b, khi); ++h)
        kept += static_cast<double>(c[h]) + static_cast<double>(c[h + 0x8000u]);
    return false;
}

// The pass over whole runs [rb, re] of a count table (both signs): the moment sums (out: s1, s2,
// s3, s4, s_abs, count, kept count: patterns in [klo, khi)), and with cb the fit's counts (cb[h - base]), the run sums r0, r1, r2
// (index run - rb), the pooled counts; every cell visited is cleared.  Four lanes, fixed order.
template <class T>
__attribute__((always_inline)) inline void span_pass_impl(T* c, const MantissaLogs& ml, int mbits, int bias,
                                                          std::uint32_t W, std::uint32_t rb, std::uint32_t re,
                                                          std::uint32_t base, std::uint32_t klo, std::uint32_t khi,
                                                          double* cb, double* pooled, double* r0, double* r1,
                                                          double* r2, double* out) {
    // a pattern's value: its mantissa's (a small table) times 2^(E - bias), exact; no 32768-entry
    // value table to pull through the cache
    const std::uint32_t fmask = (1u << mbits) - 1;
    const double* lm = ml.lm.data();
    const double* lm2 = ml.lm2.data();
    auto run_values = [&](std::uint32_t run, double& scale) {
        const int E = static_cast<int>((run * W) >> mbits);
        const std::uint64_t bits = static_cast<std::uint64_t>((E ? E : 1) - bias + 1023) << 52;  // 2^(E - bias), normal
        std::memcpy(&scale, &bits, sizeof scale);
        return E ? ml.normal.data() : ml.subnormal.data();
    };
#ifdef NEUROMFA_V4
    auto load = [](const T* p, v4d& out) {  // by reference: a returned vector would change the ABI of the baseline clone
        if constexpr (sizeof(T) == 4) {
            v4i x;
            std::memcpy(&x, p, sizeof x);
            out = __builtin_convertvector(x, v4d);  // counts < 2^31
        } else {
            out = v4d{static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2]),
                      static_cast<double>(p[3])};
        }
    };
    auto hsum = [](const v4d& x) { return (x[0] + x[1]) + (x[2] + x[3]); };
    const v4d zero = {0, 0, 0, 0};
    v4d a1 = zero, a2 = zero, a3 = zero, a4 = zero, ab = zero, at = zero;
    // kept: the runs wholly inside [klo, khi) are consecutive, [rk0, rk1): their total is the
    // difference of the running total; the cells of the (at most two) runs cut by klo or khi are
    // added one by one
    double kept = 0, at_rk0 = 0;
    std::uint32_t rk0 = re + 1, rk1 = re + 1;
    for (std::uint32_t run = rb; run <= re; ++run)
        if (kept_part(c, run * W, (run + 1) * W, klo, khi, kept)) {
            if (rk0 > re) rk0 = run;
            rk1 = run + 1;
        }
    for (std::uint32_t run = rb; run <= re; ++run) {
        v4d q0 = zero, q1 = zero, q2 = zero;
        if (run == rk0) at_rk0 = hsum(at);
        if (run == rk1) kept += hsum(at) - at_rk0;  // sums of counts: exact
        double scale;
        const double* mv = run_values(run, scale);
        for (std::uint32_t h = run * W; h < (run + 1) * W; h += 4) {
            v4d pd, nd;
            load(c + h, pd), load(c + h + 0x8000u, nd);
            const v4d S = pd + nd, D = pd - nd;
            v4d vv;
            std::memcpy(&vv, mv + (h & fmask), sizeof vv);
            vv *= scale;
            const v4d v2 = vv * vv;
            a1 += D * vv, a2 += S * v2, a3 += D * vv * v2, a4 += S * v2 * v2, ab += S * vv, at += S;
            if (cb) {
                std::memcpy(cb + (h - base), &S, sizeof S);
                v4d pv, lv, l2v;
                std::memcpy(&pv, pooled + h, sizeof pv);
                pv += S;
                std::memcpy(pooled + h, &pv, sizeof pv);
                const std::uint32_t f = h & fmask;
                std::memcpy(&lv, lm + f, sizeof lv), std::memcpy(&l2v, lm2 + f, sizeof l2v);
                q0 += S, q1 += S * lv, q2 += S * l2v;
            }
        }
        if (cb) r0[run - rb] = hsum(q0), r1[run - rb] = hsum(q1), r2[run - rb] = hsum(q2);
    }
    if (rk1 == re + 1 && rk0 <= re) kept += hsum(at) - at_rk0;
    std::memset(c + rb * W, 0, (re + 1 - rb) * W * sizeof(T));  // the visited cells, both signs, cleared
    std::memset(c + rb * W + 0x8000u, 0, (re + 1 - rb) * W * sizeof(T));
    out[0] = hsum(a1), out[1] = hsum(a2), out[2] = hsum(a3), out[3] = hsum(a4), out[4] = hsum(ab), out[5] = hsum(at);
    out[6] = kept;
#else
    double a[6][4] = {};
    double kept = 0;
    for (std::uint32_t run = rb; run <= re; ++run) {
        double q[3][4] = {};
        if (kept_part(c, run * W, (run + 1) * W, klo, khi, kept))
            for (std::uint32_t h = run * W; h < (run + 1) * W; ++h)
                kept += static_cast<double>(c[h]) + static_cast<double>(c[h + 0x8000u]);
        double scale;
        const double* mv = run_values(run, scale);
        for (std::uint32_t h = run * W; h < (run + 1) * W; h += 4) {
            double S[4];
            for (std::uint32_t j = 0; j < 4; ++j) {
                const double pd = static_cast<double>(c[h + j]), nd = static_cast<double>(c[h + j + 0x8000u]);
                const double vv = mv[(h + j) & fmask] * scale, v2 = vv * vv, D = pd - nd;
                S[j] = pd + nd;
                a[0][j] += D * vv, a[1][j] += S[j] * v2, a[2][j] += D * vv * v2, a[3][j] += S[j] * v2 * v2;
                a[4][j] += S[j] * vv, a[5][j] += S[j];
            }
            if (cb) {
                const std::uint32_t f = h & fmask;
                for (std::uint32_t j = 0; j < 4; ++j) {
                    cb[h + j - base] = S[j];
                    pooled[h + j] += S[j];
                    q[0][j] += S[j], q[1][j] += S[j] * lm[f + j], q[2][j] += S[j] * lm2[f + j];
                }
            }
            for (std::uint32_t j = 0; j < 4; ++j) c[h + j] = 0, c[h + j + 0x8000u] = 0;
        }
        if (cb) {
            r0[run - rb] = (q[0][0] + q[0][1]) + (q[0][2] + q[0][3]);
            r1[run - rb] = (q[1][0] + q[1][1]) + (q[1][2] + q[1][3]);
            r2[run - rb] = (q[2][0] + q[2][1]) + (q[2][2] + q[2][3]);
        }
    }
    for (int i = 0; i < 6; ++i) out[i] = (a[i][0] + a[i][1]) + (a[i][2] + a[i][3]);
    out[6] = kept;
#endif
}

NEUROMFA_CLONES static void span_pass(std::uint32_t* c, const MantissaLogs& ml, int mbits, int bias, std::uint32_t W,
                                      std::uint32_t rb, std::uint32_t re, std::uint32_t base, std::uint32_t klo,
                                      std::uint32_t khi, double* cb, double* pooled, double* r0, double* r1,
                                      double* r2, double* out) {
    span_pass_impl(c, ml, mbits, bias, W, rb, re, base, klo, khi, cb, pooled, r0, r1, r2, out);
}

inline void span_pass(std::int64_t* c, const MantissaLogs& ml, int mbits, int bias, std::uint32_t W, std::uint32_t rb,
                      std::uint32_t re, std::uint32_t base, std::uint32_t klo, std::uint32_t khi, double* cb,
                      double* pooled, double* r0, double* r1, double* r2, double* out) {
    span_pass_impl(c, ml, mbits, bias, W, rb, re, base, klo, khi, cb, pooled, r0, r1, r2, out);
}

// The scans of a count table before its pass: the inf/NaN cells counted into n_nonfinite and
// cleared; [hmin, hmax] the magnitudes holding the (nonzero finite) weights, hmin = top when none,
// found inward from both ends 64 patterns (of both signs) at a time, from below `seen` (the OR of
// the counted magnitudes, so at least each of them: the empty top of the table is not read);
// [klo, khi) the patterns of the kept weights, lo <= |w| < 1 (values increase with the pattern).  c[0] (zeros) must be cleared.
template <class T>
__attribute__((always_inline)) inline void table_scan_impl(T* c, std::uint32_t top, std::uint32_t seen,
                                                           const double* v, double lo,
                                                           std::uint32_t& hmin, std::uint32_t& hmax,
                                                           std::int64_t& n_nonfinite, std::uint32_t& klo,
                                                           std::uint32_t& khi) {
    auto empty = [c](std::uint32_t b, std::uint32_t e) {  // magnitudes [b, e) of both signs; e - b a multiple of 8
#ifdef NEUROMFA_V4
        typedef std::uint64_t v4u __attribute__((vector_size(32)));  // 8 cells of 32 bits or 4 of 64
        v4u acc = {0, 0, 0, 0};
        constexpr std::uint32_t step = 32 / sizeof(T);
        for (std::uint32_t j = b; j < e; j += step) {
            v4u x, y;
            std::memcpy(&x, c + j, sizeof x), std::memcpy(&y, c + j + 0x8000u, sizeof y);
            acc |= x | y;
        }
        return (acc[0] | acc[1] | acc[2] | acc[3]) == 0;
#else
        T acc = 0;
        for (std::uint32_t j = b; j < e; ++j) acc |= c[j] | c[j + 0x8000u];
        return acc == 0;
#endif
    };
    auto sum = [c](std::uint32_t b, std::uint32_t e) {
        std::int64_t t = 0;
        for (std::uint32_t j = b; j < e; ++j) t += static_cast<std::int64_t>(c[j]) + static_cast<std::int64_t>(c[j + 0x8000u]);
        return t;
    };
    n_nonfinite = 0, klo = khi = 0;
    if (seen >= top && !empty(top, 32768u)) {  // no magnitude exceeds seen
        n_nonfinite = sum(top, 32768u);
        for (std::uint32_t j = top; j < 32768u; ++j) c[j] = 0, c[j + 0x8000u] = 0;
    }
    constexpr std::uint32_t K = 64;  // top is a multiple of K
    const std::uint32_t lim = std::min(top, (seen / K + 1) * K);  // no finite magnitude at or above lim
    hmin = 0;
    while (hmin < lim && empty(hmin, hmin + K)) hmin += K;
    if (hmin >= lim) {
        hmin = top;
        return;
    }
    while (c[hmin] == 0 && c[hmin + 0x8000u] == 0) ++hmin;
    hmax = lim - K;
    while (empty(hmax, hmax + K)) hmax -= K;
    hmax += K - 1;
    while (c[hmax] == 0 && c[hmax + 0x8000u] == 0) --hmax;
    klo = static_cast<std::uint32_t>(std::lower_bound(v + hmin, v + hmax + 1, lo) - v);
    khi = static_cast<std::uint32_t>(std::lower_bound(v + klo, v + hmax + 1, 1.0) - v);
}

NEUROMFA_CLONES static void table_scan(std::uint32_t* c, std::uint32_t top, std::uint32_t seen, const double* v,
                                       double lo, std::uint32_t& hmin, std::uint32_t& hmax,
                                       std::int64_t& n_nonfinite, std::uint32_t& klo, std::uint32_t& khi) {
    table_scan_impl(c, top, seen, v, lo, hmin, hmax, n_nonfinite, klo, khi);
}

inline void table_scan(std::int64_t* c, std::uint32_t top, std::uint32_t seen, const double* v, double lo,
                       std::uint32_t& hmin, std::uint32_t& hmax, std::int64_t& n_nonfinite, std::uint32_t& klo,
                       std::uint32_t& khi) {
    table_scan_impl(c, top, seen, v, lo, hmin, hmax, n_nonfinite, klo, khi);
}

}  // namespace half_detail

// What one tensor's 16-bit weights give (the fields of WeightMoments without row sums, and the fit).
struct HalfTensorStats {
    std::int64_t n = 0, n_zero = 0, n_kept = 0, n_nonfinite = 0;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, s_abs = 0;
    WeibullFit fit;
};

// Counts the bit patterns of one tensor's blocks, then finishes the tensor; keeps the pooled
// magnitude counts of every finished tensor for the pooled fit.  Not thread-safe: one object per
// thread (its tables and scratch are its own; pooled_fit() writes the scratch too).  Counts go into 32-bit cells
// (half the cache lines of 64-bit ones); before a cell could pass 2^31 the table is folded into a
// 64-bit one (a tensor of over two billion weights), which the tensor then finishes from.
class HalfStats {
  public:
    // fold_at: weights a 32-bit table takes before it is folded into the 64-bit one (at most
    // 2^31 - 1, so every cell converts as a signed 32-bit integer; smaller only to test the fold).
    HalfStats(WeightKind kind, double threshold, bool fit, std::int64_t fold_at = (std::int64_t(1) << 31) - 1)
        : kind_(kind), geo_(kind), threshold_(threshold), fit_(fit), fold_at_(fold_at), counts_(zeroed<std::uint32_t>(65536)) {
        if (!(threshold > 1.0)) throw std::invalid_argument("HalfStats: threshold must be > 1");
        if (!(fold_at >= 1 && fold_at <= (std::int64_t(1) << 31) - 1))
            throw std::invalid_argument("HalfStats: fold_at must be in [1, 2^31 - 1]");
        if (fit_) pooled_ = zeroed<double>(32768);
    }

    WeightKind kind() const { return kind_; }
    bool fits() const { return fit_; }
    std::int64_t tensors() const { return tensors_; }

    // Adds 16-bit patterns to the open tensor.
    void add(const std::uint16_t* bits, std::int64_t n, int n_threads) {
#if defined(__GNUC__)
        if (pending_ == 0 && hint_hi_ > 0) {  // a new tensor: likely where the last one was, so fetch
            // those cells (both signs) in order rather than on each random increment's miss
            const std::uint32_t* t = counts_.get();
            for (std::uint32_t h = hint_lo_; h <= hint_hi_; h += 16)
                __builtin_prefetch(t + h, 1, 3), __builtin_prefetch(t + h + 0x8000u, 1, 3);
        }
#endif
        const std::int64_t cap = fold_at_;
        while (n > 0) {
            if (pending_ >= cap) fold();
            const std::int64_t m = std::min(n, cap - pending_);
            count(bits, m, n_threads);
            pending_ += m, bits += m, n -= m;
        }
    }

    // Moments, kept count and (with fit) the Weibull fit of the open tensor; its magnitudes join
    // the pooled counts and the table is cleared.  A tensor without weights gives zeros and NaNs.
    HalfTensorStats finish() {
        HalfTensorStats s = wide_.empty() ? finish_table(counts_.get()) : finish_wide();
        pending_ = 0, seen_ = 0;
        ++tensors_;
        return s;
    }

    // The Weibull fit of the nonzero |w| of every finished tensor together (fit = true).
    WeibullFit pooled_fit() const {
        if (!fit_) throw std::logic_error("HalfStats: built without the fit");
        std::uint32_t hmin = 1, hmax = geo_.top - 1;
        while (hmin < geo_.top && pooled_[hmin] == 0) ++hmin;
        if (hmin >= geo_.top) return WeibullFit{};
        while (pooled_[hmax] == 0) --hmax;
        const std::uint32_t W = geo_.W, rb = hmin / W, re = hmax / W;
        std::vector<double> r0(re - rb + 1), r1(re - rb + 1), r2(re - rb + 1);
        const MantissaLogs& ml = mantissa_logs(geo_.mbits);
        for (std::uint32_t run = rb; run <= re; ++run) {
            double a0 = 0, a1 = 0, a2 = 0;
            for (std::uint32_t h = run * W; h < (run + 1) * W; ++h) {
                const double ch = pooled_[h];
                const std::uint32_t f = h & (geo_.F - 1);
                a0 += ch, a1 += ch * ml.lm[f], a2 += ch * ml.lm2[f];
            }
            r0[run - rb] = a0, r1[run - rb] = a1, r2[run - rb] = a2;
        }
        half_detail::FitCounts fc{pooled_.get() + rb * W, rb * W, hmin, hmax, r0.data(), r1.data(), r2.data()};
        return half_detail::fit_counts(fc, kind_, scratch_);
    }

    // Pooled counts of the positive finite magnitude patterns (index = pattern without sign); fit only.
    std::vector<double> pooled_counts() const {
        return pooled_ ? std::vector<double>(pooled_.get(), pooled_.get() + 32768) : std::vector<double>();
    }

  private:
    WeightKind kind_;
    half_detail::Geometry geo_;
    double threshold_;
    bool fit_;
    std::int64_t fold_at_;
    // calloc'd tables: the pages come zeroed from the system and only the touched ones are
    // faulted in (a network makes one HalfStats per sample; zeroing 512 KiB each time showed)
    struct Free {
        void operator()(void* p) const { std::free(p); }
    };
    template <class T>
    static std::unique_ptr<T[], Free> zeroed(std::size_t n) {
        void* p = std::calloc(n, sizeof(T));
        if (!p) throw std::bad_alloc();
        return std::unique_ptr<T[], Free>(static_cast<T*>(p));
    }
    std::unique_ptr<std::uint32_t[], Free> counts_;  // the open tensor, by bit pattern
    std::vector<std::int64_t> wide_;                 // folded counts of a tensor of over 2^31 weights (else empty)
    std::unique_ptr<double[], Free> pooled_;         // magnitude counts of the finished tensors (fit only)
    std::int64_t pending_ = 0;           // weights in counts_ since it was last folded
    std::uint32_t hint_lo_ = 0, hint_hi_ = 0;  // magnitude span of the last finished tensor
    std::uint32_t seen_ = 0;                   // OR of the open tensor's magnitudes
    std::vector<double> cb_, r0_, r1_, r2_;    // scratch of finish: the fit's counts and run sums
    mutable half_detail::FitScratch scratch_;  // of the fits (pooled_fit is const)
    std::int64_t tensors_ = 0;

    void count(const std::uint16_t* bits, std::int64_t n, int n_threads) {
        std::uint32_t* t = counts_.get();
        const std::int64_t block = std::int64_t(1) << 20;  // smaller inputs count on the calling thread
        const std::int64_t nb = n_blocks(n, block);
        const std::int64_t groups = std::min<std::int64_t>(nb, std::max(1, resolve_threads(n_threads)));
        if (groups <= 1) {
            seen_ |= count_serial(bits, n, t);
            return;
        }
        std::vector<std::vector<std::uint32_t>> part(static_cast<std::size_t>(groups),
                                                     std::vector<std::uint32_t>(65536, 0));
        std::vector<std::uint32_t> seen(static_cast<std::size_t>(groups), 0);
        parallel_for(groups, n_threads, [&](std::int64_t gi) {
            std::uint32_t* h = part[static_cast<std::size_t>(gi)].data();
            for (std::int64_t b = gi; b < nb; b += groups) {
                const std::int64_t end = std::min(n, (b + 1) * block);
                seen[static_cast<std::size_t>(gi)] |= count_serial(bits + b * block, end - b * block, h);
            }
        });
        for (const auto& h : part)
            for (std::size_t k = 0; k < h.size(); ++k) t[k] += h[k];
        for (std::uint32_t x : seen) seen_ |= x;
    }

    // Counts n patterns into t; returns the OR of their magnitudes, an upper bound of each (every
    // magnitude is a submask of it), so the scans for the span and for inf/NaN can start there.
    static std::uint32_t count_serial(const std::uint16_t* p, std::int64_t n, std::uint32_t* t) {
        std::int64_t i = 0;
        std::uint64_t any = 0;
        for (; i + 4 <= n; i += 4) {  // four patterns per 64-bit load (faster than four 16-bit loads)
            std::uint64_t x;
            std::memcpy(&x, p + i, sizeof x);
            any |= x;
            ++t[x & 0xffffu], ++t[(x >> 16) & 0xffffu], ++t[(x >> 32) & 0xffffu], ++t[x >> 48];
        }
        for (; i < n; ++i) any |= p[i], ++t[p[i]];
        return static_cast<std::uint32_t>((any | any >> 16 | any >> 32 | any >> 48) & 0x7fffu);
    }

    void fold() {  // the 32-bit table into the 64-bit one
        if (wide_.empty()) wide_.assign(65536, 0);
        for (std::size_t h = 0; h < 65536; ++h) wide_[h] += counts_[h], counts_[h] = 0;
        pending_ = 0;
    }

    HalfTensorStats finish_wide() {
        fold();
        HalfTensorStats s = finish_table(wide_.data());
        wide_.clear();
        return s;
    }

    // The one pass over the magnitudes that hold weights (both signs), four patterns at a time,
    // run by run (W patterns): moments in pattern order, the fit's counts and run sums, the pooled
    // counts, and the table cleared.
    template <class T>
    HalfTensorStats finish_table(T* c) {
        const half_detail::Geometry& g = geo_;
        const std::vector<double>& values = half_values(kind_);
        auto both = [c](std::uint32_t h) -> std::int64_t {
            return static_cast<std::int64_t>(c[h]) + static_cast<std::int64_t>(c[h | 0x8000u]);
        };
        HalfTensorStats s;
        s.n_zero = both(0);
        c[0] = 0, c[0x8000u] = 0;
        const double* v = values.data();
        std::uint32_t hmin, hmax, klo, khi;
        half_detail::table_scan(c, g.top, seen_, v, 1.0 / threshold_, hmin, hmax, s.n_nonfinite, klo, khi);
        s.n = s.n_zero + s.n_nonfinite;
        if (hmin >= g.top) return s;  // no nonzero finite weight
        hint_lo_ = hmin & ~15u, hint_hi_ = hmax;
        const std::uint32_t W = g.W, rb = hmin / W, re = hmax / W;
        const std::uint32_t base = rb * W, end = (re + 1) * W;  // whole runs; zero counts outside [hmin, hmax]
        const std::size_t nr = re - rb + 1;
        std::vector<double>&cb = cb_, &r0 = r0_, &r1 = r1_, &r2 = r2_;
        if (fit_) half_detail::grow(cb, end - base), half_detail::grow(r0, nr), half_detail::grow(r1, nr),
            half_detail::grow(r2, nr);
        const MantissaLogs& ml = mantissa_logs(g.mbits);
        double sum[5] = {0, 0, 0, 0, 0};  // s1, s2, s3, s4, s_abs
        double total = 0;
        double out[7];
        half_detail::span_pass(c, ml, g.mbits, g.mbits == 10 ? 15 : 127, W, rb, re, base, klo, khi,
                               fit_ ? cb.data() : nullptr, fit_ ? pooled_.get() : nullptr, r0.data(), r1.data(),
                               r2.data(), out);
        s.n_kept = static_cast<std::int64_t>(out[6]);
        for (int i = 0; i < 5; ++i) sum[i] = out[i];
        total = out[5];
        s.s1 = sum[0], s.s2 = sum[1], s.s3 = sum[2], s.s4 = sum[3], s.s_abs = sum[4];
        s.n += static_cast<std::int64_t>(total);  // counts < 2^53: exact
        if (fit_) {
            half_detail::FitCounts fc{cb.data(), base, hmin, hmax, r0.data(), r1.data(), r2.data()};
            s.fit = half_detail::fit_counts(fc, kind_, scratch_);
        }
        return s;
    }

};

}  // namespace neuromfa
