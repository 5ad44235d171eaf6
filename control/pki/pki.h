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
    // CERTREQ data (RFC 7296 §3.7): SHA-1 of each CA's SubjectPublicKeyInfo.
    const std::vector<uint8_t>& certreq() const { return certreq_; }
    bool has_crl() const { return ncrls_ > 0; }
    size_t ca_count() const { return cas_.size(); }

private:
    TrustStore() = default;
    X509_STORE* store_ = nullptr;
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
