// nimbus-bench aead: the AEAD alone, through the engine the workers use
// (crypto::Engine: IPsec-MB's single-call GCM API, jobs for ChaCha20), on the
// workload of dpdk-test-crypto-perf's ceiling in scripts/bench/esp.sh: bursts
// of 32 buffers of the given size (imix: 64/576/1420 at 7:4:1), 8-byte AAD,
// 16-byte tag, in place, one core, no packet work at all. Against the
// ceiling it shows what the cipher costs on nimbus's own call path; with the
// harness's per-packet cost it bounds what any forwarder calling the cipher
// this way can reach on that harness.
//
//   nimbus-bench aead [--cipher C] [--dir encrypt|decrypt] [--sizes 64,512,1420,imix] [--seconds S]
//
// One JSON line per size: ops, Mops, TSC cycles per op. Decryption runs over
// the same buffers again and again, in place: a pass over the ciphertexts
// authenticates and leaves the plaintexts, the next one fails the tag check
// and (counter mode) leaves the ciphertexts again, so `authenticated` is
// half the ops; a failed check costs the same work (the whole tag is
// computed and compared in constant time).
#include <getopt.h>
#include <x86intrin.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "dataplane/crypto/aead.h"
#include "src/bench/esp.h"

namespace nimbus::bench {

namespace {

using crypto::Aead;

constexpr size_t kBurst = 32;
constexpr uint32_t kImix[] = {64, 576, 64, 64, 1420, 64, 576, 64, 576, 64, 64, 576};  // 7:4:1

struct Case {
    std::string key;  // "64" ... or "imix"
    std::vector<uint32_t> lens;
};

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

bool parse_aead(const std::string& s, Aead* a) {
    if (s == "aes128gcm") *a = Aead::AesGcm128;
    else if (s == "aes256gcm") *a = Aead::AesGcm256;
    else if (s == "chacha20poly1305") *a = Aead::Chacha20Poly1305;
    else return false;
    return true;
}

// Runs bursts over `c`'s buffers for `seconds`; prints one JSON line.
void run(crypto::Engine& e, const crypto::SaKey& key, const std::string& cipher, bool enc, const Case& c,
         double seconds) {
    // One buffer per op of a burst, sizes cycling through c.lens; tags and
    // IVs apart, as in a packet.
    std::vector<std::vector<uint8_t>> bufs;
    bufs.reserve(kBurst);
    std::vector<crypto::Op> ops(kBurst);
    std::vector<uint8_t> ivs(8 * kBurst), aad(8, 4), tags(16 * kBurst);
    uint64_t bytes_per_burst = 0;
    for (size_t i = 0; i < kBurst; i++) {
        uint32_t len = c.lens[i % c.lens.size()];
        bufs.emplace_back(len, uint8_t(i));
        for (int k = 0; k < 8; k++) ivs[8 * i + k] = uint8_t(i + k);
        ops[i].key = &key;
        ops[i].iv = &ivs[8 * i];
        ops[i].aad = aad.data();
        ops[i].aad_len = crypto::kAadLen;
        ops[i].data = bufs[i].data();
        ops[i].len = len;
        ops[i].tag = &tags[16 * i];
        bytes_per_burst += len;
    }
    if (!enc) e.encrypt(ops);  // the first pass decrypts real ciphertexts
    uint64_t bursts = 0, good = 0;
    double w0 = now_s(), w = w0;
    uint64_t t0 = __rdtsc();
    while (w - w0 < seconds || bursts < 100) {
        good += enc ? e.encrypt(ops) : e.decrypt(ops);
        if ((++bursts & 63) == 0) w = now_s();
    }
    uint64_t cyc = __rdtsc() - t0;
    double secs = now_s() - w0;
    double n = double(bursts * kBurst);
    fmt::print(
        "{{\"bench\":\"aead\",\"engine\":\"{}\",\"cipher\":\"{}\",\"dir\":\"{}\",\"size\":\"{}\",\"ops\":{},"
        "\"{}\":{},\"mops\":{:.3f},\"gbps\":{:.3f},\"tsc_cycles_per_op\":{:.1f},\"seconds\":{:.3f}}}\n",
        e.describe(), cipher, enc ? "encrypt" : "decrypt", c.key, uint64_t(n), enc ? "encrypted" : "authenticated",
        good, n / secs / 1e6, double(bursts * bytes_per_burst) * 8 / secs / 1e9, double(cyc) / n, secs);
}

void usage() {
    fmt::print(stderr,
               "usage: nimbus-bench aead [--cipher aes128gcm|aes256gcm|chacha20poly1305] [--dir encrypt|decrypt]\n"
               "                         [--sizes 64,512,1420,imix] [--seconds S]\n");
}

}  // namespace

int aead_main(int argc, char** argv) {
    std::string cipher = "aes256gcm", dir = "encrypt", sizes = "64,512,1420,imix";
    double seconds = 1;
    static const option opts[] = {{"cipher", required_argument, nullptr, 'c'},
                                  {"dir", required_argument, nullptr, 'd'},
                                  {"sizes", required_argument, nullptr, 'z'},
                                  {"seconds", required_argument, nullptr, 's'},
                                  {nullptr, 0, nullptr, 0}};
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
        switch (o) {
            case 'c': cipher = optarg; break;
            case 'd': dir = optarg; break;
            case 'z': sizes = optarg; break;
            case 's': seconds = std::stod(optarg); break;
            default: usage(); return 2;
        }
    }
    Aead a;
    if (!parse_aead(cipher, &a) || (dir != "encrypt" && dir != "decrypt") || seconds <= 0) {
        usage();
        return 2;
    }
    std::vector<Case> cases;
    for (size_t i = 0; i <= sizes.size();) {
        size_t j = sizes.find(',', i);
        if (j == std::string::npos) j = sizes.size();
        std::string s = sizes.substr(i, j - i);
        i = j + 1;
        if (s == "imix") {
            cases.push_back({s, std::vector<uint32_t>(std::begin(kImix), std::end(kImix))});
            continue;
        }
        int v = 0;
        try {
            v = std::stoi(s);
        } catch (...) {
        }
        if (v < 1 || v > 9000) {
            fmt::print(stderr, "nimbus-bench aead: a size is 1..9000 or imix, not '{}'\n", s);
            return 2;
        }
        cases.push_back({s, {uint32_t(v)}});
    }
    crypto::Engine e;
    std::string err;
    if (!e.init(crypto::Arch::Auto, &err) || !crypto::self_test(e, &err)) {
        fmt::print(stderr, "nimbus-bench aead: {}\n", err);
        return 1;
    }
    crypto::SaKey key;
    std::vector<uint8_t> km(crypto::keymat_len(a), 0x5a);
    if (!e.expand_key(key, a, km, &err)) {
        fmt::print(stderr, "nimbus-bench aead: {}\n", err);
        return 1;
    }
    for (auto& c : cases) run(e, key, cipher, dir == "encrypt", c, seconds);
    return 0;
}

}  // namespace nimbus::bench
