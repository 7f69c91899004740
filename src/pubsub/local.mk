# pubsub module: topic names and filters, subscription matching (pure; doc/ARCHITECTURE.md).
noinst_LIBRARIES += src/pubsub/libpubsub.a
src_pubsub_libpubsub_a_SOURCES = src/pubsub/topic.c src/pubsub/subtree.c
noinst_HEADERS += include/chand/pubsub.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_pubsub
tests_unit_test_pubsub_SOURCES = tests/unit/test_pubsub.c
tests_unit_test_pubsub_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_pubsub_LDADD = src/pubsub/libpubsub.a src/common/libcommon.a $(CRITERION_LIBS)
endif

# Matches per second with 100,000 subscriptions: bench/bench_topic [seconds]
noinst_PROGRAMS += bench/bench_topic
bench_bench_topic_SOURCES = bench/bench_topic.c
bench_bench_topic_LDADD = src/pubsub/libpubsub.a

# libFuzzer target (fuzz/run.sh topic); FUZZ_CFLAGS comes from fuzz/local.mk.
# The sources are compiled into the target for coverage instrumentation.
if ENABLE_FUZZING
noinst_PROGRAMS += fuzz/fuzz_topic
fuzz_fuzz_topic_SOURCES = fuzz/fuzz_topic.c $(src_pubsub_libpubsub_a_SOURCES)
fuzz_fuzz_topic_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_topic_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
endif
