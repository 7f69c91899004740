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

# status --format prometheus (the formatter is src/agent/metrics_fmt.c).
chanctl_SOURCES += src/ctl/status_prom.c src/ctl/status_prom.h
