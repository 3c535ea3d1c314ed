// Unit tests of the header-only core, without Python.  Plain checks (no assert: Release builds
// disable it); exits non-zero on the first failure.  Built only when CMake is the top-level
// project:  cmake -S . -B build-cpp && cmake --build build-cpp && ctest --test-dir build-cpp
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "neuromfa/nfd.hpp"
#include "neuromfa/onehop.hpp"
#include "neuromfa/partition.hpp"
#include "neuromfa/stream.hpp"
#include "neuromfa/weights.hpp"

using namespace neuromfa;

using neuromfa_test::failures;
using neuromfa_test::throws_invalid;
using neuromfa_test::where;

static void test_rounding_is_half_to_even() {
    Rounding r0(0), r1(1), rm1(-1);
    CHECK(r0.key(2.5) == 2.0 && r0.key(3.5) == 4.0 && r0.key(149.5) == 150.0 && r0.key(1.4999) == 1.0);
    CHECK(r1.key(2.25) == 22.0 && r1.value(22) == 2.2);
    CHECK(rm1.key(25.0) == 2.0 && rm1.value(2) == 20.0);
    CHECK(throws_invalid([] { Rounding bad(99); }));
}

static void test_half_widening() {
    CHECK(half_to_double(0x3c00) == 1.0);
    CHECK(half_to_double(0xc000) == -2.0);
    CHECK(half_to_double(0x0001) == std::ldexp(1.0, -24));
    CHECK(std::isinf(half_to_double(0x7c00)) && std::isnan(half_to_double(0x7e00)));
    CHECK(bfloat16_to_double(0x3f80) == 1.0);
}

static void test_filter() {
    DistanceFilter f(150.0, 0);
    CHECK(f.key_of_weight(1.0) == kFiltered);
    CHECK(f.key_of_weight(0.0) == kFiltered);
    CHECK(f.key_of_weight(0.5) == 2);
    CHECK(f.key_of_weight(-0.4) == 2);  // d = 2.5 rounds to 2
    CHECK(f.key_of_weight(std::nan("")) == kInvalid);
    CHECK(throws_invalid([] { DistanceFilter bad(1.0, 0); }));
}

// The vectorised bins equal key_of_weight exactly, boundaries and rounding ties included.
static void test_bins_match_scalar_keys() {
    std::mt19937_64 g(11);
    std::vector<double> w;
    for (double d : {1.0, 1.5, 2.5, 3.5, 149.5, 150.0, 150.5, 0.5}) w.push_back(1.0 / d), w.push_back(-1.0 / d);
    w.push_back(0.0), w.push_back(1e-300), w.push_back(std::nextafter(1.0 / 150.0, 0.0)), w.push_back(2.0);
    std::uniform_real_distribution<double> u(-9.0, 1.0);
    for (int i = 0; i < 200000; ++i) w.push_back((g() & 1 ? -1 : 1) * std::pow(10.0, u(g)));
    for (int dec : {0, 1, 2, -1}) {
        for (double T : {150.0, 1000.0, 3.3}) {
            DistanceFilter f(T, dec);
            const std::int64_t kmin = f.min_key();
            std::vector<std::int32_t> out(w.size());
            CHECK(!f.bins(w.data(), static_cast<std::int64_t>(w.size()), kmin, out.data()));
            std::vector<float> wf(w.begin(), w.end());
            std::vector<std::int32_t> outf(w.size());
            f.bins(wf.data(), static_cast<std::int64_t>(wf.size()), kmin, outf.data());
            for (std::size_t i = 0; i < w.size(); ++i) {
                const std::int64_t k = f.key_of_weight(w[i]), kf = f.key_of_weight(static_cast<double>(wf[i]));
                CHECK(out[i] == (k >= 0 ? k - kmin : -1));
                CHECK(outf[i] == (kf >= 0 ? kf - kmin : -1));
            }
        }
    }
    std::vector<double> nan{0.1, std::nan(""), 0.2};
    std::vector<std::int32_t> o(3);
    CHECK(DistanceFilter(150.0, 0).bins(nan.data(), 3, 1, o.data()));
}

// Both grouping paths (dense table and counting sort) give the same histograms.
static void test_onehop_paths_agree() {
    std::mt19937_64 g(7);
    std::normal_distribution<double> nd(0.0, 0.05);
    const std::int64_t n = 20000;
    std::vector<std::int64_t> small(n), huge(n);
    std::vector<double> w(n);
    for (std::int64_t e = 0; e < n; ++e) {
        small[e] = static_cast<std::int64_t>(g() % 300);
        huge[e] = small[e] * 1000000007LL;  // forces the sparse path
        w[e] = nd(g);
    }
    DistanceFilter f(150.0, 0);
    const BoxHistogram a = onehop_boxes(small.data(), WeightView{w.data(), WeightKind::f64}, n, f, 11, 2);
    const BoxHistogram b = onehop_boxes(huge.data(), WeightView{w.data(), WeightKind::f64}, n, f, 11, 1);
    CHECK(a.indptr == b.indptr && a.key == b.key && a.count == b.count);
    CHECK(a.centre.size() == b.centre.size());
    for (std::size_t c = 0; c < a.centre.size(); ++c) CHECK(a.centre[c] * 1000000007LL == b.centre[c]);
    CHECK(a.n_distances == b.n_distances && a.n_sources == b.n_sources);
}

static void test_partition_invariants_and_threads() {
    std::mt19937_64 g(3);
    std::normal_distribution<double> nd(0.0, 0.03);
    const std::int64_t n = 200000;
    std::vector<std::int64_t> src(n);
    std::vector<double> w(n);
    for (std::int64_t e = 0; e < n; ++e) src[e] = e / 200, w[e] = nd(g);
    DistanceFilter f(150.0, 0);
    const BoxHistogram h = onehop_boxes(src.data(), WeightView{w.data(), WeightKind::f64}, n, f, 11, 2);
    const HistogramView v{h.indptr.data(), h.key.data(), h.count.data(), static_cast<std::int64_t>(h.centre.size())};
    std::vector<double> q;
    for (int k = -30; k <= 30; ++k) q.push_back(k / 10.0);
    const Partition p1 = log_partition(v, f.rounding(), q, 1);
    const Partition p8 = log_partition(v, f.rounding(), q, 8);
    CHECK(p1.log_z == p8.log_z);  // bitwise
    const std::size_t nr = p1.radius.size();
    for (std::size_t r = 0; r < nr; ++r)
        CHECK(std::fabs(p1.log_z[30 * nr + r] - std::log(static_cast<double>(h.centre.size()))) < 1e-12);
    for (std::size_t k = 0; k < q.size(); ++k)
        CHECK(std::fabs(p1.log_z[k * nr + nr - 1] - std::log(static_cast<double>(h.centre.size()))) < 1e-9);
}

// Partition functions read in place from a dense table equal those of its CSR, bit for bit.
static void test_table_partition_equals_csr() {
    std::mt19937_64 g(5);
    std::normal_distribution<float> nd(0.0f, 0.04f);
    const std::int64_t n_out = 300, n_in = 90;
    std::vector<float> w(static_cast<std::size_t>(n_out * n_in));
    for (float& x : w) x = nd(g);
    DistanceFilter f(150.0, 0);
    const std::int64_t nb = f.n_keys();
    std::vector<std::uint32_t> table(static_cast<std::size_t>(n_in * nb), 0);
    CHECK(accumulate_matrix(WeightView{w.data(), WeightKind::f32}, n_out, n_in, table.data(), n_in, 0, f, 2) == -1);
    const BoxHistogram h = table_to_histogram(table.data(), n_in, nb, f.min_key(), 0, 11, 2);
    std::vector<double> q;
    for (int k = -30; k <= 30; ++k) q.push_back(k / 10.0);
    const HistogramView v{h.indptr.data(), h.key.data(), h.count.data(), static_cast<std::int64_t>(h.centre.size())};
    const Partition a = log_partition(v, f.rounding(), q, 1);
    const TableSource src = table_source(table.data(), n_in, nb, f.min_key(), 11, 2);
    const Partition b = log_partition_table(src, f.rounding(), q, 2);
    CHECK(a.log_z == b.log_z && a.radius_key == b.radius_key && a.max_mass == b.max_mass);
    CHECK(src.n_sources == h.n_sources && src.n_distances == h.n_distances);
    const TablePartition t = table_log_partition(table.data(), n_in, f, 11, q, 2);
    CHECK(t.partition.log_z == a.log_z && t.centre == src.rows);
    CHECK(t.n_sources == h.n_sources && t.n_distances == h.n_distances);
    CHECK(node_fractal_dimension(CsrSource{v}, f.rounding(), 1) == node_fractal_dimension(src, f.rounding(), 2));
}

static void test_bad_input() {
    std::vector<std::int64_t> src{0, -1};
    std::vector<double> w{0.1, 0.1};
    DistanceFilter f(150.0, 0);
    CHECK(throws_invalid([&] { onehop_boxes(src.data(), WeightView{w.data(), WeightKind::f64}, 2, f, 1, 1); }));
    std::vector<std::int64_t> ok{0, 0};
    std::vector<double> nanw{0.1, std::nan("")};
    CHECK(throws_invalid([&] { onehop_boxes(ok.data(), WeightView{nanw.data(), WeightKind::f64}, 2, f, 1, 2); }));
    std::vector<std::int64_t> indptr{0, 2}, key{3, 3}, count{1, 1};
    const HistogramView v{indptr.data(), key.data(), count.data(), 1};
    CHECK(throws_invalid([&] { log_partition(v, f.rounding(), {0.0, 1.0}, 1); }));
}

int main() {
    test_rounding_is_half_to_even();
    test_half_widening();
    test_filter();
    test_bins_match_scalar_keys();
    test_onehop_paths_agree();
    test_partition_invariants_and_threads();
    test_table_partition_equals_csr();
    test_bad_input();
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::puts("all core checks passed");
    return 0;
}
