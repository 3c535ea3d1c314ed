// Deterministic randomized stress test of the C++ paths Python reaches (onehop_boxes and
// log_partition), meant to run under AddressSanitizer + UBSan (ci/sanitize.sh) as well as in a
// plain build.  Fixed seeds, a few seconds.  Every case is checked against a slow, obvious
// re-implementation of docs/spec.md section 2 written here, and against the invariants Z_0(r) = n and
// Z_q(D) = n; results must be bitwise identical for 1, 2 and 8 threads; bad input must raise
// std::invalid_argument, never crash.
//
// Usage: test_fuzz [rounds]   (default 300 rounds; NEUROMFA_FUZZ_ROUNDS overrides)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "neuromfa/onehop.hpp"
#include "neuromfa/partition.hpp"

using namespace neuromfa;

using neuromfa_test::failures;
using neuromfa_test::throws_invalid;
using neuromfa_test::where;

// ---------------------------------------------------------------------------- the slow reference
// Widening of a binary16 pattern written independently of distance.hpp.
static double ref_half(std::uint16_t h) {
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
    if (e == 0) return sign * m * std::pow(2.0, -24);
    return sign * (1.0 + m / 1024.0) * std::pow(2.0, e - 15);
}

struct Case {
    std::vector<std::int64_t> src;
    std::vector<double> w64;
    std::vector<float> w32;
    std::vector<std::uint16_t> w16;
    WeightKind kind = WeightKind::f64;
    double threshold = 150.0;
    int decimals = 0;
    std::int64_t min_edges = 11;

    double weight(std::size_t e) const {
        switch (kind) {
            case WeightKind::f64: return w64[e];
            case WeightKind::f32: return static_cast<double>(w32[e]);
            default: return ref_half(w16[e]);
        }
    }
    WeightView view() const {
        switch (kind) {
            case WeightKind::f64: return {w64.data(), kind};
            case WeightKind::f32: return {w32.data(), kind};
            default: return {w16.data(), kind};
        }
    }
    std::int64_t n() const { return static_cast<std::int64_t>(src.size()); }
};

// Key of a distance, numpy style: rint(d * 10^dec) (or d / 10^-dec), half to even.
static double ref_factor(int dec) {
    double f = 1.0;
    for (int i = 0; i < std::abs(dec); ++i) f *= 10.0;
    return f;
}

struct RefHist {
    std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> boxes;  // centre -> key -> count
    std::int64_t n_sources = 0, n_distances = 0;
};

static RefHist ref_onehop(const Case& c) {
    std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> all;
    RefHist r;
    const double f = ref_factor(c.decimals);
    for (std::size_t e = 0; e < c.src.size(); ++e) {
        const double w = c.weight(e);
        const double d = 1.0 / std::fabs(w);
        if (!(d > 1.0 && d <= c.threshold)) continue;
        const double k = std::nearbyint(c.decimals >= 0 ? d * f : d / f);
        ++all[c.src[e]][static_cast<std::int64_t>(k)];
        ++r.n_distances;
    }
    r.n_sources = static_cast<std::int64_t>(all.size());
    for (auto& kv : all) {
        std::int64_t deg = 0;
        for (auto& kc : kv.second) deg += kc.second;
        if (deg >= c.min_edges) r.boxes[kv.first] = kv.second;
    }
    return r;
}

static bool same_histogram(const BoxHistogram& h, const RefHist& r) {
    if (h.n_sources != r.n_sources || h.n_distances != r.n_distances) return false;
    if (h.centre.size() != r.boxes.size() || h.indptr.size() != r.boxes.size() + 1) return false;
    if (h.indptr[0] != 0 || h.key.size() != h.count.size() || h.indptr.back() != static_cast<std::int64_t>(h.key.size()))
        return false;
    std::size_t c = 0;
    for (const auto& kv : r.boxes) {
        if (h.centre[c] != kv.first) return false;
        std::int64_t p = h.indptr[c];
        if (h.indptr[c + 1] - p != static_cast<std::int64_t>(kv.second.size())) return false;
        for (const auto& kc : kv.second) {
            if (h.key[p] != kc.first || h.count[p] != kc.second) return false;
            ++p;
        }
        ++c;
    }
    return true;
}

static bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

static bool same_histogram(const BoxHistogram& a, const BoxHistogram& b) {
    return a.centre == b.centre && a.indptr == b.indptr && a.key == b.key && a.count == b.count &&
           a.n_sources == b.n_sources && a.n_distances == b.n_distances;
}

// ln Z_q(r) by a direct log-sum-exp over centres (long double), the yardstick for log_partition.
// The invariants Z_0(r) = n and Z_q(D) = n are checked on every moment; the log-sum-exp on as
// many moments as a budget of centre x radius terms allows (always the first and the last).
static void check_partition_against_reference(const BoxHistogram& h, const Partition& p, const std::vector<double>& q,
                                              const Rounding& rounding, double budget = 2e5) {
    const std::size_t nc = h.centre.size(), nr = p.radius_key.size(), nq = q.size();
    CHECK(p.n_centres == static_cast<std::int64_t>(nc));
    CHECK(p.log_z.size() == nq * nr);
    std::vector<std::int64_t> rk(h.key.begin(), h.key.end());
    std::sort(rk.begin(), rk.end());
    rk.erase(std::unique(rk.begin(), rk.end()), rk.end());
    CHECK(rk == p.radius_key);
    for (std::size_t r = 0; r < nr && r < p.radius.size(); ++r) CHECK(p.radius[r] == rounding.value(rk[r]));
    if (rk != p.radius_key || p.log_z.size() != nq * nr) return;
    const double ln_n = std::log(static_cast<double>(nc));
    for (std::size_t k = 0; k < nq; ++k) {
        for (std::size_t r = 0; r < nr; ++r) CHECK(std::isfinite(p.log_z[k * nr + r]));
        if (q[k] == 0.0)  // Z_0(r) = number of centres, at every radius
            for (std::size_t r = 0; r < nr; ++r) CHECK(std::fabs(p.log_z[k * nr + r] - ln_n) < 1e-12);
        // Z_q(D) = number of centres for every q
        CHECK(std::fabs(p.log_z[k * nr + nr - 1] - ln_n) <= 1e-9 * std::max(1.0, ln_n));
    }
    // The log-sum-exp on a subset of radii (every few, and D) and moments (every few, and the
    // first and last), within the budget.  L_c(r) = ln N_c(r) - ln N_c(D), N_c(r) = 1 + #{d <= r}.
    std::vector<std::size_t> rsel;
    const std::size_t rstride = std::max<std::size_t>(1, nr / 12);
    for (std::size_t r = 0; r < nr; r += rstride) rsel.push_back(r);
    if (rsel.back() != nr - 1) rsel.push_back(nr - 1);
    const double per_q = static_cast<double>(nc) * static_cast<double>(rsel.size());
    const std::size_t step = std::max<std::size_t>(1, static_cast<std::size_t>(per_q * nq / budget));
    std::vector<double> L(nc * rsel.size());
    for (std::size_t c = 0; c < nc; ++c) {
        std::int64_t total = 1;
        for (std::int64_t i = h.indptr[c]; i < h.indptr[c + 1]; ++i) total += h.count[i];
        std::int64_t mass = 1, i = h.indptr[c];
        for (std::size_t j = 0; j < rsel.size(); ++j) {
            while (i < h.indptr[c + 1] && h.key[i] <= rk[rsel[j]]) mass += h.count[i++];
            L[c * rsel.size() + j] = std::log(static_cast<double>(mass)) - std::log(static_cast<double>(total));
        }
    }
    for (std::size_t k = 0; k < nq; ++k) {
        if (k % step != 0 && k + 1 != nq) continue;
        for (std::size_t j = 0; j < rsel.size(); ++j) {
            double mx = -std::numeric_limits<double>::infinity();
            for (std::size_t c = 0; c < nc; ++c) mx = std::max(mx, q[k] * L[c * rsel.size() + j]);
            long double s = 0;
            for (std::size_t c = 0; c < nc; ++c) s += std::exp(q[k] * L[c * rsel.size() + j] - mx);
            const double want = mx + static_cast<double>(std::log(s));
            const double got = p.log_z[k * nr + rsel[j]];
            const double tol = 1e-9 * std::max(1.0, std::fabs(want));
            if (!(std::fabs(got - want) <= tol)) {
                CHECK(std::fabs(got - want) <= tol);
                std::fprintf(stderr, "  q=%.17g r=%zu got %.17g want %.17g\n", q[k], rsel[j], got, want);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------- generators
struct Gen {
    std::mt19937_64 g;
    explicit Gen(std::uint64_t seed) : g(seed) {}
    std::int64_t uni(std::int64_t lo, std::int64_t hi) {  // inclusive
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(g);
    }
    double real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
    bool coin(double p) { return real(0.0, 1.0) < p; }
};

// A weight whose distance lands in interesting places: inside the filter, on its boundaries
// (|w| = 1, |w| = 1/threshold), just outside, zero, tiny, huge, negative; with ties.
static double random_weight(Gen& g, double threshold) {
    const int pick = static_cast<int>(g.uni(0, 19));
    const double s = g.coin(0.5) ? -1.0 : 1.0;
    switch (pick) {
        case 0: return 0.0;
        case 1: return s * 1.0;
        case 2: return s / threshold;
        case 3: return s * std::nextafter(1.0 / threshold, 0.0);
        case 4: return s * std::nextafter(1.0, 0.0);
        case 5: return s * g.real(1.0, 10.0);
        case 6: return s * g.real(0.0, 1e-6);
        case 7: return s / (g.uni(2, 40) + 0.5);  // distance exactly on a .5: round half to even
        case 8: return s * 0.05;                  // many equal weights
        default: return s / g.real(1.0, threshold * 1.02);
    }
}

static std::uint16_t random_half(Gen& g, bool allow_special) {
    const int pick = static_cast<int>(g.uni(0, 15));
    if (allow_special && pick == 0) {
        static const std::uint16_t special[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe00, 0xffff};
        return special[g.uni(0, 5)];
    }
    switch (pick) {
        case 1: return static_cast<std::uint16_t>(g.uni(0, 0x3ff) | (g.coin(0.5) ? 0x8000 : 0));  // subnormal / zero
        case 2: return static_cast<std::uint16_t>(g.uni(0x3c00, 0x7bff));                          // |w| >= 1
        case 3: return 0x8000;                                                                      // -0
        default: return static_cast<std::uint16_t>(g.uni(0x1c00, 0x3bff) | (g.coin(0.5) ? 0x8000 : 0));  // kept range
    }
}

enum class IdShape { small, spread, huge, single };

static Case random_case(Gen& g, IdShape shape, WeightKind kind, std::int64_t n_edges) {
    Case c;
    c.kind = kind;
    const int tpick = static_cast<int>(g.uni(0, 5));
    c.threshold = tpick == 0 ? 150.0 : tpick == 1 ? std::nextafter(1.0, 2.0) * 1.5 : tpick == 2 ? 1e4 : g.real(1.5, 400.0);
    c.decimals = static_cast<int>(g.uni(-2, 3));
    if (c.threshold * ref_factor(c.decimals) > 1e7) c.decimals = std::min(c.decimals, 1);  // keep the dense table sane
    c.min_edges = g.uni(0, 3) == 0 ? 1 : g.uni(1, 15);
    const std::int64_t n_nodes = std::max<std::int64_t>(1, g.uni(1, std::max<std::int64_t>(1, n_edges / 8)));
    std::vector<std::int64_t> ids(static_cast<std::size_t>(n_nodes));
    for (std::int64_t i = 0; i < n_nodes; ++i) {
        switch (shape) {
            case IdShape::small: ids[i] = i; break;
            case IdShape::spread: ids[i] = g.uni(0, 1 << 22); break;
            case IdShape::huge: ids[i] = g.uni(0, (std::int64_t{1} << 62)); break;
            case IdShape::single: ids[i] = 7; break;
        }
    }
    if (shape == IdShape::huge && g.coin(0.5)) ids[0] = std::numeric_limits<std::int64_t>::max();
    for (std::int64_t e = 0; e < n_edges; ++e) {
        // duplicates (same source, same weight) on purpose; self-loops are meaningless for one-hop
        // boxes but the dst side is not an input here, so sources repeat freely.
        if (e > 0 && g.coin(0.05)) {
            c.src.push_back(c.src.back());
        } else {
            c.src.push_back(ids[static_cast<std::size_t>(g.uni(0, n_nodes - 1))]);
        }
        switch (kind) {
            case WeightKind::f64: c.w64.push_back(e > 0 && g.coin(0.05) ? c.w64.back() : random_weight(g, c.threshold)); break;
            case WeightKind::f32: c.w32.push_back(static_cast<float>(random_weight(g, c.threshold))); break;
            default: c.w16.push_back(random_half(g, false));
        }
    }
    return c;
}

static std::vector<double> random_q(Gen& g) {
    std::vector<double> q;
    const int pick = static_cast<int>(g.uni(0, 4));
    if (pick == 0) {
        for (int k = -30; k <= 30; ++k) q.push_back(k / 10.0);  // the reference moments
    } else if (pick == 1) {
        q = {-300.0, -50.0, -3.0, 0.0, 3.0, 50.0, 300.0};  // extreme moments: the per-radius fallback
    } else if (pick == 2) {
        q = {0.0};
    } else {
        const int n = static_cast<int>(g.uni(1, 12));
        for (int i = 0; i < n; ++i) q.push_back(g.coin(0.2) ? g.real(-300, 300) : g.real(-5, 5));
        if (g.coin(0.5)) q.push_back(0.0);
        std::sort(q.begin(), q.end());
        if (g.coin(0.3) && !q.empty()) q.push_back(q.back());  // a repeated moment is allowed in the core
    }
    return q;
}

static const char* kind_name(WeightKind k) {
    return k == WeightKind::f64 ? "f64" : k == WeightKind::f32 ? "f32" : k == WeightKind::f16 ? "f16" : "bf16";
}
static const char* shape_name(IdShape s) {
    return s == IdShape::small ? "small" : s == IdShape::spread ? "spread" : s == IdShape::huge ? "huge" : "single";
}

// ---------------------------------------------------------------------------- the fuzz rounds
static void fuzz_round(std::uint64_t seed) {
    Gen g(seed);
    const IdShape shape = static_cast<IdShape>(g.uni(0, 3));
    const WeightKind kind = static_cast<WeightKind>(g.uni(0, 2));  // f64, f32, f16 (bf16: see below)
    const std::int64_t n = g.coin(0.1) ? g.uni(0, 3) : g.uni(1, g.coin(0.1) ? 60000 : 3000);
    Case c = random_case(g, shape, kind, n);
    char buf[200];
    std::snprintf(buf, sizeof buf, "seed=%llu ids=%s weights=%s n=%lld T=%.17g dec=%d min_edges=%lld",
                  static_cast<unsigned long long>(seed), shape_name(shape), kind_name(kind),
                  static_cast<long long>(n), c.threshold, c.decimals, static_cast<long long>(c.min_edges));
    where = buf;

    const DistanceFilter filter(c.threshold, c.decimals);
    const RefHist ref = ref_onehop(c);
    BoxHistogram h1 = onehop_boxes(c.src.data(), c.view(), c.n(), filter, c.min_edges, 1);
    CHECK(same_histogram(h1, ref));
    for (int t : {2, 8}) {
        const BoxHistogram ht = onehop_boxes(c.src.data(), c.view(), c.n(), filter, c.min_edges, t);
        CHECK(same_histogram(h1, ht));
    }

    const std::vector<double> q = random_q(g);
    const HistogramView v{h1.indptr.data(), h1.key.data(), h1.count.data(), static_cast<std::int64_t>(h1.centre.size())};
    if (h1.centre.empty()) {
        CHECK(throws_invalid([&] { log_partition(v, filter.rounding(), q, 2); }));
        return;
    }
    const Partition p1 = log_partition(v, filter.rounding(), q, 1);
    check_partition_against_reference(h1, p1, q, filter.rounding());
    for (int t : {2, 8}) {
        const Partition pt = log_partition(v, filter.rounding(), q, t);
        CHECK(same_bits(p1.log_z, pt.log_z));
        CHECK(p1.radius_key == pt.radius_key && p1.max_mass == pt.max_mass);
    }
}

// The same graph through both grouping paths: the dense (source x key) table for small ids and
// the counting sort for ids spread up to 2^62 give the same histograms (centres relabelled).
static void fuzz_paths_agree(std::uint64_t seed) {
    Gen g(seed);
    const WeightKind kind = static_cast<WeightKind>(g.uni(0, 2));
    Case small = random_case(g, IdShape::small, kind, g.uni(1, 20000));
    Case big = small;
    const std::int64_t stride = g.coin(0.5) ? 1000000007LL : (std::int64_t{1} << 40) + 3;
    const std::int64_t base = g.uni(0, 1 << 20);
    for (auto& s : big.src) s = base + s * stride;  // monotone relabelling, up to ~2^62
    where = "paths seed=" + std::to_string(seed);
    const DistanceFilter filter(small.threshold, small.decimals);
    const BoxHistogram a = onehop_boxes(small.src.data(), small.view(), small.n(), filter, small.min_edges, 2);
    const BoxHistogram b = onehop_boxes(big.src.data(), big.view(), big.n(), filter, big.min_edges, 8);
    CHECK(a.indptr == b.indptr && a.key == b.key && a.count == b.count);
    CHECK(a.n_sources == b.n_sources && a.n_distances == b.n_distances);
    CHECK(a.centre.size() == b.centre.size());
    for (std::size_t i = 0; i < a.centre.size() && i < b.centre.size(); ++i) CHECK(base + a.centre[i] * stride == b.centre[i]);
}

// Every float16 and bfloat16 bit pattern once per source: NaN/Inf must be reported as an error
// naming the first bad edge; without them the histogram matches the reference.
static void fuzz_all_half_patterns() {
    for (bool bf : {false, true}) {
        where = bf ? "all bf16 patterns" : "all f16 patterns";
        std::vector<std::int64_t> src(65536);
        std::vector<std::uint16_t> w(65536);
        for (std::uint32_t i = 0; i < 65536; ++i) src[i] = i % 97, w[i] = static_cast<std::uint16_t>(i);
        const DistanceFilter filter(150.0, 1);
        const WeightView view{w.data(), bf ? WeightKind::bf16 : WeightKind::f16};
        for (int t : {1, 2, 8}) {
            try {
                onehop_boxes(src.data(), view, 65536, filter, 1, t);
                CHECK(false);  // must throw: the patterns include Inf and NaN
            } catch (const std::invalid_argument& e) {
                const std::string want = bf ? "weight of edge 32640 " : "weight of edge 31744 ";  // +Inf
                CHECK(std::string(e.what()).find(want) == 0);
            }
        }
        // drop the non-finite patterns and compare with the reference (f16 only: the reference
        // widening is binary16)
        std::vector<std::int64_t> s2;
        std::vector<std::uint16_t> w2;
        for (std::uint32_t i = 0; i < 65536; ++i) {
            const bool finite = bf ? ((i & 0x7f80) != 0x7f80) : ((i & 0x7c00) != 0x7c00);
            if (finite) s2.push_back(src[i]), w2.push_back(w[i]);
        }
        const WeightView v2{w2.data(), bf ? WeightKind::bf16 : WeightKind::f16};
        const BoxHistogram h1 = onehop_boxes(s2.data(), v2, static_cast<std::int64_t>(s2.size()), filter, 1, 1);
        const BoxHistogram h8 = onehop_boxes(s2.data(), v2, static_cast<std::int64_t>(s2.size()), filter, 1, 8);
        CHECK(same_histogram(h1, h8));
        if (!bf) {
            Case c;
            c.src = s2;
            c.w16 = w2;
            c.kind = WeightKind::f16;
            c.threshold = 150.0;
            c.decimals = 1;
            c.min_edges = 1;
            CHECK(same_histogram(h1, ref_onehop(c)));
        }
    }
}

static void fuzz_bad_inputs(std::uint64_t seed) {
    Gen g(seed);
    where = "bad inputs seed=" + std::to_string(seed);
    const DistanceFilter filter(150.0, 0);
    // a negative id anywhere, or a NaN/Inf weight anywhere, on both grouping paths
    for (int rep = 0; rep < 20; ++rep) {
        const std::int64_t n = g.uni(1, 5000);
        const bool huge = g.coin(0.5);
        std::vector<std::int64_t> src(n);
        std::vector<double> w(n);
        for (std::int64_t e = 0; e < n; ++e) {
            src[e] = huge ? g.uni(0, std::int64_t{1} << 62) : g.uni(0, 50);
            w[e] = 1.0 / g.real(1.0, 200.0);
        }
        std::vector<std::int64_t> bad_src = src;
        bad_src[g.uni(0, n - 1)] = g.coin(0.5) ? -1 : std::numeric_limits<std::int64_t>::min();
        std::vector<double> bad_w = w;
        const double specials[] = {std::nan(""), std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity()};
        const std::int64_t at = g.uni(0, n - 1);
        bad_w[at] = specials[g.uni(0, 2)];
        std::vector<float> bad_w32(bad_w.begin(), bad_w.end());
        for (int t : {1, 2, 8}) {
            CHECK(throws_invalid([&] { onehop_boxes(bad_src.data(), {w.data(), WeightKind::f64}, n, filter, 1, t); }));
            try {
                onehop_boxes(src.data(), {bad_w.data(), WeightKind::f64}, n, filter, 1, t);
                CHECK(false);
            } catch (const std::invalid_argument& e) {  // the first bad edge, whatever the thread count
                CHECK(std::string(e.what()) == "weight of edge " + std::to_string(at) + " is NaN or infinite");
            }
            CHECK(throws_invalid([&] { onehop_boxes(src.data(), {bad_w32.data(), WeightKind::f32}, n, filter, 1, t); }));
        }
        CHECK(throws_invalid([&] { onehop_boxes(src.data(), {w.data(), WeightKind::f64}, -1, filter, 1, 1); }));
        CHECK(throws_invalid([&] { onehop_boxes(src.data(), {w.data(), WeightKind::f64}, n, filter, -1, 1); }));
    }
    // empty input: an empty histogram, and log_partition refuses it
    {
        const BoxHistogram h = onehop_boxes(nullptr, {nullptr, WeightKind::f64}, 0, filter, 1, 8);
        CHECK(h.centre.empty() && h.indptr.size() == 1 && h.n_sources == 0 && h.n_distances == 0);
        const HistogramView v{h.indptr.data(), h.key.data(), h.count.data(), 0};
        CHECK(throws_invalid([&] { log_partition(v, filter.rounding(), {0.0, 1.0}, 2); }));
    }
    // filter parameters
    for (double t : {1.0, 0.5, -3.0, std::nan(""), std::numeric_limits<double>::infinity(), 1e300})
        CHECK(throws_invalid([&] { DistanceFilter bad(t, 0); }));
    CHECK(throws_invalid([] { DistanceFilter bad(150.0, 16); }));
    CHECK(throws_invalid([] { DistanceFilter bad(150.0, -16); }));
    CHECK(throws_invalid([] { DistanceFilter bad(1e8, 10); }));  // keys beyond exact doubles
    // moments and malformed histograms (all reads stay inside the arrays given)
    std::vector<std::int64_t> indptr{0, 2, 3}, key{2, 5, 4}, count{1, 3, 2};
    const HistogramView ok{indptr.data(), key.data(), count.data(), 2};
    CHECK(throws_invalid([&] { log_partition(ok, filter.rounding(), {}, 1); }));
    CHECK(throws_invalid([&] { log_partition(ok, filter.rounding(), {0.0, std::nan("")}, 1); }));
    CHECK(throws_invalid([&] { log_partition(ok, filter.rounding(), {std::numeric_limits<double>::infinity()}, 1); }));
    std::vector<std::int64_t> k_desc{5, 2, 4}, k_neg{-1, 2, 4}, c_zero{1, 0, 2}, ip_bad0{1, 2, 3}, ip_desc{0, 2, 1};
    CHECK(throws_invalid([&] { log_partition({indptr.data(), k_desc.data(), count.data(), 2}, filter.rounding(), {1.0}, 2); }));
    CHECK(throws_invalid([&] { log_partition({indptr.data(), k_neg.data(), count.data(), 2}, filter.rounding(), {1.0}, 2); }));
    CHECK(throws_invalid([&] { log_partition({indptr.data(), key.data(), c_zero.data(), 2}, filter.rounding(), {1.0}, 2); }));
    CHECK(throws_invalid([&] { log_partition({ip_bad0.data(), key.data(), count.data(), 2}, filter.rounding(), {1.0}, 2); }));
    CHECK(throws_invalid([&] { log_partition({ip_desc.data(), key.data(), count.data(), 2}, filter.rounding(), {1.0}, 2); }));
    // centres whose boxes hold no distance: nothing to fit
    std::vector<std::int64_t> ip_empty{0, 0, 0};
    CHECK(throws_invalid([&] { log_partition({ip_empty.data(), key.data(), count.data(), 2}, filter.rounding(), {1.0}, 2); }));
}

// Regression: the kernel once chained t(q_k) from a subnormal t(q_{k-1}) (|q| * ln(max mass)
// beyond ~708), losing up to 1e-2 relative accuracy.  Two evenly spaced moments q0 < q1 < 0 with
// |q0| * ln(max mass) in the subnormal range and |q1| * ln(max mass) = 640 (small enough that
// its sums do not underflow, so no per-radius fallback hides the error): q1 must be evaluated
// directly, and Z_q1(D) = n holds to 1e-9.  Bitwise equal for 1, 2 and 8 threads.
static void regression_subnormal_chain() {
    BoxHistogram h;
    h.indptr.push_back(0);
    auto add_centre = [&](std::int64_t id, const std::vector<std::int64_t>& keys, std::int64_t count) {
        h.centre.push_back(id);
        for (std::int64_t k : keys) h.key.push_back(k), h.count.push_back(count);
        h.indptr.push_back(static_cast<std::int64_t>(h.key.size()));
    };
    std::vector<std::int64_t> all;
    for (std::int64_t k = 2; k <= 150; ++k) all.push_back(k);
    add_centre(0, all, 20);
    for (std::int64_t c = 1; c < 16; ++c) add_centre(c, {2 + c, 9 + 3 * c, 140}, 1 + c % 4);
    const Rounding rounding(0);
    const HistogramView v{h.indptr.data(), h.key.data(), h.count.data(), static_cast<std::int64_t>(h.centre.size())};
    const double ln_max = std::log(2981.0);
    for (double a : {712.0, 725.0, 740.0}) {
        where = "subnormal chain |q0| ln(max mass) = " + std::to_string(a);
        const std::vector<double> q{-a / ln_max, -640.0 / ln_max};
        const Partition p1 = log_partition(v, rounding, q, 1);
        CHECK(p1.max_mass == 2981);
        check_partition_against_reference(h, p1, q, rounding);
        for (int t : {2, 8}) CHECK(same_bits(p1.log_z, log_partition(v, rounding, q, t).log_z));
    }
}

// A few large, heavy-tailed cases: many threads, many blocks, centres with huge degree.
static void stress_large(std::uint64_t seed) {
    Gen g(seed);
    where = "large seed=" + std::to_string(seed);
    const std::int64_t n = 400000;
    Case c;
    c.kind = WeightKind::f32;
    c.min_edges = 11;
    for (std::int64_t e = 0; e < n; ++e) {
        // a power-law-ish source distribution: a few hubs, a long tail
        const double u = g.real(0.0, 1.0);
        c.src.push_back(static_cast<std::int64_t>(std::pow(u, 4.0) * 20000.0));
        c.w32.push_back(static_cast<float>(std::normal_distribution<double>(0.0, 0.03)(g.g)));
    }
    const DistanceFilter filter(c.threshold, c.decimals);
    const BoxHistogram h1 = onehop_boxes(c.src.data(), c.view(), n, filter, c.min_edges, 1);
    const BoxHistogram h8 = onehop_boxes(c.src.data(), c.view(), n, filter, c.min_edges, 8);
    CHECK(same_histogram(h1, h8));
    CHECK(same_histogram(h1, ref_onehop(c)));
    std::vector<double> q;
    for (int k = -30; k <= 30; ++k) q.push_back(k / 10.0);
    q.insert(q.begin(), -300.0);
    q.push_back(300.0);
    const HistogramView v{h1.indptr.data(), h1.key.data(), h1.count.data(), static_cast<std::int64_t>(h1.centre.size())};
    const Partition p1 = log_partition(v, filter.rounding(), q, 1);
    const Partition p2 = log_partition(v, filter.rounding(), q, 2);
    const Partition p8 = log_partition(v, filter.rounding(), q, 8);
    CHECK(same_bits(p1.log_z, p2.log_z) && same_bits(p1.log_z, p8.log_z));
    check_partition_against_reference(h1, p1, q, filter.rounding());
}

int main(int argc, char** argv) {
    long rounds = 300;
    if (const char* env = std::getenv("NEUROMFA_FUZZ_ROUNDS")) rounds = std::atol(env);
    if (argc > 1) rounds = std::atol(argv[1]);
    for (long s = 0; s < rounds; ++s) fuzz_round(1000 + static_cast<std::uint64_t>(s));
    for (long s = 0; s < rounds / 10 + 1; ++s) fuzz_paths_agree(5000 + static_cast<std::uint64_t>(s));
    fuzz_all_half_patterns();
    for (std::uint64_t s = 0; s < 3; ++s) fuzz_bad_inputs(9000 + s);
    regression_subnormal_chain();
    stress_large(42);
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("fuzz: %ld rounds, all checks passed (openmp=%d)\n", rounds, openmp_enabled() ? 1 : 0);
    return 0;
}
