// A strict reader for the common shape of an end-entity certificate
// (RFC 5280 §4.1): X.509 v3, ECDSA-signed, an EC public key on a named
// curve, and only the extensions a device certificate for IKE carries.
//
// Why it exists: OpenSSL 3.0's d2i_X509 builds a public-key decoder context
// for every certificate (openssl/openssl#17950, #19119): ~80-160 us on the
// development VM, the largest cost of an IKE_AUTH beyond the public-key
// operations. TrustStore::check_peer reads a site's certificate with this
// reader instead and validates it against the trust anchor that issued it;
// anything outside the shape below — or any check that does not pass — goes
// to OpenSSL's full path (d2i_X509 + X509_verify_cert), which then decides.
// So this reader may say "not mine" (nullopt) to anything; it must never
// accept bytes that OpenSSL would refuse to parse.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <vector>

namespace nimbus::pki {

using Bytes = std::span<const uint8_t>;

struct LeafView {
    Bytes tbs;             // the whole TBSCertificate TLV: what the issuer signed
    int digest_nid = 0;    // NID_sha256 / NID_sha384 / NID_sha512 (ecdsa-with-SHAx)
    Bytes signature;       // the ECDSA-Sig-Value DER (the BIT STRING's content)
    Bytes serial;          // the INTEGER TLV
    Bytes serial_value;    // its content (positive, minimal)
    Bytes issuer, subject; // whole Name TLVs
    time_t not_before = 0, not_after = 0;
    const char* curve = nullptr;  // "P-256" / "P-384" / "P-521"
    Bytes point;           // uncompressed point, 0x04 || X || Y
    Bytes akid_keyid;      // authorityKeyIdentifier keyIdentifier, if present
    struct Name {
        uint8_t tag;       // 0x81 rfc822Name, 0x82 dNSName, 0x87 iPAddress
        Bytes value;
    };
    std::vector<Name> alt_names;
};

// nullopt unless `der` is exactly one DER certificate of the shape above.
std::optional<LeafView> read_leaf(Bytes der);

}  // namespace nimbus::pki
