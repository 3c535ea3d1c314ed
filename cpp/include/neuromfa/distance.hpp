// The distance transform d = 1/|w|, the filter 1 < d <= threshold, and numpy-exact rounding
// of distances to integer "keys" (SPEC section 2, steps 1-2).
#pragma once
#include <array>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

// numpy's round(x, decimals): x*10^d, rint (half to even), /10^d; for d < 0 the division and
// multiplication swap.  The power of ten is built as numpy builds it.  A distance is stored as
// its integer key rint(x*10^d) (or rint(x/10^-d)); value(key) gives back numpy's rounded value.
class Rounding {
public:
    explicit Rounding(int decimals) : decimals_(decimals) {
        if (decimals < -15 || decimals > 15)
            throw std::invalid_argument("decimals must lie in [-15, 15], got " + std::to_string(decimals));
        const int n = decimals < 0 ? -decimals : decimals;
        static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
        if (n < 9) {
            factor_ = p10[n];
        } else {
            factor_ = 1e9;
            for (int i = 9; i < n; ++i) factor_ *= 10.0;
        }
    }
    int decimals() const { return decimals_; }
    double key(double d) const { return rint_nonneg(decimals_ >= 0 ? d * factor_ : d / factor_); }

    // rint (round half to even) of x >= 0 without a libm call: adding and removing 2^52 rounds
    // to an integer in the default rounding mode, exactly as rint does.  Needs strict IEEE
    // arithmetic (no -ffast-math), which the build guarantees.
    static double rint_nonneg(double x) {
        const double two52 = 4503599627370496.0;
        if (!(x < two52)) return x;  // already an integer (or NaN / inf)
        const double t = x + two52;
        return t - two52;
    }
    double value(std::int64_t key) const {
        const double k = static_cast<double>(key);
        return decimals_ >= 0 ? k / factor_ : k * factor_;
    }

private:
    int decimals_;
    double factor_;
};

inline std::string fmt(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

// Key codes for edges that do not become distances.
constexpr std::int64_t kFiltered = -1;  // zero weight, |w| >= 1 or d > threshold
constexpr std::int64_t kInvalid = -2;   // NaN or infinite weight

class DistanceFilter {
public:
    // Keeps lower < d <= threshold.  The box-counting filter has lower = 1 (SPEC 2); the node
    // fractal dimension uses lower = 0 (SPEC 5).
    DistanceFilter(double threshold, int decimals, double lower = 1.0)
        : threshold_(threshold), lower_(lower), rounding_(decimals) {
        if (!(lower >= 0.0) || !std::isfinite(lower))
            throw std::invalid_argument("the lower distance bound must be finite and >= 0");
        if (!(threshold > lower) || !std::isfinite(threshold))
            throw std::invalid_argument("threshold must be a finite number > " + fmt(lower) + ", got " + fmt(threshold));
        if (rounding_.key(threshold) > 9.0e15)
            throw std::invalid_argument("threshold * 10**decimals is too large to key distances exactly");
    }
    double threshold() const { return threshold_; }
    double lower() const { return lower_; }
    const Rounding& rounding() const { return rounding_; }

    // Key of one weight given in double precision.
    std::int64_t key_of_weight(double w) const {
        if (!std::isfinite(w)) return kInvalid;
        const double d = 1.0 / std::fabs(w);
        if (!(d > lower_ && d <= threshold_)) return kFiltered;
        return static_cast<std::int64_t>(rounding_.key(d));
    }
    // Inclusive range of the keys that kept distances (1 < d <= threshold) can have.
    std::int64_t min_key() const { return static_cast<std::int64_t>(rounding_.key(lower_)); }
    std::int64_t max_key() const { return static_cast<std::int64_t>(rounding_.key(threshold_)); }
    // Key of an unrounded distance (path lengths).
    std::int64_t key_of_distance(double d) const {
        return static_cast<std::int64_t>(rounding_.key(d));
    }
    // Table of keys for every float16 (or bfloat16) bit pattern: binning is one look-up.
    std::vector<std::int64_t> half_table(bool bfloat16) const {
        std::vector<std::int64_t> table(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) {
            const auto bits = static_cast<std::uint16_t>(h);
            table[h] = key_of_weight(bfloat16 ? bfloat16_to_double(bits) : half_to_double(bits));
        }
        return table;
    }

private:
    double threshold_;
    double lower_;
    Rounding rounding_;
};

}  // namespace neuromfa
