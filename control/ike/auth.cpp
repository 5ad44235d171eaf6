#include "control/ike/auth.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include "control/ike/keymat.h"

namespace nimbus::ike {

namespace {

// RFC 7427 Appendix A.3: ecdsa-with-SHA256/384/512 (OIDs 1.2.840.10045.4.3.2
// .. .4), AlgorithmIdentifier without parameters.
const uint8_t kEcdsaSha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
const uint8_t kEcdsaSha384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
const uint8_t kEcdsaSha512[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};

const char kKeyPad[] = "Key Pad for IKEv2";  // §2.15, 17 octets, no NUL

const char* md_name(uint16_t hash) {
    switch (hash) {
    case HASH_SHA2_256: return "SHA256";
    case HASH_SHA2_384: return "SHA384";
    case HASH_SHA2_512: return "SHA512";
    }
    return nullptr;
}

struct BnFree {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// The NIST curve of an EC key, or NID_undef.
int key_curve(EVP_PKEY* key) {
    if (!key || !EVP_PKEY_is_a(key, "EC")) return NID_undef;
    char name[80] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, name, sizeof name, &len) != 1) return NID_undef;
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef) nid = EC_curve_nist2nid(name);
    return nid;
}

// RFC 4754 §3: the fixed method → (curve, hash) binding.
bool rfc4754_params(uint8_t method, int* nid, uint16_t* hash) {
    switch (method) {
    case AUTH_ECDSA_SHA256_P256: *nid = NID_X9_62_prime256v1; *hash = HASH_SHA2_256; return true;
    case AUTH_ECDSA_SHA384_P384: *nid = NID_secp384r1; *hash = HASH_SHA2_384; return true;
    case AUTH_ECDSA_SHA512_P521: *nid = NID_secp521r1; *hash = HASH_SHA2_512; return true;
    }
    return false;
}

// The curves we sign and verify on, built once: EC_GROUP_new_by_curve_name
// costs more than the order check it serves. Immutable after creation and
// kept for the life of the process.
const EC_GROUP* curve_group(int nid) {
    static EC_GROUP* const p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    static EC_GROUP* const p384 = EC_GROUP_new_by_curve_name(NID_secp384r1);
    static EC_GROUP* const p521 = EC_GROUP_new_by_curve_name(NID_secp521r1);
    switch (nid) {
    case NID_X9_62_prime256v1: return p256;
    case NID_secp384r1: return p384;
    case NID_secp521r1: return p521;
    }
    return nullptr;
}

// Octets of the group order for a curve (32, 48, 66); 0 if unknown.
size_t order_len(int nid, const EC_GROUP** out = nullptr) {
    const EC_GROUP* g = curve_group(nid);
    if (!g) return 0;
    size_t n = size_t(EC_GROUP_order_bits(g) + 7) / 8;
    if (out) *out = g;
    return n;
}

// DER definite length, minimal form only (X.690 §10.1). ECDSA signatures up
// to P-521 need at most the one-octet long form.
bool der_length(ByteReader& r, size_t& len) {
    uint8_t b = r.u8();
    if (!r.ok()) return false;
    if (b < 0x80) {
        len = b;
        return true;
    }
    if (b == 0x81) {
        uint8_t l = r.u8();
        if (!r.ok() || l < 0x80) return false;  // would fit the short form
        len = l;
        return true;
    }
    return false;  // indefinite form or longer than needed
}

// DER INTEGER holding a non-negative value, minimally encoded; returns the
// magnitude without the sign octet.
bool der_uint(ByteReader& r, std::span<const uint8_t>& out) {
    if (r.u8() != 0x02) return false;
    size_t len = 0;
    if (!der_length(r, len) || len == 0) return false;
    auto c = r.span(len);
    if (!r.ok()) return false;
    if (c[0] & 0x80) return false;                               // negative
    if (c.size() > 1 && c[0] == 0 && !(c[1] & 0x80)) return false;  // padded
    if (c.size() > 1 && c[0] == 0) c = c.subspan(1);
    out = c;
    return true;
}

std::optional<std::vector<uint8_t>> digest_sign(EVP_PKEY* key, uint16_t hash, std::span<const uint8_t> msg) {
    const char* md = md_name(hash);
    if (!md) return std::nullopt;
    MdCtx ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, key, nullptr) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) != 1)
        return std::nullopt;
    std::vector<uint8_t> sig(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size()) != 1) return std::nullopt;
    sig.resize(len);
    return sig;
}

}  // namespace

std::vector<uint8_t> signed_octets(std::span<const uint8_t> real_message, std::span<const uint8_t> peer_nonce,
                                   uint16_t prf_id, std::span<const uint8_t> sk_p, const IdPayload& id) {
    Bytes rest = id.body();
    Secret maced = prf(prf_id, sk_p, {rest});
    std::vector<uint8_t> out;
    out.reserve(real_message.size() + peer_nonce.size() + maced.size());
    out.insert(out.end(), real_message.begin(), real_message.end());
    out.insert(out.end(), peer_nonce.begin(), peer_nonce.end());
    out.insert(out.end(), maced.data(), maced.data() + maced.size());
    return out;
}

Secret psk_auth(uint16_t prf_id, std::span<const uint8_t> psk, std::span<const uint8_t> octets) {
    std::span<const uint8_t> pad(reinterpret_cast<const uint8_t*>(kKeyPad), sizeof kKeyPad - 1);
    Secret k = prf(prf_id, psk, {pad});
    return prf(prf_id, k, {octets});
}

bool psk_verify(uint16_t prf_id, std::span<const uint8_t> psk, std::span<const uint8_t> octets,
                std::span<const uint8_t> auth_data) {
    Secret want = psk_auth(prf_id, psk, octets);
    return ct_equal(want.span(), auth_data);
}

std::span<const uint8_t> ecdsa_algorithm_id(uint16_t hash) {
    switch (hash) {
    case HASH_SHA2_256: return kEcdsaSha256;
    case HASH_SHA2_384: return kEcdsaSha384;
    case HASH_SHA2_512: return kEcdsaSha512;
    }
    return {};
}

const char* auth_status_name(AuthStatus s) {
    switch (s) {
    case AuthStatus::Ok: return "ok";
    case AuthStatus::UnsupportedMethod: return "unsupported-method";
    case AuthStatus::KeyMismatch: return "key-mismatch";
    case AuthStatus::HashNotAllowed: return "hash-not-allowed";
    case AuthStatus::BadEncoding: return "bad-encoding";
    case AuthStatus::BadSignature: return "bad-signature";
    }
    return "?";
}

std::optional<std::vector<uint8_t>> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t n_len) {
    ByteReader r(der);
    if (r.u8() != 0x30) return std::nullopt;
    size_t seq_len = 0;
    if (!der_length(r, seq_len)) return std::nullopt;
    ByteReader body = r.sub(seq_len);
    if (!r.ok() || !r.empty()) return std::nullopt;  // nothing after the SEQUENCE
    std::span<const uint8_t> rv, sv;
    if (!der_uint(body, rv) || !der_uint(body, sv) || !body.ok() || !body.empty()) return std::nullopt;
    if (rv.size() > n_len || sv.size() > n_len) return std::nullopt;
    std::vector<uint8_t> raw(2 * n_len, 0);
    std::copy(rv.begin(), rv.end(), raw.begin() + ptrdiff_t(n_len - rv.size()));
    std::copy(sv.begin(), sv.end(), raw.begin() + ptrdiff_t(2 * n_len - sv.size()));
    return raw;
}

std::vector<uint8_t> ecdsa_raw_to_der(std::span<const uint8_t> raw) {
    size_t n = raw.size() / 2;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(raw.data(), int(n), nullptr);
    BIGNUM* s = BN_bin2bn(raw.data() + n, int(n), nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) crypto_fatal("ECDSA_SIG");
    int len = i2d_ECDSA_SIG(sig, nullptr);
    std::vector<uint8_t> der(size_t(len > 0 ? len : 0));
    uint8_t* p = der.data();
    if (len <= 0 || i2d_ECDSA_SIG(sig, &p) != len) crypto_fatal("i2d_ECDSA_SIG");
    ECDSA_SIG_free(sig);
    return der;
}

AuthStatus ecdsa_verify_der(EVP_PKEY* pub, uint16_t hash, std::span<const uint8_t> msg,
                            std::span<const uint8_t> der_sig) {
    const char* md = md_name(hash);
    if (!md) return AuthStatus::HashNotAllowed;
    int nid = key_curve(pub);
    const EC_GROUP* group = nullptr;
    size_t n_len = nid == NID_undef ? 0 : order_len(nid, &group);
    if (n_len == 0) return AuthStatus::KeyMismatch;
    auto raw = ecdsa_der_to_raw(der_sig, n_len);
    if (!raw) return AuthStatus::BadEncoding;
    // Only canonical DER gets this far; re-encoding must give the same octets.
    if (ecdsa_raw_to_der(*raw) != std::vector<uint8_t>(der_sig.begin(), der_sig.end()))
        return AuthStatus::BadEncoding;
    // 1 <= r, s < n (SEC 1 §4.1.4 step 1).
    const BIGNUM* order = EC_GROUP_get0_order(group);
    for (size_t half = 0; half < 2; half++) {
        Bn v(BN_bin2bn(raw->data() + half * n_len, int(n_len), nullptr));
        if (!v) crypto_fatal("BN_bin2bn");
        if (BN_is_zero(v.get()) || BN_cmp(v.get(), order) >= 0) return AuthStatus::BadSignature;
    }
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pub, nullptr) != 1)
        return AuthStatus::KeyMismatch;
    int rc = EVP_DigestVerify(ctx.get(), der_sig.data(), der_sig.size(), msg.data(), msg.size());
    return rc == 1 ? AuthStatus::Ok : AuthStatus::BadSignature;
}

std::optional<std::vector<uint8_t>> auth_sign(uint8_t method, EVP_PKEY* key, uint16_t hash,
                                              std::span<const uint8_t> octets) {
    int nid = key_curve(key);
    if (nid == NID_undef) return std::nullopt;
    int want_nid = NID_undef;
    uint16_t fixed_hash = 0;
    if (rfc4754_params(method, &want_nid, &fixed_hash)) {
        if (nid != want_nid) return std::nullopt;
        auto der = digest_sign(key, fixed_hash, octets);
        if (!der) return std::nullopt;
        return ecdsa_der_to_raw(*der, order_len(nid));
    }
    if (method == AUTH_DIGITAL_SIGNATURE) {
        auto alg = ecdsa_algorithm_id(hash);
        if (alg.empty()) return std::nullopt;
        auto der = digest_sign(key, hash, octets);
        if (!der) return std::nullopt;
        std::vector<uint8_t> out;
        out.push_back(uint8_t(alg.size()));
        out.insert(out.end(), alg.begin(), alg.end());
        out.insert(out.end(), der->begin(), der->end());
        return out;
    }
    return std::nullopt;
}

AuthStatus auth_verify(uint8_t method, EVP_PKEY* pub, std::span<const uint8_t> auth_data,
                       std::span<const uint8_t> octets, std::span<const uint16_t> allowed_hashes) {
    int want_nid = NID_undef;
    uint16_t hash = 0;
    if (rfc4754_params(method, &want_nid, &hash)) {
        // RFC 4754 §3: the method fixes the curve; r | s, each |n| octets.
        if (key_curve(pub) != want_nid) return AuthStatus::KeyMismatch;
        size_t n_len = order_len(want_nid);
        if (auth_data.size() != 2 * n_len) return AuthStatus::BadEncoding;
        return ecdsa_verify_der(pub, hash, octets, ecdsa_raw_to_der(auth_data));
    }
    if (method == AUTH_DIGITAL_SIGNATURE) {
        // RFC 7427 §3: ASN.1 Length | AlgorithmIdentifier | Signature Value.
        ByteReader r(auth_data);
        uint8_t alg_len = r.u8();
        auto alg = r.span(alg_len);
        if (!r.ok() || r.empty()) return AuthStatus::BadEncoding;
        uint16_t h = 0;
        for (uint16_t cand : {HASH_SHA2_256, HASH_SHA2_384, HASH_SHA2_512}) {
            auto blob = ecdsa_algorithm_id(cand);
            if (alg.size() == blob.size() && std::equal(alg.begin(), alg.end(), blob.begin())) h = cand;
        }
        if (h == 0) return AuthStatus::UnsupportedMethod;  // RSA, EdDSA, ... not offered
        if (std::find(allowed_hashes.begin(), allowed_hashes.end(), h) == allowed_hashes.end())
            return AuthStatus::HashNotAllowed;
        if (key_curve(pub) == NID_undef) return AuthStatus::KeyMismatch;
        return ecdsa_verify_der(pub, h, octets, r.rest());
    }
    return AuthStatus::UnsupportedMethod;
}

std::vector<uint8_t> encode_hash_algorithms(std::span<const uint16_t> hashes) {
    ByteWriter w;
    for (uint16_t h : hashes) w.u16(h);
    return w.take();
}

std::optional<std::vector<uint16_t>> parse_hash_algorithms(std::span<const uint8_t> data) {
    if (data.empty() || data.size() % 2) return std::nullopt;
    ByteReader r(data);
    std::vector<uint16_t> out;
    while (!r.empty()) out.push_back(r.u16());
    return out;
}

}  // namespace nimbus::ike
