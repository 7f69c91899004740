# keystore module: src/keystore/libkeystore.a (see Makefile.am for the link order)
# The `chanctl keystore` front end is in src/ctl (libctl.a).
noinst_LIBRARIES += src/keystore/libkeystore.a
src_keystore_libkeystore_a_SOURCES = src/keystore/ks_db.c src/keystore/ks_secret.c \
	src/keystore/ks_x509.c src/keystore/ks_p12.c src/keystore/ks_material.c \
	src/keystore/ks_check.c src/keystore/ks_int.h
noinst_HEADERS += include/chand/keystore.h include/chand/keystore_file.h
EXTRA_DIST += tests/pki/mkpki.sh tests/pki/README.md

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_keystore
tests_unit_test_keystore_SOURCES = tests/unit/test_keystore.c
tests_unit_test_keystore_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_keystore_LDADD = src/ctl/libctl.a src/keystore/libkeystore.a src/common/libcommon.a \
	$(GNUTLS_LIBS) $(SQLITE_LIBS) $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
