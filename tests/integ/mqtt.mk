# Integration suites of telemetry channels (real MQTT clients).
# test_mqtt_clients: mosquitto_pub/sub (mosquitto-clients), Paho Python
# (python3-paho-mqtt, through tests/integ/mqtt_client.py) and Paho C
# (paho.mqtt.c-examples) against a real agent, with the certificates of
# seeds 001 and 002 (tests/pki/mkseed.sh).
if ENABLE_TESTS
check_PROGRAMS += tests/integ/test_mqtt_clients
tests_integ_test_mqtt_clients_SOURCES = tests/integ/test_mqtt_clients.c \
	tests/integ/mqtt_helpers.c tests/integ/mqtt_helpers.h \
	tests/integ/chan_helpers.c tests/integ/chan_helpers.h
tests_integ_test_mqtt_clients_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_mqtt_clients_LDADD = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
EXTRA_DIST += tests/pki/mkseed.sh tests/integ/mqtt_client.py

# test_mqtt_routes: routes (doc/TELEMETRY.md) between two and three
# agents with real MQTT clients: QoS, retain, MQTT 5 properties, prefixes,
# --queue routes, a mesh, exactly once across kill -9 and connection cuts
# (tests/integ/tcpproxy.c), dead letters and a full transmission queue.
if ENABLE_TESTS
check_PROGRAMS += tests/integ/test_mqtt_routes
tests_integ_test_mqtt_routes_SOURCES = tests/integ/test_mqtt_routes.c \
	tests/integ/mqtt_helpers.c tests/integ/mqtt_helpers.h \
	tests/integ/chan_helpers.c tests/integ/chan_helpers.h \
	tests/integ/tcpproxy.c tests/integ/tcpproxy.h
tests_integ_test_mqtt_routes_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests
tests_integ_test_mqtt_routes_LDADD = tests/libtesthelp.a $(JANSSON_LIBS) $(CRITERION_LIBS)
endif
