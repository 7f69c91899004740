#!/bin/sh
# Channel throughput between two real agents on 127.0.0.1, and agent memory
# with many idle channels.
#
#   sh bench/bench_channel.sh [BUILD_DIR]        (default: build/)
#
# Two agents, QM1 and QM2, with keystores made by `chanctl keystore` from
# the test PKI (tests/pki/mkpki.sh), one SDR/RCVR channel over mutual TLS
# (ANY_TLS13_OR_HIGHER, SSLCAUTH REQUIRED, BATCHSZ 50).  For each case the
# transmission queue is preloaded with N messages while the channel is
# stopped; the clock runs from `start channel` until the receiver's queue
# holds all N (CURDEPTH, polled), so it includes the TLS handshake and the
# last commit.  Then IDLE idle mutual-TLS channels are started and the
# agents' resident memory is read from /proc.
#
# Sizes: N_P (persistent 1 KiB, default 20000), N_NP (nonpersistent 1 KiB,
# default 200000), N_BIG (nonpersistent 64 KiB, default 6000), IDLE (200);
# each case runs REPEAT times (3) and the median is reported.
# Targets: persistent >= 25,000 msgs/s, nonpersistent >= 100,000 msgs/s,
# 64 KiB nonpersistent >= 500 MB/s, RSS < 64 MiB with 200 idle channels.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
CHAND=$build/chand
CHANCTL=$build/chanctl
N_P=${N_P:-20000}
N_NP=${N_NP:-200000}
N_BIG=${N_BIG:-6000}
IDLE=${IDLE:-200}
REPEAT=${REPEAT:-3}
for b in "$CHAND" "$CHANCTL"; do
	[ -x "$b" ] || { echo "bench: $b not built (make chand chanctl)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-benchch-XXXXXX")
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

now_ns() { date +%s%N; }
die() { echo "bench: $*" >&2; for q in qm1 qm2; do tail -n 20 "$work/$q/chand.log" >&2 2>/dev/null || true; done; exit 1; }

free_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 30000 ))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}

sh "$top/tests/pki/mkpki.sh" "$work/pki"
P1=$(free_port)
P2=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
for qm in qm1 qm2; do
	QM=$(echo $qm | tr a-z A-Z)
	port=$P1
	[ $qm = qm2 ] && port=$P2
	mkdir -p "$work/$qm"
	printf 'bench-keystore-pw\n' > "$work/$qm/ks.pw"
	chmod 600 "$work/$qm/ks.pw"
	ks=$work/$qm/key.db
	"$CHANCTL" keystore create -k "$ks" --password-file "$work/$qm/ks.pw" --stash >/dev/null
	"$CHANCTL" keystore trust -k "$ks" --label root --cert "$work/pki/root.pem" >/dev/null
	"$CHANCTL" keystore trust -k "$ks" --label inter --cert "$work/pki/inter.pem" >/dev/null
	"$CHANCTL" keystore import -k "$ks" --label $qm --cert "$work/pki/$qm.pem" \
		--key "$work/pki/$qm.key" --chain "$work/pki/inter.pem" >/dev/null
	cat > "$work/$qm/chand.conf" <<EOF
qmgr = "$QM";
data_dir = "$work/$qm";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ( { address = "127.0.0.1"; port = $port; } );
keystore = { path = "key.db"; stash = "key.sth"; label = "$qm"; };
admin = { socket = "chand.sock"; mode = "0600"; };
log = { level = "warn"; syslog = false; file = "chand.log"; };
limits = { max_channels = 1000; };
EOF
	"$CHAND" -c "$work/$qm/chand.conf" -f >>"$work/$qm/stdout.log" 2>&1 &
	pids="$pids $!"
	eval "PID_$qm=$!"
done
ctl1() { "$CHANCTL" -s "$work/qm1/chand.sock" "$@"; }
ctl2() { "$CHANCTL" -s "$work/qm2/chand.sock" "$@"; }
i=0
until ctl1 display queue >/dev/null 2>&1 && ctl2 display queue >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || die "agents did not start"; sleep 0.1
done

# depth CTL QUEUE: CURDEPTH (JSON output, compact or indented).
depth() {
	"$1" --json display queue "$2" | tr ',{}' '\n\n\n' |
		sed -n 's/.*"curdepth": *\([0-9][0-9]*\).*/\1/p' | head -n 1
}
# state CTL CHANNEL
state() {
	"$1" --json status "$2" | tr ',{}' '\n\n\n' |
		sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n 1
}
wait_state() {   # CTL CHANNEL STATE-REGEX SECONDS
	i=0
	until state "$1" "$2" | grep -Eq "^($3)\$"; do
		i=$((i + 1)); [ $i -lt $(($4 * 20)) ] || die "$2 not in $3 (is $(state "$1" "$2"))"
		sleep 0.05
	done
}

ctl1 define qlocal XQ --usage xmitq --maxdepth 999999999 >/dev/null
ctl1 define qremote RQ --rname PAY --rqmname QM2 --xmitq XQ >/dev/null
ctl2 define qlocal PAY --maxdepth 999999999 >/dev/null
ctl1 define channel BENCH --type sdr --conname 127.0.0.1:$P2 --xmitq XQ \
	--sslciph ANY_TLS13_OR_HIGHER --batchsz 50 --sslpeer "CN=QM2" >/dev/null
ctl2 define channel BENCH --type rcvr --sslciph ANY_TLS13_OR_HIGHER --batchsz 50 \
	--sslcauth required --sslpeer "CN=QM1" >/dev/null
# STOPPED while the XMITQ is loaded: a put would otherwise start (trigger) it.
ctl1 stop channel BENCH >/dev/null

# lines N SIZE: N lines of SIZE bytes each (a counter then x's).
lines() {
	awk -v n="$1" -v s="$2" 'BEGIN {
		pad = "x"; while (length(pad) < s - 10) pad = pad pad; pad = substr(pad, 1, s - 10)
		for (i = 0; i < n; i++) printf "%010d%s\n", i, pad }'
}

results=""
# one_run N SIZE PUTFLAGS: preloads, then prints the nanoseconds from
# `start channel` to the last message committed at the receiver.
one_run() {
	n=$1 size=$2 flags=$3
	lines "$n" "$size" | ctl1 put RQ $flags
	d=$(depth ctl1 XQ)
	[ "$d" = "$n" ] || die "preload left XQ at $d, not $n"
	t0=$(now_ns)
	ctl1 start channel BENCH >/dev/null
	limit=$((t0 + 600000000000))
	while :; do
		d=$(depth ctl2 PAY)
		[ "$d" = "$n" ] && break
		[ "$(now_ns)" -lt $limit ] || die "only $d of $n arrived in 600 s"
		# Each poll runs chanctl: poll gently so the agents keep the CPUs.
		sleep 0.05
	done
	t1=$(now_ns)
	ctl1 stop channel BENCH >/dev/null
	wait_state ctl1 BENCH 'STOPPED|INACTIVE' 60
	ctl2 delete queue PAY --purge >/dev/null
	ctl2 define qlocal PAY --maxdepth 999999999 >/dev/null
	echo $((t1 - t0))
}

# run_case LABEL N SIZE PUTFLAGS: REPEAT runs, reports the median.
run_case() {
	label=$1 n=$2 size=$3 flags=$4
	times=""
	r=0
	while [ $r -lt "$REPEAT" ]; do
		times="$times $(one_run "$n" "$size" "$flags")"
		r=$((r + 1))
	done
	line=$(echo $times | tr ' ' '\n' | sort -n | awk -v l="$label" -v n="$n" -v s="$size" '
		{ t[NR] = $1 }
		END {
			ns = t[int((NR + 1) / 2)]; sec = ns / 1e9
			printf "%-28s %8d %9d %8.3f %11.0f %9.1f  (runs %.2f-%.2f s)", l, n, s, sec,
				n / sec, n * s / sec / 1e6, t[1] / 1e9, t[NR] / 1e9 }')
	echo "$line"
	results="$results$line
"
}

echo "chand channel benchmark: $(nproc) CPUs, $(uname -sr), build $build"
printf '%-28s %8s %9s %8s %11s %9s\n' case msgs bytes seconds msgs/s MB/s
run_case "persistent 1 KiB" "$N_P" 1024 ""
run_case "nonpersistent 1 KiB" "$N_NP" 1024 "--nonpersistent"
run_case "nonpersistent 64 KiB" "$N_BIG" 65536 "--nonpersistent"

# Idle channels: each with its own transmission queue, mutual TLS.
s1=$work/idle1.sh
s2=$work/idle2.sh
: > "$s1"; : > "$s2"
k=0
while [ $k -lt "$IDLE" ]; do
	name=$(printf 'IDLE.%03d' $k)
	echo "ctl1 define qlocal X.$name --usage xmitq" >> "$s1"
	echo "ctl1 define channel $name --type sdr --conname 127.0.0.1:$P2 --xmitq X.$name --sslciph ANY_TLS13_OR_HIGHER" >> "$s1"
	echo "ctl1 start channel $name" >> "$s1"
	echo "ctl2 define channel $name --type rcvr --sslciph ANY_TLS13_OR_HIGHER --sslcauth required" >> "$s2"
	k=$((k + 1))
done
. "$s2" >/dev/null
. "$s1" >/dev/null
i=0
while :; do
	up=$(ctl1 --json status 'IDLE.*' | grep -Eo '"state": *"RUNNING"' | wc -l)
	[ "$up" -ge "$IDLE" ] && break
	i=$((i + 1)); [ $i -lt 1200 ] || die "only $up of $IDLE idle channels running"
	sleep 0.1
done
sleep 2
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
r1=$(rss "$PID_qm1")
r2=$(rss "$PID_qm2")
echo "RSS with $IDLE idle mutual-TLS channels: QM1 (senders) $r1 MiB, QM2 (receivers) $r2 MiB"

echo
echo "targets: persistent >= 25000 msgs/s, nonpersistent 1 KiB >= 100000 msgs/s,"
echo "         nonpersistent 64 KiB >= 500 MB/s, RSS < 64 MiB"
echo "$results" | awk -v r1="$r1" -v r2="$r2" '
	/^persistent 1 KiB/ { v = $7; print (v >= 25000 ? "MET " : "MISSED ") "persistent: " v " msgs/s" }
	/^nonpersistent 1 KiB/ { v = $7; print (v >= 100000 ? "MET " : "MISSED ") "nonpersistent: " v " msgs/s" }
	/^nonpersistent 64 KiB/ { v = $8; print (v >= 500 ? "MET " : "MISSED ") "64 KiB nonpersistent: " v " MB/s" }
	END { m = r1 > r2 ? r1 : r2; print (m < 64 ? "MET " : "MISSED ") "RSS: " m " MiB" }'
