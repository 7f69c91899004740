# tls module: src/tls/libtls.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/tls/libtls.a
src_tls_libtls_a_SOURCES =

# SSLPEER DN filter (pure), its certificate glue and the CipherSpec table
# (pure). `chanctl check-peer` is in src/ctl (libctl.a).
src_tls_libtls_a_SOURCES += src/tls/dnfilter.c src/tls/dnsubject.c src/tls/cipherspec.c
noinst_HEADERS += include/chand/dnfilter.h include/chand/cipherspec.h
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_dnfilter tests/unit/test_cipherspec tests/unit/test_checkpeer
# Built from the sources, not libtls.a, so these suites do not depend on
# the rest of the module compiling.
tests_unit_test_dnfilter_SOURCES = tests/unit/test_dnfilter.c src/tls/dnfilter.c
tests_unit_test_dnfilter_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dnfilter_LDADD = src/common/libcommon.a $(GNUTLS_LIBS) \
	$(CRITERION_LIBS)
tests_unit_test_cipherspec_SOURCES = tests/unit/test_cipherspec.c src/tls/cipherspec.c
tests_unit_test_cipherspec_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_cipherspec_LDADD = src/common/libcommon.a $(GNUTLS_LIBS) \
	$(CRITERION_LIBS)
tests_unit_test_checkpeer_SOURCES = tests/unit/test_checkpeer.c src/ctl/checkpeer_cli.c \
	src/tls/dnsubject.c src/tls/dnfilter.c
tests_unit_test_checkpeer_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_checkpeer_LDADD = src/common/libcommon.a $(GNUTLS_LIBS) \
	$(CRITERION_LIBS)
endif

# TLS sessions: contexts from keystore material, priority caches, SNI
# channel names, verification (SSLCAUTH/SSLPEER), record I/O with deadlines.
src_tls_libtls_a_SOURCES += src/tls/ctx.c src/tls/tls_ctxload.c src/tls/tls_prio.c \
	src/tls/sni.c src/tls/verify.c src/tls/session.c src/tls/tls_io.c src/tls/tls_int.h \
	src/tls/tls_nb.c
noinst_HEADERS += include/chand/tls.h
# Handshakes per second and bulk throughput (doc/TLS.md, "Measured").
noinst_PROGRAMS += bench/bench_tls
bench_bench_tls_SOURCES = bench/bench_tls.c tests/unit/tls_pem.c tests/unit/tls_pem.h
bench_bench_tls_CFLAGS = $(AM_CFLAGS) -DTEST_SRCDIR='"$(abs_top_srcdir)"'
bench_bench_tls_LDADD = src/tls/libtls.a src/common/libcommon.a $(GNUTLS_LIBS)
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_tls tests/unit/test_sni
tests_unit_test_tls_SOURCES = tests/unit/test_tls.c tests/unit/tls_pem.c tests/unit/tls_pem.h
tests_unit_test_tls_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_tls_LDADD = src/ctl/libctl.a src/tls/libtls.a src/keystore/libkeystore.a \
	src/common/libcommon.a $(GNUTLS_LIBS) $(SQLITE_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_sni_SOURCES = tests/unit/test_sni.c
tests_unit_test_sni_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_sni_LDADD = src/tls/libtls.a src/common/libcommon.a $(GNUTLS_LIBS) \
	$(CRITERION_LIBS)
endif
