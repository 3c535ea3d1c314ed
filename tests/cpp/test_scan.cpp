// count_nonfinite (scan.hpp) against std::isfinite on the widened values, for the four float
// types: every float16/bfloat16 bit pattern, random float32/float64 bit patterns (NaN, inf and
// subnormals among them), unaligned data, the empty case, and 1 vs 8 threads.  ci/sanitize.sh
// runs it under AddressSanitizer + UBSan.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.hpp"
#include "neuromfa/scan.hpp"

using namespace neuromfa;
using neuromfa_test::failures;
using neuromfa_test::throws_invalid;
using neuromfa_test::where;

namespace {

// A half (float16) or bfloat16 pattern is finite when its value, widened exactly, is.
bool half_finite(std::uint16_t bits, bool bf16) {
    if (bf16) {
        std::uint32_t u = std::uint32_t(bits) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return std::isfinite(f);
    }
    return (bits & 0x7C00u) != 0x7C00u;  // float16 has no native type here: its definition
}

template <class T, class U>
void check_wide(std::mt19937_64& rng, FloatKind kind) {
    std::vector<std::uint8_t> bytes(1 + 200003 * sizeof(T));  // an odd offset: unaligned values
    std::int64_t want = 0;
    for (std::size_t i = 0; i < 200003; ++i) {
        U u = static_cast<U>(rng());
        if (i % 7 == 0) u |= kind == FloatKind::f32 ? U(0x7F800000u) : U(0x7FF0000000000000ull);  // inf/NaN
        T x;
        std::memcpy(&x, &u, sizeof(T));
        want += !std::isfinite(x);
        std::memcpy(bytes.data() + 1 + i * sizeof(T), &u, sizeof(T));
    }
    for (int t : {1, 8}) {
        CHECK(count_nonfinite(bytes.data() + 1, 200003, kind, t) == want);
    }
}

}  // namespace

int main() {
    for (bool bf16 : {false, true}) {
        where = bf16 ? "every bfloat16 pattern" : "every float16 pattern";
        std::vector<std::uint8_t> bytes(2 * 65536);
        std::int64_t want = 0;
        for (std::uint32_t b = 0; b < 65536; ++b) {
            bytes[2 * b] = static_cast<std::uint8_t>(b & 0xFF);  // little-endian
            bytes[2 * b + 1] = static_cast<std::uint8_t>(b >> 8);
            want += !half_finite(static_cast<std::uint16_t>(b), bf16);
        }
        const FloatKind kind = bf16 ? FloatKind::bf16 : FloatKind::f16;
        CHECK(count_nonfinite(bytes.data(), 65536, kind, 1) == want);
        CHECK(count_nonfinite(bytes.data(), 65536, kind, 8) == want);
        CHECK(want == (bf16 ? 2 * 128 : 2 * 1024));  // exponent all ones: inf (2) and NaN patterns
    }
    std::mt19937_64 rng(7);
    where = "float32";
    check_wide<float, std::uint32_t>(rng, FloatKind::f32);
    where = "float64";
    check_wide<double, std::uint64_t>(rng, FloatKind::f64);
    where = "edges";
    CHECK(count_nonfinite(nullptr, 0, FloatKind::f32, 4) == 0);
    CHECK(throws_invalid([] { count_nonfinite(nullptr, 3, FloatKind::f16, 1); }));
    CHECK(throws_invalid([] { count_nonfinite(nullptr, -1, FloatKind::f16, 1); }));
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::puts("test_scan: ok");
    return 0;
}
