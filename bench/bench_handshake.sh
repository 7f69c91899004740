#!/bin/sh
# Full mutual-TLS handshakes per second at one responder agent, and the
# agent's admin latency while N initiators connect at once.
#
#   sh bench/bench_handshake.sh [N]       (N storm initiators, default 100)
#
# Uses build/chand and build/chanctl (BUILD=dir for another build dir);
# builds nothing.  Makes the test PKI (tests/pki/mkpki.sh) in a temp dir and
# starts ONE agent on 127.0.0.1 whose keystore holds an RSA-2048 and an
# ECDSA P-256 personal certificate, with one RCVR channel per key type
# (CERTLABL selecting the certificate, SSLCIPH ANY_TLS13_OR_HIGHER,
# SSLCAUTH REQUIRED).  The initiators are `openssl s_client` processes with
# the channel's SNI (doc/TLS.md "SNI"), a client certificate of the same key
# type and full verification of the agent's chain.
#
# 1. Sustained rate: for each key type COUNT handshakes (default 300), PAR
#    (default 2) clients at a time.  Each client completes the handshake,
#    then sends one line that is not a chand frame: the agent refuses it at
#    the channel negotiation stage ("bad frame from the peer", logged with
#    the channel name, which only happens after a completed handshake).
#    Printed: handshakes/s (wall, clients and agent on the same CPUs), the
#    agent's CPU time per handshake (utime+stime from /proc), and the
#    clients' CPU per handshake (process start-up included).
# 2. Storm: N clients (RSA-2048) started at once, each holding its connection
#    open and silent for HOLD seconds (default 6) after the handshake.
#    Meanwhile `chanctl status` and `chanctl display queue` are each timed
#    ROUNDS times (default 20), and the same before the storm (idle).
#    Responsive means every admin command answers within LIMIT_MS (500).
#
# Every client runs under `timeout`; everything started here is stopped and
# the temp dir removed on exit (KEEP=1 keeps it).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
CHAND=$build/chand
CHANCTL=$build/chanctl
N=${1:-100}
COUNT=${COUNT:-300}
PAR=${PAR:-2}
HOLD=${HOLD:-6}
ROUNDS=${ROUNDS:-20}
LIMIT_MS=${LIMIT_MS:-500}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20}
for b in "$CHAND" "$CHANCTL"; do
	[ -x "$b" ] || { echo "bench: $b not built (make chand chanctl)" >&2; exit 1; }
done
command -v openssl >/dev/null || { echo "bench: openssl not found" >&2; exit 1; }
command -v timeout >/dev/null || { echo "bench: timeout (coreutils) not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-benchhs-XXXXXX")
agent_pid=""
kids=""      # client workers and storm clients (each a `timeout` or a subshell)
cleanup() {
	status=$?
	trap - EXIT INT TERM
	# `timeout` runs its command in its own process group and passes TERM
	# on to the whole group (sleep and openssl).
	for p in $kids; do kill -TERM "$p" 2>/dev/null || true; done
	if [ -n "$agent_pid" ]; then
		kill -TERM "$agent_pid" 2>/dev/null || true
		i=0
		while kill -0 "$agent_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$agent_pid" 2>/dev/null || true
	fi
	for p in $kids; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "bench: files kept in $work"; else rm -rf "$work"; fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
die() { echo "bench: $*" >&2; tail -n 20 "$work/qm/chand.log" >&2 2>/dev/null || true; exit 1; }

free_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 30000 ))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}

# sni CHANNEL SPEC_ID: the SNI an initiator sends (src/tls/sni.c): the
# name's bytes in lower-case hex (names here are short: one label), the
# CipherSpec id label, then chl.chand.
sni() { printf '%s.s%s.chl.chand' "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')" "$2"; }

# CPU time (clock ticks) the agent has used so far: utime + stime.
agent_ticks() { awk '{ print $14 + $15 }' "/proc/$agent_pid/stat"; }
# CPU time (ticks) of this shell's waited-for children: cutime + cstime.
child_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
HZ=$(getconf CLK_TCK)

sh "$top/tests/pki/mkpki.sh" "$work/pki"
pki=$work/pki
PORT=$(free_port)
mkdir -p "$work/qm"
printf 'bench-keystore-pw\n' > "$work/qm/ks.pw"
chmod 600 "$work/qm/ks.pw"
ks=$work/qm/key.db
"$CHANCTL" keystore create -k "$ks" --password-file "$work/qm/ks.pw" --stash >/dev/null
"$CHANCTL" keystore trust -k "$ks" --label root --cert "$pki/root.pem" >/dev/null
"$CHANCTL" keystore trust -k "$ks" --label inter --cert "$pki/inter.pem" >/dev/null
"$CHANCTL" keystore import -k "$ks" --label rsa --cert "$pki/qm2.pem" \
	--key "$pki/qm2.key" --chain "$pki/inter.pem" >/dev/null
"$CHANCTL" keystore import -k "$ks" --label ecdsa --cert "$pki/qm2-ec.pem" \
	--key "$pki/qm2-ec.key" --chain "$pki/inter.pem" >/dev/null
cat > "$work/qm/chand.conf" <<EOF
qmgr = "QM2";
data_dir = "$work/qm";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ( { address = "127.0.0.1"; port = $PORT; } );
keystore = { path = "key.db"; stash = "key.sth"; label = "rsa"; };
admin = { socket = "chand.sock"; mode = "0600"; };
log = { level = "warn"; syslog = false; file = "chand.log"; };
EOF
"$CHAND" -c "$work/qm/chand.conf" -f >>"$work/qm/stdout.log" 2>&1 &
agent_pid=$!
ctl() { "$CHANCTL" -s "$work/qm/chand.sock" "$@"; }
i=0
until ctl display queue >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || die "agent did not start"; sleep 0.1
done

ctl define qlocal HS.Q >/dev/null
for ch in HS.RSA:rsa HS.ECDSA:ecdsa; do
	ctl define channel "${ch%%:*}" --type rcvr --sslciph ANY_TLS13_OR_HIGHER \
		--certlabl "${ch#*:}" --sslcauth required --sslpeer "CN=QM1" >/dev/null
done
SPEC_ID=13   # ANY_TLS13_OR_HIGHER in src/tls/cipherspec.c

# client KIND CHANNEL: one full handshake; the client's own certificate is
# QM1's of KIND (rsa|ecdsa).  Reads what to send from stdin; -brief prints
# "CONNECTION ESTABLISHED" and "Verification: OK" once the handshake is done
# and the agent's chain verified.
client() {
	case $1 in
	rsa) cert=$pki/qm1.pem key=$pki/qm1.key ;;
	ecdsa) cert=$pki/qm1-ec.pem key=$pki/qm1-ec.key ;;
	esac
	timeout -k 2 "$CLIENT_TIMEOUT" openssl s_client -brief -connect "127.0.0.1:$PORT" \
		-servername "$(sni "$2" $SPEC_ID)" -cert "$cert" -key "$key" \
		-cert_chain "$pki/inter.pem" -CAfile "$pki/ca-bundle.pem" -verify_return_error
}

# One handshake, to check the set-up and show what is negotiated.
echo "NOT-A-CHAND-FRAME-0123456789" | client rsa HS.RSA >"$work/probe.out" 2>&1 || true
grep -q '^Verification: OK' "$work/probe.out" || { cat "$work/probe.out" >&2; die "probe handshake failed"; }

echo "chand handshake benchmark: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1),"
echo "  $(uname -sr), $(openssl version | cut -d' ' -f1-2) clients, build $build, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for k in rsa ecdsa; do
	ch=HS.RSA; [ $k = ecdsa ] && ch=HS.ECDSA
	echo "HELLO" | client $k $ch >"$work/probe-$k.out" 2>&1 || true
	printf '  %s: %s, %s, agent signs with %s\n' "$ch" \
		"$(sed -n 's/^Protocol version: //p' "$work/probe-$k.out")" \
		"$(sed -n 's/^Ciphersuite: //p' "$work/probe-$k.out")" \
		"$(sed -n 's/^Signature type: //p' "$work/probe-$k.out")"
done

# log_count CHANNEL PATTERN: agent log lines for CHANNEL matching PATTERN.
log_count() { grep -F "channel=$1 " "$work/qm/chand.log" 2>/dev/null | grep -c "$2" || true; }

# --- 1. sustained rate -------------------------------------------------------
# worker KIND CHANNEL COUNT OUT: COUNT handshakes one after another; appends
# one line per successful handshake to OUT.
worker() {
	j=0
	while [ $j -lt "$3" ]; do
		# Whole output first: a grep -q quitting early could kill the client
		# (SIGPIPE) before it sends its line.
		r=$(echo "NOT-A-CHAND-FRAME-0123456789" | client "$1" "$2" 2>&1) || true
		case $r in *"Verification: OK"*) echo ok >> "$4" ;; esac
		j=$((j + 1))
	done
}

rate() {
	kind=$1 ch=$2 label=$3
	out=$work/ok-$kind
	: > "$out"
	bad0=$(log_count "$ch" 'bad frame from the peer')
	ref0=$(log_count "$ch" 'refused')
	per=$(( (COUNT + PAR - 1) / PAR ))
	total=$((per * PAR))
	a0=$(agent_ticks); c0=$(child_ticks); t0=$(now_ns)
	wk=""
	w=0
	while [ $w -lt "$PAR" ]; do
		worker "$kind" "$ch" "$per" "$out" &
		wk="$wk $!"
		w=$((w + 1))
	done
	kids="$kids $wk"
	for p in $wk; do wait "$p"; done
	t1=$(now_ns); c1=$(child_ticks)
	ok=$(wc -l < "$out")
	# The agent logs each refusal just after the client closes: wait for all.
	i=0
	while [ "$(( $(log_count "$ch" 'bad frame from the peer') - bad0 ))" -lt "$ok" ] && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
	done
	a1=$(agent_ticks)
	logged=$(( $(log_count "$ch" 'bad frame from the peer') - bad0 ))
	refused=$(( $(log_count "$ch" 'refused') - ref0 ))
	[ "$ok" -eq "$total" ] || die "$label: only $ok of $total client handshakes succeeded"
	[ "$logged" -eq "$ok" ] || die "$label: agent logged $logged completed handshakes, clients $ok"
	[ "$refused" -eq 0 ] || die "$label: agent refused $refused handshakes"
	awk -v l="$label" -v n="$ok" -v ns=$((t1 - t0)) -v a=$((a1 - a0)) -v c=$((c1 - c0)) \
		-v hz="$HZ" -v par="$PAR" 'BEGIN {
		s = ns / 1e9; am = a * 1000 / hz / n; cm = c * 1000 / hz / n
		printf "handshakes %s: %.1f/s (responder CPU %.2f ms each, ~%.0f/s per responder core; clients %.1f ms CPU each; %d in %.2f s, %d at a time)\n",
			l, n / s, am, (am > 0 ? 1000 / am : 0), cm, n, s, par }'
}

echo
echo "sustained: $COUNT handshakes per key type, $PAR clients at a time (agent log confirms each)"
rate rsa HS.RSA RSA-2048
rate ecdsa HS.ECDSA "ECDSA P-256"
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 2. storm ----------------------------------------------------------------
# lat_rounds OUT: times `chanctl status` and `chanctl display queue` ROUNDS
# times, one ms figure per line in OUT (and `chanctl explain` in OUT.local).
lat_rounds() {
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		for cmd in status "display queue"; do
			s0=$(now_ns)
			# shellcheck disable=SC2086
			timeout 30 "$CHANCTL" -s "$work/qm/chand.sock" $cmd >/dev/null 2>&1 ||
				echo "FAILED $cmd" >> "$1.err"
			s1=$(now_ns)
			echo $(( (s1 - s0) / 1000000 )) >> "$1"
		done
		# Control: the same binary, no agent involved (the catalogue is
		# compiled in): process start-up under the same CPU contention.
		s0=$(now_ns)
		timeout 30 "$CHANCTL" explain CHD5009 >/dev/null 2>&1 || true
		s1=$(now_ns)
		echo $(( (s1 - s0) / 1000000 )) >> "$1.local"
		r=$((r + 1))
		sleep 0.05
	done
}
# summary FILE: "median M ms, max X ms (K commands)"
summary() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		printf "median %d ms, max %d ms (%d commands)", v[int((NR + 1) / 2)], v[NR], NR }'
}

lat_rounds "$work/lat-idle"
established() { ss -Htn state established "( sport = :$PORT )" 2>/dev/null | wc -l; }

echo
echo "storm: $N RSA-2048 initiators at once, each silent for $HOLD s after its handshake"
a0=$(agent_ticks)
t0=$(now_ns)
lat_rounds "$work/lat-storm" &
latpid=$!
kids="$kids $latpid"
k=0
while [ $k -lt "$N" ]; do
	# sleep keeps stdin open: the client holds the connection, sending nothing.
	timeout -k 2 "$CLIENT_TIMEOUT" sh -c "sleep $HOLD | exec openssl s_client -brief \
		-connect 127.0.0.1:$PORT -servername $(sni HS.RSA $SPEC_ID) -cert $pki/qm1.pem \
		-key $pki/qm1.key -cert_chain $pki/inter.pem -CAfile $pki/ca-bundle.pem \
		-verify_return_error" >"$work/storm.$k" 2>&1 </dev/null &
	kids="$kids $!"
	k=$((k + 1))
done
t_launch=$(now_ns)
# Until every client has its handshake (or HOLD runs out).
peak=0
t_all=""
limit=$((t0 + HOLD * 1000000000))
while [ "$(now_ns)" -lt $limit ]; do
	e=$(established)
	[ "$e" -gt "$peak" ] && peak=$e
	done_hs=$(cat "$work"/storm.* 2>/dev/null | grep -c '^Verification: OK' || true)
	if [ "$done_hs" -ge "$N" ] && [ -z "$t_all" ]; then t_all=$(now_ns); fi
	[ -n "$t_all" ] && [ "$e" -ge "$N" ] && break
	sleep 0.05
done
a1=$(agent_ticks)
wait "$latpid"
done_hs=$(cat "$work"/storm.* 2>/dev/null | grep -c '^Verification: OK' || true)
echo "  clients launched in $(( (t_launch - t0) / 1000000 )) ms; handshakes done: $done_hs of $N$(
	[ -n "$t_all" ] && echo " after $(( (t_all - t0) / 1000000 )) ms"); agent-side established peak $peak;"
echo "  agent CPU $(( (a1 - a0) * 1000 / HZ )) ms for the storm"
echo "chanctl idle:  $(summary "$work/lat-idle")"
echo "chanctl storm: $(summary "$work/lat-storm")"
echo "control, chanctl explain (no agent) idle:  $(summary "$work/lat-idle.local")"
echo "control, chanctl explain (no agent) storm: $(summary "$work/lat-storm.local")"
[ -f "$work/lat-storm.err" ] && echo "  failed admin commands: $(wc -l < "$work/lat-storm.err")"
max=$(sort -n "$work/lat-storm" | tail -n 1)
if [ "$max" -lt "$LIMIT_MS" ] && [ ! -f "$work/lat-storm.err" ]; then
	echo "RESPONSIVE: every admin command during the storm answered within $LIMIT_MS ms"
else
	echo "NOT RESPONSIVE: slowest admin command during the storm took $max ms (limit $LIMIT_MS ms)"
fi
[ "$done_hs" -ge "$N" ] || echo "WARNING: only $done_hs of $N storm handshakes completed within $HOLD s"
# Let the storm clients finish (bounded by HOLD and their timeout).
for p in $kids; do wait "$p" 2>/dev/null || true; done
kids=""
