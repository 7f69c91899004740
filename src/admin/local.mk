# admin module: src/admin/libadmin.a (see Makefile.am for the link order)
# The admin protocol (doc/ADMIN-PROTOCOL.md) shared by chand and chanctl:
# the frame codec (pure), buffered frame I/O and the client.  No agent
# code, so chanctl links it without the agent (doc/ARCHITECTURE.md).
noinst_LIBRARIES += src/admin/libadmin.a
src_admin_libadmin_a_SOURCES = src/admin/admin_int.h src/admin/admin_frame.c \
	src/admin/admin_io.c src/admin/admin_client.c
noinst_HEADERS += include/chand/admin_proto.h

# The Prometheus exposition of `status` records (include/chand/metrics.h):
# pure, shared by the agent's metrics listener and `chanctl status
# --format prometheus`, so it sits with the protocol here.
src_admin_libadmin_a_SOURCES += src/admin/metrics_fmt.c
noinst_HEADERS += include/chand/metrics.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_admin tests/unit/test_prom
tests_unit_test_admin_SOURCES = tests/unit/test_admin.c
tests_unit_test_admin_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_admin_LDADD = src/admin/libadmin.a src/common/libcommon.a \
	$(JANSSON_LIBS) $(CRITERION_LIBS)
tests_unit_test_prom_SOURCES = tests/unit/test_prom.c tests/unit/prom_check.c \
	tests/unit/prom_check.h
tests_unit_test_prom_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_prom_LDADD = src/admin/libadmin.a src/common/libcommon.a $(JANSSON_LIBS) \
	$(CRITERION_LIBS)
endif
