#!/bin/sh
# The whole story on this machine: two sites, a real PKI, a mutual-TLS
# channel, and MQTT publications that cross it exactly once.
#
# Builds chand (scripts/setup.sh), makes a small PKI with openssl the way
# the usual "create a CA and sign a server certificate" guides do, gives
# each queue manager a keystore with `chanctl keystore`, starts QM1 and QM2
# on 127.0.0.1, defines a sender/receiver channel with TLS 1.3, SSLCAUTH
# REQUIRED and SSLPEER at both ends, sends a few messages from QM1 and
# reads them on QM2.  Then each queue manager gets a telemetry channel
# (MQTT over TLS) with a server certificate made as the Mosquitto guides
# make one (an AES-256 key, CN = the broker's address), and QM1 a route
# that sends every spBv1.0 publication to QM2 over that channel:
# mosquitto_sub on QM2 (site 2) receives what mosquitto_pub publishes on
# QM1 (site 1); `chanctl display route` on QM1 and `chanctl status
# MQTT.TLS --clients` on QM2 show the counts.  Everything lives in a temp
# directory that is removed at the end; both agents (and the subscriber)
# are stopped whatever happens.
#
#   sh scripts/demo.sh          (KEEP=1 keeps the temp directory;
#                                         BUILD_DIR=dir builds there, default build/)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
say() { printf '\n==> %s\n' "$*"; }
run() {
	printf '  $'
	for a in "$@"; do
		case $a in *" "*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
	done
	printf '\n'
	"$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-demo-XXXXXX")
pids=""
subpid=""
cleanup() {
	status=$?
	if [ -n "$subpid" ]; then kill -TERM "$subpid" 2>/dev/null || true; fi
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		# Bounded wait: SIGKILL after 10 s.
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "demo: files kept in $work"
	else
		rm -rf "$work"
	fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Building chand (scripts/setup.sh)"
sh "$top/scripts/setup.sh" "$build" >"$work/build.log" 2>&1 || {
	cat "$work/build.log" >&2
	echo "demo: the build failed (log above)" >&2
	exit 1
}
CHAND=$build/chand
CHANCTL=$build/chanctl

# The MQTT clients of the telemetry part (scripts/setup.sh installs them
# only for the tests).
if ! command -v mosquitto_pub >/dev/null 2>&1 || ! command -v mosquitto_sub >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "demo: mosquitto_pub and mosquitto_sub are missing: run as root, or" \
			"apt-get install mosquitto-clients" >&2
		exit 1
	fi
	say "Installing mosquitto-clients (mosquitto_pub, mosquitto_sub)"
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
	       DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	           mosquitto-clients; } >"$work/apt.log" 2>&1; then
		cat "$work/apt.log" >&2
		echo "demo: could not install mosquitto-clients (log above)" >&2
		exit 1
	fi
fi

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 30000 ))
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return
		fi
	done
}

# wait_for SECONDS COMMAND...: retries the command every 0.2 s.
wait_for() {
	limit=$(( $1 * 5 )); shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge $limit ]; then
			echo "demo: timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.2
	done
}

umask 077
cd "$work"
mkdir pki qm1 qm2
# Passwords live in 0600 files, never on the command line.
for f in pki/ca.pw qm1/key.pw qm2/key.pw qm1/ks.pw qm2/ks.pw; do
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$f"
	echo >> "$f"
done

say "A certificate authority (openssl genrsa -aes256, openssl req -x509 -extensions v3_ca)"
run openssl genrsa -aes256 -passout file:pki/ca.pw -out pki/ca.key 2048 2>/dev/null
run openssl req -new -x509 -days 3650 -extensions v3_ca -key pki/ca.key \
	-passin file:pki/ca.pw -out pki/ca.pem -subj "/C=GB/O=Acme/CN=Acme Demo CA"

for qm in qm1 qm2; do
	QM=$(echo "$qm" | tr a-z A-Z)
	say "$QM: private key, certificate signing request, certificate signed by the CA"
	run openssl genrsa -aes256 -passout file:$qm/key.pw -out $qm/$qm.key 2048 2>/dev/null
	run openssl req -new -key $qm/$qm.key -passin file:$qm/key.pw -out $qm/$qm.csr \
		-subj "/C=GB/O=Acme/OU=Payments/CN=$QM"
	run openssl x509 -req -in $qm/$qm.csr -CA pki/ca.pem -CAkey pki/ca.key \
		-passin file:pki/ca.pw -CAcreateserial -out $qm/$qm.pem -days 365 2>/dev/null

	say "$QM: keystore with the CA trusted and its own certificate under label $qm"
	run "$CHANCTL" keystore create -k $qm/key.db --password-file $qm/ks.pw --stash
	run "$CHANCTL" keystore trust -k $qm/key.db --label acme-ca --cert pki/ca.pem
	run "$CHANCTL" keystore import -k $qm/key.db --label $qm --cert $qm/$qm.pem \
		--key $qm/$qm.key --key-password-file $qm/key.pw
	run "$CHANCTL" keystore list -k $qm/key.db
done

say "Starting QM1 and QM2 on 127.0.0.1"

P1=$(free_port)
P2=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
for qm in qm1 qm2; do
	QM=$(echo "$qm" | tr a-z A-Z)
	port=$P1
	[ $qm = qm2 ] && port=$P2
	cat > $qm/chand.conf <<EOF
qmgr = "$QM";
data_dir = "$work/$qm";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ( { address = "127.0.0.1"; port = $port; } );
keystore = { path = "key.db"; stash = "key.sth"; label = "$qm"; };
admin = { socket = "chand.sock"; mode = "0600"; };
log = { level = "info"; syslog = false; file = "chand.log"; };
dead_letter_queue = "DLQ";
EOF
	"$CHAND" -c $qm/chand.conf -f >$qm/stdout.log 2>&1 &
	pids="$pids $!"
	echo "  $QM: chand pid $!, listening on 127.0.0.1:$port"
done
ctl1() { "$CHANCTL" -s "$work/qm1/chand.sock" "$@"; }
ctl2() { "$CHANCTL" -s "$work/qm2/chand.sock" "$@"; }
wait_for 15 ctl1 display queue || { cat qm1/*.log >&2; exit 1; }
wait_for 15 ctl2 display queue || { cat qm2/*.log >&2; exit 1; }

say "QM2: the target queue and the receiving end of channel QM1.TO.QM2"
ctl2 define qlocal DLQ >/dev/null
run "$CHANCTL" -s qm2/chand.sock define qlocal PAYMENTS
run "$CHANCTL" -s qm2/chand.sock define channel QM1.TO.QM2 --type rcvr \
	--sslciph ANY_TLS13_OR_HIGHER --sslcauth required \
	--sslpeer "CN=QM1, OU=Payments, O=Acme, C=GB"

say "QM1: transmission queue QM2 and remote queue PAYMENTS (-> PAYMENTS at QM2)"
ctl1 define qlocal DLQ >/dev/null
run "$CHANCTL" -s qm1/chand.sock define qlocal QM2 --usage xmitq
run "$CHANCTL" -s qm1/chand.sock define qremote PAYMENTS --rname PAYMENTS --rqmname QM2 \
	--xmitq QM2

say "QM1: putting 5 messages to PAYMENTS (they wait on the transmission queue)"
printf 'payment 1: 100.00 GBP\npayment 2: 250.00 GBP\npayment 3: 75.50 GBP\npayment 4: 1200.00 GBP\npayment 5: 9.99 GBP\n' |
	"$CHANCTL" -s qm1/chand.sock put PAYMENTS
run "$CHANCTL" -s qm1/chand.sock display queue QM2

say "QM1: the sending end of channel QM1.TO.QM2"
run "$CHANCTL" -s qm1/chand.sock define channel QM1.TO.QM2 --type sdr \
	--conname "127.0.0.1:$P2" --xmitq QM2 --sslciph ANY_TLS13_OR_HIGHER \
	--sslpeer "CN=QM2, OU=Payments, O=Acme, C=GB"

say "Starting the channel (TLS 1.3, both certificates checked, SSLPEER at both ends)"
run "$CHANCTL" -s qm1/chand.sock start channel QM1.TO.QM2
running() { ctl1 status QM1.TO.QM2 | grep -q RUNNING; }
wait_for 20 running || { ctl1 status QM1.TO.QM2 >&2 || true; tail -n 20 qm1/chand.log qm2/chand.log >&2; exit 1; }
arrived() { ctl2 --json display queue PAYMENTS | grep -Eq '"curdepth": *5([^0-9]|$)'; }
wait_for 20 arrived || { ctl2 display queue PAYMENTS >&2; exit 1; }

say "Channel status at the sender (QM1)"
run "$CHANCTL" -s qm1/chand.sock status QM1.TO.QM2
say "Channel status at the receiver (QM2)"
run "$CHANCTL" -s qm2/chand.sock status QM1.TO.QM2

say "QM2: getting the messages"
run "$CHANCTL" -s qm2/chand.sock get PAYMENTS --all

P3=$(free_port)
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(free_port); done
P4=$(free_port)
while [ "$P4" = "$P1" ] || [ "$P4" = "$P2" ] || [ "$P4" = "$P3" ]; do P4=$(free_port); done
for qm in qm1 qm2; do
	QM=$(echo "$qm" | tr a-z A-Z)
	port=$P3
	[ $qm = qm2 ] && port=$P4
	say "$QM: a server certificate for MQTT clients, as the Mosquitto guides make one (CN = the broker's address), and telemetry channel MQTT.TLS on 127.0.0.1:$port"
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > $qm/broker.pw
	echo >> $qm/broker.pw
	run openssl genrsa -aes256 -passout file:$qm/broker.pw -out $qm/broker.key 2048 2>/dev/null
	run openssl req -new -key $qm/broker.key -passin file:$qm/broker.pw -out $qm/broker.csr \
		-subj "/C=GB/O=Acme/CN=127.0.0.1"
	run openssl x509 -req -in $qm/broker.csr -CA pki/ca.pem -CAkey pki/ca.key \
		-passin file:pki/ca.pw -CAcreateserial -out $qm/broker.pem -days 365 2>/dev/null
	run "$CHANCTL" keystore import -k $qm/key.db --label broker --cert $qm/broker.pem \
		--key $qm/broker.key --key-password-file $qm/broker.pw
	run "$CHANCTL" -s $qm/chand.sock refresh security
	# TLS 1.2 or 1.3; a client certificate is asked for, not required.
	run "$CHANCTL" -s $qm/chand.sock define channel MQTT.TLS --type mqtt --address 127.0.0.1 \
		--port "$port" --sslciph ANY_TLS12_OR_HIGHER --certlabl broker --sslcauth optional
	run "$CHANCTL" -s $qm/chand.sock start channel MQTT.TLS
done

say "QM1: route SPB.OUT sends every spBv1.0 publication to QM2 (transmission queue QM2, channel QM1.TO.QM2)"
run "$CHANCTL" -s qm1/chand.sock define route SPB.OUT --topic 'spBv1.0/#' --qmgr QM2

say "Site 2: mosquitto_sub on QM2 in the background: client dashboard, persistent session, QoS 2 (3 messages or 10 s)"
mkdir mqtt
# --cafile only: the client checks QM2's certificate (CN = the address it
# connects to) and sends none.  -d shows the SUBACK; stdbuf keeps the lines
# coming as they arrive.
printf '  $ mosquitto_sub -h 127.0.0.1 -p %s --cafile pki/ca.pem -i dashboard -c -q 2 -t '\''spBv1.0/#'\'' -v -C 3 -W 10 &\n' "$P4"
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$P4" --cafile pki/ca.pem -i dashboard -c -q 2 \
	-t 'spBv1.0/#' -v -C 3 -W 10 -d >mqtt/sub.out 2>&1 &
subpid=$!
subscribed() { grep -q 'received SUBACK' mqtt/sub.out; }
wait_for 10 subscribed || { cat mqtt/sub.out >&2; tail -n 20 qm2/chand.log >&2; exit 1; }

say "Site 1: mosquitto_pub on QM1, three readings at QoS 2 (one message per line)"
printf '  $ printf '\''temperature=21.5\\ntemperature=21.7\\ntemperature=22.0\\n'\'' | mosquitto_pub -h 127.0.0.1 -p %s --cafile pki/ca.pem -i edge1 -q 2 -t spBv1.0/Plant1/NDATA/Edge1 -l\n' "$P3"
printf 'temperature=21.5\ntemperature=21.7\ntemperature=22.0\n' |
	mosquitto_pub -h 127.0.0.1 -p "$P3" --cafile pki/ca.pem -i edge1 -q 2 \
		-t spBv1.0/Plant1/NDATA/Edge1 -l
got() { [ "$(grep -c '^spBv1.0/' mqtt/sub.out)" -ge "$1" ]; }
substatus=0
wait "$subpid" || substatus=$?
subpid=""
if [ "$substatus" -ne 0 ] || ! got 3; then
	cat mqtt/sub.out >&2
	tail -n 20 qm1/chand.log qm2/chand.log >&2
	echo "demo: mosquitto_sub ended with status $substatus before it had 3 messages" >&2
	exit 1
fi

say "What mosquitto_sub received on QM2 (topic, message)"
grep '^spBv1.0/' mqtt/sub.out | sed 's/^/  /'

say "QM1: the route's counters"
run "$CHANCTL" -s qm1/chand.sock display route SPB.OUT
say "QM2: the telemetry channel and its clients (the dashboard's session stays, nothing pending)"
run "$CHANCTL" -s qm2/chand.sock status MQTT.TLS --clients

say "Stopping the channels and both queue managers"
run "$CHANCTL" -s qm1/chand.sock stop channel QM1.TO.QM2
run "$CHANCTL" -s qm1/chand.sock stop channel MQTT.TLS
run "$CHANCTL" -s qm2/chand.sock stop channel MQTT.TLS
echo
echo "Demo complete: 5 messages went from QM1 to QM2 over mutually authenticated TLS,"
echo "and 3 MQTT publications from mosquitto_pub on QM1 to mosquitto_sub on QM2 over the same channel."
