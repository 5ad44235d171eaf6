// IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18) over the
// negotiated PRF (HMAC-SHA2, RFC 4868). All outputs are Secrets.
//
// With an AEAD cipher (RFC 5282 §7.1, RFC 7634 §2) there is no integrity
// transform: SK_ai/SK_ar are empty (integ_len = 0) and each SK_e carries the
// cipher key followed by its 4-octet salt (encr_len = key + 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "control/ike/secret.h"

namespace nimbus::ike {

// Output (and preferred key) size of a PRF transform; 0 if unsupported.
size_t prf_size(uint16_t prf_id);
inline bool prf_supported(uint16_t prf_id) { return prf_size(prf_id) != 0; }

// prf(K, S) with S given as concatenated parts (§2.13).
Secret prf(uint16_t prf_id, std::span<const uint8_t> key,
           std::initializer_list<std::span<const uint8_t>> data);

// prf+(K, S) = T1 | T2 | ... truncated to n octets, where
//   T1 = prf(K, S | 0x01), Tk = prf(K, Tk-1 | S | k)   (§2.13)
// n must not exceed 255 * prf_size (the counter is one octet).
Secret prf_plus(uint16_t prf_id, std::span<const uint8_t> key, std::span<const uint8_t> seed, size_t n);

// SKEYSEED = prf(Ni | Nr, g^ir)   (§2.14)
Secret skeyseed(uint16_t prf_id, std::span<const uint8_t> ni, std::span<const uint8_t> nr,
                std::span<const uint8_t> g_ir);

// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)   (§2.18, IKE SA rekey;
// prf_id is the OLD IKE SA's PRF).
Secret skeyseed_rekey(uint16_t prf_id, std::span<const uint8_t> old_sk_d, std::span<const uint8_t> g_ir,
                      std::span<const uint8_t> ni, std::span<const uint8_t> nr);

// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)   (§2.14)
struct IkeSaKeys {
    Secret sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr;
};
IkeSaKeys derive_ike_sa_keys(uint16_t prf_id, std::span<const uint8_t> skeyseed,
                             std::span<const uint8_t> ni, std::span<const uint8_t> nr,
                             uint64_t spi_i, uint64_t spi_r, size_t integ_len, size_t encr_len);

// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)   (§2.17). Keys for the
// initiator-to-responder SA come first, encryption before integrity; then the
// responder-to-initiator SA. `g_ir` is empty without PFS.
struct ChildSaKeys {
    Secret encr_i, integ_i;   // initiator → responder
    Secret encr_r, integ_r;   // responder → initiator
};
ChildSaKeys derive_child_sa_keys(uint16_t prf_id, std::span<const uint8_t> sk_d,
                                 std::span<const uint8_t> g_ir, std::span<const uint8_t> ni,
                                 std::span<const uint8_t> nr, size_t encr_len, size_t integ_len);

// Octets of keying material an ENCR transform consumes: cipher key plus the
// 4-octet salt for the AEADs we support (RFC 5282 §7.1, RFC 7634 §2);
// 0 if unsupported.
size_t encr_keymat_len(uint16_t encr_id, uint16_t key_bits);

}  // namespace nimbus::ike
