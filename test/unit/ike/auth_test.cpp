#include <catch2/catch.hpp>

#include <cstring>
#include <memory>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "control/ike/auth.h"
#include "control/ike/messages.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

std::vector<uint8_t> H(std::string_view s) { return from_hex(s); }

struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

// An EC key pair from a private scalar (test vectors), built with OpenSSL
// directly.
Key ec_key_from_private(int nid, const char* curve, std::string_view priv_hex) {
    auto d = H(priv_hex);
    EC_GROUP* g = EC_GROUP_new_by_curve_name(nid);
    BIGNUM* bn = BN_bin2bn(d.data(), int(d.size()), nullptr);
    EC_POINT* q = EC_POINT_new(g);
    REQUIRE(EC_POINT_mul(g, q, bn, nullptr, nullptr, nullptr) == 1);
    size_t len = EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, nullptr, 0, nullptr);
    std::vector<uint8_t> pub(len);
    EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub.data(), len, nullptr);
    OSSL_PARAM_BLD* b = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0);
    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* k = nullptr;
    REQUIRE(EVP_PKEY_fromdata_init(ctx) == 1);
    REQUIRE(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) == 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EC_POINT_free(q);
    BN_free(bn);
    EC_GROUP_free(g);
    return Key(k);
}

Key pubkey_from_der(std::string_view der_hex) {
    auto der = H(der_hex);
    const unsigned char* p = der.data();
    EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, long(der.size()));
    REQUIRE(k);
    return Key(k);
}

Key generate(const char* curve) { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }

std::vector<uint8_t> ref_hmac(const EVP_MD* md, std::span<const uint8_t> key, std::span<const uint8_t> data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(HMAC(md, key.data(), int(key.size()), data.data(), data.size(), out, &len));
    return std::vector<uint8_t>(out, out + len);
}

std::vector<uint8_t> str(const char* s) { return std::vector<uint8_t>(s, s + std::strlen(s)); }

const uint16_t kAllHashes[] = {HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512};

}  // namespace

TEST_CASE("ike: signed octets are RealMessage | Nonce | prf(SK_p, ID') (§2.15)", "[ike]") {
    auto real = H("0102030405");
    auto nonce = std::vector<uint8_t>(32, 0x4e);
    auto sk_p = std::vector<uint8_t>(48, 0x70);
    IdPayload id{ID_FQDN, str("store-0001.example")};
    auto oct = signed_octets(real, nonce, PRF_HMAC_SHA2_384, sk_p, id);
    std::vector<uint8_t> want = real;
    want.insert(want.end(), nonce.begin(), nonce.end());
    std::vector<uint8_t> rest = {ID_FQDN, 0, 0, 0};
    auto fq = str("store-0001.example");
    rest.insert(rest.end(), fq.begin(), fq.end());
    auto mac = ref_hmac(EVP_sha384(), sk_p, rest);
    want.insert(want.end(), mac.begin(), mac.end());
    CHECK(to_hex(oct) == to_hex(want));
}

TEST_CASE("ike: PSK AUTH = prf(prf(secret, \"Key Pad for IKEv2\"), octets), computed independently", "[ike]") {
    auto psk = str("correct horse battery staple");
    auto octets = H("deadbeef00112233445566778899aabbccddeeff");
    struct Alg {
        uint16_t id;
        const EVP_MD* md;
    } algs[] = {{PRF_HMAC_SHA2_256, EVP_sha256()}, {PRF_HMAC_SHA2_384, EVP_sha384()}};
    for (auto& a : algs) {
        auto k = ref_hmac(a.md, psk, str("Key Pad for IKEv2"));
        auto want = ref_hmac(a.md, k, octets);
        Secret got = psk_auth(a.id, psk, octets);
        CHECK(to_hex(got.span()) == to_hex(want));
        CHECK(psk_verify(a.id, psk, octets, want));
        auto bad = want;
        bad[0] ^= 1;
        CHECK_FALSE(psk_verify(a.id, psk, octets, bad));
        CHECK_FALSE(psk_verify(a.id, psk, octets, std::span<const uint8_t>(want).first(want.size() - 1)));
        CHECK_FALSE(psk_verify(a.id, str("wrong"), octets, want));
    }
    // Pinned values computed with Python's hmac module (a third
    // implementation), so a wrong pad string cannot pass on both sides.
    CHECK(to_hex(psk_auth(PRF_HMAC_SHA2_256, psk, octets).span()) ==
          "ce6a963e822c76e20c468b7333a4d1f0b596bcdbae559635753844fea8ce536c");
    CHECK(to_hex(psk_auth(PRF_HMAC_SHA2_384, psk, octets).span()) ==
          "843d31902d43c739bf9e0c3d88249a859223eccdbd6eaaafdf72075a31aa94e62e5a1d6a3ed41065441daf3959d64a4a");
}

// RFC 4754 §8: ECDSA test vectors (message "abc"), as IKEv2 AUTH data r | s.
TEST_CASE("ike: RFC 4754 §8 ECDSA vectors verify as AUTH methods 9, 10, 11", "[ike]") {
    struct Case {
        uint8_t method;
        int nid;
        const char* curve;
        const char* w;
        const char* r;
        const char* s;
    } cases[] = {
        {AUTH_ECDSA_SHA256_P256, NID_X9_62_prime256v1, "P-256",
         "DC51D3866A15BACDE33D96F992FCA99DA7E6EF0934E7097559C27F1614C88A7F",
         "CB28E0999B9C7715FD0A80D8E47A77079716CBBF917DD72E97566EA1C066957C",
         "86FA3BB4E26CAD5BF90B7F81899256CE7594BB1EA0C89212748BFF3B3D5B0315"},
        {AUTH_ECDSA_SHA384_P384, NID_secp384r1, "P-384",
         "0BEB646634BA87735D77AE4809A0EBEA865535DE4C1E1DCB692E84708E81A5AF62E528C38B2A81B35309668D73524D9F",
         "FB017B914E29149432D8BAC29A514640B46F53DDAB2C69948084E2930F1C8F7E08E07C9C63F2D21A07DCB56A6AF56EB3",
         "B263A1305E057F984D38726A1B46874109F417BCA112674C528262A40A629AF1CBB9F516CE0FA7D2FF630863A00E8B9F"},
        {AUTH_ECDSA_SHA512_P521, NID_secp521r1, "P-521",
         "0065FDA3409451DCAB0A0EAD45495112A3D813C17BFD34BDF8C1209D7DF5849120597779060A7FF9D704ADF78B570FFAD6F062E95C7E0C5D5481C5B153B48B375FA1",
         "0154FD3836AF92D0DCA57DD5341D3053988534FDE8318FC6AAAAB68E2E6F4339B19F2F281A7E0B22C269D93CF8794A9278880ED7DBB8D9362CAEACEE544320552251",
         "017705A7030290D1CEB605A9A1BB03FF9CDD521E87A696EC926C8C10C8362DF4975367101F67D1CF9BCCBF2F3D239534FA509E70AAC851AE01AAC68D62F866472660"},
    };
    auto abc = str("abc");
    for (auto& c : cases) {
        INFO(auth_method_name(c.method));
        Key key = ec_key_from_private(c.nid, c.curve, c.w);
        std::string sig_hex = std::string(c.r) + c.s;
        auto sig = H(sig_hex);
        CHECK(auth_verify(c.method, key.get(), sig, abc, {}) == AuthStatus::Ok);
        auto bad = sig;
        bad[bad.size() / 2 - 1] ^= 1;   // last octet of r
        CHECK(auth_verify(c.method, key.get(), bad, abc, {}) == AuthStatus::BadSignature);
        CHECK(auth_verify(c.method, key.get(), sig, str("abd"), {}) == AuthStatus::BadSignature);
        CHECK(auth_verify(c.method, key.get(), std::span<const uint8_t>(sig).first(sig.size() - 1), abc, {}) ==
              AuthStatus::BadEncoding);
        // r = 0 and s = n are refused before any curve arithmetic.
        auto zero_r = sig;
        std::fill(zero_r.begin(), zero_r.begin() + long(sig.size() / 2), 0);
        CHECK(auth_verify(c.method, key.get(), zero_r, abc, {}) == AuthStatus::BadSignature);

        // Our own signatures in the same encoding verify, and are r | s.
        auto mine = auth_sign(c.method, key.get(), 0, abc);
        REQUIRE(mine);
        CHECK(mine->size() == sig.size());
        CHECK(auth_verify(c.method, key.get(), *mine, abc, {}) == AuthStatus::Ok);
    }
    // The method fixes the curve (RFC 4754 §3).
    Key p256 = generate("P-256");
    CHECK_FALSE(auth_sign(AUTH_ECDSA_SHA384_P384, p256.get(), 0, abc));
    CHECK(auth_verify(AUTH_ECDSA_SHA384_P384, p256.get(), std::vector<uint8_t>(96, 1), abc, {}) ==
          AuthStatus::KeyMismatch);
}

// Wycheproof ecdsa_secp384r1_sha384_test.json (DER signatures), through the
// RFC 7427 Digital Signature path: AUTH data = 12 | ecdsa-with-SHA384 | sig.
TEST_CASE("ike: Wycheproof ECDSA P-384/SHA-384 vectors through RFC 7427 AUTH", "[ike]") {
    Key g1 = pubkey_from_der(
        "3076301006072a8648ce3d020106052b810400220362000429bdb76d5fa741bfd70233cb3a66cc7d44beb3b0663d92a81366"
        "50478bcefb61ef182e155a54345a5e8e5e88f064e5bc9a525ab7f764dad3dae1468c2b419f3b62b9ba917d5e8c4fb1ec4740"
        "4a3fc76474b2713081be9db4c00e043ada9fc4a3");
    Key g2 = pubkey_from_der(
        "3076301006072a8648ce3d020106052b81040022036200042da57dda1089276a543f9ffdac0bff0d976cad71eb7280e7d9bf"
        "d9fee4bdb2f20f47ff888274389772d98cc5752138aa4b6d054d69dcf3e25ec49df870715e34883b1836197d76f8ad962e78"
        "f6571bbc7407b0d6091f9e4d88f014274406174f");
    const std::string R =
        "023012b30abef6b5476fe6b612ae557c0425661e26b44b1bfe19daf2ca28e3113083ba8e4ae4cc45a0320abd3394f1c548d7";
    const std::string S =
        "023100e7bf25603e2d07076ff30b7a2abec473da8b11c572b35fc631991d5de62ddca7525aaba89325dfd04fecc47bff426f82";
    const std::string S_trunc = S.substr(0, S.size() - 2);
    struct Case {
        int tc;
        EVP_PKEY* key;
        std::string msg;
        std::string sig;
        bool valid;
    } cases[] = {
        {1, g1.get(), "",
         "3064023032401249714e9091f05a5e109d5c1216fdc05e98614261aa0dbd9e9cd4415dee29238afbd3b103c1e40ee5c9144aee0f"
         "02304326756fb2c4fd726360dd6479b5849478c7a9d054a833a58c1631c33b63c3441336ddf2c7fe0ed129aae6d4ddfeb753",
         true},
        {2, g1.get(), "4d7367",
         "3066023100d7143a836608b25599a7f28dec6635494c2992ad1e2bbeecb7ef601a9c01746e710ce0d9c48accb38a79ede5b9638f34"
         "02310080f9e165e8c61035bf8aa7b5533960e46dd0e211c904a064edb6de41f797c0eae4e327612ee3f816f4157272bb4fabc9",
         true},
        {3, g1.get(), "313233343030",
         "30650230234503fcca578121986d96be07fbc8da5d894ed8588c6dbcdbe974b4b813b21c52d20a8928f2e2fdac14705b0705498c"
         "023100cd7b9b766b97b53d1a80fc0b760af16a11bf4a59c7c367c6c7275dfb6e18a88091eed3734bf5cf41b3dc6fecd6d3baaf",
         true},
        {4, g1.get(), "0000000000000000000000000000000000000000",
         "306502305cad9ae1565f2588f86d821c2cc1b4d0fdf874331326568f5b0e130e4e0c0ec497f8f5f564212bd2a26ecb782cf0a18d"
         "023100bf2e9d0980fbb00696673e7fbb03e1f854b9d7596b759a17bf6e6e67a95ea6c1664f82dc449ae5ea779abd99c78e6840",
         true},
        // tc 5 and 7: the same r with s and n - s: both valid (ECDSA is
        // malleable; IKEv2 does not require low-s).
        {5, g2.get(), "313233343030",
         "3064" + R +
             "02301840da9fc1d2f8f8900cf485d5413b8c2574ee3a8d4ca03995ca30240e09513805bf6209b58ac7aa9cff54eecd82b9f1",
         true},
        {7, g2.get(), "313233343030", "3065" + R + S, true},
        // DER malleability and encoding errors.
        {6, g2.get(), "313233343030",
         "3064" + R + "0230e7bf25603e2d07076ff30b7a2abec473da8b11c572b35fc631991d5de62ddca7525aaba89325dfd04fecc47bff426f82",
         false},   // s missing its leading 0: negative
        {8, g2.get(), "313233343030", "308165" + R + S, false},      // long-form length
        {9, g2.get(), "313233343030", "30820065" + R + S, false},    // length with leading 0
        {10, g2.get(), "313233343030", "3066" + R + S, false},
        {11, g2.get(), "313233343030", "3064" + R + S, false},
        {12, g2.get(), "313233343030", "30850100000065" + R + S, false},
        {19, g2.get(), "313233343030", "30ff" + R + S, false},
        {20, g2.get(), "313233343030", "3080" + R + S, false},       // indefinite length
        {22, g2.get(), "313233343030", "30", false},
        {23, g2.get(), "313233343030", "3067" + R + S + "0000", false},
        {25, g2.get(), "313233343030", "3065" + R + S + "0000", false},
        {26, g2.get(), "313233343030", "3067" + R + S + "0500", false},
        {29, g2.get(), "313233343030", "30673065" + R + S + "0004deadbeef", false},
        {33, g2.get(), "313233343030", "3081", false},
        {35, g2.get(), "313233343030", "30803065" + R + S + "0000", false},
        {37, g2.get(), "313233343030", "0500", false},
        {38, g2.get(), "313233343030", "2e65" + R + S, false},
        {40, g2.get(), "313233343030", "3165" + R + S, false},
        {43, g2.get(), "313233343030", "3000", false},
        {45, g2.get(), "313233343030", "3064" + R + S_trunc, false},
        {149, g2.get(), "313233343030",
         "3066" + R + "0232ff00e7bf25603e2d07076ff30b7a2abec473da8b11c572b35fc631991d5de62ddca7525aaba89325dfd04fecc47bff426f82",
         false},
        {150, g2.get(), "313233343030", "3035" + R + "090180", false},   // s = infinity (REAL)
        {151, g2.get(), "313233343030", "3035" + R + "020100", false},   // s = 0
        // Range checks: r + n, r - n, -r, n - r, r + 2^384, s + n, -s.
        {152, g2.get(), "313233343030",
         "306602310112b30abef6b5476fe6b612ae557c0425661e26b44b1bfe19a25617aad7485e6312a8589714f647acf7a94cffbe8a724a" + S,
         false},
        {153, g2.get(), "313233343030",
         "30660231ff12b30abef6b5476fe6b612ae557c0425661e26b44b1bfe1a138f7ca6eeda02a462743d328394f8b71dd11a2a25001f64" + S,
         false},
        {155, g2.get(), "313233343030",
         "30650230ed4cf541094ab8901949ed51aa83fbda99e1d94bb4e401e6250d35d71ceecf7c4571b51b33ba5fcdf542cc6b0e3ab729" + S,
         false},
        {156, g2.get(), "313233343030",
         "3066023100ed4cf541094ab8901949ed51aa83fbda99e1d94bb4e401e5ec7083591125fd5b9d8bc2cd7c6b0748e22ee5d5daffe09c" + S,
         false},
        {158, g2.get(), "313233343030",
         "306602310112b30abef6b5476fe6b612ae557c0425661e26b44b1bfe19daf2ca28e3113083ba8e4ae4cc45a0320abd3394f1c548d7" + S,
         false},
        {160, g2.get(), "313233343030",
         "3066023101e7bf25603e2d07076ff30b7a2abec473da8b11c572b35fc5f8fc6adfda650a86aa74b95adbd6874b3cd8dde6cc0798f5" + S,
         false},
        {163, g2.get(), "313233343030",
         "30660231ff1840da9fc1d2f8f8900cf485d5413b8c2574ee3a8d4ca039ce66e2a219d22358ada554576cda202fb0133b8400bd907e" + S,
         false},
        // Special values.
        {168, g2.get(), "313233343030", "3006020100020100", false},   // r = 0, s = 0
        {171, g2.get(), "313233343030",
         "3036020100023100ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
         false},   // r = 0, s = n
        {176, g2.get(), "313233343030", "3006020101020100", false},   // r = 1, s = 0
        {177, g2.get(), "313233343030", "3006020101020101", false},   // r = 1, s = 1
    };
    auto alg = ecdsa_algorithm_id(HASH_SHA2_384);
    REQUIRE(alg.size() == 12);
    const uint16_t allowed[] = {HASH_SHA2_384};
    int valid = 0, invalid = 0;
    for (auto& c : cases) {
        INFO("tcId " << c.tc);
        auto msg = H(c.msg);
        auto sig = H(c.sig);
        std::vector<uint8_t> auth{uint8_t(alg.size())};
        auth.insert(auth.end(), alg.begin(), alg.end());
        auth.insert(auth.end(), sig.begin(), sig.end());
        AuthStatus direct = ecdsa_verify_der(c.key, HASH_SHA2_384, msg, sig);
        AuthStatus via_auth = auth_verify(AUTH_DIGITAL_SIGNATURE, c.key, auth, msg, allowed);
        if (c.valid) {
            CHECK(direct == AuthStatus::Ok);
            CHECK(via_auth == AuthStatus::Ok);
            valid++;
        } else {
            CHECK(direct != AuthStatus::Ok);
            CHECK(via_auth != AuthStatus::Ok);
            invalid++;
        }
    }
    CHECK(valid == 6);
    CHECK(invalid >= 30);
    // Pinned classifications: encoding errors vs out-of-range values.
    CHECK(ecdsa_verify_der(g2.get(), HASH_SHA2_384, H("313233343030"), H("308165" + R + S)) == AuthStatus::BadEncoding);
    CHECK(ecdsa_verify_der(g2.get(), HASH_SHA2_384, H("313233343030"), H("3006020100020100")) ==
          AuthStatus::BadSignature);
}

TEST_CASE("ike: RFC 7427 Digital Signature AUTH: layout, hash policy, tampering", "[ike]") {
    Key key = generate("P-384");
    REQUIRE(key);
    auto octets = H("00112233445566778899");
    for (uint16_t hash : kAllHashes) {
        INFO("hash " << hash);
        auto auth = auth_sign(AUTH_DIGITAL_SIGNATURE, key.get(), hash, octets);
        REQUIRE(auth);
        auto alg = ecdsa_algorithm_id(hash);
        // RFC 7427 §3: ASN.1 Length | AlgorithmIdentifier | Signature Value.
        CHECK((*auth)[0] == alg.size());
        CHECK(std::equal(alg.begin(), alg.end(), auth->begin() + 1));
        CHECK((*auth)[1 + alg.size()] == 0x30);   // DER SEQUENCE
        CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), *auth, octets, kAllHashes) == AuthStatus::Ok);
        const uint16_t other[] = {uint16_t(hash == HASH_SHA2_256 ? HASH_SHA2_512 : HASH_SHA2_256)};
        CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), *auth, octets, other) == AuthStatus::HashNotAllowed);
        auto tampered = octets;
        tampered[3] ^= 0x40;
        CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), *auth, tampered, kAllHashes) ==
              AuthStatus::BadSignature);
        auto cut = *auth;
        cut.resize(1 + alg.size());
        CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), cut, octets, kAllHashes) == AuthStatus::BadEncoding);
    }
    CHECK(to_hex(ecdsa_algorithm_id(HASH_SHA2_256)) == "300a06082a8648ce3d040302");
    CHECK(to_hex(ecdsa_algorithm_id(HASH_SHA2_384)) == "300a06082a8648ce3d040303");
    CHECK(to_hex(ecdsa_algorithm_id(HASH_SHA2_512)) == "300a06082a8648ce3d040304");
    CHECK(ecdsa_algorithm_id(HASH_SHA1).empty());

    // sha256WithRSAEncryption: not an algorithm we accept.
    auto rsa = H("0f300d06092a864886f70d01010b0500" "3006020101020101");
    CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), rsa, octets, kAllHashes) == AuthStatus::UnsupportedMethod);
    // ASN.1 length larger than the data.
    CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), H("20300a"), octets, kAllHashes) == AuthStatus::BadEncoding);
    CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, key.get(), {}, octets, kAllHashes) == AuthStatus::BadEncoding);
    // A different key.
    Key other_key = generate("P-384");
    auto auth = *auth_sign(AUTH_DIGITAL_SIGNATURE, key.get(), HASH_SHA2_384, octets);
    CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, other_key.get(), auth, octets, kAllHashes) == AuthStatus::BadSignature);
    // P-256 and P-521 keys work with method 14 as well.
    for (const char* curve : {"P-256", "P-521"}) {
        Key k = generate(curve);
        auto a = auth_sign(AUTH_DIGITAL_SIGNATURE, k.get(), HASH_SHA2_512, octets);
        REQUIRE(a);
        CHECK(auth_verify(AUTH_DIGITAL_SIGNATURE, k.get(), *a, octets, kAllHashes) == AuthStatus::Ok);
    }
    // Methods we do not do.
    CHECK(auth_verify(AUTH_RSA_SIG, key.get(), auth, octets, kAllHashes) == AuthStatus::UnsupportedMethod);
    CHECK(auth_verify(AUTH_PSK, key.get(), auth, octets, kAllHashes) == AuthStatus::UnsupportedMethod);
    CHECK_FALSE(auth_sign(AUTH_DIGITAL_SIGNATURE, key.get(), HASH_SHA1, octets));
    CHECK_FALSE(auth_sign(AUTH_RSA_SIG, key.get(), HASH_SHA2_256, octets));
}

TEST_CASE("ike: strict DER ECDSA-Sig-Value conversion", "[ike]") {
    // r = 1, s = 0x80 (needs a sign octet).
    auto raw = ecdsa_der_to_raw(H("3007020101020200 80"), 4);
    REQUIRE(raw);
    CHECK(to_hex(*raw) == "0000000100000080");
    CHECK(to_hex(ecdsa_raw_to_der(*raw)) == "300702010102020080");
    const char* bad[] = {
        "",                       // empty
        "3006020101020101 00",    // trailing octet
        "3007020101020180",       // sequence length past the end
        "3006020101020180",       // s negative
        "300702020001020101",     // r with a needless leading zero
        "3005020101020100 00",    // length short
        "3006020001020101",       // zero-length integer... (02 00)
        "3106020101020101",       // SET, not SEQUENCE
        "3006030101020101",       // BIT STRING, not INTEGER
        "308106020101020101",     // long form for a short length
        "3008020101020101 0000",  // extra element
        "300a02050100000000020101",    // r wider than 4 octets
    };
    for (const char* b : bad) {
        INFO(b);
        CHECK_FALSE(ecdsa_der_to_raw(H(b), 4));
    }
}

TEST_CASE("ike: SIGNATURE_HASH_ALGORITHMS notify data (RFC 7427 §4)", "[ike]") {
    CHECK(to_hex(encode_hash_algorithms(kAllHashes)) == "000200030004");
    auto p = parse_hash_algorithms(H("0002000300040005"));
    REQUIRE(p);
    CHECK(*p == std::vector<uint16_t>{HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512, HASH_IDENTITY});
    CHECK_FALSE(parse_hash_algorithms({}));
    CHECK_FALSE(parse_hash_algorithms(H("000200")));
}
