#include "control/pki/pki.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ike/messages.h"
#include "control/pki/leaf.h"

namespace nimbus::pki {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "no detail";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Bio open_file(const std::string& path, std::string* err) {
    BIO* b = BIO_new_file(path.c_str(), "rb");
    if (!b) {
        *err = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        ERR_clear_error();
    }
    return Bio(b);
}

// All certificates in a PEM file (or one DER certificate).
bool read_certs(const std::string& path, std::vector<X509*>* out, std::string* err) {
    Bio b = open_file(path, err);
    if (!b) return false;
    while (X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) out->push_back(x);
    ERR_clear_error();
    if (out->empty()) {
        b = open_file(path, err);
        if (!b) return false;
        if (X509* x = d2i_X509_bio(b.get(), nullptr)) out->push_back(x);
        ERR_clear_error();
    }
    if (out->empty()) {
        *err = fmt::format("{}: no certificate found (PEM or DER expected)", path);
        return false;
    }
    return true;
}

[[noreturn]] void crypto_oom(const char* what) {
    fmt::print(stderr, "pki: {} failed (out of memory)\n", what);
    std::abort();
}

// An OpenSSL object as DER through its i2d function; empty on failure.
template <class T>
std::vector<uint8_t> to_der(const T* x, int (*i2d)(const T*, unsigned char**)) {
    unsigned char* d = nullptr;
    int len = i2d(x, &d);
    if (len <= 0) return {};
    std::vector<uint8_t> v(d, d + len);
    OPENSSL_free(d);
    return v;
}

// A Name as DER (an ID_DER_ASN1_DN identity's data); empty on failure.
std::vector<uint8_t> name_der(const X509_NAME* n) { return to_der(n, i2d_X509_NAME); }

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = char(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

}  // namespace

// ---- Certificate

// Parsed certificates by their exact DER. OpenSSL 3.0's d2i_X509 builds a
// decoder context for the public key on every call (openssl/openssl#17950,
// #19119): 100-160 us for a P-384 certificate on the development VM, up to a
// tenth of a handshake's public-key work. Sites that reconnect (a WAN outage,
// dead-peer restarts) and an edge reconnecting to its concentrator present
// the same bytes again. Only parsing is cached: every use still verifies the
// chain, the CRLs and the validity dates. X509 objects are reference counted
// and not modified after parsing. Bounded; the oldest entry goes first.
namespace {
struct CertCache {
    std::mutex mu;
    std::unordered_map<std::string, X509*> by_der;
    std::deque<std::string> order;
    size_t limit = 4096;
    uint64_t hits = 0, misses = 0;
};
// Never destroyed: at exit OpenSSL may already be cleaned up (its atexit
// handler can run before a static destructor would).
CertCache& cert_cache() {
    static CertCache* c = new CertCache;
    return *c;
}
// Drops the oldest entries until at most n are left (c.mu held).
void evict_to(CertCache& c, size_t n) {
    while (c.by_der.size() > n && !c.order.empty()) {
        auto old = c.by_der.find(c.order.front());
        if (old != c.by_der.end()) {
            X509_free(old->second);
            c.by_der.erase(old);
        }
        c.order.pop_front();
    }
}
}  // namespace

std::optional<Certificate> Certificate::from_der(std::span<const uint8_t> der) {
    std::string key(reinterpret_cast<const char*>(der.data()), der.size());
    CertCache& c = cert_cache();
    {
        std::lock_guard<std::mutex> g(c.mu);
        if (auto it = c.by_der.find(key); it != c.by_der.end()) {
            c.hits++;
            X509_up_ref(it->second);
            return Certificate(it->second);
        }
        c.misses++;
    }
    const unsigned char* p = der.data();
    X509* x = d2i_X509(nullptr, &p, long(der.size()));
    if (!x) {
        ERR_clear_error();
        return std::nullopt;
    }
    if (p != der.data() + der.size()) {
        X509_free(x);
        return std::nullopt;
    }
    std::lock_guard<std::mutex> g(c.mu);
    if (c.limit && !c.by_der.count(key)) {
        evict_to(c, c.limit - 1);
        X509_up_ref(x);
        c.by_der.emplace(key, x);
        c.order.push_back(std::move(key));
    }
    return Certificate(x);
}

CertCacheStats cert_cache_stats() {
    CertCache& c = cert_cache();
    std::lock_guard<std::mutex> g(c.mu);
    return {c.by_der.size(), c.hits, c.misses};
}

void set_cert_cache_limit(size_t n) {
    CertCache& c = cert_cache();
    std::lock_guard<std::mutex> g(c.mu);
    c.limit = n;
    evict_to(c, n);
}

Certificate::Certificate(const Certificate& o) : x_(o.x_) {
    if (x_) X509_up_ref(x_);
}
Certificate& Certificate::operator=(const Certificate& o) {
    if (this != &o) {
        if (o.x_) X509_up_ref(o.x_);
        if (x_) X509_free(x_);
        x_ = o.x_;
    }
    return *this;
}
Certificate::Certificate(Certificate&& o) noexcept : x_(o.x_) { o.x_ = nullptr; }
Certificate& Certificate::operator=(Certificate&& o) noexcept {
    if (this != &o) {
        if (x_) X509_free(x_);
        x_ = o.x_;
        o.x_ = nullptr;
    }
    return *this;
}
Certificate::~Certificate() {
    if (x_) X509_free(x_);
}

std::vector<uint8_t> Certificate::der() const { return to_der<X509>(x_, i2d_X509); }

Identity Certificate::subject() const {
    Identity id;
    id.data = name_der(X509_get_subject_name(x_));
    if (!id.data.empty()) id.type = ike::ID_DER_ASN1_DN;
    return id;
}

bool Certificate::has_identity(const Identity& id) const {
    using namespace ike;
    if (id.type == ID_DER_ASN1_DN) {
        const unsigned char* p = id.data.data();
        X509_NAME* n = d2i_X509_NAME(nullptr, &p, long(id.data.size()));
        if (!n) {
            ERR_clear_error();
            return false;
        }
        bool eq = X509_NAME_cmp(n, X509_get_subject_name(x_)) == 0;
        X509_NAME_free(n);
        return eq;
    }
    int want;
    switch (id.type) {
    case ID_FQDN: want = GEN_DNS; break;
    case ID_RFC822_ADDR: want = GEN_EMAIL; break;
    case ID_IPV4_ADDR:
    case ID_IPV6_ADDR: want = GEN_IPADD; break;
    default: return false;
    }
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x_, NID_subject_alt_name, nullptr, nullptr));
    if (!sans) return false;
    bool found = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && !found; i++) {
        GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != want) continue;
        const ASN1_STRING* s = nullptr;
        if (want == GEN_DNS) s = g->d.dNSName;
        else if (want == GEN_EMAIL) s = g->d.rfc822Name;
        else s = g->d.iPAddress;
        std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), size_t(ASN1_STRING_length(s)));
        std::string w(id.data.begin(), id.data.end());
        found = want == GEN_IPADD ? v == w : lower(v) == lower(w);
    }
    GENERAL_NAMES_free(sans);
    return found;
}

std::string Certificate::serial() const {
    const ASN1_INTEGER* s = X509_get0_serialNumber(x_);
    BIGNUM* bn = ASN1_INTEGER_to_BN(s, nullptr);
    if (!bn) return "?";
    char* hex = BN_bn2hex(bn);
    std::string out = fmt::format("0x{}", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

EVP_PKEY* Certificate::public_key() const { return X509_get0_pubkey(x_); }

// ---- TrustStore

TrustStore::~TrustStore() {
    if (store_) X509_STORE_free(store_);
    for (auto* c : crls_) X509_CRL_free(c);
}

std::shared_ptr<const TrustStore> TrustStore::load(const std::string& ca, const std::string& crl, std::string* err) {
    std::shared_ptr<TrustStore> ts(new TrustStore());
    std::vector<X509*> xs;
    bool ok = read_certs(ca, &xs, err);
    for (auto* x : xs) ts->cas_.push_back(Certificate::adopt(x));
    if (!ok) return nullptr;
    ts->store_ = X509_STORE_new();
    if (!ts->store_) crypto_oom("X509_STORE_new");
    for (auto& c : ts->cas_) {
        if (!X509_check_ca(c.get())) {
            *err = fmt::format("{}: '{}' is not a CA certificate (basicConstraints CA:TRUE missing)", ca,
                               c.subject_str());
            return nullptr;
        }
        if (X509_STORE_add_cert(ts->store_, c.get()) != 1) {
            *err = fmt::format("{}: cannot add '{}': {}", ca, c.subject_str(), openssl_error());
            return nullptr;
        }
        // CERTREQ: SHA-1 of the SubjectPublicKeyInfo (RFC 7296 §3.7).
        unsigned char* spki = nullptr;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c.get()), &spki);
        if (n > 0) {
            unsigned char md[20];
            unsigned int len = 0;
            if (EVP_Digest(spki, size_t(n), md, &len, EVP_sha1(), nullptr) == 1 && len == 20)
                ts->certreq_.insert(ts->certreq_.end(), md, md + 20);
            OPENSSL_free(spki);
        }
    }
    ts->find_anchors();
    if (!crl.empty()) {
        Bio b = open_file(crl, err);
        if (!b) return nullptr;
        std::vector<X509_CRL*> crls;
        while (X509_CRL* c = PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr)) crls.push_back(c);
        ERR_clear_error();
        if (crls.empty()) {
            b = open_file(crl, err);
            if (!b) return nullptr;
            if (X509_CRL* c = d2i_X509_CRL_bio(b.get(), nullptr)) crls.push_back(c);
            ERR_clear_error();
        }
        if (crls.empty()) {
            *err = fmt::format("{}: no CRL found (PEM or DER expected)", crl);
            return nullptr;
        }
        for (auto* c : crls) {
            // A CRL must be signed by one of our CAs, or it would be ignored
            // at verification time and every certificate would fail.
            bool issuer_known = false;
            for (auto& a : ts->cas_)
                if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(a.get())) == 0 &&
                    X509_CRL_verify(c, a.public_key()) == 1)
                    issuer_known = true;
            ERR_clear_error();
            if (!issuer_known) {
                for (auto* x : crls) X509_CRL_free(x);
                *err = fmt::format("{}: CRL is not signed by a CA in {}", crl, ca);
                return nullptr;
            }
            ts->ncrls_++;
        }
        ts->crls_ = std::move(crls);
    }
    return ts;
}

Verdict TrustStore::verify(const Certificate& leaf, std::span<const Certificate> chain) const {
    Verdict v;
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (auto& c : chain) sk_X509_push(untrusted, c.get());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, store_, leaf.get(), untrusted) != 1) crypto_oom("X509_STORE_CTX_init");
    int r = X509_verify_cert(ctx);
    v.ok = r == 1;
    if (v.ok && !crls_.empty()) {
        if (int code = crl_code(X509_get_issuer_name(leaf.get()), X509_get0_serialNumber(leaf.get()))) {
            v.ok = false;
            v.code = code;
            v.error = X509_verify_cert_error_string(code);
            v.revoked = code == X509_V_ERR_CERT_REVOKED;
            v.serial = leaf.serial();
            v.subject = leaf.subject_str();
            X509_STORE_CTX_free(ctx);
            sk_X509_free(untrusted);
            ERR_clear_error();
            return v;
        }
    }
    if (!v.ok) {
        v.code = X509_STORE_CTX_get_error(ctx);
        v.error = X509_verify_cert_error_string(v.code);
        v.revoked = v.code == X509_V_ERR_CERT_REVOKED;
        X509* bad = X509_STORE_CTX_get_current_cert(ctx);
        if (!bad) bad = leaf.get();
        X509_up_ref(bad);
        Certificate b = Certificate::adopt(bad);
        v.serial = b.serial();
        v.subject = b.subject_str();
    } else {
        v.serial = leaf.serial();
        v.subject = leaf.subject_str();
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();
    return v;
}

int TrustStore::crl_code(const X509_NAME* issuer, const ASN1_INTEGER* serial) const {
    if (crls_.empty()) return 0;
    // RFC 5280 §6.3 for the end-entity certificate: a current CRL from its
    // issuer must exist and must not list it.
    X509_CRL* crl = nullptr;
    for (auto* c : crls_)
        if (X509_NAME_cmp(X509_CRL_get_issuer(c), issuer) == 0) crl = c;
    if (!crl) return X509_V_ERR_UNABLE_TO_GET_CRL;
    if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0) return X509_V_ERR_CRL_NOT_YET_VALID;
    if (X509_CRL_get0_nextUpdate(crl) && X509_cmp_current_time(X509_CRL_get0_nextUpdate(crl)) < 0)
        return X509_V_ERR_CRL_HAS_EXPIRED;
    X509_REVOKED* entry = nullptr;
    if (X509_CRL_get0_by_serial(crl, &entry, serial) == 1) return X509_V_ERR_CERT_REVOKED;
    return 0;
}

// ---- Peers' certificates

namespace {
std::atomic<uint64_t> g_direct{0}, g_full{0};

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

bool to_time(const ASN1_TIME* t, time_t* out) {
    struct tm tm = {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
    *out = timegm(&tm);
    return true;
}

// BN_bn2hex's spelling, as Certificate::serial() prints it.
std::string serial_hex(std::span<const uint8_t> v) {
    while (!v.empty() && v[0] == 0) v = v.subspan(1);
    if (v.empty()) return "0x0";
    std::string s = "0x";
    for (uint8_t b : v) s += fmt::format("{:02X}", b);
    return s;
}

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// The public key from an uncompressed point on a named curve (the
// provider checks that the point is on the curve).
std::shared_ptr<EVP_PKEY> ec_key(const char* curve, std::span<const uint8_t> point) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()), point.size()),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* k = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
        k = nullptr;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return std::shared_ptr<EVP_PKEY>(k, PkeyFree{});
}

// Certificate::has_identity for a certificate read by read_leaf().
bool names(const LeafView& v, const Identity& id) {
    using namespace ike;
    if (id.type == ID_DER_ASN1_DN) return same(id.data, v.subject);
    uint8_t want;
    switch (id.type) {
    case ID_FQDN: want = 0x82; break;
    case ID_RFC822_ADDR: want = 0x81; break;
    case ID_IPV4_ADDR:
    case ID_IPV6_ADDR: want = 0x87; break;
    default: return false;
    }
    std::string w = want == 0x87 ? std::string(id.data.begin(), id.data.end()) : lower({reinterpret_cast<const char*>(id.data.data()), id.data.size()});
    for (auto& n : v.alt_names) {
        if (n.tag != want) continue;
        std::string_view got(reinterpret_cast<const char*>(n.value.data()), n.value.size());
        if (want == 0x87 ? got == w : lower(got) == w) return true;
    }
    return false;
}
}  // namespace

PeerCheckStats peer_check_stats() { return {g_direct.load(), g_full.load()}; }

void TrustStore::find_anchors() {
    for (size_t i = 0; i < cas_.size(); i++) {
        X509* x = cas_[i].get();
        Anchor a;
        a.ca = i;
        a.subject = name_der(X509_get_subject_name(x));
        a.der = cas_[i].der();
        bool ok = !a.subject.empty() && !a.der.empty() && X509_self_signed(x, 1) == 1 &&
                  to_time(X509_get0_notBefore(x), &a.not_before) && to_time(X509_get0_notAfter(x), &a.not_after);
        uint32_t f = X509_get_extension_flags(x);
        if (f & EXFLAG_INVALID) ok = false;
        if ((f & EXFLAG_KUSAGE) && !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN)) ok = false;
        for (int e = 0; e < X509_get_ext_count(x) && ok; e++) {
            int nid = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, e)));
            ok = nid == NID_basic_constraints || nid == NID_key_usage || nid == NID_subject_key_identifier ||
                 nid == NID_authority_key_identifier;
        }
        if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(x))
            a.skid.assign(ASN1_STRING_get0_data(skid), ASN1_STRING_get0_data(skid) + ASN1_STRING_length(skid));
        // Two CAs with one name: let OpenSSL choose between them.
        for (auto& other : anchors_)
            if (same(other.subject, a.subject)) ok = false, other.subject.clear();
        ERR_clear_error();
        if (ok) anchors_.push_back(std::move(a));
    }
    std::erase_if(anchors_, [](const Anchor& a) { return a.subject.empty(); });
}

std::optional<PeerCert> TrustStore::check_direct(std::span<const std::span<const uint8_t>> ders,
                                                 const Identity& id) const {
    if (ders.empty() || anchors_.empty()) return std::nullopt;
    auto v = read_leaf(ders[0]);
    if (!v || same(v->issuer, v->subject)) return std::nullopt;
    const Anchor* a = nullptr;
    for (auto& x : anchors_)
        if (same(x.subject, v->issuer)) a = &x;
    if (!a) return std::nullopt;
    // A peer may send our own CA along; anything else in its chain is for
    // OpenSSL to sort out.
    for (auto& d : ders.subspan(1)) {
        bool ours = false;
        for (auto& x : anchors_) ours = ours || same(x.der, d);
        if (!ours) return std::nullopt;
    }
    if (!v->akid_keyid.empty() && !a->skid.empty() && !same(v->akid_keyid, a->skid)) return std::nullopt;
    // Valid from notBefore up to (not including) notAfter, the CA as well,
    // as X509_verify_cert() judges it.
    time_t now = std::time(nullptr);
    if (now < v->not_before || now >= v->not_after || now < a->not_before || now >= a->not_after)
        return std::nullopt;
    if (!names(*v, id)) return std::nullopt;
    const X509* ca = cas_[a->ca].get();
    if (!crls_.empty()) {
        const unsigned char* p = v->serial.data();
        ASN1_INTEGER* serial = d2i_ASN1_INTEGER(nullptr, &p, long(v->serial.size()));
        int code = serial ? crl_code(X509_get_subject_name(ca), serial) : -1;
        ASN1_INTEGER_free(serial);
        ERR_clear_error();
        if (code) return std::nullopt;
    }
    const EVP_MD* md = v->digest_nid == NID_sha256 ? EVP_sha256() : v->digest_nid == NID_sha384 ? EVP_sha384() : EVP_sha512();
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx) crypto_oom("EVP_MD_CTX_new");
    bool sig_ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, cas_[a->ca].public_key()) == 1 &&
                  EVP_DigestVerify(ctx, v->signature.data(), v->signature.size(), v->tbs.data(), v->tbs.size()) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!sig_ok) return std::nullopt;
    PeerCert pc;
    pc.key = ec_key(v->curve, v->point);
    if (!pc.key) return std::nullopt;
    pc.subject = Identity{ike::ID_DER_ASN1_DN, std::vector<uint8_t>(v->subject.begin(), v->subject.end())}.str();
    pc.serial = serial_hex(v->serial_value);
    pc.direct = true;
    return pc;
}

std::optional<PeerCert> TrustStore::check_peer(std::span<const std::span<const uint8_t>> ders, const Identity& id,
                                               PeerRefusal* no) const {
    if (auto pc = check_direct(ders, id)) {
        g_direct++;
        return pc;
    }
    g_full++;
    std::vector<Certificate> certs;
    for (auto& d : ders) {
        auto x = Certificate::from_der(d);
        if (!x) {
            no->why = "a CERT payload does not hold a DER certificate";
            return std::nullopt;
        }
        certs.push_back(std::move(*x));
    }
    if (certs.empty()) {
        no->why = "no X.509 certificate in the message";
        return std::nullopt;
    }
    Verdict v = verify(certs.front(), std::span<const Certificate>(certs).subspan(1));
    if (!v.ok) {
        no->revoked = v.revoked;
        no->serial = v.serial;
        no->why = fmt::format("certificate '{}' serial {} refused: {}", v.subject, v.serial, v.error);
        return std::nullopt;
    }
    if (!certs.front().has_identity(id)) {
        no->serial = v.serial;
        no->why = fmt::format("identity '{}' is neither the subject nor a subjectAltName of certificate '{}'",
                              id.str(), certs.front().subject_str());
        return std::nullopt;
    }
    PeerCert pc;
    EVP_PKEY* k = certs.front().public_key();
    if (!k || EVP_PKEY_up_ref(k) != 1) {
        no->why = fmt::format("certificate '{}': cannot use its public key", v.subject);
        return std::nullopt;
    }
    pc.key = std::shared_ptr<EVP_PKEY>(k, PkeyFree{});
    pc.subject = v.subject;
    pc.serial = v.serial;
    return pc;
}

// ---- Credential

Credential::~Credential() {
    if (key_) EVP_PKEY_free(key_);
}

std::shared_ptr<const Credential> Credential::adopt(std::vector<Certificate> certs, EVP_PKEY* key) {
    std::shared_ptr<Credential> c(new Credential());
    c->key_ = key;
    c->certs_ = std::move(certs);
    if (c->certs_.empty() || X509_check_private_key(c->certs_.front().get(), key) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    c->method_ = ecdsa_method_for(key);
    return c->method_ ? c : nullptr;
}

uint8_t ecdsa_method_for(EVP_PKEY* key) {
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return 0;
    char name[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return 0;
    std::string g(name, len);
    if (g == "prime256v1" || g == "P-256" || g == "secp256r1") return ike::AUTH_ECDSA_SHA256_P256;
    if (g == "secp384r1" || g == "P-384") return ike::AUTH_ECDSA_SHA384_P384;
    if (g == "secp521r1" || g == "P-521") return ike::AUTH_ECDSA_SHA512_P521;
    return 0;
}

uint16_t Credential::preferred_hash() const {
    switch (method_) {
    case ike::AUTH_ECDSA_SHA256_P256: return ike::HASH_SHA2_256;
    case ike::AUTH_ECDSA_SHA512_P521: return ike::HASH_SHA2_512;
    default: return ike::HASH_SHA2_384;
    }
}

bool check_key_file(const std::string& path, std::string* err) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        *err = fmt::format("cannot read key file {}: {}", path, std::strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = fmt::format("key file {} is not a regular file", path);
        return false;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        *err = fmt::format("key file {} is accessible by group or others (mode {:04o}); refusing to use it: "
                           "chmod 600 {}",
                           path, st.st_mode & 07777, path);
        return false;
    }
    return true;
}

std::shared_ptr<const Credential> Credential::load(const std::string& cert, const std::string& key,
                                                   std::string* err) {
    std::shared_ptr<Credential> c(new Credential());
    std::vector<X509*> xs;
    bool ok = read_certs(cert, &xs, err);
    for (auto* x : xs) c->certs_.push_back(Certificate::adopt(x));
    if (!ok) return nullptr;
    if (!check_key_file(key, err)) return nullptr;
    Bio b = open_file(key, err);
    if (!b) return nullptr;
    c->key_ = PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr);
    if (!c->key_) {
        *err = fmt::format("{}: no private key found (PEM, SEC1 or PKCS#8, unencrypted): {}", key, openssl_error());
        return nullptr;
    }
    if (X509_check_private_key(c->certs_.front().get(), c->key_) != 1) {
        ERR_clear_error();
        *err = fmt::format("{} does not belong to the certificate in {} ('{}')", key, cert,
                           c->certs_.front().subject_str());
        return nullptr;
    }
    c->method_ = ecdsa_method_for(c->key_);
    if (!c->method_) {
        *err = fmt::format("{}: only ECDSA keys on P-256, P-384 or P-521 are supported", key);
        return nullptr;
    }
    return c;
}

}  // namespace nimbus::pki
