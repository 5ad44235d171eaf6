// nimbusd: the concentrator / edge daemon. A thin main: options, config,
// then the control thread takes over.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "control/config/config.h"
#include "control/daemon/daemon.h"
#include "src/common/memory.h"

namespace {

void usage(FILE* f) {
    fmt::print(f,
               "usage: nimbusd -c FILE [--check]\n"
               "  -c, --config FILE   configuration (YAML)\n"
               "      --check         validate the configuration and exit (0 valid, 2 invalid)\n"
               "  -V, --version       print the version\n"
               "  -h, --help          this text\n");
}

}  // namespace

int main(int argc, char** argv) {
    static const option opts[] = {{"config", required_argument, nullptr, 'c'},
                                  {"check", no_argument, nullptr, 'k'},
                                  {"version", no_argument, nullptr, 'V'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    std::string file;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, nullptr)) != -1) {
        switch (c) {
            case 'c': file = optarg; break;
            case 'k': check = true; break;
            case 'V': fmt::print("nimbusd {}\n", NIMBUS_VERSION); return 0;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (file.empty() || optind != argc) {
        usage(stderr);
        return 2;
    }
    // Read on a thread of its own, so that the config (and yaml-cpp's
    // garbage) is allocated in another malloc arena than the control
    // thread's. The first `config apply` frees this config on a helper
    // thread; in the main arena those frees piled up as fastbin chunks that
    // the control thread's next large allocation consolidated in one go:
    // 45-65 ms at 100,000 tunnels (scripts/bench/cli.sh), past its 50 ms
    // budget. Configs applied later are parsed off the control thread too.
    nimbus::config::Result res;
    std::thread([&] { res = nimbus::config::load(file); }).join();
    if (!res.ok()) {
        for (auto& e : res.errors) fmt::print(stderr, "{}\n", e);
        fmt::print(stderr, "nimbusd: {} error{} in {}; nothing started\n", res.errors.size(),
                   res.errors.size() == 1 ? "" : "s", file);
        return 2;
    }
    if (check) {
        fmt::print("{}: configuration is valid\n", file);
        return 0;
    }
    if (geteuid() != 0) {
        fmt::print(stderr, "nimbusd: must run as root (DPDK, TAP devices, netlink)\n");
        return 1;
    }
    // yaml-cpp's tree is gone, but glibc keeps the pages it freed: 1.4 GB at
    // 100,000 tunnels (scripts/bench/cli.sh rss_mib) until given back.
    nimbus::give_back_memory("startup");
    nimbus::Daemon d(std::move(*res.config), res.tree);
    return d.run();
}
