#!/bin/sh
# Builds the libFuzzer targets with clang in their own build directory and
# runs each for a bounded time.  Exits non-zero if a target crashes (or
# fails one of its property checks), leaving the input that did it in
# $BUILD/fuzz-artifacts/.
#
# Usage: fuzz/run.sh [SECONDS-PER-TARGET (default 60)] [TARGET...]
#   TARGET: frame, dnfilter, mqtt, topic (default: every target whose source exists)
# Environment: FUZZ_BUILD_DIR (default build-fuzz in the source tree),
#   FUZZ_JOBS (parallel fuzzing processes per target, -fork=N; default 1).
# Needs: clang and libFuzzer (Debian 12: apt-get install clang libclang-rt-14-dev),
#   plus the normal build dependencies (autotools, gnutls, sqlite3, ...).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=${FUZZ_JOBS:-1}

case $secs in
	''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=
	for t in frame dnfilter mqtt topic; do
		[ -f "$top/fuzz/fuzz_$t.c" ] && targets="$targets $t"
	done
fi

# libFuzzer present?  (clang without the runtime links nothing.)
probe=$(mktemp -d) || exit 2
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
	>"$probe/p.c"
if ! command -v clang >/dev/null 2>&1 ||
   ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
	echo "fuzz/run.sh: needs clang with libFuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
	exit 2
fi

if [ ! -x "$top/configure" ]; then
	(cd "$top" && autoreconf -fi) || exit 2
fi
mkdir -p "$build" || exit 2
cd "$build" || exit 2
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
	CC=clang CFLAGS="-O1 -g" "$top/configure" --enable-fuzzing --disable-tests \
		>configure.out 2>&1 || { cat configure.out; exit 2; }
fi
bins=
for t in $targets; do
	bins="$bins fuzz/fuzz_$t"
done
make -j2 $bins || exit 2

status=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in $targets; do
	work="$build/fuzz-corpus/$t"
	art="$build/fuzz-artifacts"
	mkdir -p "$work" "$art"
	seeds=
	[ -d "$top/fuzz/corpus/$t" ] && seeds="$top/fuzz/corpus/$t"
	echo "=== fuzz_$t for ${secs}s (corpus $work${seeds:+, seeds $seeds})"
	# -timeout: one input taking 10 s is a hang; -max_len bounds inputs
	# (the codec never allocates from lengths it reads, so big claims are
	# still explored through the length fields).
	par=
	[ "$jobs" -gt 1 ] && par="-fork=$jobs"
	"./fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -max_len=16384 \
		-rss_limit_mb=2048 $par -print_final_stats=1 \
		-artifact_prefix="$art/$t-" "$work" $seeds >"$build/fuzz-$t.log" 2>&1
	rc=$?
	tail -n 14 "$build/fuzz-$t.log"
	if [ $rc -ne 0 ]; then
		echo "=== fuzz_$t FAILED (exit $rc); log $build/fuzz-$t.log; inputs in $art/" >&2
		status=1
	else
		echo "=== fuzz_$t ok"
	fi
done
exit $status
