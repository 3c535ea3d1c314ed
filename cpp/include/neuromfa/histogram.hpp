// Box histograms: for every box centre, the multiset of rounded distances (as integer keys)
// of the nodes inside its largest box, as a sparse histogram in CSR form.  The owning struct,
// a read-only view, its validation, and the run-length encoding that builds one from grouped keys.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "neuromfa/parallel.hpp"

namespace neuromfa {

struct BoxHistogram {
    std::vector<std::int64_t> centre;  // node id of each kept centre, ascending
    std::vector<std::int64_t> indptr;  // size n_centres + 1, into key / count
    std::vector<std::int64_t> key;     // rounded-distance keys, strictly ascending per centre
    std::vector<std::int64_t> count;   // how many distances of the centre have that key
    std::int64_t n_sources = 0;        // nodes with at least one edge passing the filter
    std::int64_t n_distances = 0;      // edges (or reached nodes) passing the filter
};

// Read-only CSR view of box histograms (see BoxHistogram).
struct HistogramView {
    const std::int64_t* indptr;  // n_centres + 1
    const std::int64_t* key;
    const std::int64_t* count;
    std::int64_t n_centres;
};

// Checks a histogram from outside the core.  indptr is checked whole before any key is read,
// so a bad indptr can never send the reads out of bounds (callers check indptr[n] = len(key)).
inline void validate_histogram(const HistogramView& h) {
    if (h.n_centres < 0) throw std::invalid_argument("histogram has a negative number of centres");
    if (h.indptr[0] != 0) throw std::invalid_argument("histogram indptr must start at 0");
    for (std::int64_t c = 0; c < h.n_centres; ++c)
        if (h.indptr[c + 1] < h.indptr[c]) throw std::invalid_argument("histogram indptr must be non-decreasing");
    for (std::int64_t c = 0; c < h.n_centres; ++c) {
        const std::int64_t lo = h.indptr[c], hi = h.indptr[c + 1];
        for (std::int64_t p = lo; p < hi; ++p) {
            if (h.count[p] < 1) throw std::invalid_argument("histogram counts must be >= 1");
            if (h.key[p] < 0) throw std::invalid_argument("histogram keys must be >= 0");
            if (p > lo && h.key[p] <= h.key[p - 1])
                throw std::invalid_argument("histogram keys must be strictly ascending within a centre");
        }
    }
}

// Box histograms as the partition kernel reads them: centres in order, each a run of
// (key, count) pairs with ascending keys.  Two layouts: CSR arrays (CsrSource), or a dense
// (node x key) count table read in place (TableSource, dense_table.hpp).
struct CsrSource {
    HistogramView h;
    std::int64_t size() const { return h.n_centres; }
    std::int64_t pairs(std::int64_t c) const { return h.indptr[c + 1] - h.indptr[c]; }
    template <class F>
    void for_each(std::int64_t c, F&& f) const {
        for (std::int64_t p = h.indptr[c]; p < h.indptr[c + 1]; ++p) f(h.key[p], h.count[p]);
    }
};

namespace detail {

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

}  // namespace neuromfa
