#!/bin/bash
# tools/test-ca.sh DIR: a throw-away certificate authority for the TLS tests,
# made at test time (no key material is committed). Writes into DIR:
#   ca.pem ca.key            the test CA (the trust anchor the tests pass)
#   server.pem server.key    signed by it: localhost, 127.0.0.1, ::1
#   client.pem client.key    signed by it: a client certificate
#   other.pem other.key      signed by it: other.example only (hostname mismatch)
#   expired.pem expired.key  signed by it, valid 2020-01-01..2020-01-02
#   self.pem self.key        self-signed: localhost, 127.0.0.1
#   ca2.pem ca2.key          a second CA nobody trusts
#   rogue.pem rogue.key      signed by ca2: localhost, 127.0.0.1
# Idempotent: a DIR that has server.pem already is left alone.
set -euo pipefail
dir=${1:?usage: test-ca.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -s server.pem ] && [ -s rogue.pem ] && exit 0
command -v openssl >/dev/null || { echo "test-ca.sh: openssl not found" >&2; exit 1; }
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}
leaf() { # name ca cn san [days]
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -days "${5:-825}" -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "netio test CA"
ca ca2 "netio rogue CA"
leaf server ca localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client ca "netio test client" "DNS:client.netio.test"
leaf other ca other.example "DNS:other.example"
leaf rogue ca2 localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
key self.key
openssl req -x509 -new -key self.key -subj "/CN=localhost" -days 825 -sha256 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out self.pem
# An expired certificate needs dates in the past: `openssl ca` sets them.
key expired.key
openssl req -new -key expired.key -subj "/CN=localhost" -out expired.csr
mkdir -p ca.db && : >ca.db/index.txt && echo 1000 >ca.db/serial
cat >ca.db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
[ext]
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
basicConstraints = CA:FALSE
CNF
openssl ca -batch -config ca.db/ca.cnf -cert ca.pem -keyfile ca.key \
  -startdate 20200101000000Z -enddate 20200102000000Z \
  -in expired.csr -out expired.pem 2>/dev/null
rm -rf expired.csr ca.db ca.srl ca2.srl
chmod 600 ./*.key
