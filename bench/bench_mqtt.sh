#!/bin/sh
# Telemetry channels (MQTT over TLS): chand side by side with Mosquitto.
#
#   sh bench/bench_mqtt.sh [BUILD_DIR]        (default: build/; needs chand,
#                                              chanctl and bench/bench_mqtt_client built)
#
# Makes a PKI with openssl (a CA, a server certificate for 127.0.0.1 with
# an aes256-encrypted key), starts one chand agent with a telemetry channel
# (--sslciph ANY_TLS12_OR_HIGHER --sslcauth optional) and one Mosquitto
# (Debian package, installed if missing) on loopback with the same
# certificates, `persistence true`, `max_queued_messages 0` (no queue
# limit, so neither broker may drop QoS 1/2), other settings default.
#
# Publish/subscribe: bench_mqtt_client pubsub, one publisher and one
# subscriber over TLS, SIZE-byte messages at QoS 0, 1 and 2 (N0, N1, N2
# messages), at most WINDOW (QoS 2: WINDOW2) unacknowledged in flight; the clock runs from
# the first publish to the last message received.  Each case runs REPEAT
# times per broker, alternating brokers, and the median is reported.
# Mosquitto keeps every message in memory (it writes its persistence file
# only at autosave or exit).
#
# Idle clients: bench_mqtt_client idle opens IDLE TLS connections (CONNECT,
# keepalive 600) from 16 source addresses; the script reads the agent's
# VmRSS and times STATUS_CALLS `chanctl status` calls (admin socket) while
# they connect and while they are held.  IDLE_MOSQUITTO=1 (default) does
# the same against Mosquitto for reference.
#
# Durability differs with the sessions: with clean sessions at both ends
# chand writes nothing for a QoS 1/2 publication (no session outlives the
# connection, so there is nothing to keep), it only routes it through its
# writer thread; with persistent sessions (clean session 0, the "pers"
# rows) every publication is a row for the subscriber's session, committed
# with fsync (group commit) before PUBACK/PUBREC, and deleted once
# delivered.
#
# QoS 0 runs twice: as a burst (the publisher writes as fast as TLS takes
# it) and paced (the publisher stays at most AHEAD messages ahead of what
# the subscriber has received), which no broker needs to drop.
#
# Environment: N0 (100000), AHEAD (500), N1 (20000), N2 (20000), N1P (N1), N2P (N2), SIZE (1024), WINDOW
# (100), WINDOW2 (20), REPEAT (3), IDLE (10000), STATUS_CALLS (20), IDLE_MOSQUITTO (1),
# KEEP=1 keeps the temp directory.
# Goals (issue 8): chand QoS 1 >= Mosquitto QoS 1, chand QoS 0 >= 1.5 x
# Mosquitto QoS 0, IDLE idle TLS clients in < 400 MiB RSS, admin < 100 ms.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
CHAND=$build/chand
CHANCTL=$build/chanctl
CLIENT=$build/bench/bench_mqtt_client
N0=${N0:-100000}
N1=${N1:-20000}
N2=${N2:-20000}
AHEAD=${AHEAD:-500}
N1P=${N1P:-$N1}
N2P=${N2P:-$N2}
SIZE=${SIZE:-1024}
WINDOW=${WINDOW:-100}
# Mosquitto lets a client have max_inflight_messages (default 20) QoS 2
# publications awaiting PUBREL, also for MQTT 3.1.1 clients, and drops the
# connection when it sends more: QoS 2 runs use a window of 20 (the
# default of mosquitto_pub's library) against both brokers.
WINDOW2=${WINDOW2:-20}
REPEAT=${REPEAT:-3}
IDLE=${IDLE:-10000}
STATUS_CALLS=${STATUS_CALLS:-20}
IDLE_MOSQUITTO=${IDLE_MOSQUITTO:-1}
RUN_LIMIT=${RUN_LIMIT:-300}   # seconds, per client run
for b in "$CHAND" "$CHANCTL" "$CLIENT"; do
	[ -x "$b" ] || { echo "bench: $b not built (make chand chanctl bench/bench_mqtt_client)" >&2; exit 1; }
done
MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
if [ ! -x "$MOSQUITTO" ]; then
	echo "bench: installing Mosquitto (apt-get install -y mosquitto)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto >/dev/null ||
		{ echo "bench: could not install mosquitto" >&2; exit 1; }
	MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-benchmqtt-XXXXXX")
pids=""
cpid=""
cleanup() {
	status=$?
	[ -n "$cpid" ] && kill -KILL "$cpid" 2>/dev/null || true
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null || true
	done
	[ "${KEEP:-0}" = 1 ] && echo "bench: files kept in $work" || rm -rf "$work"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
die() {
	echo "bench: $*" >&2
	tail -n 20 "$work/chand/chand.log" "$work/mosq/mosquitto.log" >&2 2>/dev/null || true
	exit 1
}
free_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 30000 ))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Each idle connection is one fd in the broker and one in the client.
want_fds=$((IDLE + 512))
[ "$(ulimit -n)" -ge $want_fds ] 2>/dev/null || ulimit -n $want_fds 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $want_fds ] ||
	echo "bench: warning: open files limit $(ulimit -n) < $want_fds; the idle test may fall short" >&2

# ---- PKI: a CA and a server certificate for 127.0.0.1 / localhost ----
umask 077
mkdir -p "$work/pki" "$work/chand" "$work/mosq"
cd "$work/pki"
for f in ca.pw srv.pw ks.pw; do
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$f"; echo >> "$f"
done
cat > ext.cnf <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
{
	openssl genrsa -aes256 -passout file:ca.pw -out ca.key 2048 &&
	openssl req -new -x509 -days 30 -key ca.key -passin file:ca.pw -out ca.pem \
		-subj "/C=GB/O=Acme/CN=Bench MQTT CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" &&
	openssl genrsa -aes256 -passout file:srv.pw -out server.key 2048 &&
	openssl req -new -key server.key -passin file:srv.pw -out server.csr \
		-subj "/C=GB/O=Acme/OU=Telemetry/CN=localhost" &&
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -passin file:ca.pw \
		-CAcreateserial -days 30 -extfile ext.cnf -out server.pem &&
	openssl pkey -in server.key -passin file:srv.pw -out server-plain.key
} >"$work/pki/openssl.log" 2>&1 || { cat "$work/pki/openssl.log" >&2; die "PKI failed"; }
cd "$work"

# ---- chand with a telemetry channel ----
PL=$(free_port)
PC=$(free_port)
while [ "$PC" = "$PL" ]; do PC=$(free_port); done
ctl() { "$CHANCTL" -s "$work/chand/chand.sock" "$@"; }
ks=$work/chand/key.db
"$CHANCTL" keystore create -k "$ks" --password-file pki/ks.pw --stash >/dev/null
"$CHANCTL" keystore import -k "$ks" --label qm1 --cert pki/server.pem --key pki/server.key \
	--key-password-file pki/srv.pw >/dev/null
"$CHANCTL" keystore trust -k "$ks" --label ca --cert pki/ca.pem >/dev/null
cat > chand/chand.conf <<EOF
qmgr = "QM1";
data_dir = "$work/chand";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ( { address = "127.0.0.1"; port = $PL; } );
keystore = { path = "key.db"; stash = "key.sth"; label = "qm1"; };
admin = { socket = "chand.sock"; mode = "0600"; };
log = { level = "info"; syslog = false; file = "chand.log"; };
EOF
"$CHAND" -c chand/chand.conf -f >chand/stdout.log 2>&1 &
CHAND_PID=$!
pids="$pids $CHAND_PID"
i=0
until ctl display queue >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || die "chand did not start"; sleep 0.1
done
ctl define channel MQTT.TLS --type mqtt --port "$PC" --address 127.0.0.1 \
	--sslciph ANY_TLS12_OR_HIGHER --sslcauth optional --max-clients $((IDLE + 100)) >/dev/null
ctl start channel MQTT.TLS >/dev/null
i=0
until listening "$PC"; do
	i=$((i + 1)); [ $i -lt 100 ] || die "telemetry channel not listening on $PC"; sleep 0.1
done

# ---- Mosquitto, same certificates ----
PM=$(free_port)
while [ "$PM" = "$PC" ] || [ "$PM" = "$PL" ]; do PM=$(free_port); done
cat > mosq/mosquitto.conf <<EOF
$([ "$(id -u)" -eq 0 ] && echo 'user root')
listener $PM 127.0.0.1
cafile $work/pki/ca.pem
certfile $work/pki/server.pem
keyfile $work/pki/server-plain.key
allow_anonymous true
persistence true
persistence_location $work/mosq/
max_queued_messages 0
log_dest file $work/mosq/mosquitto.log
EOF
"$MOSQUITTO" -c mosq/mosquitto.conf >mosq/stdout.log 2>&1 &
MOSQ_PID=$!
pids="$pids $MOSQ_PID"
i=0
until listening "$PM"; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat mosq/stdout.log >&2; die "mosquitto did not start"; }
	sleep 0.1
done

echo "chand telemetry benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"$(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chand $("$CHAND" --version 2>/dev/null | head -n 1) ($build), $("$MOSQUITTO" -h 2>/dev/null | head -n 1)"
echo "gnutls $(pkg-config --modversion gnutls 2>/dev/null || echo '?'), sqlite $(pkg-config --modversion sqlite3 2>/dev/null || echo '?')"
echo

# one_run BROKER QOS N [CLIENT-OPTION...]: prints the client's RESULT line (or dies).
one_run() {
	b=$1 q1=$2 n1=$3
	shift 3
	port=$PC
	[ "$b" = mosquitto ] && port=$PM
	out=$work/run.out
	w=$WINDOW
	[ "$q1" = 2 ] && w=$WINDOW2
	if ! timeout -k 5 $((RUN_LIMIT + 10)) "$CLIENT" pubsub -p "$port" --cafile pki/ca.pem \
		-q "$q1" -n "$n1" -s "$SIZE" -w "$w" --timeout "$RUN_LIMIT" \
		--topic "bench/$b/q$q1" "$@" >"$out" 2>"$work/run.err"; then
		cat "$out" "$work/run.err" >&2
		echo "bench: $b QoS $q1: the run failed or lost messages (above)" >&2
	fi
	grep '^RESULT' "$out" || die "$b QoS $q1: no result"
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# median of the lines of stdin (numbers)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }

printf '%-10s %7s | %10s %8s %9s | %10s %8s %9s | %6s\n' case msgs "chand/s" "MB/s" lost/dup \
	"mosq/s" "MB/s" lost/dup ratio
summary=""
for case in 0 0a 1 2 1p 2p; do
	q=${case%[ap]}
	flag=""
	label="QoS $q"
	eval "n=\$N$q"
	case $case in
	*p) flag=--persistent; label="QoS $q pers"; eval "n=\$N${q}P" ;;
	*a) flag="--ahead $AHEAD"; label="QoS 0 paced" ;;
	esac
	for broker in chand mosquitto; do : > "$work/rates.$broker"; : > "$work/loss.$broker"; done
	r=0
	while [ $r -lt "$REPEAT" ]; do
		for broker in chand mosquitto; do
			line=$(one_run $broker $q "$n" $flag)
			echo "$line" >> "$work/runs.log"
			echo "$(field "$line" msgs_per_s) $(field "$line" mb_per_s)" >> "$work/rates.$broker"
			echo "$(field "$line" lost) $(field "$line" dup)" >> "$work/loss.$broker"
		done
		r=$((r + 1))
	done
	cr=$(cut -d' ' -f1 "$work/rates.chand" | median)
	cm=$(awk -v r="$cr" '$1 == r { print $2; exit }' "$work/rates.chand")
	mr=$(cut -d' ' -f1 "$work/rates.mosquitto" | median)
	mm=$(awk -v r="$mr" '$1 == r { print $2; exit }' "$work/rates.mosquitto")
	cl=$(awk '{ l += $1; d += $2 } END { print l "/" d }' "$work/loss.chand")
	ml=$(awk '{ l += $1; d += $2 } END { print l "/" d }' "$work/loss.mosquitto")
	ratio=$(awk -v a="$cr" -v b="$mr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	printf '%-10s %7d | %10s %8s %9s | %10s %8s %9s | %6s\n' "$label" "$n" "$cr" "$cm" "$cl" \
		"$mr" "$mm" "$ml" "$ratio"
	summary="${summary}q$case $cr $mr $ratio ${cl%/*}
"
	echo "  runs (msgs/s): chand $(cut -d' ' -f1 "$work/rates.chand" | tr '\n' ' ')," \
		"mosquitto $(cut -d' ' -f1 "$work/rates.mosquitto" | tr '\n' ' ')"
done
echo "  (median of $REPEAT runs each, ${SIZE}-byte payloads, window $WINDOW (QoS 2: $WINDOW2);" \
	"lost/dup summed over the runs; $(field "$(tail -n 1 "$work/runs.log")" tls)" \
	"$(field "$(tail -n 1 "$work/runs.log")" cipher))"
echo

# ms_stats FILE: "max X ms, median Y ms (N calls)" from microseconds.
ms_stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END { if (!NR) { print "no calls"; exit }
		printf "max %.1f ms, median %.1f ms (%d calls)", v[NR] / 1000, v[int((NR + 1) / 2)] / 1000, NR }'
}
# time_status FILE COMMAND...: appends one call's microseconds to FILE.
time_status() {
	f=$1; shift
	t0=$(now_ns)
	"$@" >/dev/null 2>&1 || echo "bench: admin call failed: $*" >&2
	echo $(( ($(now_ns) - t0) / 1000 )) >> "$f"
}

# idle_test BROKER PORT PID: IDLE connections, RSS, admin latency (chand).
idle_test() {
	broker=$1 port=$2 pid=$3
	: > "$work/adm.base"; : > "$work/adm.conn"; : > "$work/adm.hold"
	rss0=$(rss_mib "$pid")
	if [ "$broker" = chand ]; then
		k=0
		while [ $k -lt 5 ]; do time_status "$work/adm.base" ctl status MQTT.TLS; k=$((k + 1)); done
	fi
	out=$work/idle.$broker.out
	timeout -k 5 $((RUN_LIMIT + 120)) "$CLIENT" idle -p "$port" --cafile pki/ca.pem -c "$IDLE" \
		--sources 16 --threads 2 --timeout "$RUN_LIMIT" --hold $((RUN_LIMIT + 60)) \
		>"$out" 2>"$work/idle.$broker.err" &
	cpid=$!
	# While they connect: the admin socket every 0.2 s.
	while ! grep -q '^READY' "$out" 2>/dev/null; do
		kill -0 "$cpid" 2>/dev/null || { cat "$out" "$work/idle.$broker.err" >&2; die "idle client died"; }
		if [ "$broker" = chand ]; then
			time_status "$work/adm.conn" ctl status MQTT.TLS
		fi
		sleep 0.2
	done
	ready=$(grep '^READY' "$out")
	sleep 2
	rss1=$(rss_mib "$pid")
	if [ "$broker" = chand ]; then
		k=0
		while [ $k -lt "$STATUS_CALLS" ]; do
			time_status "$work/adm.hold" ctl status MQTT.TLS
			k=$((k + 1))
		done
		conns=$(ctl --json status MQTT.TLS | tr ',{}' '\n\n\n' |
			sed -n 's/.*"connections": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
		: > "$work/adm.clients"
		time_status "$work/adm.clients" ctl status MQTT.TLS --clients
		ctl status MQTT.TLS --clients 2>/dev/null | wc -l > "$work/clients.rows"
	fi
	kill -TERM "$cpid" 2>/dev/null || true
	wait "$cpid" || true
	cpid=""
	end=$(grep '^END' "$out" || echo "END (none)")
	sleep 2
	rss2=$(rss_mib "$pid")
	echo "$broker: $IDLE idle TLS clients (keepalive 600, 16 source addresses, 2 client threads)"
	echo "  connect: $(echo "$ready" | sed 's/^READY //')"
	echo "  held:    $(echo "$end" | sed 's/^END //')"
	echo "  RSS: $rss0 MiB before, $rss1 MiB with the clients, $rss2 MiB after they left"
	if [ "$broker" = chand ]; then
		echo "  status MQTT.TLS reports connections=$conns"
		echo "  admin 'chanctl status MQTT.TLS', idle agent:        $(ms_stats "$work/adm.base")"
		echo "  admin 'chanctl status MQTT.TLS', while connecting:  $(ms_stats "$work/adm.conn")"
		echo "  admin 'chanctl status MQTT.TLS', clients held:      $(ms_stats "$work/adm.hold")"
		echo "  admin 'chanctl status MQTT.TLS --clients' ($(cat "$work/clients.rows") lines): $(ms_stats "$work/adm.clients")"
		IDLE_RSS=$rss1
		IDLE_ADM_MAX=$(sort -n "$work/adm.hold" "$work/adm.conn" | tail -n 1)
		IDLE_OK=$(echo "$ready" | sed -n 's/.*connected=\([0-9]*\).*/\1/p')
	fi
}

IDLE_RSS=0 IDLE_ADM_MAX=0 IDLE_OK=0
idle_test chand "$PC" "$CHAND_PID"
if [ "$IDLE_MOSQUITTO" = 1 ]; then
	echo
	idle_test mosquitto "$PM" "$MOSQ_PID"
fi

echo
echo "goals (issue 8):"
echo "$summary" | awk '
	$1 == "q0" { printf "%s QoS 0 burst: chand/mosquitto = %s (goal >= 1.5)%s\n", ($4 >= 1.5 && $5 == 0 ? "MET   " : "MISSED"), $4, ($5 > 0 ? ", but chand lost " $5 " messages: not a valid rate" : "") }
	$1 == "q0a" { printf "%s QoS 0 paced: chand/mosquitto = %s (goal >= 1.5)%s\n", ($4 >= 1.5 && $5 == 0 ? "MET   " : "MISSED"), $4, ($5 > 0 ? ", but chand lost " $5 " messages" : "") }
	$1 == "q1" { printf "%s QoS 1, clean sessions: chand/mosquitto = %s (goal >= 1.0)\n", ($4 >= 1.0 ? "MET   " : "MISSED"), $4 }
	$1 == "q1p" { printf "%s QoS 1, persistent sessions (chand fsyncs): chand/mosquitto = %s (goal >= 1.0)\n", ($4 >= 1.0 ? "MET   " : "MISSED"), $4 }'
awk -v r="$IDLE_RSS" -v n="$IDLE" -v ok="$IDLE_OK" 'BEGIN {
	printf "%s %d idle TLS clients (%d connected): %s MiB RSS (goal < 400)\n",
		(r < 400 && ok == n ? "MET   " : "MISSED"), n, ok, r }'
awk -v a="$IDLE_ADM_MAX" 'BEGIN {
	printf "%s admin max %.1f ms while connecting and holding (goal < 100)\n", (a < 100000 ? "MET   " : "MISSED"), a / 1000 }'
