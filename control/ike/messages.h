// Every IKEv2 wire constant in one place (WireGuard's messages.h idea).
// Values are from the IANA "Internet Key Exchange Version 2 (IKEv2)
// Parameters" registry; the RFC that defines each group is named beside it.
// Plain enums with a fixed underlying type: they are wire values, and a value
// we do not know must still be representable (a peer may send anything).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nimbus::ike {

// RFC 7296 §3.1: fixed header size, version octet, flags.
inline constexpr size_t kHeaderLen = 28;
inline constexpr size_t kGenericHeaderLen = 4;      // §3.2
inline constexpr uint8_t kVersion2 = 0x20;          // MjVer 2, MnVer 0
inline constexpr uint8_t kFlagInitiator = 0x08;     // I
inline constexpr uint8_t kFlagVersion = 0x10;       // V (never set in IKEv2)
inline constexpr uint8_t kFlagResponse = 0x20;      // R
inline constexpr uint8_t kCriticalBit = 0x80;       // §3.2, first bit of octet 2

// RFC 7296 §3.1 Exchange Type.
enum ExchangeType : uint8_t {
    IKE_SA_INIT = 34,
    IKE_AUTH = 35,
    CREATE_CHILD_SA = 36,
    INFORMATIONAL = 37,
    IKE_SESSION_RESUME = 38,   // RFC 5723
    IKE_INTERMEDIATE = 43,     // RFC 9242
};

// RFC 7296 §3.2 Next Payload Type.
enum PayloadType : uint8_t {
    PT_NONE = 0,
    PT_SA = 33,
    PT_KE = 34,
    PT_IDI = 35,
    PT_IDR = 36,
    PT_CERT = 37,
    PT_CERTREQ = 38,
    PT_AUTH = 39,
    PT_NONCE = 40,
    PT_NOTIFY = 41,
    PT_DELETE = 42,
    PT_VENDOR = 43,
    PT_TSI = 44,
    PT_TSR = 45,
    PT_SK = 46,
    PT_CP = 47,
    PT_EAP = 48,
    PT_GSPM = 49,              // RFC 6467
    PT_SKF = 53,               // RFC 7383 §2.5
};

// RFC 7296 §3.3.1 Protocol ID (also used in Notify and Delete).
enum ProtocolId : uint8_t {
    PROTO_NONE = 0,
    PROTO_IKE = 1,
    PROTO_AH = 2,
    PROTO_ESP = 3,
};

// RFC 7296 §3.3.2 Transform Type.
enum TransformType : uint8_t {
    TT_ENCR = 1,
    TT_PRF = 2,
    TT_INTEG = 3,
    TT_DH = 4,                 // "Key Exchange Method" since RFC 9370
    TT_ESN = 5,
};

// Transform Type 1 — Encryption Algorithm Transform IDs.
enum EncrId : uint16_t {
    ENCR_AES_CBC = 12,         // RFC 3602
    ENCR_AES_CTR = 13,         // RFC 5930
    ENCR_AES_CCM_16 = 16,      // RFC 5282
    ENCR_AES_GCM_8 = 18,       // RFC 5282
    ENCR_AES_GCM_12 = 19,      // RFC 5282
    ENCR_AES_GCM_16 = 20,      // RFC 5282
    ENCR_NULL_AUTH_AES_GMAC = 21,  // RFC 4543
    ENCR_CHACHA20_POLY1305 = 28,   // RFC 7634
};

// Transform Type 2 — Pseudorandom Function Transform IDs.
enum PrfId : uint16_t {
    PRF_HMAC_SHA1 = 2,
    PRF_AES128_XCBC = 4,
    PRF_HMAC_SHA2_256 = 5,     // RFC 4868
    PRF_HMAC_SHA2_384 = 6,     // RFC 4868
    PRF_HMAC_SHA2_512 = 7,     // RFC 4868
    PRF_AES128_CMAC = 8,
};

// Transform Type 3 — Integrity Algorithm Transform IDs.
enum IntegId : uint16_t {
    AUTH_NONE = 0,
    AUTH_HMAC_SHA1_96 = 2,
    AUTH_HMAC_SHA2_256_128 = 12,   // RFC 4868
    AUTH_HMAC_SHA2_384_192 = 13,
    AUTH_HMAC_SHA2_512_256 = 14,
};

// Transform Type 4 — Diffie-Hellman Group (Key Exchange Method) IDs.
enum DhGroup : uint16_t {
    DH_NONE = 0,
    MODP_2048 = 14,            // RFC 3526
    ECP_256 = 19,              // RFC 5903
    ECP_384 = 20,              // RFC 5903
    ECP_521 = 21,              // RFC 5903
    CURVE25519 = 31,           // RFC 8031
    CURVE448 = 32,             // RFC 8031
};

// Transform Type 5 — Extended Sequence Numbers.
enum EsnId : uint16_t {
    ESN_NO = 0,
    ESN_YES = 1,
};

// RFC 7296 §3.3.5 Transform Attribute Types.
inline constexpr uint16_t kAttrKeyLength = 14;     // TV format
inline constexpr uint16_t kAttrFormatTv = 0x8000;  // AF bit

// RFC 7296 §3.3.1 / §3.3.2 "Last Substruc" values.
inline constexpr uint8_t kLastSubstrucLast = 0;
inline constexpr uint8_t kLastSubstrucProposal = 2;
inline constexpr uint8_t kLastSubstrucTransform = 3;

// RFC 7296 §3.5 Identification Payload ID Type.
enum IdType : uint8_t {
    ID_IPV4_ADDR = 1,
    ID_FQDN = 2,
    ID_RFC822_ADDR = 3,
    ID_IPV6_ADDR = 5,
    ID_DER_ASN1_DN = 9,
    ID_DER_ASN1_GN = 10,
    ID_KEY_ID = 11,
    ID_FC_NAME = 12,           // RFC 4595
    ID_NULL = 13,              // RFC 7619
};

// RFC 7296 §3.6 Certificate Encoding (CERT and CERTREQ).
enum CertEncoding : uint8_t {
    CERT_PKCS7_X509 = 1,
    CERT_PGP = 2,
    CERT_DNS_SIGNED_KEY = 3,
    CERT_X509_SIGNATURE = 4,
    CERT_KERBEROS_TOKEN = 6,
    CERT_CRL = 7,
    CERT_ARL = 8,
    CERT_SPKI = 9,
    CERT_X509_ATTRIBUTE = 10,
    CERT_RAW_RSA_KEY = 11,         // deprecated
    CERT_HASH_URL_X509 = 12,
    CERT_HASH_URL_X509_BUNDLE = 13,
    CERT_OCSP_CONTENT = 14,        // RFC 4806
    CERT_RAW_PUBLIC_KEY = 15,      // RFC 7670
};

// RFC 7296 §3.8 Authentication Method (IANA registry).
enum AuthMethod : uint8_t {
    AUTH_RSA_SIG = 1,
    AUTH_PSK = 2,                  // Shared Key Message Integrity Code
    AUTH_DSS_SIG = 3,
    AUTH_ECDSA_SHA256_P256 = 9,    // RFC 4754
    AUTH_ECDSA_SHA384_P384 = 10,   // RFC 4754
    AUTH_ECDSA_SHA512_P521 = 11,   // RFC 4754
    AUTH_GSPM = 12,                // RFC 6467
    AUTH_NULL = 13,                // RFC 7619
    AUTH_DIGITAL_SIGNATURE = 14,   // RFC 7427
};

// RFC 7427 §7 / IANA "IKEv2 Hash Algorithms" (SIGNATURE_HASH_ALGORITHMS data).
enum HashAlgorithm : uint16_t {
    HASH_SHA1 = 1,
    HASH_SHA2_256 = 2,
    HASH_SHA2_384 = 3,
    HASH_SHA2_512 = 4,
    HASH_IDENTITY = 5,             // RFC 8420
};

// RFC 7296 §3.10.1 Notify Message Types. Errors are < 16384.
enum NotifyType : uint16_t {
    // errors
    N_UNSUPPORTED_CRITICAL_PAYLOAD = 1,
    N_INVALID_IKE_SPI = 4,
    N_INVALID_MAJOR_VERSION = 5,
    N_INVALID_SYNTAX = 7,
    N_INVALID_MESSAGE_ID = 9,
    N_INVALID_SPI = 11,
    N_NO_PROPOSAL_CHOSEN = 14,
    N_INVALID_KE_PAYLOAD = 17,
    N_AUTHENTICATION_FAILED = 24,
    N_SINGLE_PAIR_REQUIRED = 34,
    N_NO_ADDITIONAL_SAS = 35,
    N_INTERNAL_ADDRESS_FAILURE = 36,
    N_FAILED_CP_REQUIRED = 37,
    N_TS_UNACCEPTABLE = 38,
    N_INVALID_SELECTORS = 39,
    N_UNACCEPTABLE_ADDRESSES = 40,     // RFC 4555
    N_UNEXPECTED_NAT_DETECTED = 41,    // RFC 4555
    N_USE_ASSIGNED_HOA = 42,           // RFC 5026
    N_TEMPORARY_FAILURE = 43,
    N_CHILD_SA_NOT_FOUND = 44,

    // status
    N_INITIAL_CONTACT = 16384,
    N_SET_WINDOW_SIZE = 16385,
    N_ADDITIONAL_TS_POSSIBLE = 16386,
    N_IPCOMP_SUPPORTED = 16387,
    N_NAT_DETECTION_SOURCE_IP = 16388,
    N_NAT_DETECTION_DESTINATION_IP = 16389,
    N_COOKIE = 16390,
    N_USE_TRANSPORT_MODE = 16391,
    N_HTTP_CERT_LOOKUP_SUPPORTED = 16392,
    N_REKEY_SA = 16393,
    N_ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
    N_NON_FIRST_FRAGMENTS_ALSO = 16395,
    N_MOBIKE_SUPPORTED = 16396,        // RFC 4555
    N_ADDITIONAL_IP4_ADDRESS = 16397,  // RFC 4555
    N_ADDITIONAL_IP6_ADDRESS = 16398,  // RFC 4555
    N_NO_ADDITIONAL_ADDRESSES = 16399, // RFC 4555
    N_UPDATE_SA_ADDRESSES = 16400,     // RFC 4555
    N_COOKIE2 = 16401,                 // RFC 4555
    N_NO_NATS_ALLOWED = 16402,         // RFC 4555
    N_AUTH_LIFETIME = 16403,           // RFC 4478
    N_MULTIPLE_AUTH_SUPPORTED = 16404, // RFC 4739
    N_ANOTHER_AUTH_FOLLOWS = 16405,    // RFC 4739
    N_REDIRECT_SUPPORTED = 16406,      // RFC 5685
    N_REDIRECT = 16407,                // RFC 5685
    N_REDIRECTED_FROM = 16408,         // RFC 5685
    N_EAP_ONLY_AUTHENTICATION = 16417, // RFC 5998
    N_CHILDLESS_IKEV2_SUPPORTED = 16418,   // RFC 6023
    N_QUICK_CRASH_DETECTION = 16419,       // RFC 6290
    N_IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,     // RFC 6311
    N_IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421, // RFC 6311
    N_IKEV2_MESSAGE_ID_SYNC = 16422,               // RFC 6311
    N_IPSEC_REPLAY_COUNTER_SYNC = 16423,           // RFC 6311
    N_IKEV2_FRAGMENTATION_SUPPORTED = 16430,       // RFC 7383
    N_SIGNATURE_HASH_ALGORITHMS = 16431,           // RFC 7427
    N_PUZZLE = 16434,                              // RFC 8019
    N_USE_PPK = 16435,                             // RFC 8784
    N_INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,     // RFC 9242
};

inline constexpr uint16_t kNotifyErrorMax = 16383;
inline constexpr bool notify_is_error(uint16_t t) { return t <= kNotifyErrorMax; }

// RFC 7296 §3.13.1 Traffic Selector Type.
enum TsType : uint8_t {
    TS_IPV4_ADDR_RANGE = 7,
    TS_IPV6_ADDR_RANGE = 8,
};

// RFC 7296 §3.15 Configuration payload: CFG Type and attribute types.
enum CfgType : uint8_t {
    CFG_REQUEST = 1,
    CFG_REPLY = 2,
    CFG_SET = 3,
    CFG_ACK = 4,
};

enum CfgAttr : uint16_t {
    CFG_INTERNAL_IP4_ADDRESS = 1,
    CFG_INTERNAL_IP4_NETMASK = 2,
    CFG_INTERNAL_IP4_DNS = 3,
    CFG_INTERNAL_IP4_NBNS = 4,
    CFG_INTERNAL_IP4_DHCP = 6,
    CFG_APPLICATION_VERSION = 7,
    CFG_INTERNAL_IP6_ADDRESS = 8,
    CFG_INTERNAL_IP6_DNS = 10,
    CFG_INTERNAL_IP6_DHCP = 12,
    CFG_INTERNAL_IP4_SUBNET = 13,
    CFG_SUPPORTED_ATTRIBUTES = 14,
    CFG_INTERNAL_IP6_SUBNET = 15,
};

// Bounds we enforce (RFC 7296 §3.9: nonce 16..256 octets).
inline constexpr size_t kNonceMin = 16;
inline constexpr size_t kNonceMax = 256;

// Names for logs and `show` output; "?" style fallbacks for unknown values.
const char* exchange_name(uint8_t v);
const char* payload_name(uint8_t v);
const char* notify_name(uint16_t v);
const char* transform_type_name(uint8_t v);
const char* auth_method_name(uint8_t v);

}  // namespace nimbus::ike
