// The IKE header (RFC 7296 §3.1) and the generic payload chain (§3.2).
// This layer knows lengths, next-payload chaining and the critical bit; it
// does not interpret payload bodies (payloads.h does). Everything reads from
// a bounded ByteReader and fails closed: a length that does not add up is an
// error, never a guess.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "control/ike/messages.h"
#include "src/common/bytes.h"

namespace nimbus::ike {

// RFC 7296 §3.1.
struct Header {
    uint64_t spi_i = 0;
    uint64_t spi_r = 0;
    uint8_t next_payload = PT_NONE;
    uint8_t version = kVersion2;
    uint8_t exchange = 0;
    uint8_t flags = 0;
    uint32_t message_id = 0;
    uint32_t length = 0;      // whole message, header included

    bool initiator() const { return flags & kFlagInitiator; }
    bool response() const { return flags & kFlagResponse; }
    uint8_t major_version() const { return version >> 4; }

    void write(ByteWriter& w) const;
    // Reads 28 octets; no semantic checks (parse_header does those).
    static Header read(ByteReader& r);

    bool operator==(const Header&) const = default;
};

// Why a message was refused. `notify()` is what RFC 7296 says to answer
// with (§2.21, §2.5, §1.5); whether to answer at all is the state machine's
// call (never to an unauthenticated message that cannot be matched to an SA).
enum class ParseCode : uint8_t {
    Ok = 0,
    Truncated,           // fewer octets than a fixed field needs
    LengthMismatch,      // IKE header length != datagram size
    BadVersion,          // major version != 2
    BadPayloadLength,    // generic header length < 4 or past the end
    UnsupportedCritical, // unknown payload type with the critical bit (§2.5)
    SkNotLast,           // SK/SKF not the last payload (§3.14)
    NestedSk,            // SK/SKF inside an SK payload (§3.14)
    TrailingData,        // octets after the last payload of a chain
    TooManyPayloads,     // more than kMaxPayloads in one chain
    BadBody,             // a payload body that does not parse
    Decrypt,             // SK integrity check or padding failed
};

inline constexpr size_t kMaxPayloads = 128;

struct ParseError {
    ParseCode code = ParseCode::Ok;
    uint8_t payload = PT_NONE;   // the payload type the error is about
    uint32_t offset = 0;         // octet offset in the parsed buffer
    const char* detail = "";     // which check failed (static string)

    bool ok() const { return code == ParseCode::Ok; }
    // RFC 7296: INVALID_MAJOR_VERSION (§1.5), UNSUPPORTED_CRITICAL_PAYLOAD
    // (§2.5, data = the payload type), otherwise INVALID_SYNTAX (§2.21).
    uint16_t notify() const;
    std::string str() const;

    static ParseError fail(ParseCode c, uint8_t payload, size_t offset, const char* detail) {
        return ParseError{c, payload, uint32_t(offset), detail};
    }
};

const char* parse_code_name(ParseCode c);

// One payload of a chain, not yet interpreted.
struct RawPayload {
    uint8_t type = PT_NONE;
    bool critical = false;
    uint8_t next = PT_NONE;            // the generic header's Next Payload field
    uint32_t offset = 0;               // of the generic header, in the whole message
    std::span<const uint8_t> body;     // after the 4-octet generic header
};

// True for payload types this implementation parses (§2.5: only unknown
// types are subject to the critical bit).
bool payload_type_known(uint8_t type);

// Parses and checks the fixed header of a datagram: at least 28 octets,
// major version 2, Length field equal to the datagram size.
ParseError parse_header(std::span<const uint8_t> datagram, Header& out);

// Walks a payload chain that starts with type `first` and must use up `buf`
// exactly. `base` is buf's offset in the whole message (recorded in
// RawPayload::offset). In an outer chain (`inner == false`) an SK or SKF
// payload ends the walk and must run to the end of the buffer; in an inner
// chain (decrypted SK contents) they are refused. Unknown payloads: critical
// → UnsupportedCritical; otherwise kept (callers skip them).
ParseError walk_chain(std::span<const uint8_t> buf, uint8_t first, size_t base, bool inner,
                      std::vector<RawPayload>& out);

// Writes a generic payload header with a zero length; returns the position
// of the length field for patch_length().
size_t write_generic_header(ByteWriter& w, uint8_t next, bool critical);
// Patches the length field written by write_generic_header at `at` so the
// payload ends at the writer's current end. Returns false if over 65535.
bool patch_length(ByteWriter& w, size_t at);

}  // namespace nimbus::ike
