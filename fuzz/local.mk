# libFuzzer targets: configure --enable-fuzzing with CC=clang (fuzz/run.sh
# builds them in their own directory and runs each for a bounded time).
# The code under test is compiled into each target rather than taken from
# the module libraries, so libFuzzer's coverage instrumentation sees it
# whatever CFLAGS the rest of the build has.
EXTRA_DIST += fuzz/run.sh fuzz/corpus
if ENABLE_FUZZING
FUZZ_CFLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -g

noinst_PROGRAMS += fuzz/fuzz_frame
fuzz_fuzz_frame_SOURCES = fuzz/fuzz_frame.c $(src_proto_libproto_a_SOURCES) src/common/util.c
fuzz_fuzz_frame_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_frame_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_frame_LDADD = src/common/libcommon.a

noinst_PROGRAMS += fuzz/fuzz_dnfilter
fuzz_fuzz_dnfilter_SOURCES = fuzz/fuzz_dnfilter.c src/tls/dnfilter.c
fuzz_fuzz_dnfilter_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_dnfilter_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_dnfilter_LDADD = src/common/libcommon.a $(GNUTLS_LIBS)
endif
