// Whole messages: parse a datagram into a header and typed payloads, open
// its SK payload, and build messages (payload chaining, lengths, SK sealing,
// RFC 7383 fragmentation). This is the surface the exchange state machine
// works with:
//
//   Message m;
//   if (auto e = parse_message(dgram, m); !e.ok()) ... e.notify()
//   if (m.sk()) open_message(dgram, m, sa.cipher_in) ...
//   if (auto* n = m.notify(N_COOKIE)) ...
//
//   auto bytes = MessageBuilder(hdr).add_protected(make_id(...))
//                                  .add_protected(make_auth(...)).build(sa.cipher_out);
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "control/ike/message.h"
#include "control/ike/payloads.h"
#include "control/ike/sk.h"

namespace nimbus::ike {

struct Message {
    Header header;
    std::vector<Payload> payloads;   // in wire order; a sealed SK/SKF comes last
    std::vector<Payload> inner;      // the SK payload's contents, once opened
    bool opened = false;

    const SkPayload* sk() const;
    const SkfPayload* skf() const;
    // The first payload of a type, among the clear ones and the opened ones.
    const Payload* find(uint8_t type) const;
    template <class T> const T* get(uint8_t type) const {
        const Payload* p = find(type);
        return p ? p->as<T>() : nullptr;
    }
    // Every payload of a type (CERT chains, several Delete payloads...).
    std::vector<const Payload*> all(uint8_t type) const;
    // The first Notify of a type; all Notifies.
    const NotifyPayload* notify(uint16_t type) const;
    std::vector<const NotifyPayload*> notifies() const;
};

// The Notify to answer a parse error with (ParseError::notify()), with its
// data: for UNSUPPORTED_CRITICAL_PAYLOAD the one-octet payload type (§3.10.1).
Payload error_notify(const ParseError& e);

// Header checks (parse_header), then the clear payload chain. An SK/SKF
// payload stays sealed until open_message / open_fragment.
ParseError parse_message(std::span<const uint8_t> datagram, Message& out);

// Opens m's SK payload with the peer's cipher and parses the contents into
// m.inner. `datagram` must be the one m was parsed from (it is the AAD).
ParseError open_message(std::span<const uint8_t> datagram, Message& m, const SkCipher& c);

// Opens m's SKF payload (one fragment): the decrypted chunk, for
// FragmentReassembly. ParseCode::Decrypt on failure.
ParseError open_fragment(std::span<const uint8_t> datagram, const Message& m, const SkCipher& c,
                         std::vector<uint8_t>& chunk);

// Parses reassembled SK contents (fragments joined) into m.inner.
ParseError parse_inner(std::span<const uint8_t> plaintext, uint8_t first_inner, Message& m);

class MessageBuilder {
public:
    // Header fields are taken as given except next_payload and length,
    // which the builder computes.
    explicit MessageBuilder(const Header& h) : header_(h) {}

    MessageBuilder& add(Payload p);            // in the clear
    MessageBuilder& add_protected(Payload p);  // inside SK

    // A message without SK (IKE_SA_INIT, or an unprotected notify). nullopt
    // if protected payloads were added or a field would overflow.
    std::optional<std::vector<uint8_t>> build() const;
    // A message ending in an SK payload sealed with `c` (possibly with no
    // inner payloads: an empty INFORMATIONAL is a liveness check, §1.4).
    std::optional<std::vector<uint8_t>> build(SkCipher& c) const;
    // RFC 7383 §2.5: the same message as SKF fragments, each datagram at
    // most `max_datagram` octets (IKE header included, UDP/IP and the
    // non-ESP marker not). Only protected payloads may be present.
    std::optional<std::vector<std::vector<uint8_t>>> build_fragments(SkCipher& c, size_t max_datagram) const;

    // The inner payloads serialised (what SK would carry).
    std::optional<std::vector<uint8_t>> inner_octets() const;

private:
    Header header_;
    std::vector<Payload> clear_;
    std::vector<Payload> protected_;
};

}  // namespace nimbus::ike
