# ctl module: chanctl.  Each command family is one cmd_*.c file listed in
# src/ctl/families.c.  chanctl talks to chand only through the admin
# protocol (src/admin) and reads chand.conf itself, only for the socket
# and keystore paths (ctl_conf.c): it links no agent code
# (doc/ARCHITECTURE.md).  The front ends that need no agent -- keystore and
# check-peer, over the keystore and tls modules -- are in libctl.a so
# tests can drive them in-process (include/chand/ctlcmd.h).
noinst_LIBRARIES += src/ctl/libctl.a
src_ctl_libctl_a_SOURCES = src/ctl/ks_cli.c src/ctl/ks_cli_show.c src/ctl/ks_cli.h \
	src/ctl/checkpeer_cli.c
noinst_HEADERS += include/chand/ctlcmd.h
CTL_LIBS = src/ctl/libctl.a src/admin/libadmin.a src/tls/libtls.a src/keystore/libkeystore.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(SQLITE_LIBS) $(LIBCONFIG_LIBS) $(JANSSON_LIBS)

bin_PROGRAMS += chanctl
chanctl_SOURCES = src/ctl/ctl.h src/ctl/chanctl.c src/ctl/ctl_parse.c src/ctl/ctl_util.c \
	src/ctl/ctl_conf.c src/ctl/families.c src/ctl/cmd_queue.c src/ctl/cmd_msg.c
chanctl_LDADD = $(CTL_LIBS)

if ENABLE_TESTS
# chanctl's reading of chand.conf against chand's own loader.
check_PROGRAMS += tests/unit/test_ctlconf
tests_unit_test_ctlconf_SOURCES = tests/unit/test_ctlconf.c src/ctl/ctl_conf.c \
	src/ctl/ctl_util.c
tests_unit_test_ctlconf_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/src/ctl
tests_unit_test_ctlconf_LDADD = src/agent/libagent.a src/admin/libadmin.a \
	src/keystore/libkeystore.a src/common/libcommon.a $(LIBCONFIG_LIBS) $(GNUTLS_LIBS) \
	$(SQLITE_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
endif

# Channel commands (owned by the channel module).
chanctl_SOURCES += src/ctl/cmd_channel.c

# Route commands (telemetry: doc/TELEMETRY.md).
chanctl_SOURCES += src/ctl/cmd_route.c

# stop qmgr (like endmqm).
chanctl_SOURCES += src/ctl/cmd_qmgr.c

# status --format prometheus (the formatter, metrics_fmt.c, is in libadmin.a).
chanctl_SOURCES += src/ctl/status_prom.c src/ctl/status_prom.h

# import mosquitto-conf: the pure mapper (mosqconf.c) and the command.
chanctl_SOURCES += src/ctl/cmd_import.c src/ctl/mosqconf.c src/ctl/mosqconf.h
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_mosqconf
tests_unit_test_mosqconf_SOURCES = tests/unit/test_mosqconf.c src/ctl/mosqconf.c \
	src/ctl/mosqconf.h src/tls/cipherspec.c
tests_unit_test_mosqconf_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mosqconf_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
endif
EXTRA_DIST += tests/data/mosqconf/seed001.conf tests/data/mosqconf/seed001.out
dist_doc_DATA += doc/MOSQUITTO.md
