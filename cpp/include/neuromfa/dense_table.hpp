// Dense (node x key) count tables: row s counts the distance keys of node s, column k is key
// k + kmin.  Read in place as box histograms (TableSource), or converted to CSR.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "neuromfa/histogram.hpp"
#include "neuromfa/parallel.hpp"

namespace neuromfa {

// A dense (node x key) count table seen as box histograms: its kept rows, each a run of
// (key, count) pairs with ascending keys, read in place (the partition kernel and the node
// fractal dimension take it like a CSR histogram).
struct TableSource {
    const std::uint32_t* table;
    std::int64_t nb, kmin;
    std::vector<std::int64_t> rows;     // table rows of the kept centres, ascending
    std::vector<std::int64_t> nonzero;  // distinct keys of each kept centre (its CSR length)
    std::int64_t n_sources = 0;         // rows with at least one count (as in BoxHistogram)
    std::int64_t n_distances = 0;       // all counts of the table
    std::int64_t size() const { return static_cast<std::int64_t>(rows.size()); }
    std::int64_t pairs(std::int64_t c) const { return nonzero[c]; }
    template <class F>
    void for_each(std::int64_t c, F&& f) const {
        const std::uint32_t* row = table + rows[c] * nb;
        for (std::int64_t k = 0; k < nb; ++k)
            if (row[k]) f(k + kmin, static_cast<std::int64_t>(row[k]));
    }
};

// Kept centres of a dense (node x key) count table of n_rows x nb: rows with at least
// `min_edges` (and at least one) counts.
inline TableSource table_source(const std::uint32_t* table, std::int64_t n_rows, std::int64_t nb, std::int64_t kmin,
                                std::int64_t min_edges, int n_threads) {
    std::vector<std::int64_t> degree(static_cast<std::size_t>(n_rows)), nonzero(static_cast<std::size_t>(n_rows));
    parallel_for(n_blocks(n_rows, 1024), n_threads, [&](std::int64_t b) {
        for (std::int64_t s = b * 1024; s < std::min(n_rows, (b + 1) * 1024); ++s) {
            const std::uint32_t* row = table + s * nb;
            std::int64_t d = 0, z = 0;
            for (std::int64_t k = 0; k < nb; ++k) d += row[k], z += row[k] != 0;
            degree[s] = d, nonzero[s] = z;
        }
    });
    TableSource src{table, nb, kmin, {}, {}, 0, 0};
    for (std::int64_t s = 0; s < n_rows; ++s) {
        src.n_distances += degree[s];
        if (degree[s] > 0) ++src.n_sources;
        if (degree[s] > 0 && degree[s] >= min_edges) src.rows.push_back(s), src.nonzero.push_back(nonzero[s]);
    }
    return src;
}

// Box histograms (CSR) from a dense (slot x key) count table: slot s is node id s + id_offset,
// column k is key k + kmin.  Slots with at least `min_edges` counts (and at least one) become
// centres.
inline BoxHistogram table_to_histogram(const std::uint32_t* table, std::int64_t n_slots, std::int64_t nb,
                                       std::int64_t kmin, std::int64_t id_offset, std::int64_t min_edges,
                                       int n_threads) {
    const TableSource src = table_source(table, n_slots, nb, kmin, min_edges, n_threads);
    BoxHistogram h;
    h.n_sources = src.n_sources;
    h.n_distances = src.n_distances;
    const std::int64_t nc = src.size();
    h.indptr.assign(static_cast<std::size_t>(nc) + 1, 0);
    for (std::int64_t c = 0; c < nc; ++c) {
        h.centre.push_back(src.rows[c] + id_offset);
        h.indptr[c + 1] = h.indptr[c] + src.nonzero[c];
    }
    h.key.resize(static_cast<std::size_t>(h.indptr.back()));
    h.count.resize(h.key.size());
    parallel_for(n_blocks(nc, 256), n_threads, [&](std::int64_t b) {
        for (std::int64_t c = b * 256; c < std::min(nc, (b + 1) * 256); ++c) {
            std::int64_t out = h.indptr[c];
            src.for_each(c, [&](std::int64_t key, std::int64_t count) { h.key[out] = key, h.count[out] = count, ++out; });
        }
    });
    return h;
}

}  // namespace neuromfa
