#include "control/ike/sk.h"

#include <algorithm>
#include <memory>

#include <openssl/evp.h>

#include "control/ike/keymat.h"
#include "control/ike/messages.h"

namespace nimbus::ike {

namespace {

const EVP_CIPHER* fetch(const char* name) {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
    if (!c) crypto_fatal("EVP_CIPHER_fetch");
    return c;
}

const EVP_CIPHER* cipher_for(uint16_t encr_id, uint16_t key_bits) {
    // Fetched once each, kept for the life of the process.
    static const EVP_CIPHER* gcm128 = fetch("AES-128-GCM");
    static const EVP_CIPHER* gcm256 = fetch("AES-256-GCM");
    static const EVP_CIPHER* chapoly = fetch("ChaCha20-Poly1305");
    if (encr_id == ENCR_AES_GCM_16 && key_bits == 128) return gcm128;
    if (encr_id == ENCR_AES_GCM_16 && key_bits == 256) return gcm256;
    if (encr_id == ENCR_CHACHA20_POLY1305 && key_bits == 0) return chapoly;
    return nullptr;
}

struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

}  // namespace

std::optional<SkCipher> SkCipher::create(uint16_t encr_id, uint16_t key_bits, std::span<const uint8_t> keymat) {
    size_t need = encr_keymat_len(encr_id, key_bits);
    const EVP_CIPHER* ciph = cipher_for(encr_id, key_bits);
    if (need == 0 || !ciph || keymat.size() != need) return std::nullopt;
    SkCipher c;
    c.encr_id_ = encr_id;
    c.cipher_ = ciph;
    c.key_ = Secret(keymat.first(need - kSaltLen));
    std::copy(keymat.end() - kSaltLen, keymat.end(), c.salt_.begin());
    return c;
}

std::array<uint8_t, SkCipher::kIvLen> SkCipher::next_iv() {
    // A wrap would reuse an IV; 2^64 messages under one key cannot happen
    // before the SA is rekeyed, but fail loudly rather than repeat.
    if (iv_ctr_ == 0) crypto_fatal("SK IV counter exhausted");
    std::array<uint8_t, kIvLen> iv;
    uint64_t v = iv_ctr_++;
    for (int i = 7; i >= 0; i--, v >>= 8) iv[size_t(i)] = uint8_t(v);
    return iv;
}

bool SkCipher::seal(std::span<const uint8_t> aad, std::span<const uint8_t, kIvLen> iv,
                    std::span<const uint8_t> pt, uint8_t* out) const {
    auto* ciph = static_cast<const EVP_CIPHER*>(cipher_);
    uint8_t nonce[12];
    std::copy(salt_.begin(), salt_.end(), nonce);
    std::copy(iv.begin(), iv.end(), nonce + 4);
    Ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex2(ctx.get(), ciph, key_.data(), nonce, nullptr) != 1) return false;
    if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), int(aad.size())) != 1)
        return false;
    if (!pt.empty() && EVP_EncryptUpdate(ctx.get(), out, &len, pt.data(), int(pt.size())) != 1) return false;
    if (EVP_EncryptFinal_ex(ctx.get(), out + pt.size(), &len) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, int(kIcvLen), out + pt.size()) == 1;
}

bool SkCipher::open(std::span<const uint8_t> aad, std::span<const uint8_t, kIvLen> iv,
                    std::span<const uint8_t> ct_icv, uint8_t* out) const {
    if (ct_icv.size() < kIcvLen) return false;
    auto* ciph = static_cast<const EVP_CIPHER*>(cipher_);
    size_t ct_len = ct_icv.size() - kIcvLen;
    uint8_t nonce[12];
    std::copy(salt_.begin(), salt_.end(), nonce);
    std::copy(iv.begin(), iv.end(), nonce + 4);
    uint8_t tag[kIcvLen];
    std::copy(ct_icv.end() - kIcvLen, ct_icv.end(), tag);
    Ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_DecryptInit_ex2(ctx.get(), ciph, key_.data(), nonce, nullptr) != 1) return false;
    if (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), int(aad.size())) != 1)
        return false;
    if (ct_len && EVP_DecryptUpdate(ctx.get(), out, &len, ct_icv.data(), int(ct_len)) != 1) return false;
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, int(kIcvLen), tag) != 1) return false;
    // The ICV check (constant time inside OpenSSL).
    return EVP_DecryptFinal_ex(ctx.get(), out + ct_len, &len) == 1;
}

bool sk_seal_with_iv(const SkCipher& c, std::vector<uint8_t>& msg, std::span<const uint8_t> inner,
                     std::span<const uint8_t, SkCipher::kIvLen> iv) {
    // Plaintext: inner payloads | Padding (none) | Pad Length (0).
    std::vector<uint8_t> pt(inner.begin(), inner.end());
    pt.push_back(0);
    size_t aad_len = msg.size();
    msg.resize(aad_len + sk_sealed_len(inner.size()));
    uint8_t* p = msg.data() + aad_len;
    std::copy(iv.begin(), iv.end(), p);
    bool ok = c.seal({msg.data(), aad_len}, iv, pt, p + SkCipher::kIvLen);
    wipe(pt.data(), pt.size());
    if (!ok) msg.resize(aad_len);
    return ok;
}

bool sk_seal(SkCipher& c, std::vector<uint8_t>& msg, std::span<const uint8_t> inner) {
    auto iv = c.next_iv();
    return sk_seal_with_iv(c, msg, inner, iv);
}

std::optional<std::vector<uint8_t>> sk_open(const SkCipher& c, std::span<const uint8_t> aad,
                                            std::span<const uint8_t> body) {
    // IV, at least the Pad Length octet, and the ICV.
    if (body.size() < sk_overhead()) return std::nullopt;
    std::span<const uint8_t, SkCipher::kIvLen> iv(body.data(), SkCipher::kIvLen);
    auto ct = body.subspan(SkCipher::kIvLen);
    std::vector<uint8_t> pt(ct.size() - SkCipher::kIcvLen);
    if (!c.open(aad, iv, ct, pt.data())) {
        wipe(pt.data(), pt.size());
        return std::nullopt;
    }
    // §3.14: Pad Length is the last plaintext octet; the padding itself may
    // hold any value.
    size_t pad = pt.back();
    if (pad + 1 > pt.size()) return std::nullopt;
    pt.resize(pt.size() - pad - 1);
    return pt;
}

}  // namespace nimbus::ike
