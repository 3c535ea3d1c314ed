// Reading an edge list: the range and validity of its source ids, and the distance key of every
// edge's weight.
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/half_tables.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {
namespace detail {

inline std::string negative_id_message(const char* name, std::int64_t index, std::int64_t value) {
    return std::string(name) + " holds negative node ids (first at index " + std::to_string(index) + ": " +
           std::to_string(value) + ")";
}

struct IdRange {
    std::int64_t min_id = 0, max_id = -1;
};

// Smallest and largest source id; throws for the first (lowest-index) negative id.
inline IdRange id_range(const std::int64_t* src, std::int64_t n, int n_threads) {
    const std::int64_t block = 1 << 16, nb = n_blocks(n, block);
    std::vector<std::int64_t> lo(nb), hi(nb), neg(nb);
    parallel_for(nb, nb >= 4 ? n_threads : 1, [&](std::int64_t b) {
        std::int64_t mn = INT64_MAX, mx = -1, bad = -1;
        for (std::int64_t e = b * block; e < std::min(n, (b + 1) * block); ++e) {
            const std::int64_t v = src[e];
            if (v < 0 && bad < 0) bad = e;
            mn = std::min(mn, v);
            mx = std::max(mx, v);
        }
        lo[b] = mn, hi[b] = mx, neg[b] = bad;
    });
    IdRange r;
    r.min_id = INT64_MAX;
    for (std::int64_t b = 0; b < nb; ++b) {
        if (neg[b] >= 0) throw std::invalid_argument(negative_id_message("src", neg[b], src[neg[b]]));
        r.min_id = std::min(r.min_id, lo[b]);
        r.max_id = std::max(r.max_id, hi[b]);
    }
    if (nb == 0) r.min_id = 0;
    return r;
}

// key[e] for every edge, in parallel; throws on the first (lowest-index) invalid weight.
inline std::vector<std::int64_t> edge_keys(const WeightView& w, std::int64_t n, const DistanceFilter& filter,
                                           int n_threads) {
    std::vector<std::int64_t> keys(static_cast<std::size_t>(n));
    const std::vector<std::int64_t> table = half_key_table(w, filter);
    const std::int64_t block = 1 << 16;
    const int nt = n_blocks(n, block) >= 4 ? n_threads : 1;  // small inputs: stay serial
    parallel_for(n_blocks(n, block), nt, [&](std::int64_t b) {
        const std::int64_t lo = b * block, hi = std::min(n, lo + block);
        w.visit([&](auto p) {
            if constexpr (std::is_same_v<decltype(p), const std::uint16_t*>) {
                for (std::int64_t e = lo; e < hi; ++e) keys[e] = table[p[e]];
            } else {
                for (std::int64_t e = lo; e < hi; ++e) keys[e] = filter.key_of_weight(static_cast<double>(p[e]));
            }
        });
    });
    for (std::int64_t e = 0; e < n; ++e) {
        if (keys[e] == kInvalid)
            throw std::invalid_argument("weight of edge " + std::to_string(e) + " is NaN or infinite");
    }
    return keys;
}

}  // namespace detail
}  // namespace neuromfa
