#!/bin/sh
# Channel throughput between two real agents on 127.0.0.1, and agent memory
# with many idle channels.
#
#   sh bench/bench_channel.sh [BUILD_DIR]        (default: build/; needs chand,
#                     chanctl, bench/bench_bridge_client, bench/bench_tlsstream)
#
# Two agents, QM1 and QM2, with keystores made by `chanctl keystore` from
# the test PKI (tests/pki/mkpki.sh), one SDR/RCVR channel over mutual TLS
# (ANY_TLS13_OR_HIGHER, SSLCAUTH REQUIRED, BATCHSZ 50).  For each case the
# transmission queue is preloaded with N messages while the channel is
# stopped; the clock runs from `start channel` until the receiving
# channel's last commit (its LSTMSGTI, `last_msg_time` in `chanctl --json
# status`, read once CURDEPTH, polled, says all N are there), so it
# includes the TLS handshake and the last commit.  Then IDLE idle mutual-TLS channels are started and the
# agents' resident memory is read from /proc.
#
# Sizes: N_P (persistent 1 KiB, default 20000), N_NP (nonpersistent 1 KiB,
# default 200000), N_BIG (nonpersistent 64 KiB, default 6000), IDLE (200);
# each case runs REPEAT times (3) and the median is reported.
# Targets: persistent >= 25,000 msgs/s, nonpersistent >= 100,000 msgs/s,
# 64 KiB nonpersistent >= 500 MB/s, RSS < 64 MiB with 200 idle channels.
#
# Issue 11 adds, in the same run:
# - Mosquitto (bench/lib_mosq.sh): brokers A and B with the same test
#   certificates, A bridged to B over mutual TLS, `persistence true`,
#   `max_queued_messages 0`.  bench_bridge_client publishes N_MOSQ_P (default
#   N_P) messages of 1 KiB at QoS 1 (window MOSQ_WINDOW, 100) to A and
#   receives them at B (QoS 1 subscription, clean session); clock from the
#   first publish to the last message received; lost and duplicated are
#   counted.  The same at QoS 0 with N_MOSQ_NP (default N_NP) when the
#   client has --qos (BRIDGE_CLIENT names another client binary).  MOSQ=0
#   skips Mosquitto.
# - TEN (10) SDR/RCVR pairs between the same two agents, each with its own
#   XMITQ and target queue, each preloaded with N_TEN/TEN persistent 1 KiB
#   (N_TEN defaults to N_P: the same total as the one-channel case), all
#   started by one `chanctl run` of ten START CHANNEL lines; clock from
#   before that command to the last
#   message at the receiver.  TEN=0 skips.
# - bench_tlsstream: a bare TLS 1.3 stream (GnuTLS, the same certificates
#   and cipher preference) between two processes on loopback, STREAM_MB
#   (512) MiB in 64 KiB writes, REPEAT times (median): the yardstick of
#   the 64 KiB case.
# - MANY (1000) mutual-TLS channels (the IDLE ones and more) defined and
#   started on one agent; waits (MANY_WAIT, 600 s) until all are RUNNING
#   at both ends per `chanctl --json status`, prints both agents' RSS,
#   then stops 10 senders and checks that both ends' status says so.
#   MANY=0 skips.
# - BUSY_DISK=1: the persistent case again while `dd oflag=direct` writes
#   BUSY_MB (256) MiB again and again in the work directory.
# RUN_LIMIT (600 s): the longest wait for one run.  KEEP=1 keeps the temp
# directory.  PERF_STAT=1 (needs `perf`, Debian package linux-perf) prints,
# for the first run of each case (ten channels too), each thread's CPU time and
# fdatasync calls in both agents (`perf stat --per-thread`; other events
# with PERF_STAT_EVENTS, a perf event list).  PERF_REC=1
# records `perf record -g` of both agents during the same first runs
# (reports perf.SIZEFLAGS.txt and perf.ten.txt in the kept temp directory;
# implies KEEP=1); PERF_REC_ARGS replaces `-g` (`--call-graph dwarf,16384`
# unwinds through SQLite and libc, which `-g` cannot).  PERF_RUN=N profiles the Nth run of each case instead
# of the first (the first may find the agents' memory cold; later ones
# reuse what the agent kept: doc/CHANNELS.md section 9).
# Goals: persistent >= 2.0x Mosquitto QoS 1; ten channels >=
# 1.5x one; nonpersistent 1 KiB >= 3x Mosquitto QoS 0; 64 KiB
# nonpersistent >= 50% of the bare TLS stream; MANY channels RUNNING and
# each agent < 256 MiB RSS.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
CHAND=$build/chand
CHANCTL=$build/chanctl
CLIENT=${BRIDGE_CLIENT:-$build/bench/bench_bridge_client}
TLSSTREAM=$build/bench/bench_tlsstream
N_P=${N_P:-20000}
N_NP=${N_NP:-200000}
N_BIG=${N_BIG:-6000}
IDLE=${IDLE:-200}
REPEAT=${REPEAT:-3}
MOSQ=${MOSQ:-1}
N_MOSQ_P=${N_MOSQ_P:-$N_P}
N_MOSQ_NP=${N_MOSQ_NP:-$N_NP}
MOSQ_WINDOW=${MOSQ_WINDOW:-100}
TEN=${TEN:-10}
N_TEN=${N_TEN:-$N_P}
STREAM_MB=${STREAM_MB:-512}
MANY=${MANY:-1000}
MANY_WAIT=${MANY_WAIT:-600}
BUSY_DISK=${BUSY_DISK:-0}
BUSY_MB=${BUSY_MB:-256}
RUN_LIMIT=${RUN_LIMIT:-600}
PERF_STAT=${PERF_STAT:-0}
PERF_STAT_EVENTS=${PERF_STAT_EVENTS:-task-clock,syscalls:sys_enter_fdatasync}
PERF_REC=${PERF_REC:-0}
PERF_RUN=${PERF_RUN:-1}
RUN_NO=1
[ "$PERF_REC" = 1 ] && KEEP=1
for b in "$CHAND" "$CHANCTL"; do
	[ -x "$b" ] || { echo "bench: $b not built (make chand chanctl)" >&2; exit 1; }
done
if [ ! -x "$TLSSTREAM" ]; then
	echo "bench: $TLSSTREAM not built (make bench/bench_tlsstream): no bare TLS stream" >&2
	TLSSTREAM=""
fi
if [ "$MOSQ" = 1 ] && [ ! -x "$CLIENT" ]; then
	echo "bench: $CLIENT not built (make bench/bench_bridge_client): no Mosquitto reference" >&2
	MOSQ=0
fi
# Every channel runs at once at the end: MANY idle ones, TEN and BENCH.
maxch=$((MANY > IDLE ? MANY : IDLE))
maxch=$((maxch + TEN + 50))
[ $maxch -ge 1000 ] || maxch=1000
# One socket per channel, plus the store and the admin clients.
nofile=$((maxch * 2 + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $nofile ]; then
	ulimit -n $nofile 2>/dev/null ||
		echo "bench: cannot raise the open-file limit to $nofile (is $(ulimit -n))" >&2
fi

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
die() {
	echo "bench: $*" >&2
	tail -n 20 "$work/qm1/chand.log" "$work/qm2/chand.log" "$work/mosqA/mosquitto.log" \
		"$work/mosqB/mosquitto.log" >&2 2>/dev/null || true
	exit 1
}

. "$top/bench/lib_mosq.sh"
if [ "$MOSQ" = 1 ]; then
	mosq_find || MOSQ=0
fi

sh "$top/tests/pki/mkpki.sh" "$work/pki"
mosq_pick_port P1
mosq_pick_port P2
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
limits = { max_channels = $maxch; };
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
# last_commit_ns CTL CHANNEL-PATTERN: the latest LSTMSGTI (last_msg_time,
# set at each commit by the receiving end) of the matching channels, in ns
# since the epoch.  The run's clock stops there rather than at the poll
# that saw the last message: the poll runs every 50 ms, and its lag was
# 10-15% of a 0.4 s run.
last_commit_ns() {
	best=0
	for t in $("$1" --json status "$2" | tr ',{}' '\n\n\n' |
		sed -n 's/.*"last_msg_time": *"\([-0-9T:.]*Z\)".*/\1/p'); do
		ns=$(date -d "$t" +%s%N)
		[ "$ns" -gt "$best" ] && best=$ns
	done
	echo "$best"
}
# run_end T0: the end of a run whose last message is there: the receivers'
# last commit (last_commit_ns, passed as $2), checked to lie between T0 and now.
run_end() {
	now=$(now_ns)
	[ "$2" -ge "$1" ] && [ "$2" -le "$now" ] || die "last commit time $2 not within the run ($1 .. $now)"
	echo "$2"
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
# profile_start TAG / profile_stop TAG LABEL: around run PERF_RUN of a case,
# `perf stat --per-thread` (PERF_STAT=1) and `perf record -g` (PERF_REC=1)
# of both agents, attached a second before the clock starts (perf follows
# the threads made after it attached, so the channels' are counted).
profile_start() {
	pstat="" prec=""
	[ "$RUN_NO" = "$PERF_RUN" ] || return 0
	if [ "$PERF_STAT" = 1 ] && [ ! -e "$work/perfstat.$1.txt" ]; then
		perf stat --per-thread -e "$PERF_STAT_EVENTS" \
			-p "$PID_qm1,$PID_qm2" -o "$work/perfstat.$1.txt" &
		pstat=$!
	fi
	if [ "$PERF_REC" = 1 ] && [ ! -e "$work/perf.$1.data" ]; then
		perf record ${PERF_REC_ARGS:--g} -o "$work/perf.$1.data" -p "$PID_qm1,$PID_qm2" >/dev/null 2>&1 &
		prec=$!
	fi
	[ -z "$pstat$prec" ] || sleep 1
}
profile_stop() {
	if [ -n "$pstat" ]; then
		kill -INT "$pstat"; wait "$pstat" || true
		echo "perf stat of both agents, $2 (thread: CPU ms, events):" >&2
		awk '/^ *chand-/ && $2+0 > 0 { print "  " $1, $2, $3 }' "$work/perfstat.$1.txt" >&2
	fi
	if [ -n "$prec" ]; then
		kill -INT "$prec"; wait "$prec" || true
		perf report -i "$work/perf.$1.data" --no-children --sort pid,sym \
			--percent-limit 0.5 --stdio -g none >"$work/perf.$1.txt" 2>/dev/null || true
		echo "perf report: $work/perf.$1.txt" >&2
	fi
}

# one_run N SIZE PUTFLAGS: preloads, then prints the nanoseconds from
# `start channel` to the last message committed at the receiver.
one_run() {
	n=$1 size=$2 flags=$3
	lines "$n" "$size" | ctl1 put RQ $flags
	d=$(depth ctl1 XQ)
	[ "$d" = "$n" ] || die "preload left XQ at $d, not $n"
	profile_start "$size$flags"
	t0=$(now_ns)
	ctl1 start channel BENCH >/dev/null
	limit=$((t0 + RUN_LIMIT * 1000000000))
	while :; do
		d=$(depth ctl2 PAY)
		[ "$d" = "$n" ] && break
		[ "$(now_ns)" -lt $limit ] || die "only $d of $n arrived in $RUN_LIMIT s"
		# Each poll runs chanctl: poll gently so the agents keep the CPUs.
		sleep 0.05
	done
	t1=$(run_end "$t0" "$(last_commit_ns ctl2 BENCH)")
	profile_stop "$size$flags" "$n x $size $flags"
	ctl1 stop channel BENCH >/dev/null
	wait_state ctl1 BENCH 'STOPPED|INACTIVE' 60
	ctl2 delete queue PAY --purge >/dev/null
	ctl2 define qlocal PAY --maxdepth 999999999 >/dev/null
	echo $((t1 - t0))
}

# run_case LABEL N SIZE PUTFLAGS [RUNNER]: REPEAT runs of RUNNER (one_run),
# reports the median; sets RATE and MBS (msgs/s and MB/s of the median).
run_case() {
	label=$1 n=$2 size=$3 flags=$4 runner=${5:-one_run}
	times=""
	r=0
	while [ $r -lt "$REPEAT" ]; do
		RUN_NO=$((r + 1))
		times="$times $($runner "$n" "$size" "$flags")"
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
	set -- $(echo "$times" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk -v n="$n" -v s="$size" '
		{ t[NR] = $1 } END { sec = t[int((NR + 1) / 2)] / 1e9; printf "%.0f %.1f", n / sec, n * s / sec / 1e6 }')
	RATE=$1 MBS=$2
}

# ---- Mosquitto: A bridged to B with the test PKI (bench/lib_mosq.sh) ----
MOSQ_QOS0=0
if [ "$MOSQ" = 1 ]; then
	mosq_bridge "$work/pki/ca-bundle.pem" "$work/pki/qm1-chain.pem" "$work/pki/qm1.key" \
		"$work/pki/qm2-chain.pem" "$work/pki/qm2.key"
	# QoS 0 needs a client that can publish at QoS 0 across the bridge.
	"$CLIENT" --help 2>&1 | grep -q -- '--qos' && MOSQ_QOS0=1
fi

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# mosq_case LABEL QOS N: REPEAT runs of bench_bridge_client through the
# Mosquitto bridge; prints a row as run_case does, with lost and dup summed
# over the runs; sets RATE and MBS (median run) and MLOST, MDUP.
mosq_tag=0
mosq_case() {
	label=$1 qos=$2 n=$3
	: > "$work/mosq.res"
	r=0
	while [ $r -lt "$REPEAT" ]; do
		mosq_tag=$((mosq_tag + 1))
		qflag=""
		[ "$qos" = 1 ] || qflag="--qos $qos"
		rc=0
		timeout -k 5 $((RUN_LIMIT + 60)) "$CLIENT" --pub 127.0.0.1:$MOSQ_A \
			--sub 127.0.0.1:$MOSQ_B --cafile "$work/pki/ca-bundle.pem" -n "$n" -s 1024 \
			-w "$MOSQ_WINDOW" --timeout "$RUN_LIMIT" --idle-end 3 \
			--topic "bench/channel/$mosq_tag" $qflag \
			>"$work/mosq.$mosq_tag.out" 2>"$work/mosq.$mosq_tag.err" || rc=$?
		res=$(grep '^RESULT' "$work/mosq.$mosq_tag.out" || true)
		if [ -z "$res" ]; then
			cat "$work/mosq.$mosq_tag.err" >&2
			die "$label: the Mosquitto client failed (exit $rc)"
		fi
		[ $rc = 0 ] || { echo "bench: $label: the client reports a loss or a failure:" >&2;
			cat "$work/mosq.$mosq_tag.err" >&2; }
		echo "$(field "$res" seconds) $(field "$res" received) $(field "$res" lost)" \
			"$(field "$res" dup)" >> "$work/mosq.res"
		r=$((r + 1))
	done
	# The median by rate: received / seconds.
	line=$(awk '{ print ($1 > 0 ? $2 / $1 : 0), $0 }' "$work/mosq.res" | sort -n |
		awk -v l="$label" -v n="$n" '
		{ r[NR] = $1; sec[NR] = $2; got[NR] = $3; lost += $4; dup += $5 }
		END {
			m = int((NR + 1) / 2)
			printf "%-28s %8d %9d %8.3f %11.0f %9.1f  (runs %.0f-%.0f msgs/s; lost %d, dup %d)", l, n, 1024,
				sec[m], r[m], r[m] * 1024 / 1e6, r[1], r[NR], lost, dup }')
	echo "$line"
	RATE=$(awk '{ print ($1 > 0 ? $2 / $1 : 0) }' "$work/mosq.res" | sort -n |
		awk '{ r[NR] = $1 } END { printf "%.0f", r[int((NR + 1) / 2)] }')
	MBS=$(awk -v r="$RATE" 'BEGIN { printf "%.1f", r * 1024 / 1e6 }')
	MLOST=$(awk '{ s += $3 } END { print s + 0 }' "$work/mosq.res")
	MDUP=$(awk '{ s += $4 } END { print s + 0 }' "$work/mosq.res")
}

echo "chand channel benchmark: $(nproc) CPUs, $(uname -sr), build $build"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); work directory on" \
	"$(df -PT "$work" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
if [ "$MOSQ" = 1 ]; then
	echo "Mosquitto: $MOSQ_VERSION, bridge over mutual TLS, persistence true, max_queued_messages 0"
else
	echo "Mosquitto: not run"
fi
printf '%-28s %8s %9s %8s %11s %9s\n' case msgs bytes seconds msgs/s MB/s
run_case "persistent 1 KiB" "$N_P" 1024 ""
R_P=$RATE
R_MQ1="" R_MQ0="" R_STREAM="" R_TEN="" R_BUSY=""
if [ "$MOSQ" = 1 ]; then
	mosq_case "mosquitto QoS 1 1 KiB" 1 "$N_MOSQ_P"
	R_MQ1=$RATE L_MQ1=$MLOST D_MQ1=$MDUP
fi
run_case "nonpersistent 1 KiB" "$N_NP" 1024 "--nonpersistent"
R_NP=$RATE
if [ "$MOSQ_QOS0" = 1 ]; then
	mosq_case "mosquitto QoS 0 1 KiB" 0 "$N_MOSQ_NP"
	R_MQ0=$RATE L_MQ0=$MLOST D_MQ0=$MDUP
elif [ "$MOSQ" = 1 ]; then
	echo "mosquitto QoS 0 1 KiB: not run ($CLIENT has no --qos)"
fi
run_case "nonpersistent 64 KiB" "$N_BIG" 65536 "--nonpersistent"
B_BIG=$MBS
if [ -n "$TLSSTREAM" ]; then
	# REPEAT runs, the median reported, as for the cases it is compared
	# with (one run of it varied from 1,470 to 2,220 MB/s on one machine)
	: >"$work/stream.res"
	r=0
	while [ $r -lt "$REPEAT" ]; do
		"$TLSSTREAM" -m "$STREAM_MB" "$work/pki" | grep '^RESULT' >>"$work/stream.res" ||
			die "bench_tlsstream failed"
		r=$((r + 1))
	done
	res=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^mb_per_s=/) { split($i, kv, "="); print kv[2], $0 } }' \
		"$work/stream.res" | sort -n | awk -v m=$(((REPEAT + 1) / 2)) 'NR == m { $1 = ""; print }')
	R_STREAM=$(field "$res" mb_per_s)
	printf '%-28s %8s %9d %8s %11s %9s  (%s %s, 2 processes; runs %s MB/s)\n' \
		"bare TLS stream 64 KiB" - $((STREAM_MB * 1048576)) "$(field "$res" seconds)" - \
		"$R_STREAM" "$(field "$res" tls)" "$(field "$res" cipher)" \
		"$(sed 's/.*mb_per_s=\([0-9.]*\).*/\1/' "$work/stream.res" | sort -n | tr '\n' ' ' | sed 's/ $//')"
fi

# depth_sum CTL PATTERN: CURDEPTH summed over the queues that match.
depth_sum() {
	"$1" --json display queue "$2" | tr ',{}' '\n\n\n' |
		sed -n 's/.*"curdepth": *\([0-9][0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
# Ten channels between the same agents, each with its own queues.
if [ "$TEN" -gt 0 ]; then
	k=0
	while [ $k -lt "$TEN" ]; do
		t=$(printf 'TEN.%02d' $k)
		ctl1 define qlocal XQ.$t --usage xmitq --maxdepth 999999999 >/dev/null
		ctl1 define qremote RQ.$t --rname PAY.$t --rqmname QM2 --xmitq XQ.$t >/dev/null
		ctl2 define qlocal PAY.$t --maxdepth 999999999 >/dev/null
		ctl1 define channel $t --type sdr --conname 127.0.0.1:$P2 --xmitq XQ.$t \
			--sslciph ANY_TLS13_OR_HIGHER --batchsz 50 --sslpeer "CN=QM2" >/dev/null
		ctl2 define channel $t --type rcvr --sslciph ANY_TLS13_OR_HIGHER --batchsz 50 \
			--sslcauth required --sslpeer "CN=QM1" >/dev/null
		ctl1 stop channel $t >/dev/null
		k=$((k + 1))
	done
fi
# ten_run N SIZE PUTFLAGS: N/TEN messages on each XMITQ, all channels
# started at once; prints the nanoseconds to the last message committed.
ten_run() {
	each=$(($1 / TEN)) size=$2 flags=$3
	n=$((each * TEN))
	k=0
	while [ $k -lt "$TEN" ]; do
		lines "$each" "$size" | ctl1 put RQ.$(printf 'TEN.%02d' $k) $flags
		k=$((k + 1))
	done
	d=$(depth_sum ctl1 'XQ.TEN.*')
	[ "$d" = "$n" ] || die "preload left the ten XMITQs at $d, not $n"
	# one chanctl for the ten starts, as an operator's MQSC script would
	# (ten chanctl processes cost the two CPUs more than the agents'
	# start of ten channels)
	k=0
	: >"$work/ten_start.mqsc"
	while [ $k -lt "$TEN" ]; do
		echo "START CHANNEL($(printf 'TEN.%02d' $k))" >>"$work/ten_start.mqsc"
		k=$((k + 1))
	done
	profile_start ten
	t0=$(now_ns)
	ctl1 run "$work/ten_start.mqsc" >/dev/null || die "start channel failed"
	limit=$((t0 + RUN_LIMIT * 1000000000))
	while :; do
		d=$(depth_sum ctl2 'PAY.TEN.*')
		[ "$d" = "$n" ] && break
		[ "$(now_ns)" -lt $limit ] || die "only $d of $n arrived on ten channels in $RUN_LIMIT s"
		sleep 0.05
	done
	t1=$(run_end "$t0" "$(last_commit_ns ctl2 'TEN.*')")
	profile_stop ten "$n x $size on $TEN channels"
	k=0
	while [ $k -lt "$TEN" ]; do
		t=$(printf 'TEN.%02d' $k)
		ctl1 stop channel $t >/dev/null
		wait_state ctl1 $t 'STOPPED|INACTIVE' 60
		ctl2 delete queue PAY.$t --purge >/dev/null
		ctl2 define qlocal PAY.$t --maxdepth 999999999 >/dev/null
		k=$((k + 1))
	done
	echo $((t1 - t0))
}
if [ "$TEN" -gt 0 ]; then
	run_case "$TEN chls, persistent 1 KiB" $(( (N_TEN / TEN) * TEN )) 1024 "" ten_run
	R_TEN=$RATE
fi

# Busy disk: the persistent case while dd writes with O_DIRECT.
if [ "$BUSY_DISK" = 1 ]; then
	ddflag=oflag=direct
	dd if=/dev/zero of="$work/dd" bs=1M count=1 $ddflag 2>/dev/null || ddflag=conv=fsync
	(
		while [ ! -e "$work/dd.stop" ]; do
			dd if=/dev/zero of="$work/dd" bs=1M count="$BUSY_MB" $ddflag 2>/dev/null || exit 1
		done
	) &
	ddpid=$!
	pids="$pids $ddpid"
	sleep 1
	run_case "busy disk: persistent 1 KiB" "$N_P" 1024 ""
	R_BUSY=$RATE
	touch "$work/dd.stop"
	wait $ddpid 2>/dev/null || echo "bench: the dd loop failed ($ddflag)" >&2
	rm -f "$work/dd"
	echo "  (busy disk: dd bs=1M count=$BUSY_MB $ddflag in a loop; quiet $R_P msgs/s, busy $R_BUSY msgs/s)"
fi

# Idle channels: each with its own transmission queue, mutual TLS.
# define_idle FROM TO: defines channels IDLE.FROM .. IDLE.(TO-1) (MQSC
# through `chanctl run`, both agents at once), then starts the senders
# without waiting for each; sets T_DEF (seconds the definitions took) and
# T_START (when the first start was requested, ns).
define_idle() {
	k=$1
	: > "$work/idle1.mqsc"; : > "$work/idle2.mqsc"
	while [ $k -lt "$2" ]; do
		name=$(printf 'IDLE.%03d' $k)
		echo "DEFINE QLOCAL(X.$name) USAGE(XMITQ)" >> "$work/idle1.mqsc"
		echo "DEFINE CHANNEL($name) CHLTYPE(SDR) CONNAME('127.0.0.1($P2)') XMITQ(X.$name)" \
			"SSLCIPH(ANY_TLS13_OR_HIGHER)" >> "$work/idle1.mqsc"
		echo "DEFINE CHANNEL($name) CHLTYPE(RCVR) SSLCIPH(ANY_TLS13_OR_HIGHER) SSLCAUTH(REQUIRED)" \
			>> "$work/idle2.mqsc"
		k=$((k + 1))
	done
	_t=$(now_ns)
	ctl2 run "$work/idle2.mqsc" >"$work/idle2.out" 2>&1 &
	_d2=$!
	ctl1 run "$work/idle1.mqsc" >"$work/idle1.out" 2>&1 ||
		{ cat "$work/idle1.out" >&2; die "defining senders failed"; }
	wait $_d2 || { cat "$work/idle2.out" >&2; die "defining receivers failed"; }
	T_START=$(now_ns)
	T_DEF=$(( (T_START - _t) / 1000000000 ))
	k=$1
	while [ $k -lt "$2" ]; do
		ctl1 start channel "$(printf 'IDLE.%03d' $k)" --no-wait >/dev/null
		k=$((k + 1))
	done
}
# states CTL: "STATE=count ..." over the IDLE.* channels.
states() {
	"$1" --json status 'IDLE.*' | grep -Eo '"state": *"[A-Z]*"' | sed 's/.*"\([A-Z]*\)"$/\1/' |
		sort | uniq -c | awk '{ printf "%s%s=%d", (NR > 1 ? " " : ""), $2, $1 }'
}
running() { "$1" --json status 'IDLE.*' | grep -Eo '"state": *"RUNNING"' | wc -l; }
# wait_running COUNT SECONDS: until COUNT IDLE.* channels are RUNNING at both ends.
wait_running() {
	i=0
	while :; do
		up1=$(running ctl1)
		up2=$(running ctl2)
		[ "$up1" -ge "$1" ] && [ "$up2" -ge "$1" ] && break
		i=$((i + 1)); [ $i -lt $(($2 * 2)) ] ||
			die "only $up1 (QM1) / $up2 (QM2) of $1 channels running after $2 s: $(states ctl1)"
		sleep 0.5
	done
}
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

define_idle 0 "$IDLE"
wait_running "$IDLE" 120
# Idle: the agents keep memory freed by the cases above for reuse until
# it has gone unused for 10 s (doc/CHANNELS.md section 9), so measure
# after that.
sleep 12
r1=$(rss "$PID_qm1")
r2=$(rss "$PID_qm2")
echo "RSS with $IDLE idle mutual-TLS channels: QM1 (senders) $r1 MiB, QM2 (receivers) $r2 MiB"

# Many channels: IDLE.IDLE .. IDLE.(MANY-1) as well.
many_ok="" m1="" m2=""
if [ "$MANY" -gt "$IDLE" ]; then
	define_idle "$IDLE" "$MANY"
	wait_running "$MANY" "$MANY_WAIT"
	t1=$(now_ns)
	sleep 2
	m1=$(rss "$PID_qm1")
	m2=$(rss "$PID_qm2")
	s1=$(states ctl1)
	s2=$(states ctl2)
	echo "RSS with $MANY mutual-TLS channels: QM1 (senders) $m1 MiB, QM2 (receivers) $m2 MiB"
	echo "  $((MANY - IDLE)) more defined in $T_DEF s; all $MANY RUNNING at both ends" \
		"$(( (t1 - T_START) / 1000000000 )) s after the first start"
	echo "  status: QM1 $s1; QM2 $s2"
	# Truthful: stop ten senders; both ends must say so.
	k=0
	while [ $k -lt 10 ]; do
		ctl1 stop channel "$(printf 'IDLE.%03d' $k)" >/dev/null
		k=$((k + 1))
	done
	i=0
	while :; do
		st1=$(ctl1 --json status 'IDLE.*' | grep -Eo '"state": *"STOPPED"' | wc -l)
		up1=$(running ctl1)
		up2=$(running ctl2)
		[ "$st1" -eq 10 ] && [ "$up1" -eq $((MANY - 10)) ] && [ "$up2" -eq $((MANY - 10)) ] && break
		i=$((i + 1))
		[ $i -lt 120 ] || break
		sleep 0.5
	done
	echo "  after stopping 10 senders: QM1 $(states ctl1); QM2 $(states ctl2)"
	many_ok=1
	[ "$s1" = "RUNNING=$MANY" ] && [ "$s2" = "RUNNING=$MANY" ] || many_ok=0
	[ "$st1" -eq 10 ] && [ "$up1" -eq $((MANY - 10)) ] && [ "$up2" -eq $((MANY - 10)) ] || many_ok=0
fi

echo
echo "targets: persistent >= 25000 msgs/s, nonpersistent 1 KiB >= 100000 msgs/s,"
echo "         nonpersistent 64 KiB >= 500 MB/s, RSS < 64 MiB"
echo "$results" | awk -v r1="$r1" -v r2="$r2" '
	/^persistent 1 KiB/ { v = $7; print (v >= 25000 ? "MET " : "MISSED ") "persistent: " v " msgs/s" }
	/^nonpersistent 1 KiB/ { v = $7; print (v >= 100000 ? "MET " : "MISSED ") "nonpersistent: " v " msgs/s" }
	/^nonpersistent 64 KiB/ { v = $8; print (v >= 500 ? "MET " : "MISSED ") "64 KiB nonpersistent: " v " MB/s" }
	END { m = r1 > r2 ? r1 : r2; print (m < 64 ? "MET " : "MISSED ") "RSS: " m " MiB" }'

echo
echo "issue 11 goals (same run):"
# goal OK TEXT
goal() { if [ "$1" = 1 ]; then echo "MET     $2"; else echo "MISSED  $2"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }' && echo 1 || echo 0; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
if [ -n "$R_MQ1" ]; then
	x=$(ratio "$R_P" "$R_MQ1")
	ok=$(ge "$x" 2.0)
	[ "$L_MQ1" = 0 ] && [ "$D_MQ1" = 0 ] || echo "        (Mosquitto QoS 1 lost $L_MQ1, duplicated $D_MQ1)"
	goal "$ok" "persistent 1 KiB: chand $R_P msgs/s / Mosquitto QoS 1 $R_MQ1 msgs/s = $x (goal >= 2.0)"
else
	echo "NOT RUN persistent 1 KiB vs Mosquitto QoS 1 (no Mosquitto)"
fi
if [ -n "$R_TEN" ]; then
	x=$(ratio "$R_TEN" "$R_P")
	goal "$(ge "$x" 1.5)" "$TEN channels: $R_TEN msgs/s aggregate / one channel $R_P msgs/s = $x (goal >= 1.5)"
else
	echo "NOT RUN ten channels (TEN=0)"
fi
if [ -n "$R_MQ0" ]; then
	x=$(ratio "$R_NP" "$R_MQ0")
	[ "$L_MQ0" = 0 ] && [ "$D_MQ0" = 0 ] || echo "        (Mosquitto QoS 0 lost $L_MQ0, duplicated $D_MQ0)"
	goal "$(ge "$x" 3.0)" "nonpersistent 1 KiB: chand $R_NP msgs/s / Mosquitto QoS 0 $R_MQ0 msgs/s = $x (goal >= 3.0)"
else
	echo "NOT RUN nonpersistent 1 KiB vs Mosquitto QoS 0 (no Mosquitto, or $CLIENT has no --qos)"
fi
if [ -n "$R_STREAM" ]; then
	x=$(awk -v a="$B_BIG" -v b="$R_STREAM" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
	goal "$(ge "$x" 50)" "64 KiB nonpersistent: $B_BIG MB/s = $x% of the bare TLS stream's $R_STREAM MB/s (goal >= 50%)"
else
	echo "NOT RUN 64 KiB vs bare TLS stream (bench_tlsstream not built)"
fi
if [ -n "$many_ok" ]; then
	ok=$many_ok
	awk -v a="$m1" -v b="$m2" 'BEGIN { exit !(a < 256 && b < 256) }' || ok=0
	goal "$ok" "$MANY mutual-TLS channels: QM1 $m1 MiB, QM2 $m2 MiB (goal < 256 MiB), status truthful: $([ "$many_ok" = 1 ] && echo yes || echo NO)"
else
	echo "NOT RUN many channels (MANY=$MANY, not above IDLE=$IDLE)"
fi
if [ -n "$R_BUSY" ]; then
	echo "REPORT  busy disk: persistent 1 KiB $R_BUSY msgs/s, quiet $R_P msgs/s ($(ratio "$R_BUSY" "$R_P") of quiet)"
else
	echo "NOT RUN busy disk (BUSY_DISK=1 runs it)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
