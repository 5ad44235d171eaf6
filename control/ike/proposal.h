// Proposals: strongSwan-style strings for configuration and `show` output,
// and proposal selection as a responder (RFC 7296 §2.7, §3.3.6).
//
// Strings are algorithm tokens joined by '-', e.g.
//   IKE: aes256gcm16-prfsha256-x25519, chacha20poly1305-prfsha256-ecp384
//   ESP: aes256gcm16, aes256gcm16-x25519-esn, chacha20poly1305-noesn
// Several tokens of one kind offer alternatives, in the given order. Only
// AEAD ciphers are supported (AES-GCM-16, ChaCha20-Poly1305), so no
// integrity tokens. An ESP string without esn/noesn means noesn.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/ike/payloads.h"

namespace nimbus::ike {

// Parses one proposal for `protocol` (PROTO_IKE or PROTO_ESP). On error
// returns nullopt and sets *error to a message naming the offending token.
std::optional<Proposal> parse_proposal(std::string_view text, uint8_t protocol, std::string* error);

// The string form (round-trips parse_proposal for what it accepts; unknown
// transforms print as e.g. "encr12" or "ke14").
std::string proposal_to_string(const Proposal& p);

// Which side's preference order decides.
//  Ours (default): the first of OUR proposals that the peer also offered
//    wins, and within it our transform order. The operator's list is policy
//    (strongest first) and the outcome does not depend on what the peer
//    lists first — a peer cannot steer us to our least preferred suite.
//  Peer: the first of the PEER's proposals that we accept wins, in its
//    transform order (§3.3: proposals are sent in the sender's order of
//    preference). Fewer INVALID_KE_PAYLOAD round trips with peers whose
//    first KE guess follows their own list.
enum class SelectOrder : uint8_t { Ours, Peer };

struct SelectOptions {
    SelectOrder order = SelectOrder::Ours;
    // The group of the peer's KE payload, when the request carries one
    // (IKE_SA_INIT, CREATE_CHILD_SA with PFS). If the selected proposal pair
    // allows that group it is chosen (no round trip); otherwise the result
    // is InvalidKe with our preferred group (§1.2, §3.4).
    std::optional<uint16_t> ke_group;
    // IKE_AUTH's Child SA: no KE exchange happens, so DH transforms are left
    // out of the match and of the result (§1.2).
    bool ignore_dh = false;
};

struct Selection {
    enum Outcome : uint8_t { Chosen, NoProposalChosen, InvalidKe };
    Outcome outcome = NoProposalChosen;
    // Chosen: exactly one transform per type, with the peer's proposal
    // number and SPI. InvalidKe: what would be chosen with `group`.
    Proposal chosen;
    uint16_t group = 0;     // InvalidKe: the group to ask for
    std::string reason;     // one line for logs and `show`

    bool ok() const { return outcome == Chosen; }
    // The notify to answer a failure with: NO_PROPOSAL_CHOSEN, or
    // INVALID_KE_PAYLOAD whose data is our preferred group (§3.10.1).
    Payload notify() const;
};

Selection select_proposal(std::span<const Proposal> ours, std::span<const Proposal> theirs,
                          const SelectOptions& opt = {});

// True when the ENCR transform is an AEAD (no INTEG transform, RFC 5282 §8).
bool encr_is_aead(uint16_t encr_id);

}  // namespace nimbus::ike
