#include "control/ike/message.h"

#include <fmt/format.h>

namespace nimbus::ike {

void Header::write(ByteWriter& w) const {
    w.u64(spi_i);
    w.u64(spi_r);
    w.u8(next_payload);
    w.u8(version);
    w.u8(exchange);
    w.u8(flags);
    w.u32(message_id);
    w.u32(length);
}

Header Header::read(ByteReader& r) {
    Header h;
    h.spi_i = r.u64();
    h.spi_r = r.u64();
    h.next_payload = r.u8();
    h.version = r.u8();
    h.exchange = r.u8();
    h.flags = r.u8();
    h.message_id = r.u32();
    h.length = r.u32();
    return h;
}

const char* parse_code_name(ParseCode c) {
    switch (c) {
    case ParseCode::Ok: return "ok";
    case ParseCode::Truncated: return "truncated";
    case ParseCode::LengthMismatch: return "length-mismatch";
    case ParseCode::BadVersion: return "bad-version";
    case ParseCode::BadPayloadLength: return "bad-payload-length";
    case ParseCode::UnsupportedCritical: return "unsupported-critical-payload";
    case ParseCode::SkNotLast: return "sk-not-last";
    case ParseCode::NestedSk: return "nested-sk";
    case ParseCode::TrailingData: return "trailing-data";
    case ParseCode::TooManyPayloads: return "too-many-payloads";
    case ParseCode::BadBody: return "bad-payload-body";
    case ParseCode::Decrypt: return "decrypt-failed";
    }
    return "?";
}

uint16_t ParseError::notify() const {
    switch (code) {
    case ParseCode::Ok: return 0;
    case ParseCode::BadVersion: return N_INVALID_MAJOR_VERSION;
    case ParseCode::UnsupportedCritical: return N_UNSUPPORTED_CRITICAL_PAYLOAD;
    default: return N_INVALID_SYNTAX;
    }
}

std::string ParseError::str() const {
    if (ok()) return "ok";
    return fmt::format("{} payload={} offset={} ({})", parse_code_name(code),
                       payload_name(payload), offset, detail);
}

bool payload_type_known(uint8_t type) {
    switch (type) {
    case PT_SA: case PT_KE: case PT_IDI: case PT_IDR: case PT_CERT: case PT_CERTREQ:
    case PT_AUTH: case PT_NONCE: case PT_NOTIFY: case PT_DELETE: case PT_VENDOR:
    case PT_TSI: case PT_TSR: case PT_SK: case PT_CP: case PT_EAP: case PT_SKF:
        return true;
    default:
        return false;
    }
}

ParseError parse_header(std::span<const uint8_t> datagram, Header& out) {
    ByteReader r(datagram);
    out = Header::read(r);
    if (!r.ok()) return ParseError::fail(ParseCode::Truncated, PT_NONE, 0, "shorter than the IKE header");
    // §1.5: a major version we do not speak is answered with
    // INVALID_MAJOR_VERSION; the minor version is ignored (§2.5).
    if (out.major_version() != 2)
        return ParseError::fail(ParseCode::BadVersion, PT_NONE, 17, "major version is not 2");
    // §3.1: Length is the total message length. We take no trailing octets
    // and no short datagrams.
    if (out.length != datagram.size())
        return ParseError::fail(ParseCode::LengthMismatch, PT_NONE, 24, "header length differs from datagram size");
    return {};
}

ParseError walk_chain(std::span<const uint8_t> buf, uint8_t first, size_t base, bool inner,
                      std::vector<RawPayload>& out) {
    ByteReader r(buf);
    uint8_t type = first;
    size_t count = 0;
    while (type != PT_NONE) {
        size_t at = r.offset();
        if (++count > kMaxPayloads)
            return ParseError::fail(ParseCode::TooManyPayloads, type, base + at, "payload chain too long");
        RawPayload p;
        p.type = type;
        p.offset = uint32_t(base + at);
        p.next = r.u8();
        uint8_t flags = r.u8();
        uint16_t len = r.u16();
        if (!r.ok())
            return ParseError::fail(ParseCode::Truncated, type, base + at, "generic payload header truncated");
        p.critical = flags & kCriticalBit;
        if (len < kGenericHeaderLen || len - kGenericHeaderLen > r.remaining())
            return ParseError::fail(ParseCode::BadPayloadLength, type, base + at, "payload length out of range");
        p.body = r.span(len - kGenericHeaderLen);

        bool sk = type == PT_SK || type == PT_SKF;
        if (sk && inner)
            return ParseError::fail(ParseCode::NestedSk, type, base + at, "encrypted payload inside an encrypted payload");
        if (!payload_type_known(type) && p.critical) {
            // §2.5: reject the whole message; the notify carries the type.
            return ParseError::fail(ParseCode::UnsupportedCritical, type, base + at, "unknown payload with critical bit");
        }
        out.push_back(p);
        if (sk) {
            // §3.14: the Encrypted payload is the last one. Its Next Payload
            // field names the first payload inside it, not a successor.
            if (!r.empty())
                return ParseError::fail(ParseCode::SkNotLast, type, base + at, "encrypted payload is not last");
            return {};
        }
        type = p.next;
    }
    if (!r.empty())
        return ParseError::fail(ParseCode::TrailingData, PT_NONE, base + r.offset(), "octets after the last payload");
    return {};
}

size_t write_generic_header(ByteWriter& w, uint8_t next, bool critical) {
    size_t at = w.mark();
    w.u8(next);
    w.u8(critical ? kCriticalBit : 0);
    w.u16(0);
    return at;
}

bool patch_length(ByteWriter& w, size_t at) {
    size_t len = w.size() - at;
    if (len > 0xffff) return false;
    w.put_u16_at(at + 2, uint16_t(len));
    return true;
}

}  // namespace nimbus::ike
