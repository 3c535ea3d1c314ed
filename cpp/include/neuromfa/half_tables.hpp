// The tables over the 16-bit patterns of float16 and bfloat16, all in one place, each built from
// the exact widening of weights.hpp (WeightView::widen): the value of every pattern
// (half_values), the log of every positive finite magnitude (half_logs), the distance key of every
// pattern under a filter (half_key_table), the mantissa tables (mantissa_logs) and the layout of a
// kind's patterns (half_detail::Geometry).  The fixed tables are built once, on first use.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "neuromfa/distance.hpp"
#include "neuromfa/weights.hpp"

namespace neuromfa {

// The value of every 16-bit pattern of a kind (f16 or bf16), widened exactly; built once.
inline const std::vector<double>& half_values(WeightKind kind) {
    static const auto make = [](WeightKind k) {
        std::vector<double> v(65536);
        const WeightView w{nullptr, k};
        for (std::uint32_t h = 0; h < 65536; ++h) v[h] = w.widen(static_cast<std::uint16_t>(h));
        return v;
    };
    static const std::vector<double> f16 = make(WeightKind::f16), bf16 = make(WeightKind::bf16);
    return kind == WeightKind::bf16 ? bf16 : f16;
}

// ln of every positive finite magnitude pattern of a kind (index = pattern without the sign
// bit; NaN for 0 and the inf/NaN patterns); built once.
inline const std::vector<double>& half_logs(WeightKind kind) {
    static const auto make = [](WeightKind k) {
        const std::vector<double>& v = half_values(k);
        std::vector<double> l(32768, std::numeric_limits<double>::quiet_NaN());
        for (std::uint32_t h = 1; h < 32768; ++h)
            if (v[h] > 0 && std::isfinite(v[h])) l[h] = std::log(v[h]);
        return l;
    };
    static const std::vector<double> f16 = make(WeightKind::f16), bf16 = make(WeightKind::bf16);
    return kind == WeightKind::bf16 ? bf16 : f16;
}

// Key of every 16-bit pattern of a float16/bfloat16 view (binning is one look-up); empty for
// float32/float64.
inline std::vector<std::int64_t> half_key_table(const WeightView& w, const DistanceFilter& filter) {
    std::vector<std::int64_t> table;
    if (!w.is_half()) return table;
    table.resize(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) table[h] = filter.key_of_weight(w.widen(static_cast<std::uint16_t>(h)));
    return table;
}

// ln(1 + f/F) of the 2^mbits normal mantissas and its square; built once per mantissa width.
// Also the mantissa's value, 1 + f/F (normal) and f/F (subnormal): a pattern's value is one of
// them times a power of two, exactly.
struct MantissaLogs {
    std::vector<double> lm, lm2, normal, subnormal;
};
inline const MantissaLogs& mantissa_logs(int mbits) {
    static const auto make = [](int b) {
        const std::uint32_t F = 1u << b;
        MantissaLogs t;
        t.lm.resize(F), t.lm2.resize(F), t.normal.resize(F), t.subnormal.resize(F);
        for (std::uint32_t f = 0; f < F; ++f) {
            t.subnormal[f] = static_cast<double>(f) / F;
            t.normal[f] = 1.0 + t.subnormal[f];
            t.lm[f] = std::log1p(static_cast<double>(f) / F);
            t.lm2[f] = t.lm[f] * t.lm[f];
        }
        return t;
    };
    static const MantissaLogs f16 = make(10), bf16 = make(7);
    return mbits == 10 ? f16 : bf16;
}

namespace half_detail {

// The layout of a 16-bit kind's magnitude patterns: binades of F mantissas, each cut into 32 runs
// of W mantissas (the Weibull fit's Gaussian points), inf/NaN from `top` on.
struct Geometry {
    int mbits;            // mantissa bits: 10 (f16) or 7 (bf16)
    int bias;             // exponent bias: 15 (f16) or 127 (bf16)
    std::uint32_t F;      // mantissas per binade
    std::uint32_t W;      // mantissas per run (F / 32)
    std::uint32_t top;    // magnitude patterns >= top are inf/NaN
    explicit Geometry(WeightKind kind) {
        if (kind != WeightKind::f16 && kind != WeightKind::bf16)
            throw std::invalid_argument("16-bit statistics: the kind must be f16 or bf16");
        mbits = kind == WeightKind::f16 ? 10 : 7;
        bias = kind == WeightKind::f16 ? 15 : 127;
        F = 1u << mbits;
        W = F / 32;
        top = 32768u - F;
    }
};

}  // namespace half_detail

}  // namespace neuromfa
