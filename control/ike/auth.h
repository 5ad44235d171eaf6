// IKEv2 authentication (RFC 7296 §2.15): the octets each side signs, PSK
// MICs, and ECDSA signatures in two encodings:
//   methods 9/10/11 (RFC 4754): ECDSA with SHA-256/P-256, SHA-384/P-384,
//     SHA-512/P-521; signature = r | s, each the size of the group order
//   method 14 (RFC 7427): Digital Signature; AUTH data = ASN.1 length octet |
//     AlgorithmIdentifier | signature, with DER ECDSA-Sig-Value for ECDSA
// Signatures are checked strictly: DER must be canonical (no BER, no extra
// octets, no negative or padded integers) and 1 <= r, s < n, before OpenSSL
// verifies them. Keys are OpenSSL EVP_PKEYs handed in by the PKI module.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <openssl/types.h>

#include "control/ike/payloads.h"
#include "control/ike/secret.h"

namespace nimbus::ike {

// §2.15: InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
// (and symmetrically for the responder), MACedID = prf(SK_p, RestOfIDPayload).
// `peer_nonce` is the other side's Nonce data; `sk_p` is the signer's SK_pi
// or SK_pr; `id` is the signer's own ID payload.
std::vector<uint8_t> signed_octets(std::span<const uint8_t> real_message, std::span<const uint8_t> peer_nonce,
                                   uint16_t prf_id, std::span<const uint8_t> sk_p, const IdPayload& id);

// §2.15: AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>).
Secret psk_auth(uint16_t prf_id, std::span<const uint8_t> psk, std::span<const uint8_t> octets);
bool psk_verify(uint16_t prf_id, std::span<const uint8_t> psk, std::span<const uint8_t> octets,
                std::span<const uint8_t> auth_data);

// RFC 7427 Appendix A: DER AlgorithmIdentifier of ecdsa-with-SHA256/384/512
// for a hash (HASH_SHA2_*); empty if not an ECDSA hash we use.
std::span<const uint8_t> ecdsa_algorithm_id(uint16_t hash);

enum class AuthStatus : uint8_t {
    Ok,
    UnsupportedMethod,   // not PSK, 9/10/11 or 14-with-ECDSA
    KeyMismatch,         // key is not EC, or the wrong curve for a 4754 method
    HashNotAllowed,      // RFC 7427 hash outside the accepted list
    BadEncoding,         // AUTH data or signature encoding refused
    BadSignature,        // well-formed, does not verify
};
const char* auth_status_name(AuthStatus s);

// Signs `octets` with `key` and returns the AUTH payload data for `method`
// (9, 10, 11 or 14; `hash` picks the hash for 14). nullopt if the method
// and key do not fit together.
std::optional<std::vector<uint8_t>> auth_sign(uint8_t method, EVP_PKEY* key, uint16_t hash,
                                              std::span<const uint8_t> octets);

// Verifies AUTH data for a signature method against the peer's public key.
// For method 14 the hash named in the AlgorithmIdentifier must be in
// `allowed_hashes` (what we announced in SIGNATURE_HASH_ALGORITHMS).
AuthStatus auth_verify(uint8_t method, EVP_PKEY* pub, std::span<const uint8_t> auth_data,
                       std::span<const uint8_t> octets, std::span<const uint16_t> allowed_hashes);

// Lower level, used by the above and by tests: ECDSA over `msg` with
// `hash`, the signature as strict DER ECDSA-Sig-Value.
AuthStatus ecdsa_verify_der(EVP_PKEY* pub, uint16_t hash, std::span<const uint8_t> msg,
                            std::span<const uint8_t> der_sig);

// Strict DER ECDSA-Sig-Value <-> r | s (each `n_len` octets). der_to_raw
// refuses non-canonical encodings and values that do not fit.
std::optional<std::vector<uint8_t>> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t n_len);
std::vector<uint8_t> ecdsa_raw_to_der(std::span<const uint8_t> raw);

// RFC 7427 §4: SIGNATURE_HASH_ALGORITHMS notify data, a list of 16-bit hash
// identifiers. parse refuses an empty or odd-length list.
std::vector<uint8_t> encode_hash_algorithms(std::span<const uint16_t> hashes);
std::optional<std::vector<uint16_t>> parse_hash_algorithms(std::span<const uint8_t> data);

}  // namespace nimbus::ike
