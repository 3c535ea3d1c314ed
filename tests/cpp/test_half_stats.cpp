// HalfStats (half_stats.hpp, weibull16.hpp) against a slow reference: the widened values one by one and the plain
// Weibull fit (weibull_fit) on their distinct magnitudes, over float16 and bfloat16 weights from
// very spread to very narrow, with zeros, subnormals, few distinct values and inf/NaN; the fold
// into 64-bit counts and the threaded count give the same bits.  ci/sanitize.sh runs it under
// AddressSanitizer + UBSan.
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "check.hpp"
#include "neuromfa/half_stats.hpp"

#if defined(NEUROMFA_CLONES)
#error "a public header leaks NEUROMFA_CLONES (clones_begin.hpp without clones_end.hpp)"
#endif

using namespace neuromfa;
using neuromfa_test::failures;
using neuromfa_test::throws_invalid;
using neuromfa_test::where;

namespace {

// The pattern of kind nearest to x (ties to the lower magnitude): a search over the magnitudes.
std::uint16_t to_half(double x, WeightKind kind) {
    const std::vector<double>& v = half_values(kind);
    const std::uint32_t top = kind == WeightKind::f16 ? 0x7C00u : 0x7F80u;
    const double a = std::fabs(x);
    std::uint32_t lo = 0, hi = top - 1;  // v[lo] <= a < v[hi] after the search, or an end
    if (a >= v[hi]) {
        lo = hi;
    } else {
        while (hi - lo > 1) {
            const std::uint32_t mid = (lo + hi) / 2;
            (v[mid] <= a ? lo : hi) = mid;
        }
        if (a - v[lo] > v[hi] - a) lo = hi;
    }
    return static_cast<std::uint16_t>(lo | (x < 0 ? 0x8000u : 0u));
}

struct Reference {
    std::int64_t n = 0, n_zero = 0, n_kept = 0, n_nonfinite = 0;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, s_abs = 0;
    std::map<double, double> mags;  // nonzero finite |w| -> count
};

void add_reference(Reference& r, const std::vector<std::uint16_t>& bits, WeightKind kind, double threshold) {
    const std::vector<double>& v = half_values(kind);
    for (std::uint16_t b : bits) {
        ++r.n;
        const double w = v[b];
        if (!std::isfinite(w)) {
            ++r.n_nonfinite;
            continue;
        }
        const double a = std::fabs(w);
        r.s1 += w, r.s2 += w * w, r.s3 += w * w * w, r.s4 += w * w * w * w, r.s_abs += a;
        if (w == 0) ++r.n_zero; else r.mags[a] += 1;
        if (a >= 1 / threshold && a < 1) ++r.n_kept;
    }
}

WeibullFit reference_fit(const std::map<double, double>& mags) {
    std::vector<double> x, c;
    for (const auto& kv : mags) x.push_back(kv.first), c.push_back(kv.second);
    return weibull_fit(x.data(), c.data(), static_cast<std::int64_t>(x.size()));
}

bool close(double a, double b, double rel) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + 1e-300;
}

bool same(const HalfTensorStats& a, const HalfTensorStats& b) {  // bit for bit
    auto eq = [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; };
    return a.n == b.n && a.n_zero == b.n_zero && a.n_kept == b.n_kept && a.n_nonfinite == b.n_nonfinite &&
           eq(a.s1, b.s1) && eq(a.s2, b.s2) && eq(a.s3, b.s3) && eq(a.s4, b.s4) && eq(a.s_abs, b.s_abs) &&
           eq(a.fit.shape, b.fit.shape) && eq(a.fit.scale, b.fit.scale);
}

std::vector<std::uint16_t> draw(std::mt19937_64& rng, int dist, int n, WeightKind kind) {
    std::normal_distribution<double> N(0, 1);
    std::student_t_distribution<double> T(3);
    std::uniform_real_distribution<double> U(0, 1);
    const double scale = std::pow(10.0, -4 + 4 * U(rng));
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(n));
    for (auto& b : bits) {
        double x;
        switch (dist) {
            case 0: x = N(rng) * scale; break;                                                 // Gaussian
            case 1: x = T(rng) * scale; break;                                                 // heavy tails
            case 2: x = (1 + 0.01 * N(rng)) * scale * (U(rng) < 0.5 ? -1 : 1); break;          // narrow: large k
            case 3: x = std::exp(3 * N(rng)) * scale; break;                                   // very wide
            case 4: x = U(rng) < 0.3 ? 0.0 : N(rng) * scale; break;                            // many zeros
            case 5: x = std::floor(U(rng) * 3) * scale; break;                                 // few distinct values
            default: x = N(rng) * 1e-6; break;                                                 // f16 subnormals
        }
        b = to_half(x, kind);
    }
    return bits;
}

void test_against_the_reference() {
    std::mt19937_64 rng(7);
    const double threshold = 150.0;
    for (int trial = 0; trial < 420; ++trial) {
        const WeightKind kind = trial % 3 == 0 ? WeightKind::bf16 : WeightKind::f16;
        const int dist = trial % 7;
        const int n = std::uniform_int_distribution<int>(1, trial % 5 == 0 ? 20 : 20000)(rng);
        where = "trial " + std::to_string(trial) + " dist " + std::to_string(dist);
        HalfStats hs(kind, threshold, true);
        Reference pooled;
        for (int tensor = 0; tensor < 2; ++tensor) {
            std::vector<std::uint16_t> bits = draw(rng, dist, n, kind);
            if (trial % 11 == 0) bits[0] = kind == WeightKind::f16 ? 0xFC00 : 0x7FC0;  // -inf / NaN
            Reference r;
            add_reference(r, bits, kind, threshold);
            add_reference(pooled, bits, kind, threshold);
            const std::int64_t cut = n / 3;  // the tensor in two blocks
            hs.add(bits.data(), cut, 1);
            hs.add(bits.data() + cut, n - cut, 1);
            const HalfTensorStats s = hs.finish();
            CHECK(s.n == r.n && s.n_zero == r.n_zero && s.n_kept == r.n_kept && s.n_nonfinite == r.n_nonfinite);
            CHECK(close(s.s1, r.s1, 1e-12 * (r.s_abs > 0 ? r.s_abs / std::max(std::fabs(r.s1), 1e-300) : 1)));
            CHECK(close(s.s2, r.s2, 1e-12) && close(s.s4, r.s4, 1e-12) && close(s.s_abs, r.s_abs, 1e-12));
            const WeibullFit f = reference_fit(r.mags);
            CHECK(close(s.fit.shape, f.shape, 1e-11) && close(s.fit.scale, f.scale, 1e-11));
        }
        const WeibullFit p = hs.pooled_fit(), f = reference_fit(pooled.mags);
        CHECK(close(p.shape, f.shape, 1e-11) && close(p.scale, f.scale, 1e-11));
    }
}

void test_fold_and_threads_give_the_same_bits() {
    std::mt19937_64 rng(11);
    for (WeightKind kind : {WeightKind::f16, WeightKind::bf16}) {
        const int n = (1 << 21) + 12345;  // over two count blocks: the threaded count runs
        std::vector<std::uint16_t> bits = draw(rng, 0, n, kind);
        where = kind == WeightKind::f16 ? "f16" : "bf16";
        HalfStats plain(kind, 150.0, true), folded(kind, 150.0, true, 100000), threaded(kind, 150.0, true);
        plain.add(bits.data(), n, 1);
        folded.add(bits.data(), n, 1);  // folds into 64-bit counts every 100 000 weights
        threaded.add(bits.data(), n, 4);
        const HalfTensorStats a = plain.finish(), b = folded.finish(), c = threaded.finish();
        CHECK(a.n == n && same(a, b) && same(a, c));
        // the table is clear afterwards: a second tensor gives its own numbers
        std::vector<std::uint16_t> small = draw(rng, 1, 5000, kind);
        HalfStats fresh(kind, 150.0, true);
        fresh.add(small.data(), 5000, 1), folded.add(small.data(), 5000, 1);
        CHECK(same(fresh.finish(), folded.finish()));
    }
}

void test_very_narrow_magnitudes() {  // Weibull shapes of thousands: e^{k ln m} would overflow
    std::mt19937_64 rng(3);
    std::normal_distribution<double> N(0, 1);
    for (WeightKind kind : {WeightKind::f16, WeightKind::bf16}) {
        for (double sd : {0.0, 5e-4, 2e-3}) {
            where = std::string(kind == WeightKind::f16 ? "f16" : "bf16") + " sd " + std::to_string(sd);
            std::vector<std::uint16_t> bits;
            if (sd == 0.0) {  // two adjacent patterns just below 0.5
                const std::uint16_t a = to_half(0.5, kind);
                bits = {a, static_cast<std::uint16_t>(a - 1), a, a};
            } else {
                for (int i = 0; i < 5000; ++i) bits.push_back(to_half(1.0 + sd * N(rng), kind));
            }
            Reference r;
            add_reference(r, bits, kind, 150.0);
            HalfStats hs(kind, 150.0, true);
            hs.add(bits.data(), static_cast<std::int64_t>(bits.size()), 1);
            const HalfTensorStats s = hs.finish();
            const WeibullFit f = reference_fit(r.mags);
            CHECK(f.shape > 100 || r.mags.size() < 2);
            CHECK(close(s.fit.shape, f.shape, 1e-11) && close(s.fit.scale, f.scale, 1e-11));
        }
    }
}

// A fit stopped by its iteration cap says so (converged = false, the last iterate kept): the
// plain fit and HalfStats's, per tensor and pooled.  Narrow magnitudes: the exact iteration of
// HalfStats takes several steps there, so a cap of one stops it short.
void test_a_fit_that_does_not_converge_says_so() {
    where = "not converged";
    std::mt19937_64 rng(9);
    std::normal_distribution<double> N(0, 1);
    std::vector<std::uint16_t> bits;
    for (int i = 0; i < 3000; ++i) bits.push_back(to_half(1.0 + 1e-3 * N(rng), WeightKind::f16));
    Reference r;
    add_reference(r, bits, WeightKind::f16, 150.0);
    std::vector<double> x, c;
    for (const auto& kv : r.mags) x.push_back(kv.first), c.push_back(kv.second);
    const WeibullFit full = weibull_fit(x.data(), c.data(), static_cast<std::int64_t>(x.size()));
    const WeibullFit capped = weibull_fit(x.data(), c.data(), static_cast<std::int64_t>(x.size()), 1e-13, 2);
    CHECK(full.converged && full.iterations > 2);
    CHECK(!capped.converged && capped.iterations == 2 && std::isfinite(capped.shape) && capped.shape != full.shape);
    CHECK(throws_invalid([&] { weibull_fit(x.data(), c.data(), 1, 1e-13, 0); }));
    HalfStats plain(WeightKind::f16, 150.0, true), stopped(WeightKind::f16, 150.0, true, (std::int64_t(1) << 31) - 1, 1);
    plain.add(bits.data(), 3000, 1), stopped.add(bits.data(), 3000, 1);
    const WeibullFit a = plain.finish().fit, b = stopped.finish().fit;
    CHECK(a.converged && a.iterations > 1);
    CHECK(!b.converged && b.iterations == 1 && std::isfinite(b.shape));
    CHECK(plain.pooled_fit().converged && !stopped.pooled_fit().converged);
    CHECK(throws_invalid([] { HalfStats bad(WeightKind::f16, 150.0, true, 1000, 0); }));
}

void test_edge_cases() {
    where = "edges";
    HalfStats hs(WeightKind::f16, 150.0, true);
    HalfTensorStats s = hs.finish();  // no weights
    CHECK(s.n == 0 && s.s2 == 0 && std::isnan(s.fit.shape));
    const std::vector<std::uint16_t> zeros(10, 0), one(7, to_half(0.5, WeightKind::f16));
    hs.add(zeros.data(), 10, 1);
    s = hs.finish();
    CHECK(s.n == 10 && s.n_zero == 10 && std::isnan(s.fit.shape));
    hs.add(one.data(), 7, 1);
    s = hs.finish();
    CHECK(s.n == 7 && s.n_kept == 7 && std::isnan(s.fit.shape) && s.s_abs == 3.5);  // one distinct value
    HalfStats moments_only(WeightKind::bf16, 150.0, false);
    moments_only.add(one.data(), 7, 1);
    CHECK(std::isnan(moments_only.finish().fit.shape));
    CHECK(throws_invalid([] { HalfStats bad(WeightKind::f32, 150.0, true); }));
    CHECK(throws_invalid([] { HalfStats bad(WeightKind::f16, 1.0, true); }));
    CHECK(throws_invalid([] { HalfStats bad(WeightKind::f16, 150.0, true, 0); }));
}

}  // namespace

int main() {
    test_against_the_reference();
    test_fold_and_threads_give_the_same_bits();
    test_very_narrow_magnitudes();
    test_a_fit_that_does_not_converge_says_so();
    test_edge_cases();
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::puts("test_half_stats: all checks passed");
    return 0;
}
