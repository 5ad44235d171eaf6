#include "src/common/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include "src/common/clock.h"
#include "src/common/log.h"

namespace nimbus {

namespace {
long resident_pages() {
    long size = 0, rss = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (std::fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
    std::fclose(f);
    return rss;
}
}  // namespace

long give_back_memory(const char* after) {
    long before = resident_pages();
    uint64_t t0 = mono_ns();
    malloc_trim(0);
    long now = resident_pages();
    long mib = before > now ? (before - now) * sysconf(_SC_PAGESIZE) / (1 << 20) : 0;
    if (mib > 0)
        LOG_INFO("memory", "event=memory_returned after={} mib={} ms={:.1f}", after, mib,
                 double(mono_ns() - t0) / 1e6);
    return mib;
}

}  // namespace nimbus
