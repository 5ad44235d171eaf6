// Clocks for the control plane and tests (the dataplane uses the TSC).
#pragma once

#include <time.h>

#include <cstdint>

namespace nimbus {

inline uint64_t mono_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t wall_s() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec);
}

}  // namespace nimbus
