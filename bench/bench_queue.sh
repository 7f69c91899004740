#!/bin/sh
# Queue throughput through the real admin path: one agent in a temp dir,
# N persistent messages of SIZE bytes put by ONE `chanctl put` reading
# stdin, then drained by ONE `chanctl get --all`, plus the agent's idle RSS.
#
#   bench/bench_queue.sh [BUILD_DIR] [N] [SIZE]     (defaults: build 100000 1024)
#
# Targets (doc/PERFORMANCE.md): >= 20,000 msgs/s for both, idle RSS < 8 MiB.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
n=${2:-100000}
size=${3:-1024}
chand=$build/chand
chanctl=$build/chanctl
[ -x "$chand" ] && [ -x "$chanctl" ] || { echo "bench: build first (scripts/setup.sh $build)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/chand-bench-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

cat > "$dir/chand.conf" <<EOF
qmgr = "BENCH";
data_dir = "$dir";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ();
admin = { socket = "$dir/chand.sock"; mode = "0600"; };
log = { level = "info"; syslog = false; file = "$dir/chand.log"; };
EOF
"$chand" -c "$dir/chand.conf" -f 2>/dev/null &
pid=$!
i=0
until "$chanctl" -s "$dir/chand.sock" display queue >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: agent did not start" >&2; cat "$dir/chand.log" >&2; exit 1; }
	sleep 0.1
done
"$chanctl" -s "$dir/chand.sock" define qlocal BENCH.Q --maxdepth $((n + 10)) >/dev/null
sleep 0.5
rss_idle=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")

# N distinct lines of exactly SIZE bytes (SIZE-1 characters + newline... the
# newline is the separator, the body is SIZE bytes).
awk -v n="$n" -v size="$size" 'BEGIN {
	pad = ""; for (i = 0; i < size; i++) pad = pad "x";
	for (i = 1; i <= n; i++) { s = sprintf("%09d", i); print s substr(pad, 1, size - length(s)); }
}' > "$dir/input"

now() { date +%s.%N; }
# rate N T0 T1 SIZE
rate() { awk -v n="$1" -v a="$2" -v b="$3" -v s="$4" 'BEGIN { t = b - a; printf "%d msgs/s, %.1f MB/s (%.2f s)", n / t, n * s / t / 1e6, t }'; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now)
"$chanctl" -s "$dir/chand.sock" put BENCH.Q < "$dir/input"
t1=$(now)
depth=$("$chanctl" -s "$dir/chand.sock" --json display queue BENCH.Q | awk -F': ' '/"curdepth"/ { gsub(/,/, "", $2); print $2 }')
[ "$depth" = "$n" ] || { echo "bench: expected $n messages on the queue, found $depth" >&2; exit 1; }
t2=$(now)
"$chanctl" -s "$dir/chand.sock" get BENCH.Q --all > "$dir/output"
t3=$(now)
got=$(wc -l < "$dir/output")
[ "$got" -eq "$n" ] || { echo "bench: got $got messages, expected $n" >&2; exit 1; }
cmp -s "$dir/input" "$dir/output" || { echo "bench: output differs from input" >&2; exit 1; }

sleep 1
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")

echo "chand queue benchmark: $n persistent messages of $size bytes, one chanctl each way"
echo "machine: $(nproc) CPU, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "wire: JSON + raw attachment (bodies never in JSON); jansson $(pkg-config --modversion jansson 2>/dev/null || echo '?')"
echo "put (stdin, persistent): $(rate "$n" "$t0" "$t1" "$size")"
echo "get --all:               $(rate "$n" "$t2" "$t3" "$size")"
echo "agent RSS: idle after start ${rss_idle} KiB, idle after the run ${rss} KiB"
echo "load average before the run: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
