#include "control/pki/leaf.h"

#include <cctype>
#include <cstring>

#include <openssl/obj_mac.h>

namespace nimbus::pki {

namespace {

// One TLV at a time, DER only (X.690 §10): a one-byte tag, a definite
// length in the fewest bytes, no indefinite forms. Certificates here are
// far below 16 MB.
struct Reader {
    Bytes in;

    bool done() const { return in.empty(); }
    uint8_t peek() const { return in.empty() ? 0 : in[0]; }

    // Reads the next element; `tag` must match. `content` gets its value,
    // `whole` (if given) the element with its header.
    bool next(uint8_t tag, Bytes* content, Bytes* whole = nullptr) {
        if (in.size() < 2 || in[0] != tag) return false;
        size_t len = in[1], hdr = 2;
        if (len & 0x80) {
            size_t nb = len & 0x7f;
            if (nb == 0 || nb > 3 || in.size() < 2 + nb) return false;
            len = 0;
            for (size_t i = 0; i < nb; i++) len = len << 8 | in[2 + i];
            // Shortest form only: 0x81 for 128..255, 0x82 from 256, ...
            if (len < 0x80 || (nb > 1 && len >> (8 * (nb - 1)) == 0)) return false;
            hdr += nb;
        }
        if (in.size() - hdr < len) return false;
        if (content) *content = in.subspan(hdr, len);
        if (whole) *whole = in.subspan(0, hdr + len);
        in = in.subspan(hdr + len);
        return true;
    }
};

bool equal(Bytes a, const uint8_t* b, size_t n) { return a.size() == n && std::memcmp(a.data(), b, n) == 0; }
template <size_t N>
bool equal(Bytes a, const uint8_t (&b)[N]) {
    return equal(a, b, N);
}

// OBJECT IDENTIFIER contents.
constexpr uint8_t kEcdsaSha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
constexpr uint8_t kEcdsaSha384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
constexpr uint8_t kEcdsaSha512[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};
constexpr uint8_t kEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
constexpr uint8_t kP256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr uint8_t kP384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr uint8_t kP521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};

bool valid_oid(Bytes oid) {
    // Non-empty, the last byte ends a sub-identifier, no sub-identifier
    // starts with a 0x80 padding byte (X.690 §8.19.2).
    if (oid.empty() || (oid.back() & 0x80)) return false;
    bool start = true;
    for (uint8_t b : oid) {
        if (start && b == 0x80) return false;
        start = !(b & 0x80);
    }
    return true;
}

bool ascii(Bytes s, bool printable) {
    for (uint8_t c : s) {
        if (c >= 0x80) return false;
        // PrintableString (X.680 §41.4): A-Z a-z 0-9 space ' ( ) + , - . / : = ?
        if (printable && !(std::isalnum(c) || std::strchr(" '()+,-./:=?", c))) return false;
        if (c == 0) return false;
    }
    return true;
}

bool utf8(Bytes s) {
    for (size_t i = 0; i < s.size();) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0) return false;
        if (c < 0x80) { n = 1; cp = c; }
        else if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
        else return false;
        if (i + n > s.size()) return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n;
    }
    return true;
}

// Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF
// AttributeTypeAndValue { OID, string }); PrintableString, UTF8String and
// IA5String values only, and at least one attribute.
bool read_name(Reader& r, Bytes* whole) {
    Bytes seq;
    if (!r.next(0x30, &seq, whole)) return false;
    Reader rdns{seq};
    if (rdns.done()) return false;
    while (!rdns.done()) {
        Bytes set;
        if (!rdns.next(0x31, &set)) return false;
        Reader avas{set};
        if (avas.done()) return false;
        while (!avas.done()) {
            Bytes ava, oid, value;
            if (!avas.next(0x30, &ava)) return false;
            Reader a{ava};
            if (!a.next(0x06, &oid) || !valid_oid(oid)) return false;
            uint8_t t = a.peek();
            if (!a.next(t, &value) || !a.done()) return false;
            bool ok = t == 0x13 ? ascii(value, true) : t == 0x16 ? ascii(value, false) : t == 0x0c && utf8(value);
            if (value.empty() || !ok) return false;
        }
    }
    return true;
}

// UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280
// §4.1.2.5); the fields must name a real instant (no 30 February).
bool read_time(Reader& r, time_t* out) {
    Bytes v;
    int year;
    size_t off;
    if (r.peek() == 0x17) {
        if (!r.next(0x17, &v) || v.size() != 13) return false;
        off = 2;
    } else {
        if (!r.next(0x18, &v) || v.size() != 15) return false;
        off = 4;
    }
    if (v.back() != 'Z') return false;
    for (size_t i = 0; i + 1 < v.size(); i++)
        if (v[i] < '0' || v[i] > '9') return false;
    auto num = [&](size_t at, size_t n) {
        int x = 0;
        for (size_t i = 0; i < n; i++) x = x * 10 + (v[at + i] - '0');
        return x;
    };
    year = off == 2 ? num(0, 2) : num(0, 4);
    if (off == 2) year += year >= 50 ? 1900 : 2000;  // §4.1.2.5.1
    struct tm tm = {};
    tm.tm_year = year - 1900;
    tm.tm_mon = num(off, 2) - 1;
    tm.tm_mday = num(off + 2, 2);
    tm.tm_hour = num(off + 4, 2);
    tm.tm_min = num(off + 6, 2);
    tm.tm_sec = num(off + 8, 2);
    struct tm want = tm;
    time_t t = timegm(&tm);
    if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
        tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
        return false;
    *out = t;
    return true;
}

bool read_extensions(Bytes exts, LeafView* v) {
    Reader r{exts};
    if (r.done()) return false;
    uint64_t seen = 0;
    while (!r.done()) {
        Bytes ext, oid, value;
        if (!r.next(0x30, &ext)) return false;
        Reader e{ext};
        if (!e.next(0x06, &oid)) return false;
        if (e.peek() == 0x01) {
            // critical: DER omits FALSE (the default), so only TRUE is valid.
            Bytes b;
            if (!e.next(0x01, &b) || b.size() != 1 || b[0] != 0xff) return false;
        }
        if (!e.next(0x04, &value) || !e.done()) return false;
        // id-ce-* (2.5.29.n) only.
        if (oid.size() != 3 || oid[0] != 0x55 || oid[1] != 0x1d) return false;
        uint8_t which = oid[2];
        // Each extension at most once (RFC 5280 §4.2).
        if (which >= 64 || (seen >> which & 1)) return false;
        seen |= uint64_t(1) << which;
        Reader x{value};
        Bytes body;
        switch (which) {
        case 19:  // basicConstraints: an end entity's is empty (cA FALSE)
            if (!x.next(0x30, &body) || !body.empty()) return false;
            break;
        case 15:  // keyUsage
            if (!x.next(0x03, &body) || body.size() < 2 || body.size() > 3 || body[0] > 7) return false;
            break;
        case 37: {  // extKeyUsage: SEQUENCE OF KeyPurposeId
            if (!x.next(0x30, &body)) return false;
            Reader k{body};
            if (k.done()) return false;
            while (!k.done()) {
                Bytes p;
                if (!k.next(0x06, &p) || !valid_oid(p)) return false;
            }
            break;
        }
        case 14:  // subjectKeyIdentifier
            if (!x.next(0x04, &body) || body.empty()) return false;
            break;
        case 35: {  // authorityKeyIdentifier: keyIdentifier only
            if (!x.next(0x30, &body)) return false;
            Reader k{body};
            if (!k.next(0x80, &v->akid_keyid) || v->akid_keyid.empty() || !k.done()) return false;
            break;
        }
        case 17: {  // subjectAltName: rfc822Name, dNSName, iPAddress
            if (!x.next(0x30, &body)) return false;
            Reader g{body};
            if (g.done()) return false;
            while (!g.done()) {
                uint8_t t = g.peek();
                Bytes n;
                if (t != 0x81 && t != 0x82 && t != 0x87) return false;
                if (!g.next(t, &n) || n.empty()) return false;
                if (t == 0x87 ? n.size() != 4 && n.size() != 16 : !ascii(n, false)) return false;
                v->alt_names.push_back({t, n});
            }
            break;
        }
        default: return false;
        }
        if (!x.done()) return false;
    }
    return true;
}

}  // namespace

std::optional<LeafView> read_leaf(Bytes der) {
    LeafView v;
    Reader top{der};
    Bytes cert, tbs, alg_outer, alg_inner, sig;
    if (!top.next(0x30, &cert) || !top.done()) return std::nullopt;
    Reader c{cert};
    if (!c.next(0x30, &tbs, &v.tbs) || !c.next(0x30, nullptr, &alg_outer) || !c.next(0x03, &sig) || !c.done())
        return std::nullopt;
    // signatureValue: a BIT STRING with no unused bits.
    if (sig.size() < 2 || sig[0] != 0) return std::nullopt;
    v.signature = sig.subspan(1);

    Reader t{tbs};
    Bytes version, ver_int;
    // version [0] EXPLICIT, v3 only.
    if (!t.next(0xa0, &version)) return std::nullopt;
    Reader ver{version};
    if (!ver.next(0x02, &ver_int) || !ver.done() || ver_int.size() != 1 || ver_int[0] != 2) return std::nullopt;
    // serialNumber: positive, minimal, at most 20 octets (§4.1.2.2).
    if (!t.next(0x02, &v.serial_value, &v.serial)) return std::nullopt;
    Bytes s = v.serial_value;
    if (s.empty() || s.size() > 20 || (s[0] & 0x80) || (s.size() > 1 && s[0] == 0 && !(s[1] & 0x80)))
        return std::nullopt;
    // signature: must be the outer signatureAlgorithm, byte for byte
    // (§4.1.1.2), ECDSA with SHA-2 and no parameters (RFC 5758 §3.2).
    Bytes alg;
    if (!t.next(0x30, &alg, &alg_inner) || alg_inner.size() != alg_outer.size() ||
        std::memcmp(alg_inner.data(), alg_outer.data(), alg_inner.size()) != 0)
        return std::nullopt;
    Reader a{alg};
    Bytes oid;
    if (!a.next(0x06, &oid) || !a.done()) return std::nullopt;
    if (equal(oid, kEcdsaSha256)) v.digest_nid = NID_sha256;
    else if (equal(oid, kEcdsaSha384)) v.digest_nid = NID_sha384;
    else if (equal(oid, kEcdsaSha512)) v.digest_nid = NID_sha512;
    else return std::nullopt;
    if (!read_name(t, &v.issuer)) return std::nullopt;
    Bytes validity;
    if (!t.next(0x30, &validity)) return std::nullopt;
    Reader vr{validity};
    if (!read_time(vr, &v.not_before) || !read_time(vr, &v.not_after) || !vr.done()) return std::nullopt;
    if (!read_name(t, &v.subject)) return std::nullopt;
    // subjectPublicKeyInfo: id-ecPublicKey on a named curve, uncompressed.
    Bytes spki, spki_alg, key;
    if (!t.next(0x30, &spki)) return std::nullopt;
    Reader k{spki};
    if (!k.next(0x30, &spki_alg) || !k.next(0x03, &key) || !k.done()) return std::nullopt;
    Reader ka{spki_alg};
    Bytes kind, curve;
    if (!ka.next(0x06, &kind) || !equal(kind, kEcPublicKey) || !ka.next(0x06, &curve) || !ka.done())
        return std::nullopt;
    size_t field;
    if (equal(curve, kP256)) v.curve = "P-256", field = 32;
    else if (equal(curve, kP384)) v.curve = "P-384", field = 48;
    else if (equal(curve, kP521)) v.curve = "P-521", field = 66;
    else return std::nullopt;
    if (key.size() != 2 + 2 * field || key[0] != 0 || key[1] != 0x04) return std::nullopt;
    v.point = key.subspan(1);
    // No issuerUniqueID / subjectUniqueID; extensions [3] EXPLICIT.
    if (!t.done()) {
        Bytes wrap, exts;
        if (!t.next(0xa3, &wrap) || !t.done()) return std::nullopt;
        Reader w{wrap};
        if (!w.next(0x30, &exts) || !w.done() || !read_extensions(exts, &v)) return std::nullopt;
    }
    return v;
}

}  // namespace nimbus::pki
