#include "control/pki/expiry.h"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "src/common/files.h"

namespace nimbus::pki {

namespace {

bool to_unix(const ASN1_TIME* t, int64_t* out) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
    *out = int64_t(timegm(&tm));
    return true;
}

std::string name_str(const X509_NAME* n) {
    char buf[512];
    X509_NAME_oneline(n, buf, sizeof buf);
    return buf;
}

std::string human(int64_t s) {
    int64_t a = s < 0 ? -s : s;
    if (a < 2 * 3600) return fmt::format("{} min", a / 60);
    if (a < 2 * 86400) return fmt::format("{} h", a / 3600);
    return fmt::format("{} days", a / 86400);
}

}  // namespace

std::vector<ExpiryItem> scan_file(const std::string& path, const std::string& kind, const std::string& owner) {
    std::vector<ExpiryItem> v;
    std::string data;
    ExpiryItem base{kind, owner, path, "", 0, ""};
    if (!read_file(path, &data)) {
        base.error = "cannot read the file";
        return {base};
    }
    bool pem = data.find("-----BEGIN") != std::string::npos;
    BIO* bio = BIO_new_mem_buf(data.data(), int(data.size()));
    if (kind == "crl") {
        for (;;) {
            X509_CRL* crl = pem ? PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr) : d2i_X509_CRL_bio(bio, nullptr);
            if (!crl) break;
            ExpiryItem it = base;
            it.subject = name_str(X509_CRL_get_issuer(crl));
            if (!to_unix(X509_CRL_get0_nextUpdate(crl), &it.expires)) it.error = "CRL has no nextUpdate";
            v.push_back(it);
            X509_CRL_free(crl);
            if (!pem) break;
        }
    } else {
        for (;;) {
            X509* x = pem ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : d2i_X509_bio(bio, nullptr);
            if (!x) break;
            ExpiryItem it = base;
            it.subject = name_str(X509_get_subject_name(x));
            if (!to_unix(X509_get0_notAfter(x), &it.expires)) it.error = "certificate has no valid notAfter";
            v.push_back(it);
            X509_free(x);
            if (!pem) break;
        }
    }
    BIO_free(bio);
    if (v.empty()) {
        base.error = kind == "crl" ? "no CRL in the file" : "no certificate in the file";
        v.push_back(base);
    }
    return v;
}

std::vector<Alarm> evaluate(const std::vector<ExpiryItem>& items, int64_t now, const ExpiryThresholds& t) {
    std::vector<Alarm> out;
    for (auto& it : items) {
        std::string what = it.kind == "crl" ? "CRL" : it.kind == "ca" ? "CA certificate" : "certificate";
        std::string object = it.subject.empty() ? fmt::format("{} ({}, {})", what, it.owner, it.file)
                                                : fmt::format("{} '{}' ({}, {})", what, it.subject, it.owner, it.file);
        if (!it.error.empty()) {
            out.push_back(Alarm{"critical", "pki_unreadable", object, it.error, 0});
            continue;
        }
        int64_t left = it.expires - now;
        bool crl = it.kind == "crl";
        int64_t limit = crl ? t.crl_s : t.cert_s;
        const char* kind = crl ? "crl_expiry" : "cert_expiry";
        if (left <= 0)
            out.push_back(Alarm{"critical", kind, object,
                                crl ? fmt::format("nextUpdate passed {} ago: peer certificates fail the revocation check",
                                                  human(left))
                                    : fmt::format("expired {} ago", human(left)),
                                left});
        else if (left <= limit)
            out.push_back(Alarm{"warning", kind, object,
                                crl ? fmt::format("nextUpdate in {}: publish a fresh CRL", human(left))
                                    : fmt::format("expires in {}", human(left)),
                                left});
    }
    return out;
}

}  // namespace nimbus::pki
