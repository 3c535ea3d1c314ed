// Counting the non-finite values (NaN, +-inf) of a tensor's little-endian bytes, in parallel:
// the finiteness scan of the fingerprint pass (network/fingerprint.py), at memory speed.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "parallel.hpp"

namespace neuromfa {

enum class FloatKind { f16, bf16, f32, f64 };

inline int float_size(FloatKind kind) {
    switch (kind) {
        case FloatKind::f16:
        case FloatKind::bf16: return 2;
        case FloatKind::f32: return 4;
        case FloatKind::f64: return 8;
    }
    return 0;
}

namespace detail {

inline bool little_endian_host() {
    const std::uint16_t one = 1;
    std::uint8_t first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

// Values whose bits hold `mask` wholly, in [lo, hi): U is the value's width; memcpy loads (no
// alignment assumed) that the compiler turns into plain, vectorised loads.
template <class U>
std::int64_t count_masked(const std::uint8_t* data, std::int64_t lo, std::int64_t hi, U mask) {
    std::int64_t count = 0;
    for (std::int64_t i = lo; i < hi; ++i) {
        U v;
        std::memcpy(&v, data + i * static_cast<std::int64_t>(sizeof(U)), sizeof(U));
        count += (v & mask) == mask;
    }
    return count;
}

// The same on any host: the top two bytes of each little-endian value, composed by hand.
inline std::int64_t count_top16(const std::uint8_t* data, std::int64_t lo, std::int64_t hi, int size,
                                std::uint16_t mask) {
    std::int64_t count = 0;
    const std::uint8_t* p = data + lo * size + (size - 2);
    for (std::int64_t i = lo; i < hi; ++i, p += size) {
        const std::uint16_t top = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
        count += (top & mask) == mask;
    }
    return count;
}

}  // namespace detail

// Non-finite values among the n_values little-endian floats at `data` (no alignment assumed):
// a value is non-finite when its exponent bits are all ones (IEEE 754), which is exactly what
// numpy.isfinite tests for these four types. Fixed blocks of values, counted in parallel and
// summed in block order (an integer count: the same whatever the thread count).
inline std::int64_t count_nonfinite(const std::uint8_t* data, std::int64_t n_values, FloatKind kind, int n_threads) {
    if (n_values < 0) throw std::invalid_argument("count_nonfinite: n_values must be >= 0");
    if (n_values > 0 && data == nullptr) throw std::invalid_argument("count_nonfinite: no data");
    const int size = float_size(kind);
    // the exponent's bits within the top 16 bits of a value (little-endian: its last two bytes)
    std::uint16_t mask = 0;
    switch (kind) {
        case FloatKind::f16: mask = 0x7C00; break;
        case FloatKind::bf16: mask = 0x7F80; break;
        case FloatKind::f32: mask = 0x7F80; break;   // exponent bits of the top 16 bits of a float32
        case FloatKind::f64: mask = 0x7FF0; break;   // exponent bits of the top 16 bits of a float64
    }
    const bool native = detail::little_endian_host();
    const std::int64_t block = std::int64_t(1) << 16;
    const std::int64_t n_block = n_blocks(n_values, block);
    std::vector<std::int64_t> partial(static_cast<std::size_t>(n_block), 0);
    parallel_for(n_block, n_threads, [&](std::int64_t b) {
        const std::int64_t lo = b * block;
        const std::int64_t hi = lo + block < n_values ? lo + block : n_values;
        std::int64_t count;
        if (!native) {
            count = detail::count_top16(data, lo, hi, size, mask);
        } else if (size == 2) {
            count = detail::count_masked<std::uint16_t>(data, lo, hi, mask);
        } else if (size == 4) {
            count = detail::count_masked<std::uint32_t>(data, lo, hi, std::uint32_t(mask) << 16);
        } else {
            count = detail::count_masked<std::uint64_t>(data, lo, hi, std::uint64_t(mask) << 48);
        }
        partial[static_cast<std::size_t>(b)] = count;
    }, 4);
    std::int64_t total = 0;
    for (std::int64_t c : partial) total += c;
    return total;
}

}  // namespace neuromfa
