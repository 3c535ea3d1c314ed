// Box histograms: for every box centre, the multiset of rounded distances (as integer keys)
// of the nodes inside its largest box, stored as a sparse histogram in CSR form.  One-hop
// boxes (SPEC section 2, the reference) are built here from an edge list.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/parallel.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <climits>

namespace neuromfa {

struct BoxHistogram {
    std::vector<std::int64_t> centre;  // node id of each kept centre, ascending
    std::vector<std::int64_t> indptr;  // size n_centres + 1, into key / count
    std::vector<std::int64_t> key;     // rounded-distance keys, strictly ascending per centre
    std::vector<std::int64_t> count;   // how many distances of the centre have that key
    std::int64_t n_sources = 0;        // nodes with at least one edge passing the filter
    std::int64_t n_distances = 0;      // edges (or reached nodes) passing the filter
};

// A view of the weights: float64, float32, or 16-bit patterns (float16 / bfloat16).
enum class WeightKind { f64, f32, f16, bf16 };
struct WeightView {
    const void* data;
    WeightKind kind;
};

namespace detail {

// key[e] for every edge, in parallel; throws on the first (lowest-index) invalid weight.
inline std::vector<std::int64_t> edge_keys(const WeightView& w, std::int64_t n, const DistanceFilter& filter,
                                           int n_threads) {
    std::vector<std::int64_t> keys(static_cast<std::size_t>(n));
    std::vector<std::int64_t> table;
    if (w.kind == WeightKind::f16 || w.kind == WeightKind::bf16) table = filter.half_table(w.kind == WeightKind::bf16);
    const std::int64_t block = 1 << 16;
    const int nt = n_blocks(n, block) >= 4 ? n_threads : 1;  // small inputs: stay serial
    parallel_for(n_blocks(n, block), nt, [&](std::int64_t b) {
        const std::int64_t lo = b * block, hi = std::min(n, lo + block);
        switch (w.kind) {
            case WeightKind::f64: {
                const double* p = static_cast<const double*>(w.data);
                for (std::int64_t e = lo; e < hi; ++e) keys[e] = filter.key_of_weight(p[e]);
                break;
            }
            case WeightKind::f32: {
                const float* p = static_cast<const float*>(w.data);
                for (std::int64_t e = lo; e < hi; ++e) keys[e] = filter.key_of_weight(static_cast<double>(p[e]));
                break;
            }
            default: {
                const std::uint16_t* p = static_cast<const std::uint16_t*>(w.data);
                for (std::int64_t e = lo; e < hi; ++e) keys[e] = table[p[e]];
            }
        }
    });
    for (std::int64_t e = 0; e < n; ++e) {
        if (keys[e] == kInvalid)
            throw std::invalid_argument("weight of edge " + std::to_string(e) + " is NaN or infinite");
    }
    return keys;
}

// Run-length encodes each centre's slice of keys in place (ascending keys with their counts),
// then compacts.  Keys of small range are counted in a per-block table, O(k + range); others
// are sorted, O(k log k): whichever is cheaper for the centre.
inline void encode_runs(BoxHistogram& h, std::vector<std::int64_t>& keys, int n_threads) {
    const std::int64_t nc = static_cast<std::int64_t>(h.centre.size());
    std::int64_t kmin = 0, kmax = -1;
    if (!keys.empty()) {
        const auto mm = std::minmax_element(keys.begin(), keys.end());
        kmin = *mm.first;
        kmax = *mm.second;
    }
    const std::int64_t range = kmax - kmin + 1;
    std::vector<std::int64_t> counts(keys.size());
    std::vector<std::int64_t> n_runs(static_cast<std::size_t>(nc));
    const std::int64_t block = 256;
    parallel_for(n_blocks(nc, block), n_threads, [&](std::int64_t b) {
        std::vector<std::int64_t> table;
        for (std::int64_t c = b * block; c < std::min(nc, (b + 1) * block); ++c) {
            const std::int64_t lo = h.indptr[c], hi = h.indptr[c + 1], k = hi - lo;
            std::int64_t out = lo;
            if (range <= (1 << 22) && range <= 4 * k * (1 + static_cast<std::int64_t>(std::log2(1.0 + k)))) {
                table.assign(static_cast<std::size_t>(range), 0);
                for (std::int64_t i = lo; i < hi; ++i) ++table[keys[i] - kmin];
                for (std::int64_t v = 0; v < range; ++v)
                    if (table[v]) {
                        keys[out] = v + kmin;
                        counts[out] = table[v];
                        ++out;
                    }
            } else {
                std::sort(keys.begin() + lo, keys.begin() + hi);
                for (std::int64_t i = lo; i < hi;) {
                    std::int64_t j = i;
                    while (j < hi && keys[j] == keys[i]) ++j;
                    keys[out] = keys[i];
                    counts[out] = j - i;
                    ++out;
                    i = j;
                }
            }
            n_runs[c] = out - lo;
        }
    });
    std::vector<std::int64_t> indptr(static_cast<std::size_t>(nc) + 1, 0);
    for (std::int64_t c = 0; c < nc; ++c) indptr[c + 1] = indptr[c] + n_runs[c];
    h.key.resize(static_cast<std::size_t>(indptr[nc]));
    h.count.resize(static_cast<std::size_t>(indptr[nc]));
    parallel_for(n_blocks(nc, block), n_threads, [&](std::int64_t b) {
        for (std::int64_t c = b * block; c < std::min(nc, (b + 1) * block); ++c) {
            std::copy(keys.begin() + h.indptr[c], keys.begin() + h.indptr[c] + n_runs[c], h.key.begin() + indptr[c]);
            std::copy(counts.begin() + h.indptr[c], counts.begin() + h.indptr[c] + n_runs[c],
                      h.count.begin() + indptr[c]);
        }
    });
    h.indptr = std::move(indptr);
}

}  // namespace detail

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

}  // namespace detail

// A dense (node x key) count table seen as box histograms: its kept rows, each a run of
// (key, count) pairs with ascending keys, read in place (the partition kernel and the node
// fractal dimension take it like a CSR histogram).
struct TableSource {
    const std::uint32_t* table;
    std::int64_t nb, kmin;
    std::vector<std::int64_t> rows;     // table rows of the kept centres, ascending
    std::vector<std::int64_t> nonzero;  // distinct keys of each kept centre (its CSR length)
    std::int64_t size() const { return static_cast<std::int64_t>(rows.size()); }
    std::int64_t pairs(std::int64_t c) const { return nonzero[c]; }
    template <class F>
    void for_each(std::int64_t c, F&& f) const {
        const std::uint32_t* row = table + rows[c] * nb;
        for (std::int64_t k = 0; k < nb; ++k)
            if (row[k]) f(k + kmin, static_cast<std::int64_t>(row[k]));
    }
};

// Kept centres of a dense (node x key) count table: rows with at least `min_edges` (and at
// least one) counts.  Also returns (n_sources, n_distances) like BoxHistogram.
inline TableSource table_source(const std::uint32_t* table, std::int64_t n_rows, std::int64_t nb, std::int64_t kmin,
                                std::int64_t min_edges, std::int64_t& n_sources, std::int64_t& n_distances,
                                int n_threads) {
    std::vector<std::int64_t> degree(static_cast<std::size_t>(n_rows)), nonzero(static_cast<std::size_t>(n_rows));
    parallel_for(n_blocks(n_rows, 1024), n_threads, [&](std::int64_t b) {
        for (std::int64_t s = b * 1024; s < std::min(n_rows, (b + 1) * 1024); ++s) {
            const std::uint32_t* row = table + s * nb;
            std::int64_t d = 0, z = 0;
            for (std::int64_t k = 0; k < nb; ++k) d += row[k], z += row[k] != 0;
            degree[s] = d, nonzero[s] = z;
        }
    });
    TableSource src{table, nb, kmin, {}, {}};
    n_sources = n_distances = 0;
    for (std::int64_t s = 0; s < n_rows; ++s) {
        n_distances += degree[s];
        if (degree[s] > 0) ++n_sources;
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
    BoxHistogram h;
    const TableSource src = table_source(table, n_slots, nb, kmin, min_edges, h.n_sources, h.n_distances, n_threads);
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

// Streams one weight matrix W (n_out x n_in, row-major, torch orientation) into a dense count
// table: column i is node `row_offset + i`'s out-edges.  Threads own disjoint column ranges, so
// no two threads touch the same table row.  Returns the flat index (j * n_in + i) of the first
// NaN/Inf weight in row-major order, or -1.  A float16 weight is binned with one table look-up.
inline std::int64_t accumulate_matrix(const WeightView& w, std::int64_t n_out, std::int64_t n_in,
                                      std::uint32_t* table, std::int64_t table_rows, std::int64_t row_offset,
                                      const DistanceFilter& filter, int n_threads) {
    const std::int64_t kmin = filter.min_key(), nb = filter.max_key() - kmin + 1;
    if (n_out < 0 || n_in < 0) throw std::invalid_argument("matrix shape must be non-negative");
    if (row_offset < 0 || row_offset + n_in > table_rows)
        throw std::out_of_range("matrix columns " + std::to_string(row_offset) + ".." +
                                std::to_string(row_offset + n_in) + " fall outside the table of " +
                                std::to_string(table_rows) + " nodes");
    // 16-bit weights: one look-up in a table of bins, as narrow as the number of bins allows
    // (uint8 for the default 150 keys: 64 KiB, cache-resident).  kNone/kBad mark filtered and
    // NaN/Inf patterns.
    const bool half_kind = w.kind == WeightKind::f16 || w.kind == WeightKind::bf16;
    const bool narrow = nb <= 253;
    std::vector<std::uint8_t> lut8;
    std::vector<std::int32_t> lut32;
    if (half_kind) {
        const std::vector<std::int64_t> keys = filter.half_table(w.kind == WeightKind::bf16);
        if (narrow) lut8.resize(keys.size());
        else lut32.resize(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            const std::int64_t k = keys[i] >= 0 ? keys[i] - kmin : keys[i];
            // narrow: bins 0..nb-1, then nb = filtered, nb + 1 = NaN/Inf (counted, found later)
            if (narrow) lut8[i] = static_cast<std::uint8_t>(k >= 0 ? k : (k == kInvalid ? nb + 1 : nb));
            else lut32[i] = static_cast<std::int32_t>(k);
        }
    }
    const std::int64_t cols = 64, n_chunks = n_blocks(n_in, cols);
    std::vector<std::int64_t> bad(static_cast<std::size_t>(n_chunks), -1);
    auto scan_half = [&](auto lut, auto is_bin, auto is_bad, std::int64_t i0, std::int64_t i1, std::uint32_t* base,
                         std::int64_t& first_bad) {
        const std::uint16_t* const data = static_cast<const std::uint16_t*>(w.data);
        for (std::int64_t j = 0; j < n_out; ++j) {
            const std::uint16_t* __restrict p = data + j * n_in;
            std::uint32_t* __restrict cell = base;
            for (std::int64_t i = i0; i < i1; ++i, cell += nb) {
                const auto k = lut[p[i]];
                if (is_bin(k)) ++cell[k];
                else if (is_bad(k) && first_bad < 0) first_bad = j * n_in + i;
            }
        }
    };
    parallel_for(n_chunks, n_threads, [&](std::int64_t c) {
        const std::int64_t i0 = c * cols, i1 = std::min(n_in, i0 + cols);
        std::uint32_t* base = table + (row_offset + i0) * nb;
        std::int64_t first_bad = -1;
        if (half_kind && narrow) {
            // Branch-free: every weight increments a 16-bit cell of a chunk-local table (L1-sized),
            // filtered ones a spare column; flushed into the 32-bit table before 16 bits can wrap.
            const std::int64_t stride = nb + 2, width = i1 - i0;
            std::vector<std::uint16_t> local(static_cast<std::size_t>(width * stride), 0);
            const std::uint16_t* const data = static_cast<const std::uint16_t*>(w.data);
            const std::uint8_t* const lut = lut8.data();
            std::int64_t n_bad = 0;
            auto flush = [&]() {
                for (std::int64_t i = 0; i < width; ++i) {
                    std::uint16_t* row = local.data() + i * stride;
                    std::uint32_t* out = base + i * nb;
                    for (std::int64_t k = 0; k < nb; ++k) out[k] += row[k];
                    n_bad += row[nb + 1];
                    std::fill(row, row + stride, 0);
                }
            };
            for (std::int64_t j0 = 0; j0 < n_out; j0 += 65535) {
                const std::int64_t j1 = std::min(n_out, j0 + 65535);
                for (std::int64_t j = j0; j < j1; ++j) {
                    const std::uint16_t* __restrict p = data + j * n_in + i0;
                    std::uint16_t* __restrict cell = local.data();
                    for (std::int64_t i = 0; i < width; ++i, cell += stride) ++cell[lut[p[i]]];
                }
                flush();
            }
            if (n_bad > 0) {  // rare: find the first NaN/Inf of this chunk in row-major order
                for (std::int64_t j = 0; j < n_out && first_bad < 0; ++j)
                    for (std::int64_t i = i0; i < i1; ++i)
                        if (lut[data[j * n_in + i]] == nb + 1) {
                            first_bad = j * n_in + i;
                            break;
                        }
            }
        } else if (half_kind) {
            scan_half(lut32.data(), [](std::int32_t k) { return k >= 0; },
                      [](std::int32_t k) { return k == kInvalid; }, i0, i1, base, first_bad);
        } else {
            std::vector<std::int32_t> row_bins(static_cast<std::size_t>(i1 - i0));
            for (std::int64_t j = 0; j < n_out; ++j) {
                const std::int64_t row = j * n_in;
                const bool any_bad =
                    w.kind == WeightKind::f64
                        ? filter.bins(static_cast<const double*>(w.data) + row + i0, i1 - i0, kmin, row_bins.data())
                        : filter.bins(static_cast<const float*>(w.data) + row + i0, i1 - i0, kmin, row_bins.data());
                for (std::int64_t i = 0; i < i1 - i0; ++i)
                    if (row_bins[i] >= 0) ++base[i * nb + row_bins[i]];
                if (any_bad && first_bad < 0)
                    for (std::int64_t i = i0; i < i1; ++i) {
                        const double v = w.kind == WeightKind::f64 ? static_cast<const double*>(w.data)[row + i]
                                                                   : static_cast<const float*>(w.data)[row + i];
                        if (!std::isfinite(v)) {
                            first_bad = row + i;
                            break;
                        }
                    }
            }
        }
        bad[c] = first_bad;
    });
    std::int64_t first = -1;
    for (std::int64_t b : bad)
        if (b >= 0 && (first < 0 || b < first)) first = b;
    return first;
}

namespace detail {

// Dense path: one pass over the edges bins every weight straight into a (source x key) count
// table, one private table per thread, summed afterwards.  No per-edge array is stored.
inline BoxHistogram onehop_dense(const std::int64_t* src, const WeightView& w, std::int64_t n,
                                 const DistanceFilter& filter, std::int64_t min_edges, IdRange ids, int n_threads) {
    const std::int64_t kmin = filter.min_key(), nb = filter.max_key() - kmin + 1;
    const std::int64_t n_slots = ids.max_id - ids.min_id + 1, cells = n_slots * nb;
    std::vector<std::int64_t> table;
    if (w.kind == WeightKind::f16 || w.kind == WeightKind::bf16) table = filter.half_table(w.kind == WeightKind::bf16);
    const std::int64_t blocks = n_blocks(n, 1 << 16);
    // one private table per thread: cap the threads so the tables stay within a memory budget
    const std::int64_t budget = std::max<std::int64_t>(std::int64_t(256) << 20, 8 * n);
    const std::int64_t by_memory = std::max<std::int64_t>(1, budget / std::max<std::int64_t>(1, cells * 4));
    const int nt = blocks < 4 ? 1
                              : static_cast<int>(std::max<std::int64_t>(
                                    1, std::min<std::int64_t>({resolve_threads(n_threads), blocks, by_memory})));
    std::vector<std::vector<std::uint32_t>> hist(static_cast<std::size_t>(nt));
    const std::int64_t block = 1 << 16, n_blk = n_blocks(n, block);
    std::vector<std::int64_t> bad(static_cast<std::size_t>(n_blk), -1);
    auto bin_block = [&](std::uint32_t* hp, std::int64_t b) {
        const std::int64_t lo = b * block, hi = std::min(n, lo + block);
        auto put = [&](std::int64_t e, std::int64_t k) {
            if (k >= 0) {
                ++hp[(src[e] - ids.min_id) * nb + (k - kmin)];
            } else if (k == kInvalid && bad[b] < 0) {
                bad[b] = e;
            }
        };
        if (w.kind == WeightKind::f64 || w.kind == WeightKind::f32) {
            // bins of the block first (vectorised), then the increments
            thread_local std::vector<std::int32_t> bins;
            bins.resize(static_cast<std::size_t>(hi - lo));
            const bool any_bad = w.kind == WeightKind::f64
                                     ? filter.bins(static_cast<const double*>(w.data) + lo, hi - lo, kmin, bins.data())
                                     : filter.bins(static_cast<const float*>(w.data) + lo, hi - lo, kmin, bins.data());
            const std::int64_t* __restrict s = src + lo;
            for (std::int64_t e = 0; e < hi - lo; ++e)
                if (bins[e] >= 0) ++hp[(s[e] - ids.min_id) * nb + bins[e]];
            if (any_bad)
                for (std::int64_t e = lo; e < hi && bad[b] < 0; ++e) {
                    const double v = w.kind == WeightKind::f64 ? static_cast<const double*>(w.data)[e]
                                                               : static_cast<const float*>(w.data)[e];
                    if (!std::isfinite(v)) bad[b] = e;
                }
            return;
        }
        const std::uint16_t* p = static_cast<const std::uint16_t*>(w.data);
        for (std::int64_t e = lo; e < hi; ++e) put(e, table[p[e]]);
    };
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        hist[t].assign(static_cast<std::size_t>(cells), 0);
#pragma omp for schedule(static)
        for (std::int64_t b = 0; b < n_blk; ++b) bin_block(hist[t].data(), b);
    }
#else
    hist[0].assign(static_cast<std::size_t>(cells), 0);
    for (std::int64_t b = 0; b < n_blk; ++b) bin_block(hist[0].data(), b);
#endif
    for (std::int64_t b = 0; b < n_blk; ++b)
        if (bad[b] >= 0) throw std::invalid_argument("weight of edge " + std::to_string(bad[b]) + " is NaN or infinite");
    std::vector<std::uint32_t>& total = hist[0];
    parallel_for(n_blocks(cells, 1 << 16), n_threads, [&](std::int64_t b) {
        for (std::int64_t i = b << 16; i < std::min(cells, (b + 1) << 16); ++i)
            for (int t = 1; t < nt; ++t) total[i] += hist[t][i];
    });
    for (int t = 1; t < nt; ++t) std::vector<std::uint32_t>().swap(hist[t]);
    return table_to_histogram(total.data(), n_slots, nb, kmin, ids.min_id, min_edges, n_threads);
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
        const double cells = slots * static_cast<double>(filter.max_key() - filter.min_key() + 1);
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
