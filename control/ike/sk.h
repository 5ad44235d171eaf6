// Protection of the Encrypted payload (RFC 7296 §3.14) and the Encrypted
// Fragment payload (RFC 7383 §2.5) with the AEADs we negotiate:
//   AES-GCM with a 16-octet ICV, 128/256-bit keys (RFC 5282)
//   ChaCha20-Poly1305 (RFC 7634)
// Both use an 8-octet explicit IV in the payload and a 4-octet salt taken
// from the end of SK_e; the AEAD nonce is salt | IV. The associated data is
// the message from the first octet of the IKE header to the last octet of
// the SK (or SKF) payload header — the IV is not included (RFC 5282 §5.1,
// RFC 7634 §3, RFC 7383 §2.5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "control/ike/secret.h"

namespace nimbus::ike {

class SkCipher {
public:
    static constexpr size_t kIvLen = 8;
    static constexpr size_t kIcvLen = 16;
    static constexpr size_t kSaltLen = 4;

    // `keymat` is SK_ei or SK_er: key | salt (encr_keymat_len octets).
    // Returns nullopt for an unsupported transform or a wrong length.
    static std::optional<SkCipher> create(uint16_t encr_id, uint16_t key_bits,
                                          std::span<const uint8_t> keymat);

    uint16_t encr_id() const { return encr_id_; }

    // AEAD seal: writes pt.size() + 16 octets (ciphertext | ICV) to out.
    bool seal(std::span<const uint8_t> aad, std::span<const uint8_t, kIvLen> iv,
              std::span<const uint8_t> pt, uint8_t* out) const;
    // AEAD open: ct_icv is ciphertext | ICV; writes ct_icv.size() - 16 octets.
    // False on a bad ICV (nothing useful is left in out).
    bool open(std::span<const uint8_t> aad, std::span<const uint8_t, kIvLen> iv,
              std::span<const uint8_t> ct_icv, uint8_t* out) const;

    // IVs come from a 64-bit counter: RFC 5282 §3.1 requires that an IV never
    // repeats under one key, and each direction has its own key (and its own
    // SkCipher), so a counter is enough. It starts at 1.
    std::array<uint8_t, kIvLen> next_iv();
    void set_iv_counter_for_test(uint64_t v) { iv_ctr_ = v; }

private:
    SkCipher() = default;
    uint16_t encr_id_ = 0;
    const void* cipher_ = nullptr;   // EVP_CIPHER*, fetched once per process
    Secret key_;
    std::array<uint8_t, kSaltLen> salt_{};
    uint64_t iv_ctr_ = 1;
};

// What sk_seal appends for n octets of inner payloads: IV, the payloads, the
// Pad Length octet (we send no padding: AEADs need no block alignment) and
// the ICV.
inline constexpr size_t sk_sealed_len(size_t n) { return SkCipher::kIvLen + n + 1 + SkCipher::kIcvLen; }
inline constexpr size_t sk_overhead() { return sk_sealed_len(0); }

// Appends IV | E(inner | pad length) | ICV to `msg`. Everything already in
// `msg` (IKE header .. SK/SKF payload header, with all lengths final) is the
// associated data. Uses the cipher's next IV.
bool sk_seal(SkCipher& c, std::vector<uint8_t>& msg, std::span<const uint8_t> inner);
// The same with an explicit IV (known-answer tests, and callers that manage
// IVs themselves).
bool sk_seal_with_iv(const SkCipher& c, std::vector<uint8_t>& msg, std::span<const uint8_t> inner,
                     std::span<const uint8_t, SkCipher::kIvLen> iv);

// Opens an SK/SKF body (IV | ciphertext | ICV) against `aad` and returns the
// inner payload octets with the padding and Pad Length removed. Any padding
// value is accepted (§3.14). nullopt on a short body, a bad ICV or a Pad
// Length larger than the plaintext.
std::optional<std::vector<uint8_t>> sk_open(const SkCipher& c, std::span<const uint8_t> aad,
                                            std::span<const uint8_t> body);

}  // namespace nimbus::ike
