# proto module: src/proto/libproto.a (see Makefile.am for the link order)
# The channel frame codec: pure functions, no I/O (doc/PROTOCOL.md).
noinst_LIBRARIES += src/proto/libproto.a
src_proto_libproto_a_SOURCES = src/proto/frame.c src/proto/frame_dec.c src/proto/frame_enc.c \
	src/proto/frame_nego.c src/proto/frame_int.h
noinst_HEADERS += include/chand/frame.h
dist_doc_DATA += doc/PROTOCOL.md

# Encode/decode speed: bench/bench_frame [iterations]
noinst_PROGRAMS += bench/bench_frame
bench_bench_frame_SOURCES = bench/bench_frame.c
bench_bench_frame_LDADD = src/proto/libproto.a src/common/libcommon.a

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_frame
tests_unit_test_frame_SOURCES = tests/unit/test_frame.c
tests_unit_test_frame_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_frame_LDADD = src/proto/libproto.a src/common/libcommon.a $(CRITERION_LIBS)
endif
