// Weights of every dtype the core reads: float64, float32 and the 16-bit patterns of float16 and
// bfloat16.  The one switch over the kinds, exact widening to double (the tables over the 16-bit
// patterns are built from it in half_tables.hpp), and the vectorised bins of float weights.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "neuromfa/distance.hpp"

namespace neuromfa {

// Exact widening of an IEEE binary16 bit pattern.
inline double half_to_double(std::uint16_t h) {
    const int sign = h >> 15;
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) {
        v = std::ldexp(static_cast<double>(mantissa), -24);
    } else if (exponent == 31) {
        v = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else {
        v = std::ldexp(static_cast<double>(mantissa + 1024), exponent - 25);
    }
    return sign ? -v : v;
}

// Exact widening of a bfloat16 bit pattern.
inline double bfloat16_to_double(std::uint16_t h) {
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float f;
    static_assert(sizeof(f) == sizeof(bits), "float must be 32 bits");
    std::memcpy(&f, &bits, sizeof(f));
    return static_cast<double>(f);
}

// A view of the weights: float64, float32, or 16-bit patterns (float16 / bfloat16).
enum class WeightKind { f64, f32, f16, bf16 };

struct WeightView {
    const void* data;
    WeightKind kind;

    bool is_half() const { return kind == WeightKind::f16 || kind == WeightKind::bf16; }

    // The one switch over the kinds: calls f with the weights as a typed pointer, const double*,
    // const float*, or the raw const std::uint16_t* patterns of both 16-bit kinds.
    template <class F>
    decltype(auto) visit(F&& f) const {
        switch (kind) {
            case WeightKind::f64: return f(static_cast<const double*>(data));
            case WeightKind::f32: return f(static_cast<const float*>(data));
            default: return f(static_cast<const std::uint16_t*>(data));
        }
    }

    // A 16-bit pattern of this view's kind, widened exactly.
    double widen(std::uint16_t bits) const {
        return kind == WeightKind::bf16 ? bfloat16_to_double(bits) : half_to_double(bits);
    }

    // Weight e, widened exactly to double.
    double at(std::int64_t e) const {
        return visit([&](auto p) -> double {
            if constexpr (std::is_same_v<decltype(p), const std::uint16_t*>) return widen(p[e]);
            else return static_cast<double>(p[e]);
        });
    }
};

// Bins (key - kmin, or -1 when filtered) of the float32/float64 weights [lo, lo + n) into out,
// by DistanceFilter::bins.  Returns the index of the first NaN/Inf among them, or -1.
inline std::int64_t float_bins(const WeightView& w, std::int64_t lo, std::int64_t n, const DistanceFilter& filter,
                               std::int64_t kmin, std::int32_t* out) {
    return w.visit([&](auto p) -> std::int64_t {
        if constexpr (std::is_same_v<decltype(p), const std::uint16_t*>) {
            throw std::invalid_argument("float_bins reads float32/float64 weights, not 16-bit patterns");
        } else {
            if (!filter.bins(p + lo, n, kmin, out)) return -1;
            for (std::int64_t e = lo; e < lo + n; ++e)
                if (!std::isfinite(static_cast<double>(p[e]))) return e;
            return -1;
        }
    });
}

}  // namespace neuromfa
