#include "control/pki/identity.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "control/ike/messages.h"
#include "src/common/addr.h"

namespace nimbus::pki {

namespace {

struct NameFree {
    void operator()(X509_NAME* n) const { X509_NAME_free(n); }
};
using Name = std::unique_ptr<X509_NAME, NameFree>;

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) a++;
    while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) b--;
    return std::string(s.substr(a, b - a));
}

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = char(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

Name name_from_der(const std::vector<uint8_t>& der) {
    const unsigned char* p = der.data();
    X509_NAME* n = d2i_X509_NAME(nullptr, &p, long(der.size()));
    if (n && p != der.data() + der.size()) {
        X509_NAME_free(n);
        return nullptr;
    }
    return Name(n);
}

std::string entry_value(X509_NAME_ENTRY* e) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n < 0) return "?";
    std::string s(reinterpret_cast<char*>(utf8), size_t(n));
    OPENSSL_free(utf8);
    return s;
}

bool valid_hostname(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '*'))
            return false;
    return true;
}

std::string dn_string(const std::vector<uint8_t>& der) {
    Name n = name_from_der(der);
    if (!n) return "(bad DN)";
    std::string s;
    for (int i = 0; i < X509_NAME_entry_count(n.get()); i++) {
        X509_NAME_ENTRY* e = X509_NAME_get_entry(n.get(), i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const char* sn = nid == NID_undef ? "?" : OBJ_nid2sn(nid);
        if (!s.empty()) s += ", ";
        s += fmt::format("{}={}", sn, entry_value(e));
    }
    return s;
}

}  // namespace

std::string Identity::str() const {
    using namespace ike;
    switch (type) {
    case ID_DER_ASN1_DN: return dn_string(data);
    case ID_FQDN:
    case ID_RFC822_ADDR:
    case ID_KEY_ID: {
        std::string s;
        for (uint8_t c : data) s += std::isprint(c) ? char(c) : '?';
        return s;
    }
    case ID_IPV4_ADDR:
        if (data.size() == 4) return IpAddr::v4_net(data.data()).str();
        break;
    case ID_IPV6_ADDR:
        if (data.size() == 16) return IpAddr::v6_net(data.data()).str();
        break;
    case 0: return "(none)";
    }
    return fmt::format("id-type-{}:{} octets", type, data.size());
}

std::optional<Identity> parse_identity(std::string_view text_in, std::string* err) {
    using namespace ike;
    std::string text = trim(text_in);
    Identity id;
    if (text.empty()) {
        *err = "an identity cannot be empty";
        return std::nullopt;
    }
    auto eq = text.find('=');
    auto at = text.find('@');
    if (eq != std::string::npos && (at == std::string::npos || eq < at)) {
        Name n(X509_NAME_new());
        std::string part;
        auto add = [&](const std::string& rdn_in) -> bool {
            std::string rdn = trim(rdn_in);
            if (rdn.empty()) return true;
            auto e = rdn.find('=');
            if (e == std::string::npos || e == 0) {
                *err = fmt::format("'{}' is not KEY=value", rdn);
                return false;
            }
            std::string k = trim(rdn.substr(0, e)), v = trim(rdn.substr(e + 1));
            if (OBJ_txt2nid(k.c_str()) == NID_undef) {
                *err = fmt::format("unknown attribute '{}' in a distinguished name", k);
                return false;
            }
            if (v.empty()) {
                *err = fmt::format("attribute '{}' has no value", k);
                return false;
            }
            if (!X509_NAME_add_entry_by_txt(n.get(), k.c_str(), MBSTRING_UTF8,
                                            reinterpret_cast<const unsigned char*>(v.c_str()), -1, -1, 0)) {
                *err = fmt::format("'{}={}' is not a valid name attribute", k, v);
                return false;
            }
            return true;
        };
        // ',' separates RDNs ("C=XX, O=corp, CN=x"); a leading '/' selects
        // the OpenSSL one-line form ("/C=XX/O=corp/CN=x").
        char sep = text[0] == '/' ? '/' : ',';
        for (char c : text) {
            if (c == sep) {
                if (!add(part)) return std::nullopt;
                part.clear();
            } else {
                part += c;
            }
        }
        if (!add(part)) return std::nullopt;
        if (X509_NAME_entry_count(n.get()) == 0) {
            *err = "empty distinguished name";
            return std::nullopt;
        }
        unsigned char* der = nullptr;
        int len = i2d_X509_NAME(n.get(), &der);
        if (len <= 0) {
            *err = "cannot encode the distinguished name";
            return std::nullopt;
        }
        id.type = ID_DER_ASN1_DN;
        id.data.assign(der, der + len);
        OPENSSL_free(der);
        return id;
    }
    if (auto a = IpAddr::parse(text)) {
        id.type = a->is_v4() ? ID_IPV4_ADDR : ID_IPV6_ADDR;
        id.data.assign(a->b.begin(), a->b.begin() + (a->is_v4() ? 4 : 16));
        return id;
    }
    if (at == 0) {
        std::string h = text.substr(1);
        if (!valid_hostname(h)) {
            *err = fmt::format("'{}' is not a valid FQDN identity", text);
            return std::nullopt;
        }
        id.type = ID_FQDN;
        id.data.assign(h.begin(), h.end());
        return id;
    }
    if (at != std::string::npos) {
        if (text.find('@', at + 1) != std::string::npos || at + 1 >= text.size() ||
            !valid_hostname(text.substr(at + 1))) {
            *err = fmt::format("'{}' is not a valid e-mail identity", text);
            return std::nullopt;
        }
        id.type = ID_RFC822_ADDR;
        id.data.assign(text.begin(), text.end());
        return id;
    }
    if (!valid_hostname(text)) {
        *err = fmt::format("'{}' is not a valid identity (a DN such as \"CN=x\", an FQDN, an e-mail address or "
                           "an IP address)",
                           text);
        return std::nullopt;
    }
    id.type = ID_FQDN;
    id.data.assign(text.begin(), text.end());
    return id;
}

bool identity_matches(const Identity& want, const Identity& got) {
    using namespace ike;
    if (want.type != got.type) return false;
    switch (want.type) {
    case ID_DER_ASN1_DN: {
        Name w = name_from_der(want.data), g = name_from_der(got.data);
        if (!w || !g) return false;
        for (int i = 0; i < X509_NAME_entry_count(w.get()); i++) {
            X509_NAME_ENTRY* we = X509_NAME_get_entry(w.get(), i);
            int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(we));
            std::string wv = entry_value(we);
            bool found = false;
            for (int j = 0; j < X509_NAME_entry_count(g.get()) && !found; j++) {
                X509_NAME_ENTRY* ge = X509_NAME_get_entry(g.get(), j);
                if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(ge)) == nid && entry_value(ge) == wv) found = true;
            }
            if (!found) return false;
        }
        return true;
    }
    case ID_FQDN:
    case ID_RFC822_ADDR:
        return lower(std::string(want.data.begin(), want.data.end())) ==
               lower(std::string(got.data.begin(), got.data.end()));
    default:
        return want.data == got.data;
    }
}

}  // namespace nimbus::pki
