#include "control/pki/pki.h"

#include <sys/stat.h>

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

std::vector<uint8_t> Certificate::der() const {
    unsigned char* d = nullptr;
    int n = i2d_X509(x_, &d);
    if (n <= 0) return {};
    std::vector<uint8_t> v(d, d + n);
    OPENSSL_free(d);
    return v;
}

Identity Certificate::subject() const {
    Identity id;
    unsigned char* d = nullptr;
    int n = i2d_X509_NAME(X509_get_subject_name(x_), &d);
    if (n <= 0) return id;
    id.type = ike::ID_DER_ASN1_DN;
    id.data.assign(d, d + n);
    OPENSSL_free(d);
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
        // RFC 5280 §6.3 for the end-entity certificate: a current CRL from
        // its issuer must exist and must not list it.
        X509_CRL* crl = nullptr;
        for (auto* c : crls_)
            if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_issuer_name(leaf.get())) == 0) crl = c;
        int code = 0;
        if (!crl) {
            code = X509_V_ERR_UNABLE_TO_GET_CRL;
        } else if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0) {
            code = X509_V_ERR_CRL_NOT_YET_VALID;
        } else if (X509_CRL_get0_nextUpdate(crl) && X509_cmp_current_time(X509_CRL_get0_nextUpdate(crl)) < 0) {
            code = X509_V_ERR_CRL_HAS_EXPIRED;
        } else {
            X509_REVOKED* entry = nullptr;
            if (X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(leaf.get())) == 1)
                code = X509_V_ERR_CERT_REVOKED;
        }
        if (code) {
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
