#include "control/ike/proposal.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>


namespace nimbus::ike {

namespace {

struct Token {
    const char* name;
    uint8_t type;
    uint16_t id;
    uint16_t key_bits;
};

// Tokens we accept, in the spelling proposal_to_string prints first.
const Token kTokens[] = {
    {"aes128gcm16", TT_ENCR, ENCR_AES_GCM_16, 128},
    {"aes256gcm16", TT_ENCR, ENCR_AES_GCM_16, 256},
    {"aes128gcm", TT_ENCR, ENCR_AES_GCM_16, 128},      // strongSwan alias
    {"aes256gcm", TT_ENCR, ENCR_AES_GCM_16, 256},
    {"chacha20poly1305", TT_ENCR, ENCR_CHACHA20_POLY1305, 0},
    {"prfsha256", TT_PRF, PRF_HMAC_SHA2_256, 0},
    {"prfsha384", TT_PRF, PRF_HMAC_SHA2_384, 0},
    {"prfsha512", TT_PRF, PRF_HMAC_SHA2_512, 0},
    {"x25519", TT_DH, CURVE25519, 0},
    {"curve25519", TT_DH, CURVE25519, 0},
    {"ecp256", TT_DH, ECP_256, 0},
    {"ecp384", TT_DH, ECP_384, 0},
    {"ecp521", TT_DH, ECP_521, 0},
    {"esn", TT_ESN, ESN_YES, 0},
    {"noesn", TT_ESN, ESN_NO, 0},
};

// Known spellings we refuse, with the reason (clearer than "unknown").
struct Refused {
    const char* name;
    const char* why;
};
const Refused kRefused[] = {
    {"aes128", "AES-CBC is not supported; use an AEAD (aes128gcm16, aes256gcm16, chacha20poly1305)"},
    {"aes192", "AES-CBC is not supported; use an AEAD (aes128gcm16, aes256gcm16, chacha20poly1305)"},
    {"aes256", "AES-CBC is not supported; use an AEAD (aes128gcm16, aes256gcm16, chacha20poly1305)"},
    {"3des", "3DES is not supported"},
    {"aes192gcm16", "192-bit AES-GCM is not supported (aes128gcm16 or aes256gcm16)"},
    {"aes128gcm8", "only 16-octet ICVs are supported (aes128gcm16)"},
    {"aes128gcm12", "only 16-octet ICVs are supported (aes128gcm16)"},
    {"aes256gcm8", "only 16-octet ICVs are supported (aes256gcm16)"},
    {"aes256gcm12", "only 16-octet ICVs are supported (aes256gcm16)"},
    {"sha1", "integrity algorithms are not used with AEAD ciphers (RFC 5282 §8)"},
    {"sha256", "integrity algorithms are not used with AEAD ciphers (RFC 5282 §8)"},
    {"sha384", "integrity algorithms are not used with AEAD ciphers (RFC 5282 §8)"},
    {"sha512", "integrity algorithms are not used with AEAD ciphers (RFC 5282 §8)"},
    {"prfsha1", "PRF_HMAC_SHA1 is not supported (prfsha256, prfsha384, prfsha512)"},
    {"modp1024", "MODP groups are not supported (x25519, ecp256, ecp384, ecp521)"},
    {"modp2048", "MODP groups are not supported (x25519, ecp256, ecp384, ecp521)"},
    {"modp3072", "MODP groups are not supported (x25519, ecp256, ecp384, ecp521)"},
    {"modp4096", "MODP groups are not supported (x25519, ecp256, ecp384, ecp521)"},
    {"x448", "Curve448 is not supported (x25519)"},
    {"curve448", "Curve448 is not supported (x25519)"},
};

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = char(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

const char* encr_name(const Transform& t) {
    if (t.id == ENCR_AES_GCM_16 && t.key_bits == 128) return "aes128gcm16";
    if (t.id == ENCR_AES_GCM_16 && t.key_bits == 256) return "aes256gcm16";
    if (t.id == ENCR_CHACHA20_POLY1305 && t.key_bits == 0) return "chacha20poly1305";
    return nullptr;
}

std::string transform_to_string(const Transform& t) {
    if (t.type == TT_ENCR) {
        if (const char* n = encr_name(t)) return n;
        if (t.id == ENCR_AES_CBC) return fmt::format("aes{}", t.key_bits);
        if (t.key_bits) return fmt::format("encr{}_{}", t.id, t.key_bits);
        return fmt::format("encr{}", t.id);
    }
    if (t.type == TT_ESN) return t.id == ESN_YES ? "esn" : t.id == ESN_NO ? "noesn" : fmt::format("esn{}", t.id);
    for (const auto& k : kTokens)
        if (k.type == t.type && k.id == t.id && k.key_bits == t.key_bits) return k.name;
    switch (t.type) {
    case TT_PRF:
        if (t.id == PRF_HMAC_SHA1) return "prfsha1";
        return fmt::format("prf{}", t.id);
    case TT_INTEG:
        switch (t.id) {
        case AUTH_NONE: return "none";
        case AUTH_HMAC_SHA1_96: return "sha1";
        case AUTH_HMAC_SHA2_256_128: return "sha256";
        case AUTH_HMAC_SHA2_384_192: return "sha384";
        case AUTH_HMAC_SHA2_512_256: return "sha512";
        }
        return fmt::format("integ{}", t.id);
    case TT_DH:
        if (t.id == DH_NONE) return "none";
        if (t.id == MODP_2048) return "modp2048";
        if (t.id == CURVE448) return "x448";
        return fmt::format("ke{}", t.id);
    }
    return fmt::format("t{}:{}", t.type, t.id);
}

std::string list_to_string(std::span<const Proposal> ps) {
    std::string s = "[";
    for (size_t i = 0; i < ps.size(); i++) {
        if (i) s += ", ";
        s += proposal_to_string(ps[i]);
    }
    return s + "]";
}

// A transform is selectable only if we understand all its attributes
// (§3.3.6) — ours never carry unknown ones.
bool usable(const Transform& t) { return t.other.empty(); }

bool same(const Transform& a, const Transform& b) {
    return a.type == b.type && a.id == b.id && a.key_bits == b.key_bits;
}

constexpr uint8_t kTypes[] = {TT_ENCR, TT_PRF, TT_INTEG, TT_DH, TT_ESN};

std::vector<const Transform*> of_type(const Proposal& p, uint8_t type) {
    std::vector<const Transform*> v;
    for (const auto& t : p.transforms)
        if (t.type == type && usable(t)) v.push_back(&t);
    return v;
}

// Matches our proposal `o` against the peer's `t`. On success fills `out`
// and returns true; otherwise sets `why`.
bool match(const Proposal& o, const Proposal& t, const SelectOptions& opt, Proposal& out, std::string& why) {
    if (o.protocol != t.protocol) {
        why = "different protocol";
        return false;
    }
    // SPI sizes (§3.3.1): IKE 0 (IKE_SA_INIT) or 8 (rekey), AH/ESP 4.
    size_t spi = t.spi.size();
    if ((t.protocol == PROTO_IKE && spi != 0 && spi != 8) ||
        ((t.protocol == PROTO_ESP || t.protocol == PROTO_AH) && spi != 4)) {
        why = "bad SPI size";
        return false;
    }
    // §3.3.6: a transform type we do not understand makes the proposal
    // unacceptable.
    for (const auto& tr : t.transforms) {
        if (std::find(std::begin(kTypes), std::end(kTypes), tr.type) == std::end(kTypes)) {
            why = fmt::format("unknown transform type {}", tr.type);
            return false;
        }
    }
    out = Proposal{};
    out.number = t.number;
    out.protocol = t.protocol;
    out.spi = t.spi;
    bool aead = false;
    for (uint8_t type : kTypes) {
        if (type == TT_DH && opt.ignore_dh) continue;
        auto mine = of_type(o, type);
        auto theirs = of_type(t, type);
        if (type == TT_INTEG && mine.empty()) {
            // AEAD suites carry no integrity algorithm (RFC 5282 §8); the
            // peer may list INTEG NONE, which we accept by omitting it.
            bool any_none = std::any_of(theirs.begin(), theirs.end(),
                                        [](const Transform* x) { return x->id == AUTH_NONE; });
            if (!theirs.empty() && !(aead && any_none)) {
                why = "peer combines integrity algorithms with an AEAD cipher";
                return false;
            }
            continue;
        }
        if (mine.empty() && theirs.empty()) continue;
        if (mine.empty()) {
            // A type the peer requires and we did not configure, e.g. a PFS
            // group for ESP; the peer may also allow NONE.
            if (type == TT_DH && std::any_of(theirs.begin(), theirs.end(),
                                             [](const Transform* x) { return x->id == DH_NONE; }))
                continue;
            why = fmt::format("peer requires {} that we do not configure", transform_type_name(type));
            return false;
        }
        if (theirs.empty()) {
            why = fmt::format("peer offers no {}", transform_type_name(type));
            return false;
        }
        const Transform* pick = nullptr;
        if (type == TT_DH && opt.ke_group) {
            for (auto* m : mine)
                for (auto* x : theirs)
                    if (!pick && m->id == *opt.ke_group && same(*m, *x)) pick = m;
        }
        const auto& first = opt.order == SelectOrder::Ours ? mine : theirs;
        const auto& second = opt.order == SelectOrder::Ours ? theirs : mine;
        for (auto* a : first) {
            if (pick) break;
            for (auto* b : second)
                if (same(*a, *b)) {
                    pick = a;
                    break;
                }
        }
        if (!pick) {
            why = fmt::format("no common {}", transform_type_name(type));
            return false;
        }
        if (type == TT_ENCR) aead = encr_is_aead(pick->id);
        out.transforms.push_back(Transform{pick->type, pick->id, pick->key_bits, {}});
    }
    return true;
}

}  // namespace

bool encr_is_aead(uint16_t encr_id) {
    switch (encr_id) {
    case ENCR_AES_CCM_16: case ENCR_AES_GCM_8: case ENCR_AES_GCM_12: case ENCR_AES_GCM_16:
    case ENCR_CHACHA20_POLY1305:
        return true;
    }
    return false;
}

std::optional<Proposal> parse_proposal(std::string_view text, uint8_t protocol, std::string* error) {
    auto fail = [&](const std::string& msg) -> std::optional<Proposal> {
        if (error) *error = fmt::format("proposal '{}': {}", text, msg);
        return std::nullopt;
    };
    if (protocol != PROTO_IKE && protocol != PROTO_ESP) return fail("protocol must be IKE or ESP");
    if (text.empty()) return fail("empty proposal");
    Proposal p;
    p.protocol = protocol;
    size_t start = 0;
    while (start <= text.size()) {
        size_t dash = text.find('-', start);
        if (dash == std::string_view::npos) dash = text.size();
        std::string tok = lower(text.substr(start, dash - start));
        start = dash + 1;
        if (tok.empty()) return fail("empty algorithm name (two '-' in a row, or a '-' at an end)");
        const Token* found = nullptr;
        for (const auto& k : kTokens)
            if (tok == k.name) found = &k;
        if (!found) {
            for (const auto& r : kRefused)
                if (tok == r.name) return fail(fmt::format("'{}': {}", tok, r.why));
            return fail(fmt::format("unknown algorithm '{}'", tok));
        }
        if (found->type == TT_PRF && protocol != PROTO_IKE)
            return fail(fmt::format("'{}': a PRF belongs in IKE proposals only", tok));
        if (found->type == TT_ESN && protocol != PROTO_ESP)
            return fail(fmt::format("'{}': ESN belongs in ESP proposals only", tok));
        Transform t{found->type, found->id, found->key_bits, {}};
        for (const auto& e : p.transforms)
            if (same(e, t)) return fail(fmt::format("'{}' appears twice", tok));
        p.transforms.push_back(t);
    }
    // §3.3.3 mandatory transform types.
    if (!p.has(TT_ENCR)) return fail("no encryption algorithm (e.g. aes256gcm16)");
    if (protocol == PROTO_IKE) {
        if (!p.has(TT_PRF)) return fail("an IKE proposal needs a PRF (e.g. prfsha256)");
        if (!p.has(TT_DH)) return fail("an IKE proposal needs a key exchange group (e.g. x25519)");
    } else if (!p.has(TT_ESN)) {
        p.transforms.push_back(Transform{TT_ESN, ESN_NO, 0, {}});
    }
    // Keep transforms grouped by type in a stable, canonical order.
    std::stable_sort(p.transforms.begin(), p.transforms.end(), [](const Transform& a, const Transform& b) {
        auto rank = [](uint8_t t) { return size_t(std::find(std::begin(kTypes), std::end(kTypes), t) - std::begin(kTypes)); };
        return rank(a.type) < rank(b.type);
    });
    return p;
}

std::string proposal_to_string(const Proposal& p) {
    std::string s;
    for (const auto& t : p.transforms) {
        // An ESP proposal's lone noesn is the default; print it anyway so
        // the string shows exactly what goes on the wire.
        if (!s.empty()) s += '-';
        s += transform_to_string(t);
    }
    return s;
}

Payload Selection::notify() const {
    if (outcome == InvalidKe) {
        ByteWriter w;
        w.u16(group);
        return make_notify(N_INVALID_KE_PAYLOAD, w.take());
    }
    return make_notify(N_NO_PROPOSAL_CHOSEN);
}

Selection select_proposal(std::span<const Proposal> ours, std::span<const Proposal> theirs,
                          const SelectOptions& opt) {
    Selection sel;
    Proposal out;
    std::string why;
    const Proposal* hit_o = nullptr;
    const Proposal* hit_t = nullptr;
    if (opt.order == SelectOrder::Ours) {
        for (const auto& o : ours) {
            for (const auto& t : theirs)
                if (match(o, t, opt, out, why)) {
                    hit_o = &o;
                    hit_t = &t;
                    break;
                }
            if (hit_o) break;
        }
    } else {
        for (const auto& t : theirs) {
            for (const auto& o : ours)
                if (match(o, t, opt, out, why)) {
                    hit_o = &o;
                    hit_t = &t;
                    break;
                }
            if (hit_o) break;
        }
    }
    if (!hit_o) {
        sel.outcome = Selection::NoProposalChosen;
        sel.reason = fmt::format("no proposal chosen: peer offered {}, we accept {}", list_to_string(theirs),
                                 list_to_string(ours));
        return sel;
    }
    sel.chosen = std::move(out);
    const Transform* dh = opt.ignore_dh ? nullptr : sel.chosen.first(TT_DH);
    uint16_t group = dh ? dh->id : uint16_t(DH_NONE);
    if (opt.ke_group && group != DH_NONE && group != *opt.ke_group) {
        // §1.2/§3.4: the KE payload is for a group the selected proposal does
        // not allow; ask for the one we chose.
        sel.outcome = Selection::InvalidKe;
        sel.group = group;
        sel.reason = fmt::format("peer KE group {} not acceptable with proposal #{}; asking for {}",
                                 *opt.ke_group, hit_t->number, group);
        return sel;
    }
    sel.outcome = Selection::Chosen;
    sel.reason = fmt::format("chose peer proposal #{} ({}) by {} preference", hit_t->number,
                             proposal_to_string(sel.chosen), opt.order == SelectOrder::Ours ? "our" : "peer");
    return sel;
}

}  // namespace nimbus::ike
