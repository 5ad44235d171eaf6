#include <catch2/catch.hpp>

#include "control/ike/proposal.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

Proposal P(std::string_view s, uint8_t proto = PROTO_IKE, uint8_t number = 1) {
    std::string err;
    auto p = parse_proposal(s, proto, &err);
    INFO(err);
    REQUIRE(p);
    p->number = number;
    if (proto == PROTO_ESP) p->spi = {0x11, 0x22, 0x33, number};
    return *p;
}

std::vector<Proposal> list(std::initializer_list<const char*> ss, uint8_t proto = PROTO_IKE) {
    std::vector<Proposal> v;
    uint8_t n = 1;
    for (auto s : ss) v.push_back(P(s, proto, n++));
    return v;
}

}  // namespace

TEST_CASE("ike: proposal strings parse into transform lists", "[ike]") {
    struct Case {
        const char* text;
        uint8_t proto;
        std::vector<Transform> want;
        const char* printed;
    } cases[] = {
        {"aes256gcm16-prfsha256-x25519", PROTO_IKE,
         {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_PRF, PRF_HMAC_SHA2_256, 0, {}}, {TT_DH, CURVE25519, 0, {}}},
         "aes256gcm16-prfsha256-x25519"},
        {"aes128gcm16-prfsha384-ecp384", PROTO_IKE,
         {{TT_ENCR, ENCR_AES_GCM_16, 128, {}}, {TT_PRF, PRF_HMAC_SHA2_384, 0, {}}, {TT_DH, ECP_384, 0, {}}},
         "aes128gcm16-prfsha384-ecp384"},
        {"chacha20poly1305-prfsha256-x25519", PROTO_IKE,
         {{TT_ENCR, ENCR_CHACHA20_POLY1305, 0, {}}, {TT_PRF, PRF_HMAC_SHA2_256, 0, {}}, {TT_DH, CURVE25519, 0, {}}},
         "chacha20poly1305-prfsha256-x25519"},
        // Order of tokens is free; transforms are grouped by type, the order
        // within a type kept.
        {"x25519-ecp256-prfsha512-aes256gcm-chacha20poly1305", PROTO_IKE,
         {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_ENCR, ENCR_CHACHA20_POLY1305, 0, {}},
          {TT_PRF, PRF_HMAC_SHA2_512, 0, {}}, {TT_DH, CURVE25519, 0, {}}, {TT_DH, ECP_256, 0, {}}},
         "aes256gcm16-chacha20poly1305-prfsha512-x25519-ecp256"},
        {"AES256GCM16-PrfSha256-Curve25519", PROTO_IKE,
         {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_PRF, PRF_HMAC_SHA2_256, 0, {}}, {TT_DH, CURVE25519, 0, {}}},
         "aes256gcm16-prfsha256-x25519"},
        {"aes256gcm16", PROTO_ESP, {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_ESN, ESN_NO, 0, {}}},
         "aes256gcm16-noesn"},
        {"aes256gcm16-x25519-esn", PROTO_ESP,
         {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_DH, CURVE25519, 0, {}}, {TT_ESN, ESN_YES, 0, {}}},
         "aes256gcm16-x25519-esn"},
        {"chacha20poly1305-noesn", PROTO_ESP, {{TT_ENCR, ENCR_CHACHA20_POLY1305, 0, {}}, {TT_ESN, ESN_NO, 0, {}}},
         "chacha20poly1305-noesn"},
        {"aes128gcm16-esn-noesn", PROTO_ESP,
         {{TT_ENCR, ENCR_AES_GCM_16, 128, {}}, {TT_ESN, ESN_YES, 0, {}}, {TT_ESN, ESN_NO, 0, {}}},
         "aes128gcm16-esn-noesn"},
    };
    for (auto& c : cases) {
        INFO(c.text);
        std::string err;
        auto p = parse_proposal(c.text, c.proto, &err);
        INFO(err);
        REQUIRE(p);
        CHECK(p->protocol == c.proto);
        CHECK(p->transforms == c.want);
        CHECK(proposal_to_string(*p) == c.printed);
        // The printed form parses back to the same thing.
        auto again = parse_proposal(proposal_to_string(*p), c.proto, &err);
        REQUIRE(again);
        CHECK(again->transforms == p->transforms);
    }
}

TEST_CASE("ike: bad proposal strings give clear errors", "[ike]") {
    struct Case {
        const char* text;
        uint8_t proto;
        const char* contains;
    } cases[] = {
        {"", PROTO_IKE, "empty proposal"},
        {"aes256gcm16--x25519", PROTO_IKE, "empty algorithm name"},
        {"-aes256gcm16-prfsha256-x25519", PROTO_IKE, "empty algorithm name"},
        {"aes256gcm16-prfsha256-x25519-", PROTO_IKE, "empty algorithm name"},
        {"aes256gcm16-prfsha256-x25519-rot13", PROTO_IKE, "unknown algorithm 'rot13'"},
        {"aes256-sha256-prfsha256-x25519", PROTO_IKE, "'aes256': AES-CBC is not supported"},
        {"aes256gcm16-sha256-prfsha256-x25519", PROTO_IKE, "not used with AEAD"},
        {"aes256gcm16-prfsha256-modp2048", PROTO_IKE, "MODP groups are not supported"},
        {"aes128gcm12-prfsha256-x25519", PROTO_IKE, "16-octet ICVs"},
        {"aes256gcm16-x25519", PROTO_IKE, "needs a PRF"},
        {"aes256gcm16-prfsha256", PROTO_IKE, "needs a key exchange group"},
        {"prfsha256-x25519", PROTO_IKE, "no encryption algorithm"},
        {"aes256gcm16-prfsha256-x25519-esn", PROTO_IKE, "ESN belongs in ESP"},
        {"aes256gcm16-prfsha256", PROTO_ESP, "PRF belongs in IKE"},
        {"x25519-esn", PROTO_ESP, "no encryption algorithm"},
        {"aes256gcm16-x25519-x25519", PROTO_ESP, "'x25519' appears twice"},
        {"aes256gcm16-aes256gcm-prfsha256-x25519", PROTO_IKE, "'aes256gcm' appears twice"},
        {"aes256gcm16-prfsha256-x448", PROTO_IKE, "Curve448 is not supported"},
        {"aes256gcm16", PROTO_AH, "protocol must be IKE or ESP"},
    };
    for (auto& c : cases) {
        INFO(c.text);
        std::string err;
        CHECK_FALSE(parse_proposal(c.text, c.proto, &err));
        CHECK_THAT(err, Catch::Contains(c.contains));
        if (*c.text) CHECK_THAT(err, Catch::Contains(c.text));
    }
    CHECK_FALSE(parse_proposal("bogus", PROTO_IKE, nullptr));   // error pointer optional
}

TEST_CASE("ike: proposal selection table (§2.7, §3.3.6)", "[ike]") {
    struct Case {
        const char* name;
        std::vector<Proposal> ours, theirs;
        SelectOptions opt;
        Selection::Outcome outcome;
        const char* chosen;    // proposal_to_string of the result
        uint8_t number;        // peer proposal number in the result
        uint16_t group;        // InvalidKe group
    } cases[] = {
        {"exact match", list({"aes256gcm16-prfsha256-x25519"}), list({"aes256gcm16-prfsha256-x25519"}), {},
         Selection::Chosen, "aes256gcm16-prfsha256-x25519", 1, 0},
        {"our first proposal wins (Ours)",
         list({"aes128gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-x25519"}),
         list({"aes256gcm16-prfsha256-x25519", "aes128gcm16-prfsha384-ecp384"}), {},
         Selection::Chosen, "aes128gcm16-prfsha384-ecp384", 2, 0},
        {"peer's first proposal wins (Peer)",
         list({"aes128gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-x25519"}),
         list({"aes256gcm16-prfsha256-x25519", "aes128gcm16-prfsha384-ecp384"}), {SelectOrder::Peer, {}, false},
         Selection::Chosen, "aes256gcm16-prfsha256-x25519", 1, 0},
        {"transform order inside one proposal: ours",
         list({"chacha20poly1305-aes256gcm16-prfsha384-prfsha256-x25519"}),
         list({"aes256gcm16-chacha20poly1305-prfsha256-prfsha384-x25519"}), {},
         Selection::Chosen, "chacha20poly1305-prfsha384-x25519", 1, 0},
        {"transform order inside one proposal: peer",
         list({"chacha20poly1305-aes256gcm16-prfsha384-prfsha256-x25519"}),
         list({"aes256gcm16-chacha20poly1305-prfsha256-prfsha384-x25519"}), {SelectOrder::Peer, {}, false},
         Selection::Chosen, "aes256gcm16-prfsha256-x25519", 1, 0},
        {"key length must match", list({"aes256gcm16-prfsha256-x25519"}), list({"aes128gcm16-prfsha256-x25519"}),
         {}, Selection::NoProposalChosen, "", 0, 0},
        {"no common PRF", list({"aes256gcm16-prfsha384-x25519"}), list({"aes256gcm16-prfsha256-x25519"}), {},
         Selection::NoProposalChosen, "", 0, 0},
        {"no common group", list({"aes256gcm16-prfsha256-x25519"}), list({"aes256gcm16-prfsha256-ecp256"}), {},
         Selection::NoProposalChosen, "", 0, 0},
        {"KE group promoted within the proposal (no round trip)",
         list({"aes256gcm16-prfsha256-x25519-ecp384"}), list({"aes256gcm16-prfsha256-x25519-ecp384"}),
         {SelectOrder::Ours, ECP_384, false}, Selection::Chosen, "aes256gcm16-prfsha256-ecp384", 1, 0},
        {"KE group not allowed → INVALID_KE_PAYLOAD with our choice",
         list({"aes256gcm16-prfsha256-x25519-ecp384"}), list({"aes256gcm16-prfsha256-ecp256-ecp384-x25519"}),
         {SelectOrder::Ours, ECP_256, false}, Selection::InvalidKe, "aes256gcm16-prfsha256-x25519", 1, CURVE25519},
        {"KE group in a lower proposal: preference still decides",
         list({"aes256gcm16-prfsha256-ecp384", "aes256gcm16-prfsha256-x25519"}),
         list({"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp384"}),
         {SelectOrder::Ours, CURVE25519, false}, Selection::InvalidKe, "aes256gcm16-prfsha256-ecp384", 2, ECP_384},
        {"KE group in a lower proposal, peer order avoids the round trip",
         list({"aes256gcm16-prfsha256-ecp384", "aes256gcm16-prfsha256-x25519"}),
         list({"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp384"}),
         {SelectOrder::Peer, CURVE25519, false}, Selection::Chosen, "aes256gcm16-prfsha256-x25519", 1, 0},
        {"ESP: ESN must agree", list({"aes256gcm16-esn"}, PROTO_ESP), list({"aes256gcm16-noesn"}, PROTO_ESP), {},
         Selection::NoProposalChosen, "", 0, 0},
        {"ESP: ESN choice by our order", list({"aes256gcm16-esn-noesn"}, PROTO_ESP),
         list({"aes256gcm16-noesn-esn"}, PROTO_ESP), {}, Selection::Chosen, "aes256gcm16-esn", 1, 0},
        {"ESP: we want PFS, peer offers none", list({"aes256gcm16-x25519"}, PROTO_ESP),
         list({"aes256gcm16"}, PROTO_ESP), {}, Selection::NoProposalChosen, "", 0, 0},
        {"ESP: peer wants PFS, we configured none", list({"aes256gcm16"}, PROTO_ESP),
         list({"aes256gcm16-x25519"}, PROTO_ESP), {}, Selection::NoProposalChosen, "", 0, 0},
        {"ESP in IKE_AUTH: DH ignored on both sides", list({"aes256gcm16-x25519"}, PROTO_ESP),
         list({"aes256gcm16"}, PROTO_ESP), {SelectOrder::Ours, {}, true}, Selection::Chosen, "aes256gcm16-noesn", 1,
         0},
        {"ESP with PFS and matching KE", list({"chacha20poly1305-x25519-esn"}, PROTO_ESP),
         list({"aes256gcm16-chacha20poly1305-ecp384-x25519-esn"}, PROTO_ESP), {SelectOrder::Ours, CURVE25519, false},
         Selection::Chosen, "chacha20poly1305-x25519-esn", 1, 0},
        {"IKE proposal does not match ESP", list({"aes256gcm16"}, PROTO_ESP), list({"aes256gcm16-prfsha256-x25519"}),
         {}, Selection::NoProposalChosen, "", 0, 0},
        {"nothing offered", list({"aes256gcm16-prfsha256-x25519"}), {}, {}, Selection::NoProposalChosen, "", 0, 0},
    };
    for (auto& c : cases) {
        INFO(c.name);
        Selection s = select_proposal(c.ours, c.theirs, c.opt);
        INFO(s.reason);
        CHECK(s.outcome == c.outcome);
        CHECK_FALSE(s.reason.empty());
        if (c.outcome != Selection::NoProposalChosen) {
            CHECK(proposal_to_string(s.chosen) == c.chosen);
            CHECK(s.chosen.number == c.number);
            // The peer's SPI goes back with the chosen proposal.
            CHECK(s.chosen.spi == c.theirs[c.number - 1].spi);
        }
        if (c.outcome == Selection::InvalidKe) CHECK(s.group == c.group);
        CHECK(s.ok() == (c.outcome == Selection::Chosen));
    }
}

TEST_CASE("ike: selection failure notifies", "[ike]") {
    auto ours = list({"aes256gcm16-prfsha256-x25519"});
    auto s = select_proposal(ours, list({"aes128gcm16-prfsha256-x25519"}));
    REQUIRE(s.outcome == Selection::NoProposalChosen);
    Payload n = s.notify();
    CHECK(n.type == PT_NOTIFY);
    CHECK(n.as<NotifyPayload>()->type == N_NO_PROPOSAL_CHOSEN);
    CHECK(n.as<NotifyPayload>()->data.empty());
    CHECK_THAT(s.reason, Catch::Contains("aes128gcm16-prfsha256-x25519"));
    CHECK_THAT(s.reason, Catch::Contains("aes256gcm16-prfsha256-x25519"));

    SelectOptions o;
    o.ke_group = ECP_256;
    s = select_proposal(ours, ours, o);
    REQUIRE(s.outcome == Selection::InvalidKe);
    n = s.notify();
    CHECK(n.as<NotifyPayload>()->type == N_INVALID_KE_PAYLOAD);
    CHECK(to_hex(n.as<NotifyPayload>()->data) == "001f");   // §3.10.1: the group we want
}

TEST_CASE("ike: peer proposals with odd contents (§3.3.6)", "[ike]") {
    auto ours = list({"aes256gcm16-prfsha256-x25519"});
    auto base = P("aes256gcm16-prfsha256-x25519");

    // A transform with an attribute we do not understand is not selectable,
    // but a second, clean transform of the same type is.
    auto attr = base;
    attr.transforms[0].other.push_back(Attribute{99, true, 1, {}});
    CHECK(select_proposal(ours, std::vector<Proposal>{attr}).outcome == Selection::NoProposalChosen);
    attr.transforms.push_back(Transform{TT_ENCR, ENCR_AES_GCM_16, 256, {}});
    CHECK(select_proposal(ours, std::vector<Proposal>{attr}).ok());

    // An unknown transform type makes the whole proposal unacceptable.
    auto unknown = base;
    unknown.transforms.push_back(Transform{6, 1, 0, {}});
    CHECK(select_proposal(ours, std::vector<Proposal>{unknown}).outcome == Selection::NoProposalChosen);

    // INTEG NONE next to an AEAD is accepted (RFC 5282 §8) and left out.
    auto none = base;
    none.transforms.push_back(Transform{TT_INTEG, AUTH_NONE, 0, {}});
    auto s = select_proposal(ours, std::vector<Proposal>{none});
    REQUIRE(s.ok());
    CHECK_FALSE(s.chosen.has(TT_INTEG));
    // A real integrity algorithm next to an AEAD is not.
    auto integ = base;
    integ.transforms.push_back(Transform{TT_INTEG, AUTH_HMAC_SHA2_256_128, 0, {}});
    CHECK(select_proposal(ours, std::vector<Proposal>{integ}).outcome == Selection::NoProposalChosen);

    // SPI sizes: IKE 0 or 8, ESP 4.
    auto spi = base;
    spi.spi = {1, 2, 3, 4};
    CHECK_FALSE(select_proposal(ours, std::vector<Proposal>{spi}).ok());
    spi.spi.assign(8, 7);
    CHECK(select_proposal(ours, std::vector<Proposal>{spi}).ok());
    auto esp_ours = list({"aes256gcm16"}, PROTO_ESP);
    auto esp = P("aes256gcm16", PROTO_ESP);
    esp.spi.clear();
    CHECK_FALSE(select_proposal(esp_ours, std::vector<Proposal>{esp}).ok());

    // A DH NONE option lets a peer's optional PFS meet our no-PFS policy.
    auto opt_pfs = P("aes256gcm16-x25519", PROTO_ESP);
    opt_pfs.transforms.push_back(Transform{TT_DH, DH_NONE, 0, {}});
    s = select_proposal(esp_ours, std::vector<Proposal>{opt_pfs});
    REQUIRE(s.ok());
    CHECK_FALSE(s.chosen.has(TT_DH));
}

TEST_CASE("ike: proposal strings for transforms we do not support", "[ike]") {
    Proposal p;
    p.transforms = {{TT_ENCR, ENCR_AES_CBC, 256, {}}, {TT_INTEG, AUTH_HMAC_SHA2_256_128, 0, {}},
                    {TT_PRF, PRF_HMAC_SHA1, 0, {}}, {TT_DH, MODP_2048, 0, {}}, {TT_DH, 30, 0, {}}};
    CHECK(proposal_to_string(p) == "aes256-sha256-prfsha1-modp2048-ke30");
}
