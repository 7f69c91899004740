# MQTT codec (pure, fuzzed): sets MQTT_CODEC_SOURCES for src/mqtt/local.mk.
# (src/mqtt/local.mk puts them in libmqtt.a; this file defines no library.)
MQTT_CODEC_SOURCES = src/mqtt/mqtt_codec.c
noinst_HEADERS += include/chand/mqtt_codec.h

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test_mqtt_codec
# Built from the sources, not libmqtt.a, so this suite does not depend on
# the rest of the module compiling.
tests_unit_test_mqtt_codec_SOURCES = tests/unit/test_mqtt_codec.c $(MQTT_CODEC_SOURCES)
tests_unit_test_mqtt_codec_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mqtt_codec_LDADD = src/common/libcommon.a $(CRITERION_LIBS)
endif

# libFuzzer target (fuzz/run.sh mqtt); FUZZ_CFLAGS comes from fuzz/local.mk
# (included after this file: make expands it when the rule runs).  The
# codec is compiled into the target for coverage instrumentation.
if ENABLE_FUZZING
noinst_PROGRAMS += fuzz/fuzz_mqtt
fuzz_fuzz_mqtt_SOURCES = fuzz/fuzz_mqtt.c $(MQTT_CODEC_SOURCES)
fuzz_fuzz_mqtt_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_mqtt_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
endif
