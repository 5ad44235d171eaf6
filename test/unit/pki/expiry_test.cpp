#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "control/pki/expiry.h"

using namespace nimbus::pki;

TEST_CASE("expiry alarms: thresholds for certificates and CRLs, expired and unreadable are critical") {
    const int64_t now = 1'700'000'000, day = 86400;
    std::vector<ExpiryItem> items = {
        {"certificate", "cloud corp", "/c/ok.crt", "CN=ok", now + 90 * day, ""},
        {"certificate", "cloud corp", "/c/soon.crt", "CN=soon", now + 2 * day, ""},
        {"ca", "cloud corp", "/c/ca.crt", "CN=ca", now - 1, ""},
        {"crl", "cloud corp", "/c/ca.crl", "CN=ca", now + 2 * day, ""},
        {"crl", "cloud corp", "/c/near.crl", "CN=ca", now + 3600, ""},
        {"crl", "cloud corp", "/c/old.crl", "CN=ca", now - 3600, ""},
        {"certificate", "mgmt api", "/m/api.crt", "", 0, "cannot read the file"},
    };
    auto a = evaluate(items, now, ExpiryThresholds{});
    REQUIRE(a.size() == 5);
    CHECK(a[0].object.find("soon") != std::string::npos);
    CHECK(a[0].severity == "warning");
    CHECK(a[0].kind == "cert_expiry");
    CHECK(a[0].seconds_left == 2 * day);
    CHECK(a[0].message == "expires in 2 days");
    CHECK(a[1].kind == "cert_expiry");
    CHECK(a[1].severity == "critical");
    CHECK(a[2].kind == "crl_expiry");
    CHECK(a[2].severity == "warning");
    CHECK(a[2].object.find("near.crl") != std::string::npos);
    CHECK(a[3].severity == "critical");
    CHECK(a[3].message.find("nextUpdate passed") == 0);
    CHECK(a[4].kind == "pki_unreadable");
    CHECK(a[4].severity == "critical");
    // A shorter certificate threshold silences the 2-day warning; a longer
    // CRL threshold raises the 2-day CRL.
    auto b = evaluate(items, now, ExpiryThresholds{1 * day, 3 * day});
    int warn_cert = 0, warn_crl = 0;
    for (auto& x : b) {
        warn_cert += x.kind == "cert_expiry" && x.severity == "warning";
        warn_crl += x.kind == "crl_expiry" && x.severity == "warning";
    }
    CHECK(warn_cert == 0);
    CHECK(warn_crl == 2);
}

TEST_CASE("expiry: scan_file reads notAfter and nextUpdate from PEM files made by openssl") {
    char dir[] = "/tmp/nimbus-expiry-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string d = dir;
    std::string cmd = "cd " + d +
                      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem"
                      " -days 2 -subj /CN=short-lived 2>/dev/null"
                      " && printf '' > index.txt && printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\n"
                      "crlnumber=num\\ndefault_md=sha256\\n' > ca.cnf && echo 01 > num"
                      " && openssl ca -config ca.cnf -gencrl -keyfile k.pem -cert c.pem -crlhours 5 -out c.crl 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    int64_t now = int64_t(time(nullptr));
    auto certs = scan_file(d + "/c.pem", "certificate", "test");
    REQUIRE(certs.size() == 1);
    CHECK(certs[0].error.empty());
    CHECK(certs[0].subject.find("short-lived") != std::string::npos);
    CHECK(certs[0].expires - now > 2 * 86400 - 120);
    CHECK(certs[0].expires - now <= 2 * 86400 + 5);
    auto crls = scan_file(d + "/c.crl", "crl", "test");
    REQUIRE(crls.size() == 1);
    CHECK(crls[0].error.empty());
    CHECK(crls[0].expires - now > 5 * 3600 - 120);
    CHECK(crls[0].expires - now <= 5 * 3600 + 5);
    auto a = evaluate(certs, now, ExpiryThresholds{});
    REQUIRE(a.size() == 1);
    CHECK(a[0].kind == "cert_expiry");
    auto missing = scan_file(d + "/nope.pem", "ca", "test");
    REQUIRE(missing.size() == 1);
    CHECK(missing[0].error == "cannot read the file");
    auto notcrl = scan_file(d + "/c.pem", "crl", "test");
    REQUIRE(notcrl.size() == 1);
    CHECK(notcrl[0].error == "no CRL in the file");
    std::system(("rm -rf " + d).c_str());
}
