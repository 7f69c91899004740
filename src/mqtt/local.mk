# mqtt module: telemetry channels (doc/TELEMETRY.md, doc/ARCHITECTURE.md):
# the codec (codec.mk), password and ACL files (auth.mk), definitions, the
# event loop, the broker and its writer thread.
noinst_LIBRARIES += src/mqtt/libmqtt.a
src_mqtt_libmqtt_a_SOURCES = $(MQTT_CODEC_SOURCES) $(MQTT_AUTH_SOURCES) \
	src/mqtt/mqtt_def.c src/mqtt/mqtt_int.h src/mqtt/mqtt_svc.c src/mqtt/mqtt_loop.c \
	src/mqtt/mqtt_proto.c src/mqtt/mqtt_broker.c src/mqtt/mqtt_persist.c \
	src/mqtt/mqtt_routedef.c src/mqtt/mqtt_route.c src/mqtt/mqtt_early.c
noinst_HEADERS += include/chand/mqtt.h
dist_doc_DATA += doc/TELEMETRY.md
