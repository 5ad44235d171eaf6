"""strongSwan 5.9.8 (charon with kernel-libipsec) as a site in a lab
namespace, following ../../shared/reference/strongswan-peer.md:

- one charon per namespace, its pid file kept apart by a bind mount over
  /run inside `ip netns exec` (charon hard-codes /var/run/charon.pid);
- an explicit plugin list (openssl for ECDSA/X25519/AEADs, kernel-libipsec
  for userspace ESP, kernel-netlink for routes);
- readiness by polling `swanctl --stats`, stale pid/vici files removed first;
- short retransmission settings so failures show quickly.

Test PKIs are made with the openssl CLI (make_pki)."""
import os
import re
import signal
import subprocess
import textwrap
import time

from nimbuslab import run, wait_until

CHARON = "/usr/lib/ipsec/charon"
PLUGINDIR = "/usr/lib/ipsec/plugins"
LOAD = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints aes sha1 sha2 hmac gcm chapoly "
        "curve25519 kdf kernel-libipsec kernel-netlink socket-default vici")


def available():
    """None if strongSwan can run here, else why not."""
    if not os.path.exists(CHARON):
        return f"{CHARON} missing (apt-get install strongswan-charon strongswan-swanctl)"
    for p in ("openssl", "kernel-libipsec", "kernel-netlink", "socket-default", "vici"):
        if not os.path.exists(f"{PLUGINDIR}/libstrongswan-{p}.so"):
            return (f"strongSwan plugin {p} missing (apt-get install libstrongswan-standard-plugins "
                    "libcharon-extra-plugins)")
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing"
    return None


PKI_SCRIPT = r"""
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
mk_ca ca "/C=XX/O=nimbus-lab/CN=Lab Root CA"
mk_ca evil "/C=XX/O=evil/CN=Evil CA"
mk_leaf conc ca "/C=XX/O=nimbus-lab/CN=conc.lab" "DNS:conc.lab" 10
mk_leaf site1 ca "/C=XX/O=nimbus-lab/CN=store-0001" "DNS:store-0001.lab" 11
mk_leaf site2 ca "/C=XX/O=nimbus-lab/CN=store-0002" "DNS:store-0002.lab" 12
mk_leaf revoked ca "/C=XX/O=nimbus-lab/CN=store-0003" "DNS:store-0003.lab" 0x1337
mk_leaf rogue evil "/C=XX/O=nimbus-lab/CN=store-0001" "DNS:store-0001.lab" 13
mk_leaf edge1 ca "/C=XX/O=nimbus-lab/CN=edge-0001" "DNS:edge-0001.lab" 14
openssl ecparam -name secp521r1 -genkey -noout -out inter.key
openssl req -new -key inter.key -subj "/C=XX/O=nimbus-lab/CN=Lab Intermediate CA" -out inter.csr
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > inter.ext
openssl x509 -req -in inter.csr -CA ca.crt -CAkey ca.key -set_serial 100 -sha256 -days 3650 -extfile inter.ext -out inter.crt
mk_leaf deep inter "/C=XX/O=nimbus-lab/CN=store-0004" "DNS:store-0004.lab" 15
cat conc.crt ca.crt > conc-chain.crt
cat site1.crt ca.crt > site1-chain.crt
mkdir -p db
: > db/index.txt
echo 01 > db/crlnumber
printf '[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ./db/index.txt\ncrlnumber = ./db/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' > ca.cnf
openssl ca -batch -config ca.cnf -revoke revoked.crt -keyfile ca.key -cert ca.crt
openssl ca -batch -config ca.cnf -gencrl -keyfile ca.key -cert ca.crt -out ca.crl
"""


def make_pki(directory):
    """P-521 CA with a CRL (revoking 'revoked', serial 0x1337), P-384 leaves."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "make.sh"), "w") as f:
        f.write(PKI_SCRIPT)
    run(f"cd {directory} && sh make.sh > make.log 2>&1")
    return directory


class Swan:
    """One charon in a namespace, configured as a site that connects to a
    concentrator."""

    def __init__(self, lab, ns, name="sw"):
        self.lab = lab
        self.ns = ns
        self.name = name
        self.dir = os.path.join(lab.dir, name)
        self.run_dir = os.path.join(self.dir, "run")
        self.conf = os.path.join(self.dir, "strongswan.conf")
        self.swanctl_dir = os.path.join(self.dir, "swanctl")
        self.vici = os.path.join(self.dir, "charon.vici")
        self.logfile = os.path.join(self.dir, "charon.log")
        self.proc = None
        os.makedirs(self.run_dir, exist_ok=True)
        for sub in ("x509", "x509ca", "x509aa", "x509ac", "x509crl", "x509ocsp", "ecdsa", "rsa", "pkcs8",
                    "pkcs12", "private", "pubkey", "bliss", "conf.d"):
            os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
        self.write_strongswan_conf()

    def write_strongswan_conf(self, fragment_size=None):
        frag = f"  fragment_size = {fragment_size}\n" if fragment_size else ""
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent(f"""\
            charon {{
              load = {LOAD}
              install_routes = yes
              routing_table = 220
              routing_table_prio = 220
              retransmit_tries = 3
              retransmit_timeout = 1.0
              retransmit_base = 1.5
            {frag}  plugins {{
                vici {{
                  socket = unix://{self.vici}
                }}
              }}
              filelog {{
                lab {{
                  path = {self.logfile}
                  time_format = %H:%M:%S
                  time_add_ms = yes
                  ike_name = yes
                  append = yes
                  flush_line = yes
                  default = 1
                  ike = 2
                  knl = 1
                }}
              }}
            }}
            swanctl {{
              load = pem pkcs1 pkcs8 x509 openssl
            }}
            """))

    def install_cert(self, pki, cert, key, ca="ca.crt", intermediate=None):
        run(["cp", os.path.join(pki, ca), os.path.join(self.swanctl_dir, "x509ca", "ca.crt")])
        if intermediate:
            run(["cp", os.path.join(pki, intermediate), os.path.join(self.swanctl_dir, "x509ca", "inter.crt")])
        run(["cp", os.path.join(pki, cert), os.path.join(self.swanctl_dir, "x509", os.path.basename(cert))])
        run(["install", "-m", "600", os.path.join(pki, key), os.path.join(self.swanctl_dir, "ecdsa", "site.key")])

    def configure(self, remote, local_ts, remote_ts="10.0.0.0/8", auth="cert", cert=None, local_id=None,
                  remote_id=None, psk=None, ike="aes256gcm16-prfsha256-x25519", esp="aes256gcm16-x25519",
                  local_addrs="%any", mobike=True, dpd_delay="30s", extra_ike="", extra_child=""):
        if auth == "cert":
            local = f"auth = ecdsa-sha256\n      certs = {cert}\n"
            remote_auth = "pubkey"
        else:
            local = "auth = psk\n"
            remote_auth = "psk"
        if local_id:
            local += f"      id = \"{local_id}\"\n"
        rid = f"      id = \"{remote_id}\"\n" if remote_id else ""
        secrets = ""
        if psk:
            secrets = textwrap.dedent(f"""\
            secrets {{
              ike-lab {{
                id-a = "{local_id}"
                secret = "{psk}"
              }}
            }}
            """)
        conf = f"""connections {{
  lab {{
    version = 2
    local_addrs = {local_addrs}
    remote_addrs = {remote}
    proposals = {ike}
    encap = yes
    mobike = {'yes' if mobike else 'no'}
    dpd_delay = {dpd_delay}
    keyingtries = 1
    {extra_ike}
    local {{
      {local}    }}
    remote {{
      auth = {remote_auth}
{rid}    }}
    children {{
      net {{
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = {esp}
        start_action = none
        {extra_child}
      }}
    }}
  }}
}}
{secrets}"""
        with open(os.path.join(self.swanctl_dir, "swanctl.conf"), "w") as f:
            f.write(conf)

    def env(self):
        return ["env", f"STRONGSWAN_CONF={self.conf}", f"SWANCTL_DIR={self.swanctl_dir}"]

    def sw(self, *args, check=True, timeout=40):
        return self.ns.run(self.env() + ["swanctl"] + list(args) + ["--uri", f"unix://{self.vici}"], check=check,
                           timeout=timeout)

    def start(self):
        for f in (os.path.join(self.run_dir, "charon.pid"), self.vici):
            if os.path.exists(f):
                os.unlink(f)
        self.proc = self.ns.popen(["sh", "-c", 'mount --bind "$1" /run && exec env STRONGSWAN_CONF="$2" "$3"', "sh",
                                   self.run_dir, self.conf, CHARON], f"{self.name}-charon.stdout.log")
        wait_until(lambda: self.sw("--stats", check=False).returncode == 0, 20, f"charon {self.name} (vici)")
        return self

    def load(self):
        self.sw("--load-all", "--noprompt")

    def initiate(self, timeout=20, check=True):
        return self.sw("--initiate", "--child", "net", "--timeout", str(timeout), check=check, timeout=timeout + 10)

    def list_sas(self):
        return self.sw("--list-sas").stdout

    def rekey(self, what="child"):
        if what == "child":
            return self.sw("--rekey", "--child", "net")
        return self.sw("--rekey", "--ike", "lab")

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def pid(self):
        try:
            with open(os.path.join(self.run_dir, "charon.pid")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def kill(self, sig=signal.SIGKILL):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        self.kill(signal.SIGTERM)


def installed_sas(text):
    """CHILD_SA lines of `swanctl --list-sas`: [(name, state, details)]."""
    return re.findall(r"^\s+(\S+): #\d+, reqid \d+, (\S+), (.*)$", text, re.M)
