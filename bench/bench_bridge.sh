#!/bin/sh
# Two sites: MQTT publications from a publisher at one broker to a
# subscriber at another, chand routes side by side with a Mosquitto TLS
# bridge, in one run.
#
#   sh bench/bench_bridge.sh [BUILD_DIR]     (default: build/; needs chand, chanctl and
#                                            bench/bench_bridge_client built)
#
# PKI made with openssl: a CA and two certificates, QM1 and QM2 (subject
# CN=QMn, SAN IP:127.0.0.1, serverAuth + clientAuth), keys aes256-encrypted
# for `chanctl keystore import` (plain copies for Mosquitto).
#
# chand: agents QM1 and QM2; a mutual-TLS SDR/RCVR channel QM1.TO.QM2
# (ANY_TLS13_OR_HIGHER, SSLCAUTH REQUIRED, SSLPEER at both ends, other
# attributes default) serving transmission queue QM2 on QM1; route
# `OUT --topic 'bench/#' --qmgr QM2` on QM1; a telemetry channel MQTT.IN
# (ANY_TLS12_OR_HIGHER, SSLCAUTH OPTIONAL) on each agent.  A QoS 1
# publication is committed (fsync) on QM1 with its XMITQ message before
# PUBACK, the channel commits it on QM2 (fsync), and QM2 publishes it to
# the subscriber (with a persistent subscriber session, its session rows
# are committed too).
#
# Mosquitto (set up by bench/lib_mosq.sh; Debian package, installed if
# missing): brokers A and B with the same certificates, `persistence
# true`, `max_queued_messages 0` (no queue limit: nothing may be dropped),
# other settings default; A bridges `topic bench/# out 1` to a listener
# of B that requires a client certificate (bridge_cafile/certfile/keyfile:
# mutual TLS, as chand's channel).  Mosquitto keeps its queues in memory
# and writes them to disk only at autosave or exit.
#
# Load: bench_bridge_client; the subscriber connects to QM2 / B first
# (QoS 1 subscription), then the publisher sends N messages of SIZE bytes
# at QoS 1 to QM1 / A with at most WINDOW unacknowledged.  The clock runs
# from the first publish to the last message received; "lost" is what had
# not arrived IDLE_END seconds after the last arrival once the publisher
# had all its PUBACKs.  Each SESSIONS mode runs both systems (REPEAT times,
# alternating, median reported): "clean" = clean sessions at both ends,
# "persistent" = the subscriber's session is persistent (clean session 0).
#
# Environment: N (100000), SIZE (1024), WINDOW (100), SESSIONS ("clean
# persistent"), REPEAT (1), BATCHSZ (channel BATCHSZ; default: chand's),
# RUN_LIMIT (300 s per client run), IDLE_END (10 s), KEEP=1 keeps the
# temp directory.  PERF=1 records
# `perf record -g` of both agents during the first chand run (perf.QMn.txt
# in the temp directory, implies KEEP=1).
# Goal (issue 9): chand delivers all N, nothing lost or duplicated, at no
# less than Mosquitto's rate.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
CHAND=$build/chand
CHANCTL=$build/chanctl
CLIENT=$build/bench/bench_bridge_client
N=${N:-100000}
SIZE=${SIZE:-1024}
WINDOW=${WINDOW:-100}
SESSIONS=${SESSIONS:-clean persistent}
REPEAT=${REPEAT:-1}
RUN_LIMIT=${RUN_LIMIT:-300}
IDLE_END=${IDLE_END:-10}
PERF=${PERF:-0}
[ "$PERF" = 1 ] && KEEP=1
for b in "$CHAND" "$CHANCTL" "$CLIENT"; do
	[ -x "$b" ] || { echo "bench: $b not built (make chand chanctl bench/bench_bridge_client)" >&2; exit 1; }
done
. "$top/bench/lib_mosq.sh"
mosq_find || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-benchbridge-XXXXXX")
pids=""
cleanup() {
	status=$?
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

die() {
	echo "bench: $*" >&2
	tail -n 20 "$work/qm1/chand.log" "$work/qm2/chand.log" "$work/mosqA/mosquitto.log" \
		"$work/mosqB/mosquitto.log" >&2 2>/dev/null || true
	exit 1
}
pick_port() { mosq_pick_port "$1"; }
# alive PID: running (a child that exited stays a zombie until reaped).
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }
wait_listen() { mosq_wait_listen "$@"; }

# ---- PKI ----
umask 077
mkdir -p "$work/pki" "$work/qm1" "$work/qm2"
cd "$work/pki"
for f in ca.pw qm1.pw qm2.pw ks.pw; do
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$f"; echo >> "$f"
done
cat > ext.cnf <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
{
	openssl genrsa -aes256 -passout file:ca.pw -out ca.key 2048 &&
	openssl req -new -x509 -days 365 -key ca.key -passin file:ca.pw -out ca.pem \
		-subj "/C=GB/O=Acme/CN=Bench Bridge CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" &&
	for q in qm1 qm2; do
		Q=$(echo $q | tr a-z A-Z)
		openssl genrsa -aes256 -passout file:$q.pw -out $q.key 2048 &&
		openssl req -new -key $q.key -passin file:$q.pw -out $q.csr -subj "/C=GB/O=Acme/CN=$Q" &&
		openssl x509 -req -in $q.csr -CA ca.pem -CAkey ca.key -passin file:ca.pw \
			-CAcreateserial -days 365 -extfile ext.cnf -out $q.pem &&
		openssl pkey -in $q.key -passin file:$q.pw -out $q-plain.key || exit 1
	done
} >openssl.log 2>&1 || { cat openssl.log >&2; die "PKI failed"; }
cd "$work"

# ---- chand: QM1 and QM2 ----
pick_port P1; pick_port P2; pick_port M1; pick_port M2
for qm in qm1 qm2; do
	QM=$(echo $qm | tr a-z A-Z)
	port=$P1
	[ $qm = qm2 ] && port=$P2
	ks=$work/$qm/key.db
	"$CHANCTL" keystore create -k "$ks" --password-file pki/ks.pw --stash >/dev/null
	"$CHANCTL" keystore trust -k "$ks" --label ca --cert pki/ca.pem >/dev/null
	"$CHANCTL" keystore import -k "$ks" --label $qm --cert pki/$qm.pem --key pki/$qm.key \
		--key-password-file pki/$qm.pw >/dev/null
	cat > $qm/chand.conf <<EOF
qmgr = "$QM";
data_dir = "$work/$qm";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ( { address = "127.0.0.1"; port = $port; } );
keystore = { path = "key.db"; stash = "key.sth"; label = "$qm"; };
admin = { socket = "chand.sock"; mode = "0600"; };
log = { level = "info"; syslog = false; file = "chand.log"; };
EOF
	"$CHAND" -c $qm/chand.conf -f >$qm/stdout.log 2>&1 &
	pids="$pids $!"
	eval "PID_$qm=$!"
done
ctl1() { "$CHANCTL" -s "$work/qm1/chand.sock" "$@"; }
ctl2() { "$CHANCTL" -s "$work/qm2/chand.sock" "$@"; }
i=0
until ctl1 display queue >/dev/null 2>&1 && ctl2 display queue >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || die "agents did not start"; sleep 0.1
done
# jfield CTL FIELD ARGS...: first numeric or word value of "FIELD" in the JSON output.
jfield() {
	c=$1 f=$2; shift 2
	"$c" --json "$@" | tr ',{}' '\n\n\n' |
		sed -n "s/.*\"$f\": *\"*\([A-Za-z0-9_.-]*\)\"*.*/\1/p" | head -n 1
}
maxdepth=$((N * 2 > 200000 ? N * 2 : 200000))
{
	ctl1 define qlocal QM2 --usage xmitq --maxdepth $maxdepth &&
	ctl2 define channel QM1.TO.QM2 --type rcvr --sslciph ANY_TLS13_OR_HIGHER \
		--sslcauth required --sslpeer "CN=QM1" ${BATCHSZ:+--batchsz $BATCHSZ} &&
	ctl1 define channel QM1.TO.QM2 --type sdr --conname 127.0.0.1:$P2 --xmitq QM2 \
		--sslciph ANY_TLS13_OR_HIGHER --sslpeer "CN=QM2" ${BATCHSZ:+--batchsz $BATCHSZ} &&
	ctl1 define route OUT --topic 'bench/#' --qmgr QM2 &&
	ctl1 define channel MQTT.IN --type mqtt --port $M1 --address 127.0.0.1 \
		--sslciph ANY_TLS12_OR_HIGHER --sslcauth optional &&
	ctl2 define channel MQTT.IN --type mqtt --port $M2 --address 127.0.0.1 \
		--sslciph ANY_TLS12_OR_HIGHER --sslcauth optional &&
	ctl1 start channel MQTT.IN && ctl2 start channel MQTT.IN
} >"$work/define.log" 2>&1 || { cat "$work/define.log" >&2; die "chand definitions failed"; }
ctl1 start channel QM1.TO.QM2 >/dev/null 2>&1 || true
wait_listen $M1 "QM1 telemetry channel"
wait_listen $M2 "QM2 telemetry channel"
i=0
until [ "$(jfield ctl1 state status QM1.TO.QM2)" = RUNNING ]; do
	i=$((i + 1)); [ $i -lt 300 ] || die "channel QM1.TO.QM2 not RUNNING ($(jfield ctl1 state status QM1.TO.QM2))"
	sleep 0.1
done

# ---- Mosquitto: A bridged to B (bench/lib_mosq.sh) ----
mosq_bridge "$work/pki/ca.pem" "$work/pki/qm1.pem" "$work/pki/qm1-plain.key" \
	"$work/pki/qm2.pem" "$work/pki/qm2-plain.key"
MA=$MOSQ_A MB=$MOSQ_B

echo "chand two-site benchmark (routes vs Mosquitto bridge), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"$(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chand $("$CHAND" --version 2>/dev/null | head -n 1) ($build), $MOSQ_VERSION"
echo "load: $N x $SIZE-byte QoS 1, window $WINDOW, sessions: $SESSIONS, $REPEAT run(s) each"
echo

# one_run SYSTEM MODE TAG: prints the client's RESULT line, or "RESULT failed=..."
one_run() {
	if [ "$1" = chand ]; then pub=$M1 sub=$M2; else pub=$MA sub=$MB; fi
	flag=""
	[ "$2" = persistent ] && flag=--persistent
	out=$work/run.$3.out
	if [ "$PERF" = 1 ] && [ "$1" = chand ] && [ ! -e "$work/perf.qm1.data" ]; then
		perf record -g -o "$work/perf.qm1.data" -p "$PID_qm1" >/dev/null 2>&1 &
		perf1=$!
		perf record -g -o "$work/perf.qm2.data" -p "$PID_qm2" >/dev/null 2>&1 &
		perf2=$!
	else
		perf1="" perf2=""
	fi
	rc=0
	timeout -k 5 $((RUN_LIMIT + IDLE_END + 90)) "$CLIENT" --pub 127.0.0.1:$pub \
		--sub 127.0.0.1:$sub --cafile pki/ca.pem -n "$N" -s "$SIZE" -w "$WINDOW" \
		--timeout "$RUN_LIMIT" --idle-end "$IDLE_END" --topic "bench/$1/$2/$3" $flag \
		>"$out" 2>"$work/run.$3.err" || rc=$?
	if [ -n "$perf1" ]; then
		kill -INT $perf1 $perf2 2>/dev/null || true
		wait $perf1 $perf2 2>/dev/null || true
		for q in qm1 qm2; do
			perf report -i "$work/perf.$q.data" --no-children --percent-limit 0.5 --stdio \
				>"$work/perf.$q.txt" 2>/dev/null || true
		done
	fi
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo "bench: $1 ($2 sessions): the run did not finish in $((RUN_LIMIT + IDLE_END + 90)) s; killed" >&2
	elif [ $rc != 0 ]; then
		echo "bench: $1 ($2 sessions): the client reported a failure or a loss:" >&2
		cat "$work/run.$3.err" >&2
	fi
	grep '^RESULT' "$out" || echo "RESULT failed=1 exit=$rc"
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }

echo "(median run shown; lost and dup are summed over the runs)"
printf '%-10s %-11s %9s %8s %9s %6s %6s %8s\n' system sessions msgs/s MB/s received lost dup seconds
summary=""
tag=0
for mode in $SESSIONS; do
	for s in chand mosquitto; do : > "$work/res.$s"; done
	r=0
	while [ $r -lt "$REPEAT" ]; do
		for s in chand mosquitto; do
			tag=$((tag + 1))
			line=$(one_run $s $mode $tag)
			echo "$s $mode $line" >> "$work/runs.log"
			if [ -n "$(field "$line" failed)" ]; then
				echo "0 0 0 $N 0 0" >> "$work/res.$s"
			else
				echo "$(field "$line" msgs_per_s) $(field "$line" mb_per_s)" \
					"$(field "$line" received) $(field "$line" lost) $(field "$line" dup)" \
					"$(field "$line" seconds)" >> "$work/res.$s"
			fi
			if [ $s = chand ]; then
				for q in qm1 qm2; do
					eval "p=\$PID_$q"
					alive "$p" || die "chand $q (pid $p) is gone ($(grep -h 'CHD.*signal' \
						$q/chand.log | tail -n 1 || true)); KEEP=1 keeps $work/$q"
				done
				# The transmission queue must drain back to empty.
				i=0
				while [ "$(jfield ctl1 curdepth display queue QM2)" != 0 ] && [ $i -lt 300 ]; do
					sleep 0.1; i=$((i + 1))
				done
			fi
		done
		r=$((r + 1))
	done
	for s in chand mosquitto; do
		rate=$(cut -d' ' -f1 "$work/res.$s" | median)
		row=$(awk -v r="$rate" '$1 == r { print; exit }' "$work/res.$s")
		set -- $row
		# lost and dup summed over the runs
		lost=$(awk '{ s += $4 } END { print s }' "$work/res.$s")
		dup=$(awk '{ s += $5 } END { print s }' "$work/res.$s")
		printf '%-10s %-11s %9s %8s %9s %6s %6s %8s\n' $s $mode "$1" "$2" "$3" "$lost" "$dup" "$6"
		eval "rate_$s=$rate lost_$s=$lost dup_$s=$dup recv_$s=$3"
	done
	echo "           runs (msgs/s): chand $(cut -d' ' -f1 "$work/res.chand" | tr '\n' ' ' | sed 's/ $//')," \
		"mosquitto $(cut -d' ' -f1 "$work/res.mosquitto" | tr '\n' ' ' | sed 's/ $//')"
	ratio=$(awk -v a="$rate_chand" -v b="$rate_mosquitto" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	echo "           chand/mosquitto ($mode): $ratio"
	summary="$summary$mode $ratio $recv_chand $lost_chand $dup_chand $lost_mosquitto $dup_mosquitto
"
done
echo
last=$(grep '^chand' "$work/runs.log" | tail -n 1)
echo "TLS: clients $(field "$last" tls) $(field "$last" cipher); channel QM1.TO.QM2" \
	"$(jfield ctl1 tls_version status QM1.TO.QM2) $(jfield ctl1 cipher status QM1.TO.QM2)," \
	"$(jfield ctl1 msgs status QM1.TO.QM2) messages in $(jfield ctl1 batches status QM1.TO.QM2) batches"
echo "channel QM1.TO.QM2 BATCHSZ $(jfield ctl1 batchsz display channel QM1.TO.QM2);" \
	"reconnects logged (CHD5011 channel retrying): $(grep -c CHD5011 qm1/chand.log || true)"
echo "route OUT on QM1: matched $(jfield ctl1 matched display route OUT)," \
	"forwarded $(jfield ctl1 forwarded display route OUT), dropped $(jfield ctl1 dropped display route OUT)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PERF" = 1 ]; then
	echo "perf reports: $work/perf.qm1.txt $work/perf.qm2.txt"
fi
echo
echo "goal (issue 9):"
echo "$summary" | awk -v n="$N" 'NF {
	ok = ($2 >= 1.0 && $3 == n && $4 == 0 && $5 == 0)
	printf "%s %s sessions: chand delivered %d of %d (lost %d, dup %d), chand/mosquitto = %s (goal >= 1.0); mosquitto lost %d, dup %d\n",
		(ok ? "MET   " : "MISSED"), $1, $3, n, $4, $5, $2, $6, $7 }'
