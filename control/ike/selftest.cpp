#include "control/ike/selftest.h"

#include <memory>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "control/ike/auth.h"
#include "control/ike/codec.h"
#include "control/ike/dh.h"
#include "control/ike/keymat.h"
#include "control/ike/sk.h"

namespace nimbus::ike {

namespace {

std::vector<uint8_t> H(std::string_view s) { return from_hex(s); }

bool chacha_sk() {
    std::vector<uint8_t> keymat(36);
    for (size_t i = 0; i < keymat.size(); i++) keymat[i] = uint8_t(0x80 + i);
    auto c = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, keymat);
    if (!c) return false;
    c->set_iv_counter_for_test(0x1011121314151617ull);
    Header h;
    h.spi_i = 0xc0c1c2c3c4c5c6c7ull;
    h.spi_r = 0xd0d1d2d3d4d5d6d7ull;
    h.exchange = INFORMATIONAL;
    h.message_id = 9;
    auto wire = MessageBuilder(h).add_protected(make_notify(N_SET_WINDOW_SIZE, {0, 0, 0, 10})).build(*c);
    if (!wire ||
        to_hex(*wire) !=
            "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e2025000000000900000045290000291011121314151617"
            "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2")
        return false;
    Message m;
    return parse_message(*wire, m).ok() && open_message(*wire, m, *c).ok() && m.notify(N_SET_WINDOW_SIZE);
}

bool gcm(uint16_t bits, std::string_view key_salt, std::string_view cipher) {
    auto c = SkCipher::create(ENCR_AES_GCM_16, bits, H(key_salt));
    if (!c) return false;
    auto iv = H("facedbaddecaf888");
    auto aad = H("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    auto pt = H("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    std::vector<uint8_t> out(pt.size() + SkCipher::kIcvLen);
    std::span<const uint8_t, 8> ivs(iv.data(), 8);
    if (!c->seal(aad, ivs, pt, out.data()) || to_hex(out) != cipher) return false;
    std::vector<uint8_t> back(pt.size());
    if (!c->open(aad, ivs, out, back.data()) || back != pt) return false;
    out[0] ^= 1;
    return !c->open(aad, ivs, out, back.data());
}

bool prf_vectors() {
    auto ni = H("3f302be1abcb28e1"), nr = H("8c332ee006064c9b");
    Secret seed = skeyseed(PRF_HMAC_SHA2_256, ni, nr,
                           H("0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29"));
    if (to_hex(seed.span()) != "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe") return false;
    ByteWriter s;
    s.bytes(ni);
    s.bytes(nr);
    s.u64(0x40dac39e1e1a8640ull);
    s.u64(0x8619a1cf9a6e4c07ull);
    Secret dkm = prf_plus(PRF_HMAC_SHA2_256, seed, s.data(), 132);
    if (to_hex(dkm.span()) !=
        "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531188d16041b3bb936d2dbb3b"
        "4993a6e768a809160de45d0283f273a6cdf6854379e31be72b8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4"
        "e1c19bdcd4db14b29d98db1a74ad405c588662c14a04d0d36aa4ab55e90f8986d12d4aad")
        return false;
    Secret rekey = skeyseed_rekey(PRF_HMAC_SHA2_256, dkm.sub(0, 32),
                                  H("25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c"), ni, nr);
    return to_hex(rekey.span()) == "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398";
}

bool dh_vectors() {
    auto a = DhKey::from_private_for_test(CURVE25519,
                                          H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    if (!a) return false;
    auto s = a->shared_secret(H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    if (!s || to_hex(s->span()) != "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742") return false;
    auto e = DhKey::from_private_for_test(ECP_256, H("814264145f2f56f2e96a8e337a1284993faf432a5abce59e867b7291d507a3af"));
    if (!e) return false;
    auto t = e->shared_secret(H("b120de4aa36492795346e8de6c2c8646ae06aaea279fa775b3ab0715f6ce51b0"
                                "9f1b7eece20d7b5ed8ec685fa3f071d83727027092a8411385c34dde5708b2b6"));
    return t && to_hex(t->span()) == "dd0f5396219d1ea393310412d19a08f1f5811e9dc8ec8eea7f80d21c820c2788";
}

bool ecdsa_vector() {
    auto pub = H("04"
                 "2442a5cc0ecd015fa3ca31dc8e2bbc70bf42d60cbca20085e0822cb04235e970"
                 "6fc98bd7e50211a4a27102fa3549df79ebcb4bf246b80945cddfe7d509bbfd7d");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()),
        OSSL_PARAM_construct_end(),
    };
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return false;
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);
    auto sig = H("cb28e0999b9c7715fd0a80d8e47a77079716cbbf917dd72e97566ea1c066957c"
                 "86fa3bb4e26cad5bf90b7f81899256ce7594bb1ea0c89212748bff3b3d5b0315");
    const uint8_t abc[] = {'a', 'b', 'c'};
    if (auth_verify(AUTH_ECDSA_SHA256_P256, key.get(), sig, abc, {}) != AuthStatus::Ok) return false;
    sig[5] ^= 1;
    return auth_verify(AUTH_ECDSA_SHA256_P256, key.get(), sig, abc, {}) == AuthStatus::BadSignature;
}

}  // namespace

bool self_test(std::string* failed) {
    struct Check {
        const char* name;
        bool (*run)();
    };
    static const Check checks[] = {
        {"SK ChaCha20-Poly1305 (RFC 7634 App. B)", chacha_sk},
        {"SK AES-128-GCM-16 (GCM test case 4)",
         [] {
             return gcm(128, "feffe9928665731c6d6a8f9467308308cafebabe",
                        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc"
                        "3221a5db94fae95ae7121a47");
         }},
        {"SK AES-256-GCM-16 (GCM test case 16)",
         [] {
             return gcm(256, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308cafebabe",
                        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece"
                        "0f4e1768cddf8853bb2d551b");
         }},
        {"PRF/prf+/rekey HMAC-SHA-256 (NIST CAVS IKEv2)", prf_vectors},
        {"X25519 / ECP-256 (RFC 7748 §6.1, RFC 5114 §A.6)", dh_vectors},
        {"ECDSA P-256/SHA-256 (RFC 4754 §8.1)", ecdsa_vector},
    };
    for (const auto& c : checks) {
        if (!c.run()) {
            if (failed) *failed = c.name;
            return false;
        }
    }
    return true;
}

}  // namespace nimbus::ike
