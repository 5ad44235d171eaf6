// Typed IKEv2 payloads (RFC 7296 §3.3–§3.15, RFC 7383 §2.5): one struct per
// payload, each parsed from a bounded body and serialised back. Parsing is
// strict (every count and length must add up, reserved fields are ignored as
// §3 says); meaning (is this SPI size right for this exchange?) is left to
// the state machine. Payload structs own their bytes, so a parsed message
// outlives the datagram it came from.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "control/ike/message.h"
#include "control/ike/messages.h"
#include "src/common/addr.h"
#include "src/common/bytes.h"

namespace nimbus::ike {

using Bytes = std::vector<uint8_t>;

// §3.3.5 Transform attribute we do not interpret (kept for round trips; a
// transform carrying one is not selectable, §3.3.6).
struct Attribute {
    uint16_t type = 0;        // without the AF bit
    bool tv = false;          // AF = 1: 2-octet value in `value`
    uint16_t value = 0;
    Bytes data;               // AF = 0: variable value
    bool operator==(const Attribute&) const = default;
};

// §3.3.2.
struct Transform {
    uint8_t type = 0;
    uint16_t id = 0;
    uint16_t key_bits = 0;        // Key Length attribute (§3.3.5); 0 = absent
    std::vector<Attribute> other; // any other attribute
    bool operator==(const Transform&) const = default;
};

// §3.3.1.
struct Proposal {
    uint8_t number = 1;
    uint8_t protocol = PROTO_IKE;
    Bytes spi;
    std::vector<Transform> transforms;

    bool has(uint8_t type) const;
    const Transform* first(uint8_t type) const;
    bool operator==(const Proposal&) const = default;
};

struct SaPayload {        // §3.3
    std::vector<Proposal> proposals;
    bool operator==(const SaPayload&) const = default;
};

struct KePayload {        // §3.4
    uint16_t group = 0;
    Bytes data;
    bool operator==(const KePayload&) const = default;
};

struct IdPayload {        // §3.5 (IDi and IDr)
    uint8_t id_type = 0;
    Bytes data;
    // ID Type | RESERVED(3) | data: the octets prf(SK_p, ...) covers (§2.15).
    Bytes body() const;
    bool operator==(const IdPayload&) const = default;
};

struct CertPayload {      // §3.6
    uint8_t encoding = 0;
    Bytes data;
    bool operator==(const CertPayload&) const = default;
};

struct CertReqPayload {   // §3.7: data is a list of 20-octet SHA-1 SPKI hashes
    uint8_t encoding = 0;
    Bytes data;
    bool operator==(const CertReqPayload&) const = default;
};

struct AuthPayload {      // §3.8
    uint8_t method = 0;
    Bytes data;
    bool operator==(const AuthPayload&) const = default;
};

struct NoncePayload {     // §3.9: 16..256 octets
    Bytes data;
    bool operator==(const NoncePayload&) const = default;
};

struct NotifyPayload {    // §3.10
    uint8_t protocol = PROTO_NONE;
    Bytes spi;
    uint16_t type = 0;
    Bytes data;
    bool operator==(const NotifyPayload&) const = default;
};

struct DeletePayload {    // §3.11: IKE → no SPIs (size 0); AH/ESP → 4-octet SPIs
    uint8_t protocol = PROTO_ESP;
    std::vector<uint32_t> spis;
    bool operator==(const DeletePayload&) const = default;
};

struct VendorPayload {    // §3.12
    Bytes data;
    bool operator==(const VendorPayload&) const = default;
};

struct TrafficSelector {  // §3.13.1
    uint8_t type = TS_IPV4_ADDR_RANGE;
    uint8_t ip_proto = 0;         // 0 = any
    uint16_t start_port = 0;
    uint16_t end_port = 0xffff;
    IpAddr start;
    IpAddr end;

    static TrafficSelector from_prefix(const Prefix& p, uint8_t ip_proto = 0);
    bool operator==(const TrafficSelector&) const = default;
};

struct TsPayload {        // §3.13 (TSi and TSr)
    std::vector<TrafficSelector> selectors;
    bool operator==(const TsPayload&) const = default;
};

struct CpAttribute {      // §3.15.1
    uint16_t type = 0;
    Bytes value;
    bool operator==(const CpAttribute&) const = default;
};

struct CpPayload {        // §3.15
    uint8_t cfg_type = CFG_REQUEST;
    std::vector<CpAttribute> attrs;
    bool operator==(const CpPayload&) const = default;
};

// §3.14: still encrypted. `body` is IV | ciphertext | ICV; `offset` is where
// the generic header sits in the message (the AAD ends 4 octets later).
struct SkPayload {
    uint8_t first_inner = PT_NONE;
    Bytes body;
    uint32_t offset = 0;
    bool operator==(const SkPayload&) const = default;
};

// RFC 7383 §2.5: one fragment of an SK payload.
struct SkfPayload {
    uint8_t first_inner = PT_NONE;   // only meaningful in fragment 1
    uint16_t number = 1;
    uint16_t total = 1;
    Bytes body;                      // IV | ciphertext | ICV
    uint32_t offset = 0;
    bool operator==(const SkfPayload&) const = default;
};

// EAP, and unknown payloads without the critical bit: kept as octets.
struct OpaquePayload {
    Bytes data;
    bool operator==(const OpaquePayload&) const = default;
};

using Body = std::variant<SaPayload, KePayload, IdPayload, CertPayload, CertReqPayload,
                          AuthPayload, NoncePayload, NotifyPayload, DeletePayload,
                          VendorPayload, TsPayload, CpPayload, SkPayload, SkfPayload,
                          OpaquePayload>;

struct Payload {
    uint8_t type = PT_NONE;
    bool critical = false;
    Body body;

    template <class T> const T* as() const { return std::get_if<T>(&body); }
    template <class T> T* as() { return std::get_if<T>(&body); }
    bool operator==(const Payload&) const = default;
};

// Convenience constructors for the builder side.
Payload make_sa(SaPayload sa);
Payload make_ke(uint16_t group, Bytes data);
Payload make_nonce(Bytes data);
Payload make_id(bool initiator, uint8_t id_type, Bytes data);
Payload make_auth(uint8_t method, Bytes data);
Payload make_cert(uint8_t encoding, Bytes data);
Payload make_certreq(uint8_t encoding, Bytes data);
Payload make_notify(uint16_t type, Bytes data = {}, uint8_t protocol = PROTO_NONE, Bytes spi = {});
Payload make_delete(uint8_t protocol, std::vector<uint32_t> spis = {});
Payload make_vendor(Bytes data);
Payload make_ts(bool initiator, std::vector<TrafficSelector> ts);
Payload make_cp(uint8_t cfg_type, std::vector<CpAttribute> attrs);

// Interprets one raw payload. Unknown non-critical types become Opaque.
ParseError parse_payload(const RawPayload& raw, Payload& out);

// Parses a chain into typed payloads (walk_chain + parse_payload).
ParseError parse_chain(std::span<const uint8_t> buf, uint8_t first, size_t base, bool inner,
                       std::vector<Payload>& out);

// Writes one payload body (no generic header). Returns false if a count or
// length does not fit its wire field (the caller then drops the message).
bool write_body(ByteWriter& w, const Payload& p);

// Writes payloads with generic headers and correct Next Payload chaining:
// each header names the following payload's type, the last one names
// `after_last` (PT_NONE, or PT_SK when an SK payload follows). SK/SKF
// payloads carry their first inner type and must come last. Returns false
// if a payload would exceed 65535 octets.
bool write_chain(ByteWriter& w, std::span<const Payload> payloads, uint8_t after_last = PT_NONE);

// The type to put in the preceding Next Payload field for a chain.
inline uint8_t first_type(std::span<const Payload> payloads, uint8_t if_empty = PT_NONE) {
    return payloads.empty() ? if_empty : payloads.front().type;
}

}  // namespace nimbus::ike
