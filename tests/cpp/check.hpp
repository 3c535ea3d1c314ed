// Minimal checks for the C++ tests: no reliance on assert (Release builds disable it).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace neuromfa_test {
inline int failures = 0;
inline std::string where;  // description of the current case, printed with a failure

template <class F>
bool throws_invalid(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    }
    return false;  // any other exception propagates and fails the run
}
}  // namespace neuromfa_test

#define CHECK(cond)                                                                                    \
    do {                                                                                               \
        if (!(cond)) {                                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed [%s]\n", __FILE__, __LINE__, #cond,         \
                         neuromfa_test::where.c_str());                                                \
            if (++neuromfa_test::failures > 20) std::exit(1);                                          \
        }                                                                                              \
    } while (0)
