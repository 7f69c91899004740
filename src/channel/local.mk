# channel module: src/channel/libchannel.a (see Makefile.am for the link order)
# Message channels: definitions, the supervisor and its threads, the
# sending and receiving ends of the protocol (doc/CHANNELS.md).
noinst_LIBRARIES += src/channel/libchannel.a
src_channel_libchannel_a_SOURCES = src/channel/chan_int.h \
	src/channel/chan_def.c src/channel/chan_status.c src/channel/chan_sup.c \
	src/channel/chan_sess.c src/channel/chan_connect.c src/channel/chan_inbound.c \
	src/channel/chan_send.c src/channel/chan_recv.c src/channel/chan_dlq.c \
	src/channel/chan_ping.c src/channel/chan_ops.c
noinst_HEADERS += include/chand/chandef.h include/chand/channel.h
dist_doc_DATA += doc/CHANNELS.md

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_channel_def tests/unit/test_channel_status \
	tests/unit/test_channel_dlq tests/unit/test_channel_store
# Pure parts: definitions, CONNAME, retry schedule, status JSON, the DLQ
# header; and the in-doubt bookkeeping the store keeps for channels.
tests_unit_test_channel_def_SOURCES = tests/unit/test_channel_def.c
tests_unit_test_channel_def_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_def_LDADD = src/channel/libchannel.a src/tls/libtls.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_channel_status_SOURCES = tests/unit/test_channel_status.c
tests_unit_test_channel_status_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_status_LDADD = src/channel/libchannel.a src/tls/libtls.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_channel_dlq_SOURCES = tests/unit/test_channel_dlq.c
tests_unit_test_channel_dlq_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/src/channel
tests_unit_test_channel_dlq_LDADD = src/channel/libchannel.a src/tls/libtls.a \
	src/store/libstore.a src/common/libcommon.a $(GNUTLS_LIBS) $(SQLITE_LIBS) \
	$(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_channel_store_SOURCES = tests/unit/test_channel_store.c
tests_unit_test_channel_store_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_store_LDADD = src/store/libstore.a src/common/libcommon.a \
	$(SQLITE_LIBS) $(CRITERION_LIBS)
endif
