#include "control/ike/keymat.h"

#include <algorithm>
#include <memory>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "control/ike/messages.h"

namespace nimbus::ike {

namespace {

const char* prf_digest(uint16_t prf_id) {
    switch (prf_id) {
    case PRF_HMAC_SHA2_256: return "SHA256";
    case PRF_HMAC_SHA2_384: return "SHA384";
    case PRF_HMAC_SHA2_512: return "SHA512";
    }
    return nullptr;
}

EVP_MAC* hmac() {
    // Fetched once; lives for the process.
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) crypto_fatal("EVP_MAC_fetch(HMAC)");
    return mac;
}

struct MacCtxFree {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// A keyed HMAC context; prf+ duplicates it for each block.
MacCtx keyed(uint16_t prf_id, std::span<const uint8_t> key) {
    const char* md = prf_digest(prf_id);
    if (!md) crypto_fatal("unsupported PRF");
    MacCtx ctx(EVP_MAC_CTX_new(hmac()));
    if (!ctx) crypto_fatal("EVP_MAC_CTX_new");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md), 0),
        OSSL_PARAM_construct_end(),
    };
    // HMAC accepts any key length, including zero; OpenSSL wants a non-null
    // pointer for the empty key.
    static const uint8_t empty = 0;
    if (EVP_MAC_init(ctx.get(), key.empty() ? &empty : key.data(), key.size(), params) != 1)
        crypto_fatal("EVP_MAC_init");
    return ctx;
}

void update(EVP_MAC_CTX* c, std::span<const uint8_t> d) {
    if (!d.empty() && EVP_MAC_update(c, d.data(), d.size()) != 1) crypto_fatal("EVP_MAC_update");
}

void final(EVP_MAC_CTX* c, uint8_t* out, size_t n) {
    size_t got = 0;
    if (EVP_MAC_final(c, out, &got, n) != 1 || got != n) crypto_fatal("EVP_MAC_final");
}

}  // namespace

size_t prf_size(uint16_t prf_id) {
    switch (prf_id) {
    case PRF_HMAC_SHA2_256: return 32;
    case PRF_HMAC_SHA2_384: return 48;
    case PRF_HMAC_SHA2_512: return 64;
    }
    return 0;
}

Secret prf(uint16_t prf_id, std::span<const uint8_t> key,
           std::initializer_list<std::span<const uint8_t>> data) {
    size_t n = prf_size(prf_id);
    MacCtx ctx = keyed(prf_id, key);
    for (auto d : data) update(ctx.get(), d);
    Secret out(n);
    final(ctx.get(), out.data(), n);
    return out;
}

Secret prf_plus(uint16_t prf_id, std::span<const uint8_t> key, std::span<const uint8_t> seed, size_t n) {
    size_t h = prf_size(prf_id);
    if (h == 0) crypto_fatal("unsupported PRF");
    // §2.13: the counter is one octet, so at most 255 blocks.
    if (n > 255 * h) crypto_fatal("prf+ output longer than 255 blocks");
    MacCtx base = keyed(prf_id, key);
    size_t blocks = (n + h - 1) / h;
    Secret all(blocks * h);
    for (size_t k = 1; k <= blocks; k++) {
        MacCtx c(EVP_MAC_CTX_dup(base.get()));
        if (!c) crypto_fatal("EVP_MAC_CTX_dup");
        if (k > 1) update(c.get(), all.span().subspan((k - 2) * h, h));  // Tk-1
        update(c.get(), seed);
        uint8_t ctr = uint8_t(k);
        update(c.get(), {&ctr, 1});
        final(c.get(), all.data() + (k - 1) * h, h);
    }
    return all.sub(0, n);
}

Secret skeyseed(uint16_t prf_id, std::span<const uint8_t> ni, std::span<const uint8_t> nr,
                std::span<const uint8_t> g_ir) {
    // The key is Ni | Nr. (§2.14 truncation rules apply only to PRFs with a
    // fixed key size such as AES-XCBC, which we do not offer.)
    Secret key(ni.size() + nr.size());
    std::copy(ni.begin(), ni.end(), key.data());
    std::copy(nr.begin(), nr.end(), key.data() + ni.size());
    return prf(prf_id, key, {g_ir});
}

Secret skeyseed_rekey(uint16_t prf_id, std::span<const uint8_t> old_sk_d, std::span<const uint8_t> g_ir,
                      std::span<const uint8_t> ni, std::span<const uint8_t> nr) {
    return prf(prf_id, old_sk_d, {g_ir, ni, nr});
}

IkeSaKeys derive_ike_sa_keys(uint16_t prf_id, std::span<const uint8_t> skeyseed_v,
                             std::span<const uint8_t> ni, std::span<const uint8_t> nr,
                             uint64_t spi_i, uint64_t spi_r, size_t integ_len, size_t encr_len) {
    ByteWriter seed;
    seed.bytes(ni);
    seed.bytes(nr);
    seed.u64(spi_i);
    seed.u64(spi_r);
    size_t p = prf_size(prf_id);
    size_t total = p + 2 * integ_len + 2 * encr_len + 2 * p;
    Secret km = prf_plus(prf_id, skeyseed_v, seed.data(), total);
    IkeSaKeys k;
    size_t off = 0;
    auto take = [&](size_t n) {
        Secret s = km.sub(off, n);
        off += n;
        return s;
    };
    k.sk_d = take(p);
    k.sk_ai = take(integ_len);
    k.sk_ar = take(integ_len);
    k.sk_ei = take(encr_len);
    k.sk_er = take(encr_len);
    k.sk_pi = take(p);
    k.sk_pr = take(p);
    return k;
}

ChildSaKeys derive_child_sa_keys(uint16_t prf_id, std::span<const uint8_t> sk_d,
                                 std::span<const uint8_t> g_ir, std::span<const uint8_t> ni,
                                 std::span<const uint8_t> nr, size_t encr_len, size_t integ_len) {
    Secret seed(g_ir.size() + ni.size() + nr.size());
    uint8_t* o = seed.data();
    o = std::copy(g_ir.begin(), g_ir.end(), o);
    o = std::copy(ni.begin(), ni.end(), o);
    std::copy(nr.begin(), nr.end(), o);
    Secret km = prf_plus(prf_id, sk_d, seed, 2 * (encr_len + integ_len));
    ChildSaKeys k;
    k.encr_i = km.sub(0, encr_len);
    k.integ_i = km.sub(encr_len, integ_len);
    k.encr_r = km.sub(encr_len + integ_len, encr_len);
    k.integ_r = km.sub(2 * encr_len + integ_len, integ_len);
    return k;
}

size_t encr_keymat_len(uint16_t encr_id, uint16_t key_bits) {
    switch (encr_id) {
    case ENCR_AES_GCM_16:
        if (key_bits == 128 || key_bits == 256) return key_bits / 8 + 4;
        return 0;
    case ENCR_CHACHA20_POLY1305:
        // RFC 7634 §2: fixed 256-bit key; a Key Length attribute is not sent.
        return key_bits == 0 ? 32 + 4 : 0;
    }
    return 0;
}

}  // namespace nimbus::ike
