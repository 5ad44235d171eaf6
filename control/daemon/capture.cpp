// `nimbus debug capture`: pcap files of fast-path packets. The dataplane
// copies what the capture selects (dataplane/capture.h); this drains the
// copies on the control thread and writes a nanosecond pcap file that
// tcpdump and Wireshark read.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "control/daemon/daemon.h"
#include "control/daemon/show.h"
#include "src/common/clock.h"
#include "src/common/log.h"

namespace nimbus::show {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

const char* const kDirNames[] = {"rx", "tx", "tunnel-out-plain", "tunnel-out-esp", "tunnel-in-esp", "tunnel-in-plain"};

struct Capture {
    int fd = -1;
    std::string file, what;
    uint64_t written = 0, bytes = 0, count = 0;
    uint64_t wall0_ns = 0, tsc0 = 0, hz = 1;
    control::Loop::TimerId timer = 0;
    uint64_t by_dir[6] = {};
    bool finished = true;
    std::string started;
};

Capture cap;

void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }

void finish(Daemon& d, const char* why) {
    if (cap.fd >= 0) close(cap.fd);
    cap.fd = -1;
    if (cap.timer) d.loop().cancel(cap.timer);
    cap.timer = 0;
    cap.finished = true;
    dp::capture_stop();
    LOG_INFO("capture", "event=finished what=\"{}\" file={} packets={} reason={}", cap.what, cap.file, cap.written,
             why);
}

void drain(Daemon& d) {
    dp::CapturedPkt pk[64];
    for (int round = 0; round < 32; round++) {
        int n = dp::capture_poll(pk, 64);
        std::string out;
        for (int i = 0; i < n; i++) {
            uint64_t ns = cap.wall0_ns + uint64_t(double(pk[i].tsc - cap.tsc0) * 1e9 / double(cap.hz));
            put32(out, uint32_t(ns / 1000000000ull));
            put32(out, uint32_t(ns % 1000000000ull));
            put32(out, pk[i].caplen);
            put32(out, pk[i].orig_len);
            out.append(reinterpret_cast<const char*>(pk[i].data), pk[i].caplen);
            if (pk[i].dir < 6) cap.by_dir[pk[i].dir]++;
            dp::capture_release(pk[i]);
        }
        if (n && cap.fd >= 0) {
            if (::write(cap.fd, out.data(), out.size()) != ssize_t(out.size())) {
                LOG_ERROR("capture", "event=write_failed file={} error=\"{}\"", cap.file, strerror(errno));
                return finish(d, "write_failed");
            }
            cap.written += uint64_t(n);
            cap.bytes += out.size();
        }
        if (n < 64) break;
    }
    // Done when every reserved copy is accounted for (written or counted as
    // not copied) and nothing waits in the ring.
    dp::CaptureStatus st = dp::capture_status();
    if (st.pending == 0 && st.copied + st.dropped >= cap.count && cap.written >= st.copied)
        finish(d, "count_reached");
}

Result start(Daemon& d, const Args& a, int port, uint32_t tunnel, const std::string& what) {
    if (!cap.finished) return Result::error("% a capture is running; 'debug capture stop' first");
    long count = 100;
    if (a.has("N")) {
        char* end = nullptr;
        count = std::strtol(a.get("N").c_str(), &end, 10);
        if (*end || count < 1 || count > 10000000) return Result::error("% count must be 1..10000000");
    }
    std::string file = a.get("FILE", fmt::format("/tmp/nimbus-{}-{}.pcap", what, wall_s()));
    for (auto& c : file)
        if (c == ' ') return Result::error("% file names may not contain spaces");
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Result::error(fmt::format("% cannot write {}: {}", file, strerror(errno)));
    // pcap global header, nanosecond timestamps, Ethernet.
    std::string h;
    put32(h, 0xa1b23c4d);
    put16(h, 2);
    put16(h, 4);
    put32(h, 0);
    put32(h, 0);
    put32(h, 65535);
    put32(h, 1);
    if (::write(fd, h.data(), h.size()) != ssize_t(h.size())) {
        close(fd);
        return Result::error(fmt::format("% cannot write {}: {}", file, strerror(errno)));
    }
    std::string err;
    cap = Capture{};
    cap.tsc0 = dp::tsc_now();
    cap.hz = dp::tsc_hz();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cap.wall0_ns = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
    if (!dp::capture_start(port, tunnel, uint32_t(count), &err)) {
        close(fd);
        return Result::error("% " + err);
    }
    cap.fd = fd;
    cap.count = uint64_t(count);
    cap.file = file;
    cap.what = what;
    cap.finished = false;
    cap.timer = d.loop().every_ms(20, [&d] { drain(d); });
    LOG_INFO("capture", "event=started what=\"{}\" count={} file={}", what, count, file);
    return Result{0, fmt::format("capturing {} packets of {} to {} ('show capture', 'debug capture stop')\n", count,
                                 what, file),
                  json{{"file", file}, {"count", count}, {"what", what}}};
}

Result status(const Args&) {
    dp::CaptureStatus st = dp::capture_status();
    json dirs = json::object();
    for (int i = 0; i < 6; i++)
        if (cap.by_dir[i]) dirs[kDirNames[i]] = cap.by_dir[i];
    json j = {{"running", !cap.finished}, {"what", cap.what},          {"file", cap.file},
              {"written", cap.written},   {"remaining", st.remaining}, {"dropped", st.dropped},
              {"by_direction", dirs}};
    std::string text = cap.file.empty()
                           ? std::string("no capture yet\n")
                           : fmt::format("capture of {} to {}: {}, {} packets written, {} to go, {} not copied "
                                         "(buffers full)\n",
                                         cap.what, cap.file, cap.finished ? "finished" : "running", cap.written,
                                         st.remaining, st.dropped);
    for (auto& [k, v] : dirs.items()) text += fmt::format("  {:<18} {}\n", k, v.get<uint64_t>());
    return Result{0, text, j};
}

}  // namespace

void register_capture(mgmt::Registry& reg, Daemon& d) {
    reg.add("debug capture PORT [count N] [file FILE]", "pcap of a port's fast-path packets, both directions",
            [&d](const Args& a) {
                int port = d.port_index(a.get("PORT"));
                if (port < 0) return Result::error("% No such port: " + a.get("PORT"));
                return start(d, a, port, UINT32_MAX, a.get("PORT"));
            });
    reg.add("debug capture tunnel TUNNEL [count N] [file FILE]",
            "pcap of a tunnel's packets before encryption and after, both directions", [&d](const Args& a) {
                // As `show tunnels` names it: a name, sN (static) or N (IKE).
                dp::TunnelId id = d.tunnels().resolve(a.get("TUNNEL"));
                dp::TunnelInfo ti;
                if (id == dp::kNoTunnel || !dp::tunnel_info(id, &ti))
                    return Result::error("% No such tunnel in the dataplane: " + a.get("TUNNEL") +
                                         " (a name, sN or an IKE tunnel's ID from 'show tunnels'; an IKE tunnel must be up)");
                return start(d, a, -1, id, "tunnel-" + ti.name);
            });
    reg.add("debug capture stop", "stop the running capture", [&d](const Args&) {
        if (cap.finished) return Result::error("% no capture is running");
        dp::capture_stop();
        drain(d);
        finish(d, "stopped");
        return Result{0, fmt::format("stopped; {} packets in {}\n", cap.written, cap.file), json{{"written", cap.written}}};
    });
    reg.add("show capture", "the state of the last fast-path capture", status);
    reg.values("TUNNEL", [] {
        std::vector<std::string> v;
        for (dp::TunnelId id : dp::tunnel_ids()) {
            dp::TunnelInfo ti;
            if (dp::tunnel_info(id, &ti)) v.push_back(ti.name);
        }
        return v;
    });
}

}  // namespace nimbus::show
