#!/bin/sh
# ThreadSanitizer over the agent: builds chand with -fsanitize=thread in
# build-tsan/ and runs integration suites of build/ (a normal build) with
# that chand, so every agent the tests start is watched. (Criterion's own
# runner does not survive TSan, so the test binaries stay uninstrumented.)
# Exits non-zero if any agent reported a race.  Not part of scripts/test.sh
# for time; run it after changing threads or locks.
#
#   sh scripts/tsan.sh [SUITE...]      (default: the channel and telemetry suites)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
sh scripts/setup.sh "$top/build" >/dev/null || exit 2
mkdir -p build-tsan
( cd build-tsan &&
  { [ -f Makefile ] || ../configure -q CFLAGS="-fsanitize=thread -g -O1" LDFLAGS="-fsanitize=thread"; } &&
  make -j2 chand >/dev/null ) || exit 2
suites=${*:-test_chan_basic test_chan_ops test_chan_crash test_mqtt_clients test_mqtt_routes}
logs=$(mktemp -d) || exit 2
status=0
for t in $suites; do
	make -C build -j2 "tests/integ/$t" >/dev/null || exit 2
	echo "=== $t (agents under ThreadSanitizer)"
	CHAND_BIN="$top/build-tsan/chand" CHANCTL_BIN="$top/build/chanctl" TEST_SRCDIR="$top" \
	CRITERION_JOBS=2 TSAN_OPTIONS="halt_on_error=0 log_path=$logs/chand" \
		"build/tests/integ/$t" 2>&1 | tail -n 1 || status=1
done
if ls "$logs"/chand.* >/dev/null 2>&1; then
	echo "ThreadSanitizer reports:"
	cat "$logs"/chand.*
	status=1
else
	echo "no ThreadSanitizer report"
fi
rm -rf "$logs"
exit $status
