# agent module: src/agent/libagent.a and the chand program (see Makefile.am
# for the link order).  The admin server speaks the protocol through
# src/admin/libadmin.a; chanctl does not link this library.
noinst_LIBRARIES += src/agent/libagent.a
src_agent_libagent_a_SOURCES = src/agent/agent_int.h src/agent/config.c \
	src/agent/admin_server.c src/agent/admin_queue.c \
	src/agent/admin_msg.c src/agent/agent.c src/agent/agent_tls.c src/agent/listener.c \
	src/agent/modules.c
noinst_HEADERS += include/chand/config.h include/chand/admin.h include/chand/agent.h

# bench/bench_queue.sh measures the admin path (doc/PERFORMANCE.md).
EXTRA_DIST += bench/bench_queue.sh

sbin_PROGRAMS += chand
chand_SOURCES = src/agent/chand_main.c
chand_LDADD = $(CHAND_LIBS)

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_LDADD = src/agent/libagent.a src/keystore/libkeystore.a \
	src/common/libcommon.a $(LIBCONFIG_LIBS) $(GNUTLS_LIBS) $(SQLITE_LIBS) $(CRITERION_LIBS)

# Integration suites: real chand and chanctl processes. They use the
# admin frame codec (src/admin) to speak the protocol raw.
AGENT_INTEG_LIBS = tests/libtesthelp.a src/admin/libadmin.a src/common/libcommon.a \
	$(JANSSON_LIBS) $(CRITERION_LIBS)
check_PROGRAMS += tests/integ/test_agent tests/integ/test_queues tests/integ/test_messages
tests_integ_test_agent_SOURCES = tests/integ/test_agent.c
tests_integ_test_agent_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_agent_LDADD = $(AGENT_INTEG_LIBS)
tests_integ_test_queues_SOURCES = tests/integ/test_queues.c
tests_integ_test_queues_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_queues_LDADD = $(AGENT_INTEG_LIBS)
tests_integ_test_messages_SOURCES = tests/integ/test_messages.c
tests_integ_test_messages_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_messages_LDADD = $(AGENT_INTEG_LIBS)
endif

# The channel module's hook into the agent and its admin commands
# (owned by the channel module; the work is in src/channel).
src_agent_libagent_a_SOURCES += src/agent/admin_channel.c

# The telemetry service's hook into the agent (the work is in src/mqtt).
src_agent_libagent_a_SOURCES += src/agent/admin_mqtt.c

# Operations: privileges, the Prometheus listener, expiry warnings, the
# heap's keeping and giving back. The
# listener's formatter (metrics_fmt.c) is in libadmin.a, shared with
# chanctl (src/admin/local.mk).
src_agent_libagent_a_SOURCES += src/agent/ops_int.h src/agent/privs.c src/agent/metrics.c \
	src/agent/expiry.c src/agent/memtrim.c src/agent/ticker.c
if ENABLE_TESTS
check_PROGRAMS += tests/integ/test_metrics
tests_integ_test_metrics_SOURCES = tests/integ/test_metrics.c tests/unit/prom_check.c \
	tests/unit/prom_check.h tests/integ/chan_helpers.c tests/integ/chan_helpers.h \
	tests/integ/tcpproxy.c tests/integ/tcpproxy.h
tests_integ_test_metrics_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests -I$(top_srcdir)/tests/unit
tests_integ_test_metrics_LDADD = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
