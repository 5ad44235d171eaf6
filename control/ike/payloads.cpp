#include "control/ike/payloads.h"

#include <utility>

namespace nimbus::ike {

namespace {

Bytes to_bytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

ParseError bad(const RawPayload& raw, const char* detail) {
    return ParseError::fail(ParseCode::BadBody, raw.type, raw.offset, detail);
}

// ---- SA (§3.3) ----

bool parse_attributes(ByteReader& r, Transform& t) {
    bool have_key_len = false;
    while (r.ok() && !r.empty()) {
        uint16_t tf = r.u16();
        uint16_t lv = r.u16();
        if (!r.ok()) return false;
        Attribute a;
        a.type = tf & ~kAttrFormatTv;
        a.tv = tf & kAttrFormatTv;
        if (a.tv) {
            a.value = lv;
        } else {
            auto d = r.span(lv);
            if (!r.ok()) return false;
            a.data = to_bytes(d);
        }
        if (a.type == kAttrKeyLength) {
            // §3.3.5: Key Length is TV; a second one is a syntax error.
            if (!a.tv || have_key_len || a.value == 0) return false;
            have_key_len = true;
            t.key_bits = a.value;
        } else {
            t.other.push_back(std::move(a));
        }
    }
    return r.ok();
}

bool parse_transform(ByteReader& r, Transform& t, bool& last) {
    uint8_t last_sub = r.u8();
    r.u8();  // RESERVED
    uint16_t len = r.u16();
    if (!r.ok() || len < 8) return false;
    if (last_sub != kLastSubstrucLast && last_sub != kLastSubstrucTransform) return false;
    last = last_sub == kLastSubstrucLast;
    ByteReader b = r.sub(len - 4);
    t.type = b.u8();
    b.u8();  // RESERVED
    t.id = b.u16();
    if (!b.ok()) return false;
    return parse_attributes(b, t);
}

bool parse_proposal(ByteReader& r, Proposal& p, bool& last) {
    uint8_t last_sub = r.u8();
    r.u8();
    uint16_t len = r.u16();
    if (!r.ok() || len < 8) return false;
    if (last_sub != kLastSubstrucLast && last_sub != kLastSubstrucProposal) return false;
    last = last_sub == kLastSubstrucLast;
    ByteReader b = r.sub(len - 4);
    p.number = b.u8();
    p.protocol = b.u8();
    uint8_t spi_size = b.u8();
    uint8_t ntransforms = b.u8();
    auto spi = b.span(spi_size);
    if (!b.ok()) return false;
    p.spi = to_bytes(spi);
    for (unsigned i = 0; i < ntransforms; i++) {
        Transform t;
        bool tlast = false;
        if (!parse_transform(b, t, tlast)) return false;
        // The Last Substruc flag must agree with the transform count.
        if (tlast != (i + 1 == ntransforms)) return false;
        p.transforms.push_back(std::move(t));
    }
    return b.ok() && b.empty();
}

ParseError parse_sa(const RawPayload& raw, SaPayload& sa) {
    ByteReader r(raw.body);
    bool last = false;
    while (!last) {
        if (r.empty()) return bad(raw, "SA: proposal list ends without a last proposal");
        Proposal p;
        if (!parse_proposal(r, p, last)) return bad(raw, "SA: malformed proposal or transform");
        sa.proposals.push_back(std::move(p));
    }
    if (!r.empty()) return bad(raw, "SA: octets after the last proposal");
    return {};
}

bool write_transform(ByteWriter& w, const Transform& t, bool last) {
    size_t at = w.mark();
    w.u8(last ? kLastSubstrucLast : kLastSubstrucTransform);
    w.u8(0);
    w.u16(0);
    w.u8(t.type);
    w.u8(0);
    w.u16(t.id);
    if (t.key_bits) {
        w.u16(kAttrFormatTv | kAttrKeyLength);
        w.u16(t.key_bits);
    }
    for (const auto& a : t.other) {
        if (a.tv) {
            w.u16(uint16_t(kAttrFormatTv | a.type));
            w.u16(a.value);
        } else {
            if (a.data.size() > 0xffff) return false;
            w.u16(uint16_t(a.type & ~kAttrFormatTv));
            w.u16(uint16_t(a.data.size()));
            w.bytes(a.data);
        }
    }
    if (w.size() - at > 0xffff) return false;
    w.put_u16_at(at + 2, uint16_t(w.size() - at));
    return true;
}

bool write_sa(ByteWriter& w, const SaPayload& sa) {
    for (size_t i = 0; i < sa.proposals.size(); i++) {
        const auto& p = sa.proposals[i];
        if (p.spi.size() > 255 || p.transforms.size() > 255) return false;
        size_t at = w.mark();
        w.u8(i + 1 == sa.proposals.size() ? kLastSubstrucLast : kLastSubstrucProposal);
        w.u8(0);
        w.u16(0);
        w.u8(p.number);
        w.u8(p.protocol);
        w.u8(uint8_t(p.spi.size()));
        w.u8(uint8_t(p.transforms.size()));
        w.bytes(p.spi);
        for (size_t j = 0; j < p.transforms.size(); j++)
            if (!write_transform(w, p.transforms[j], j + 1 == p.transforms.size())) return false;
        if (w.size() - at > 0xffff) return false;
        w.put_u16_at(at + 2, uint16_t(w.size() - at));
    }
    return true;
}

// ---- Traffic selectors (§3.13) ----

ParseError parse_ts(const RawPayload& raw, TsPayload& ts) {
    ByteReader r(raw.body);
    uint8_t n = r.u8();
    r.skip(3);
    if (!r.ok()) return bad(raw, "TS: truncated header");
    for (unsigned i = 0; i < n; i++) {
        TrafficSelector s;
        s.type = r.u8();
        s.ip_proto = r.u8();
        uint16_t len = r.u16();
        s.start_port = r.u16();
        s.end_port = r.u16();
        if (!r.ok()) return bad(raw, "TS: truncated selector");
        size_t alen;
        if (s.type == TS_IPV4_ADDR_RANGE)
            alen = 4;
        else if (s.type == TS_IPV6_ADDR_RANGE)
            alen = 16;
        else
            return bad(raw, "TS: unsupported selector type");
        if (len != 8 + 2 * alen) return bad(raw, "TS: selector length does not match its type");
        auto a = r.span(alen);
        auto b = r.span(alen);
        if (!r.ok()) return bad(raw, "TS: truncated addresses");
        s.start = alen == 4 ? IpAddr::v4_net(a.data()) : IpAddr::v6_net(a.data());
        s.end = alen == 4 ? IpAddr::v4_net(b.data()) : IpAddr::v6_net(b.data());
        ts.selectors.push_back(s);
    }
    if (!r.empty()) return bad(raw, "TS: octets after the last selector");
    return {};
}

void write_ts(ByteWriter& w, const TsPayload& ts) {
    w.u8(uint8_t(ts.selectors.size()));
    w.zeros(3);
    for (const auto& s : ts.selectors) {
        size_t alen = s.type == TS_IPV6_ADDR_RANGE ? 16 : 4;
        w.u8(s.type);
        w.u8(s.ip_proto);
        w.u16(uint16_t(8 + 2 * alen));
        w.u16(s.start_port);
        w.u16(s.end_port);
        w.bytes(s.start.b.data(), alen);
        w.bytes(s.end.b.data(), alen);
    }
}

// ---- Configuration (§3.15) ----

ParseError parse_cp(const RawPayload& raw, CpPayload& cp) {
    ByteReader r(raw.body);
    cp.cfg_type = r.u8();
    r.skip(3);
    if (!r.ok()) return bad(raw, "CP: truncated header");
    while (!r.empty()) {
        CpAttribute a;
        a.type = r.u16() & 0x7fff;  // R bit: must be zero, ignored on receipt
        uint16_t len = r.u16();
        auto v = r.span(len);
        if (!r.ok()) return bad(raw, "CP: attribute runs past the payload");
        a.value = to_bytes(v);
        cp.attrs.push_back(std::move(a));
    }
    return {};
}

// ---- SK / SKF (§3.14, RFC 7383 §2.5) ----

ParseError parse_skf(const RawPayload& raw, SkfPayload& f) {
    ByteReader r(raw.body);
    f.number = r.u16();
    f.total = r.u16();
    if (!r.ok()) return bad(raw, "SKF: truncated fragment header");
    // RFC 7383 §2.5: numbering starts at 1 and cannot exceed the total.
    if (f.number == 0 || f.total == 0 || f.number > f.total)
        return bad(raw, "SKF: fragment number out of range");
    f.first_inner = raw.next;
    f.body = to_bytes(r.rest());
    f.offset = raw.offset;
    return {};
}

}  // namespace

bool Proposal::has(uint8_t type) const { return first(type) != nullptr; }

const Transform* Proposal::first(uint8_t type) const {
    for (const auto& t : transforms)
        if (t.type == type) return &t;
    return nullptr;
}

Bytes IdPayload::body() const {
    Bytes b;
    b.reserve(4 + data.size());
    b.push_back(id_type);
    b.insert(b.end(), 3, 0);
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

TrafficSelector TrafficSelector::from_prefix(const Prefix& p, uint8_t ip_proto) {
    TrafficSelector s;
    s.type = p.is_v4() ? TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE;
    s.ip_proto = ip_proto;
    s.start = p.addr;
    s.end = p.addr;
    int bits = p.addr.bits();
    for (int i = p.len; i < bits; i++) s.end.b[i / 8] |= uint8_t(0x80 >> (i % 8));
    return s;
}

Payload make_sa(SaPayload sa) { return {PT_SA, false, std::move(sa)}; }
Payload make_ke(uint16_t group, Bytes data) { return {PT_KE, false, KePayload{group, std::move(data)}}; }
Payload make_nonce(Bytes data) { return {PT_NONCE, false, NoncePayload{std::move(data)}}; }
Payload make_id(bool initiator, uint8_t id_type, Bytes data) {
    return {initiator ? PT_IDI : PT_IDR, false, IdPayload{id_type, std::move(data)}};
}
Payload make_auth(uint8_t method, Bytes data) { return {PT_AUTH, false, AuthPayload{method, std::move(data)}}; }
Payload make_cert(uint8_t encoding, Bytes data) { return {PT_CERT, false, CertPayload{encoding, std::move(data)}}; }
Payload make_certreq(uint8_t encoding, Bytes data) {
    return {PT_CERTREQ, false, CertReqPayload{encoding, std::move(data)}};
}
Payload make_notify(uint16_t type, Bytes data, uint8_t protocol, Bytes spi) {
    return {PT_NOTIFY, false, NotifyPayload{protocol, std::move(spi), type, std::move(data)}};
}
Payload make_delete(uint8_t protocol, std::vector<uint32_t> spis) {
    return {PT_DELETE, false, DeletePayload{protocol, std::move(spis)}};
}
Payload make_vendor(Bytes data) { return {PT_VENDOR, false, VendorPayload{std::move(data)}}; }
Payload make_ts(bool initiator, std::vector<TrafficSelector> ts) {
    return {initiator ? PT_TSI : PT_TSR, false, TsPayload{std::move(ts)}};
}
Payload make_cp(uint8_t cfg_type, std::vector<CpAttribute> attrs) {
    return {PT_CP, false, CpPayload{cfg_type, std::move(attrs)}};
}

ParseError parse_payload(const RawPayload& raw, Payload& out) {
    out.type = raw.type;
    out.critical = raw.critical;
    ByteReader r(raw.body);
    switch (raw.type) {
    case PT_SA: {
        SaPayload sa;
        if (auto e = parse_sa(raw, sa); !e.ok()) return e;
        out.body = std::move(sa);
        return {};
    }
    case PT_KE: {
        KePayload ke;
        ke.group = r.u16();
        r.skip(2);
        if (!r.ok()) return bad(raw, "KE: truncated header");
        ke.data = to_bytes(r.rest());
        out.body = std::move(ke);
        return {};
    }
    case PT_IDI:
    case PT_IDR: {
        IdPayload id;
        id.id_type = r.u8();
        r.skip(3);
        if (!r.ok()) return bad(raw, "ID: truncated header");
        id.data = to_bytes(r.rest());
        out.body = std::move(id);
        return {};
    }
    case PT_CERT:
    case PT_CERTREQ: {
        uint8_t enc = r.u8();
        if (!r.ok()) return bad(raw, "CERT: missing encoding");
        if (raw.type == PT_CERT)
            out.body = CertPayload{enc, to_bytes(r.rest())};
        else
            out.body = CertReqPayload{enc, to_bytes(r.rest())};
        return {};
    }
    case PT_AUTH: {
        AuthPayload a;
        a.method = r.u8();
        r.skip(3);
        if (!r.ok()) return bad(raw, "AUTH: truncated header");
        a.data = to_bytes(r.rest());
        out.body = std::move(a);
        return {};
    }
    case PT_NONCE: {
        // §3.9: between 16 and 256 octets.
        if (raw.body.size() < kNonceMin || raw.body.size() > kNonceMax)
            return bad(raw, "Nonce: length outside 16..256");
        out.body = NoncePayload{to_bytes(raw.body)};
        return {};
    }
    case PT_NOTIFY: {
        NotifyPayload n;
        n.protocol = r.u8();
        uint8_t spi_size = r.u8();
        n.type = r.u16();
        auto spi = r.span(spi_size);
        if (!r.ok()) return bad(raw, "Notify: truncated header or SPI");
        n.spi = to_bytes(spi);
        n.data = to_bytes(r.rest());
        out.body = std::move(n);
        return {};
    }
    case PT_DELETE: {
        DeletePayload d;
        d.protocol = r.u8();
        uint8_t spi_size = r.u8();
        uint16_t n = r.u16();
        if (!r.ok()) return bad(raw, "Delete: truncated header");
        // §3.11: IKE SA → SPI size 0 and no SPIs (the SPIs are in the
        // header); AH/ESP → 4-octet SPIs.
        if (d.protocol == PROTO_IKE) {
            if (spi_size != 0 || n != 0) return bad(raw, "Delete: IKE delete carries SPIs");
        } else if (d.protocol == PROTO_AH || d.protocol == PROTO_ESP) {
            if (spi_size != 4) return bad(raw, "Delete: AH/ESP SPI size is not 4");
            for (unsigned i = 0; i < n; i++) d.spis.push_back(r.u32());
        } else {
            return bad(raw, "Delete: unknown protocol");
        }
        if (!r.ok() || !r.empty()) return bad(raw, "Delete: SPI count does not match the length");
        out.body = std::move(d);
        return {};
    }
    case PT_VENDOR:
        out.body = VendorPayload{to_bytes(raw.body)};
        return {};
    case PT_TSI:
    case PT_TSR: {
        TsPayload ts;
        if (auto e = parse_ts(raw, ts); !e.ok()) return e;
        out.body = std::move(ts);
        return {};
    }
    case PT_CP: {
        CpPayload cp;
        if (auto e = parse_cp(raw, cp); !e.ok()) return e;
        out.body = std::move(cp);
        return {};
    }
    case PT_SK:
        out.body = SkPayload{raw.next, to_bytes(raw.body), raw.offset};
        return {};
    case PT_SKF: {
        SkfPayload f;
        if (auto e = parse_skf(raw, f); !e.ok()) return e;
        out.body = std::move(f);
        return {};
    }
    default:
        // EAP and unknown non-critical payloads (walk_chain already refused
        // unknown critical ones).
        out.body = OpaquePayload{to_bytes(raw.body)};
        return {};
    }
}

ParseError parse_chain(std::span<const uint8_t> buf, uint8_t first, size_t base, bool inner,
                       std::vector<Payload>& out) {
    std::vector<RawPayload> raws;
    if (auto e = walk_chain(buf, first, base, inner, raws); !e.ok()) return e;
    out.reserve(out.size() + raws.size());
    for (const auto& raw : raws) {
        Payload p;
        if (auto e = parse_payload(raw, p); !e.ok()) return e;
        out.push_back(std::move(p));
    }
    return {};
}

bool write_body(ByteWriter& w, const Payload& p) {
    return std::visit(
        [&w](const auto& b) -> bool {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, SaPayload>) {
                if (!write_sa(w, b)) return false;
            } else if constexpr (std::is_same_v<T, KePayload>) {
                w.u16(b.group);
                w.u16(0);
                w.bytes(b.data);
            } else if constexpr (std::is_same_v<T, IdPayload>) {
                w.bytes(b.body());
            } else if constexpr (std::is_same_v<T, CertPayload> || std::is_same_v<T, CertReqPayload>) {
                w.u8(b.encoding);
                w.bytes(b.data);
            } else if constexpr (std::is_same_v<T, AuthPayload>) {
                w.u8(b.method);
                w.zeros(3);
                w.bytes(b.data);
            } else if constexpr (std::is_same_v<T, NoncePayload> || std::is_same_v<T, VendorPayload> ||
                                 std::is_same_v<T, OpaquePayload>) {
                w.bytes(b.data);
            } else if constexpr (std::is_same_v<T, NotifyPayload>) {
                if (b.spi.size() > 255) return false;
                w.u8(b.protocol);
                w.u8(uint8_t(b.spi.size()));
                w.u16(b.type);
                w.bytes(b.spi);
                w.bytes(b.data);
            } else if constexpr (std::is_same_v<T, DeletePayload>) {
                if (b.spis.size() > 0xffff) return false;
                w.u8(b.protocol);
                bool ike = b.protocol == PROTO_IKE;
                w.u8(ike ? 0 : 4);
                w.u16(ike ? 0 : uint16_t(b.spis.size()));
                if (!ike)
                    for (uint32_t s : b.spis) w.u32(s);
            } else if constexpr (std::is_same_v<T, TsPayload>) {
                if (b.selectors.size() > 255) return false;
                write_ts(w, b);
            } else if constexpr (std::is_same_v<T, CpPayload>) {
                w.u8(b.cfg_type);
                w.zeros(3);
                for (const auto& a : b.attrs) {
                    if (a.value.size() > 0xffff) return false;
                    w.u16(uint16_t(a.type & 0x7fff));
                    w.u16(uint16_t(a.value.size()));
                    w.bytes(a.value);
                }
            } else if constexpr (std::is_same_v<T, SkPayload>) {
                w.bytes(b.body);
            } else if constexpr (std::is_same_v<T, SkfPayload>) {
                w.u16(b.number);
                w.u16(b.total);
                w.bytes(b.body);
            }
            return true;
        },
        p.body);
}

bool write_chain(ByteWriter& w, std::span<const Payload> payloads, uint8_t after_last) {
    for (size_t i = 0; i < payloads.size(); i++) {
        const Payload& p = payloads[i];
        uint8_t next = i + 1 < payloads.size() ? payloads[i + 1].type : after_last;
        if (auto* sk = p.as<SkPayload>()) {
            if (i + 1 != payloads.size()) return false;  // §3.14: SK is last
            next = sk->first_inner;
        } else if (auto* skf = p.as<SkfPayload>()) {
            if (i + 1 != payloads.size()) return false;
            next = skf->first_inner;
        }
        size_t at = write_generic_header(w, next, p.critical);
        if (!write_body(w, p) || !patch_length(w, at)) return false;
    }
    return true;
}

}  // namespace nimbus::ike
