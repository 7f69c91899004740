noinst_LIBRARIES += src/common/libcommon.a
src_common_libcommon_a_SOURCES = src/common/log.c src/common/util.c src/common/codes.c \
	src/common/message.c src/common/srclimit.c
noinst_HEADERS += include/chand/log.h include/chand/util.h include/chand/codes.h \
	include/chand/message.h include/chand/srclimit.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_codes
tests_unit_test_codes_SOURCES = tests/unit/test_codes.c
tests_unit_test_codes_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_codes_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
check_PROGRAMS += tests/unit/test_srclimit
tests_unit_test_srclimit_SOURCES = tests/unit/test_srclimit.c
tests_unit_test_srclimit_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_srclimit_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
endif
