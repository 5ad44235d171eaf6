// X.509 for IKE (OpenSSL 3): a cloud's trust anchors and CRLs, our own
// certificate and private key, and the peer certificates that arrive in
// CERT payloads. Chain validation always runs against the cloud's CA only
// (never the system store); with a CRL configured, the end-entity
// certificate must be covered by a current CRL and must not be on it.
//
// Loaded material is immutable and shared (shared_ptr): a reload builds new
// objects and swaps them in, so exchanges in flight finish with what they
// started with and established tunnels are not touched.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <openssl/types.h>

#include "control/pki/identity.h"

namespace nimbus::pki {

class Certificate {
public:
    static std::optional<Certificate> from_der(std::span<const uint8_t> der);
    // Takes ownership of one reference to x.
    static Certificate adopt(X509* x) { return Certificate(x); }
    Certificate(const Certificate& o);
    Certificate& operator=(const Certificate& o);
    Certificate(Certificate&& o) noexcept;
    Certificate& operator=(Certificate&& o) noexcept;
    ~Certificate();

    X509* get() const { return x_; }
    std::vector<uint8_t> der() const;
    // The subject as an ID_DER_ASN1_DN identity.
    Identity subject() const;
    std::string subject_str() const { return subject().str(); }
    // True if `id` names this certificate: its subject DN, or a
    // subjectAltName of the same kind (dNSName, rfc822Name, iPAddress).
    bool has_identity(const Identity& id) const;
    // "0x..." (hex), as `openssl x509 -serial` prints it.
    std::string serial() const;
    EVP_PKEY* public_key() const;  // owned by the certificate

private:
    explicit Certificate(X509* x) : x_(x) {}
    X509* x_ = nullptr;
};

// Certificate::from_der keeps what it parsed, by exact DER (pki.cpp says
// why). The limit (default 4,096 certificates, 0 = no caching) applies at
// once.
struct CertCacheStats {
    size_t entries = 0;
    uint64_t hits = 0, misses = 0;
};
CertCacheStats cert_cache_stats();
void set_cert_cache_limit(size_t n);

struct Verdict {
    bool ok = false;
    bool revoked = false;
    int code = 0;            // X509_V_ERR_*
    std::string error;       // OpenSSL's text for `code`
    std::string serial;      // of the certificate the error is about
    std::string subject;
};

// A peer's end-entity certificate once validated: what IKE_AUTH needs.
struct PeerCert {
    std::shared_ptr<EVP_PKEY> key;
    std::string subject;  // its subject DN, as Identity::str() prints it
    std::string serial;   // "0x..."
    bool direct = false;  // checked by TrustStore's own reader (check_peer)
    EVP_PKEY* public_key() const { return key.get(); }
};

struct PeerRefusal {
    std::string why;      // for the log line
    bool revoked = false;
    std::string serial;   // of the certificate refused, if one was read
};

// How often TrustStore::check_peer decided with its own reader (`direct`)
// and how often it went to OpenSSL's full path (`full`).
struct PeerCheckStats {
    uint64_t direct = 0, full = 0;
};
PeerCheckStats peer_check_stats();

class TrustStore {
public:
    // `ca` is a PEM file with one or more CA certificates (the root and any
    // intermediates we trust); `crl` (optional, "" for none) a PEM or DER
    // file with one or more CRLs. nullptr with *err on failure.
    static std::shared_ptr<const TrustStore> load(const std::string& ca, const std::string& crl, std::string* err);
    ~TrustStore();

    // Validates `leaf` with `chain` (intermediates sent by the peer) up to
    // one of our CAs, with CRL checking when a CRL is loaded.
    Verdict verify(const Certificate& leaf, std::span<const Certificate> chain) const;
    // A peer's CERT payloads (end-entity certificate first, then what the
    // peer sent as its chain): validated as verify() does, and `id` must
    // name the certificate (Certificate::has_identity). A certificate that
    // one of our root CAs issued directly, in the common shape (leaf.h),
    // is checked without OpenSSL's X.509 parser; anything else, and every
    // refusal, goes through Certificate::from_der and verify().
    std::optional<PeerCert> check_peer(std::span<const std::span<const uint8_t>> ders, const Identity& id,
                                       PeerRefusal* no) const;
    // CERTREQ data (RFC 7296 §3.7): SHA-1 of each CA's SubjectPublicKeyInfo.
    const std::vector<uint8_t>& certreq() const { return certreq_; }
    bool has_crl() const { return ncrls_ > 0; }
    size_t ca_count() const { return cas_.size(); }

private:
    TrustStore() = default;
    void find_anchors();
    std::optional<PeerCert> check_direct(std::span<const std::span<const uint8_t>> ders, const Identity& id) const;
    // X509_V_ERR_* for the end-entity certificate against our CRLs, 0 if
    // it is covered by a current CRL and not on it (or no CRL is loaded).
    int crl_code(const X509_NAME* issuer, const ASN1_INTEGER* serial) const;

    X509_STORE* store_ = nullptr;
    // Roots that may issue certificates checked by check_direct(): self-
    // signed, a unique subject, only basicConstraints / keyUsage (with
    // keyCertSign) / key identifiers as extensions.
    struct Anchor {
        std::vector<uint8_t> subject;  // Name DER
        std::vector<uint8_t> skid;
        std::vector<uint8_t> der;      // the whole certificate
        time_t not_before = 0, not_after = 0;
        size_t ca = 0;                 // index in cas_
    };
    std::vector<Anchor> anchors_;
    std::vector<Certificate> cas_;
    // CRLs, signature checked once at load; looked up by issuer at
    // verification (OpenSSL's CRL_CHECK would verify the signature again
    // on every handshake).
    std::vector<X509_CRL*> crls_;
    size_t ncrls_ = 0;
    std::vector<uint8_t> certreq_;
};

class Credential {
public:
    // Our certificate (PEM; further certificates in the file are sent as
    // the chain) and its private key (PEM, SEC1 or PKCS#8). The key file
    // must not be accessible to group or others.
    static std::shared_ptr<const Credential> load(const std::string& cert, const std::string& key, std::string* err);
    // From memory (the benchmark mints thousands): takes one reference to
    // `key`; nullptr if the key does not belong to certs.front().
    static std::shared_ptr<const Credential> adopt(std::vector<Certificate> certs, EVP_PKEY* key);
    ~Credential();

    const Certificate& cert() const { return certs_.front(); }
    std::span<const Certificate> chain() const { return std::span(certs_).subspan(1); }
    EVP_PKEY* key() const { return key_; }
    // The curve's RFC 4754 method (9, 10 or 11); 0 if the key is not on
    // P-256/384/521.
    uint8_t rfc4754_method() const { return method_; }
    // The hash to use with RFC 7427 for this key: SHA-256 for P-256,
    // SHA-384 for P-384, SHA-512 for P-521.
    uint16_t preferred_hash() const;

private:
    Credential() = default;
    std::vector<Certificate> certs_;
    EVP_PKEY* key_ = nullptr;
    uint8_t method_ = 0;
};

// Refuses a private key file that group or others may access, with a
// message that names the file, its mode and the fix.
bool check_key_file(const std::string& path, std::string* err);

// The RFC 4754 AUTH method matching an EC key's curve (9/10/11), 0 if none.
uint8_t ecdsa_method_for(EVP_PKEY* key);

}  // namespace nimbus::pki
