// The two builds of every cloned loop (NEUROMFA_CLONES: exp_k, gauss_sums, row_sums, span_pass,
// table_scan) give the same bits.  The library lets the loader pick one build per processor, so a
// test of the library runs only one of them; here each loop's body (its always-inline *_impl) is
// built twice by name, as target_clones builds it (target("avx2") and the translation unit's
// default, the baseline: CMake adds no -march), and both run over the same random inputs.  Skipped
// (exit 77) where the processor has no AVX2 or the compiler cannot target it.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "check.hpp"
#include "neuromfa/half_stats.hpp"

using namespace neuromfa;
using namespace neuromfa::half_detail;
using neuromfa_test::failures;
using neuromfa_test::where;

#if defined(__x86_64__) && defined(__GNUC__)
#define NEUROMFA_TEST_AVX2 1
#else
#define NEUROMFA_TEST_AVX2 0
#endif

namespace {

#if NEUROMFA_TEST_AVX2
// One body per loop, for a target: the baseline (no attribute) or AVX2.
#define NEUROMFA_TEST_BUILD(NAME, ATTR)                                                                          \
    ATTR void NAME##_exp_k(double k, const double* x, double* out, std::uint32_t i0, std::uint32_t i1) {          \
        exp_k_impl(k, x, out, i0, i1);                                                                       \
    }                                                                                                        \
    ATTR void NAME##_gauss_sums(double k, const double* m, const double* c, const double* v, std::uint32_t n,   \
                                double* x, double* e, double& a0, double& a1, double& a2) {                  \
        gauss_sums_impl(k, m, c, v, n, x, e, a0, a1, a2);                                                    \
    }                                                                                                        \
    ATTR void NAME##_row_sums(const double* c, const double* p, const double* l, const double* l2,          \
                              std::uint32_t f0, std::uint32_t f1, double& s0, double& s1, double& s2) {      \
        row_sums_impl(c, p, l, l2, f0, f1, s0, s1, s2);                                                      \
    }                                                                                                        \
    ATTR void NAME##_span_pass(std::uint32_t* c, const SpanPass& p, SpanSums& out) { span_pass_impl(c, p, out); } \
    ATTR void NAME##_table_scan(std::uint32_t* c, std::uint32_t top, std::uint32_t seen, const double* v,      \
                                double lo, std::uint32_t& hmin, std::uint32_t& hmax, std::int64_t& n_nonfinite, \
                                std::uint32_t& klo, std::uint32_t& khi) {                                    \
        table_scan_impl(c, top, seen, v, lo, hmin, hmax, n_nonfinite, klo, khi);                             \
    }

NEUROMFA_TEST_BUILD(base, )
NEUROMFA_TEST_BUILD(avx2, __attribute__((target("avx2"))))
#undef NEUROMFA_TEST_BUILD

bool same(const void* a, const void* b, std::size_t bytes) { return std::memcmp(a, b, bytes) == 0; }
bool same(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && same(a.data(), b.data(), a.size() * sizeof(double));
}

void test_exp_and_sums(std::mt19937_64& rng) {
    std::uniform_real_distribution<double> U(0, 1);
    std::normal_distribution<double> N(0, 1);
    for (int trial = 0; trial < 400; ++trial) {
        where = "exp/sums trial " + std::to_string(trial);
        const std::uint32_t n = static_cast<std::uint32_t>(U(rng) * 300), i0 = n ? static_cast<std::uint32_t>(U(rng) * n) : 0;
        const double k = std::pow(10.0, -2 + 6 * U(rng));  // 0.01 .. 1e4: |k x| past 700 too
        std::vector<double> x(n), c(n), v(n), m(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            x[i] = -std::fabs(N(rng)) * (trial % 5 == 0 ? 1.0 : 0.05), m[i] = x[i];
            c[i] = std::floor(U(rng) * 1000), v[i] = U(rng) < 0.2 ? 0.0 : 1e-4 * U(rng);
        }
        if (n > 3 && trial % 17 == 0) x[n / 2] = std::nan("");
        std::vector<double> ea(n, -1), eb(n, -1), xa(n), xb(n), ga(n), gb(n);
        base_exp_k(k, x.data(), ea.data(), i0, n), avx2_exp_k(k, x.data(), eb.data(), i0, n);
        CHECK(same(ea, eb));
        double a[3] = {1, 2, 3}, b[3] = {1, 2, 3};
        base_gauss_sums(k, m.data(), c.data(), v.data(), n, xa.data(), ga.data(), a[0], a[1], a[2]);
        avx2_gauss_sums(k, m.data(), c.data(), v.data(), n, xb.data(), gb.data(), b[0], b[1], b[2]);
        CHECK(same(a, b, sizeof a) && same(ga, gb));
        const std::uint32_t f1 = n & ~3u;
        base_row_sums(c.data(), ea.data(), x.data(), v.data(), 0, f1, a[0], a[1], a[2]);
        avx2_row_sums(c.data(), ea.data(), x.data(), v.data(), 0, f1, b[0], b[1], b[2]);
        CHECK(same(a, b, sizeof a));
    }
}

// A count table of kind's patterns (both signs) over a random span, with zeros and inf/NaN at times.
std::vector<std::uint32_t> random_table(std::mt19937_64& rng, const Geometry& g, int trial, std::uint32_t& seen) {
    std::uniform_int_distribution<std::uint32_t> pat(1, g.top - 1);
    std::uint32_t a = pat(rng), b = pat(rng);
    if (a > b) std::swap(a, b);
    if (trial % 3 == 0) b = std::min(g.top - 1, a + 40);  // narrow spans too
    std::vector<std::uint32_t> t(65536, 0);
    std::uniform_int_distribution<std::uint32_t> in(a, b), count(1, 5000);
    seen = 0;
    for (int i = 0, n = 1 + static_cast<int>(rng() % 3000); i < n; ++i) {
        const std::uint32_t h = in(rng);
        t[h | (rng() % 2 ? 0x8000u : 0u)] += count(rng), seen |= h;
    }
    if (trial % 7 == 0) t[g.top + 1] = 3, seen |= g.top + 1;  // a NaN pattern
    return t;
}

void test_table_scan_and_span_pass(std::mt19937_64& rng) {
    for (int trial = 0; trial < 300; ++trial) {
        where = "span trial " + std::to_string(trial);
        const WeightKind kind = trial % 2 ? WeightKind::bf16 : WeightKind::f16;
        const Geometry g(kind);
        std::uint32_t seen;
        std::vector<std::uint32_t> ta = random_table(rng, g, trial, seen), tb = ta;
        const double lo = 1.0 / 150.0, *v = half_values(kind).data();
        std::uint32_t ha[4], hb[4];
        std::int64_t na, nb;
        base_table_scan(ta.data(), g.top, seen, v, lo, ha[0], ha[1], na, ha[2], ha[3]);
        avx2_table_scan(tb.data(), g.top, seen, v, lo, hb[0], hb[1], nb, hb[2], hb[3]);
        CHECK(ha[0] == hb[0] && na == nb && ta == tb);
        if (ha[0] >= g.top) continue;
        CHECK(same(ha, hb, sizeof ha));
        const std::uint32_t rb = ha[0] / g.W, re = ha[1] / g.W, nr = re - rb + 1;
        std::vector<double> cba(nr * g.W), cbb(nr * g.W), pa(32768, 1.0), pb(32768, 1.0), ra(3 * nr), rbv(3 * nr);
        auto pass = [&](std::vector<double>& cb, std::vector<double>& pooled, std::vector<double>& r) {
            SpanPass p;
            p.ml = &mantissa_logs(g.mbits), p.mbits = g.mbits, p.bias = g.bias;
            p.W = g.W, p.rb = rb, p.re = re, p.base = rb * g.W, p.klo = ha[2], p.khi = ha[3];
            const bool fit = trial % 4 != 0;
            p.cb = fit ? cb.data() : nullptr, p.pooled = fit ? pooled.data() : nullptr;
            p.r0 = r.data(), p.r1 = r.data() + nr, p.r2 = r.data() + 2 * nr;
            return p;
        };
        SpanSums sa, sb;
        base_span_pass(ta.data(), pass(cba, pa, ra), sa);
        avx2_span_pass(tb.data(), pass(cbb, pb, rbv), sb);
        CHECK(same(&sa, &sb, sizeof sa) && same(cba, cbb) && same(pa, pb) && same(ra, rbv) && ta == tb);
    }
}
#endif

}  // namespace

int main() {
#if NEUROMFA_TEST_AVX2
    if (!__builtin_cpu_supports("avx2")) {
        std::puts("test_clones: skipped (this processor has no AVX2)");
        return 77;
    }
    std::mt19937_64 rng(13);
    test_exp_and_sums(rng);
    test_table_scan_and_span_pass(rng);
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::puts("test_clones: the AVX2 and baseline builds gave the same bits");
    return 0;
#else
    std::puts("test_clones: skipped (not x86-64: one build of each loop)");
    return 77;
#endif
}
