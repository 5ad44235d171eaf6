#include "src/common/log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "src/common/clock.h"

namespace nimbus::log {

namespace {
std::atomic<int> g_level{int(Level::Info)};
constexpr double kPerSec = 20, kBurst = 50;
}  // namespace

void set_level(Level l) { g_level.store(int(l), std::memory_order_relaxed); }
Level level() { return Level(g_level.load(std::memory_order_relaxed)); }

const char* level_name(Level l) {
    switch (l) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        case Level::Error: return "error";
    }
    return "?";
}

bool parse_level(std::string_view s, Level* out) {
    for (Level l : {Level::Debug, Level::Info, Level::Warn, Level::Error})
        if (s == level_name(l)) {
            *out = l;
            return true;
        }
    return false;
}

bool admit(Site& s) {
    uint64_t now = mono_ns();
    if (s.last_ns == 0) s.tokens = kBurst;
    else s.tokens = std::min(kBurst, s.tokens + double(now - s.last_ns) * kPerSec / 1e9);
    s.last_ns = now;
    if (s.tokens < 1) {
        s.suppressed++;
        return false;
    }
    s.tokens -= 1;
    return true;
}

void write(Level l, std::string_view sub, std::string_view text, uint64_t suppressed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z level={} sub={} {}",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name(l), sub,
                                   text);
    if (suppressed) line += fmt::format(" suppressed={}", suppressed);
    line += '\n';
    // One write(2) per line so lines from different threads never interleave.
    ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
    (void)r;
}

}  // namespace nimbus::log
