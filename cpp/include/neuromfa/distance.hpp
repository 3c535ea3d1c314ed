// The distance transform d = 1/|w|, the filter 1 < d <= threshold, and numpy-exact rounding
// of distances to integer "keys" (SPEC section 2, steps 1-2).
#pragma once
#include <algorithm>
#include <array>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace neuromfa {

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
    double factor() const { return factor_; }
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
    // Number of keys in that range: the columns of a dense (node x key) table.
    std::int64_t n_keys() const { return max_key() - min_key() + 1; }
    // Key of an unrounded distance (path lengths).
    std::int64_t key_of_distance(double d) const {
        return static_cast<std::int64_t>(rounding_.key(d));
    }
    // Bins (key - kmin, or -1 when filtered) of n float32/float64 weights: the arithmetic of
    // key_of_weight (IEEE double division, rint by adding and removing 2^52), two at a time
    // with SSE2 where available; no branch depends on the data.  Returns true when a weight is
    // NaN or infinite (the caller locates it).
    template <class T>
    bool bins(const T* w, std::int64_t n, std::int64_t kmin, std::int32_t* out) const {
        const double lo = lower_, hi = threshold_, f = rounding_.factor(), two52 = 4503599627370496.0;
        const double base = static_cast<double>(kmin), cap = 2.0 * threshold_ + 2.0;
        const bool mul = rounding_.decimals() >= 0;
        int bad = 0;
        std::int64_t e = 0;
#if defined(__SSE2__)
        const __m128d vone = _mm_set1_pd(1.0), vzero = _mm_setzero_pd(), vlo = _mm_set1_pd(lo), vhi = _mm_set1_pd(hi);
        const __m128d vf = _mm_set1_pd(f), v52 = _mm_set1_pd(two52), vbase = _mm_set1_pd(base), vcap = _mm_set1_pd(cap);
        const __m128d sign = _mm_set1_pd(-0.0);
        for (; e + 2 <= n; e += 2) {
            __m128d a;
            if constexpr (sizeof(T) == 4) {
                a = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + e))));
            } else {
                a = _mm_loadu_pd(reinterpret_cast<const double*>(w + e));
            }
            const __m128d d = _mm_div_pd(vone, _mm_andnot_pd(sign, a));
            bad |= (~_mm_movemask_pd(_mm_cmpgt_pd(d, vzero))) & 3;  // NaN -> NaN, +-inf -> 0
            const __m128d keep = _mm_and_pd(_mm_cmpgt_pd(d, vlo), _mm_cmple_pd(d, vhi));
            const __m128d x = _mm_min_pd(d, vcap);
            const __m128d scaled = mul ? _mm_mul_pd(x, vf) : _mm_div_pd(x, vf);
            const __m128d r = _mm_sub_pd(_mm_sub_pd(_mm_add_pd(scaled, v52), v52), vbase);
            const __m128i k = _mm_cvttpd_epi32(r);                                   // 2 x int32, low half
            const __m128i m = _mm_shuffle_epi32(_mm_castpd_si128(keep), 0x08);       // lanes 0, 2
            const __m128i res = _mm_or_si128(_mm_and_si128(k, m), _mm_andnot_si128(m, _mm_set1_epi32(-1)));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), res);
        }
#endif
        for (; e < n; ++e) {
            const double a = std::fabs(static_cast<double>(w[e]));
            const double d = 1.0 / a;
            bad |= !(d > 0.0);
            const double x = std::min(d, cap);
            const double r = ((mul ? x * f : x / f) + two52) - two52;
            out[e] = (d > lo && d <= hi) ? static_cast<std::int32_t>(r - base) : -1;
        }
        return bad != 0;
    }

private:
    double threshold_;
    double lower_;
    Rounding rounding_;
};

}  // namespace neuromfa
