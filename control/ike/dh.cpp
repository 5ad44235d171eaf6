#include "control/ike/dh.h"

#include <algorithm>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "control/ike/messages.h"

namespace nimbus::ike {

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PctxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Pctx = std::unique_ptr<EVP_PKEY_CTX, PctxFree>;

// ECP group → OpenSSL curve name and field size in octets.
const char* ecp_curve(uint16_t group, size_t* field) {
    switch (group) {
    case ECP_256: *field = 32; return "P-256";
    case ECP_384: *field = 48; return "P-384";
    case ECP_521: *field = 66; return "P-521";
    }
    return nullptr;
}

int ecp_nid(uint16_t group) {
    switch (group) {
    case ECP_256: return NID_X9_62_prime256v1;
    case ECP_384: return NID_secp384r1;
    case ECP_521: return NID_secp521r1;
    }
    return NID_undef;
}

// An EC public key from an uncompressed point (0x04 | x | y), fully
// validated: on the curve, not infinity, right order (RFC 6989 §2.3).
Pkey ecp_peer(const char* curve, std::span<const uint8_t> x_y) {
    std::vector<uint8_t> point(1 + x_y.size());
    point[0] = 0x04;
    std::copy(x_y.begin(), x_y.end(), point.begin() + 1);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end(),
    };
    Pctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return nullptr;
    Pkey peer(raw);
    Pctx check(EVP_PKEY_CTX_new_from_pkey(nullptr, peer.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
    return peer;
}

std::vector<uint8_t> public_of(uint16_t group, EVP_PKEY* pkey) {
    if (group == CURVE25519) {
        std::vector<uint8_t> pub(32);
        size_t len = pub.size();
        if (EVP_PKEY_get_raw_public_key(pkey, pub.data(), &len) != 1 || len != 32)
            crypto_fatal("X25519 public key");
        return pub;
    }
    size_t field = 0;
    ecp_curve(group, &field);
    std::vector<uint8_t> point(1 + 2 * field);
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(), &len) != 1 ||
        len != point.size() || point[0] != 0x04)
        crypto_fatal("EC public key");
    // RFC 5903 §7: x | y without the point-format octet.
    return std::vector<uint8_t>(point.begin() + 1, point.end());
}

}  // namespace

size_t dh_public_len(uint16_t group) {
    size_t field = 0;
    if (group == CURVE25519) return 32;
    if (ecp_curve(group, &field)) return 2 * field;
    return 0;
}

DhKey::DhKey(uint16_t group, EVP_PKEY* pkey) : group_(group), pkey_(pkey), pub_(public_of(group, pkey)) {}

DhKey::~DhKey() { EVP_PKEY_free(pkey_); }

std::unique_ptr<DhKey> DhKey::generate(uint16_t group) {
    EVP_PKEY* k = nullptr;
    size_t field = 0;
    if (group == CURVE25519) {
        // One keygen context for the process (the control thread's): setting
        // one up per key costs more than the X25519 operation itself.
        static EVP_PKEY_CTX* const ctx = [] {
            EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr);
            if (!c || EVP_PKEY_keygen_init(c) != 1) crypto_fatal("X25519 keygen context");
            return c;
        }();
        if (EVP_PKEY_keygen(ctx, &k) != 1) k = nullptr;
    } else if (const char* curve = ecp_curve(group, &field)) {
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
    } else {
        return nullptr;
    }
    if (!k) crypto_fatal("DH keygen");
    return std::unique_ptr<DhKey>(new DhKey(group, k));
}

std::unique_ptr<DhKey> DhKey::from_private_for_test(uint16_t group, std::span<const uint8_t> priv) {
    if (group == CURVE25519) {
        if (priv.size() != 32) return nullptr;
        EVP_PKEY* k = EVP_PKEY_new_raw_private_key_ex(nullptr, "X25519", nullptr, priv.data(), priv.size());
        if (!k) return nullptr;
        return std::unique_ptr<DhKey>(new DhKey(group, k));
    }
    size_t field = 0;
    const char* curve = ecp_curve(group, &field);
    if (!curve) return nullptr;
    // Compute the public point d·G, then import (d, Q).
    std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> g(EC_GROUP_new_by_curve_name(ecp_nid(group)),
                                                          EC_GROUP_free);
    std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> d(BN_bin2bn(priv.data(), int(priv.size()), nullptr),
                                                        BN_clear_free);
    if (!g || !d) return nullptr;
    std::unique_ptr<EC_POINT, decltype(&EC_POINT_free)> q(EC_POINT_new(g.get()), EC_POINT_free);
    std::vector<uint8_t> point(1 + 2 * field);
    if (!q || EC_POINT_mul(g.get(), q.get(), d.get(), nullptr, nullptr, nullptr) != 1 ||
        EC_POINT_point2oct(g.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(), point.size(),
                           nullptr) != point.size())
        return nullptr;
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                       OSSL_PARAM_BLD_free);
    if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
        return nullptr;
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()),
                                                                    OSSL_PARAM_free);
    Pctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* k = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_KEYPAIR, params.get()) != 1)
        return nullptr;
    return std::unique_ptr<DhKey>(new DhKey(group, k));
}

std::optional<Secret> DhKey::shared_secret(std::span<const uint8_t> peer_value) const {
    if (peer_value.size() != dh_public_len(group_)) return std::nullopt;
    Pkey peer;
    size_t out_len = 0;
    if (group_ == CURVE25519) {
        peer.reset(EVP_PKEY_new_raw_public_key_ex(nullptr, "X25519", nullptr, peer_value.data(), peer_value.size()));
        out_len = 32;
    } else {
        size_t field = 0;
        const char* curve = ecp_curve(group_, &field);
        peer = ecp_peer(curve, peer_value);
        out_len = field;
    }
    if (!peer) return std::nullopt;
    Pctx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 1) != 1)
        return std::nullopt;
    Secret s(out_len);
    size_t len = s.size();
    // OpenSSL itself refuses an all-zero X25519 result (small-order peer).
    if (EVP_PKEY_derive(ctx.get(), s.data(), &len) != 1 || len != out_len) return std::nullopt;
    if (group_ == CURVE25519) {
        // RFC 8031 (Recipient Tests) / RFC 7748 §6.1: an all-zero shared
        // secret means the peer sent a small-order point: abort. Checked
        // here too so the rule does not depend on the library version.
        static const uint8_t zeros[32] = {};
        if (ct_equal(s.span(), zeros)) return std::nullopt;
    }
    return s;
}

}  // namespace nimbus::ike
