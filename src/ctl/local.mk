# ctl module: chanctl.  Each command family is one cmd_*.c file listed in
# src/ctl/families.c.  chanctl uses the agent library only for the config
# loader and the admin frame codec; keystore and check-peer commands come
# from their modules.
bin_PROGRAMS += chanctl
chanctl_SOURCES = src/ctl/ctl.h src/ctl/chanctl.c src/ctl/ctl_parse.c src/ctl/ctl_util.c \
	src/ctl/families.c src/ctl/cmd_queue.c src/ctl/cmd_msg.c
chanctl_LDADD = src/agent/libagent.a src/tls/libtls.a src/keystore/libkeystore.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(SQLITE_LIBS) $(LIBCONFIG_LIBS) $(JANSSON_LIBS)

# Channel commands (owned by the channel module).
chanctl_SOURCES += src/ctl/cmd_channel.c

# Route commands (telemetry: DESIGN section 8).
chanctl_SOURCES += src/ctl/cmd_route.c

# stop qmgr (like endmqm).
chanctl_SOURCES += src/ctl/cmd_qmgr.c

# status --format prometheus (the formatter is src/agent/metrics_fmt.c).
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
