// IKE identities (RFC 7296 §3.5) as they appear in the configuration
// (`id: "CN=store-0001"`, `id: site1.example`, `id: 192.0.2.7`,
// `id: ops@example`) and on the wire (ID payload type and data), and how a
// configured identity matches a received one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus::pki {

struct Identity {
    uint8_t type = 0;              // ike::ID_* (ID_DER_ASN1_DN, ID_FQDN, ...)
    std::vector<uint8_t> data;     // the ID payload's Identification Data

    bool empty() const { return type == 0; }
    // For logs and `show`: "CN=store-0001, O=corp", "site1.example", ...
    std::string str() const;
    bool operator==(const Identity&) const = default;
};

// Parses a configured identity:
//   contains '=' (and no '@' before it)  → ID_DER_ASN1_DN, "C=XX, O=corp, CN=x"
//                                           (',' or '/' separated RDNs)
//   an IPv4 / IPv6 address               → ID_IPV4_ADDR / ID_IPV6_ADDR
//   "user@domain"                        → ID_RFC822_ADDR
//   "@name" or a host name               → ID_FQDN
// nullopt with *err set on anything else.
std::optional<Identity> parse_identity(std::string_view text, std::string* err);

// Whether a received identity is the configured one. Distinguished names
// match when every RDN of the configured name appears in the received one
// (so `CN=store-0001` names the device whatever O= and C= its certificate
// carries); FQDNs and e-mail addresses compare case-insensitively; addresses
// byte for byte. Types must agree.
bool identity_matches(const Identity& configured, const Identity& received);

}  // namespace nimbus::pki
