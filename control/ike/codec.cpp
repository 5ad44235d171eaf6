#include "control/ike/codec.h"

#include <algorithm>

namespace nimbus::ike {

namespace {

ParseError decrypt_fail(uint8_t type, size_t offset, const char* detail) {
    return ParseError::fail(ParseCode::Decrypt, type, offset, detail);
}

// SK: generic header (4). SKF: generic header + Fragment Number + Total
// Fragments (8). The AAD runs to the end of it (RFC 5282 §5.1, RFC 7383 §2.5).
constexpr size_t kSkfHeaderLen = 8;

}  // namespace

const SkPayload* Message::sk() const {
    return payloads.empty() ? nullptr : payloads.back().as<SkPayload>();
}

const SkfPayload* Message::skf() const {
    return payloads.empty() ? nullptr : payloads.back().as<SkfPayload>();
}

const Payload* Message::find(uint8_t type) const {
    for (const auto& p : payloads)
        if (p.type == type) return &p;
    for (const auto& p : inner)
        if (p.type == type) return &p;
    return nullptr;
}

std::vector<const Payload*> Message::all(uint8_t type) const {
    std::vector<const Payload*> v;
    for (const auto* list : {&payloads, &inner})
        for (const auto& p : *list)
            if (p.type == type) v.push_back(&p);
    return v;
}

Payload error_notify(const ParseError& e) {
    if (e.code == ParseCode::UnsupportedCritical) return make_notify(N_UNSUPPORTED_CRITICAL_PAYLOAD, {e.payload});
    return make_notify(e.notify());
}

const NotifyPayload* Message::notify(uint16_t type) const {
    for (const auto* n : notifies())
        if (n->type == type) return n;
    return nullptr;
}

std::vector<const NotifyPayload*> Message::notifies() const {
    std::vector<const NotifyPayload*> v;
    for (const auto* list : {&payloads, &inner})
        for (const auto& p : *list)
            if (auto* n = p.as<NotifyPayload>()) v.push_back(n);
    return v;
}

ParseError parse_message(std::span<const uint8_t> datagram, Message& out) {
    out = Message{};
    if (auto e = parse_header(datagram, out.header); !e.ok()) return e;
    return parse_chain(datagram.subspan(kHeaderLen), out.header.next_payload, kHeaderLen, false, out.payloads);
}

ParseError parse_inner(std::span<const uint8_t> plaintext, uint8_t first_inner, Message& m) {
    m.inner.clear();
    // Offsets inside decrypted data are relative to the plaintext.
    if (auto e = parse_chain(plaintext, first_inner, 0, true, m.inner); !e.ok()) {
        m.inner.clear();
        return e;
    }
    m.opened = true;
    return {};
}

ParseError open_message(std::span<const uint8_t> datagram, Message& m, const SkCipher& c) {
    const SkPayload* sk = m.sk();
    if (!sk) return decrypt_fail(PT_SK, 0, "no SK payload");
    size_t aad_end = size_t(sk->offset) + kGenericHeaderLen;
    if (aad_end > datagram.size()) return decrypt_fail(PT_SK, sk->offset, "SK offset outside the datagram");
    auto pt = sk_open(c, datagram.first(aad_end), sk->body);
    if (!pt) return decrypt_fail(PT_SK, sk->offset, "integrity check or padding failed");
    return parse_inner(*pt, sk->first_inner, m);
}

ParseError open_fragment(std::span<const uint8_t> datagram, const Message& m, const SkCipher& c,
                         std::vector<uint8_t>& chunk) {
    const SkfPayload* f = m.skf();
    if (!f) return decrypt_fail(PT_SKF, 0, "no SKF payload");
    size_t aad_end = size_t(f->offset) + kSkfHeaderLen;
    if (aad_end > datagram.size()) return decrypt_fail(PT_SKF, f->offset, "SKF offset outside the datagram");
    auto pt = sk_open(c, datagram.first(aad_end), f->body);
    if (!pt) return decrypt_fail(PT_SKF, f->offset, "integrity check or padding failed");
    chunk = std::move(*pt);
    return {};
}

MessageBuilder& MessageBuilder::add(Payload p) {
    clear_.push_back(std::move(p));
    return *this;
}

MessageBuilder& MessageBuilder::add_protected(Payload p) {
    protected_.push_back(std::move(p));
    return *this;
}

std::optional<std::vector<uint8_t>> MessageBuilder::build() const {
    if (!protected_.empty()) return std::nullopt;
    ByteWriter w;
    Header h = header_;
    h.next_payload = first_type(clear_);
    h.write(w);
    if (!write_chain(w, clear_)) return std::nullopt;
    w.put_u32_at(24, uint32_t(w.size()));
    return w.take();
}

std::optional<std::vector<uint8_t>> MessageBuilder::inner_octets() const {
    ByteWriter w;
    if (!write_chain(w, protected_)) return std::nullopt;
    return w.take();
}

std::optional<std::vector<uint8_t>> MessageBuilder::build(SkCipher& c) const {
    auto inner = inner_octets();
    if (!inner) return std::nullopt;
    ByteWriter w;
    Header h = header_;
    h.next_payload = first_type(clear_, PT_SK);
    h.write(w);
    if (!write_chain(w, clear_, PT_SK)) return std::nullopt;
    size_t sk_len = kGenericHeaderLen + sk_sealed_len(inner->size());
    if (sk_len > 0xffff) return std::nullopt;
    // SK generic header: Next Payload names the first inner payload (§3.14).
    w.u8(first_type(protected_));
    w.u8(0);
    w.u16(uint16_t(sk_len));
    size_t total = w.size() + sk_sealed_len(inner->size());
    w.put_u32_at(24, uint32_t(total));
    std::vector<uint8_t> msg = w.take();
    if (!sk_seal(c, msg, *inner)) return std::nullopt;
    return msg;
}

std::optional<std::vector<std::vector<uint8_t>>> MessageBuilder::build_fragments(SkCipher& c,
                                                                                 size_t max_datagram) const {
    if (!clear_.empty()) return std::nullopt;
    auto inner = inner_octets();
    if (!inner) return std::nullopt;
    size_t overhead = kHeaderLen + kSkfHeaderLen + sk_overhead();
    if (max_datagram <= overhead) return std::nullopt;
    size_t chunk = std::min(max_datagram - overhead, size_t(0xffff) - kSkfHeaderLen - sk_overhead());
    size_t total = inner->empty() ? 1 : (inner->size() + chunk - 1) / chunk;
    if (total > 0xffff) return std::nullopt;
    std::vector<std::vector<uint8_t>> out;
    for (size_t i = 0; i < total; i++) {
        size_t off = i * chunk;
        size_t n = std::min(chunk, inner->size() - std::min(off, inner->size()));
        ByteWriter w;
        Header h = header_;
        h.next_payload = PT_SKF;
        h.write(w);
        // RFC 7383 §2.5: fragment 1 names the first inner payload; the
        // others carry 0.
        w.u8(i == 0 ? first_type(protected_) : uint8_t(PT_NONE));
        w.u8(0);
        w.u16(uint16_t(kSkfHeaderLen + sk_sealed_len(n)));
        w.u16(uint16_t(i + 1));
        w.u16(uint16_t(total));
        w.put_u32_at(24, uint32_t(w.size() + sk_sealed_len(n)));
        std::vector<uint8_t> msg = w.take();
        if (!sk_seal(c, msg, std::span<const uint8_t>(*inner).subspan(off, n))) return std::nullopt;
        out.push_back(std::move(msg));
    }
    return out;
}

}  // namespace nimbus::ike
