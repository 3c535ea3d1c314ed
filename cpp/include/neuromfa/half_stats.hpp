// Rival statistics (SPEC 10) of 16-bit weights (float16, bfloat16), tensor by tensor: the
// accumulator HalfStats.  Each row block is counted into a table of its 2^16 bit patterns; when
// the tensor is complete, one pass over the magnitudes that hold weights gives the moments, the
// kept count, the counts the Weibull fit needs and the pooled counts, and clears the table for the
// next tensor; the fit itself is weibull16.hpp's, the vector layer simd.hpp's.
//
// Why this shape: a sampled network reads ~60 000 weights per tensor but they fall on ~10 000
// distinct patterns, so the per-weight work is one table increment and everything else runs
// over the (smaller) span of patterns, once.
//
// Every sum runs in a fixed order, in four interleaved partial sums, so the numbers do not depend
// on the instruction set or the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "neuromfa/half_tables.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/simd.hpp"
#include "neuromfa/weibull16.hpp"
#include "neuromfa/weight_stats.hpp"
#include "neuromfa/weights.hpp"

#include "neuromfa/clones_begin.hpp"

namespace neuromfa {

namespace half_detail {

// The kept weights (patterns in [klo, khi)) of the patterns [a, b) of one run: true when the run
// lies wholly inside (the caller adds its total), else the part inside is added to kept here.
template <class T>
[[gnu::always_inline]] inline bool kept_part(const T* c, std::uint32_t a, std::uint32_t b, std::uint32_t klo,
                                             std::uint32_t khi, double& kept) {
    if (a >= klo && b <= khi) return true;
    for (std::uint32_t h = std::max(a, klo); h < std::min(b, khi); ++h)
        kept += static_cast<double>(c[h]) + static_cast<double>(c[h + 0x8000u]);
    return false;
}

// What span_pass reads and writes besides the count table: whole runs [rb, re] of W patterns
// (both signs), the kept patterns [klo, khi), and with cb (else null: moments only) the fit's
// counts cb[h - base], the run sums r0, r1, r2 (index run - rb) and the pooled counts.
struct SpanPass {
    const MantissaLogs* ml;
    int mbits, bias;  // mantissa bits, exponent bias
    std::uint32_t W, rb, re, base, klo, khi;
    double *cb, *pooled, *r0, *r1, *r2;
};

// What it gives: the moment sums of the span, its count and its kept count.
struct SpanSums {
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, s_abs = 0, total = 0, kept = 0;
};

// Four counts from p as doubles (by reference: a returned vector would change the ABI of the
// baseline clone).
template <class T>
[[gnu::always_inline]] inline void load4(const T* p, v4d& x) {
    if constexpr (sizeof(T) == 4) {
        v4i y;
        std::memcpy(&y, p, sizeof y);
        x = __builtin_convertvector(y, v4d);  // counts < 2^31
    } else {
        x = v4d{static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2]),
                static_cast<double>(p[3])};
    }
}

// A pattern's value: its mantissa's (a small table, returned) times 2^(E - bias) (scale), exact;
// no 32768-entry value table to pull through the cache.
[[gnu::always_inline]] inline const double* run_values(const SpanPass& p, std::uint32_t run, double& scale) {
    const int E = static_cast<int>((run * p.W) >> p.mbits);
    const std::uint64_t bits = static_cast<std::uint64_t>((E ? E : 1) - p.bias + 1023) << 52;  // 2^(E - bias), normal
    std::memcpy(&scale, &bits, sizeof scale);
    return E ? p.ml->normal.data() : p.ml->subnormal.data();
}

// The lane sums of the moments: D v, S v^2, D v^3, S v^4, S v and S, with S and D the sum and the
// difference of the counts of +v and -v.
struct LaneMoments {
    v4d a1, a2, a3, a4, ab, at;
};

// The runs wholly inside [klo, khi) are consecutive, [rk0, rk1) (both re + 1 when none): their
// total is taken from the running total; the cells of the (at most two) runs cut by klo or khi are
// added to kept one by one here.
template <class T>
[[gnu::always_inline]] inline void kept_runs(const T* c, const SpanPass& p, double& kept, std::uint32_t& rk0,
                                             std::uint32_t& rk1) {
    rk0 = rk1 = p.re + 1;
    for (std::uint32_t run = p.rb; run <= p.re; ++run)
        if (kept_part(c, run * p.W, (run + 1) * p.W, p.klo, p.khi, kept)) {
            if (rk0 > p.re) rk0 = run;
            rk1 = run + 1;
        }
}

// One run of the pass: its moments into m, and with cb its fit counts, run sums and pooled counts.
template <class T>
[[gnu::always_inline]] inline void run_pass(const T* c, const SpanPass& p, std::uint32_t run, LaneMoments& m) {
    const std::uint32_t fmask = (1u << p.mbits) - 1;
    const double* lm = p.ml->lm.data();
    const double* lm2 = p.ml->lm2.data();
    const v4d zero = {0, 0, 0, 0};
    v4d q0 = zero, q1 = zero, q2 = zero;
    double scale;
    const double* mv = run_values(p, run, scale);
    for (std::uint32_t h = run * p.W; h < (run + 1) * p.W; h += 4) {
        v4d pd, nd;
        load4(c + h, pd), load4(c + h + 0x8000u, nd);
        const v4d S = pd + nd, D = pd - nd;
        v4d vv;
        std::memcpy(&vv, mv + (h & fmask), sizeof vv);
        vv *= scale;
        const v4d v2 = vv * vv;
        m.a1 += D * vv, m.a2 += S * v2, m.a3 += D * vv * v2, m.a4 += S * v2 * v2, m.ab += S * vv, m.at += S;
        if (p.cb) {
            std::memcpy(p.cb + (h - p.base), &S, sizeof S);
            v4d pv, lv, l2v;
            std::memcpy(&pv, p.pooled + h, sizeof pv);
            pv += S;
            std::memcpy(p.pooled + h, &pv, sizeof pv);
            const std::uint32_t f = h & fmask;
            std::memcpy(&lv, lm + f, sizeof lv), std::memcpy(&l2v, lm2 + f, sizeof l2v);
            q0 += S, q1 += S * lv, q2 += S * l2v;
        }
    }
    if (p.cb) p.r0[run - p.rb] = hsum(q0), p.r1[run - p.rb] = hsum(q1), p.r2[run - p.rb] = hsum(q2);
}

// The pass over the runs of p of a count table (both signs): the moment sums, the count and the
// kept count into out, and with p.cb the fit's counts, run sums and pooled counts; every cell
// visited is cleared.  Four lanes, fixed order.
template <class T>
[[gnu::always_inline]] inline void span_pass_impl(T* c, const SpanPass& p, SpanSums& out) {
    const v4d zero = {0, 0, 0, 0};
    LaneMoments m{zero, zero, zero, zero, zero, zero};
    double kept = 0, at_rk0 = 0;
    std::uint32_t rk0, rk1;
    kept_runs(c, p, kept, rk0, rk1);
    for (std::uint32_t run = p.rb; run <= p.re; ++run) {
        if (run == rk0) at_rk0 = hsum(m.at);
        if (run == rk1) kept += hsum(m.at) - at_rk0;  // sums of counts: exact
        run_pass(c, p, run, m);
    }
    if (rk1 == p.re + 1 && rk0 <= p.re) kept += hsum(m.at) - at_rk0;
    const std::size_t n = static_cast<std::size_t>(p.re + 1 - p.rb) * p.W;
    std::memset(c + p.rb * p.W, 0, n * sizeof(T));  // the visited cells, both signs, cleared
    std::memset(c + p.rb * p.W + 0x8000u, 0, n * sizeof(T));
    out.s1 = hsum(m.a1), out.s2 = hsum(m.a2), out.s3 = hsum(m.a3), out.s4 = hsum(m.a4), out.s_abs = hsum(m.ab);
    out.total = hsum(m.at), out.kept = kept;
}

NEUROMFA_CLONES static void span_pass(std::uint32_t* c, const SpanPass& p, SpanSums& out) {
    span_pass_impl(c, p, out);
}

inline void span_pass(std::int64_t* c, const SpanPass& p, SpanSums& out) { span_pass_impl(c, p, out); }

// The scans of a count table before its pass: the inf/NaN cells counted into n_nonfinite and
// cleared; [hmin, hmax] the magnitudes holding the (nonzero finite) weights, hmin = top when none,
// found inward from both ends 64 patterns (of both signs) at a time, from below `seen` (the OR of
// the counted magnitudes, so at least each of them: the empty top of the table is not read);
// [klo, khi) the patterns of the kept weights, lo <= |w| < 1 (values increase with the pattern).
// c[0] (zeros) must be cleared.
template <class T>
[[gnu::always_inline]] inline void table_scan_impl(T* c, std::uint32_t top, std::uint32_t seen, const double* v,
                                                   double lo, std::uint32_t& hmin, std::uint32_t& hmax,
                                                   std::int64_t& n_nonfinite, std::uint32_t& klo, std::uint32_t& khi) {
    auto empty = [c](std::uint32_t b, std::uint32_t e) {  // magnitudes [b, e) of both signs; e - b a multiple of 8
        v4u acc = {0, 0, 0, 0};
        constexpr std::uint32_t step = 32 / sizeof(T);
        for (std::uint32_t j = b; j < e; j += step) {
            v4u x, y;
            std::memcpy(&x, c + j, sizeof x), std::memcpy(&y, c + j + 0x8000u, sizeof y);
            acc |= x | y;
        }
        return (acc[0] | acc[1] | acc[2] | acc[3]) == 0;
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
// magnitude counts of every finished tensor for the pooled fit.  Counts go into 32-bit cells (half
// the cache lines of 64-bit ones); before a cell could pass 2^31 the table is folded into a 64-bit
// one (a tensor of over two billion weights), which the tensor then finishes from.
//
// Thread safety: one thread per object.  A HalfStats holds state between calls (the open tensor's
// table, the pooled counts, the fits' scratch), and every member function, pooled_fit() included
// (it writes the scratch), may change it; calls on one object must not overlap.  add() may use
// n_threads threads of its own inside one call; distinct objects are independent (the tables they
// share, half_tables.hpp, are built once and only read).  The Python bindings release the GIL
// inside add(), finish() and pooled_fit(), so two Python threads must not share one object.
class HalfStats {
  public:
    // fold_at: weights a 32-bit table takes before it is folded into the 64-bit one (at most
    // 2^31 - 1, so every cell converts as a signed 32-bit integer; smaller only to test the fold).
    // max_iter: Newton iterations of the exact fit before it gives up (converged = false; smaller
    // only to test that case).
    HalfStats(WeightKind kind, double threshold, bool fit, std::int64_t fold_at = (std::int64_t(1) << 31) - 1,
              int max_iter = 200)
        : kind_(kind), geo_(kind), threshold_(threshold), fit_(fit), fold_at_(fold_at), max_iter_(max_iter),
          counts_(zeroed<std::uint32_t>(65536)) {
        if (!(threshold > 1.0)) throw std::invalid_argument("HalfStats: threshold must be > 1");
        if (!(fold_at >= 1 && fold_at <= (std::int64_t(1) << 31) - 1))
            throw std::invalid_argument("HalfStats: fold_at must be in [1, 2^31 - 1]");
        if (!(max_iter >= 1)) throw std::invalid_argument("HalfStats: max_iter must be >= 1");
        if (fit_) pooled_ = zeroed<double>(32768);
    }

    WeightKind kind() const { return kind_; }
    bool fits() const { return fit_; }
    std::int64_t tensors() const { return tensors_; }

    // Adds 16-bit patterns to the open tensor.
    void add(const std::uint16_t* bits, std::int64_t n, int n_threads) {
        if (pending_ == 0 && hint_hi_ > 0) {  // a new tensor: likely where the last one was, so fetch
            // those cells (both signs) in order rather than on each random increment's miss
            const std::uint32_t* t = counts_.get();
            for (std::uint32_t h = hint_lo_; h <= hint_hi_; h += 16)
                __builtin_prefetch(t + h, 1, 3), __builtin_prefetch(t + h + 0x8000u, 1, 3);
        }
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
        return half_detail::fit_counts(fc, kind_, scratch_, max_iter_);
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
    int max_iter_;
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
        half_detail::SpanPass pass;
        pass.ml = &mantissa_logs(g.mbits), pass.mbits = g.mbits, pass.bias = g.bias;
        pass.W = W, pass.rb = rb, pass.re = re, pass.base = base, pass.klo = klo, pass.khi = khi;
        pass.cb = fit_ ? cb.data() : nullptr, pass.pooled = fit_ ? pooled_.get() : nullptr;
        pass.r0 = r0.data(), pass.r1 = r1.data(), pass.r2 = r2.data();
        half_detail::SpanSums sums;
        half_detail::span_pass(c, pass, sums);
        s.n_kept = static_cast<std::int64_t>(sums.kept);
        s.s1 = sums.s1, s.s2 = sums.s2, s.s3 = sums.s3, s.s4 = sums.s4, s.s_abs = sums.s_abs;
        s.n += static_cast<std::int64_t>(sums.total);  // counts < 2^53: exact
        if (fit_) {
            half_detail::FitCounts fc{cb.data(), base, hmin, hmax, r0.data(), r1.data(), r2.data()};
            s.fit = half_detail::fit_counts(fc, kind_, scratch_, max_iter_);
        }
        return s;
    }
};

}  // namespace neuromfa

#include "neuromfa/clones_end.hpp"
