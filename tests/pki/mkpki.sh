#!/bin/sh
# mkpki.sh OUTDIR: make the chand test PKI (see tests/pki/README.md).
# Quiet on success; on failure prints the failing command's output and
# exits non-zero.  Safe to run again over the same directory.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: mkpki.sh OUTDIR" >&2
	exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"
umask 077
work=.mkpki.$$
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work"' EXIT
log=$work/log

# Run a command with its output kept aside; show it only if it fails.
run() {
	if ! "$@" >"$log" 2>&1; then
		echo "mkpki.sh: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

printf '%s\n' 'passw0rd' > pw.txt

cat > "$work/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_inter ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
cnf=$work/openssl.cnf

rsakey() { run openssl genrsa -out "$1" 2048; }
eckey() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# selfca NAME SUBJECT: self-signed root CA
selfca() {
	rsakey "$1.key"
	run openssl req -new -x509 -config "$cnf" -extensions v3_root -days 3650 \
		-key "$1.key" -subj "$2" -set_serial "$3" -out "$1.pem"
}

# sign NAME SUBJECT ISSUER EXT SERIAL: cert for NAME.key signed by ISSUER
sign() {
	run openssl req -new -config "$cnf" -key "$1.key" -subj "$2" -out "$work/$1.csr"
	run openssl x509 -req -in "$work/$1.csr" -CA "$3.pem" -CAkey "$3.key" \
		-extfile "$cnf" -extensions "$4" -set_serial "$5" -days 825 -sha256 \
		-out "$1.pem"
}

# certtool_leaf NAME ISSUER SERIAL CN DATES...: leaf with chosen validity
# (openssl 3.0 x509 cannot set a start date in the past or future).
certtool_leaf() {
	name=$1 issuer=$2 serial=$3 cn=$4
	shift 4
	{
		printf 'cn = "%s"\nunit = "Payments"\norganization = "Acme"\ncountry = GB\n' "$cn"
		printf 'serial = %s\n' "$serial"
		for d in "$@"; do printf '%s\n' "$d"; done
		printf 'tls_www_server\ntls_www_client\nsigning_key\nencryption_key\n'
		printf 'dns_name = "localhost"\nip_address = "127.0.0.1"\n'
	} > "$work/$name.tmpl"
	rsakey "$name.key"
	run certtool --generate-certificate --load-privkey "$name.key" \
		--load-ca-certificate "$issuer.pem" --load-ca-privkey "$issuer.key" \
		--template "$work/$name.tmpl" --outfile "$name.pem"
}

leafsubj() { printf '/C=GB/O=Acme/OU=Payments/CN=%s' "$1"; }

# CAs
selfca root "/C=GB/O=Acme/CN=Chand Test Root CA" 1
rsakey inter.key
sign inter "/C=GB/O=Acme/CN=Chand Test Intermediate CA" root v3_inter 2
cat root.pem inter.pem > ca-bundle.pem

# Personal certificates
rsakey qm1.key
sign qm1 "$(leafsubj QM1)" inter v3_leaf 101
rsakey qm2.key
sign qm2 "$(leafsubj QM2)" inter v3_leaf 102
cat qm1.pem inter.pem > qm1-chain.pem
cat qm2.pem inter.pem > qm2-chain.pem
eckey qm1-ec.key
sign qm1-ec "$(leafsubj QM1)" inter v3_leaf 103
eckey qm2-ec.key
sign qm2-ec "$(leafsubj QM2)" inter v3_leaf 104
run openssl x509 -in qm1.pem -outform DER -out qm1-der.crt

# QM2's RSA key in every format an operator may bring
run openssl rsa -in qm2.key -traditional -out qm2-trad.key
run openssl rsa -in qm2.key -aes256 -traditional -passout file:pw.txt -out qm2-aes.key
run openssl rsa -in qm2.key -des3 -traditional -passout file:pw.txt -out qm2-des3.key
run openssl pkcs8 -topk8 -v2 aes-256-cbc -in qm2.key -passout file:pw.txt -out qm2-pkcs8.key
run openssl pkcs12 -export -name qm2 -in qm2.pem -inkey qm2.key -certfile inter.pem \
	-passout file:pw.txt -out qm2.p12
run openssl pkcs12 -export -name qm2 -in qm2.pem -inkey qm2.key -certfile inter.pem \
	-keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 \
	-passout file:pw.txt -out qm2-legacy.p12

# Validity cases
certtool_leaf expired inter 201 EXPIRED \
	'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"'
certtool_leaf future inter 202 FUTURE \
	'activation_date = "2090-01-01 00:00:00"' 'expiration_date = "2091-01-01 00:00:00"'
certtool_leaf expiring inter 203 EXPIRING 'expiration_days = 10'

# Revocation
rsakey revoked.key
sign revoked "$(leafsubj REVOKED)" inter v3_leaf 301
printf 'crl_next_update = 3650\ncrl_number = 1\n' > "$work/crl.tmpl"
run certtool --generate-crl --load-ca-privkey inter.key --load-ca-certificate inter.pem \
	--load-certificate revoked.pem --template "$work/crl.tmpl" --outfile inter.crl
run certtool --generate-crl --load-ca-privkey root.key --load-ca-certificate root.pem \
	--template "$work/crl.tmpl" --outfile root.crl

# Same DN as QM2, wrong issuer
selfca other-root "/C=GB/O=Acme/CN=Other Root" 9
rsakey other.key
sign other "$(leafsubj QM2)" other-root v3_leaf 901

# Several OUs, in issue order Sales then EMEA
rsakey ou.key
sign ou "/O=Acme/OU=Sales/OU=EMEA/CN=QM2" inter v3_leaf 401

for f in *.key *.p12 pw.txt; do chmod 600 "$f"; done
for f in *.pem *.crl *.crt; do chmod 644 "$f"; done

# Self-check: the chains must verify (or fail) as the tests expect.
vfy() { openssl verify -CAfile root.pem -untrusted inter.pem "$@" >"$log" 2>&1; }
for c in qm1 qm2 qm1-ec qm2-ec revoked ou expiring; do
	vfy "$c.pem" || { echo "mkpki.sh: $c.pem does not verify" >&2; cat "$log" >&2; exit 1; }
done
for c in expired future other; do
	if vfy "$c.pem"; then echo "mkpki.sh: $c.pem verifies but must not" >&2; exit 1; fi
done
run openssl verify -CAfile other-root.pem other.pem
if openssl verify -crl_check -CAfile root.pem -untrusted inter.pem -CRLfile inter.crl \
	revoked.pem >"$log" 2>&1; then
	echo "mkpki.sh: revoked.pem not revoked by inter.crl" >&2
	exit 1
fi
exit 0
