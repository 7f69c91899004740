# store module: src/store/libstore.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/store/libstore.a
src_store_libstore_a_SOURCES = src/store/store_int.h src/store/store_db.c \
	src/store/store_queue.c src/store/store_msg.c src/store/store_lock.c \
	src/store/store_chan.c src/store/store_np.c
noinst_HEADERS += include/chand/store.h

# Throughput of the store alone (doc/STORAGE.md has the figures).
noinst_PROGRAMS += bench/bench_store
bench_bench_store_SOURCES = bench/bench_store.c
bench_bench_store_LDADD = src/store/libstore.a src/common/libcommon.a $(SQLITE_LIBS)

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/src/store
tests_unit_test_store_LDADD = src/store/libstore.a src/common/libcommon.a \
	$(SQLITE_LIBS) $(CRITERION_LIBS)
endif

# Channel bookkeeping beside the sync records (owned by the channel module:
# in-doubt batch membership, pending reset; include/chand/store_ext.h).
src_store_libstore_a_SOURCES += src/store/store_chan_ext.c
noinst_HEADERS += include/chand/store_ext.h

# MQTT sessions, queued publications and retained messages of telemetry
# channels (include/chand/store_mqtt.h; schema version 2).
src_store_libstore_a_SOURCES += src/store/store_mqtt.c src/store/store_route.c
noinst_HEADERS += include/chand/store_mqtt.h
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_store_mqtt
tests_unit_test_store_mqtt_SOURCES = tests/unit/test_store_mqtt.c
tests_unit_test_store_mqtt_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/src/store
tests_unit_test_store_mqtt_LDADD = src/store/libstore.a src/common/libcommon.a \
	$(SQLITE_LIBS) $(CRITERION_LIBS)
endif
