// PKI: chain validation against the cloud's CA (P-521) for P-384 devices,
// CRL revocation, the wrong CA, intermediates, identities in certificates,
// and key files that group or others can read.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "control/ike/messages.h"
#include "control/pki/identity.h"
#include "control/pki/pki.h"
#include "test/unit/pki/identity_helper.h"
#include "test/unit/pki/testpki.h"

using namespace nimbus;
using namespace nimbus::pki;
using nimbus::pki::test::id;

namespace {

const testpki::Pki& P() { return testpki::Pki::get(); }

Certificate load_cert(const std::string& name) {
    std::string err;
    auto cred = Credential::load(P().path(name + ".crt"), P().path(name + ".key"), &err);
    REQUIRE(cred);
    return cred->cert();
}

}  // namespace

TEST_CASE("a P-384 device certificate validates against the P-521 CA with the CRL checked") {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), P().path("ca.crl"), &err);
    INFO(err);
    REQUIRE(ts);
    CHECK(ts->has_crl());
    CHECK(ts->certreq().size() == 20);
    auto v = ts->verify(load_cert("site1"), {});
    INFO(v.error);
    CHECK(v.ok);
    CHECK(v.serial == "0x0B");
}

TEST_CASE("a revoked certificate is refused and its serial named") {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), P().path("ca.crl"), &err);
    REQUIRE(ts);
    auto v = ts->verify(load_cert("revoked"), {});
    CHECK_FALSE(v.ok);
    CHECK(v.revoked);
    CHECK(v.serial == "0x1337");
    CHECK(v.error == "certificate revoked");
    // Without the CRL the same certificate passes: the CRL is what refuses it.
    auto no_crl = TrustStore::load(P().path("ca.crt"), "", &err);
    REQUIRE(no_crl);
    CHECK(no_crl->verify(load_cert("revoked"), {}).ok);
}

TEST_CASE("a certificate from another CA is refused") {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), P().path("ca.crl"), &err);
    REQUIRE(ts);
    auto v = ts->verify(load_cert("rogue"), {});
    CHECK_FALSE(v.ok);
    CHECK_FALSE(v.revoked);
    CHECK(v.error == "unable to get local issuer certificate");
}

TEST_CASE("an intermediate sent by the peer completes the chain") {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), "", &err);
    REQUIRE(ts);
    auto cred = Credential::load(P().path("deep-chain.crt"), P().path("deep.key"), &err);
    INFO(err);
    REQUIRE(cred);
    REQUIRE(cred->chain().size() == 1);
    CHECK(ts->verify(cred->cert(), cred->chain()).ok);
    CHECK_FALSE(ts->verify(cred->cert(), {}).ok);
}

TEST_CASE("a CRL from a CA we do not trust is refused at load") {
    std::string err;
    std::string cmd = "cd " + P().dir() +
                      " && openssl ca -batch -config ca.cnf -gencrl -keyfile evil.key -cert evil.crt -out evil.crl"
                      " > /dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK_FALSE(TrustStore::load(P().path("ca.crt"), P().path("evil.crl"), &err));
    CHECK(err == P().path("evil.crl") + ": CRL is not signed by a CA in " + P().path("ca.crt"));
}

TEST_CASE("a non-CA certificate cannot be a trust anchor") {
    std::string err;
    CHECK_FALSE(TrustStore::load(P().path("site1.crt"), "", &err));
    CHECK(err.find("is not a CA certificate") != std::string::npos);
}

TEST_CASE("our credential: certificate, key, curve and hash") {
    std::string err;
    auto c = Credential::load(P().path("conc-chain.crt"), P().path("conc.key"), &err);
    INFO(err);
    REQUIRE(c);
    CHECK(c->rfc4754_method() == ike::AUTH_ECDSA_SHA384_P384);
    CHECK(c->preferred_hash() == ike::HASH_SHA2_384);
    CHECK(c->chain().size() == 1);
    CHECK(c->cert().subject_str() == "C=XX, O=nimbus-test, CN=conc.test");
    // A key that is not the certificate's.
    CHECK_FALSE(Credential::load(P().path("conc.crt"), P().path("site1.key"), &err));
    CHECK(err.find("does not belong to the certificate") != std::string::npos);
}

TEST_CASE("key files readable by group or others are refused with a clear message") {
    std::string copy = P().path("loose.key");
    std::filesystem::copy_file(P().path("conc.key"), copy, std::filesystem::copy_options::overwrite_existing);
    for (mode_t m : {0640, 0604, 0644, 0660}) {
        chmod(copy.c_str(), m);
        std::string err;
        CHECK_FALSE(Credential::load(P().path("conc.crt"), copy, &err));
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", unsigned(m));
        CHECK(err == "key file " + copy + " is accessible by group or others (mode " + mode +
                         "); refusing to use it: chmod 600 " + copy);
    }
    chmod(copy.c_str(), 0600);
    std::string err;
    CHECK(Credential::load(P().path("conc.crt"), copy, &err));
    CHECK_FALSE(check_key_file(P().path("nonexistent.key"), &err));
    CHECK(err.find("cannot read key file") == 0);
}

TEST_CASE("identities from the config and their match against peers") {
    using namespace ike;
    struct Case {
        const char* text;
        uint8_t type;
        const char* shown;
    };
    const Case ok[] = {
        {"CN=store-0001", ID_DER_ASN1_DN, "CN=store-0001"},
        {"C=XX, O=corp, CN=store-0001", ID_DER_ASN1_DN, "C=XX, O=corp, CN=store-0001"},
        {"/C=XX/O=corp/CN=x", ID_DER_ASN1_DN, "C=XX, O=corp, CN=x"},
        {"site1.example", ID_FQDN, "site1.example"},
        {"@site1", ID_FQDN, "site1"},
        {"ops@example.org", ID_RFC822_ADDR, "ops@example.org"},
        {"192.0.2.7", ID_IPV4_ADDR, "192.0.2.7"},
        {"2001:db8::7", ID_IPV6_ADDR, "2001:db8::7"},
    };
    for (auto& c : ok) {
        INFO(c.text);
        Identity i = id(c.text);
        CHECK(i.type == c.type);
        CHECK(i.str() == c.shown);
    }
    struct Bad {
        const char* text;
        const char* err;
    };
    const Bad bad[] = {
        {"", "an identity cannot be empty"},
        {"XX=1", "unknown attribute 'XX' in a distinguished name"},
        {"CN=", "attribute 'CN' has no value"},
        {"a b", "'a b' is not a valid identity (a DN such as \"CN=x\", an FQDN, an e-mail address or an IP address)"},
        {"a@b@c", "'a@b@c' is not a valid e-mail identity"},
    };
    for (auto& b : bad) {
        std::string err;
        CHECK_FALSE(parse_identity(b.text, &err));
        CHECK(err == b.err);
    }
    // A configured RDN subset matches the full subject; types must agree.
    CHECK(identity_matches(id("CN=store-0001"), id("C=XX, O=nimbus-test, CN=store-0001")));
    CHECK_FALSE(identity_matches(id("CN=store-0001"), id("C=XX, O=nimbus-test, CN=store-0002")));
    CHECK_FALSE(identity_matches(id("O=x, CN=store-0001"), id("C=XX, O=nimbus-test, CN=store-0001")));
    CHECK(identity_matches(id("Site1.Example"), id("site1.example")));
    CHECK_FALSE(identity_matches(id("site1.example"), id("192.0.2.7")));
    // Certificates carry identities as subject and subjectAltName.
    Certificate c = load_cert("site1");
    CHECK(c.has_identity(c.subject()));
    CHECK(c.has_identity(id("store-0001.test")));
    CHECK_FALSE(c.has_identity(id("store-0002.test")));
    CHECK_FALSE(c.has_identity(id("C=XX, O=nimbus-test, CN=store-0002")));
    CHECK_FALSE(c.has_identity(id("192.0.2.7")));
}

namespace {

// A CRL from the test CA with the given validity (days from now), written
// with the OpenSSL API so that its dates can lie in the past.
std::string write_crl(const std::string& name, long last_days, long next_days) {
    FILE* kf = fopen(P().path("ca.key").c_str(), "r");
    REQUIRE(kf);
    EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
    fclose(kf);
    FILE* cf = fopen(P().path("ca.crt").c_str(), "r");
    X509* ca = PEM_read_X509(cf, nullptr, nullptr, nullptr);
    fclose(cf);
    REQUIRE(key);
    REQUIRE(ca);
    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME* t1 = X509_time_adj_ex(nullptr, int(last_days), 0, nullptr);
    ASN1_TIME* t2 = X509_time_adj_ex(nullptr, int(next_days), 0, nullptr);
    X509_CRL_set1_lastUpdate(crl, t1);
    X509_CRL_set1_nextUpdate(crl, t2);
    REQUIRE(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    std::string path = P().path(name);
    FILE* out = fopen(path.c_str(), "w");
    PEM_write_X509_CRL(out, crl);
    fclose(out);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(key);
    return path;
}

}  // namespace

TEST_CASE("CRL validity and coverage are checked") {
    std::string err;
    auto expired = TrustStore::load(P().path("ca.crt"), write_crl("expired.crl", -10, -1), &err);
    REQUIRE(expired);
    auto v = expired->verify(load_cert("site1"), {});
    CHECK_FALSE(v.ok);
    CHECK(v.error == "CRL has expired");
    auto future = TrustStore::load(P().path("ca.crt"), write_crl("future.crl", 2, 10), &err);
    REQUIRE(future);
    CHECK(future->verify(load_cert("site1"), {}).error == "CRL is not yet valid");
    auto current = TrustStore::load(P().path("ca.crt"), write_crl("current.crl", -1, 10), &err);
    REQUIRE(current);
    CHECK(current->verify(load_cert("site1"), {}).ok);
    CHECK(current->verify(load_cert("revoked"), {}).ok);  // this CRL revokes nothing
    // A leaf under an intermediate: the root's CRL does not cover it.
    auto cred = Credential::load(P().path("deep-chain.crt"), P().path("deep.key"), &err);
    REQUIRE(cred);
    auto with_crl = TrustStore::load(P().path("ca.crt"), P().path("ca.crl"), &err);
    auto vd = with_crl->verify(cred->cert(), cred->chain());
    CHECK_FALSE(vd.ok);
    CHECK(vd.error == "unable to get certificate CRL");
}

TEST_CASE("certificates are parsed once per DER; verification is not cached; the cache is bounded") {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), P().path("ca.crl"), &err);
    REQUIRE(ts);
    std::vector<uint8_t> good = load_cert("site1").der(), bad = load_cert("revoked").der(),
                         other = load_cert("conc").der();
    set_cert_cache_limit(4096);
    CertCacheStats s0 = cert_cache_stats();
    auto a = Certificate::from_der(good);
    auto b = Certificate::from_der(good);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->get() == b->get());  // one parse, shared (reference counted)
    CHECK(cert_cache_stats().hits >= s0.hits + 1);
    CHECK(ts->verify(*b, {}).ok);
    // A revoked certificate stays refused however often it is presented.
    for (int i = 0; i < 3; i++) {
        auto r = Certificate::from_der(bad);
        REQUIRE(r);
        auto v = ts->verify(*r, {});
        CHECK_FALSE(v.ok);
        CHECK(v.revoked);
    }
    // The exact bytes only: the same certificate with a trailing byte is
    // refused as before.
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    CHECK_FALSE(Certificate::from_der(longer));
    std::vector<uint8_t> flipped = good;
    flipped[flipped.size() / 2] ^= 1;
    auto f = Certificate::from_der(flipped);
    if (f) {
        CHECK(f->get() != a->get());
        CHECK_FALSE(ts->verify(*f, {}).ok);  // its signature no longer matches
    }
    // Bounded: with room for two, a third evicts the oldest.
    set_cert_cache_limit(2);
    CHECK(cert_cache_stats().entries <= 2);
    set_cert_cache_limit(0);
    CHECK(cert_cache_stats().entries == 0);
    set_cert_cache_limit(2);
    Certificate::from_der(good);
    Certificate::from_der(bad);
    Certificate::from_der(other);
    CHECK(cert_cache_stats().entries == 2);
    uint64_t misses = cert_cache_stats().misses;
    Certificate::from_der(other);  // still there
    CHECK(cert_cache_stats().misses == misses);
    Certificate::from_der(good);  // evicted first
    CHECK(cert_cache_stats().misses == misses + 1);
    // The objects handed out before outlive their eviction.
    CHECK(ts->verify(*a, {}).ok);
    set_cert_cache_limit(4096);
}
