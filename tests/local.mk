# Shared test settings. Each module lists its own suites in its local.mk
# (inside "if ENABLE_TESTS"), e.g.
#   check_PROGRAMS += tests/unit/test_store
#   tests_unit_test_store_SOURCES = tests/unit/test_store.c
#   tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
#   tests_unit_test_store_LDADD = src/store/libstore.a src/common/libcommon.a \
#       $(SQLITE_LIBS) $(CRITERION_LIBS)   (unit suites link only their module)
# Integration suites also link tests/libtesthelp.a (agents, PKI, chanctl).
TESTS = $(check_PROGRAMS)
TEST_LIBS = $(CHAND_LIBS) $(CRITERION_LIBS)
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) -DTEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DTEST_BUILDDIR='"$(abs_top_builddir)"'
# Criterion forks one process per test; the integration tests start real
# agents, so keep them to two at a time on the 2-core CI machines.
AM_TESTS_ENVIRONMENT = CHAND_BIN='$(abs_top_builddir)/chand'; export CHAND_BIN; \
	CHANCTL_BIN='$(abs_top_builddir)/chanctl'; export CHANCTL_BIN; \
	TEST_SRCDIR='$(abs_top_srcdir)'; export TEST_SRCDIR; \
	CRITERION_JOBS=2; export CRITERION_JOBS;
if ENABLE_TESTS
check_LIBRARIES = tests/libtesthelp.a
tests_libtesthelp_a_SOURCES = tests/helpers.c tests/helpers.h
tests_libtesthelp_a_CFLAGS = $(TEST_CFLAGS)
endif
