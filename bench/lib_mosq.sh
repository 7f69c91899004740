# lib_mosq.sh: the Mosquitto reference of the benchmarks, sourced by
# bench/bench_bridge.sh and bench/bench_channel.sh (POSIX sh).
#
# Brokers A and B (Debian's mosquitto, installed with apt-get when missing
# and running as root) with `persistence true`, `max_queued_messages 0` (no
# queue limit: nothing may be dropped), other settings default.  A bridges
# `topic bench/# out 1` to a listener of B that requires a client
# certificate (bridge_cafile/certfile/keyfile: mutual TLS, as chand's
# channel).  Mosquitto keeps its queues in memory and writes them to disk
# only at autosave or exit.
#
# The caller provides: $work (its temp directory; the brokers live in
# $work/mosqA and $work/mosqB), $pids (the processes its EXIT trap stops;
# the brokers are added), and die MESSAGE.

# mosq_find: sets MOSQUITTO (the broker) and MOSQ_VERSION; returns 1 with a
# message on stderr when there is none and it cannot be installed.
mosq_find() {
	MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
	if [ ! -x "$MOSQUITTO" ]; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "bench: mosquitto is not installed (apt-get install mosquitto as root)" >&2
			return 1
		fi
		echo "bench: installing Mosquitto (apt-get install -y mosquitto)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto mosquitto-clients >/dev/null ||
			{ echo "bench: could not install mosquitto" >&2; return 1; }
		MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
		[ -x "$MOSQUITTO" ] || return 1
	fi
	MOSQ_VERSION=$("$MOSQUITTO" -h 2>/dev/null | head -n 1)
}

# mosq_pick_port VAR: a port under the ephemeral range (no outgoing
# connection holds it) that nothing listens on and no caller of this
# function has picked yet.
used_ports=${used_ports:-}
mosq_pick_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 + 20000 ))
		case " $used_ports " in *" $p "*) continue ;; esac
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && continue
		used_ports="$used_ports $p"
		eval "$1=$p"
		return
	done
}

mosq_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
mosq_wait_listen() {   # PORT WHAT
	_i=0
	until mosq_listening "$1"; do
		_i=$((_i + 1)); [ $_i -lt 150 ] || die "$2 not listening on $1"; sleep 0.1
	done
}

# mosq_bridge CAFILE CERT_A KEY_A CERT_B KEY_B: starts B, then A bridged to
# it, and waits until the bridge is connected.  Keys must be unencrypted.
# Sets MOSQ_A and MOSQ_B (the client listeners, TLS, server authentication
# only) and MOSQ_PID_A, MOSQ_PID_B.
mosq_bridge() {
	_ca=$1 _ca_cert=$2 _ca_key=$3 _cb_cert=$4 _cb_key=$5
	mosq_pick_port MOSQ_A; mosq_pick_port MOSQ_B; mosq_pick_port _mbb
	_root=$([ "$(id -u)" -eq 0 ] && echo 'user root' || true)
	mkdir -p "$work/mosqA" "$work/mosqB"
	cat > "$work/mosqB/mosquitto.conf" <<EOF
$_root
persistence true
persistence_location $work/mosqB/
max_queued_messages 0
log_dest file $work/mosqB/mosquitto.log
# clients
listener $MOSQ_B 127.0.0.1
cafile $_ca
certfile $_cb_cert
keyfile $_cb_key
allow_anonymous true
# the bridge from A: mutual TLS
listener $_mbb 127.0.0.1
cafile $_ca
certfile $_cb_cert
keyfile $_cb_key
require_certificate true
allow_anonymous true
EOF
	cat > "$work/mosqA/mosquitto.conf" <<EOF
$_root
persistence true
persistence_location $work/mosqA/
max_queued_messages 0
log_dest file $work/mosqA/mosquitto.log
listener $MOSQ_A 127.0.0.1
cafile $_ca
certfile $_ca_cert
keyfile $_ca_key
allow_anonymous true

connection bench-bridge
address 127.0.0.1:$_mbb
remote_clientid bench-bridge-A
topic bench/# out 1
bridge_cafile $_ca
bridge_certfile $_ca_cert
bridge_keyfile $_ca_key
EOF
	"$MOSQUITTO" -c "$work/mosqB/mosquitto.conf" >"$work/mosqB/stdout.log" 2>&1 &
	MOSQ_PID_B=$!
	pids="$pids $!"
	mosq_wait_listen $MOSQ_B "mosquitto B"
	"$MOSQUITTO" -c "$work/mosqA/mosquitto.conf" >"$work/mosqA/stdout.log" 2>&1 &
	MOSQ_PID_A=$!
	pids="$pids $!"
	mosq_wait_listen $MOSQ_A "mosquitto A"
	_i=0
	until grep -q 'as bench-bridge-A' "$work/mosqB/mosquitto.log" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -lt 150 ] || die "the Mosquitto bridge did not connect (logs below)"
		sleep 0.1
	done
}
