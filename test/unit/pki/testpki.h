// A throw-away PKI made with the openssl CLI, once per test process:
//   ca      P-521 root (the cloud's CA), with a CRL revoking `revoked`
//   inter   P-521 intermediate under ca
//   evil    another P-521 root (the "wrong CA")
//   conc    P-384 leaf, CN=conc.test, DNS:conc.test
//   site1   P-384 leaf, CN=store-0001, DNS:store-0001.test
//   site2   P-384 leaf, CN=store-0002
//   revoked P-384 leaf, CN=store-0003, serial 0x1337, on the CRL
//   rogue   P-384 leaf, CN=store-0001, issued by evil
//   deep    P-384 leaf, CN=store-0004, issued by inter
// plus conc-chain.crt (conc + ca: a P-384 certificate with a P-521 chain)
// and deep-chain.crt (deep + inter). Keys are mode 0600. The directory goes
// when the process exits.
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace testpki {

inline const char* kScript = R"SH(
set -e
mk_ca() {
  openssl ecparam -name secp521r1 -genkey -noout -out $1.key
  openssl req -x509 -new -key $1.key -sha256 -days 3650 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out $1.crt
}
mk_leaf() {
  openssl ecparam -name secp384r1 -genkey -noout -out $1.key
  chmod 600 $1.key
  openssl req -new -key $1.key -subj "$3" -out $1.csr
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$4" > $1.ext
  openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -set_serial $5 -sha256 -days 365 -extfile $1.ext -out $1.crt
}
mk_ca ca "/C=XX/O=nimbus-test/CN=Test Root CA"
mk_ca evil "/C=XX/O=evil/CN=Evil CA"
openssl ecparam -name secp521r1 -genkey -noout -out inter.key
openssl req -new -key inter.key -subj "/C=XX/O=nimbus-test/CN=Test Intermediate" -out inter.csr
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > inter.ext
openssl x509 -req -in inter.csr -CA ca.crt -CAkey ca.key -set_serial 100 -sha256 -days 3650 -extfile inter.ext -out inter.crt
mk_leaf conc ca "/C=XX/O=nimbus-test/CN=conc.test" "DNS:conc.test" 10
mk_leaf site1 ca "/C=XX/O=nimbus-test/CN=store-0001" "DNS:store-0001.test" 11
mk_leaf site2 ca "/C=XX/O=nimbus-test/CN=store-0002" "DNS:store-0002.test" 12
mk_leaf revoked ca "/C=XX/O=nimbus-test/CN=store-0003" "DNS:store-0003.test" 0x1337
mk_leaf rogue evil "/C=XX/O=nimbus-test/CN=store-0001" "DNS:store-0001.test" 13
mk_leaf deep inter "/C=XX/O=nimbus-test/CN=store-0004" "DNS:store-0004.test" 14
cat conc.crt ca.crt > conc-chain.crt
cat deep.crt inter.crt > deep-chain.crt
mkdir -p db
: > db/index.txt
echo 01 > db/crlnumber
printf '[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ./db/index.txt\ncrlnumber = ./db/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' > ca.cnf
openssl ca -batch -config ca.cnf -revoke revoked.crt -keyfile ca.key -cert ca.crt
openssl ca -batch -config ca.cnf -gencrl -keyfile ca.key -cert ca.crt -out ca.crl
)SH";

class Pki {
public:
    static const Pki& get() {
        static Pki p;
        return p;
    }
    std::string path(const std::string& f) const { return dir_ + "/" + f; }
    const std::string& dir() const { return dir_; }
    ~Pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

private:
    Pki() {
        char tmpl[] = "/tmp/nimbus-testpki-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        std::ofstream(dir_ + "/make.sh") << kScript;
        std::string cmd = "cd " + dir_ + " && sh make.sh > make.log 2>&1";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl CLI failed, see " + dir_ + "/make.log");
    }
    std::string dir_;
};

}  // namespace testpki
