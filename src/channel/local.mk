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
check_PROGRAMS += tests/unit/test_channel_def tests/unit/test_channel_status
# The pure parts only: definitions, CONNAME, retry schedule, status JSON.
tests_unit_test_channel_def_SOURCES = tests/unit/test_channel_def.c
tests_unit_test_channel_def_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_def_LDADD = src/channel/libchannel.a src/tls/libtls.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_channel_status_SOURCES = tests/unit/test_channel_status.c
tests_unit_test_channel_status_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_status_LDADD = src/channel/libchannel.a src/common/libcommon.a \
	$(JANSSON_LIBS) $(CRITERION_LIBS)
endif
