#!/bin/sh
# A guided tour of one queue manager: build chand (scripts/setup.sh), start
# an agent in a temporary directory, define a queue, put messages with
# priorities, look at the queue, get the messages back, stop the agent.
# Everything is removed at the end and the agent is stopped whatever happens.
#
#   sh scripts/demo-queues.sh          (KEEP=1 keeps the temporary directory;
#                                BUILD=DIR builds in DIR instead of build/)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '\n==> %s\n' "$*"; }
# Shows a command (arguments with spaces quoted), then runs it.
run() {
	line=""
	for a in "$@"; do
		case $a in *" "*) a="'$a'" ;; esac
		line="$line${line:+ }$a"
	done
	printf '  $ %s\n' "$line"
	"$@"
}

say "Building chand (scripts/setup.sh; installs missing packages when run as root)"
build=${BUILD:-$top/build}
log=${TMPDIR:-/tmp}/chand-demo-build.$$.log
if ! sh "$top/scripts/setup.sh" "$build" >"$log" 2>&1; then
	cat "$log" >&2
	echo "demo: the build failed (log above)" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
CHAND=$build/chand
CHANCTL=$build/chanctl

work=$(mktemp -d "${TMPDIR:-/tmp}/chand-demo-XXXXXX")
pid=""
cleanup() {
	status=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "demo: files kept in $work"
	else
		rm -rf "$work"
	fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Writing a configuration for queue manager DEMO.QM in $work"
cat > "$work/chand.conf" <<CONF
qmgr = "DEMO.QM";
data_dir = "$work";
$([ "$(id -u)" -eq 0 ] && echo 'allow_root = true;             # started as root (CI)')
listeners = ();                 # no channels in this demo
log = { level = "info"; file = "chand.log"; };
CONF
sed 's/^/    /' "$work/chand.conf"
run "$CHAND" -c "$work/chand.conf" --check-config

say "Starting the agent in the foreground (in the background of this script)"
printf '  $ %s -c %s -f &\n' "$CHAND" "$work/chand.conf"
"$CHAND" -c "$work/chand.conf" -f 2>"$work/stderr.log" &
pid=$!
i=0
until "$CHANCTL" -c "$work/chand.conf" display queue >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		cat "$work/stderr.log" >&2
		echo "demo: the agent did not start" >&2
		exit 1
	fi
	sleep 0.1
done
grep CHD1001 "$work/chand.log" | sed 's/^/    log: /'

ctl() { run "$CHANCTL" -c "$work/chand.conf" "$@"; }

say "Defining a local queue ORDERS that holds at most 1000 messages"
ctl define qlocal ORDERS --maxdepth 1000 --descr "demo orders"

say "Putting messages: three from stdin (priority 0), then two urgent ones"
printf '  $ printf "order 1\\norder 2\\norder 3\\n" | chanctl put ORDERS\n'
printf 'order 1\norder 2\norder 3\n' | "$CHANCTL" -c "$work/chand.conf" put ORDERS
ctl put ORDERS --priority 9 -m "urgent order A"
ctl put ORDERS --priority 5 --correlid ORDER-42 -m "important order B"

say "The queue now (CURDEPTH is 5)"
ctl display queue

say "Browsing: priority first, then arrival; nothing is removed"
ctl get ORDERS --browse --all

say "One message as JSON (descriptor and body), taken off the queue"
ctl get ORDERS --json

say "Getting the rest"
ctl get ORDERS --all

say "The queue is empty: a get says so and exits 1"
"$CHANCTL" -c "$work/chand.conf" get ORDERS || printf '  (exit status %d, as expected)\n' $?

say "A refusal: with MAXDEPTH 3 the fourth message is refused, and chanctl says how far it got"
ctl alter qlocal ORDERS --maxdepth 3
printf '  $ seq 1 5 | chanctl put ORDERS\n'
seq 1 5 | "$CHANCTL" -c "$work/chand.conf" put ORDERS || printf '  (exit status %d: three were put, the rest not)\n' $?
ctl delete queue ORDERS --purge

say "Stopping the agent (SIGTERM)"
kill -TERM "$pid"
wait "$pid" || true
pid=""
grep CHD1002 "$work/chand.log" | sed 's/^/    log: /'
say "Done. chanctl --help lists every command; see doc/ADMIN.md."
