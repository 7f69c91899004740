# keystore module: src/keystore/libkeystore.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/keystore/libkeystore.a
src_keystore_libkeystore_a_SOURCES = src/keystore/ks_db.c src/keystore/ks_secret.c \
	src/keystore/ks_x509.c src/keystore/ks_p12.c src/keystore/ks_material.c \
	src/keystore/ks_cli.c src/keystore/ks_cli_show.c \
	src/keystore/ks_int.h src/keystore/ks_cli.h
noinst_HEADERS += include/chand/keystore.h
EXTRA_DIST += tests/pki/mkpki.sh tests/pki/README.md

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_keystore
tests_unit_test_keystore_SOURCES = tests/unit/test_keystore.c
tests_unit_test_keystore_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_keystore_LDADD = src/keystore/libkeystore.a src/common/libcommon.a \
	$(GNUTLS_LIBS) $(SQLITE_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
