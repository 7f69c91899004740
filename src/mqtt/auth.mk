# MQTT identity: mosquitto password and ACL files: sets MQTT_AUTH_SOURCES for src/mqtt/local.mk.
# (src/mqtt/local.mk puts them in libmqtt.a; this file defines no library.)
MQTT_AUTH_SOURCES = src/mqtt/mqtt_passwd.c src/mqtt/mqtt_acl.c
noinst_HEADERS += include/chand/mqtt_auth.h
EXTRA_DIST += tests/data/mosquitto

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_mqtt_auth
# Built from the sources (with pubsub's topic matcher), not libmqtt.a, so
# this suite does not depend on the rest of the module compiling.
tests_unit_test_mqtt_auth_SOURCES = tests/unit/test_mqtt_auth.c $(MQTT_AUTH_SOURCES) \
	src/pubsub/topic.c
tests_unit_test_mqtt_auth_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mqtt_auth_LDADD = src/common/libcommon.a $(GNUTLS_LIBS) $(CRITERION_LIBS)
endif
