#include <catch2/catch.hpp>

#include <random>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "control/ike/keymat.h"
#include "control/ike/messages.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

std::vector<uint8_t> H(std::string_view s) { return from_hex(s); }
std::string hex(const Secret& s) { return to_hex(s.span()); }

std::vector<uint8_t> cat(std::initializer_list<std::span<const uint8_t>> parts) {
    std::vector<uint8_t> o;
    for (auto p : parts) o.insert(o.end(), p.begin(), p.end());
    return o;
}

// The reference: OpenSSL's one-shot HMAC(), not the code under test.
std::vector<uint8_t> ref_hmac(const EVP_MD* md, std::span<const uint8_t> key, std::span<const uint8_t> data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const uint8_t dummy = 0;
    REQUIRE(HMAC(md, key.empty() ? &dummy : key.data(), int(key.size()), data.data(), data.size(), out, &len));
    return std::vector<uint8_t>(out, out + len);
}

// prf+ written out naively from §2.13.
std::vector<uint8_t> ref_prf_plus(const EVP_MD* md, std::span<const uint8_t> key, std::span<const uint8_t> seed,
                                  size_t n) {
    std::vector<uint8_t> out, t;
    for (uint8_t i = 1; out.size() < n; i++) {
        std::vector<uint8_t> in = t;
        in.insert(in.end(), seed.begin(), seed.end());
        in.push_back(i);
        t = ref_hmac(md, key, in);
        out.insert(out.end(), t.begin(), t.end());
    }
    out.resize(n);
    return out;
}

std::vector<uint8_t> random_bytes(std::mt19937& g, size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(g());
    return v;
}

}  // namespace

// NIST CAVS IKEv2 KDF vectors (SP 800-135, HMAC-SHA-256 count 0), as
// reproduced in NSS's wycheproof-derived ike_sha256_vectors.h.
TEST_CASE("ike: SKEYSEED, prf+ and rekey SKEYSEED match NIST CAVS IKEv2 vectors", "[ike]") {
    auto ni = H("3f302be1abcb28e1");
    auto nr = H("8c332ee006064c9b");
    auto gir = H("0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29");
    Secret seed = skeyseed(PRF_HMAC_SHA2_256, ni, nr, gir);
    CHECK(hex(seed) == "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe");

    auto s = cat({ni, nr, H("40dac39e1e1a8640"), H("8619a1cf9a6e4c07")});
    Secret dkm = prf_plus(PRF_HMAC_SHA2_256, seed, s, 132);
    CHECK(hex(dkm) ==
          "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531"
          "188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b"
          "8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74a"
          "d405c588662c14a04d0d36aa4ab55e90f8986d12d4aad");
    // Shorter outputs are prefixes.
    CHECK(hex(prf_plus(PRF_HMAC_SHA2_256, seed, s, 15)) == "0b137d669b0947d7d026d593f0305a");

    // The same seed split by derive_ike_sa_keys: SK_d is the first 32 octets.
    IkeSaKeys k = derive_ike_sa_keys(PRF_HMAC_SHA2_256, seed, ni, nr, 0x40dac39e1e1a8640ull,
                                     0x8619a1cf9a6e4c07ull, 0, 20);
    CHECK(hex(k.sk_d) == "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ec");

    // §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr).
    Secret rekey = skeyseed_rekey(PRF_HMAC_SHA2_256, k.sk_d,
                                  H("25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c"), ni, nr);
    CHECK(hex(rekey) == "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398");
}

TEST_CASE("ike: prf and prf+ agree with an independent HMAC reference", "[ike]") {
    std::mt19937 g(7296);
    struct Alg {
        uint16_t id;
        const EVP_MD* md;
        size_t len;
    } algs[] = {{PRF_HMAC_SHA2_256, EVP_sha256(), 32}, {PRF_HMAC_SHA2_384, EVP_sha384(), 48},
                {PRF_HMAC_SHA2_512, EVP_sha512(), 64}};
    for (auto& a : algs) {
        CHECK(prf_size(a.id) == a.len);
        for (size_t klen : {0, 1, 16, 64, 200}) {
            auto key = random_bytes(g, klen);
            auto d1 = random_bytes(g, 5), d2 = random_bytes(g, 300);
            INFO("prf " << a.id << " key " << klen);
            CHECK(prf(a.id, key, {d1, d2}).span().size() == a.len);
            CHECK(to_hex(prf(a.id, key, {d1, d2}).span()) == to_hex(ref_hmac(a.md, key, cat({d1, d2}))));
        }
        auto key = random_bytes(g, 48);
        auto seed = random_bytes(g, 80);
        for (size_t n : {size_t(1), a.len - 1, a.len, a.len + 1, 3 * a.len + 7, 255 * a.len}) {
            INFO("prf+ " << a.id << " n=" << n);
            CHECK(to_hex(prf_plus(a.id, key, seed, n).span()) == to_hex(ref_prf_plus(a.md, key, seed, n)));
        }
    }
    CHECK(prf_size(PRF_HMAC_SHA1) == 0);
    CHECK_FALSE(prf_supported(PRF_AES128_XCBC));
}

TEST_CASE("ike: IKE SA keys are SKEYSEED's prf+ split in §2.14 order (AEAD: no SK_a)", "[ike]") {
    std::mt19937 g(2014);
    auto ni = random_bytes(g, 32), nr = random_bytes(g, 32), gir = random_bytes(g, 48);
    uint64_t spi_i = 0x1122334455667788ull, spi_r = 0x99aabbccddeeff00ull;

    // SHA-384 PRF, AES-256-GCM: SK_e = 32 + 4 salt.
    auto ref_seed = ref_hmac(EVP_sha384(), cat({ni, nr}), gir);
    Secret seed = skeyseed(PRF_HMAC_SHA2_384, ni, nr, gir);
    REQUIRE(to_hex(seed.span()) == to_hex(ref_seed));
    ByteWriter s;
    s.bytes(ni);
    s.bytes(nr);
    s.u64(spi_i);
    s.u64(spi_r);
    size_t p = 48, e = encr_keymat_len(ENCR_AES_GCM_16, 256);
    REQUIRE(e == 36);
    auto km = ref_prf_plus(EVP_sha384(), ref_seed, s.data(), 3 * p + 2 * e);
    IkeSaKeys k = derive_ike_sa_keys(PRF_HMAC_SHA2_384, seed, ni, nr, spi_i, spi_r, 0, e);
    auto part = [&](size_t off, size_t n) { return to_hex(std::span<const uint8_t>(km).subspan(off, n)); };
    CHECK(hex(k.sk_d) == part(0, p));
    CHECK(k.sk_ai.empty());
    CHECK(k.sk_ar.empty());
    CHECK(hex(k.sk_ei) == part(p, e));
    CHECK(hex(k.sk_er) == part(p + e, e));
    CHECK(hex(k.sk_pi) == part(p + 2 * e, p));
    CHECK(hex(k.sk_pr) == part(2 * p + 2 * e, p));

    // With an integrity transform the SK_a keys sit between SK_d and SK_e.
    IkeSaKeys k2 = derive_ike_sa_keys(PRF_HMAC_SHA2_384, seed, ni, nr, spi_i, spi_r, 24, 16);
    auto km2 = ref_prf_plus(EVP_sha384(), ref_seed, s.data(), 3 * p + 48 + 32);
    auto part2 = [&](size_t off, size_t n) { return to_hex(std::span<const uint8_t>(km2).subspan(off, n)); };
    CHECK(hex(k2.sk_ai) == part2(p, 24));
    CHECK(hex(k2.sk_ar) == part2(p + 24, 24));
    CHECK(hex(k2.sk_ei) == part2(p + 48, 16));
    CHECK(hex(k2.sk_pr) == part2(2 * p + 48 + 32, p));
}

TEST_CASE("ike: Child SA KEYMAT (§2.17), with and without PFS", "[ike]") {
    std::mt19937 g(2017);
    auto sk_d = random_bytes(g, 32), ni = random_bytes(g, 32), nr = random_bytes(g, 32), gir = random_bytes(g, 32);
    size_t e = encr_keymat_len(ENCR_CHACHA20_POLY1305, 0);
    REQUIRE(e == 36);

    ChildSaKeys k = derive_child_sa_keys(PRF_HMAC_SHA2_256, sk_d, {}, ni, nr, e, 0);
    auto km = ref_prf_plus(EVP_sha256(), sk_d, cat({ni, nr}), 2 * e);
    CHECK(hex(k.encr_i) == to_hex(std::span<const uint8_t>(km).first(e)));
    CHECK(hex(k.encr_r) == to_hex(std::span<const uint8_t>(km).subspan(e, e)));
    CHECK(k.integ_i.empty());

    ChildSaKeys pfs = derive_child_sa_keys(PRF_HMAC_SHA2_256, sk_d, gir, ni, nr, e, 0);
    auto km2 = ref_prf_plus(EVP_sha256(), sk_d, cat({gir, ni, nr}), 2 * e);
    CHECK(hex(pfs.encr_i) == to_hex(std::span<const uint8_t>(km2).first(e)));
    CHECK(hex(pfs.encr_r) == to_hex(std::span<const uint8_t>(km2).subspan(e, e)));
    CHECK_FALSE(pfs.encr_i == k.encr_i);

    // Non-AEAD layout: encr_i, integ_i, encr_r, integ_r.
    ChildSaKeys ni_k = derive_child_sa_keys(PRF_HMAC_SHA2_256, sk_d, {}, ni, nr, 16, 32);
    auto km3 = ref_prf_plus(EVP_sha256(), sk_d, cat({ni, nr}), 96);
    auto part3 = [&](size_t off, size_t n) { return to_hex(std::span<const uint8_t>(km3).subspan(off, n)); };
    CHECK(hex(ni_k.encr_i) == part3(0, 16));
    CHECK(hex(ni_k.integ_i) == part3(16, 32));
    CHECK(hex(ni_k.encr_r) == part3(48, 16));
    CHECK(hex(ni_k.integ_r) == part3(64, 32));
}

TEST_CASE("ike: ENCR keying material lengths include the 4-octet salt", "[ike]") {
    struct Case {
        uint16_t id, bits;
        size_t len;
    } cases[] = {
        {ENCR_AES_GCM_16, 128, 20}, {ENCR_AES_GCM_16, 256, 36}, {ENCR_AES_GCM_16, 192, 0},
        {ENCR_AES_GCM_16, 0, 0},    {ENCR_CHACHA20_POLY1305, 0, 36}, {ENCR_CHACHA20_POLY1305, 256, 0},
        {ENCR_AES_CBC, 128, 0},     {ENCR_AES_GCM_12, 128, 0},
    };
    for (auto& c : cases) {
        INFO(c.id << "/" << c.bits);
        CHECK(encr_keymat_len(c.id, c.bits) == c.len);
    }
}

TEST_CASE("ike: Secret wipes and compares in constant time", "[ike]") {
    Secret a(std::vector<uint8_t>{1, 2, 3});
    Secret b = a;
    CHECK(a == b);
    Secret c = std::move(b);
    CHECK(b.empty());
    CHECK(c == a);
    c.clear();
    CHECK(c.empty());
    CHECK_FALSE(c == a);
    CHECK(a.sub(1, 2).span().size() == 2);
    CHECK(ct_equal(std::vector<uint8_t>{}, std::vector<uint8_t>{}));
    CHECK_FALSE(ct_equal(std::vector<uint8_t>{1}, std::vector<uint8_t>{1, 2}));
}
