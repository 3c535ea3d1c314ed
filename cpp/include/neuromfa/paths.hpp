// Path boxes (SPEC section 2, "path boxes"): the box of a centre holds every node within
// shortest-path distance `threshold`, over edges whose distance passes the filter.  Exact
// Dijkstra from every node, in parallel over centres, memory linear in the number of edges.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/edge_list.hpp"
#include "neuromfa/histogram.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

// Filtered distance graph in CSR form over compact node indices.
struct DistanceGraph {
    std::vector<std::int64_t> node_id;  // compact index -> node id, ascending
    std::vector<std::int64_t> indptr;   // out-edges of each node
    std::vector<std::int64_t> target;   // compact index of each edge's head
    std::vector<double> distance;       // unrounded 1/|w|
};

// CSR of the edges that pass the filter (1 < d <= threshold).  With `undirected`, every kept
// edge is also walkable backwards.  Nodes are every id that appears in src or dst.
inline DistanceGraph build_distance_graph(const std::int64_t* src, const std::int64_t* dst, const WeightView& w,
                                          std::int64_t n_edges, const DistanceFilter& filter, bool undirected,
                                          int n_threads) {
    std::vector<std::int64_t> keys = detail::edge_keys(w, n_edges, filter, n_threads);  // validates weights
    DistanceGraph g;
    std::int64_t max_id = -1;
    for (std::int64_t e = 0; e < n_edges; ++e) {
        if (src[e] < 0) throw std::invalid_argument(detail::negative_id_message("src", e, src[e]));
        if (dst[e] < 0) throw std::invalid_argument(detail::negative_id_message("dst", e, dst[e]));
        max_id = std::max(max_id, std::max(src[e], dst[e]));
    }
    // Compact indices: a dense id table when ids are small, else sorted distinct ids.
    const bool dense = max_id < std::max<std::int64_t>(4 * n_edges, 1 << 20);
    std::vector<std::int64_t> table;
    if (dense) {
        table.assign(static_cast<std::size_t>(max_id + 1), -1);
        for (std::int64_t e = 0; e < n_edges; ++e) table[src[e]] = table[dst[e]] = 0;
        for (std::int64_t id = 0; id <= max_id; ++id)
            if (table[id] == 0) table[id] = static_cast<std::int64_t>(g.node_id.size()), g.node_id.push_back(id);
    } else {
        g.node_id.reserve(static_cast<std::size_t>(2 * n_edges));
        for (std::int64_t e = 0; e < n_edges; ++e) g.node_id.push_back(src[e]), g.node_id.push_back(dst[e]);
        std::sort(g.node_id.begin(), g.node_id.end());
        g.node_id.erase(std::unique(g.node_id.begin(), g.node_id.end()), g.node_id.end());
        g.node_id.shrink_to_fit();
    }
    const std::int64_t n = static_cast<std::int64_t>(g.node_id.size());
    auto index = [&](std::int64_t id) -> std::int64_t {
        return dense ? table[id] : std::lower_bound(g.node_id.begin(), g.node_id.end(), id) - g.node_id.begin();
    };
    std::vector<std::int64_t> ea(static_cast<std::size_t>(n_edges)), eb(static_cast<std::size_t>(n_edges));
    std::vector<double> ed(static_cast<std::size_t>(n_edges));
    parallel_for(n_blocks(n_edges, 1 << 14), n_threads, [&](std::int64_t blk) {
        for (std::int64_t e = blk << 14; e < std::min(n_edges, (blk + 1) << 14); ++e) {
            if (keys[e] < 0) continue;
            ed[e] = 1.0 / std::fabs(w.at(e));
            ea[e] = index(src[e]), eb[e] = index(dst[e]);
        }
    });
    std::vector<std::int64_t> s_idx, d_idx;
    std::vector<double> dist;
    for (std::int64_t e = 0; e < n_edges; ++e) {
        if (keys[e] < 0) continue;
        s_idx.push_back(ea[e]), d_idx.push_back(eb[e]), dist.push_back(ed[e]);
        if (undirected) s_idx.push_back(eb[e]), d_idx.push_back(ea[e]), dist.push_back(ed[e]);
    }
    g.indptr.assign(static_cast<std::size_t>(n) + 1, 0);
    for (std::int64_t a : s_idx) ++g.indptr[a + 1];
    for (std::int64_t i = 0; i < n; ++i) g.indptr[i + 1] += g.indptr[i];
    g.target.resize(s_idx.size());
    g.distance.resize(s_idx.size());
    std::vector<std::int64_t> fill(g.indptr.begin(), g.indptr.end() - 1);
    for (std::size_t e = 0; e < s_idx.size(); ++e) {
        const std::int64_t p = fill[s_idx[e]]++;
        g.target[p] = d_idx[e];
        g.distance[p] = dist[e];
    }
    return g;
}

// Box histograms of path boxes: for every node, the rounded shortest-path distances of the
// other nodes it reaches within the threshold.  A node is a centre when at least `min_edges`
// other nodes lie within the threshold.  Results do not depend on the thread count.
inline BoxHistogram path_boxes(const DistanceGraph& g, const DistanceFilter& filter, std::int64_t min_edges,
                               int n_threads) {
    const std::int64_t n = static_cast<std::int64_t>(g.node_id.size());
    const double T = filter.threshold();
    std::vector<std::vector<std::int64_t>> reached_keys(static_cast<std::size_t>(n));
    const std::int64_t block = 256;
    parallel_for(n_blocks(n, block), n_threads, [&](std::int64_t b) {
        std::vector<double> best(static_cast<std::size_t>(n), std::numeric_limits<double>::infinity());
        std::vector<char> done(static_cast<std::size_t>(n), 0);
        std::vector<std::int64_t> touched;
        using Item = std::pair<double, std::int64_t>;
        std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
        for (std::int64_t c = b * block; c < std::min(n, (b + 1) * block); ++c) {
            best[c] = 0.0;
            touched.push_back(c);
            heap.emplace(0.0, c);
            std::vector<std::int64_t>& keys = reached_keys[c];
            while (!heap.empty()) {
                const auto [du, u] = heap.top();
                heap.pop();
                if (done[u]) continue;
                done[u] = 1;
                if (u != c) keys.push_back(filter.key_of_distance(du));
                for (std::int64_t p = g.indptr[u]; p < g.indptr[u + 1]; ++p) {
                    const std::int64_t v = g.target[p];
                    const double dv = du + g.distance[p];
                    if (dv <= T && dv < best[v] && !done[v]) {
                        if (best[v] == std::numeric_limits<double>::infinity()) touched.push_back(v);
                        best[v] = dv;
                        heap.emplace(dv, v);
                    }
                }
            }
            for (std::int64_t v : touched) best[v] = std::numeric_limits<double>::infinity(), done[v] = 0;
            touched.clear();
            if (static_cast<std::int64_t>(keys.size()) < std::max<std::int64_t>(min_edges, 1)) {
                std::vector<std::int64_t>().swap(keys);
                continue;
            }
            std::sort(keys.begin(), keys.end());
        }
    });
    BoxHistogram h;
    h.indptr.push_back(0);
    for (std::int64_t c = 0; c < n; ++c) {
        if (g.indptr[c + 1] > g.indptr[c]) ++h.n_sources;
        const std::vector<std::int64_t>& keys = reached_keys[c];
        h.n_distances += static_cast<std::int64_t>(keys.size());
        if (keys.empty()) continue;
        h.centre.push_back(g.node_id[c]);
        for (std::size_t i = 0; i < keys.size();) {
            std::size_t j = i;
            while (j < keys.size() && keys[j] == keys[i]) ++j;
            h.key.push_back(keys[i]);
            h.count.push_back(static_cast<std::int64_t>(j - i));
            i = j;
        }
        h.indptr.push_back(static_cast<std::int64_t>(h.key.size()));
        std::vector<std::int64_t>().swap(reached_keys[c]);
    }
    return h;
}

// Path boxes of an edge list: the filtered distance graph, then Dijkstra from every node.
inline BoxHistogram path_boxes(const std::int64_t* src, const std::int64_t* dst, const WeightView& w,
                               std::int64_t n_edges, const DistanceFilter& filter, std::int64_t min_edges,
                               bool undirected, int n_threads) {
    const DistanceGraph g = build_distance_graph(src, dst, w, n_edges, filter, undirected, n_threads);
    return path_boxes(g, filter, min_edges, n_threads);
}

}  // namespace neuromfa
