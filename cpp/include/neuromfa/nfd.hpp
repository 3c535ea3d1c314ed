// Node fractal dimension (SPEC section 5): per node, the least-squares slope of ln c(r)
// against ln r over the node's own distinct rounded distances r, c(r) = 1 + #{d <= r}.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "neuromfa/dense_table.hpp"
#include "neuromfa/distance.hpp"
#include "neuromfa/histogram.hpp"
#include "neuromfa/parallel.hpp"

namespace neuromfa {

// One value per centre of a histogram source (CSR or dense table) built with the NFD filter
// 0 < d <= T_nfd and min_edges = min_distances.  Radii that round to 0 have no logarithm and
// are left out of the fit (their distances still count in c(r) of larger radii); a centre with
// fewer than two usable radii gets 0, like a node with too few distances.
template <class Src>
std::vector<double> node_fractal_dimension(const Src& h, const Rounding& rounding, int n_threads) {
    const std::int64_t n = h.size();
    std::vector<double> out(static_cast<std::size_t>(n), 0.0);
    parallel_for(n_blocks(n, 256), n_threads, [&](std::int64_t b) {
        for (std::int64_t c = b * 256; c < std::min(n, (b + 1) * 256); ++c) {
            double sx = 0, sy = 0, sxx = 0, sxy = 0;
            std::int64_t m = 0, mass = 1;
            h.for_each(c, [&](std::int64_t key, std::int64_t count) {
                mass += count;
                const double r = rounding.value(key);
                if (!(r > 0)) return;
                const double x = std::log(r), y = std::log(static_cast<double>(mass));
                sx += x, sy += y, sxx += x * x, sxy += x * y, ++m;
            });
            if (m < 2) continue;
            const double den = m * sxx - sx * sx;
            if (den > 0) out[c] = (m * sxy - sx * sy) / den;
        }
    });
    return out;
}

// The distance filter of the node fractal dimension: 0 < d <= threshold, integer radii (SPEC 5).
inline DistanceFilter nfd_filter(double threshold) { return DistanceFilter(threshold, 0, 0.0); }

// Node fractal dimensions of an integer-keyed CSR histogram from outside the core (validated).
inline std::vector<double> node_fractal_dimension(const HistogramView& h, int n_threads) {
    validate_histogram(h);
    return node_fractal_dimension(CsrSource{h}, Rounding(0), n_threads);
}

// Node fractal dimensions of the rows of a dense table of n_rows x nfd_filter(threshold).n_keys()
// with at least `min_distances` distances.
struct TableDimensions {
    std::vector<std::int64_t> centre;  // table rows of the kept nodes, ascending
    std::vector<double> dimension;
};

inline TableDimensions table_node_fractal_dimension(const std::uint32_t* table, std::int64_t n_rows, double threshold,
                                                    std::int64_t min_distances, int n_threads) {
    const DistanceFilter filter = nfd_filter(threshold);
    TableSource src = table_source(table, n_rows, filter.n_keys(), filter.min_key(), min_distances, n_threads);
    TableDimensions out;
    out.dimension = node_fractal_dimension(src, filter.rounding(), n_threads);
    out.centre = std::move(src.rows);
    return out;
}

}  // namespace neuromfa
