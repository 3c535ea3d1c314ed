// One-hop boxes (SPEC section 2, the reference): the box of a source node holds the distances of
// its out-edges.  Built from an edge list, through a dense (source x key) table when the id range
// is small, else by a counting sort of the edge keys.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "neuromfa/dense_table.hpp"
#include "neuromfa/distance.hpp"
#include "neuromfa/half_tables.hpp"
#include "neuromfa/edge_list.hpp"
#include "neuromfa/histogram.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

namespace detail {

// Counts the keys of the 16-bit weights of edges [lo, hi) into the (source x key) table hp
// (keys: the half_key_table); returns the first NaN/Inf edge, or -1.
inline std::int64_t count_half_block(const std::int64_t* src, const std::uint16_t* p, const std::int64_t* keys,
                                     std::int64_t lo, std::int64_t hi, std::int64_t id0, std::int64_t nb,
                                     std::int64_t kmin, std::uint32_t* hp) {
    std::int64_t first_bad = -1;
    for (std::int64_t e = lo; e < hi; ++e) {
        const std::int64_t k = keys[p[e]];
        if (k >= 0) ++hp[(src[e] - id0) * nb + (k - kmin)];
        else if (k == kInvalid && first_bad < 0) first_bad = e;
    }
    return first_bad;
}

// Dense path: one pass over the edges bins every weight straight into a (source x key) count
// table.  The edge blocks are split into nt fixed, contiguous chunks, each counted into its own
// table; the tables are summed afterwards.  Counts are integers, so the sums (and the result)
// do not depend on the number of chunks.  Every buffer is allocated before the parallel loop.
inline BoxHistogram onehop_dense(const std::int64_t* src, const WeightView& w, std::int64_t n,
                                 const DistanceFilter& filter, std::int64_t min_edges, IdRange ids, int n_threads) {
    const std::int64_t kmin = filter.min_key(), nb = filter.n_keys();
    const std::int64_t n_slots = ids.max_id - ids.min_id + 1, cells = n_slots * nb;
    const std::vector<std::int64_t> half = half_key_table(w, filter);
    const std::int64_t block = 1 << 16, n_blk = n_blocks(n, block);
    // one private table per chunk: cap the chunks so the tables stay within a memory budget
    const std::int64_t budget = std::max<std::int64_t>(std::int64_t(256) << 20, 8 * n);
    const std::int64_t by_memory = std::max<std::int64_t>(1, budget / std::max<std::int64_t>(1, cells * 4));
    const std::int64_t nt =
        n_blk < 4 ? 1 : std::max<std::int64_t>(1, std::min<std::int64_t>({resolve_threads(n_threads), n_blk, by_memory}));
    // Tables left uninitialised here and zeroed inside the loop, by the thread that fills them.
    std::vector<std::unique_ptr<std::uint32_t[]>> hist(static_cast<std::size_t>(nt));
    for (auto& t : hist) t.reset(new std::uint32_t[static_cast<std::size_t>(cells)]);
    std::vector<std::vector<std::int32_t>> bins(static_cast<std::size_t>(w.is_half() ? 0 : nt),
                                                std::vector<std::int32_t>(static_cast<std::size_t>(block)));
    std::vector<std::int64_t> bad(static_cast<std::size_t>(n_blk), -1);
    auto bin_block = [&](std::uint32_t* hp, std::int32_t* bp, std::int64_t b) {
        const std::int64_t lo = b * block, hi = std::min(n, lo + block);
        if (!w.is_half()) {
            // bins of the block first (vectorised), then the increments
            bad[b] = float_bins(w, lo, hi - lo, filter, kmin, bp);
            const std::int64_t* __restrict s = src + lo;
            for (std::int64_t e = 0; e < hi - lo; ++e)
                if (bp[e] >= 0) ++hp[(s[e] - ids.min_id) * nb + bp[e]];
            return;
        }
        bad[b] = count_half_block(src, static_cast<const std::uint16_t*>(w.data), half.data(), lo, hi, ids.min_id, nb,
                                  kmin, hp);
    };
    parallel_for(nt, static_cast<int>(nt), [&](std::int64_t t) {
        std::uint32_t* hp = hist[t].get();
        std::fill(hp, hp + cells, 0u);
        std::int32_t* bp = w.is_half() ? nullptr : bins[t].data();
        for (std::int64_t b = t * n_blk / nt; b < (t + 1) * n_blk / nt; ++b) bin_block(hp, bp, b);
    });
    for (std::int64_t b = 0; b < n_blk; ++b)
        if (bad[b] >= 0) throw std::invalid_argument("weight of edge " + std::to_string(bad[b]) + " is NaN or infinite");
    std::uint32_t* total = hist[0].get();
    parallel_for(n_blocks(cells, 1 << 16), n_threads, [&](std::int64_t b) {
        for (std::int64_t i = b << 16; i < std::min(cells, (b + 1) << 16); ++i)
            for (std::int64_t t = 1; t < nt; ++t) total[i] += hist[t][i];
    });
    for (std::int64_t t = 1; t < nt; ++t) hist[t].reset();
    return table_to_histogram(total, n_slots, nb, kmin, ids.min_id, min_edges, n_threads);
}

}  // namespace detail

// One-hop boxes: the out-edge distances of every source node.  Edges in any order; duplicate
// edges are kept (each is a distance).  A node is a centre when at least `min_edges` of its
// out-edges pass the filter.  Node ids must be >= 0; ids may be sparse and very large.
// When the (source id range x key range) table is small, edges are binned into it directly;
// otherwise keys are grouped by source with a counting sort.
inline BoxHistogram onehop_boxes(const std::int64_t* src, const WeightView& weight, std::int64_t n_edges,
                                 const DistanceFilter& filter, std::int64_t min_edges, int n_threads) {
    if (n_edges < 0) throw std::invalid_argument("n_edges must be >= 0");
    if (min_edges < 0) throw std::invalid_argument("min_edges must be >= 0");
    const detail::IdRange ids = detail::id_range(src, n_edges, n_threads);
    if (n_edges > 0) {
        const double slots = static_cast<double>(ids.max_id) - static_cast<double>(ids.min_id) + 1.0;
        const double cells = slots * static_cast<double>(filter.n_keys());
        if (cells <= std::min<double>(1 << 24, std::max<double>(n_edges, 1 << 18)) && n_edges < (1LL << 32))
            return detail::onehop_dense(src, weight, n_edges, filter, min_edges, ids, n_threads);
    }
    std::vector<std::int64_t> keys = detail::edge_keys(weight, n_edges, filter, n_threads);
    std::int64_t max_id = -1;
    for (std::int64_t e = 0; e < n_edges; ++e)
        if (keys[e] >= 0 && src[e] > max_id) max_id = src[e];

    // Compact ids of nodes that have kept edges: a dense table when ids are small, else sorted ids.
    const bool dense = max_id < std::max<std::int64_t>(4 * n_edges, 1 << 20);
    std::vector<std::int64_t> idlist;  // sparse case: distinct ids, ascending
    if (!dense) {
        for (std::int64_t e = 0; e < n_edges; ++e)
            if (keys[e] >= 0) idlist.push_back(src[e]);
        std::sort(idlist.begin(), idlist.end());
        idlist.erase(std::unique(idlist.begin(), idlist.end()), idlist.end());
    }
    const std::int64_t n_slots = dense ? max_id + 1 : static_cast<std::int64_t>(idlist.size());
    std::vector<std::int64_t> slot(static_cast<std::size_t>(dense ? 0 : n_edges));
    if (!dense) {
        parallel_for(n_blocks(n_edges, 1 << 16), n_threads, [&](std::int64_t b) {
            const std::int64_t lo = b << 16, hi = std::min(n_edges, lo + (1 << 16));
            for (std::int64_t e = lo; e < hi; ++e)
                slot[e] = keys[e] >= 0 ? std::lower_bound(idlist.begin(), idlist.end(), src[e]) - idlist.begin() : -1;
        });
    }
    auto edge_slot = [&](std::int64_t e) { return dense ? src[e] : slot[e]; };

    std::vector<std::int64_t> degree(static_cast<std::size_t>(n_slots), 0);
    BoxHistogram h;
    for (std::int64_t e = 0; e < n_edges; ++e) {
        if (keys[e] >= 0) {
            ++degree[edge_slot(e)];
            ++h.n_distances;
        }
    }
    // Centres in ascending id order; slot -> centre index (or -1).
    std::vector<std::int64_t> centre_of(static_cast<std::size_t>(n_slots), -1);
    h.indptr.push_back(0);
    for (std::int64_t s = 0; s < n_slots; ++s) {
        if (degree[s] > 0) ++h.n_sources;
        if (degree[s] > 0 && degree[s] >= min_edges) {
            centre_of[s] = static_cast<std::int64_t>(h.centre.size());
            h.centre.push_back(dense ? s : idlist[s]);
            h.indptr.push_back(h.indptr.back() + degree[s]);
        }
    }
    std::vector<std::int64_t>().swap(degree);
    std::vector<std::int64_t> grouped(static_cast<std::size_t>(h.indptr.back()));
    std::vector<std::int64_t> fill(h.indptr.begin(), h.indptr.end() - 1);
    for (std::int64_t e = 0; e < n_edges; ++e) {
        if (keys[e] < 0) continue;
        const std::int64_t c = centre_of[edge_slot(e)];
        if (c >= 0) grouped[fill[c]++] = keys[e];
    }
    std::vector<std::int64_t>().swap(keys);
    detail::encode_runs(h, grouped, n_threads);
    return h;
}

}  // namespace neuromfa
