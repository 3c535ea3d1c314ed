// The partition function Z_q(r) = sum_i mu_i(r)^q of box histograms (SPEC section 2, steps
// 3-6), computed in log space, in parallel over centres, bitwise independent of the thread
// count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "neuromfa/dense_table.hpp"
#include "neuromfa/distance.hpp"
#include "neuromfa/histogram.hpp"
#include "neuromfa/parallel.hpp"

namespace neuromfa {

struct Partition {
    std::vector<std::int64_t> radius_key;  // sorted distinct keys over all centres
    std::vector<double> radius;            // numpy-rounded radius of each key
    std::vector<double> log_z;             // ln Z_q(r), row-major (n_q x n_r)
    std::int64_t n_centres = 0;
    std::int64_t max_mass = 0;             // largest N_i(D)
};

namespace detail {

// Per-centre evaluation of the shifted terms exp(q*L_i(r) - shift[q][r]), added to a
// block's accumulator acc[q][r].
//
// Constant-shift mode (the normal one): shift[q][r] = -q*offset_q with offset_q = ln(max mass)
// for q < 0 and 0 for q >= 0, so every term is exp(q*y) with y = L + offset_q and at most 1.
// Along evenly spaced moments the next term is the previous one times exp(dq*y): a centre
// costs a few exponentials per radius (or per segment of constant mass) instead of one per
// moment.  Chains restart with a direct exponential at the q < 0 / q >= 0 boundary and
// wherever the spacing changes; a chain of k steps carries a relative error of about k*2e-16.
//
// Per-radius mode (the fallback for extreme moments): shift[q][r] varies with r and every
// term is exponentiated directly.
struct PartitionKernel {
    const std::vector<double>& q;
    const std::vector<double>& shift;  // n_q x n_r
    bool per_radius_shift;
    std::int64_t n_r;
    std::vector<double> offset;  // per q (constant-shift mode)
    std::vector<char> restart;   // per q: take a direct exponential
    double dq = 0.0;
    // Power tables: with integer masses, exp(q*(ln m - ln T + off)) = m^q * exp(q*(off - ln T)),
    // so a table of m^q (per restart moment) and of m^dq replaces every per-radius exponential.
    bool use_tables = false;
    std::vector<std::vector<double>> power;  // per q: m^q for m = 0..max_mass (restart moments only)
    std::vector<double> step_power;          // m^dq

    PartitionKernel(const std::vector<double>& q_, const std::vector<double>& shift_, bool per_radius, std::int64_t n_r_,
                    double ln_max, std::int64_t max_mass = 0)
        : q(q_), shift(shift_), per_radius_shift(per_radius), n_r(n_r_) {
        const std::size_t nq = q.size();
        offset.assign(nq, 0.0);
        restart.assign(nq, 1);
        if (nq > 1) dq = q[1] - q[0];
        for (std::size_t k = 0; k < nq; ++k) {
            offset[k] = q[k] < 0 ? ln_max : 0.0;
            if (k == 0) continue;
            const bool same_group = (q[k] < 0) == (q[k - 1] < 0);
            const bool even = std::fabs((q[k] - q[k - 1]) - dq) <= 1e-12 * std::max(1.0, std::fabs(dq));
            // a term near the underflow range has lost bits: never chain from it
            const bool safe = std::fabs(q[k - 1]) * ln_max < 600.0 && std::fabs(q[k]) * ln_max < 600.0;
            restart[k] = !(same_group && even && safe);
        }
        // Tables stay exact in range when every m^q and its companion factor are normal numbers.
        double qmax = std::fabs(dq);
        for (double v : q) qmax = std::max(qmax, std::fabs(v));
        use_tables = !per_radius && max_mass >= 1 && max_mass <= (1 << 20) && qmax * ln_max < 600.0;
        if (use_tables) {
            std::vector<double> ln_m(static_cast<std::size_t>(max_mass) + 1, 0.0);
            for (std::int64_t m = 1; m <= max_mass; ++m) ln_m[m] = std::log(static_cast<double>(m));
            power.resize(nq);
            bool chained = false;
            for (std::size_t k = 0; k < nq; ++k) {
                chained |= !restart[k];
                if (!restart[k]) continue;
                power[k].resize(ln_m.size());
                for (std::size_t m = 1; m < ln_m.size(); ++m) power[k][m] = std::exp(q[k] * ln_m[m]);
            }
            if (chained) {
                step_power.resize(ln_m.size());
                for (std::size_t m = 1; m < ln_m.size(); ++m) step_power[m] = std::exp(dq * ln_m[m]);
            }
        }
    }

    // Dense centres (one segment per radius, the rule in full networks) are evaluated in
    // batches: the batch's terms are summed per radius before they touch the accumulator, so
    // the accumulator is read and written once per batch rather than once per centre.
    static constexpr int kBatch = 8;

    struct Scratch {
        std::vector<std::int64_t> seg_a, seg_b, seg_m;
        std::vector<double> seg_L, y, t, ratio;
        std::vector<std::int64_t> batch_m;  // kBatch x n_r masses
        std::vector<double> batch_ln, batch_t, batch_ratio;
        int n_batch = 0;
    };

    void flush_batch(double* direct, Scratch& s) const {
        const int nb = s.n_batch;
        if (nb == 0) return;
        const std::size_t nq = q.size(), nr = static_cast<std::size_t>(n_r);
        s.batch_t.resize(kBatch * nr);
        s.batch_ratio.resize(kBatch * nr);
        double* T = s.batch_t.data();
        double* R = s.batch_ratio.data();
        for (std::size_t k = 0; k < nq;) {
            // restart moment k: direct terms from the power tables
            const bool chain = k + 1 < nq && !restart[k + 1];
            double* row = direct + k * nr;
            for (int b = 0; b < nb; ++b) {
                double* t = T + b * nr;
                const std::int64_t* m = s.batch_m.data() + b * nr;
                const double a = std::exp(q[k] * (offset[k] - s.batch_ln[b]));
                const double* pk = power[k].data();
                for (std::size_t u = 0; u < nr; ++u) t[u] = pk[m[u]] * a;
                if (chain) {
                    double* r = R + b * nr;
                    const double c = std::exp(dq * (offset[k] - s.batch_ln[b]));
                    for (std::size_t u = 0; u < nr; ++u) r[u] = step_power[m[u]] * c;
                }
                for (std::size_t u = 0; u < nr; ++u) row[u] += t[u];
            }
            std::size_t end = k + 1;
            while (end < nq && !restart[end]) ++end;
            // chained moments k+1 .. end-1, four at a time: terms stay in registers across moments
            std::size_t j = k + 1;
            for (; j + 4 <= end; j += 4) {
                double *r0 = direct + j * nr, *r1 = r0 + nr, *r2 = r1 + nr, *r3 = r2 + nr;
                std::size_t u0 = 0;
#if defined(__SSE2__)
                for (; u0 + 2 <= nr; u0 += 2) {  // two radii per vector: the same operations, in order
                    __m128d s0 = _mm_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
                    for (int b = 0; b < nb; ++b) {
                        const __m128d rr = _mm_loadu_pd(R + b * nr + u0);
                        __m128d tt = _mm_loadu_pd(T + b * nr + u0);
                        tt = _mm_mul_pd(tt, rr), s0 = _mm_add_pd(s0, tt);
                        tt = _mm_mul_pd(tt, rr), s1 = _mm_add_pd(s1, tt);
                        tt = _mm_mul_pd(tt, rr), s2 = _mm_add_pd(s2, tt);
                        tt = _mm_mul_pd(tt, rr), s3 = _mm_add_pd(s3, tt);
                        _mm_storeu_pd(T + b * nr + u0, tt);
                    }
                    _mm_storeu_pd(r0 + u0, _mm_add_pd(_mm_loadu_pd(r0 + u0), s0));
                    _mm_storeu_pd(r1 + u0, _mm_add_pd(_mm_loadu_pd(r1 + u0), s1));
                    _mm_storeu_pd(r2 + u0, _mm_add_pd(_mm_loadu_pd(r2 + u0), s2));
                    _mm_storeu_pd(r3 + u0, _mm_add_pd(_mm_loadu_pd(r3 + u0), s3));
                }
#endif
                for (std::size_t u = u0; u < nr; ++u) {
                    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                    for (int b = 0; b < nb; ++b) {
                        const double rr = R[b * nr + u];
                        double tt = T[b * nr + u];
                        tt *= rr, s0 += tt;
                        tt *= rr, s1 += tt;
                        tt *= rr, s2 += tt;
                        tt *= rr, s3 += tt;
                        T[b * nr + u] = tt;
                    }
                    r0[u] += s0, r1[u] += s1, r2[u] += s2, r3[u] += s3;
                }
            }
            for (; j < end; ++j) {
                double* rj = direct + j * nr;
                for (int b = 0; b < nb; ++b)
                    for (std::size_t u = 0; u < nr; ++u) T[b * nr + u] *= R[b * nr + u], rj[u] += T[b * nr + u];
            }
            k = end;
        }
        s.n_batch = 0;
    }

    // Walks one centre's histogram: calls visit(a, b, mass) for each maximal radius-index range
    // [a, b) of constant box mass N_i(r) = 1 + #{d <= r}; the last range has mass N_i(D).
    template <class Src, class Visit>
    static void walk(const Src& h, std::int64_t c, const std::vector<std::int64_t>& rkeys, Visit&& visit) {
        std::int64_t mass = 1, seg = 0;
        auto it = rkeys.begin();
        h.for_each(c, [&](std::int64_t key, std::int64_t count) {
            it = std::lower_bound(it, rkeys.end(), key);
            const std::int64_t ri = it - rkeys.begin();
            if (ri > seg) visit(seg, ri, mass);
            mass += count;
            seg = ri;
        });
        const std::int64_t n_r = static_cast<std::int64_t>(rkeys.size());
        if (n_r > seg) visit(seg, n_r, mass);
    }

    // Adds centre c's terms: dense centres join the batch (direct sums), others go to `acc` in
    // difference form, and the per-radius fallback writes direct values.
    template <class Src>
    void add_centre(const Src& h, std::int64_t c, const std::vector<std::int64_t>& rkeys, double* acc,
                    double* direct, Scratch& s) const {
        s.seg_a.clear();
        s.seg_b.clear();
        s.seg_L.clear();
        s.seg_m.clear();
        walk(h, c, rkeys, [&](std::int64_t a, std::int64_t b, std::int64_t m) {
            s.seg_a.push_back(a);
            s.seg_b.push_back(b);
            s.seg_m.push_back(m);
        });
        const double ln_total = std::log(static_cast<double>(s.seg_m.back()));
        // Centres with segments for at least half the radii are evaluated per radius in batches
        // (their masses expanded over each segment); sparser ones in difference form below.
        if (use_tables && 2 * static_cast<std::int64_t>(s.seg_m.size()) >= n_r) {
            add_to_batch(ln_total, direct, s);
            return;
        }
        if (per_radius_shift || !use_tables)  // L = ln N_i(r) - ln N_i(D)
            for (std::int64_t m : s.seg_m) s.seg_L.push_back(std::log(static_cast<double>(m)) - ln_total);
        if (per_radius_shift) {
            add_per_radius(direct, s);
            return;
        }
        // Difference form: for q >= 0 a centre's term grows with r, so it adds the positive step
        // t_u - t_(u-1) where segment u starts and a prefix sum over r rebuilds Z; for q < 0 the
        // term shrinks with r, so it adds t_u - t_(u+1) where segment u ends and a suffix sum
        // rebuilds Z.  Every summand is positive (no cancellation), and a centre costs one
        // update per segment instead of one per radius.
        const std::size_t n_units = s.seg_m.size();
        s.y.resize(n_units);
        s.t.resize(n_units);
        s.ratio.resize(n_units);
        for (std::size_t k = 0; k < q.size(); ++k) {
            segment_terms(k, ln_total, s);
            add_steps(k, acc + k * n_r, s);
        }
    }

    // The centre's segments (s.seg_*) expanded over the radii into the batch, flushed when full.
    void add_to_batch(double ln_total, double* direct, Scratch& s) const {
        if (s.batch_m.empty()) {
            s.batch_m.resize(kBatch * static_cast<std::size_t>(n_r));
            s.batch_ln.resize(kBatch);
        }
        std::int64_t* m = s.batch_m.data() + s.n_batch * n_r;
        for (std::size_t u = 0; u < s.seg_m.size(); ++u) std::fill(m + s.seg_a[u], m + s.seg_b[u], s.seg_m[u]);
        s.batch_ln[s.n_batch] = ln_total;
        if (++s.n_batch == kBatch) flush_batch(direct, s);
    }

    // Per-radius shifts: every term of every moment exponentiated directly into `direct`.
    void add_per_radius(double* direct, const Scratch& s) const {
        for (std::size_t k = 0; k < q.size(); ++k) {
            double* row = direct + k * n_r;
            const double* srow = shift.data() + k * n_r;
            for (std::size_t u = 0; u < s.seg_L.size(); ++u)
                for (std::int64_t r = s.seg_a[u]; r < s.seg_b[u]; ++r) row[r] += std::exp(q[k] * s.seg_L[u] - srow[r]);
        }
    }

    // s.t: the centre's term of moment k on each segment (a restart: from the power tables or
    // directly, with s.ratio for the chain that follows; else the previous moment's times s.ratio).
    void segment_terms(std::size_t k, double ln_total, Scratch& s) const {
        const std::size_t nq = q.size(), n_units = s.seg_m.size();
        if (restart[k] && use_tables) {
            const double a = std::exp(q[k] * (offset[k] - ln_total));
            const double* pk = power[k].data();
            for (std::size_t u = 0; u < n_units; ++u) s.t[u] = pk[s.seg_m[u]] * a;
            if (k + 1 < nq && !restart[k + 1]) {
                const double b = std::exp(dq * (offset[k] - ln_total));
                for (std::size_t u = 0; u < n_units; ++u) s.ratio[u] = step_power[s.seg_m[u]] * b;
            }
        } else if (restart[k]) {
            const double off = offset[k];
            for (std::size_t u = 0; u < n_units; ++u) s.y[u] = s.seg_L[u] + off;
            for (std::size_t u = 0; u < n_units; ++u) s.t[u] = std::exp(q[k] * s.y[u]);
            if (k + 1 < nq && !restart[k + 1])
                for (std::size_t u = 0; u < n_units; ++u) s.ratio[u] = std::exp(dq * s.y[u]);
        } else {
            for (std::size_t u = 0; u < n_units; ++u) s.t[u] *= s.ratio[u];
        }
    }

    // The steps of moment k's terms s.t into its accumulator row (difference form, see add_centre).
    void add_steps(std::size_t k, double* row, const Scratch& s) const {
        const std::size_t n_units = s.seg_m.size();
        if (static_cast<std::int64_t>(n_units) == n_r) {  // one segment per radius: contiguous
            const double* t = s.t.data();
            if (q[k] >= 0) {
                row[0] += t[0];
                for (std::int64_t u = 1; u < n_r; ++u) row[u] += t[u] - t[u - 1];
            } else {
                for (std::int64_t u = 0; u + 1 < n_r; ++u) row[u] += t[u] - t[u + 1];
                row[n_r - 1] += t[n_r - 1];
            }
        } else if (q[k] >= 0) {
            double prev = 0.0;
            for (std::size_t u = 0; u < n_units; ++u) row[s.seg_a[u]] += s.t[u] - prev, prev = s.t[u];
        } else {
            for (std::size_t u = 0; u < n_units; ++u)
                row[s.seg_b[u] - 1] += s.t[u] - (u + 1 < n_units ? s.t[u + 1] : 0.0);
        }
    }
};

// Sorted distinct values of keys[0..n): a presence bitmap when their range is small, else a sort.
inline std::vector<std::int64_t> distinct_keys(const std::int64_t* keys, std::int64_t n) {
    std::vector<std::int64_t> out;
    if (n == 0) return out;
    const auto mm = std::minmax_element(keys, keys + n);
    const std::int64_t lo = *mm.first, range = *mm.second - lo + 1;
    if (range <= std::max<std::int64_t>(4 * n, 1 << 16)) {
        std::vector<char> seen(static_cast<std::size_t>(range), 0);
        for (std::int64_t i = 0; i < n; ++i) seen[keys[i] - lo] = 1;
        for (std::int64_t v = 0; v < range; ++v)
            if (seen[v]) out.push_back(v + lo);
        return out;
    }
    out.assign(keys, keys + n);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// Centre ranges of roughly equal cost, fixed by the data alone.
template <class Src>
std::vector<std::int64_t> cost_blocks(const Src& h, std::int64_t n_r, std::int64_t target) {
    std::vector<std::int64_t> bounds{0};
    std::int64_t cost = 0;
    for (std::int64_t c = 0; c < h.size(); ++c) {
        cost += h.pairs(c) + n_r;
        if (cost >= target) {
            bounds.push_back(c + 1);
            cost = 0;
        }
    }
    if (bounds.back() != h.size()) bounds.push_back(h.size());
    return bounds;
}

// sum over centres of exp(q*L_i(r) - shift[q][r]), reduced in block order.
template <class Src>
std::vector<double> shifted_sums(const Src& h, const std::vector<std::int64_t>& rkeys, const PartitionKernel& kernel,
                                 int n_threads) {
    const std::int64_t n_r = static_cast<std::int64_t>(rkeys.size());
    const std::size_t cells = kernel.q.size() * static_cast<std::size_t>(n_r);
    const std::vector<std::int64_t> bounds = cost_blocks(h, n_r, 1 << 15);
    const std::int64_t nb = static_cast<std::int64_t>(bounds.size()) - 1;
    std::vector<double> total(cells, 0.0);
    const std::int64_t wave = 64;
    std::vector<double> total_direct(cells, 0.0);
    // per block: [difference form | direct sums]
    std::vector<double> partial(2 * cells * static_cast<std::size_t>(std::min(wave, std::max<std::int64_t>(nb, 1))));
    for (std::int64_t w0 = 0; w0 < nb; w0 += wave) {
        const std::int64_t w1 = std::min(nb, w0 + wave);
        parallel_for(w1 - w0, nb >= 4 ? n_threads : 1, [&](std::int64_t j) {
            double* acc = partial.data() + 2 * cells * static_cast<std::size_t>(j);
            std::fill(acc, acc + 2 * cells, 0.0);
            PartitionKernel::Scratch scratch;
            for (std::int64_t c = bounds[w0 + j]; c < bounds[w0 + j + 1]; ++c)
                kernel.add_centre(h, c, rkeys, acc, acc + cells, scratch);
            kernel.flush_batch(acc + cells, scratch);
        });
        for (std::int64_t j = 0; j < w1 - w0; ++j) {
            const double* acc = partial.data() + 2 * cells * static_cast<std::size_t>(j);
            for (std::size_t i = 0; i < cells; ++i) total[i] += acc[i];
            for (std::size_t i = 0; i < cells; ++i) total_direct[i] += acc[cells + i];
        }
    }
    // rebuild Z from the difference form (prefix sums for q >= 0, suffix sums for q < 0)
    for (std::size_t k = 0; k < kernel.q.size(); ++k) {
        double* row = total.data() + k * static_cast<std::size_t>(n_r);
        if (kernel.q[k] >= 0)
            for (std::int64_t r = 1; r < n_r; ++r) row[r] += row[r - 1];
        else
            for (std::int64_t r = n_r - 2; r >= 0; --r) row[r] += row[r + 1];
    }
    for (std::size_t i = 0; i < cells; ++i) total[i] += total_direct[i];
    return total;
}

}  // namespace detail

namespace detail {

inline void check_moments(const std::vector<double>& q) {
    if (q.empty()) throw std::invalid_argument("q must hold at least one moment");
    for (double v : q)
        if (!std::isfinite(v)) throw std::invalid_argument("q must be finite");
}

template <class Src>
std::int64_t centre_mass(const Src& h, std::int64_t c) {
    std::int64_t total = 1;
    h.for_each(c, [&](std::int64_t, std::int64_t count) { total += count; });
    return total;
}

// ln Z_q(r) of any histogram source on the given radius grid (see log_partition).
template <class Src>
Partition log_partition_impl(const Src& h, std::vector<std::int64_t> radius_key, const Rounding& rounding,
                             const std::vector<double>& q, int n_threads) {
    Partition out;
    out.n_centres = h.size();
    out.radius_key = std::move(radius_key);
    if (out.radius_key.empty()) throw std::invalid_argument("no distance in any box: the radius grid is empty");
    const std::int64_t n_r = static_cast<std::int64_t>(out.radius_key.size());
    for (std::int64_t k : out.radius_key) out.radius.push_back(rounding.value(k));
    for (std::int64_t c = 0; c < h.size(); ++c) out.max_mass = std::max(out.max_mass, centre_mass(h, c));
    const double ln_max = std::log(static_cast<double>(out.max_mass));
    const std::size_t nq = q.size();
    std::vector<double> shift(nq * static_cast<std::size_t>(n_r));
    for (std::size_t k = 0; k < nq; ++k)
        std::fill(shift.begin() + k * n_r, shift.begin() + (k + 1) * n_r, q[k] < 0 ? -q[k] * ln_max : 0.0);

    const PartitionKernel kernel(q, shift, false, n_r, ln_max, out.max_mass);
    std::vector<double> sums = shifted_sums(h, out.radius_key, kernel, n_threads);

    // Moments whose shifted sums underflowed: shift each radius by its own largest term.
    std::vector<std::size_t> redo;
    for (std::size_t k = 0; k < nq; ++k)
        for (std::int64_t r = 0; r < n_r; ++r)
            if (!(sums[k * n_r + r] > 1e-280)) {
                redo.push_back(k);
                break;
            }
    if (!redo.empty()) {
        std::vector<double> lmin(n_r, 0.0), lmax(n_r, -std::numeric_limits<double>::infinity());
        for (std::int64_t c = 0; c < h.size(); ++c) {
            const double ln_total = std::log(static_cast<double>(centre_mass(h, c)));
            PartitionKernel::walk(h, c, out.radius_key, [&](std::int64_t a, std::int64_t b, std::int64_t m) {
                const double L = std::log(static_cast<double>(m)) - ln_total;
                for (std::int64_t r = a; r < b; ++r) {
                    lmin[r] = std::min(lmin[r], L);
                    lmax[r] = std::max(lmax[r], L);
                }
            });
        }
        std::vector<double> q2, shift2;
        for (std::size_t k : redo) {
            q2.push_back(q[k]);
            for (std::int64_t r = 0; r < n_r; ++r) shift2.push_back(q[k] * (q[k] < 0 ? lmin[r] : lmax[r]));
        }
        const PartitionKernel kernel2(q2, shift2, true, n_r, ln_max);
        std::vector<double> sums2 = shifted_sums(h, out.radius_key, kernel2, n_threads);
        for (std::size_t j = 0; j < redo.size(); ++j) {
            const std::size_t k = redo[j];
            for (std::int64_t r = 0; r < n_r; ++r) {
                shift[k * n_r + r] = shift2[j * n_r + r];
                sums[k * n_r + r] = sums2[j * n_r + r];
            }
        }
    }
    out.log_z.resize(sums.size());
    for (std::size_t i = 0; i < sums.size(); ++i) out.log_z[i] = shift[i] + std::log(sums[i]);
    return out;
}

}  // namespace detail

// ln Z_q(r) on the radius grid of all centres' keys.  Each term is scaled by exp(-shift) so
// that the largest possible term is 1: no overflow for any q.  Should a sum still underflow
// (|q| * ln(max mass) beyond ~700), that moment is recomputed with a shift per radius.
inline Partition log_partition(const HistogramView& h, const Rounding& rounding, const std::vector<double>& q,
                               int n_threads) {
    if (h.n_centres < 1) throw std::invalid_argument("no box centre: the histogram is empty");
    detail::check_moments(q);
    validate_histogram(h);
    return detail::log_partition_impl(CsrSource{h}, detail::distinct_keys(h.key, h.indptr[h.n_centres]), rounding, q,
                                      n_threads);
}

// ln Z_q(r) straight from a dense (node x key) count table: no CSR is built.
inline Partition log_partition_table(const TableSource& src, const Rounding& rounding, const std::vector<double>& q,
                                     int n_threads) {
    if (src.size() < 1) throw std::invalid_argument("no box centre: the table holds no kept node");
    detail::check_moments(q);
    std::vector<char> present(static_cast<std::size_t>(src.nb), 0);
    for (std::int64_t r : src.rows) {
        const std::uint32_t* row = src.table + r * src.nb;
        for (std::int64_t k = 0; k < src.nb; ++k) present[k] |= row[k] != 0;
    }
    std::vector<std::int64_t> keys;
    for (std::int64_t k = 0; k < src.nb; ++k)
        if (present[k]) keys.push_back(k + src.kmin);
    return detail::log_partition_impl(src, std::move(keys), rounding, q, n_threads);
}

// ln Z_q(r) of a dense (node x key) table of n_rows x filter.n_keys() whose columns are the
// filter's keys, with the table's kept rows and counts.  A table with no kept row gives an
// empty partition (no radius, no moment row) rather than an error.
struct TablePartition {
    std::vector<std::int64_t> centre;  // table rows of the kept centres, ascending
    std::int64_t n_sources = 0, n_distances = 0;
    Partition partition;
};

inline TablePartition table_log_partition(const std::uint32_t* table, std::int64_t n_rows, const DistanceFilter& filter,
                                          std::int64_t min_edges, const std::vector<double>& q, int n_threads) {
    TableSource src = table_source(table, n_rows, filter.n_keys(), filter.min_key(), min_edges, n_threads);
    TablePartition out;
    if (src.size() > 0) out.partition = log_partition_table(src, filter.rounding(), q, n_threads);
    out.n_sources = src.n_sources;
    out.n_distances = src.n_distances;
    out.centre = std::move(src.rows);
    return out;
}

}  // namespace neuromfa
