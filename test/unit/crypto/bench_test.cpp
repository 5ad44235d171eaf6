// Micro-benchmark, a hidden test case (not run by `meson test`):
//   nimbus-unit-crypto '[.bench]'
// Prints TSC cycles per packet for bursts of 32 packets, per cipher and size,
// encrypt and decrypt, for both AES-GCM drivers (IPsec-MB's single-call
// API vs its job API). A design hint, not a test: it asserts only that every
// operation succeeded.
#include <catch2/catch.hpp>

#include <x86intrin.h>

#include <cstdio>
#include <vector>

#include "dataplane/crypto/aead.h"

using namespace nimbus::crypto;

namespace {

double cycles_per_packet(Engine& e, bool enc, std::vector<Op>& ops, int rounds) {
    uint64_t best = ~uint64_t(0);
    for (int rep = 0; rep < 7; rep++) {
        uint64_t t0 = __rdtsc();
        uint32_t good = 0;
        for (int r = 0; r < rounds; r++) good += enc ? e.encrypt(ops) : e.decrypt(ops);
        uint64_t t = __rdtsc() - t0;
        // Decrypting garbage fails the tag check but costs the same work.
        if (enc) REQUIRE(good == ops.size() * size_t(rounds));
        if (t < best) best = t;
    }
    return double(best) / double(ops.size() * size_t(rounds));
}

}  // namespace

TEST_CASE("crypto micro-benchmark", "[.bench]") {
    Engine e;
    REQUIRE(e.init());
    std::string err;
    REQUIRE(self_test(e, &err));
    std::printf("engine: %s; TSC cycles/packet, bursts of 32, best of 7\n", e.describe().c_str());
    constexpr size_t kBurst = 32;
    for (Aead a : {Aead::AesGcm128, Aead::AesGcm256, Aead::Chacha20Poly1305}) {
        SaKey key;
        std::vector<uint8_t> km(keymat_len(a), 0x5a);
        REQUIRE(e.expand_key(key, a, km));
        for (GcmPath path : {GcmPath::Direct, GcmPath::Job}) {
            if (a == Aead::Chacha20Poly1305 && path == GcmPath::Direct) continue;  // always jobs
            e.set_gcm_path_for_test(path);
            for (uint32_t len : {64u, 512u, 1420u}) {
                std::vector<std::vector<uint8_t>> bufs(kBurst, std::vector<uint8_t>(len, 1));
                std::vector<uint8_t> iv(8 * kBurst, 3), aad(8, 4), tags(16 * kBurst);
                std::vector<Op> ops(kBurst);
                for (size_t i = 0; i < kBurst; i++) {
                    ops[i].key = &key;
                    ops[i].iv = &iv[8 * i];
                    ops[i].aad = aad.data();
                    ops[i].aad_len = 8;
                    ops[i].data = bufs[i].data();
                    ops[i].len = len;
                    ops[i].tag = &tags[16 * i];
                }
                int rounds = len > 1000 ? 2000 : 5000;
                double enc = cycles_per_packet(e, true, ops, rounds);
                double dec = cycles_per_packet(e, false, ops, rounds);
                std::printf("  %-17s %-9s %5u B: encrypt %6.0f  decrypt %6.0f  (%.2f c/B)\n",
                            std::string(name(a)).c_str(),
                            a == Aead::Chacha20Poly1305 ? "job"
                            : path == GcmPath::Direct   ? "direct"
                                                        : "job",
                            len, enc, dec, enc / len);
            }
        }
    }
    e.set_gcm_path_for_test(GcmPath::Direct);
}
