#!/bin/sh
# mkseed.sh OUTDIR [ADDRESS]: make the certificates of the telemetry tests
# exactly as the source documents 001 and 002 make them (shared/seeds),
# with the prompts answered by files (-passout/-passin file:, -subj) and the
# broker's address (seed 001's 10.3.0.11) replaced by ADDRESS (default
# 127.0.0.1).  Quiet on success; on failure prints the failing command's
# output and exits non-zero.  Safe to run again over the same directory.
#
# OUTDIR/pw.txt                   password of every encrypted key ("passw0rd")
# OUTDIR/seed001/                 seed 001 (flat, as its commands write it):
#   ca.key ca.pem                 genrsa -aes256, req -x509 -extensions v3_ca
#   server.key server.csr server.pem   genrsa -aes256, CN=ADDRESS; x509 -req
#                                 -CAcreateserial: a v1 certificate, no extensions
#   client.key client.csr client.pem   the same for the client
#   ca.srl                        the serial file -CAcreateserial made
#   client-plain.key              client.key decrypted (mosquitto clients
#                                 read a key password only from a terminal)
# OUTDIR/seed002/                 seed 002, in its directory tree:
#   ca/ca.key ca/ca.crt           root CA (genrsa -des3, req -x509)
#   ca/server/server-ca.{key,crt}           intermediate CAs signed by the root
#   ca/engine/engine-ca.{key,crt}           (v3_ca: CA:TRUE, so they can sign)
#   ca/transmission/transmission-ca.{key,crt}
#   certs/server/server.{key,crt}           leaves (v1), each signed by its CA
#   certs/engine/engine.{key,crt}
#   certs/transmission/transmission.{key,crt}
#   certs/*/NAME-chain.crt        leaf + its CA: what a client that sends its
#                                 chain (and the broker) present
#   certs/*/NAME-plain.key        the leaf key decrypted, for mosquitto clients
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: mkseed.sh OUTDIR [ADDRESS]" >&2
	exit 2
fi
out=$1
addr=${2:-127.0.0.1}
mkdir -p "$out"
cd "$out"
umask 077
work=.mkseed.$$
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work"' EXIT
log=$(pwd)/$work/log

run() {
	if ! "$@" >"$log" 2>&1; then
		echo "mkseed.sh: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

printf '%s\n' 'passw0rd' > pw.txt
pw=$(pwd)/pw.txt

# The v3_ca section of Debian's /etc/ssl/openssl.cnf, spelt out so that the
# intermediates of seed 002 do not depend on the machine's configuration.
cat > "$work/v3ca.cnf" <<'EOF'
[ v3_ca ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = critical, CA:true
EOF
cnf=$(pwd)/$work/v3ca.cnf

# ---- seed 001: one CA, server and client certificates ----
mkdir -p seed001
(
	cd seed001
	subj="/C=US/ST=Texas/O=THIS_COMPANY INC"
	mail="emailAddress=johnsmith@gmail.com"
	run openssl genrsa -aes256 -passout "file:$pw" -out ca.key 2048
	run openssl req -new -x509 -days 3650 -extensions v3_ca -key ca.key -passin "file:$pw" \
		-out ca.pem -subj "$subj/CN=John Smith/$mail" --outform PEM
	for who in server client; do
		run openssl genrsa -aes256 -passout "file:$pw" -out "$who.key" 2048
		# The server's CN is the broker's address; the client's the
		# seed leaves to the operator: a name of its own.
		if [ "$who" = server ]; then cn=$addr; else cn=MyEACM; fi
		run openssl req -out "$who.csr" -key "$who.key" -passin "file:$pw" -new \
			-subj "$subj/CN=$cn/$mail" --outform PEM
		run openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -passin "file:$pw" \
			-CAcreateserial -out "$who.pem" -days 3650 --outform PEM
	done
	run openssl rsa -in client.key -passin "file:$pw" -out client-plain.key
)

# ---- seed 002: root -> server / engine / transmission CAs -> leaves ----
mkdir -p seed002/ca/engine seed002/ca/server seed002/ca/transmission \
	seed002/certs/engine seed002/certs/server seed002/certs/transmission
(
	cd seed002
	org="/C=US/ST=Minnesota/L=Minneapolis/O=Cirrus Link"
	run openssl genrsa -des3 -passout "file:$pw" -out ca/ca.key 2048
	run openssl req -new -x509 -key ca/ca.key -passin "file:$pw" -days 3650 -out ca/ca.crt \
		-subj "$org/OU=CA/CN=$addr"
	for who in server engine transmission; do
		k=ca/$who/$who-ca
		run openssl genrsa -des3 -passout "file:$pw" -out "$k.key" 2048
		run openssl req -new -key "$k.key" -passin "file:$pw" -out "$k.csr" \
			-subj "$org/OU=CA/CN=$who CA"
		run openssl x509 -req -in "$k.csr" -CA ca/ca.crt -CAkey ca/ca.key -passin "file:$pw" \
			-CAcreateserial -out "$k.crt" -days 3650 \
			-extfile "$cnf" -extensions v3_ca
	done
	for who in server engine transmission; do
		k=certs/$who/$who
		ca=ca/$who/$who-ca
		if [ "$who" = server ]; then cn=$addr; else cn="MQTT $who"; fi
		run openssl genrsa -des3 -passout "file:$pw" -out "$k.key" 2048
		run openssl req -new -key "$k.key" -passin "file:$pw" -out "$k.csr" \
			-subj "$org/OU=$who/CN=$cn"
		run openssl x509 -req -in "$k.csr" -CA "$ca.crt" -CAkey "$ca.key" -passin "file:$pw" \
			-CAcreateserial -out "$k.crt" -days 3650
		cat "$k.crt" "$ca.crt" > "$k-chain.crt"
		run openssl rsa -in "$k.key" -passin "file:$pw" -out "$k-plain.key"
	done
)

find . -name '*.key' -exec chmod 600 {} +
chmod 600 pw.txt
find . \( -name '*.pem' -o -name '*.crt' \) -exec chmod 644 {} +

# Self-check: the chains verify as the tests expect, the leaves are v1.
vfy() {
	if ! openssl verify "$@" >"$log" 2>&1; then
		echo "mkseed.sh: does not verify: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}
vfy -CAfile seed001/ca.pem seed001/server.pem seed001/client.pem
for who in server engine transmission; do
	vfy -CAfile seed002/ca/ca.crt -untrusted "seed002/ca/$who/$who-ca.crt" \
		"seed002/certs/$who/$who.crt"
done
if openssl verify -CAfile seed002/ca/ca.crt seed002/certs/transmission/transmission.crt \
	>"$log" 2>&1; then
	echo "mkseed.sh: transmission.crt verifies without its CA but must not" >&2
	exit 1
fi
if openssl verify -CAfile seed001/ca.pem seed002/certs/engine/engine.crt >"$log" 2>&1; then
	echo "mkseed.sh: seed 002's engine.crt verifies against seed 001's CA" >&2
	exit 1
fi
v=$(openssl x509 -in seed001/server.pem -noout -text | sed -n 's/^ *Version: \([0-9]\).*/\1/p')
if [ "$v" != 1 ]; then
	echo "mkseed.sh: seed001/server.pem is version $v, the seed makes version 1" >&2
	exit 1
fi
exit 0
