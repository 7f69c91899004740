# Two-agent channel suites: real chand and chanctl processes on 127.0.0.1
# (tests/integ/chan_helpers.h), with an in-test TCP proxy for cutting
# connections.  They use only the documented CLI; test_chan_ops also links
# the frame codec to speak the wire protocol (malformed frames).
if ENABLE_TESTS
CHAN_ITEST_SRC = tests/integ/chan_helpers.c tests/integ/chan_helpers.h \
	tests/integ/tcpproxy.c tests/integ/tcpproxy.h
CHAN_ITEST_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
CHAN_ITEST_LIBS = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/integ/test_chan_tls tests/integ/test_chan_basic \
	tests/integ/test_chan_crash tests/integ/test_chan_ops tests/integ/test_chan_hostile \
	tests/integ/test_chan_flood
tests_integ_test_chan_basic_SOURCES = tests/integ/test_chan_basic.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_basic_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_basic_LDADD = $(CHAN_ITEST_LIBS)
tests_integ_test_chan_tls_SOURCES = tests/integ/test_chan_tls.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_tls_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_tls_LDADD = $(CHAN_ITEST_LIBS)
tests_integ_test_chan_crash_SOURCES = tests/integ/test_chan_crash.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_crash_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_crash_LDADD = $(CHAN_ITEST_LIBS)
tests_integ_test_chan_flood_SOURCES = tests/integ/test_chan_flood.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_flood_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_flood_LDADD = $(CHAN_ITEST_LIBS)
tests_integ_test_chan_hostile_SOURCES = tests/integ/test_chan_hostile.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_hostile_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_hostile_LDADD = $(CHAN_ITEST_LIBS)
tests_integ_test_chan_ops_SOURCES = tests/integ/test_chan_ops.c $(CHAN_ITEST_SRC)
tests_integ_test_chan_ops_CFLAGS = $(CHAN_ITEST_CFLAGS)
tests_integ_test_chan_ops_LDADD = tests/libtesthelp.a src/proto/libproto.a \
	src/tls/libtls.a src/keystore/libkeystore.a src/common/libcommon.a \
	$(GNUTLS_LIBS) $(SQLITE_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
EXTRA_DIST += scripts/demo-queues.sh

# The README's two-host walkthrough, run block by block
# (tests/integ/test_walkthrough.c): needs README.md through TEST_SRCDIR.
if ENABLE_TESTS
check_PROGRAMS += tests/integ/test_walkthrough
tests_integ_test_walkthrough_SOURCES = tests/integ/test_walkthrough.c
tests_integ_test_walkthrough_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_walkthrough_LDADD = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)
endif

# The examples of doc/ADMIN.md, doc/CHANNELS.md and doc/ADMIN-PROTOCOL.md
# (tests/integ/test_docs.c): console sessions against real agents, JSON
# examples through jansson, frame examples through the admin frame codec.
if ENABLE_TESTS
check_PROGRAMS += tests/integ/test_docs
tests_integ_test_docs_SOURCES = tests/integ/test_docs.c
tests_integ_test_docs_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_docs_LDADD = tests/libtesthelp.a src/admin/libadmin.a src/common/libcommon.a \
	$(JANSSON_LIBS) $(CRITERION_LIBS)
endif
