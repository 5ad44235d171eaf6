// Certificates and CRLs that are about to expire: what `show alarms` and the
// nimbus_cert_expiry_seconds / nimbus_alarms metrics report. A certificate
// (ours, a CA, the management API's) past notAfter breaks every handshake
// that needs it; a CRL past nextUpdate makes every peer certificate fail the
// revocation check (RFC 5280 §5.1.2.5), so both are raised ahead of time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nimbus::pki {

struct ExpiryItem {
    std::string kind;     // "certificate" | "ca" | "crl"
    std::string owner;    // what uses it: "cloud corp", "mgmt api"
    std::string file;
    std::string subject;  // certificate subject, or the CRL's issuer
    int64_t expires = 0;  // notAfter / nextUpdate, UNIX seconds
    std::string error;    // the file could not be read (an alarm too)
};

// Every certificate (kind "certificate" or "ca") or CRL ("crl") in a PEM or
// DER file. A file that does not load gives one item with `error` set.
std::vector<ExpiryItem> scan_file(const std::string& path, const std::string& kind, const std::string& owner);

struct Alarm {
    std::string severity;  // "critical" (expired, unreadable) | "warning" (within the threshold)
    std::string kind;      // "cert_expiry" | "crl_expiry" | "pki_unreadable"
    std::string object;    // "certificate 'CN=conc' (cloud corp, /etc/.../conc.crt)"
    std::string message;
    int64_t seconds_left = 0;
};

struct ExpiryThresholds {
    int64_t cert_s = 30 * 86400;  // certificates: warn this long before notAfter
    int64_t crl_s = 86400;        // CRLs: warn this long before nextUpdate
};

// Pure: the alarms for `items` at time `now` (UNIX seconds).
std::vector<Alarm> evaluate(const std::vector<ExpiryItem>& items, int64_t now, const ExpiryThresholds& t);

}  // namespace nimbus::pki
