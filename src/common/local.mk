noinst_LIBRARIES += src/common/libcommon.a
src_common_libcommon_a_SOURCES = src/common/log.c src/common/util.c src/common/codes.c \
	src/common/message.c src/common/srclimit.c src/common/b64.c src/common/netlisten.c \
	src/common/memkeep.c
noinst_HEADERS += include/chand/log.h include/chand/util.h include/chand/codes.h \
	include/chand/message.h include/chand/srclimit.h include/chand/netlisten.h \
	include/chand/memkeep.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_codes
tests_unit_test_codes_SOURCES = tests/unit/test_codes.c
tests_unit_test_codes_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_codes_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
check_PROGRAMS += tests/unit/test_srclimit
tests_unit_test_srclimit_SOURCES = tests/unit/test_srclimit.c
tests_unit_test_srclimit_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_srclimit_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
# base64 is GnuTLS's (b64.c): programs that call it link GnuTLS.
check_PROGRAMS += tests/unit/test_util
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_LDADD = src/common/libcommon.a $(GNUTLS_LIBS) $(CRITERION_LIBS)
check_PROGRAMS += tests/unit/test_memkeep
tests_unit_test_memkeep_SOURCES = tests/unit/test_memkeep.c
tests_unit_test_memkeep_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_memkeep_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
endif
