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

// Streams one weight matrix W (n_out x n_in, row-major, torch orientation) into a dense count
// table: column i is node `row_offset + i`'s out-edges.  Threads own disjoint column ranges, so
// no two threads touch the same table row.  Returns the flat index (j * n_in + i) of the first
// NaN/Inf weight in row-major order, or -1.  A float16 weight is binned with one table look-up.
inline std::int64_t accumulate_matrix(const WeightView& w, std::int64_t n_out, std::int64_t n_in,
                                      std::uint32_t* table, std::int64_t table_rows, std::int64_t row_offset,
                                      const DistanceFilter& filter, int n_threads) {
    const std::int64_t kmin = filter.min_key(), nb = filter.n_keys();
    if (n_out < 0 || n_in < 0) throw std::invalid_argument("matrix shape must be non-negative");
    if (row_offset < 0 || row_offset + n_in > table_rows)
        throw std::out_of_range("matrix columns " + std::to_string(row_offset) + ".." +
                                std::to_string(row_offset + n_in) + " fall outside the table of " +
                                std::to_string(table_rows) + " nodes");
    // 16-bit weights: one look-up in a table of bins, as narrow as the number of bins allows
    // (uint8 for the default 150 keys: 64 KiB, cache-resident).  kNone/kBad mark filtered and
    // NaN/Inf patterns.
    const bool half_kind = w.is_half();
    const bool narrow = nb <= 253;
    std::vector<std::uint8_t> lut8;
    std::vector<std::int32_t> lut32;
    if (half_kind) {
        const std::vector<std::int64_t> keys = half_key_table(w, filter);
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
                const std::int64_t bad_here = float_bins(w, j * n_in + i0, i1 - i0, filter, kmin, row_bins.data());
                for (std::int64_t i = 0; i < i1 - i0; ++i)
                    if (row_bins[i] >= 0) ++base[i * nb + row_bins[i]];
                if (first_bad < 0) first_bad = bad_here;
            }
        }
        bad[c] = first_bad;
    });
    std::int64_t first = -1;
    for (std::int64_t b : bad)
        if (b >= 0 && (first < 0 || b < first)) first = b;
    return first;
}

}  // namespace neuromfa
