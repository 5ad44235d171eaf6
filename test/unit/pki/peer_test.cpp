// TrustStore::check_peer: a site certificate issued directly by a root CA in
// the common shape is validated by nimbus's own DER reader (leaf.h); every
// other certificate, and every refusal, by OpenSSL's full path. The reader
// must never accept what OpenSSL would refuse: certificates minted here in
// many shapes, all signed by the test CA, are checked by both paths.
#include <catch2/catch.hpp>

#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ike/messages.h"
#include "control/pki/identity.h"
#include "control/pki/leaf.h"
#include "control/pki/pki.h"
#include "test/unit/pki/identity_helper.h"
#include "test/unit/pki/testpki.h"

using namespace nimbus;
using namespace nimbus::pki;
using nimbus::pki::test::id;

namespace {

const testpki::Pki& P() { return testpki::Pki::get(); }

std::shared_ptr<const TrustStore> store(bool crl = true) {
    std::string err;
    auto ts = TrustStore::load(P().path("ca.crt"), crl ? P().path("ca.crl") : "", &err);
    INFO(err);
    REQUIRE(ts);
    return ts;
}

std::vector<uint8_t> der_of(const std::string& file, int index = 0) {
    FILE* f = std::fopen(P().path(file).c_str(), "r");
    REQUIRE(f);
    X509* x = nullptr;
    for (int i = 0; i <= index; i++) {
        X509_free(x);
        x = PEM_read_X509(f, nullptr, nullptr, nullptr);
        REQUIRE(x);
    }
    std::fclose(f);
    unsigned char* d = nullptr;
    int n = i2d_X509(x, &d);
    std::vector<uint8_t> v(d, d + n);
    OPENSSL_free(d);
    X509_free(x);
    return v;
}

struct Outcome {
    bool ok = false;
    bool direct = false;
    PeerCert cert;
    PeerRefusal no;
};

Outcome check(const TrustStore& ts, std::vector<std::vector<uint8_t>> ders, const Identity& who) {
    std::vector<std::span<const uint8_t>> spans(ders.begin(), ders.end());
    uint64_t before = peer_check_stats().direct;
    Outcome o;
    auto pc = ts.check_peer(spans, who, &o.no);
    o.direct = peer_check_stats().direct == before + 1;
    o.ok = pc.has_value();
    if (pc) o.cert = *pc;
    return o;
}

// OpenSSL alone: parse, X509_verify_cert + CRL, identity.
bool openssl_accepts(const TrustStore& ts, const std::vector<uint8_t>& der, const Identity& who) {
    set_cert_cache_limit(0);
    auto c = Certificate::from_der(der);
    set_cert_cache_limit(4096);
    return c && ts.verify(*c, {}).ok && c->has_identity(who);
}

EVP_PKEY* read_key(const std::string& file) {
    FILE* f = std::fopen(P().path(file).c_str(), "r");
    REQUIRE(f);
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    REQUIRE(k);
    return k;
}

X509* read_cert(const std::string& file) {
    FILE* f = std::fopen(P().path(file).c_str(), "r");
    REQUIRE(f);
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    REQUIRE(x);
    return x;
}

void add_ext(X509* x, X509* ca, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, nullptr, nullptr, 0);
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

// A leaf signed by the test CA. `tweak` changes it before signing.
struct Mint {
    const char* curve = "P-384";
    const EVP_MD* md = EVP_sha384();
    long serial = 0x2001;
    long not_before = -3600, not_after = 86400;  // seconds from now
    bool compressed = false;
    std::function<void(X509*, X509* ca)> tweak;
};

std::vector<uint8_t> mint(const Mint& m) {
    static EVP_PKEY* ca_key = read_key("ca.key");
    static X509* ca = read_cert("ca.crt");
    EVP_PKEY* key = EVP_EC_gen(m.curve);
    REQUIRE(key);
    if (m.compressed)
        REQUIRE(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed") == 1);
    X509* x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), m.serial);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_NAME* n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("XX"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("nimbus-test"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("store-0100"), -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), m.not_before);
    X509_gmtime_adj(X509_getm_notAfter(x), m.not_after);
    X509_set_pubkey(x, key);
    add_ext(x, ca, NID_basic_constraints, "CA:FALSE");
    add_ext(x, ca, NID_key_usage, "critical,digitalSignature");
    add_ext(x, ca, NID_subject_alt_name, "DNS:store-0100.test,IP:192.0.2.100,email:ops@store-0100.test");
    add_ext(x, ca, NID_subject_key_identifier, "hash");
    add_ext(x, ca, NID_authority_key_identifier, "keyid");
    if (m.tweak) m.tweak(x, ca);
    REQUIRE(X509_sign(x, ca_key, m.md) > 0);
    unsigned char* d = nullptr;
    int len = i2d_X509(x, &d);
    std::vector<uint8_t> v(d, d + len);
    OPENSSL_free(d);
    X509_free(x);
    EVP_PKEY_free(key);
    return v;
}

}  // namespace

TEST_CASE("site certificates from the root CA are checked without OpenSSL's parser, with the same result") {
    auto ts = store();
    for (const char* who : {"CN=store-0001", "store-0001.test"}) {
        INFO(who);
        // A DN identity is the certificate's subject as a DER Name.
        Identity i = std::string(who).starts_with("CN=")
                         ? Identity{ike::ID_DER_ASN1_DN, [] {
                                        auto c = Certificate::from_der(der_of("site1.crt"));
                                        return c->subject().data;
                                    }()}
                         : id(who);
        Outcome o = check(*ts, {der_of("site1.crt")}, i);
        INFO(o.no.why);
        REQUIRE(o.ok);
        CHECK(o.direct);
        auto full = Certificate::from_der(der_of("site1.crt"));
        CHECK(o.cert.subject == full->subject_str());
        CHECK(o.cert.serial == full->serial());
        CHECK(o.cert.serial == "0x0B");
        CHECK(EVP_PKEY_eq(o.cert.public_key(), full->public_key()) == 1);
    }
    // A peer that sends our CA along (conc-chain.crt = conc + ca).
    Outcome o = check(*ts, {der_of("conc-chain.crt", 0), der_of("conc-chain.crt", 1)}, id("conc.test"));
    CHECK(o.ok);
    CHECK(o.direct);
}

TEST_CASE("refusals and other chains go through OpenSSL: revoked, wrong CA, intermediate, identity, tampering") {
    auto ts = store();
    Outcome o = check(*ts, {der_of("revoked.crt")}, id("store-0003.test"));
    CHECK_FALSE(o.ok);
    CHECK_FALSE(o.direct);
    CHECK(o.no.revoked);
    CHECK(o.no.serial == "0x1337");
    CHECK_THAT(o.no.why, Catch::Contains("revoked"));

    o = check(*ts, {der_of("rogue.crt")}, id("store-0001.test"));
    CHECK_FALSE(o.ok);
    CHECK_FALSE(o.direct);
    CHECK_FALSE(o.no.revoked);

    // An intermediate: OpenSSL builds the chain (the test CRL covers only
    // the root's certificates, so without CRL checking).
    auto no_crl = store(false);
    o = check(*no_crl, {der_of("deep-chain.crt", 0), der_of("deep-chain.crt", 1)}, id("store-0004.test"));
    INFO(o.no.why);
    CHECK(o.ok);
    CHECK_FALSE(o.direct);
    o = check(*no_crl, {der_of("deep.crt")}, id("store-0004.test"));  // without it
    CHECK_FALSE(o.ok);

    o = check(*ts, {der_of("site1.crt")}, id("store-0002.test"));
    CHECK_FALSE(o.ok);
    CHECK_FALSE(o.direct);
    CHECK_THAT(o.no.why, Catch::Contains("neither the subject nor a subjectAltName"));

    // Every single-bit change of the certificate is refused, by both.
    std::vector<uint8_t> good = der_of("site1.crt");
    int direct = 0;
    for (size_t at = 0; at < good.size(); at += 7) {
        std::vector<uint8_t> bad = good;
        bad[at] ^= uint8_t(1u << (at % 8));
        Outcome b = check(*ts, {bad}, id("store-0001.test"));
        INFO("byte " << at);
        CHECK_FALSE(b.ok);
        direct += b.direct;
    }
    CHECK(direct == 0);
    o = check(*ts, {}, id("store-0001.test"));
    CHECK_FALSE(o.ok);
}

TEST_CASE("certificates in many shapes: the direct path accepts only what OpenSSL accepts") {
    auto ts = store();
    struct Case {
        const char* name;
        Mint m;
        bool direct;  // expected to take the direct path
        bool ok;      // expected verdict (both paths)
    };
    auto ext = [](int nid, const char* v) { return [=](X509* x, X509* ca) { add_ext(x, ca, nid, v); }; };
    std::vector<Case> cases = {
        {"the common shape", {}, true, true},
        {"P-256 key, ecdsa-with-SHA256", {.curve = "P-256", .md = EVP_sha256()}, true, true},
        {"P-521 key, ecdsa-with-SHA512", {.curve = "P-521", .md = EVP_sha512()}, true, true},
        {"a 63-bit serial", {.serial = 0x7fffffffffffffff}, true, true},
        {"expired", {.not_before = -7200, .not_after = -3600}, false, false},
        {"not yet valid", {.not_before = 3600, .not_after = 7200}, false, false},
        {"compressed point", {.compressed = true}, false, true},
        {"no basicConstraints", {.tweak = [](X509* x, X509*) {
                         X509_delete_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1));
                     }}, true, true},
        {"basicConstraints CA:TRUE", {.tweak = [](X509* x, X509* ca) {
                                          X509_delete_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1));
                                          add_ext(x, ca, NID_basic_constraints, "critical,CA:TRUE");
                                      }}, false, true},
        {"extendedKeyUsage", {.tweak = ext(NID_ext_key_usage, "serverAuth,clientAuth")}, true, true},
        {"an unknown critical extension", {.tweak = [](X509* x, X509*) {
                                               ASN1_OBJECT* o = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
                                               ASN1_OCTET_STRING* v = ASN1_OCTET_STRING_new();
                                               ASN1_OCTET_STRING_set(v, reinterpret_cast<const unsigned char*>("\x05\x00"), 2);
                                               X509_EXTENSION* e = X509_EXTENSION_create_by_OBJ(nullptr, o, 1, v);
                                               X509_add_ext(x, e, -1);
                                               X509_EXTENSION_free(e);
                                               ASN1_OCTET_STRING_free(v);
                                               ASN1_OBJECT_free(o);
                                           }}, false, false},
        {"a URI in subjectAltName", {.tweak = [](X509* x, X509* ca) {
                                         X509_delete_ext(x, X509_get_ext_by_NID(x, NID_subject_alt_name, -1));
                                         add_ext(x, ca, NID_subject_alt_name, "DNS:store-0100.test,URI:https://x.test/");
                                     }}, false, true},
        {"cRLDistributionPoints", {.tweak = ext(NID_crl_distribution_points, "URI:http://crl.test/ca.crl")}, false, true},
        {"a v1 certificate", {.tweak = [](X509* x, X509*) {
                                  while (X509_get_ext_count(x)) X509_delete_ext(x, 0);
                                  X509_set_version(x, X509_VERSION_1);
                              }}, false, true},
        {"signed with SHA-1", {.md = EVP_sha1()}, false, true},
    };
    int n = 0;
    for (auto& c : cases) {
        INFO(c.name);
        std::vector<uint8_t> der = mint(c.m);
        auto parsed = Certificate::from_der(der);
        REQUIRE(parsed);
        Identity who = parsed->subject();
        bool by_openssl = openssl_accepts(*ts, der, who);
        // Not on the CRL: the mint's serials are not 0x1337.
        Outcome o = check(*ts, {der}, who);
        INFO(o.no.why);
        CHECK(o.ok == by_openssl);
        CHECK(o.ok == c.ok);
        CHECK(o.direct == c.direct);
        if (o.direct) CHECK(by_openssl);
        // The same certificate named by its subjectAltNames.
        if (c.ok && c.direct) {
            CHECK(check(*ts, {der}, id("store-0100.test")).direct);
            CHECK(check(*ts, {der}, id("192.0.2.100")).direct);
            CHECK(check(*ts, {der}, id("OPS@store-0100.test")).direct);
            CHECK_FALSE(check(*ts, {der}, id("192.0.2.101")).ok);
        }
        n++;
    }
    CHECK(n == int(cases.size()));
}

TEST_CASE("the leaf reader refuses what is not DER or not the common shape") {
    std::vector<uint8_t> good = der_of("site1.crt");
    auto v = read_leaf(good);
    REQUIRE(v);
    CHECK(std::string(v->curve) == "P-384");
    CHECK(v->alt_names.size() == 1);
    CHECK(v->not_after > v->not_before);
    // Trailing bytes, truncation, a long-form length where the short form
    // fits, indefinite length.
    auto longer = good;
    longer.push_back(0);
    CHECK_FALSE(read_leaf(longer));
    CHECK_FALSE(read_leaf(std::span(good).first(good.size() - 1)));
    CHECK_FALSE(read_leaf({}));
    std::vector<uint8_t> nonminimal = {0x30, 0x81, 0x03, 0x02, 0x01, 0x00};
    CHECK_FALSE(read_leaf(nonminimal));
    std::vector<uint8_t> indefinite = {0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00};
    CHECK_FALSE(read_leaf(indefinite));
    // A CA certificate (basicConstraints CA:TRUE) is not a leaf.
    CHECK_FALSE(read_leaf(der_of("ca.crt")));
}

TEST_CASE("without a CRL the direct path still checks dates, issuer and signature") {
    auto ts = store(false);
    Outcome o = check(*ts, {der_of("revoked.crt")}, id("store-0003.test"));
    CHECK(o.ok);  // nothing says it is revoked
    CHECK(o.direct);
    CHECK_FALSE(check(*ts, {mint({.not_before = -7200, .not_after = -1})}, id("store-0100.test")).ok);
}
