// Node fractal dimension (SPEC section 5): per node, the least-squares slope of ln c(r)
// against ln r over the node's own distinct rounded distances r, c(r) = 1 + #{d <= r}.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/partition.hpp"

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

}  // namespace neuromfa
