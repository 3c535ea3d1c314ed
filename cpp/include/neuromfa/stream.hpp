// Full networks, streamed: one weight matrix at a time is binned straight into a dense
// (node x key) count table (dense_table.hpp), without an edge list.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/half_tables.hpp"
#include "neuromfa/parallel.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

namespace detail {

// The bin of every 16-bit pattern (one look-up per weight), as narrow as the number of bins nb
// allows: narrow (nb <= 253, uint8: 64 KiB for the default 150 keys, cache-resident) bins 0..nb-1,
// then nb = filtered, nb + 1 = NaN/Inf; else int32 bins, or kNone/kInvalid (filtered, NaN/Inf).
struct HalfBins {
    bool narrow = false;
    std::vector<std::uint8_t> lut8;
    std::vector<std::int32_t> lut32;
};

inline HalfBins half_bins(const WeightView& w, const DistanceFilter& filter) {
    const std::int64_t kmin = filter.min_key(), nb = filter.n_keys();
    HalfBins b;
    b.narrow = nb <= 253;
    const std::vector<std::int64_t> keys = half_key_table(w, filter);
    if (b.narrow) b.lut8.resize(keys.size());
    else b.lut32.resize(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::int64_t k = keys[i] >= 0 ? keys[i] - kmin : keys[i];
        if (b.narrow) b.lut8[i] = static_cast<std::uint8_t>(k >= 0 ? k : (k == kInvalid ? nb + 1 : nb));
        else b.lut32[i] = static_cast<std::int32_t>(k);
    }
    return b;
}

// half_bins of the last (kind, filter) this thread asked for, kept: its 65536 keys take ~0.5 ms,
// longer than binning a whole 768 x 768 matrix, and a network streams every matrix with one filter.
// One entry per thread (64 KiB narrow, 256 KiB wide), so concurrent callers never share it.
inline const HalfBins& cached_half_bins(const WeightView& w, const DistanceFilter& filter) {
    struct Last {
        bool set = false;
        WeightKind kind = WeightKind::f16;
        double threshold = 0, lower = 0;
        int decimals = 0;
        HalfBins bins;
    };
    thread_local Last last;
    const int decimals = filter.rounding().decimals();
    if (!last.set || last.kind != w.kind || last.threshold != filter.threshold() || last.lower != filter.lower() ||
        last.decimals != decimals) {
        last.bins = half_bins(w, filter);  // a throw leaves the old entry whole (the move does not throw)
        last.kind = w.kind, last.threshold = filter.threshold(), last.lower = filter.lower(), last.decimals = decimals;
        last.set = true;
    }
    return last.bins;
}

// The columns [i0, i1) of an (n_out x n_in) matrix: a chunk of accumulate_matrix, its table rows
// from `base` (nb cells each).  Each returns the flat index of the chunk's first NaN/Inf weight in
// row-major order, or -1.

// 16-bit weights, narrow bins.  Branch-free: every weight increments a 16-bit cell of a
// chunk-local table (L1-sized), filtered ones a spare column; flushed into the 32-bit table before
// 16 bits can wrap.
inline std::int64_t bin_half_narrow(const std::uint16_t* data, std::int64_t n_out, std::int64_t n_in, std::int64_t i0,
                                    std::int64_t i1, const std::uint8_t* lut, std::int64_t nb, std::uint32_t* base) {
    const std::int64_t stride = nb + 2, width = i1 - i0;
    std::vector<std::uint16_t> local(static_cast<std::size_t>(width * stride), 0);
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
    if (n_bad == 0) return -1;
    for (std::int64_t j = 0; j < n_out; ++j)  // rare: find the first NaN/Inf of this chunk in row-major order
        for (std::int64_t i = i0; i < i1; ++i)
            if (lut[data[j * n_in + i]] == nb + 1) return j * n_in + i;
    return -1;
}

// 16-bit weights, int32 bins (many keys).
inline std::int64_t bin_half_wide(const std::uint16_t* data, std::int64_t n_out, std::int64_t n_in, std::int64_t i0,
                                  std::int64_t i1, const std::int32_t* lut, std::int64_t nb, std::uint32_t* base) {
    std::int64_t first_bad = -1;
    for (std::int64_t j = 0; j < n_out; ++j) {
        const std::uint16_t* __restrict p = data + j * n_in;
        std::uint32_t* __restrict cell = base;
        for (std::int64_t i = i0; i < i1; ++i, cell += nb) {
            const std::int32_t k = lut[p[i]];
            if (k >= 0) ++cell[k];
            else if (k == kInvalid && first_bad < 0) first_bad = j * n_in + i;
        }
    }
    return first_bad;
}

// float32/float64 weights, a row at a time through DistanceFilter::bins.
inline std::int64_t bin_float(const WeightView& w, std::int64_t n_out, std::int64_t n_in, std::int64_t i0,
                              std::int64_t i1, const DistanceFilter& filter, std::uint32_t* base) {
    const std::int64_t kmin = filter.min_key(), nb = filter.n_keys();
    std::int64_t first_bad = -1;
    std::vector<std::int32_t> row_bins(static_cast<std::size_t>(i1 - i0));
    for (std::int64_t j = 0; j < n_out; ++j) {
        const std::int64_t bad_here = float_bins(w, j * n_in + i0, i1 - i0, filter, kmin, row_bins.data());
        for (std::int64_t i = 0; i < i1 - i0; ++i)
            if (row_bins[i] >= 0) ++base[i * nb + row_bins[i]];
        if (first_bad < 0) first_bad = bad_here;
    }
    return first_bad;
}

}  // namespace detail

// Streams one weight matrix W (n_out x n_in, row-major, torch orientation) into a dense count
// table: column i is node `row_offset + i`'s out-edges.  Threads own disjoint chunks of 64
// columns, so no two threads touch the same table row.  Returns the flat index (j * n_in + i) of
// the first NaN/Inf weight in row-major order, or -1.  A 16-bit weight is binned with one table
// look-up.
inline std::int64_t accumulate_matrix(const WeightView& w, std::int64_t n_out, std::int64_t n_in,
                                      std::uint32_t* table, std::int64_t table_rows, std::int64_t row_offset,
                                      const DistanceFilter& filter, int n_threads) {
    const std::int64_t nb = filter.n_keys();
    if (n_out < 0 || n_in < 0) throw std::invalid_argument("matrix shape must be non-negative");
    // row_offset comes from the caller unchecked: compared without forming row_offset + n_in,
    // which a huge offset would overflow (to a negative end that passed, and wild writes)
    if (row_offset < 0 || row_offset > table_rows - n_in)
        throw std::out_of_range("matrix columns from " + std::to_string(row_offset) + " (" + std::to_string(n_in) +
                                " of them) fall outside the table of " + std::to_string(table_rows) + " nodes");
    const detail::HalfBins no_bins;
    const detail::HalfBins& bins = w.is_half() ? detail::cached_half_bins(w, filter) : no_bins;
    const std::uint16_t* const half = static_cast<const std::uint16_t*>(w.data);
    const std::int64_t cols = 64, n_chunks = n_blocks(n_in, cols);
    std::vector<std::int64_t> bad(static_cast<std::size_t>(n_chunks), -1);
    parallel_for(n_chunks, n_threads, [&](std::int64_t c) {
        const std::int64_t i0 = c * cols, i1 = std::min(n_in, i0 + cols);
        std::uint32_t* base = table + (row_offset + i0) * nb;
        if (!w.is_half()) bad[c] = detail::bin_float(w, n_out, n_in, i0, i1, filter, base);
        else if (bins.narrow) bad[c] = detail::bin_half_narrow(half, n_out, n_in, i0, i1, bins.lut8.data(), nb, base);
        else bad[c] = detail::bin_half_wide(half, n_out, n_in, i0, i1, bins.lut32.data(), nb, base);
    });
    std::int64_t first = -1;
    for (std::int64_t b : bad)
        if (b >= 0 && (first < 0 || b < first)) first = b;
    return first;
}

}  // namespace neuromfa
