#include "control/ike/policy.h"

#include <cctype>
#include <memory>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "control/ike/messages.h"

namespace nimbus::ike {

namespace {

// The CN of a DER distinguished name, "" if none.
std::string common_name(const std::vector<uint8_t>& der) {
    const unsigned char* p = der.data();
    X509_NAME* n = d2i_X509_NAME(nullptr, &p, long(der.size()));
    if (!n) return "";
    std::string out;
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i >= 0) {
        unsigned char* utf8 = nullptr;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
        if (len >= 0) out.assign(reinterpret_cast<char*>(utf8), size_t(len));
        OPENSSL_free(utf8);
    }
    X509_NAME_free(n);
    return out;
}

std::string key_of(const pki::Identity& id) {
    if (id.type == ID_DER_ASN1_DN) {
        std::string cn = common_name(id.data);
        return cn.empty() ? "" : "cn:" + cn;
    }
    std::string k = std::to_string(id.type) + ":";
    for (uint8_t b : id.data)
        k += (id.type == ID_FQDN || id.type == ID_RFC822_ADDR) ? char(std::tolower(b)) : char(b);
    return k;
}

}  // namespace

void index_sites(CloudPolicy& c) {
    c.site_index.clear();
    c.site_scan.clear();
    std::vector<Prefix> all;
    for (size_t i = 0; i < c.sites.size(); i++) {
        std::string k = key_of(c.sites[i].id);
        if (k.empty()) c.site_scan.push_back(int(i));
        else c.site_index.emplace(k, int(i));
        for (auto& p : c.sites[i].prefixes) all.push_back(p);
    }
    c.all_prefixes = PrefixIndex(all);
    c.indexed = true;
}

int find_site(const CloudPolicy& c, const pki::Identity& peer) {
    if (!c.indexed) {
        for (size_t i = 0; i < c.sites.size(); i++)
            if (pki::identity_matches(c.sites[i].id, peer)) return int(i);
        return -1;
    }
    std::string k = key_of(peer);
    if (!k.empty()) {
        auto [a, b] = c.site_index.equal_range(k);
        for (auto it = a; it != b; ++it)
            if (pki::identity_matches(c.sites[size_t(it->second)].id, peer)) return it->second;
    }
    for (int i : c.site_scan)
        if (pki::identity_matches(c.sites[size_t(i)].id, peer)) return i;
    return -1;
}

}  // namespace nimbus::ike
