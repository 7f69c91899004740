#!/bin/sh
# The whole test suite: sets up and builds in build/ (scripts/setup.sh),
# runs `make check`, then builds again with AddressSanitizer+UBSan in
# build-asan/ and runs the same tests.  Ends with
# "N passed, N failed, N skipped".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
status=0
# Criterion 2.4 leaves a skipped test (cr_skip_test: promtool absent, not
# root...) out of its Synthesis line and names it only at this verbosity
# ("[SKIP] suite::test: reason"), so the totals below need it.
CRITERION_VERBOSITY_LEVEL=1; export CRITERION_VERBOSITY_LEVEL

sh scripts/setup.sh "$top/build" || exit 1
# What the tests use beyond the build (real MQTT clients, libFuzzer):
# installed here when missing, as root.
missing=""
for p in $(sh scripts/setup.sh --list-test-packages); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "test: installing$missing"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
			>/dev/null || echo "test: apt-get failed for$missing" >&2
	else
		echo "test: missing packages:$missing (tests that need them fail)" >&2
	fi
fi
# One test PKI and one set of seed-document PKIs for every suite of both
# runs (each integration binary otherwise makes its own: ~4 s of RSA key
# generation apiece; tests/integ/chan_helpers.c and mqtt_helpers.c).  The
# suites only read them.  If making them fails, each binary makes its own.
shared=$(mktemp -d "${TMPDIR:-/tmp}/chand-testpki-XXXXXX") || exit 1
trap 'rm -rf "$shared"' EXIT
if sh tests/pki/mkpki.sh "$shared/pki" >"$shared/mkpki.out" 2>&1; then
	CHAN_PKI_DIR=$shared/pki; export CHAN_PKI_DIR
fi
if sh tests/pki/mkseed.sh "$shared/seed" 127.0.0.1 >"$shared/mkseed.out" 2>&1; then
	MQTT_SEED_DIR=$shared/seed; export MQTT_SEED_DIR
fi

make -C build -j2 check || status=1

sh scripts/setup.sh "$top/build-asan" --enable-asan >/dev/null || status=1
# The channel, telemetry and metrics suites (those that link
# tests/integ/chan_helpers.c) drive the sanitized agents with the chanctl
# built and tested above: an ASan chanctl costs ~80 ms of CPU per command,
# and those suites run thousands of commands whose subject is the agent.
# The suites about chanctl itself (ops, queues, messages, docs,
# walkthrough, keystore...) run the ASan one.
CHAND_TEST_DRIVER_CHANCTL=$top/build/chanctl \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	make -C build-asan -j2 check || status=1

# The libFuzzer targets (frame codec, SSLPEER parser, MQTT codec, topic
# matching) for a bounded time each (clang's libFuzzer, installed above).
fuzz_status=0
FUZZ_BUILD_DIR="$top/build-fuzz" sh fuzz/run.sh "${FUZZ_SECONDS:-10}" > build/fuzz.out 2>&1 || fuzz_status=$?
grep -a '^=== fuzz_' build/fuzz.out

# Totals from every Criterion log of both builds. A skipped test is
# counted as skipped, never as passed.
passed=0; failed=0; skipped=0
case $fuzz_status in
	0) passed=$(grep -ac '^=== fuzz_.* ok$' build/fuzz.out) ;;
	2) echo "fuzz: not run (no clang/libFuzzer):"; cat build/fuzz.out; failed=1; status=1 ;;
	*) echo "fuzz: a target crashed:"; cat build/fuzz.out; failed=1; status=1 ;;
esac
for log in $(find build build-asan -name '*.log' ! -name 'test-suite.log' ! -name 'config.log' 2>/dev/null); do
	line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
	[ -n "$line" ] || continue
	p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
	c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
	s=$(echo "$line" | sed -n 's/.*Skipped: \([0-9]*\).*/\1/p')
	k=$(grep -ac '^\[SKIP\]' "$log")
	[ -z "$s" ] || k=$s   # a Criterion that counts them itself
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${c:-0})); skipped=$((skipped + k))
	if [ "${f:-0}" != 0 ] || [ "${c:-0}" != 0 ]; then
		echo "=== FAILED: $log"; cat "$log"
	fi
	grep -a '^\[SKIP\]' "$log" | sed "s|^|$log: |"
done
for log in build/test-suite.log build-asan/test-suite.log; do
	[ -f "$log" ] || continue
	if grep -Eq '^# (FAIL|ERROR): *[1-9]' "$log"; then
		status=1
		echo "=== $log"; cat "$log"
	fi
done
[ "$passed" -gt 0 ] || status=1
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
