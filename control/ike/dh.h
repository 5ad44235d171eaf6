// Diffie-Hellman (Key Exchange Method) groups for IKEv2, via OpenSSL 3:
//   31 Curve25519  (RFC 8031: 32-octet public value, all-zero result refused)
//   19/20/21 ECP P-256/P-384/P-521 (RFC 5903 §7: public value x | y, shared
//   secret x, each the field size; peer points fully checked, RFC 6989)
// The private key lives inside the EVP_PKEY (OpenSSL clears it on free); the
// shared secret comes back as a wiping Secret.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <openssl/types.h>

#include "control/ike/secret.h"

namespace nimbus::ike {

// Length of the KE payload data for a group; 0 if unsupported.
size_t dh_public_len(uint16_t group);
inline bool dh_supported(uint16_t group) { return dh_public_len(group) != 0; }

class DhKey {
public:
    // A fresh ephemeral key; nullptr for an unsupported group.
    static std::unique_ptr<DhKey> generate(uint16_t group);
    // A key from a known private value (test vectors only): 32 octets for
    // Curve25519 (as in RFC 7748), the big-endian scalar for ECP groups.
    static std::unique_ptr<DhKey> from_private_for_test(uint16_t group, std::span<const uint8_t> priv);

    ~DhKey();
    DhKey(const DhKey&) = delete;
    DhKey& operator=(const DhKey&) = delete;

    uint16_t group() const { return group_; }
    // The Key Exchange Data to send (§3.4).
    std::span<const uint8_t> public_value() const { return pub_; }
    // g^ir from the peer's Key Exchange Data. nullopt if the value has the
    // wrong length, is not a valid point, or gives an all-zero secret.
    std::optional<Secret> shared_secret(std::span<const uint8_t> peer) const;

private:
    DhKey(uint16_t group, EVP_PKEY* pkey);
    uint16_t group_;
    EVP_PKEY* pkey_;
    std::vector<uint8_t> pub_;
};

}  // namespace nimbus::ike
