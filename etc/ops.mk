# Operations files: systemd unit, sysusers/tmpfiles snippets, bash completion,
# chanctl explain and MQSC run/dump (see doc/OPERATIONS.md).
#
# Everything installs below the configured prefix, so `make distcheck` and
# DESTDIR staging work.  Distributions that want the files where systemd
# looks for them either configure with --prefix=/usr (the defaults below
# then are /usr/lib/systemd/system, /usr/lib/sysusers.d, ...), or override
# the directories at make time:
#   make install systemdsystemunitdir=/lib/systemd/system
systemdsystemunitdir = $(prefix)/lib/systemd/system
sysusersdir = $(prefix)/lib/sysusers.d
tmpfilesdir = $(prefix)/lib/tmpfiles.d
bashcompletiondir = $(datadir)/bash-completion/completions

# The unit and snippets name installation paths, so they are made from
# templates with the configured directories.  sysusers.d and tmpfiles.d want
# the files named chand.conf: they are built in their own directories.
nodist_systemdsystemunit_DATA = etc/chand@.service
nodist_sysusers_DATA = etc/sysusers.d/chand.conf
nodist_tmpfiles_DATA = etc/tmpfiles.d/chand.conf
dist_bashcompletion_DATA = contrib/bash-completion/chanctl
EXTRA_DIST += etc/chand@.service.in etc/chand.sysusers.in etc/chand.tmpfiles.in
CLEANFILES += etc/chand@.service etc/sysusers.d/chand.conf etc/tmpfiles.d/chand.conf

ops_edit = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g' -e 's|@runstatedir[@]|$(runstatedir)|g' \
	-e 's|@docdir[@]|$(docdir)|g'

etc/chand@.service: $(top_srcdir)/etc/chand@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && $(ops_edit) $(top_srcdir)/etc/chand@.service.in >$@.tmp && \
	mv $@.tmp $@
etc/sysusers.d/chand.conf: $(top_srcdir)/etc/chand.sysusers.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/sysusers.d && \
	$(ops_edit) $(top_srcdir)/etc/chand.sysusers.in >$@.tmp && mv $@.tmp $@
etc/tmpfiles.d/chand.conf: $(top_srcdir)/etc/chand.tmpfiles.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/tmpfiles.d && \
	$(ops_edit) $(top_srcdir)/etc/chand.tmpfiles.in >$@.tmp && mv $@.tmp $@

# The MQSC corpus run by tests/integ/test_ops and the operations guide.
EXTRA_DIST += tests/mqsc
dist_doc_DATA += doc/OPERATIONS.md

# chanctl explain, run and dump (families listed in src/ctl/families.c).
# mqsc.c is pure (text in, commands out) and has its own unit suite.
chanctl_SOURCES += src/ctl/cmd_explain.c src/ctl/cmd_mqsc.c src/ctl/mqsc.c src/ctl/mqsc.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_mqsc tests/integ/test_ops
tests_unit_test_mqsc_SOURCES = tests/unit/test_mqsc.c src/ctl/mqsc.c src/ctl/mqsc.h
tests_unit_test_mqsc_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/src/ctl
tests_unit_test_mqsc_LDADD = $(JANSSON_LIBS) $(CRITERION_LIBS)
# Real agents and chanctl; also sources the bash completion in bash and
# checks the systemd files with systemd-analyze/sysusers/tmpfiles if present.
tests_integ_test_ops_SOURCES = tests/integ/test_ops.c
tests_integ_test_ops_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_ops_LDADD = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
