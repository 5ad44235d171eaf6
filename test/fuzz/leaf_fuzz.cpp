// libFuzzer target for pki::read_leaf, the DER reader that checks site
// certificates without OpenSSL's X.509 parser. Besides not crashing it must
// never accept what OpenSSL refuses to parse, and what it reads must be what
// OpenSSL reads: serial, names, public key.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <openssl/x509.h>

#include "control/pki/leaf.h"

namespace {
void require(bool ok) {
    if (!ok) std::abort();
}
bool same(nimbus::pki::Bytes a, const unsigned char* b, int n) {
    return n >= 0 && a.size() == size_t(n) && std::memcmp(a.data(), b, a.size()) == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto v = nimbus::pki::read_leaf({data, size});
    if (!v) return 0;
    const unsigned char* p = data;
    X509* x = d2i_X509(nullptr, &p, long(size));
    require(x != nullptr && p == data + size);
    unsigned char* d = nullptr;
    int n = i2d_X509_NAME(X509_get_subject_name(x), &d);
    require(same(v->subject, d, n));
    OPENSSL_free(d);
    d = nullptr;
    n = i2d_X509_NAME(X509_get_issuer_name(x), &d);
    require(same(v->issuer, d, n));
    OPENSSL_free(d);
    d = nullptr;
    n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &d);
    require(same(v->serial, d, n));
    OPENSSL_free(d);
    const ASN1_BIT_STRING* key = X509_get0_pubkey_bitstr(x);
    require(key && same(v->point, key->data, key->length));
    // The same instants: at or before t, and after t - 1.
    auto at = [](const ASN1_TIME* a, time_t t) {
        time_t before = t - 1;
        return X509_cmp_time(a, &t) == -1 && X509_cmp_time(a, &before) == 1;
    };
    require(at(X509_get0_notBefore(x), v->not_before) && at(X509_get0_notAfter(x), v->not_after));
    X509_free(x);
    return 0;
}
